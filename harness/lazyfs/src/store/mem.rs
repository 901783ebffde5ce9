//! An in-memory [`Store`]: the durable tree as a map of paths, for tests of
//! the model that need no disk.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::{Ino, Meta, Persist, ROOT, Scanned, ScannedBody, Store};

/// A name in the durable tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemEntry {
    File(Ino),
    Dir,
}

#[derive(Debug, Default, Clone)]
pub struct MemStore {
    /// Every durable name but the root's, by path.
    pub tree: BTreeMap<PathBuf, MemEntry>,
    /// File content and metadata by inode.
    pub objects: HashMap<Ino, (Vec<u8>, Meta)>,
    dir_meta: HashMap<PathBuf, Meta>,
    stash: HashMap<Ino, Vec<(PathBuf, MemEntry, Option<Meta>)>>,
    /// How many directory syncs reached the store.
    pub dir_syncs: u64,
}

fn missing(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what}: {} is not in the store", path.display()),
    )
}

impl MemStore {
    /// The durable content of the file at `path`, if one is there.
    pub fn file(&self, path: impl AsRef<Path>) -> Option<&[u8]> {
        match self.tree.get(path.as_ref())? {
            MemEntry::File(ino) => Some(&self.objects[ino].0),
            MemEntry::Dir => None,
        }
    }

    fn parent_exists(&self, path: &Path) -> bool {
        match path.parent() {
            None => false,
            Some(p) if p.as_os_str().is_empty() => true,
            Some(p) => self.tree.get(p) == Some(&MemEntry::Dir),
        }
    }

