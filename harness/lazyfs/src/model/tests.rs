use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::store::{MemEntry, MemStore};

type M = Model<MemStore>;

fn model() -> M {
    Model::load(MemStore::default()).unwrap()
}

fn meta() -> Meta {
    Meta::new(0o644, 0, 0)
}

fn create(m: &mut M, parent: Ino, name: &str) -> Ino {
    m.create(parent, OsStr::new(name), meta()).unwrap().ino
}

fn mkdir(m: &mut M, parent: Ino, name: &str) -> Ino {
    m.mkdir(parent, OsStr::new(name), Meta::new(0o755, 0, 0))
        .unwrap()
        .ino
}

fn lookup(m: &M, path: &str) -> FsResult<Ino> {
    let mut ino = ROOT;
    for c in Path::new(path).components() {
        ino = m.lookup(ino, c.as_os_str())?.ino;
    }
    Ok(ino)
}

fn read_all(m: &mut M, ino: Ino) -> Vec<u8> {
    m.read(ino, 0, u32::MAX).unwrap()
}

fn content(m: &mut M, path: &str) -> Option<Vec<u8>> {
    let ino = lookup(m, path).ok()?;
    Some(read_all(m, ino))
}

fn cut(m: &mut M) -> CutReport {
    m.power_cut(TornMode::None, 0).unwrap()
}

/// Every path the current tree shows: files with their content, dirs as None.
fn snapshot(m: &mut M) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    m.tree()
        .into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .map(|(p, (ino, kind))| {
            let v = (kind == Kind::File).then(|| read_all(m, ino));
            (p, v)
        })
        .collect()
}

/// The same for what the store holds durably.
fn store_snapshot(s: &MemStore) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
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

/// A file `name` in the root, durable with `data`.
fn durable_file(m: &mut M, name: &str, data: &[u8]) -> Ino {
    let f = create(m, ROOT, name);
    m.write(f, 0, data).unwrap();
    m.fsync(f).unwrap();
    m.fsync(ROOT).unwrap();
    f
}

#[test]
fn unsynced_writes_are_read_then_lost() {
    let mut m = model();
    let f = durable_file(&mut m, "wal", b"abc");
    m.append(f, b"def").unwrap();
    assert_eq!(read_all(&mut m, f), b"abcdef", "reads see unsynced data");
    assert_eq!(m.stats().unsynced_bytes, 3);
    let r = cut(&mut m);
    assert_eq!(r.bytes_lost, 3);
    assert_eq!(r.files_reverted, 1);
    assert_eq!(content(&mut m, "wal").unwrap(), b"abc");
    assert_eq!(m.store().file("wal").unwrap(), b"abc");
    assert_eq!(m.stats().unsynced_bytes, 0);
}

#[test]
fn fsync_makes_writes_durable() {
    let mut m = model();
    let f = durable_file(&mut m, "wal", b"abc");
    m.write(f, 3, b"def").unwrap();
    m.write(f, 0, b"X").unwrap();
    m.fsync(f).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "wal").unwrap(), b"XbcdefX"[..6].to_vec());
}

#[test]
fn create_without_dir_fsync_disappears() {
    let mut m = model();
    let f = create(&mut m, ROOT, "new");
    m.write(f, 0, b"data").unwrap();
    m.fsync(f).unwrap();
    let r = cut(&mut m);
    assert_eq!(r.entries_undone, 1);
    assert_eq!(r.inodes_dropped, 1);
    assert_eq!(lookup(&m, "new"), Err(FsError::ENOENT));
    assert!(m.store().objects.is_empty(), "its object is gone");
}

#[test]
fn create_with_dir_fsync_survives() {
    let mut m = model();
    let f = create(&mut m, ROOT, "new");
    m.fsync(ROOT).unwrap();
    m.write(f, 0, b"data").unwrap();
    cut(&mut m);
    assert_eq!(
        content(&mut m, "new").unwrap(),
        b"",
        "the name survives, the data did not"
    );
    let f = lookup(&m, "new").unwrap();
    m.write(f, 0, b"data").unwrap();
    m.fsync(f).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "new").unwrap(), b"data");
}

