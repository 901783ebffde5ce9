//! `harness run`: Jepsen-style fault injection against real node processes.
//!
//! A run starts N `node` processes whose peer traffic goes through per-link
//! proxies ([`proxy`]), runs concurrent logical clients ([`workload`]) while a
//! seeded nemesis kills, pauses and partitions nodes ([`nemesis`]), records
//! every operation ([`recorder`]), heals everything, lets every client read
//! every key, stops the nodes and checks the history for linearizability and
//! the nodes' logs for lost votes and split leadership ([`node_logs`]).
//! The run directory gets `history.jsonl`, `summary.json`, the node logs and
//! `report.html` ([`summary`], [`report`]).
//!
//! Exit codes: 0 linearizable and the node logs hold up, 1 a violation
//! (either check), 2 unknown, 3 harness error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

pub mod backend;
pub mod nemesis;
pub mod node_logs;
pub mod progress;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod summary;
pub mod workload;

use crate::cluster::{Cluster, ClusterConfig, NodeState};
use backend::ClusterBackend;
use nemesis::{Fault, FaultKind, Planner};
use proxy::Proxies;
use recorder::{EventType, NEMESIS, Recorder};
use workload::{Counters, Mix, WorkloadConfig};

/// Exit code of a harness error (bad flags, a node that will not start...).
pub const EXIT_HARNESS_ERROR: u8 = 3;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// How long clients run under faults (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Duration,
    /// Faults to inject: kill,pause,partition (comma-separated), all, or none.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Length of a quiet period and of a fault period.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// Which nodes kills and pauses hit: `any` (one, a minority or the
    /// leader) or `leader` (always the leader; partitions isolate it).
    #[arg(long, default_value = "any", value_parser = ["any", "leader"])]
    pub nemesis_target: String,
    /// Concurrent logical clients (default: 2 per node).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Number of keys (few, so that operations collide).
    #[arg(long, default_value_t = 5)]
    pub keys: u32,
    /// Relative weights of the operations.
    #[arg(long, default_value = "set=35,get=45,cas=15,noop=5")]
    pub mix: String,
    /// Total operations per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Fixes the operations, keys, values and nemesis schedule (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The `node` binary (default: `node` beside this program).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Extra argument passed to every node (repeatable), e.g.
    /// `--node-arg=--election-timeout-min-ms=150`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Where run directories are created.
    #[arg(long, default_value = "histories")]
    pub out: PathBuf,
    /// An operation without an answer after this is recorded as `info`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Longest wait for a leader at the start and after healing.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub recovery_timeout: Duration,
    /// Time limit of the linearizability check (then the verdict is unknown).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub check_time_limit: Duration,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a plain number of seconds (the
/// syntax of every duration flag: [`raftkv::duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    raftkv::duration::parse(s)
}

/// A harness error: the run could not be carried out.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl<E: std::fmt::Display> From<E> for HarnessError {
    fn from(e: E) -> Self {
        HarnessError(e.to_string())
    }
}

/// What the progress display and the nemesis share.
#[derive(Default)]
pub struct LiveState {
    pub counters: Arc<Counters>,
    pub leader: AtomicU64,
    pub last_fault: Mutex<String>,
    pub phase: Mutex<String>,
}

/// Timings of the run's phases, in seconds.
#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct Timings {
    pub startup_s: f64,
    pub workload_s: f64,
    pub recovery_s: f64,
    pub final_reads_s: f64,
    pub check_s: f64,
    pub total_s: f64,
}

