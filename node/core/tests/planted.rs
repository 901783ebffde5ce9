//! Each mistake planted in the Raft core really misbehaves, and the same
//! scenario is correct without it. Run with
//! `cargo test -p raftkv-core --features planted-mistakes --test planted`.
//!
//! Every test takes the process-wide plant guard (also to run without a
//! mistake), so the tests of this binary run one at a time.

#![cfg(feature = "planted-mistakes")]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use raftkv_core::*;
use raftkv_plant::{Plant, plant_for_test};
use support::sim::Sim;

// ---- a small cluster driven by hand ---------------------------------------

fn config(id: NodeId, n: u64) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

/// A node restored with hard state (`term`, no vote, `commit`) and a log
/// whose entry `i` has term `terms[i - 1]`.
fn restored_node(id: NodeId, n: u64, term: Term, commit: Index, terms: &[Term]) -> Raft {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(t, i as Index + 1))
        .collect();
    let restored = Restored {
        hard_state: HardState {
            term,
            vote: None,
            commit,
        },
        snapshot: None,
        entries,
    };
    Raft::new(config(id, n), restored, id).unwrap()
}

fn entry(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command,
        data: format!("write {index} of term {term}").into_bytes(),
    }
}

/// What a node's readies carried, its writes reported durable at once.
#[derive(Default)]
struct Out {
    messages: Vec<Message>,
    committed: Vec<Entry>,
    reads: Vec<ReadState>,
}

fn drain(r: &mut Raft) -> Out {
    let mut out = Out::default();
    while r.has_ready() {
        let rd = r.ready();
        r.on_persisted(rd.number);
        out.messages.extend(rd.messages);
        out.messages.extend(rd.persisted_messages);
        out.committed.extend(rd.committed);
        out.reads.extend(rd.reads);
    }
    out
}

/// Nodes that exchange every message at once, except to or from a node
/// that is down.
struct Net {
    nodes: BTreeMap<NodeId, Raft>,
    down: BTreeSet<NodeId>,
    committed: BTreeMap<NodeId, Vec<Entry>>,
    reads: BTreeMap<NodeId, Vec<ReadState>>,
}

impl Net {
    fn new(nodes: Vec<Raft>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|r| (r.status().id, r)).collect(),
            down: BTreeSet::new(),
            committed: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).unwrap()
    }

    fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].status()
    }

    /// Drains node `id`, keeping what it applies and reads; returns its
    /// messages.
    fn drain(&mut self, id: NodeId) -> Vec<Message> {
        let out = drain(self.node(id));
        self.committed.entry(id).or_default().extend(out.committed);
        self.reads.entry(id).or_default().extend(out.reads);
        out.messages
    }

    /// Delivers messages until every node is quiet.
    fn settle(&mut self) {
        loop {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            let mut queue = Vec::new();
            for id in ids {
                if !self.down.contains(&id) {
                    queue.extend(self.drain(id));
                }
            }
            if queue.is_empty() {
                return;
            }
            for m in queue {
                if !self.down.contains(&m.to) {
                    self.node(m.to).step(m);
                }
            }
        }
    }

    /// Ticks node `id` until it campaigns, then settles.
    fn campaign(&mut self, id: NodeId) {
        for _ in 0..Config::new(1, vec![1]).election_ticks_max {
            self.node(id).tick();
            if self.status(id).role != Role::Follower {
                break;
            }
        }
        assert_eq!(self.status(id).role, Role::Candidate, "node {id}");
        self.settle();
    }

    /// Node `id`'s log entry at `index`, as (term, data).
    fn entry_at(&self, id: NodeId, index: Index) -> Option<(Term, Vec<u8>)> {
        self.nodes[&id]
            .entry(index)
            .map(|e| (e.term, e.data.clone()))
    }
}

// ---- VoteIgnoresLog ---------------------------------------------------------

/// Leader n1 of term 1 committed entry 2 with n2's copy, then went down
/// before n2 learned the commit; n3 never got entry 2. Returns whether the
/// committed entry is still on a majority (n2 and n3) once a new leader of
/// the remaining two has replicated its log.
fn committed_entry_survives_its_leader() -> bool {
    let mut net = Net::new(vec![
        restored_node(1, 3, 1, 2, &[1, 1]),
        restored_node(2, 3, 1, 1, &[1, 1]),
        restored_node(3, 3, 1, 1, &[1]),
    ]);
    let committed = net.entry_at(1, 2).unwrap();
    net.down.insert(1);
    // The node without the entry times out first.
    net.campaign(3);
    if net.status(3).role != Role::Leader {
        // Refused by n2: n2 times out next and wins with n3's vote.
        net.campaign(2);
        assert_eq!(net.status(2).role, Role::Leader);
    }
    net.tick_heartbeats(2);
    [2, 3]
        .iter()
        .all(|&id| net.entry_at(id, 2).as_ref() == Some(&committed))
}

impl Net {
    /// Lets every node that leads send `rounds` rounds of heartbeats.
    fn tick_heartbeats(&mut self, rounds: u32) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for _ in 0..rounds * Config::new(1, vec![1]).heartbeat_ticks {
            for &id in &ids {
                if !self.down.contains(&id) && self.status(id).role == Role::Leader {
                    self.node(id).tick();
                }
            }
            self.settle();
        }
    }
}

