//! The committed log against the answers the clients got. While the run
//! goes, every node is asked for the entries it committed lately (its last
//! few hundred, before compaction takes them); once the run is over:
//!
//! - every node committed the same entry at each index, term and command,
//!   and a node's committed entry never changes (across restarts too): a
//!   difference breaks State Machine Safety even when the state machines
//!   end up alike because later writes covered the same keys;
//! - a write acknowledged at index i is the command the log holds at i (an
//!   answer meant for another entry hides a lost write), and so is a cas
//!   refused at index i (its comparison failed when applied there);
//! - a write committed twice (a retry of the same session and sequence
//!   number) is answered for the first entry: exactly-once means the retry
//!   gets the first one's reply, not a new evaluation;
//! - a write answered "definitely not applied" is in no committed entry,
//!   unless the answer says the log held it and the state machine refused
//!   it (a cas whose comparison failed, an expired session).
//!
//! Values are unique per run, so a value names its write. Indexes compacted
//! away before any poll saw them go unchecked; the report counts them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::super::proxy::NodeId;
use super::super::recorder::{Event, EventType, Process};
use super::super::target::{CommittedEntry, CommittedSlice, LoggedCommand, Observe};

/// How often every node is asked.
pub const POLL_EVERY: Duration = Duration::from_millis(300);

/// How soon a node that did not answer (down, paused, cut off) is asked
/// again: a restarted node is asked as soon as it serves, before a
/// snapshot from the leader replaces what it restored from its own log.
const RETRY_UNANSWERED: Duration = Duration::from_millis(50);

/// Entries at the end of a node's committed log asked for again each round,
/// so that a committed entry that changes is seen changing.
const RECHECK: u64 = 400;

/// Most calls per node in one round (a node far ahead of the audit is
/// caught up with over a few rounds).
const CALLS_PER_ROUND: usize = 4;

/// Violations shown in full; the rest are counted.
const SHOWN: usize = 10;

/// An entry as first seen.
#[derive(Debug, Clone)]
struct Seen {
    term: u64,
    command: Option<LoggedCommand>,
    node: NodeId,
    time_s: f64,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<u64, Seen>,
    /// Per node: one past the highest committed index it showed.
    next: BTreeMap<NodeId, u64>,
    /// Indexes whose disagreement is already recorded (one per index).
    divergent: BTreeSet<u64>,
    /// (seconds since the workload started, what).
    divergences: Vec<(f64, String)>,
    answers: u64,
    unsupported: bool,
}

/// The audit's record of the committed log, filled while the run goes.
pub struct LogAudit {
    origin: Instant,
    state: Mutex<State>,
}

impl LogAudit {
    /// An audit whose times count from `origin` (the history's).
    pub fn new(origin: Instant) -> Arc<LogAudit> {
        Arc::new(LogAudit {
            origin,
            state: Mutex::new(State::default()),
        })
    }

    /// Asks every node every [`POLL_EVERY`], each node on its own (a
    /// paused node holds up only its own answers), until the task is
    /// aborted.
    pub async fn poll<O: Observe>(self: Arc<Self>, observer: Arc<O>, ids: Vec<NodeId>) {
        let mut tasks = JoinSet::new();
        for id in ids {
            let (audit, observer) = (self.clone(), observer.clone());
            tasks.spawn(async move {
                loop {
                    let answered = audit.ask(observer.as_ref(), id).await;
                    let pause = if answered {
                        POLL_EVERY
                    } else {
                        RETRY_UNANSWERED
                    };
                    tokio::time::sleep(pause).await;
                }
            });
        }
        // Dropping the set (when this task is aborted) aborts the loops.
        while tasks.join_next().await.is_some() {}
    }

    /// Asks every node once, one after another (for the healed cluster).
    pub async fn round<O: Observe>(&self, observer: &O, ids: &[NodeId]) {
        for &id in ids {
            self.ask(observer, id).await;
        }
    }

    /// Asks node `id` for what it committed since it was last asked;
    /// false when it did not answer.
    async fn ask<O: Observe>(&self, observer: &O, id: NodeId) -> bool {
        match fetch(observer, id, self.next(id)).await {
            None => {
                self.state.lock().unwrap().unsupported = true;
                true
            }
            Some((slices, answered)) => {
                for slice in slices {
                    self.take(id, &slice);
                }
                answered
            }
        }
    }

