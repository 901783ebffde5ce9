//! The exclusive lock on a data dir: `flock` on `dir/LOCK`, which holds the
//! owner's pid so that a refused opener can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::WalError;
use crate::sync_dir;

pub(crate) const LOCK_FILE: &str = "LOCK";

/// Held for as long as the data dir is in use; the lock is released when
/// the file is closed (also when the process dies).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: Flock<File>,
}

pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, WalError> {
    let path = dir.join(LOCK_FILE);
    let existed = path.exists();
    // No truncation on open: the pid belongs to whoever holds the lock.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalError::io("open", &path, e))?;
    if !existed {
        sync_dir(dir)?;
    }
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => {
            let mut f: &File = &locked;
            let pid = format!("{}\n", std::process::id());
            f.set_len(0)
                .and_then(|()| f.seek(SeekFrom::Start(0)))
                .and_then(|_| f.write_all(pid.as_bytes()))
                .map_err(|e| WalError::io("write", &path, e))?;
            Ok(DirLock { _file: locked })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            Err(WalError::Locked {
                dir: dir.to_path_buf(),
                pid,
            })
        }
        Err((_, errno)) => Err(WalError::io("lock", &path, errno.into())),
    }
}
