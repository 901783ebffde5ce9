//! The system under test as the run's faults and checks see it, apart from
//! its processes ([`crate::cluster::Cluster`]) and its network
//! ([`super::proxy::Proxies`]), which do not depend on what runs.
//!
//! [`Observe`] is what a target answers about its nodes: who leads and how
//! far each node got (for faults aimed at the leader, a lagging follower or
//! a node just elected), and, where the target can give them, a summary of
//! each node's state and hashes of its log entries (for the end-of-run
//! comparison), and its committed entries with their commands (for the
//! audit of the answers against the log). [`RaftkvObserver`] answers for
//! raftkv from its `Status`, `EntryHashes` and `CommittedEntries` RPCs; another target implements the same trait from its own
//! status API. [`raftkv_tear_tail`] leaves a torn write in a stopped raftkv
//! node's log, for kills that stand for a crash in the middle of a write.
//! [`raftkv_node_args`] gives local raftkv nodes a small snapshot threshold,
//! so that every run crosses snapshots.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use raftkv::client::{Client, ClientOptions};
use raftkv::proto::Role as WireRole;

use super::proxy::NodeId;

/// A node's role as it reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Candidate,
    Follower,
}

/// One node's answer about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    /// The leader this node knows of in `term`.
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
}

/// What a node has applied, summarised for comparison with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub id: NodeId,
    pub commit_index: u64,
    pub applied_index: u64,
    /// First log index the node still holds (older entries were compacted).
    pub first_log_index: u64,
    /// A hash of the whole state machine at `applied_index`.
    pub state_digest: u64,
    /// A hash chained over every entry applied up to `applied_index`.
    pub applied_chain: u64,
}

/// A node's state summary, or why it gave none.
pub type StateAnswer = (NodeId, Result<NodeState, String>);

/// One log entry as a hash: equal on two nodes iff they hold the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHash {
    pub index: u64,
    pub term: u64,
    pub hash: u64,
}

/// The leader among `views`: the node claiming leadership in the highest
/// term.
pub fn leader_of(views: &[NodeView]) -> Option<(NodeId, u64)> {
    views
        .iter()
        .filter(|v| v.role == Role::Leader)
        .max_by_key(|v| v.term)
        .map(|v| (v.id, v.term))
}

/// What the run asks a target about its nodes. Every call bounds each
/// node's answer by a timeout of the implementation's choosing; nodes that
/// do not answer are left out (views) or answer with an error (states).
pub trait Observe: Send + Sync + 'static {
    /// Every answering node's role, term, leader and progress.
    fn views(&self) -> impl Future<Output = Vec<NodeView>> + Send;

    /// Every node's state summary, in node id order; `None` when the target
    /// cannot summarise its state.
    fn states(&self) -> impl Future<Output = Option<Vec<StateAnswer>>> + Send;

    /// The hashes of the entries in `[from, to]` that node `id` holds, in
    /// index order (at most `max_entries_per_call` of them); `None` when the
    /// target cannot list its log.
    fn entry_hashes(
        &self,
        id: NodeId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Option<Result<Vec<EntryHash>, String>>> + Send;

    /// The most entries one [`Observe::entry_hashes`] call answers.
    fn max_entries_per_call(&self) -> u64;

    /// The committed entries in `[from, to]` that node `id` still holds,
    /// with the client commands they carry (as many as the target answers
    /// in one call, from `from` on); `None` when the target cannot list
    /// them.
    fn committed_entries(
        &self,
        id: NodeId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Option<Result<CommittedSlice, String>>> + Send {
        let _ = (id, from, to);
        async { None }
    }
}

/// A client command as a node's log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCommand {
    /// The client session and its sequence number.
    pub client: u64,
    pub seq: u64,
    /// `set`, `cas` or `noop`, as in the history.
    pub f: String,
    pub key: String,
    /// What it writes: a set's value, a cas's new value.
    pub value: String,
}

