//! Segments, snapshots and compaction: what a node finds when it restarts.

use std::path::Path;

use raftkv_core::{Entry, EntryKind, HardState, SnapshotMeta};
use raftkv_wal::{
    LEGACY_LOG_FILE, Opened, Wal, WalError, WalOptions, first_segment_path, snapshot,
};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command,
        data: format!("entry {index:05} of term {term}").into_bytes(),
    }
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        voters: vec![1, 2, 3],
    }
}

/// Segments of about 1 KB: a few dozen entries each.
fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 1024,
    }
}

fn open(dir: &Path) -> Opened {
    Wal::open_with(dir, &small()).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Writes entries 1..=n of term 1 (one sync each) after a hard state.
fn fill(wal: &mut Wal, from: u64, to: u64) {
    for i in from..=to {
        wal.write(None, None, &[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
}

#[test]
fn full_segments_are_closed_and_compaction_deletes_covered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal
        .write_sync(Some(&hs(1, Some(2), 0)), None, &[])
        .unwrap();
    fill(&mut o.wal, 1, 200);
    let segments = o.wal.segments();
    assert!(segments.len() > 5, "{segments:?}");
    assert!(o.wal.total_bytes() > 5 * 1024);

    // Nothing is deleted that a snapshot does not cover.
    assert_eq!(o.wal.compact(0).unwrap(), 0);
    snapshot::write(dir.path(), &meta(150, 1), b"state at 150").unwrap();
    let deleted = o.wal.compact(150).unwrap();
    assert!(deleted > 3);
    let left = o.wal.segments();
    assert_eq!(left.len(), segments.len() - deleted);
    assert!(!segments[0].exists());
    drop(o);

    let o = open(dir.path());
    assert_eq!(
        o.restored.hard_state,
        hs(1, Some(2), 0),
        "the vote survives"
    );
    assert_eq!(o.restored.snapshot, Some(meta(150, 1)));
    assert_eq!(o.snapshot.unwrap().data, b"state at 150");
    let first = o.restored.entries[0].index;
    assert!(first <= 151 && first > 100, "log starts at {first}");
    assert_eq!(o.restored.entries.last().unwrap().index, 200);
    assert!(o.restored.entries.iter().all(|e| *e == entry(e.index, 1)));
}

#[test]
fn a_log_that_does_not_reach_the_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal.write_sync(Some(&hs(1, None, 0)), None, &[]).unwrap();
    fill(&mut o.wal, 1, 200);
    snapshot::write(dir.path(), &meta(150, 1), b"150").unwrap();
    o.wal.compact(150).unwrap();
    drop(o);
    // The snapshot goes missing: the log alone starts too late.
    let snap = snapshot::snapshot_path(dir.path(), 150, 1);
    std::fs::remove_file(&snap).unwrap();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    match Wal::open_with(dir.path(), &small()) {
        Err(e @ WalError::Gap { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("no snapshot covers"), "{msg}");
        }
        other => panic!("expected Gap, got {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}

#[test]
fn a_damaged_snapshot_falls_back_to_an_older_one_the_log_still_covers() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal.write_sync(Some(&hs(1, None, 0)), None, &[]).unwrap();
    fill(&mut o.wal, 1, 200);
    snapshot::write(dir.path(), &meta(100, 1), b"state at 100").unwrap();
    let newest = snapshot::write(dir.path(), &meta(180, 1), b"state at 180").unwrap();
    // The log is kept back to the older snapshot.
    o.wal.compact(100).unwrap();
    drop(o);
    let mut bytes = std::fs::read(&newest.path).unwrap();
    bytes[50] ^= 0xff;
    std::fs::write(&newest.path, &bytes).unwrap();

    let o = open(dir.path());
    assert_eq!(o.damaged.len(), 1);
    assert_eq!(o.damaged[0].path, newest.path);
    assert!(
        o.damaged[0].reason.contains("checksum"),
        "{}",
        o.damaged[0].reason
    );
    assert_eq!(o.restored.snapshot, Some(meta(100, 1)));
    assert_eq!(o.snapshot.unwrap().data, b"state at 100");
    assert!(o.restored.entries[0].index <= 101);
    assert_eq!(o.restored.entries.last().unwrap().index, 200);
    drop(o.wal);

    // Had the log been compacted up to the damaged one, the node stops and
    // says which file is damaged.
    let mut o = open(dir.path());
    snapshot::write(dir.path(), &meta(190, 1), b"state at 190").unwrap();
    o.wal.compact(190).unwrap();
    drop(o);
    std::fs::remove_file(snapshot::snapshot_path(dir.path(), 190, 1)).unwrap();
    std::fs::write(snapshot::snapshot_path(dir.path(), 190, 1), b"garbage").unwrap();
    let err = Wal::open_with(dir.path(), &small())
        .unwrap_err()
        .to_string();
    let damaged = snapshot::snapshot_path(dir.path(), 190, 1);
    assert!(
        err.contains(&damaged.display().to_string()) && err.contains("lose"),
        "{err}"
    );
}

#[test]
fn a_snapshot_record_restarts_the_log_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal
        .write_sync(
            Some(&hs(2, None, 3)),
            None,
            &[entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)],
        )
        .unwrap();
    // A snapshot from the leader at 50 replaces this log.
    snapshot::write(dir.path(), &meta(50, 3), b"leader's 50").unwrap();
    o.wal.write_snapshot(50, 3).unwrap();
    o.wal
        .write(Some(&hs(3, None, 50)), None, &[entry(51, 3)])
        .unwrap();
    o.wal.sync().unwrap();
    assert_eq!((o.wal.first_index(), o.wal.last_index()), (51, 51));
    // Truncating what the snapshot covers is refused.
    assert!(matches!(
        o.wal.write(None, Some(50), &[]),
        Err(WalError::Invalid { .. })
    ));
    drop(o);
    let o = open(dir.path());
    assert_eq!(o.restored.entries, vec![entry(51, 3)]);
    assert_eq!(o.restored.snapshot, Some(meta(50, 3)));
    assert_eq!(o.restored.hard_state, hs(3, None, 50));
}

/// A data dir whose log holds entries 1..=3 of term 1, and no snapshot.
fn three_entries_of_term_1() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal
        .write_sync(
            Some(&hs(2, None, 1)),
            None,
            &[entry(1, 1), entry(2, 1), entry(3, 1)],
        )
        .unwrap();
    dir
}

#[test]
fn a_snapshot_whose_record_never_reached_the_log_still_replaces_a_conflicting_log() {
    // The node installed the leader's snapshot file but crashed before the
    // log recorded it: its log holds another entry at the snapshot's index.
    let dir = three_entries_of_term_1();
    snapshot::write(dir.path(), &meta(3, 2), b"3").unwrap();
    let o = open(dir.path());
    assert!(o.restored.entries.is_empty(), "{:?}", o.restored.entries);
    assert_eq!(o.restored.snapshot, Some(meta(3, 2)));

    // One that agrees with the log keeps the entries, also those it covers.
    let dir = three_entries_of_term_1();
    snapshot::write(dir.path(), &meta(2, 1), b"2").unwrap();
    let o = open(dir.path());
    assert_eq!(o.restored.entries.len(), 3);
}

#[test]
fn entries_after_a_snapshot_whose_record_never_reached_the_log_survive_the_next_restart() {
    // The node installed the leader's snapshot at 50 and crashed before the
    // log recorded it; restarted, it goes on from 51. The log must say that
    // 51 follows a snapshot, or the restart after refuses the log.
    let dir = three_entries_of_term_1();
    snapshot::write(dir.path(), &meta(50, 2), b"50").unwrap();
    let mut o = open(dir.path());
    assert_eq!(o.wal.last_index(), 50);
    o.wal
        .write_sync(Some(&hs(2, None, 51)), None, &[entry(51, 2)])
        .unwrap();
    drop(o);
    let o = open(dir.path());
    assert_eq!(o.restored.snapshot, Some(meta(50, 2)));
    assert_eq!(o.restored.entries, vec![entry(51, 2)]);
}

#[test]
fn a_log_recording_a_newer_snapshot_than_any_valid_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal
        .write_sync(Some(&hs(2, None, 0)), None, &[entry(1, 1)])
        .unwrap();
    let installed = snapshot::write(dir.path(), &meta(40, 2), b"40").unwrap();
    o.wal.write_snapshot(40, 2).unwrap();
    o.wal.write_sync(None, None, &[entry(41, 2)]).unwrap();
    drop(o);
    std::fs::write(&installed.path, b"damaged").unwrap();
    let err = Wal::open_with(dir.path(), &small())
        .unwrap_err()
        .to_string();
    assert!(err.contains("a snapshot at 40 replaced it"), "{err}");
    assert!(err.contains(&installed.path.display().to_string()), "{err}");
}

