//! The nemesis: a seeded schedule of faults and the loop that applies them.
//!
//! The schedule alternates a quiet period and a fault period, each about
//! `--nemesis-interval` long. Which fault comes next, and which nodes it hits,
//! is drawn from an RNG seeded by `--seed`; only "the leader" depends on the
//! run itself.

use std::collections::BTreeSet;
use std::fmt;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::proxy::NodeId;

/// A family of faults that `--nemesis` can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Kill,
    Pause,
    Partition,
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [FaultKind::Kill, FaultKind::Pause, FaultKind::Partition];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
        }
    }
}

/// Parses `kill,pause,partition`, `all` or `none`.
pub fn parse_kinds(spec: &str) -> Result<Vec<FaultKind>, String> {
    let spec = spec.trim();
    if spec == "all" {
        return Ok(FaultKind::ALL.to_vec());
    }
    if spec == "none" {
        return Ok(Vec::new());
    }
    let mut kinds = BTreeSet::new();
    for part in spec.split(',') {
        let kind = match part.trim() {
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "partition" => FaultKind::Partition,
            other => {
                return Err(format!(
                    "--nemesis: unknown fault {other:?}; expected kill, pause, partition (comma-separated), all or none"
                ));
            }
        };
        kinds.insert(kind);
    }
    Ok(kinds.into_iter().collect())
}

/// Which nodes a kill or pause hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    One,
    Minority,
    Leader,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::One => "one",
            Target::Minority => "minority",
            Target::Leader => "leader",
        }
    }
}

/// The shape of a network partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A minority and a majority that cannot talk.
    Halves,
    /// The leader cut off from everyone, both ways.
    LeaderAlone,
    /// Two groups that cannot talk, joined by one node that talks to both:
    /// each side plus the bridge is a majority.
    Bridge,
    /// One node's outgoing or incoming links cut, the other direction intact.
    OneWay,
}

impl Shape {
    const ALL: [Shape; 4] = [
        Shape::Halves,
        Shape::LeaderAlone,
        Shape::Bridge,
        Shape::OneWay,
    ];

    fn name(self) -> &'static str {
        match self {
            Shape::Halves => "halves",
            Shape::LeaderAlone => "leader-alone",
            Shape::Bridge => "bridge",
            Shape::OneWay => "one-way",
        }
    }
}

/// One fault, with the nodes or links it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Kill {
        target: Target,
        nodes: Vec<NodeId>,
    },
    Pause {
        target: Target,
        nodes: Vec<NodeId>,
    },
    Partition {
        shape: Shape,
        /// A readable description, e.g. `[1 2] | [3 4 5]`.
        description: String,
        /// Blocked ordered links (from, to).
        cut: BTreeSet<(NodeId, NodeId)>,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Partition { .. } => FaultKind::Partition,
        }
    }

    /// The `f` of the nemesis event that starts the fault.
    pub fn start_f(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Partition { .. } => "partition",
        }
    }

    /// The `f` of the nemesis event that ends it.
    pub fn stop_f(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "restart",
            Fault::Pause { .. } => "resume",
            Fault::Partition { .. } => "heal",
        }
    }

    /// The `value` of the nemesis events for this fault.
    pub fn value(&self) -> Value {
        match self {
            Fault::Kill { target, nodes } | Fault::Pause { target, nodes } => {
                json!({ "target": target.name(), "nodes": nodes })
            }
            Fault::Partition {
                shape,
                description,
                cut,
            } => {
                let links: Vec<[NodeId; 2]> = cut.iter().map(|&(a, b)| [a, b]).collect();
                json!({ "shape": shape.name(), "groups": description, "cut": links })
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { target, nodes } => write!(f, "kill {} {:?}", target.name(), nodes),
            Fault::Pause { target, nodes } => write!(f, "pause {} {:?}", target.name(), nodes),
            Fault::Partition {
                shape, description, ..
            } => write!(f, "partition {} {}", shape.name(), description),
        }
    }
}

/// Draws faults from a seeded RNG.
pub struct Planner {
    rng: ChaCha8Rng,
    nodes: Vec<NodeId>,
    kinds: Vec<FaultKind>,
    leader_only: bool,
}

impl Planner {
    pub fn new(rng: ChaCha8Rng, nodes: Vec<NodeId>, kinds: Vec<FaultKind>) -> Planner {
        Planner {
            rng,
            nodes,
            kinds,
            leader_only: false,
        }
    }

