//! Hostile and degenerate input: every file gives a verdict or exit 3 with
//! `FILE:LINE: expected ...`, never a crash.

mod common;

use common::{checker, code, s, stderr, write};
use raftkv_checker::generate::{GenOptions, Rng, kv_history, to_jsonl};
use raftkv_checker::{CheckError, CheckOptions, Format, check_text};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

const BAD: &str = r#"{"process":0,"type":"invoke","f":"set","key":"x","value":"a"}
{"process":0,"type":"ok","f":"set","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"get","key":"x","value":null}
{"process":1,"type":"ok","f":"get","key":"x","value":"b"}
"#;

fn deep(n: usize) -> String {
    "[".repeat(n) + &"]".repeat(n)
}

#[test]
fn deep_nesting_is_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let nested = deep(10_000);
    for (name, text, at) in [
        (
            "deep.edn",
            nested.clone(),
            "deep.edn:1: expected forms nested at most",
        ),
        (
            "deep.log",
            format!(
                "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t{nested}\n"
            ),
            "deep.log:2: expected",
        ),
        (
            "deep.jsonl",
            format!(
                "{{\"process\":0,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"x\",\"value\":{nested}}}\n"
            ),
            "deep.jsonl:1: expected",
        ),
    ] {
        let o = checker(&["check", s(&write(dir.path(), name, text))]);
        assert_eq!(code(&o), 3, "{name}");
        assert!(stderr(&o).contains(at), "{name}: {}", stderr(&o));
    }
    let good = write(dir.path(), "bad.jsonl", BAD);
    let o = checker(&["check", s(&good), "--initial", &deep(10_000)]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(
        err.contains("--initial: expected a JSON or EDN value") && err.len() < 1000,
        "{err}"
    );
}

#[test]
fn huge_time_limits_mean_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.jsonl", BAD);
    for limit in ["10000000000000000000", "1e20", "1e20s", "inf"] {
        for flag in ["--time-limit", "--explain-time-limit"] {
            let o = checker(&["check", s(&bad), flag, limit]);
            assert_eq!(code(&o), 1, "{flag} {limit}: {}", stderr(&o));
            assert!(String::from_utf8_lossy(&o.stdout).contains("cannot linearize"));
        }
    }
    for limit in ["-1s", "nan", "soon", "5 parsecs"] {
        let o = checker(&["check", s(&bad), &format!("--time-limit={limit}")]);
        assert_eq!(code(&o), 3, "{limit}");
        assert!(
            stderr(&o).contains("--time-limit: expected"),
            "{}",
            stderr(&o)
        );
    }
    // The library takes any Duration.
    let opts = CheckOptions {
        time_limit: Some(Duration::MAX),
        explain_time_limit: Duration::MAX,
        ..CheckOptions::default()
    };
    assert!(check_text(BAD, &opts).unwrap().failure.unwrap().complete);
}

#[test]
fn empty_histories_do_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, line) in [
        ("empty.jsonl", "", 1),
        ("blank.jsonl", "\n\n  \n", 4),
        (
            "header.jsonl",
            "{\"format\":\"raftkv-history\",\"version\":1}\n",
            2,
        ),
        (
            "nemesis.jsonl",
            "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":\"n1\"}\n",
            2,
        ),
        ("empty.edn", "[]\n", 2),
    ] {
        let p = write(dir.path(), name, text);
        let o = checker(&["check", s(&p)]);
        assert_eq!(code(&o), 3, "{name}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "{name}:{line}: expected at least one client operation"
            )),
            "{name}: {err}"
        );
    }
}

