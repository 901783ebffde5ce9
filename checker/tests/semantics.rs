//! Per-format semantics: what an ok read of nil means, and initial values.

use raftkv_checker::format::edn;
use raftkv_checker::{CheckError, CheckOptions, ModelKind, NilRead, Val, Verdict, check_text};

fn check(text: &str, opts: &CheckOptions) -> raftkv_checker::Outcome {
    check_text(text, opts).unwrap()
}

/// Write 1, then a read that returned nil, then a read of 0: in Knossos's
/// models the nil read is legal (the value is unknown) and the read of 0 is
/// the violation.
const NIL_THEN_STALE: &str = "[{:process 0 :type :invoke :f :write :value 1}
 {:process 0 :type :ok :f :write :value 1}
 {:process 1 :type :invoke :f :read :value nil}
 {:process 1 :type :ok :f :read :value nil}
 {:process 2 :type :invoke :f :read :value nil}
 {:process 2 :type :ok :f :read :value 0}]";

#[test]
fn edn_nil_read_is_unknown_and_the_real_violation_is_named() {
    let opts = CheckOptions {
        initial: Some(Val::Int(0)),
        ..CheckOptions::default()
    };
    let out = check(NIL_THEN_STALE, &opts);
    assert_eq!(out.nil_read, NilRead::Unknown);
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    let op = &out.history.ops[out.failure.as_ref().unwrap().op.unwrap()];
    assert_eq!(
        (op.process, out.history.output(op)),
        (2, Val::Int(0)),
        "{}",
        out.summary()
    );
    assert!(out.summary().contains("nil reads unknown"));

    // Without the stale read the history is linearizable.
    let legal = NIL_THEN_STALE.replace(":value 0}]", ":value 1}]");
    assert_eq!(check(&legal, &opts).verdict, Verdict::Linearizable);

    // Told that nil means absent, the nil read itself is the violation.
    let absent = CheckOptions {
        nil_read: Some(NilRead::Absent),
        ..opts
    };
    let out = check(&legal, &absent);
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    let op = &out.history.ops[out.failure.as_ref().unwrap().op.unwrap()];
    assert_eq!((op.process, out.history.output(op)), (1, Val::Nil));
}

#[test]
fn jsonl_nil_read_means_absent_unless_told() {
    let text = r#"{"process":0,"type":"invoke","f":"set","key":"x","value":"a"}
{"process":0,"type":"ok","f":"set","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"get","key":"x","value":null}
{"process":1,"type":"ok","f":"get","key":"x","value":null}
"#;
    let out = check(text, &CheckOptions::default());
    assert_eq!(out.nil_read, NilRead::Absent);
    assert_eq!(out.verdict, Verdict::NotLinearizable);
    let unknown = CheckOptions {
        nil_read: Some(NilRead::Unknown),
        ..CheckOptions::default()
    };
    assert_eq!(check(text, &unknown).verdict, Verdict::Linearizable);
}

#[test]
fn multi_register_nil_read_in_a_txn_is_unknown() {
    let text = "[{:process 0 :type :invoke :f :txn :value [[:write :x 1]]}
 {:process 0 :type :ok :f :txn :value [[:write :x 1]]}
 {:process 1 :type :invoke :f :txn :value [[:read :x nil] [:read :y nil]]}
 {:process 1 :type :ok :f :txn :value [[:read :x nil] [:read :y nil]]}]";
    assert_eq!(
        check(text, &CheckOptions::default()).verdict,
        Verdict::Linearizable
    );
    let absent = CheckOptions {
        nil_read: Some(NilRead::Absent),
        ..CheckOptions::default()
    };
    assert_eq!(check(text, &absent).verdict, Verdict::NotLinearizable);
}

/// Registers x and y, read without any write: legal only if each starts at
/// the value read.
const READ_XY: &str = "[{:process 0 :type :invoke :f :txn :value [[:read :x nil] [:read :y nil]]}
 {:process 0 :type :ok :f :txn :value [[:read :x 0] [:read :y 1]]}]";

#[test]
fn multi_register_initial_map_gives_each_register_its_value() {
    let with = |initial: &str| CheckOptions {
        initial: Some(edn::parse_value(initial).unwrap()),
        ..CheckOptions::default()
    };
    let json = |initial: &str| CheckOptions {
        initial: Some(Val::from_json(&serde_json::from_str(initial).unwrap())),
        ..CheckOptions::default()
    };
    assert_eq!(
        check(READ_XY, &with("{:x 0 :y 1}")).verdict,
        Verdict::Linearizable
    );
    assert_eq!(
        check(READ_XY, &json(r#"{"x":0,"y":1}"#)).verdict,
        Verdict::Linearizable
    );
    assert_eq!(
        check(READ_XY, &with("{:x 0 :y 0}")).verdict,
        Verdict::NotLinearizable
    );
    // A register missing from the map starts nil.
    assert_eq!(
        check(READ_XY, &with("{:x 0}")).verdict,
        Verdict::NotLinearizable
    );
    assert_eq!(
        check(&READ_XY.replace(":y 1]", ":y nil]"), &with("{:x 0}")).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn kv_initial_map_gives_each_key_its_value() {
    let text = r#"{"process":0,"type":"invoke","f":"get","key":"x","value":null}
{"process":0,"type":"ok","f":"get","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"get","key":"y","value":null}
{"process":1,"type":"ok","f":"get","key":"y","value":null}
"#;
    let opts = CheckOptions {
        initial: Some(edn::parse_value("{:x \"a\"}").unwrap()),
        ..CheckOptions::default()
    };
    assert_eq!(check(text, &opts).verdict, Verdict::Linearizable);
    assert_eq!(
        check(text, &CheckOptions::default()).verdict,
        Verdict::NotLinearizable
    );
}

#[test]
fn register_initial_map_is_one_value_and_mutex_refuses_an_initial() {
    let text = "[{:process 0 :type :invoke :f :read :value nil}
 {:process 0 :type :ok :f :read :value {:a 1}}]";
    let opts = CheckOptions {
        model: ModelKind::CasRegister,
        initial: Some(edn::parse_value("{:a 1}").unwrap()),
        ..CheckOptions::default()
    };
    assert_eq!(check(text, &opts).verdict, Verdict::Linearizable);
    let mutex = "[{:process 0 :type :invoke :f :acquire} {:process 0 :type :ok :f :acquire}]";
    let opts = CheckOptions {
        initial: Some(Val::Int(0)),
        ..CheckOptions::default()
    };
    match check_text(mutex, &opts) {
        Err(CheckError::Usage(m)) => assert!(m.contains("mutex"), "{m}"),
        other => panic!("{other:?}"),
    }
}
