//! Snapshot files: `snap-{index:016x}-{term:016x}.snap` in the data dir.
//!
//! A file is `[magic "RKVSNAP1"][version u32][index u64][term u64]
//! [voter count u32][voter u64 ...][data length u64][data][crc32c u32]`,
//! integers little-endian, the checksum over every byte before it. The data
//! is opaque here (the state machine's own, versioned encoding).
//!
//! Files appear atomically: written to a `.tmp` file, fsynced, renamed into
//! place, and the directory fsynced. A snapshot received from a peer is
//! written the same way: chunk by chunk into a `.tmp` file, read back and
//! verified, and renamed into place only when the node installs it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use raftkv_core::{Index, SnapshotMeta, Term};

use crate::{WalError, sync_dir_for_new_file};

const MAGIC: &[u8; 8] = b"RKVSNAP1";
const VERSION: u32 = 1;
const TMP_SUFFIX: &str = ".tmp";
/// Most voters a header may list (a bound for reading damaged headers).
const MAX_VOTERS: u32 = 1 << 16;

/// A snapshot file in a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub meta: SnapshotMeta,
    pub path: PathBuf,
    /// Size of the file.
    pub bytes: u64,
}

/// Path of the snapshot of (`index`, `term`) in `dir`.
pub fn snapshot_path(dir: &Path, index: Index, term: Term) -> PathBuf {
    dir.join(format!("snap-{index:016x}-{term:016x}.snap"))
}

fn parse(name: &str) -> Option<(Index, Term)> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    if index.len() != 16 || term.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(index, 16).ok()?,
        u64::from_str_radix(term, 16).ok()?,
    ))
}

