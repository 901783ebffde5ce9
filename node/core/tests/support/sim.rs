//! A deterministic cluster simulator for the Raft core.
//!
//! One seed drives everything: the fault schedule, message delays and
//! drops, disk syncs, crashes, snapshots and log compaction, client
//! requests and the nodes' own election RNGs. After every step the
//! simulator checks Raft's safety invariants; a client oracle checks that
//! acknowledged writes survive and that reads are not stale; after the
//! faults stop it checks that the cluster recovers within a bounded number
//! of ticks.
//!
//! Nodes take snapshots of their state machine at random points; a
//! snapshot becomes durable at the node's next disk sync (a crash before
//! loses it), then the node compacts its log and its disk up to a random
//! distance behind it. A leader ships its snapshot to a follower that needs
//! compacted entries as a message that may be lost, delayed, duplicated or
//! cut off by a partition; the leader hears how the transfer ended when it
//! is delivered or lost.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use raftkv_core::{
    Config, Entry, EntryKind, HardState, Index, Message, MessageKind, NodeId, Raft, Restored, Role,
    SnapshotMeta, Term,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Keys of the simulated key-value state machine.
const KEYS: u8 = 3;

/// Which faults a run injects, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Faults {
    pub loss: f64,
    pub duplicate: f64,
    pub max_delay: u64,
    pub partitions: bool,
    pub crashes: bool,
    pub pauses: bool,
    pub tick_skips: bool,
    /// Chance per step and node that its pending writes become durable.
    pub sync: f64,
    /// Chances per step of a new partition and of a crash.
    pub partition_rate: f64,
    pub crash_rate: f64,
    /// Chance per step and node of taking a snapshot.
    pub snapshot_rate: f64,
    /// Most entries kept behind a snapshot when compacting.
    pub catchup_entries: u64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            loss: 0.0,
            duplicate: 0.0,
            max_delay: 1,
            partitions: false,
            crashes: false,
            pauses: false,
            tick_skips: false,
            sync: 1.0,
            partition_rate: 0.0,
            crash_rate: 0.0,
            snapshot_rate: 0.0,
            catchup_entries: 0,
        }
    }

    fn random(rng: &mut ChaCha8Rng) -> Faults {
        Faults {
            loss: if rng.random_bool(0.6) {
                rng.random_range(0.0..0.2)
            } else {
                0.0
            },
            duplicate: if rng.random_bool(0.5) {
                rng.random_range(0.0..0.1)
            } else {
                0.0
            },
            max_delay: rng.random_range(1..6),
            partitions: rng.random_bool(0.6),
            crashes: rng.random_bool(0.6),
            pauses: rng.random_bool(0.4),
            tick_skips: rng.random_bool(0.5),
            sync: rng.random_range(0.3..1.0),
            partition_rate: rng.random_range(0.005..0.05),
            crash_rate: rng.random_range(0.002..0.03),
            snapshot_rate: if rng.random_bool(0.8) {
                rng.random_range(0.005..0.1)
            } else {
                0.0
            },
            catchup_entries: rng.random_range(0..8),
        }
    }
}

/// A safety, oracle or liveness violation.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub nodes: usize,
    pub step: u64,
    pub reason: String,
    pub trace: Option<Vec<String>>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "simulation failed: seed {} ({} nodes) at step {}: {}",
            self.seed, self.nodes, self.step, self.reason
        )?;
        writeln!(
            f,
            "replay: RAFT_SIM_SEED={} RAFT_SIM_NODES={} cargo test -p raftkv-core --release --test sim sim_replay -- --nocapture",
            self.seed, self.nodes
        )?;
        match &self.trace {
            Some(trace) => {
                for line in trace {
                    writeln!(f, "  {line}")?;
                }
                Ok(())
            }
            None => writeln!(f, "(set RAFT_SIM_TRACE=1 for the step-by-step trace)"),
        }
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub steps: u64,
    pub acked_writes: u64,
    pub served_reads: u64,
    pub leaders: u64,
    pub crashes: u64,
    /// Snapshots made durable by the nodes that took them.
    pub snapshots_taken: u64,
    /// Snapshots from a leader that replaced a follower's log.
    pub snapshots_installed: u64,
    /// Hash of every delivered message and applied entry, in order: equal
    /// fingerprints mean the same run.
    pub fingerprint: u64,
}

/// A snapshot: its metadata and the state machine it holds.
struct SimSnapshot {
    meta: SnapshotMeta,
    /// (term, hash) of every entry up to `meta.index`, as applied by the
    /// node that took it.
    applied: Vec<(Term, u64)>,
    kv: BTreeMap<u8, (u64, Index)>,
}

struct PendingWrite {
    number: u64,
    hard_state: Option<HardState>,
    /// A snapshot from the leader that replaces the log.
    snapshot: Option<Rc<SimSnapshot>>,
    truncate_from: Option<Index>,
    entries: Vec<Entry>,
    persisted_messages: Vec<Message>,
}

struct Disk {
    hard_state: HardState,
    snapshot: Option<Rc<SimSnapshot>>,
    /// Index of `entries[0]`.
    first: Index,
    entries: Vec<Entry>,
}

impl Default for Disk {
    fn default() -> Disk {
        Disk {
            hard_state: HardState::default(),
            snapshot: None,
            first: 1,
            entries: Vec::new(),
        }
    }
}

impl Disk {
    fn entry(&self, index: Index) -> Option<&Entry> {
        if index < self.first {
            return None;
        }
        self.entries.get((index - self.first) as usize)
    }

    fn last_index(&self) -> Index {
        let snap = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        (self.first + self.entries.len() as Index - 1).max(snap)
    }