#[test]
fn vote_ignores_log_elects_a_node_without_a_committed_entry() {
    let _planted = plant_for_test(Some(Plant::VoteIgnoresLog));
    assert!(
        !committed_entry_survives_its_leader(),
        "the committed entry survived: the vote checked the logs"
    );
}

#[test]
fn without_the_plant_a_committed_entry_survives_its_leader() {
    let _planted = plant_for_test(None);
    assert!(committed_entry_survives_its_leader());
}

// ---- HeartbeatCommitUnbounded ---------------------------------------------

/// n2 led term 2 and appended entries 2 and 3, which never committed; n1
/// then won term 3 with n3 and committed its no-op at index 2. n2 comes
/// back and hears n1's first heartbeat before any Append. Returns what n2
/// applies on that heartbeat, and n1's committed entry 2.
fn deposed_leader_hears_a_heartbeat() -> (Vec<Entry>, Entry) {
    let mut net = Net::new(vec![
        restored_node(1, 3, 2, 1, &[1]),
        restored_node(2, 3, 2, 1, &[1, 2, 2]),
        restored_node(3, 3, 2, 1, &[1]),
    ]);
    net.down.insert(2);
    net.campaign(1);
    assert_eq!(net.status(1).role, Role::Leader);
    assert_eq!(net.status(1).commit, 2);
    let noop = net.nodes[&1].entry(2).unwrap().clone();
    // n2 restarts: it knows entry 1 is committed.
    net.drain(2);
    net.down.remove(&2);
    let heartbeats_to_2: Vec<Message> = (0..Config::new(1, vec![1]).heartbeat_ticks)
        .flat_map(|_| {
            net.node(1).tick();
            net.drain(1)
        })
        .filter(|m| m.to == 2 && m.kind == MessageKind::Heartbeat)
        .collect();
    assert_eq!(heartbeats_to_2.len(), 1);
    let before = net.committed.get(&2).map_or(0, Vec::len);
    net.node(2).step(heartbeats_to_2[0].clone());
    net.drain(2);
    (net.committed[&2][before..].to_vec(), noop)
}

#[test]
fn heartbeat_commit_unbounded_makes_a_deposed_leader_apply_its_own_entry() {
    let _planted = plant_for_test(Some(Plant::HeartbeatCommitUnbounded));
    let (applied, committed) = deposed_leader_hears_a_heartbeat();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0].index, 2);
    assert_eq!(applied[0].term, 2, "n2 applied its own uncommitted entry");
    assert_ne!(
        applied[0], committed,
        "the cluster committed another entry 2"
    );
}

#[test]
fn without_the_plant_a_heartbeat_commits_nothing_unmatched() {
    let _planted = plant_for_test(None);
    let (applied, _) = deposed_leader_hears_a_heartbeat();
    assert!(applied.is_empty(), "{applied:?}");
}

// ---- StaleTermAppend --------------------------------------------------------

/// n2 follows n3 in term 3 and has acknowledged entry 2 of term 3; a late
/// Append of the deposed leader n1 of term 2 arrives, for index 2. Returns
/// n2's entry 2 afterwards and its answer to n1.
fn late_append_of_a_deposed_leader() -> (Option<(Term, Vec<u8>)>, Message) {
    let mut net = Net::new(vec![restored_node(2, 3, 3, 1, &[1, 3])]);
    let mut m = Message::new(MessageKind::Append, 1, 2, 2);
    m.log_index = 1;
    m.log_term = 1;
    m.entries = vec![entry(2, 2)];
    m.commit = 1;
    net.node(2).step(m);
    let answers = net.drain(2);
    assert_eq!(answers.len(), 1);
    (net.entry_at(2, 2), answers[0].clone())
}

#[test]
fn stale_term_append_replaces_an_acknowledged_entry_of_a_newer_term() {
    let _planted = plant_for_test(Some(Plant::StaleTermAppend));
    let (entry2, answer) = late_append_of_a_deposed_leader();
    assert_eq!(
        entry2.map(|(t, _)| t),
        Some(2),
        "entry 2 of term 3 was replaced by the deposed leader's"
    );
    // The deposed leader still learns the newer term from the answer.
    assert_eq!(answer.term, 3);
}

#[test]
fn without_the_plant_a_stale_append_is_refused() {
    let _planted = plant_for_test(None);
    let (entry2, answer) = late_append_of_a_deposed_leader();
    assert_eq!(entry2, Some((3, entry(3, 2).data)));
    assert!(answer.reject && answer.term == 3);
}

// ---- ReadIndexNoQuorum ----------------------------------------------------

