//! Behaviour of the write-ahead log through its public API, on real files.

use std::path::Path;
use std::sync::{Arc, Mutex};

use raftkv_core::{Entry, EntryKind, HardState, Restored};
use raftkv_wal::{Wal, WalError, first_segment_path};

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        term,
        index,
        kind: if data.is_empty() {
            EntryKind::Noop
        } else {
            EntryKind::Command
        },
        data: data.to_vec(),
    }
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

fn open(dir: &Path) -> (Wal, Restored) {
    Wal::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Runs `f` with tracing output captured; returns its result and the text.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::default());
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, restored) = open(dir.path());
    assert_eq!(restored.hard_state, HardState::default());
    assert!(restored.entries.is_empty());
    let entries: Vec<Entry> = (1..=10)
        .map(|i| entry(i, 1 + i / 4, format!("value {i}").as_bytes()))
        .collect();
    wal.write(Some(&hs(1, Some(2), 0)), None, &entries[..4])
        .unwrap();
    assert!(!wal.is_synced());
    wal.sync().unwrap();
    assert!(wal.is_synced());
    wal.write(Some(&hs(3, None, 4)), None, &entries[4..])
        .unwrap();
    wal.write(Some(&hs(3, Some(1), 6)), None, &[]).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_index(), 10);
    drop(wal);

    let (wal, restored) = open(dir.path());
    assert_eq!(restored.hard_state, hs(3, Some(1), 6));
    assert_eq!(restored.entries, entries);
    assert!(wal.torn_tail().is_none());
    assert_eq!(wal.last_index(), 10);
    assert_eq!(wal.hard_state(), hs(3, Some(1), 6));
}

#[test]
fn truncations_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    let old: Vec<Entry> = (1..=5).map(|i| entry(i, 1, b"old")).collect();
    wal.write(Some(&hs(1, Some(1), 0)), None, &old).unwrap();
    // Explicit truncation, then new entries of a later term.
    let new = [entry(3, 2, b"new3"), entry(4, 2, b"new4")];
    wal.write(Some(&hs(2, Some(2), 2)), Some(3), &new).unwrap();
    assert_eq!(wal.last_index(), 4);
    // Entries that start inside the log replace its suffix.
    wal.write(None, None, &[entry(4, 3, b"newer4")]).unwrap();
    // A bare truncation.
    wal.write(None, None, &[entry(5, 3, b"five"), entry(6, 3, b"six")])
        .unwrap();
    wal.write(None, Some(6), &[]).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let (wal, restored) = open(dir.path());
    let expected = vec![
        entry(1, 1, b"old"),
        entry(2, 1, b"old"),
        entry(3, 2, b"new3"),
        entry(4, 3, b"newer4"),
        entry(5, 3, b"five"),
    ];
    assert_eq!(restored.entries, expected);
    assert_eq!(restored.hard_state, hs(2, Some(2), 2));
    assert_eq!(wal.last_index(), 5);
}

