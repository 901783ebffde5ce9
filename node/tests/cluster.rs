//! Fail-over, pause and catch-up with real node processes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use tonic::Code;

/// Two election timeouts (at their upper bound).
const TWO_ELECTIONS: Duration = Duration::from_millis(2 * ELECTION_MAX_MS);

async fn kill_leader_then_restart(n: usize) {
    let mut cluster = Cluster::start(n, &[]);
    let all: Vec<usize> = (0..n).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;

    // A follower does not serve: it names the leader.
    let follower = (leader + 1) % n;
    let err = set(&cluster.addr(follower), 7, 1, "k", b"v")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let hinted: u64 = err
        .metadata()
        .get("leader-id")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(hinted, cluster.nodes[leader].id);
    assert_eq!(
        err.metadata().get("leader-addr").unwrap().to_str().unwrap(),
        cluster.addr(leader)
    );
    let err = get(&cluster.addr(follower), "k").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let client_id = 1000 + n as u64;
    let mut acked = Vec::new();
    for seq in 1..=20u64 {
        let key = format!("key-{seq}");
        // One value at the default size limit (1 MiB) crosses the links too.
        let value = if seq == 10 {
            vec![b'x'; 1 << 20]
        } else {
            format!("value-{seq}").into_bytes()
        };
        set(&cluster.addr(leader), client_id, seq, &key, &value)
            .await
            .unwrap_or_else(|e| panic!("set {key}: {e:?}"));
        acked.push((key, value));
    }

    cluster.kill(leader);
    let killed_at = Instant::now();
    let survivors = cluster.running();
    let new_leader = cluster
        .wait_leader(&survivors, Duration::from_secs(10))
        .await;
    let elapsed = killed_at.elapsed();
    eprintln!("{n} nodes: new leader {elapsed:?} after the kill");
    assert_ne!(new_leader, leader);
    assert!(
        elapsed <= TWO_ELECTIONS,
        "new leader after {elapsed:?}, more than two election timeouts"
    );
    for (key, value) in &acked {
        assert_eq!(
            get_on_cluster(&cluster, &survivors, key).await.as_deref(),
            Some(&value[..]),
            "{key}"
        );
    }

    // The old leader comes back as a follower and catches up.
    cluster.spawn(leader);
    let commit = status(&cluster.addr(new_leader))
        .await
        .unwrap()
        .commit_index;
    wait_applied(&cluster, leader, commit, Duration::from_secs(10)).await;

    // Kill a follower, write on, restart it: it catches up.
    let follower = *survivors.iter().find(|&&i| i != new_leader).unwrap();
    cluster.kill(follower);
    let running = cluster.running();
    let mut last = 0;
    for seq in 21..=40u64 {
        let key = format!("key-{seq}");
        last = set_on_cluster(&cluster, &running, client_id, seq, &key, key.as_bytes()).await;
        acked.push((key.clone(), key.into_bytes()));
    }
    cluster.spawn(follower);
    wait_applied(&cluster, follower, last, Duration::from_secs(10)).await;
    let all = cluster.running();
    assert_eq!(all.len(), n);
    for (key, value) in &acked {
        assert_eq!(
            get_on_cluster(&cluster, &all, key).await.as_deref(),
            Some(&value[..]),
            "{key}"
        );
    }
    // Every replica holds the same log and state.
    assert_replicas_agree(&cluster, Duration::from_secs(10)).await;
}

#[test]
fn three_nodes_survive_leader_kill_and_follower_restart() {
    run(kill_leader_then_restart(3));
}

#[test]
fn five_nodes_survive_leader_kill_and_follower_restart() {
    run(kill_leader_then_restart(5));
}

#[test]
fn sigterm_on_the_leader_hands_leadership_over() {
    run(sigterm_leader());
}

/// A leader stopped with SIGTERM hands over (TimeoutNow) before it exits:
/// the cluster has a new leader well before any follower's election timer
/// could have fired, and the node exits cleanly.
async fn sigterm_leader() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster
        .wait_leader(&[0, 1, 2], Duration::from_secs(10))
        .await;
    let term = status(&cluster.addr(leader)).await.unwrap().term;
    set(&cluster.addr(leader), 77, 1, "k", b"before")
        .await
        .unwrap();

    cluster.signal(leader, Signal::SIGTERM);
    let signalled = Instant::now();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader(&others, Duration::from_secs(10)).await;
    let elapsed = signalled.elapsed();
    eprintln!("new leader {elapsed:?} after SIGTERM");
    assert!(
        elapsed < Duration::from_millis(ELECTION_MIN_MS),
        "new leader only after {elapsed:?}: no hand-off"
    );
    let new_term = status(&cluster.addr(new_leader)).await.unwrap().term;
    assert_eq!(new_term, term + 1, "one campaign, started by TimeoutNow");

    let (exit, log) = wait_exit(&mut cluster, leader, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(log.contains("handing leadership over"), "{log}");
    assert_eq!(
        get_on_cluster(&cluster, &others, "k").await.as_deref(),
        Some(&b"before"[..])
    );
}

#[test]
fn paused_leader_is_replaced_and_never_serves_a_stale_read() {
    run(paused_leader());
}

