//! One test per rule of Figure 2 of the Raft paper and per extension
//! (PreVote, CheckQuorum, ReadIndex, pipelining, leadership transfer).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raftkv_core::*;

fn config(id: NodeId, n: u64) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

fn node(id: NodeId, n: u64) -> Raft {
    Raft::new(config(id, n), Restored::default(), id).unwrap()
}

fn node_with(c: Config, restored: Restored) -> Raft {
    let id = c.id;
    Raft::new(c, restored, id).unwrap()
}

fn entry(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command,
        data: vec![index as u8],
    }
}

fn log_of(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(t, i as Index + 1))
        .collect()
}

fn restored(term: Term, terms: &[Term]) -> Restored {
    Restored {
        hard_state: HardState {
            term,
            vote: None,
            commit: 0,
        },
        snapshot: None,
        entries: log_of(terms),
    }
}

/// Everything one or more readies carried, with writes reported durable.
#[derive(Default)]
struct Drained {
    messages: Vec<Message>,
    persisted: Vec<Message>,
    committed: Vec<Entry>,
    reads: Vec<ReadState>,
    failed_reads: Vec<u64>,
    hard_states: Vec<HardState>,
    entries: Vec<Entry>,
    truncations: Vec<Index>,
    snapshots: Vec<SnapshotMeta>,
}

impl Drained {
    fn all(&self) -> Vec<Message> {
        self.messages
            .iter()
            .chain(&self.persisted)
            .cloned()
            .collect()
    }
    fn of_kind(&self, kind: MessageKind) -> Vec<Message> {
        self.all().into_iter().filter(|m| m.kind == kind).collect()
    }
}

/// Takes readies until none is left, persisting each at once.
fn drain(r: &mut Raft) -> Drained {
    let mut d = Drained::default();
    while r.has_ready() {
        let rd = r.ready();
        r.on_persisted(rd.number);
        d.messages.extend(rd.messages);
        d.persisted.extend(rd.persisted_messages);
        d.committed.extend(rd.committed);
        d.reads.extend(rd.reads);
        d.failed_reads.extend(rd.failed_reads);
        d.hard_states.extend(rd.hard_state);
        d.entries.extend(rd.entries);
        d.truncations.extend(rd.truncate_from);
        d.snapshots.extend(rd.snapshot);
    }
    d
}

fn tick_n(r: &mut Raft, n: u32) {
    for _ in 0..n {
        r.tick();
    }
}

fn msg(kind: MessageKind, from: NodeId, to: NodeId, term: Term) -> Message {
    Message::new(kind, from, to, term)
}

fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry>,
    commit: Index,
) -> Message {
    let mut m = msg(MessageKind::Append, from, to, term);
    m.log_index = prev.0;
    m.log_term = prev.1;
    m.entries = entries;
    m.commit = commit;
    m
}

/// A cluster that delivers every message at once, except on cut links.
struct Cluster {
    nodes: BTreeMap<NodeId, Raft>,
    cut: BTreeSet<(NodeId, NodeId)>,
    applied: BTreeMap<NodeId, Vec<Entry>>,
    reads: BTreeMap<NodeId, Vec<ReadState>>,
}

impl Cluster {
    fn new(n: u64, tweak: impl Fn(&mut Config)) -> Cluster {
        let nodes = (1..=n)
            .map(|id| {
                let mut c = config(id, n);
                tweak(&mut c);
                (id, node_with(c, Restored::default()))
            })
            .collect();
        Cluster {
            nodes,
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    fn isolate(&mut self, id: NodeId) {
        for &other in self.nodes.keys() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Delivers messages until the cluster is quiet.
    fn settle(&mut self) {
        let mut queue: VecDeque<Message> = VecDeque::new();
        loop {
            for (&id, r) in self.nodes.iter_mut() {
                let d = drain(r);
                queue.extend(d.all());
                self.applied.entry(id).or_default().extend(d.committed);
                self.reads.entry(id).or_default().extend(d.reads);
            }
            if queue.is_empty() {
                return;
            }
            while let Some(m) = queue.pop_front() {
                if !self.cut.contains(&(m.from, m.to))
                    && let Some(r) = self.nodes.get_mut(&m.to)
                {
                    r.step(m);
                }
            }
        }
    }

    fn tick(&mut self, id: NodeId, n: u32) {
        for _ in 0..n {
            self.nodes.get_mut(&id).unwrap().tick();
            self.settle();
        }
    }

    fn tick_all(&mut self, n: u32) {
        for _ in 0..n {
            for r in self.nodes.values_mut() {
                r.tick();
            }
            self.settle();
        }
    }

    /// Makes `id` campaign now and settles.
    fn elect(&mut self, id: NodeId) {
        let max = Config::new(1, vec![1]).election_ticks_max;
        self.tick(id, max);
        assert_eq!(self.status(id).role, Role::Leader, "node {id} should lead");
    }

    fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].status()
    }

    fn raft(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).unwrap()
    }
}

// ---- Figure 2, rules for all servers ---------------------------------------

#[test]
fn starts_as_follower_without_leader() {
    let r = node(1, 3);
    let s = r.status();
    assert_eq!(
        (s.role, s.term, s.leader, s.commit),
        (Role::Follower, 0, None, 0)
    );
}

#[test]
fn higher_term_in_any_message_makes_a_node_follower_of_that_term() {
    for kind in [
        MessageKind::Append,
        MessageKind::Heartbeat,
        MessageKind::Vote,
        MessageKind::AppendResponse,
    ] {
        let mut c = Cluster::new(3, |_| {});
        c.elect(1);
        let term = c.status(1).term;
        c.raft(1).step(msg(kind, 2, 1, term + 5));
        let s = c.status(1);
        assert_eq!((s.role, s.term), (Role::Follower, term + 5), "{kind:?}");
    }
}

