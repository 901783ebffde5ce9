//! A sans-IO Raft core.
//!
//! [`Raft`] is a plain state machine: the caller feeds it ticks, peer
//! messages, proposals and read requests, and collects a [`Ready`] that says
//! what to persist, what to send, what to apply and which reads are safe.
//! It reads no clock, socket, file or random source of its own; election
//! timeouts are drawn from an RNG seeded by the caller.
//!
//! # Driving the core
//! ```text
//! loop {
//!     feed: raft.tick() / raft.step(msg) / raft.propose(data) / raft.read_index(ctx)
//!     if raft.has_ready() {
//!         let rd = raft.ready();
//!         send rd.messages                        (may go before the write is durable)
//!         persist rd.truncate_from, rd.entries, rd.hard_state; fsync
//!         raft.on_persisted(rd.number)            (in ready order, once durable)
//!         send rd.persisted_messages              (only after the fsync)
//!         apply rd.committed in order; serve rd.reads once applied >= index
//!     }
//! }
//! ```
//! Persisting may run asynchronously (group commit): the caller may take
//! further `Ready`s before earlier ones are durable, as long as it writes
//! them in order and reports `on_persisted` in order.
//!
//! # Layout
//! - `raft`: roles, elections (PreVote, CheckQuorum, leader lease),
//!   replication, commitment, leadership transfer;
//! - `log`: the in-memory log with its handed-out and durable boundaries;
//! - `progress`: the leader's view of each follower (probe/replicate,
//!   in-flight Appends);
//! - `read_only`: ReadIndex rounds;
//! - `quorum`: majority arithmetic.
//!
//! Snapshots and membership changes are not implemented. Their seams: the
//! log always starts at index 1 (a snapshot would move its first index and
//! make `term()` answer for the snapshot's last entry), and the voter set is
//! taken from [`Config::voters`] in one place (`Raft::new`), from which the
//! peer list, progress map and quorum sizes all derive.

mod log;
mod progress;
mod quorum;
mod raft;
mod read_only;
mod types;

pub use raft::{CAMPAIGN_TRANSFER, Raft};
pub use types::*;