#[test]
fn rename_without_dir_fsync_is_undone() {
    let mut m = model();
    durable_file(&mut m, "final", b"old");
    durable_file(&mut m, "tmp", b"new");
    m.rename(ROOT, OsStr::new("tmp"), ROOT, OsStr::new("final"), false)
        .unwrap();
    assert_eq!(content(&mut m, "final").unwrap(), b"new");
    assert_eq!(lookup(&m, "tmp"), Err(FsError::ENOENT));
    let r = cut(&mut m);
    assert_eq!(r.entries_undone, 2, "final replaced, tmp removed");
    assert_eq!(content(&mut m, "final").unwrap(), b"old");
    assert_eq!(content(&mut m, "tmp").unwrap(), b"new");
}

#[test]
fn rename_with_dir_fsync_survives_and_frees_the_old_target() {
    let mut m = model();
    durable_file(&mut m, "final", b"old");
    durable_file(&mut m, "tmp", b"new");
    m.rename(ROOT, OsStr::new("tmp"), ROOT, OsStr::new("final"), false)
        .unwrap();
    m.fsync(ROOT).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "final").unwrap(), b"new");
    assert_eq!(lookup(&m, "tmp"), Err(FsError::ENOENT));
    assert_eq!(
        m.store().objects.len(),
        1,
        "the replaced file's object is gone"
    );
    assert_eq!(
        store_snapshot(m.store()),
        BTreeMap::from([(PathBuf::from("final"), Some(b"new".to_vec()))])
    );
}

#[test]
fn temp_file_never_made_durable_then_renamed() {
    // write tmp, fsync tmp, rename over final, but no directory fsync: the
    // old content is what a reboot finds.
    let mut m = model();
    durable_file(&mut m, "snap", b"v1");
    let t = create(&mut m, ROOT, "snap.tmp");
    m.write(t, 0, b"v2").unwrap();
    m.fsync(t).unwrap();
    m.rename(
        ROOT,
        OsStr::new("snap.tmp"),
        ROOT,
        OsStr::new("snap"),
        false,
    )
    .unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "snap").unwrap(), b"v1");
    assert_eq!(lookup(&m, "snap.tmp"), Err(FsError::ENOENT));
}

#[test]
fn unlink_then_crash_brings_the_file_back() {
    let mut m = model();
    durable_file(&mut m, "seg-1", b"entries");
    m.unlink(ROOT, OsStr::new("seg-1")).unwrap();
    assert_eq!(lookup(&m, "seg-1"), Err(FsError::ENOENT));
    cut(&mut m);
    assert_eq!(content(&mut m, "seg-1").unwrap(), b"entries");
    m.unlink(ROOT, OsStr::new("seg-1")).unwrap();
    m.fsync(ROOT).unwrap();
    cut(&mut m);
    assert_eq!(lookup(&m, "seg-1"), Err(FsError::ENOENT));
    assert!(m.store().objects.is_empty());
}

#[test]
fn an_open_unlinked_file_lives_until_released() {
    let mut m = model();
    let f = durable_file(&mut m, "f", b"x");
    m.open(f).unwrap();
    m.unlink(ROOT, OsStr::new("f")).unwrap();
    m.fsync(ROOT).unwrap();
    m.write(f, 1, b"y").unwrap();
    assert_eq!(read_all(&mut m, f), b"xy");
    assert_eq!(m.store().objects.len(), 1);
    m.release(f).unwrap();
    assert!(m.store().objects.is_empty());
    assert_eq!(m.read(f, 0, 10), Err(FsError::ENOENT));
}

#[test]
fn truncate_is_unsynced_and_hides_the_cut_bytes() {
    let mut m = model();
    let f = durable_file(&mut m, "f", b"hello world");
    m.set_len(f, 5).unwrap();
    assert_eq!(read_all(&mut m, f), b"hello");
    m.set_len(f, 8).unwrap();
    assert_eq!(
        read_all(&mut m, f),
        b"hello\0\0\0",
        "regrown bytes are zeros"
    );
    assert_eq!(m.stats().unsynced_bytes, 6, "the hidden durable bytes");
    cut(&mut m);
    assert_eq!(content(&mut m, "f").unwrap(), b"hello world");
    m.set_len(f, 5).unwrap();
    m.write(f, 7, b"!").unwrap();
    m.fsync(f).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "f").unwrap(), b"hello\0\0!");
    assert_eq!(m.store().file("f").unwrap(), b"hello\0\0!");
}

