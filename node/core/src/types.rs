//! The data types of the public API.

pub type NodeId = u64;
pub type Term = u64;
pub type Index = u64;

/// What a log entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An opaque command for the state machine.
    Command,
    /// The entry a new leader appends at the start of its term.
    Noop,
}

impl EntryKind {
    /// A stable one-byte code, for hashes and encodings.
    pub fn code(self) -> u8 {
        match self {
            EntryKind::Command => 0,
            EntryKind::Noop => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
    pub data: Vec<u8>,
}

/// The state that must be durable before any reply that depends on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    /// Candidate voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// Highest index known committed (persisting it is an optimisation).
    pub commit: Index,
}

/// What a snapshot covers: the state machine after applying every entry up
/// to `index` (whose term is `term`), in a cluster of `voters`. The core
/// holds only this metadata; the caller stores and ships the data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    /// Every voter, sorted.
    pub voters: Vec<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Append,
    AppendResponse,
    Vote,
    VoteResponse,
    PreVote,
    PreVoteResponse,
    Heartbeat,
    HeartbeatResponse,
    TimeoutNow,
    /// InstallSnapshot: the leader's snapshot (`snapshot`) for a follower
    /// that needs entries the leader compacted. The core sends only the
    /// metadata; the caller attaches the data, ships it and reports the
    /// outcome with [`Raft::on_snapshot_sent`](crate::Raft::on_snapshot_sent).
    /// The follower answers with an AppendResponse.
    Snapshot,
}

/// A Raft message. Flat like etcd's raftpb so that it maps 1:1 onto
/// `raftkv.v1.RaftMessage`; fields a kind does not use are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    /// Append: index of the entry before `entries`. Vote/PreVote: the
    /// candidate's last index. AppendResponse: the highest index matched
    /// (or, on reject, the index that was rejected).
    pub log_index: Index,
    /// Append: term of the entry at `log_index`. Vote/PreVote: the
    /// candidate's last term.
    pub log_term: Term,
    pub entries: Vec<Entry>,
    /// Leader's commit index (Append, Heartbeat).
    pub commit: Index,
    /// Responses: the request was refused.
    pub reject: bool,
    /// AppendResponse on reject: the first index of the conflicting term in
    /// the follower's log (or its last index + 1 if the log is too short).
    pub reject_hint: Index,
    /// AppendResponse on reject: the term of the follower's entry at the
    /// rejected index (0 if the log is too short).
    pub conflict_term: Term,
    /// Heartbeat/Append and their responses: the ReadIndex round being
    /// confirmed, echoed back by the follower.
    pub read_ctx: u64,
    /// Snapshot: what the snapshot covers.
    pub snapshot: Option<SnapshotMeta>,
}

impl Message {
    /// A message of `kind` with every optional field zero.
    pub fn new(kind: MessageKind, from: NodeId, to: NodeId, term: Term) -> Self {
        Message {
            kind,
            from,
            to,
            term,
            log_index: 0,
            log_term: 0,
            entries: Vec::new(),
            commit: 0,
            reject: false,
            reject_hint: 0,
            conflict_term: 0,
            read_ctx: 0,
            snapshot: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// Tunables, in ticks and counts. The caller decides how long a tick is.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    /// Every voter, this node included.
    pub voters: Vec<NodeId>,
    /// Election timeout is drawn uniformly from
    /// `[election_ticks_min, election_ticks_max)` each time it is reset.
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub heartbeat_ticks: u32,
    /// Most entries in one Append message.
    pub max_entries_per_append: usize,
    /// Most payload bytes in one Append message (at least one entry is sent).
    pub max_bytes_per_append: usize,
    /// Most Append messages in flight to one follower.
    pub max_inflight_appends: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

impl Config {
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            voters,
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            max_entries_per_append: 1024,
            max_bytes_per_append: 1 << 20,
            max_inflight_appends: 16,
            pre_vote: true,
            check_quorum: true,
        }
    }
}

/// What was durable when the node (re)started.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub hard_state: HardState,
    /// The newest snapshot, already loaded into the caller's state machine:
    /// entries up to its index count as applied.
    pub snapshot: Option<SnapshotMeta>,
    /// The log, contiguous. Without a snapshot it starts at index 1; with
    /// one it starts at or below the snapshot's index + 1 (entries the
    /// snapshot covers may be kept for followers that lag) and, if it holds
    /// the snapshot's index, has the snapshot's term there.
    pub entries: Vec<Entry>,
}

/// A read confirmed by ReadIndex: serve it once applied >= `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: Index,
}

/// Everything the caller must do, in the order documented on the crate.
#[derive(Debug, Default)]
pub struct Ready {
    /// Pass to [`Raft::on_persisted`] once this ready's writes are durable.
    pub number: u64,
    /// Messages that may be sent at once, before this ready is durable: the
    /// leader's Appends and heartbeats (§10.2.1).
    pub messages: Vec<Message>,
    /// Set when term, vote or commit changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader that replaces the log: persist
    /// it (the log now continues after its index, every earlier entry is
    /// gone) before `truncate_from` and `entries`, and restore the state
    /// machine from it (then report its index with
    /// [`Raft::on_applied`](crate::Raft::on_applied)).
    pub snapshot: Option<SnapshotMeta>,
    /// Delete every entry with index >= this before appending `entries`.
    pub truncate_from: Option<Index>,
    pub entries: Vec<Entry>,
    /// Messages to send only after this ready is durable: vote requests and
    /// responses, append responses, anything that promises persisted state.
    pub persisted_messages: Vec<Message>,
    /// Committed entries to apply, in order; never beyond what is durable.
    pub committed: Vec<Entry>,
    /// Reads now safe to serve once applied >= their index.
    pub reads: Vec<ReadState>,
    /// Read contexts that will never be confirmed here (leadership lost or
    /// never held): answer them with an error so clients retry elsewhere.
    pub failed_reads: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLeader {
    /// Another node is believed to lead.
    Leader(NodeId),
    /// No leader is known.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub vote: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub commit: Index,
    pub applied: Index,
    /// First index held in the log.
    pub first_index: Index,
    pub last_index: Index,
    /// Last index covered by the newest snapshot (0 without one).
    pub snapshot_index: Index,
}
