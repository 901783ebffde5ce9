//! `harness cluster`: runs a local cluster until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cluster::{Cluster, ClusterConfig, NodeState, find_node_bin};

#[derive(clap::Args)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Node i listens on 127.0.0.1:BASE_PORT+i-1; default: free ports.
    #[arg(long)]
    base_port: Option<u16>,
    /// Data and logs go to DIR/node-N and DIR/node-N.log, and are kept;
    /// default: a temporary directory removed on exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The `node` executable; default: the one beside `harness`.
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// How long to wait for a leader (e.g. 20s, 500ms).
    #[arg(long, default_value = "20s", value_parser = raftkv::duration::parse, allow_hyphen_values = true)]
    leader_timeout: Duration,
    /// Extra flags passed to every node, e.g. --node-arg=--heartbeat-ms=20.
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

pub fn main(args: Args) -> ExitCode {
    if let Err(e) = validate(&args) {
        return crate::usage_error(&e);
    }
    crate::run_to_exit_code(run(args))
}

fn validate(args: &Args) -> Result<(), String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if let Some(base) = args.base_port {
        if base == 0 {
            return Err(
                "--base-port must be a port number from 1 (omit it to pick free ports)".into(),
            );
        }
        let last = base as usize + args.nodes - 1;
        if last > u16::MAX as usize {
            return Err(format!(
                "--base-port {base} with {} nodes needs ports up to {last}, beyond 65535",
                args.nodes
            ));
        }
    }
    if args.leader_timeout.is_zero() {
        return Err("--leader-timeout must be positive".into());
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let node_bin = find_node_bin(args.node_bin.as_deref())?;
    let (dir, temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("raftkv-cluster-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let mut config = ClusterConfig::new(args.nodes, node_bin, &dir);
    config.base_port = args.base_port;
    config.extra_args = args.node_args.clone();
    // Signal handlers go in before any node starts, so a SIGTERM that
    // arrives during start-up still stops everything.
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut cluster = Cluster::new(config)?;
    // A failure before the cluster serves keeps the data and logs (also a
    // temporary directory) so that the nodes' own errors can be read.
    let keep_on_failure = |temp: Option<tempfile::TempDir>| -> String {
        match temp {
            Some(t) => format!("; logs kept in {}", t.keep().display()),
            None => format!("; logs in {}", dir.display()),
        }
    };
    if let Err(e) = cluster.start_all() {
        cluster.stop_all(Duration::from_secs(2));
        return Err(format!("{e}{}", keep_on_failure(temp)));
    }
    for id in cluster.ids() {
        println!(
            "node {id}: {} (pid {}, log {})",
            cluster.listen_addr(id),
            cluster.pid(id).unwrap_or(0),
            cluster.log_path(id).display()
        );
    }
    println!("data: {}", dir.display());
    println!("cluster: {}", cluster.client_addrs().join(","));
    let wait = cluster.wait_for_leader(args.leader_timeout);
    let leader = tokio::select! {
        r = wait => Some(r),
        _ = sigterm.recv() => None,
        _ = sigint.recv() => None,
    };
    match leader {
        None => {
            println!("stopping");
            cluster.stop_all(Duration::from_secs(2));
            return Ok(());
        }
        Some(Err(e)) => {
            cluster.stop_all(Duration::from_secs(2));
            return Err(format!("{e}{}", keep_on_failure(temp)));
        }
        Some(Ok(id)) => println!("leader: node {id} at {}", cluster.listen_addr(id)),
    }
    println!(
        "try: harness client --cluster {}\nCtrl-C or SIGTERM stops the cluster",
        cluster.client_addrs().join(",")
    );
    // Report nodes that exit on their own until told to stop.
    let mut reported = std::collections::BTreeSet::new();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = check.tick() => {
                for id in cluster.ids() {
                    if cluster.state(id) == NodeState::Down && reported.insert(id) {
                        eprintln!(
                            "node {id} exited; the end of its log ({}):\n{}",
                            cluster.log_path(id).display(),
                            cluster.log_tail(id, 5)
                        );
                    }
                }
            }
        }
    }
    println!("stopping");
    cluster.stop_all(Duration::from_secs(2));
    if !reported.is_empty() {
        // Some node failed: its log outlives a temporary directory.
        println!("stopped{}", keep_on_failure(temp));
    } else {
        println!("stopped");
    }
    Ok(())
}
