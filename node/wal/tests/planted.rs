//! Each mistake planted in the write-ahead log really loses or resurrects
//! records, and the same steps are correct without it. Run with
//! `cargo test -p raftkv-wal --features planted-mistakes --test planted`.
//!
//! Every test takes the process-wide plant guard (also to run without a
//! mistake), so the tests of this binary run one at a time.
//!
//! The mistakes that only a power failure shows (`no-fsync`,
//! `no-dir-fsync`) run on a lazy filesystem mounted by this process: it
//! needs root and /dev/fuse, and these tests fail where either is missing
//! unless `RAFTKV_SKIP_FUSE_TESTS=1` says to skip them.

#![cfg(feature = "planted-mistakes")]

use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv_core::{Entry, EntryKind, HardState, Restored, SnapshotMeta};
use raftkv_lazyfs::{MountOptions, Mounted, TornMode, check_available};
use raftkv_plant::{Plant, plant_for_test};
use raftkv_wal::{Opened, Wal, WalOptions, first_segment_path, snapshot};

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

// ---- NoFsync and NoDirFsync: a kill keeps them, a power cut does not ------

const SKIP_FUSE_ENV: &str = "RAFTKV_SKIP_FUSE_TESTS";

/// A lazy filesystem mounted by this process over a fresh directory, and
/// the data dir on it.
struct LazyDir {
    fs: Mounted,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Mounts one, or returns None when `RAFTKV_SKIP_FUSE_TESTS` is set and
/// this machine cannot mount (fails the test otherwise).
fn lazy_dir() -> Option<LazyDir> {
    if let Err(e) = check_available() {
        if std::env::var_os(SKIP_FUSE_ENV).is_some() {
            eprintln!("skipped ({SKIP_FUSE_ENV} is set): {e}");
            return None;
        }
        panic!("the lazy filesystem cannot mount here: {e} (set {SKIP_FUSE_ENV}=1 to skip)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let fs = Mounted::mount(&backing, &mnt, &MountOptions::default()).unwrap();
    Some(LazyDir {
        fs,
        dir: mnt.join("node"),
        _tmp: tmp,
    })
}

/// How the process that wrote the data dir ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// SIGKILL: the process is gone, the kernel's page cache stays.
    Kill,
    /// SIGKILL and a power failure: only what was made durable stays.
    PowerCut,
}

/// What a restart after a crash found.
struct AfterCrash {
    opened: Opened,
    /// Bytes the writes left not durable when the process died.
    unsynced_bytes: u64,
    /// Directory entries the writes left not durable when the process died.
    unsynced_entries: u64,
    /// Unmounted after the WAL is closed (fields drop in order).
    _lazy: LazyDir,
}

/// Runs `write` on a WAL in a data dir on a lazy filesystem, ends the
/// process the way `crash` says (dropping the WAL is what a SIGKILL does to
/// the files of a process whose records are all written) and reopens it.
fn crash_and_reopen(
    options: &WalOptions,
    crash: Crash,
    write: impl FnOnce(&mut Wal),
) -> Option<AfterCrash> {
    let lazy = lazy_dir()?;
    let mut opened = Wal::open_with(&lazy.dir, options).unwrap();
    // Opening leaves the lock file's pid and the first segment's name (with
    // `no-dir-fsync`) unsynced; count what the writes add.
    let before = lazy.fs.stats();
    write(&mut opened.wal);
    assert!(opened.wal.is_synced(), "every record was acknowledged");
    drop(opened);
    let after = lazy.fs.stats();
    if crash == Crash::PowerCut {
        lazy.fs.power_cut(TornMode::None, 0).unwrap();
    }
    let opened = Wal::open_with(&lazy.dir, options)
        .unwrap_or_else(|e| panic!("reopen after {crash:?}: {e}"));
    Some(AfterCrash {
        opened,
        unsynced_bytes: after.unsynced_bytes - before.unsynced_bytes,
        unsynced_entries: after.unsynced_entries - before.unsynced_entries,
        _lazy: lazy,
    })
}

/// A vote and four entries, each write acknowledged by a sync.
fn vote_and_four_entries(wal: &mut Wal) {
    wal.write_sync(Some(&hs(3, Some(2))), None, &[entry(1, 3), entry(2, 3)])
        .unwrap();
    wal.write_sync(None, None, &[entry(3, 3)]).unwrap();
    wal.write_sync(None, None, &[entry(4, 3)]).unwrap();
}

fn four_entries() -> Vec<Entry> {
    (1..=4).map(|i| entry(i, 3)).collect()
}

#[test]
fn no_fsync_loses_acknowledged_records_to_a_power_cut_but_not_to_a_kill() {
    let _planted = plant_for_test(Some(Plant::NoFsync));
    let Some(killed) = crash_and_reopen(&WalOptions::default(), Crash::Kill, vote_and_four_entries)
    else {
        return;
    };
    assert!(
        killed.unsynced_bytes > 0,
        "the acknowledged records were never made durable"
    );
    assert_eq!(killed.opened.restored.entries, four_entries());
    assert_eq!(killed.opened.restored.hard_state, hs(3, Some(2)));

    let cut = crash_and_reopen(
        &WalOptions::default(),
        Crash::PowerCut,
        vote_and_four_entries,
    )
    .expect("mounted once already");
    let restored = &cut.opened.restored;
    assert!(
        restored.entries.is_empty(),
        "{} acknowledged entries survived",
        restored.entries.len()
    );
    assert_eq!(
        restored.hard_state.vote, None,
        "the acknowledged vote survived"
    );
}

#[test]
fn without_the_plant_acknowledged_records_survive_a_power_cut() {
    let _planted = plant_for_test(None);
    let Some(cut) = crash_and_reopen(
        &WalOptions::default(),
        Crash::PowerCut,
        vote_and_four_entries,
    ) else {
        return;
    };
    assert_eq!(cut.unsynced_bytes, 0);
    assert_eq!(cut.opened.restored.entries, four_entries());
    assert_eq!(cut.opened.restored.hard_state, hs(3, Some(2)));
}

/// Segments of at most 4 KiB: entries of about 1 KiB, each acknowledged by
/// a sync, until the log spans three segments. Returns nothing; the caller
/// knows the entries from [`segmented_entries`].
fn three_segments(wal: &mut Wal) {
    wal.write_sync(Some(&hs(5, Some(1))), None, &[]).unwrap();
    for e in segmented_entries() {
        wal.write_sync(None, None, &[e]).unwrap();
    }
    assert_eq!(wal.segments().len(), 3, "the log spans three segments");
}

fn segmented_entries() -> Vec<Entry> {
    (1..=10)
        .map(|i| Entry {
            data: vec![i as u8; 1000],
            ..entry(i, 5)
        })
        .collect()
}

fn small_segments() -> WalOptions {
    WalOptions {
        segment_bytes: 4096,
    }
}

#[test]
fn no_dir_fsync_loses_new_segments_to_a_power_cut_but_not_to_a_kill() {
    let _planted = plant_for_test(Some(Plant::NoDirFsync));
    let Some(killed) = crash_and_reopen(&small_segments(), Crash::Kill, three_segments) else {
        return;
    };
    assert_eq!(
        killed.unsynced_entries, 2,
        "the names of the two new segments were never made durable"
    );
    assert_eq!(killed.opened.restored.entries, segmented_entries());
    assert_eq!(killed.opened.wal.segments().len(), 3);

    let cut = crash_and_reopen(&small_segments(), Crash::PowerCut, three_segments)
        .expect("mounted once already");
    // Every segment vanished with the entries synced into it; the log
    // restarts empty, vote and term forgotten.
    assert!(
        cut.opened.restored.entries.is_empty(),
        "{} acknowledged entries survived",
        cut.opened.restored.entries.len()
    );
    assert_eq!(cut.opened.restored.hard_state, HardState::default());
}

#[test]
fn without_the_plant_new_segments_survive_a_power_cut() {
    let _planted = plant_for_test(None);
    let Some(cut) = crash_and_reopen(&small_segments(), Crash::PowerCut, three_segments) else {
        return;
    };
    assert_eq!(cut.unsynced_entries, 0);
    assert_eq!(cut.opened.restored.entries, segmented_entries());
    assert_eq!(cut.opened.restored.hard_state, hs(5, Some(1)));
    assert_eq!(cut.opened.wal.segments().len(), 3);
}

/// Entries 1-4 and a snapshot of them, written atomically.
fn snapshot_of_four_entries(wal: &mut Wal) {
    vote_and_four_entries(wal);
    snapshot::write(wal.dir(), &snapshot_meta(), b"state machine at 4").unwrap();
}

fn snapshot_meta() -> SnapshotMeta {
    SnapshotMeta {
        index: 4,
        term: 3,
        voters: vec![1, 2, 3],
    }
}

/// The snapshot a restart loads: its metadata and data.
fn loaded_snapshot(after: &AfterCrash) -> Option<(SnapshotMeta, Vec<u8>)> {
    let loaded = after.opened.snapshot.as_ref()?;
    Some((loaded.file.meta.clone(), loaded.data.clone()))
}

#[test]
fn no_dir_fsync_loses_a_snapshot_file_to_a_power_cut_but_not_to_a_kill() {
    let _planted = plant_for_test(Some(Plant::NoDirFsync));
    let expected = Some((snapshot_meta(), b"state machine at 4".to_vec()));
    let Some(killed) = crash_and_reopen(
        &WalOptions::default(),
        Crash::Kill,
        snapshot_of_four_entries,
    ) else {
        return;
    };
    assert_eq!(loaded_snapshot(&killed), expected);

    let cut = crash_and_reopen(
        &WalOptions::default(),
        Crash::PowerCut,
        snapshot_of_four_entries,
    )
    .expect("mounted once already");
    assert_eq!(loaded_snapshot(&cut), None, "the snapshot file vanished");
    assert!(snapshot::list(cut.opened.wal.dir()).unwrap().is_empty());
}

#[test]
fn without_the_plant_a_snapshot_file_survives_a_power_cut() {
    let _planted = plant_for_test(None);
    let Some(cut) = crash_and_reopen(
        &WalOptions::default(),
        Crash::PowerCut,
        snapshot_of_four_entries,
    ) else {
        return;
    };
    assert_eq!(
        loaded_snapshot(&cut),
        Some((snapshot_meta(), b"state machine at 4".to_vec()))
    );
    assert_eq!(cut.opened.restored.entries, four_entries());
}