    /// Kills and pauses hit only the leader (and partitions isolate it):
    /// the faults that force clients to fail over.
    pub fn leader_only(mut self, yes: bool) -> Planner {
        self.leader_only = yes;
        self
    }

    /// The next fault, or None when no fault kind is enabled. `leader` is
    /// the current leader if one is known; without one, "the leader" falls
    /// back to a node drawn at random.
    pub fn next(&mut self, leader: Option<NodeId>) -> Option<Fault> {
        if self.kinds.is_empty() {
            return None;
        }
        let kind = self.kinds[self.rng.random_range(0..self.kinds.len())];
        // Always draw the same number of values per fault so that the leader
        // being known or not does not shift the rest of the schedule.
        let target_roll: u32 = self.rng.random_range(0..3);
        let shape_roll: u32 = self.rng.random_range(0..Shape::ALL.len() as u32);
        let direction_out: bool = self.rng.random();
        let mut shuffled = self.nodes.clone();
        shuffled.shuffle(&mut self.rng);
        let random_node = shuffled[0];
        let leader = leader
            .filter(|l| self.nodes.contains(l))
            .unwrap_or(random_node);
        let target = if self.leader_only {
            Target::Leader
        } else {
            [Target::One, Target::Minority, Target::Leader][target_roll as usize]
        };
        let pick = |target: Target| -> Vec<NodeId> {
            let mut nodes = match target {
                Target::One => vec![random_node],
                Target::Leader => vec![leader],
                Target::Minority => {
                    let m = ((shuffled.len() - 1) / 2).max(1);
                    shuffled[..m].to_vec()
                }
            };
            nodes.sort_unstable();
            nodes
        };
        Some(match kind {
            FaultKind::Kill => Fault::Kill {
                target,
                nodes: pick(target),
            },
            FaultKind::Pause => Fault::Pause {
                target,
                nodes: pick(target),
            },
            FaultKind::Partition => {
                let shape = if self.leader_only {
                    [Shape::LeaderAlone, Shape::OneWay][shape_roll as usize % 2]
                } else {
                    Shape::ALL[shape_roll as usize]
                };
                partition(shape, &shuffled, leader, direction_out)
            }
        })
    }
}

fn sorted(v: &[NodeId]) -> Vec<NodeId> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

fn show(group: &[NodeId]) -> String {
    let ids: Vec<String> = sorted(group).iter().map(|n| n.to_string()).collect();
    format!("[{}]", ids.join(" "))
}

/// All links between `a` and `b`, both directions.
fn cut_between(a: &[NodeId], b: &[NodeId]) -> BTreeSet<(NodeId, NodeId)> {
    let mut cut = BTreeSet::new();
    for &x in a {
        for &y in b {
            cut.insert((x, y));
            cut.insert((y, x));
        }
    }
    cut
}

