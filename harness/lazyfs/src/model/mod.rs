//! The lazy filesystem's semantics, free of FUSE: a tree of inodes whose
//! current state (what reads see) runs ahead of their durable state (what a
//! power cut keeps), driven by POSIX-shaped calls.
//!
//! - A file's content and length become durable at `fsync`/`fdatasync`
//!   of that file ([`Model::fsync`]); until then writes and truncations live
//!   in memory ([`FileData`]).
//! - A directory's entries become durable at an `fsync` of that directory:
//!   creates, links, renames and removals in it are undone by a power cut
//!   until then. A rename that moves an entry between two directories is
//!   durable in each at that directory's fsync, except for directories,
//!   which move atomically at the fsync of their new parent (a directory
//!   has one parent).
//! - [`Model::power_cut`] makes every directory and file revert to its
//!   durable state, optionally keeping a torn part of unsynced appends.

mod cut;
mod file;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::store::{Ino, Meta, PRIVATE_DIR, ROOT, ScannedBody, Store};

pub use cut::{CutReport, TornFile, TornMode};
pub use file::FileData;

/// An errno for the caller of a filesystem operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsError(pub i32);

impl FsError {
    pub const ENOENT: FsError = FsError(libc::ENOENT);
    pub const EEXIST: FsError = FsError(libc::EEXIST);
    pub const ENOTDIR: FsError = FsError(libc::ENOTDIR);
    pub const EISDIR: FsError = FsError(libc::EISDIR);
    pub const ENOTEMPTY: FsError = FsError(libc::ENOTEMPTY);
    pub const EINVAL: FsError = FsError(libc::EINVAL);
    pub const EPERM: FsError = FsError(libc::EPERM);
    pub const EACCES: FsError = FsError(libc::EACCES);
    pub const EIO: FsError = FsError(libc::EIO);
    pub const EFBIG: FsError = FsError(libc::EFBIG);
    pub const EOPNOTSUPP: FsError = FsError(libc::EOPNOTSUPP);
}

pub type FsResult<T> = Result<T, FsError>;

/// Largest file length accepted (as ext4's).
const MAX_FILE_LEN: u64 = 1 << 44;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub nlink: u32,
    pub meta: Meta,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    pub ino: Ino,
    pub kind: Kind,
}

/// A directory's entries and its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub parent: Ino,
    pub entries: Vec<DirEntry>,
}

/// Changes asked by `setattr` (chmod, chown, truncate, utimes).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub size: Option<u64>,
    pub perm: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// Counters and the amount of unsynced state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Files and directories alive now.
    pub files: u64,
    pub dirs: u64,
    /// Unsynced bytes held in memory (written since the file's last sync).
    pub unsynced_bytes: u64,
    /// Files whose content or length differs from their durable state.
    pub unsynced_files: u64,
    /// Directory entries that differ from their durable state.
    pub unsynced_entries: u64,
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    pub power_cuts: u64,
    /// Set when the backing store failed: every operation then fails with EIO.
    pub failure: Option<String>,
}

#[derive(Debug)]
pub(crate) struct DirData {
    /// The parent in the current tree (the root's is itself).
    parent: Ino,
    current: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
    /// The durable entry naming this directory, if any.
    durable_parent: Option<(Ino, OsString)>,
}

#[derive(Debug)]
pub(crate) enum Body {
    File(FileData),
    Dir(DirData),
}

#[derive(Debug)]
pub(crate) struct Inode {
    meta: Meta,
    /// Current directory entries naming it.
    links: u32,
    /// Durable directory entries naming it.
    durable_refs: u32,
    /// Open file handles.
    open: u32,
    body: Body,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
        }
    }
}

/// The filesystem: inodes over a [`Store`].
#[derive(Debug)]
pub struct Model<S: Store> {
    store: S,
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    stats: Stats,
}

fn io_failure(e: io::Error) -> String {
    format!("backing store failed: {e}")
}