    /// True if the entry at `pos + 1` with (term, hash) survives a restart,
    /// in the log or in the snapshot.
    fn holds(&self, pos: usize, term: Term, hash: u64) -> bool {
        let in_log = self
            .entry(pos as Index + 1)
            .is_some_and(|e| e.term == term && hash_entry(e) == hash);
        in_log
            || self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.applied.get(pos) == Some(&(term, hash)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteStatus {
    Pending,
    Acked,
    Failed,
}

struct Proposal {
    node: usize,
    index: Index,
    term: Term,
    key: u8,
    value: u64,
    status: WriteStatus,
    after_heal: bool,
}

struct PendingRead {
    ctx: u64,
    key: u8,
    /// Log index of the latest write to `key` acknowledged before the read.
    floor: Index,
    /// Set once the core confirmed the read.
    read_index: Option<Index>,
}

struct Node {
    id: NodeId,
    raft: Option<Raft>,
    disk: Disk,
    pending: VecDeque<PendingWrite>,
    /// (term, hash) of every entry of the log as handed out in readies,
    /// from index 1 (the part a snapshot covers as the snapshot says).
    mirror: Vec<(Term, u64)>,
    /// Applied entries, as (term, content hash), index i at position i - 1.
    applied: Vec<(Term, u64)>,
    /// Key -> (value, log index of the write).
    kv: BTreeMap<u8, (u64, Index)>,
    reads: Vec<PendingRead>,
    /// Proposal ids by log index, awaiting apply at this node.
    proposals: BTreeMap<Index, usize>,
    paused_until: Option<u64>,
    down_until: Option<u64>,
    incarnation: u64,
    /// Last (term, vote, commit) seen in this incarnation.
    seen: (Term, Option<NodeId>, Index),
    was_leader_in: Term,
    /// Highest (term, index) this node acknowledged in an AppendResponse.
    acked: (Term, Index),
    /// The snapshot the core knows as its newest (taken or installed).
    snapshot: Option<Rc<SimSnapshot>>,
    /// A snapshot being written: durable at the next sync.
    saving: Option<Rc<SimSnapshot>>,
    /// Snapshots received in this step, by index.
    received: BTreeMap<Index, Rc<SimSnapshot>>,
}

struct InFlight {
    deliver_at: u64,
    order: u64,
    msg: Message,
    /// The data of a Snapshot message.
    payload: Option<Rc<SimSnapshot>>,
}

/// How a snapshot transfer ended, for the leader that sent it.
struct TransferReport {
    at: u64,
    leader: usize,
    incarnation: u64,
    to: NodeId,
    index: Index,
    delivered: bool,
}

/// A simulated cluster.
pub struct Sim {
    pub seed: u64,
    rng: ChaCha8Rng,
    nodes: Vec<Node>,
    config: Config,
    faults: Faults,
    net: Vec<InFlight>,
    /// blocked[from][to]
    blocked: Vec<Vec<bool>>,
    pub step: u64,
    trace: Option<Vec<String>>,
    // Invariant bookkeeping.
    leader_of_term: BTreeMap<Term, NodeId>,
    /// (index, term) -> (previous entry's term, content hash)
    seen_entries: BTreeMap<(Index, Term), (Term, u64)>,
    /// Committed entries: index i at position i - 1 -> (term, hash, the
    /// lowest term known to have it committed).
    committed: Vec<(Term, u64, Term)>,
    /// (node, term) -> candidate the node granted its vote to.
    granted: BTreeMap<(NodeId, Term), NodeId>,
    proposals: Vec<Proposal>,
    /// Key -> log index of the latest acknowledged write.
    acked_floor: BTreeMap<u8, Index>,
    next_value: u64,
    next_ctx: u64,
    pub stats: Stats,
    healed_at: Option<u64>,
    /// A node to crash at the next fault injection.
    crash_soon: Option<usize>,
    /// Entries some node holds beyond the lowest applied index, at the heal.
    backlog_at_heal: u64,
    /// Snapshot transfers whose outcome the sender has yet to hear.
    reports: Vec<TransferReport>,
}

fn hash_entry(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    e.kind.hash(&mut h);
    e.data.hash(&mut h);
    h.finish()
}

fn encode(key: u8, value: u64) -> Vec<u8> {
    let mut v = vec![key];
    v.extend_from_slice(&value.to_le_bytes());
    v
}

fn decode(data: &[u8]) -> (u8, u64) {
    (
        data[0],
        u64::from_le_bytes(data[1..9].try_into().expect("8 bytes")),
    )
}

type Check = Result<(), String>;

impl Sim {
    pub fn new(seed: u64, nodes: usize, faults: Option<Faults>, trace: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let voters: Vec<NodeId> = (1..=nodes as NodeId).collect();
        let mut config = Config::new(1, voters.clone());
        // Random faults come with random replication limits; given faults
        // run with the defaults.
        let faults = faults.unwrap_or_else(|| {
            config.max_inflight_appends = rng.random_range(1..8);
            // Small appends split a new leader's catch-up from its no-op.
            config.max_entries_per_append = if rng.random_bool(0.5) {
                rng.random_range(1..4)
            } else {
                rng.random_range(4..64)
            };
            Faults::random(&mut rng)
        });
        let mut sim = Sim {
            seed,
            rng,
            nodes: Vec::new(),
            config,
            faults,
            net: Vec::new(),
            blocked: vec![vec![false; nodes]; nodes],
            step: 0,
            trace: trace.then(Vec::new),
            leader_of_term: BTreeMap::new(),
            seen_entries: BTreeMap::new(),
            committed: Vec::new(),
            granted: BTreeMap::new(),
            proposals: Vec::new(),
            acked_floor: BTreeMap::new(),
            next_value: 1,
            next_ctx: 1,
            stats: Stats::default(),
            healed_at: None,
            crash_soon: None,
            backlog_at_heal: 0,
            reports: Vec::new(),
        };
        for &id in &voters {
            let raft = sim.boot(id, &Disk::default(), 0);
            sim.nodes.push(Node {
                id,
                raft: Some(raft),
                disk: Disk::default(),
                pending: VecDeque::new(),
                mirror: Vec::new(),
                applied: Vec::new(),
                kv: BTreeMap::new(),
                reads: Vec::new(),
                proposals: BTreeMap::new(),
                paused_until: None,
                down_until: None,
                incarnation: 0,
                seen: (0, None, 0),
                was_leader_in: 0,
                acked: (0, 0),
                snapshot: None,
                saving: None,
                received: BTreeMap::new(),
            });
        }
        let summary = sim_faults_summary(&sim.faults);
        sim.log(|| format!("start: {summary}"));
        sim
    }

    fn boot(&self, id: NodeId, disk: &Disk, incarnation: u64) -> Raft {
        let mut cfg = self.config.clone();
        cfg.id = id;
        let restored = Restored {
            hard_state: disk.hard_state,
            snapshot: disk.snapshot.as_ref().map(|s| s.meta.clone()),
            entries: disk.entries.clone(),
        };
        let seed = self.seed ^ (id << 32) ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Raft::new(cfg, restored, seed).expect("restore from the simulated disk")
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let line = line();
            trace.push(format!("[{:>5}] {}", self.step, line));
        }
    }

    fn fail(&mut self, reason: String) -> Failure {
        Failure {
            seed: self.seed,
            nodes: self.nodes.len(),
            step: self.step,
            reason,
            trace: self.trace.take(),
        }
    }

    /// Runs faults for `fault_steps`, then heals everything and requires
    /// the cluster to recover within `recover_bound` steps.
    pub fn run(mut self, fault_steps: u64, recover_bound: u64) -> Result<Stats, Failure> {
        loop {
            if self.step == fault_steps
                && let Err(e) = self.heal()
            {
                return Err(self.fail(e));
            }
            if let Err(e) = self.one_step(self.step < fault_steps) {
                return Err(self.fail(e));
            }
            if let Some(healed) = self.healed_at {
                if let Err(e) = self.check_recovered() {
                    // Election and commit must fit in `recover_bound`;
                    // replicating the backlog gets time in proportion to
                    // its length.
                    let bound = recover_bound + self.backlog_at_heal * 8;
                    if self.step - healed > bound {
                        return Err(self.fail(format!(
                            "liveness: not recovered {bound} steps after faults stopped \
                             (backlog {}): {e}",
                            self.backlog_at_heal
                        )));
                    }
                } else {
                    if let Err(e) = self.check_final() {
                        return Err(self.fail(e));
                    }
                    self.stats.steps = self.step;
                    return Ok(self.stats);
                }
            }
            self.step += 1;
        }
    }

    fn heal(&mut self) -> Check {
        self.log(|| "heal: faults stop".into());
        self.healed_at = Some(self.step);
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
        self.faults = Faults {
            sync: self.faults.sync,
            max_delay: self.faults.max_delay.min(2),
            snapshot_rate: self.faults.snapshot_rate,
            catchup_entries: self.faults.catchup_entries,
            ..Faults::none()
        };
        for i in 0..self.nodes.len() {
            if self.nodes[i].down_until.is_some() {
                self.restart(i)?;
            }
            self.nodes[i].paused_until = None;
        }
        let longest = self.nodes.iter().map(|n| n.mirror.len()).max().unwrap_or(0);
        let applied = self
            .nodes
            .iter()
            .map(|n| n.applied.len())
            .min()
            .unwrap_or(0);
        self.backlog_at_heal = longest.saturating_sub(applied) as u64;
        Ok(())
    }

    /// One step: faults, client requests, then each node in random order
    /// receives, persists and ticks. Invariants are checked at the end.
    pub fn one_step(&mut self, faults_on: bool) -> Check {
        if faults_on {
            self.inject_faults();
        }
        self.client();
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.shuffle(&mut self.rng);
        for i in order {
            if let Some(t) = self.nodes[i].down_until {
                if self.step >= t {
                    self.restart(i)?;
                } else {
                    continue;
                }
            }
            if let Some(t) = self.nodes[i].paused_until {
                if self.step >= t {
                    self.log(|| format!("n{} resumes", i + 1));
                    self.nodes[i].paused_until = None;
                } else {
                    continue;
                }
            }
            self.deliver(i)?;
            self.drive(i)?;
            if self.rng.random_bool(self.faults.snapshot_rate) {
                self.take_snapshot(i);
            }
            if self.rng.random_bool(self.faults.sync) {
                self.sync(i)?;
            }
            if !(faults_on && self.faults.tick_skips && self.rng.random_bool(0.1)) {
                self.nodes[i].raft.as_mut().expect("up").tick();
                self.drive(i)?;
            }
        }
        self.check_roles()
    }

    fn inject_faults(&mut self) {
        let n = self.nodes.len();
        if self.faults.partitions && self.rng.random_bool(self.faults.partition_rate) {
            self.repartition();
        }
        if self.faults.crashes
            && let Some(i) = self.crash_soon.take()
            && self.nodes[i].down_until.is_none()
        {
            let until = self.step + self.rng.random_range(1..10);
            self.crash(i, until);
        }
        if self.faults.crashes && self.rng.random_bool(self.faults.crash_rate) {
            // Half of the crashes hit the leader, to force changes of term.
            let i = match self.current_leader() {
                Some(l) if self.rng.random_bool(0.5) => l,
                _ => self.rng.random_range(0..n),
            };
            if self.nodes[i].down_until.is_none() {
                let until = self.step + self.rng.random_range(1..60);
                self.crash(i, until);
            }
        }
        if self.faults.pauses && self.rng.random_bool(0.01) {
            let i = self.rng.random_range(0..n);
            if self.nodes[i].paused_until.is_none() && self.nodes[i].down_until.is_none() {
                let until = self.step + self.rng.random_range(1..80);
                self.log(|| format!("n{} paused until {until}", i + 1));
                self.nodes[i].paused_until = Some(until);
            }
        }
    }

    fn repartition(&mut self) {
        let n = self.nodes.len();
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
        let leader = self.current_leader();
        let kind = self.rng.random_range(0..5);
        let mut ids: Vec<usize> = (0..n).collect();
        ids.shuffle(&mut self.rng);
        let desc;
        match kind {
            0 => desc = "healed".to_string(),
            1 => {
                // Two halves.
                let cut = n / 2;
                let (a, b) = ids.split_at(cut);
                for &x in a {
                    for &y in b {
                        self.blocked[x][y] = true;
                        self.blocked[y][x] = true;
                    }
                }
                desc = format!("halves {:?} | {:?}", plus1(a), plus1(b));
            }
            2 => {
                // The leader (or anyone) alone.
                let alone = leader.unwrap_or(ids[0]);
                for y in 0..n {
                    if y != alone {
                        self.blocked[alone][y] = true;
                        self.blocked[y][alone] = true;
                    }
                }
                desc = format!("n{} alone", alone + 1);
            }
            3 => {
                // A bridge: two groups that only the bridge node connects.
                let bridge = ids[0];
                let rest = &ids[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                for &x in a {
                    for &y in b {
                        self.blocked[x][y] = true;
                        self.blocked[y][x] = true;
                    }
                }
                desc = format!(
                    "bridge n{} between {:?} and {:?}",
                    bridge + 1,
                    plus1(a),
                    plus1(b)
                );
            }
            _ => {
                // One-way: a node can send but not receive (or the reverse).
                let x = ids[0];
                let inbound = self.rng.random_bool(0.5);
                for y in 0..n {
                    if y != x {
                        if inbound {
                            self.blocked[y][x] = true;
                        } else {
                            self.blocked[x][y] = true;
                        }
                    }
                }
                desc = format!(
                    "one-way: n{} {}",
                    x + 1,
                    if inbound {
                        "cannot receive"
                    } else {
                        "cannot send"
                    }
                );
            }
        }
        self.log(|| format!("partition: {desc}"));
    }

    fn current_leader(&self) -> Option<usize> {
        let mut best: Option<(Term, usize)> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(r) = &node.raft {
                let s = r.status();
                if s.role == Role::Leader && best.is_none_or(|(t, _)| s.term > t) {
                    best = Some((s.term, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    fn is_live(&self, i: usize) -> bool {
        self.nodes[i].raft.is_some() && self.nodes[i].paused_until.is_none()
    }

    fn client(&mut self) {
        let n = self.nodes.len();
        // Clients reach the newest leader, or any node that believes it
        // leads (a deposed leader behind a partition), or anyone.
        let claimants: Vec<usize> = (0..n)
            .filter(|&i| {
                self.nodes[i]
                    .raft
                    .as_ref()
                    .is_some_and(|r| r.status().role == Role::Leader)
            })
            .collect();
        let roll = self.rng.random_range(0..10);
        let target = match self.current_leader() {
            Some(_) if roll < 4 => claimants[self.rng.random_range(0..claimants.len())],
            Some(l) if roll < 9 => l,
            _ => self.rng.random_range(0..n),
        };
        if !self.is_live(target) {
            return;
        }
        // After the heal the load drops so that lagging nodes can catch up.
        let (p_write, p_burst) = if self.healed_at.is_some() {
            (0.05, 0.0)
        } else {
            (0.3, 0.2)
        };
        if self.rng.random_bool(p_write) {
            let writes = if self.rng.random_bool(p_burst) {
                self.rng.random_range(2..20)
            } else {
                1
            };
            for _ in 0..writes {
                let key = self.rng.random_range(0..KEYS);
                let value = self.next_value;
                self.next_value += 1;
                let raft = self.nodes[target].raft.as_mut().expect("live");
                if let Ok((index, term)) = raft.propose(encode(key, value)) {
                    let id = self.proposals.len();
                    self.proposals.push(Proposal {
                        node: target,
                        index,
                        term,
                        key,
                        value,
                        status: WriteStatus::Pending,
                        after_heal: self.healed_at.is_some(),
                    });
                    self.nodes[target].proposals.insert(index, id);
                    self.log(|| {
                        format!("n{} propose k{key}={value} at {index}/{term}", target + 1)
                    });
                }
            }
        }
        if self.rng.random_bool(0.2) {
            let key = self.rng.random_range(0..KEYS);
            let ctx = self.next_ctx;
            self.next_ctx += 1;
            let floor = self.acked_floor.get(&key).copied().unwrap_or(0);
            let raft = self.nodes[target].raft.as_mut().expect("live");
            if raft.read_index(ctx).is_ok() {
                self.nodes[target].reads.push(PendingRead {
                    ctx,
                    key,
                    floor,
                    read_index: None,
                });
                self.log(|| format!("n{} read#{ctx} k{key} (floor {floor})", target + 1));
            }
        }
    }

    fn send(&mut self, msg: Message) {
        self.send_with(msg, None);
    }

    /// Sends `msg`, carrying `payload` if it is a snapshot. A lost snapshot
    /// is reported to its sender as a failed transfer after a while.
    fn send_with(&mut self, msg: Message, payload: Option<Rc<SimSnapshot>>) {
        if self.rng.random_bool(self.faults.loss) {
            if msg.kind == MessageKind::Snapshot {
                let from = msg.from as usize - 1;
                self.report_transfer(from, &msg, false);
            }
            return;
        }
        let copies = if self.rng.random_bool(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let deliver_at = self.step + self.rng.random_range(1..=self.faults.max_delay);
            let order = self.rng.random();
            self.net.push(InFlight {
                deliver_at,
                order,
                msg: msg.clone(),
                payload: payload.clone(),
            });
        }
    }

    /// Schedules the report of how the transfer of snapshot `msg` ended, for
    /// the incarnation of node `from` that sent it.
    fn report_transfer(&mut self, from: usize, msg: &Message, delivered: bool) {
        let at = self.step + self.rng.random_range(1..=self.faults.max_delay);
        self.reports.push(TransferReport {
            at,
            leader: from,
            incarnation: self.nodes[from].incarnation,
            to: msg.to,
            index: msg.log_index,
            delivered,
        });
    }

    /// Hands node `i` the reports of its transfers that are due.
    fn deliver_reports(&mut self, i: usize) {
        let (step, incarnation) = (self.step, self.nodes[i].incarnation);
        let mut k = 0;
        while k < self.reports.len() {
            let r = &self.reports[k];
            if r.leader != i || r.at > step {
                k += 1;
                continue;
            }
            let r = self.reports.swap_remove(k);
            if r.incarnation != incarnation {
                continue;
            }
            let line = format!(
                "n{} hears snapshot {} to n{} {}",
                i + 1,
                r.index,
                r.to,
                if r.delivered { "delivered" } else { "failed" }
            );
            self.log(|| line);
            self.nodes[i]
                .raft
                .as_mut()
                .expect("up")
                .on_snapshot_sent(r.to, r.index, r.delivered);
        }
    }

    /// Node `i` starts a snapshot of its state machine at its applied index;
    /// it becomes durable at the node's next sync.
    fn take_snapshot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let applied = node.applied.len() as Index;
        let newest = node.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if applied <= newest || node.saving.is_some() {
            return;
        }
        let raft = node.raft.as_ref().expect("up");
        let Some(meta) = raft.snapshot_meta(applied) else {
            return;
        };
        let snap = SimSnapshot {
            meta,
            applied: node.applied.clone(),
            kv: node.kv.clone(),
        };
        self.nodes[i].saving = Some(Rc::new(snap));
        self.log(|| format!("n{} starts a snapshot at {applied}", i + 1));
    }

    /// The snapshot node `i` was writing is durable: the core learns of it,
    /// then the log and the disk are compacted behind it.
    fn snapshot_saved(&mut self, i: usize) -> Check {
        let Some(snap) = self.nodes[i].saving.take() else {
            return Ok(());
        };
        let index = snap.meta.index;
        let newest = self.nodes[i].snapshot.as_ref().map_or(0, |s| s.meta.index);
        if index <= newest {
            return Ok(()); // an installed snapshot overtook it
        }
        // Now and then the caller asks for more than the core may drop: it
        // must stop at the snapshot and the applied index.
        let to = if self.rng.random_bool(0.1) {
            index + self.rng.random_range(1..20)
        } else {
            index.saturating_sub(self.rng.random_range(0..=self.faults.catchup_entries))
        };
        let node = &mut self.nodes[i];
        let raft = node.raft.as_mut().expect("up");
        raft.on_snapshot_saved(snap.meta.clone());
        let first = raft.compact(to);
        let s = raft.status();
        if s.snapshot_index != index || first > s.applied + 1 || first > index + 1 {
            return Err(format!(
                "n{} after its snapshot at {index}: {s:?} (compacted to first index {first})",
                i + 1
            ));
        }
        node.disk.snapshot = Some(snap.clone());
        node.snapshot = Some(snap);
        // Log segments wholly behind the compacted index are deleted.
        let drop = (first.saturating_sub(node.disk.first) as usize).min(node.disk.entries.len());
        node.disk.entries.drain(..drop);
        node.disk.first += drop as Index;
        self.stats.snapshots_taken += 1;
        self.log(|| {
            format!(
                "n{} snapshot at {index} durable; log starts at {first}",
                i + 1
            )
        });
        Ok(())
    }

    fn deliver(&mut self, i: usize) -> Check {
        self.deliver_reports(i);
        let id = self.nodes[i].id;
        let step = self.step;
        let mut due: Vec<InFlight> = Vec::new();
        let mut k = 0;
        while k < self.net.len() {
            if self.net[k].msg.to == id && self.net[k].deliver_at <= step {
                due.push(self.net.swap_remove(k));
            } else {
                k += 1;
            }
        }
        due.sort_by_key(|m| (m.deliver_at, m.order));
        for m in due {
            let from = m.msg.from as usize - 1;
            let snapshot = m.msg.kind == MessageKind::Snapshot;
            if self.blocked[from][i] {
                if snapshot {
                    self.report_transfer(from, &m.msg, false);
                }
                continue;
            }
            if snapshot {
                self.report_transfer(from, &m.msg, true);
                let payload = m.payload.clone().expect("a snapshot carries its data");
                self.nodes[i].received.insert(m.msg.log_index, payload);
            }
            let mut h = DefaultHasher::new();
            (
                self.stats.fingerprint,
                self.step,
                m.msg.from,
                m.msg.to,
                m.msg.term,
            )
                .hash(&mut h);
            (
                m.msg.kind,
                m.msg.log_index,
                m.msg.entries.len(),
                m.msg.reject,
            )
                .hash(&mut h);
            self.stats.fingerprint = h.finish();
            if self.trace.is_some() {
                let line = describe(&m.msg);
                self.log(|| line);
            }
            self.nodes[i].raft.as_mut().expect("up").step(m.msg);
        }
        Ok(())
    }

    /// Takes every ready of node `i`: sends, queues the write, applies.
    fn drive(&mut self, i: usize) -> Check {
        loop {
            let raft = self.nodes[i].raft.as_mut().expect("up");
            if !raft.has_ready() {
                break;
            }
            let rd = raft.ready();
            let node_term = raft.status().term;
            let installed = match &rd.snapshot {
                Some(meta) => Some(self.install_snapshot(i, meta)?),
                None => None,
            };
            // Log matching: an (index, term) pair always names the same
            // entry with the same predecessor term.
            {
                let node = &mut self.nodes[i];
                if let Some(t) = rd.truncate_from {
                    if t == 0 || t as usize > node.mirror.len() + 1 {
                        return Err(format!("n{} truncates from {t} past its log", i + 1));
                    }
                    node.mirror.truncate(t as usize - 1);
                }
                for e in &rd.entries {
                    if e.index as usize != node.mirror.len() + 1 {
                        return Err(format!(
                            "n{} hands out entry {} after {}",
                            i + 1,
                            e.index,
                            node.mirror.len()
                        ));
                    }
                    let prev_term = node.mirror.last().map_or(0, |p| p.0);
                    let h = hash_entry(e);
                    match self.seen_entries.get(&(e.index, e.term)) {
                        Some(&(pt, ph)) if pt != prev_term || ph != h => {
                            return Err(format!(
                                "log matching: n{} has a different entry {}/{} (or predecessor)",
                                i + 1,
                                e.index,
                                e.term
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.seen_entries.insert((e.index, e.term), (prev_term, h));
                        }
                    }
                    node.mirror.push((e.term, h));
                }
            }
            if let Some(hs) = rd.hard_state {
                let line = format!("n{} hard state {:?}", i + 1, hs);
                self.log(|| line);
            }
            for m in rd.messages {
                if m.kind == MessageKind::Snapshot {
                    let payload = self.nodes[i]
                        .snapshot
                        .clone()
                        .filter(|s| Some(&s.meta) == m.snapshot.as_ref())
                        .ok_or_else(|| {
                            format!(
                                "n{} sends snapshot {:?} it does not hold",
                                i + 1,
                                m.snapshot
                            )
                        })?;
                    self.send_with(m, Some(payload));
                } else {
                    self.send(m);
                }
            }
            self.nodes[i].pending.push_back(PendingWrite {
                number: rd.number,
                hard_state: rd.hard_state,
                snapshot: installed,
                truncate_from: rd.truncate_from,
                entries: rd.entries,
                persisted_messages: rd.persisted_messages,
            });
            for e in rd.committed {
                self.apply(i, e, node_term)?;
            }
            for ctx in rd.failed_reads {
                self.nodes[i].reads.retain(|r| r.ctx != ctx);
            }
            for rs in rd.reads {
                if let Some(r) = self.nodes[i].reads.iter_mut().find(|r| r.ctx == rs.ctx) {
                    r.read_index = Some(rs.index);
                }
            }
            self.serve_reads(i)?;
        }
        self.nodes[i].received.clear();
        self.check_node(i)
    }

    /// Node `i`'s core replaced its log with the leader's snapshot `meta`:
    /// restores the state machine from the snapshot received with it.
    fn install_snapshot(
        &mut self,
        i: usize,
        meta: &SnapshotMeta,
    ) -> Result<Rc<SimSnapshot>, String> {
        let node = &self.nodes[i];
        let snap = node
            .received
            .get(&meta.index)
            .filter(|s| s.meta == *meta)
            .cloned()
            .ok_or_else(|| format!("n{} installs snapshot {meta:?} it never received", i + 1))?;
        let applied = node.applied.len();
        if meta.index as usize <= applied {
            return Err(format!(
                "n{} installs a snapshot at {} but has applied {applied}: it would apply again",
                i + 1,
                meta.index
            ));
        }
        // State machine safety: what the node applied, and what any node
        // applied, agrees with the snapshot.
        if snap.applied[..applied] != node.applied[..] {
            return Err(format!(
                "state machine safety: n{} applied entries that differ from snapshot {}",
                i + 1,
                meta.index
            ));
        }
        if snap.applied.len() > self.committed.len()
            || snap
                .applied
                .iter()
                .zip(&self.committed)
                .any(|(a, c)| *a != (c.0, c.1))
        {
            return Err(format!(
                "state machine safety: snapshot {} installed on n{} differs from what was applied",
                meta.index,
                i + 1
            ));
        }
        let node = &mut self.nodes[i];
        node.applied = snap.applied.clone();
        node.kv = snap.kv.clone();
        node.mirror = snap.applied.clone();
        node.snapshot = Some(snap.clone());
        node.raft.as_mut().expect("up").on_applied(meta.index);
        // Proposals the snapshot covers are never answered here: the
        // client learns their outcome some other way.
        let covered: Vec<Index> = node
            .proposals
            .range(..=meta.index)
            .map(|(&k, _)| k)
            .collect();
        for index in covered {
            let pid = node.proposals.remove(&index).expect("listed");
            self.proposals[pid].status = WriteStatus::Failed;
        }
        self.stats.snapshots_installed += 1;
        self.log(|| format!("n{} installs snapshot {}/{}", i + 1, meta.index, meta.term));
        Ok(snap)
    }

    fn apply(&mut self, i: usize, e: Entry, node_term: Term) -> Check {
        let h = hash_entry(&e);
        let node = &mut self.nodes[i];
        if e.index as usize != node.applied.len() + 1 {
            return Err(format!(
                "n{} applies {} after {}",
                i + 1,
                e.index,
                node.applied.len()
            ));
        }
        node.applied.push((e.term, h));
        if e.kind == EntryKind::Command {
            let (key, value) = decode(&e.data);
            node.kv.insert(key, (value, e.index));
        }
        node.raft.as_mut().expect("up").on_applied(e.index);
        // State machine safety.
        let pos = e.index as usize - 1;
        if pos < self.committed.len() {
            let c = &mut self.committed[pos];
            if (c.0, c.1) != (e.term, h) {
                return Err(format!(
                    "state machine safety: n{} applies {}/{} but {}/{} was applied elsewhere",
                    i + 1,
                    e.index,
                    e.term,
                    e.index,
                    c.0
                ));
            }
            c.2 = c.2.min(node_term);
        } else {
            self.committed.push((e.term, h, node_term));
            // Leader completeness for current leaders of later terms.
            for (j, other) in self.nodes.iter().enumerate() {
                if let Some(r) = &other.raft {
                    let s = r.status();
                    if s.role == Role::Leader && s.term > node_term {
                        match other.mirror.get(pos) {
                            Some(&(ot, oh)) if ot == e.term && oh == h => {}
                            _ => {
                                return Err(format!(
                                    "leader completeness: leader n{} of term {} lacks committed entry {}/{}",
                                    j + 1,
                                    s.term,
                                    e.index,
                                    e.term
                                ));
                            }
                        }
                    }
                }
            }
        }
        // Client acknowledgements.
        let node = &mut self.nodes[i];
        if let Some(pid) = node.proposals.remove(&e.index) {
            let p = &mut self.proposals[pid];
            if p.term == e.term
                && e.kind == EntryKind::Command
                && decode(&e.data) == (p.key, p.value)
            {
                p.status = WriteStatus::Acked;
                self.stats.acked_writes += 1;
                let floor = self.acked_floor.entry(p.key).or_insert(0);
                *floor = (*floor).max(p.index);
            } else {
                p.status = WriteStatus::Failed;
            }
        }
        Ok(())
    }

    fn serve_reads(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        let applied = node.applied.len() as Index;
        let mut k = 0;
        while k < node.reads.len() {
            let r = &node.reads[k];
            match r.read_index {
                Some(idx) if applied >= idx => {
                    let got = node.kv.get(&r.key).map_or(0, |&(_, index)| index);
                    if got < r.floor {
                        return Err(format!(
                            "stale read: n{} read#{} of k{} returned the write at {} but the write at {} was acknowledged before the read began",
                            i + 1,
                            r.ctx,
                            r.key,
                            got,
                            r.floor
                        ));
                    }
                    node.reads.swap_remove(k);
                    self.stats.served_reads += 1;
                }
                _ => k += 1,
            }
        }
        Ok(())
    }

    /// Makes node `i`'s queued writes durable, reports them, then sends the
    /// messages that waited for them.
    fn sync(&mut self, i: usize) -> Check {
        self.snapshot_saved(i)?;
        let Some(last) = self.nodes[i].pending.back().map(|w| w.number) else {
            return Ok(());
        };
        let writes: Vec<PendingWrite> = self.nodes[i].pending.drain(..).collect();
        let mut msgs = Vec::new();
        for w in writes {
            self.write_disk(i, &w)?;
            msgs.extend(w.persisted_messages);
        }
        self.nodes[i].raft.as_mut().expect("up").on_persisted(last);
        for m in msgs {
            if m.kind == MessageKind::VoteResponse && !m.reject {
                match self.granted.insert((m.from, m.term), m.to) {
                    Some(prev) if prev != m.to => {
                        return Err(format!(
                            "n{} granted its term-{} vote to n{} and to n{}",
                            m.from, m.term, prev, m.to
                        ));
                    }
                    _ => {}
                }
                // Crashing right after voting tests that the vote survives.
                if self.rng.random_bool(0.1) {
                    self.crash_soon = Some(i);
                }
            }
            if m.kind == MessageKind::AppendResponse && !m.reject {
                let acked = &mut self.nodes[i].acked;
                *acked = (*acked).max((m.term, m.log_index));
            }
            self.send(m);
        }
        self.drive(i)
    }

    fn write_disk(&mut self, i: usize, w: &PendingWrite) -> Check {
        let disk = &mut self.nodes[i].disk;
        if let Some(hs) = w.hard_state {
            let old = disk.hard_state;
            if hs.term < old.term
                || (hs.term == old.term && old.vote.is_some() && hs.vote != old.vote)
                || hs.commit < old.commit
            {
                return Err(format!(
                    "n{} durable hard state goes backwards: {:?} -> {:?}",
                    i + 1,
                    old,
                    hs
                ));
            }
            disk.hard_state = hs;
        }
        if let Some(snap) = &w.snapshot {
            // The paper's rule: a log that holds the snapshot's last entry
            // keeps what follows it; any other log is discarded.
            let (index, term) = (snap.meta.index, snap.meta.term);
            if disk.entry(index).is_none_or(|e| e.term != term) {
                disk.entries.clear();
                disk.first = index + 1;
            }
            if disk.snapshot.as_ref().is_none_or(|s| s.meta.index < index) {
                disk.snapshot = Some(snap.clone());
            }
        }
        if let Some(t) = w.truncate_from {
            if t < disk.first {
                return Err(format!(
                    "n{} truncates from {t}, below its compacted log (first {})",
                    i + 1,
                    disk.first
                ));
            }
            disk.entries.truncate((t - disk.first) as usize);
        }
        for e in &w.entries {
            if e.index != disk.last_index() + 1 || e.index < disk.first {
                return Err(format!(
                    "n{} writes entry {} after {}",
                    i + 1,
                    e.index,
                    disk.last_index()
                ));
            }
            if disk.entries.is_empty() {
                disk.first = e.index;
            }
            disk.entries.push(e.clone());
        }
        Ok(())
    }

    fn crash(&mut self, i: usize, until: u64) {
        // Writes that were queued but not reported durable may or may not
        // have reached the disk: keep a random prefix of them.
        let keep = self.rng.random_range(0..=self.nodes[i].pending.len());
        let writes: Vec<PendingWrite> = self.nodes[i].pending.drain(..).collect();
        for w in writes.iter().take(keep) {
            // Durability checks happen on write; a failure here shows up
            // again in the invariant checks, so it is recorded there.
            let _ = self.write_disk(i, w);
        }
        let node = &mut self.nodes[i];
        node.raft = None;
        node.down_until = Some(until);
        node.reads.clear();
        node.saving = None;
        node.received.clear();
        for (_, pid) in std::mem::take(&mut node.proposals) {
            self.proposals[pid].status = WriteStatus::Failed;
        }
        self.stats.crashes += 1;
        self.log(|| {
            format!(
                "n{} crashes (kept {keep} unsynced writes), down until {until}",
                i + 1
            )
        });
    }

    fn restart(&mut self, i: usize) -> Check {
        let node = &self.nodes[i];
        let hs = node.disk.hard_state;
        if let Some(&granted) = self.granted.get(&(node.id, hs.term))
            && hs.vote != Some(granted)
        {
            return Err(format!(
                "n{} restarts in term {} with vote {:?} but had granted its vote to n{granted}",
                i + 1,
                hs.term,
                hs.vote
            ));
        }
        let raft = self.boot(node.id, &node.disk, node.incarnation + 1);
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        node.raft = Some(raft);
        node.down_until = None;
        let snap = node.disk.snapshot.clone();
        let covered = node.disk.first as usize - 1;
        node.applied = snap.as_ref().map_or_else(Vec::new, |s| s.applied.clone());
        node.kv = snap.as_ref().map_or_else(BTreeMap::new, |s| s.kv.clone());
        if covered > node.applied.len() {
            return Err(format!(
                "n{} restarts with its log starting at {} but a snapshot only up to {}",
                i + 1,
                covered + 1,
                node.applied.len()
            ));
        }
        node.mirror = node.applied[..covered].to_vec();
        node.mirror
            .extend(node.disk.entries.iter().map(|e| (e.term, hash_entry(e))));
        node.snapshot = snap;
        node.seen = (node.disk.hard_state.term, node.disk.hard_state.vote, 0);
        let hs = node.disk.hard_state;
        let (first, len) = (node.disk.first, node.disk.entries.len());
        let snap = node.snapshot.as_ref().map_or(0, |s| s.meta.index);
        self.log(|| {
            format!(
                "n{} restarts with {:?}, snapshot {snap} and {len} entries from {first}",
                i + 1,
                hs
            )
        });
        Ok(())
    }

    /// Per-node monotonicity: term, vote in a term and commit never go back
    /// within an incarnation; a node that is leader has every entry
    /// committed in earlier terms.
    fn check_node(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        let s = node.raft.as_ref().expect("up").status();
        let (term, vote, commit) = node.seen;
        if s.term < term
            || (s.term == term && vote.is_some() && s.vote != vote)
            || s.commit < commit
        {
            return Err(format!(
                "n{} went backwards: (term {term}, vote {vote:?}, commit {commit}) -> (term {}, vote {:?}, commit {})",
                i + 1,
                s.term,
                s.vote,
                s.commit
            ));
        }
        node.seen = (s.term, s.vote, s.commit);
        // Compaction never goes beyond what is applied and in a snapshot.
        let applied = node.applied.len() as Index;
        if s.first_index > applied + 1 || s.first_index > s.snapshot_index + 1 {
            return Err(format!(
                "n{} compacted beyond its state: log starts at {} with {applied} applied and \
                 snapshot {}",
                i + 1,
                s.first_index,
                s.snapshot_index
            ));
        }
        // Within a term, entries a follower acknowledged stay in its log
        // (only a leader of a later term may replace them).
        if node.acked.0 == s.term && (node.mirror.len() as Index) < node.acked.1 {
            return Err(format!(
                "n{} dropped entries it acknowledged in term {}: log ends at {}, acknowledged {}",
                i + 1,
                s.term,
                node.mirror.len(),
                node.acked.1
            ));
        }
        if s.role == Role::Leader && node.was_leader_in != s.term {
            node.was_leader_in = s.term;
            self.stats.leaders += 1;
            let line = format!("n{} becomes leader of term {}", i + 1, s.term);
            self.log(|| line);
            let node = &self.nodes[i];
            for (pos, &(t, h, commit_term)) in self.committed.iter().enumerate() {
                if commit_term < s.term {
                    match node.mirror.get(pos) {
                        Some(&(et, eh)) if et == t && eh == h => {}
                        _ => {
                            return Err(format!(
                                "leader completeness: n{} leads term {} without committed entry {}/{}",
                                i + 1,
                                s.term,
                                pos + 1,
                                t
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_roles(&mut self) -> Check {
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(r) = &node.raft else { continue };
            let s = r.status();
            if s.role == Role::Leader {
                match self.leader_of_term.insert(s.term, node.id) {
                    Some(other) if other != node.id => {
                        return Err(format!(
                            "two leaders in term {}: n{} and n{}",
                            s.term,
                            other,
                            i + 1
                        ));
                    }
                    _ => {}
                }
            }
        }
        if self.step.is_multiple_of(32) {
            self.check_durable_quorum()?;
        }
        Ok(())
    }

    /// Every committed entry is on the durable disk of a majority.
    fn check_durable_quorum(&self) -> Check {
        let majority = self.nodes.len() / 2 + 1;
        for (pos, &(t, h, _)) in self.committed.iter().enumerate() {
            let copies = self
                .nodes
                .iter()
                .filter(|n| n.disk.holds(pos, t, h))
                .count();
            if copies < majority {
                return Err(format!(
                    "committed entry {}/{} is durable on only {copies} nodes",
                    pos + 1,
                    t
                ));
            }
        }
        Ok(())
    }

    /// Recovered: a leader exists, a write proposed after the heal is
    /// acknowledged, and every node has applied everything committed.
    fn check_recovered(&self) -> Check {
        let Some(l) = self.current_leader() else {
            return Err("no leader".into());
        };
        let ok = self
            .proposals
            .iter()
            .any(|p| p.after_heal && p.status == WriteStatus::Acked);
        if !ok {
            return Err(format!(
                "no write acknowledged since the heal (leader n{})",
                l + 1
            ));
        }
        let acked = self
            .proposals
            .iter()
            .filter(|p| p.status == WriteStatus::Acked)
            .map(|p| p.index)
            .max()
            .unwrap_or(0);
        let commit = self.nodes[l]
            .raft
            .as_ref()
            .expect("up")
            .status()
            .commit
            .max(acked);
        for (i, n) in self.nodes.iter().enumerate() {
            if (n.applied.len() as Index) < commit {
                return Err(format!(
                    "n{} applied {} of {commit}",
                    i + 1,
                    n.applied.len()
                ));
            }
        }
        Ok(())
    }

    /// Client oracle at the end: every acknowledged write is applied, at
    /// its index, on every node; committed entries survived on disk.
    fn check_final(&self) -> Check {
        for p in self
            .proposals
            .iter()
            .filter(|p| p.status == WriteStatus::Acked)
        {
            let h = hash_entry(&Entry {
                term: p.term,
                index: p.index,
                kind: EntryKind::Command,
                data: encode(p.key, p.value),
            });
            for (i, n) in self.nodes.iter().enumerate() {
                if n.applied.get(p.index as usize - 1) != Some(&(p.term, h)) {
                    return Err(format!(
                        "acknowledged write k{}={} at {}/{} is not applied on n{}",
                        p.key,
                        p.value,
                        p.index,
                        p.term,
                        i + 1
                    ));
                }
            }
        }
        self.check_durable_quorum()
    }

    // ---- helpers for benchmarks and scenario tests --------------------

    /// Steps without faults until a leader exists; returns its position.
    pub fn elect(&mut self, bound: u64) -> Option<usize> {
        for _ in 0..bound {
            self.one_step_quiet().ok()?;
            if let Some(l) = self.current_leader() {
                let r = self.nodes[l].raft.as_ref().expect("up");
                if r.status().commit >= r.status().last_index {
                    return Some(l);
                }
            }
        }
        None
    }

    fn one_step_quiet(&mut self) -> Check {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.shuffle(&mut self.rng);
        for i in order {
            self.deliver(i)?;
            self.drive(i)?;
            self.sync(i)?;
            self.nodes[i].raft.as_mut().expect("up").tick();
            self.drive(i)?;
        }
        self.step += 1;
        self.check_roles()
    }

    /// Proposes `n` writes at leader `l` and steps until the leader has
    /// applied them all; returns the steps taken.
    pub fn commit_batch(&mut self, l: usize, n: usize, bound: u64) -> Option<u64> {
        let mut last = 0;
        for _ in 0..n {
            let key = (self.next_value % KEYS as u64) as u8;
            let value = self.next_value;
            self.next_value += 1;
            let (index, _) = self.nodes[l]
                .raft
                .as_mut()?
                .propose(encode(key, value))
                .ok()?;
            last = index;
        }
        for s in 0..bound {
            if self.nodes[l].applied.len() as Index >= last {
                return Some(s);
            }
            self.one_step_quiet().ok()?;
        }
        None
    }
}

fn plus1(v: &[usize]) -> Vec<usize> {
    v.iter().map(|x| x + 1).collect()
}

fn sim_faults_summary(f: &Faults) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "loss {:.2} dup {:.2} delay<={} partitions {} crashes {} pauses {} skips {} sync {:.2}",
        f.loss, f.duplicate, f.max_delay, f.partitions, f.crashes, f.pauses, f.tick_skips, f.sync
    );
    s
}

fn describe(m: &Message) -> String {
    let mut s = format!("n{} -> n{} {:?} t{}", m.from, m.to, m.kind, m.term);
    match m.kind {
        MessageKind::Append => {
            let _ = write!(
                s,
                " prev {}/{} entries {} commit {}",
                m.log_index,
                m.log_term,
                m.entries.len(),
                m.commit
            );
        }
        MessageKind::AppendResponse => {
            let _ = write!(
                s,
                " index {} reject {} hint {} conflict_term {}",
                m.log_index, m.reject, m.reject_hint, m.conflict_term
            );
        }
        MessageKind::Vote | MessageKind::PreVote => {
            let _ = write!(s, " last {}/{}", m.log_index, m.log_term);
        }
        MessageKind::VoteResponse | MessageKind::PreVoteResponse => {
            let _ = write!(s, " reject {}", m.reject);
        }
        MessageKind::Heartbeat | MessageKind::HeartbeatResponse => {
            let _ = write!(s, " commit {} ctx {}", m.commit, m.read_ctx);
        }
        MessageKind::TimeoutNow => {}
        MessageKind::Snapshot => {
            let _ = write!(s, " snapshot {}/{}", m.log_index, m.log_term);
        }
    }
    s
}
