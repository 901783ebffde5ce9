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
//!         send rd.messages                        (may go before the write is durable;
//!                                                  a Snapshot message gets the snapshot's
//!                                                  data attached, then on_snapshot_sent)
//!         persist rd.snapshot (if any), then rd.truncate_from, rd.entries, rd.hard_state; fsync
//!         raft.on_persisted(rd.number)            (in ready order, once durable)
//!         send rd.persisted_messages              (only after the fsync)
//!         restore the state machine from rd.snapshot (if any);
//!         apply rd.committed in order; raft.on_applied(index);
//!         serve rd.reads once applied >= index
//!     }
//! }
//! ```
//! Persisting may run asynchronously (group commit): the caller may take
//! further `Ready`s before earlier ones are durable, as long as it writes
//! them in order and reports `on_persisted` in order.
//!
//! # Snapshots and compaction
//! The core holds snapshot metadata only ([`SnapshotMeta`]: last included
//! index and term, voters); the caller owns the data. To compact, the caller
//! takes a snapshot of its state machine at an applied index (with the
//! metadata from [`Raft::snapshot_meta`]), makes it durable, reports it with
//! [`Raft::on_snapshot_saved`] and then calls [`Raft::compact`], which drops
//! entries up to the index asked for but never beyond the snapshot or the
//! applied index (entries may be kept behind the snapshot for followers that
//! lag a little). A node restarts from its newest snapshot plus the log after
//! it ([`Restored::snapshot`]).
//!
//! A leader whose follower needs a compacted entry sends a
//! [`MessageKind::Snapshot`] carrying the metadata, and sends that follower
//! nothing else until the follower acknowledges it or the caller reports
//! the transfer with [`Raft::on_snapshot_sent`]; then it continues after the
//! snapshot's index (or, after a failure, sends the snapshot again once the
//! follower answers a heartbeat). A follower ignores a snapshot at or below
//! its commit index; if its log holds the snapshot's last entry it only
//! moves its commit index; otherwise its log is replaced and
//! [`Ready::snapshot`] asks the caller to persist the snapshot and restore
//! its state machine from it.
//!
//! # Layout
//! - `raft`: roles, elections (PreVote, CheckQuorum, leader lease),
//!   replication, commitment, leadership transfer, InstallSnapshot;
//! - `log`: the in-memory log with its snapshot, its first index and its
//!   handed-out and durable boundaries;
//! - `progress`: the leader's view of each follower (probe, replicate,
//!   snapshot; in-flight Appends);
//! - `read_only`: ReadIndex rounds;
//! - `quorum`: majority arithmetic.
//!
//! Membership changes are not implemented: the voter set is taken from
//! [`Config::voters`] in one place (`Raft::new`), from which the peer list,
//! progress map, quorum sizes and snapshot metadata all derive.

mod log;
mod progress;
mod quorum;
mod raft;
mod read_only;
mod types;

pub use raft::{CAMPAIGN_TRANSFER, Raft};
pub use types::*;