/// Every op failed or timed out: trivially linearizable, so "unknown"
/// (exit 2), not a pass.
#[test]
fn a_history_in_which_nothing_succeeded_does_not_pass() {
    let text = r#"{"process":0,"type":"invoke","f":"set","key":"x","value":"a"}
{"process":0,"type":"fail","f":"set","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"get","key":"x","value":null}
{"process":1,"type":"info","f":"get","key":"x","value":null}
{"process":2,"type":"invoke","f":"set","key":"x","value":"b"}
"#;
    let out = check_text(text, &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, raftkv_checker::Verdict::Unknown);
    assert_eq!(out.exit_code(), 2);
    let reason = out.reason.unwrap();
    assert!(
        reason.contains("no operation completed ok (3 invoked: 1 failed, 2 indeterminate)"),
        "{reason}"
    );
    // Asked to, it passes, as in Knossos.
    let lenient = CheckOptions {
        require_ok: false,
        ..CheckOptions::default()
    };
    assert_eq!(check_text(text, &lenient).unwrap().exit_code(), 0);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "failed.jsonl", text);
    assert_eq!(code(&checker(&["check", s(&path)])), 2);
    assert_eq!(code(&checker(&["check", s(&path), "--allow-no-ok"])), 0);
    // One ok op is enough to be checked.
    let one = format!(
        "{text}{{\"process\":2,\"type\":\"ok\",\"f\":\"set\",\"key\":\"x\",\"value\":\"b\"}}\n"
    );
    assert_eq!(
        check_text(&one, &CheckOptions::default())
            .unwrap()
            .exit_code(),
        0
    );
}

#[test]
fn unclear_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A byte-order mark is skipped.
    let bom = write(dir.path(), "bom.jsonl", format!("\u{feff}{BAD}"));
    assert_eq!(code(&checker(&["check", s(&bom)])), 1);

    let array = write(
        dir.path(),
        "array.json",
        "[{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null},\n {\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\",\"value\":null}]\n",
    );
    for args in [
        vec!["check", s(&array)],
        vec!["check", s(&array), "--format", "jsonl"],
    ] {
        let o = checker(&args);
        assert_eq!(code(&o), 3);
        assert!(
            stderr(&o).contains(
                "array.json:1: expected JSON Lines (one event object per line), found a JSON array"
            ),
            "{}",
            stderr(&o)
        );
    }

    for (line, want) in [
        (
            "INFO  jepsen.util - 1\t:ok",
            "found 2 of the first 3 fields (truncated line?)",
        ),
        (
            "INFO  jepsen.util - 1\t:ok\t:read\t[1 2",
            "a closing ']' for the form opened here, found the end of the input (truncated?)",
        ),
        ("INFO  jepsen.util - 1\t:ok\t:read\t\"abc", "a closing '\"'"),
    ] {
        let log = write(
            dir.path(),
            "trunc.log",
            format!("INFO  jepsen.util - 1\t:invoke\t:read\tnil\n{line}\n"),
        );
        let o = checker(&["check", s(&log)]);
        assert_eq!(code(&o), 3, "{line}");
        assert!(
            stderr(&o).contains("trunc.log:2: expected") && stderr(&o).contains(want),
            "{line}: {}",
            stderr(&o)
        );
    }

    // Bytes that are not UTF-8, in our JSON Lines and in EDN.
    let mut bytes = BAD.as_bytes().to_vec();
    let at = BAD.find("\"b\"").unwrap() + 1;
    bytes[at] = 0xff;
    let bad_utf8 = write(dir.path(), "bytes.jsonl", &bytes);
    let o = checker(&["check", s(&bad_utf8)]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("bytes.jsonl:4: expected UTF-8 text"),
        "{}",
        stderr(&o)
    );
    let edn = write(
        dir.path(),
        "bytes.edn",
        b"[{:process 0 :type :invoke\n :f :read :value \"\xff\"}]",
    );
    let o = checker(&["check", s(&edn)]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("bytes.edn:2: expected UTF-8 text"),
        "{}",
        stderr(&o)
    );

    let proc = write(
        dir.path(),
        "proc.jsonl",
        "{\"process\":1.5,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null}\n",
    );
    let o = checker(&["check", s(&proc)]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(
            "proc.jsonl:1: expected \"process\" to be an integer or \"nemesis\", found 1.5"
        ),
        "{}",
        stderr(&o)
    );
    let proc = write(
        dir.path(),
        "proc.edn",
        "[{:process 1.5 :type :invoke :f :read}]",
    );
    let o = checker(&["check", s(&proc)]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o)
            .contains("proc.edn:1: expected :process to be an integer or :nemesis, found 1.5"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn huge_values_are_shortened_in_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(10 << 20);
    let text = BAD.replace("\"value\":\"a\"", &format!("\"value\":\"{big}\""));
    let path = write(dir.path(), "big.jsonl", text);
    let html = dir.path().join("big.html");
    let o = checker(&["check", s(&path), "--html", s(&html)]);
    assert_eq!(code(&o), 1);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.len() < 20_000, "{} bytes of text", stdout.len());
    assert!(
        stdout.contains(&format!("… ({} bytes)", big.len() + 2)),
        "{stdout}"
    );
    let page = std::fs::metadata(&html).unwrap().len();
    assert!(page < 200_000, "{page} bytes of HTML");
}

