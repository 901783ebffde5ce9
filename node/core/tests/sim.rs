//! Deterministic simulation of 3- and 5-node clusters under faults.
//!
//! `RAFT_SIM_SEEDS=N` runs N seeds per cluster size (soak);
//! `RAFT_SIM_SEED=S RAFT_SIM_NODES=K` replays one seed in `sim_replay`;
//! `RAFT_SIM_TRACE=1` prints the step-by-step trace of a failing run.

mod support;

use support::sim::{Sim, Stats};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn tracing() -> bool {
    std::env::var_os("RAFT_SIM_TRACE").is_some()
}

/// Steps with faults before healing, varied by seed.
fn fault_steps(seed: u64) -> u64 {
    200 + (seed % 7) * 60
}

/// Steps after the heal within which a leader must commit and every node
/// catch up.
const RECOVER_BOUND: u64 = 400;

fn run_one(seed: u64, nodes: usize) -> Stats {
    match Sim::new(seed, nodes, None, tracing()).run(fault_steps(seed), RECOVER_BOUND) {
        Ok(stats) => stats,
        Err(failure) => panic!("{failure}"),
    }
}

/// Runs seeds `range` (or, with `RAFT_SIM_SEEDS=N`, the share of `0..N`
/// that falls into `part` of `parts`).
fn run_many(nodes: usize, default_seeds: u64, part: u64, parts: u64) {
    let seeds = env_u64("RAFT_SIM_SEEDS").unwrap_or(default_seeds);
    let range = (seeds * part / parts)..(seeds * (part + 1) / parts);
    let count = range.end - range.start;
    let mut total = Stats::default();
    for seed in range {
        let s = run_one(seed, nodes);
        total.steps += s.steps;
        total.acked_writes += s.acked_writes;
        total.served_reads += s.served_reads;
        total.leaders += s.leaders;
        total.crashes += s.crashes;
        total.snapshots_taken += s.snapshots_taken;
        total.snapshots_installed += s.snapshots_installed;
    }
    // The runs must have exercised the cluster, not idled.
    assert!(total.acked_writes > count * 10, "{total:?}");
    assert!(total.served_reads > count, "{total:?}");
    assert!(total.crashes > 0, "{total:?}");
    // Snapshots were taken, and followers caught up through them.
    assert!(total.snapshots_taken > count, "{total:?}");
    assert!(total.snapshots_installed > 0, "{total:?}");
    eprintln!("{nodes} nodes, {count} seeds: {total:?}");
}

// Split in parts so that the test harness runs them in parallel.
#[test]
fn sim_3_nodes_part_1() {
    run_many(3, 6000, 0, 2);
}

#[test]
fn sim_3_nodes_part_2() {
    run_many(3, 6000, 1, 2);
}

#[test]
fn sim_5_nodes_part_1() {
    run_many(5, 7000, 0, 2);
}

#[test]
fn sim_5_nodes_part_2() {
    run_many(5, 7000, 1, 2);
}

/// Replays one seed: `RAFT_SIM_SEED=S RAFT_SIM_NODES=K` (default seed 0, 3
/// nodes).
#[test]
fn sim_replay() {
    let seed = env_u64("RAFT_SIM_SEED").unwrap_or(0);
    let nodes = env_u64("RAFT_SIM_NODES").unwrap_or(3) as usize;
    let first = run_one(seed, nodes);
    let second = run_one(seed, nodes);
    // Same seed, same run.
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    // And the fingerprint tells runs apart.
    assert_ne!(first.fingerprint, run_one(seed + 1, nodes).fingerprint);
    eprintln!("seed {seed}, {nodes} nodes: {first:?}");
}
