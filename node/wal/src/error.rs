//! Errors of the write-ahead log.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// Another process (or another `Wal` in this process) holds the lock.
    #[error("data dir {} is in use by another process (pid {})", dir.display(), pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    Locked { dir: PathBuf, pid: Option<u32> },
    /// The log holds damage that is not a torn tail; nothing was changed.
    #[error("corrupt write-ahead log {} at offset {offset}: {reason} (files left untouched)", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The log does not reach back to the snapshot the node would restart
    /// from: the entries in between are lost; nothing was changed.
    #[error("write-ahead log {} starts at index {first}, but {reason}: starting would lose the entries in between (files left untouched)", path.display())]
    Gap {
        path: PathBuf,
        first: u64,
        reason: String,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `write` was asked to persist something that breaks the log's
    /// invariants; nothing was written.
    #[error("refusing to write to {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// An earlier write or sync failed, so what is on disk is unknown; the
    /// log must be reopened (which replays and repairs it).
    #[error("write-ahead log {} is unusable after an earlier failure: {reason}", path.display())]
    Failed { path: PathBuf, reason: String },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
