//! The model over a backing directory ([`DirStore`]) behaves as over the
//! in-memory store, and the backing directory holds exactly the durable
//! tree after every power cut.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use raftkv_lazyfs::store::{MemEntry, PRIVATE_DIR};
use raftkv_lazyfs::{DirStore, Ino, Kind, MemStore, Meta, Model, ROOT, Store, TornMode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

fn snapshot<S: Store>(m: &mut Model<S>) -> Tree {
    m.tree()
        .into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .map(|(p, (ino, kind))| {
            let v = (kind == Kind::File).then(|| m.read(ino, 0, u32::MAX).unwrap());
            (p, v)
        })
        .collect()
}

/// The backing directory as it is on disk, the private directory left out.
fn disk_tree(root: &Path) -> Tree {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            if rel.as_os_str().is_empty() && e.file_name() == PRIVATE_DIR {
                continue;
            }
            let p = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                out.insert(p.clone(), None);
                stack.push(p);
            } else {
                out.insert(p, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn mem_tree(s: &MemStore) -> Tree {
    s.tree
        .iter()
        .map(|(p, e)| {
            let v = match e {
                MemEntry::Dir => None,
                MemEntry::File(i) => Some(s.objects[i].0.clone()),
            };
            (p.clone(), v)
        })
        .collect()
}

fn meta() -> Meta {
    Meta::new(0o640, 0, 0)
}

#[test]
fn disk_and_memory_stores_agree_under_random_operations() {
    let names = ["a", "b", "c"];
    for seed in 0..40 {
        let backing = tempfile::tempdir().unwrap();
        let mut disk = Model::load(DirStore::new(backing.path(), false).unwrap()).unwrap();
        let mut mem = Model::load(MemStore::default()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Both models number inodes alike, so one path -> ino map serves both.
        for step in 0..100 {
            let ctx = format!("seed {seed} step {step}");
            let tree = mem.tree();
            let dirs: Vec<Ino> = tree
                .values()
                .filter(|(_, k)| *k == Kind::Dir)
                .map(|(i, _)| *i)
                .collect();
            let files: Vec<Ino> = tree
                .values()
                .filter(|(_, k)| *k == Kind::File)
                .map(|(i, _)| *i)
                .collect();
            let dir = dirs[rng.random_range(0..dirs.len())];
            let name = OsStr::new(names[rng.random_range(0..names.len())]);
            let file = (!files.is_empty()).then(|| files[rng.random_range(0..files.len())]);
            match (rng.random_range(0..12), file) {
                (0, _) => assert_eq!(
                    disk.create(dir, name, meta()).map(|a| a.ino),
                    mem.create(dir, name, meta()).map(|a| a.ino),
                    "{ctx}"
                ),
                (1, _) => assert_eq!(
                    disk.mkdir(dir, name, meta()).map(|a| a.ino),
                    mem.mkdir(dir, name, meta()).map(|a| a.ino),
                    "{ctx}"
                ),
                (2 | 3, Some(f)) => {
                    let off = rng.random_range(0..9000u64);
                    let bytes: Vec<u8> = (0..rng.random_range(1..5000))
                        .map(|_| rng.random())
                        .collect();
                    assert_eq!(
                        disk.write(f, off, &bytes),
                        mem.write(f, off, &bytes),
                        "{ctx}"
                    );
                }
                (4, Some(f)) => {
                    let len = rng.random_range(0..12000u64);
                    assert_eq!(disk.set_len(f, len), mem.set_len(f, len), "{ctx}");
                }
                (5, Some(f)) => assert_eq!(disk.fsync(f), mem.fsync(f), "{ctx}"),
                (6 | 7, _) => assert_eq!(disk.fsync(dir), mem.fsync(dir), "{ctx}"),
                (8, _) => {
                    let src = tree.keys().nth(rng.random_range(0..tree.len())).unwrap();
                    if let Some(parent) = src.parent() {
                        let sp = tree[parent].0;
                        let n = src.file_name().unwrap();
                        assert_eq!(
                            disk.rename(sp, n, dir, name, false),
                            mem.rename(sp, n, dir, name, false),
                            "{ctx}"
                        );
                    }
                }
                (9, _) => assert_eq!(disk.unlink(dir, name), mem.unlink(dir, name), "{ctx}"),
                (10, _) => assert_eq!(disk.rmdir(dir, name), mem.rmdir(dir, name), "{ctx}"),
                (11, _) => {
                    let torn =
                        [TornMode::None, TornMode::Prefix, TornMode::Pages][rng.random_range(0..3)];
                    let s = rng.random();
                    assert_eq!(disk.power_cut(torn, s), mem.power_cut(torn, s), "{ctx}");
                    assert_eq!(
                        disk_tree(backing.path()),
                        mem_tree(mem.store()),
                        "{ctx}: disk"
                    );
                }
                _ => {}
            }
            assert_eq!(snapshot(&mut disk), snapshot(&mut mem), "{ctx}");
        }
        // A reload from the disk shows what survives a cut.
        mem.power_cut(TornMode::None, 0).unwrap();
        let want = snapshot(&mut mem);
        drop(disk);
        let mut again = Model::load(DirStore::new(backing.path(), false).unwrap()).unwrap();
        assert_eq!(snapshot(&mut again), want, "seed {seed}: reload");
        again.close().unwrap();
        assert!(!backing.path().join(PRIVATE_DIR).exists());
        assert_eq!(disk_tree(backing.path()), want, "seed {seed}: after close");
    }
}

#[test]
fn loading_a_backing_directory_keeps_hard_links_and_refuses_symlinks() {
    let backing = tempfile::tempdir().unwrap();
    fs::create_dir(backing.path().join("d")).unwrap();
    fs::write(backing.path().join("d/f"), b"data").unwrap();
    fs::hard_link(backing.path().join("d/f"), backing.path().join("g")).unwrap();
    // A stale private dir from a killed process is dropped.
    fs::create_dir_all(backing.path().join(PRIVATE_DIR).join("objects")).unwrap();
    fs::write(backing.path().join(PRIVATE_DIR).join("objects/99"), b"lost").unwrap();
    let mut m = Model::load(DirStore::new(backing.path(), true).unwrap()).unwrap();
    let d = m.lookup(ROOT, OsStr::new("d")).unwrap().ino;
    let f = m.lookup(d, OsStr::new("f")).unwrap();
    let g = m.lookup(ROOT, OsStr::new("g")).unwrap();
    assert_eq!(f.ino, g.ino);
    assert_eq!(f.nlink, 2);
    assert_eq!(m.read(f.ino, 0, 100).unwrap(), b"data");
    assert_eq!(m.stats().files, 1);
    m.close().unwrap();

    std::os::unix::fs::symlink("d/f", backing.path().join("link")).unwrap();
    let err = Model::load(DirStore::new(backing.path(), true).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither a regular file nor a directory"),
        "{err}"
    );
    let err = DirStore::new(&backing.path().join("missing"), true).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
