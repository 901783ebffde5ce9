//! `harness run` against the correct node: linearizable (exit 0) under each
//! kind of fault, with a complete run directory and no process left behind;
//! `harness check` on the stored run agrees.

mod run_support;

use std::process::Command;

use run_support::{harness_run, processes_mentioning, serial};

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
    for file in ["history.jsonl", "summary.json", "report.html", "node-1.log"] {
        assert!(r.run_dir.join(file).is_file(), "{file} missing");
    }
    let report = std::fs::read_to_string(r.run_dir.join("report.html")).unwrap();
    // The two plots; the checker's timeline follows in an iframe.
    let (plots, timeline) = report.split_once("<iframe").expect("a timeline iframe");
    assert_eq!(plots.matches("<svg").count(), 2);
    assert!(timeline.contains(".srcdoc = \"<!DOCTYPE html>"));
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
