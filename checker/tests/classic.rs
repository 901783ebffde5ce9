//! Hand-written good and bad histories for the classic cases.

use raftkv_checker::{CheckOptions, Verdict, check_text};

/// Builds JSONL from (time, process, type, f, key, value-json) rows.
fn jsonl(rows: &[(i64, i64, &str, &str, &str, &str)]) -> String {
    rows.iter()
        .enumerate()
        .map(|(i, (t, p, ty, f, k, v))| {
            format!(
                "{{\"index\":{i},\"time\":{t},\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"key\":\"{k}\",\"value\":{v}}}\n"
            )
        })
        .collect()
}

fn verdict(rows: &[(i64, i64, &str, &str, &str, &str)]) -> Verdict {
    check_text(&jsonl(rows), &CheckOptions::default())
        .unwrap()
        .verdict
}

#[test]
fn stale_read_after_a_completed_write_is_illegal() {
    let rows = [
        (10, 0, "invoke", "set", "x", "\"a\""),
        (20, 0, "ok", "set", "x", "\"a\""),
        (30, 1, "invoke", "set", "x", "\"b\""),
        (40, 1, "ok", "set", "x", "\"b\""),
        (50, 2, "invoke", "get", "x", "null"),
        (60, 2, "ok", "get", "x", "\"a\""),
    ];
    let out = check_text(&jsonl(&rows), &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    assert_eq!(out.exit_code(), 1);
    let f = out.failure.as_ref().unwrap();
    assert_eq!(f.key, "x");
    let op = &out.history.ops[f.op.unwrap()];
    assert_eq!((out.history.f(op), op.process), ("get", 2));
    assert_eq!(f.prefix, vec![0, 1]);
    assert_eq!(f.state.as_deref(), Some("\"b\""));
    assert!(
        out.summary()
            .contains("cannot linearize: op 2 process 2: get")
    );
}

#[test]
fn the_same_read_concurrent_with_the_write_is_legal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 0, "ok", "set", "x", "\"a\""),
            (30, 1, "invoke", "set", "x", "\"b\""),
            (50, 2, "invoke", "get", "x", "null"),
            (60, 2, "ok", "get", "x", "\"a\""),
            (70, 1, "ok", "set", "x", "\"b\""),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn read_of_a_value_never_written_is_illegal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 1, "invoke", "get", "x", "null"),
            (30, 1, "ok", "get", "x", "\"zzz\""),
            (40, 0, "ok", "set", "x", "\"a\""),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn acknowledged_write_never_seen_after_is_illegal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 0, "ok", "set", "x", "\"a\""),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "null"),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn info_write_that_shows_up_later_is_legal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 0, "info", "set", "x", "\"a\""),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "null"),
            (50, 1, "invoke", "get", "x", "null"),
            (60, 1, "ok", "get", "x", "\"a\""),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn invoke_without_completion_counts_as_info() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "\"a\""),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn info_write_never_seen_is_legal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 0, "info", "set", "x", "\"a\""),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "null"),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn failed_write_that_shows_up_is_illegal() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"a\""),
            (20, 0, "fail", "set", "x", "\"a\""),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "\"a\""),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn cas_that_applied_twice_is_illegal() {
    // Sequential: the second cas cannot find "0" any more.
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"0\""),
            (20, 0, "ok", "set", "x", "\"0\""),
            (30, 1, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (40, 1, "ok", "cas", "x", "[\"0\",\"1\"]"),
            (50, 2, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (60, 2, "ok", "cas", "x", "[\"0\",\"1\"]"),
        ]),
        Verdict::NotLinearizable
    );
    // Concurrent: still only one of them can apply.
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"0\""),
            (20, 0, "ok", "set", "x", "\"0\""),
            (30, 1, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (31, 2, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (40, 1, "ok", "cas", "x", "[\"0\",\"1\"]"),
            (60, 2, "ok", "cas", "x", "[\"0\",\"1\"]"),
        ]),
        Verdict::NotLinearizable
    );
    // One applied, the other failed: fine.
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "set", "x", "\"0\""),
            (20, 0, "ok", "set", "x", "\"0\""),
            (30, 1, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (31, 2, "invoke", "cas", "x", "[\"0\",\"1\"]"),
            (40, 1, "ok", "cas", "x", "[\"0\",\"1\"]"),
            (60, 2, "fail", "cas", "x", "[\"0\",\"1\"]"),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn cas_from_absent_uses_null() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "cas", "x", "[null,\"1\"]"),
            (20, 0, "ok", "cas", "x", "[null,\"1\"]"),
            (30, 1, "invoke", "get", "x", "null"),
            (40, 1, "ok", "get", "x", "\"1\""),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn keys_are_independent_and_the_failing_key_is_reported() {
    let mut rows = Vec::new();
    for k in 0..20 {
        let key: &'static str = Box::leak(format!("k{k}").into_boxed_str());
        let t = k as i64 * 100;
        rows.push((t + 1, 0, "invoke", "set", key, "\"a\""));
        rows.push((t + 2, 0, "ok", "set", key, "\"a\""));
        rows.push((t + 3, 1, "invoke", "get", key, "null"));
        let read = if k == 13 { "\"b\"" } else { "\"a\"" };
        rows.push((t + 4, 1, "ok", "get", key, read));
    }
    let out = check_text(&jsonl(&rows), &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    assert_eq!(out.failure.as_ref().unwrap().key, "k13");
    assert_eq!(out.partitions[0].label, "k13", "failing key first");
    assert_eq!(out.partitions.len(), 20);
    assert_eq!(out.failing_keys(), vec!["k13"]);
}

#[test]
fn all_failing_keys_can_be_listed() {
    let mut rows = Vec::new();
    for k in 0..30 {
        let key: &'static str = Box::leak(format!("k{k}").into_boxed_str());
        let t = k as i64 * 100;
        rows.push((t + 1, 0, "invoke", "set", key, "\"a\""));
        rows.push((t + 2, 0, "ok", "set", key, "\"a\""));
        rows.push((t + 3, 1, "invoke", "get", key, "null"));
        let read = if k % 10 == 3 { "\"b\"" } else { "\"a\"" };
        rows.push((t + 4, 1, "ok", "get", key, read));
    }
    let opts = CheckOptions {
        check_all_keys: true,
        ..CheckOptions::default()
    };
    let out = check_text(&jsonl(&rows), &opts).unwrap();
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    let mut keys = out.failing_keys();
    keys.sort();
    assert_eq!(keys, vec!["k13", "k23", "k3"]);
    assert_eq!(out.partitions_checked(), 30);
    assert!(out.summary().contains("3 keys not linearizable"));
    assert_eq!(out.to_json()["failing_keys"].as_array().unwrap().len(), 3);
}

#[test]
fn nemesis_events_are_ignored_by_the_check() {
    let text = "\
{\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":\"n1\"}
{\"time\":2,\"process\":0,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"x\",\"value\":1}
{\"time\":3,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"restart\",\"value\":\"n1\"}
{\"time\":4,\"process\":0,\"type\":\"ok\",\"f\":\"set\",\"key\":\"x\",\"value\":1}
{\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"noop\",\"value\":null}
{\"time\":6,\"process\":0,\"type\":\"ok\",\"f\":\"noop\",\"value\":null}
{\"time\":7,\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null}
{\"time\":8,\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":1}
";
    let out = check_text(text, &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::Linearizable);
    assert_eq!(out.history.nemesis.len(), 2);
    assert_eq!(out.history.ops.len(), 3);
}

#[test]
fn append_and_put() {
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "put", "x", "\"a\""),
            (20, 0, "ok", "put", "x", "\"a\""),
            (30, 1, "invoke", "append", "x", "\"b\""),
            (40, 1, "ok", "append", "x", "\"b\""),
            (50, 2, "invoke", "get", "x", "null"),
            (60, 2, "ok", "get", "x", "\"ab\""),
        ]),
        Verdict::Linearizable
    );
    assert_eq!(
        verdict(&[
            (10, 0, "invoke", "append", "x", "\"a\""),
            (20, 0, "ok", "append", "x", "\"a\""),
            (30, 1, "invoke", "append", "x", "\"b\""),
            (40, 1, "ok", "append", "x", "\"b\""),
            (50, 2, "invoke", "get", "x", "null"),
            (60, 2, "ok", "get", "x", "\"ba\""),
        ]),
        Verdict::NotLinearizable
    );
}

#[test]
fn long_single_key_histories_use_fingerprinted_memo() {
    use raftkv_checker::generate::{GenOptions, kv_history, to_jsonl};
    use raftkv_checker::{EventType, Val};
    // More ops on one key than the exact memo keeps.
    let mut events = kv_history(&GenOptions {
        ops: 6000,
        processes: 6,
        keys: 1,
        info_rate: 0.05,
        with_fail: true,
        seed: 11,
    });
    let out = check_text(&to_jsonl(&events), &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::Linearizable);
    assert!(out.partitions[0].op_ids.len() > raftkv_checker::search::EXACT_MEMO_MAX_OPS);
    // A read of a value never written, late in the history.
    let i = events
        .iter()
        .rposition(|e| e.kind == EventType::Ok && e.f == "get")
        .unwrap();
    events[i].value = Val::Str("never-written".into());
    let out = check_text(&to_jsonl(&events), &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    let f = out.failure.unwrap();
    assert_eq!(
        out.history.ops[f.op.unwrap()].invoke_line as usize,
        events[..i]
            .iter()
            .rposition(|e| e.process == events[i].process)
            .unwrap()
            + 1
    );
}

#[test]
fn two_identical_info_writes_can_both_take_effect() {
    // Reads see "a" before and after the write of "b": both pending writes
    // of "a" must take effect, one on each side of it.
    let mut rows = vec![
        (10, 0, "invoke", "set", "x", "\"a\""),
        (11, 1, "invoke", "set", "x", "\"a\""),
        (20, 2, "invoke", "get", "x", "null"),
        (30, 2, "ok", "get", "x", "\"a\""),
        (40, 3, "invoke", "set", "x", "\"b\""),
        (50, 3, "ok", "set", "x", "\"b\""),
        (60, 4, "invoke", "get", "x", "null"),
        (70, 4, "ok", "get", "x", "\"a\""),
        (80, 0, "info", "set", "x", "\"a\""),
        (81, 1, "info", "set", "x", "\"a\""),
    ];
    assert_eq!(verdict(&rows), Verdict::Linearizable);
    // With only one of them, the second read of "a" is stale.
    rows.retain(|r| r.1 != 1);
    assert_eq!(verdict(&rows), Verdict::NotLinearizable);
}
