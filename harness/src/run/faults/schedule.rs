//! The fault schedule: which faults, when, for how long, drawn from the
//! seed before the run starts.
//!
//! Faults are dealt from a shuffled deck that holds every fault the enabled
//! families allow once (every aim, every partition shape, every kind of slow
//! link, the compound faults), reshuffled when it runs out: each kind comes
//! up within a run of a deck's length, in a random order. Start times are
//! random gaps apart (mostly shorter than a fault lasts, so faults overlap;
//! now and then a quiet stretch in which the cluster recovers), lengths are
//! random too; both scale with `--nemesis-interval`, the mean gap. At most
//! two faults are active at once, and a compound fault runs alone: a fault
//! that would break that waits for a slot.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::process::{Aim, log_uniform};
use super::slow::{SlowLinks, SlowSpec};
use super::{Family, Plan, Planned, Shape};

/// Which faults a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// Every fault.
    Any,
    /// Only faults aimed at the leader (or a node just elected).
    Leader,
    /// Only faults that leave a majority of nodes running and connected.
    Minority,
}

impl Targets {
    pub fn parse(s: &str) -> Result<Targets, String> {
        match s {
            "any" => Ok(Targets::Any),
            "leader" => Ok(Targets::Leader),
            "minority" => Ok(Targets::Minority),
            other => Err(format!(
                "--nemesis-target: unknown target {other:?}; expected any, leader or minority"
            )),
        }
    }
}

/// What the schedule is drawn for.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub families: Vec<Family>,
    pub targets: Targets,
    pub nodes: usize,
    /// The target can leave a torn write at the end of a killed node's log.
    pub torn_writes: bool,
    /// How long the workload runs; no fault starts after it.
    pub length: Duration,
    /// Mean gap between two fault starts.
    pub mean_gap: Duration,
}

/// Every fault the configuration allows, once.
pub fn deck(config: &ScheduleConfig) -> Vec<Plan> {
    let n = config.nodes;
    let has = |f: Family| config.families.contains(&f);
    let mut deck = Vec::new();
    for aim in Aim::for_cluster(n) {
        if has(Family::Kill) {
            deck.push(Plan::Kill(aim));
            // A torn write matters where the last record was durable state:
            // the leader's, any node's, or every node's at once.
            if config.torn_writes && matches!(aim, Aim::Leader | Aim::One | Aim::All) {
                deck.push(Plan::KillTorn(aim));
            }
        }
        if has(Family::Pause) {
            deck.push(Plan::Pause(aim));
        }
        // A power cut tests what a node made durable: its leader's, any
        // one node's, a minority's, or the whole cluster's at once.
        if has(Family::Power) && matches!(aim, Aim::Leader | Aim::One | Aim::Minority | Aim::All) {
            deck.push(Plan::PowerCut(aim));
        }
    }
    if has(Family::Partition) {
        deck.extend(Shape::for_cluster(n).into_iter().map(Plan::Partition));
    }
    if has(Family::Slow) && n >= 2 {
        // Every link slowed evenly; the leader's links and a few random
        // ones slowed and stalling now and then; one follower far away.
        // The delays are drawn per fault when dealt.
        for (links, stalls) in [
            (SlowLinks::All, false),
            (SlowLinks::Leader, true),
            (SlowLinks::Some, true),
            (SlowLinks::FarFollower, false),
        ] {
            deck.push(Plan::Slow(SlowSpec {
                links,
                delay: Duration::ZERO,
                jitter: Duration::ZERO,
                stalls,
            }));
        }
    }
    if n >= 3 && has(Family::Pause) && has(Family::Partition) {
        // Twice: a deposed leader acting on its old term is where most
        // mistakes around leadership show, and it needs the stars to align
        // (a new leader that committed, clients still at the old one).
        deck.push(Plan::PauseLeaderResumeDeaf);
        deck.push(Plan::PauseLeaderResumeDeaf);
    }
    if n >= 3 && has(Family::Partition) && has(Family::Kill) {
        deck.push(Plan::LagThenKillLeader);
        deck.push(Plan::LagThenRestartOthers);
        // Twice, like the deaf leader: whether the new leader overwrites
        // the old one's entries from its log or with a snapshot depends on
        // how far it got while they were apart.
        deck.push(Plan::IsolateLeaderThenKill);
        deck.push(Plan::IsolateLeaderThenKill);
    }
    if n >= 3 && has(Family::Partition) && has(Family::Slow) {
        // Twice: whether a snapshot crosses appends in flight (or reaches
        // a follower that appends already carried past it) is a matter of
        // milliseconds on the slowed links.
        deck.push(Plan::LagThenCatchUpSlowly);
        deck.push(Plan::LagThenCatchUpSlowly);
    }
    deck.retain(|plan| allowed(plan, config.targets, n));
    deck
}

