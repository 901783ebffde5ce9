//! The driver's record of the node's snapshots: the durable snapshot files
//! (the newest few are kept), when the next one is due, the one being
//! written, and a snapshot received from the leader until the Raft core
//! installs or ignores it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use raftkv_core::{Index, NodeId, SnapshotMeta};
use raftkv_kv::KvStore;
use raftkv_wal::SnapshotFile;
use raftkv_wal::snapshot::Received;
use tracing::warn;

/// Snapshot files kept: the newest, and an older one to fall back to if
/// the newest is damaged (the log is kept back to it).
const KEEP: usize = 2;

/// A snapshot from the leader, verified and decoded, waiting for the core.
pub struct Incoming {
    pub from: NodeId,
    pub received: Received,
    pub store: KvStore,
    /// The state machine's digest and applied chain.
    pub digest: u64,
    pub chain: u64,
}

pub struct Snapshots {
    /// Take a snapshot at every multiple of this index (0: never).
    every: u64,
    /// Entries kept in the log behind the newest snapshot.
    catchup: u64,
    /// The snapshot files kept, by index.
    files: BTreeMap<Index, PathBuf>,
    /// Index of the snapshot being written.
    taking: Option<Index>,
    incoming: Option<Incoming>,
}

/// What to compact once a snapshot is durable.
#[derive(Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Drop the in-memory log up to here.
    pub log_through: Index,
    /// Delete the log segments that hold nothing after here (0: none): no
    /// further than the older snapshot kept, so that a damaged newest one
    /// can still be replaced by the older one and the log after it.
    pub wal_through: Index,
}

impl Snapshots {
    /// `files` are the snapshot files in the data dir, the newest of them
    /// the one the node restarted from.
    pub fn new(every: u64, catchup: u64, files: BTreeMap<Index, PathBuf>) -> Snapshots {
        Snapshots {
            every,
            catchup,
            files,
            taking: None,
            incoming: None,
        }
    }

    /// True if a snapshot of the state machine should be taken right after
    /// `applied` is applied: at every multiple of the interval (skipped while
    /// the previous one is still being written), so that every replica
    /// snapshots the same indexes.
    pub fn due(&self, applied: Index) -> bool {
        self.every > 0 && self.taking.is_none() && applied.is_multiple_of(self.every)
    }

    pub fn started(&mut self, index: Index) {
        self.taking = Some(index);
    }

    /// Writing the snapshot failed; the next interval tries again.
    pub fn failed(&mut self) {
        self.taking = None;
    }

    /// The snapshot being written is durable: returns the compaction it
    /// allows (behind the newest snapshot, which may be one installed
    /// meanwhile).
    pub fn saved(&mut self, file: SnapshotFile) -> Compaction {
        self.taking = None;
        self.add(file)
    }

    /// A snapshot from the leader is in place.
    pub fn installed(&mut self, file: SnapshotFile) -> Compaction {
        self.add(file)
    }

    fn add(&mut self, file: SnapshotFile) -> Compaction {
        self.files.insert(file.meta.index, file.path);
        while self.files.len() > KEEP {
            let (_, old) = self.files.pop_first().expect("more than KEEP");
            if let Err(e) = std::fs::remove_file(&old) {
                warn!(file = %old.display(), error = %e, "cannot delete an old snapshot");
            }
        }
        let newest = self.files.keys().next_back().copied().unwrap_or(0);
        let log_through = newest.saturating_sub(self.catchup);
        let older = if self.files.len() >= KEEP {
            *self.files.keys().next().expect("not empty")
        } else {
            0
        };
        Compaction {
            log_through,
            wal_through: older.min(log_through),
        }
    }

    /// The file of the snapshot of `index`, if kept.
    pub fn file(&self, index: Index) -> Option<PathBuf> {
        self.files.get(&index).cloned()
    }

    /// Keeps a snapshot received from the leader for the core to decide on
    /// (a newer one replaces it; the file of a dropped one is deleted).
    pub fn receive(&mut self, incoming: Incoming) {
        self.incoming = Some(incoming);
    }

    /// The received snapshot the core installs.
    pub fn take_incoming(&mut self, meta: &SnapshotMeta) -> Option<Incoming> {
        match &self.incoming {
            Some(i) if i.received.meta == *meta => self.incoming.take(),
            _ => None,
        }
    }

    /// Forgets a received snapshot the core did not install (stale, or
    /// its log already held it); returns what it was.
    pub fn drop_incoming(&mut self) -> Option<SnapshotMeta> {
        self.incoming.take().map(|i| i.received.meta.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, index: Index) -> SnapshotFile {
        let meta = SnapshotMeta {
            index,
            term: 1,
            voters: vec![1],
        };
        raftkv_wal::snapshot::write(dir, &meta, b"x").unwrap()
    }

    #[test]
    fn keeps_two_and_compacts_the_log_no_further_than_the_older() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Snapshots::new(100, 30, BTreeMap::new());
        assert!(!s.due(99) && !s.due(101));
        assert!(s.due(100));
        s.started(100);
        assert!(!s.due(500), "one at a time");
        let c = s.saved(file(dir.path(), 100));
        assert_eq!(
            c,
            Compaction {
                log_through: 70,
                wal_through: 0
            }
        );
        assert!(!s.due(150) && s.due(200));
        let c = s.saved(file(dir.path(), 200));
        assert_eq!(
            c,
            Compaction {
                log_through: 170,
                wal_through: 100
            }
        );
        let first = s.file(100).unwrap();
        let c = s.installed(file(dir.path(), 450));
        assert_eq!(
            c,
            Compaction {
                log_through: 420,
                wal_through: 200
            }
        );
        assert!(!first.exists(), "the oldest file is deleted");
        assert!(s.file(200).unwrap().exists());
        assert!(s.file(450).is_some());
        assert!(!s.due(550) && s.due(500));
        s.started(500);
        s.failed();
        assert!(s.due(600));
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;

    #[test]
    fn files_found_at_start_up_take_part_in_retention() {
        let dir = tempfile::tempdir().unwrap();
        let write = |index| {
            let meta = SnapshotMeta {
                index,
                term: 1,
                voters: vec![1],
            };
            raftkv_wal::snapshot::write(dir.path(), &meta, b"x").unwrap()
        };
        let (a, b) = (write(100), write(200));
        let found = BTreeMap::from([(100, a.path.clone()), (200, b.path.clone())]);
        let mut s = Snapshots::new(100, 0, found);
        s.saved(write(300));
        assert!(!a.path.exists(), "the oldest found at start-up is deleted");
        assert!(b.path.exists());
    }
}