    /// The first index node `id` has not shown yet.
    fn next(&self, id: NodeId) -> u64 {
        let state = self.state.lock().unwrap();
        state.next.get(&id).copied().unwrap_or(1)
    }

    /// Takes in one answer of node `id`.
    fn take(&self, id: NodeId, slice: &CommittedSlice) {
        let time_s = self.origin.elapsed().as_secs_f64();
        let mut state = self.state.lock().unwrap();
        state.answers += 1;
        let next = state.next.entry(id).or_insert(1);
        // A node whose commit went back restarted: follow it from there, so
        // that what it commits again is compared too.
        if slice.commit_index + 1 < *next {
            *next = slice.commit_index + 1;
        }
        if let Some(last) = slice.entries.last() {
            *next = (*next).max(last.index + 1);
        }
        for entry in &slice.entries {
            state.record(id, entry, time_s);
        }
    }

    /// Checks the answers of `events` (the history) against the entries
    /// seen.
    pub fn check(&self, events: &[Event]) -> LogAuditReport {
        let state = self.state.lock().unwrap();
        check(&state, events)
    }
}

/// Asks node `id` for its committed entries from `next` on (a few calls'
/// worth), then for the [`RECHECK`] entries before `next` again, and
/// whether it answered; `None` when the target cannot list them.
async fn fetch<O: Observe>(
    observer: &O,
    id: NodeId,
    next: u64,
) -> Option<(Vec<CommittedSlice>, bool)> {
    let mut slices = Vec::new();
    let mut from = next;
    for _ in 0..CALLS_PER_ROUND {
        match observer.committed_entries(id, from, u64::MAX).await? {
            Ok(slice) => {
                let more = slice
                    .entries
                    .last()
                    .filter(|last| last.index < slice.commit_index)
                    .map(|last| last.index + 1);
                slices.push(slice);
                match more {
                    Some(next) => from = next,
                    None => break,
                }
            }
            // Down, paused or cut off: asked again soon.
            Err(_) => return Some((slices, false)),
        }
    }
    if next > 1
        && let Ok(slice) = observer
            .committed_entries(id, next.saturating_sub(RECHECK).max(1), next - 1)
            .await?
    {
        slices.push(slice);
    }
    Some((slices, true))
}

impl State {
    fn record(&mut self, id: NodeId, entry: &CommittedEntry, time_s: f64) {
        let Some(seen) = self.entries.get(&entry.index) else {
            self.entries.insert(
                entry.index,
                Seen {
                    term: entry.term,
                    command: entry.command.clone(),
                    node: id,
                    time_s,
                },
            );
            return;
        };
        if seen.term == entry.term && seen.command == entry.command {
            return;
        }
        if self.divergent.insert(entry.index) {
            let text = format!(
                "index {}: node {id} holds {} as committed at {time_s:.1} s, but node {} held {} as committed at {:.1} s",
                entry.index,
                describe(entry.term, entry.command.as_ref()),
                seen.node,
                describe(seen.term, seen.command.as_ref()),
                seen.time_s,
            );
            self.divergences.push((time_s, text));
        }
    }
}

/// An entry for a person: `term 4: set k2 = "w1-5" (client 9f2e, seq 7)`.
fn describe(term: u64, command: Option<&LoggedCommand>) -> String {
    match command {
        None => format!("term {term}: no client command (a leader's no-op)"),
        Some(c) if c.f == "noop" => {
            format!("term {term}: noop (client {:x}, seq {})", c.client, c.seq)
        }
        Some(c) => format!(
            "term {term}: {} {} = {:?} (client {:x}, seq {})",
            c.f, c.key, c.value, c.client, c.seq
        ),
    }
}

/// The value a write event writes: a set's value, a cas's new value.
fn written_value(e: &Event) -> Option<&str> {
    match e.f.as_str() {
        "set" => e.value.as_str(),
        "cas" => e.value.get(1).and_then(Value::as_str),
        _ => None,
    }
}

