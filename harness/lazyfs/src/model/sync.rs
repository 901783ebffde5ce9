//! fsync of a directory: its current entries become its durable entries,
//! and the store's durable tree follows.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;

use super::{Body, FsResult, Kind, Model};
use crate::store::{Ino, ROOT, Store};

/// Entries of one directory that differ between current and durable.
struct Diff {
    /// Durable entries that no longer name the same inode.
    removed: Vec<(OsString, Ino)>,
    /// Current entries not yet durable.
    added: Vec<(OsString, Ino)>,
}

impl<S: Store> Model<S> {
    pub(super) fn sync_dir(&mut self, dir: Ino) -> FsResult<()> {
        self.stats.dir_fsyncs += 1;
        self.sync_dir_entries(dir, true)
    }

    fn diff(&self, dir: Ino) -> FsResult<Diff> {
        let d = self.dir(dir)?;
        Ok(Diff {
            removed: d
                .durable
                .iter()
                .filter(|(n, i)| d.current.get(*n) != Some(i))
                .map(|(n, i)| (n.clone(), *i))
                .collect(),
            added: d
                .current
                .iter()
                .filter(|(n, i)| d.durable.get(*n) != Some(i))
                .map(|(n, i)| (n.clone(), *i))
                .collect(),
        })
    }

    fn is_dir(&self, ino: Ino) -> bool {
        self.inodes.get(&ino).is_some_and(|i| i.kind() == Kind::Dir)
    }

    /// Whether `ino` is `ancestor` or lies under it in the durable tree.
    fn durably_under(&self, mut ino: Ino, ancestor: Ino) -> bool {
        for _ in 0..=self.inodes.len() {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino).ok().and_then(|d| d.durable_parent.as_ref()) {
                Some((p, _)) => ino = *p,
                None => return false,
            }
        }
        false
    }

    fn sync_dir_entries(&mut self, dir: Ino, may_sync_ancestors: bool) -> FsResult<()> {
        let diff = self.diff(dir)?;
        if diff.removed.is_empty() && diff.added.is_empty() {
            return Ok(());
        }
        // A directory moved under one of its durable descendants would make
        // the durable tree a cycle. Syncing this directory's current
        // ancestors first (the current tree has no cycle) avoids that; it
        // is more durability than asked for, never less.
        if may_sync_ancestors
            && diff
                .added
                .iter()
                .any(|(_, x)| self.is_dir(*x) && self.durably_under(dir, *x))
        {
            let mut chain = Vec::new();
            let mut a = dir;
            while a != ROOT {
                a = self.dir(a)?.parent;
                chain.push(a);
            }
            for a in chain.into_iter().rev() {
                self.sync_dir_entries(a, false)?;
            }
            return self.sync_dir_entries(dir, false);
        }

        let dir_path = self.durable_path(dir);
        // Directories that move here from a place in the durable tree.
        let mut moved: Vec<(Ino, PathBuf)> = diff
            .added
            .iter()
            .filter(|(_, x)| self.is_dir(*x))
            .filter_map(|(_, x)| Some((*x, self.durable_path(*x)?)))
            .collect();
        // Deepest first: a move out of a directory that itself moves.
        moved.sort_by_key(|(_, p)| std::cmp::Reverse(p.components().count()));
        let moved_set: HashSet<Ino> = moved.iter().map(|(x, _)| *x).collect();
        let mut old_parents = Vec::new();

        // The model: this directory's durable entries become its current ones.
        {
            let d = self.dir_mut(dir)?;
            for (n, _) in &diff.removed {
                d.durable.remove(n);
            }
        }
        for (_, x) in &diff.removed {
            self.drop_durable_ref(*x);
        }
        for (n, x) in &diff.added {
            let inode = self.inode_mut(*x)?;
            inode.durable_refs += 1;
            let old = match &mut inode.body {
                Body::Dir(d) => d.durable_parent.replace((dir, n.clone())),
                Body::File(_) => None,
            };
            if let Some((p, m)) = old {
                // A directory has one durable parent: the move is durable
                // in its old parent as well.
                self.inode_mut(*x)?.durable_refs -= 1;
                self.dir_mut(p)?.durable.remove(&m);
                old_parents.push(p);
            }
            self.dir_mut(dir)?.durable.insert(n.clone(), *x);
        }

        // The store.
        if let Err(e) = self.apply_dir_sync(dir, dir_path, &diff, &moved, &moved_set, &old_parents)
        {
            return Err(self.fail(e));
        }
        for (_, x) in &diff.removed {
            self.maybe_free(*x)?;
        }
        Ok(())
    }

    fn apply_dir_sync(
        &mut self,
        dir: Ino,
        dir_path: Option<PathBuf>,
        diff: &Diff,
        moved: &[(Ino, PathBuf)],
        moved_set: &HashSet<Ino>,
        old_parents: &[Ino],
    ) -> std::io::Result<()> {
        let Some(dp) = dir_path else {
            // This directory is not in the durable tree: what moved here
            // from it leaves the durable tree.
            for (_, old) in moved {
                self.store.remove_tree(old)?;
            }
            return self.sync_old_parents(dir, old_parents);
        };
        for (x, old) in moved {
            self.store.detach_dir(old, *x)?;
        }
        let added_files: HashSet<&OsString> = diff
            .added
            .iter()
            .filter(|(_, x)| !self.is_dir(*x))
            .map(|(n, _)| n)
            .collect();
        for (n, x) in &diff.removed {
            if moved_set.contains(x) {
                continue; // already moved aside from here
            }
            let path = dp.join(n);
            match self.inodes.get(x).map(|i| i.kind()) {
                Some(Kind::Dir) => self.store.remove_tree(&path)?,
                // A file replaced by a file: the link below replaces it
                // atomically.
                _ if added_files.contains(n) => {}
                _ => self.store.unlink(&path)?,
            }
        }
        for (n, x) in &diff.added {
            let path = dp.join(n);
            if !self.is_dir(*x) {
                self.store.link_file(*x, &path)?;
            } else if moved_set.contains(x) {
                self.store.attach_dir(*x, &path)?;
            } else {
                self.materialize(*x, path)?;
            }
        }
        self.sync_old_parents(dir, old_parents)?;
        self.store.sync_dir(&dp)
    }

    fn sync_old_parents(&mut self, dir: Ino, old_parents: &[Ino]) -> std::io::Result<()> {
        for p in old_parents {
            if *p != dir
                && let Some(path) = self.durable_path(*p)
            {
                self.store.sync_dir(&path)?;
            }
        }
        Ok(())
    }

    /// Creates directory `ino` and its durable subtree at `path` in the store.
    fn materialize(&mut self, ino: Ino, path: PathBuf) -> std::io::Result<()> {
        let meta = self.inodes[&ino].meta;
        self.store.make_dir(&path, &meta)?;
        let entries: Vec<(OsString, Ino)> = match &self.inodes[&ino].body {
            Body::Dir(d) => d.durable.iter().map(|(n, i)| (n.clone(), *i)).collect(),
            Body::File(_) => unreachable!("materialize is called for directories"),
        };
        for (n, c) in entries {
            if self.is_dir(c) {
                self.materialize(c, path.join(&n))?;
            } else {
                self.store.link_file(c, &path.join(&n))?;
            }
        }
        self.store.sync_dir(&path)
    }
}