#[test]
fn fallocate_grows_with_zeros_unless_keep_size() {
    let mut m = model();
    let f = durable_file(&mut m, "f", b"ab");
    m.fallocate(f, 0, 10, libc::FALLOC_FL_KEEP_SIZE).unwrap();
    assert_eq!(m.getattr(f).unwrap().size, 2);
    m.fallocate(f, 1, 4, 0).unwrap();
    assert_eq!(read_all(&mut m, f), b"ab\0\0\0");
    cut(&mut m);
    assert_eq!(m.getattr(f).unwrap().size, 2);
    assert_eq!(
        m.fallocate(
            f,
            0,
            1,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE
        ),
        Err(FsError::EOPNOTSUPP)
    );
}

#[test]
fn torn_prefix_keeps_a_seeded_prefix_of_the_growth() {
    let synced: Vec<u8> = (0..100u8).collect();
    let grown: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut lens = Vec::new();
    for seed in 0..40 {
        let mut m = model();
        let f = durable_file(&mut m, "wal", &synced);
        m.append(f, &grown).unwrap();
        m.write(f, 0, b"lost overwrite").unwrap();
        let r = m.power_cut(TornMode::Prefix, seed).unwrap();
        let after = read_all(&mut m, f);
        assert!(after.len() >= 100 && after.len() <= 1100);
        assert_eq!(&after[..100], &synced[..], "overwrites are lost");
        assert_eq!(&after[100..], &grown[..after.len() - 100]);
        assert_eq!(r.bytes_kept, after.len() as u64 - 100);
        assert_eq!(m.store().file("wal").unwrap(), &after[..]);
        lens.push(after.len());
        // Same seed, same outcome.
        let mut m2 = model();
        let f2 = durable_file(&mut m2, "wal", &synced);
        m2.append(f2, &grown).unwrap();
        m2.write(f2, 0, b"lost overwrite").unwrap();
        m2.power_cut(TornMode::Prefix, seed).unwrap();
        assert_eq!(read_all(&mut m2, f2), after);
    }
    assert!(lens.iter().any(|l| *l > 100 && *l < 1100), "{lens:?}");
    assert!(lens.iter().collect::<std::collections::HashSet<_>>().len() > 10);
}

#[test]
fn torn_pages_keep_whole_pages() {
    let page = cut::PAGE as usize;
    let synced = vec![1u8; 3 * page];
    let mut saw_kept_overwrite = false;
    let mut saw_lost_overwrite = false;
    for seed in 0..30 {
        let mut m = model();
        let f = durable_file(&mut m, "f", &synced);
        m.write(f, 10, &[2u8; 5]).unwrap(); // page 0
        m.write(f, 2 * page as u64 + 1, &[3u8; 5]).unwrap(); // page 2
        m.append(f, &vec![4u8; 2 * page + 100]).unwrap();
        m.power_cut(TornMode::Pages, seed).unwrap();
        let after = read_all(&mut m, f);
        assert!(
            [3 * page, 4 * page, 5 * page, 5 * page + 100].contains(&after.len()),
            "length {} is not a page boundary or the full length",
            after.len()
        );
        for p in [0, 2] {
            let pg = &after[p * page..(p + 1) * page];
            let old = pg.iter().all(|b| *b == 1);
            saw_lost_overwrite |= old;
            saw_kept_overwrite |= !old;
            assert!(
                old || pg.iter().filter(|b| **b != 1).count() == 5,
                "page {p} is whole"
            );
        }
        assert!(
            after[page..2 * page].iter().all(|b| *b == 1),
            "an untouched page"
        );
        assert!(after[3 * page..].iter().all(|b| *b == 4));
    }
    assert!(saw_kept_overwrite && saw_lost_overwrite);
}

