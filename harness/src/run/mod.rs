//! `harness run`: Jepsen-style fault injection against real node processes.
//!
//! A run starts N `node` processes whose peer traffic goes through per-link
//! proxies ([`proxy`]), runs concurrent logical clients, each bound to a
//! node ([`workload`], [`backend`]), while a seeded nemesis kills, pauses,
//! partitions and slows nodes and links on a dense, overlapping schedule
//! ([`faults`]), records every operation ([`recorder`]) and audits what
//! every node commits, heals everything, lets every client read every key,
//! compares the nodes' applied entries and states, stops the nodes and
//! checks the history for linearizability, the answers against the
//! committed log and the nodes' logs for broken invariants ([`checks`]). The run
//! directory gets `history.jsonl`, `summary.json`, the node logs and
//! `report.html` ([`summary`], [`report`]); the nodes' data directories stay
//! only when the run fails or `--keep-data` asks for them.
//!
//! What the run needs from the system under test beyond its processes and
//! network is in [`target`]. Exit codes are those of [`checks`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

pub mod args;
pub mod backend;
pub mod checks;
pub mod fault_timeline;
pub mod faults;
pub mod perf_plots;
pub mod progress;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod rundir;
pub mod summary;
pub mod target;
pub mod watch;
pub mod workload;

pub use args::{Args, parse_duration};
pub use checks::node_logs;

use crate::cluster::{Cluster, ClusterConfig};
use args::Settings;
use backend::ClusterBackend;
use checks::Findings;
use checks::log_audit::LogAudit;
use faults::Family;
use faults::nemesis::{Nemesis, NemesisReport};
use faults::power::{self, LazyDataDirs, PowerCut};
use faults::schedule::{self, ScheduleConfig};
use proxy::Proxies;
use recorder::{EventType, NEMESIS, Recorder};
use target::{Observe, RaftkvObserver, leader_of};
use watch::ClusterWatch;
use workload::{Counters, WorkloadConfig};

/// Exit code of a harness error (bad flags, a node that will not start...).
pub const EXIT_HARNESS_ERROR: u8 = 3;

/// How long the nemesis and the leader watch wait for one node's status.
const STATUS_TIMEOUT: Duration = Duration::from_millis(250);

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
    pub convergence_s: f64,
    pub check_s: f64,
    pub total_s: f64,
}