/// n1 leads term 1 with k = entry 2 committed; it is cut off, n2 wins
/// term 2 and commits entry 3 (a newer write). A client then reads from
/// n1, which still believes it leads. Returns the reads n1 confirmed and
/// the index of the newer write.
fn read_from_a_cut_off_leader() -> (Vec<ReadState>, Index) {
    let mut net = Net::new((1..=3).map(|id| restored_node(id, 3, 0, 0, &[])).collect());
    net.campaign(1);
    assert_eq!(net.status(1).role, Role::Leader);
    net.node(1).propose(b"k=old".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.status(1).commit, 2);
    net.down.insert(1);
    net.campaign(2);
    assert_eq!(net.status(2).role, Role::Leader);
    let (newer, _) = net.node(2).propose(b"k=new".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.status(2).commit, newer);

    assert_eq!(net.status(1).role, Role::Leader, "n1 never heard of term 2");
    net.node(1).read_index(7).unwrap();
    net.drain(1);
    net.node(1).tick();
    net.drain(1);
    (net.reads.remove(&1).unwrap_or_default(), newer)
}

#[test]
fn read_index_no_quorum_serves_a_cut_off_leader() {
    let _planted = plant_for_test(Some(Plant::ReadIndexNoQuorum));
    let (reads, newer) = read_from_a_cut_off_leader();
    assert_eq!(reads.len(), 1, "the read was not confirmed");
    assert!(
        reads[0].index < newer,
        "confirmed at {} although {newer} is committed elsewhere",
        reads[0].index
    );
}

#[test]
fn without_the_plant_a_cut_off_leader_confirms_no_read() {
    let _planted = plant_for_test(None);
    let (reads, _) = read_from_a_cut_off_leader();
    assert!(reads.is_empty(), "{reads:?}");
}

// ---- the simulator's invariants catch every core mistake -------------------

// ---- StaleSnapshotInstall -----------------------------------------------------

/// A follower that committed up to 6 gets a late copy of the leader's
/// snapshot at 4. Returns its commit index and log span afterwards, and
/// whether it handed the snapshot out to be installed.
fn follower_gets_a_stale_snapshot() -> ((Index, Index, Index), bool) {
    let mut r = restored_node(2, 3, 1, 6, &[1, 1, 1, 1, 1, 1]);
    drain(&mut r);
    let mut m = Message::new(MessageKind::Snapshot, 1, 2, 1);
    m.log_index = 4;
    m.log_term = 1;
    m.snapshot = Some(SnapshotMeta {
        index: 4,
        term: 1,
        voters: vec![1, 2, 3],
    });
    r.step(m);
    let rd = r.ready();
    let s = r.status();
    (
        (s.commit, s.first_index, s.last_index),
        rd.snapshot.is_some(),
    )
}

#[test]
fn stale_snapshot_install_takes_the_follower_back() {
    let _planted = plant_for_test(Some(Plant::StaleSnapshotInstall));
    let ((commit, first, last), installed) = follower_gets_a_stale_snapshot();
    assert!(installed, "the stale snapshot was not installed");
    assert_eq!(
        (commit, first, last),
        (4, 5, 4),
        "commit went back, entries 5-6 gone"
    );
}

#[test]
fn without_the_plant_a_stale_snapshot_is_ignored() {
    let _planted = plant_for_test(None);
    let (span, installed) = follower_gets_a_stale_snapshot();
    assert!(!installed);
    assert_eq!(span, (6, 1, 6));
}

/// Seeds tried per cluster size. The simulator draws faults, delays and
/// clients from the seed, so a fixed range is a fixed set of runs.
const SIM_SEEDS: u64 = 500;

/// Runs the seeds `0..SIM_SEEDS` on 3 and 5 nodes; returns the first
/// failure's reason, if any (a panic in the core counts as one: debug
/// builds assert some invariants themselves).
fn first_sim_failure() -> Option<String> {
    for nodes in [3, 5] {
        for seed in 0..SIM_SEEDS {
            let run = std::panic::catch_unwind(|| {
                Sim::new(seed, nodes, None, false)
                    .run(200 + (seed % 7) * 60, 400)
                    .map(|_| ())
            });
            match run {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => return Some(failure.to_string()),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    return Some(format!("seed {seed}, {nodes} nodes: panic: {what}"));
                }
            }
        }
    }
    None
}

fn assert_sim_catches(plant: Plant) {
    let _planted = plant_for_test(Some(plant));
    match first_sim_failure() {
        Some(reason) => eprintln!("{}: {}", plant.name(), reason.lines().next().unwrap()),
        None => panic!("{} passed {SIM_SEEDS} seeds per size", plant.name()),
    }
}

#[test]
fn simulator_catches_vote_ignores_log() {
    assert_sim_catches(Plant::VoteIgnoresLog);
}

#[test]
fn simulator_catches_heartbeat_commit_unbounded() {
    assert_sim_catches(Plant::HeartbeatCommitUnbounded);
}

#[test]
fn simulator_catches_stale_term_append() {
    assert_sim_catches(Plant::StaleTermAppend);
}

#[test]
fn simulator_catches_read_index_no_quorum() {
    assert_sim_catches(Plant::ReadIndexNoQuorum);
}

#[test]
fn simulator_catches_stale_snapshot_install() {
    assert_sim_catches(Plant::StaleSnapshotInstall);
}

#[test]
fn without_a_plant_the_same_seeds_pass() {
    let _planted = plant_for_test(None);
    if let Some(reason) = first_sim_failure() {
        panic!("{reason}");
    }
}