#[test]
fn stale_term_append_is_answered_with_the_current_term_and_ignored() {
    let mut c = config(1, 3);
    c.check_quorum = true;
    let mut r = node_with(c, restored(5, &[1, 2]));
    r.step(append(2, 1, 3, (2, 2), vec![entry(3, 3)], 3));
    let d = drain(&mut r);
    assert_eq!(r.status().last_index, 2);
    assert_eq!(r.status().term, 5);
    let resp = d.of_kind(MessageKind::AppendResponse);
    assert_eq!(resp.len(), 1);
    assert_eq!(resp[0].term, 5);
}

#[test]
fn committed_entries_are_handed_out_in_order_and_only_once() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    for i in 0..5u8 {
        c.raft(1).propose(vec![i]).unwrap();
    }
    c.settle();
    c.tick_all(2);
    for id in 1..=3 {
        let applied = &c.applied[&id];
        let idx: Vec<Index> = applied.iter().map(|e| e.index).collect();
        assert_eq!(idx, (1..=6).collect::<Vec<_>>(), "node {id}");
        assert_eq!(applied[0].kind, EntryKind::Noop);
    }
}

// ---- Followers and elections --------------------------------------------

#[test]
fn election_timeout_is_randomised_within_bounds() {
    let mut seen = BTreeSet::new();
    for seed in 0..50 {
        let mut r = Raft::new(config(1, 3), Restored::default(), seed).unwrap();
        let mut ticks = 0;
        while r.status().role == Role::Follower {
            r.tick();
            ticks += 1;
            assert!(ticks <= 20);
        }
        assert!(ticks >= 10, "timeout {ticks} below the minimum");
        seen.insert(ticks);
    }
    assert!(seen.len() > 3, "timeouts are not spread: {seen:?}");
}

#[test]
fn follower_times_out_and_campaigns_with_its_log_position() {
    let mut r = node_with(config(1, 3), restored(2, &[1, 2]));
    tick_n(&mut r, 20);
    let s = r.status();
    assert_eq!((s.role, s.term, s.vote), (Role::Candidate, 3, Some(1)));
    let d = drain(&mut r);
    let votes = d.of_kind(MessageKind::Vote);
    assert_eq!(votes.len(), 2);
    assert!(
        votes
            .iter()
            .all(|m| m.term == 3 && m.log_index == 2 && m.log_term == 2)
    );
    // Vote requests promise the vote for ourselves: only after the fsync.
    assert!(d.messages.iter().all(|m| m.kind != MessageKind::Vote));
    assert_eq!(d.hard_states.last().unwrap().vote, Some(1));
}

#[test]
fn candidate_wins_with_a_majority() {
    let mut r = node(1, 5);
    tick_n(&mut r, 20);
    drain(&mut r);
    let mut grant = msg(MessageKind::VoteResponse, 2, 1, 1);
    r.step(grant.clone());
    assert_eq!(r.status().role, Role::Candidate);
    grant.from = 3;
    r.step(grant);
    assert_eq!(r.status().role, Role::Leader);
}

#[test]
fn candidate_loses_with_a_majority_of_rejections() {
    let mut r = node(1, 3);
    tick_n(&mut r, 20);
    drain(&mut r);
    let mut no = msg(MessageKind::VoteResponse, 2, 1, 1);
    no.reject = true;
    r.step(no.clone());
    no.from = 3;
    r.step(no);
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(r.status().term, 1);
}

#[test]
fn candidate_counts_its_own_vote_only_once_it_is_durable() {
    let mut r = Raft::new(config(1, 1), Restored::default(), 1).unwrap();
    tick_n(&mut r, 20);
    assert_eq!(r.status().role, Role::Candidate);
    let rd = r.ready();
    assert_eq!(rd.hard_state.unwrap().vote, Some(1));
    assert_eq!(r.status().role, Role::Candidate);
    r.on_persisted(rd.number);
    assert_eq!(r.status().role, Role::Leader);
}

#[test]
fn candidate_steps_down_on_append_from_leader_of_its_term() {
    let mut r = node(1, 3);
    tick_n(&mut r, 20);
    drain(&mut r);
    r.step(append(2, 1, 1, (0, 0), vec![], 0));
    let s = r.status();
    assert_eq!((s.role, s.leader, s.term), (Role::Follower, Some(2), 1));
}

#[test]
fn a_node_votes_at_most_once_per_term() {
    let mut r = node(1, 3);
    let mut v = msg(MessageKind::Vote, 2, 1, 1);
    r.step(v.clone());
    v.from = 3;
    r.step(v.clone());
    let d = drain(&mut r);
    let resp = d.of_kind(MessageKind::VoteResponse);
    assert_eq!(resp.len(), 2);
    assert!(!resp[0].reject && resp[0].to == 2);
    assert!(resp[1].reject && resp[1].to == 3);
    // Re-asked by the same candidate, it grants again (idempotent).
    v.from = 2;
    r.step(v);
    assert!(!drain(&mut r).of_kind(MessageKind::VoteResponse)[0].reject);
    // The grant is sent only after the vote is durable.
    assert!(
        d.messages
            .iter()
            .all(|m| m.kind != MessageKind::VoteResponse)
    );
    assert_eq!(d.hard_states.last().unwrap().vote, Some(2));
}

#[test]
fn vote_is_refused_to_a_candidate_with_a_less_up_to_date_log() {
    // Our log: terms [1, 2, 2]. (last_index, last_term) of candidates:
    let cases = [
        ((3, 2), true),
        ((4, 2), true),
        ((1, 3), true),
        ((2, 2), false),
        ((5, 1), false),
    ];
    for ((li, lt), granted) in cases {
        let mut r = node_with(config(1, 3), restored(2, &[1, 2, 2]));
        let mut v = msg(MessageKind::Vote, 2, 1, 3);
        v.log_index = li;
        v.log_term = lt;
        r.step(v);
        let resp = drain(&mut r).of_kind(MessageKind::VoteResponse);
        assert_eq!(!resp[0].reject, granted, "candidate at {li}/{lt}");
    }
}

