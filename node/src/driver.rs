//! The driver: one task owns the Raft core and the state machine. Everything
//! else talks to it through [`DriverHandle`]. Each turn it takes every queued
//! input, then works off the core's `Ready`s: sends messages at once, hands
//! writes to the WAL writer (group commit) and sends the messages that promise
//! durable state only once the writer reports them durable, applies committed
//! entries, answers proposals and serves confirmed reads.
//!
//! At every multiple of `--snapshot-entries` it applies (the same indexes
//! on every replica, so their snapshots can be compared) it copies the
//! state machine and hands the copy to the snapshotter thread; once the snapshot is
//! durable the core and the WAL writer compact behind it. A leader ships
//! its snapshot file to a follower the core says needs it; a follower
//! installs one the core accepts (the WAL writer moves the file into place
//! and records it before anything after it).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use raftkv_core::{
    Entry, EntryKind, Index, Message, MessageKind, NodeId, NotLeader, Raft, Role, SnapshotMeta,
    Term,
};
use raftkv_kv::{Command, KvStore, Reply, Request};
use raftkv_plant::{self as plant, Plant};
use raftkv_wal::{SnapshotFile, snapshot};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tonic::{Code, Status};
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::errors;
use crate::snapshots::{self, Compaction, Snapshots};
use crate::snapshotter::{SnapshotJob, Snapshotter, Taken};
use crate::transport::{SnapshotOutcome, Transport};
use crate::wal_writer::{WalEvent, WalJob, WalWriter};

/// Inputs most handled in one turn before the core's output is worked off.
const MAX_INPUTS_PER_TURN: usize = 4096;

pub type ProposeReply = oneshot::Sender<Result<Reply, Status>>;
/// A read's value and the applied index it was served at.
pub type ReadReply = oneshot::Sender<Result<(Option<Vec<u8>>, Index), Status>>;

/// The node's view of the cluster, answered locally.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub core: raftkv_core::Status,
    pub applied: Index,
    /// Last index covered by the newest snapshot (0 without one).
    pub snapshot_index: Index,
    /// The state machine's digest, when asked for.
    pub digest: Option<u64>,
    /// The hash chained over every applied entry.
    pub applied_chain: u64,
}

/// The hashes of the log entries a node holds in a range.
#[derive(Debug, Clone, Default)]
pub struct EntryHashes {
    /// (index, term, hash of kind and payload), in index order.
    pub entries: Vec<(Index, Term, u64)>,
    pub first_index: Index,
    pub last_index: Index,
}

/// Most entries one `EntryHashes` answer covers.
pub const MAX_ENTRY_HASHES: u64 = 10_000;

/// The committed entries a node holds in a range, with their commands.
#[derive(Debug, Clone, Default)]
pub struct CommittedEntries {
    /// (index, term, the client command it carries), in index order.
    pub entries: Vec<(Index, Term, Option<Request>)>,
    pub first_index: Index,
    pub commit: Index,
}

/// Most entries one `CommittedEntries` answer covers.
pub const MAX_COMMITTED_ENTRIES: u64 = 2_000;

pub enum Input {
    Peer(Message),
    Propose {
        request: Request,
        reply: ProposeReply,
    },
    Read {
        key: String,
        reply: ReadReply,
    },
    Status {
        with_digest: bool,
        reply: oneshot::Sender<NodeStatus>,
    },
    /// Hashes of the entries in `[from, to]` (at most
    /// [`MAX_ENTRY_HASHES`]).
    EntryHashes {
        from: Index,
        to: Index,
        reply: oneshot::Sender<EntryHashes>,
    },
    /// The committed entries in `[from, to]` (at most
    /// [`MAX_COMMITTED_ENTRIES`]).
    CommittedEntries {
        from: Index,
        to: Index,
        reply: oneshot::Sender<CommittedEntries>,
    },
    /// The node is about to stop: a leader first hands leadership to its
    /// most up-to-date follower (TimeoutNow), so that the cluster does not
    /// wait out an election timeout. Answered once this node no longer
    /// leads, or after an election timeout.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    Wal(WalEvent),
    /// A snapshot received from the leader, verified and decoded, with the
    /// message for the core.
    InstallSnapshot {
        msg: Box<Message>,
        incoming: Box<snapshots::Incoming>,
    },
    /// The node's own snapshot is durable (or could not be written).
    SnapshotSaved(Result<Taken, String>),
    /// A snapshot transfer to a follower ended.
    SnapshotSent {
        to: NodeId,
        index: Index,
        outcome: SnapshotOutcome,
        started: Instant,
    },
}

