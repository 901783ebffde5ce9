//! A [`Store`] in a backing directory that mirrors the durable tree.
//!
//! Every durable name is a real name under the backing directory, so after a
//! clean unmount (or a crash of the filesystem process) the backing
//! directory holds exactly what survived. Each file's content also has an
//! "object" name, `PRIVATE_DIR/objects/<ino>`, a hard link to the same
//! inode: files not yet named durably live there, and a durable name is made
//! or dropped without touching the content. The private directory is
//! rebuilt on every mount and removed on a clean unmount.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Ino, Meta, Persist, ROOT, Scanned, ScannedBody, Store};

/// Name of the store's private directory in the backing root; the
/// filesystem refuses it as a name in its root.
pub const PRIVATE_DIR: &str = ".lazyfs";

#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    private: PathBuf,
    /// Whether durable changes are fsynced in the backing directory too
    /// (only a crash of the machine itself needs it; it makes the timing
    /// of syncs like a real disk's).
    sync: bool,
    open: HashMap<Ino, File>,
}

fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn apply_meta(path: &Path, meta: &Meta) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if md.permissions().mode() & 0o7777 != u32::from(meta.perm) {
        fs::set_permissions(path, fs::Permissions::from_mode(u32::from(meta.perm)))?;
    }
    if md.uid() != meta.uid || md.gid() != meta.gid {
        std::os::unix::fs::chown(path, Some(meta.uid), Some(meta.gid))?;
    }
    Ok(())
}

fn meta_of(md: &fs::Metadata) -> Meta {
    let t = |s: i64, ns: i64| {
        std::time::UNIX_EPOCH + std::time::Duration::new(s.max(0) as u64, ns.max(0) as u32)
    };
    Meta {
        perm: (md.mode() & 0o7777) as u16,
        uid: md.uid(),
        gid: md.gid(),
        atime: t(md.atime(), md.atime_nsec()),
        mtime: t(md.mtime(), md.mtime_nsec()),
        ctime: t(md.ctime(), md.ctime_nsec()),
    }
}

impl DirStore {
    /// A store over `root`, which must be an existing directory.
    pub fn new(root: &Path, sync: bool) -> io::Result<DirStore> {
        let md = fs::metadata(root).map_err(|e| context(e, "backing directory", root))?;
        if !md.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("backing {} is not a directory", root.display()),
            ));
        }
        Ok(DirStore {
            root: root.to_path_buf(),
            private: root.join(PRIVATE_DIR),
            sync,
            open: HashMap::new(),
        })
    }

    /// The backing directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object(&self, ino: Ino) -> PathBuf {
        self.private.join("objects").join(ino.to_string())
    }

    fn detached(&self, ino: Ino) -> PathBuf {
        self.private.join("detached").join(ino.to_string())
    }

    fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn file(&mut self, ino: Ino) -> io::Result<&File> {
        if !self.open.contains_key(&ino) {
            let path = self.object(ino);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| context(e, "open", &path))?;
            self.open.insert(ino, f);
        }
        Ok(&self.open[&ino])
    }

    fn fsync_dir(&self, path: &Path) -> io::Result<()> {
        if self.sync {
            File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(|e| context(e, "fsync dir", path))?;
        }
        Ok(())
    }
}

