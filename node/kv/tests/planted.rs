//! Each mistake planted in the state machine really misbehaves, and the
//! same requests are handled correctly without it. Run with
//! `cargo test -p raftkv-kv --features planted-mistakes --test planted`.
//!
//! Every test takes the process-wide plant guard (also to run without a
//! mistake), so the tests of this binary run one at a time.

#![cfg(feature = "planted-mistakes")]

use std::time::Duration;

use raftkv_kv::{Command, KvStore, Reply, Request, SessionConfig};
use raftkv_plant::{Plant, plant_for_test};

fn request(client_id: u64, seq: u64, time_ms: u64, command: Command) -> Request {
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
        value: value.into(),
    }
}

// ---- DedupReevaluates ---------------------------------------------------------

/// A CAS from "absent" to "a" applies; its client did not hear the answer
/// and retries the same (client_id, seq). Returns both replies.
fn cas_and_its_retry() -> (Reply, Reply) {
    let mut kv = KvStore::default();
    let cas = request(
        9,
        1,
        1_000,
        Command::Cas {
            key: "k".into(),
            expected: None,
            new_value: b"a".to_vec(),
        },
    );
    let first = kv.apply(1, &cas);
    let retry = kv.apply(2, &cas);
    assert_eq!(kv.get("k"), Some(&b"a"[..]), "the CAS applied once");
    (first, retry)
}

#[test]
fn dedup_reevaluates_reports_a_successful_cas_as_failed_to_its_retry() {
    let _planted = plant_for_test(Some(Plant::DedupReevaluates));
    let (first, retry) = cas_and_its_retry();
    assert!(
        matches!(first, Reply::Cas { applied: true, .. }),
        "{first:?}"
    );
    match retry {
        Reply::Cas {
            applied, previous, ..
        } => {
            assert!(!applied, "the retry was told the CAS failed");
            assert_eq!(previous.as_deref(), Some(&b"a"[..]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_the_plant_a_retry_gets_the_stored_reply() {
    let _planted = plant_for_test(None);
    let (first, retry) = cas_and_its_retry();
    assert_eq!(retry, first);
}

// ---- SessionClockLocal ----------------------------------------------------

const TTL_MS: u64 = 1_000;

/// Two replicas apply the same two writes of one client, stamped 10 ms
/// apart by the leader; the second replica applies the second write only
/// after more than a TTL of its own time (it lagged, or it replays its log
/// after a restart). Returns both stores.
fn replicas_with_one_lagging() -> (KvStore, KvStore) {
    let config = SessionConfig {
        ttl_ms: TTL_MS,
        max_sessions: 100,
    };
    let leader_time = 5_000_000;
    let first = request(7, 1, leader_time, set("k", "v1"));
    let second = request(7, 2, leader_time + 10, set("k", "v2"));
    let mut prompt = KvStore::new(config);
    let mut lagging = KvStore::new(config);
    prompt.apply(1, &first);
    prompt.apply(2, &second);
    lagging.apply(1, &first);
    std::thread::sleep(Duration::from_millis(TTL_MS + 500));
    lagging.apply(2, &second);
    (prompt, lagging)
}

#[test]
fn session_clock_local_makes_replicas_diverge() {
    let _planted = plant_for_test(Some(Plant::SessionClockLocal));
    let (prompt, lagging) = replicas_with_one_lagging();
    assert_ne!(prompt.digest(), lagging.digest());
    assert_eq!(prompt.get("k"), Some(&b"v2"[..]));
    assert_eq!(
        lagging.get("k"),
        Some(&b"v1"[..]),
        "the lagging replica expired the session and refused the second write"
    );
}

#[test]
fn without_the_plant_replicas_agree_whenever_they_apply() {
    let _planted = plant_for_test(None);
    let (prompt, lagging) = replicas_with_one_lagging();
    assert_eq!(prompt, lagging);
    assert_eq!(prompt.digest(), lagging.digest());
    assert_eq!(lagging.get("k"), Some(&b"v2"[..]));
}

// ---- SnapshotWithoutSessions -----------------------------------------------

/// Client 9's write at index 1 is applied; a replica is restored from a
/// snapshot taken after it and then applies the client's retry. Returns the
/// retry's reply on the restored replica, its value of `k` and whether the
/// snapshot's digest matches the restored replica's.
fn retry_after_a_snapshot() -> (Reply, Option<Vec<u8>>, bool) {
    let mut kv = KvStore::default();
    kv.apply(1, &request(9, 1, 1_000, set("k", "first")));
    kv.apply(2, &request(10, 1, 1_001, set("k", "second")));
    let (bytes, digest) = kv.snapshot_with_digest();
    let mut restored = KvStore::decode_snapshot(SessionConfig::default(), &bytes).unwrap();
    let same = restored.digest() == digest;
    let reply = restored.apply(3, &request(9, 1, 1_002, set("k", "first")));
    (reply, restored.get("k").map(<[u8]>::to_vec), same)
}

#[test]
fn snapshot_without_sessions_applies_a_retry_again_after_a_restore() {
    let _planted = plant_for_test(Some(Plant::SnapshotWithoutSessions));
    let (reply, value, same) = retry_after_a_snapshot();
    assert_eq!(reply, Reply::Set { index: 3 }, "the retry applied again");
    assert_eq!(value.as_deref(), Some(&b"first"[..]));
    assert!(!same, "the restored replica's digest equals the snapshot's");
}

#[test]
fn without_the_plant_a_restored_replica_answers_the_retry_from_its_session() {
    let _planted = plant_for_test(None);
    let (reply, value, same) = retry_after_a_snapshot();
    assert_eq!(reply, Reply::Set { index: 1 });
    assert_eq!(value.as_deref(), Some(&b"second"[..]));
    assert!(same);
}