#[test]
fn invalid_writes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    wal.write(Some(&hs(2, Some(1), 0)), None, &[entry(1, 2, b"a")])
        .unwrap();
    wal.sync().unwrap();
    let before = std::fs::read(first_segment_path(dir.path())).unwrap();

    let refused: Vec<(&str, Result<(), WalError>)> = vec![
        ("gap", wal.write(None, None, &[entry(3, 2, b"c")])),
        (
            "lower entry term",
            wal.write(None, None, &[entry(2, 1, b"b")]),
        ),
        ("lower term", wal.write(Some(&hs(1, None, 0)), None, &[])),
        (
            "changed vote",
            wal.write(Some(&hs(2, Some(3), 0)), None, &[]),
        ),
        ("truncate past end", wal.write(None, Some(3), &[])),
        ("truncate zero", wal.write(None, Some(0), &[])),
    ];
    for (what, res) in refused {
        match res {
            Err(e @ WalError::Invalid { .. }) => {
                let path = first_segment_path(dir.path());
                assert!(
                    e.to_string().contains(&path.display().to_string()),
                    "{what}: {e}"
                )
            }
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    wal.sync().unwrap();
    assert_eq!(
        std::fs::read(first_segment_path(dir.path())).unwrap(),
        before
    );
    // The log is still usable.
    wal.write(None, None, &[entry(2, 2, b"b")]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(dir.path()).1.entries.len(), 2);
}

/// Writes a log of a hard state and `n` entries, one record per write;
/// returns the file length after each record.
fn write_log(dir: &Path, n: u64) -> Vec<u64> {
    let (mut wal, _) = open(dir);
    let mut ends = Vec::new();
    wal.write(Some(&hs(1, Some(1), 0)), None, &[]).unwrap();
    ends.push(wal.len_bytes());
    for i in 1..=n {
        wal.write(None, None, &[entry(i, 1, format!("v{i:03}").as_bytes())])
            .unwrap();
        ends.push(wal.len_bytes());
    }
    wal.sync().unwrap();
    ends
}

#[test]
fn torn_last_record_is_cut_at_every_offset() {
    let src = tempfile::tempdir().unwrap();
    let ends = write_log(src.path(), 5);
    let full = std::fs::read(first_segment_path(src.path())).unwrap();
    let last_start = ends[ends.len() - 2];
    assert_eq!(*ends.last().unwrap(), full.len() as u64);

    for cut in last_start + 1..full.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        let log = first_segment_path(dir.path());
        std::fs::write(&log, &full[..cut as usize]).unwrap();

        let ((mut wal, restored), logs) = capture_logs(|| open(dir.path()));
        assert_eq!(restored.entries.len(), 4, "cut at {cut}");
        assert_eq!(restored.entries[3], entry(4, 1, b"v004"));
        assert_eq!(restored.hard_state, hs(1, Some(1), 0));
        let tail = wal.torn_tail().expect("torn tail reported");
        assert_eq!(tail.offset, last_start, "cut at {cut}");
        assert_eq!(tail.bytes, cut - last_start);
        assert!(
            logs.contains("WARN")
                && logs.contains(&log.display().to_string())
                && logs.contains(&format!("offset {last_start}")),
            "cut at {cut}: warning names file and offset: {logs}"
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), last_start);

        // Appending after the cut continues the log correctly.
        wal.write(None, None, &[entry(5, 2, b"again")]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (wal, restored) = open(dir.path());
        assert!(wal.torn_tail().is_none());
        assert_eq!(restored.entries.len(), 5);
        assert_eq!(restored.entries[4], entry(5, 2, b"again"));
    }
}

#[test]
fn bad_checksum_on_last_record_and_trailing_zeros_are_cut() {
    let src = tempfile::tempdir().unwrap();
    let ends = write_log(src.path(), 3);
    let full = std::fs::read(first_segment_path(src.path())).unwrap();
    let last_start = ends[ends.len() - 2];

    let mut flipped = full.clone();
    *flipped.last_mut().unwrap() ^= 0x40;
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0; 4096]);
    for (what, bytes, keep) in [
        ("flipped last byte", flipped, last_start),
        ("trailing zeros", zeros, full.len() as u64),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(first_segment_path(dir.path()), &bytes).unwrap();
        let (wal, restored) = open(dir.path());
        assert_eq!(wal.torn_tail().map(|t| t.offset), Some(keep), "{what}");
        assert_eq!(
            restored.entries.len() as u64,
            if keep == last_start { 2 } else { 3 },
            "{what}"
        );
        assert_eq!(wal.len_bytes(), keep);
    }
}

#[test]
fn corruption_before_the_tail_is_refused_and_left_untouched() {
    let src = tempfile::tempdir().unwrap();
    let ends = write_log(src.path(), 5);
    let full = std::fs::read(first_segment_path(src.path())).unwrap();
    // Every byte of the second entry record (the third record).
    let (start, end) = (ends[1], ends[2]);
    for at in start..end {
        let dir = tempfile::tempdir().unwrap();
        let log = first_segment_path(dir.path());
        let mut bytes = full.clone();
        bytes[at as usize] ^= 0x01;
        std::fs::write(&log, &bytes).unwrap();

        match Wal::open(dir.path()) {
            Err(WalError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, log, "flip at {at}");
                assert_eq!(offset, start, "flip at {at}: {reason}");
            }
            Ok(_) => panic!("flip at {at}: opened a corrupt log"),
            Err(e) => panic!("flip at {at}: unexpected error {e}"),
        }
        assert_eq!(std::fs::read(&log).unwrap(), bytes, "flip at {at}");
    }

    // The message names the file and the offset.
    let dir = tempfile::tempdir().unwrap();
    let log = first_segment_path(dir.path());
    let mut bytes = full.clone();
    bytes[start as usize + 9] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let msg = Wal::open(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains(&log.display().to_string()) && msg.contains(&format!("offset {start}")),
        "{msg}"
    );
}

