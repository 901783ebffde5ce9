//! Network partitions: which ordered links a shape cuts.
//!
//! A cut is a set of ordered links (from, to); the proxies block exactly
//! those, so a shape may be one-way. Overlapping partitions cut the union
//! of their links. A cut either resets connections or drops packets (see
//! [`CutStyle`]).

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::super::proxy::{LinkId, LinkMode, NodeId};

/// What a cut link does with traffic, as the two kinds of firewall rule do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutStyle {
    /// Connections are reset: the sender sees an error at once and what
    /// it had sent is lost (a REJECT rule).
    Reset,
    /// Packets are dropped and TCP retransmits them: nothing arrives
    /// during the cut, and at the heal everything sent during it arrives
    /// at once, after what the receiver has learnt since (a DROP rule).
    /// Stale messages of an old term reach nodes of the new one.
    Drop,
}

impl CutStyle {
    pub fn name(self) -> &'static str {
        match self {
            CutStyle::Reset => "reset",
            CutStyle::Drop => "drop",
        }
    }

    /// Either, even odds.
    pub fn draw(rng: &mut ChaCha8Rng) -> CutStyle {
        if rng.random_bool(0.5) {
            CutStyle::Drop
        } else {
            CutStyle::Reset
        }
    }

    /// The proxy mode of a link cut in this style: a dropping link holds
    /// its bytes until the cut ends.
    pub fn mode(self) -> LinkMode {
        match self {
            CutStyle::Reset => LinkMode {
                blocked: true,
                ..LinkMode::OPEN
            },
            CutStyle::Drop => LinkMode {
                stalled: true,
                ..LinkMode::OPEN
            },
        }
    }
}

/// The shape of a network partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// A minority and a majority that cannot talk.
    Halves,
    /// The leader cut off from everyone, both ways.
    LeaderAlone,
    /// Two groups that cannot talk, joined by one node that talks to both:
    /// each side plus the bridge is a majority.
    Bridge,
    /// The leader's outgoing links cut: it hears everyone, no one hears
    /// it (it learns of the next leader, cannot answer it).
    LeaderMute,
    /// The leader's incoming links cut: everyone hears it, it hears no one
    /// (its followers store its entries; it never learns they did).
    LeaderDeaf,
    /// Nodes on a ring, each hearing only the majority around it: every node
    /// is in some majority, no two nodes in the same one.
    MajoritiesRing,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Halves,
        Shape::LeaderAlone,
        Shape::Bridge,
        Shape::LeaderMute,
        Shape::LeaderDeaf,
        Shape::MajoritiesRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Halves => "halves",
            Shape::LeaderAlone => "leader-alone",
            Shape::Bridge => "bridge",
            Shape::LeaderMute => "leader-mute",
            Shape::LeaderDeaf => "leader-deaf",
            Shape::MajoritiesRing => "majorities-ring",
        }
    }

    /// The shapes that cut something in a cluster of `n` nodes (a bridge
    /// and a ring need three).
    pub fn for_cluster(n: usize) -> Vec<Shape> {
        Shape::ALL
            .into_iter()
            .filter(|s| match s {
                Shape::Halves | Shape::LeaderAlone | Shape::LeaderMute | Shape::LeaderDeaf => {
                    n >= 2
                }
                Shape::Bridge | Shape::MajoritiesRing => n >= 3,
            })
            .collect()
    }
}

/// A partition as applied: the links it cuts and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The shape's name (or the name of the step of a compound fault).
    pub name: &'static str,
    /// e.g. `[1 2] | [3 4 5]`, `[1] -/-> [2 3]`.
    pub description: String,
    pub links: BTreeSet<LinkId>,
}

fn show(group: &[NodeId]) -> String {
    let mut ids = group.to_vec();
    ids.sort_unstable();
    let ids: Vec<String> = ids.iter().map(|n| n.to_string()).collect();
    format!("[{}]", ids.join(" "))
}

/// All links between `a` and `b`, both directions.
pub fn between(a: &[NodeId], b: &[NodeId]) -> BTreeSet<LinkId> {
    let mut cut = BTreeSet::new();
    for &x in a {
        for &y in b {
            cut.insert((x, y));
            cut.insert((y, x));
        }
    }
    cut
}

/// Every link among `group`, both directions.
pub fn within(group: &[NodeId]) -> BTreeSet<LinkId> {
    let mut links = between(group, group);
    links.retain(|(a, b)| a != b);
    links
}

