//! `harness cluster` starts real nodes, reports a leader, and stops every
//! node on SIGTERM.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{ClusterProc, alive};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn sigterm_stops_the_cluster_and_every_node() {
    let mut cluster = ClusterProc::start(3);
    for &pid in &cluster.node_pids {
        assert!(alive(pid), "node pid {pid} runs");
    }
    kill(Pid::from_raw(cluster.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = cluster.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "harness cluster ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    let rest = cluster.rest_of_output(Duration::from_secs(2));
    assert!(rest.iter().any(|l| l == "stopped"), "output: {rest:?}");
    for &pid in &cluster.node_pids {
        assert!(!alive(pid), "node pid {pid} left behind");
    }
    // Node logs written to files are plain text, without colour codes.
    let log = std::fs::read_to_string(cluster.dir.path().join("node-1.log")).unwrap();
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in the log file: {log}");
}

#[test]
fn a_bad_node_binary_is_a_clear_error() {
    let out = std::process::Command::new(cli_support::HARNESS)
        .args(["cluster", "--nodes", "3", "--node-bin", "/nonexistent/node"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node binary /nonexistent/node does not exist"),
        "{stderr}"
    );
}