#[test]
fn a_closed_stdout_is_no_crash() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.jsonl", BAD);
    // A pipe whose read end is closed: every write fails with EPIPE.
    let (read, write_end): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    drop(read);
    let status = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(["check", s(&bad)])
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

/// Random damage to valid histories of every format: each gives a verdict
/// or a parse error naming a line of the input, never a panic.
#[test]
fn parsers_survive_damaged_histories() {
    let mut rng = Rng::new(99);
    let jsonl = to_jsonl(&kv_history(&GenOptions {
        ops: 12,
        processes: 3,
        keys: 2,
        ..GenOptions::default()
    }));
    let edn = "[{:process 0 :type :invoke :f :write :value 1}\n {:process 0 :type :ok :f :write :value 1}\n {:process 1 :type :invoke :f :cas :value [1 2]}\n {:process 1 :type :ok :f :cas :value [1 2]}\n {:process 2 :type :invoke :f :txn :value [[:read :x nil]]}]\n";
    let log = "INFO  jepsen.util - 2\t:invoke\t:write\t4\nINFO  jepsen.util - 2\t:ok\t:write\t4\nINFO  jepsen.util - 3\t:invoke\t:cas\t[4 0]\nINFO  jepsen.util - 3\t:info\t:cas\t:timed-out\n";
    let kv = "{:process 0, :type :invoke, :f :put, :key \"0\", :value \"x\"}\n{:process 0, :type :ok, :f :put, :key \"0\", :value \"x\"}\n{:process 1, :type :invoke, :f :get, :key \"0\", :value nil}\n{:process 1, :type :ok, :f :get, :key \"0\", :value \"x\"}\n";
    let pieces: [&[u8]; 12] = [
        b"[",
        b"]",
        b"{",
        b"}",
        b"\"",
        b"\n",
        b":",
        b",",
        b"nil",
        b"\\",
        b"#_",
        b"\xef\xbb\xbf",
    ];
    let formats = [
        Format::Auto,
        Format::Jsonl,
        Format::Edn,
        Format::PorcupineKv,
        Format::JepsenLog,
    ];
    let (mut verdicts, mut errors) = (0, 0);
    for case in 0..4000 {
        let base = [jsonl.as_str(), edn, log, kv][case % 4];
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(5) {
                0 => bytes.truncate(at),
                1 => {
                    let end = (at + rng.below(20) as usize).min(bytes.len());
                    bytes.drain(at..end);
                }
                2 => {
                    let p = pieces[rng.below(pieces.len() as u64) as usize];
                    let times = if rng.chance(0.1) { 300 } else { 1 };
                    for _ in 0..times {
                        bytes.splice(at..at, p.iter().copied());
                    }
                }
                3 => bytes.insert(at, rng.below(256) as u8),
                _ => {
                    let line = base.lines().nth(rng.below(3) as usize).unwrap_or("");
                    bytes.splice(at..at, line.bytes().chain([b'\n']));
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let opts = CheckOptions {
            format: if rng.chance(0.5) {
                Format::Auto
            } else {
                formats[rng.below(formats.len() as u64) as usize]
            },
            time_limit: Some(Duration::from_secs(5)),
            ..CheckOptions::default()
        };
        match check_text(&text, &opts) {
            Ok(_) => verdicts += 1,
            Err(CheckError::Parse { line, expected, .. }) => {
                errors += 1;
                assert!(
                    line >= 1 && line <= text.lines().count() + 1,
                    "case {case}: line {line} of {}: {expected}\n{text}",
                    text.lines().count()
                );
            }
            Err(CheckError::Usage(m)) => panic!("case {case}: usage error {m} for input\n{text}"),
            Err(e) => panic!("case {case}: {e}"),
        }
    }
    assert!(
        verdicts > 200 && errors > 1000,
        "verdicts {verdicts}, errors {errors}"
    );
}
