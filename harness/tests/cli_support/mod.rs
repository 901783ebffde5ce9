//! Shared by the `cli_*` and `bench_*` integration tests: the `node` binary
//! and a `harness cluster` process that is killed, with its nodes, on drop.
//!
//! The node binary is the one beside `harness` (a workspace build puts it
//! there), else `RAFTKV_NODE_BIN`, else it is built once with a nested
//! `cargo build -p raftkv-node` into `<target>/cli-node` (a target dir of its
//! own: the outer `cargo test` holds the lock on the main one).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

pub const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

fn profile_dir() -> PathBuf {
    Path::new(HARNESS).parent().unwrap().to_path_buf()
}

/// The `node` executable for the tests.
pub fn node_bin() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        let beside = profile_dir().join("node");
        if beside.is_file() {
            return beside;
        }
        if let Some(bin) = std::env::var_os("RAFTKV_NODE_BIN") {
            return PathBuf::from(bin);
        }
        let profile = profile_dir();
        let release = profile.file_name().is_some_and(|n| n == "release");
        let target = profile.parent().unwrap().join("cli-node");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace)
            .args(["build", "-p", "raftkv-node", "--target-dir"])
            .arg(&target);
        if release {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build for the node");
        assert!(status.success(), "building the node failed");
        let bin = target
            .join(if release { "release" } else { "debug" })
            .join("node");
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A running `harness cluster`, with what it printed.
pub struct ClusterProc {
    pub child: Child,
    pub addrs: Vec<String>,
    pub node_pids: Vec<u32>,
    pub leader_addr: String,
    pub dir: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
}

impl ClusterProc {
    /// Starts `harness cluster --nodes n` and waits for its leader line.
    pub fn start(n: usize) -> ClusterProc {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(HARNESS)
            .args(["cluster", "--nodes", &n.to_string(), "--node-bin"])
            .arg(node_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start harness cluster");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proc = ClusterProc {
            child,
            addrs: Vec::new(),
            node_pids: Vec::new(),
            leader_addr: String::new(),
            dir,
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = proc
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no leader line from harness cluster"));
            if let Some(rest) = line.strip_prefix("node ") {
                // node 1: 127.0.0.1:PORT (pid N, log ...)
                let pid = rest
                    .split("(pid ")
                    .nth(1)
                    .and_then(|s| s.split(',').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no pid in {line:?}"));
                proc.node_pids.push(pid);
            } else if let Some(rest) = line.strip_prefix("cluster: ") {
                proc.addrs = rest.split(',').map(str::to_string).collect();
            } else if let Some(rest) = line.strip_prefix("leader: ") {
                proc.leader_addr = rest.rsplit(' ').next().unwrap().to_string();
                break;
            }
        }
        assert_eq!(proc.node_pids.len(), n, "one pid line per node");
        assert_eq!(proc.addrs.len(), n, "one address per node");
        proc
    }

    /// Remaining stdout lines, until the process closes it or `timeout`.
    pub fn rest_of_output(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(line);
        }
        out
    }

    pub fn cluster_arg(&self) -> String {
        self.addrs.join(",")
    }

    /// An address that is not the leader's.
    pub fn follower_addr(&self) -> String {
        self.addrs
            .iter()
            .find(|a| **a != self.leader_addr)
            .unwrap()
            .clone()
    }
}

impl Drop for ClusterProc {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
        for &pid in &self.node_pids {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Runs `harness client --cluster ADDRS ARGS...`; returns (status, stdout, stderr).
pub fn client(cluster: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(HARNESS)
        .args(["client", "--cluster", cluster])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run harness client");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