pub fn main(args: Args) -> ExitCode {
    match run_main(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("harness run: {}", e.0);
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}

fn run_main(args: Args) -> Result<u8, HarnessError> {
    if args.nodes == 0 {
        return Err(HarnessError("--nodes must be at least 1".into()));
    }
    if args.keys == 0 {
        return Err(HarnessError("--keys must be at least 1".into()));
    }
    let kinds = nemesis::parse_kinds(&args.nemesis).map_err(HarnessError)?;
    let mix: Mix = args.mix.parse().map_err(HarnessError)?;
    let node_bin = match &args.node_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("node"))
            .ok_or_else(|| HarnessError("cannot locate the node binary".into()))?,
    };
    if !node_bin.is_file() {
        return Err(HarnessError(format!(
            "node binary {} not found (build it with `cargo build --release -p raftkv-node` or pass --node-bin)",
            node_bin.display()
        )));
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = WorkloadConfig {
        seed,
        concurrency: args.concurrency.unwrap_or(2 * args.nodes as usize).max(1),
        keys: args.keys,
        mix,
        rate: args.rate,
        op_timeout: args.op_timeout,
    };
    let dir = create_run_dir(&args.out, &args.nemesis)?;
    let runtime = raftkv::runtime::build(Some(2))?;
    let result = runtime.block_on(async {
        let nodes = Arc::new(Mutex::new(plan_nodes(&args, node_bin, &dir)?));
        let interrupted = Arc::new(AtomicBool::new(false));
        let outcome = tokio::select! {
            r = run(&args, &config, kinds, &dir, nodes.clone()) => r,
            _ = shutdown_signal() => {
                interrupted.store(true, Ordering::SeqCst);
                Err(HarnessError("interrupted; all nodes stopped".into()))
            }
        };
        // Whatever happened, no node outlives the run.
        nodes.lock().unwrap_or_else(|p| p.into_inner()).kill_all();
        outcome
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let verdict = result?;
    Ok(verdict)
}

/// The run's nodes, not started yet: the proxies need their addresses first.
/// Data dirs are `<run dir>/n<id>`, logs `<run dir>/node-<id>.log`.
fn plan_nodes(args: &Args, node_bin: PathBuf, dir: &Path) -> Result<Cluster, HarnessError> {
    let mut config = ClusterConfig::new(args.nodes as usize, node_bin, dir);
    config.data_dir_prefix = "n".into();
    config.extra_args = args.node_args.clone();
    if std::env::var_os("RUST_LOG").is_none() {
        config.env.push(("RUST_LOG".into(), "info".into()));
    }
    Cluster::new(config).map_err(HarnessError)
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Creates `out/<UTC timestamp>-<nemesis>/` and points `out/latest` at it.
fn create_run_dir(out: &Path, nemesis: &str) -> Result<PathBuf, HarnessError> {
    std::fs::create_dir_all(out)
        .map_err(|e| HarnessError(format!("cannot create {}: {e}", out.display())))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let base = format!(
        "{}-{}",
        utc_timestamp(now.as_secs()),
        nemesis.replace([',', '/'], "+")
    );
    let mut name = base.clone();
    let mut n = 1;
    while out.join(&name).exists() {
        n += 1;
        name = format!("{base}.{n}");
    }
    let dir = out.join(&name);
    std::fs::create_dir(&dir)
        .map_err(|e| HarnessError(format!("cannot create {}: {e}", dir.display())))?;
    let latest = out.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(&name, &latest);
    Ok(dir)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch.
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Waits until some node claims leadership and a write commits.
async fn wait_for_leader(backend: &ClusterBackend, timeout: Duration) -> Result<u64, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(leader) = backend.leader().await
            && backend.probe_write().await
        {
            return Ok(leader);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError(format!(
                "no leader could commit a write within {timeout:?} (see the node logs)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(
    args: &Args,
    config: &WorkloadConfig,
    kinds: Vec<FaultKind>,
    dir: &Path,
    nodes: Arc<Mutex<Cluster>>,
) -> Result<u8, HarnessError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let (seed, concurrency) = (config.seed, config.concurrency);

    // Nodes behind proxies: node i reaches node j through the proxy (i, j).
    let addrs = nodes.lock().unwrap().listen_addrs();
    let proxies = Arc::new(Proxies::start(&addrs).await?);
    {
        let mut nodes = nodes.lock().unwrap();
        for &from in addrs.keys() {
            for &to in addrs.keys() {
                if let Some(proxy) = proxies.address(from, to) {
                    nodes.set_peer_addr(from, to, proxy.to_string());
                }
            }
        }
        nodes.start_all().map_err(HarnessError)?;
    }
    let backend = Arc::new(
        ClusterBackend::connect(&addrs, args.op_timeout)
            .await
            .map_err(HarnessError)?,
    );
    let live = Arc::new(LiveState::default());
    *live.phase.lock().unwrap() = "starting".into();
    let first_leader = wait_for_leader(&backend, args.recovery_timeout).await?;
    live.leader.store(first_leader, Ordering::Relaxed);
    timings.startup_s = started.elapsed().as_secs_f64();

    // Workload and nemesis.
    let rec = Arc::new(Recorder::create(&dir.join("history.jsonl"))?);
    let run_start = Instant::now();
    let deadline = run_start + args.duration;
    *live.phase.lock().unwrap() = "running".into();
    let progress = progress::Progress::start(args.quiet, args.duration, live.clone(), run_start);
    let leader_watch = tokio::spawn(watch_leader(backend.clone(), live.clone()));
    let planner = Planner::new(
        ChaCha8Rng::seed_from_u64(seed.rotate_left(17) ^ 0x6e656d65),
        nodes.lock().unwrap().ids(),
        kinds,
    )
    .leader_only(args.nemesis_target == "leader");
    let nemesis_task = tokio::spawn(nemesis_loop(
        planner,
        nodes.clone(),
        proxies.clone(),
        backend.clone(),
        rec.clone(),
        live.clone(),
        args.nemesis_interval,
        deadline,
    ));
    let counters = live.counters.clone();
    let workers = workload::run_workers(
        backend.clone(),
        rec.clone(),
        counters.clone(),
        config,
        deadline,
    )
    .await;
    let faults = nemesis_task
        .await
        .map_err(|e| HarnessError(format!("nemesis failed: {e}")))??;
    timings.workload_s = run_start.elapsed().as_secs_f64();

    // Heal, recover, read everything.
    *live.phase.lock().unwrap() = "recovering".into();
    let recovery_start = Instant::now();
    proxies.heal();
    let crashes: Vec<(u64, String)> = {
        let mut nodes = nodes.lock().unwrap();
        let crashes = nodes.crashed();
        nodes.heal().map_err(HarnessError)?;
        crashes
            .into_iter()
            .map(|(id, status)| (id, status.to_string()))
            .collect()
    };
    for (id, status) in &crashes {
        rec.record(
            NEMESIS,
            EventType::Info,
            "crashed",
            None,
            json!({ "node": id, "status": status }),
            None,
        );
        eprintln!("harness run: node {id} exited on its own ({status}); restarted it");
    }
    rec.record(
        NEMESIS,
        EventType::Info,
        "heal-all",
        None,
        json!(null),
        None,
    );
    let recovered = wait_for_leader(&backend, args.recovery_timeout).await;
    timings.recovery_s = recovery_start.elapsed().as_secs_f64();
    *live.phase.lock().unwrap() = "final reads".into();
    let reads_start = Instant::now();
    let reads = workload::final_reads(
        workers,
        backend.clone(),
        rec.clone(),
        counters.clone(),
        config,
        Instant::now() + args.recovery_timeout,
    )
    .await;
    timings.final_reads_s = reads_start.elapsed().as_secs_f64();
    let proxied_connections = proxies.forwarded_connections();
    leader_watch.abort();
    progress.finish();
    rec.flush()?;
    nodes.lock().unwrap().kill_all();
    drop(proxies);

    // Check.
    let check_start = Instant::now();
    let history_path = dir.join("history.jsonl");
    let time_limit = args.check_time_limit;
    let outcome = tokio::task::spawn_blocking(move || {
        let options = raftkv_checker::CheckOptions {
            time_limit: Some(time_limit),
            ..raftkv_checker::CheckOptions::default()
        };
        raftkv_checker::check_file(&history_path, &options)
    })
    .await
    .map_err(|e| HarnessError(format!("checker failed: {e}")))?
    .map_err(|e| HarnessError(format!("checker: {e}")))?;
    timings.check_s = check_start.elapsed().as_secs_f64();
    timings.total_s = started.elapsed().as_secs_f64();

    let events = rec.events();
    let mut notes = Vec::new();
    if let Err(e) = &recovered {
        notes.push(format!("after healing: {}", e.0));
    }
    let expected_reads = concurrency as u32 * args.keys;
    if reads < expected_reads {
        notes.push(format!(
            "final reads: {reads} of {expected_reads} succeeded"
        ));
    }
    for (id, status) in &crashes {
        notes.push(format!("node {id} exited on its own ({status})"));
    }
    let mut summary = summary::build(
        &summary::RunInfo {
            args,
            seed,
            concurrency,
            nemesis_kinds: faults.kinds_used,
            run_dir: dir,
            timings: timings.clone(),
            notes,
            proxied_connections,
            workload_duration: Duration::from_secs_f64(timings.workload_s),
        },
        &events,
        &outcome,
    );
    let (node_checks, exit_code) =
        node_logs::check_into_summary(dir, outcome.exit_code(), &mut summary)
            .map_err(HarnessError)?;
    summary::write(dir, &summary)?;
    report::write(dir, &summary, &events, &outcome)?;
    println!("{}", summary::human(&summary, &outcome));
    println!("{}", node_checks.summary());
    println!("run directory: {}", dir.display());
    Ok(exit_code)
}

async fn watch_leader(backend: Arc<ClusterBackend>, live: Arc<LiveState>) {
    loop {
        let leader = backend.leader().await.unwrap_or(0);
        live.leader.store(leader, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the nemesis did.
pub struct NemesisReport {
    pub kinds_used: Vec<String>,
}

/// Alternates quiet and fault periods until `deadline`, then heals the
/// fault in progress.
#[allow(clippy::too_many_arguments)]
async fn nemesis_loop(
    mut planner: Planner,
    nodes: Arc<Mutex<Cluster>>,
    proxies: Arc<Proxies>,
    backend: Arc<ClusterBackend>,
    rec: Arc<Recorder>,
    live: Arc<LiveState>,
    interval: Duration,
    deadline: Instant,
) -> Result<NemesisReport, HarnessError> {
    let mut kinds_used = std::collections::BTreeSet::new();
    let sleep_until = |t: Instant| tokio::time::sleep_until(tokio::time::Instant::from_std(t));
    loop {
        let quiet_end = Instant::now() + interval;
        if quiet_end >= deadline {
            break;
        }
        sleep_until(quiet_end).await;
        let leader = backend.leader().await;
        let Some(fault) = planner.next(leader) else {
            break;
        };
        kinds_used.insert(fault.kind().name().to_string());
        apply(&fault, &nodes, &proxies)?;
        rec.record(
            NEMESIS,
            EventType::Info,
            fault.start_f(),
            None,
            fault.value(),
            None,
        );
        *live.last_fault.lock().unwrap() = fault.to_string();
        sleep_until((Instant::now() + interval).min(deadline)).await;
        heal(&fault, &nodes, &proxies)?;
        rec.record(
            NEMESIS,
            EventType::Info,
            fault.stop_f(),
            None,
            fault.value(),
            None,
        );
        *live.last_fault.lock().unwrap() = format!("healed: {fault}");
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(NemesisReport {
        kinds_used: kinds_used.into_iter().collect(),
    })
}

/// Starts `fault`. A node that is already down (it crashed) is left alone.
fn apply(fault: &Fault, nodes: &Mutex<Cluster>, proxies: &Proxies) -> Result<(), HarnessError> {
    match fault {
        Fault::Kill { nodes: ids, .. } => {
            let mut nodes = nodes.lock().unwrap();
            for &id in ids {
                nodes.kill(id).map_err(HarnessError)?;
            }
        }
        Fault::Pause { nodes: ids, .. } => {
            let mut nodes = nodes.lock().unwrap();
            for &id in ids {
                if nodes.state(id) == NodeState::Running {
                    nodes.pause(id).map_err(HarnessError)?;
                }
            }
        }
        Fault::Partition { cut, .. } => proxies.set_cut(cut),
    }
    Ok(())
}

/// Ends `fault`: killed nodes start again on their data dirs and ports,
/// paused ones continue.
fn heal(fault: &Fault, nodes: &Mutex<Cluster>, proxies: &Proxies) -> Result<(), HarnessError> {
    match fault {
        Fault::Kill { nodes: ids, .. } => {
            let mut nodes = nodes.lock().unwrap();
            for &id in ids {
                if nodes.state(id) == NodeState::Down {
                    nodes.start(id).map_err(HarnessError)?;
                }
            }
        }
        Fault::Pause { nodes: ids, .. } => {
            let mut nodes = nodes.lock().unwrap();
            for &id in ids {
                if nodes.state(id) == NodeState::Paused {
                    nodes.resume(id).map_err(HarnessError)?;
                }
            }
        }
        Fault::Partition { .. } => proxies.heal(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(utc_timestamp(0), "19700101T000000Z");
        // 2026-11-27 03:30:54 UTC
        assert_eq!(utc_timestamp(1_795_750_254), "20261127T033054Z");
        assert_eq!(utc_timestamp(951_782_400), "20000229T000000Z");
    }
}
