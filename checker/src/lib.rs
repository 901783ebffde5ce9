//! A linearizability checker for Jepsen-style histories.
//!
//! ```no_run
//! use raftkv_checker::{check_file, CheckOptions, Verdict};
//! let outcome = check_file("histories/latest/history.jsonl", &CheckOptions::default()).unwrap();
//! println!("{}", outcome.summary());
//! if outcome.verdict == Verdict::NotLinearizable {
//!     std::fs::write("timeline.html", raftkv_checker::render_html(&outcome)).unwrap();
//! }
//! std::process::exit(outcome.exit_code());
//! ```
//!
//! The search is Wing & Gong / Lowe's with a memo of (linearized set, model
//! state) as in Porcupine ([`search`]); histories split into independent
//! partitions per key ([`model`]) decided in parallel ([`check`]). Formats:
//! our JSON Lines (see `HISTORY.md`), Jepsen/Knossos EDN, Porcupine's
//! key-value files and Jepsen console logs ([`format`]).

pub mod brute;
pub mod check;
pub mod encoding;
pub mod error;
pub mod format;
pub mod generate;
pub mod history;
pub mod html;
pub mod model;
pub mod pairing;
pub mod search;
pub mod value;

pub use check::{
    CheckOptions, Failure, Outcome, PartitionReport, PartitionStatus, Verdict, check_file,
    check_history, check_text,
};
pub use error::CheckError;
pub use format::Format;
pub use history::{Event, EventType, History, Op, Process, Status};
pub use html::render_html;
pub use model::{Initial, ModelKind, NilRead, Semantics};
pub use value::Val;