fn allowed(plan: &Plan, targets: Targets, n: usize) -> bool {
    match targets {
        Targets::Any => true,
        Targets::Leader => match plan {
            Plan::Kill(aim) | Plan::KillTorn(aim) | Plan::Pause(aim) | Plan::PowerCut(aim) => {
                matches!(aim, Aim::Leader | Aim::NewLeader)
            }
            Plan::Partition(shape) => matches!(
                shape,
                Shape::LeaderAlone | Shape::LeaderMute | Shape::LeaderDeaf
            ),
            Plan::Slow(spec) => spec.links == SlowLinks::Leader,
            Plan::PauseLeaderResumeDeaf | Plan::LagThenKillLeader => true,
            Plan::LagThenRestartOthers | Plan::IsolateLeaderThenKill => true,
            Plan::LagThenCatchUpSlowly => false,
        },
        Targets::Minority => match plan {
            Plan::Kill(aim) | Plan::KillTorn(aim) | Plan::Pause(aim) | Plan::PowerCut(aim) => {
                !aim.loses_quorum(n)
            }
            Plan::Partition(_)
            | Plan::Slow(_)
            | Plan::PauseLeaderResumeDeaf
            | Plan::IsolateLeaderThenKill
            | Plan::LagThenCatchUpSlowly => true,
            // The star after them leaves no majority that can elect a
            // leader (the second kills a majority as well).
            Plan::LagThenKillLeader | Plan::LagThenRestartOthers => false,
        },
    }
}

/// How long a fault of this plan lasts, in mean gaps.
fn length_in_gaps(plan: &Plan, n: usize, rng: &mut ChaCha8Rng) -> f64 {
    match plan {
        Plan::Kill(aim) | Plan::KillTorn(aim) | Plan::Pause(aim) | Plan::PowerCut(aim)
            if aim.loses_quorum(n) =>
        {
            log_uniform(rng, 0.3, 1.5)
        }
        Plan::Kill(_) | Plan::KillTorn(_) | Plan::Pause(_) | Plan::PowerCut(_) => {
            log_uniform(rng, 0.5, 3.0)
        }
        Plan::Partition(_) => log_uniform(rng, 0.7, 4.0),
        Plan::Slow(_) => log_uniform(rng, 1.5, 5.0),
        Plan::PauseLeaderResumeDeaf => log_uniform(rng, 1.2, 3.0),
        Plan::LagThenKillLeader
        | Plan::LagThenRestartOthers
        | Plan::IsolateLeaderThenKill
        | Plan::LagThenCatchUpSlowly => log_uniform(rng, 1.2, 3.0),
    }
}

/// The gap before the next fault starts, in mean gaps: mostly short, now
/// and then a quiet stretch.
fn gap_in_gaps(rng: &mut ChaCha8Rng) -> f64 {
    if rng.random_bool(0.12) {
        log_uniform(rng, 2.5, 5.0)
    } else {
        log_uniform(rng, 0.15, 1.6)
    }
}

/// At most this many faults are active at once: two overlap (a partition
/// during a kill, a pause during a slow spell), more would bury each other.
pub const MAX_ACTIVE: usize = 2;

/// Compound faults are sequences of their own and run alone.
fn is_compound(plan: &Plan) -> bool {
    matches!(
        plan,
        Plan::PauseLeaderResumeDeaf
            | Plan::LagThenKillLeader
            | Plan::LagThenRestartOthers
            | Plan::IsolateLeaderThenKill
            | Plan::LagThenCatchUpSlowly
    )
}

/// The earliest time from `t` on at which `plan` may start: fewer than
/// [`MAX_ACTIVE`] faults active, none of them compound, and none at all if
/// `plan` is compound.
fn first_free_slot(planned: &[Planned], mut t: f64, plan: &Plan) -> f64 {
    let end = |p: &Planned| p.start.as_secs_f64() + p.length.as_secs_f64();
    loop {
        let active: Vec<&Planned> = planned
            .iter()
            .filter(|p| p.start.as_secs_f64() <= t && t < end(p))
            .collect();
        let cap = if is_compound(plan) { 1 } else { MAX_ACTIVE };
        if active.len() < cap && !active.iter().any(|p| is_compound(&p.plan)) {
            return t;
        }
        // The earliest end among the active faults (each ends after `t`).
        t = active.iter().map(|p| end(p)).fold(f64::INFINITY, f64::min);
    }
}

