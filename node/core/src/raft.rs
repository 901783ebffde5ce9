//! The Raft state machine: roles, elections, replication, commitment.

use std::collections::{BTreeMap, VecDeque};

use raftkv_plant::{self as plant, Plant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::log::RaftLog;
use crate::progress::{Progress, ProgressState};
use crate::quorum::{self, VoteResult};
use crate::read_only::ReadOnly;
use crate::types::*;

/// `read_ctx` of a Vote request sent by a campaign that a TimeoutNow
/// started: such a request bypasses the receivers' leader lease.
pub const CAMPAIGN_TRANSFER: u64 = 1;

/// Heartbeat responses without progress after which a replicating follower
/// is probed again (an Append was probably lost).
const STALL_HEARTBEATS: u32 = 2;

/// The Raft state machine. See the crate docs for how to drive it.
pub struct Raft {
    cfg: Config,
    id: NodeId,
    /// Voters other than this node, sorted.
    peers: Vec<NodeId>,
    /// Every voter, sorted.
    voters: Vec<NodeId>,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    progress: BTreeMap<NodeId, Progress>,
    /// Heartbeat responses seen per follower while it made no progress.
    stalls: BTreeMap<NodeId, (Index, u32)>,
    votes: BTreeMap<NodeId, bool>,
    read_only: ReadOnly,
    rng: ChaCha8Rng,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_timeout: u32,
    transferee: Option<NodeId>,
    /// Hard state last handed out in a `Ready`.
    handed_hs: HardState,
    /// Hard state last reported durable.
    durable_hs: HardState,
    /// Handed-out hard states not yet durable, by ready number.
    hs_writes: VecDeque<(u64, HardState)>,
    ready_number: u64,
    msgs: Vec<Message>,
    persisted_msgs: Vec<Message>,
    reads: Vec<ReadState>,
    failed_reads: Vec<u64>,
    /// A snapshot from the leader that replaced the log, for the next ready.
    installed: Option<SnapshotMeta>,
    /// The leader has entries or progress changes to send at the next ready.
    replicate_pending: bool,
}

impl Raft {
    /// A node restored from durable state; election timeouts are drawn from
    /// an RNG seeded with `seed`.
    pub fn new(config: Config, restored: Restored, seed: u64) -> Result<Raft, String> {
        validate(&config, &restored)?;
        let hs = restored.hard_state;
        let mut peers: Vec<NodeId> = config
            .voters
            .iter()
            .copied()
            .filter(|&v| v != config.id)
            .collect();
        peers.sort_unstable();
        peers.dedup();
        let mut voters = peers.clone();
        voters.push(config.id);
        voters.sort_unstable();
        let mut raft = Raft {
            id: config.id,
            peers,
            voters,
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log: RaftLog::restored(restored.snapshot, restored.entries, hs.commit),
            progress: BTreeMap::new(),
            stalls: BTreeMap::new(),
            votes: BTreeMap::new(),
            read_only: ReadOnly::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            transferee: None,
            handed_hs: hs,
            durable_hs: hs,
            hs_writes: VecDeque::new(),
            ready_number: 0,
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            reads: Vec::new(),
            failed_reads: Vec::new(),
            installed: None,
            replicate_pending: false,
            cfg: config,
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ---- inputs -------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.role == Role::Leader {
            self.heartbeat_elapsed += 1;
            if self.election_elapsed >= self.cfg.election_ticks_min {
                self.election_elapsed = 0;
                if self.cfg.check_quorum && !self.quorum_active() {
                    self.become_follower(self.term, None);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
                // A transfer that has not finished within an election
                // timeout is abandoned.
                self.transferee = None;
            }
            if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                self.heartbeat_elapsed = 0;
                self.broadcast_heartbeat();
            }
        } else if self.election_elapsed >= self.randomized_timeout {
            self.campaign(self.cfg.pre_vote, false);
        }
    }

    /// Handles a message from a peer. Stale, duplicated and reordered
    /// messages are handled safely; messages for another node are ignored.
    pub fn step(&mut self, m: Message) {
        if m.to != self.id || m.from == self.id || !self.peers.contains(&m.from) {
            return;
        }
        if m.term > self.term {
            if matches!(m.kind, MessageKind::Vote | MessageKind::PreVote)
                && m.read_ctx != CAMPAIGN_TRANSFER
                && self.in_lease()
            {
                // We heard from a live leader recently: a disruptive node
                // coming back from a partition must not depose it.
                return;
            }
            match m.kind {
                MessageKind::PreVote => {}
                MessageKind::PreVoteResponse if m.term == self.term + 1 => {}
                MessageKind::Append
                | MessageKind::Heartbeat
                | MessageKind::Snapshot
                | MessageKind::TimeoutNow => self.become_follower(m.term, Some(m.from)),
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            if m.kind == MessageKind::Append && plant::is(Plant::StaleTermAppend) {
                self.handle_append(m);
                return;
            }
            match m.kind {
                MessageKind::Append | MessageKind::Heartbeat | MessageKind::Snapshot => {
                    // Tell a stale leader about the newer term so it steps
                    // down (it may have been cut off by a partition).
                    let mut resp =
                        Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
                    resp.reject = true;
                    self.msgs.push(resp);
                }
                MessageKind::PreVote => {
                    let mut resp =
                        Message::new(MessageKind::PreVoteResponse, self.id, m.from, self.term);
                    resp.reject = true;
                    self.msgs.push(resp);
                }
                _ => {}
            }
            return;
        }
        match m.kind {
            MessageKind::Append => {
                if self.role == Role::Leader {
                    return;
                }
                self.become_follower(self.term, Some(m.from));
                self.handle_append(m);
            }
            MessageKind::Heartbeat => {
                if self.role == Role::Leader {
                    return;
                }
                self.become_follower(self.term, Some(m.from));
                self.handle_heartbeat(m);
            }
            MessageKind::Snapshot => {
                if self.role == Role::Leader {
                    return;
                }
                self.become_follower(self.term, Some(m.from));
                self.handle_snapshot(m);
            }
            MessageKind::TimeoutNow => {
                if self.role == Role::Follower && self.leader == Some(m.from) {
                    self.campaign(false, true);
                }
            }
            MessageKind::Vote | MessageKind::PreVote => self.handle_vote_request(m),
            MessageKind::VoteResponse => {
                if self.role == Role::Candidate {
                    self.votes.insert(m.from, !m.reject);
                    self.poll();
                }
            }
            MessageKind::PreVoteResponse => {
                if self.role == Role::PreCandidate && m.term == self.term + 1 {
                    self.votes.insert(m.from, !m.reject);
                    self.poll();
                }
            }
            MessageKind::AppendResponse => {
                if self.role == Role::Leader {
                    self.handle_append_response(m);
                }
            }
            MessageKind::HeartbeatResponse => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(m);
                }
            }
        }
    }

    /// Appends a command to the leader's log; returns its (index, term).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        self.check_leader()?;
        if let Some(to) = self.transferee {
            return Err(NotLeader::Leader(to));
        }
        let index = self.log.last_index() + 1;
        self.log.append(Entry {
            term: self.term,
            index,
            kind: EntryKind::Command,
            data,
        });
        self.replicate_pending = true;
        Ok((index, self.term))
    }

    /// Starts (or joins) a ReadIndex round for the read `ctx`; the answer
    /// comes in `Ready::reads` or `Ready::failed_reads`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        self.check_leader()?;
        self.read_only.queue(ctx);
        Ok(())
    }

    /// Asks the leader to hand leadership to `to` (TimeoutNow once `to` is
    /// up to date).
    pub fn transfer_leadership(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.peers.contains(&to) {
            return;
        }
        if self.transferee == Some(to) {
            return;
        }
        self.transferee = Some(to);
        self.election_elapsed = 0;
        if self.progress[&to].match_index == self.log.last_index() {
            self.send_timeout_now(to);
        } else {
            self.replicate_pending = true;
        }
    }

    /// The follower a leader should hand over to: the one with the most of
    /// the log, preferring one heard from recently. None unless leader.
    pub fn best_transferee(&self) -> Option<NodeId> {
        if self.role != Role::Leader {
            return None;
        }
        self.progress
            .iter()
            .max_by_key(|&(&id, pr)| (pr.recent_active, pr.match_index, std::cmp::Reverse(id)))
            .map(|(&id, _)| id)
    }

    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.persisted_msgs.is_empty()
            || self.hard_state() != self.handed_hs
            || self.log.has_unstable()
            || self.installed.is_some()
            || self.log.has_committed_to_hand_out()
            || !self.reads.is_empty()
            || !self.failed_reads.is_empty()
            || (self.role == Role::Leader && self.replicate_pending)
            || self.can_start_read_round()
    }

    pub fn ready(&mut self) -> Ready {
        self.start_read_round();
        if self.role == Role::Leader && self.replicate_pending {
            self.replicate_pending = false;
            for to in self.peers.clone() {
                self.send_appends(to);
            }
        }
        self.ready_number += 1;
        let number = self.ready_number;
        let hs = self.hard_state();
        let hard_state = (hs != self.handed_hs).then(|| {
            self.handed_hs = hs;
            self.hs_writes.push_back((number, hs));
            hs
        });
        let (truncate_from, entries) = self.log.take_unstable(number);
        Ready {
            number,
            messages: std::mem::take(&mut self.msgs),
            hard_state,
            snapshot: self.installed.take(),
            truncate_from,
            entries,
            persisted_messages: std::mem::take(&mut self.persisted_msgs),
            committed: self.log.take_committed(),
            reads: std::mem::take(&mut self.reads),
            failed_reads: std::mem::take(&mut self.failed_reads),
        }
    }

    /// Reports that the writes of ready `number` (and all before) are durable.
    pub fn on_persisted(&mut self, number: u64) {
        self.log.persisted(number);
        while let Some(&(n, hs)) = self.hs_writes.front() {
            if n > number {
                break;
            }
            self.durable_hs = hs;
            self.hs_writes.pop_front();
        }
        match self.role {
            Role::Leader => self.maybe_commit(),
            Role::Candidate => self.poll(),
            _ => {}
        }
    }

    /// Reports that the state machine has applied up to `index`.
    pub fn on_applied(&mut self, index: Index) {
        self.log.applied = self.log.applied.max(index.min(self.log.handed_out));
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.committed,
            applied: self.log.applied,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot().index,
        }
    }

    /// The node's log entry at `index`, if any (for inspection and tests).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// Last index reported durable on the local disk.
    pub fn durable_index(&self) -> Index {
        self.log.durable()
    }

    // ---- snapshots and compaction -------------------------------------

    /// The metadata of a snapshot of the state machine at applied `index`,
    /// for the caller to store with the data; `None` unless `index` is
    /// applied and its term still known.
    pub fn snapshot_meta(&self, index: Index) -> Option<SnapshotMeta> {
        if index == 0 || index > self.log.applied {
            return None;
        }
        Some(SnapshotMeta {
            index,
            term: self.log.term(index)?,
            voters: self.voters.clone(),
        })
    }

    /// The caller made a snapshot durable (one built from
    /// [`Raft::snapshot_meta`]): from now on a follower that needs entries
    /// up to its index gets it. Older snapshots than the current are ignored.
    pub fn on_snapshot_saved(&mut self, meta: SnapshotMeta) {
        debug_assert!(meta.index <= self.log.applied, "snapshot beyond applied");
        debug_assert_eq!(self.log.term(meta.index).unwrap_or(meta.term), meta.term);
        self.log.snapshot_saved(meta);
    }

    /// The newest snapshot (index 0 without one).
    pub fn snapshot(&self) -> &SnapshotMeta {
        self.log.snapshot()
    }

    /// Drops the log entries up to `index`, as far as the newest snapshot
    /// covers them and they are applied (it never goes beyond either).
    /// Returns the log's new first index.
    pub fn compact(&mut self, index: Index) -> Index {
        self.log.compact(index)
    }

    /// Reports how the transfer of the snapshot of `index` to `to` ended
    /// (the [`MessageKind::Snapshot`] message the caller shipped). A report
    /// that no longer matches the follower's state is ignored.
    pub fn on_snapshot_sent(&mut self, to: NodeId, index: Index, success: bool) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        if pr.state == ProgressState::Snapshot && pr.pending_snapshot == index {
            pr.snapshot_sent(success);
        }
    }

    // ---- roles --------------------------------------------------------

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    fn check_leader(&self) -> Result<(), NotLeader> {
        match (self.role, self.leader) {
            (Role::Leader, _) => Ok(()),
            (_, Some(l)) => Err(NotLeader::Leader(l)),
            (_, None) => Err(NotLeader::Unknown),
        }
    }

    /// True while a live leader was heard from within the minimum election
    /// timeout.
    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_ticks_min
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let (lo, hi) = (self.cfg.election_ticks_min, self.cfg.election_ticks_max);
        self.randomized_timeout = if hi > lo {
            self.rng.random_range(lo..hi)
        } else {
            lo
        };
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.read_only.fail_all(&mut self.failed_reads);
            self.progress.clear();
            self.transferee = None;
        }
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        let changed = self.role != Role::Follower || self.leader != leader;
        self.role = Role::Follower;
        self.leader = leader;
        if changed || leader.is_some() {
            self.reset_election_timer();
        }
    }

    /// Starts an election: a PreVote round first if `pre`, else a real one.
    /// `transfer` marks a campaign started by TimeoutNow.
    fn campaign(&mut self, pre: bool, transfer: bool) {
        self.reset_election_timer();
        self.leader = None;
        self.votes.clear();
        let (kind, term) = if pre {
            self.role = Role::PreCandidate;
            (MessageKind::PreVote, self.term + 1)
        } else {
            self.role = Role::Candidate;
            self.term += 1;
            self.vote = Some(self.id);
            (MessageKind::Vote, self.term)
        };
        for &to in &self.peers {
            let mut m = Message::new(kind, self.id, to, term);
            m.log_index = self.log.last_index();
            m.log_term = self.log.last_term();
            if transfer {
                m.read_ctx = CAMPAIGN_TRANSFER;
            }
            if pre {
                // A pre-vote promises nothing: it may go out at once.
                self.msgs.push(m);
            } else {
                self.persisted_msgs.push(m);
            }
        }
        self.poll();
    }

    /// Counts votes. Our own vote counts once it is durable, so that a
    /// crash cannot make us vote twice in one term.
    fn poll(&mut self) {
        let own = match self.role {
            Role::PreCandidate => true,
            Role::Candidate => {
                self.durable_hs.term == self.term && self.durable_hs.vote == Some(self.id)
            }
            _ => return,
        };
        let granted = own as usize + self.votes.values().filter(|&&g| g).count();
        let rejected = self.votes.values().filter(|&&g| !g).count();
        match quorum::tally(self.peers.len() + 1, granted, rejected) {
            VoteResult::Won if self.role == Role::PreCandidate => self.campaign(false, false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.transferee = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let next = self.log.last_index() + 1;
        self.progress = self
            .peers
            .iter()
            .map(|&p| (p, Progress::new(next)))
            .collect();
        self.stalls.clear();
        self.log.append(Entry {
            term: self.term,
            index: next,
            kind: EntryKind::Noop,
            data: Vec::new(),
        });
        self.replicate_pending = true;
        self.maybe_commit();
    }

    fn quorum_active(&self) -> bool {
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        active >= quorum::majority(self.peers.len() + 1)
    }

    // ---- elections ----------------------------------------------------

    fn handle_vote_request(&mut self, m: Message) {
        let pre = m.kind == MessageKind::PreVote;
        let up_to_date =
            self.log.is_up_to_date(m.log_index, m.log_term) || plant::is(Plant::VoteIgnoresLog);
        let grant = if pre {
            m.term > self.term && up_to_date
        } else {
            let can_vote =
                self.vote == Some(m.from) || (self.vote.is_none() && self.leader.is_none());
            can_vote && up_to_date
        };
        let kind = if pre {
            MessageKind::PreVoteResponse
        } else {
            MessageKind::VoteResponse
        };
        // A pre-vote answer carries the term it was asked about (or ours if
        // higher), a vote answer our term.
        let mut resp = Message::new(kind, self.id, m.from, m.term.max(self.term));
        resp.reject = !grant;
        if pre {
            self.msgs.push(resp);
        } else {
            if grant {
                self.vote = Some(m.from);
                self.reset_election_timer();
            }
            // Sent only once the vote is durable.
            self.persisted_msgs.push(resp);
        }
    }

    // ---- replication: follower side -----------------------------------

    fn handle_append(&mut self, m: Message) {
        let mut resp = Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
        let last_new = m.log_index + m.entries.len() as Index;
        let committed = self.log.committed;
        let (mut prev, mut prev_term, mut entries) = (m.log_index, m.log_term, m.entries);
        if prev < committed {
            // Everything up to our commit index matches every leader; skip it.
            if last_new <= committed {
                resp.log_index = committed;
                self.persisted_msgs.push(resp);
                return;
            }
            let skip = (committed - prev) as usize;
            prev_term = entries[skip - 1].term;
            prev = committed;
            entries.drain(..skip);
        }
        if !self.log.matches(prev, prev_term) {
            resp.reject = true;
            resp.log_index = prev;
            if prev > self.log.last_index() {
                resp.reject_hint = self.log.last_index() + 1;
            } else {
                resp.conflict_term = self.log.term(prev).unwrap_or(0);
                resp.reject_hint = self
                    .log
                    .first_index_of_term_at(prev)
                    .max(self.log.committed + 1);
            }
            self.persisted_msgs.push(resp);
            return;
        }
        for e in entries {
            match self.log.term(e.index) {
                Some(t) if t == e.term => {}
                Some(_) => {
                    // A real conflict: this entry and all after it go.
                    self.log.truncate(e.index);
                    self.log.append(e);
                }
                None => self.log.append(e),
            }
        }
        let new_commit = m.commit.min(last_new);
        if new_commit > self.log.committed {
            self.log.committed = new_commit;
        }
        resp.log_index = last_new;
        self.persisted_msgs.push(resp);
    }

    fn handle_heartbeat(&mut self, m: Message) {
        let new_commit = m.commit.min(self.log.last_index());
        if new_commit > self.log.committed {
            self.log.committed = new_commit;
        }
        let mut resp = Message::new(MessageKind::HeartbeatResponse, self.id, m.from, self.term);
        resp.read_ctx = m.read_ctx;
        self.msgs.push(resp);
    }

    /// InstallSnapshot (§7): a snapshot at or below the commit index is
    /// stale and ignored; one whose last entry the log holds only moves the
    /// commit index (the entries after it stay); any other replaces the log
    /// and the state machine. The answer is an AppendResponse for the
    /// highest index now known to match, sent once that is durable.
    fn handle_snapshot(&mut self, m: Message) {
        let mut resp = Message::new(MessageKind::AppendResponse, self.id, m.from, self.term);
        let Some(meta) = m.snapshot else {
            return;
        };
        if meta.voters != self.voters {
            // Another cluster's snapshot: membership changes do not exist.
            return;
        }
        if meta.index <= self.log.committed && !plant::is(Plant::StaleSnapshotInstall) {
            resp.log_index = self.log.committed;
        } else if self.log.matches(meta.index, meta.term) && meta.index > self.log.committed {
            self.log.committed = meta.index;
            resp.log_index = meta.index;
        } else {
            resp.log_index = meta.index;
            self.log.install(meta.clone());
            self.installed = Some(meta);
        }
        self.persisted_msgs.push(resp);
    }

    // ---- replication: leader side -------------------------------------

    fn handle_append_response(&mut self, m: Message) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        if m.reject {
            if pr.state == ProgressState::Snapshot
                || m.log_index <= pr.match_index
                || (pr.state == ProgressState::Probe && m.log_index + 1 != pr.next_index)
            {
                return; // stale
            }
            let next = if m.conflict_term == 0 {
                m.reject_hint
            } else {
                match self.log.last_index_of_term(m.conflict_term, m.log_index) {
                    Some(i) => i + 1,
                    None => m.reject_hint,
                }
            };
            pr.become_probe(next.min(m.log_index).min(last + 1).max(1));
            self.replicate_pending = true;
            return;
        }
        let moved = pr.on_ack(m.log_index.min(last));
        let caught_up = pr.match_index == last;
        if pr.next_index <= last || moved {
            self.replicate_pending = true;
        }
        if moved {
            self.maybe_commit();
        }
        if caught_up && self.transferee == Some(m.from) {
            self.send_timeout_now(m.from);
        }
    }

    fn handle_heartbeat_response(&mut self, m: Message) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.read_ack = pr.read_ack.max(m.read_ctx);
        if pr.match_index < last {
            match pr.state {
                // Waits for the transfer's report or the follower's answer.
                ProgressState::Snapshot => {}
                ProgressState::Probe => pr.probe_sent = false,
                ProgressState::Replicate => {
                    let stall = self.stalls.entry(m.from).or_insert((pr.match_index, 0));
                    if stall.0 == pr.match_index {
                        stall.1 += 1;
                    } else {
                        *stall = (pr.match_index, 0);
                    }
                    if stall.1 >= STALL_HEARTBEATS {
                        *stall = (pr.match_index, 0);
                        pr.become_probe(pr.match_index + 1);
                    }
                }
            }
            self.replicate_pending = true;
        }
        self.confirm_reads();
    }

    /// Sends as many Appends to `to` as its progress allows.
    fn send_appends(&mut self, to: NodeId) {
        let last = self.log.last_index();
        let max_inflight = self.cfg.max_inflight_appends;
        loop {
            let pr = &self.progress[&to];
            if pr.is_paused(max_inflight) {
                return;
            }
            let probe = pr.state == ProgressState::Probe;
            if pr.next_index > last && !probe {
                return;
            }
            let prev = pr.next_index - 1;
            let prev_term = match self.log.term(prev) {
                Some(t) if pr.next_index >= self.log.first_index() => t,
                _ => {
                    // Compacted away: only the snapshot can bring it up to
                    // date.
                    self.send_snapshot(to);
                    return;
                }
            };
            let mut m = Message::new(MessageKind::Append, self.id, to, self.term);
            m.log_index = prev;
            m.log_term = prev_term;
            m.entries = self.log.slice(
                prev + 1,
                last,
                self.cfg.max_entries_per_append,
                self.cfg.max_bytes_per_append,
            );
            m.commit = self.log.committed;
            let sent_last = prev + m.entries.len() as Index;
            self.progress.get_mut(&to).expect("peer").sent(sent_last);
            self.msgs.push(m);
            if probe {
                return;
            }
        }
    }

    fn send_snapshot(&mut self, to: NodeId) {
        let meta = self.log.snapshot().clone();
        debug_assert!(meta.index > 0, "a compacted log without a snapshot");
        let mut m = Message::new(MessageKind::Snapshot, self.id, to, self.term);
        m.log_index = meta.index;
        m.log_term = meta.term;
        m.commit = self.log.committed;
        self.progress
            .get_mut(&to)
            .expect("peer")
            .become_snapshot(meta.index);
        m.snapshot = Some(meta);
        self.msgs.push(m);
    }

    fn broadcast_heartbeat(&mut self) {
        let ctx = self.read_only.last_round();
        for (&to, pr) in &self.progress {
            let mut m = Message::new(MessageKind::Heartbeat, self.id, to, self.term);
            // A follower may hold entries beyond its match index that this
            // leader's log does not: it may only commit what was matched.
            m.commit = if plant::is(Plant::HeartbeatCommitUnbounded) {
                self.log.committed
            } else {
                pr.match_index.min(self.log.committed)
            };
            m.read_ctx = ctx;
            self.msgs.push(m);
        }
    }

    fn send_timeout_now(&mut self, to: NodeId) {
        self.msgs.push(Message::new(
            MessageKind::TimeoutNow,
            self.id,
            to,
            self.term,
        ));
    }

    /// Advances the commit index to the highest entry of this term stored
    /// on a majority; the leader counts itself only up to its durable index.
    fn maybe_commit(&mut self) {
        let mut matches: Vec<Index> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.log.durable());
        let n = quorum::quorum_value(&mut matches);
        // §5.4.2: only entries of the current term are committed by counting.
        if n > self.log.committed && self.log.term(n) == Some(self.term) {
            self.log.committed = n;
        }
    }

    // ---- ReadIndex ----------------------------------------------------

    fn committed_in_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }

    fn can_start_read_round(&self) -> bool {
        self.role == Role::Leader && self.read_only.has_queued() && self.committed_in_term()
    }

    fn start_read_round(&mut self) {
        if !self.can_start_read_round() {
            return;
        }
        let round = self.read_only.start_round(self.log.committed);
        if plant::is(Plant::ReadIndexNoQuorum) {
            if let Some(round) = round {
                self.read_only.confirm(round, &mut self.reads);
            }
            return;
        }
        if self.peers.is_empty() {
            self.confirm_reads();
        } else {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    fn confirm_reads(&mut self) {
        if !self.read_only.has_pending_rounds() {
            return;
        }
        let mut acks: Vec<u64> = self.progress.values().map(|p| p.read_ack).collect();
        acks.push(u64::MAX);
        let confirmed = quorum::quorum_value(&mut acks);
        self.read_only.confirm(confirmed, &mut self.reads);
    }
}

fn validate(config: &Config, restored: &Restored) -> Result<(), String> {
    if config.id == 0 {
        return Err("node id 0 is reserved".into());
    }
    if !config.voters.contains(&config.id) {
        return Err(format!(
            "node {} is not among the voters {:?}",
            config.id, config.voters
        ));
    }
    if config.election_ticks_min == 0 || config.election_ticks_max < config.election_ticks_min {
        return Err(format!(
            "election ticks must satisfy 0 < min <= max, got {}..{}",
            config.election_ticks_min, config.election_ticks_max
        ));
    }
    if config.heartbeat_ticks == 0 || config.heartbeat_ticks >= config.election_ticks_min {
        return Err(format!(
            "heartbeat ticks ({}) must be positive and below the minimum election ticks ({})",
            config.heartbeat_ticks, config.election_ticks_min
        ));
    }
    let hs = restored.hard_state;
    let snapshot = restored.snapshot.clone().unwrap_or_default();
    if let Some(s) = &restored.snapshot {
        if s.index == 0 {
            return Err("restored snapshot has index 0".into());
        }
        if s.term > hs.term {
            return Err(format!(
                "restored snapshot has term {}, beyond the hard state term {}",
                s.term, hs.term
            ));
        }
        let mut voters = config.voters.clone();
        voters.sort_unstable();
        voters.dedup();
        if s.voters != voters {
            return Err(format!(
                "restored snapshot was taken with voters {:?}, but the configured voters are {:?} \
                 (membership changes are not supported)",
                s.voters, voters
            ));
        }
    }
    let first = restored
        .entries
        .first()
        .map_or(snapshot.index + 1, |e| e.index);
    if first == 0 || first > snapshot.index + 1 {
        return Err(format!(
            "restored log starts at index {first}, leaving a gap after the snapshot at {}",
            snapshot.index
        ));
    }
    let mut prev_term = if first == snapshot.index + 1 {
        snapshot.term
    } else {
        0
    };
    for (i, e) in restored.entries.iter().enumerate() {
        if e.index != first + i as Index {
            return Err(format!(
                "restored log is not contiguous from {first}: position {} holds index {}",
                i, e.index
            ));
        }
        if e.term < prev_term || e.term > hs.term {
            return Err(format!(
                "restored entry {} has term {} (previous {}, hard state term {})",
                e.index, e.term, prev_term, hs.term
            ));
        }
        if e.index == snapshot.index && e.term != snapshot.term {
            return Err(format!(
                "restored entry {} has term {}, but the snapshot there has term {}",
                e.index, e.term, snapshot.term
            ));
        }
        prev_term = e.term;
    }
    let last = (first + restored.entries.len() as Index - 1).max(snapshot.index);
    if hs.commit > last {
        return Err(format!(
            "restored commit index {} is beyond the last entry {last}",
            hs.commit
        ));
    }
    if let Some(v) = hs.vote
        && !config.voters.contains(&v)
    {
        return Err(format!("restored vote for {v}, which is not a voter"));
    }
    Ok(())
}

impl std::fmt::Debug for Raft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("status", &self.status())
            .finish()
    }
}