impl<S: Store> Model<S> {
    /// A model of the durable tree the store holds now.
    pub fn load(mut store: S) -> io::Result<Model<S>> {
        let scanned = store.scan()?;
        let mut inodes = HashMap::new();
        let mut next_ino = ROOT + 1;
        let mut refs: HashMap<Ino, u32> = HashMap::new();
        let mut parents: HashMap<Ino, (Ino, OsString)> = HashMap::new();
        for (ino, s) in &scanned {
            next_ino = next_ino.max(ino + 1);
            if let ScannedBody::Dir { entries } = &s.body {
                for (name, child) in entries {
                    *refs.entry(*child).or_default() += 1;
                    parents.insert(*child, (*ino, name.clone()));
                }
            }
        }
        for (ino, s) in scanned {
            let n = refs.get(&ino).copied().unwrap_or(0);
            let body = match s.body {
                ScannedBody::File { len } => Body::File(FileData::synced(len)),
                ScannedBody::Dir { entries } => {
                    let map: BTreeMap<OsString, Ino> = entries.into_iter().collect();
                    let durable_parent = parents.get(&ino).cloned();
                    Body::Dir(DirData {
                        parent: durable_parent.as_ref().map_or(ROOT, |p| p.0),
                        current: map.clone(),
                        durable: map,
                        durable_parent,
                    })
                }
            };
            inodes.insert(
                ino,
                Inode {
                    meta: s.meta,
                    links: if ino == ROOT { 1 } else { n },
                    durable_refs: n,
                    open: 0,
                    body,
                },
            );
        }
        if !matches!(inodes.get(&ROOT).map(|i| &i.body), Some(Body::Dir(_))) {
            return Err(io::Error::other("the store has no root directory"));
        }
        let mut model = Model {
            store,
            inodes,
            next_ino,
            stats: Stats::default(),
        };
        model.count();
        Ok(model)
    }

    /// The store underneath (tests look at what is durable there).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ends a clean session: the store keeps exactly the durable tree.
    /// Unsynced state is lost, as in a power cut; every later operation
    /// fails.
    pub fn close(&mut self) -> io::Result<()> {
        self.stats.failure = Some("the filesystem is closed".into());
        self.store.close()
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.unsynced_bytes = 0;
        s.unsynced_files = 0;
        s.unsynced_entries = 0;
        for inode in self.inodes.values() {
            match &inode.body {
                Body::File(f) => {
                    s.unsynced_bytes += f.unsynced_bytes();
                    s.unsynced_files += u64::from(f.needs_sync());
                }
                Body::Dir(d) => s.unsynced_entries += unsynced_entries(d),
            }
        }
        s
    }

    fn count(&mut self) {
        self.stats.files = 0;
        self.stats.dirs = 0;
        for inode in self.inodes.values() {
            match inode.kind() {
                Kind::File => self.stats.files += 1,
                Kind::Dir => self.stats.dirs += 1,
            }
        }
    }

    fn check_usable(&self) -> FsResult<()> {
        match self.stats.failure {
            Some(_) => Err(FsError::EIO),
            None => Ok(()),
        }
    }

    /// Records a store failure: the model no longer matches the store, so
    /// every later operation fails.
    fn fail(&mut self, e: io::Error) -> FsError {
        if self.stats.failure.is_none() {
            self.stats.failure = Some(io_failure(e));
        }
        FsError::EIO
    }

