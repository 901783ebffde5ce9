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

/// Runs `harness check` on a copy of example `name` placed at the same
/// relative path under a temporary directory (the report names its
/// history by that path), and returns its output and the report it wrote.
fn check_copy(name: &str) -> (String, Vec<u8>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../histories/examples")
        .join(name);
    let root = tempfile::tempdir().unwrap();
    let rel = Path::new("histories/examples").join(name);
    let dst = root.path().join(&rel);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("check")
        .arg(&rel)
        .current_dir(root.path())
        .output()
        .unwrap();
    let report = std::fs::read(dst.join("report.html")).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), report)
}

/// `harness check` says the same and writes the same report every time,
/// and the committed reports are what it writes now. After a change to the
/// report, regenerate them from the repository root with
/// `harness check histories/examples/NAME`.
#[test]
fn example_reports_are_current_and_the_same_every_time() {
    for name in ["kill-linearizable", "kill-ack-before-commit"] {
        let committed = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../histories/examples")
                .join(name)
                .join("report.html"),
        )
        .unwrap();
        let (out, report) = check_copy(name);
        for _ in 0..3 {
            let again = check_copy(name);
            assert_eq!(again.0, out, "{name}: output differs between runs");
            assert!(again.1 == report, "{name}: report differs between runs");
        }
        assert!(
            report == committed,
            "{name}: the committed report.html is stale; regenerate it with `harness check histories/examples/{name}`"
        );
    }
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
