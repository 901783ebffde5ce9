//! Snapshots and log compaction with real node processes: catch-up through
//! InstallSnapshot, restart after compaction, damaged snapshot files, and
//! exactly-once across a snapshot install.

mod common;

use std::time::Duration;

use common::*;
use raftkv::proto::StatusResponse;

/// Small snapshots and segments, so that a few thousand writes cross many.
const SNAPSHOTS: &[&str] = &[
    "--snapshot-entries",
    "200",
    "--snapshot-catchup-entries",
    "50",
    "--wal-segment-bytes",
    "16384",
];

async fn status_now(cluster: &Cluster, i: usize) -> StatusResponse {
    status(&cluster.addr(i)).await.expect("status")
}

/// Waits until node `i`'s snapshots are at rest after its writes: its
/// `Status` reports the newest snapshot file, no snapshot is being written
/// (no temporary file) and retention has run (at most two files), the same
/// over three looks 100 ms apart. A snapshot is written off the driver and
/// the older file deleted after the new one is durable, so a node killed
/// right after its last write may hold one more file than at rest. Returns
/// its status then.
async fn snapshots_at_rest(cluster: &Cluster, i: usize) -> StatusResponse {
    let dir = &cluster.nodes[i].data_dir;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut calm = 0;
    let mut last = None;
    loop {
        let s = status_of(&cluster.addr(i), true).await.expect("status");
        let files = snapshot_files(dir);
        let newest = files.last().map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            u64::from_str_radix(&name[5..21], 16).expect("snap-{index:016x}-…")
        });
        let writing = std::fs::read_dir(dir)
            .unwrap()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "tmp"));
        let at_rest = !writing && files.len() <= 2 && newest == Some(s.snapshot_index);
        calm = if at_rest && last == Some(s.snapshot_index) {
            calm + 1
        } else {
            0
        };
        last = at_rest.then_some(s.snapshot_index);
        if calm >= 2 {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "snapshots not at rest: {s:?} {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_stopped_follower_catches_up_through_a_snapshot() {
    run(async {
        let mut cluster = Cluster::start(3, SNAPSHOTS);
        let leader = cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(10))
            .await;
        let f = (leader + 1) % 3;
        write_many(&cluster, &[0, 1, 2], 1, 100).await;
        wait_applied(
            &cluster,
            f,
            status_now(&cluster, leader).await.commit_index,
            Duration::from_secs(10),
        )
        .await;
        let behind = status_now(&cluster, f).await.applied_index;
        cluster.kill(f);
        let others: Vec<usize> = (0..3).filter(|&i| i != f).collect();
        let last = write_many(&cluster, &others, 2, 3000).await;

        // The leader compacted past everything the stopped follower has.
        let leader = cluster.wait_leader(&others, Duration::from_secs(10)).await;
        let s = status_now(&cluster, leader).await;
        assert!(
            s.first_log_index > behind + 1,
            "leader log starts at {} (follower at {behind})",
            s.first_log_index
        );
        assert!(s.snapshot_index >= s.first_log_index, "{s:?}");
        assert!(snapshot_files(&cluster.nodes[leader].data_dir).len() <= 2);

        cluster.spawn(f);
        wait_applied(&cluster, f, last, Duration::from_secs(30)).await;
        let s = status_now(&cluster, f).await;
        assert!(s.snapshot_index > behind, "{s:?}");
        let installed = logged_indexes(&log_of(&cluster, f), "snapshot installed");
        assert!(
            installed.iter().any(|&i| i > behind),
            "no snapshot installed after index {behind}: {installed:?}"
        );
        let sent = logged_indexes(&log_of(&cluster, leader), "snapshot sent");
        assert!(!sent.is_empty(), "the leader logged no snapshot sent");
        assert_replicas_agree(&cluster, Duration::from_secs(20)).await;
    });
}

#[test]
fn restart_after_compaction_restores_the_same_state() {
    run(async {
        let mut cluster = Cluster::start(1, SNAPSHOTS);
        write_many(&cluster, &[0], 3, 2000).await;
        let before = snapshots_at_rest(&cluster, 0).await;
        let dir = cluster.nodes[0].data_dir.clone();
        let segments_before = wal_segments(&dir);
        assert!(before.snapshot_index >= 1800, "{before:?}");
        assert!(before.first_log_index > 1, "{before:?}");
        // Segments the snapshots cover are gone; at most two snapshots stay.
        assert!(
            !segments_before
                .iter()
                .any(|p| p.ends_with("wal-0000000000000000-0000000000000001.log")),
            "the first segment is still there: {segments_before:?}"
        );
        assert!(
            snapshot_files(&dir).len() <= 2,
            "{:?}",
            snapshot_files(&dir)
        );
        cluster.kill(0);

        cluster.spawn(0);
        cluster.wait_leader(&[0], Duration::from_secs(10)).await;
        // The restarted node also applies its new term's no-op.
        wait_applied(
            &cluster,
            0,
            before.applied_index + 1,
            Duration::from_secs(10),
        )
        .await;
        let after = status_of(&cluster.addr(0), true).await.unwrap();
        assert!(after.snapshot_index >= before.snapshot_index, "{after:?}");
        let log = log_of(&cluster, 0);
        let loaded = logged_indexes(&log, "snapshot loaded");
        assert_eq!(loaded, vec![before.snapshot_index], "{log}");
        for i in 0..320 {
            let (key, value) = final_value(i, 2000);
            assert_eq!(
                get(&cluster.addr(0), &key).await.unwrap(),
                Some(value),
                "{key}"
            );
        }
    });
}