/// A committed log entry; `command` is None for an entry that carries no
/// client command (a new leader's no-op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEntry {
    pub index: u64,
    pub term: u64,
    pub command: Option<LoggedCommand>,
}

/// One node's answer: committed entries in index order, and how far its
/// log and its commit reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedSlice {
    pub entries: Vec<CommittedEntry>,
    pub first_index: u64,
    pub commit_index: u64,
}

/// [`Observe`] for raftkv nodes, over their `Status` and `EntryHashes` RPCs.
pub struct RaftkvObserver {
    client: Client,
    /// Node id -> position in the client's address list.
    positions: BTreeMap<NodeId, usize>,
}

impl RaftkvObserver {
    /// Asks the nodes at `addrs` (their client addresses), each call bounded
    /// by `timeout`.
    pub async fn connect(
        addrs: &BTreeMap<NodeId, SocketAddr>,
        timeout: Duration,
    ) -> Result<RaftkvObserver, String> {
        let list: Vec<String> = addrs.values().map(|a| a.to_string()).collect();
        let options = ClientOptions {
            request_timeout: timeout,
            overall_timeout: timeout,
            connect_timeout: timeout,
            ..ClientOptions::default()
        };
        let client = Client::connect(&list, options)
            .await
            .map_err(|e| e.to_string())?;
        let positions = addrs.keys().enumerate().map(|(i, &id)| (id, i)).collect();
        Ok(RaftkvObserver { client, positions })
    }
}

fn role(wire: i32) -> Role {
    if wire == WireRole::Leader as i32 {
        Role::Leader
    } else if wire == WireRole::Candidate as i32 {
        Role::Candidate
    } else {
        Role::Follower
    }
}

impl Observe for RaftkvObserver {
    async fn views(&self) -> Vec<NodeView> {
        self.client
            .status_all()
            .await
            .into_iter()
            .filter_map(|s| s.status.ok())
            .filter(|s| s.node_id != 0)
            .map(|s| NodeView {
                id: s.node_id,
                role: role(s.role),
                term: s.term,
                leader: (s.leader_id != 0).then_some(s.leader_id),
                commit_index: s.commit_index,
                applied_index: s.applied_index,
            })
            .collect()
    }

    async fn states(&self) -> Option<Vec<StateAnswer>> {
        let answers = self.client.status_all_with_digest().await;
        let ids: Vec<NodeId> = self.positions.keys().copied().collect();
        Some(
            ids.into_iter()
                .zip(answers)
                .map(|(id, answer)| {
                    let state = answer.status.map(|s| NodeState {
                        id,
                        commit_index: s.commit_index,
                        applied_index: s.applied_index,
                        first_log_index: s.first_log_index,
                        state_digest: s.state_digest,
                        applied_chain: s.applied_chain,
                    });
                    (id, state)
                })
                .collect(),
        )
    }

    async fn entry_hashes(
        &self,
        id: NodeId,
        from: u64,
        to: u64,
    ) -> Option<Result<Vec<EntryHash>, String>> {
        let Some(&position) = self.positions.get(&id) else {
            return Some(Err(format!("no node {id}")));
        };
        Some(self.client.entry_hashes(position, from, to).await.map(|r| {
            r.entries
                .into_iter()
                .map(|e| EntryHash {
                    index: e.index,
                    term: e.term,
                    hash: e.hash,
                })
                .collect()
        }))
    }

    fn max_entries_per_call(&self) -> u64 {
        10_000
    }

    async fn committed_entries(
        &self,
        id: NodeId,
        from: u64,
        to: u64,
    ) -> Option<Result<CommittedSlice, String>> {
        let Some(&position) = self.positions.get(&id) else {
            return Some(Err(format!("no node {id}")));
        };
        Some(
            self.client
                .committed_entries(position, from, to)
                .await
                .map(|r| CommittedSlice {
                    entries: r
                        .entries
                        .into_iter()
                        .map(|e| CommittedEntry {
                            index: e.index,
                            term: e.term,
                            command: e.command.map(|c| {
                                let session = c.session.unwrap_or_default();
                                LoggedCommand {
                                    client: session.client_id,
                                    seq: session.seq,
                                    f: c.op,
                                    key: c.key,
                                    value: String::from_utf8_lossy(&c.value).into_owned(),
                                }
                            }),
                        })
                        .collect(),
                    first_index: r.first_log_index,
                    commit_index: r.commit_index,
                }),
        )
    }
}