/// Every link into `node` from the other `nodes`: it hears no one, everyone
/// hears it (a step of a compound fault).
pub fn deaf(nodes: &[NodeId], node: NodeId) -> Cut {
    Cut {
        name: "deaf",
        description: format!("[others] -/-> [{node}]"),
        links: nodes
            .iter()
            .filter(|&&x| x != node)
            .map(|&x| (x, node))
            .collect(),
    }
}

/// Every link among the nodes other than `hub`, both directions: each of
/// them reaches `hub` alone (a step of a compound fault: no node but `hub`
/// can hear from a majority, so no other node can be elected).
pub fn star(nodes: &[NodeId], hub: NodeId) -> Cut {
    let others: Vec<NodeId> = nodes.iter().copied().filter(|&x| x != hub).collect();
    Cut {
        name: "star",
        description: format!("{} <-> [{hub}] only", show(&others)),
        links: within(&others),
    }
}

/// Cuts `nodes` into `shape`. `leader` is the current leader if known
/// (else a node drawn at random stands in for it); the rest of the choices
/// (which halves, which direction, the ring's order) come from `rng`.
pub fn cut(shape: Shape, nodes: &[NodeId], leader: Option<NodeId>, rng: &mut ChaCha8Rng) -> Cut {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let leader = leader.filter(|l| nodes.contains(l)).unwrap_or(shuffled[0]);
    let others: Vec<NodeId> = shuffled.iter().copied().filter(|&x| x != leader).collect();
    let n = shuffled.len();
    let (description, links) = match shape {
        Shape::Halves => {
            let (minority, majority) = shuffled.split_at(n / 2);
            (
                format!("{} | {}", show(minority), show(majority)),
                between(minority, majority),
            )
        }
        Shape::LeaderAlone => (
            format!("{} | {}", show(&[leader]), show(&others)),
            between(&[leader], &others),
        ),
        Shape::Bridge => {
            let bridge = shuffled[0];
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            (
                format!("{} <{}> {}", show(a), bridge, show(b)),
                between(a, b),
            )
        }
        Shape::LeaderMute => (
            format!("{} -/-> {}", show(&[leader]), show(&others)),
            others.iter().map(|&o| (leader, o)).collect(),
        ),
        Shape::LeaderDeaf => (
            format!("{} -/-> {}", show(&others), show(&[leader])),
            others.iter().map(|&o| (o, leader)).collect(),
        ),
        Shape::MajoritiesRing => {
            // Node at ring position p hears the `m` positions around it
            // (itself included), p - (m-1)/2 ..= p + m/2.
            let m = n / 2 + 1;
            let mut links = BTreeSet::new();
            for (p, &to) in shuffled.iter().enumerate() {
                let hears: BTreeSet<NodeId> = (0..m)
                    .map(|k| shuffled[(p + n + k - (m - 1) / 2) % n])
                    .collect();
                for &from in &shuffled {
                    if !hears.contains(&from) {
                        links.insert((from, to));
                    }
                }
            }
            let ring: Vec<String> = shuffled.iter().map(|x| x.to_string()).collect();
            (format!("ring {}", ring.join("-")), links)
        }
    };
    Cut {
        name: shape.name(),
        description,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn connected(cut: &BTreeSet<LinkId>, a: NodeId, b: NodeId) -> bool {
        !cut.contains(&(a, b)) && !cut.contains(&(b, a))
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn halves_and_leader_alone_split_the_cluster() {
        for seed in 0..10 {
            let c = cut(Shape::Halves, &[1, 2, 3, 4, 5], Some(1), &mut rng(seed));
            // 2 * 3 pairs, both ways.
            assert_eq!(c.links.len(), 12, "{}", c.description);
            let c = cut(
                Shape::LeaderAlone,
                &[1, 2, 3, 4, 5],
                Some(5),
                &mut rng(seed),
            );
            assert_eq!(c.links.len(), 8);
            for o in [1, 2, 3, 4] {
                assert!(!connected(&c.links, 5, o));
            }
        }
    }

    #[test]
    fn bridge_leaves_two_majorities_sharing_one_node() {
        for nodes in [vec![1, 2, 3], vec![1, 2, 3, 4, 5]] {
            for seed in 0..10 {
                let c = cut(Shape::Bridge, &nodes, Some(1), &mut rng(seed));
                let n = nodes.len();
                // Some node reaches everyone; every node reaches a majority.
                assert!(
                    nodes
                        .iter()
                        .any(|&b| nodes.iter().all(|&x| connected(&c.links, b, x)))
                );
                for &x in &nodes {
                    let reach = nodes.iter().filter(|&&y| connected(&c.links, x, y)).count();
                    assert!(reach > n / 2, "node {x} reaches only {reach} of {n}");
                }
                assert!(!c.links.is_empty());
            }
        }
    }

    #[test]
    fn within_is_every_link_of_a_group_but_none_to_itself() {
        assert_eq!(
            within(&[2, 3, 4]),
            BTreeSet::from([(2, 3), (2, 4), (3, 2), (3, 4), (4, 2), (4, 3)])
        );
        assert!(within(&[7]).is_empty());
    }

    #[test]
    fn mute_and_deaf_cut_one_direction_of_the_leaders_links() {
        for seed in 0..5 {
            let c = cut(Shape::LeaderMute, &[1, 2, 3], Some(1), &mut rng(seed));
            assert_eq!(c.links, BTreeSet::from([(1, 2), (1, 3)]));
            assert_eq!(c.description, "[1] -/-> [2 3]");
            let c = cut(Shape::LeaderDeaf, &[1, 2, 3], Some(1), &mut rng(seed));
            assert_eq!(c.links, BTreeSet::from([(2, 1), (3, 1)]));
            assert_eq!(c.description, "[2 3] -/-> [1]");
        }
        // The compound faults' deaf step cuts the same links.
        assert_eq!(deaf(&[1, 2, 3], 1).links, BTreeSet::from([(2, 1), (3, 1)]));
    }

    #[test]
    fn a_ring_gives_every_node_its_own_majority() {
        for nodes in [
            vec![1, 2, 3],
            vec![1, 2, 3, 4, 5],
            vec![1, 2, 3, 4, 5, 6, 7],
        ] {
            let n = nodes.len();
            let c = cut(Shape::MajoritiesRing, &nodes, None, &mut rng(7));
            let mut majorities = BTreeSet::new();
            for &to in &nodes {
                let heard: BTreeSet<NodeId> = nodes
                    .iter()
                    .copied()
                    .filter(|&from| from == to || !c.links.contains(&(from, to)))
                    .collect();
                assert_eq!(heard.len(), n / 2 + 1, "{}: {heard:?}", c.description);
                assert!(heard.contains(&to));
                majorities.insert(heard);
            }
            // No two nodes hear the same majority.
            assert_eq!(majorities.len(), n, "{}", c.description);
        }
    }

    #[test]
    fn a_reset_cut_blocks_and_a_dropping_cut_holds_until_the_heal() {
        let reset = CutStyle::Reset.mode();
        assert!(reset.blocked && !reset.stalled);
        // Held bytes are passed on when the stall clears (the proxy's
        // stall test); a blocked link closes its connections instead.
        let drop = CutStyle::Drop.mode();
        assert!(drop.stalled && !drop.blocked);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let drops = (0..200)
            .filter(|_| CutStyle::draw(&mut rng) == CutStyle::Drop)
            .count();
        assert!((60..=140).contains(&drops), "{drops} of 200 drop");
    }

    #[test]
    fn shapes_fit_the_cluster_size() {
        assert!(Shape::for_cluster(1).is_empty());
        assert_eq!(
            Shape::for_cluster(2),
            vec![
                Shape::Halves,
                Shape::LeaderAlone,
                Shape::LeaderMute,
                Shape::LeaderDeaf
            ]
        );
        assert_eq!(Shape::for_cluster(5), Shape::ALL.to_vec());
    }

    #[test]
    fn a_star_leaves_only_the_hub_connected_to_everyone() {
        let nodes = [1, 2, 3, 4, 5];
        let cut = star(&nodes, 3);
        assert_eq!(cut.links.len(), 12, "4 nodes, 12 directed links among them");
        assert!(cut.links.iter().all(|&(a, b)| a != 3 && b != 3 && a != b));
        for a in [1, 2, 4, 5] {
            for b in [1, 2, 4, 5] {
                assert_eq!(cut.links.contains(&(a, b)), a != b);
            }
        }
        assert_eq!(cut.description, "[1 2 4 5] <-> [3] only");
    }
}
