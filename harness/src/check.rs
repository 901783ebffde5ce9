//! `harness check RUN_DIR`: re-checks the history of a stored run (the
//! checker, and the order of the log indexes its answers name), the nodes'
//! logs ([`crate::run::node_logs`]), prints the verdict and rewrites
//! the run's `report.html` and the verdict fields of its `summary.json`.
//! What only the live run could see (the nodes' states compared after
//! healing, nodes that exited on their own) is taken from `summary.json`.
//! Exit codes as for `harness run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::run::checks::log_order;
use crate::run::{EXIT_HARNESS_ERROR, node_logs, parse_duration, recorder, report};

#[derive(clap::Args)]
pub struct Args {
    /// A run directory (holding history.jsonl), e.g. histories/latest.
    pub run_dir: PathBuf,
    /// Time limit of the check (then the verdict is unknown).
    #[arg(long, default_value = "120s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub time_limit: std::time::Duration,
    /// Leave report.html and summary.json as they are.
    #[arg(long)]
    pub no_write: bool,
}

pub fn main(args: Args) -> ExitCode {
    match check(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("harness check: {e}");
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}

fn check(args: &Args) -> Result<u8, String> {
    let history = args.run_dir.join("history.jsonl");
    if !history.is_file() {
        return Err(format!(
            "{} is not a run directory: {} not found",
            args.run_dir.display(),
            history.display()
        ));
    }
    let options = raftkv_checker::CheckOptions {
        time_limit: Some(args.time_limit),
        ..raftkv_checker::CheckOptions::default()
    };
    let start = Instant::now();
    let outcome = raftkv_checker::check_file(&history, &options).map_err(|e| e.to_string())?;
    let check_s = start.elapsed().as_secs_f64();
    println!("{}", outcome.summary());
    let summary_path = args.run_dir.join("summary.json");
    let mut summary: serde_json::Value = match std::fs::read_to_string(&summary_path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", summary_path.display()))?
        }
        Err(_) => serde_json::json!({ "config": {}, "throughput": {}, "latency": { "all": {} } }),
    };
    summary["verdict"] = outcome.verdict.as_str().into();
    summary["check"] = outcome.to_json();
    summary["timings"]["check_s"] = check_s.into();
    let (node_checks, mut exit_code) =
        node_logs::check_into_summary(&args.run_dir, outcome.exit_code(), &mut summary)?;
    println!("{}", node_checks.summary());
    let events = recorder::read_history(&history)?;
    let order = log_order::check(&events);
    println!("{}", order.summary());
    summary["log_order"] = order.to_json();
    if !order.ok() {
        exit_code = 1;
    }
    // As in the run: a node stopped by a set-up error makes the run a
    // harness error unless the history or the logs show a violation.
    let mut follows = false;
    if recorded_violation(&summary, "convergence", "node states", "DIVERGED") {
        follows = true;
    }
    // The committed log was audited while the run went; its finding stands.
    if recorded_violation(&summary, "log_audit", "committed log audit", "VIOLATED") {
        exit_code = 1;
    }
    let mut setup_error = false;
    for crash in summary["crashes"].as_array().into_iter().flatten() {
        println!("{}", crash["report"].as_str().unwrap_or(""));
        if crash["setup_error"].is_string() {
            setup_error = true;
        } else {
            follows = true;
        }
    }
    if exit_code != 1 && setup_error {
        exit_code = crate::run::EXIT_HARNESS_ERROR;
    } else if follows {
        exit_code = 1;
    }
    summary["exit_code"] = exit_code.into();
    eprintln!("checked in {check_s:.2} s");
    if !args.no_write {
        crate::run::summary::write(&args.run_dir, &summary).map_err(|e| e.to_string())?;
        report::write(&args.run_dir, &summary, &events, &outcome).map_err(|e| e.to_string())?;
    }
    Ok(exit_code)
}

/// Prints the violations the run recorded under `summary[key]` for a check
/// that needs the live nodes (it cannot be repeated from the run
/// directory); true when there were any.
fn recorded_violation(summary: &serde_json::Value, key: &str, name: &str, word: &str) -> bool {
    if summary[key]["verdict"] != "violated" {
        return false;
    }
    println!("{name} (as recorded by the run): {word}");
    for v in summary[key]["violations"].as_array().into_iter().flatten() {
        println!("  {}", v.as_str().unwrap_or(""));
    }
    true
}