/// Flags every local raftkv node gets unless `--node-arg` sets them: a
/// snapshot every few hundred applied entries, and a short log kept behind
/// it, so that a node killed or cut off for a fault period comes back
/// through InstallSnapshot and every run crosses snapshots and compaction
/// (the node's own defaults, 10,000 and 5,000, are rarely reached in a run).
pub const RAFTKV_NODE_DEFAULTS: &[(&str, &str)] = &[
    ("--snapshot-entries", "300"),
    ("--snapshot-catchup-entries", "100"),
];

/// The extra arguments of a local raftkv node: [`RAFTKV_NODE_DEFAULTS`] not
/// given in `given` (as `--flag=value` or `--flag value`), then `given`.
pub fn raftkv_node_args(given: &[String]) -> Vec<String> {
    let mut args: Vec<String> = RAFTKV_NODE_DEFAULTS
        .iter()
        .filter(|(flag, _)| {
            !given
                .iter()
                .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
        })
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect();
    args.extend(given.iter().cloned());
    args
}

/// The newest segment of a raftkv node's write-ahead log in `data_dir`
/// (`wal-{seq:016x}-{first:016x}.log`, the highest `seq` last in name
/// order), or the single `wal.log` of older versions.
fn raftkv_last_segment(data_dir: &Path) -> Option<std::path::PathBuf> {
    let newest = std::fs::read_dir(data_dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wal-") && n.ends_with(".log") && n.len() == 41)
        .max();
    match newest {
        Some(name) => Some(data_dir.join(name)),
        None => Some(data_dir.join("wal.log")).filter(|p| p.exists()),
    }
}

/// A torn write the harness left at the end of a stopped node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornWrite {
    /// The log file it went to.
    pub file: std::path::PathBuf,
    /// Where the whole records the node wrote ended: a repair at restart
    /// must keep every byte before it (they were complete when it died).
    pub kept: u64,
    /// The bytes appended.
    pub bytes: usize,
}

/// Appends the start of a record that never finished to the write-ahead log
/// in `data_dir` (its newest segment), as a crash in the middle of an append
/// leaves it: a frame header (`len`, `crc`, `type`) announcing more bytes
/// than follow, and a few of them. Nothing after it is valid, so a correct
/// node cuts it as a torn tail at start-up and loses nothing that was
/// durable. The node must be stopped. `None` when there is no log yet.
pub fn raftkv_tear_tail(
    data_dir: &Path,
    rng: &mut ChaCha8Rng,
) -> Result<Option<TornWrite>, String> {
    let Some(path) = raftkv_last_segment(data_dir) else {
        return Ok(None);
    };
    let written =
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kept = raftkv_whole_frames_end(&written);
    let announced: u32 = rng.random_range(256..4096);
    let follow = rng.random_range(0..32usize);
    let mut torn = Vec::with_capacity(9 + follow);
    torn.extend_from_slice(&announced.to_le_bytes());
    torn.extend_from_slice(&rng.random::<u32>().to_le_bytes());
    torn.push(rng.random_range(1..=3u8));
    torn.extend((0..follow).map(|_| rng.random::<u8>()));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.write_all(&torn)
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))?;
    Ok(Some(TornWrite {
        file: path,
        kept,
        bytes: torn.len(),
    }))
}

