//! `checker`: decides whether histories are linearizable.

use clap::{Parser, Subcommand};
use raftkv_checker::{CheckOptions, Format, ModelKind, NilRead, Outcome, Verdict, check_file};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "checker",
    version,
    about = "A linearizability checker for Jepsen-style histories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check history files. Exit 0 linearizable, 1 not linearizable,
    /// 2 unknown, 3 bad input or usage; with several files, the worst
    /// (3 > 1 > 2 > 0).
    Check(CheckArgs),
    /// Generate key-value histories and time the check.
    Bench(bench::BenchArgs),
    /// Print a generated (linearizable) key-value history as JSON Lines.
    Generate(bench::GenerateArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// History files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// kv, register, cas-register, mutex, multi-register (default: from the
    /// format and op names).
    #[arg(long, default_value = "auto")]
    model: String,
    /// Initial value of registers/keys, as JSON or EDN (nil by default). For
    /// the kv and multi-register models a map gives each key or register its
    /// own: '{:x 0 :y 0}' or '{"x":0,"y":0}'.
    #[arg(long)]
    initial: Option<String>,
    /// What an ok read of nil means: absent (the key or register held nil)
    /// or unknown (the read constrains nothing, as in Knossos's models).
    /// auto: unknown for EDN histories, absent for the other formats.
    #[arg(long, default_value = "auto")]
    nil_read: String,
    /// auto, jsonl, edn, porcupine-kv, jepsen-log.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Give up with verdict unknown after this long (e.g. 30s, 500ms, 2m).
    #[arg(long)]
    time_limit: Option<String>,
    /// Time allowed to explain a failure, after deciding.
    #[arg(long, default_value = "10s")]
    explain_time_limit: String,
    /// Bound on the memory the searches keep (memo tables, values built by
    /// appends), all partitions together, in MiB.
    #[arg(long, default_value_t = 4096)]
    memo_limit_mb: usize,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write a self-contained timeline page (with several files, the file
    /// number is added before the extension).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print machine-readable JSON (one object per line per file).
    #[arg(long)]
    json: bool,
    /// Decide every key even after one fails, and list all failing keys.
    #[arg(long)]
    all_keys: bool,
    /// Call a history in which no operation completed ok linearizable (as
    /// Knossos does) instead of unknown (exit 2).
    #[arg(long)]
    allow_no_ok: bool,
    /// Also print how long reading, deciding and explaining took and the
    /// memo's peak (a `timings` object with --json). Without it the output
    /// is the same for every run on the same history.
    #[arg(long)]
    timings: bool,
}

/// Parses durations like `30s`, `500ms`, `2m`, `1.5s`, `1e3`, or plain
/// seconds. Durations too long to represent (`1e20`, `inf`) mean no limit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = [
        ("ms", 1e-3),
        ("min", 60.0),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ]
    .iter()
    .find_map(|&(unit, scale)| Some((s.strip_suffix(unit)?, scale)))
    .unwrap_or((s, 1.0));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 500ms, 2m or 1h, found {s:?}"))?;
    let secs = n * scale;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("expected a non-negative duration, found {s:?}"));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// Parses `--initial`: JSON first (`{"x":0}` is also EDN, with other
/// meaning), then EDN.
fn parse_initial(s: &str) -> Result<raftkv_checker::Val, String> {
    if let Ok(j) = serde_json::from_str::<serde_json::Value>(s) {
        return Ok(raftkv_checker::Val::from_json(&j));
    }
    raftkv_checker::format::edn::parse_value(s).map_err(|e| {
        format!(
            "--initial: expected a JSON or EDN value, found {} ({e})",
            raftkv_checker::value::quote_short(s)
        )
    })
}

/// Prints to stdout; a closed pipe (`checker check ... | head`) is not an
/// error: the exit code still tells the verdict.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!("{}\n", format_args!($($arg)*)));
    }};
}

/// Prints to stderr, never failing.
macro_rules! err {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(&mut std::io::stderr().lock(), format_args!("{}\n", format_args!($($arg)*)));
    }};
}

mod bench;

fn usage_error(msg: &str) -> ExitCode {
    err!("checker: {msg}");
    ExitCode::from(3)
}