async fn paused_leader() {
    let cluster = Cluster::start(3, &[]);
    let all = [0, 1, 2];
    let old = cluster.wait_leader(&all, Duration::from_secs(10)).await;
    set(&cluster.addr(old), 1, 1, "k", b"old").await.unwrap();
    let old_term = status(&cluster.addr(old)).await.unwrap().term;

    cluster.signal(old, Signal::SIGSTOP);
    let stopped_at = Instant::now();
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != old).collect();
    let new = cluster.wait_leader(&others, Duration::from_secs(10)).await;
    let elapsed = stopped_at.elapsed();
    assert!(elapsed <= TWO_ELECTIONS, "new leader after {elapsed:?}");
    set_on_cluster(&cluster, &others, 1, 2, "k", b"new").await;
    assert_ne!(new, old);

    // Ask the old leader for k the moment it runs again, and keep asking.
    let addr = cluster.addr(old);
    let reader = tokio::spawn(async move {
        let mut c = client(&addr).await;
        let mut answers = Vec::new();
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let r = c.get(raftkv::proto::GetRequest { key: "k".into() }).await;
            answers.push(r.map(|r| r.into_inner().value));
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cluster.signal(old, Signal::SIGCONT);
    let answers = reader.await.unwrap();
    let mut served = 0;
    for value in answers.iter().flatten() {
        assert_eq!(
            value.as_deref(),
            Some(&b"new"[..]),
            "stale read from the old leader"
        );
        served += 1;
    }
    eprintln!("old leader: {} answers, {served} served", answers.len());

    // It steps down and follows the newer term.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(&cluster.addr(old)).await;
        if let Some(s) = s
            && s.term > old_term
            && s.leader_id != 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old leader never learned the new term"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get_on_cluster(&cluster, &all, "k").await.as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn retried_set_applies_once_across_leader_change() {
    run(retried_set());
}

async fn retried_set() {
    let mut cluster = Cluster::start(3, &[]);
    let all = [0, 1, 2];
    let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;
    let first = set(&cluster.addr(leader), 42, 1, "k", b"from-42")
        .await
        .unwrap();
    // Another client overwrites k.
    set(&cluster.addr(leader), 43, 1, "k", b"from-43")
        .await
        .unwrap();
    // Client 42 retries its seq 1 (as if the first answer was lost): the
    // stored reply comes back and k is not written again.
    let retry = set(&cluster.addr(leader), 42, 1, "k", b"from-42")
        .await
        .unwrap();
    assert_eq!(retry, first);
    assert_eq!(
        get(&cluster.addr(leader), "k").await.unwrap().as_deref(),
        Some(&b"from-43"[..])
    );

    // Also across a change of leader: the session is replicated state.
    cluster.kill(leader);
    let survivors = cluster.running();
    let index = set_on_cluster(&cluster, &survivors, 42, 1, "k", b"from-42").await;
    assert_eq!(index, first);
    assert_eq!(
        get_on_cluster(&cluster, &survivors, "k").await.as_deref(),
        Some(&b"from-43"[..])
    );

    // An older seq than the last applied is refused; an unknown client that
    // does not start at 1 is told its session expired.
    let leader = cluster
        .wait_leader(&survivors, Duration::from_secs(10))
        .await;
    set(&cluster.addr(leader), 42, 2, "k2", b"x").await.unwrap();
    let err = set(&cluster.addr(leader), 42, 1, "k", b"from-42")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("stale sequence"), "{err:?}");
    let err = set(&cluster.addr(leader), 999, 5, "k", b"x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(err.metadata().get("session-expired").unwrap(), "1");
    assert_eq!(
        get_on_cluster(&cluster, &survivors, "k").await.as_deref(),
        Some(&b"from-43"[..])
    );
}

/// `CommittedEntries` shows every node's committed entries with the client
/// commands they carry, and nothing past the commit index.
async fn committed_entries_show_the_commands() {
    let cluster = Cluster::start(3, &[]);
    let all: Vec<usize> = (0..3).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;
    let addr = cluster.addr(leader);
    let a = set(&addr, 77, 1, "k", b"a").await.unwrap();
    let mut c = client(&addr).await;
    let cas = c
        .cas(raftkv::proto::CasRequest {
            session: Some(raftkv::proto::Session {
                client_id: 77,
                seq: 2,
            }),
            key: "k".into(),
            expected: Some(b"a".to_vec()),
            new_value: b"b".to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cas.applied);
    for i in 0..3 {
        wait_applied(&cluster, i, cas.index, Duration::from_secs(10)).await;
        let mut c = client(&cluster.addr(i)).await;
        let r = c
            .committed_entries(raftkv::proto::CommittedEntriesRequest {
                from_index: 1,
                to_index: u64::MAX,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.commit_index >= cas.index);
        assert!(r.entries.iter().all(|e| e.index <= r.commit_index));
        let at = |index| r.entries.iter().find(|e| e.index == index).unwrap();
        let set_entry = at(a).command.clone().expect("the set's command");
        assert_eq!(
            (
                set_entry.op.as_str(),
                set_entry.key.as_str(),
                &set_entry.value[..]
            ),
            ("set", "k", &b"a"[..])
        );
        assert_eq!(set_entry.session.unwrap().seq, 1);
        let cas_entry = at(cas.index).command.clone().expect("the cas's command");
        assert_eq!(
            (cas_entry.op.as_str(), &cas_entry.value[..]),
            ("cas", &b"b"[..])
        );
        // The leader's no-op of its term carries no client command.
        assert!(r.entries.iter().any(|e| e.command.is_none()));
        let err = c
            .committed_entries(raftkv::proto::CommittedEntriesRequest {
                from_index: 0,
                to_index: 5,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
}

#[test]
fn committed_entries_show_every_nodes_commands() {
    run(committed_entries_show_the_commands());
}
