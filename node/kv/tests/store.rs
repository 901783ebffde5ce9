//! The KV state machine and its exactly-once session rules.

use raftkv_kv::{Command, KvStore, Reply, Request, SessionConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HOUR: u64 = 60 * 60 * 1000;
const T0: u64 = 1_700_000_000_000;

fn req(client_id: u64, seq: u64, time_ms: u64, command: Command) -> Request {
    Request {
        client_id,
        seq,
        time_ms,
        command,
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

fn cas(key: &str, expected: Option<&str>, new_value: &str) -> Command {
    Command::Cas {
        key: key.into(),
        expected: expected.map(|e| e.as_bytes().to_vec()),
        new_value: new_value.as_bytes().to_vec(),
    }
}

/// A store that applies requests at consecutive indexes.
struct Log {
    store: KvStore,
    index: u64,
}

impl Log {
    fn new(config: SessionConfig) -> Self {
        Log {
            store: KvStore::new(config),
            index: 0,
        }
    }
    fn apply(&mut self, r: Request) -> Reply {
        self.index += 1;
        // Requests travel through the log encoded.
        let decoded = Request::decode(&r.encode()).unwrap();
        assert_eq!(decoded, r);
        let reply = self.store.apply(self.index, &decoded);
        assert_eq!(self.store.applied_index(), self.index);
        reply
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.store.get(key).map(|v| std::str::from_utf8(v).unwrap())
    }
}

#[test]
fn set_get_noop_and_skip() {
    let mut log = Log::new(SessionConfig::default());
    assert_eq!(log.get("a"), None);
    assert_eq!(
        log.apply(req(1, 1, T0, set("a", "1"))),
        Reply::Set { index: 1 }
    );
    assert_eq!(log.get("a"), Some("1"));
    assert_eq!(
        log.apply(req(1, 2, T0, Command::Noop)),
        Reply::Noop { index: 2 }
    );
    log.store.skip(3);
    assert_eq!(log.store.applied_index(), 3);
    log.index = 3;
    assert_eq!(
        log.apply(req(1, 3, T0, set("a", "2"))),
        Reply::Set { index: 4 }
    );
    assert_eq!(log.get("a"), Some("2"));
    assert_eq!(log.store.len(), 1);
}

#[test]
fn cas_with_expected_absent_and_present() {
    let mut log = Log::new(SessionConfig::default());
    // Expected absent, key absent: applied.
    assert_eq!(
        log.apply(req(1, 1, T0, cas("k", None, "a"))),
        Reply::Cas {
            applied: true,
            previous: None,
            index: 1
        }
    );
    assert_eq!(log.get("k"), Some("a"));
    // Expected absent, key present: refused, previous returned.
    assert_eq!(
        log.apply(req(1, 2, T0, cas("k", None, "b"))),
        Reply::Cas {
            applied: false,
            previous: Some(b"a".to_vec()),
            index: 2
        }
    );
    assert_eq!(log.get("k"), Some("a"));
    // Expected present and matching: applied.
    assert_eq!(
        log.apply(req(1, 3, T0, cas("k", Some("a"), "c"))),
        Reply::Cas {
            applied: true,
            previous: Some(b"a".to_vec()),
            index: 3
        }
    );
    assert_eq!(log.get("k"), Some("c"));
    // Expected present, mismatching: refused.
    assert_eq!(
        log.apply(req(1, 4, T0, cas("k", Some("a"), "d"))),
        Reply::Cas {
            applied: false,
            previous: Some(b"c".to_vec()),
            index: 4
        }
    );
    // Expected present, key absent: refused.
    assert_eq!(
        log.apply(req(1, 5, T0, cas("other", Some(""), "d"))),
        Reply::Cas {
            applied: false,
            previous: None,
            index: 5
        }
    );
    assert_eq!(log.get("other"), None);
    // The empty value is a value, not absence.
    log.apply(req(1, 6, T0, set("e", "")));
    assert_eq!(
        log.apply(req(1, 7, T0, cas("e", None, "x"))),
        Reply::Cas {
            applied: false,
            previous: Some(vec![]),
            index: 7
        }
    );
}

#[test]
fn a_retry_gets_the_stored_reply_and_applies_once() {
    let mut log = Log::new(SessionConfig::default());
    let first = log.apply(req(7, 1, T0, set("k", "mine")));
    log.apply(req(8, 1, T0, set("k", "theirs")));
    // The retry of (7, 1) must not overwrite "theirs".
    assert_eq!(log.apply(req(7, 1, T0 + 5, set("k", "mine"))), first);
    assert_eq!(log.get("k"), Some("theirs"));
    // A retried CAS answers as the first time, even though it would now fail.
    let cas_reply = log.apply(req(7, 2, T0, cas("c", None, "x")));
    assert!(matches!(cas_reply, Reply::Cas { applied: true, .. }));
    assert_eq!(log.apply(req(7, 2, T0, cas("c", None, "x"))), cas_reply);
    assert_eq!(log.store.last_seq(7), Some(2));
}

#[test]
fn stale_sequence_is_refused() {
    let mut log = Log::new(SessionConfig::default());
    log.apply(req(3, 1, T0, set("k", "1")));
    log.apply(req(3, 5, T0, set("k", "5"))); // gaps are allowed
    assert_eq!(log.get("k"), Some("5"));
    assert_eq!(
        log.apply(req(3, 4, T0, set("k", "4"))),
        Reply::StaleSequence { last_seq: 5 }
    );
    assert_eq!(
        log.apply(req(3, 1, T0, set("k", "1"))),
        Reply::StaleSequence { last_seq: 5 }
    );
    assert_eq!(log.get("k"), Some("5"));
}

#[test]
fn unknown_session_with_seq_above_one_is_expired() {
    let mut log = Log::new(SessionConfig::default());
    assert_eq!(
        log.apply(req(9, 2, T0, set("k", "x"))),
        Reply::SessionExpired
    );
    assert_eq!(log.get("k"), None);
    assert_eq!(log.store.session_count(), 0);
    assert_eq!(log.store.last_seq(9), None);
}

#[test]
fn idle_sessions_expire_by_leader_time() {
    let config = SessionConfig {
        ttl_ms: HOUR,
        max_sessions: 100,
    };
    let mut log = Log::new(config);
    log.apply(req(1, 1, T0, set("a", "1")));
    log.apply(req(2, 1, T0, set("b", "1")));
    // Client 2 stays active; exactly ttl idle is not yet expired.
    log.apply(req(2, 2, T0 + HOUR, Command::Noop));
    assert_eq!(log.store.last_seq(1), Some(1));
    // One ms later client 1 has been idle longer than ttl.
    log.apply(req(2, 3, T0 + HOUR + 1, Command::Noop));
    assert_eq!(log.store.last_seq(1), None);
    assert_eq!(log.store.session_count(), 1);
    assert_eq!(
        log.apply(req(1, 2, T0 + HOUR + 1, set("a", "2"))),
        Reply::SessionExpired
    );
    assert_eq!(log.get("a"), Some("1"));
    // A stamp from a leader with a slower clock does not move time back.
    log.apply(req(3, 1, T0, Command::Noop));
    assert_eq!(log.store.now_ms(), T0 + HOUR + 1);
    // Starting over with seq 1 opens a new session.
    assert_eq!(
        log.apply(req(1, 1, T0 + HOUR + 2, set("a", "3"))),
        Reply::Set { index: 7 }
    );
    assert_eq!(log.get("a"), Some("3"));
}

#[test]
fn beyond_max_sessions_the_least_recently_active_go() {
    let config = SessionConfig {
        ttl_ms: HOUR,
        max_sessions: 3,
    };
    let mut log = Log::new(config);
    for c in 1..=3 {
        log.apply(req(c, 1, T0, Command::Noop));
    }
    // A retry refreshes client 1; client 2 becomes the least recent.
    log.apply(req(1, 1, T0, Command::Noop));
    log.apply(req(4, 1, T0, Command::Noop));
    assert_eq!(log.store.session_count(), 3);
    assert_eq!(log.store.last_seq(2), None);
    for c in [1, 3, 4] {
        assert_eq!(log.store.last_seq(c), Some(1), "client {c}");
    }
    assert_eq!(
        log.apply(req(2, 2, T0, Command::Noop)),
        Reply::SessionExpired
    );
}

#[test]
fn sessionless_requests_apply_without_dedup() {
    let mut log = Log::new(SessionConfig::default());
    assert_eq!(
        log.apply(req(0, 0, T0, set("k", "a"))),
        Reply::Set { index: 1 }
    );
    assert_eq!(
        log.apply(req(5, 0, T0, set("k", "b"))),
        Reply::Set { index: 2 }
    );
    assert_eq!(log.get("k"), Some("b"));
    assert_eq!(log.store.session_count(), 0);
}

fn random_request(rng: &mut ChaCha8Rng, clients: u64, time: &mut u64) -> Request {
    // Time mostly advances, sometimes jumps back (another leader's clock).
    *time = if rng.random_bool(0.1) {
        time.saturating_sub(rng.random_range(0..10_000))
    } else {
        *time + rng.random_range(0..2_000)
    };
    let key = format!("k{}", rng.random_range(0..8));
    let value = format!("v{}", rng.random_range(0..4));
    let command = match rng.random_range(0..4) {
        0 => Command::Noop,
        1 => set(&key, &value),
        2 => cas(&key, None, &value),
        _ => cas(&key, Some(&format!("v{}", rng.random_range(0..4))), &value),
    };
    req(
        rng.random_range(1..=clients),
        rng.random_range(1..6),
        *time,
        command,
    )
}

#[test]
fn same_entries_give_identical_stores() {
    let config = SessionConfig {
        ttl_ms: 20_000,
        max_sessions: 5,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut time = T0;
    let entries: Vec<Option<Request>> = (0..5_000)
        .map(|_| (!rng.random_bool(0.05)).then(|| random_request(&mut rng, 12, &mut time)))
        .collect();

    let run = || {
        let mut store = KvStore::new(config);
        let mut replies = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            match e {
                Some(r) => replies.push(store.apply(index, r)),
                None => store.skip(index),
            }
        }
        (store, replies)
    };
    let (a, replies_a) = run();
    let (b, replies_b) = run();
    assert_eq!(replies_a, replies_b);
    assert_eq!(a, b);
    assert_eq!(a.encode_snapshot(), b.encode_snapshot());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.applied_index(), 5_000);
    // One different entry (or one entry recorded with another term) shows
    // in the digest and the applied chain.
    let mut c = a.clone();
    c.apply(5_001, &req(999, 1, time, set("k0", "other")));
    assert_ne!(c.digest(), a.digest());
    let (mut x, mut y) = (a.clone(), a.clone());
    x.record_entry(5_001, 3, 0, b"e");
    y.record_entry(5_001, 4, 0, b"e");
    assert_ne!(x.applied_chain(), y.applied_chain());
    assert_ne!(x.digest(), y.digest());
    // The mix exercised every session outcome.
    for (what, seen) in [
        ("expired", replies_a.contains(&Reply::SessionExpired)),
        (
            "stale",
            replies_a
                .iter()
                .any(|r| matches!(r, Reply::StaleSequence { .. })),
        ),
        (
            "cas refused",
            replies_a
                .iter()
                .any(|r| matches!(r, Reply::Cas { applied: false, .. })),
        ),
    ] {
        assert!(seen, "no {what} reply");
    }
    assert!(a.session_count() <= 5);
}

#[test]
fn snapshot_round_trips_and_continues_identically() {
    let config = SessionConfig {
        ttl_ms: 10_000,
        max_sessions: 4,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut time = T0;
    let entries: Vec<Request> = (0..2_000)
        .map(|_| random_request(&mut rng, 8, &mut time))
        .collect();
    let mut whole = KvStore::new(config);
    for (i, r) in entries[..1_000].iter().enumerate() {
        whole.record_entry(i as u64 + 1, 1, 0, &r.encode());
        whole.apply(i as u64 + 1, r);
    }
    let snap = whole.encode_snapshot();
    let mut restored = KvStore::decode_snapshot(config, &snap).unwrap();
    assert_eq!(restored, whole);
    assert_eq!(restored.applied_chain(), whole.applied_chain());
    assert_eq!(restored.digest(), whole.digest());
    for (i, r) in entries[1_000..].iter().enumerate() {
        let index = 1_001 + i as u64;
        for store in [&mut restored, &mut whole] {
            store.record_entry(index, 2, 0, &r.encode());
        }
        assert_eq!(restored.apply(index, r), whole.apply(index, r));
    }
    assert_eq!(restored, whole);
    assert_eq!(restored.digest(), whole.digest());
    for n in 0..snap.len() {
        assert!(KvStore::decode_snapshot(config, &snap[..n]).is_err());
    }
}

#[test]
fn garbage_never_panics_the_decoders() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let valid = req(3, 9, T0, cas("key", Some("old"), "new")).encode();
    let mut decoded_ok = 0;
    for i in 0..200_000 {
        let bytes: Vec<u8> = if i % 2 == 0 {
            let len = rng.random_range(0..64);
            (0..len).map(|_| rng.random()).collect()
        } else {
            // Mutations of a valid encoding reach deeper into the decoder.
            let mut b = valid.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..b.len());
                b[at] = rng.random();
            }
            b
        };
        if let Ok(r) = Request::decode(&bytes) {
            // Whatever decodes is canonical: it encodes back to the input.
            assert_eq!(r.encode(), bytes);
            decoded_ok += 1;
        }
        let _ = KvStore::decode_snapshot(SessionConfig::default(), &bytes);
    }
    assert!(decoded_ok > 0, "no mutation decoded; the test is too weak");
}
