//! Known mistakes that can be switched on, one at a time, to show that the
//! fault-injection gate catches them.
//!
//! Every crate of the node calls [`is`] where a mistake is planted. Without
//! the `active` feature (normal builds) [`is`] is a constant `false` and the
//! planted paths compile away; with it (the node's `planted-mistakes`
//! feature), the node's `main` calls [`init`] once, which reads
//! `RAFTKV_PLANT`. The Raft core stays free of I/O: it only reads the
//! process-wide choice that `main` made.

#[cfg(feature = "active")]
use std::sync::OnceLock;

/// A mistake that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl Plant {
    /// Every mistake, in the order of [`Plant::name`]'s documentation.
    pub const ALL: &'static [Plant] = &[
        Plant::StaleRead,
        Plant::VoteNotPersisted,
        Plant::AckBeforeCommit,
        Plant::DoubleApply,
    ];

    /// The name `RAFTKV_PLANT` takes.
    pub fn name(self) -> &'static str {
        match self {
            Plant::StaleRead => "stale-read",
            Plant::VoteNotPersisted => "vote-not-persisted",
            Plant::AckBeforeCommit => "ack-before-commit",
            Plant::DoubleApply => "double-apply",
        }
    }

    pub fn parse(value: &str) -> Result<Plant, String> {
        Plant::ALL
            .iter()
            .copied()
            .find(|p| p.name() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Plant::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "RAFTKV_PLANT: unknown mistake {value:?} (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

#[cfg(feature = "active")]
static ACTIVE: OnceLock<Option<Plant>> = OnceLock::new();

/// Reads `RAFTKV_PLANT` once at start-up; returns the planted mistake.
#[cfg(feature = "active")]
pub fn init() -> Result<Option<Plant>, String> {
    let plant = match std::env::var("RAFTKV_PLANT") {
        Ok(v) if !v.is_empty() => Some(Plant::parse(&v)?),
        _ => None,
    };
    let _ = ACTIVE.set(plant);
    Ok(plant)
}

/// True if `plant` is the mistake planted in this process.
#[cfg(feature = "active")]
pub fn is(plant: Plant) -> bool {
    ACTIVE.get().copied().flatten() == Some(plant)
}

/// True if `plant` is the mistake planted in this process: never, in a
/// build without the `active` feature.
#[cfg(not(feature = "active"))]
#[inline(always)]
pub const fn is(_plant: Plant) -> bool {
    false
}

/// True when this build can plant mistakes.
pub const ENABLED: bool = cfg!(feature = "active");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &p in Plant::ALL {
            assert_eq!(Plant::parse(p.name()), Ok(p));
        }
        let err = Plant::parse("nope").unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("stale-read"),
            "{err}"
        );
    }
}