#[test]
fn no_torn_part_after_a_truncation() {
    let mut m = model();
    let f = durable_file(&mut m, "f", b"0123456789");
    m.set_len(f, 2).unwrap();
    m.append(f, b"abcdefghijklmnop").unwrap();
    for seed in 0..10 {
        let r = m.power_cut(TornMode::Prefix, seed).unwrap();
        assert_eq!(r.bytes_kept, 0);
    }
    assert_eq!(read_all(&mut m, f), b"0123456789");
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let mut m = model();
    let d = mkdir(&mut m, ROOT, "data");
    let f = create(&mut m, d, "wal");
    m.write(f, 0, b"x").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    cut(&mut m);
    assert_eq!(
        lookup(&m, "data"),
        Err(FsError::ENOENT),
        "parent not synced"
    );

    let d = mkdir(&mut m, ROOT, "data");
    let f = create(&mut m, d, "wal");
    m.write(f, 0, b"x").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    m.fsync(ROOT).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "data/wal").unwrap(), b"x");
    assert_eq!(m.store().file("data/wal").unwrap(), b"x");

    // Synced in the other order: the child's entries become durable when
    // it is synced, even though its parent already is.
    let e = mkdir(&mut m, ROOT, "e");
    m.fsync(ROOT).unwrap();
    let g = create(&mut m, e, "g");
    m.fsync(g).unwrap();
    cut(&mut m);
    assert!(lookup(&m, "e").is_ok());
    assert_eq!(lookup(&m, "e/g"), Err(FsError::ENOENT));
}

#[test]
fn a_directory_moves_atomically_at_its_new_parents_fsync() {
    let mut m = model();
    let a = mkdir(&mut m, ROOT, "a");
    let b = mkdir(&mut m, ROOT, "b");
    let x = mkdir(&mut m, a, "x");
    let f = create(&mut m, x, "f");
    m.write(f, 0, b"1").unwrap();
    m.fsync(f).unwrap();
    m.fsync(x).unwrap();
    m.fsync(a).unwrap();
    m.fsync(ROOT).unwrap();
    m.rename(a, OsStr::new("x"), b, OsStr::new("y"), false)
        .unwrap();
    m.fsync(b).unwrap();
    cut(&mut m);
    assert_eq!(content(&mut m, "b/y/f").unwrap(), b"1");
    assert_eq!(lookup(&m, "a/x"), Err(FsError::ENOENT));
    assert_eq!(store_snapshot(m.store()), snapshot(&mut m));
}

#[test]
fn a_file_moved_between_directories_is_durable_per_directory() {
    let mut m = model();
    let a = mkdir(&mut m, ROOT, "a");
    let b = mkdir(&mut m, ROOT, "b");
    let f = create(&mut m, a, "f");
    m.fsync(a).unwrap();
    m.fsync(ROOT).unwrap();
    m.rename(a, OsStr::new("f"), b, OsStr::new("f"), false)
        .unwrap();
    m.fsync(b).unwrap();
    cut(&mut m);
    // Both names: the move is durable in b, not yet in a.
    assert_eq!(lookup(&m, "a/f"), Ok(f));
    assert_eq!(lookup(&m, "b/f"), Ok(f));
    assert_eq!(m.getattr(f).unwrap().nlink, 2);
}

#[test]
fn moving_a_directory_under_its_durable_child_keeps_a_tree() {
    let mut m = model();
    let a = mkdir(&mut m, ROOT, "a");
    mkdir(&mut m, ROOT, "b");
    m.fsync(ROOT).unwrap();
    m.rename(ROOT, OsStr::new("b"), a, OsStr::new("b"), false)
        .unwrap();
    m.fsync(a).unwrap(); // durable: a/b
    let b = lookup(&m, "a/b").unwrap();
    m.rename(a, OsStr::new("b"), ROOT, OsStr::new("b"), false)
        .unwrap();
    m.rename(ROOT, OsStr::new("a"), b, OsStr::new("a"), false)
        .unwrap();
    m.fsync(b).unwrap(); // would make b -> a -> b durable
    cut(&mut m);
    assert_eq!(lookup(&m, "b/a"), Ok(a));
    assert_eq!(store_snapshot(m.store()), snapshot(&mut m));
}

