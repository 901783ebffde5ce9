//! Power cuts catch what kills cannot: the planted mistakes `no-fsync` (the
//! WAL acknowledges without `fdatasync`) and `no-dir-fsync` (new WAL
//! segments and snapshot files without a directory fsync) pass `harness run
//! --nemesis kill` and fail `--nemesis power`, with every other setting at
//! its default; the correct node passes a power run.
//!
//! These tests mount lazy filesystems, so they need root and `/dev/fuse`.
//! Where either is missing they fail, saying so; `RAFTKV_SKIP_FUSE_TESTS=1`
//! skips them explicitly.

mod run_support;

use std::path::Path;

use run_support::{RunResult, harness_run, serial};

const SKIP_ENV: &str = "RAFTKV_SKIP_FUSE_TESTS";

/// Seeds tried per mistake under power cuts; the first run that exits 1
/// passes. A mistake is caught only when a power cut lands while
/// acknowledged data is still unsynced on enough nodes (a whole-cluster or
/// a leader-and-follower cut), which the schedule of one seed may not
/// bring: three seeds bound the test's time and make a miss on a loaded
/// machine unlikely.
const POWER_SEEDS: [u64; 3] = [1, 2, 3];

/// The mistakes and the node they run on.
const MISTAKES: [&str; 2] = ["no-fsync", "no-dir-fsync"];

fn fuse_available() -> bool {
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!("{SKIP_ENV}=1: power-cut runs skipped");
        return false;
    }
    if let Err(e) = raftkv_lazyfs::check_available() {
        panic!("power-cut runs need lazy filesystems: {e} (set {SKIP_ENV}=1 to skip them)");
    }
    true
}

/// No lazy filesystem is left mounted under `dir`.
fn assert_unmounted(dir: &Path) {
    let left: Vec<_> = raftkv_lazyfs::mounts::lazyfs_mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

fn power_cuts(r: &RunResult) -> usize {
    let history = std::fs::read_to_string(r.run_dir.join("history.jsonl")).unwrap();
    history
        .lines()
        .filter(|l| l.contains("\"f\":\"power-cut\""))
        .count()
}

fn run(out: &Path, plant: Option<&str>, nemesis: &str, seed: u64) -> RunResult {
    let seed = seed.to_string();
    harness_run(out, plant, &["--nemesis", nemesis, "--seed", &seed])
}

#[test]
fn power_cuts_catch_missing_fsyncs_that_kills_miss() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out = std::fs::canonicalize(out.path()).unwrap();
    let mut misses = Vec::new();
    for plant in MISTAKES {
        // A kill keeps the page cache: the unsynced writes survive it.
        let r = run(&out, Some(plant), "kill", 1);
        assert_eq!(r.code, 0, "{plant} under kills: {}", r.describe());
        let mut codes = Vec::new();
        let caught = POWER_SEEDS.iter().find_map(|&seed| {
            let r = run(&out, Some(plant), "power", seed);
            assert_unmounted(&out);
            match r.code {
                1 => Some((seed, r)),
                0 => {
                    assert!(power_cuts(&r) > 0, "{plant}: no power cut");
                    codes.push(0);
                    None
                }
                _ => panic!("{plant}, seed {seed}: {}", r.describe()),
            }
        });
        match caught {
            Some((seed, r)) => {
                eprintln!(
                    "{plant}: caught by power cuts with seed {seed} in {:?}",
                    r.elapsed
                );
                assert!(power_cuts(&r) > 0, "{plant}: {}", r.describe());
                let summary = r.summary();
                assert_ne!(summary["verdict_text"], "ok", "{plant}");
                // A failed run keeps what the nodes made durable.
                assert!(r.run_dir.join("backing/n1").is_dir(), "{plant}");
            }
            None => misses.push(format!("{plant}: seeds {POWER_SEEDS:?} gave {codes:?}")),
        }
    }
    assert!(misses.is_empty(), "not caught by power cuts: {misses:?}");
}

#[test]
fn the_correct_node_survives_power_cuts() {
    if !fuse_available() {
        return;
    }
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out = std::fs::canonicalize(out.path()).unwrap();
    let r = harness_run(
        &out,
        None,
        &["--nemesis", "power", "--duration", "15s", "--seed", "7"],
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(power_cuts(&r) > 0, "{}", r.describe());
    assert_unmounted(&out);
    // A passing run removes the data, backing directories included.
    assert!(!r.run_dir.join("backing").exists());
    assert!(!r.run_dir.join("n1").exists());
}
