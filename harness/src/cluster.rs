//! A local cluster of `node` processes: ports, data dirs, log files, and the
//! process control that faults need (SIGKILL, SIGSTOP, SIGCONT, restart).
//!
//! Every node runs in its own process group; signals go to the group, and
//! dropping a [`Cluster`] SIGKILLs and reaps every node, so a panic or an
//! error leaves no process behind. Children are spawned from a dedicated
//! thread with `PR_SET_PDEATHSIG = SIGKILL`, so they also die when the
//! harness itself is killed.
//!
//! Node ids are `1..=N`. The address node `i` uses to reach node `j` is, by
//! default, `j`'s listen address; [`Cluster::set_peer_addr`] changes it before
//! `i` (re)starts, for example to put a per-link proxy in between.
//!
//! A node that exits without being told to (not killed by [`Cluster::kill`],
//! not stopped by [`Cluster::stop_all`]) is a crash; [`Cluster::crashed`]
//! reports each one once.

#![allow(dead_code)] // Parts of the API are used only by some subcommands.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use raftkv::proto::{Role, StatusRequest, StatusResponse, kv_client::KvClient};

/// Node ids are 1-based.
pub type NodeId = u64;

/// What to start.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: usize,
    /// The `node` executable.
    pub node_bin: PathBuf,
    /// Node `i` keeps its data in `data_root/<data_dir_prefix>i`.
    pub data_root: PathBuf,
    /// Prefix of the data dir names; `node-` by default.
    pub data_dir_prefix: String,
    /// Node `i` logs (stdout and stderr, appended across restarts) to
    /// `log_dir/node-i.log`.
    pub log_dir: PathBuf,
    /// Node `i` listens on `127.0.0.1:base_port+i-1`; `None` picks free ports.
    pub base_port: Option<u16>,
    /// Extra flags for every node (tunables such as `--election-timeout-min-ms`).
    pub extra_args: Vec<String>,
    /// Environment variables set for every node, on top of the ones the
    /// harness itself runs with.
    pub env: Vec<(String, String)>,
}

impl ClusterConfig {
    /// A config for `nodes` nodes with data and logs under `dir`.
    pub fn new(nodes: usize, node_bin: PathBuf, dir: &Path) -> Self {
        ClusterConfig {
            nodes,
            node_bin,
            data_root: dir.to_path_buf(),
            data_dir_prefix: "node-".into(),
            log_dir: dir.to_path_buf(),
            base_port: None,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// This machine's CPUs split evenly among `sharers` processes (at least one
/// each): local nodes that each took every CPU would contend for them.
pub fn threads_per_share(sharers: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / sharers.max(1)).max(1)
}

/// State of one node process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    /// Killed or exited (or never started).
    Down,
}

struct NodeProc {
    id: NodeId,
    listen: SocketAddr,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// The harness asked the process to exit (SIGTERM), so its exit is no
    /// crash.
    stopping: bool,
}

/// A running (or partly running) local cluster. See the module docs.
pub struct Cluster {
    config: ClusterConfig,
    nodes: Vec<NodeProc>,
    /// (from, to) -> address `from` uses for `to`, when not the listen address.
    peer_addrs: BTreeMap<(NodeId, NodeId), String>,
    /// Crashes not yet returned by [`Cluster::crashed`].
    crashes: Vec<(NodeId, ExitStatus)>,
    spawner: Spawner,
}

/// Finds the `node` executable: `explicit` if given, else beside the current
/// executable, else one directory up (test executables live in `deps/`).
pub fn find_node_bin(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("node binary {} does not exist", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the harness: {e}"))?;
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join("node");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(format!(
        "no `node` binary beside {}; build it (`cargo build -p raftkv-node`, with --release for release builds) or pass --node-bin",
        exe.display()
    ))
}

/// Lowest port of the range [`free_ports`] draws from.
const LISTEN_PORTS_FROM: u16 = 10_000;
/// End (exclusive) of that range: below Linux's default ephemeral range
/// (32768-60999).
const LISTEN_PORTS_TO: u16 = 32_768;

/// Picks `n` distinct free loopback ports, below the ephemeral range: a
/// port the kernel hands out for outgoing connections (the proxies', the
/// clients') could be taken as a connection's source while a killed node
/// is down, and the node could not listen on it again. The listeners are
/// returned so the ports stay reserved until the caller drops them.
pub fn free_ports(n: usize) -> std::io::Result<Vec<TcpListener>> {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut listeners = Vec::with_capacity(n);
    let mut tries = 0;
    while listeners.len() < n {
        tries += 1;
        if tries > 10_000 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no free port between {LISTEN_PORTS_FROM} and {LISTEN_PORTS_TO}"),
            ));
        }
        let port = rng.random_range(LISTEN_PORTS_FROM..LISTEN_PORTS_TO);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    Ok(listeners)
}

