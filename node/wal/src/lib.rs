//! The write-ahead log of a raftkv node.
//!
//! One append-only file, `wal.log`, under the data dir holds a sequence of
//! records, each framed as
//! `[len u32 LE][crc32c u32 LE][type u8][payload]`: hard states, entries, and
//! truncations that delete every entry from some index on. Opening the log
//! replays it into a [`Restored`]. An interrupted append at the end (a torn
//! tail) is cut off with a warning; damage followed by valid records is
//! refused with [`WalError::Corrupt`] and the file is left as it was.
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

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv_core::{Entry, HardState, Index, Restored};

pub use error::WalError;
use lock::DirLock;
use log_state::LogState;

/// Name of the log file inside the data dir.
pub const LOG_FILE: &str = "wal.log";

/// Buffered bytes past which [`Wal::write`] writes them to the file.
const FLUSH_AT: usize = 1 << 20;

/// The torn tail cut off while opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the first byte that was cut (the new file length).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// Why the record at `offset` was not valid.
    pub reason: String,
}

/// An open write-ahead log. Holds the data dir's lock until dropped.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    _lock: DirLock,
    state: LogState,
    /// Encoded records not yet written to the file.
    buf: Vec<u8>,
    /// Bytes of the log, buffered ones included.
    written: u64,
    synced: u64,
    failure: Option<String>,
    torn_tail: Option<TornTail>,
}

impl Wal {
    /// Creates `dir` if needed, takes an exclusive lock on `dir/LOCK` (a
    /// second opener gets [`WalError::Locked`]), replays the log: cuts a torn
    /// tail (logs a warning with file/offset), refuses mid-log corruption
    /// ([`WalError::Corrupt`], files left untouched).
    pub fn open(dir: &Path) -> Result<(Wal, Restored), WalError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| WalError::io("create dir", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock::lock_dir(dir)?;
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| WalError::io("open", &path, e))?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| WalError::io("read", &path, e))?;
        let replayed = replay::replay(&bytes).map_err(|e| WalError::Corrupt {
            path: path.clone(),
            offset: e.offset,
            reason: e.reason,
        })?;
        let file_len = bytes.len() as u64;
        drop(bytes);
        let mut torn_tail = None;
        if let Some(reason) = replayed.torn_reason {
            let tail = TornTail {
                offset: replayed.valid_len,
                bytes: file_len - replayed.valid_len,
                reason,
            };
            tracing::warn!(
                file = %path.display(),
                offset = tail.offset,
                bytes = tail.bytes,
                "write-ahead log {}: cutting a torn tail of {} bytes at offset {}: {}",
                path.display(),
                tail.bytes,
                tail.offset,
                tail.reason
            );
            file.set_len(tail.offset)
                .and_then(|()| file.sync_all())
                .map_err(|e| WalError::io("cut torn tail of", &path, e))?;
            torn_tail = Some(tail);
        } else if file_len > 0 {
            // A previous process may have written records it never synced
            // (killed between write and fsync); they were replayed from the
            // page cache, so make them durable before anyone relies on them.
            file.sync_data()
                .map_err(|e| WalError::io("fdatasync", &path, e))?;
        }
        let restored = Restored {
            hard_state: replayed.hard_state,
            snapshot: None,
            entries: replayed.entries,
        };
        let wal = Wal {
            path,
            file,
            _lock: lock,
            state: replayed.state,
            buf: Vec::new(),
            written: replayed.valid_len,
            synced: replayed.valid_len,
            failure: None,
            torn_tail,
        };
        Ok((wal, restored))
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
            path: self.path.clone(),
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

    /// Writes the buffered records to the file (no fsync).
    fn flush(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            let err = WalError::io("write", &self.path, e);
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
    /// nothing was written since the last sync.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if self.synced == self.written {
            return Ok(());
        }
        if !raftkv_plant::is(raftkv_plant::Plant::SyncWithoutFlush) {
            self.flush()?;
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the page cache may have dropped the
            // unsynced data; only a reopen (replay) tells what is on disk.
            let err = WalError::io("fdatasync", &self.path, e);
            self.failure = Some(err.to_string());
            return Err(err);
        }
        self.synced = self.written;
        Ok(())
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

    /// The last hard state written.
    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the log file.
    pub fn len_bytes(&self) -> u64 {
        self.written
    }

    /// The torn tail that was cut while opening, if any.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.failure {
            Some(reason) => Err(WalError::Failed {
                path: self.path.clone(),
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

/// fsyncs a directory so that a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync dir", dir, e))
}