#[test]
fn vote_survives_restart_through_hard_state() {
    let mut r = node(1, 3);
    r.step(msg(MessageKind::Vote, 2, 1, 4));
    let d = drain(&mut r);
    let hs = *d.hard_states.last().unwrap();
    let mut r = Raft::new(
        config(1, 3),
        Restored {
            hard_state: hs,
            ..Default::default()
        },
        9,
    )
    .unwrap();
    r.step(msg(MessageKind::Vote, 3, 1, 4));
    let resp = drain(&mut r).of_kind(MessageKind::VoteResponse);
    assert!(resp[0].reject, "voted twice in term 4 after a restart");
}

// ---- Leaders: heartbeats, replication, commitment ------------------------

#[test]
fn new_leader_appends_a_noop_of_its_term() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let e = c.raft(1).entry(1).cloned().unwrap();
    assert_eq!((e.kind, e.term), (EntryKind::Noop, c.status(1).term));
}

#[test]
fn leader_sends_heartbeats_every_heartbeat_interval() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let r = c.raft(1);
    drain(r);
    let mut ticks = 0;
    while {
        r.tick();
        ticks += 1;
        drain(r).of_kind(MessageKind::Heartbeat).is_empty()
    } {
        assert!(ticks < 2);
    }
    r.tick();
    assert!(drain(r).of_kind(MessageKind::Heartbeat).is_empty());
    r.tick();
    let hb = drain(r).of_kind(MessageKind::Heartbeat);
    assert_eq!(
        hb.iter().map(|m| m.to).collect::<BTreeSet<_>>(),
        BTreeSet::from([2, 3])
    );
}

#[test]
fn leader_commits_once_a_majority_stores_the_entry() {
    let mut c = Cluster::new(5, |_| {});
    c.elect(1);
    c.isolate(4);
    c.isolate(5);
    c.cut.remove(&(4, 5));
    c.cut.remove(&(5, 4));
    let (index, _) = c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    assert_eq!(c.status(1).commit, index, "3 of 5 store it");
    c.isolate(3);
    let (index2, _) = c.raft(1).propose(b"y".to_vec()).unwrap();
    c.settle();
    assert_eq!(c.status(1).commit, index, "2 of 5 are not a majority");
    assert!(index2 > index);
}

#[test]
fn followers_learn_the_commit_index_and_apply() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    c.tick(1, 2);
    for id in 2..=3 {
        assert_eq!(c.status(id).commit, 2);
        assert_eq!(c.applied[&id].last().unwrap().data, b"x");
    }
}

#[test]
fn previous_term_entries_are_not_committed_by_counting_replicas() {
    // Figure 8: leader of term 4 with an entry of term 2 that a majority
    // stores must not commit it until an entry of term 4 is stored too.
    let mut r = node_with(config(1, 3), restored(3, &[1, 2]));
    tick_n(&mut r, 20);
    drain(&mut r);
    let mut grant = msg(MessageKind::VoteResponse, 2, 1, 4);
    r.step(grant.clone());
    grant.from = 3;
    r.step(grant);
    assert_eq!(r.status().role, Role::Leader);
    drain(&mut r);
    // Node 2 acknowledges index 2 (the term-2 entry) only.
    let mut ack = msg(MessageKind::AppendResponse, 2, 1, 4);
    ack.log_index = 2;
    r.step(ack.clone());
    assert_eq!(r.status().commit, 0, "a term-2 entry committed by counting");
    ack.log_index = 3;
    r.step(ack);
    assert_eq!(r.status().commit, 3, "the term-4 no-op commits it");
}

#[test]
fn leader_sends_before_its_write_is_durable_and_counts_itself_after() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let r = c.raft(1);
    let (index, _) = r.propose(b"x".to_vec()).unwrap();
    let rd = r.ready();
    assert_eq!(rd.entries.len(), 1);
    let appends: Vec<_> = rd
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::Append)
        .collect();
    assert_eq!(appends.len(), 2, "Appends go out before the leader's fsync");
    // One follower acknowledges: with the leader not yet durable, 1 of 3.
    let mut ack = msg(MessageKind::AppendResponse, 2, 1, r.status().term);
    ack.log_index = index;
    r.step(ack);
    assert!(r.status().commit < index);
    r.on_persisted(rd.number);
    assert_eq!(r.status().commit, index);
}

#[test]
fn committed_entries_are_handed_out_only_up_to_the_durable_index() {
    let mut r = node(2, 3);
    r.step(append(1, 2, 1, (0, 0), vec![entry(1, 1), entry(1, 2)], 2));
    let rd = r.ready();
    assert_eq!(r.status().commit, 2);
    assert!(
        rd.committed.is_empty(),
        "applying entries that are not durable"
    );
    assert_eq!(rd.entries.len(), 2);
    // The append response waits for the fsync.
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages[0].kind, MessageKind::AppendResponse);
    r.on_persisted(rd.number);
    let rd = r.ready();
    assert_eq!(rd.committed.len(), 2);
}

#[test]
fn follower_rejects_append_that_fails_the_consistency_check() {
    let mut r = node_with(config(2, 3), restored(3, &[1, 1, 2, 2, 3]));
    // Log too short: hint = last + 1, no conflict term.
    r.step(append(1, 2, 3, (7, 3), vec![], 0));
    let resp = drain(&mut r).of_kind(MessageKind::AppendResponse);
    assert!(resp[0].reject);
    assert_eq!(
        (
            resp[0].log_index,
            resp[0].reject_hint,
            resp[0].conflict_term
        ),
        (7, 6, 0)
    );
    // Term mismatch at 4: conflict term 2, first index of term 2 is 3.
    r.step(append(1, 2, 3, (4, 3), vec![], 0));
    let resp = drain(&mut r).of_kind(MessageKind::AppendResponse);
    assert!(resp[0].reject);
    assert_eq!(
        (
            resp[0].log_index,
            resp[0].reject_hint,
            resp[0].conflict_term
        ),
        (4, 3, 2)
    );
    assert_eq!(r.status().last_index, 5);
}