fn severity(code: i32) -> u8 {
    match code {
        0 => 0,
        2 => 1,
        1 => 2,
        _ => 3,
    }
}

fn html_path(base: &Path, i: usize, n: usize) -> PathBuf {
    if n == 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map_or("timeline".into(), |s| s.to_string_lossy().into_owned());
    let ext = base
        .extension()
        .map_or("html".into(), |s| s.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}-{}.{ext}", i + 1))
}

fn run_check(args: CheckArgs) -> ExitCode {
    let model: ModelKind = match args.model.parse() {
        Ok(m) => m,
        Err(e) => return usage_error(&e.to_string()),
    };
    let fmt: Format = match args.format.parse() {
        Ok(f) => f,
        Err(e) => return usage_error(&e.to_string()),
    };
    let initial = match args.initial.as_deref().map(parse_initial).transpose() {
        Ok(v) => v,
        Err(e) => return usage_error(&e),
    };
    let nil_read = match args.nil_read.as_str() {
        "auto" => None,
        s => match s.parse::<NilRead>() {
            Ok(n) => Some(n),
            Err(e) => return usage_error(&format!("--nil-read: {e}")),
        },
    };
    let time_limit = match args.time_limit.as_deref().map(parse_duration).transpose() {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("--time-limit: {e}")),
    };
    let explain_time_limit = match parse_duration(&args.explain_time_limit) {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("--explain-time-limit: {e}")),
    };
    let opts = CheckOptions {
        model,
        initial,
        nil_read,
        format: fmt,
        time_limit,
        explain_time_limit,
        explain: true,
        memo_limit_bytes: args.memo_limit_mb.saturating_mul(1 << 20),
        threads: args.threads,
        check_all_keys: args.all_keys,
        require_ok: !args.allow_no_ok,
    };
    let n = args.files.len();
    let mut worst = 0i32;
    let mut counts = [0usize; 4];
    for (i, file) in args.files.iter().enumerate() {
        let code = match check_file(file, &opts) {
            Ok(outcome) => {
                report(&outcome, n, args.json, args.timings);
                if let Some(base) = &args.html {
                    let path = html_path(base, i, n);
                    if let Err(e) = std::fs::write(&path, raftkv_checker::render_html(&outcome)) {
                        err!("checker: cannot write {}: {e}", path.display());
                        return ExitCode::from(3);
                    }
                    if !args.json {
                        out!("  timeline written to {}", path.display());
                    }
                }
                let code = outcome.exit_code();
                let size = outcome.history.ops.len() * 256;
                raftkv_checker::search::drop_big(outcome, size);
                code
            }
            Err(e) => {
                if args.json {
                    out!(
                        "{}",
                        serde_json::json!({"file": file.display().to_string(), "error": e.to_string(), "exit_code": 3})
                    );
                }
                err!("checker: {e}");
                3
            }
        };
        counts[code as usize] += 1;
        if severity(code) > severity(worst) {
            worst = code;
        }
    }
    if n > 1 {
        if args.json {
            out!(
                "{}",
                serde_json::json!({"summary": {"files": n, "linearizable": counts[0], "not_linearizable": counts[1], "unknown": counts[2], "errors": counts[3], "exit_code": worst}})
            );
        } else {
            out!(
                "{n} files: {} linearizable, {} not linearizable, {} unknown, {} errors",
                counts[0],
                counts[1],
                counts[2],
                counts[3]
            );
        }
    }
    ExitCode::from(worst as u8)
}

fn report(outcome: &Outcome, files: usize, json: bool, timings: bool) {
    if json {
        let mut v = outcome.to_json();
        if timings {
            v["timings"] = outcome.timings_json();
        }
        out!("{v}");
        return;
    }
    if files == 1 || outcome.verdict == Verdict::NotLinearizable {
        out!("{}", outcome.summary().trim_end());
    } else {
        out!("{}", outcome.one_line());
    }
    if timings {
        out!("{}", outcome.timings_line());
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 3 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check(args) => run_check(args),
        Command::Bench(args) => bench::run(args),
        Command::Generate(args) => bench::generate(args),
    }
}