/// Where the last whole frame of a raftkv log segment ends, going by the
/// frames' lengths (`[len u32 LE][crc u32][len bytes]`): the end of the
/// file, unless the node itself died in the middle of a write or a torn
/// write was left already. Lengths only, not the WAL's own reader: this
/// judges that reader's repair.
fn raftkv_whole_frames_end(bytes: &[u8]) -> u64 {
    const HEADER: usize = 8;
    let mut pos = 0usize;
    while let Some(len) = bytes.get(pos..pos + 4) {
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let end = pos.saturating_add(HEADER).saturating_add(len);
        if len == 0 || end > bytes.len() {
            break;
        }
        pos = end;
    }
    pos as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: NodeId, role: Role, term: u64) -> NodeView {
        NodeView {
            id,
            role,
            term,
            leader: None,
            commit_index: 0,
            applied_index: 0,
        }
    }

    #[test]
    fn the_leader_of_the_highest_term_wins() {
        assert_eq!(leader_of(&[]), None);
        let views = [
            view(1, Role::Leader, 2),
            view(2, Role::Leader, 3),
            view(3, Role::Follower, 4),
        ];
        assert_eq!(leader_of(&views), Some((2, 3)));
    }

    #[test]
    fn node_defaults_give_way_to_given_flags() {
        let given = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            raftkv_node_args(&given(&["--election-timeout-min-ms=150"])),
            given(&[
                "--snapshot-entries=300",
                "--snapshot-catchup-entries=100",
                "--election-timeout-min-ms=150"
            ])
        );
        assert_eq!(
            raftkv_node_args(&given(&["--snapshot-entries=0"])),
            given(&["--snapshot-catchup-entries=100", "--snapshot-entries=0"])
        );
        assert_eq!(
            raftkv_node_args(&given(&["--snapshot-catchup-entries", "7"])),
            given(&["--snapshot-entries=300", "--snapshot-catchup-entries", "7"])
        );
    }

    #[test]
    fn a_torn_tail_goes_to_the_newest_segment_and_announces_more_than_follows() {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(raftkv_tear_tail(dir.path(), &mut rng), Ok(None));
        let old = dir.path().join(format!("wal-{:016x}-{:016x}.log", 1, 1));
        let new = dir.path().join(format!("wal-{:016x}-{:016x}.log", 2, 900));
        std::fs::write(&old, b"older").unwrap();
        std::fs::write(dir.path().join("snap-1.snap"), b"snapshot").unwrap();
        // Two whole frames (bodies of 3 and 1 bytes), then the start of one
        // the node itself never finished.
        let records: &[u8] = &[
            3, 0, 0, 0, 9, 9, 9, 9, 2, 1, 1, 1, 0, 0, 0, 7, 7, 7, 7, 2, 50, 0,
        ];
        for _ in 0..20 {
            std::fs::write(&new, records).unwrap();
            let torn = raftkv_tear_tail(dir.path(), &mut rng).unwrap().unwrap();
            assert_eq!((torn.file.as_path(), torn.kept), (new.as_path(), 20));
            let bytes = std::fs::read(&new).unwrap();
            assert_eq!(bytes.len(), records.len() + torn.bytes);
            let tail = &bytes[records.len()..];
            let announced = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize;
            assert!(announced > tail.len(), "{announced} <= {}", tail.len());
        }
        assert_eq!(std::fs::read(&old).unwrap(), b"older");
        // A log from before segments.
        let legacy = tempfile::tempdir().unwrap();
        std::fs::write(legacy.path().join("wal.log"), b"records").unwrap();
        let torn = raftkv_tear_tail(legacy.path(), &mut rng).unwrap().unwrap();
        assert!(torn.bytes >= 9);
        // Killed again before it restarted: the whole records end where
        // they did, before the first torn write.
        let again = raftkv_tear_tail(dir.path(), &mut rng).unwrap().unwrap();
        assert_eq!(again.kept, 20);
        assert_eq!(raftkv_whole_frames_end(&[1, 0, 0, 0, 0, 0, 0, 0, 2]), 9);
        assert_eq!(raftkv_whole_frames_end(&[1, 0, 0, 0, 0, 0, 0, 0]), 0);
    }
}