#[derive(Clone)]
pub struct DriverHandle {
    tx: mpsc::UnboundedSender<Input>,
}

impl DriverHandle {
    pub fn send(&self, input: Input) -> Result<(), Status> {
        self.tx
            .send(input)
            .map_err(|_| Status::unavailable("node is shutting down"))
    }
}

struct PendingProposal {
    term: Term,
    reply: ProposeReply,
    /// A CAS replicated as a plain write (a planted mistake): the value it
    /// was compared with, for its reply.
    cas_previous: Option<Option<Vec<u8>>>,
}

struct PendingRead {
    key: String,
    reply: ReadReply,
}

/// A snapshot installed from the leader, logged once its ready is durable.
struct Installed {
    ready: u64,
    index: Index,
    term: Term,
    bytes: u64,
    from: NodeId,
    previous_applied: Index,
    digest: u64,
    chain: u64,
}

pub struct Driver {
    raft: Raft,
    kv: KvStore,
    settings: Arc<Settings>,
    transport: Transport,
    wal: WalWriter,
    /// Readies handed to the WAL writer, oldest first, with the messages to
    /// send once they are durable.
    unpersisted: VecDeque<(u64, Vec<Message>)>,
    proposals: HashMap<Index, PendingProposal>,
    reads: HashMap<u64, PendingRead>,
    /// Confirmed reads waiting for the state machine to reach their index.
    confirmed_reads: BTreeMap<(Index, u64), ()>,
    next_read_ctx: u64,
    /// A pending shutdown's answer and the ticks left to wait for the
    /// leadership hand-off.
    shutdown: Option<(oneshot::Sender<()>, u64)>,
    last_role: Role,
    last_term: Term,
    last_leader: Option<NodeId>,
    snapshots: Snapshots,
    snapshotter: Snapshotter,
    /// Installed snapshots whose ready is not yet durable.
    installs: VecDeque<Installed>,
    /// The driver's own queue, for reports of background work.
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
}