#[test]
fn the_single_file_log_of_an_older_version_becomes_the_first_segment() {
    let src = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(src.path()).unwrap();
        wal.write_sync(Some(&hs(3, Some(1), 2)), None, &[entry(1, 2), entry(2, 3)])
            .unwrap();
    }
    let bytes = std::fs::read(first_segment_path(src.path())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LEGACY_LOG_FILE), &bytes).unwrap();
    let o = open(dir.path());
    assert_eq!(o.upgraded_from, Some(dir.path().join(LEGACY_LOG_FILE)));
    assert_eq!(o.restored.entries, vec![entry(1, 2), entry(2, 3)]);
    assert_eq!(o.restored.hard_state, hs(3, Some(1), 2));
    assert!(!dir.path().join(LEGACY_LOG_FILE).exists());
    assert_eq!(
        std::fs::read(first_segment_path(dir.path())).unwrap(),
        bytes
    );
    drop(o);

    // Both layouts at once: refused, nothing touched.
    std::fs::write(dir.path().join(LEGACY_LOG_FILE), &bytes).unwrap();
    let err = Wal::open_with(dir.path(), &small())
        .unwrap_err()
        .to_string();
    assert!(err.contains("both"), "{err}");
    assert!(dir.path().join(LEGACY_LOG_FILE).exists());
}

