//! Randomised cross-check: the search and the brute-force reference must
//! agree on many small perturbed histories.

use raftkv_checker::generate::{GenOptions, Rng, kv_history, repeat_a_written_value};
use raftkv_checker::{
    CheckOptions, Event, EventType, History, Initial, ModelKind, NilRead, Semantics, Status, Val,
    Verdict, brute, check_history,
};

/// Applies one random perturbation; returns what it did.
fn perturb(events: &mut Vec<Event>, rng: &mut Rng) -> &'static str {
    let n = events.len();
    match rng.below(8) {
        0 => {
            // Stretch an op: invoke earlier.
            let i = rng.below(n as u64) as usize;
            if events[i].kind == EventType::Invoke {
                let t = events[i].time.unwrap();
                events[i].time = Some(t - rng.below(5000) as i64);
            }
            "stretch-invoke"
        }
        1 => {
            // Stretch an op: completion later (keeps file order per process).
            let i = rng.below(n as u64) as usize;
            if events[i].kind != EventType::Invoke {
                let t = events[i].time.unwrap();
                events[i].time = Some(t + rng.below(5000) as i64);
            }
            "stretch-completion"
        }
        2 => {
            // An ok op becomes info, or loses its completion.
            let oks: Vec<usize> = (0..n)
                .filter(|&i| events[i].kind == EventType::Ok)
                .collect();
            if let Some(&i) = oks.get(rng.below(oks.len().max(1) as u64) as usize) {
                let last_of_process = !events[i + 1..]
                    .iter()
                    .any(|e| e.process == events[i].process);
                if last_of_process && rng.chance(0.5) {
                    events.remove(i);
                } else {
                    events[i].kind = EventType::Info;
                }
            }
            "to-info"
        }
        3 => {
            // A read returns a value never written.
            let reads: Vec<usize> = (0..n)
                .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "get")
                .collect();
            if let Some(&i) = reads.get(rng.below(reads.len().max(1) as u64) as usize) {
                events[i].value = Val::Str("never-written".into());
            }
            "read-never-written"
        }
        4 => {
            // A read returns an older value of its key (or absent).
            let reads: Vec<usize> = (0..n)
                .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "get")
                .collect();
            if let Some(&i) = reads.get(rng.below(reads.len().max(1) as u64) as usize) {
                let key = events[i].key.clone();
                let older: Vec<Val> = events[..i]
                    .iter()
                    .filter(|e| e.f == "set" && e.key == key && e.kind == EventType::Ok)
                    .map(|e| e.value.clone())
                    .chain(std::iter::once(Val::Nil))
                    .collect();
                events[i].value = older[rng.below(older.len() as u64) as usize].clone();
            }
            "read-stale"
        }
        6 => {
            repeat_a_written_value(events, rng);
            "same-value"
        }
        7 => {
            // A read returns nil: absent, or unknown under Knossos's rule.
            let reads: Vec<usize> = (0..n)
                .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "get")
                .collect();
            if let Some(&i) = reads.get(rng.below(reads.len().max(1) as u64) as usize) {
                events[i].value = Val::Nil;
            }
            "read-nil"
        }
        _ => {
            // An acknowledged write is reported as failed.
            let sets: Vec<usize> = (0..n)
                .filter(|&i| events[i].kind == EventType::Ok && events[i].f != "get")
                .collect();
            if let Some(&i) = sets.get(rng.below(sets.len().max(1) as u64) as usize) {
                events[i].kind = EventType::Fail;
            }
            "write-to-fail"
        }
    }
}

#[test]
fn search_agrees_with_brute_force_on_random_histories() {
    let mut rng = Rng::new(42);
    let (mut legal, mut illegal) = (0, 0);
    for case in 0..6000u64 {
        let opts = GenOptions {
            ops: 2 + rng.below(7) as usize,
            processes: 2 + rng.below(5) as usize,
            keys: 1 + rng.below(2) as usize,
            info_rate: 0.15,
            with_fail: true,
            seed: case + 1,
        };
        let mut events = kv_history(&opts);
        let mut did = Vec::new();
        for _ in 0..rng.below(3) {
            did.push(perturb(&mut events, &mut rng));
        }
        let history = History::from_events(events.clone()).expect("well-formed");
        // Both nil-read rules, and sometimes a key that starts with a value.
        let sem = Semantics {
            nil_read: if case % 3 == 0 {
                NilRead::Unknown
            } else {
                NilRead::Absent
            },
            initial: Initial {
                default: Val::Nil,
                per_key: if case % 5 == 0 {
                    vec![(Val::Str("k0".into()), Val::Str("v1".into()))]
                } else {
                    Vec::new()
                },
            },
        };
        let expected = brute::linearizable_kv(&history, &sem).expect("small");
        let outcome = check_history(
            history.clone(),
            ModelKind::Kv,
            &sem,
            &CheckOptions {
                threads: 1 + (case % 2) as usize,
                ..CheckOptions::default()
            },
        )
        .unwrap();
        // With no op completed ok the history is trivially linearizable and
        // the checker says "unknown": it proves nothing.
        if !history.ops.iter().any(|o| o.status == Status::Ok) {
            assert!(expected, "case {case}");
            assert_eq!(outcome.verdict, Verdict::Unknown, "case {case}");
            continue;
        }
        let got = outcome.verdict == Verdict::Linearizable;
        assert_eq!(
            got,
            expected,
            "case {case}: perturbations {did:?}, {sem:?}\n{}",
            raftkv_checker::generate::to_jsonl(&events)
        );
        if got {
            legal += 1;
            // The linearization found for each key must itself be valid.
            for p in outcome.partitions.iter().filter(|p| !p.op_ids.is_empty()) {
                let key = history.key(&history.ops[p.op_ids[0]]);
                assert!(
                    brute::is_linearization(&history, key.as_ref(), &p.linearization, &sem),
                    "case {case}: invalid linearization {:?} for key {}",
                    p.linearization,
                    p.label
                );
            }
        } else {
            illegal += 1;
            let f = outcome.failure.expect("a failure is explained");
            assert!(f.op.is_some(), "case {case}: the offending op is named");
            assert!(f.complete);
        }
    }
    // Both verdicts must be well represented for the comparison to mean much.
    assert!(
        legal > 1000 && illegal > 400,
        "legal {legal}, illegal {illegal}"
    );
}
