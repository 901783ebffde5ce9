//! The node processes of a run: spawned on free loopback ports, each in its
//! own process group, peers addressed through the link proxies; killed,
//! paused, resumed and restarted on the same data dir by the nemesis. Every
//! process is killed when [`Nodes`] is dropped (also on error or panic), and
//! by the kernel if the harness itself dies (parent-death signal).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::proxy::{NodeId, Proxies};

/// Picks a free loopback port.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    Dead,
}

struct Node {
    addr: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    state: NodeState,
}

pub struct Nodes {
    bin: PathBuf,
    nodes: BTreeMap<NodeId, Node>,
}

impl Nodes {
    /// Plans `n` nodes with ids 1..=n on free ports, data dirs and logs under
    /// `dir`. Nothing is started yet: the proxies need the addresses first.
    pub fn plan(bin: &Path, n: u64, dir: &Path) -> std::io::Result<Nodes> {
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            nodes.insert(
                id,
                Node {
                    addr: free_addr()?,
                    data_dir: dir.join(format!("n{id}")),
                    log: dir.join(format!("node-{id}.log")),
                    args: Vec::new(),
                    child: None,
                    state: NodeState::Dead,
                },
            );
        }
        Ok(Nodes {
            bin: bin.to_path_buf(),
            nodes,
        })
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Each node's own (client-facing) address.
    pub fn addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.nodes.iter().map(|(&id, n)| (id, n.addr)).collect()
    }

    pub fn state(&self, id: NodeId) -> Option<NodeState> {
        self.nodes.get(&id).map(|n| n.state)
    }

    /// Starts every node; node i reaches node j through the proxy (i, j).
    pub fn start_all(&mut self, proxies: &Proxies, extra_args: &[String]) -> Result<(), String> {
        let addrs = self.addrs();
        for (&id, node) in self.nodes.iter_mut() {
            let peers: Vec<String> = addrs
                .iter()
                .map(|(&j, &a)| {
                    let a = if j == id {
                        a
                    } else {
                        proxies.address(id, j).expect("a proxy per ordered pair")
                    };
                    format!("{j}={a}")
                })
                .collect();
            let mut args = vec![
                "--id".to_string(),
                id.to_string(),
                "--listen".to_string(),
                node.addr.to_string(),
                "--peers".to_string(),
                peers.join(","),
                "--data-dir".to_string(),
                node.data_dir.display().to_string(),
            ];
            args.extend(extra_args.iter().cloned());
            node.args = args;
        }
        for id in self.ids() {
            self.spawn(id)?;
        }
        Ok(())
    }

    fn spawn(&mut self, id: NodeId) -> Result<(), String> {
        let bin = self.bin.clone();
        let node = self.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.args(&node.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
        // and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node {id} ({}): {e}", bin.display()))?;
        node.child = Some(child);
        node.state = NodeState::Running;
        Ok(())
    }

    fn signal(&mut self, id: NodeId, signal: Signal) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
        let Some(child) = node.child.as_mut() else {
            return Err(format!("node {id} is not running"));
        };
        killpg(Pid::from_raw(child.id() as i32), signal)
            .map_err(|e| format!("cannot send {signal} to node {id}: {e}"))
    }

    /// SIGKILL; the node stays dead until [`Nodes::restart`].
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) == Some(NodeState::Dead) {
            return Ok(());
        }
        let result = self.signal(id, Signal::SIGKILL);
        let node = self.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
        if let Some(mut child) = node.child.take() {
            let _ = child.wait();
        }
        node.state = NodeState::Dead;
        result
    }

    /// Starts a dead node again on the same data dir. The data dir lock of
    /// the killed process is released by the kernel when it exits.
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) != Some(NodeState::Dead) {
            return Ok(());
        }
        self.spawn(id)
    }

    pub fn pause(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) != Some(NodeState::Running) {
            return Ok(());
        }
        self.signal(id, Signal::SIGSTOP)?;
        self.nodes.get_mut(&id).expect("checked").state = NodeState::Paused;
        Ok(())
    }

    pub fn resume(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) != Some(NodeState::Paused) {
            return Ok(());
        }
        self.signal(id, Signal::SIGCONT)?;
        self.nodes.get_mut(&id).expect("checked").state = NodeState::Running;
        Ok(())
    }

    /// Resumes paused nodes and restarts dead ones.
    pub fn heal(&mut self) -> Result<(), String> {
        for id in self.ids() {
            match self.state(id) {
                Some(NodeState::Paused) => self.resume(id)?,
                Some(NodeState::Dead) => self.restart(id)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Nodes that exited on their own (not killed by the nemesis), with the
    /// exit status: a crash the run must report.
    pub fn crashed(&mut self) -> Vec<(NodeId, String)> {
        let mut out = Vec::new();
        for (&id, node) in self.nodes.iter_mut() {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                out.push((id, status.to_string()));
                node.child = None;
                node.state = NodeState::Dead;
            }
        }
        out
    }

    /// Kills every node (SIGCONT first is not needed: SIGKILL ends a stopped
    /// process too) and reaps them.
    pub fn stop_all(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            node.state = NodeState::Dead;
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop_all();
    }
}
