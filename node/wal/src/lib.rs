//! The durable storage of a raftkv node: the write-ahead log and the
//! snapshots, in one data dir.
//!
//! The log is a sequence of segment files (`wal-{seq}-{first}.log`, see
//! [`segment_path`]) holding records framed as
//! `[len u32 LE][crc32c u32 LE][type u8][payload]`: hard states, entries,
//! truncations that delete every entry from some index on, and snapshot
//! records that say a snapshot from the leader replaced the log. A segment
//! that grows past [`WalOptions::segment_bytes`] is closed at the next sync
//! and a new one started with the current hard state; [`Wal::compact`]
//! deletes the segments whose entries a durable snapshot covers.
//!
//! Opening the data dir loads the newest valid snapshot (see
//! [`snapshot`]; a damaged one is reported and an older one tried) and
//! replays the segments after it into a [`Restored`]. An interrupted append
//! at the end (a torn tail) is cut off with a warning; damage followed by
//! valid records, or anywhere but at the end of the last segment, is
//! refused with [`WalError::Corrupt`] and the files are left as they were.
//! A log that does not reach back to the snapshot (entries lost in
//! between) is refused with [`WalError::Gap`]. A data dir from before
//! segments (one `wal.log`) is taken over as the first segment.
//!
//! Writes are buffered in memory and reach the file as one `write(2)` at the
//! next [`Wal::sync`] (or once a megabyte is buffered), which then makes them
//! durable with `fdatasync`: a caller group-commits by writing several
//! readies and syncing once, at the cost of one write and one fsync.

mod error;
mod lock;
mod log_state;
mod record;
mod replay;
mod segment;
pub mod snapshot;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv_core::{Entry, HardState, Index, Restored, SnapshotMeta, Term};

pub use error::WalError;
use lock::DirLock;
use log_state::LogState;
use replay::Replay;
use segment::Segment;
pub use segment::{LEGACY_LOG_FILE, first_segment_path, segment_path};
pub use snapshot::SnapshotFile;

/// Buffered bytes past which [`Wal::write`] writes them to the file.
const FLUSH_AT: usize = 1 << 20;

/// How the log is kept.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that reaches this size is closed at the next sync.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
        }
    }
}

/// The torn tail cut off while opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment it was cut from.
    pub path: PathBuf,
    /// Offset of the first byte that was cut (the new file length).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// Why the record at `offset` was not valid.
    pub reason: String,
}

/// A snapshot file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedSnapshot {
    pub path: PathBuf,
    pub reason: String,
}

/// The snapshot the node restarts from.
#[derive(Debug)]
pub struct LoadedSnapshot {
    pub file: SnapshotFile,
    /// The state machine's encoding, as stored.
    pub data: Vec<u8>,
}

/// What opening a data dir found.
#[derive(Debug)]
pub struct Opened {
    pub wal: Wal,
    /// The durable state for the Raft core (its snapshot is `snapshot`).
    pub restored: Restored,
    /// The newest valid snapshot, for the state machine.
    pub snapshot: Option<LoadedSnapshot>,
    /// Newer snapshot files that were damaged and skipped.
    pub damaged: Vec<DamagedSnapshot>,
    /// Temporary files of interrupted snapshot writes, deleted.
    pub removed_temp_files: Vec<PathBuf>,
    /// Set when a single-segment log of an older version was taken over.
    pub upgraded_from: Option<PathBuf>,
}

/// An open write-ahead log. Holds the data dir's lock until dropped.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// Closed segments, oldest first.
    closed: Vec<Segment>,
    /// The segment being written.
    current: Segment,
    file: File,
    _lock: DirLock,
    state: LogState,
    /// Encoded records not yet written to the file.
    buf: Vec<u8>,
    /// Bytes of the current segment, buffered ones included.
    written: u64,
    synced: u64,
    /// Bytes of the closed segments.
    closed_bytes: u64,
    failure: Option<String>,
    torn_tail: Option<TornTail>,
}

