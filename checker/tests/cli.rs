//! The `checker` binary: exit codes, several files, JSON, limits.

mod common;

use common::{checker, code, s, stderr, write};
use raftkv_checker::generate::{GenOptions, kv_history, to_jsonl};

const GOOD: &str =
    "{\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"x\",\"value\":\"a\"}
{\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"set\",\"key\":\"x\",\"value\":\"a\"}
{\"time\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null}
{\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":\"a\"}
";

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", GOOD);
    let bad = write(
        dir.path(),
        "bad.jsonl",
        GOOD.replace(
            "\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":\"a\"",
            "\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":\"b\"",
        ),
    );
    let malformed = write(
        dir.path(),
        "malformed.jsonl",
        format!("{GOOD}{{\"time\":5,\"process\":2,\"type\":\"invoke\"}}\n"),
    );

    let o = checker(&["check", s(&good)]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("LINEARIZABLE"));

    let o = checker(&["check", s(&bad)]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("NOT LINEARIZABLE") && out.contains("cannot linearize"),
        "{out}"
    );

    let o = checker(&["check", s(&malformed)]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(err.contains("malformed.jsonl:5: expected"), "{err}");

    let o = checker(&["check", s(&dir.path().join("missing.jsonl"))]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.jsonl"));

    for args in [
        vec!["check", s(&good), "--model", "queue"],
        vec!["check", s(&good), "--format", "xml"],
        vec!["check", s(&good), "--time-limit", "soon"],
        vec!["check"],
        vec!["frobnicate"],
    ] {
        let o = checker(&args);
        assert_eq!(code(&o), 3, "{args:?}");
        assert!(!o.stderr.is_empty(), "{args:?} explains itself");
    }

    // Several files: one line each, a summary, the worst exit code.
    let o = checker(&["check", s(&good), s(&bad)]);
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 files: 1 linearizable, 1 not linearizable")
    );
    let o = checker(&["check", s(&good), s(&malformed), s(&bad)]);
    assert_eq!(code(&o), 3);

    // JSON.
    let o = checker(&["check", s(&bad), "--json"]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "not-linearizable");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["failure"]["key"], "x");
    assert_eq!(v["failure"]["op"]["f"], "get");
    assert_eq!(v["failure"]["op"]["process"], 1);

    // HTML.
    let html = dir.path().join("t.html");
    let o = checker(&["check", s(&bad), "--html", s(&html)]);
    assert_eq!(code(&o), 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("cannot be linearized"));
}

#[test]
fn limits_give_unknown() {
    let dir = tempfile::tempdir().unwrap();
    // One key, many concurrent processes: enough search work to hit a limit.
    let events = kv_history(&GenOptions {
        ops: 20_000,
        processes: 30,
        keys: 1,
        info_rate: 0.2,
        with_fail: true,
        seed: 7,
    });
    let big = write(dir.path(), "big.jsonl", to_jsonl(&events));
    let o = checker(&["check", s(&big), "--time-limit", "0s", "--json"]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "unknown");
    assert!(v["reason"].as_str().unwrap().contains("time limit"), "{v}");

    let o = checker(&["check", s(&big), "--memo-limit-mb", "0"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("memo memory limit"));

    // Spread over many keys the same number of ops is quick to decide.
    let events = kv_history(&GenOptions {
        ops: 20_000,
        processes: 30,
        keys: 200,
        info_rate: 0.2,
        with_fail: true,
        seed: 7,
    });
    let spread = write(dir.path(), "spread.jsonl", to_jsonl(&events));
    let o = checker(&["check", s(&spread), "--time-limit", "60s"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}
