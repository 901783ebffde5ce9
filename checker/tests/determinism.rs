//! The report is a function of the history: the same file gives the same
//! text, JSON and timeline page, byte for byte, for every run and thread
//! count, also when several keys fail and the search stops early.

mod common;

use common::{checker, code, s, stderr, write};

/// A generated history with a read on each of `bad` keys changed to return
/// a value nobody wrote, `at` of the way through that key's reads.
fn history_with_bad_reads(bad: &[&str], at: f64) -> String {
    let o = checker(&[
        "generate",
        "--ops",
        "30000",
        "--processes",
        "12",
        "--keys",
        "8",
        "--seed",
        "5",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for key in bad {
        let reads: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.contains("\"type\":\"ok\",\"f\":\"get\"")
                    && l.contains(&format!("\"key\":\"{key}\""))
                    && !l.contains("\"value\":null")
            })
            .map(|(i, _)| i)
            .collect();
        assert!(reads.len() > 10, "key {key} has {} reads", reads.len());
        let i = reads[(reads.len() as f64 * at) as usize];
        let v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        let mut v = v.as_object().unwrap().clone();
        v.insert("value".into(), "never-written".into());
        lines[i] = serde_json::to_string(&v).unwrap();
    }
    lines.join("\n") + "\n"
}

/// The keys of a history in order of first use.
fn first_use(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(k) = v["key"].as_str()
            && !keys.iter().any(|x| x == k)
        {
            keys.push(k.to_string());
        }
    }
    keys
}

/// Runs `checker check` with `args` over `threads` and returns stdout and
/// the page written by `--html`.
fn run(file: &str, html: &std::path::Path, threads: usize, args: &[&str]) -> (i32, String, String) {
    let t = threads.to_string();
    let mut all = vec!["check", file, "--threads", &t, "--html", s(html)];
    all.extend_from_slice(args);
    let o = checker(&all);
    let page = std::fs::read_to_string(html).unwrap();
    (code(&o), String::from_utf8(o.stdout).unwrap(), page)
}

fn assert_same_for_all_threads(text: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", text);
    let html = dir.path().join("t.html");
    let first = run(s(&file), &html, 1, args);
    for threads in [2, 3, 4, 8, 1, 2, 4, 16, 3, 2] {
        let again = run(s(&file), &html, threads, args);
        assert_eq!(again.0, first.0, "exit code with {threads} threads");
        assert_eq!(
            again.1, first.1,
            "output with {threads} threads differs from 1 thread's"
        );
        assert!(again.2 == first.2, "page with {threads} threads differs");
    }
    first.1
}

#[test]
fn several_failing_keys_give_one_report() {
    let text = history_with_bad_reads(&["k6", "k2", "k5"], 0.6);
    let out = assert_same_for_all_threads(&text, &[]);
    assert!(out.contains("NOT LINEARIZABLE"), "{out}");
    // The key reported is the first failing one in partition order (keys
    // in order of first use), not the first one a thread happened to finish.
    let first_bad = first_use(&text)
        .into_iter()
        .find(|k| ["k6", "k2", "k5"].contains(&k.as_str()))
        .unwrap();
    let first_line = out.lines().next().unwrap();
    assert!(first_line.ends_with(&format!("; key {first_bad}")), "{out}");
    let json = assert_same_for_all_threads(&text, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert!(v.get("decide_ms").is_none(), "times are left out: {v}");
}

#[test]
fn all_keys_lists_every_failing_key_in_the_same_order() {
    let text = history_with_bad_reads(&["k6", "k2", "k5"], 0.3);
    let out = assert_same_for_all_threads(&text, &["--all-keys"]);
    assert!(
        out.contains("3 keys not linearizable"),
        "every bad key found: {out}"
    );
}

#[test]
fn linearizable_history_gives_one_report() {
    let text = history_with_bad_reads(&[], 0.0);
    let out = assert_same_for_all_threads(&text, &[]);
    assert!(
        out.contains("LINEARIZABLE (kv model, 30000 ops, 8 of 8 keys decided)"),
        "{out}"
    );
}

#[test]
fn timings_are_printed_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", history_with_bad_reads(&["k1"], 0.5));
    let o = checker(&["check", s(&file), "--timings"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("decided in") && out.contains("memo peak"),
        "{out}"
    );
    let o = checker(&["check", s(&file), "--json", "--timings"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["timings"]["decide_ms"].as_f64().is_some(), "{v}");
}
