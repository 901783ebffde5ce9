//! Real `node` processes on free loopback ports, and a few client helpers.
//! Every process is SIGKILLed by PID when the [`Cluster`] is dropped, also
//! when a test panics.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use raftkv::proto::{
    GetRequest, Role, Session, SetRequest, StatusRequest, StatusResponse, kv_client::KvClient,
};
use tonic::transport::Channel;

pub const ELECTION_MIN_MS: u64 = 300;
pub const ELECTION_MAX_MS: u64 = 600;

/// The cluster tests measure timing; running them one at a time keeps two
/// cores from being shared by several clusters.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one test body on its own runtime, one test at a time.
pub fn run<F: std::future::Future>(body: F) -> F::Output {
    let _serial = serial();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(body)
}

/// Ports the OS reports free right now (bound to :0, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

pub struct NodeProc {
    pub id: u64,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    starts: u32,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    pub peers: String,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts `n` nodes with short election timeouts.
    pub fn start(n: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_with_env(n, extra_args, &[])
    }

    /// Starts `n` nodes with extra environment variables.
    pub fn start_with_env(n: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(n);
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, p)| NodeProc {
                id: i as u64 + 1,
                addr: format!("127.0.0.1:{p}"),
                data_dir: dir.path().join(format!("n{}", i + 1)),
                log: dir.path().join(format!("n{}.log", i + 1)),
                child: None,
                starts: 0,
            })
            .collect();
        let mut cluster = Cluster {
            dir,
            nodes,
            peers,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    pub fn command(&self, i: usize) -> Command {
        let node = &self.nodes[i];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_node"));
        cmd.arg("--id")
            .arg(node.id.to_string())
            .arg("--listen")
            .arg(&node.addr)
            .arg("--peers")
            .arg(&self.peers)
            .arg("--data-dir")
            .arg(&node.data_dir);
        // Short election timeouts, unless the test sets its own.
        if !self
            .extra_args
            .iter()
            .any(|a| a.starts_with("--election-timeout"))
        {
            cmd.arg("--election-timeout-min-ms")
                .arg(ELECTION_MIN_MS.to_string())
                .arg("--election-timeout-max-ms")
                .arg(ELECTION_MAX_MS.to_string());
        }
        cmd.args(&self.extra_args)
            .env("RUST_LOG", "info")
            .env_remove("RAFTKV_PLANT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// (Re)starts node `i`, appending its stderr to its log file.
    pub fn spawn(&mut self, i: usize) {
        assert!(
            self.nodes[i].child.is_none(),
            "node {} already running",
            i + 1
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.nodes[i].log)
            .expect("open log");
        let child = self.command(i).stderr(log).spawn().expect("spawn node");
        self.nodes[i].child = Some(child);
        self.nodes[i].starts += 1;
    }

    /// Sends `signal` to node `i`. A SIGSTOP returns once every thread of
    /// the node has stopped: the signal stops a thread only when that
    /// thread next enters the kernel, and on a loaded machine another
    /// thread can keep serving for many milliseconds.
    pub fn signal(&self, i: usize, signal: Signal) {
        let child = self.nodes[i].child.as_ref().expect("node running");
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal node");
        if signal == Signal::SIGSTOP {
            wait_stopped(child.id());
        }
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn addr(&self, i: usize) -> String {
        self.nodes[i].addr.clone()
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some())
            .collect()
    }

    /// Index of the node that leads, among `among`, once one does and every
    /// answering node in `among` agrees on it.
    pub async fn wait_leader(&self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            let mut answers = Vec::new();
            for &i in among {
                if let Some(s) = status(&self.addr(i)).await {
                    if s.role == Role::Leader as i32 {
                        leaders.push((s.term, i));
                    }
                    answers.push(s);
                }
            }
            leaders.sort();
            if let Some(&(term, i)) = leaders.last() {
                let id = self.nodes[i].id;
                let agreed = answers
                    .iter()
                    .filter(|s| s.term == term && s.leader_id == id)
                    .count();
                if agreed * 2 > self.nodes.len() {
                    return i;
                }
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no leader among {among:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn dump_logs(&self) {
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("---- node {} log (last {} lines) ----", node.id, tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Waits until every thread of process `pid` is stopped (state `T`).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_threads_stopped(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs 10 s after SIGSTOP"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        // The state follows the command name in parentheses, which may
        // itself hold spaces and parentheses.
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T" || state == "t")
        })
    })
}

pub async fn client(addr: &str) -> KvClient<Channel> {
    client_with_timeout(addr, Duration::from_secs(3))
}

/// A client whose requests wait up to `timeout` for their answer.
pub fn client_with_timeout(addr: &str, timeout: Duration) -> KvClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .timeout(timeout)
        .connect_lazy();
    KvClient::new(channel)
}

pub async fn status(addr: &str) -> Option<StatusResponse> {
    status_of(addr, false).await
}

/// The status of node at `addr`, with the state-machine digest if asked.
pub async fn status_of(addr: &str, with_digest: bool) -> Option<StatusResponse> {
    let mut c = client(addr).await;
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        c.status(StatusRequest { with_digest }),
    )
    .await;
    match r {
        Ok(Ok(s)) => Some(s.into_inner()),
        _ => None,
    }
}

pub fn set_request(client_id: u64, seq: u64, key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        session: Some(Session { client_id, seq }),
        key: key.to_string(),
        value: value.to_vec(),
    }
}

pub async fn set(
    addr: &str,
    client_id: u64,
    seq: u64,
    key: &str,
    value: &[u8],
) -> Result<u64, tonic::Status> {
    let mut c = client(addr).await;
    c.set(set_request(client_id, seq, key, value))
        .await
        .map(|r| r.into_inner().index)
}

pub async fn get(addr: &str, key: &str) -> Result<Option<Vec<u8>>, tonic::Status> {
    let mut c = client(addr).await;
    c.get(GetRequest {
        key: key.to_string(),
    })
    .await
    .map(|r| r.into_inner().value)
}

/// Sets through whichever of `nodes` leads, retrying the same (client_id,
/// seq) until it is acknowledged.
pub async fn set_on_cluster(
    cluster: &Cluster,
    nodes: &[usize],
    client_id: u64,
    seq: u64,
    key: &str,
    value: &[u8],
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = cluster.wait_leader(nodes, Duration::from_secs(10)).await;
        match set(&cluster.addr(leader), client_id, seq, key, value).await {
            Ok(index) => return index,
            Err(e) if Instant::now() < deadline => {
                eprintln!("set {key} via node {}: {e:?}; retrying", leader + 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("set {key} never acknowledged: {e:?}"),
        }
    }
}

/// Reads through whichever of `nodes` leads.
pub async fn get_on_cluster(cluster: &Cluster, nodes: &[usize], key: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = cluster.wait_leader(nodes, Duration::from_secs(10)).await;
        match get(&cluster.addr(leader), key).await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("get {key} via node {}: {e:?}; retrying", leader + 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("get {key} never answered: {e:?}"),
        }
    }
}

/// Waits until node `i` has applied at least `index`.
pub async fn wait_applied(cluster: &Cluster, i: usize, index: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = status(&cluster.addr(i)).await
            && s.applied_index >= index
        {
            return;
        }
        if Instant::now() > deadline {
            cluster.dump_logs();
            panic!(
                "node {} did not apply index {index} within {timeout:?}",
                i + 1
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every running node has applied the same index as the
/// leader's commit index, then asserts that their state-machine digests,
/// applied chains and log entry hashes agree (the entries every node still
/// holds: from the highest first log index on).
pub async fn assert_replicas_agree(cluster: &Cluster, timeout: Duration) {
    let nodes = cluster.running();
    let leader = cluster.wait_leader(&nodes, timeout).await;
    let commit = status(&cluster.addr(leader)).await.unwrap().commit_index;
    for &i in &nodes {
        wait_applied(cluster, i, commit, timeout).await;
    }
    let mut first: Option<(usize, StatusResponse)> = None;
    let mut from = 1;
    for &i in &nodes {
        let s = status_of(&cluster.addr(i), true).await.expect("status");
        from = from.max(s.first_log_index);
        assert_eq!(s.applied_index, commit, "node {} applied", i + 1);
        assert_ne!(s.state_digest, 0, "node {} gave no digest", i + 1);
        match &first {
            None => first = Some((i, s)),
            Some((j, f)) => {
                assert_eq!(
                    (s.state_digest, s.applied_chain),
                    (f.state_digest, f.applied_chain),
                    "nodes {} and {} differ at applied index {commit}",
                    i + 1,
                    j + 1
                );
            }
        }
    }
    let mut hashes = Vec::new();
    for &i in &nodes {
        let entries = entry_hashes(&cluster.addr(i), from, commit).await;
        let want = (commit + 1).saturating_sub(from);
        assert_eq!(
            entries.len() as u64,
            want,
            "node {} entries {from}..={commit}",
            i + 1
        );
        hashes.push(entries);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "entry hashes differ in {from}..={commit}"
    );
}

/// The hashes of the entries node `addr` holds in `[from, to]`, asked for
/// a page at a time.
pub async fn entry_hashes(addr: &str, from: u64, to: u64) -> Vec<raftkv::proto::EntryHash> {
    let mut c = client(addr).await;
    let mut out = Vec::new();
    let mut at = from;
    while at <= to {
        let r = c
            .entry_hashes(raftkv::proto::EntryHashesRequest {
                from_index: at,
                to_index: to,
            })
            .await
            .expect("entry hashes")
            .into_inner();
        let Some(last) = r.entries.last().map(|e| e.index) else {
            break;
        };
        out.extend(r.entries);
        at = last + 1;
    }
    out
}

/// Waits for the process of node `i` to exit; returns its status and log.
pub fn wait_exit(
    cluster: &mut Cluster,
    i: usize,
    timeout: Duration,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + timeout;
    let child = cluster.nodes[i].child.as_mut().expect("running");
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            cluster.nodes[i].child = None;
            let log = std::fs::read_to_string(&cluster.nodes[i].log).unwrap_or_default();
            return (status, log);
        }
        if Instant::now() > deadline {
            panic!("node {} still running after {timeout:?}", i + 1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log segment being written in `data_dir` (the newest).
pub fn wal_file(data_dir: &Path) -> PathBuf {
    wal_segments(data_dir).pop().expect("a log segment")
}

/// Every log segment in `data_dir`, oldest first.
pub fn wal_segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .expect("read data dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("wal-") && name.ends_with(".log")
        })
        .collect();
    segments.sort();
    segments
}

/// Every snapshot file in `data_dir`, oldest first.
pub fn snapshot_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .expect("read data dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    files.sort();
    files
}

// ---- bulk writes and snapshot log lines ------------------------------------

/// The key and value of write `i` (of lane `i % 16`): every key is written
/// by one lane only, so its last value is known.
pub fn kv_of(i: u64) -> (String, Vec<u8>) {
    (
        format!("l{}-{}", i % 16, (i / 16) % 20),
        i.to_le_bytes().to_vec(),
    )
}

/// The value the key of write `last` has once writes `0..n` are done.
pub fn final_value(i: u64, n: u64) -> (String, Vec<u8>) {
    let mut last = i;
    while last + 16 * 20 < n {
        last += 16 * 20;
    }
    (kv_of(i).0, kv_of(last).1)
}

/// Writes `n` keys through the leader among `nodes`, 16 at a time (one
/// session per lane). Returns the highest index acknowledged.
pub async fn write_many(cluster: &Cluster, nodes: &[usize], id: u64, n: u64) -> u64 {
    let leader = cluster.wait_leader(nodes, Duration::from_secs(10)).await;
    let client = client(&cluster.addr(leader)).await;
    let mut tasks = Vec::new();
    for lane in 0..16u64 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut highest = 0;
            // One session per lane: each numbers its own requests.
            let client_id = id * 100 + lane;
            for (seq, i) in (lane..n).step_by(16).enumerate() {
                let (key, value) = kv_of(i);
                let req = set_request(client_id, seq as u64 + 1, &key, &value);
                let index = c.set(req).await.expect("set").into_inner().index;
                highest = highest.max(index);
            }
            highest
        }));
    }
    let mut highest = 0;
    for t in tasks {
        highest = highest.max(t.await.unwrap());
    }
    highest
}

pub fn log_of(cluster: &Cluster, i: usize) -> String {
    std::fs::read_to_string(&cluster.nodes[i].log).unwrap_or_default()
}

/// The `index=` of every log line with `what`.
pub fn logged_indexes(log: &str, what: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            let at = l.find(" index=")? + 7;
            l[at..].split(' ').next()?.parse().ok()
        })
        .collect()
}
