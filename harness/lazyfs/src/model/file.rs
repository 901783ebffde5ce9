//! A file's content: durable bytes in the store, with unsynced writes and
//! truncations laid over them in memory.

use std::time::SystemTime;

use super::{Body, FsError, FsResult, Kind, MAX_FILE_LEN, Model};
use crate::extents::Extents;
use crate::store::{Ino, Persist, Store};

/// The state of one file's content.
///
/// Reads see `[0, floor)` from the store, then zeros up to `len`, with the
/// unsynced `dirty` bytes laid over both. `floor` is the smallest length the
/// file had since its last sync (at most the durable length): store bytes
/// past a truncation must not show through again when the file grows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileData {
    len: u64,
    synced_len: u64,
    floor: u64,
    dirty: Extents,
}

impl FileData {
    /// A file whose durable content of `len` bytes is all there is.
    pub fn synced(len: u64) -> FileData {
        FileData {
            len,
            synced_len: len,
            floor: len,
            dirty: Extents::default(),
        }
    }

    /// The length reads see.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The durable length.
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn needs_sync(&self) -> bool {
        !self.dirty.is_empty() || self.len != self.synced_len || self.floor != self.synced_len
    }

    /// Bytes a power cut would lose: unsynced writes, plus any durable bytes
    /// a truncation hid.
    pub fn unsynced_bytes(&self) -> u64 {
        self.dirty.bytes() + (self.synced_len - self.floor)
    }

    fn write(&mut self, off: u64, data: &[u8]) {
        self.dirty.write(off, data);
        self.len = self.len.max(off + data.len() as u64);
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.dirty.truncate(len);
            self.floor = self.floor.min(len);
        }
        self.len = len;
    }

    fn synced_now(&mut self) {
        self.synced_len = self.len;
        self.floor = self.len;
        self.dirty.clear();
    }

    /// Reads `[off, off + buf.len())`, which lies within `len`.
    pub(super) fn read_into<S: Store>(
        &self,
        store: &mut S,
        ino: Ino,
        off: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let end = off + buf.len() as u64;
        let durable_end = end.min(self.floor);
        if off < durable_end {
            store.read(ino, off, &mut buf[..(durable_end - off) as usize])?;
        }
        if durable_end < end {
            let from = durable_end.max(off);
            buf[(from - off) as usize..].fill(0);
        }
        self.dirty.overlay(off, buf);
        Ok(())
    }

    /// Makes the current content durable.
    fn persist<S: Store>(&mut self, store: &mut S, ino: Ino) -> std::io::Result<()> {
        if !self.needs_sync() {
            return Ok(());
        }
        let cut = (self.floor < self.synced_len).then_some(self.floor);
        store.persist_file(
            ino,
            &Persist {
                cut,
                extents: &self.dirty,
                len: self.len,
            },
        )?;
        self.synced_now();
        Ok(())
    }

    pub(super) fn dirty(&self) -> &Extents {
        &self.dirty
    }

    /// Whether a truncation since the last sync hid durable bytes.
    pub(super) fn truncated_since_sync(&self) -> bool {
        self.floor < self.synced_len
    }
}

impl<S: Store> Model<S> {
    fn file_mut(&mut self, ino: Ino) -> FsResult<&mut FileData> {
        self.check_usable()?;
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(FsError::EISDIR),
        }
    }

    fn touch_file(&mut self, ino: Ino) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            i.meta.mtime = now;
            i.meta.ctime = now;
        }
    }

    /// `pread`: what a reader sees now, unsynced bytes included.
    pub fn read(&mut self, ino: Ino, off: u64, size: u32) -> FsResult<Vec<u8>> {
        self.check_usable()?;
        let f = match &self.inodes.get(&ino).ok_or(FsError::ENOENT)?.body {
            Body::File(f) => f,
            Body::Dir(_) => return Err(FsError::EISDIR),
        };
        if off >= f.len {
            return Ok(Vec::new());
        }
        let n = (f.len - off).min(u64::from(size)) as usize;
        let mut buf = vec![0; n];
        if let Err(e) = f.read_into(&mut self.store, ino, off, &mut buf) {
            return Err(self.fail(e));
        }
        Ok(buf)
    }

    /// `pwrite`: held in memory until the file is synced.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> FsResult<()> {
        if off
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > MAX_FILE_LEN)
        {
            return Err(FsError::EFBIG);
        }
        self.file_mut(ino)?.write(off, data);
        self.touch_file(ino);
        Ok(())
    }

    /// A write to a file opened with `O_APPEND`: at the current end, whatever
    /// offset the caller believed. Returns the offset written at.
    pub fn append(&mut self, ino: Ino, data: &[u8]) -> FsResult<u64> {
        let off = self.file_mut(ino)?.len;
        self.write(ino, off, data)?;
        Ok(off)
    }

    /// `truncate`/`ftruncate`: the new length is unsynced like a write.
    pub fn set_len(&mut self, ino: Ino, len: u64) -> FsResult<()> {
        if len > MAX_FILE_LEN {
            return Err(FsError::EFBIG);
        }
        self.file_mut(ino)?.set_len(len);
        self.touch_file(ino);
        Ok(())
    }

    /// `fallocate`: mode 0 grows the file to `off + len` (unsynced, reads as
    /// zeros); `FALLOC_FL_KEEP_SIZE` changes nothing a reader or a power cut
    /// could see. Other modes (punching holes, ...) are not modelled.
    pub fn fallocate(&mut self, ino: Ino, off: u64, len: u64, mode: i32) -> FsResult<()> {
        let end = off.checked_add(len).ok_or(FsError::EFBIG)?;
        let f = self.file_mut(ino)?;
        match mode {
            0 => {
                if end > f.len {
                    self.set_len(ino, end)?;
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(FsError::EOPNOTSUPP),
        }
    }

    /// `fsync`/`fdatasync` of a file or a directory. For a file both make
    /// its content and length durable (a length is needed to read the
    /// data back, so `fdatasync` persists it too); neither makes any
    /// directory entry naming the file durable.
    pub fn fsync(&mut self, ino: Ino) -> FsResult<()> {
        self.check_usable()?;
        match self.inode(ino)?.kind() {
            Kind::Dir => self.sync_dir(ino),
            Kind::File => {
                self.stats.fsyncs += 1;
                let Body::File(f) = &mut self.inodes.get_mut(&ino).expect("checked").body else {
                    unreachable!("checked to be a file")
                };
                if let Err(e) = f.persist(&mut self.store, ino) {
                    return Err(self.fail(e));
                }
                Ok(())
            }
        }
    }
}