#[test]
fn a_hard_link_unlinked_without_fsync_comes_back() {
    let mut m = model();
    let f = durable_file(&mut m, "f", b"x");
    m.link(f, ROOT, OsStr::new("g")).unwrap();
    m.fsync(ROOT).unwrap();
    m.unlink(ROOT, OsStr::new("f")).unwrap();
    assert_eq!(m.getattr(f).unwrap().nlink, 1);
    cut(&mut m);
    assert_eq!(lookup(&m, "f"), Ok(f));
    assert_eq!(lookup(&m, "g"), Ok(f));
    assert_eq!(m.getattr(f).unwrap().nlink, 2);
}

#[test]
fn errors_follow_posix() {
    let mut m = model();
    let d = mkdir(&mut m, ROOT, "d");
    create(&mut m, d, "f");
    create(&mut m, ROOT, "g");
    let e = mkdir(&mut m, ROOT, "e");
    let n = |s: &str| OsStr::new(s).to_os_string();
    assert_eq!(m.create(ROOT, &n("g"), meta()), Err(FsError::EEXIST));
    assert_eq!(m.rmdir(ROOT, &n("d")), Err(FsError::ENOTEMPTY));
    assert_eq!(m.unlink(ROOT, &n("d")), Err(FsError::EISDIR));
    assert_eq!(m.rmdir(ROOT, &n("g")), Err(FsError::ENOTDIR));
    assert_eq!(
        m.rename(ROOT, &n("g"), ROOT, &n("d"), false),
        Err(FsError::EISDIR)
    );
    assert_eq!(
        m.rename(ROOT, &n("e"), ROOT, &n("g"), false),
        Err(FsError::ENOTDIR)
    );
    assert_eq!(
        m.rename(ROOT, &n("e"), ROOT, &n("d"), false),
        Err(FsError::ENOTEMPTY)
    );
    assert_eq!(
        m.rename(ROOT, &n("d"), d, &n("x"), false),
        Err(FsError::EINVAL)
    );
    assert_eq!(
        m.rename(ROOT, &n("g"), ROOT, &n("e"), true),
        Err(FsError::EEXIST)
    );
    assert_eq!(
        m.rename(ROOT, &n("zz"), ROOT, &n("y"), false),
        Err(FsError::ENOENT)
    );
    assert_eq!(m.create(ROOT, &n(".lazyfs"), meta()), Err(FsError::EACCES));
    assert_eq!(m.read(d, 0, 1), Err(FsError::EISDIR));
    assert_eq!(
        m.lookup(lookup(&m, "g").unwrap(), &n("x")),
        Err(FsError::ENOTDIR)
    );
    assert_eq!(m.link(d, ROOT, &n("d2")), Err(FsError::EPERM));
    // rmdir of an empty dir and rename onto an empty dir work.
    m.rename(ROOT, &n("d"), ROOT, &n("e"), false).unwrap();
    assert_eq!(lookup(&m, "e/f").map(|_| ()), Ok(()));
    m.unlink(lookup(&m, "e").unwrap(), &n("f")).unwrap();
    m.rmdir(ROOT, &n("e")).unwrap();
    let _ = e;
}

#[test]
fn a_reloaded_store_matches_the_model_after_a_cut() {
    let mut m = model();
    let d = mkdir(&mut m, ROOT, "d");
    let f = create(&mut m, d, "f");
    m.write(f, 0, b"hello").unwrap();
    m.fsync(f).unwrap();
    m.fsync(d).unwrap();
    m.fsync(ROOT).unwrap();
    m.append(f, b" world").unwrap();
    cut(&mut m);
    let before = snapshot(&mut m);
    let mut again = Model::load(m.store().clone()).unwrap();
    assert_eq!(snapshot(&mut again), before);
    assert_eq!(before.get(Path::new("d/f")), Some(&Some(b"hello".to_vec())));
}

