//! Known mistakes that can be switched on, one at a time, to show that the
//! fault-injection tests catch them. Compiled only with the
//! `planted-mistakes` feature; chosen by the `RAFTKV_PLANT` variable.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// Get answered from local state without a ReadIndex round.
    StaleRead,
    /// Hard state written to the log without the vote.
    VoteNotPersisted,
    /// Set acknowledged when proposed, before it commits.
    AckBeforeCommit,
    /// A retried command applied again (session dedup bypassed).
    DoubleApply,
}

static ACTIVE: OnceLock<Option<Plant>> = OnceLock::new();

pub fn parse(value: &str) -> Result<Plant, String> {
    Ok(match value {
        "stale-read" => Plant::StaleRead,
        "vote-not-persisted" => Plant::VoteNotPersisted,
        "ack-before-commit" => Plant::AckBeforeCommit,
        "double-apply" => Plant::DoubleApply,
        other => {
            return Err(format!(
                "RAFTKV_PLANT: unknown mistake {other:?} (expected stale-read, vote-not-persisted, ack-before-commit or double-apply)"
            ));
        }
    })
}

/// Reads `RAFTKV_PLANT` once at start-up.
pub fn init() -> Result<Option<Plant>, String> {
    let plant = match std::env::var("RAFTKV_PLANT") {
        Ok(v) if !v.is_empty() => Some(parse(&v)?),
        _ => None,
    };
    let _ = ACTIVE.set(plant);
    Ok(plant)
}

pub fn is(plant: Plant) -> bool {
    ACTIVE.get().copied().flatten() == Some(plant)
}
