//! Opening the data dir at start-up: the newest valid snapshot becomes the
//! state machine, the log after it the Raft core's durable state. Every
//! repair and every fallback is logged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use raftkv_core::{Index, Restored};
use raftkv_kv::{KvStore, SessionConfig};
use raftkv_wal::{Wal, WalOptions, snapshot};
use tracing::{error, info, warn};

use crate::config::Settings;

/// What the node starts from.
pub struct Storage {
    pub wal: Wal,
    pub restored: Restored,
    pub kv: KvStore,
    /// The snapshot files in the data dir by index, the newest the one the
    /// state machine was loaded from.
    pub snapshots: BTreeMap<Index, PathBuf>,
}

pub fn open(settings: &Settings, sessions: SessionConfig) -> Result<Storage, String> {
    let dir = &settings.data_dir;
    let options = WalOptions {
        segment_bytes: settings.wal_segment_bytes,
    };
    let opened = Wal::open_with(dir, &options).map_err(|e| format!("cannot open data dir: {e}"))?;
    let wal = opened.wal;
    if let Some(torn) = wal.torn_tail() {
        warn!(
            file = %torn.path.display(),
            offset = torn.offset,
            bytes = torn.bytes,
            reason = %torn.reason,
            "cut a torn record at the end of the write-ahead log"
        );
    }
    for path in &opened.removed_temp_files {
        info!(file = %path.display(), "deleted the temporary file of an interrupted snapshot");
    }
    for d in &opened.damaged {
        // Moved aside, kept for inspection: never tried or shipped again.
        let mut aside = d.path.clone().into_os_string();
        aside.push(".damaged");
        let moved = std::fs::rename(&d.path, &aside);
        error!(
            file = %d.path.display(),
            reason = %d.reason,
            moved_to = %PathBuf::from(&aside).display(),
            moved = moved.is_ok(),
            "damaged snapshot file skipped; started from an older snapshot and the log after it"
        );
    }
    let (kv, loaded) = match opened.snapshot {
        None => (KvStore::new(sessions), None),
        Some(loaded) => {
            let path = loaded.file.path.display().to_string();
            let kv = KvStore::decode_snapshot(sessions, &loaded.data).map_err(|e| {
                format!("snapshot {path} passed its checksum but cannot be decoded: {e}")
            })?;
            if kv.applied_index() != loaded.file.meta.index {
                return Err(format!(
                    "snapshot {path} holds a state machine at index {}, not at its index {}",
                    kv.applied_index(),
                    loaded.file.meta.index
                ));
            }
            info!(
                index = loaded.file.meta.index,
                term = loaded.file.meta.term,
                bytes = loaded.file.bytes,
                file = %path,
                "snapshot loaded"
            );
            (kv, Some(loaded.file.meta.index))
        }
    };
    // Every snapshot up to the one loaded; newer ones were damaged.
    let snapshots = snapshot::list(dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(index, _, _)| Some(*index) <= loaded)
        .map(|(index, _, path)| (index, path))
        .collect();
    let restored = opened.restored;
    info!(
        id = settings.id,
        term = restored.hard_state.term,
        vote = ?restored.hard_state.vote,
        commit = restored.hard_state.commit,
        snapshot_index = loaded.unwrap_or(0),
        first_index = restored.entries.first().map_or(0, |e| e.index),
        entries = restored.entries.len(),
        data_dir = %dir.display(),
        "restored durable state"
    );
    Ok(Storage {
        wal,
        restored,
        kv,
        snapshots,
    })
}
