//! The log's segment files: `wal-{seq:016x}-{first:016x}.log`, where `seq`
//! counts segments from 0 and `first` is the index the segment's first
//! entry was expected to have when it was created (the last index + 1 at
//! that moment; a truncation recorded in it may go below). Segments are
//! replayed in `seq` order; a gap in the numbering is damage.

use std::path::{Path, PathBuf};

use raftkv_core::Index;

use crate::WalError;

/// The log file of a data dir from before the log was split into
/// segments; opening such a dir renames it to the first segment.
pub const LEGACY_LOG_FILE: &str = "wal.log";

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) first: Index,
    pub(crate) path: PathBuf,
}

/// Path of segment `seq` of the log in `dir`, created when the next entry
/// was to be `first`.
pub fn segment_path(dir: &Path, seq: u64, first: Index) -> PathBuf {
    dir.join(format!("wal-{seq:016x}-{first:016x}.log"))
}

/// Path of the first segment of a new log in `dir`.
pub fn first_segment_path(dir: &Path) -> PathBuf {
    segment_path(dir, 0, 1)
}

fn parse(name: &str) -> Option<(u64, Index)> {
    let rest = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    let (seq, first) = rest.split_once('-')?;
    if seq.len() != 16 || first.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        u64::from_str_radix(first, 16).ok()?,
    ))
}

/// The segments in `dir`, in `seq` order. Refuses a gap in the numbering
/// (a segment lost from the middle of the log).
pub(crate) fn list(dir: &Path) -> Result<Vec<Segment>, WalError> {
    let mut segments = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for item in read {
        let item = item.map_err(|e| WalError::io("list", dir, e))?;
        let name = item.file_name();
        if let Some((seq, first)) = name.to_str().and_then(parse) {
            segments.push(Segment {
                seq,
                first,
                path: item.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.seq);
    for pair in segments.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(WalError::Corrupt {
                path: pair[1].path.clone(),
                offset: 0,
                reason: format!(
                    "segment {} follows segment {}: the segments in between are missing",
                    pair[1].seq, pair[0].seq
                ),
            });
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        let p = segment_path(Path::new("/d"), 7, 1234);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "wal-0000000000000007-00000000000004d2.log");
        assert_eq!(parse(name), Some((7, 1234)));
        for other in [
            "wal.log",
            "wal-7-1234.log",
            "LOCK",
            "wal-0000000000000007-00000000000004d2.tmp",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_gap_in_the_numbering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (seq, first) in [(3, 1), (4, 10), (6, 20)] {
            std::fs::write(segment_path(dir.path(), seq, first), b"").unwrap();
        }
        let err = list(dir.path()).unwrap_err().to_string();
        assert!(err.contains("segment 6 follows segment 4"), "{err}");
        std::fs::write(segment_path(dir.path(), 5, 15), b"").unwrap();
        let seqs: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5, 6]);
    }
}
