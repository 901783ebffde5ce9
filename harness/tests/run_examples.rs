//! `harness check` on the stored example runs gives their recorded verdicts.

use std::path::Path;
use std::process::Command;

fn check(run: &str) -> (Option<i32>, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../histories/examples")
        .join(run);
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("check")
        .arg("--no-write")
        .arg(&dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn linearizable_example_passes() {
    let (code, out) = check("kill-linearizable");
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn ack_before_commit_example_fails_on_a_key() {
    let (code, out) = check("kill-ack-before-commit");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("NOT LINEARIZABLE") && out.contains("key k"),
        "{out}"
    );
}

#[test]
fn a_directory_without_history_is_a_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("history.jsonl"));
}