/// The snapshot files in `dir` by their names, newest (highest index) first.
pub fn list(dir: &Path) -> Result<Vec<(Index, Term, PathBuf)>, WalError> {
    let mut found = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for item in read {
        let item = item.map_err(|e| WalError::io("list", dir, e))?;
        if let Some((index, term)) = item.file_name().to_str().and_then(parse) {
            found.push((index, term, item.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
    Ok(found)
}

/// Deletes the temporary files an interrupted snapshot write or transfer
/// left in `dir`; returns their paths.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<Vec<PathBuf>, WalError> {
    let mut removed = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for item in read {
        let item = item.map_err(|e| WalError::io("list", dir, e))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap-") && name.ends_with(TMP_SUFFIX) {
            let path = item.path();
            std::fs::remove_file(&path).map_err(|e| WalError::io("remove", &path, e))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

fn header(meta: &SnapshotMeta, data_len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(44 + 8 * meta.voters.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&meta.index.to_le_bytes());
    h.extend_from_slice(&meta.term.to_le_bytes());
    h.extend_from_slice(&(meta.voters.len() as u32).to_le_bytes());
    for v in &meta.voters {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// Writes the snapshot `meta` with `data` into `dir` atomically; returns
/// the file once it and its directory entry are durable.
pub fn write(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<SnapshotFile, WalError> {
    let path = snapshot_path(dir, meta.index, meta.term);
    let tmp = tmp_path(&path);
    let head = header(meta, data.len() as u64);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head), data);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&head)?;
        f.write_all(data)?;
        f.write_all(&crc.to_le_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(WalError::io("write", &tmp, e));
    }
    std::fs::rename(&tmp, &path).map_err(|e| WalError::io("rename", &tmp, e))?;
    sync_dir_for_new_file(dir)?;
    Ok(SnapshotFile {
        meta: meta.clone(),
        path,
        bytes: (head.len() + data.len() + 4) as u64,
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads and verifies a snapshot file: its metadata and data, or why it is
/// not a valid snapshot.
pub fn read(path: &Path) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read: {e}"))?;
    let (meta, start, len) = parse_header(&bytes)?;
    let end = start + len;
    if bytes.len() != end + 4 {
        return Err(format!(
            "file has {} bytes, its header announces {}",
            bytes.len(),
            end + 4
        ));
    }
    let stored = u32_at(&bytes, end);
    let actual = crc32c::crc32c(&bytes[..end]);
    if stored != actual {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    bytes.truncate(end);
    bytes.drain(..start);
    Ok((meta, bytes))
}

/// The metadata, the offset of the data and its length.
fn parse_header(b: &[u8]) -> Result<(SnapshotMeta, usize, usize), String> {
    let short = || {
        format!(
            "file of {} bytes is too short for a snapshot header",
            b.len()
        )
    };
    if b.len() < 32 {
        return Err(short());
    }
    if &b[..8] != MAGIC {
        return Err("not a snapshot file (bad magic)".into());
    }
    let version = u32_at(b, 8);
    if version != VERSION {
        return Err(format!("unknown snapshot file version {version}"));
    }
    let index = u64_at(b, 12);
    let term = u64_at(b, 20);
    let voters = u32_at(b, 28);
    if voters > MAX_VOTERS {
        return Err(format!("header lists {voters} voters"));
    }
    let mut at = 32;
    if b.len() < at + 8 * voters as usize + 8 {
        return Err(short());
    }
    let voters = (0..voters)
        .map(|i| u64_at(b, at + 8 * i as usize))
        .collect::<Vec<_>>();
    at += 8 * voters.len();
    let len = u64_at(b, at);
    at += 8;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= b.len())
        .ok_or_else(|| {
            format!(
                "header announces {len} bytes of data in a file of {}",
                b.len()
            )
        })?;
    Ok((
        SnapshotMeta {
            index,
            term,
            voters,
        },
        at,
        len,
    ))
}

/// A snapshot arriving from a peer, written to a temporary file chunk by
/// chunk. Dropped unfinished, the file is deleted.
#[derive(Debug)]
pub struct Incoming {
    file: File,
    path: TempFile,
    bytes: u64,
}

impl Incoming {
    /// Starts receiving the snapshot `meta` from node `from` into `dir`.
    pub fn create(dir: &Path, from: u64, meta: &SnapshotMeta) -> Result<Incoming, WalError> {
        // Transfers of one snapshot may overlap (a retry while the broken
        // one is still being torn down): each gets its own file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "snap-{:016x}-{:016x}.from-{from}.{}{TMP_SUFFIX}",
            meta.index,
            meta.term,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| WalError::io("create", &path, e))?;
        Ok(Incoming {
            file,
            path: TempFile(Some(path)),
            bytes: 0,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), WalError> {
        self.file
            .write_all(chunk)
            .map_err(|e| WalError::io("write", self.path.path(), e))?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Makes the received file durable, reads it back and verifies it: a
    /// valid snapshot of `expected` yields the data and the file, to be
    /// installed with [`install`] (or deleted when dropped).
    pub fn finish(self, expected: &SnapshotMeta) -> Result<(Received, Vec<u8>), String> {
        self.file
            .sync_all()
            .map_err(|e| format!("cannot fsync {}: {e}", self.path.path().display()))?;
        let (meta, data) = read(self.path.path())?;
        if meta != *expected {
            return Err(format!(
                "the file holds snapshot {}/{} voters {:?}, not the announced {}/{} voters {:?}",
                meta.index, meta.term, meta.voters, expected.index, expected.term, expected.voters
            ));
        }
        Ok((
            Received {
                meta,
                path: self.path,
                bytes: self.bytes,
            },
            data,
        ))
    }
}

/// A verified snapshot received from a peer, still in its temporary file
/// (deleted if this is dropped before [`install`]).
#[derive(Debug)]
pub struct Received {
    pub meta: SnapshotMeta,
    path: TempFile,
    pub bytes: u64,
}

impl Received {
    pub fn path(&self) -> &Path {
        self.path.path()
    }
}

/// Moves a received snapshot into place in `dir` (rename, then fsync of the
/// directory): from then on it is the node's snapshot.
pub fn install(dir: &Path, mut received: Received) -> Result<SnapshotFile, WalError> {
    let tmp = received.path.take();
    let path = snapshot_path(dir, received.meta.index, received.meta.term);
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(WalError::io("rename", &tmp, e));
    }
    sync_dir_for_new_file(dir)?;
    Ok(SnapshotFile {
        meta: received.meta.clone(),
        path,
        bytes: received.bytes,
    })
}

/// A path deleted on drop unless taken.
#[derive(Debug)]
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("not taken")
    }

    fn take(&mut self) -> PathBuf {
        self.0.take().expect("not taken")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: Index, term: Term) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            voters: vec![1, 2, 3],
        }
    }

    #[test]
    fn written_files_read_back_and_are_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), &meta(10, 2), b"ten").unwrap();
        let b = write(dir.path(), &meta(25, 3), b"").unwrap();
        assert_eq!(read(&a.path).unwrap(), (meta(10, 2), b"ten".to_vec()));
        assert_eq!(read(&b.path).unwrap(), (meta(25, 3), vec![]));
        assert_eq!(std::fs::metadata(&a.path).unwrap().len(), a.bytes);
        let listed: Vec<Index> = list(dir.path()).unwrap().iter().map(|l| l.0).collect();
        assert_eq!(listed, vec![25, 10]);
    }

    #[test]
    fn every_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), &meta(7, 1), b"some state machine bytes").unwrap();
        let good = std::fs::read(&f.path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&f.path, &bad).unwrap();
            assert!(read(&f.path).is_err(), "flip at {at} not detected");
        }
        for len in 0..good.len() {
            std::fs::write(&f.path, &good[..len]).unwrap();
            assert!(read(&f.path).is_err(), "cut at {len} not detected");
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&f.path, &longer).unwrap();
        assert!(read(&f.path).unwrap_err().contains("announces"));
    }

    #[test]
    fn a_received_snapshot_is_verified_then_installed_or_deleted() {
        let src = tempfile::tempdir().unwrap();
        let f = write(src.path(), &meta(9, 4), &[7u8; 5000]).unwrap();
        let bytes = std::fs::read(&f.path).unwrap();
        let dir = tempfile::tempdir().unwrap();

        let mut inc = Incoming::create(dir.path(), 2, &meta(9, 4)).unwrap();
        for chunk in bytes.chunks(1000) {
            inc.write(chunk).unwrap();
        }
        let (received, data) = inc.finish(&meta(9, 4)).unwrap();
        assert_eq!(data, vec![7u8; 5000]);
        let installed = install(dir.path(), received).unwrap();
        assert_eq!(installed.path, snapshot_path(dir.path(), 9, 4));
        assert_eq!(std::fs::read(&installed.path).unwrap(), bytes);

        // A broken transfer leaves nothing behind.
        let mut inc = Incoming::create(dir.path(), 2, &meta(12, 4)).unwrap();
        inc.write(&bytes[..100]).unwrap();
        drop(inc);
        // A damaged one is refused and deleted.
        let mut inc = Incoming::create(dir.path(), 2, &meta(9, 4)).unwrap();
        let mut bad = bytes.clone();
        bad[3000] ^= 1;
        inc.write(&bad).unwrap();
        assert!(inc.finish(&meta(9, 4)).unwrap_err().contains("checksum"));
        // One that holds another snapshot than announced is refused.
        let mut inc = Incoming::create(dir.path(), 2, &meta(10, 4)).unwrap();
        inc.write(&bytes).unwrap();
        assert!(inc.finish(&meta(10, 4)).unwrap_err().contains("announced"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["snap-0000000000000009-0000000000000004.snap"]);
    }

    #[test]
    fn temp_files_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &meta(3, 1), b"x").unwrap();
        let left = dir
            .path()
            .join("snap-0000000000000005-0000000000000001.snap.tmp");
        std::fs::write(&left, b"half").unwrap();
        assert_eq!(remove_temp_files(dir.path()).unwrap(), vec![left.clone()]);
        assert!(!left.exists());
        assert_eq!(list(dir.path()).unwrap().len(), 1);
    }
}
