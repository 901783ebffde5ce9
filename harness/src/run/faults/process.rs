//! Process faults: which nodes a kill or a pause hits.
//!
//! The schedule names an [`Aim`]; [`pick`] turns it into node ids when the
//! fault starts, from what the nodes said about themselves a moment before
//! and from the nodes no other process fault holds.

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::super::proxy::NodeId;
use super::super::target::{NodeView, Role, leader_of};

/// Which nodes a process fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aim {
    /// The node leading the highest term.
    Leader,
    /// The next node to win an election (the nemesis waits for one), or the
    /// leader if it won in the last moment.
    NewLeader,
    /// The follower that applied the fewest entries.
    Lagging,
    /// One node at random.
    One,
    /// The largest minority (at random).
    Minority,
    /// The smallest majority (at random): the cluster loses its quorum.
    Majority,
    /// Every node.
    All,
}

impl Aim {
    pub fn name(self) -> &'static str {
        match self {
            Aim::Leader => "leader",
            Aim::NewLeader => "new-leader",
            Aim::Lagging => "lagging",
            Aim::One => "one",
            Aim::Minority => "minority",
            Aim::Majority => "majority",
            Aim::All => "all",
        }
    }

    /// The aims that make sense for a cluster of `n` nodes: a minority of
    /// two nodes is no node at all, and a one-node cluster has no followers.
    pub fn for_cluster(n: usize) -> Vec<Aim> {
        let mut aims = vec![Aim::Leader, Aim::NewLeader];
        if n >= 2 {
            aims.push(Aim::Lagging);
            aims.push(Aim::One);
        }
        if n >= 3 {
            aims.push(Aim::Minority);
        }
        if n >= 2 {
            aims.push(Aim::Majority);
        }
        aims.push(Aim::All);
        aims
    }

    /// True when the aim takes down a quorum.
    pub fn loses_quorum(self, n: usize) -> bool {
        match self {
            Aim::Majority | Aim::All => true,
            // One node of one or two is a quorum.
            Aim::Leader | Aim::NewLeader | Aim::Lagging | Aim::One => n <= 2,
            Aim::Minority => false,
        }
    }
}

/// The nodes `aim` hits among `free` (nodes no other process fault holds),
/// given the nodes' `views` (the leader and how far each got). `n` is the
/// cluster size. Empty when the aim cannot be met (too few free nodes, the
/// leader already held).
pub fn pick(
    aim: Aim,
    n: usize,
    free: &BTreeSet<NodeId>,
    views: &[NodeView],
    rng: &mut ChaCha8Rng,
) -> Vec<NodeId> {
    let mut shuffled: Vec<NodeId> = free.iter().copied().collect();
    shuffled.shuffle(rng);
    let leader = leader_of(views).map(|(id, _)| id);
    let mut nodes = match aim {
        Aim::Leader | Aim::NewLeader => match leader {
            Some(l) if free.contains(&l) => vec![l],
            Some(_) => Vec::new(),
            // No leader known: any node, as a client would meet one.
            None => shuffled.first().copied().into_iter().collect(),
        },
        Aim::Lagging => {
            let followers: Vec<&NodeView> = views
                .iter()
                .filter(|v| v.role != Role::Leader && free.contains(&v.id))
                .collect();
            let least = followers.iter().map(|v| v.applied_index).min();
            let lagging: Vec<NodeId> = followers
                .iter()
                .filter(|v| Some(v.applied_index) == least)
                .map(|v| v.id)
                .collect();
            match lagging.choose(rng) {
                Some(&id) => vec![id],
                None => shuffled
                    .iter()
                    .copied()
                    .find(|&id| Some(id) != leader)
                    .into_iter()
                    .collect(),
            }
        }
        Aim::One => shuffled.first().copied().into_iter().collect(),
        Aim::Minority => take(&shuffled, (n - 1) / 2),
        Aim::Majority => take(&shuffled, n / 2 + 1),
        Aim::All => shuffled.clone(),
    };
    nodes.sort_unstable();
    nodes
}