/// A run's fixed inputs.
struct Context {
    args: Args,
    settings: Settings,
    seed: u64,
    dir: PathBuf,
    /// Why a fault family asked for by `all` was left out.
    left_out: Option<String>,
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
    let mut settings = args::validate(&args).map_err(HarnessError)?;
    let left_out = power::settle(
        &mut settings.families,
        args.nemesis.trim() != "all",
        power::check_available(),
    )
    .map_err(HarnessError)?;
    if let Some(note) = &left_out {
        eprintln!("harness run: {note}");
    }
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
    let dir = rundir::create(&args.out, &args.nemesis)?;
    println!("harness run: seed {seed}, run directory {}", dir.display());
    let ctx = Context {
        args,
        settings,
        seed,
        dir,
        left_out,
    };
    let runtime = raftkv::runtime::build(Some(2))?;
    let result = runtime.block_on(async {
        let nodes = Arc::new(Mutex::new(plan_nodes(&ctx.args, node_bin, &ctx.dir)?));
        let lazy = if ctx.settings.families.contains(&Family::Power) {
            Some(Arc::new(mount_lazy_dirs(&nodes.lock().unwrap(), &ctx.dir)?))
        } else {
            None
        };
        let interrupted = Arc::new(AtomicBool::new(false));
        let outcome = tokio::select! {
            r = run(&ctx, nodes.clone(), lazy.clone()) => r,
            _ = shutdown_signal() => {
                interrupted.store(true, Ordering::SeqCst);
                Err(HarnessError("interrupted; all nodes stopped".into()))
            }
        };
        // Whatever happened, no node outlives the run, and no mount
        // outlives its nodes.
        nodes.lock().unwrap_or_else(|p| p.into_inner()).kill_all();
        if let Some(lazy) = lazy
            && let Err(e) = lazy.unmount()
        {
            eprintln!("harness run: {e}");
        }
        outcome
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The run's nodes, not started yet: the proxies need their addresses first.
/// Data dirs are `<run dir>/n<id>`, logs `<run dir>/node-<id>.log`.
fn plan_nodes(args: &Args, node_bin: PathBuf, dir: &Path) -> Result<Cluster, HarnessError> {
    let mut config = ClusterConfig::new(args.nodes as usize, node_bin, dir);
    config.data_dir_prefix = "n".into();
    config.extra_args = target::raftkv_node_args(&args.node_args);
    if std::env::var_os("RUST_LOG").is_none() {
        config.env.push(("RUST_LOG".into(), "info".into()));
    }
    Cluster::new(config).map_err(HarnessError)
}

/// Serves every node's data dir from a lazy filesystem backed by
/// `<run dir>/backing/n<id>`, for power cuts.
fn mount_lazy_dirs(nodes: &Cluster, dir: &Path) -> Result<LazyDataDirs, HarnessError> {
    let data_dirs = nodes
        .ids()
        .iter()
        .map(|&id| (id, nodes.data_dir(id)))
        .collect();
    LazyDataDirs::mount(&data_dirs, &dir.join(BACKING_DIR), dir).map_err(HarnessError)
}

/// Where the run directory keeps the durable state of lazy data dirs.
const BACKING_DIR: &str = "backing";

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

/// Starts the proxies, then every node behind them: node i reaches node j
/// through the proxy (i, j).
async fn start_cluster(nodes: &Mutex<Cluster>) -> Result<Arc<Proxies>, HarnessError> {
    let addrs = nodes.lock().unwrap().listen_addrs();
    let proxies = Arc::new(Proxies::start(&addrs).await?);
    let mut nodes = nodes.lock().unwrap();
    for &from in addrs.keys() {
        for &to in addrs.keys() {
            if let Some(proxy) = proxies.address(from, to) {
                nodes.set_peer_addr(from, to, proxy.to_string());
            }
        }
    }
    nodes.start_all().map_err(HarnessError)?;
    Ok(proxies)
}

/// Waits until some node claims leadership and a write commits.
async fn wait_for_leader<O: Observe>(
    backend: &ClusterBackend,
    observer: &O,
    timeout: Duration,
) -> Result<u64, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((leader, _)) = leader_of(&observer.views().await)
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

/// What the workload phase produced.
struct Workload {
    workers: Vec<workload::Worker<ClusterBackend>>,
    nemesis: NemesisReport,
    planned: usize,
}

async fn run(
    ctx: &Context,
    nodes: Arc<Mutex<Cluster>>,
    lazy: Option<Arc<LazyDataDirs>>,
) -> Result<u8, HarnessError> {
    let args = &ctx.args;
    let started = Instant::now();
    let mut timings = Timings::default();
    let proxies = start_cluster(&nodes).await?;
    let addrs = nodes.lock().unwrap().listen_addrs();
    let backend = Arc::new(
        ClusterBackend::connect(&addrs, args.op_timeout, ctx.seed, ctx.settings.concurrency)
            .await
            .map_err(HarnessError)?,
    );
    let observer = Arc::new(
        RaftkvObserver::connect(&addrs, STATUS_TIMEOUT)
            .await
            .map_err(HarnessError)?,
    );
    let live = Arc::new(LiveState::default());
    *live.phase.lock().unwrap() = "starting".into();
    let first_leader = wait_for_leader(&backend, observer.as_ref(), args.recovery_timeout).await?;
    live.leader.store(first_leader, Ordering::Relaxed);
    timings.startup_s = started.elapsed().as_secs_f64();

    let config = WorkloadConfig {
        seed: ctx.seed,
        concurrency: ctx.settings.concurrency,
        keys: args.keys,
        mix: ctx.settings.mix,
        rate: args.rate,
        op_timeout: args.op_timeout,
    };
    let rec = Arc::new(Recorder::create(&ctx.dir.join("history.jsonl"))?);
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let watch = ClusterWatch::new(rec.origin());
    let watcher = tokio::spawn(
        watch
            .clone()
            .poll(observer.clone(), Duration::from_millis(100)),
    );
    let leader_display = tokio::spawn(show_leader(watch.clone(), live.clone()));
    let node_ids = nodes.lock().unwrap().ids();
    let audit = LogAudit::new(rec.origin());
    let auditor = tokio::spawn(audit.clone().poll(observer.clone(), node_ids.clone()));

    let power = lazy.clone().map(|l| l as Arc<dyn PowerCut>);
    let workload = run_workload(
        ctx, &config, &nodes, &proxies, &backend, &observer, &watch, &rec, &live, power,
    )
    .await?;
    timings.workload_s = rec.origin().elapsed().as_secs_f64();
    let workload_ok = live.counters.ok.load(Ordering::Relaxed);

    // Heal, recover, read everything, compare the nodes.
    *live.phase.lock().unwrap() = "recovering".into();
    let recovery_start = Instant::now();
    proxies.heal();
    nodes.lock().unwrap().heal().map_err(HarnessError)?;
    rec.record(
        NEMESIS,
        EventType::Info,
        "heal-all",
        None,
        json!(null),
        None,
    );
    let recovered = wait_for_leader(&backend, observer.as_ref(), args.recovery_timeout).await;
    timings.recovery_s = recovery_start.elapsed().as_secs_f64();
    *live.phase.lock().unwrap() = "final reads".into();
    let reads_start = Instant::now();
    let reads = workload::final_reads(
        workload.workers,
        backend.clone(),
        rec.clone(),
        live.counters.clone(),
        &config,
        Instant::now() + args.recovery_timeout,
    )
    .await;
    timings.final_reads_s = reads_start.elapsed().as_secs_f64();
    *live.phase.lock().unwrap() = "comparing nodes".into();
    let convergence_start = Instant::now();
    let convergence = checks::convergence::check(observer.as_ref(), args.recovery_timeout).await;
    timings.convergence_s = convergence_start.elapsed().as_secs_f64();
    // One more look at the healed nodes, for what they committed last.
    auditor.abort();
    audit.round(observer.as_ref(), &node_ids).await;
    watcher.abort();
    leader_display.abort();
    let proxied_connections = proxies.forwarded_connections();
    rec.flush()?;
    let mut crashes = workload.nemesis.crashes.clone();
    {
        let mut nodes = nodes.lock().unwrap();
        // A node that exited during recovery counts as well.
        for (node, status) in nodes.crashed() {
            crashes.push(faults::nemesis::Crash::new(
                node,
                status.to_string(),
                rec.origin().elapsed().as_secs_f64(),
                &nodes.log_path(node),
            ));
        }
        nodes.kill_all();
    }
    // Unmounted, the backing directories hold what the nodes made durable.
    let mut notes = Vec::new();
    notes.extend(ctx.left_out.clone());
    if let Some(lazy) = &lazy
        && let Err(e) = lazy.unmount()
    {
        notes.push(e);
    }
    drop(proxies);
    // The progress display ends with the workload (see run_workload).

    // Check.
    *live.phase.lock().unwrap() = "checking".into();
    let check_start = Instant::now();
    let history =
        checks::history::check(ctx.dir.join("history.jsonl"), args.check_time_limit).await?;
    let node_logs = checks::node_logs::check_run_dir(&ctx.dir).map_err(HarnessError)?;
    timings.check_s = check_start.elapsed().as_secs_f64();
    timings.total_s = started.elapsed().as_secs_f64();
    let events = rec.events();
    let log_order = checks::log_order::check(&events);
    let log_audit = audit.check(&events);
    let findings = Findings {
        history,
        convergence,
        node_logs,
        log_order,
        log_audit,
        crashes,
        workload_ok_ops: workload_ok,
    };

    if let Err(e) = &recovered {
        notes.push(format!("after healing: {}", e.0));
    }
    let expected_reads = config.concurrency as u32 * args.keys;
    if reads < expected_reads {
        notes.push(format!(
            "final reads: {reads} of {expected_reads} succeeded"
        ));
    }
    let exit_code = findings.exit_code();
    let keep_data = exit_code != 0 || args.keep_data;
    let mut data_dirs: Vec<PathBuf> = {
        let nodes = nodes.lock().unwrap();
        nodes.ids().iter().map(|&id| nodes.data_dir(id)).collect()
    };
    if lazy.is_some() {
        data_dirs.push(ctx.dir.join(BACKING_DIR));
    }
    if !keep_data {
        match rundir::remove_data(&data_dirs) {
            Ok(_) => {}
            Err(e) => notes.push(e),
        }
    }
    let first_anomaly = findings.first_anomaly_s(&events, started_unix_s, timings.workload_s);
    let argv: Vec<String> = std::env::args().collect();
    let reproduce = rundir::reproduce_command(&argv, ctx.seed);
    let mut summary = summary::build(
        &summary::RunInfo {
            args,
            seed: ctx.seed,
            concurrency: config.concurrency,
            nemesis: &workload.nemesis,
            planned_faults: workload.planned,
            run_dir: &ctx.dir,
            timings: timings.clone(),
            notes,
            proxied_connections,
            workload_duration: Duration::from_secs_f64(timings.workload_s),
            started_unix_s,
            reproduce: &reproduce,
            data_kept: keep_data,
        },
        &events,
        &findings.history,
    );
    summary["leaders"] = watch.changes_json();
    summary["cas"] = summary::cas_json(&live.counters);
    summary["node_checks"] = findings.node_logs.to_json();
    summary["convergence"] = findings.convergence.to_json();
    summary["log_order"] = findings.log_order.to_json();
    summary["log_audit"] = findings.log_audit.to_json();
    summary["crashes"] = findings.crashes_json(&ctx.dir);
    summary["verdict_text"] = findings.verdict().into();
    summary["first_anomaly_s"] = first_anomaly.into();
    summary["exit_code"] = exit_code.into();
    summary::write(&ctx.dir, &summary)?;
    report::write(&ctx.dir, &summary, &events, &findings.history)?;
    print_outcome(ctx, &summary, &findings, first_anomaly, &reproduce);
    Ok(exit_code)
}

/// Runs the clients and the nemesis until the end of `--duration`.
#[allow(clippy::too_many_arguments)]
async fn run_workload(
    ctx: &Context,
    config: &WorkloadConfig,
    nodes: &Arc<Mutex<Cluster>>,
    proxies: &Arc<Proxies>,
    backend: &Arc<ClusterBackend>,
    observer: &Arc<RaftkvObserver>,
    watch: &Arc<ClusterWatch>,
    rec: &Arc<Recorder>,
    live: &Arc<LiveState>,
    power: Option<Arc<dyn PowerCut>>,
) -> Result<Workload, HarnessError> {
    let args = &ctx.args;
    let origin = rec.origin();
    let deadline = origin + args.duration;
    *live.phase.lock().unwrap() = "running".into();
    let progress = progress::Progress::start(args.quiet, args.duration, live.clone(), origin);
    let schedule = schedule::draw(
        ctx.seed.rotate_left(17) ^ 0x6e65_6d65,
        &ScheduleConfig {
            families: ctx.settings.families.clone(),
            targets: ctx.settings.targets,
            nodes: args.nodes as usize,
            torn_writes: true,
            length: args.duration,
            mean_gap: args.nemesis_interval,
        },
    );
    let planned = schedule.len();
    let nemesis = Nemesis::new(
        nodes.clone(),
        proxies.clone(),
        observer.clone(),
        watch.clone(),
        rec.clone(),
        live.clone(),
        origin,
        deadline,
        Some(target::raftkv_tear_tail),
        power,
    );
    let nemesis_task = tokio::spawn(nemesis.run(schedule));
    let workers = workload::run_workers(
        backend.clone(),
        rec.clone(),
        live.counters.clone(),
        config,
        deadline,
    )
    .await;
    let nemesis = nemesis_task
        .await
        .map_err(|e| HarnessError(format!("nemesis failed: {e}")))?;
    progress.finish();
    Ok(Workload {
        workers,
        nemesis,
        planned,
    })
}

/// Keeps the progress line's leader current.
async fn show_leader(watch: Arc<ClusterWatch>, live: Arc<LiveState>) {
    let mut rx = watch.subscribe();
    loop {
        let leader = rx.borrow_and_update().leader.map_or(0, |(id, _)| id);
        live.leader.store(leader, Ordering::Relaxed);
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The summary lines, the checks, and the one-line verdict.
fn print_outcome(
    ctx: &Context,
    summary: &serde_json::Value,
    findings: &Findings,
    first_anomaly: Option<f64>,
    reproduce: &str,
) {
    println!("{}", summary::human(summary, &findings.history));
    println!("{}", findings.convergence.summary());
    println!("{}", findings.node_logs.summary());
    println!("{}", findings.log_order.summary());
    println!("{}", findings.log_audit.summary());
    for crash in findings.crash_reports(&ctx.dir) {
        println!("{crash}");
    }
    let ops = summary["counts"].as_object().map_or(0, |c| {
        c.values()
            .map(|v| {
                v["ok"].as_u64().unwrap_or(0)
                    + v["fail"].as_u64().unwrap_or(0)
                    + v["info"].as_u64().unwrap_or(0)
            })
            .sum::<u64>()
    });
    let faults = summary["nemesis"]["applied"].as_u64().unwrap_or(0);
    let verdict = match findings.exit_code() {
        0 => "PASS".to_string(),
        1 => format!("FAIL: {}", findings.verdict()),
        EXIT_HARNESS_ERROR => format!("ERROR: {}", findings.verdict()),
        _ => format!("UNKNOWN: {}", findings.verdict()),
    };
    let anomaly = first_anomaly.map_or(String::new(), |t| format!(", first anomaly at {t:.1} s"));
    println!(
        "verdict: {verdict}; {ops} ops, {faults} faults{anomaly}; report {}; reproduce: {reproduce}",
        ctx.dir.join("report.html").display()
    );
}
