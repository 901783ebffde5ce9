//! A power cut: everything unsynced is lost, except what a torn write keeps.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Body, FileData, FsResult, Model, unsynced_entries};
use crate::extents::Extents;
use crate::store::{Ino, Persist, ROOT, Store};

/// Page size for [`TornMode::Pages`].
pub const PAGE: u64 = 4096;

/// What a power cut keeps of the bytes a file gained since its last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TornMode {
    /// Nothing: every file reverts to its last synced content and length.
    #[default]
    None,
    /// A seeded random prefix (0 to all bytes) of what the file grew by.
    /// Overwrites within the synced length are lost.
    Prefix,
    /// As a page cache writes back: the growth is kept up to a seeded random
    /// page boundary, and each page overwritten within the synced length is
    /// kept or lost on its own (a coin flip per page).
    Pages,
}

impl FromStr for TornMode {
    type Err = String;
    fn from_str(s: &str) -> Result<TornMode, String> {
        match s {
            "none" => Ok(TornMode::None),
            "prefix" => Ok(TornMode::Prefix),
            "pages" => Ok(TornMode::Pages),
            _ => Err(format!(
                "unknown torn mode `{s}` (expected none, prefix or pages)"
            )),
        }
    }
}

impl std::fmt::Display for TornMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TornMode::None => "none",
            TornMode::Prefix => "prefix",
            TornMode::Pages => "pages",
        })
    }
}

/// A file that kept part of its unsynced bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TornFile {
    /// A durable path of the file.
    pub path: PathBuf,
    /// Its durable length before the cut.
    pub synced_len: u64,
    /// Its length before the cut.
    pub len_before: u64,
    /// Its length after the cut.
    pub len_after: u64,
    /// Bytes kept in all (growth and overwritten pages).
    pub kept_bytes: u64,
}

/// What one power cut did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CutReport {
    /// Files whose content or length changed.
    pub files_reverted: u64,
    /// Unsynced bytes dropped.
    pub bytes_lost: u64,
    /// Unsynced bytes kept by torn writes.
    pub bytes_kept: u64,
    /// Directory entries undone (creates, renames, removals).
    pub entries_undone: u64,
    /// Files and directories that no durable entry reached: gone.
    pub inodes_dropped: u64,
    pub torn: Vec<TornFile>,
}

impl<S: Store> Model<S> {
    /// Loses every unsynced change, as a power failure would. The caller
    /// has stopped every process using the filesystem; their open handles
    /// are forgotten. `seed` makes torn writes reproducible.
    pub fn power_cut(&mut self, torn: TornMode, seed: u64) -> FsResult<CutReport> {
        self.check_usable()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut report = CutReport::default();

        // Every directory reverts to its durable entries.
        for inode in self.inodes.values_mut() {
            if let Body::Dir(d) = &mut inode.body {
                report.entries_undone += unsynced_entries(d);
                d.current = d.durable.clone();
                d.parent = d.durable_parent.as_ref().map_or(ROOT, |p| p.0);
            }
        }

        // What the durable tree reaches survives; a path for each.
        let mut paths: BTreeMap<Ino, PathBuf> = BTreeMap::new();
        paths.insert(ROOT, PathBuf::new());
        let mut stack = vec![ROOT];
        while let Some(dir) = stack.pop() {
            let Body::Dir(d) = &self.inodes[&dir].body else {
                continue;
            };
            let base = paths[&dir].clone();
            for (n, c) in &d.durable {
                if !paths.contains_key(c) {
                    paths.insert(*c, base.join(n));
                    stack.push(*c);
                }
            }
        }

        let dropped: Vec<Ino> = self
            .inodes
            .keys()
            .filter(|i| !paths.contains_key(i))
            .copied()
            .collect();
        for ino in dropped {
            let inode = self.inodes.remove(&ino).expect("listed");
            report.inodes_dropped += 1;
            if let Body::File(f) = inode.body {
                report.bytes_lost += f.unsynced_bytes();
                if let Err(e) = self.store.remove_file(ino) {
                    return Err(self.fail(e));
                }
            }
        }

        for (ino, path) in &paths {
            if let Err(e) = self.cut_file(*ino, path, torn, &mut rng, &mut report) {
                return Err(self.fail(e));
            }
        }

        // Links and durable references from the surviving durable tree.
        let mut refs: HashMap<Ino, u32> = HashMap::new();
        for inode in self.inodes.values() {
            if let Body::Dir(d) = &inode.body {
                for c in d.durable.values() {
                    *refs.entry(*c).or_default() += 1;
                }
            }
        }
        for (ino, inode) in self.inodes.iter_mut() {
            let n = refs.get(ino).copied().unwrap_or(0);
            inode.durable_refs = n;
            inode.links = if *ino == ROOT { 1 } else { n };
            inode.open = 0;
        }
        self.count();
        self.stats.power_cuts += 1;
        Ok(report)
    }

