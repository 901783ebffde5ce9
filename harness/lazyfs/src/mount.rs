//! A lazy filesystem mounted and served by a thread of this process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, INodeNo, Notifier, Session, SessionACL};

use crate::fuse::{FsState, LazyFs, Shared, lock};
use crate::model::{CutReport, Model, Stats, TornMode};
use crate::mounts;
use crate::store::DirStore;

/// How to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// fsync the backing directory when the filesystem's user syncs (so a
    /// sync costs what it costs on the backing disk). Off, syncs cost only
    /// the copy to the backing directory, and a crash of the machine itself
    /// (not a simulated power cut) may lose what was synced.
    pub sync_backing: bool,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions { sync_backing: true }
    }
}

/// A mounted lazy filesystem. Dropping it unmounts (see [`Mounted::unmount`]).
pub struct Mounted {
    state: Shared,
    session: Mutex<Option<BackgroundSession>>,
    notifier: Notifier,
    mountpoint: PathBuf,
    backing: PathBuf,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("mountpoint", &self.mountpoint)
            .field("backing", &self.backing)
            .finish()
    }
}

fn canonical(path: &Path, what: &str) -> Result<PathBuf, String> {
    let p = path
        .canonicalize()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !p.is_dir() {
        return Err(format!("{what} {} is not a directory", path.display()));
    }
    Ok(p)
}

impl Mounted {
    /// Mounts a lazy filesystem over the existing directory `mountpoint`,
    /// keeping its durable state in the existing directory `backing`
    /// (whose content it starts from). Needs root and `/dev/fuse`
    /// ([`check_available`](crate::check_available)). A stale lazy
    /// filesystem left on `mountpoint` by a killed process is detached
    /// first; a live one is an error.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        options: &MountOptions,
    ) -> Result<Mounted, String> {
        mounts::check_available()?;
        let backing = canonical(backing, "backing directory")?;
        // A dead mount cannot be canonicalized: look for it by absolute path.
        let absolute = std::path::absolute(mountpoint)
            .map_err(|e| format!("mount point {}: {e}", mountpoint.display()))?;
        mounts::clean_stale_mounts(&absolute)
            .map_err(|e| format!("cleaning stale mounts at {}: {e}", mountpoint.display()))?;
        let mountpoint = canonical(mountpoint, "mount point")?;
        if mounts::lazyfs_mounts()
            .map_err(|e| format!("reading the mount table: {e}"))?
            .contains(&mountpoint)
        {
            return Err(format!(
                "{} already has a lazy filesystem mounted by a live process",
                mountpoint.display()
            ));
        }
        if mountpoint.starts_with(&backing) || backing.starts_with(&mountpoint) {
            return Err(format!(
                "the mount point {} and the backing directory {} must not contain each other",
                mountpoint.display(),
                backing.display()
            ));
        }
        let store = DirStore::new(&backing, options.sync_backing).map_err(|e| e.to_string())?;
        let model = Model::load(store)
            .map_err(|e| format!("loading backing directory {}: {e}", backing.display()))?;
        let state: Shared = Arc::new(Mutex::new(FsState::new(model)));
        let dev = mounts::mount_fuse(&mountpoint).map_err(|e| e.to_string())?;
        let fs = LazyFs {
            state: state.clone(),
            backing: backing.clone(),
        };
        let session = Session::from_fd(fs, dev.into(), SessionACL::All, fuser::Config::default())
            .and_then(|s| s.spawn());
        let session = match session {
            Ok(s) => s,
            Err(e) => {
                let _ = mounts::unmount(&mountpoint);
                return Err(format!(
                    "starting the FUSE session on {}: {e}",
                    mountpoint.display()
                ));
            }
        };
        Ok(Mounted {
            state,
            notifier: session.notifier(),
            session: Mutex::new(Some(session)),
            mountpoint,
            backing,
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Loses everything unsynced, as a power failure would. The caller has
    /// stopped (SIGKILLed and reaped) every process using the filesystem:
    /// their open files are forgotten. The kernel is told to drop what it
    /// holds on every inode, so a restarted process sees only what survived.
    pub fn power_cut(&self, torn: TornMode, seed: u64) -> Result<CutReport, String> {
        let (report, known) = lock(&self.state).power_cut(torn, seed).map_err(|e| {
            let failure = self.stats().failure.unwrap_or_default();
            format!("power cut failed (errno {}): {failure}", e.0)
        })?;
        for ino in known {
            // The kernel may not know an inode (never looked up, or
            // forgotten): that is fine.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        Ok(report)
    }

    pub fn stats(&self) -> Stats {
        lock(&self.state).stats()
    }

    /// Unmounts and leaves the backing directory holding exactly the
    /// durable state (unsynced state is lost, as in a power cut). If a
    /// process still uses the filesystem, it is detached instead (gone from
    /// the tree; the process gets errors once this is dropped) and this
    /// says so. Later calls do nothing; power cuts then fail.
    pub fn unmount(&self) -> Result<(), String> {
        let Some(session) = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(());
        };
        let busy = match mounts::unmount(&self.mountpoint) {
            Ok(busy) => busy,
            // Already unmounted by someone else.
            Err(_)
                if !mounts::lazyfs_mounts()
                    .unwrap_or_default()
                    .contains(&self.mountpoint) =>
            {
                false
            }
            Err(e) => return Err(e.to_string()),
        };
        if busy {
            // The session thread serves the remaining users until they let
            // go; it is not waited for.
            drop(session);
            return Err(format!(
                "{} was busy (a process still uses it); detached lazily",
                self.mountpoint.display()
            ));
        }
        session
            .join()
            .map_err(|e| format!("FUSE session of {}: {e}", self.mountpoint.display()))?;
        lock(&self.state)
            .model
            .close()
            .map_err(|e| format!("closing backing directory {}: {e}", self.backing.display()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("lazyfs: {e}");
        }
    }
}