/// True when a definite failure says the command reached the log and the
/// state machine refused it, so its value may sit in a committed entry.
fn refused_when_applied(error: &str) -> bool {
    error.starts_with("cas not applied") || error.contains("session expired")
}

fn check(state: &State, events: &[Event]) -> LogAuditReport {
    let mut found: Vec<(f64, String)> = state.divergences.clone();
    // Value -> the first committed index that writes it.
    let mut written_at: HashMap<&str, u64> = HashMap::new();
    for (&index, seen) in &state.entries {
        if let Some(c) = &seen.command
            && c.f != "noop"
        {
            written_at.entry(c.value.as_str()).or_insert(index);
        }
    }
    let mut answers_checked = 0;
    for e in events {
        let Process::Client(p) = e.process else {
            continue;
        };
        let time_s = e.time as f64 / 1e9;
        match e.kind {
            EventType::Ok if matches!(e.f.as_str(), "set" | "cas" | "noop") => {
                if let Some(violation) = check_named(e, p, "acknowledged", state, &written_at) {
                    answers_checked += 1;
                    found.extend(violation.map(|v| (time_s, v)));
                }
            }
            EventType::Fail if matches!(e.f.as_str(), "set" | "cas") => {
                let error = e.error.as_deref().unwrap_or("");
                if refused_when_applied(error) {
                    let how = format!("refused ({error})");
                    if let Some(violation) = check_named(e, p, &how, state, &written_at) {
                        answers_checked += 1;
                        found.extend(violation.map(|v| (time_s, v)));
                    }
                    continue;
                }
                let Some(value) = written_value(e) else {
                    continue;
                };
                answers_checked += 1;
                if let Some(&index) = written_at.get(value) {
                    let seen = &state.entries[&index];
                    found.push((
                        time_s,
                        format!(
                            "{} {} by process {p} failed at {time_s:.1} s ({error}), but committed index {index} holds it ({})",
                            e.f,
                            shown_write(e),
                            describe(seen.term, seen.command.as_ref()),
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let span = match (
        state.entries.first_key_value(),
        state.entries.last_key_value(),
    ) {
        (Some((&first, _)), Some((&last, _))) => last - first + 1,
        _ => 0,
    };
    LogAuditReport {
        supported: !state.unsupported,
        entries: state.entries.len() as u64,
        missed: span - state.entries.len() as u64,
        node_answers: state.answers,
        answers_checked,
        first_violation_s: found.first().map(|f| f.0),
        violation_count: found.len(),
        violations: found.into_iter().take(SHOWN).map(|f| f.1).collect(),
    }
}

/// Checks an answer that names the entry it was decided at (`how`:
/// acknowledged, or refused when applied): the entry holds the answer's
/// command, and is its first. `None` when the answer names no entry the
/// audit saw; otherwise the violation, if any.
fn check_named(
    e: &Event,
    p: u64,
    how: &str,
    state: &State,
    written_at: &HashMap<&str, u64>,
) -> Option<Option<String>> {
    let index = e.log_index?;
    let seen = state.entries.get(&index)?;
    let time_s = e.time as f64 / 1e9;
    let holds_it = match (&seen.command, written_value(e)) {
        (Some(c), Some(value)) => c.f == e.f && c.value == value,
        (Some(c), None) => c.f == "noop" && e.f == "noop",
        (None, _) => false,
    };
    if !holds_it {
        return Some(Some(format!(
            "{} {} by process {p} was {how} at index {index} at {time_s:.1} s, but the committed entry there is {}",
            e.f,
            shown_write(e),
            describe(seen.term, seen.command.as_ref()),
        )));
    }
    Some(first_of_retry(e, index, written_at).map(|first| answered_anew(e, p, how, index, first)))
}

/// The first committed index of `e`'s write when that is before `index`,
/// the entry `e`'s answer names: the answer is for a retry committed again,
/// which exactly-once answers with the first entry's reply (and index).
fn first_of_retry(e: &Event, index: u64, written_at: &HashMap<&str, u64>) -> Option<u64> {
    let first = *written_at.get(written_value(e)?)?;
    (first < index).then_some(first)
}

fn answered_anew(e: &Event, p: u64, how: &str, index: u64, first: u64) -> String {
    let time_s = e.time as f64 / 1e9;
    format!(
        "{} {} by process {p} was {how} at index {index} at {time_s:.1} s, a retry of the same command (client session and sequence number) committed first at index {first}: it was answered anew instead of with the first one's reply",
        e.f,
        shown_write(e),
    )
}

/// `k2 = "w1-5"` for a write event.
fn shown_write(e: &Event) -> String {
    let key = e.key.as_deref().unwrap_or("");
    match written_value(e) {
        Some(value) => format!("{key} = {value:?}"),
        None => key.to_string(),
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogAuditReport {
    /// False when the target cannot list its committed entries.
    pub supported: bool,
    /// Committed indexes seen, and indexes between the first and last seen
    /// that no poll saw (compacted first).
    pub entries: u64,
    pub missed: u64,
    /// Answers the nodes gave the audit.
    pub node_answers: u64,
    /// Client answers compared with the log.
    pub answers_checked: u64,
    /// The first [`SHOWN`] violations, in time order.
    pub violations: Vec<String>,
    pub violation_count: usize,
    /// Seconds from the start of the workload to the first violation.
    pub first_violation_s: Option<f64>,
}

impl LogAuditReport {
    pub fn ok(&self) -> bool {
        self.violation_count == 0
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verdict": if !self.supported {
                "skipped"
            } else if self.ok() {
                "ok"
            } else {
                "violated"
            },
            "entries": self.entries,
            "missed": self.missed,
            "node_answers": self.node_answers,
            "answers_checked": self.answers_checked,
            "violations": self.violations,
            "violation_count": self.violation_count,
            "first_violation_s": self.first_violation_s,
        })
    }

    pub fn summary(&self) -> String {
        if !self.supported {
            return "committed log audit: skipped (the target cannot list its committed entries)"
                .into();
        }
        let mut text = format!(
            "committed log audit: {} entries seen ({} compacted before a poll), {} answers checked against them: {}",
            self.entries,
            self.missed,
            self.answers_checked,
            if self.ok() { "ok" } else { "VIOLATED" }
        );
        for v in &self.violations {
            text.push_str(&format!("\n  {v}"));
        }
        if self.violation_count > self.violations.len() {
            text.push_str(&format!(
                "\n  ... and {} more",
                self.violation_count - self.violations.len()
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::target::{EntryHash, NodeView, StateAnswer};
    use super::*;

    fn write(client: u64, f: &str, key: &str, value: &str) -> Option<LoggedCommand> {
        Some(LoggedCommand {
            client,
            seq: 1,
            f: f.into(),
            key: key.into(),
            value: value.into(),
        })
    }

    fn entry(index: u64, term: u64, command: Option<LoggedCommand>) -> CommittedEntry {
        CommittedEntry {
            index,
            term,
            command,
        }
    }

    fn slice(commit: u64, entries: Vec<CommittedEntry>) -> CommittedSlice {
        CommittedSlice {
            first_index: entries.first().map_or(1, |e| e.index),
            commit_index: commit,
            entries,
        }
    }

    fn event(
        time_s: u64,
        process: u64,
        kind: EventType,
        f: &str,
        value: Value,
        log_index: Option<u64>,
        error: Option<&str>,
    ) -> Event {
        Event {
            index: 0,
            time: time_s * 1_000_000_000,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: Some("k".into()),
            value,
            error: error.map(Into::into),
            node: None,
            log_index,
        }
    }

    /// Three entries every node agrees on: a leader's no-op, a set, a cas.
    fn agreed() -> Arc<LogAudit> {
        let audit = LogAudit::new(Instant::now());
        for id in 1..=3 {
            audit.take(
                id,
                &slice(
                    3,
                    vec![
                        entry(1, 1, None),
                        entry(2, 1, write(7, "set", "k", "a")),
                        entry(3, 1, write(8, "cas", "k", "b")),
                    ],
                ),
            );
        }
        audit
    }

    #[test]
    fn answers_that_match_the_log_pass() {
        let audit = agreed();
        let events = vec![
            event(1, 1, EventType::Ok, "set", json!("a"), Some(2), None),
            event(2, 2, EventType::Ok, "cas", json!(["a", "b"]), Some(3), None),
            event(
                3,
                3,
                EventType::Fail,
                "set",
                json!("c"),
                None,
                Some("not leader"),
            ),
            // Refused by the state machine: in the log, yet not applied.
            event(
                4,
                4,
                EventType::Fail,
                "cas",
                json!(["x", "b"]),
                None,
                Some("cas not applied: value was \"a\""),
            ),
            // Not seen by the audit: not checked.
            event(5, 5, EventType::Ok, "set", json!("d"), Some(9), None),
        ];
        let report = audit.check(&events);
        assert!(report.ok(), "{:?}", report.violations);
        assert_eq!(
            (report.entries, report.missed, report.answers_checked),
            (3, 0, 3)
        );
        assert_eq!(report.node_answers, 3);
    }

    /// A cas of client 8 committed at index 3 and, retried, again at 4.
    fn retried() -> Arc<LogAudit> {
        let audit = LogAudit::new(Instant::now());
        audit.take(
            1,
            &slice(
                4,
                vec![
                    entry(1, 1, None),
                    entry(2, 1, write(7, "set", "k", "a")),
                    entry(3, 1, write(8, "cas", "k", "b")),
                    entry(4, 2, write(8, "cas", "k", "b")),
                ],
            ),
        );
        audit
    }

    #[test]
    fn a_retry_is_answered_with_the_first_entrys_reply() {
        let cas =
            |kind, index, error| event(5, 1, kind, "cas", json!(["a", "b"]), Some(index), error);
        let refused = Some("cas not applied: value was \"b\"");
        // The first entry's reply, whichever attempt carried it.
        let report = retried().check(&[cas(EventType::Ok, 3, None)]);
        assert!(report.ok(), "{:?}", report.violations);
        assert_eq!(report.answers_checked, 1);
        // The retry evaluated anew: its own entry's index, and (when the
        // first applied) a refusal, since the value it expects is gone.
        for (kind, error, how) in [
            (EventType::Ok, None, "acknowledged"),
            (
                EventType::Fail,
                refused,
                "refused (cas not applied: value was \"b\")",
            ),
        ] {
            let report = retried().check(&[cas(kind, 4, error)]);
            assert_eq!(report.violation_count, 1, "{how}");
            assert!(
                report.violations[0].contains(&format!("was {how} at index 4"))
                    && report.violations[0].contains("committed first at index 3"),
                "{}",
                report.violations[0]
            );
        }
        // A refusal that names an entry holding another command.
        let report = retried().check(&[cas(EventType::Fail, 2, refused)]);
        assert_eq!(report.violation_count, 1);
        assert!(
            report.violations[0].contains("value was \"b\") at index 2")
                && report.violations[0].contains("set k = \"a\""),
            "{}",
            report.violations[0]
        );
    }

    #[test]
    fn an_answer_for_another_entry_is_caught() {
        let report =
            agreed().check(&[event(4, 1, EventType::Ok, "set", json!("z"), Some(2), None)]);
        assert_eq!(report.violation_count, 1);
        assert!(
            report.violations[0].contains("acknowledged at index 2")
                && report.violations[0].contains("set k = \"a\""),
            "{}",
            report.violations[0]
        );
        assert_eq!(report.first_violation_s, Some(4.0));
        // A client noop answered for a leader's no-op entry.
        let report = agreed().check(&[event(
            5,
            1,
            EventType::Ok,
            "noop",
            json!(null),
            Some(1),
            None,
        )]);
        assert_eq!(report.violation_count, 1);
    }

    #[test]
    fn a_failed_write_found_in_the_log_is_caught() {
        let report = agreed().check(&[event(
            6,
            2,
            EventType::Fail,
            "set",
            json!("a"),
            None,
            Some("unavailable (nothing applied): not leader"),
        )]);
        assert_eq!(report.violation_count, 1);
        assert!(
            report.violations[0].contains("committed index 2 holds it"),
            "{}",
            report.violations[0]
        );
        // A cas that failed for want of a leader (not by its comparison).
        let report = agreed().check(&[event(
            7,
            2,
            EventType::Fail,
            "cas",
            json!(["a", "b"]),
            None,
            Some("unavailable (nothing applied): not leader"),
        )]);
        assert_eq!(report.violation_count, 1);
    }

    #[test]
    fn nodes_that_committed_different_entries_are_caught_once_per_index() {
        let audit = agreed();
        audit.take(4, &slice(3, vec![entry(2, 2, write(9, "set", "k", "q"))]));
        audit.take(5, &slice(3, vec![entry(2, 2, write(9, "set", "k", "q"))]));
        let report = audit.check(&[]);
        assert_eq!(report.violation_count, 1);
        assert!(
            report.violations[0].starts_with("index 2: node 4 holds term 2: set k = \"q\""),
            "{}",
            report.violations[0]
        );
    }

    #[test]
    fn a_node_that_restarted_is_followed_from_its_new_commit() {
        let audit = agreed();
        assert_eq!(audit.next(1), 4);
        let far: Vec<CommittedEntry> = (4..=1000).map(|i| entry(i, 1, None)).collect();
        audit.take(1, &slice(1000, far));
        assert_eq!(audit.next(1), 1001);
        // Restarted: its commit is back at 3; what it commits again from
        // there on is asked for (and compared).
        audit.take(1, &slice(3, vec![]));
        assert_eq!(audit.next(1), 4);
        audit.take(
            1,
            &slice(3, vec![entry(3, 1, write(8, "cas", "k", "other"))]),
        );
        let report = audit.check(&[]);
        assert_eq!(report.violation_count, 1, "{:?}", report.violations);
        assert_eq!((report.entries, report.missed), (1000, 0));
    }

    #[test]
    fn gaps_are_counted_as_missed() {
        let audit = LogAudit::new(Instant::now());
        audit.take(1, &slice(10, vec![entry(1, 1, None), entry(10, 1, None)]));
        let report = audit.check(&[]);
        assert_eq!((report.entries, report.missed), (2, 8));
        assert!(report.summary().contains("2 entries seen (8 compacted"));
    }

    /// A target whose nodes hold given committed logs (a term per index,
    /// from index 1), answering two entries per call; `None` for a node
    /// that cannot list them.
    struct Paged {
        logs: BTreeMap<NodeId, Option<Vec<u64>>>,
    }

    impl Observe for Paged {
        async fn views(&self) -> Vec<NodeView> {
            Vec::new()
        }
        async fn states(&self) -> Option<Vec<StateAnswer>> {
            None
        }
        async fn entry_hashes(
            &self,
            _: NodeId,
            _: u64,
            _: u64,
        ) -> Option<Result<Vec<EntryHash>, String>> {
            None
        }
        fn max_entries_per_call(&self) -> u64 {
            2
        }
        async fn committed_entries(
            &self,
            id: NodeId,
            from: u64,
            to: u64,
        ) -> Option<Result<CommittedSlice, String>> {
            let log = self.logs[&id].as_ref()?;
            let commit = log.len() as u64;
            Some(Ok(slice(
                commit,
                (from..=commit.min(to))
                    .take(2)
                    .map(|i| entry(i, log[i as usize - 1], None))
                    .collect(),
            )))
        }
    }

    #[tokio::test]
    async fn rounds_page_through_each_nodes_log() {
        let target = Paged {
            logs: BTreeMap::from([(1, Some(vec![1; 10])), (2, Some(vec![1, 1, 1, 2, 2]))]),
        };
        let audit = LogAudit::new(Instant::now());
        // Four calls of two entries a round: node 1's ten entries take two.
        audit.round(&target, &[1, 2]).await;
        assert_eq!(audit.next(1), 9);
        audit.round(&target, &[1, 2]).await;
        let report = audit.check(&[]);
        assert!(report.supported);
        assert_eq!((report.entries, report.missed), (10, 0));
        // Node 2 committed term 2 at indexes 4 and 5, node 1 term 1.
        assert_eq!(report.violation_count, 2, "{:?}", report.violations);
        assert!(report.violations[0].starts_with("index 4: node"));

        let target = Paged {
            logs: BTreeMap::from([(1, None)]),
        };
        let audit = LogAudit::new(Instant::now());
        audit.round(&target, &[1]).await;
        let report = audit.check(&[]);
        assert!(!report.supported && report.ok());
        assert_eq!(report.to_json()["verdict"], "skipped");
    }
}
