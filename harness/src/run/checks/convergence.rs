//! The end-of-run comparison of the nodes: after healing, every node must
//! apply the same entries and reach the same state.
//!
//! The check waits until every node answers with the same applied index,
//! equal to its commit index, then compares each node's hash chained over
//! the applied entries and its state-machine digest. Chains that differ are
//! narrowed down to the first log index at which the nodes hold different
//! entries (by comparing entry hashes over the range every node still
//! holds); if the entries held now agree (the difference was compacted
//! away, or a node applied an entry that was replaced later), the report
//! says the chains differ at the applied index. Nodes that never
//! agree on an applied index are a failure too, named with how far each got.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::super::proxy::NodeId;
use super::super::target::{EntryHash, NodeState, Observe, StateAnswer};

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvergenceReport {
    /// False when the target cannot summarise its state (nothing compared).
    pub supported: bool,
    /// The applied index every node reached, if they agreed on one.
    pub applied_index: Option<u64>,
    /// How many nodes were compared.
    pub nodes: usize,
    /// Log entries compared one by one (only when the chains differ).
    pub entries_compared: u64,
    /// The first log index at which two nodes hold different entries.
    pub first_divergent_index: Option<u64>,
    /// How long the nodes took to agree on an applied index.
    pub waited_s: f64,
    pub violations: Vec<String>,
}

impl ConvergenceReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verdict": if !self.supported { "not-checked" } else if self.ok() { "ok" } else { "violated" },
            "nodes": self.nodes,
            "applied_index": self.applied_index,
            "entries_compared": self.entries_compared,
            "first_divergent_index": self.first_divergent_index,
            "waited_s": self.waited_s,
            "violations": self.violations,
        })
    }

    /// One line (and the violations) for the terminal.
    pub fn summary(&self) -> String {
        if !self.supported {
            return "node states: not compared (the target cannot summarise its state)".into();
        }
        let mut s = match self.applied_index {
            Some(i) if self.ok() => format!(
                "node states: ok ({} nodes applied the same {i} entries and hold the same state)",
                self.nodes
            ),
            _ => "node states: DIVERGED".to_string(),
        };
        for v in &self.violations {
            s.push_str("\n  ");
            s.push_str(v);
        }
        s
    }
}

