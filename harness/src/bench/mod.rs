//! `harness bench`: throughput and latency of a cluster under a closed loop
//! of concurrent clients.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use raftkv::client::{Client, ClientOptions};
use rand::{Rng, SeedableRng};

use crate::cluster::{Cluster, ClusterConfig, find_node_bin};
use crate::run::parse_duration;

mod etcd;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EtcdMembers {
    /// Only the member that leads when the bench starts.
    Leader,
    /// Every member given by --cluster.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// raftkv nodes (a local cluster, or --cluster).
    Raftkv,
    /// An etcd v3 cluster given by --cluster (client URLs as HOST:PORT); the
    /// same load through etcd's KV Put and linearizable Range.
    Etcd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OpKind {
    Set,
    Get,
    /// Half gets, half sets.
    Mixed,
}

#[derive(clap::Args)]
pub struct Args {
    /// Nodes of the local cluster to start (ignored with --cluster).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Requests in flight: one client session each.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to measure, e.g. 10s, 500ms, 2m (a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_duration, allow_hyphen_values = true)]
    duration: Duration,
    /// Unmeasured run before measuring (lets connections and leader settle).
    #[arg(long, default_value = "1s", value_parser = parse_duration, allow_hyphen_values = true)]
    warmup: Duration,
    #[arg(long, value_enum, default_value_t = OpKind::Set)]
    op: OpKind,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// gRPC connections per node, shared round-robin by the clients. Over a
    /// single connection a closed loop tends to move in lock-step (every
    /// reply arrives in one read, every next request leaves in one write),
    /// so the load generator and the servers take turns instead of
    /// overlapping; a few connections, like a few client processes, avoid
    /// that.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Target an existing cluster (HOST:PORT,...) instead of starting one.
    #[arg(long, value_name = "ADDRS", value_delimiter = ',')]
    cluster: Vec<String>,
    /// The `node` executable; default: the one beside `harness`.
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Keep the local cluster's data and logs in DIR (default: a temporary dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Extra flags passed to every local node, e.g. --node-arg=--tick-ms=5.
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// The system to load.
    #[arg(long, value_enum, default_value_t = Target::Raftkv)]
    target: Target,
    /// With --target etcd: send every request to the leader (as raftkv's
    /// client does; followers would forward it), or spread the clients over
    /// all members of --cluster.
    #[arg(long, value_enum, default_value_t = EtcdMembers::Leader)]
    etcd_members: EtcdMembers,
    /// Threads of the load generator; default: this machine's CPUs split
    /// evenly among it and the nodes (at least one).
    #[arg(long)]
    client_threads: Option<usize>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn main(mut args: Args) -> ExitCode {
    if let Err(e) = validate(&args) {
        return crate::usage_error(&e);
    }
    let nodes = if args.cluster.is_empty() {
        args.nodes
    } else {
        args.cluster.len()
    };
    let threads = args
        .client_threads
        .unwrap_or_else(|| crate::cluster::threads_per_share(nodes + 1));
    args.client_threads = Some(threads);
    crate::run_to_exit_code_on(Some(threads), run(args))
}

/// Measured figures of one run.
#[derive(Debug)]
pub struct Report {
    ops: u64,
    definite_errors: u64,
    indeterminate_errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Report {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn validate(args: &Args) -> Result<(), String> {
    if args.concurrency == 0 || args.connections == 0 || args.client_threads == Some(0) {
        return Err("--concurrency, --connections and --client-threads must be at least 1".into());
    }
    if args.keys == 0 || args.key_size == 0 {
        return Err("--keys and --key-size must be at least 1".into());
    }
    if args.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if args.target == Target::Etcd && args.cluster.is_empty() {
        return Err("--target etcd needs --cluster with the etcd client addresses".into());
    }
    for addr in &args.cluster {
        raftkv::client::check_address(addr).map_err(|e| format!("--cluster: {e}"))?;
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    let mut _cluster_guard = None;
    let mut _temp = None;
    let addrs = if args.cluster.is_empty() {
        let node_bin = find_node_bin(args.node_bin.as_deref())?;
        let dir = match &args.data_dir {
            Some(d) => d.clone(),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("raftkv-bench-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
                let p = t.path().to_path_buf();
                _temp = Some(t);
                p
            }
        };
        let mut config = ClusterConfig::new(args.nodes, node_bin, &dir);
        config.extra_args = args.node_args.clone();
        let mut cluster = Cluster::new(config)?;
        cluster.start_all()?;
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
        if !args.json {
            eprintln!(
                "started {} nodes ({}); leader node {leader}",
                args.nodes,
                cluster.client_addrs().join(",")
            );
        }
        let addrs = cluster.client_addrs();
        _cluster_guard = Some(cluster);
        addrs
    } else {
        args.cluster.clone()
    };
    let report = measure(&args, &addrs).await?;
    if let Some(mut cluster) = _cluster_guard.take() {
        cluster.stop_all(Duration::from_secs(2));
    }
    print_report(&args, &report);
    Ok(())
}

async fn measure(args: &Args, addrs: &[String]) -> Result<Report, String> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        overall_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let mut roots = Vec::with_capacity(args.connections);
    let mut etcd_roots = Vec::new();
    match args.target {
        Target::Raftkv => {
            for _ in 0..args.connections {
                roots.push(
                    Client::connect(addrs, options.clone())
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            require_reachable(&roots[0]).await?;
        }
        Target::Etcd => {
            let members = match args.etcd_members {
                EtcdMembers::Leader => {
                    vec![etcd::find_leader(addrs, options.request_timeout).await?]
                }
                EtcdMembers::All => addrs.to_vec(),
            };
            if !args.json {
                println!("etcd members loaded: {}", members.join(","));
            }
            // `connections` channels to each member the clients use.
            for _ in 0..args.connections {
                for addr in &members {
                    etcd_roots.push(etcd::EtcdKv::connect_lazy(addr, options.request_timeout)?);
                }
            }
        }
    }
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let value_size = args.value_size;
    let mut workers = Vec::with_capacity(args.concurrency);
    for w in 0..args.concurrency {
        let mut client = match args.target {
            Target::Raftkv => Worker::Raftkv(roots[w % roots.len()].fork()),
            Target::Etcd => Worker::Etcd(etcd_roots[w % etcd_roots.len()].clone()),
        };
        let (op, keys, key_size) = (args.op, args.keys, args.key_size);
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut ops, mut definite, mut indeterminate) = (0u64, 0u64, 0u64);
            let mut rng = rand::rngs::SmallRng::from_os_rng();
            let value = vec![b'v'; value_size];
            loop {
                let key = format!("{:0width$}", rng.random_range(0..keys), width = key_size);
                let read = match op {
                    OpKind::Set => false,
                    OpKind::Get => true,
                    OpKind::Mixed => rng.random_bool(0.5),
                };
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = client.run(read, key, &value).await;
                let done = Instant::now();
                if sent < measure_from || done > end {
                    continue;
                }
                match result {
                    Ok(()) => {
                        ops += 1;
                        let us = (done - sent).as_micros().max(1) as u64;
                        let _ = hist.record(us.min(60_000_000));
                    }
                    Err(true) => definite += 1,
                    Err(false) => indeterminate += 1,
                }
            }
            (hist, ops, definite, indeterminate)
        }));
    }
    let mut report = Report {
        ops: 0,
        definite_errors: 0,
        indeterminate_errors: 0,
        elapsed: args.duration,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    };
    for worker in workers {
        let (hist, ops, definite, indeterminate) = worker
            .await
            .map_err(|e| format!("a bench worker failed: {e}"))?;
        report.latency_us.add(&hist).map_err(|e| e.to_string())?;
        report.ops += ops;
        report.definite_errors += definite;
        report.indeterminate_errors += indeterminate;
    }
    if report.ops == 0 {
        return Err(format!(
            "no request succeeded during the {} s measured ({} definite and {} indeterminate \
             errors); is the cluster at {} up and does it have a leader?",
            args.duration.as_secs_f64(),
            report.definite_errors,
            report.indeterminate_errors,
            addrs.join(",")
        ));
    }
    Ok(report)
}

/// Fails with every node's answer unless some node of the cluster answers
/// `Status`, so that a wrong address is reported at once instead of as a
/// run without results.
async fn require_reachable(client: &Client) -> Result<(), String> {
    let statuses = client.status_all().await;
    if statuses.iter().any(|s| s.status.is_ok()) {
        return Ok(());
    }
    let why: Vec<String> = statuses
        .iter()
        .map(|s| match &s.status {
            Ok(_) => format!("{}: ok", s.addr),
            Err(e) => format!("{}: {e}", s.addr),
        })
        .collect();
    Err(format!("no node answered: {}", why.join("; ")))
}

/// One closed-loop client of the system under test.
enum Worker {
    Raftkv(Client),
    Etcd(etcd::EtcdKv),
}

impl Worker {
    /// One read or write; an error says whether it was definite (nothing
    /// applied). etcd errors are counted as indeterminate.
    async fn run(&mut self, read: bool, key: String, value: &[u8]) -> Result<(), bool> {
        match self {
            Worker::Raftkv(client) => {
                let result = if read {
                    client.get(key).await.map(|_| ())
                } else {
                    client.set(key, value.to_vec()).await.map(|_| ())
                };
                result.map_err(|e| e.is_definite())
            }
            Worker::Etcd(kv) => {
                let result = if read {
                    kv.get(key.into_bytes()).await.map(|_| ())
                } else {
                    kv.put(key.into_bytes(), value.to_vec()).await
                };
                result.map_err(|_| false)
            }
        }
    }
}

fn print_report(args: &Args, r: &Report) {
    let op = format!("{:?}", args.op).to_lowercase();
    if args.json {
        let json = serde_json::json!({
            "target": format!("{:?}", args.target).to_lowercase(),
            "etcd_members": (args.target == Target::Etcd)
                .then(|| format!("{:?}", args.etcd_members).to_lowercase()),
            "op": op,
            "nodes": if args.cluster.is_empty() { args.nodes } else { args.cluster.len() },
            "concurrency": args.concurrency,
            "connections": args.connections,
            "client_threads": args.client_threads,
            "duration_s": r.elapsed.as_secs_f64(),
            "value_size": args.value_size,
            "key_size": args.key_size,
            "keys": args.keys,
            "ops": r.ops,
            "ops_per_s": r.throughput(),
            "errors_definite": r.definite_errors,
            "errors_indeterminate": r.indeterminate_errors,
            "latency_ms": {
                "mean": r.latency_us.mean() / 1000.0,
                "p50": r.ms(0.5),
                "p99": r.ms(0.99),
                "p999": r.ms(0.999),
                "max": r.latency_us.max() as f64 / 1000.0,
            },
        });
        println!("{json}");
    } else {
        println!(
            "{} {op}: {} ok in {:.1}s = {:.0} ops/s; errors: {} definite, {} indeterminate",
            format!("{:?}", args.target).to_lowercase(),
            r.ops,
            r.elapsed.as_secs_f64(),
            r.throughput(),
            r.definite_errors,
            r.indeterminate_errors
        );
        println!(
            "latency ms: mean {:.2} p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}",
            r.latency_us.mean() / 1000.0,
            r.ms(0.5),
            r.ms(0.99),
            r.ms(0.999),
            r.latency_us.max() as f64 / 1000.0
        );
    }
}