#[test]
fn garbage_in_the_middle_is_refused() {
    let src = tempfile::tempdir().unwrap();
    let ends = write_log(src.path(), 3);
    let full = std::fs::read(first_segment_path(src.path())).unwrap();
    let mut bytes = full[..ends[1] as usize].to_vec();
    bytes.extend_from_slice(b"garbage!garbage!");
    bytes.extend_from_slice(&full[ends[1] as usize..]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(first_segment_path(dir.path()), &bytes).unwrap();
    match Wal::open(dir.path()) {
        Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, ends[1]),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        std::fs::read(first_segment_path(dir.path())).unwrap(),
        bytes
    );
}

#[test]
fn second_open_in_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (wal, _) = open(&data);
    match Wal::open(&data) {
        Err(e @ WalError::Locked { .. }) => {
            let msg = e.to_string();
            assert_eq!(
                msg,
                format!(
                    "data dir {} is in use by another process (pid {})",
                    data.display(),
                    std::process::id()
                )
            );
        }
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    drop(wal);
    open(&data);
}

/// A simple model of the log: what replay must return after a prefix of
/// the operations.
#[derive(Clone, Default, PartialEq, Debug)]
struct Model {
    hard_state: HardState,
    entries: Vec<Entry>,
}

#[test]
fn a_cut_anywhere_recovers_the_records_before_it() {
    // Deterministic pseudo-random operations, one record per write so that
    // every record boundary is known.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let src = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(src.path());
    let mut model = Model::default();
    let mut states = vec![(0u64, model.clone())];
    for _ in 0..300 {
        match next(10) {
            0 => {
                let term = model.hard_state.term + next(2);
                let vote = if term == model.hard_state.term {
                    model.hard_state.vote
                } else {
                    Some(next(3) + 1)
                };
                let h = hs(term, vote, next(model.entries.len() as u64 + 1));
                wal.write(Some(&h), None, &[]).unwrap();
                model.hard_state = h;
            }
            1 if !model.entries.is_empty() => {
                let from = next(model.entries.len() as u64) + 1;
                wal.write(None, Some(from), &[]).unwrap();
                model.entries.truncate(from as usize - 1);
            }
            _ => {
                let term = model
                    .entries
                    .last()
                    .map_or(1, |e| e.term)
                    .max(model.hard_state.term);
                let len = next(300) as usize;
                let data: Vec<u8> = (0..len).map(|_| next(256) as u8).collect();
                let e = entry(model.entries.len() as u64 + 1, term, &data);
                wal.write(None, None, std::slice::from_ref(&e)).unwrap();
                model.entries.push(e);
            }
        }
        states.push((wal.len_bytes(), model.clone()));
    }
    wal.sync().unwrap();
    drop(wal);
    let full = std::fs::read(first_segment_path(src.path())).unwrap();
    assert_eq!(full.len() as u64, states.last().unwrap().0);

    let mut cuts: Vec<u64> = states.iter().map(|(end, _)| *end).collect();
    cuts.extend((0..150).map(|_| next(full.len() as u64)));
    // One dir for all cuts: the log file is replaced before each open.
    let dir = tempfile::tempdir().unwrap();
    for cut in cuts {
        let expected = &states.iter().rev().find(|(end, _)| *end <= cut).unwrap().1;
        std::fs::write(first_segment_path(dir.path()), &full[..cut as usize]).unwrap();
        let (wal, restored) = open(dir.path());
        assert_eq!(restored.hard_state, expected.hard_state, "cut at {cut}");
        assert_eq!(restored.entries, expected.entries, "cut at {cut}");
        let clean = states.iter().any(|(end, _)| *end == cut);
        assert_eq!(wal.torn_tail().is_none(), clean, "cut at {cut}");
    }
}