/// Creates the driver and its handle. The WAL writer and the snapshotter
/// report into the driver's own queue. `snapshots` are the snapshot files
/// in the data dir, the newest the one the node restarted from.
pub fn new(
    raft: Raft,
    kv: KvStore,
    settings: Arc<Settings>,
    transport: Transport,
    wal: raftkv_wal::Wal,
    snapshots: BTreeMap<Index, std::path::PathBuf>,
) -> (Driver, DriverHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let report = tx.clone();
    let wal = WalWriter::spawn(wal, move |ev| {
        let _ = report.send(Input::Wal(ev));
    });
    let report = tx.clone();
    let snapshotter = Snapshotter::spawn(settings.data_dir.clone(), move |taken| {
        let _ = report.send(Input::SnapshotSaved(taken));
    });
    let snapshots = Snapshots::new(
        settings.snapshot_entries,
        settings.snapshot_catchup_entries,
        snapshots,
    );
    let status = raft.status();
    let driver = Driver {
        raft,
        kv,
        settings,
        transport,
        wal,
        unpersisted: VecDeque::new(),
        proposals: HashMap::new(),
        reads: HashMap::new(),
        confirmed_reads: BTreeMap::new(),
        next_read_ctx: 1,
        shutdown: None,
        last_role: status.role,
        last_term: status.term,
        last_leader: status.leader,
        snapshots,
        snapshotter,
        installs: VecDeque::new(),
        tx: tx.clone(),
        rx,
    };
    (driver, DriverHandle { tx })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Driver {
    /// Runs until every handle is dropped. Returns an error only when the
    /// write-ahead log failed.
    pub async fn run(mut self) -> Result<(), String> {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.raft.tick();
                    if let Some((_, ticks_left)) = self.shutdown.as_mut() {
                        *ticks_left = ticks_left.saturating_sub(1);
                    }
                }
                input = self.rx.recv() => match input {
                    Some(input) => self.handle(input)?,
                    None => return Ok(()),
                },
            }
            // Let the tasks that are ready queue their inputs first, so that
            // one turn (one WAL write, one append per follower) covers them.
            tokio::task::yield_now().await;
            for _ in 0..MAX_INPUTS_PER_TURN {
                match self.rx.try_recv() {
                    Ok(input) => self.handle(input)?,
                    Err(_) => break,
                }
            }
            self.work_off_ready()?;
            self.observe_role();
            self.maybe_finish_shutdown();
        }
    }

    fn start_shutdown(&mut self, reply: oneshot::Sender<()>) {
        match self.raft.best_transferee() {
            Some(to) => {
                info!(to, "shutting down: handing leadership over");
                self.raft.transfer_leadership(to);
                let ticks = u64::from(self.settings.election_ticks_min);
                self.shutdown = Some((reply, ticks));
            }
            None => {
                let _ = reply.send(());
            }
        }
    }

    fn maybe_finish_shutdown(&mut self) {
        let done = match &self.shutdown {
            Some((_, ticks_left)) => *ticks_left == 0 || self.last_role != Role::Leader,
            None => false,
        };
        if done && let Some((reply, ticks_left)) = self.shutdown.take() {
            if self.last_role == Role::Leader && ticks_left == 0 {
                warn!("leadership hand-off did not finish in time; stopping anyway");
            }
            let _ = reply.send(());
        }
    }

    fn handle(&mut self, input: Input) -> Result<(), String> {
        match input {
            Input::Peer(msg) => self.raft.step(msg),
            Input::InstallSnapshot { msg, incoming } => {
                self.snapshots.receive(*incoming);
                self.raft.step(*msg);
            }
            Input::SnapshotSaved(taken) => self.snapshot_saved(taken),
            Input::SnapshotSent {
                to,
                index,
                outcome,
                started,
            } => {
                let ms = started.elapsed().as_millis() as u64;
                match &outcome {
                    Ok(bytes) => info!(to, index, bytes, ms, "snapshot sent"),
                    Err(error) => warn!(to, index, ms, %error, "snapshot transfer failed"),
                }
                self.raft.on_snapshot_sent(to, index, outcome.is_ok());
            }
            Input::Wal(WalEvent::Compacted {
                through,
                segments_deleted,
                wal_bytes,
            }) => {
                if segments_deleted > 0 {
                    info!(through, segments_deleted, wal_bytes, "log segments deleted");
                }
            }
            Input::Propose { request, reply } => self.propose(request, reply),
            Input::Read { key, reply } => self.read(key, reply),
            Input::Status { with_digest, reply } => {
                let core = self.raft.status();
                let _ = reply.send(NodeStatus {
                    core,
                    applied: self.kv.applied_index(),
                    snapshot_index: core.snapshot_index,
                    digest: with_digest.then(|| self.kv.digest()),
                    applied_chain: self.kv.applied_chain(),
                });
            }
            Input::EntryHashes { from, to, reply } => {
                let _ = reply.send(self.entry_hashes(from, to));
            }
            Input::CommittedEntries { from, to, reply } => {
                let _ = reply.send(self.committed_entries(from, to));
            }
            Input::Shutdown { reply } => self.start_shutdown(reply),
            Input::Wal(WalEvent::Durable(number)) => self.persisted(number),
            Input::Wal(WalEvent::Failed(e)) => {
                error!(error = %e, "write-ahead log failed; stopping");
                return Err(format!("write-ahead log failed: {e}"));
            }
        }
        Ok(())
    }

    fn propose(&mut self, mut request: Request, reply: ProposeReply) {
        // The leader's clock, carried in the entry, drives session expiry
        // identically on every replica.
        request.time_ms = now_ms();
        #[cfg(feature = "planted-mistakes")]
        let is_set = matches!(request.command, raftkv_kv::Command::Set { .. });
        let mut cas_previous = None;
        if plant::is(Plant::CasCheckedAtPropose)
            && self.raft.status().role == Role::Leader
            && let Command::Cas {
                key,
                expected,
                new_value,
            } = request.command.clone()
        {
            let previous = self.kv.get(&key).map(<[u8]>::to_vec);
            if previous != expected {
                let index = self.kv.applied_index();
                let _ = reply.send(Ok(Reply::Cas {
                    applied: false,
                    previous,
                    index,
                }));
                return;
            }
            request.command = Command::Set {
                key,
                value: new_value,
            };
            cas_previous = Some(previous);
        }
        match self.raft.propose(request.encode()) {
            Err(not_leader) => {
                let _ = reply.send(Err(errors::not_leader(not_leader, &self.settings.peers)));
            }
            Ok((index, term)) => {
                #[cfg(feature = "planted-mistakes")]
                if is_set && plant::is(Plant::AckBeforeCommit) {
                    let _ = reply.send(Ok(Reply::Set { index }));
                    return;
                }
                let pending = PendingProposal {
                    term,
                    reply,
                    cas_previous,
                };
                if let Some(old) = self.proposals.insert(index, pending) {
                    let _ = old.reply.send(Err(overwritten(index)));
                }
            }
        }
    }

    fn read(&mut self, key: String, reply: ReadReply) {
        #[cfg(feature = "planted-mistakes")]
        if plant::is(Plant::StaleRead) {
            let value = self.kv.get(&key).map(<[u8]>::to_vec);
            let _ = reply.send(Ok((value, self.kv.applied_index())));
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.reads.insert(ctx, PendingRead { key, reply });
            }
            Err(not_leader) => {
                let _ = reply.send(Err(errors::not_leader(not_leader, &self.settings.peers)));
            }
        }
    }

    fn persisted(&mut self, number: u64) {
        let mut newest = None;
        while let Some((n, _)) = self.unpersisted.front() {
            if *n > number {
                break;
            }
            let (n, messages) = self.unpersisted.pop_front().expect("front exists");
            newest = Some(n);
            self.send_durable(messages);
        }
        if let Some(n) = newest {
            self.raft.on_persisted(n);
        }
        while self.installs.front().is_some_and(|i| i.ready <= number) {
            let i = self.installs.pop_front().expect("front exists");
            info!(
                index = i.index,
                term = i.term,
                bytes = i.bytes,
                from = i.from,
                previous_applied = i.previous_applied,
                digest = i.digest,
                chain = i.chain,
                "snapshot installed"
            );
        }
    }

    /// Sends messages whose promises (a vote, accepted entries) are durable.
    /// Each granted vote is logged: `harness run` checks against these lines
    /// that a node still holds every vote it granted after a restart.
    fn send_durable(&self, messages: Vec<Message>) {
        for m in &messages {
            if m.kind == MessageKind::VoteResponse && !m.reject {
                info!(term = m.term, candidate = m.to, "vote granted");
            }
        }
        self.transport.send(messages);
    }

    fn work_off_ready(&mut self) -> Result<(), String> {
        while self.raft.has_ready() {
            let mut rd = self.raft.ready();
            let (snapshot_msgs, messages) = std::mem::take(&mut rd.messages)
                .into_iter()
                .partition::<Vec<_>, _>(|m| m.kind == MessageKind::Snapshot);
            self.transport.send(messages);
            for msg in snapshot_msgs {
                self.send_snapshot(msg);
            }
            let installed = match &rd.snapshot {
                Some(meta) => Some(self.install_snapshot(meta, rd.number)?),
                None => None,
            };
            #[allow(unused_mut)]
            let mut job = WalJob {
                number: rd.number,
                hard_state: rd.hard_state,
                snapshot: installed,
                truncate_from: rd.truncate_from,
                entries: rd.entries,
            };
            if job.is_empty() && self.unpersisted.is_empty() {
                // Nothing to write and nothing earlier still in flight.
                self.raft.on_persisted(rd.number);
                self.send_durable(rd.persisted_messages);
            } else {
                #[cfg(feature = "planted-mistakes")]
                if plant::is(Plant::VoteNotPersisted)
                    && let Some(hs) = job.hard_state.as_mut()
                {
                    hs.vote = None;
                }
                self.unpersisted
                    .push_back((rd.number, rd.persisted_messages));
                self.wal.submit(job);
            }
            if !rd.committed.is_empty() {
                for entry in rd.committed {
                    let index = entry.index;
                    self.apply(entry);
                    if self.snapshots.due(index) {
                        self.raft.on_applied(index);
                        self.take_snapshot(index);
                    }
                }
                self.raft.on_applied(self.kv.applied_index());
            }
            for read in rd.reads {
                self.confirmed_reads.insert((read.index, read.ctx), ());
            }
            for ctx in rd.failed_reads {
                if let Some(read) = self.reads.remove(&ctx) {
                    let _ = read.reply.send(Err(self.not_leader()));
                }
            }
            self.serve_reads();
        }
        if let Some(ignored) = self.snapshots.drop_incoming() {
            info!(
                index = ignored.index,
                term = ignored.term,
                commit = self.raft.status().commit,
                "snapshot from the leader not installed: stale, or already in the log"
            );
        }
        Ok(())
    }

    // ---- snapshots ------------------------------------------------------

    /// Starts a snapshot of the state machine at the index just applied:
    /// the copy is made here, the encoding and writing on the snapshotter
    /// thread.
    fn take_snapshot(&mut self, applied: Index) {
        let Some(meta) = self.raft.snapshot_meta(applied) else {
            return;
        };
        let started = Instant::now();
        let store = self.kv.clone();
        let copy_ms = started.elapsed().as_secs_f64() * 1000.0;
        if copy_ms >= 50.0 {
            warn!(
                index = applied,
                copy_ms, "copying the state machine for a snapshot was slow"
            );
        }
        self.snapshots.started(applied);
        self.snapshotter.submit(SnapshotJob { meta, store });
    }

    /// The snapshotter finished: the core learns of the snapshot and the
    /// log is compacted behind it.
    fn snapshot_saved(&mut self, taken: Result<Taken, String>) {
        let taken = match taken {
            Ok(t) => t,
            Err(error) => {
                error!(%error, "cannot write a snapshot; trying again at the next interval");
                self.snapshots.failed();
                return;
            }
        };
        let meta = taken.file.meta.clone();
        info!(
            index = meta.index,
            term = meta.term,
            bytes = taken.file.bytes,
            digest = taken.digest,
            chain = taken.chain,
            encode_ms = taken.encode.as_millis() as u64,
            write_ms = taken.write.as_millis() as u64,
            "snapshot taken"
        );
        self.raft.on_snapshot_saved(meta);
        let compaction = self.snapshots.saved(taken.file);
        self.compact(compaction);
    }

    fn compact(&mut self, c: Compaction) {
        self.raft.compact(c.log_through);
        if c.wal_through > 0 {
            self.wal.compact(c.wal_through);
        }
    }

    /// Ships the snapshot the core asks for; its outcome comes back as
    /// [`Input::SnapshotSent`].
    fn send_snapshot(&mut self, msg: Message) {
        let (to, index) = (msg.to, msg.log_index);
        let Some(path) = self.snapshots.file(index) else {
            warn!(
                to,
                index, "the snapshot to send is gone; a newer one goes next"
            );
            self.raft.on_snapshot_sent(to, index, false);
            return;
        };
        info!(to, index, "sending snapshot");
        let report = self.tx.clone();
        let started = Instant::now();
        self.transport.send_snapshot(msg, path, move |outcome| {
            let _ = report.send(Input::SnapshotSent {
                to,
                index,
                outcome,
                started,
            });
        });
    }

    /// The core replaced its log with the leader's snapshot `meta`: the
    /// state machine becomes the one received with it. Returns the file for
    /// the WAL writer to move into place.
    fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        ready: u64,
    ) -> Result<snapshot::Received, String> {
        let incoming = self.snapshots.take_incoming(meta).ok_or_else(|| {
            format!(
                "the Raft core installs snapshot {}/{}, which this node did not receive",
                meta.index, meta.term
            )
        })?;
        let previous = self.kv.applied_index();
        if plant::is(Plant::InstallKeepsStateMachine) {
            self.kv.skip(meta.index);
        } else {
            self.kv = incoming.store;
        }
        // Logged once durable: a restart must find it.
        self.installs.push_back(Installed {
            ready,
            index: meta.index,
            term: meta.term,
            bytes: incoming.received.bytes,
            from: incoming.from,
            previous_applied: previous,
            digest: incoming.digest,
            chain: incoming.chain,
        });
        let file = SnapshotFile {
            meta: meta.clone(),
            path: snapshot::snapshot_path(&self.settings.data_dir, meta.index, meta.term),
            bytes: incoming.received.bytes,
        };
        let compaction = self.snapshots.installed(file);
        self.compact(compaction);
        self.raft.on_applied(self.kv.applied_index());
        Ok(incoming.received)
    }

    /// The not-leader answer naming the leader this node knows of.
    fn not_leader(&self) -> Status {
        let leader = match self.raft.status().leader {
            Some(id) if id != self.settings.id => NotLeader::Leader(id),
            _ => NotLeader::Unknown,
        };
        errors::not_leader(leader, &self.settings.peers)
    }

    fn entry_hashes(&self, from: Index, to: Index) -> EntryHashes {
        let status = self.raft.status();
        let entries = held_range(from, to, &status, status.last_index, MAX_ENTRY_HASHES)
            .filter_map(|i| self.raft.entry(i))
            .map(|e| {
                let hash = raftkv_kv::digest::entry_hash(e.term, e.kind.code(), &e.data);
                (e.index, e.term, hash)
            })
            .collect();
        EntryHashes {
            entries,
            first_index: status.first_index,
            last_index: status.last_index,
        }
    }

    fn committed_entries(&self, from: Index, to: Index) -> CommittedEntries {
        let status = self.raft.status();
        let entries = held_range(from, to, &status, status.commit, MAX_COMMITTED_ENTRIES)
            .filter_map(|i| self.raft.entry(i))
            .map(|e| {
                let command = match e.kind {
                    EntryKind::Command => Request::decode(&e.data).ok(),
                    _ => None,
                };
                (e.index, e.term, command)
            })
            .collect();
        CommittedEntries {
            entries,
            first_index: status.first_index,
            commit: status.commit,
        }
    }

    fn apply(&mut self, entry: Entry) {
        let index = entry.index;
        if index <= self.kv.applied_index() {
            return;
        }
        self.kv
            .record_entry(index, entry.term, entry.kind.code(), &entry.data);
        let reply = match entry.kind {
            EntryKind::Noop => {
                self.kv.skip(index);
                None
            }
            EntryKind::Command => match Request::decode(&entry.data) {
                Ok(request) => {
                    #[cfg(feature = "planted-mistakes")]
                    let request = if plant::is(Plant::DoubleApply) {
                        // A fresh session per entry: every copy of a retried
                        // command applies again.
                        Request {
                            client_id: request.client_id ^ (index << 20) ^ 0x5eed,
                            seq: 1,
                            ..request
                        }
                    } else {
                        request
                    };
                    Some(self.kv.apply(index, &request))
                }
                Err(e) => {
                    error!(index, error = ?e, "undecodable command in the log; skipped");
                    self.kv.skip(index);
                    None
                }
            },
        };
        if let Some(pending) = self.proposals.remove(&index) {
            let answer = if pending.term != entry.term && !plant::is(Plant::ReplyByIndex) {
                Err(overwritten(index))
            } else {
                reply.ok_or_else(|| Status::internal(format!("entry {index} holds no command")))
            };
            let answer = match (pending.cas_previous, answer) {
                (Some(previous), Ok(Reply::Set { index })) => Ok(Reply::Cas {
                    applied: true,
                    previous,
                    index,
                }),
                (_, answer) => answer,
            };
            let _ = pending.reply.send(answer);
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.kv.applied_index();
        while let Some((&(index, ctx), ())) = self.confirmed_reads.first_key_value() {
            if index > applied {
                break;
            }
            self.confirmed_reads.remove(&(index, ctx));
            if let Some(read) = self.reads.remove(&ctx) {
                let value = self.kv.get(&read.key).map(<[u8]>::to_vec);
                let _ = read.reply.send(Ok((value, applied)));
            }
        }
    }

    /// Logs role, term and leader changes; fails proposals whose fate this
    /// node can no longer learn once it stops leading.
    fn observe_role(&mut self) {
        let status = self.raft.status();
        if status.term != self.last_term {
            info!(
                term = status.term,
                previous = self.last_term,
                "term changed"
            );
        }
        if status.role != self.last_role {
            info!(role = ?status.role, term = status.term, previous = ?self.last_role, "role changed");
        }
        if status.leader != self.last_leader {
            match status.leader {
                Some(leader) => info!(leader, term = status.term, "leader known"),
                None => info!(term = status.term, "leader unknown"),
            }
        }
        let lost = self.last_role == Role::Leader
            && (status.role != Role::Leader || status.term != self.last_term);
        if lost && !self.proposals.is_empty() && !plant::is(Plant::ReplyByIndex) {
            warn!(
                pending = self.proposals.len(),
                "leadership lost with proposals pending"
            );
            for (_, pending) in std::mem::take(&mut self.proposals) {
                let answer = if plant::is(Plant::UnknownAsFailure) {
                    self.not_leader()
                } else {
                    errors::outcome_unknown(
                        Code::Unavailable,
                        "leadership lost before the command committed; it may or may not be applied",
                    )
                };
                let _ = pending.reply.send(Err(answer));
            }
        }
        self.last_role = status.role;
        self.last_term = status.term;
        self.last_leader = status.leader;
    }
}

/// The part of `[from, to]` the log still holds up to `end`, at most `max`
/// entries from its start.
fn held_range(
    from: Index,
    to: Index,
    status: &raftkv_core::Status,
    end: Index,
    max: u64,
) -> std::ops::RangeInclusive<Index> {
    let lo = from.max(status.first_index);
    lo..=to.min(end).min(lo.saturating_add(max - 1))
}

/// The log slot of a proposal now holds another leader's entry: this attempt
/// will never apply (a retry with the same seq may still find an earlier one).
fn overwritten(index: Index) -> Status {
    Status::aborted(format!(
        "the entry proposed at index {index} was replaced by a new leader's entry; retry"
    ))
}