/// Builds a partition of `shuffled` (all nodes in a random order).
pub fn partition(shape: Shape, shuffled: &[NodeId], leader: NodeId, direction_out: bool) -> Fault {
    let n = shuffled.len();
    let others: Vec<NodeId> = shuffled.iter().copied().filter(|&x| x != leader).collect();
    let (description, cut) = match shape {
        Shape::Halves => {
            let (minority, majority) = shuffled.split_at(n / 2);
            (
                format!("{} | {}", show(minority), show(majority)),
                cut_between(minority, majority),
            )
        }
        Shape::LeaderAlone => (
            format!("{} | {}", show(&[leader]), show(&others)),
            cut_between(&[leader], &others),
        ),
        Shape::Bridge => {
            let bridge = shuffled[0];
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            (
                format!("{} <{}> {}", show(a), bridge, show(b)),
                cut_between(a, b),
            )
        }
        Shape::OneWay => {
            let mut cut = BTreeSet::new();
            for &o in &others {
                cut.insert(if direction_out {
                    (leader, o)
                } else {
                    (o, leader)
                });
            }
            let description = if direction_out {
                format!("{} -/-> {}", show(&[leader]), show(&others))
            } else {
                format!("{} -/-> {}", show(&others), show(&[leader]))
            };
            (description, cut)
        }
    };
    Fault::Partition {
        shape,
        description,
        cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn connected(cut: &BTreeSet<(NodeId, NodeId)>, a: NodeId, b: NodeId) -> bool {
        !cut.contains(&(a, b)) && !cut.contains(&(b, a))
    }

    #[test]
    fn parses_kinds() {
        assert_eq!(parse_kinds("all").unwrap(), FaultKind::ALL.to_vec());
        assert!(parse_kinds("none").unwrap().is_empty());
        assert_eq!(
            parse_kinds("partition,kill").unwrap(),
            vec![FaultKind::Kill, FaultKind::Partition]
        );
        let err = parse_kinds("kill,flood").unwrap_err();
        assert!(err.contains("\"flood\""), "{err}");
    }

    #[test]
    fn same_seed_same_schedule() {
        let nodes = vec![1, 2, 3, 4, 5];
        let plan = |seed| {
            let mut p = Planner::new(
                ChaCha8Rng::seed_from_u64(seed),
                nodes.clone(),
                FaultKind::ALL.to_vec(),
            );
            (0..20)
                .map(|_| p.next(Some(3)).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
        // Every kind shows up in a long enough schedule.
        let kinds: BTreeSet<FaultKind> = plan(7).iter().map(|f| f.kind()).collect();
        assert_eq!(kinds.len(), 3);
    }

    #[test]
    fn leader_only_hits_the_leader() {
        let mut p = Planner::new(
            ChaCha8Rng::seed_from_u64(3),
            vec![1, 2, 3, 4, 5],
            FaultKind::ALL.to_vec(),
        )
        .leader_only(true);
        for _ in 0..30 {
            match p.next(Some(4)).unwrap() {
                Fault::Kill { nodes, .. } | Fault::Pause { nodes, .. } => {
                    assert_eq!(nodes, vec![4])
                }
                Fault::Partition { cut, .. } => {
                    assert!(cut.iter().all(|&(a, b)| a == 4 || b == 4), "{cut:?}")
                }
            }
        }
    }

    #[test]
    fn kill_targets_have_the_right_size() {
        for n in [3u64, 5] {
            let nodes: Vec<NodeId> = (1..=n).collect();
            let mut p = Planner::new(ChaCha8Rng::seed_from_u64(1), nodes, vec![FaultKind::Kill]);
            for _ in 0..50 {
                match p.next(Some(2)).unwrap() {
                    Fault::Kill { target, nodes } => match target {
                        Target::One => assert_eq!(nodes.len(), 1),
                        Target::Leader => assert_eq!(nodes, vec![2]),
                        Target::Minority => {
                            assert_eq!(nodes.len() as u64, (n - 1) / 2);
                        }
                    },
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    #[test]
    fn halves_and_leader_alone_split_the_cluster() {
        let shuffled = [4, 1, 5, 2, 3];
        let Fault::Partition { cut, .. } = partition(Shape::Halves, &shuffled, 1, false) else {
            unreachable!()
        };
        // [4 1] | [5 2 3]: 2 * 3 pairs, both ways.
        assert_eq!(cut.len(), 12);
        assert!(!connected(&cut, 4, 5) && connected(&cut, 4, 1) && connected(&cut, 2, 3));

        let Fault::Partition { cut, .. } = partition(Shape::LeaderAlone, &shuffled, 5, false)
        else {
            unreachable!()
        };
        assert_eq!(cut.len(), 8);
        for o in [1, 2, 3, 4] {
            assert!(!connected(&cut, 5, o));
        }
    }

    #[test]
    fn bridge_leaves_two_majorities_sharing_one_node() {
        for shuffled in [vec![1, 2, 3], vec![3, 5, 1, 4, 2]] {
            let n = shuffled.len();
            let Fault::Partition { cut, .. } = partition(Shape::Bridge, &shuffled, 1, false) else {
                unreachable!()
            };
            let bridge = shuffled[0];
            for &x in &shuffled {
                assert!(connected(&cut, bridge, x), "bridge must reach {x}");
            }
            // Each node plus those it reaches is a majority, and some pair
            // of nodes is cut.
            for &x in &shuffled {
                let reach = shuffled.iter().filter(|&&y| connected(&cut, x, y)).count();
                assert!(reach > n / 2, "node {x} reaches only {reach} of {n}");
            }
            assert!(!cut.is_empty());
        }
    }

    #[test]
    fn one_way_cuts_one_direction_only() {
        let shuffled = [2, 1, 3];
        let Fault::Partition { cut, .. } = partition(Shape::OneWay, &shuffled, 1, true) else {
            unreachable!()
        };
        assert_eq!(cut, BTreeSet::from([(1, 2), (1, 3)]));
        let Fault::Partition { cut, .. } = partition(Shape::OneWay, &shuffled, 1, false) else {
            unreachable!()
        };
        assert_eq!(cut, BTreeSet::from([(2, 1), (3, 1)]));
    }
}
