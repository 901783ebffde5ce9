//! What a run checks once the workload is over, and the verdict they make
//! together:
//!
//! - the history is linearizable ([`history`], the checker);
//! - the nodes agree after healing: same applied entries, same state
//!   ([`convergence`]);
//! - the nodes' logs hold up: durable votes, one leader per term, every
//!   view of a term's leader right ([`node_logs`]);
//! - the log indexes the answers name follow real time ([`log_order`]);
//! - the nodes committed the same entries, and the answers agree with them
//!   ([`log_audit`]);
//! - no node exited on its own (its log's tail is shown);
//! - some operation succeeded while the faults ran (a history of failures
//!   proves nothing).
//!
//! Exit codes: 0 all hold; 1 a violation of any of them; 2 unknown (the
//! check ran out of time, or no operation succeeded); 3 harness error.

use std::path::Path;

use serde_json::{Value, json};

use super::faults::nemesis::Crash;
use super::recorder::{Event, EventType, Process};

pub mod convergence;
pub mod history;
pub mod log_audit;
pub mod log_order;
pub mod node_logs;

use convergence::ConvergenceReport;
use log_audit::LogAuditReport;
use log_order::LogOrderReport;
use node_logs::NodeLogReport;

/// Lines of a crashed node's log shown with the verdict.
const LOG_TAIL_LINES: usize = 15;

/// Everything the checks found.
pub struct Findings {
    pub history: raftkv_checker::Outcome,
    pub convergence: ConvergenceReport,
    pub node_logs: NodeLogReport,
    pub log_order: LogOrderReport,
    pub log_audit: LogAuditReport,
    pub crashes: Vec<Crash>,
    /// Operations that completed `ok` while the workload ran (the final
    /// reads after healing not counted).
    pub workload_ok_ops: u64,
}

impl Findings {
    /// Crashes of the system under test (not set-up errors).
    fn found_crashes(&self) -> impl Iterator<Item = &Crash> {
        self.crashes.iter().filter(|c| c.setup_error.is_none())
    }

    /// The run's exit code. A node stopped by a set-up error (its port
    /// taken) makes the run a harness error unless the history or the logs
    /// show a violation of their own: the nodes' disagreement and the other
    /// crashes may follow from the missing node.
    pub fn exit_code(&self) -> u8 {
        let setup_error = self.crashes.iter().any(|c| c.setup_error.is_some());
        if self.history.exit_code() == 1
            || !self.node_logs.ok()
            || !self.log_order.ok()
            || !self.log_audit.ok()
        {
            1
        } else if setup_error {
            3
        } else if !self.convergence.ok() || self.found_crashes().next().is_some() {
            1
        } else if self.history.exit_code() == 2 || self.workload_ok_ops == 0 {
            2
        } else {
            self.history.exit_code() as u8
        }
    }

    /// Short names of what failed, e.g. `not linearizable (key k3), nodes
    /// diverged`; "ok" when nothing did.
    pub fn verdict(&self) -> String {
        let mut parts = Vec::new();
        match self.history.verdict {
            raftkv_checker::Verdict::NotLinearizable => parts.push(format!(
                "not linearizable (key {})",
                self.history
                    .failure
                    .as_ref()
                    .map_or("?", |f| f.key.as_str())
            )),
            raftkv_checker::Verdict::Unknown => parts.push("linearizability unknown".into()),
            _ => {}
        }
        if !self.convergence.ok() {
            parts.push("nodes diverged".into());
        }
        if !self.node_logs.ok() {
            parts.push("node logs violated".into());
        }
        if !self.log_order.ok() {
            parts.push("log indexes out of real-time order".into());
        }
        if !self.log_audit.ok() {
            parts.push("committed log contradicts the nodes or the answers".into());
        }
        // A node restarted after a crash may crash again: named once.
        let ids: Vec<String> = self
            .found_crashes()
            .map(|c| c.node)
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .map(|id| id.to_string())
            .collect();
        if !ids.is_empty() {
            parts.push(format!("node {} exited on its own", ids.join(", ")));
        }
        for c in self.crashes.iter().filter(|c| c.setup_error.is_some()) {
            parts.push(format!(
                "node {} could not listen on its port (set-up error)",
                c.node
            ));
        }
        if self.workload_ok_ops == 0 {
            parts.push("no operation succeeded under faults".into());
        }
        if parts.is_empty() {
            "ok".into()
        } else {
            parts.join(", ")
        }
    }