#[test]
fn damage_in_a_closed_segment_is_refused_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(dir.path());
    o.wal.write_sync(Some(&hs(1, None, 0)), None, &[]).unwrap();
    fill(&mut o.wal, 1, 100);
    let segments = o.wal.segments();
    drop(o);
    let victim = &segments[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let len = bytes.len();
    bytes[len - 1] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    match Wal::open_with(dir.path(), &small()) {
        Err(WalError::Corrupt { path, .. }) => assert_eq!(&path, victim),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(victim).unwrap(), bytes);
    // A segment missing from the middle is damage too.
    std::fs::remove_file(victim).unwrap();
    let err = Wal::open_with(dir.path(), &small())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn temporary_snapshot_files_of_an_interrupted_write_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir
        .path()
        .join("snap-0000000000000009-0000000000000001.snap.tmp");
    std::fs::write(&tmp, b"half a snapshot").unwrap();
    let o = open(dir.path());
    assert_eq!(o.removed_temp_files, vec![tmp.clone()]);
    assert!(!tmp.exists());
}

/// A model of what replay must return.
#[derive(Clone, Debug, PartialEq, Default)]
struct Model {
    hard_state: HardState,
    snapshot: u64,
    /// Every entry the log holds, from index 1 (those a snapshot covers
    /// included).
    entries: Vec<Entry>,
}

#[test]
fn random_writes_compactions_and_restarts_replay_what_was_written() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path()).wal;
    let mut model = Model::default();
    let (mut deleted, mut restarts_after_compaction) = (0, 0);
    for step in 0..1500 {
        match next(20) {
            0 => {
                drop(wal);
                let o = open(dir.path());
                assert_eq!(o.restored.hard_state, model.hard_state, "step {step}");
                let snap = o.restored.snapshot.as_ref().map_or(0, |m| m.index);
                assert_eq!(snap, model.snapshot, "step {step}");
                let first = o.restored.entries.first().map_or(snap + 1, |e| e.index);
                assert!(first <= snap + 1, "step {step}: gap after the snapshot");
                if first > 1 {
                    restarts_after_compaction += 1;
                }
                for e in &o.restored.entries {
                    assert_eq!(
                        Some(e),
                        model.entries.get(e.index as usize - 1),
                        "step {step}"
                    );
                }
                let last = o.restored.entries.last().map_or(snap, |e| e.index);
                assert_eq!(last.max(snap), model.entries.len() as u64, "step {step}");
                wal = o.wal;
            }
            1 if model.entries.len() as u64 > model.hard_state.commit => {
                // A snapshot of everything committed, then compaction.
                let index = model.hard_state.commit;
                if index > model.snapshot {
                    let term = model.entries[index as usize - 1].term;
                    snapshot::write(dir.path(), &meta(index, term), b"").unwrap();
                    model.snapshot = index;
                }
                let through = model.snapshot.saturating_sub(next(20));
                deleted += wal.compact(through).unwrap();
            }
            2 => {
                let from = model.hard_state.commit.max(model.snapshot) + 1;
                let last = model.entries.len() as u64;
                if from <= last {
                    let cut = from + next(last - from + 1);
                    wal.write(None, Some(cut), &[]).unwrap();
                    model.entries.truncate(cut as usize - 1);
                }
            }
            3 => {
                let last = model.entries.len() as u64;
                let commit = model.hard_state.commit + next(last - model.hard_state.commit + 1);
                let term = model.hard_state.term + next(2);
                let h = hs(term, None, commit);
                wal.write(Some(&h), None, &[]).unwrap();
                model.hard_state = h;
            }
            _ => {
                let term = model
                    .entries
                    .last()
                    .map_or(1, |e| e.term)
                    .max(model.hard_state.term);
                let n = 1 + next(4);
                let start = model.entries.len() as u64 + 1;
                let batch: Vec<Entry> = (start..start + n).map(|i| entry(i, term)).collect();
                wal.write(None, None, &batch).unwrap();
                model.entries.extend(batch);
            }
        }
        if next(3) == 0 {
            wal.sync().unwrap();
        } else {
            // Unsynced records reach the file on drop (no crash here).
        }
    }
    assert!(wal.segments().len() > 1);
    assert!(deleted > 10, "{deleted} segments deleted");
    assert!(
        restarts_after_compaction > 10,
        "{restarts_after_compaction}"
    );
}