    fn inode(&self, ino: Ino) -> FsResult<&Inode> {
        self.inodes.get(&ino).ok_or(FsError::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> FsResult<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(FsError::ENOENT)
    }

    fn dir(&self, ino: Ino) -> FsResult<&DirData> {
        match &self.inode(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(FsError::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> FsResult<&mut DirData> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(FsError::ENOTDIR),
        }
    }

    pub fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let inode = self.inode(ino)?;
        let (size, nlink) = match &inode.body {
            Body::File(f) => (f.len(), inode.links),
            Body::Dir(d) => {
                let subdirs = d
                    .current
                    .values()
                    .filter(|c| self.inodes.get(c).is_some_and(|i| i.kind() == Kind::Dir))
                    .count() as u32;
                (d.current.len() as u64, 2 + subdirs)
            }
        };
        Ok(Attr {
            ino,
            kind: inode.kind(),
            size,
            nlink,
            meta: inode.meta,
        })
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> FsResult<Attr> {
        let ino = *self.dir(parent)?.current.get(name).ok_or(FsError::ENOENT)?;
        self.getattr(ino)
    }

    /// Entries of a directory (without `.` and `..`) and its parent.
    pub fn readdir(&self, ino: Ino) -> FsResult<Listing> {
        let d = self.dir(ino)?;
        let entries = d
            .current
            .iter()
            .filter_map(|(n, c)| {
                Some(DirEntry {
                    name: n.clone(),
                    ino: *c,
                    kind: self.inodes.get(c)?.kind(),
                })
            })
            .collect();
        Ok(Listing {
            parent: d.parent,
            entries,
        })
    }

    /// Every name in the current tree: path (the root's is empty) to inode
    /// and kind.
    pub fn tree(&self) -> BTreeMap<PathBuf, (Ino, Kind)> {
        let mut out = BTreeMap::new();
        out.insert(PathBuf::new(), (ROOT, Kind::Dir));
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((dir, path)) = stack.pop() {
            let Ok(d) = self.dir(dir) else { continue };
            for (name, ino) in &d.current {
                let Some(inode) = self.inodes.get(ino) else {
                    continue;
                };
                let p = path.join(name);
                out.insert(p.clone(), (*ino, inode.kind()));
                if inode.kind() == Kind::Dir {
                    stack.push((*ino, p));
                }
            }
        }
        out
    }

    fn check_new_name(&self, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.check_usable()?;
        if name.is_empty() || name == "." || name == ".." || name.as_encoded_bytes().contains(&b'/')
        {
            return Err(FsError::EINVAL);
        }
        if parent == ROOT && name == PRIVATE_DIR {
            return Err(FsError::EACCES);
        }
        if self.inode(parent)?.links == 0 {
            // A removed directory takes no new entries.
            return Err(FsError::ENOENT);
        }
        if self.dir(parent)?.current.contains_key(name) {
            return Err(FsError::EEXIST);
        }
        Ok(())
    }

    fn touch_dir(&mut self, dir: Ino) {
        if let Some(i) = self.inodes.get_mut(&dir) {
            let now = SystemTime::now();
            i.meta.mtime = now;
            i.meta.ctime = now;
        }
    }

    fn insert_entry(&mut self, parent: Ino, name: &OsStr, ino: Ino) {
        if let Ok(d) = self.dir_mut(parent) {
            d.current.insert(name.to_os_string(), ino);
        }
        self.touch_dir(parent);
    }

    /// Creates an empty regular file (`creat`, `open(O_CREAT)`, `mknod`).
    pub fn create(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> FsResult<Attr> {
        self.check_new_name(parent, name)?;
        if let Err(e) = self.store.create_file(self.next_ino, &meta) {
            return Err(self.fail(e));
        }
        self.stats.files += 1;
        self.add_inode(parent, name, meta, Body::File(FileData::synced(0)))
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> FsResult<Attr> {
        self.check_new_name(parent, name)?;
        self.stats.dirs += 1;
        let body = Body::Dir(DirData {
            parent,
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
            durable_parent: None,
        });
        self.add_inode(parent, name, meta, body)
    }

    /// A new inode named `name` in `parent` (not yet durably).
    fn add_inode(&mut self, parent: Ino, name: &OsStr, meta: Meta, body: Body) -> FsResult<Attr> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let inode = Inode {
            meta,
            links: 1,
            durable_refs: 0,
            open: 0,
            body,
        };
        self.inodes.insert(ino, inode);
        self.insert_entry(parent, name, ino);
        self.getattr(ino)
    }

    /// A new name for an existing file (`link`).
    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> FsResult<Attr> {
        self.check_new_name(parent, name)?;
        let inode = self.inode_mut(ino)?;
        if inode.kind() == Kind::Dir {
            return Err(FsError::EPERM);
        }
        inode.links += 1;
        inode.meta.ctime = SystemTime::now();
        self.insert_entry(parent, name, ino);
        self.getattr(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.check_usable()?;
        let ino = *self.dir(parent)?.current.get(name).ok_or(FsError::ENOENT)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::EISDIR);
        }
        self.remove_entry(parent, name, ino)
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.check_usable()?;
        let ino = *self.dir(parent)?.current.get(name).ok_or(FsError::ENOENT)?;
        if !self.dir(ino)?.current.is_empty() {
            return Err(FsError::ENOTEMPTY);
        }
        self.remove_entry(parent, name, ino)
    }

    fn remove_entry(&mut self, parent: Ino, name: &OsStr, ino: Ino) -> FsResult<()> {
        self.dir_mut(parent)?.current.remove(name);
        self.touch_dir(parent);
        let inode = self.inode_mut(ino)?;
        inode.links -= 1;
        inode.meta.ctime = SystemTime::now();
        self.maybe_free(ino)
    }

    /// Whether `ino` is `ancestor` or lies under it in the current tree.
    fn is_under(&self, mut ino: Ino, ancestor: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino) {
                Ok(d) if d.parent != ino => ino = d.parent,
                _ => return false,
            }
        }
    }

