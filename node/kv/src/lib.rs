//! The replicated key-value state machine.
//!
//! Log entries carry an encoded [`Request`]: a [`Command`] with the client's
//! session (client id, sequence number) and the leader's time stamp.
//! [`KvStore::apply`] executes each request at most once per session and
//! remembers its [`Reply`] so that a retry gets the same answer. Everything
//! the store does depends only on the entries applied, never on the local
//! clock, so every replica reaches the same state.

mod codec;
mod command;
pub mod digest;
mod session;
mod store;

pub use codec::DecodeError;
pub use command::{Command, Reply, Request};
pub use session::SessionConfig;
pub use store::KvStore;
