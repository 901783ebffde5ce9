//! The thread that owns the write-ahead log and group-commits: it writes
//! every job that is queued, then makes them all durable with one fsync,
//! then reports the newest ready number that is durable. It also moves
//! snapshots received from the leader into place (before the log records
//! them) and deletes the log segments that snapshots cover.

use std::sync::mpsc;
use std::thread;

use raftkv_core::{Entry, HardState, Index};
use raftkv_wal::snapshot::{self, Received};
use raftkv_wal::{Wal, WalError};

/// The writes of one `Ready`.
#[derive(Debug)]
pub struct WalJob {
    pub number: u64,
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader that replaces the log: its file is moved
    /// into place, then the log records it, before the rest of the job.
    pub snapshot: Option<Received>,
    pub truncate_from: Option<Index>,
    pub entries: Vec<Entry>,
}

impl WalJob {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
    }
}

/// What the writer is asked to do, in order.
#[derive(Debug)]
enum Command {
    Write(WalJob),
    /// Delete the segments that hold nothing after this index.
    Compact(Index),
}

/// What the writer reports back.
#[derive(Debug)]
pub enum WalEvent {
    /// Every job up to and including this ready number is durable.
    Durable(u64),
    /// Segments were deleted by a compaction through `through`.
    Compacted {
        through: Index,
        segments_deleted: usize,
        wal_bytes: u64,
    },
    /// The log failed; what is on disk is unknown, so the node must stop.
    Failed(WalError),
}

pub struct WalWriter {
    jobs: mpsc::Sender<Command>,
}

impl WalWriter {
    /// Starts the writer thread. `report` is called from that thread.
    pub fn spawn(wal: Wal, report: impl Fn(WalEvent) + Send + 'static) -> WalWriter {
        let (jobs, rx) = mpsc::channel();
        thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || run(wal, rx, report))
            .expect("spawn wal-writer thread");
        WalWriter { jobs }
    }

    /// Queues a job; jobs are written in the order submitted.
    pub fn submit(&self, job: WalJob) {
        // Fails only once the writer stopped after a failure it reported.
        let _ = self.jobs.send(Command::Write(job));
    }

    /// Queues the deletion of the segments that hold nothing after
    /// `through`, which a durable snapshot must cover.
    pub fn compact(&self, through: Index) {
        let _ = self.jobs.send(Command::Compact(through));
    }
}

fn run(mut wal: Wal, rx: mpsc::Receiver<Command>, report: impl Fn(WalEvent)) {
    while let Ok(first) = rx.recv() {
        let mut newest = None;
        let mut wrote = false;
        let mut next = Some(first);
        let result = (|| {
            while let Some(command) = next.take() {
                match command {
                    Command::Write(job) => {
                        newest = Some(job.number);
                        if !job.is_empty() {
                            write(&mut wal, job)?;
                            wrote = true;
                        }
                    }
                    Command::Compact(through) => {
                        let segments_deleted = wal.compact(through)?;
                        report(WalEvent::Compacted {
                            through,
                            segments_deleted,
                            wal_bytes: wal.total_bytes(),
                        });
                    }
                }
                next = rx.try_recv().ok();
            }
            if wrote {
                wal.sync()?;
            }
            Ok::<(), WalError>(())
        })();
        match result {
            Ok(()) => {
                if let Some(n) = newest {
                    report(WalEvent::Durable(n));
                }
            }
            Err(e) => {
                report(WalEvent::Failed(e));
                return;
            }
        }
    }
}

fn write(wal: &mut Wal, job: WalJob) -> Result<(), WalError> {
    if let Some(received) = job.snapshot {
        let (index, term) = (received.meta.index, received.meta.term);
        // The file is durable in place before the log refers to it.
        snapshot::install(wal.dir(), received)?;
        wal.write_snapshot(index, term)?;
    }
    wal.write(job.hard_state.as_ref(), job.truncate_from, &job.entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::EntryKind;
    use std::time::Duration;

    fn entry(index: Index, term: u64) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Command,
            data: vec![index as u8; 10],
        }
    }

    #[test]
    fn jobs_become_durable_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, restored) = Wal::open(dir.path()).unwrap();
        assert!(restored.entries.is_empty());
        let (tx, rx) = mpsc::channel();
        let writer = WalWriter::spawn(wal, move |ev| tx.send(ev).unwrap());
        let hs = HardState {
            term: 2,
            vote: Some(3),
            commit: 0,
        };
        writer.submit(WalJob {
            number: 1,
            hard_state: Some(hs),
            snapshot: None,
            truncate_from: None,
            entries: vec![entry(1, 1), entry(2, 2)],
        });
        writer.submit(WalJob {
            number: 2,
            hard_state: None,
            snapshot: None,
            truncate_from: None,
            entries: vec![],
        });
        writer.submit(WalJob {
            number: 3,
            hard_state: None,
            snapshot: None,
            truncate_from: Some(2),
            entries: vec![entry(2, 2), entry(3, 2)],
        });
        let mut durable = 0;
        while durable < 3 {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                WalEvent::Durable(n) => {
                    assert!(n > durable, "reports go forward: {n} after {durable}");
                    durable = n;
                }
                WalEvent::Failed(e) => panic!("{e}"),
                WalEvent::Compacted { .. } => panic!("nothing to compact"),
            }
        }
        drop(writer);
        // The writer thread exits once the sender is gone and releases the lock.
        let mut reopened = None;
        for _ in 0..100 {
            match Wal::open(dir.path()) {
                Ok(r) => {
                    reopened = Some(r);
                    break;
                }
                Err(WalError::Locked { .. }) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("{e}"),
            }
        }
        let (_wal, restored) = reopened.expect("lock released");
        assert_eq!(restored.hard_state.term, 2);
        assert_eq!(restored.hard_state.vote, Some(3));
        assert_eq!(
            restored.entries,
            vec![entry(1, 1), entry(2, 2), entry(3, 2)]
        );
    }
}
