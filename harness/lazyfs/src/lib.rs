//! A lazy filesystem for power-failure tests: files and directory entries
//! that were never fsynced live in memory and are lost on command, as a
//! machine's page cache is when its power fails.
//!
//! [`Model`] holds the semantics, free of FUSE; it keeps durable state in a
//! [`Store`]: [`DirStore`] mirrors the durable tree in a backing directory,
//! [`MemStore`] keeps it in memory for tests.

pub mod extents;
pub mod model;
pub mod store;

pub use model::{
    Attr, CutReport, DirEntry, FsError, FsResult, Kind, Listing, Model, SetAttr, Stats, TornFile,
    TornMode,
};
pub use store::{DirStore, Ino, MemStore, Meta, ROOT, Store};
