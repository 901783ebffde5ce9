//! Checks on what the nodes' own logs say, beside the linearizability of
//! the history. Some mistakes break Raft's safety argument long before a
//! client can see it; these lines let the run catch two of them directly:
//!
//! - a vote survives a restart: a node that logged `vote granted` for term T
//!   (logged only once the vote is durable) must come back from a crash with
//!   a term above T, or with term T and that same vote. Otherwise it could
//!   vote twice in one term, and two leaders could be elected in it.
//! - at most one leader per term (election safety).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeLogReport {
    /// Nodes whose logs were read.
    pub nodes: usize,
    /// `vote granted` lines seen.
    pub votes_granted: usize,
    /// Restarts whose recovered state was checked against a granted vote.
    pub restarts_checked: usize,
    /// Terms in which some node became leader.
    pub leader_terms: usize,
    pub violations: Vec<String>,
}

impl NodeLogReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verdict": if self.ok() { "ok" } else { "violated" },
            "nodes": self.nodes,
            "votes_granted": self.votes_granted,
            "restarts_checked": self.restarts_checked,
            "leader_terms": self.leader_terms,
            "violations": self.violations,
        })
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "node logs: {} (votes granted {}, restarts checked {}, terms with a leader {})",
            if self.ok() { "ok" } else { "VIOLATED" },
            self.votes_granted,
            self.restarts_checked,
            self.leader_terms
        );
        for v in &self.violations {
            s.push_str("\n  ");
            s.push_str(v);
        }
        s
    }
}

/// The run's exit code: a violation in the node logs counts as a violation
/// (1) even when the history alone was linearizable or undecided.
pub fn combined_exit_code(history_exit_code: i32, report: &NodeLogReport) -> u8 {
    match history_exit_code {
        0 | 2 if !report.ok() => 1,
        code => code as u8,
    }
}

/// Checks the node logs of a run directory and records the result in its
/// summary (`node_checks`, and `exit_code` combined with the history's).
/// Returns the report and that exit code.
pub fn check_into_summary(
    dir: &Path,
    history_exit_code: i32,
    summary: &mut Value,
) -> Result<(NodeLogReport, u8), String> {
    let report = check_run_dir(dir)?;
    let exit_code = combined_exit_code(history_exit_code, &report);
    summary["node_checks"] = report.to_json();
    summary["exit_code"] = exit_code.into();
    Ok((report, exit_code))
}

/// Reads every `node-<id>.log` in a run directory.
pub fn check_run_dir(dir: &Path) -> Result<NodeLogReport, String> {
    let mut logs = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(id) = name
            .strip_prefix("node-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|id| id.parse::<u64>().ok())
        else {
            continue;
        };
        let text = std::fs::read(entry.path())
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        logs.push((id, name, String::from_utf8_lossy(&text).into_owned()));
    }
    logs.sort();
    Ok(check_logs(logs.iter().map(|(id, name, text)| {
        (*id, name.as_str(), text.as_str())
    })))
}

/// Checks the logs given as (node id, file name, text).
pub fn check_logs<'a>(logs: impl IntoIterator<Item = (u64, &'a str, &'a str)>) -> NodeLogReport {
    let mut report = NodeLogReport::default();
    let mut leaders: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (id, file, text) in logs {
        report.nodes += 1;
        // The newest vote this node granted, with the line that said so.
        let mut granted: Option<(u64, u64, usize)> = None;
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let plain;
            let line = if line.contains('\x1b') {
                plain = strip_colour(line);
                plain.as_str()
            } else {
                line
            };
            if line.contains(" vote granted ") {
                let (Some(term), Some(candidate)) =
                    (field_u64(line, "term"), field_u64(line, "candidate"))
                else {
                    continue;
                };
                report.votes_granted += 1;
                if granted.is_none_or(|(t, _, _)| term >= t) {
                    granted = Some((term, candidate, line_no));
                }
            } else if line.contains(" restored durable state ") {
                let (Some(term), Some(vote)) = (field_u64(line, "term"), field(line, "vote"))
                else {
                    continue;
                };
                let Some((t, candidate, granted_at)) = granted else {
                    continue;
                };
                report.restarts_checked += 1;
                let kept = term > t || (term == t && vote == format!("Some({candidate})"));
                if !kept {
                    report.violations.push(format!(
                        "node {id} granted its vote to node {candidate} in term {t} \
                         ({file}:{granted_at}), then restarted with term {term} and vote {vote} \
                         ({file}:{line_no}): a granted vote was not durable"
                    ));
                }
            } else if line.contains(" role changed ")
                && field(line, "role") == Some("Leader")
                && let Some(term) = field_u64(line, "term")
            {
                leaders.entry(term).or_default().insert(id);
            }
        }
    }
    report.leader_terms = leaders.len();
    for (term, ids) in &leaders {
        if ids.len() > 1 {
            report.violations.push(format!(
                "term {term} had more than one leader: nodes {ids:?}"
            ));
        }
    }
    report
}