    /// Seconds from the start of the workload to the first sign of trouble:
    /// the operation the checker could not linearize (its completion), the
    /// first node-log violation, the first crash, or, for nodes that
    /// diverged, the first operation answered at or past the first differing
    /// index (else the end of the workload, when the check ran).
    pub fn first_anomaly_s(
        &self,
        events: &[Event],
        started_unix_s: f64,
        workload_s: f64,
    ) -> Option<f64> {
        let mut times = Vec::new();
        if let Some(f) = &self.history.failure
            && let Some(op) = f.op.map(|id| &self.history.history.ops[id])
            && let Some(t) = [op.complete_time, op.invoke_time]
                .into_iter()
                .find(|&t| t != raftkv_checker::history::NO_TIME)
        {
            times.push(t as f64 / 1e9);
        }
        if let Some(t) = self.node_logs.first_violation_unix_s() {
            times.push((t - started_unix_s).max(0.0));
        }
        times.extend(self.crashes.iter().map(|c| c.time_s));
        times.extend(self.log_order.first_violation_s);
        times.extend(self.log_audit.first_violation_s);
        if !self.convergence.ok() {
            let at = self.convergence.first_divergent_index.and_then(|index| {
                events
                    .iter()
                    .filter(|e| e.kind == EventType::Ok && matches!(e.process, Process::Client(_)))
                    .find(|e| e.log_index.is_some_and(|i| i >= index))
                    .map(|e| e.time as f64 / 1e9)
            });
            times.push(at.unwrap_or(workload_s));
        }
        times.into_iter().min_by(|a, b| a.total_cmp(b))
    }

    /// The crashes with the tail of each crashed node's log, for the
    /// terminal and the summary.
    pub fn crash_reports(&self, dir: &Path) -> Vec<String> {
        self.crashes
            .iter()
            .map(|c| {
                let log = dir.join(format!("node-{}.log", c.node));
                let tail = log_tail(&log, LOG_TAIL_LINES);
                format!(
                    "node {} exited on its own ({}) at {:.1} s; last lines of {}:\n{}",
                    c.node,
                    c.status,
                    c.time_s,
                    log.display(),
                    tail
                )
            })
            .collect()
    }

    pub fn crashes_json(&self, dir: &Path) -> Value {
        self.crashes
            .iter()
            .zip(self.crash_reports(dir))
            .map(|(c, report)| {
                json!({
                    "node": c.node,
                    "status": c.status,
                    "time_s": c.time_s,
                    "setup_error": c.setup_error,
                    "report": report,
                })
            })
            .collect()
    }
}

