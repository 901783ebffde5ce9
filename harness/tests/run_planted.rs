//! The gate catches planted mistakes: `harness run` with the nemesis that
//! exposes a mistake exits 1 (not linearizable). Catching depends on timing,
//! so each test allows a few seeded runs and passes on the first exit 1; a
//! run that ends any other way than 0 or 1 fails the test at once.

mod run_support;

use run_support::{RunResult, harness_run, serial};

/// Runs with seeds 1, 2, ... up to `tries` until one exits 1.
fn caught(plant: &str, args: &[&str], tries: u64) -> RunResult {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let mut codes = Vec::new();
    for seed in 1..=tries {
        let seed = seed.to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--seed", &seed]);
        let r = harness_run(out.path(), Some(plant), &all);
        match r.code {
            1 => {
                let summary = r.summary();
                assert_eq!(summary["verdict"], "not-linearizable");
                // The report names the failing key.
                let key = summary["check"]["failure"]["key"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let report = std::fs::read_to_string(r.run_dir.join("report.html")).unwrap();
                assert!(report.contains(&key));
                eprintln!("{plant}: caught with seed {seed} in {:?}", r.elapsed);
                return r;
            }
            0 => codes.push(0),
            _ => panic!("{plant}, seed {seed}: {}", r.describe()),
        }
    }
    panic!("{plant}: not caught in {tries} runs ({codes:?})");
}

#[test]
fn ack_before_commit_is_caught_under_kill() {
    caught(
        "ack-before-commit",
        &[
            "--nodes",
            "3",
            "--duration",
            "8s",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "1500ms",
        ],
        3,
    );
}

/// Kills every 600 ms over one key: many leader changes, each with writes
/// in flight that the client retries, and reads that collide with them.
const KILL_ONE_KEY: &[&str] = &[
    "--nodes",
    "3",
    "--duration",
    "10s",
    "--nemesis",
    "kill",
    "--nemesis-interval",
    "600ms",
    "--keys",
    "1",
];

#[test]
fn double_apply_is_caught_under_kill() {
    caught("double-apply", KILL_ONE_KEY, 4);
}

#[test]
fn stale_read_is_caught_under_leader_kills() {
    // Kill the leader every 700 ms under a read-heavy mix on one key: a
    // client failing over reads from a follower that has not yet learnt the
    // latest commit.
    caught(
        "stale-read",
        &[
            "--nodes",
            "3",
            "--duration",
            "10s",
            "--nemesis",
            "kill",
            "--nemesis-target",
            "leader",
            "--nemesis-interval",
            "700ms",
            "--keys",
            "1",
            "--mix",
            "set=3,get=7",
        ],
        4,
    );
}
