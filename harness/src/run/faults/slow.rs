//! Slow links: delay, jitter and stalls on some links, so that a commit
//! takes longer than a client's patience and a retry meets its original
//! still in flight, and heartbeats arrive late or in bursts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::super::proxy::{LinkId, LinkMode, NodeId};
use super::process::log_uniform;

/// Which links a slow fault touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowLinks {
    /// Every link.
    All,
    /// The leader's links, both directions.
    Leader,
    /// About a third of the links, at random.
    Some,
    /// One follower's links, both directions, with a long and steady delay:
    /// a replica in another region. The others commit without it at full
    /// speed, so hundreds of entries are in flight to it at a time and its
    /// acknowledgements come in bursts a round trip apart: the leader's view
    /// of it lags what it holds, which is where a snapshot sent to catch it
    /// up can cross the appends that already did.
    FarFollower,
}

impl SlowLinks {
    pub fn name(self) -> &'static str {
        match self {
            SlowLinks::All => "all",
            SlowLinks::Leader => "leader",
            SlowLinks::Some => "some",
            SlowLinks::FarFollower => "far-follower",
        }
    }
}

/// A slow fault as planned: where, how slow, and whether links stall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowSpec {
    pub links: SlowLinks,
    pub delay: Duration,
    pub jitter: Duration,
    /// Stall the links now and then (every link on its own rhythm).
    pub stalls: bool,
}

impl SlowSpec {
    /// Draws the delay (5 to 200 ms) and the jitter (up to the delay); for
    /// a far follower a delay of 80 to 300 ms each way and a jitter of up
    /// to a tenth of it.
    pub fn draw(links: SlowLinks, stalls: bool, rng: &mut ChaCha8Rng) -> SlowSpec {
        let (delay, jitter_share) = match links {
            SlowLinks::FarFollower => (log_uniform(rng, 0.08, 0.3), 0.1),
            _ => (log_uniform(rng, 0.005, 0.2), 1.0),
        };
        let jitter = delay * jitter_share * rng.random::<f64>();
        SlowSpec {
            links,
            delay: Duration::from_secs_f64(delay),
            jitter: Duration::from_secs_f64(jitter),
            stalls,
        }
    }

    /// The links this fault slows in a cluster of `nodes`, given the leader.
    pub fn pick_links(
        &self,
        nodes: &[NodeId],
        leader: Option<NodeId>,
        rng: &mut ChaCha8Rng,
    ) -> BTreeSet<LinkId> {
        let all: Vec<LinkId> = nodes
            .iter()
            .flat_map(|&a| nodes.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
            .collect();
        match self.links {
            SlowLinks::All => all.into_iter().collect(),
            SlowLinks::Leader => {
                let leader = leader.unwrap_or(nodes[rng.random_range(0..nodes.len())]);
                all.into_iter()
                    .filter(|&(a, b)| a == leader || b == leader)
                    .collect()
            }
            SlowLinks::FarFollower => {
                let followers: Vec<NodeId> = nodes
                    .iter()
                    .copied()
                    .filter(|&id| Some(id) != leader)
                    .collect();
                let far = *followers.choose(rng).unwrap_or(&nodes[0]);
                all.into_iter()
                    .filter(|&(a, b)| a == far || b == far)
                    .collect()
            }
            SlowLinks::Some => {
                let mut shuffled = all;
                shuffled.shuffle(rng);
                let k = shuffled.len().div_ceil(3);
                shuffled.into_iter().take(k).collect()
            }
        }
    }
}

/// The next stall of a link: how long until it starts (0.1 to 1 s) and how
/// long it lasts (50 ms to 1 s: some shorter than an election timeout, some
/// longer).
pub fn next_stall(rng: &mut ChaCha8Rng) -> (Duration, Duration) {
    let wait = log_uniform(rng, 0.1, 1.0);
    let stall = log_uniform(rng, 0.05, 1.0);
    (
        Duration::from_secs_f64(wait),
        Duration::from_secs_f64(stall),
    )
}

/// Merges the modes of overlapping faults: a link is blocked or stalled if
/// any fault says so, and as slow as the slowest says.
pub fn merge(into: &mut BTreeMap<LinkId, LinkMode>, link: LinkId, mode: LinkMode) {
    let m = into.entry(link).or_insert(LinkMode::OPEN);
    m.blocked |= mode.blocked;
    m.stalled |= mode.stalled;
    m.delay = m.delay.max(mode.delay);
    m.jitter = m.jitter.max(mode.jitter);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn picks_the_links_it_names() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let nodes = [1, 2, 3, 4, 5];
        let spec = SlowSpec::draw(SlowLinks::All, false, &mut rng);
        assert_eq!(spec.pick_links(&nodes, Some(2), &mut rng).len(), 20);
        let spec = SlowSpec {
            links: SlowLinks::Leader,
            ..spec
        };
        let links = spec.pick_links(&nodes, Some(2), &mut rng);
        assert_eq!(links.len(), 8);
        assert!(links.iter().all(|&(a, b)| a == 2 || b == 2));
        let spec = SlowSpec {
            links: SlowLinks::Some,
            ..spec
        };
        assert_eq!(spec.pick_links(&nodes, None, &mut rng).len(), 7);
        let spec = SlowSpec {
            links: SlowLinks::FarFollower,
            ..spec
        };
        for _ in 0..20 {
            let links = spec.pick_links(&nodes, Some(2), &mut rng);
            assert_eq!(links.len(), 8);
            let far: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|&n| links.iter().all(|&(x, y)| x == n || y == n))
                .collect();
            assert_eq!(far.len(), 1, "every link touches one node: {links:?}");
            assert_ne!(far[0], 2, "the leader is not the far node");
        }
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..200 {
            let s = SlowSpec::draw(SlowLinks::All, true, &mut rng);
            assert!(s.delay >= Duration::from_millis(5) && s.delay <= Duration::from_millis(200));
            assert!(s.jitter <= s.delay && s.stalls);
            let (wait, stall) = next_stall(&mut rng);
            assert!(wait >= Duration::from_millis(100) && stall <= Duration::from_secs(1));
            let far = SlowSpec::draw(SlowLinks::FarFollower, false, &mut rng);
            assert!(
                far.delay >= Duration::from_millis(80) && far.delay <= Duration::from_millis(300)
            );
            assert!(far.jitter <= far.delay / 10 && !far.stalls);
        }
    }

    #[test]
    fn merging_keeps_the_worst_of_each() {
        let mut modes = BTreeMap::new();
        let slow = LinkMode {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(5),
            ..LinkMode::OPEN
        };
        merge(&mut modes, (1, 2), slow);
        merge(
            &mut modes,
            (1, 2),
            LinkMode {
                blocked: true,
                delay: Duration::from_millis(10),
                ..LinkMode::OPEN
            },
        );
        let m = modes[&(1, 2)];
        assert!(m.blocked && !m.stalled);
        assert_eq!(m.delay, Duration::from_millis(30));
        assert_eq!(m.jitter, Duration::from_millis(5));
    }
}