#[test]
fn a_failed_store_fails_every_later_operation() {
    let mut m = model();
    let f = create(&mut m, ROOT, "f");
    // Losing the object under the model's feet is a store failure.
    m.store.objects.clear();
    assert_eq!(m.fsync(f), Ok(()), "nothing to persist yet");
    m.write(f, 0, b"x").unwrap();
    assert_eq!(m.fsync(f), Err(FsError::EIO));
    assert!(m.stats().failure.unwrap().contains("backing store failed"));
    assert_eq!(m.getattr(ROOT).map(|_| ()), Ok(()));
    assert_eq!(m.read(f, 0, 1), Err(FsError::EIO));
    assert_eq!(
        m.power_cut(TornMode::None, 0).map(|_| ()),
        Err(FsError::EIO)
    );
}

/// Random operations over a small tree: file content matches a per-inode
/// byte vector (current and durable), and after every directory fsync and
/// power cut the store holds exactly the durable tree.
#[test]
fn random_operations_keep_the_store_a_mirror_of_the_durable_tree() {
    let names = ["a", "b", "c"];
    for seed in 0..150 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut m = model();
        // ino -> (current, durable) content
        let mut data: HashMap<Ino, (Vec<u8>, Vec<u8>)> = HashMap::new();
        for step in 0..120 {
            let tree = m.tree();
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
            let op = rng.random_range(0..14);
            let ctx = format!("seed {seed} step {step} op {op}");
            match op {
                0 => {
                    if let Ok(a) = m.create(dir, name, meta()) {
                        data.insert(a.ino, (Vec::new(), Vec::new()));
                    }
                }
                1 => {
                    let _ = m.mkdir(dir, name, meta());
                }
                2 | 3 if !files.is_empty() => {
                    let f = files[rng.random_range(0..files.len())];
                    let off = rng.random_range(0..40u64);
                    let bytes: Vec<u8> =
                        (0..rng.random_range(1..20)).map(|_| rng.random()).collect();
                    m.write(f, off, &bytes).unwrap();
                    let cur = &mut data.get_mut(&f).unwrap().0;
                    let end = off as usize + bytes.len();
                    if cur.len() < end {
                        cur.resize(end, 0);
                    }
                    cur[off as usize..end].copy_from_slice(&bytes);
                }
                4 if !files.is_empty() => {
                    let f = files[rng.random_range(0..files.len())];
                    let len = rng.random_range(0..50u64);
                    m.set_len(f, len).unwrap();
                    data.get_mut(&f).unwrap().0.resize(len as usize, 0);
                }
                5 | 6 if !files.is_empty() => {
                    let f = files[rng.random_range(0..files.len())];
                    m.fsync(f).unwrap();
                    let d = data.get_mut(&f).unwrap();
                    d.1 = d.0.clone();
                }
                7 | 8 => {
                    m.fsync(dir).unwrap();
                    check_mirror(&mut m, &ctx);
                }
                9 => {
                    let src = tree.keys().nth(rng.random_range(0..tree.len())).unwrap();
                    if src.as_os_str().is_empty() {
                        continue;
                    }
                    let sp = tree[src.parent().unwrap()].0;
                    let _ = m.rename(
                        sp,
                        src.file_name().unwrap(),
                        dir,
                        name,
                        rng.random_bool(0.2),
                    );
                }
                10 => {
                    let _ = m.unlink(dir, name);
                }
                11 => {
                    let _ = m.rmdir(dir, name);
                }
                12 if !files.is_empty() => {
                    let f = files[rng.random_range(0..files.len())];
                    let _ = m.link(f, dir, name);
                }
                13 => {
                    cut(&mut m);
                    data.retain(|i, _| m.inodes.contains_key(i));
                    for d in data.values_mut() {
                        d.0 = d.1.clone();
                    }
                    check_mirror(&mut m, &ctx);
                    let mut again = Model::load(m.store().clone()).unwrap();
                    assert_eq!(snapshot(&mut again), snapshot(&mut m), "{ctx}: reload");
                }
                _ => {}
            }
            for (ino, (cur, _)) in &data {
                if m.inodes.contains_key(ino) {
                    assert_eq!(&read_all(&mut m, *ino), cur, "{ctx}: content of {ino}");
                }
            }
            check_counts(&m, &ctx);
        }
    }
}