/// A single node with two snapshots kept: damages the newest snapshot file
/// and restarts it.
async fn damage_newest_snapshot(cluster: &mut Cluster) -> (StatusResponse, std::path::PathBuf) {
    write_many(cluster, &[0], 4, 1000).await;
    let before = snapshots_at_rest(cluster, 0).await;
    cluster.kill(0);
    let files = snapshot_files(&cluster.nodes[0].data_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let newest = files.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&newest, &bytes).unwrap();
    (before, newest)
}

#[test]
fn a_damaged_snapshot_is_reported_and_the_older_one_with_the_log_used() {
    run(async {
        let mut cluster = Cluster::start(1, SNAPSHOTS);
        let (before, damaged) = damage_newest_snapshot(&mut cluster).await;
        cluster.spawn(0);
        cluster.wait_leader(&[0], Duration::from_secs(10)).await;
        let log = log_of(&cluster, 0);
        assert!(
            log.contains("damaged snapshot file") && log.contains(&damaged.display().to_string()),
            "{log}"
        );
        wait_applied(&cluster, 0, before.applied_index, Duration::from_secs(10)).await;
        for i in 0..320 {
            let (key, value) = final_value(i, 1000);
            assert_eq!(
                get(&cluster.addr(0), &key).await.unwrap(),
                Some(value),
                "{key}"
            );
        }
    });
}

#[test]
fn a_damaged_snapshot_the_log_no_longer_covers_stops_the_node() {
    run(async {
        let mut cluster = Cluster::start(1, SNAPSHOTS);
        let (_, damaged) = damage_newest_snapshot(&mut cluster).await;
        // The older one is damaged too: nothing valid covers the log's start.
        let older = snapshot_files(&cluster.nodes[0].data_dir)[0].clone();
        std::fs::write(&older, b"not a snapshot").unwrap();
        cluster.spawn(0);
        let (status, log) = wait_exit(&mut cluster, 0, Duration::from_secs(10));
        assert!(!status.success(), "started without its snapshot:\n{log}");
        assert!(
            log.contains(&damaged.display().to_string())
                && log.contains(&older.display().to_string()),
            "the error names the damaged files:\n{log}"
        );
        assert!(log.contains("lose"), "{log}");
    });
}

#[test]
fn a_retried_set_across_a_snapshot_install_applies_once() {
    run(async {
        let mut cluster = Cluster::start(3, SNAPSHOTS);
        let all = [0, 1, 2];
        let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;
        let f = (leader + 1) % 3;
        cluster.kill(f);
        let others: Vec<usize> = (0..3).filter(|&i| i != f).collect();
        // Client 7's write is applied; its reply could have been lost.
        let first = set_on_cluster(&cluster, &others, 7, 1, "k", b"v1").await;
        set_on_cluster(&cluster, &others, 8, 1, "k", b"v2").await;
        let last = write_many(&cluster, &others, 5, 1500).await;

        // The follower comes back through a snapshot, which must hold the
        // client sessions: its state equals the others'.
        cluster.spawn(f);
        wait_applied(&cluster, f, last, Duration::from_secs(30)).await;
        let installed = logged_indexes(&log_of(&cluster, f), "snapshot installed");
        assert!(
            installed.iter().any(|&i| i > first),
            "node {} caught up without a snapshot covering index {first}: {installed:?}",
            f + 1
        );
        assert_replicas_agree(&cluster, Duration::from_secs(20)).await;

        // The retry gets the original answer and changes nothing on any
        // replica, the one restored from the snapshot included.
        let again = set_on_cluster(&cluster, &all, 7, 1, "k", b"v1").await;
        assert_eq!(again, first, "the retry was applied again");
        assert_eq!(
            get_on_cluster(&cluster, &all, "k").await.as_deref(),
            Some(&b"v2"[..])
        );
        assert_replicas_agree(&cluster, Duration::from_secs(20)).await;
    });
}
