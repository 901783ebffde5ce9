//! `harness run` against the correct node: linearizable (exit 0) under each
//! kind of fault, the nodes in agreement after healing, with a complete run
//! directory (data dirs removed) and no process left behind; `harness check`
//! on the stored run agrees. Also: a node that exits on its own fails the
//! run, and `--keep-data` keeps the data of a passing run.

mod run_support;

use std::process::Command;

use run_support::{harness_run, harness_run_on, planted_node, processes_mentioning, serial};

fn correct_run_passes(nemesis: &str) {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let r = harness_run(
        out.path(),
        None,
        &[
            "--nodes",
            "3",
            "--duration",
            "10s",
            "--nemesis",
            nemesis,
            "--nemesis-interval",
            "1500ms",
            "--seed",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    let summary = r.summary();
    assert_eq!(summary["verdict"], "linearizable");
    assert_eq!(summary["seed"], 1);
    // Faults really happened, and the clients got work done around them.
    let faults = summary["nemesis_events"].as_array().unwrap();
    assert!(
        faults.iter().any(|e| e["f"] == nemesis),
        "no {nemesis} fault recorded: {faults:?}"
    );
    assert!(
        summary["nemesis"]["applied"].as_u64().unwrap() >= 3,
        "{}",
        summary["nemesis"]
    );
    let ok: u64 = summary["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["ok"].as_u64().unwrap_or(0))
        .sum();
    assert!(ok >= 50, "only {ok} operations succeeded");
    // The nodes' logs hold up: every granted vote survived, one leader a term.
    let checks = &summary["node_checks"];
    assert_eq!(checks["verdict"], "ok", "{checks}");
    assert!(checks["leader_terms"].as_u64().unwrap() >= 1, "{checks}");
    // The nodes applied the same entries and hold the same state.
    let convergence = &summary["convergence"];
    assert_eq!(convergence["verdict"], "ok", "{convergence}");
    assert!(
        convergence["applied_index"].as_u64().unwrap() >= 50,
        "{convergence}"
    );
    // Local nodes snapshot every 300 applied entries by default: a run that
    // applied twice that many crossed at least one snapshot.
    if convergence["applied_index"].as_u64().unwrap() >= 600 {
        assert!(checks["snapshots_taken"].as_u64().unwrap() >= 1, "{checks}");
    }
    assert!(
        checks["snapshots_installed_per_node"].is_object(),
        "{checks}"
    );
    // The committed log was audited while the run went: the nodes agreed
    // on every entry seen, and the answers checked against it held.
    let audit = &summary["log_audit"];
    assert_eq!(audit["verdict"], "ok", "{audit}");
    assert!(audit["entries"].as_u64().unwrap() >= 20, "{audit}");
    assert!(audit["answers_checked"].as_u64().unwrap() >= 10, "{audit}");
    assert!(summary["cas"]["success_rate"].as_f64().is_some());
    for file in ["history.jsonl", "summary.json", "report.html", "node-1.log"] {
        assert!(r.run_dir.join(file).is_file(), "{file} missing");
    }
    // A passing run does not keep the nodes' data.
    assert!(!r.run_dir.join("n1").exists(), "data dir kept");
    assert_eq!(summary["data_kept"], false);
    let stdout = String::from_utf8_lossy(&r.output.stdout);
    assert!(
        stdout.starts_with("harness run: seed 1, run directory "),
        "{stdout}"
    );
    let verdict = stdout.lines().last().unwrap();
    assert!(verdict.starts_with("verdict: PASS; "), "{verdict}");
    assert!(
        verdict.contains("report.html") && verdict.ends_with("--seed 1"),
        "{verdict}"
    );
    let report = std::fs::read_to_string(r.run_dir.join("report.html")).unwrap();
    // The checker's timeline first, in an iframe; then a latency and a rate
    // plot per operation that completed, and the fault timeline.
    let (timeline, plots) = report
        .split_once("id=\"timeline\"")
        .expect("a timeline iframe");
    assert!(!timeline.contains("<svg"), "plots above the timeline");
    assert!(plots.contains(".srcdoc = \"<!DOCTYPE html>"));
    for f in summary["counts"].as_object().unwrap().keys() {
        for plot in ["latency", "rate"] {
            assert!(
                plots.contains(&format!("id=\"{plot}-{f}\"")),
                "{plot} plot of {f}"
            );
        }
    }
    assert!(plots.contains("id=\"fault-timeline\""));
    // Every node process is gone.
    let dir = out.path().to_string_lossy().into_owned();
    assert!(
        processes_mentioning(&dir).is_empty(),
        "node processes outlived the run"
    );

    // Re-checking the stored run gives the same verdict.
    let check = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("check")
        .arg(&r.run_dir)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let stdout = String::from_utf8_lossy(&check.stdout).to_lowercase();
    assert!(
        stdout.contains("linearizable") && !stdout.contains("not linearizable"),
        "{stdout}"
    );
}

#[test]
fn correct_node_under_kill_is_linearizable() {
    correct_run_passes("kill");
}

#[test]
fn correct_node_under_pause_is_linearizable() {
    correct_run_passes("pause");
}

#[test]
fn correct_node_under_partition_is_linearizable() {
    correct_run_passes("partition");
}

#[test]
fn correct_node_under_slow_links_is_linearizable() {
    correct_run_passes("slow");
}

/// A node wrapper that SIGKILLs node 2 from outside the harness a few
/// seconds after it starts: a node that "exits on its own".
fn crashing_node(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("crashing-node");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh
[ \"$2\" = 2 ] && (sleep 2; kill -9 $$) &
exec {} \"$@\"
",
            planted_node().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_node_that_exits_on_its_own_fails_the_run() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let node = crashing_node(out.path());
    let r = harness_run_on(
        &node,
        out.path(),
        None,
        &[
            "--nodes",
            "3",
            "--duration",
            "6s",
            "--nemesis",
            "none",
            "--seed",
            "3",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.describe());
    let summary = r.summary();
    let crash = &summary["crashes"][0];
    assert_eq!(crash["node"], 2, "{summary}");
    let report = crash["report"].as_str().unwrap();
    // The tail of its log is shown: the node's own start-up lines.
    assert!(
        report.contains("node-2.log") && report.contains("serving"),
        "{report}"
    );
    let stdout = String::from_utf8_lossy(&r.output.stdout);
    let verdict = stdout.lines().last().unwrap();
    assert!(
        verdict.starts_with("verdict: FAIL: ") && verdict.contains("node 2 exited on its own"),
        "{stdout}"
    );
    // A failed run keeps the nodes' data.
    assert!(r.run_dir.join("n2").is_dir());
}

#[test]
fn keep_data_keeps_the_data_of_a_passing_run() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let r = harness_run(
        out.path(),
        None,
        &[
            "--nodes",
            "1",
            "--duration",
            "2s",
            "--nemesis",
            "none",
            "--keep-data",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(r.run_dir.join("n1").is_dir());
    assert_eq!(r.summary()["data_kept"], true);
}
