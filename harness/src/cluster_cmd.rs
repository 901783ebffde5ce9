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
    /// Seconds to wait for a leader.
    #[arg(long, default_value_t = 20)]
    leader_timeout: u64,
    /// Extra flags passed to every node, e.g. --node-arg=--heartbeat-ms=20.
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

pub fn main(args: Args) -> ExitCode {
    crate::run_to_exit_code(run(args))
}

async fn run(args: Args) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let node_bin = find_node_bin(args.node_bin.as_deref())?;
    let (dir, _temp) = match &args.data_dir {
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
    cluster.start_all()?;
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
    let wait = cluster.wait_for_leader(Duration::from_secs(args.leader_timeout));
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
            return Err(e);
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
                            "node {id} exited; see {}",
                            cluster.log_path(id).display()
                        );
                    }
                }
            }
        }
    }
    println!("stopping");
    cluster.stop_all(Duration::from_secs(2));
    println!("stopped");
    Ok(())
}
