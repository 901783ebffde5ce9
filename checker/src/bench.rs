//! `checker bench`: generated key-value histories, timed.

use raftkv_checker::generate::{GenOptions, kv_history, write_kv_history};
use raftkv_checker::{CheckOptions, Verdict, check_file};
use std::io::Write;
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
    /// Also time single-register histories of this many ops (0 = skip).
    #[arg(long, default_value_t = 100)]
    register_ops: usize,
    /// Processes for the single-register histories.
    #[arg(long, default_value_t = 16)]
    register_processes: usize,
    /// How many different single-register histories to time.
    #[arg(long, default_value_t = 200)]
    register_histories: usize,
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
    let opts = GenOptions {
        ops: args.ops,
        processes: args.processes.max(1),
        keys: args.keys.max(1),
        info_rate: args.info_rate,
        with_fail: true,
        seed: args.seed,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    // A closed stdout ends the output; it is not an error.
    let _ = write_kv_history(&opts, &mut out).and_then(|_| out.flush());
    ExitCode::SUCCESS
}

pub fn run(args: BenchArgs) -> ExitCode {
    let dir = std::env::temp_dir().join(format!("checker-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        err!("checker: cannot create {}: {e}", dir.display());
        return ExitCode::from(3);
    }
    let mut code = ExitCode::SUCCESS;
    for &n in &args.ops {
        let opts = GenOptions {
            ops: n,
            processes: args.processes.max(1),
            keys: args.keys.max(1),
            info_rate: args.info_rate,
            with_fail: true,
            seed: args.seed,
        };
        let path = dir.join(format!("history-{n}.jsonl"));
        let written = std::fs::File::create(&path).and_then(|f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            write_kv_history(&opts, &mut w)?;
            w.flush()
        });
        if let Err(e) = written {
            err!("checker: cannot write {}: {e}", path.display());
            let _ = std::fs::remove_file(&path);
            return ExitCode::from(3);
        }
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let opts = CheckOptions {
            threads: args.threads,
            ..CheckOptions::default()
        };
        // Reset the peak-RSS counter so each size reports its own peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        match check_file(&path, &opts) {
            Ok(out) => {
                let total = t0.elapsed();
                let cpu = cpu_seconds() - cpu0;
                let parse = out.parse_time.as_secs_f64();
                out!(
                    "ops={n} processes={} keys={} info={:.0}%: {} in {:.3} s wall, {:.3} s CPU; {:.0} MB read and parsed in {:.3} s ({:.0} MB/s), decided in {:.3} s wall; memo peak {:.1} MiB, max RSS {:.1} MiB",
                    args.processes,
                    args.keys,
                    args.info_rate * 100.0,
                    out.verdict.as_str(),
                    total.as_secs_f64(),
                    cpu,
                    size as f64 / 1e6,
                    parse,
                    size as f64 / 1e6 / parse,
                    out.decide_time.as_secs_f64(),
                    out.memo_peak_bytes as f64 / (1 << 20) as f64,
                    max_rss_mib()
                );
                if out.verdict != Verdict::Linearizable {
                    code = ExitCode::from(1);
                }
                // Not part of the measured time.
                drop(out);
            }
            Err(e) => {
                err!("checker: {e}");
                code = ExitCode::from(3);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir(&dir);
    if args.register_ops > 0 && args.register_histories > 0 {
        register_bench(&args);
    }
    code
}

/// Many small single-register histories, parsed once, each decided in
/// process: the per-history decide time distribution.
fn register_bench(args: &BenchArgs) {
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut illegal = 0;
    for seed in 0..args.register_histories as u64 {
        let events = kv_history(&GenOptions {
            ops: args.register_ops,
            processes: args.register_processes.max(1),
            keys: 1,
            info_rate: args.info_rate,
            with_fail: true,
            seed: args.seed + seed,
        });
        let history = match raftkv_checker::History::from_events(events) {
            Ok(h) => h,
            Err(e) => {
                err!("checker: generated history rejected: {e}");
                return;
            }
        };
        let opts = CheckOptions {
            threads: 1,
            ..CheckOptions::default()
        };
        let c0 = thread_cpu();
        let t0 = Instant::now();
        let out = raftkv_checker::check_history(
            history,
            raftkv_checker::ModelKind::Kv,
            &raftkv_checker::Semantics::default(),
            &opts,
        );
        times.push(t0.elapsed().as_secs_f64() * 1e6);
        cpu_times.push((thread_cpu() - c0) * 1e6);
        if !matches!(out, Ok(ref o) if o.verdict == Verdict::Linearizable) {
            illegal += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    cpu_times.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    out!(
        "single register: {} histories of {} ops, {} processes, {:.0}% info: wall median {:.0} µs, p90 {:.0} µs, max {:.0} µs; thread CPU median {:.0} µs, p90 {:.0} µs, max {:.0} µs, total {:.1} ms{}",
        times.len(),
        args.register_ops,
        args.register_processes,
        args.info_rate * 100.0,
        pct(&times, 0.5),
        pct(&times, 0.9),
        pct(&times, 1.0),
        pct(&cpu_times, 0.5),
        pct(&cpu_times, 0.9),
        pct(&cpu_times, 1.0),
        cpu_times.iter().sum::<f64>() / 1e3,
        if illegal > 0 {
            format!(" ({illegal} NOT linearizable: generator or checker bug)")
        } else {
            String::new()
        }
    );
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(f64::NAN, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`,
/// 100 ticks per second).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses).
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
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
