//! A lazy filesystem for power-failure tests: files and directory entries
//! that were never fsynced live in memory and are lost on command, as a
//! machine's page cache is when its power fails.
//!
//! [`Model`] holds the semantics, free of FUSE; it keeps durable state in a
//! [`Store`]: [`DirStore`] mirrors the durable tree in a backing directory,
//! [`MemStore`] keeps it in memory for tests.

pub mod cli;
pub mod control;
pub mod extents;
mod fuse;
pub mod model;
mod mount;
pub mod mounts;
mod process;
pub mod store;

pub use model::{
    Attr, CutReport, DirEntry, FsError, FsResult, Kind, Listing, Model, SetAttr, Stats, TornFile,
    TornMode,
};
pub use mount::{MountOptions, Mounted};
pub use mounts::check_available;
pub use process::{Launcher, LazyFsProcess};
pub use store::{DirStore, Ino, MemStore, Meta, ROOT, Store};