    /// `rename(2)`, replacing an existing target as POSIX says; with
    /// `noreplace` (RENAME_NOREPLACE) an existing target is EEXIST.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        noreplace: bool,
    ) -> FsResult<()> {
        self.check_usable()?;
        let src = *self.dir(parent)?.current.get(name).ok_or(FsError::ENOENT)?;
        let target = self.dir(new_parent)?.current.get(new_name).copied();
        if new_name.is_empty() || new_name == "." || new_name == ".." {
            return Err(FsError::EINVAL);
        }
        if new_parent == ROOT && new_name == PRIVATE_DIR {
            return Err(FsError::EACCES);
        }
        if self.inode(new_parent)?.links == 0 {
            return Err(FsError::ENOENT);
        }
        let src_kind = self.inode(src)?.kind();
        if src_kind == Kind::Dir && self.is_under(new_parent, src) {
            return Err(FsError::EINVAL);
        }
        if let Some(t) = target {
            if noreplace {
                return Err(FsError::EEXIST);
            }
            if t == src {
                // Two names of one file: POSIX says do nothing.
                return Ok(());
            }
            match (src_kind, self.inode(t)?.kind()) {
                (Kind::File, Kind::Dir) => return Err(FsError::EISDIR),
                (Kind::Dir, Kind::File) => return Err(FsError::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(t)?.current.is_empty() => {
                    return Err(FsError::ENOTEMPTY);
                }
                _ => {}
            }
        }
        self.dir_mut(parent)?.current.remove(name);
        self.touch_dir(parent);
        self.insert_entry(new_parent, new_name, src);
        if let Body::Dir(d) = &mut self.inode_mut(src)?.body {
            d.parent = new_parent;
        }
        self.inode_mut(src)?.meta.ctime = SystemTime::now();
        if let Some(t) = target {
            self.inode_mut(t)?.links -= 1;
            self.maybe_free(t)?;
        }
        Ok(())
    }

    /// An open handle keeps an unlinked file alive until [`release`](Model::release).
    pub fn open(&mut self, ino: Ino) -> FsResult<()> {
        self.check_usable()?;
        self.inode_mut(ino)?.open += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) -> FsResult<()> {
        let inode = self.inode_mut(ino)?;
        inode.open = inode.open.saturating_sub(1);
        self.maybe_free(ino)
    }

    /// Drops an inode nothing names or holds open, now or durably.
    fn maybe_free(&mut self, ino: Ino) -> FsResult<()> {
        let Some(inode) = self.inodes.get(&ino) else {
            return Ok(());
        };
        if ino == ROOT || inode.links > 0 || inode.open > 0 || inode.durable_refs > 0 {
            return Ok(());
        }
        let inode = self.inodes.remove(&ino).expect("present");
        match inode.body {
            Body::File(_) => {
                self.stats.files -= 1;
                if let Err(e) = self.store.remove_file(ino) {
                    return Err(self.fail(e));
                }
            }
            Body::Dir(d) => {
                self.stats.dirs -= 1;
                // Its durable entries no longer reach anything.
                for child in d.durable.values() {
                    self.drop_durable_ref(*child);
                    self.maybe_free(*child)?;
                }
            }
        }
        Ok(())
    }

    fn drop_durable_ref(&mut self, ino: Ino) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.durable_refs -= 1;
            if let Body::Dir(d) = &mut i.body {
                d.durable_parent = None;
            }
        }
    }

    /// `chmod`, `chown`, `truncate`, `utimes`. Owner and permissions are
    /// durable at once; a new size is unsynced data like a write.
    pub fn setattr(&mut self, ino: Ino, set: SetAttr) -> FsResult<Attr> {
        self.check_usable()?;
        if let Some(size) = set.size {
            self.set_len(ino, size)?;
        }
        let inode = self.inode_mut(ino)?;
        let now = SystemTime::now();
        let meta_changed = set.perm.is_some() || set.uid.is_some() || set.gid.is_some();
        if let Some(p) = set.perm {
            inode.meta.perm = p & 0o7777;
        }
        if let Some(u) = set.uid {
            inode.meta.uid = u;
        }
        if let Some(g) = set.gid {
            inode.meta.gid = g;
        }
        if let Some(t) = set.atime {
            inode.meta.atime = t;
        }
        if let Some(t) = set.mtime {
            inode.meta.mtime = t;
        }
        if meta_changed || set.atime.is_some() || set.mtime.is_some() {
            inode.meta.ctime = now;
        }
        if meta_changed {
            let meta = inode.meta;
            let result = match inode.kind() {
                Kind::File => self.store.set_file_meta(ino, &meta),
                Kind::Dir => match self.durable_path(ino) {
                    Some(p) => self.store.set_dir_meta(&p, &meta),
                    None => Ok(()),
                },
            };
            if let Err(e) = result {
                return Err(self.fail(e));
            }
        }
        self.getattr(ino)
    }

    /// The path of a directory in the durable tree, if the chain of durable
    /// entries from the root reaches it.
    fn durable_path(&self, mut ino: Ino) -> Option<PathBuf> {
        let mut names = Vec::new();
        while ino != ROOT {
            let (parent, name) = self.dir(ino).ok()?.durable_parent.as_ref()?;
            names.push(name.clone());
            ino = *parent;
            if names.len() > self.inodes.len() {
                return None;
            }
        }
        Some(names.iter().rev().collect())
    }
}

fn unsynced_entries(d: &DirData) -> u64 {
    let changed = d
        .current
        .iter()
        .filter(|(n, i)| d.durable.get(*n) != Some(i))
        .count();
    let removed = d
        .durable
        .keys()
        .filter(|n| !d.current.contains_key(*n))
        .count();
    (changed + removed) as u64
}