    fn under(&self, path: &Path) -> Vec<PathBuf> {
        self.tree
            .range(path.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

impl Store for MemStore {
    fn scan(&mut self) -> io::Result<Vec<(Ino, Scanned)>> {
        // Objects no durable name reaches are what a reboot would not find.
        let named: std::collections::HashSet<Ino> = self
            .tree
            .values()
            .filter_map(|e| match e {
                MemEntry::File(i) => Some(*i),
                MemEntry::Dir => None,
            })
            .collect();
        self.objects.retain(|i, _| named.contains(i));
        self.stash.clear();
        let mut next = self.objects.keys().max().copied().unwrap_or(ROOT).max(ROOT) + 1;
        let mut dir_inos: BTreeMap<PathBuf, Ino> = BTreeMap::new();
        dir_inos.insert(PathBuf::new(), ROOT);
        for (p, e) in &self.tree {
            if *e == MemEntry::Dir {
                dir_inos.insert(p.clone(), next);
                next += 1;
            }
        }
        let mut entries: BTreeMap<Ino, Vec<(OsString, Ino)>> =
            dir_inos.values().map(|i| (*i, Vec::new())).collect();
        for (p, e) in &self.tree {
            let parent = dir_inos[p.parent().expect("named paths have a parent")];
            let ino = match e {
                MemEntry::File(i) => *i,
                MemEntry::Dir => dir_inos[p],
            };
            let name = p
                .file_name()
                .expect("named paths have a name")
                .to_os_string();
            entries
                .get_mut(&parent)
                .expect("parent dir")
                .push((name, ino));
        }
        let mut out = Vec::new();
        for (p, ino) in &dir_inos {
            let meta = self
                .dir_meta
                .get(p)
                .copied()
                .unwrap_or_else(|| Meta::new(0o755, 0, 0));
            let entries = entries.remove(ino).unwrap_or_default();
            out.push((
                *ino,
                Scanned {
                    meta,
                    body: ScannedBody::Dir { entries },
                },
            ));
        }
        for (ino, (data, meta)) in &self.objects {
            out.push((
                *ino,
                Scanned {
                    meta: *meta,
                    body: ScannedBody::File {
                        len: data.len() as u64,
                    },
                },
            ));
        }
        Ok(out)
    }

    fn read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = &self
            .objects
            .get(&ino)
            .ok_or_else(|| io::Error::other("no object"))?
            .0;
        let end = off as usize + buf.len();
        if end > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        buf.copy_from_slice(&data[off as usize..end]);
        Ok(())
    }

    fn create_file(&mut self, ino: Ino, meta: &Meta) -> io::Result<()> {
        if self.objects.insert(ino, (Vec::new(), *meta)).is_some() {
            return Err(io::Error::other(format!("object {ino} exists")));
        }
        Ok(())
    }

    fn persist_file(&mut self, ino: Ino, persist: &Persist<'_>) -> io::Result<()> {
        let data = &mut self
            .objects
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("no object"))?
            .0;
        if let Some(cut) = persist.cut {
            data.truncate(cut as usize);
        }
        for (off, bytes) in persist.extents.iter() {
            let end = off as usize + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[off as usize..end].copy_from_slice(bytes);
        }
        data.resize(persist.len as usize, 0);
        Ok(())
    }

    fn remove_file(&mut self, ino: Ino) -> io::Result<()> {
        self.objects.remove(&ino);
        Ok(())
    }

    fn set_file_meta(&mut self, ino: Ino, meta: &Meta) -> io::Result<()> {
        if let Some(o) = self.objects.get_mut(&ino) {
            o.1 = *meta;
        }
        Ok(())
    }

    fn set_dir_meta(&mut self, path: &Path, meta: &Meta) -> io::Result<()> {
        self.dir_meta.insert(path.to_path_buf(), *meta);
        Ok(())
    }

    fn link_file(&mut self, ino: Ino, path: &Path) -> io::Result<()> {
        if !self.parent_exists(path) || !self.objects.contains_key(&ino) {
            return Err(missing("link", path));
        }
        if self.tree.get(path) == Some(&MemEntry::Dir) {
            return Err(io::Error::other(format!(
                "{} is a directory",
                path.display()
            )));
        }
        self.tree.insert(path.to_path_buf(), MemEntry::File(ino));
        Ok(())
    }

    fn unlink(&mut self, path: &Path) -> io::Result<()> {
        match self.tree.get(path) {
            Some(MemEntry::File(_)) => {
                self.tree.remove(path);
                Ok(())
            }
            _ => Err(missing("unlink", path)),
        }
    }

    fn make_dir(&mut self, path: &Path, meta: &Meta) -> io::Result<()> {
        if !self.parent_exists(path) || self.tree.contains_key(path) {
            return Err(missing("make dir", path));
        }
        self.tree.insert(path.to_path_buf(), MemEntry::Dir);
        self.dir_meta.insert(path.to_path_buf(), *meta);
        Ok(())
    }

    fn remove_tree(&mut self, path: &Path) -> io::Result<()> {
        if self.tree.get(path) != Some(&MemEntry::Dir) {
            return Err(missing("remove tree", path));
        }
        for p in self.under(path) {
            self.tree.remove(&p);
            self.dir_meta.remove(&p);
        }
        Ok(())
    }

    fn detach_dir(&mut self, path: &Path, ino: Ino) -> io::Result<()> {
        if self.tree.get(path) != Some(&MemEntry::Dir) {
            return Err(missing("detach", path));
        }
        let mut moved = Vec::new();
        for p in self.under(path) {
            let e = self.tree.remove(&p).expect("listed");
            let meta = self.dir_meta.remove(&p);
            let rel = p.strip_prefix(path).expect("under").to_path_buf();
            moved.push((rel, e, meta));
        }
        self.stash.insert(ino, moved);
        Ok(())
    }

    fn attach_dir(&mut self, ino: Ino, path: &Path) -> io::Result<()> {
        if !self.parent_exists(path) || self.tree.contains_key(path) {
            return Err(missing("attach", path));
        }
        let moved = self
            .stash
            .remove(&ino)
            .ok_or_else(|| io::Error::other(format!("directory {ino} was not detached")))?;
        for (rel, e, meta) in moved {
            let p = if rel.as_os_str().is_empty() {
                path.to_path_buf()
            } else {
                path.join(rel)
            };
            if let Some(m) = meta {
                self.dir_meta.insert(p.clone(), m);
            }
            self.tree.insert(p, e);
        }
        Ok(())
    }

    fn sync_dir(&mut self, _path: &Path) -> io::Result<()> {
        self.dir_syncs += 1;
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}
