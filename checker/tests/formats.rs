//! Other formats and models, and errors naming the line.

use raftkv_checker::{CheckError, CheckOptions, Format, ModelKind, Val, Verdict, check_text};

fn check(text: &str) -> raftkv_checker::Outcome {
    check_text(text, &CheckOptions::default()).unwrap()
}

fn parse_error(text: &str) -> (usize, String) {
    match check_text(text, &CheckOptions::default()) {
        Err(CheckError::Parse { line, expected, .. }) => (line, expected),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

const KNOSSOS_CAS: &str = r#"; a Knossos-style cas-register history
[{:type :invoke, :f :write, :value 1, :process 0, :time 10}
 {:type :ok, :f :write, :value 1, :process 0, :time 20}
 {:type :invoke, :f :nemesis-start, :process :nemesis, :time 25,
  :value nil}
 {:type :invoke, :f :cas, :value [1 4], :process 1, :time 30}
 {:type :invoke, :f :read, :value nil, :process 2,
  :time 40}
 {:type :ok, :f :cas, :value [1 4], :process 1, :time 50}
 {:type :ok, :f :read, :value 4, :process 2, :time 60}
 {:type :invoke, :f :cas, :value [1 5], :process 1, :time 70}
 {:type :fail, :f :cas, :value [1 5], :process 1, :time 80}]
"#;

#[test]
fn knossos_edn_cas_register() {
    let out = check(KNOSSOS_CAS);
    assert_eq!(out.format, Format::Edn);
    assert_eq!(out.model, ModelKind::CasRegister);
    assert_eq!(out.verdict, Verdict::Linearizable);
    assert_eq!(out.history.nemesis.len(), 1);
    // Reading 1 after the cas to 4 completed is illegal.
    let bad = KNOSSOS_CAS.replace(
        ":process 1, :time 80}]",
        ":process 1, :time 80}\n {:type :invoke, :f :read, :process 2, :time 90}\n {:type :ok, :f :read, :value 1, :process 2, :time 95}]",
    );
    assert_eq!(check(&bad).verdict, Verdict::NotLinearizable);
}

#[test]
fn knossos_initial_value() {
    let text =
        "[{:type :invoke, :f :read, :process 0} {:type :ok, :f :read, :value 0, :process 0}]";
    assert_eq!(check(text).verdict, Verdict::NotLinearizable);
    let opts = CheckOptions {
        initial: Some(Val::Int(0)),
        ..CheckOptions::default()
    };
    assert_eq!(
        check_text(text, &opts).unwrap().verdict,
        Verdict::Linearizable
    );
}

#[test]
fn porcupine_kv_lines() {
    let text = r#"{:process 0, :type :invoke, :f :put, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 0, :type :ok, :f :put, :key "0", :value "x 0 0 y"}
{:process 1, :type :ok, :f :get, :key "0", :value ""}
{:process 2, :type :invoke, :f :append, :key "0", :value "x 2 0 y"}
{:process 2, :type :ok, :f :append, :key "0", :value "x 2 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 yx 2 0 y"}
{:process 1, :type :invoke, :f :get, :key "1", :value nil}
{:process 1, :type :ok, :f :get, :key "1", :value ""}
"#;
    let out = check(text);
    assert_eq!(out.format, Format::PorcupineKv);
    assert_eq!(out.model, ModelKind::Kv);
    assert_eq!(out.verdict, Verdict::Linearizable);
    assert_eq!(out.partitions.len(), 2);
    let bad = text.replace("\"x 0 0 yx 2 0 y\"", "\"x 2 0 yx 0 0 y\"");
    assert_eq!(check(&bad).verdict, Verdict::NotLinearizable);
}

const JEPSEN_LOG: &str = "\
2017-01-01 00:00:00,000{GMT}\tINFO\t[main] jepsen.core - Running test
INFO  jepsen.util - 2\t:invoke\t:write\t4
INFO  jepsen.util - 2\t:ok\t:write\t4
INFO  jepsen.util - :nemesis\t:info\t:start\tCut off {:n1 #{:n2}}
INFO  jepsen.util - 3\t:invoke\t:cas\t[4 0]
INFO  jepsen.util - 1   :invoke   :read   nil
INFO  jepsen.util - 1   :ok   :read   4
INFO  jepsen.util - 3\t:info\t:cas\t:timed-out
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:read\t0
";

#[test]
fn jepsen_console_log() {
    let out = check(JEPSEN_LOG);
    assert_eq!(out.format, Format::JepsenLog);
    assert_eq!(out.model, ModelKind::CasRegister);
    assert_eq!(out.verdict, Verdict::Linearizable, "{}", out.summary());
    assert_eq!(out.history.nemesis.len(), 1);
    let bad = JEPSEN_LOG.replace(":ok\t:read\t0", ":ok\t:read\t7");
    assert_eq!(check(&bad).verdict, Verdict::NotLinearizable);
}

#[test]
fn mutex_model() {
    let good = "[{:process 0 :type :invoke :f :acquire} {:process 0 :type :ok :f :acquire}
 {:process 1 :type :invoke :f :acquire} {:process 0 :type :invoke :f :release}
 {:process 0 :type :ok :f :release} {:process 1 :type :ok :f :acquire}]";
    let out = check(good);
    assert_eq!(out.model, ModelKind::Mutex);
    assert_eq!(out.verdict, Verdict::Linearizable);
    let bad = "[{:process 0 :type :invoke :f :acquire} {:process 0 :type :ok :f :acquire}
 {:process 1 :type :invoke :f :acquire} {:process 1 :type :ok :f :acquire}]";
    assert_eq!(check(bad).verdict, Verdict::NotLinearizable);
}

#[test]
fn multi_register_model() {
    let good = "[{:process 0 :type :invoke :f :txn :value [[:write :x 1] [:write :y 2]]}
 {:process 0 :type :ok :f :txn :value [[:write :x 1] [:write :y 2]]}
 {:process 1 :type :invoke :f :txn :value [[:read :x nil] [:read :y nil]]}
 {:process 1 :type :ok :f :txn :value [[:read :x 1] [:read :y 2]]}
 {:process 2 :type :invoke :f :txn :value [[:read :z nil]]}
 {:process 2 :type :ok :f :txn :value [[:read :z nil]]}]";
    let out = check(good);
    assert_eq!(out.model, ModelKind::MultiRegister);
    assert_eq!(out.verdict, Verdict::Linearizable);
    assert_eq!(out.partitions.len(), 2, "x,y together; z alone");
    // A torn read: x new, y old (both start at 0; a read of nil would mean
    // "unknown" in Knossos's model).
    let bad = good.replace("[[:read :x 1] [:read :y 2]]", "[[:read :x 1] [:read :y 0]]");
    let opts = CheckOptions {
        initial: Some(Val::Int(0)),
        ..CheckOptions::default()
    };
    assert_eq!(
        check_text(&bad, &opts).unwrap().verdict,
        Verdict::NotLinearizable
    );
}

