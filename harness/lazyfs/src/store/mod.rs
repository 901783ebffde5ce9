//! The durable side of the filesystem: what a power cut keeps.
//!
//! The model decides *what* is durable; a [`Store`] keeps it: the content of
//! every file (an "object" per inode, whether or not any durable directory
//! entry names it yet) and the durable directory tree, addressed by paths
//! relative to the root. [`DirStore`] keeps both in a backing directory that
//! mirrors the durable tree; [`MemStore`] keeps them in memory for tests.

mod dir;
mod mem;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use crate::extents::Extents;

pub use dir::{DirStore, PRIVATE_DIR};
pub use mem::{MemEntry, MemStore};

/// Inode number. [`ROOT`] is the root directory.
pub type Ino = u64;

/// The root directory's inode number (FUSE's as well).
pub const ROOT: Ino = 1;

/// Owner, permissions and times of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (`0o7777`).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    pub fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: perm & 0o7777,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }
}

/// New durable content of a file: cut it to `cut` bytes (if given), lay
/// `extents` over it, then set its length to `len` (zero-filling a gap).
#[derive(Debug)]
pub struct Persist<'a> {
    pub cut: Option<u64>,
    pub extents: &'a Extents,
    pub len: u64,
}

/// One inode of a durable tree found by [`Store::scan`].
#[derive(Debug, Clone)]
pub struct Scanned {
    pub meta: Meta,
    pub body: ScannedBody,
}

#[derive(Debug, Clone)]
pub enum ScannedBody {
    File { len: u64 },
    Dir { entries: Vec<(OsString, Ino)> },
}

/// Durable storage. Paths are relative to the root of the durable tree
/// (the empty path is the root). Every method is called only for paths the
/// model knows to exist (or not to exist, for the ones it creates).
pub trait Store: Send {
    /// The durable tree as it is now, with inode numbers assigned (the root
    /// is [`ROOT`]); every file found gets an object.
    fn scan(&mut self) -> io::Result<Vec<(Ino, Scanned)>>;
    /// Fills `buf` with durable bytes of file `ino` from `off`; the range lies
    /// within the durable length.
    fn read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// A new empty object for file `ino`, named by no directory yet.
    fn create_file(&mut self, ino: Ino, meta: &Meta) -> io::Result<()>;
    /// Makes new content of file `ino` durable.
    fn persist_file(&mut self, ino: Ino, persist: &Persist<'_>) -> io::Result<()>;
    /// Forgets file `ino`: no durable entry names it and no one can reach it.
    fn remove_file(&mut self, ino: Ino) -> io::Result<()>;
    /// Applies owner and permissions to file `ino`.
    fn set_file_meta(&mut self, ino: Ino, meta: &Meta) -> io::Result<()>;
    /// Applies owner and permissions to the durable directory at `path`.
    fn set_dir_meta(&mut self, path: &Path, meta: &Meta) -> io::Result<()>;
    /// Makes `path` a durable name of file `ino`, replacing a file there.
    fn link_file(&mut self, ino: Ino, path: &Path) -> io::Result<()>;
    /// Removes the durable file name `path` (the object stays).
    fn unlink(&mut self, path: &Path) -> io::Result<()>;
    /// Creates an empty durable directory at `path`.
    fn make_dir(&mut self, path: &Path, meta: &Meta) -> io::Result<()>;
    /// Removes the durable directory at `path` and every name under it
    /// (objects stay).
    fn remove_tree(&mut self, path: &Path) -> io::Result<()>;
    /// Moves the durable directory at `path` aside, keyed by `ino`, until
    /// [`attach_dir`](Store::attach_dir) puts it at its new place.
    fn detach_dir(&mut self, path: &Path, ino: Ino) -> io::Result<()>;
    fn attach_dir(&mut self, ino: Ino, path: &Path) -> io::Result<()>;
    /// Makes the names in the durable directory at `path` durable.
    fn sync_dir(&mut self, path: &Path) -> io::Result<()>;
    /// Ends a clean session: drops the objects' bookkeeping, leaving exactly
    /// the durable tree.
    fn close(&mut self) -> io::Result<()>;
}