impl Wal {
    /// Opens the data dir with the default options; see [`Wal::open_with`].
    /// The snapshot's data is not returned (only its metadata, in
    /// [`Restored::snapshot`]).
    pub fn open(dir: &Path) -> Result<(Wal, Restored), WalError> {
        let opened = Wal::open_with(dir, &WalOptions::default())?;
        Ok((opened.wal, opened.restored))
    }

    /// Creates `dir` if needed, takes an exclusive lock on `dir/LOCK` (a
    /// second opener gets [`WalError::Locked`]), loads the newest valid
    /// snapshot and replays the log: cuts a torn tail (logs a warning with
    /// file/offset), refuses mid-log corruption ([`WalError::Corrupt`],
    /// files left untouched) and a log that does not reach back to the
    /// snapshot ([`WalError::Gap`]).
    pub fn open_with(dir: &Path, options: &WalOptions) -> Result<Opened, WalError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| WalError::io("create dir", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock::lock_dir(dir)?;
        let removed_temp_files = snapshot::remove_temp_files(dir)?;
        let upgraded_from = upgrade_legacy_log(dir)?;
        let (loaded, damaged) = load_newest_snapshot(dir)?;

        let mut segments = segment::list(dir)?;
        if segments.is_empty() {
            let path = first_segment_path(dir);
            create_segment(dir, &path)?;
            segments.push(Segment {
                seq: 0,
                first: 1,
                path,
            });
        }
        let mut replay = Replay::starting_at(segments[0].first);
        let mut torn_tail = None;
        let mut closed_bytes = 0;
        let last = segments.len() - 1;
        let mut current_len = 0;
        let mut file = None;
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 && replay.state.last_index() + 1 != seg.first {
                return Err(WalError::Corrupt {
                    path: seg.path.clone(),
                    offset: 0,
                    reason: format!(
                        "segment starts at index {}, but the segments before it end at {}",
                        seg.first,
                        replay.state.last_index()
                    ),
                });
            }
            let mut f = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&seg.path)
                .map_err(|e| WalError::io("open", &seg.path, e))?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes)
                .map_err(|e| WalError::io("read", &seg.path, e))?;
            let end = replay
                .segment(&bytes, i == last)
                .map_err(|e| WalError::Corrupt {
                    path: seg.path.clone(),
                    offset: e.offset,
                    reason: e.reason,
                })?;
            let file_len = bytes.len() as u64;
            drop(bytes);
            if i < last {
                closed_bytes += file_len;
                continue;
            }
            if let Some(reason) = end.torn_reason {
                let tail = TornTail {
                    path: seg.path.clone(),
                    offset: end.valid_len,
                    bytes: file_len - end.valid_len,
                    reason,
                };
                tracing::warn!(
                    file = %seg.path.display(),
                    offset = tail.offset,
                    bytes = tail.bytes,
                    "write-ahead log {}: cutting a torn tail of {} bytes at offset {}: {}",
                    seg.path.display(),
                    tail.bytes,
                    tail.offset,
                    tail.reason
                );
                f.set_len(tail.offset)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| WalError::io("cut torn tail of", &seg.path, e))?;
                torn_tail = Some(tail);
            } else if file_len > 0 {
                // A previous process may have written records it never
                // synced (killed between write and fsync); they were
                // replayed from the page cache, so make them durable before
                // anyone relies on them.
                f.sync_data()
                    .map_err(|e| WalError::io("fdatasync", &seg.path, e))?;
            }
            current_len = end.valid_len;
            file = Some(f);
        }
        let snapshot_meta = loaded.as_ref().map(|l| l.file.meta.clone());
        // A snapshot file the log never recorded (the node crashed between
        // putting the leader's snapshot in place and the log's record of
        // it) that the log does not hold the last entry of: the log must
        // record it now, or the entries written after it would not follow
        // the log's last entry at the next replay.
        let unrecorded = snapshot_meta
            .as_ref()
            .filter(|m| {
                m.index > replay.state.snapshot && replay.state.term_at(m.index) != Some(m.term)
            })
            .map(|m| (m.index, m.term));
        join_snapshot(&mut replay, snapshot_meta.as_ref(), &segments[0], &damaged)?;

        let current = segments.pop().expect("at least one segment");
        let restored = Restored {
            hard_state: replay.state.hard_state,
            snapshot: snapshot_meta,
            entries: replay.entries,
        };
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            options: options.clone(),
            closed: segments,
            current,
            file: file.expect("the last segment was opened"),
            _lock: lock,
            state: replay.state,
            buf: Vec::new(),
            written: current_len,
            synced: current_len,
            closed_bytes,
            failure: None,
            torn_tail,
        };
        if let Some((index, term)) = unrecorded {
            wal.write_snapshot(index, term)?;
            wal.sync()?;
        }
        Ok(Opened {
            wal,
            restored,
            snapshot: loaded,
            damaged,
            removed_temp_files,
            upgraded_from,
        })
    }

    /// Buffers records for a ready: hard state (if Some), truncation (delete
    /// entries >= from), entries. They reach the file at the next
    /// [`sync`](Wal::sync), or earlier once a megabyte is buffered.
    ///
    /// Entries that start at or below the last index replace the entries
    /// from there on, as if `truncate_from` said so. Anything that would
    /// break the log's invariants (a lower term, a changed vote, a gap in
    /// the indexes) is refused with [`WalError::Invalid`] and nothing is
    /// written.
    pub fn write(
        &mut self,
        hard_state: Option<&HardState>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.check_usable()?;
        let invalid = |reason: String| WalError::Invalid {
            path: self.current.path.clone(),
            reason,
        };
        if let Some(hs) = hard_state {
            self.state.check_hard_state(hs).map_err(invalid)?;
        }
        if let Some(from) = truncate_from {
            self.state.check_truncate(from).map_err(invalid)?;
        }
        let mut last = truncate_from.map_or(self.state.last_index(), |f| f - 1);
        let mut truncate = truncate_from;
        if let Some(first) = entries.first()
            && first.index >= 1
            && first.index <= last
        {
            self.state.check_truncate(first.index).map_err(invalid)?;
            truncate = Some(first.index);
            last = first.index - 1;
        }
        self.state.check_append(last, entries).map_err(invalid)?;
        if let Some(e) = entries
            .iter()
            .find(|e| record::entry_body_len(e) > record::MAX_BODY_LEN)
        {
            return Err(invalid(format!(
                "entry {} of {} bytes is too large",
                e.index,
                e.data.len()
            )));
        }

        let start = self.buf.len();
        if let Some(hs) = hard_state {
            record::encode_hard_state(&mut self.buf, hs);
        }
        if let Some(from) = truncate.filter(|&f| f <= self.state.last_index()) {
            record::encode_truncate(&mut self.buf, from);
        }
        for e in entries {
            record::encode_entry(&mut self.buf, e);
        }
        if self.buf.len() == start {
            return Ok(());
        }
        self.written += (self.buf.len() - start) as u64;

        if let Some(hs) = hard_state {
            self.state.set_hard_state(*hs);
        }
        if let Some(from) = truncate.filter(|&f| f <= self.state.last_index()) {
            self.state.truncate(from);
        }
        for e in entries {
            self.state.append(e);
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Buffers the record of a snapshot from the leader that replaced the
    /// log (its file must already be durable): from here on the log
    /// continues after `index`, unless it holds the entry (`index`, `term`).
    pub fn write_snapshot(&mut self, index: Index, term: Term) -> Result<(), WalError> {
        self.check_usable()?;
        self.state
            .check_snapshot(index, term)
            .map_err(|reason| WalError::Invalid {
                path: self.current.path.clone(),
                reason,
            })?;
        let start = self.buf.len();
        record::encode_snapshot(&mut self.buf, index, term);
        self.written += (self.buf.len() - start) as u64;
        self.state.install_snapshot(index, term);
        Ok(())
    }

    /// Writes the buffered records to the file (no fsync).
    fn flush(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            let err = WalError::io("write", &self.current.path, e);
            self.failure = Some(err.to_string());
            return Err(err);
        }
        self.buf.clear();
        if self.buf.capacity() > 4 * FLUSH_AT {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Makes everything written so far durable (fdatasync). Cheap when
    /// nothing was written since the last sync. A segment that reached its
    /// size is closed afterwards and a new one started.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if self.synced == self.written {
            return Ok(());
        }
        if !raftkv_plant::is(raftkv_plant::Plant::SyncWithoutFlush) {
            self.flush()?;
        }
        let sync = if raftkv_plant::is(raftkv_plant::Plant::NoFsync) {
            Ok(())
        } else {
            self.file.sync_data()
        };
        if let Err(e) = sync {
            // After a failed fsync the page cache may have dropped the
            // unsynced data; only a reopen (replay) tells what is on disk.
            let err = WalError::io("fdatasync", &self.current.path, e);
            self.failure = Some(err.to_string());
            return Err(err);
        }
        self.synced = self.written;
        if self.written >= self.options.segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Closes the current (synced) segment and starts the next one, which
    /// begins with the current hard state so that deleting older segments
    /// never loses it.
    fn rotate(&mut self) -> Result<(), WalError> {
        let seq = self.current.seq + 1;
        let first = self.state.last_index() + 1;
        let path = segment_path(&self.dir, seq, first);
        let file = create_segment(&self.dir, &path).inspect_err(|e| {
            self.failure = Some(e.to_string());
        })?;
        let old = std::mem::replace(
            &mut self.current,
            Segment {
                seq,
                first,
                path: path.clone(),
            },
        );
        self.closed.push(old);
        self.closed_bytes += self.written;
        self.file = file;
        self.written = 0;
        self.synced = 0;
        if self.state.hard_state != HardState::default() {
            record::encode_hard_state(&mut self.buf, &self.state.hard_state);
            self.written = self.buf.len() as u64;
        }
        tracing::debug!(segment = %path.display(), first, "started a log segment");
        Ok(())
    }

    /// Deletes the segments that hold nothing after index `through` (which
    /// a durable snapshot must cover); the current segment always stays.
    /// Returns how many were deleted.
    pub fn compact(&mut self, through: Index) -> Result<usize, WalError> {
        self.check_usable()?;
        let mut deleted = 0;
        while let Some(seg) = self.closed.first() {
            let next_first = self.closed.get(1).unwrap_or(&self.current).first;
            if next_first > through + 1 {
                break;
            }
            let len = std::fs::metadata(&seg.path).map_or(0, |m| m.len());
            std::fs::remove_file(&seg.path).map_err(|e| WalError::io("remove", &seg.path, e))?;
            self.closed_bytes = self.closed_bytes.saturating_sub(len);
            self.closed.remove(0);
            deleted += 1;
        }
        if deleted > 0 {
            sync_dir(&self.dir)?;
        }
        self.state.compact(through);
        Ok(deleted)
    }

    /// Writes the records for one ready and makes them durable.
    pub fn write_sync(
        &mut self,
        hard_state: Option<&HardState>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.write(hard_state, truncate_from, entries)?;
        self.sync()
    }

    /// Whether everything written has been synced.
    pub fn is_synced(&self) -> bool {
        self.synced == self.written
    }

    /// Index of the last entry in the log (0 if empty).
    pub fn last_index(&self) -> Index {
        self.state.last_index()
    }

    /// The first index the log holds (or would hold next when empty).
    pub fn first_index(&self) -> Index {
        self.state.first_index()
    }

    /// The last hard state written.
    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment being written.
    pub fn path(&self) -> &Path {
        &self.current.path
    }

    /// Every segment file, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        self.closed
            .iter()
            .chain(std::iter::once(&self.current))
            .map(|s| s.path.clone())
            .collect()
    }

    /// Bytes in the current segment.
    pub fn len_bytes(&self) -> u64 {
        self.written
    }

    /// Bytes in all segments.
    pub fn total_bytes(&self) -> u64 {
        self.closed_bytes + self.written
    }

    /// The torn tail that was cut while opening, if any.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.failure {
            Some(reason) => Err(WalError::Failed {
                path: self.current.path.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Wal {
    /// Hands buffered records to the file, as an unbuffered log would have,
    /// without syncing them.
    fn drop(&mut self) {
        if self.failure.is_none() {
            let _ = self.flush();
        }
    }
}

/// Creates an empty segment file and makes its directory entry durable.
fn create_segment(dir: &Path, path: &Path) -> Result<File, WalError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(|e| WalError::io("create", path, e))?;
    sync_dir_for_new_file(dir)?;
    Ok(file)
}

/// Takes over the single log file of an older version as the first segment.
fn upgrade_legacy_log(dir: &Path) -> Result<Option<PathBuf>, WalError> {
    let legacy = dir.join(LEGACY_LOG_FILE);
    if !legacy.exists() {
        return Ok(None);
    }
    if !segment::list(dir)?.is_empty() {
        return Err(WalError::Corrupt {
            path: legacy,
            offset: 0,
            reason: "the data dir holds both this single-file log of an older version and \
                     log segments; move one of them away"
                .into(),
        });
    }
    let first = first_segment_path(dir);
    std::fs::rename(&legacy, &first).map_err(|e| WalError::io("rename", &legacy, e))?;
    sync_dir(dir)?;
    tracing::info!(
        from = %legacy.display(),
        to = %first.display(),
        "took over the log of an older version as the first log segment"
    );
    Ok(Some(legacy))
}

/// The newest snapshot file that reads back valid, and the newer ones that
/// did not (each also logged with its path and why).
fn load_newest_snapshot(
    dir: &Path,
) -> Result<(Option<LoadedSnapshot>, Vec<DamagedSnapshot>), WalError> {
    let mut damaged = Vec::new();
    for (index, term, path) in snapshot::list(dir)? {
        match snapshot::read(&path) {
            Ok((meta, data)) if meta.index == index && meta.term == term => {
                let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                return Ok((
                    Some(LoadedSnapshot {
                        file: SnapshotFile { meta, path, bytes },
                        data,
                    }),
                    damaged,
                ));
            }
            Ok((meta, _)) => damaged.push(DamagedSnapshot {
                path,
                reason: format!(
                    "the file holds snapshot {}/{}, not what its name says",
                    meta.index, meta.term
                ),
            }),
            Err(reason) => damaged.push(DamagedSnapshot { path, reason }),
        }
        let d = damaged.last().expect("just pushed");
        tracing::error!(
            file = %d.path.display(),
            reason = %d.reason,
            "damaged snapshot file {}: {}; trying an older snapshot",
            d.path.display(),
            d.reason
        );
    }
    Ok((None, damaged))
}

/// Fits the replayed log to the snapshot: the log must reach back to the
/// entry after the snapshot (else entries in between are lost); entries
/// the snapshot covers are kept if they agree with it, and a log that
/// holds another entry at the snapshot's index (a snapshot from the leader
/// whose record did not reach the log) is replaced by it.
fn join_snapshot(
    replay: &mut Replay,
    snapshot: Option<&SnapshotMeta>,
    oldest: &Segment,
    damaged: &[DamagedSnapshot],
) -> Result<(), WalError> {
    let (index, term) = snapshot.map_or((0, 0), |m| (m.index, m.term));
    let first = replay.state.first_index();
    let recorded = replay.state.snapshot;
    if first <= index + 1 && recorded <= index {
        if index > 0 {
            replay.join_snapshot(index, term);
        }
        return Ok(());
    }
    let mut reason = match snapshot {
        Some(m) => format!("the newest valid snapshot covers entries up to {}", m.index),
        None => "no snapshot covers the entries before it".to_string(),
    };
    if recorded > index {
        reason.push_str(&format!(
            "; the log records that a snapshot at {recorded} replaced it"
        ));
    }
    for d in damaged {
        reason.push_str(&format!(
            "; damaged snapshot {}: {}",
            d.path.display(),
            d.reason
        ));
    }
    Err(WalError::Gap {
        path: oldest.path.clone(),
        first,
        reason,
    })
}

/// fsyncs a directory so that a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync dir", dir, e))
}

/// fsyncs `dir` after a log segment or a snapshot file appeared in it
/// (skipped by the planted mistake `no-dir-fsync`).
pub(crate) fn sync_dir_for_new_file(dir: &Path) -> Result<(), WalError> {
    if raftkv_plant::is(raftkv_plant::Plant::NoDirFsync) {
        return Ok(());
    }
    sync_dir(dir)
}