/// The store's tree equals the durable tree the model reaches from the root.
fn check_mirror(m: &mut M, ctx: &str) {
    let mut want = BTreeMap::new();
    let mut stack = vec![(ROOT, PathBuf::new())];
    while let Some((dir, path)) = stack.pop() {
        let Body::Dir(d) = &m.inodes[&dir].body else {
            panic!("{ctx}: not a dir")
        };
        for (n, c) in &d.durable {
            let p = path.join(n);
            match &m.inodes[c].body {
                Body::Dir(_) => {
                    want.insert(p.clone(), MemEntry::Dir);
                    stack.push((*c, p));
                }
                Body::File(_) => {
                    want.insert(p, MemEntry::File(*c));
                }
            }
        }
    }
    assert_eq!(m.store().tree, want, "{ctx}: store tree");
    for (ino, inode) in &m.inodes {
        if let Body::File(f) = &inode.body {
            let obj = &m
                .store()
                .objects
                .get(ino)
                .unwrap_or_else(|| panic!("{ctx}: object {ino}"))
                .0;
            assert_eq!(
                obj.len() as u64,
                f.synced_len(),
                "{ctx}: durable length of {ino}"
            );
        }
    }
    assert_eq!(
        m.store().objects.len() as u64,
        m.stats().files,
        "{ctx}: one object per file"
    );
}

/// Link counts and durable references agree with the directories.
fn check_counts(m: &M, ctx: &str) {
    let mut links: HashMap<Ino, u32> = HashMap::new();
    let mut refs: HashMap<Ino, u32> = HashMap::new();
    for inode in m.inodes.values() {
        if let Body::Dir(d) = &inode.body {
            for c in d.current.values() {
                *links.entry(*c).or_default() += 1;
            }
            for c in d.durable.values() {
                *refs.entry(*c).or_default() += 1;
                assert!(
                    m.inodes.contains_key(c),
                    "{ctx}: durable entry to a freed inode"
                );
            }
        }
    }
    for (ino, inode) in &m.inodes {
        if *ino != ROOT {
            assert_eq!(
                inode.links,
                links.get(ino).copied().unwrap_or(0),
                "{ctx}: links of {ino}"
            );
        }
        assert_eq!(
            inode.durable_refs,
            refs.get(ino).copied().unwrap_or(0),
            "{ctx}: durable refs of {ino}"
        );
        if let Body::Dir(d) = &inode.body {
            assert!(
                inode.durable_refs <= 1,
                "{ctx}: a directory has one durable parent"
            );
            if let Some((p, n)) = &d.durable_parent {
                let Body::Dir(pd) = &m.inodes[p].body else {
                    panic!("{ctx}: parent is a file")
                };
                assert_eq!(
                    pd.durable.get(n),
                    Some(ino),
                    "{ctx}: durable parent of {ino}"
                );
            }
        }
    }
}

#[test]
fn nested_moves_in_one_directory_fsync() {
    // d/a/b moves to d/b and d/a to d/a2, made durable by one fsync of d.
    let mut m = model();
    let d = mkdir(&mut m, ROOT, "d");
    let a = mkdir(&mut m, d, "a");
    let b = mkdir(&mut m, a, "b");
    let f = create(&mut m, b, "f");
    for x in [b, a, d, ROOT] {
        m.fsync(x).unwrap();
    }
    m.rename(a, OsStr::new("b"), d, OsStr::new("b"), false)
        .unwrap();
    m.rename(d, OsStr::new("a"), d, OsStr::new("a2"), false)
        .unwrap();
    m.fsync(d).unwrap();
    cut(&mut m);
    assert_eq!(lookup(&m, "d/b/f"), Ok(f));
    assert_eq!(lookup(&m, "d/a2"), Ok(a));
    assert_eq!(store_snapshot(m.store()), snapshot(&mut m));
}