/// The first `k` of `nodes`, or nothing when there are fewer or `k` is 0.
fn take(nodes: &[NodeId], k: usize) -> Vec<NodeId> {
    if k == 0 || nodes.len() < k {
        Vec::new()
    } else {
        nodes[..k].to_vec()
    }
}

/// A random duration in `[lo, hi]`, uniform on a log scale: short and long
/// faults alike.
pub fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let (a, b) = (lo.max(1e-6).ln(), hi.max(lo).max(1e-6).ln());
    (a + (b - a) * rng.random::<f64>()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn view(id: NodeId, role: Role, applied: u64) -> NodeView {
        NodeView {
            id,
            role,
            term: 3,
            leader: Some(1),
            commit_index: 10,
            applied_index: applied,
        }
    }

    fn cluster() -> Vec<NodeView> {
        vec![
            view(1, Role::Leader, 10),
            view(2, Role::Follower, 9),
            view(3, Role::Follower, 4),
            view(4, Role::Follower, 10),
            view(5, Role::Follower, 8),
        ]
    }

    fn all(n: u64) -> BTreeSet<NodeId> {
        (1..=n).collect()
    }

    #[test]
    fn aims_pick_the_nodes_they_name() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let views = cluster();
        let free = all(5);
        assert_eq!(pick(Aim::Leader, 5, &free, &views, &mut rng), vec![1]);
        assert_eq!(pick(Aim::NewLeader, 5, &free, &views, &mut rng), vec![1]);
        assert_eq!(pick(Aim::Lagging, 5, &free, &views, &mut rng), vec![3]);
        assert_eq!(pick(Aim::One, 5, &free, &views, &mut rng).len(), 1);
        assert_eq!(pick(Aim::Minority, 5, &free, &views, &mut rng).len(), 2);
        assert_eq!(pick(Aim::Majority, 5, &free, &views, &mut rng).len(), 3);
        assert_eq!(
            pick(Aim::All, 5, &free, &views, &mut rng),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn held_nodes_are_left_alone() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let views = cluster();
        let free: BTreeSet<NodeId> = [2, 4, 5].into();
        // The leader is held by another fault: a leader kill waits its turn.
        assert!(pick(Aim::Leader, 5, &free, &views, &mut rng).is_empty());
        // Node 3 lags most but is held: the next laggard is 5.
        assert_eq!(pick(Aim::Lagging, 5, &free, &views, &mut rng), vec![5]);
        // A majority of 5 needs 3 free nodes; 2 are not enough.
        let two: BTreeSet<NodeId> = [4, 5].into();
        assert!(pick(Aim::Majority, 5, &two, &views, &mut rng).is_empty());
        assert_eq!(pick(Aim::All, 5, &two, &views, &mut rng), vec![4, 5]);
        for _ in 0..20 {
            let got = pick(Aim::Minority, 5, &free, &views, &mut rng);
            assert!(got.iter().all(|id| free.contains(id)), "{got:?}");
        }
    }

    #[test]
    fn without_views_a_leader_aim_still_hits_a_node() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let got = pick(Aim::Leader, 3, &all(3), &[], &mut rng);
        assert_eq!(got.len(), 1);
        let got = pick(Aim::Lagging, 3, &all(3), &[], &mut rng);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn aims_fit_the_cluster_size() {
        assert!(!Aim::for_cluster(2).contains(&Aim::Minority));
        assert!(Aim::for_cluster(3).contains(&Aim::Minority));
        assert_eq!(
            Aim::for_cluster(1),
            vec![Aim::Leader, Aim::NewLeader, Aim::All]
        );
        assert!(Aim::One.loses_quorum(2) && !Aim::One.loses_quorum(3));
        assert!(Aim::Majority.loses_quorum(5) && !Aim::Minority.loses_quorum(5));
    }

    #[test]
    fn log_uniform_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..1000 {
            let x = log_uniform(&mut rng, 0.5, 4.0);
            assert!((0.5..=4.0).contains(&x), "{x}");
        }
    }
}
