//! Each planted mistake really misbehaves (run with
//! `--features planted-mistakes`); the correct node's tests show the
//! opposite behaviour for the same scenarios.

#![cfg(feature = "planted-mistakes")]

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

fn start(n: usize, plant: &str) -> Cluster {
    Cluster::start_with_env(n, &[], &[("RAFTKV_PLANT", plant)])
}

#[test]
fn stale_read_serves_the_old_value_from_a_deposed_leader() {
    run(async {
        let cluster = start(3, "stale-read");
        let old = cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(10))
            .await;
        set(&cluster.addr(old), 1, 1, "k", b"old").await.unwrap();
        cluster.signal(old, Signal::SIGSTOP);
        let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
        set_on_cluster(&cluster, &others, 1, 2, "k", b"new").await;
        cluster.signal(old, Signal::SIGCONT);
        let value = get(&cluster.addr(old), "k").await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"old"[..]));
    });
}

#[test]
fn ack_before_commit_acknowledges_a_write_without_a_quorum() {
    run(async {
        let mut cluster = start(3, "ack-before-commit");
        let leader = cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(10))
            .await;
        for i in 0..3 {
            if i != leader {
                cluster.kill(i);
            }
        }
        set(&cluster.addr(leader), 1, 1, "k", b"v").await.unwrap();
    });
}

#[test]
fn double_apply_applies_a_retry_again() {
    run(async {
        let cluster = start(1, "double-apply");
        let leader = cluster.wait_leader(&[0], Duration::from_secs(10)).await;
        let addr = cluster.addr(leader);
        set(&addr, 42, 1, "k", b"from-42").await.unwrap();
        set(&addr, 43, 1, "k", b"from-43").await.unwrap();
        set(&addr, 42, 1, "k", b"from-42").await.unwrap();
        assert_eq!(
            get(&addr, "k").await.unwrap().as_deref(),
            Some(&b"from-42"[..])
        );
    });
}

#[test]
fn vote_not_persisted_forgets_the_vote_across_a_restart() {
    run(async {
        let mut cluster = start(3, "vote-not-persisted");
        cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(10))
            .await;
        for i in 0..3 {
            cluster.kill(i);
        }
        // Every node voted in the first election (for itself or another),
        // yet no hard state in any log carries a vote.
        for node in &cluster.nodes {
            let (_wal, restored) = raftkv_wal::Wal::open(&node.data_dir).unwrap();
            assert!(restored.hard_state.term > 0);
            assert_eq!(restored.hard_state.vote, None, "node {}", node.id);
        }
    });
}
