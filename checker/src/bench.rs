//! `checker bench`: generated key-value histories, timed.

use raftkv_checker::generate::{GenOptions, kv_history, to_jsonl};
use raftkv_checker::{CheckOptions, Verdict, check_file};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// History sizes in ops.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    ops: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    processes: usize,
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    #[arg(long, default_value_t = 0.05)]
    info_rate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 1000)]
    ops: usize,
    #[arg(long, default_value_t = 16)]
    processes: usize,
    #[arg(long, default_value_t = 10)]
    keys: usize,
    #[arg(long, default_value_t = 0.05)]
    info_rate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn generate(args: GenerateArgs) -> ExitCode {
    let events = kv_history(&GenOptions {
        ops: args.ops,
        processes: args.processes.max(1),
        keys: args.keys.max(1),
        info_rate: args.info_rate,
        with_fail: true,
        seed: args.seed,
    });
    print!("{}", to_jsonl(&events));
    ExitCode::SUCCESS
}

pub fn run(args: BenchArgs) -> ExitCode {
    let dir = std::env::temp_dir().join(format!("checker-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("checker: cannot create {}: {e}", dir.display());
        return ExitCode::from(3);
    }
    let mut code = ExitCode::SUCCESS;
    for &n in &args.ops {
        let events = kv_history(&GenOptions {
            ops: n,
            processes: args.processes,
            keys: args.keys,
            info_rate: args.info_rate,
            with_fail: true,
            seed: args.seed,
        });
        let path = dir.join(format!("history-{n}.jsonl"));
        if let Err(e) = std::fs::write(&path, to_jsonl(&events)) {
            eprintln!("checker: cannot write {}: {e}", path.display());
            return ExitCode::from(3);
        }
        drop(events);
        let opts = CheckOptions {
            threads: args.threads,
            ..CheckOptions::default()
        };
        // Reset the peak-RSS counter so each size reports its own peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let t0 = Instant::now();
        match check_file(&path, &opts) {
            Ok(out) => {
                let total = t0.elapsed();
                println!(
                    "ops={n} processes={} keys={} info={:.0}%: {} in {:.3} s (read+parse {:.3} s, decide {:.3} s), memo peak {:.1} MiB, max RSS {:.1} MiB",
                    args.processes,
                    args.keys,
                    args.info_rate * 100.0,
                    out.verdict.as_str(),
                    total.as_secs_f64(),
                    out.parse_time.as_secs_f64(),
                    out.decide_time.as_secs_f64(),
                    out.memo_peak_bytes as f64 / (1 << 20) as f64,
                    max_rss_mib()
                );
                if out.verdict != Verdict::Linearizable {
                    code = ExitCode::from(1);
                }
            }
            Err(e) => {
                eprintln!("checker: {e}");
                code = ExitCode::from(3);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir(&dir);
    code
}

/// Peak resident set size of this process so far (Linux `VmHWM`).
fn max_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