#[test]
fn follower_truncates_on_a_real_conflict_only_from_the_conflict() {
    let mut r = node_with(config(2, 3), restored(3, &[1, 1, 2, 2]));
    r.step(append(
        1,
        2,
        3,
        (2, 1),
        vec![entry(1, 3) /* hypothetical */],
        0,
    ));
    // Entry 3 has term 2 here, term 1 in the message: a real conflict.
    let d = drain(&mut r);
    assert_eq!(d.truncations, vec![3]);
    assert_eq!(r.status().last_index, 3);
    assert_eq!(r.entry(3).unwrap().term, 1);
}

#[test]
fn stale_duplicated_or_reordered_appends_never_truncate() {
    let mut r = node(2, 3);
    let full = append(
        1,
        2,
        1,
        (0, 0),
        vec![entry(1, 1), entry(1, 2), entry(1, 3)],
        0,
    );
    let short = append(1, 2, 1, (0, 0), vec![entry(1, 1)], 0);
    r.step(full.clone());
    drain(&mut r);
    r.step(short);
    r.step(full);
    let d = drain(&mut r);
    assert!(d.truncations.is_empty());
    assert!(d.entries.is_empty());
    assert_eq!(r.status().last_index, 3);
    // The stale append is acknowledged for what it covered only.
    let acks: Vec<Index> = d
        .of_kind(MessageKind::AppendResponse)
        .iter()
        .map(|m| m.log_index)
        .collect();
    assert_eq!(acks, vec![1, 3]);
}

#[test]
fn follower_commit_is_bounded_by_what_the_append_proved() {
    let mut r = node_with(config(2, 3), restored(1, &[1, 1, 1, 1]));
    // The leader's log may differ after index 2; commit 4 only covers 2.
    r.step(append(1, 2, 2, (2, 1), vec![], 4));
    assert_eq!(r.status().commit, 2);
}

#[test]
fn leader_backs_off_a_whole_term_per_rejection() {
    // Leader log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]; follower: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]
    let leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let follower_log = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3];
    let mut l = node_with(config(1, 2), restored(7, &leader_log));
    let mut f = node_with(config(2, 2), restored(7, &follower_log));
    tick_n(&mut l, 20);
    let mut rounds = 0;
    let mut to_f: Vec<Message> = drain(&mut l).all();
    while l.status().commit < 11 {
        rounds += 1;
        assert!(rounds < 10, "back-off does not converge");
        let mut to_l = Vec::new();
        for m in to_f.drain(..) {
            f.step(m);
        }
        to_l.extend(drain(&mut f).all());
        for m in to_l {
            l.step(m);
        }
        to_f = drain(&mut l).all();
    }
    assert!(rounds <= 5, "took {rounds} round trips");
    assert_eq!(f.entry(4).unwrap().term, 4);
    assert_eq!(f.status().last_index, 11);
}

#[test]
fn batching_puts_many_proposals_in_one_append() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let r = c.raft(1);
    for i in 0..100u8 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.ready();
    let appends: Vec<_> = rd
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::Append)
        .collect();
    assert_eq!(appends.len(), 2);
    assert!(appends.iter().all(|m| m.entries.len() == 100));
    assert_eq!(rd.entries.len(), 100);
}

#[test]
fn pipelining_is_bounded_by_max_inflight_appends() {
    let mut c = Cluster::new(2, |c| {
        c.max_entries_per_append = 1;
        c.max_inflight_appends = 3;
    });
    c.elect(1);
    c.settle();
    let r = c.raft(1);
    for i in 0..10u8 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.ready();
    let appends = rd
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::Append)
        .count();
    assert_eq!(appends, 3, "at most 3 Appends in flight");
    // Acknowledging one frees one slot.
    let first = rd
        .messages
        .iter()
        .find(|m| m.kind == MessageKind::Append)
        .unwrap();
    let mut ack = msg(MessageKind::AppendResponse, 2, 1, first.term);
    ack.log_index = first.log_index + 1;
    r.step(ack);
    let rd = r.ready();
    assert_eq!(
        rd.messages
            .iter()
            .filter(|m| m.kind == MessageKind::Append)
            .count(),
        1
    );
}

#[test]
fn lost_appends_are_resent_after_heartbeats() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    c.heal();
    c.tick_all(10);
    assert_eq!(c.applied[&3].last().unwrap().data, b"x");
}

#[test]
fn single_node_cluster_elects_itself_and_commits() {
    let mut r = Raft::new(Config::new(1, vec![1]), Restored::default(), 7).unwrap();
    let mut applied = Vec::new();
    for _ in 0..30 {
        r.tick();
        applied.extend(drain(&mut r).committed);
    }
    assert_eq!(r.status().role, Role::Leader);
    let (index, _) = r.propose(b"x".to_vec()).unwrap();
    applied.extend(drain(&mut r).committed);
    assert_eq!(r.status().commit, index);
    assert_eq!(applied.last().unwrap().data, b"x");
    r.read_index(42).unwrap();
    assert_eq!(drain(&mut r).reads, vec![ReadState { ctx: 42, index }]);
}

#[test]
fn proposals_to_a_follower_name_the_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    assert_eq!(c.raft(2).propose(vec![1]), Err(NotLeader::Leader(1)));
    assert_eq!(node(1, 3).propose(vec![1]), Err(NotLeader::Unknown));
    assert_eq!(c.raft(3).read_index(1), Err(NotLeader::Leader(1)));
}

#[test]
fn restart_keeps_term_vote_log_and_commit() {
    let mut r = node(2, 3);
    r.step(msg(MessageKind::Vote, 1, 2, 1));
    r.step(append(1, 2, 1, (0, 0), vec![entry(1, 1), entry(1, 2)], 2));
    let d = drain(&mut r);
    let hs = *d.hard_states.last().unwrap();
    assert_eq!(
        hs,
        HardState {
            term: 1,
            vote: Some(1),
            commit: 2
        }
    );
    let restored = Restored {
        hard_state: hs,
        snapshot: None,
        entries: d.entries.clone(),
    };
    let mut r = Raft::new(config(2, 3), restored, 3).unwrap();
    let s = r.status();
    assert_eq!((s.term, s.vote, s.commit, s.last_index), (1, Some(1), 2, 2));
    let committed = drain(&mut r).committed;
    assert_eq!(
        committed, d.entries,
        "committed entries are replayed after a restart"
    );
}

