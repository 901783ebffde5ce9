//! The FUSE adapter: kernel requests become [`Model`] calls.
//!
//! The kernel must cache nothing a power cut could make stale: every file
//! is opened with `FOPEN_DIRECT_IO` (no page cache: reads and writes come
//! here), attributes and entries are given a time-to-live of zero (every
//! path lookup and `stat` asks again), the write-back cache is never asked
//! for, and a power cut also tells the kernel to drop what it holds on
//! every inode. `flock` and POSIX locks stay with the kernel (the
//! filesystem does not ask to handle them), which keeps them working
//! between processes of this machine.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

use crate::model::{Attr, CutReport, FsError, Kind, Model, SetAttr, Stats, TornMode};
use crate::store::{DirStore, Ino, Meta};

/// Nothing is cached by the kernel beyond one request.
const TTL: Duration = Duration::ZERO;

#[derive(Debug)]
enum Handle {
    File {
        ino: Ino,
        append: bool,
    },
    /// A directory listing taken at `opendir`: `readdir` offsets index it.
    Dir {
        entries: Vec<(Ino, FileType, std::ffi::OsString)>,
    },
}

/// The model and the open handles, shared by the FUSE thread and whoever
/// cuts the power.
#[derive(Debug)]
pub(crate) struct FsState {
    pub(crate) model: Model<DirStore>,
    handles: HashMap<u64, Handle>,
    /// Handle numbers are never reused, so a late `release` of a handle
    /// from before a power cut cannot close a new one.
    next_fh: u64,
}

pub(crate) type Shared = Arc<Mutex<FsState>>;

impl FsState {
    pub(crate) fn new(model: Model<DirStore>) -> FsState {
        FsState {
            model,
            handles: HashMap::new(),
            next_fh: 1,
        }
    }

    fn add_handle(&mut self, h: Handle) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, h);
        fh
    }

    /// Power cut: the model loses what is unsynced; every handle is
    /// forgotten (their processes are dead). Returns the cut's report and
    /// the inodes the kernel may still hold.
    pub(crate) fn power_cut(
        &mut self,
        torn: TornMode,
        seed: u64,
    ) -> Result<(CutReport, Vec<Ino>), FsError> {
        let known: Vec<Ino> = self.model.tree().values().map(|(i, _)| *i).collect();
        let report = self.model.power_cut(torn, seed)?;
        self.handles.clear();
        Ok((report, known))
    }

    pub(crate) fn stats(&self) -> Stats {
        self.model.stats()
    }
}

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, FsState> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `fuser` filesystem over the shared state.
pub(crate) struct LazyFs {
    pub(crate) state: Shared,
    pub(crate) backing: PathBuf,
}

fn errno(e: FsError) -> Errno {
    Errno::from_i32(e.0)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.meta.atime,
        mtime: a.meta.mtime,
        ctime: a.meta.ctime,
        crtime: a.meta.ctime,
        kind: file_type(a.kind),
        perm: a.meta.perm,
        nlink: a.nlink,
        uid: a.meta.uid,
        gid: a.meta.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn new_meta(req: &Request, mode: u32, umask: u32) -> Meta {
    Meta::new((mode & !umask & 0o7777) as u16, req.uid(), req.gid())
}

impl LazyFs {
    fn state(&self) -> MutexGuard<'_, FsState> {
        lock(&self.state)
    }

    fn entry(&self, r: Result<Attr, FsError>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }
}

fn empty(r: Result<(), FsError>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn attr(r: Result<Attr, FsError>, reply: ReplyAttr) {
    match r {
        Ok(a) => reply.attr(&TTL, &file_attr(&a)),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for LazyFs {
    fn init(&mut self, _req: &Request, _config: &mut KernelConfig) -> std::io::Result<()> {
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.state().model.lookup(parent.0, name);
        self.entry(r, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr(self.state().model.getattr(ino.0), reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            size,
            perm: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        attr(self.state().model.setattr(ino.0, set), reply);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let r = self
            .state()
            .model
            .create(parent.0, name, new_meta(req, mode, umask));
        self.entry(r, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .state()
            .model
            .mkdir(parent.0, name, new_meta(req, mode, umask));
        self.entry(r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.state().model.unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.state().model.rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let r = self
            .state()
            .model
            .rename(parent.0, name, newparent.0, newname, noreplace);
        empty(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.state().model.link(ino.0, newparent.0, newname);
        self.entry(r, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.state();
        if let Err(e) = st.model.open(ino.0) {
            return reply.error(errno(e));
        }
        let append = flags.0 & libc::O_APPEND != 0;
        let fh = st.add_handle(Handle::File { ino: ino.0, append });
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return reply.error(Errno::EPERM);
        }
        let mut st = self.state();
        let a = match st.model.create(parent.0, name, new_meta(req, mode, umask)) {
            Ok(a) => a,
            Err(e) => return reply.error(errno(e)),
        };
        if let Err(e) = st.model.open(a.ino) {
            return reply.error(errno(e));
        }
        let append = flags & libc::O_APPEND != 0;
        let fh = st.add_handle(Handle::File { ino: a.ino, append });
        reply.created(
            &TTL,
            &file_attr(&a),
            Generation(0),
            FileHandle(fh),
            FopenFlags::FOPEN_DIRECT_IO,
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().model.read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.state();
        let append = match st.handles.get(&fh.0) {
            Some(Handle::File { append, .. }) => *append,
            Some(Handle::Dir { .. }) => return reply.error(Errno::EISDIR),
            // A handle from before a power cut: its process is gone.
            None => return reply.error(Errno::EBADF),
        } || flags.0 & libc::O_APPEND != 0;
        // With O_APPEND the kernel's idea of the end may be stale after a
        // power cut; the model's end is the truth.
        let r = if append {
            st.model.append(ino.0, data).map(|_| ())
        } else {
            st.model.write(ino.0, offset, data)
        };
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        if let Some(Handle::File { ino, .. }) = st.handles.remove(&fh.0) {
            let _ = st.model.release(ino);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.state().model.fsync(ino.0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.state();
        let listing = match st.model.readdir(ino.0) {
            Ok(l) => l,
            Err(e) => return reply.error(errno(e)),
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, ".".into()),
            (listing.parent, FileType::Directory, "..".into()),
        ];
        entries.extend(
            listing
                .entries
                .into_iter()
                .map(|e| (e.ino, file_type(e.kind), e.name)),
        );
        let fh = st.add_handle(Handle::Dir { entries });
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let st = self.state();
        let Some(Handle::Dir { entries }) = st.handles.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.state().model.fsync(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.backing) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        empty(self.state().model.getattr(ino.0).map(|_| ()), reply);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        empty(
            self.state().model.fallocate(ino.0, offset, length, mode),
            reply,
        );
    }
}