impl Cluster {
    /// Prepares the cluster: picks addresses and creates directories. Starts
    /// nothing; call [`Cluster::start_all`].
    pub fn new(config: ClusterConfig) -> Result<Cluster, String> {
        if config.nodes == 0 {
            return Err("a cluster needs at least one node".into());
        }
        if !config.node_bin.is_file() {
            return Err(format!(
                "node binary {} does not exist",
                config.node_bin.display()
            ));
        }
        for dir in [&config.data_root, &config.log_dir] {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let listens: Vec<SocketAddr> = match config.base_port {
            Some(base) => (0..config.nodes)
                .map(|i| {
                    let port = u16::try_from(base as usize + i)
                        .map_err(|_| format!("--base-port {base} + {i} is beyond 65535"))?;
                    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
                })
                .collect::<Result<_, String>>()?,
            None => free_ports(config.nodes)
                .and_then(|ls| ls.iter().map(|l| l.local_addr()).collect())
                .map_err(|e| format!("cannot pick free ports: {e}"))?,
        };
        let nodes = listens
            .into_iter()
            .enumerate()
            .map(|(i, listen)| {
                let id = i as NodeId + 1;
                NodeProc {
                    id,
                    listen,
                    data_dir: config
                        .data_root
                        .join(format!("{}{id}", config.data_dir_prefix)),
                    log_path: config.log_dir.join(format!("node-{id}.log")),
                    child: None,
                    paused: false,
                    stopping: false,
                }
            })
            .collect();
        Ok(Cluster {
            config,
            nodes,
            peer_addrs: BTreeMap::new(),
            crashes: Vec::new(),
            spawner: Spawner::new(),
        })
    }

    /// Node ids, `1..=N`.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, id: NodeId) -> Result<&NodeProc, String> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("no node {id} (ids are 1..={})", self.nodes.len()))
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut NodeProc, String> {
        let n = self.nodes.len();
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .ok_or_else(|| format!("no node {id} (ids are 1..={n})"))
    }

    /// Where node `id` listens (clients connect here).
    pub fn listen_addr(&self, id: NodeId) -> SocketAddr {
        self.node(id).expect("valid node id").listen
    }

    /// Listen addresses of all nodes by id.
    pub fn listen_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.nodes.iter().map(|n| (n.id, n.listen)).collect()
    }