#[test]
fn inconsistent_restored_state_is_refused() {
    let bad_commit = Restored {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 3,
        },
        snapshot: None,
        entries: log_of(&[1]),
    };
    assert!(
        Raft::new(config(1, 3), bad_commit, 1)
            .unwrap_err()
            .contains("commit")
    );
    let gap = Restored {
        hard_state: HardState {
            term: 2,
            vote: None,
            commit: 0,
        },
        snapshot: None,
        entries: vec![entry(1, 1), entry(1, 3)],
    };
    assert!(
        Raft::new(config(1, 3), gap, 1)
            .unwrap_err()
            .contains("contiguous")
    );
    assert!(Raft::new(config(4, 3), Restored::default(), 1).is_err());
}

// ---- PreVote and CheckQuorum ----------------------------------------------

fn full() -> impl Fn(&mut Config) {
    |c: &mut Config| {
        c.pre_vote = true;
        c.check_quorum = true;
    }
}

#[test]
fn prevote_does_not_raise_the_term_of_a_partitioned_node() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    let term = c.status(1).term;
    c.isolate(3);
    c.tick(3, 100);
    let s = c.status(3);
    assert_eq!(s.term, term, "a lonely pre-candidate raised its term");
    assert_eq!(s.role, Role::PreCandidate);
    // Rejoining does not depose the leader.
    c.heal();
    c.tick_all(5);
    assert_eq!(c.status(1).role, Role::Leader);
    assert_eq!(c.status(1).term, term);
}

#[test]
fn prevote_then_vote_elects_when_the_leader_is_gone() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    let term = c.status(1).term;
    c.isolate(1);
    c.tick_all(45);
    let leaders: Vec<NodeId> = (2..=3)
        .filter(|&i| c.status(i).role == Role::Leader)
        .collect();
    assert_eq!(leaders.len(), 1);
    assert_eq!(c.status(leaders[0]).term, term + 1);
}

#[test]
fn node_in_leader_lease_ignores_vote_requests() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    let term = c.status(1).term;
    // A disruptive vote request at a higher term, within the lease.
    let mut v = msg(MessageKind::Vote, 3, 2, term + 1);
    v.log_index = 100;
    v.log_term = term;
    c.raft(2).step(v.clone());
    assert_eq!(c.status(2).term, term);
    assert!(
        drain(c.raft(2))
            .of_kind(MessageKind::VoteResponse)
            .is_empty()
    );
    let mut pv = v.clone();
    pv.kind = MessageKind::PreVote;
    c.raft(2).step(pv);
    assert!(
        drain(c.raft(2))
            .of_kind(MessageKind::PreVoteResponse)
            .is_empty()
    );
    // The same request from a TimeoutNow campaign is heard.
    v.read_ctx = CAMPAIGN_TRANSFER;
    c.raft(2).step(v);
    assert_eq!(c.status(2).term, term + 1);
}

#[test]
fn leader_without_a_quorum_steps_down_after_an_election_timeout() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    c.isolate(1);
    c.tick(1, 9);
    assert_eq!(c.status(1).role, Role::Leader);
    c.tick(1, 12);
    assert_eq!(c.status(1).role, Role::Follower);
}

#[test]
fn stale_leader_learns_the_new_term_from_append_responses() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    c.isolate(1);
    c.tick_all(45);
    let new_term = c.status(2).term.max(c.status(3).term);
    // Node 1 (stepped down or not) hears back and adopts the term.
    c.heal();
    c.tick_all(3);
    assert_eq!(c.status(1).term, new_term);
    assert_ne!(c.status(1).role, Role::Leader);
}

// ---- Leadership transfer -------------------------------------------------

#[test]
fn leadership_transfer_hands_over_with_timeout_now() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    let term = c.status(1).term;
    c.raft(1).transfer_leadership(3);
    c.settle();
    assert_eq!(c.status(3).role, Role::Leader);
    assert_eq!(c.status(3).term, term + 1);
    assert_eq!(c.status(1).role, Role::Follower);
}

#[test]
fn transfer_to_a_lagging_node_waits_for_it_to_catch_up() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    c.isolate(3);
    c.cut.remove(&(1, 3));
    c.cut.remove(&(3, 1));
    c.cut.insert((1, 3));
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    c.raft(1).transfer_leadership(3);
    c.settle();
    assert_eq!(
        c.status(1).role,
        Role::Leader,
        "transferred to a node that lacks entries"
    );
    assert!(
        c.raft(1).propose(b"y".to_vec()).is_err(),
        "proposals pause during a transfer"
    );
    c.heal();
    c.tick_all(4);
    assert_eq!(c.status(3).role, Role::Leader);
}

#[test]
fn best_transferee_is_the_follower_with_the_most_log() {
    let mut c = Cluster::new(3, full());
    c.elect(1);
    assert_eq!(
        c.raft(2).best_transferee(),
        None,
        "only a leader hands over"
    );
    // Node 2 misses the next entry; node 3 has it.
    c.cut.insert((1, 2));
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    assert_eq!(c.raft(1).best_transferee(), Some(3));
    c.heal();
    c.cut.insert((1, 3));
    c.raft(1).propose(b"y".to_vec()).unwrap();
    c.settle();
    assert_eq!(c.raft(1).best_transferee(), Some(2));
}

// ---- ReadIndex -----------------------------------------------------------

#[test]
fn read_index_waits_for_a_quorum_round_started_after_the_read() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.tick_all(2);
    let r = c.raft(1);
    r.read_index(7).unwrap();
    let d = drain(r);
    assert!(d.reads.is_empty(), "read served without a quorum round");
    let hbs = d.of_kind(MessageKind::Heartbeat);
    assert_eq!(hbs.len(), 2);
    let ctx = hbs[0].read_ctx;
    assert!(ctx > 0);
    // An acknowledgement of an older round does not confirm it.
    let mut old = msg(MessageKind::HeartbeatResponse, 2, 1, c.status(1).term);
    old.read_ctx = ctx - 1;
    c.raft(1).step(old.clone());
    assert!(drain(c.raft(1)).reads.is_empty());
    old.read_ctx = ctx;
    c.raft(1).step(old);
    let reads = drain(c.raft(1)).reads;
    assert_eq!(
        reads,
        vec![ReadState {
            ctx: 7,
            index: c.status(1).commit
        }]
    );
}