#[test]
fn format_can_be_forced() {
    let opts = CheckOptions {
        format: Format::Jsonl,
        ..CheckOptions::default()
    };
    match check_text(KNOSSOS_CAS, &opts) {
        Err(CheckError::Parse { line, .. }) => assert_eq!(line, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_jsonl_names_the_line_and_what_was_expected() {
    let ok = "{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null}\n";
    let (line, msg) = parse_error(&format!(
        "{ok}{{\"process\":0,\"type\":\"done\",\"f\":\"get\"}}\n"
    ));
    assert_eq!(line, 2);
    assert!(
        msg.contains("\"type\" to be one of invoke, ok, fail, info"),
        "{msg}"
    );

    let (line, msg) = parse_error(&format!(
        "{ok}\n{{\"process\":0,\"type\":\"ok\",\"f\":\"get\"\n"
    ));
    assert_eq!(line, 3);
    assert!(msg.contains("a JSON object"), "{msg}");

    let (line, msg) = parse_error(&format!(
        "{ok}{{\"process\":1,\"type\":\"ok\",\"f\":\"get\",\"key\":\"x\"}}\n"
    ));
    assert_eq!(line, 2);
    assert!(msg.contains("an invoke by process 1"), "{msg}");

    let (line, msg) = parse_error(&format!("{ok}{ok}"));
    assert_eq!(line, 2);
    assert!(msg.contains("completion"), "{msg}");

    let (line, msg) = parse_error(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"x\",\"value\":1}\n",
    );
    assert_eq!(line, 1);
    assert!(msg.contains("[expected, new]"), "{msg}");

    let (line, msg) =
        parse_error("{\"process\":0,\"type\":\"invoke\",\"f\":\"frob\",\"key\":\"x\"}\n");
    assert_eq!(line, 1);
    assert!(msg.contains("frob"), "{msg}");

    let (line, msg) = parse_error("{\"format\":\"raftkv-history\",\"version\":9}\n");
    assert_eq!(line, 1);
    assert!(msg.contains("version"), "{msg}");

    let (line, msg) = parse_error(&format!(
        "{ok}{{\"process\":\"nemesis2\",\"type\":\"info\"}}\n"
    ));
    assert_eq!(line, 2);
    assert!(msg.contains("\"process\""), "{msg}");
}

#[test]
fn malformed_edn_names_the_line() {
    let (line, msg) = parse_error(
        "[{:type :invoke, :f :read, :process 0}\n {:type :ok, :f :read\n  :process 0, :value}\n]",
    );
    assert_eq!(line, 2);
    assert!(msg.contains("even number"), "{msg}");
    let (line, msg) = parse_error(
        "[{:type :invoke, :f :read, :process 0}\n {:type :bogus, :f :read, :process 0}]",
    );
    assert_eq!(line, 2);
    assert!(msg.contains(":type"), "{msg}");
    let (line, _) = parse_error(
        "[{:type :invoke, :f :read, :process 0}\n\n {:type :ok, :f :read, :process 0 :value \"x}]",
    );
    assert_eq!(line, 3);
    let (line, msg) = parse_error("[{:type :invoke, :f :read, :process 0}\n");
    assert_eq!(line, 1);
    assert!(msg.contains("closing"), "{msg}");
}

#[test]
fn malformed_jepsen_log_names_the_line() {
    let (line, msg) = parse_error(
        "INFO jepsen.util - 1\t:invoke\t:read\tnil\nINFO jepsen.util - x\t:ok\t:read\t3\n",
    );
    assert_eq!(line, 2);
    assert!(msg.contains("process number"), "{msg}");
}

#[test]
fn large_jsonl_is_parsed_in_chunks_with_correct_line_numbers() {
    use raftkv_checker::generate::{GenOptions, kv_history, to_jsonl};
    let events = kv_history(&GenOptions {
        ops: 40_000,
        processes: 16,
        keys: 50,
        info_rate: 0.05,
        with_fail: true,
        seed: 3,
    });
    let text = format!(
        "{{\"format\":\"raftkv-history\",\"version\":1}}\n{}",
        to_jsonl(&events)
    );
    assert!(text.len() > 4 << 20, "big enough to be split");
    let out = check(&text);
    assert_eq!(out.history.events, events.len());
    assert_eq!(out.verdict, Verdict::Linearizable);
    // Every op's invoke line points at its invoke event.
    let lines: Vec<&str> = text.lines().collect();
    for op in out.history.ops.iter().step_by(997) {
        assert!(
            lines[op.invoke_line as usize - 1].contains("\"invoke\""),
            "line {}",
            op.invoke_line
        );
    }
    // Break a line late in the file: the error names it.
    let mut broken: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let at = broken.len() - 1234;
    broken[at] = "{\"process\":1,\"type\":\"invoke\"".to_string();
    let (line, _) = parse_error(&(broken.join("\n") + "\n"));
    assert_eq!(line, at + 1);
}
