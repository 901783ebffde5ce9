//! Power cuts: nodes SIGKILLed and everything they never fsynced lost, as
//! when a machine loses power, then started again on what survived.
//!
//! A kill alone keeps the kernel's page cache, so it cannot show a missing
//! `fdatasync` or directory fsync; a power cut can. The nemesis needs only
//! [`PowerCut`] from the data directories; [`LazyDataDirs`] answers it by
//! serving each node's data directory from a lazy filesystem
//! (`raftkv-lazyfs`) over a backing directory in the run directory. Another
//! target can run its nodes on the same mounts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use raftkv_lazyfs::{CutReport, Launcher, LazyFsProcess, MountOptions, TornMode};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::proxy::NodeId;
use super::Family;

/// The hidden subcommand of `harness` that runs the lazy filesystem's
/// command line (so that no second executable has to be found).
pub const LAZYFS_SUBCOMMAND: &str = "lazyfs";

/// Loses what a stopped node's data directory never made durable.
pub trait PowerCut: Send + Sync {
    /// Cuts the power under node `id`, whose processes are all dead and
    /// reaped. `torn` says what a write in flight may leave behind; the
    /// same `seed` gives the same outcome.
    fn cut(&self, id: NodeId, torn: TornMode, seed: u64) -> Result<CutReport, String>;
}

/// What a torn write leaves after a power cut, drawn per cut: nothing, a
/// prefix of each file's unsynced growth, or some of its pages.
pub fn draw_torn(rng: &mut ChaCha8Rng) -> TornMode {
    match rng.random_range(0..3) {
        0 => TornMode::None,
        1 => TornMode::Prefix,
        _ => TornMode::Pages,
    }
}

/// Whether this process can run nodes on lazy filesystems; the error says
/// what is missing (root, `/dev/fuse`).
pub fn check_available() -> Result<(), String> {
    raftkv_lazyfs::check_available()
}

/// Settles whether a run's faults include power cuts: asked for by name
/// where lazy filesystems are `unavailable`, the run is refused; under
/// `--nemesis all` power is left out, and the note returned says why.
pub fn settle(
    families: &mut Vec<Family>,
    by_name: bool,
    available: Result<(), String>,
) -> Result<Option<String>, String> {
    if !families.contains(&Family::Power) {
        return Ok(None);
    }
    match available {
        Ok(()) => Ok(None),
        Err(why) if by_name => Err(format!(
            "--nemesis power needs lazy filesystems for the data directories, which cannot be mounted here: {why}"
        )),
        Err(why) => {
            families.retain(|&f| f != Family::Power);
            Ok(Some(format!(
                "--nemesis all: power cuts left out (lazy filesystems cannot be mounted here: {why})"
            )))
        }
    }
}

/// Every node's data directory served by its own `lazyfs` child process
/// over `<backing root>/<name of the data dir>`. Dropping it unmounts them
/// all; a harness that dies closes the children's stdin, and they unmount
/// on their own.
pub struct LazyDataDirs {
    mounts: Mutex<BTreeMap<NodeId, LazyFsProcess>>,
}

impl LazyDataDirs {
    /// Mounts a lazy filesystem on each of `data_dirs` (created if missing),
    /// backed by a directory of the same name under `backing_root`; each
    /// filesystem's log goes to `<log_dir>/lazyfs-<name>.log`. On an error
    /// the ones already mounted are unmounted.
    pub fn mount(
        data_dirs: &BTreeMap<NodeId, PathBuf>,
        backing_root: &Path,
        log_dir: &Path,
    ) -> Result<LazyDataDirs, String> {
        let launcher = Launcher::current_exe(LAZYFS_SUBCOMMAND)?;
        let dirs = LazyDataDirs {
            mounts: Mutex::new(BTreeMap::new()),
        };
        for (&id, data_dir) in data_dirs {
            let name = data_dir
                .file_name()
                .ok_or_else(|| format!("data dir {} has no name", data_dir.display()))?;
            let backing = backing_root.join(name);
            for dir in [&backing, data_dir] {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let log = log_dir.join(format!("lazyfs-{}.log", name.to_string_lossy()));
            let fs = LazyFsProcess::spawn(
                &launcher,
                &backing,
                data_dir,
                &MountOptions::default(),
                Some(&log),
            )?;
            dirs.mounts.lock().unwrap().insert(id, fs);
        }
        Ok(dirs)
    }

    /// Unmounts every filesystem; the first error, if any, after trying all.
    pub fn unmount(&self) -> Result<(), String> {
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap_or_else(|p| p.into_inner()));
        let mut first = Ok(());
        for (_, fs) in mounts {
            if let Err(e) = fs.unmount()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

impl PowerCut for LazyDataDirs {
    fn cut(&self, id: NodeId, torn: TornMode, seed: u64) -> Result<CutReport, String> {
        let mut mounts = self.mounts.lock().unwrap();
        let fs = mounts
            .get_mut(&id)
            .ok_or_else(|| format!("node {id} has no lazy filesystem"))?;
        fs.power_cut(torn, seed)
    }
}

impl Drop for LazyDataDirs {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("harness run: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn power_is_refused_by_name_and_left_out_of_all_where_unavailable() {
        let missing = || Err("/dev/fuse is missing".to_string());
        let mut families = vec![Family::Kill, Family::Power];
        let e = settle(&mut families, true, missing()).unwrap_err();
        assert!(
            e.starts_with("--nemesis power needs lazy filesystems"),
            "{e}"
        );
        assert!(e.contains("/dev/fuse is missing"), "{e}");
        let mut families = Family::ALL.to_vec();
        let note = settle(&mut families, false, missing()).unwrap().unwrap();
        assert!(note.contains("power cuts left out"), "{note}");
        assert!(!families.contains(&Family::Power) && families.contains(&Family::Kill));
        let mut families = Family::ALL.to_vec();
        assert_eq!(settle(&mut families, false, Ok(())), Ok(None));
        assert_eq!(families, Family::ALL.to_vec());
        let mut families = vec![Family::Kill];
        assert_eq!(settle(&mut families, true, missing()), Ok(None));
    }

    #[test]
    fn every_torn_mode_is_drawn() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let drawn: std::collections::BTreeSet<String> =
            (0..50).map(|_| draw_torn(&mut rng).to_string()).collect();
        assert_eq!(drawn.len(), 3, "{drawn:?}");
    }
}