#[test]
fn reads_arriving_together_share_one_round() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let r = c.raft(1);
    for ctx in 1..=5 {
        r.read_index(ctx).unwrap();
    }
    let hbs = drain(r).of_kind(MessageKind::Heartbeat);
    assert_eq!(hbs.len(), 2, "one heartbeat per follower for five reads");
    c.raft(1).step({
        let mut m = msg(MessageKind::HeartbeatResponse, 2, 1, hbs[0].term);
        m.read_ctx = hbs[0].read_ctx;
        m
    });
    let ctxs: Vec<u64> = drain(c.raft(1)).reads.iter().map(|r| r.ctx).collect();
    assert_eq!(ctxs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn read_index_waits_for_an_entry_of_the_leaders_term_to_commit() {
    let mut r = node(1, 3);
    tick_n(&mut r, 20);
    drain(&mut r);
    let mut grant = msg(MessageKind::VoteResponse, 2, 1, 1);
    r.step(grant.clone());
    grant.from = 3;
    r.step(grant);
    assert_eq!(r.status().role, Role::Leader);
    r.read_index(1).unwrap();
    let d = drain(&mut r);
    assert!(
        d.of_kind(MessageKind::Heartbeat)
            .iter()
            .all(|m| m.read_ctx == 0)
    );
    let mut ack = msg(MessageKind::AppendResponse, 2, 1, 1);
    ack.log_index = 1;
    r.step(ack);
    let d = drain(&mut r);
    let hbs = d.of_kind(MessageKind::Heartbeat);
    assert!(
        !hbs.is_empty() && hbs[0].read_ctx > 0,
        "round starts after the no-op commits"
    );
    let mut resp = msg(MessageKind::HeartbeatResponse, 2, 1, 1);
    resp.read_ctx = hbs[0].read_ctx;
    r.step(resp);
    assert_eq!(drain(&mut r).reads, vec![ReadState { ctx: 1, index: 1 }]);
}

#[test]
fn pending_reads_fail_when_leadership_is_lost() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(1);
    c.raft(1).read_index(9).unwrap();
    c.settle();
    c.raft(1).step(msg(MessageKind::Append, 2, 1, 10));
    let d = drain(c.raft(1));
    assert_eq!(d.failed_reads, vec![9]);
}

#[test]
fn reads_are_confirmed_through_the_cluster() {
    let mut c = Cluster::new(5, |_| {});
    c.elect(1);
    c.raft(1).propose(b"x".to_vec()).unwrap();
    c.settle();
    c.raft(1).read_index(3).unwrap();
    c.settle();
    assert_eq!(c.reads[&1], vec![ReadState { ctx: 3, index: 2 }]);
}

// ---- Snapshots and log compaction (§7) -------------------------------------

fn snapshot_msg(from: NodeId, to: NodeId, term: Term, index: Index, snap_term: Term) -> Message {
    let mut m = msg(MessageKind::Snapshot, from, to, term);
    m.log_index = index;
    m.log_term = snap_term;
    m.snapshot = Some(SnapshotMeta {
        index,
        term: snap_term,
        voters: vec![1, 2, 3],
    });
    m
}

/// A leader (node 1 of 3) that committed and applied a no-op and `n`
/// commands, took a snapshot of all of it and compacted its log, while
/// node 3 was cut off and holds nothing.
fn leader_with_compacted_log(n: usize) -> (Cluster, Index) {
    let mut c = Cluster::new(3, |_| {});
    c.isolate(3);
    c.elect(1);
    for i in 0..n {
        c.raft(1).propose(vec![i as u8]).unwrap();
    }
    c.settle();
    let r = c.raft(1);
    let applied = r.status().commit;
    r.on_applied(applied);
    let meta = r.snapshot_meta(applied).expect("applied and known");
    assert_eq!(meta.voters, vec![1, 2, 3]);
    r.on_snapshot_saved(meta);
    assert_eq!(r.compact(applied), applied + 1);
    c.heal();
    (c, applied)
}

/// Takes node `id`'s output, keeping the messages of `kind` back.
fn take_messages(c: &mut Cluster, id: NodeId, kind: MessageKind) -> (Vec<Message>, Vec<Message>) {
    drain(c.raft(id))
        .all()
        .into_iter()
        .partition(|m| m.kind == kind)
}

#[test]
fn leader_sends_a_snapshot_when_the_follower_needs_compacted_entries() {
    let (mut c, index) = leader_with_compacted_log(3);
    let term = c.status(1).term;
    assert_eq!(
        (c.status(1).first_index, c.status(1).snapshot_index),
        (index + 1, index)
    );
    // Node 3 answers a heartbeat; the leader probes it and, as the entries
    // it needs are gone, sends the snapshot's metadata instead.
    let mut hb = msg(MessageKind::HeartbeatResponse, 3, 1, term);
    hb.read_ctx = 0;
    c.raft(1).step(hb);
    let (snaps, _) = take_messages(&mut c, 1, MessageKind::Snapshot);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let m = &snaps[0];
    assert_eq!(m.to, 3);
    assert_eq!((m.log_index, m.log_term), (index, term));
    assert_eq!(m.snapshot.as_ref().unwrap().index, index);
}

