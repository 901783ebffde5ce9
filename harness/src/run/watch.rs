//! Watches who leads: polls the nodes' views, keeps the latest, and notes
//! every change of leader (for faults aimed at a node just elected, the
//! progress line and the report's leader row).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::proxy::NodeId;
use super::target::{NodeView, Observe, leader_of};

/// Who leads, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    /// The leader and its term; `None` while no node claims to lead.
    pub leader: Option<(NodeId, u64)>,
    /// When this leader (or its absence) was first seen.
    pub since: Instant,
}

/// One change of leader, at `time` (ns since the workload started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderChange {
    pub time: u64,
    pub leader: Option<(NodeId, u64)>,
}

pub struct ClusterWatch {
    leadership: watch::Sender<Leadership>,
    changes: Mutex<Vec<LeaderChange>>,
    origin: Instant,
}

impl ClusterWatch {
    /// A watch whose change times count from `origin`.
    pub fn new(origin: Instant) -> Arc<ClusterWatch> {
        let (leadership, _) = watch::channel(Leadership {
            leader: None,
            since: Instant::now(),
        });
        Arc::new(ClusterWatch {
            leadership,
            changes: Mutex::new(Vec::new()),
            origin,
        })
    }

    /// Polls `observer` every `every` until the task is aborted.
    pub async fn poll<O: Observe>(self: Arc<Self>, observer: Arc<O>, every: Duration) {
        loop {
            let views = observer.views().await;
            self.update(views);
            tokio::time::sleep(every).await;
        }
    }

    /// Takes in a fresh set of views.
    pub fn update(&self, views: Vec<NodeView>) {
        let leader = leader_of(&views);
        let changed = self.leadership.send_if_modified(|l| {
            if l.leader == leader {
                return false;
            }
            *l = Leadership {
                leader,
                since: Instant::now(),
            };
            true
        });
        if changed {
            self.changes.lock().unwrap().push(LeaderChange {
                time: self.origin.elapsed().as_nanos() as u64,
                leader,
            });
        }
    }

    pub fn leadership(&self) -> Leadership {
        *self.leadership.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.leadership.subscribe()
    }

    /// Every change of leader seen, in order.
    pub fn changes(&self) -> Vec<LeaderChange> {
        self.changes.lock().unwrap().clone()
    }

    /// The changes as JSON for the summary: `[{time_s, node, term}]`, node
    /// null while none leads.
    pub fn changes_json(&self) -> Value {
        self.changes()
            .iter()
            .map(|c| {
                json!({
                    "time_s": c.time as f64 / 1e9,
                    "node": c.leader.map(|(id, _)| id),
                    "term": c.leader.map(|(_, t)| t),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::target::Role;

    fn leader(id: NodeId, term: u64) -> Vec<NodeView> {
        vec![NodeView {
            id,
            role: Role::Leader,
            term,
            leader: Some(id),
            commit_index: 0,
            applied_index: 0,
        }]
    }

    #[tokio::test]
    async fn notes_each_change_once() {
        let w = ClusterWatch::new(Instant::now());
        let mut rx = w.subscribe();
        w.update(leader(1, 2));
        w.update(leader(1, 2));
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        w.update(Vec::new());
        w.update(leader(3, 4));
        let seen: Vec<_> = w.changes().iter().map(|c| c.leader).collect();
        assert_eq!(seen, vec![Some((1, 2)), None, Some((3, 4))]);
        assert_eq!(w.leadership().leader, Some((3, 4)));
        assert!(rx.has_changed().unwrap());
        assert_eq!(w.changes_json()[2]["node"], 3);
    }
}