/// Waits (up to `timeout`) until every node has applied the same index,
/// then compares the nodes.
pub async fn check<O: Observe>(observer: &O, timeout: Duration) -> ConvergenceReport {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut report = ConvergenceReport {
        supported: true,
        ..ConvergenceReport::default()
    };
    let mut last: Vec<StateAnswer>;
    loop {
        let Some(states) = observer.states().await else {
            report.supported = false;
            return report;
        };
        last = states;
        if let Some(index) = agreed_index(&last) {
            report.applied_index = Some(index);
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.waited_s = started.elapsed().as_secs_f64();
    report.nodes = last.len();
    let states: Vec<&NodeState> = last.iter().filter_map(|(_, s)| s.as_ref().ok()).collect();
    match report.applied_index {
        Some(index) => compare(observer, &states, index, &mut report).await,
        None => {
            report.violations.push(format!(
                "the nodes did not apply the same entries within {timeout:?} of healing: {}",
                progress(&last)
            ));
            // What every answering node applied must still agree.
            if let Some(upto) = states.iter().map(|s| s.applied_index).min() {
                locate(observer, &states, upto, &mut report).await;
            }
        }
    }
    report
}

/// The applied index every node reports, if all answered, agree and have
/// applied everything they know to be committed.
fn agreed_index(states: &[StateAnswer]) -> Option<u64> {
    let mut index = None;
    for (_, s) in states {
        let s = s.as_ref().ok()?;
        if s.applied_index != s.commit_index || index.is_some_and(|i| i != s.applied_index) {
            return None;
        }
        index = Some(s.applied_index);
    }
    index
}

fn progress(states: &[StateAnswer]) -> String {
    states
        .iter()
        .map(|(id, s)| match s {
            Ok(s) => format!(
                "node {id} applied {} of {} committed",
                s.applied_index, s.commit_index
            ),
            Err(e) => format!("node {id} did not answer ({e})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn compare<O: Observe>(
    observer: &O,
    states: &[&NodeState],
    index: u64,
    report: &mut ConvergenceReport,
) {
    let chains: BTreeMap<u64, Vec<NodeId>> = group(states, |s| s.applied_chain);
    if chains.len() > 1 {
        if !locate(observer, states, index, report).await {
            let lo = states.iter().map(|s| s.first_log_index).max().unwrap_or(1);
            report.violations.push(format!(
                "the nodes applied different entries up to index {index} (chains {}), \
                 though the entries they hold now (from index {lo}) agree: a node applied \
                 an entry that was later replaced, or the difference lies in entries \
                 compacted away",
                show_groups(&chains)
            ));
        }
        return;
    }
    let digests = group(states, |s| s.state_digest);
    if digests.len() > 1 {
        report.violations.push(format!(
            "the nodes applied the same entries up to index {index} but hold different \
             states (digests {})",
            show_groups(&digests)
        ));
    }
}

fn group(states: &[&NodeState], key: impl Fn(&NodeState) -> u64) -> BTreeMap<u64, Vec<NodeId>> {
    let mut groups: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
    for s in states {
        groups.entry(key(s)).or_default().push(s.id);
    }
    groups
}

fn show_groups(groups: &BTreeMap<u64, Vec<NodeId>>) -> String {
    groups
        .iter()
        .map(|(h, ids)| format!("{h:016x} on {ids:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares the entries every node holds up to `upto`, chunk by chunk;
/// records the first index at which they differ. Returns true if it found
/// one.
async fn locate<O: Observe>(
    observer: &O,
    states: &[&NodeState],
    upto: u64,
    report: &mut ConvergenceReport,
) -> bool {
    if states.len() < 2 {
        return false;
    }
    let lo = states
        .iter()
        .map(|s| s.first_log_index)
        .max()
        .unwrap_or(1)
        .max(1);
    let step = observer.max_entries_per_call().max(1);
    let mut from = lo;
    while from <= upto {
        let to = upto.min(from + step - 1);
        let mut held: Vec<(NodeId, BTreeMap<u64, EntryHash>)> = Vec::new();
        for s in states {
            match observer.entry_hashes(s.id, from, to).await {
                Some(Ok(entries)) => {
                    held.push((s.id, entries.into_iter().map(|e| (e.index, e)).collect()))
                }
                Some(Err(e)) => {
                    report
                        .violations
                        .push(format!("node {} did not list its log entries: {e}", s.id));
                    return false;
                }
                None => return false,
            }
        }
        for index in from..=to {
            let entries: Vec<(NodeId, Option<&EntryHash>)> =
                held.iter().map(|(id, m)| (*id, m.get(&index))).collect();
            report.entries_compared += 1;
            let first = entries[0].1.map(|e| (e.term, e.hash));
            if entries
                .iter()
                .any(|(_, e)| e.map(|e| (e.term, e.hash)) != first)
            {
                report.first_divergent_index = Some(index);
                let each: Vec<String> = entries
                    .iter()
                    .map(|(id, e)| match e {
                        Some(e) => format!("node {id} term {} hash {:016x}", e.term, e.hash),
                        None => format!("node {id} no entry"),
                    })
                    .collect();
                report.violations.push(format!(
                    "the nodes' committed logs differ at index {index}: {}",
                    each.join(", ")
                ));
                return true;
            }
        }
        from = to + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::target::NodeView;
    use std::sync::Mutex;

    /// A target whose nodes hold given logs (term per index) and states.
    struct Fake {
        states: Mutex<Vec<Vec<StateAnswer>>>,
        logs: BTreeMap<NodeId, Vec<u64>>,
        first: u64,
    }

    impl Observe for Fake {
        async fn views(&self) -> Vec<NodeView> {
            Vec::new()
        }
        async fn states(&self) -> Option<Vec<StateAnswer>> {
            let mut polls = self.states.lock().unwrap();
            Some(if polls.len() > 1 {
                polls.remove(0)
            } else {
                polls[0].clone()
            })
        }
        async fn entry_hashes(
            &self,
            id: NodeId,
            from: u64,
            to: u64,
        ) -> Option<Result<Vec<EntryHash>, String>> {
            let log = &self.logs[&id];
            Some(Ok((from.max(self.first)..=to)
                .filter_map(|i| {
                    log.get(i as usize - 1).map(|&term| EntryHash {
                        index: i,
                        term,
                        hash: term * 1000 + i,
                    })
                })
                .collect()))
        }
        fn max_entries_per_call(&self) -> u64 {
            3
        }
    }

    fn state(id: NodeId, applied: u64, commit: u64, chain: u64, digest: u64) -> StateAnswer {
        (
            id,
            Ok(NodeState {
                id,
                commit_index: commit,
                applied_index: applied,
                first_log_index: 1,
                state_digest: digest,
                applied_chain: chain,
            }),
        )
    }

    fn fake(polls: Vec<Vec<StateAnswer>>, logs: Vec<(NodeId, Vec<u64>)>) -> Fake {
        Fake {
            states: Mutex::new(polls),
            logs: logs.into_iter().collect(),
            first: 1,
        }
    }

    #[tokio::test]
    async fn equal_nodes_pass_after_catching_up() {
        let f = fake(
            vec![
                vec![state(1, 7, 7, 5, 9), state(2, 5, 7, 4, 8)],
                vec![state(1, 7, 7, 5, 9), state(2, 7, 7, 5, 9)],
            ],
            vec![],
        );
        let r = check(&f, Duration::from_secs(5)).await;
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.applied_index, Some(7));
        assert!(r.summary().contains("applied the same 7 entries"));
    }

    #[tokio::test]
    async fn differing_logs_name_the_first_index() {
        let f = fake(
            vec![vec![
                state(1, 8, 8, 5, 9),
                state(2, 8, 8, 6, 9),
                state(3, 8, 8, 5, 9),
            ]],
            vec![
                (1, vec![1, 1, 2, 2, 2, 3, 3, 3]),
                (2, vec![1, 1, 2, 2, 2, 2, 3, 3]),
                (3, vec![1, 1, 2, 2, 2, 3, 3, 3]),
            ],
        );
        let r = check(&f, Duration::from_secs(5)).await;
        assert_eq!(r.first_divergent_index, Some(6));
        assert_eq!(r.violations.len(), 1);
        assert!(
            r.violations[0]
                .starts_with("the nodes' committed logs differ at index 6: node 1 term 3"),
            "{}",
            r.violations[0]
        );
        // Compared in chunks of 3: 1-3, 4-6.
        assert_eq!(r.entries_compared, 6);
    }

    #[tokio::test]
    async fn differing_chains_over_compacted_entries_are_named_by_applied_index() {
        let mut f = fake(
            vec![vec![state(1, 4, 4, 5, 9), state(2, 4, 4, 6, 9)]],
            vec![(1, vec![1, 1, 2, 2]), (2, vec![1, 2, 2, 2])],
        );
        f.first = 3; // entries 1 and 2 are gone
        if let Some(Ok(s)) = f.states.get_mut().unwrap()[0].get_mut(0).map(|(_, s)| s) {
            s.first_log_index = 3;
        }
        let r = check(&f, Duration::from_secs(5)).await;
        assert_eq!(r.first_divergent_index, None);
        assert_eq!(r.violations.len(), 1);
        assert!(
            r.violations[0].contains("up to index 4"),
            "{}",
            r.violations[0]
        );
        assert!(
            r.violations[0].contains("later replaced"),
            "{}",
            r.violations[0]
        );
    }

    #[tokio::test]
    async fn same_entries_different_states_is_a_divergence() {
        let f = fake(
            vec![vec![state(1, 3, 3, 5, 9), state(2, 3, 3, 5, 10)]],
            vec![],
        );
        let r = check(&f, Duration::from_secs(5)).await;
        assert_eq!(r.violations.len(), 1);
        assert!(
            r.violations[0].contains("hold different states"),
            "{}",
            r.violations[0]
        );
    }

    #[tokio::test]
    async fn nodes_that_never_agree_fail_with_their_progress() {
        let f = fake(
            vec![vec![
                state(1, 5, 5, 5, 9),
                state(2, 3, 5, 4, 8),
                (3, Err("no answer".into())),
            ]],
            vec![(1, vec![1, 1, 1, 1, 1]), (2, vec![1, 1, 1, 1, 1])],
        );
        let r = check(&f, Duration::from_millis(300)).await;
        assert_eq!(r.applied_index, None);
        assert!(!r.ok());
        let v = &r.violations[0];
        assert!(v.contains("node 2 applied 3 of 5 committed"), "{v}");
        assert!(v.contains("node 3 did not answer (no answer)"), "{v}");
        assert!(r.summary().contains("DIVERGED"));
    }
}
