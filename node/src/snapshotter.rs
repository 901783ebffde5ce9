//! The thread that writes the node's own snapshots: it encodes a copy of the
//! state machine and writes it to a snapshot file (atomically, durably), so
//! that the driver only pays for the copy.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use raftkv_core::SnapshotMeta;
use raftkv_kv::KvStore;
use raftkv_wal::{SnapshotFile, snapshot};

/// A snapshot to write: the state machine as it was at `meta.index`.
pub struct SnapshotJob {
    pub meta: SnapshotMeta,
    pub store: KvStore,
}

/// A snapshot written and durable.
#[derive(Debug)]
pub struct Taken {
    pub file: SnapshotFile,
    /// The state machine's digest and applied chain.
    pub digest: u64,
    pub chain: u64,
    pub encode: Duration,
    pub write: Duration,
}

pub struct Snapshotter {
    jobs: mpsc::Sender<SnapshotJob>,
}

impl Snapshotter {
    /// Starts the thread; `report` is called from it after every job.
    pub fn spawn(
        dir: PathBuf,
        report: impl Fn(Result<Taken, String>) + Send + 'static,
    ) -> Snapshotter {
        let (jobs, rx) = mpsc::channel::<SnapshotJob>();
        thread::Builder::new()
            .name("snapshotter".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    report(take(&dir, job));
                }
            })
            .expect("spawn snapshotter thread");
        Snapshotter { jobs }
    }

    pub fn submit(&self, job: SnapshotJob) {
        let _ = self.jobs.send(job);
    }
}

fn take(dir: &std::path::Path, job: SnapshotJob) -> Result<Taken, String> {
    let start = Instant::now();
    let (data, digest) = job.store.snapshot_with_digest();
    let chain = job.store.applied_chain();
    drop(job.store);
    let encode = start.elapsed();
    let start = Instant::now();
    let file = snapshot::write(dir, &job.meta, &data).map_err(|e| e.to_string())?;
    Ok(Taken {
        file,
        digest,
        chain,
        encode,
        write: start.elapsed(),
    })
}