impl Store for DirStore {
    fn scan(&mut self) -> io::Result<Vec<(Ino, Scanned)>> {
        self.open.clear();
        match fs::remove_dir_all(&self.private) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(e, "remove stale", &self.private)),
        }
        for sub in ["objects", "detached"] {
            let p = self.private.join(sub);
            fs::create_dir_all(&p).map_err(|e| context(e, "create", &p))?;
        }
        let mut out = Vec::new();
        let mut next = ROOT + 1;
        // Hard links share an inode: one object each.
        let mut seen: HashMap<(u64, u64), Ino> = HashMap::new();
        let mut stack = vec![(ROOT, self.root.clone())];
        while let Some((ino, dir)) = stack.pop() {
            let md = fs::metadata(&dir).map_err(|e| context(e, "stat", &dir))?;
            let mut entries: Vec<(OsString, Ino)> = Vec::new();
            let mut names: Vec<_> = fs::read_dir(&dir)
                .map_err(|e| context(e, "read dir", &dir))?
                .collect::<io::Result<_>>()
                .map_err(|e| context(e, "read dir", &dir))?;
            names.sort_by_key(|e| e.file_name());
            for entry in names {
                let name = entry.file_name();
                if ino == ROOT && name == PRIVATE_DIR {
                    continue;
                }
                let path = entry.path();
                let cmd = fs::symlink_metadata(&path).map_err(|e| context(e, "stat", &path))?;
                if cmd.is_dir() {
                    let child = next;
                    next += 1;
                    entries.push((name, child));
                    stack.push((child, path));
                } else if cmd.is_file() {
                    let key = (cmd.dev(), cmd.ino());
                    if let Some(&child) = seen.get(&key) {
                        entries.push((name, child));
                        continue;
                    }
                    let child = next;
                    next += 1;
                    seen.insert(key, child);
                    fs::hard_link(&path, self.object(child))
                        .map_err(|e| context(e, "link object for", &path))?;
                    entries.push((name, child));
                    out.push((
                        child,
                        Scanned {
                            meta: meta_of(&cmd),
                            body: ScannedBody::File { len: cmd.len() },
                        },
                    ));
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "{} is neither a regular file nor a directory; the lazy filesystem keeps only those",
                            path.display()
                        ),
                    ));
                }
            }
            out.push((
                ino,
                Scanned {
                    meta: meta_of(&md),
                    body: ScannedBody::Dir { entries },
                },
            ));
        }
        Ok(out)
    }

    fn read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file(ino)?.read_exact_at(buf, off)
    }

    fn create_file(&mut self, ino: Ino, meta: &Meta) -> io::Result<()> {
        let path = self.object(ino);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(u32::from(meta.perm))
            .open(&path)
            .map_err(|e| context(e, "create", &path))?;
        apply_meta(&path, meta).map_err(|e| context(e, "set owner and mode of", &path))?;
        self.open.insert(ino, f);
        Ok(())
    }

    fn persist_file(&mut self, ino: Ino, persist: &Persist<'_>) -> io::Result<()> {
        let sync = self.sync;
        let f = self.file(ino)?;
        if let Some(cut) = persist.cut {
            f.set_len(cut)?;
        }
        for (off, bytes) in persist.extents.iter() {
            f.write_all_at(bytes, off)?;
        }
        f.set_len(persist.len)?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }

    fn remove_file(&mut self, ino: Ino) -> io::Result<()> {
        self.open.remove(&ino);
        let path = self.object(ino);
        fs::remove_file(&path).map_err(|e| context(e, "remove", &path))
    }

    fn set_file_meta(&mut self, ino: Ino, meta: &Meta) -> io::Result<()> {
        let path = self.object(ino);
        apply_meta(&path, meta).map_err(|e| context(e, "set owner and mode of", &path))
    }

    fn set_dir_meta(&mut self, path: &Path, meta: &Meta) -> io::Result<()> {
        let path = self.path(path);
        apply_meta(&path, meta).map_err(|e| context(e, "set owner and mode of", &path))
    }

    fn link_file(&mut self, ino: Ino, path: &Path) -> io::Result<()> {
        // Link beside the objects, then rename into place: atomic, and it
        // replaces a file of that name.
        let tmp = self.private.join("linking");
        let _ = fs::remove_file(&tmp);
        let object = self.object(ino);
        fs::hard_link(&object, &tmp).map_err(|e| context(e, "link", &object))?;
        let dest = self.path(path);
        fs::rename(&tmp, &dest).map_err(|e| context(e, "rename to", &dest))
    }

    fn unlink(&mut self, path: &Path) -> io::Result<()> {
        let path = self.path(path);
        fs::remove_file(&path).map_err(|e| context(e, "unlink", &path))
    }

    fn make_dir(&mut self, path: &Path, meta: &Meta) -> io::Result<()> {
        let path = self.path(path);
        fs::create_dir(&path).map_err(|e| context(e, "mkdir", &path))?;
        apply_meta(&path, meta).map_err(|e| context(e, "set owner and mode of", &path))
    }

    fn remove_tree(&mut self, path: &Path) -> io::Result<()> {
        let path = self.path(path);
        fs::remove_dir_all(&path).map_err(|e| context(e, "remove", &path))
    }

    fn detach_dir(&mut self, path: &Path, ino: Ino) -> io::Result<()> {
        let from = self.path(path);
        let to = self.detached(ino);
        fs::rename(&from, &to).map_err(|e| context(e, "move aside", &from))
    }

    fn attach_dir(&mut self, ino: Ino, path: &Path) -> io::Result<()> {
        let from = self.detached(ino);
        let to = self.path(path);
        fs::rename(&from, &to).map_err(|e| context(e, "move to", &to))
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        self.fsync_dir(&self.path(path))
    }

    fn close(&mut self) -> io::Result<()> {
        self.open.clear();
        match fs::remove_dir_all(&self.private) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(context(e, "remove", &self.private)),
        }
    }
}