    fn cut_file(
        &mut self,
        ino: Ino,
        path: &std::path::Path,
        torn: TornMode,
        rng: &mut ChaCha8Rng,
        report: &mut CutReport,
    ) -> std::io::Result<()> {
        let Body::File(f) = &self.inodes[&ino].body else {
            return Ok(());
        };
        if !f.needs_sync() {
            return Ok(());
        }
        report.files_reverted += 1;
        let unsynced = f.unsynced_bytes();
        let keep = torn_keep(f, torn, rng);
        let mut kept = Extents::default();
        let mut kept_bytes = 0;
        let mut new_len = f.synced_len();
        for (lo, hi) in &keep.ranges {
            let mut buf = vec![0; (hi - lo) as usize];
            f.read_into(&mut self.store, ino, *lo, &mut buf)?;
            kept.write(*lo, &buf);
            kept_bytes += hi - lo;
            new_len = new_len.max(*hi);
        }
        let len_before = f.len();
        let synced_len = f.synced_len();
        if kept_bytes > 0 {
            self.store.persist_file(
                ino,
                &Persist {
                    cut: None,
                    extents: &kept,
                    len: new_len,
                },
            )?;
            report.torn.push(TornFile {
                path: path.to_path_buf(),
                synced_len,
                len_before,
                len_after: new_len,
                kept_bytes,
            });
        }
        report.bytes_kept += kept_bytes;
        report.bytes_lost += unsynced.saturating_sub(kept_bytes);
        if let Body::File(f) = &mut self.inodes.get_mut(&ino).expect("present").body {
            *f = FileData::synced(new_len);
        }
        Ok(())
    }
}

/// Byte ranges of a file's current content that a cut keeps.
struct Keep {
    ranges: Vec<(u64, u64)>,
}

fn torn_keep(f: &FileData, torn: TornMode, rng: &mut ChaCha8Rng) -> Keep {
    let mut ranges = Vec::new();
    // After a truncation the durable bytes it hid are gone from the current
    // view; nothing partial is kept then.
    if torn == TornMode::None || f.truncated_since_sync() {
        return Keep { ranges };
    }
    let synced = f.synced_len();
    if torn == TornMode::Pages {
        let dirty = f.dirty();
        let mut page = 0;
        while page * PAGE < synced {
            let lo = page * PAGE;
            let hi = (lo + PAGE).min(synced);
            if dirty.touches(lo, hi) && rng.random_bool(0.5) {
                ranges.push((lo, hi));
            }
            page += 1;
        }
    }
    if f.len() > synced {
        let end = match torn {
            TornMode::Prefix => synced + rng.random_range(0..=f.len() - synced),
            _ => {
                let mut cuts = vec![synced];
                let mut b = (synced / PAGE + 1) * PAGE;
                while b < f.len() {
                    cuts.push(b);
                    b += PAGE;
                }
                cuts.push(f.len());
                cuts[rng.random_range(0..cuts.len())]
            }
        };
        if end > synced {
            ranges.push((synced, end));
        }
    }
    Keep { ranges }
}