/// The last `n` lines of a file, indented; a note if it cannot be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (cannot read it: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_show_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-1.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, 3);
        assert_eq!(tail, "    line 28\n    line 29\n    line 30");
        assert!(log_tail(&dir.path().join("none"), 3).contains("cannot read it"));
    }

    fn outcome(history: &str) -> raftkv_checker::Outcome {
        raftkv_checker::check_text(history, &raftkv_checker::CheckOptions::default()).unwrap()
    }

    const GOOD: &str = "{\"time\":1000,\"process\":1,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k\",\"value\":\"a\"}\n\
                        {\"time\":2000,\"process\":1,\"type\":\"ok\",\"f\":\"set\",\"key\":\"k\",\"value\":\"a\"}\n";
    const BAD: &str = "{\"time\":1000000000,\"process\":1,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k\",\"value\":\"a\"}\n\
                       {\"time\":2000000000,\"process\":1,\"type\":\"ok\",\"f\":\"set\",\"key\":\"k\",\"value\":\"a\"}\n\
                       {\"time\":3000000000,\"process\":1,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"k\",\"value\":null}\n\
                       {\"time\":4000000000,\"process\":1,\"type\":\"ok\",\"f\":\"get\",\"key\":\"k\",\"value\":\"b\"}\n";

    fn findings(history: &str) -> Findings {
        Findings {
            history: outcome(history),
            convergence: ConvergenceReport {
                supported: true,
                ..ConvergenceReport::default()
            },
            node_logs: NodeLogReport::default(),
            log_order: LogOrderReport::default(),
            log_audit: LogAuditReport::default(),
            crashes: Vec::new(),
            workload_ok_ops: 10,
        }
    }

    #[test]
    fn every_check_can_fail_the_run() {
        let f = findings(GOOD);
        assert_eq!((f.exit_code(), f.verdict().as_str()), (0, "ok"));
        assert_eq!(f.first_anomaly_s(&[], 0.0, 60.0), None);

        let f = findings(BAD);
        assert_eq!(f.exit_code(), 1);
        assert_eq!(f.verdict(), "not linearizable (key k)");
        // The read that cannot be linearized completed at 4 s.
        assert_eq!(f.first_anomaly_s(&[], 0.0, 60.0), Some(4.0));

        let mut f = findings(GOOD);
        f.convergence.violations.push("differ".into());
        f.crashes.push(Crash {
            node: 3,
            status: "signal: 9".into(),
            time_s: 12.5,
            setup_error: None,
        });
        f.crashes.push(Crash {
            node: 3,
            status: "signal: 9".into(),
            time_s: 20.0,
            setup_error: None,
        });
        assert_eq!(f.exit_code(), 1);
        assert_eq!(f.verdict(), "nodes diverged, node 3 exited on its own");
        // No divergent index known: the end of the workload; the crash is earlier.
        assert_eq!(f.first_anomaly_s(&[], 0.0, 60.0), Some(12.5));

        let mut f = findings(GOOD);
        f.node_logs.violations.push(node_logs::Violation {
            text: "two leaders".into(),
            unix_s: Some(1_000.25),
        });
        assert_eq!(f.exit_code(), 1);
        assert_eq!(f.first_anomaly_s(&[], 1_000.0, 60.0), Some(0.25));

        let mut f = findings(GOOD);
        f.log_order.violations.push("read below a write".into());
        f.log_order.first_violation_s = Some(7.5);
        assert_eq!(f.exit_code(), 1);
        assert_eq!(f.verdict(), "log indexes out of real-time order");
        assert_eq!(f.first_anomaly_s(&[], 0.0, 60.0), Some(7.5));

        let mut f = findings(GOOD);
        f.log_audit.violations.push("index 9 differs".into());
        f.log_audit.violation_count = 1;
        f.log_audit.first_violation_s = Some(3.25);
        assert_eq!(f.exit_code(), 1);
        assert_eq!(
            f.verdict(),
            "committed log contradicts the nodes or the answers"
        );
        assert_eq!(f.first_anomaly_s(&[], 0.0, 60.0), Some(3.25));
    }

    #[test]
    fn a_node_whose_port_was_taken_is_a_setup_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node-2.log");
        std::fs::write(
            &log,
            "INFO node: restored durable state
ERROR node: cannot listen on 127.0.0.1:20001: Address already in use (os error 98)
",
        )
        .unwrap();
        let crash = Crash::new(2, "exit status: 1".into(), 9.0, &log);
        assert!(crash.setup_error.as_deref().unwrap().contains("20001"));
        let mut f = findings(GOOD);
        f.crashes.push(crash);
        f.convergence
            .violations
            .push("node 2 never caught up".into());
        assert_eq!(f.exit_code(), 3);
        assert_eq!(
            f.verdict(),
            "nodes diverged, node 2 could not listen on its port (set-up error)"
        );
        // A violation of the history still fails the run.
        let mut bad = findings(BAD);
        bad.crashes = f.crashes.clone();
        assert_eq!(bad.exit_code(), 1);
        // Any other end of a node is a finding.
        std::fs::write(
            &log,
            "ERROR node: log entry 7 is corrupt
",
        )
        .unwrap();
        assert!(
            Crash::new(2, "exit status: 1".into(), 9.0, &log)
                .setup_error
                .is_none()
        );
    }

    #[test]
    fn a_run_in_which_nothing_succeeded_is_no_pass() {
        let mut f = findings(GOOD);
        f.workload_ok_ops = 0;
        assert_eq!(f.exit_code(), 2);
        assert_eq!(f.verdict(), "no operation succeeded under faults");
    }
}
