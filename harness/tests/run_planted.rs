//! The gate catches planted mistakes: `harness run` with the nemesis that
//! exposes a mistake exits 1 (not linearizable). Catching depends on timing,
//! so each test allows a few seeded runs and passes on the first exit 1; a
//! run that ends any other way than 0 or 1 fails the test at once.

mod run_support;

use run_support::{RunResult, harness_run, serial};

/// Runs with seeds 1, 2, ... up to `tries` until one exits 1 because the
/// history is not linearizable.
fn caught(plant: &str, args: &[&str], tries: u64) -> RunResult {
    caught_by(plant, args, tries, |r| {
        let summary = r.summary();
        assert_eq!(summary["verdict"], "not-linearizable");
        // The report names the failing key.
        let key = summary["check"]["failure"]["key"]
            .as_str()
            .unwrap()
            .to_string();
        let report = std::fs::read_to_string(r.run_dir.join("report.html")).unwrap();
        assert!(report.contains(&key));
    })
}

/// Runs with seeds 1, 2, ... up to `tries` until one exits 1, then checks
/// that run with `verify`.
fn caught_by(plant: &str, args: &[&str], tries: u64, verify: impl Fn(&RunResult)) -> RunResult {
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
                verify(&r);
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

/// Kills every 500 ms over one key with 16 clients: many leader changes,
/// each with writes in flight that the client retries, and reads that
/// collide with them.
const KILL_ONE_KEY: &[&str] = &[
    "--nodes",
    "3",
    "--duration",
    "10s",
    "--nemesis",
    "kill",
    "--nemesis-interval",
    "500ms",
    "--keys",
    "1",
    "--concurrency",
    "16",
];

#[test]
fn double_apply_is_caught_under_kill() {
    // About two runs in three catch it (a retry must meet a kill between
    // commit and acknowledgement); ten tries leave little to luck.
    caught("double-apply", KILL_ONE_KEY, 10);
}

#[test]
fn stale_read_is_caught_under_leader_kills() {
    // Kill the leader every 500 ms under a read-heavy mix on one key: a
    // client failing over reads from a follower that has not yet learnt the
    // latest commit. About four runs in five catch it.
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
            "500ms",
            "--keys",
            "1",
            "--concurrency",
            "16",
            "--mix",
            "set=3,get=7",
        ],
        10,
    );
}

#[test]
fn vote_not_persisted_is_caught_under_kill() {
    // A forgotten vote rarely shows in the history (PreVote and one-shot
    // vote requests leave little room for a second vote in the same term),
    // but every restart of a node that voted in the current term shows it in
    // the node logs. Five nodes: most of them vote in each election, so a
    // killed node has usually voted in the current term.
    caught_by(
        "vote-not-persisted",
        &[
            "--nodes",
            "5",
            "--duration",
            "8s",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "1s",
        ],
        3,
        |r| {
            let summary = r.summary();
            assert_eq!(summary["exit_code"], 1);
            let checks = &summary["node_checks"];
            assert_eq!(checks["verdict"], "violated", "{checks}");
            let violation = checks["violations"][0].as_str().unwrap();
            assert!(
                violation.contains("a granted vote was not durable"),
                "{violation}"
            );
            let report = std::fs::read_to_string(r.run_dir.join("report.html")).unwrap();
            assert!(report.contains("a granted vote was not durable"));
            let stdout = String::from_utf8_lossy(&r.output.stdout);
            assert!(stdout.contains("node logs: VIOLATED"), "{}", r.describe());
        },
    );
}