/// A log line without its ANSI colour sequences (`ESC [ ... m`), as a node
/// writes them when its stderr is a terminal.
fn strip_colour(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of ` name=value` on a tracing line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}=");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    Some(rest.split_whitespace().next().unwrap_or(""))
}

fn field_u64(line: &str, name: &str) -> Option<u64> {
    field(line, name)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-27T04:53:57.472150Z  INFO";

    fn line(rest: &str) -> String {
        format!("{T} {rest}\n")
    }

    #[test]
    fn a_vote_kept_across_a_restart_passes() {
        let log = [
            line("node: restored durable state id=2 term=0 vote=None commit=0 entries=0"),
            line("node::driver: vote granted term=3 candidate=1"),
            line("node: restored durable state id=2 term=3 vote=Some(1) commit=4 entries=5"),
            line("node::driver: vote granted term=5 candidate=3"),
            line("node: restored durable state id=2 term=6 vote=None commit=4 entries=5"),
        ]
        .concat();
        let r = check_logs([(2, "node-2.log", log.as_str())]);
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!((r.votes_granted, r.restarts_checked), (2, 2));
    }

    #[test]
    fn a_vote_lost_in_a_restart_is_a_violation() {
        let log = [
            line("node::driver: vote granted term=3 candidate=1"),
            line("node: restored durable state id=2 term=3 vote=None commit=4 entries=5"),
        ]
        .concat();
        let r = check_logs([(2, "node-2.log", log.as_str())]);
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].contains("node 2 granted its vote to node 1 in term 3"));
        assert!(r.violations[0].contains("node-2.log:2"));

        // A term that went backwards loses the vote as well.
        let log = [
            line("node::driver: vote granted term=3 candidate=1"),
            line("node: restored durable state id=2 term=2 vote=Some(1) commit=4 entries=5"),
        ]
        .concat();
        assert!(!check_logs([(2, "node-2.log", log.as_str())]).ok());
    }

    #[test]
    fn coloured_lines_are_read_too() {
        let log = "\x1b[2m2026-11-27T08:21:51.677Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mnode::driver\x1b[0m\x1b[2m:\x1b[0m vote granted \x1b[3mterm\x1b[0m\x1b[2m=\x1b[0m3 \x1b[3mcandidate\x1b[0m\x1b[2m=\x1b[0m1\n\
                   \x1b[2m2026-11-27T08:21:52.000Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mnode\x1b[0m\x1b[2m:\x1b[0m restored durable state \x1b[3mterm\x1b[0m\x1b[2m=\x1b[0m3 \x1b[3mvote\x1b[0m\x1b[2m=\x1b[0mNone\n";
        let r = check_logs([(2, "node-2.log", log)]);
        assert_eq!((r.votes_granted, r.restarts_checked), (1, 1));
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }

    #[test]
    fn two_leaders_in_one_term_is_a_violation() {
        let a = line("node::driver: role changed role=Leader term=4 previous=Candidate");
        let b = line("node::driver: role changed role=Leader term=5 previous=Candidate");
        let ok = check_logs([(1, "node-1.log", a.as_str()), (2, "node-2.log", b.as_str())]);
        assert!(ok.ok());
        assert_eq!(ok.leader_terms, 2);
        let bad = check_logs([(1, "node-1.log", a.as_str()), (2, "node-2.log", a.as_str())]);
        assert_eq!(
            bad.violations,
            vec!["term 4 had more than one leader: nodes {1, 2}"]
        );
    }

    #[test]
    fn reads_the_logs_of_a_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("node-1.log"),
            line("node::driver: vote granted term=2 candidate=3")
                + &line("node: restored durable state id=1 term=2 vote=None commit=0 entries=0"),
        )
        .unwrap();
        std::fs::write(dir.path().join("history.jsonl"), "").unwrap();
        let r = check_run_dir(dir.path()).unwrap();
        assert_eq!(r.nodes, 1);
        assert_eq!(r.violations.len(), 1);
    }
}