    /// Listen addresses of all nodes, as `host:port` strings, in id order.
    pub fn client_addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.listen.to_string()).collect()
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.node(id).expect("valid node id").data_dir.clone()
    }

    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.node(id).expect("valid node id").log_path.clone()
    }

    /// The last `lines` lines of node `id`'s log (empty if it has none).
    pub fn log_tail(&self, id: NodeId, lines: usize) -> String {
        let text = fs::read(self.log_path(id)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The address node `from` uses to reach node `to`. Takes effect when
    /// `from` next starts.
    pub fn set_peer_addr(&mut self, from: NodeId, to: NodeId, addr: String) {
        self.peer_addrs.insert((from, to), addr);
    }

    /// The address node `from` uses to reach node `to`.
    pub fn peer_addr(&self, from: NodeId, to: NodeId) -> String {
        self.peer_addrs
            .get(&(from, to))
            .cloned()
            .unwrap_or_else(|| self.listen_addr(to).to_string())
    }

    /// The `--peers` flag value for node `id`.
    fn peers_flag(&self, id: NodeId) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}={}", n.id, self.peer_addr(id, n.id)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The full command line used to start node `id`.
    pub fn command_line(&self, id: NodeId) -> Vec<String> {
        let node = self.node(id).expect("valid node id");
        let mut args = vec![
            self.config.node_bin.display().to_string(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            node.listen.to_string(),
            "--peers".into(),
            self.peers_flag(id),
            "--data-dir".into(),
            node.data_dir.display().to_string(),
        ];
        let threads_given = self
            .config
            .extra_args
            .iter()
            .any(|a| a.starts_with("--worker-threads"));
        if !threads_given {
            args.push(format!(
                "--worker-threads={}",
                threads_per_share(self.config.nodes)
            ));
        }
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Starts every node that is not running.
    pub fn start_all(&mut self) -> Result<(), String> {
        for id in self.ids() {
            if self.state(id) == NodeState::Down {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// Starts node `id` on its data dir (a restart after a kill keeps the
    /// data). Fails if it is already running.
    pub fn start(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) != NodeState::Down {
            return Err(format!("node {id} is already running"));
        }
        let args = self.command_line(id);
        let env = self.config.env.clone();
        let node = self.node(id)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(|e| format!("cannot open {}: {e}", node.log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", node.log_path.display()))?;
        let child = self.spawner.spawn(args, env, log, log_err).map_err(|e| {
            format!(
                "cannot start node {id} ({}): {e}",
                self.config.node_bin.display()
            )
        })?;
        let node = self.node_mut(id)?;
        node.child = Some(child);
        node.paused = false;
        node.stopping = false;
        Ok(())
    }

    /// Process id of node `id`, when it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.node(id).ok()?.child.as_ref().map(Child::id)
    }

    /// Whether node `id` runs, is paused or is down. Reaps a node that exited
    /// by itself, and notes the crash for [`Cluster::crashed`].
    pub fn state(&mut self, id: NodeId) -> NodeState {
        let Ok(node) = self.node_mut(id) else {
            return NodeState::Down;
        };
        let exit = match node.child.as_mut() {
            None => return NodeState::Down,
            Some(child) => child.try_wait().ok().flatten(),
        };
        if let Some(status) = exit {
            node.child = None;
            node.paused = false;
            if !node.stopping {
                self.crashes.push((id, status));
            }
            return NodeState::Down;
        }
        if node.paused {
            NodeState::Paused
        } else {
            NodeState::Running
        }
    }

    fn signal(&self, id: NodeId, signal: Signal) -> Result<(), String> {
        let pid = self
            .pid(id)
            .ok_or_else(|| format!("node {id} is not running"))?;
        killpg(Pid::from_raw(pid as i32), signal)
            .map_err(|e| format!("cannot send {signal} to node {id} (pid {pid}): {e}"))
    }

    /// SIGKILLs node `id` and reaps it. A node that is down is left alone.
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        if self.state(id) == NodeState::Down {
            return Ok(());
        }
        // The process may exit between the check and the signal; ESRCH is fine.
        let _ = self.signal(id, Signal::SIGKILL);
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            let _ = child.wait();
        }
        node.paused = false;
        Ok(())
    }

    /// SIGKILLs node `id` and starts it again on the same data dir.
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        self.kill(id)?;
        self.start(id)
    }

    /// Nodes that exited on their own since the last call, with how they
    /// exited, in the order they were noticed. A crashed node stays down.
    pub fn crashed(&mut self) -> Vec<(NodeId, ExitStatus)> {
        for id in self.ids() {
            self.state(id);
        }
        std::mem::take(&mut self.crashes)
    }

    /// SIGCONTs every paused node and starts every node that is down.
    pub fn heal(&mut self) -> Result<(), String> {
        for id in self.ids() {
            match self.state(id) {
                NodeState::Paused => self.resume(id)?,
                NodeState::Down => self.start(id)?,
                NodeState::Running => {}
            }
        }
        Ok(())
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&mut self, id: NodeId) -> Result<(), String> {
        self.signal(id, Signal::SIGSTOP)?;
        self.node_mut(id)?.paused = true;
        Ok(())
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: NodeId) -> Result<(), String> {
        self.signal(id, Signal::SIGCONT)?;
        self.node_mut(id)?.paused = false;
        Ok(())
    }

    /// SIGTERMs every node, waits up to `grace` for them to exit, then
    /// SIGKILLs the rest. Every node is reaped.
    pub fn stop_all(&mut self, grace: Duration) {
        for id in self.ids() {
            if self.state(id) == NodeState::Paused {
                let _ = self.signal(id, Signal::SIGCONT);
            }
            if self.state(id) != NodeState::Down {
                if let Ok(node) = self.node_mut(id) {
                    node.stopping = true;
                }
                let _ = self.signal(id, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline
            && self
                .ids()
                .iter()
                .any(|&id| self.state(id) != NodeState::Down)
        {
            thread::sleep(Duration::from_millis(20));
        }
        self.kill_all();
    }

    /// SIGKILLs and reaps every node.
    pub fn kill_all(&mut self) {
        for id in self.ids() {
            let _ = self.kill(id);
        }
    }

    /// Asks every node that runs for its `Status`, each bounded by `timeout`.
    pub async fn statuses(
        &mut self,
        timeout: Duration,
    ) -> Vec<(NodeId, Result<StatusResponse, String>)> {
        let mut out = Vec::new();
        let targets: Vec<(NodeId, SocketAddr, bool)> = self
            .ids()
            .into_iter()
            .map(|id| {
                (
                    id,
                    self.listen_addr(id),
                    self.state(id) == NodeState::Running,
                )
            })
            .collect();
        let tasks: Vec<_> = targets
            .into_iter()
            .map(|(id, addr, running)| {
                tokio::spawn(async move {
                    if !running {
                        return (id, Err("not running".to_string()));
                    }
                    (id, node_status(addr, timeout).await)
                })
            })
            .collect();
        for task in tasks {
            match task.await {
                Ok(r) => out.push(r),
                Err(e) => out.push((0, Err(format!("status task failed: {e}")))),
            }
        }
        out
    }

    /// Waits until a running node leads and a majority of the nodes that
    /// answer name it as leader in its term. Returns the leader's id.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<NodeId, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.statuses(Duration::from_millis(500)).await;
            let last = match agreed_leader(&statuses, self.len()) {
                Ok(id) => return Ok(id),
                Err(why) => why,
            };
            for id in self.ids() {
                // A node that exited is a configuration problem; say so early.
                if self.node(id).map(|n| n.child.is_some()).unwrap_or(false)
                    && self.state(id) == NodeState::Down
                {
                    return Err(format!(
                        "node {id} exited; the end of its log ({}):\n{}",
                        self.log_path(id).display(),
                        indent(&self.log_tail(id, 5))
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no leader within {timeout:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The leader a majority of the cluster agrees on, if any.
fn agreed_leader(
    statuses: &[(NodeId, Result<StatusResponse, String>)],
    cluster_size: usize,
) -> Result<NodeId, String> {
    let answers: Vec<&StatusResponse> = statuses
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok())
        .collect();
    let Some(leader) = answers
        .iter()
        .filter(|s| s.role == Role::Leader as i32)
        .max_by_key(|s| s.term)
    else {
        return Err(format!("{} node(s) answered, none leads", answers.len()));
    };
    let agreeing = answers
        .iter()
        .filter(|s| s.term == leader.term && s.leader_id == leader.node_id)
        .count();
    if agreeing * 2 > cluster_size {
        Ok(leader.node_id)
    } else {
        Err(format!(
            "node {} leads term {} but only {agreeing} of {cluster_size} agree",
            leader.node_id, leader.term
        ))
    }
}

/// One node's `Status`.
pub async fn node_status(addr: SocketAddr, timeout: Duration) -> Result<StatusResponse, String> {
    let call = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let mut kv = KvClient::new(channel);
        kv.status(StatusRequest::default())
            .await
            .map(|r| r.into_inner())
            .map_err(|s| format!("{addr}: {}", s.message()))
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(format!("{addr}: no answer within {timeout:?}")))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Spawns children from one long-lived thread: `PR_SET_PDEATHSIG` fires when
/// the spawning *thread* exits, so spawning from short-lived threads (tokio's
/// blocking pool, for one) would kill nodes at random.
struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<thread::JoinHandle<()>>,
}

struct SpawnRequest {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: File,
    stderr: File,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

impl Spawner {
    fn new() -> Spawner {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = thread::Builder::new()
            .name("node-spawner".into())
            .spawn(move || {
                for request in rx {
                    let result =
                        spawn_node(&request.args, &request.env, request.stdout, request.stderr);
                    let _ = request.reply.send(result);
                }
            })
            .expect("spawn the node-spawner thread");
        Spawner {
            requests: Some(tx),
            thread: Some(thread),
        }
    }

    fn spawn(
        &self,
        args: Vec<String>,
        env: Vec<(String, String)>,
        stdout: File,
        stderr: File,
    ) -> std::io::Result<Child> {
        let gone = || std::io::Error::other("the node-spawner thread is gone");
        let (reply, result) = mpsc::channel();
        self.requests
            .as_ref()
            .expect("spawner alive")
            .send(SpawnRequest {
                args,
                env,
                stdout,
                stderr,
                reply,
            })
            .map_err(|_| gone())?;
        result.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn spawn_node(
    args: &[String],
    env: &[(String, String)],
    stdout: File,
    stderr: File,
) -> std::io::Result<Child> {
    let mut command = Command::new(&args[0]);
    command
        .args(&args[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    command.spawn()
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let listeners = free_ports(20).unwrap();
        let ports: std::collections::BTreeSet<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), 20);
        assert!(
            ports
                .iter()
                .all(|p| (LISTEN_PORTS_FROM..LISTEN_PORTS_TO).contains(p)),
            "{ports:?}"
        );
    }

    use super::*;

    fn status(node_id: u64, role: Role, term: u64, leader_id: u64) -> StatusResponse {
        StatusResponse {
            node_id,
            role: role as i32,
            term,
            leader_id,
            ..Default::default()
        }
    }

    #[test]
    fn leader_needs_a_majority_in_its_term() {
        let s = vec![
            (1, Ok(status(1, Role::Leader, 2, 1))),
            (2, Ok(status(2, Role::Follower, 2, 1))),
            (3, Err("down".to_string())),
        ];
        assert_eq!(agreed_leader(&s, 3), Ok(1));
        let s = vec![
            (1, Ok(status(1, Role::Leader, 2, 1))),
            (2, Ok(status(2, Role::Follower, 3, 0))),
            (3, Err("down".to_string())),
        ];
        assert!(agreed_leader(&s, 3).is_err());
        // A stale leader of an older term loses to the newer one.
        let s = vec![
            (1, Ok(status(1, Role::Leader, 2, 1))),
            (2, Ok(status(2, Role::Leader, 3, 2))),
            (3, Ok(status(3, Role::Follower, 3, 2))),
        ];
        assert_eq!(agreed_leader(&s, 3), Ok(2));
    }

    #[test]
    fn peers_flag_uses_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let bin = std::env::current_exe().unwrap();
        let mut c = Cluster::new(ClusterConfig::new(3, bin, dir.path())).unwrap();
        let a2 = c.listen_addr(2);
        c.set_peer_addr(1, 3, "127.0.0.1:9".into());
        let line = c.command_line(1);
        let peers = &line[line.iter().position(|a| a == "--peers").unwrap() + 1];
        assert!(peers.contains(&format!("2={a2}")), "{peers}");
        assert!(peers.contains("3=127.0.0.1:9"), "{peers}");
        assert_eq!(c.peer_addr(2, 3), c.listen_addr(3).to_string());
    }

    #[test]
    fn nodes_share_the_cpus_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let bin = std::env::current_exe().unwrap();
        let c = Cluster::new(ClusterConfig::new(3, bin.clone(), dir.path())).unwrap();
        let share = format!("--worker-threads={}", threads_per_share(3));
        assert!(c.command_line(2).contains(&share));
        assert!(threads_per_share(1_000) == 1 && threads_per_share(0) >= 1);
        let mut config = ClusterConfig::new(3, bin, dir.path());
        config.extra_args = vec!["--worker-threads=7".into()];
        let line = Cluster::new(config).unwrap().command_line(1);
        let given: Vec<_> = line
            .iter()
            .filter(|a| a.contains("--worker-threads"))
            .collect();
        assert_eq!(given, ["--worker-threads=7"]);
    }

    #[test]
    fn missing_node_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Cluster::new(ClusterConfig::new(3, dir.path().join("nope"), dir.path()))
            .err()
            .unwrap();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn kill_pause_resume_a_real_process_group() {
        // `sleep` stands in for a node: the process control is the same.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-node");
        fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut c = Cluster::new(ClusterConfig::new(2, script, dir.path())).unwrap();
        c.start_all().unwrap();
        let pid = c.pid(1).unwrap();
        assert_eq!(c.state(1), NodeState::Running);
        c.pause(1).unwrap();
        assert_eq!(c.state(1), NodeState::Paused);
        assert!(eventually(|| proc_state(pid) == Some('T')), "stopped");
        c.resume(1).unwrap();
        assert!(eventually(|| proc_state(pid) != Some('T')), "continued");
        c.restart(1).unwrap();
        assert_ne!(c.pid(1), Some(pid));
        assert_eq!(proc_state(pid), None, "old process reaped");
        let pids: Vec<u32> = c.ids().iter().filter_map(|&id| c.pid(id)).collect();
        assert_eq!(pids.len(), 2);
        drop(c);
        for pid in pids {
            assert_eq!(proc_state(pid), None, "pid {pid} left behind");
        }
    }

    #[test]
    fn crashes_are_reported_once_and_kills_and_stops_are_not_crashes() {
        // Node 1 exits at once with status 7; the others sleep.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-node");
        fs::write(
            &script,
            "#!/bin/sh\necho \"FOO=$FOO\"\n[ \"$2\" = 1 ] && exit 7\nexec sleep 30\n",
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut config = ClusterConfig::new(3, script, dir.path());
        config.data_dir_prefix = "n".into();
        config.env = vec![("FOO".into(), "bar".into())];
        let mut c = Cluster::new(config).unwrap();
        assert_eq!(c.data_dir(2), dir.path().join("n2"));
        c.start_all().unwrap();
        let mut crashes = Vec::new();
        assert!(eventually(|| {
            crashes.extend(c.crashed());
            !crashes.is_empty()
        }));
        assert_eq!(crashes.len(), 1, "{crashes:?}");
        assert_eq!(crashes[0].0, 1);
        assert_eq!(crashes[0].1.code(), Some(7));
        assert!(c.crashed().is_empty(), "reported once");
        assert_eq!(c.state(1), NodeState::Down);
        let log = fs::read_to_string(c.log_path(1)).unwrap();
        assert!(log.contains("FOO=bar"), "{log}");

        c.kill(2).unwrap();
        c.pause(3).unwrap();
        assert!(c.crashed().is_empty(), "a kill is no crash");
        c.heal().unwrap();
        assert_eq!(c.state(2), NodeState::Running);
        assert_eq!(c.state(3), NodeState::Running);
        assert!(eventually(|| c.crashed().iter().any(|&(id, _)| id == 1)));
        c.stop_all(Duration::from_secs(2));
        assert!(c.crashed().is_empty(), "a stop is no crash");
    }

    /// Signals are delivered asynchronously: poll for up to 2 s.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    fn proc_state(pid: u32) -> Option<char> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.trim().chars().next()
    }
}
