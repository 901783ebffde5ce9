//! Each mistake planted in the write-ahead log really loses or resurrects
//! records, and the same steps are correct without it. Run with
//! `cargo test -p raftkv-wal --features planted-mistakes --test planted`.
//!
//! Every test takes the process-wide plant guard (also to run without a
//! mistake), so the tests of this binary run one at a time.

#![cfg(feature = "planted-mistakes")]

use std::io::Write;
use std::path::Path;

use raftkv_core::{Entry, EntryKind, HardState, Restored};
use raftkv_plant::{Plant, plant_for_test};
use raftkv_wal::{Wal, first_segment_path};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command,
        data: format!("entry {index} of term {term}").into_bytes(),
    }
}

fn hs(term: u64, vote: Option<u64>) -> HardState {
    HardState {
        term,
        vote,
        commit: 0,
    }
}

fn reopen(dir: &Path) -> (Wal, Restored) {
    Wal::open(dir).unwrap_or_else(|e| panic!("reopen {}: {e}", dir.display()))
}

// ---- SyncWithoutFlush -------------------------------------------------------

/// Writes and syncs a vote and three entries, then ends the way a SIGKILL
/// does: the process's memory is gone (no destructor runs), the kernel's
/// copy of the file stays. Returns what a restart finds.
fn synced_records_after_a_kill() -> Restored {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.write_sync(Some(&hs(3, Some(2))), None, &[entry(1, 3), entry(2, 3)])
        .unwrap();
    wal.write_sync(None, None, &[entry(3, 3)]).unwrap();
    assert!(wal.is_synced());
    // The killed process's lock dies with it; this one's leaks, so the file
    // is read from a copy.
    let file = std::fs::read(first_segment_path(dir.path())).unwrap();
    std::mem::forget(wal);
    let copy = tempfile::tempdir().unwrap();
    std::fs::write(first_segment_path(copy.path()), file).unwrap();
    reopen(copy.path()).1
}

#[test]
fn sync_without_flush_loses_synced_records_on_a_kill() {
    let _planted = plant_for_test(Some(Plant::SyncWithoutFlush));
    let restored = synced_records_after_a_kill();
    assert!(
        restored.entries.is_empty(),
        "{} synced entries survived",
        restored.entries.len()
    );
    assert_eq!(restored.hard_state.vote, None, "the synced vote survived");
}

#[test]
fn without_the_plant_synced_records_survive_a_kill() {
    let _planted = plant_for_test(None);
    let restored = synced_records_after_a_kill();
    assert_eq!(
        restored.entries,
        vec![entry(1, 3), entry(2, 3), entry(3, 3)]
    );
    assert_eq!(restored.hard_state, hs(3, Some(2)));
}

// ---- ReplayKeepsOverwritten ------------------------------------------------

/// A follower holds entries 1-3 of term 1; the leader of term 2 replaces
/// entries 2 and 3 with its own entry 2. Returns the log after a restart.
fn log_after_a_conflict_and_a_restart() -> Vec<Entry> {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.write_sync(
            Some(&hs(1, Some(1))),
            None,
            &[entry(1, 1), entry(2, 1), entry(3, 1)],
        )
        .unwrap();
        wal.write_sync(Some(&hs(2, Some(2))), Some(2), &[entry(2, 2)])
            .unwrap();
    }
    reopen(dir.path()).1.entries
}

#[test]
fn replay_keeps_overwritten_brings_replaced_entries_back() {
    let _planted = plant_for_test(Some(Plant::ReplayKeepsOverwritten));
    let entries = log_after_a_conflict_and_a_restart();
    assert_eq!(
        entries,
        vec![entry(1, 1), entry(2, 1), entry(3, 1)],
        "the replaced entries are back and the term-2 entry is gone"
    );
}

#[test]
fn without_the_plant_replay_applies_the_truncation() {
    let _planted = plant_for_test(None);
    assert_eq!(
        log_after_a_conflict_and_a_restart(),
        vec![entry(1, 1), entry(2, 2)]
    );
}

// ---- TornTailCutsLastRecord -----------------------------------------------

/// Syncs a vote and entries 1-3, then leaves half a record at the end of
/// the file, as a crash in the middle of the next append does. Returns the
/// log and the vote after a restart, and the torn tail's offset.
fn log_after_a_torn_append() -> (Vec<Entry>, Option<u64>, u64) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.write_sync(Some(&hs(4, Some(3))), None, &[entry(1, 4), entry(2, 4)])
            .unwrap();
        wal.write_sync(None, None, &[entry(3, 4)]).unwrap();
    }
    let path = first_segment_path(dir.path());
    let synced_len = std::fs::metadata(&path).unwrap().len();
    // A header that promises 200 bytes, and only 7 of them.
    let mut torn = 200u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&[0xab, 0xcd, 0xef, 0x01, 2, 9, 9]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    let (wal, restored) = reopen(dir.path());
    let cut_at = wal.torn_tail().expect("a torn tail was cut").offset;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), cut_at);
    assert!(cut_at <= synced_len);
    (
        restored.entries,
        restored.hard_state.vote,
        synced_len - cut_at,
    )
}

#[test]
fn torn_tail_cuts_last_record_loses_a_synced_entry() {
    let _planted = plant_for_test(Some(Plant::TornTailCutsLastRecord));
    let (entries, _, synced_bytes_cut) = log_after_a_torn_append();
    assert_eq!(
        entries,
        vec![entry(1, 4), entry(2, 4)],
        "entry 3 was synced"
    );
    assert!(synced_bytes_cut > 0);
}

#[test]
fn without_the_plant_only_the_torn_record_is_cut() {
    let _planted = plant_for_test(None);
    let (entries, vote, synced_bytes_cut) = log_after_a_torn_append();
    assert_eq!(entries, vec![entry(1, 4), entry(2, 4), entry(3, 4)]);
    assert_eq!(vote, Some(3));
    assert_eq!(synced_bytes_cut, 0);
}