/// Every partition shape is among this many first faults of a run (plus
/// the number of shapes), even of a run too short for a whole deck.
const SHAPES_WITHIN: usize = 20;

/// A run's first hand (dealt from the end): shuffled, with every partition
/// shape moved among the first [`SHAPES_WITHIN`] dealt.
fn first_hand(full: &[Plan], rng: &mut ChaCha8Rng) -> Vec<Plan> {
    let (shapes, mut hand): (Vec<Plan>, Vec<Plan>) = full
        .iter()
        .cloned()
        .partition(|p| matches!(p, Plan::Partition(_)));
    hand.shuffle(rng);
    for shape in shapes {
        let at = rng.random_range(hand.len().saturating_sub(SHAPES_WITHIN)..=hand.len());
        hand.insert(at, shape);
    }
    hand
}

/// Draws the whole schedule. The same seed and configuration give the same
/// schedule.
pub fn draw(seed: u64, config: &ScheduleConfig) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let full = deck(config);
    if full.is_empty() || config.mean_gap.is_zero() {
        return Vec::new();
    }
    let g = config.mean_gap.as_secs_f64();
    let end = config.length.as_secs_f64();
    let mut hand: Vec<Plan> = Vec::new();
    let mut planned = Vec::new();
    let mut t = g * log_uniform(&mut rng, 0.3, 1.5);
    while t < end - 0.3 * g {
        if hand.is_empty() {
            hand = if planned.is_empty() {
                first_hand(&full, &mut rng)
            } else {
                let mut hand = full.clone();
                hand.shuffle(&mut rng);
                hand
            };
        }
        let mut plan = hand.pop().expect("refilled above");
        if let Plan::Slow(spec) = plan {
            plan = Plan::Slow(SlowSpec::draw(spec.links, spec.stalls, &mut rng));
        }
        let length = g * length_in_gaps(&plan, config.nodes, &mut rng);
        t = first_free_slot(&planned, t, &plan);
        if t >= end - 0.3 * g {
            break;
        }
        planned.push(Planned {
            id: planned.len() as u32 + 1,
            start: Duration::from_secs_f64(t),
            length: Duration::from_secs_f64(length),
            plan,
            choice_seed: rng.random(),
        });
        t += g * gap_in_gaps(&mut rng);
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn config(families: Vec<Family>, nodes: usize) -> ScheduleConfig {
        ScheduleConfig {
            families,
            targets: Targets::Any,
            nodes,
            torn_writes: true,
            length: Duration::from_secs(60),
            mean_gap: Duration::from_secs(1),
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let c = config(Family::ALL.to_vec(), 5);
        assert_eq!(draw(7, &c), draw(7, &c));
        assert_ne!(draw(7, &c), draw(8, &c));
    }

    #[test]
    fn a_minute_is_dense_overlapping_and_covers_every_shape() {
        let c = config(Family::ALL.to_vec(), 5);
        let full = deck(&c);
        let mut whole_decks = 0;
        let mut overlaps = 0;
        for seed in 0..20 {
            let s = draw(seed, &c);
            assert!(s.len() >= 30, "seed {seed}: {} faults", s.len());
            // Starts are in order, inside the run, at irregular gaps.
            let starts: Vec<f64> = s.iter().map(|p| p.start.as_secs_f64()).collect();
            assert!(starts.windows(2).all(|w| w[0] <= w[1]));
            assert!(starts.iter().all(|&t| t < 60.0));
            let gaps: BTreeSet<u64> = starts
                .windows(2)
                .map(|w| ((w[1] - w[0]) * 1000.0) as u64)
                .collect();
            assert!(gaps.len() > s.len() / 2, "gaps repeat: {gaps:?}");
            // Faults overlap: some fault starts before the previous ends.
            let overlapping = s
                .windows(2)
                .filter(|w| w[1].start < w[0].start + w[0].length)
                .count();
            // (Compound faults run alone, so a run heavy in them has fewer.)
            assert!(overlapping >= 8, "seed {seed}: {overlapping} overlaps");
            overlaps += overlapping;
            // Never more than two at once; a compound fault alone.
            for p in &s {
                let t = p.start.as_secs_f64();
                let active: Vec<&Planned> = s
                    .iter()
                    .filter(|q| {
                        q.start.as_secs_f64() <= t && t < (q.start + q.length).as_secs_f64()
                    })
                    .collect();
                assert!(active.len() <= MAX_ACTIVE, "seed {seed} at {t}");
                if active.iter().any(|q| is_compound(&q.plan)) {
                    assert_eq!(active.len(), 1, "seed {seed} at {t}");
                }
            }
            // Every partition shape in every run.
            for shape in Shape::ALL {
                assert!(
                    s.iter().any(|p| p.plan == Plan::Partition(shape)),
                    "seed {seed}: {shape:?}"
                );
            }
            // A whole deck is dealt before any fault repeats, and a run
            // that holds a deck's worth holds every fault in it.
            let kind = |p: &Plan| match p {
                Plan::Slow(sp) => format!("slow {} {}", sp.links.name(), sp.stalls),
                other => other.name(),
            };
            let mut left: Vec<String> = full.iter().map(kind).collect();
            for p in s.iter().take(full.len()) {
                let at = left.iter().position(|k| *k == kind(&p.plan));
                let at = at.unwrap_or_else(|| panic!("seed {seed}: {} dealt twice", p.plan));
                left.swap_remove(at);
            }
            if s.len() >= full.len() {
                assert!(left.is_empty());
                whole_decks += 1;
            }
            // A quiet stretch now and then.
            assert!(starts.windows(2).any(|w| w[1] - w[0] >= 2.5), "seed {seed}");
        }
        assert!(
            whole_decks >= 15,
            "{whole_decks} of 20 runs dealt a whole deck"
        );
        assert!(overlaps >= 20 * 12, "{overlaps} overlaps in 20 runs");
    }

    #[test]
    fn the_first_hand_deals_every_shape_early() {
        let full = deck(&config(Family::ALL.to_vec(), 5));
        for seed in 0..50 {
            let hand = first_hand(&full, &mut ChaCha8Rng::seed_from_u64(seed));
            let sorted = |h: &[Plan]| {
                let mut names: Vec<String> = h.iter().map(|p| format!("{p:?}")).collect();
                names.sort();
                names
            };
            assert_eq!(sorted(&hand), sorted(&full), "seed {seed}");
            let early: Vec<&Plan> = hand
                .iter()
                .rev()
                .take(SHAPES_WITHIN + Shape::ALL.len())
                .collect();
            for shape in Shape::ALL {
                assert!(
                    early.contains(&&Plan::Partition(shape)),
                    "seed {seed}: {shape:?}"
                );
            }
        }
    }

    #[test]
    fn families_and_targets_narrow_the_deck() {
        let kill = deck(&config(vec![Family::Kill], 5));
        assert!(
            kill.iter()
                .all(|p| matches!(p, Plan::Kill(_) | Plan::KillTorn(_)))
        );
        assert_eq!(kill.len(), Aim::for_cluster(5).len() + 3);
        let mut untorn = config(vec![Family::Kill], 5);
        untorn.torn_writes = false;
        assert!(deck(&untorn).iter().all(|p| matches!(p, Plan::Kill(_))));

        let mut c = config(Family::ALL.to_vec(), 5);
        c.targets = Targets::Leader;
        for plan in deck(&c) {
            let ok = match plan {
                Plan::Kill(a) | Plan::KillTorn(a) | Plan::Pause(a) | Plan::PowerCut(a) => {
                    matches!(a, Aim::Leader | Aim::NewLeader)
                }
                Plan::Partition(s) => matches!(
                    s,
                    Shape::LeaderAlone | Shape::LeaderMute | Shape::LeaderDeaf
                ),
                Plan::Slow(s) => s.links == SlowLinks::Leader,
                _ => true,
            };
            assert!(ok, "{plan}");
        }

        c.targets = Targets::Minority;
        for plan in deck(&c) {
            if let Plan::Kill(a) | Plan::KillTorn(a) | Plan::Pause(a) | Plan::PowerCut(a) = plan {
                assert!(!a.loses_quorum(5), "{plan}");
            }
            assert!(
                !matches!(plan, Plan::LagThenKillLeader | Plan::LagThenRestartOthers),
                "{plan}"
            );
        }
        // One node: no network faults, no followers.
        let one = deck(&config(Family::ALL.to_vec(), 1));
        assert!(one.iter().all(|p| matches!(
            p,
            Plan::Kill(_) | Plan::KillTorn(_) | Plan::Pause(_) | Plan::PowerCut(_)
        )));
        assert!(one.contains(&Plan::PowerCut(Aim::All)));
        assert!(draw(1, &config(Vec::new(), 3)).is_empty());
    }
}