#[test]
fn appends_to_a_follower_pause_while_its_snapshot_is_in_flight() {
    let (mut c, index) = leader_with_compacted_log(3);
    let term = c.status(1).term;
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    let (snaps, _) = take_messages(&mut c, 1, MessageKind::Snapshot);
    assert_eq!(snaps.len(), 1);
    // New proposals and heartbeat rounds: node 2 gets Appends, node 3
    // neither Appends nor a second snapshot.
    for i in 0..3 {
        let r = c.raft(1);
        r.propose(vec![100 + i]).unwrap();
        r.step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
        tick_n(r, 2);
        let out = drain(r).all();
        assert!(
            out.iter()
                .any(|m| m.to == 2 && m.kind == MessageKind::Append)
        );
        assert!(
            !out.iter()
                .any(|m| m.to == 3 && matches!(m.kind, MessageKind::Append | MessageKind::Snapshot)),
            "sent to node 3 while its snapshot is in flight: {out:?}"
        );
    }
    assert!(c.status(1).last_index > index + 2);
}

#[test]
fn leader_resumes_after_the_snapshot_from_its_index() {
    let (mut c, index) = leader_with_compacted_log(3);
    let term = c.status(1).term;
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    take_messages(&mut c, 1, MessageKind::Snapshot);
    c.raft(1).propose(b"after".to_vec()).unwrap();
    drain(c.raft(1));
    // The transfer succeeded: the next probe continues after the snapshot
    // once the follower is heard from.
    c.raft(1).on_snapshot_sent(3, index, true);
    c.raft(1).propose(b"more".to_vec()).unwrap();
    assert!(
        !drain(c.raft(1)).all().iter().any(|m| m.to == 3),
        "a probe before the follower answered"
    );
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    let appends: Vec<_> = drain(c.raft(1))
        .of_kind(MessageKind::Append)
        .into_iter()
        .filter(|m| m.to == 3)
        .collect();
    assert_eq!(appends.len(), 1);
    assert_eq!(appends[0].log_index, index, "resumes from the snapshot");
    assert_eq!(appends[0].entries[0].data, b"after");
    assert_eq!(appends[0].entries.len(), 2);
}

#[test]
fn the_followers_acknowledgement_ends_the_snapshot_state() {
    let (mut c, index) = leader_with_compacted_log(3);
    let term = c.status(1).term;
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    take_messages(&mut c, 1, MessageKind::Snapshot);
    c.raft(1).propose(b"after".to_vec()).unwrap();
    drain(c.raft(1));
    let mut ack = msg(MessageKind::AppendResponse, 3, 1, term);
    ack.log_index = index;
    c.raft(1).step(ack);
    let appends = drain(c.raft(1)).of_kind(MessageKind::Append);
    let to3: Vec<_> = appends.iter().filter(|m| m.to == 3).collect();
    assert_eq!(to3.len(), 1, "{appends:?}");
    assert_eq!(to3[0].log_index, index);
    // A late report of the transfer changes nothing.
    c.raft(1).on_snapshot_sent(3, index, false);
    assert!(
        !drain(c.raft(1))
            .all()
            .iter()
            .any(|m| m.kind == MessageKind::Snapshot)
    );
}

#[test]
fn a_failed_transfer_is_retried_after_the_next_heartbeat_response() {
    let (mut c, index) = leader_with_compacted_log(3);
    let term = c.status(1).term;
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    take_messages(&mut c, 1, MessageKind::Snapshot);
    c.raft(1).on_snapshot_sent(3, index, false);
    c.raft(1).propose(b"more".to_vec()).unwrap();
    assert!(
        drain(c.raft(1)).of_kind(MessageKind::Snapshot).is_empty(),
        "retried at once, not at the heartbeat pace"
    );
    c.raft(1)
        .step(msg(MessageKind::HeartbeatResponse, 3, 1, term));
    let snaps = drain(c.raft(1)).of_kind(MessageKind::Snapshot);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].log_index, index);
}

#[test]
fn a_whole_cluster_catches_a_follower_up_through_a_snapshot() {
    let (mut c, index) = leader_with_compacted_log(5);
    // settle() delivers the snapshot message like a transfer that worked;
    // node 3 installs it (the ready hands it out) and continues after it.
    c.raft(1).propose(b"after".to_vec()).unwrap();
    c.tick_all(4);
    let s = c.status(3);
    assert_eq!(s.snapshot_index, index);
    assert_eq!(s.first_index, index + 1);
    assert_eq!(s.commit, index + 1);
    let applied: Vec<Index> = c.applied[&3].iter().map(|e| e.index).collect();
    assert_eq!(
        applied,
        vec![index + 1],
        "applies only what follows the snapshot"
    );
}

#[test]
fn follower_installs_a_newer_snapshot_and_discards_a_conflicting_log() {
    // Node 2 holds entries of term 1 up to 4, none committed; the leader of
    // term 3 sends a snapshot at 6 whose entry 4 may differ.
    let mut r = node_with(config(2, 3), restored(2, &[1, 1, 1, 2]));
    r.step(snapshot_msg(1, 2, 3, 6, 3));
    let rd = r.ready();
    let meta = rd
        .snapshot
        .clone()
        .expect("the ready hands the snapshot out");
    assert_eq!((meta.index, meta.term), (6, 3));
    assert!(rd.entries.is_empty() && rd.committed.is_empty());
    assert_eq!(
        rd.truncate_from, None,
        "the snapshot itself replaces the log"
    );
    // The answer promises the snapshot: it waits for the write.
    assert!(rd.messages.is_empty());
    let ack = &rd.persisted_messages[0];
    assert_eq!(
        (ack.kind, ack.log_index, ack.reject),
        (MessageKind::AppendResponse, 6, false)
    );
    let s = r.status();
    assert_eq!(
        (s.first_index, s.last_index, s.commit, s.snapshot_index),
        (7, 6, 6, 6)
    );
    r.on_persisted(rd.number);
    r.on_applied(6);
    assert_eq!(r.status().applied, 6);
    // The log continues after the snapshot.
    r.step(append(1, 2, 3, (6, 3), vec![entry(3, 7)], 7));
    let d = drain(&mut r);
    assert_eq!(
        d.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![7]
    );
}

