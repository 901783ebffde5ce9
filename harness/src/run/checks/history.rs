//! The linearizability check of a run's history, by the checker.

use std::path::PathBuf;
use std::time::Duration;

use super::super::HarnessError;

/// Checks `history` (off the async threads), bounded by `time_limit`.
pub async fn check(
    history: PathBuf,
    time_limit: Duration,
) -> Result<raftkv_checker::Outcome, HarnessError> {
    tokio::task::spawn_blocking(move || {
        let options = raftkv_checker::CheckOptions {
            time_limit: Some(time_limit),
            ..raftkv_checker::CheckOptions::default()
        };
        raftkv_checker::check_file(&history, &options)
    })
    .await
    .map_err(|e| HarnessError(format!("checker failed: {e}")))?
    .map_err(|e| HarnessError(format!("checker: {e}")))
}