#[test]
fn follower_keeps_the_entries_after_a_snapshot_its_log_matches() {
    let mut r = node_with(config(2, 3), restored(2, &[1, 1, 2, 2, 2]));
    r.step(snapshot_msg(1, 2, 2, 3, 2));
    let d = drain(&mut r);
    assert!(d.snapshots.is_empty(), "nothing to install");
    assert_eq!(
        d.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let s = r.status();
    assert_eq!((s.commit, s.last_index, s.first_index), (3, 5, 1));
    assert_eq!(d.persisted[0].log_index, 3);
}

#[test]
fn stale_and_duplicate_snapshots_are_ignored() {
    let mut r = node(2, 3);
    r.step(append(1, 2, 1, (0, 0), log_of(&[1, 1, 1, 1]), 4));
    drain(&mut r);
    // A snapshot at or below the commit index changes nothing.
    for index in [2, 4] {
        r.step(snapshot_msg(1, 2, 1, index, 1));
        let d = drain(&mut r);
        assert!(d.snapshots.is_empty() && d.truncations.is_empty());
        assert_eq!(d.persisted[0].log_index, 4, "answers with its commit index");
        assert_eq!((r.status().last_index, r.status().commit), (4, 4));
    }
    // A new one installs once; its duplicate is then stale.
    r.step(snapshot_msg(1, 2, 1, 9, 1));
    assert_eq!(drain(&mut r).snapshots.len(), 1);
    r.step(snapshot_msg(1, 2, 1, 9, 1));
    assert!(drain(&mut r).snapshots.is_empty());
    assert_eq!(r.status().snapshot_index, 9);
}

#[test]
fn snapshot_of_a_stale_term_is_refused_with_the_current_term() {
    let mut r = node_with(config(2, 3), restored(5, &[1]));
    r.step(snapshot_msg(1, 2, 4, 9, 4));
    let d = drain(&mut r);
    assert!(d.snapshots.is_empty());
    let resp = d.of_kind(MessageKind::AppendResponse);
    assert!(resp[0].reject && resp[0].term == 5);
    assert_eq!(r.status().commit, 0);
}

#[test]
fn snapshot_of_another_voter_set_is_ignored() {
    let mut r = node(2, 3);
    let mut m = snapshot_msg(1, 2, 1, 9, 1);
    m.snapshot.as_mut().unwrap().voters = vec![1, 2, 3, 4];
    r.step(m);
    assert!(drain(&mut r).snapshots.is_empty());
    assert_eq!(r.status().commit, 0);
}

#[test]
fn compaction_stops_at_the_snapshot_and_the_applied_index() {
    let mut r = node(2, 3);
    r.step(append(1, 2, 1, (0, 0), log_of(&[1; 10]), 8));
    drain(&mut r);
    assert_eq!(r.compact(5), 1, "no snapshot: nothing may go");
    assert!(r.snapshot_meta(9).is_none(), "index 9 is not applied");
    r.on_applied(6);
    let meta = r.snapshot_meta(6).unwrap();
    r.on_snapshot_saved(meta);
    assert_eq!(r.compact(100), 7, "up to the snapshot");
    r.on_applied(8);
    let meta = r.snapshot_meta(8).unwrap();
    r.on_snapshot_saved(meta.clone());
    assert_eq!(r.compact(3), 7, "compacting never goes back");
    assert_eq!(r.compact(9), 9);
    // An older snapshot reported late does not replace the newer one.
    r.on_snapshot_saved(SnapshotMeta {
        index: 6,
        term: 1,
        voters: meta.voters,
    });
    assert_eq!(r.status().snapshot_index, 8);
    assert!(r.entry(8).is_none() && r.entry(9).is_some());
}

#[test]
fn a_compacted_follower_still_accepts_appends_from_its_commit_index() {
    let mut r = node(2, 3);
    r.step(append(1, 2, 1, (0, 0), log_of(&[1; 6]), 6));
    drain(&mut r);
    r.on_applied(6);
    let meta = r.snapshot_meta(6).unwrap();
    r.on_snapshot_saved(meta);
    r.compact(6);
    // A leader that probes from an older index: the compacted part matches.
    r.step(append(1, 2, 1, (3, 1), log_of(&[1; 8])[3..].to_vec(), 8));
    let d = drain(&mut r);
    let resp = &d.of_kind(MessageKind::AppendResponse)[0];
    assert!(!resp.reject);
    assert_eq!(resp.log_index, 8);
    assert_eq!(r.status().last_index, 8);
}

#[test]
fn restart_from_a_snapshot_applies_only_what_follows_it() {
    let restored = Restored {
        hard_state: HardState {
            term: 2,
            vote: None,
            commit: 5,
        },
        snapshot: Some(SnapshotMeta {
            index: 4,
            term: 2,
            voters: vec![1, 2, 3],
        }),
        // Entries 3 and 4 are kept behind the snapshot for lagging followers.
        entries: vec![entry(1, 3), entry(2, 4), entry(2, 5), entry(2, 6)],
    };
    let mut r = node_with(config(1, 3), restored);
    let s = r.status();
    assert_eq!(
        (
            s.first_index,
            s.snapshot_index,
            s.applied,
            s.commit,
            s.last_index
        ),
        (3, 4, 4, 5, 6)
    );
    let d = drain(&mut r);
    assert_eq!(
        d.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![5]
    );
}

#[test]
fn restored_snapshot_and_log_must_fit_together() {
    let snap = |index, term| SnapshotMeta {
        index,
        term,
        voters: vec![1, 2, 3],
    };
    let hs = HardState {
        term: 3,
        vote: None,
        commit: 0,
    };
    let cases = [
        (snap(4, 2), vec![entry(2, 6)], "gap"),
        (
            snap(4, 2),
            vec![entry(1, 4), entry(2, 5)],
            "snapshot there has term",
        ),
        (snap(4, 5), vec![], "beyond the hard state term"),
        (
            SnapshotMeta {
                index: 4,
                term: 2,
                voters: vec![1, 2],
            },
            vec![],
            "membership",
        ),
    ];
    for (snapshot, entries, want) in cases {
        let restored = Restored {
            hard_state: hs,
            snapshot: Some(snapshot),
            entries,
        };
        let err = Raft::new(config(1, 3), restored, 1).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
}
