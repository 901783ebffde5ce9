//! Checks on what the nodes' own logs say, beside the linearizability of
//! the history. Some mistakes break Raft's safety argument long before a
//! client can see it; these lines let the run catch them directly:
//!
//! - a vote survives a restart: a node that logged `vote granted` for term T
//!   (logged only once the vote is durable) must come back from a crash with
//!   a term above T, or with term T and that same vote. Otherwise it could
//!   vote twice in one term, and two leaders could be elected in it.
//! - at most one leader per term (election safety).
//! - every node's view of the leader of term T (`leader known`) names the
//!   node that became leader of T, if one logged it.
//!
//! - a snapshot stays: a node that logged `snapshot taken` or `snapshot
//!   installed` at index I (both logged once durable) restarts from a
//!   snapshot at I or above, unless it logged skipping a damaged snapshot
//!   file. Otherwise it would apply again entries its state machine already
//!   holds, or miss compacted ones.
//! - replicas agree at every snapshot: every node snapshots at the same
//!   indexes and logs the state digest and the applied-entry chain of each
//!   snapshot it takes or installs; two different ones at one index mean
//!   the state machines diverged there, even if no client read the
//!   difference and the nodes converge later.
//! - a snapshot installed from the leader never takes the state machine
//!   back: its index is not below the index the node had applied.
//!
//! - a repair cuts only what a crash tore: where the harness killed a node
//!   and left a torn write after the whole records of its log (the run's
//!   history says where those records ended), the node's repair at restart
//!   cuts from that point, not before it. Cutting more loses records the
//!   node had written, and so perhaps acknowledged.
//!
//! The logs also tell how often a node cut a torn tail off its write-ahead
//! log at start-up (a repair, not a violation) and how many snapshots each
//! node took and installed; the report counts them.
//! Each violation carries the time of the line that shows it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

/// The phrase a node logs when it cuts a torn record off its WAL.
const WAL_REPAIR: &str = "cutting a torn tail";
/// A node wrote a snapshot of its own state machine (durable when logged).
const SNAPSHOT_TAKEN: &str = " snapshot taken ";
/// A node replaced its state machine with a snapshot from the leader.
const SNAPSHOT_INSTALLED: &str = " snapshot installed ";
/// A node skipped a damaged snapshot file at start-up for an older one.
const SNAPSHOT_DAMAGED: &str = "damaged snapshot file skipped";

/// A violation and when the line that shows it was written (seconds since
/// the Unix epoch, from the line's timestamp).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub text: String,
    pub unix_s: Option<f64>,
}

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
    /// `leader known` lines checked against the node that became leader.
    pub leader_views_checked: usize,
    /// WAL repairs at start-up (torn tails cut), per node.
    pub wal_repairs: BTreeMap<u64, usize>,
    /// Torn writes the harness left that were checked against the repair
    /// after them (two kills before one restart make two for one repair).
    pub tears_checked: usize,
    /// Snapshots each node took of its own state machine.
    pub snapshots_taken: BTreeMap<u64, usize>,
    /// Snapshots each node installed from a leader.
    pub snapshots_installed: BTreeMap<u64, usize>,
    pub violations: Vec<Violation>,
}

impl NodeLogReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn wal_repairs_total(&self) -> usize {
        self.wal_repairs.values().sum()
    }

    pub fn snapshots_taken_total(&self) -> usize {
        self.snapshots_taken.values().sum()
    }

    pub fn snapshots_installed_total(&self) -> usize {
        self.snapshots_installed.values().sum()
    }

    /// When the first violation was logged (seconds since the Unix epoch).
    pub fn first_violation_unix_s(&self) -> Option<f64> {
        self.violations
            .iter()
            .filter_map(|v| v.unix_s)
            .min_by(|a, b| a.total_cmp(b))
    }

    pub fn to_json(&self) -> Value {
        let per_node = |counts: &BTreeMap<u64, usize>| -> BTreeMap<String, usize> {
            counts.iter().map(|(id, n)| (id.to_string(), *n)).collect()
        };
        json!({
            "verdict": if self.ok() { "ok" } else { "violated" },
            "nodes": self.nodes,
            "votes_granted": self.votes_granted,
            "restarts_checked": self.restarts_checked,
            "leader_terms": self.leader_terms,
            "leader_views_checked": self.leader_views_checked,
            "wal_repairs": self.wal_repairs_total(),
            "wal_repairs_per_node": per_node(&self.wal_repairs),
            "torn_writes_checked": self.tears_checked,
            "snapshots_taken": self.snapshots_taken_total(),
            "snapshots_taken_per_node": per_node(&self.snapshots_taken),
            "snapshots_installed": self.snapshots_installed_total(),
            "snapshots_installed_per_node": per_node(&self.snapshots_installed),
            "violations": self.violations.iter().map(|v| v.text.clone()).collect::<Vec<_>>(),
        })
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "node logs: {} (votes granted {}, restarts checked {}, terms with a leader {}, leader views checked {}, WAL repairs {}, torn writes checked against them {}, snapshots taken {}, installed {})",
            if self.ok() { "ok" } else { "VIOLATED" },
            self.votes_granted,
            self.restarts_checked,
            self.leader_terms,
            self.leader_views_checked,
            self.wal_repairs_total(),
            self.tears_checked,
            self.snapshots_taken_total(),
            self.snapshots_installed_total()
        );
        for v in &self.violations {
            s.push_str("\n  ");
            s.push_str(&v.text);
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

/// A torn write the harness left at the end of a killed node's log, as the
/// run's history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tear {
    pub node: u64,
    /// The log file's name.
    pub file: String,
    /// Where the whole records ended: a repair must keep what precedes it.
    pub kept: u64,
    /// When it was left (seconds since the Unix epoch); the node was down.
    pub unix_s: f64,
}

/// The torn writes recorded in a history (`kill` events with `torn`).
pub fn tears_in_history(text: &str) -> Vec<Tear> {
    let mut tears = Vec::new();
    for line in text.lines().filter(|l| l.contains("\"torn\"")) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for t in event["value"]["torn"].as_array().into_iter().flatten() {
            if let (Some(node), Some(file), Some(kept), Some(unix_s)) = (
                t["node"].as_u64(),
                t["file"].as_str(),
                t["kept"].as_u64(),
                t["unix_s"].as_f64(),
            ) {
                tears.push(Tear {
                    node,
                    file: file_name(file).to_string(),
                    kept,
                    unix_s,
                });
            }
        }
    }
    tears
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// Reads every `node-<id>.log` in a run directory, and the torn writes its
/// `history.jsonl` records.
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
    let tears = match std::fs::read_to_string(dir.join("history.jsonl")) {
        Ok(text) => tears_in_history(&text),
        Err(_) => Vec::new(),
    };
    Ok(check_logs_with_tears(
        logs.iter()
            .map(|(id, name, text)| (*id, name.as_str(), text.as_str())),
        &tears,
    ))
}

/// Where a line is: file, line number, time.
#[derive(Debug, Clone)]
struct At {
    node: u64,
    file: String,
    line: usize,
    unix_s: Option<f64>,
}

impl At {
    fn show(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Checks the logs given as (node id, file name, text).
#[cfg(test)]
pub fn check_logs<'a>(logs: impl IntoIterator<Item = (u64, &'a str, &'a str)>) -> NodeLogReport {
    check_logs_with_tears(logs, &[])
}

/// Checks the logs given as (node id, file name, text), and each node's
/// repair after the torn writes in `tears`.
pub fn check_logs_with_tears<'a>(
    logs: impl IntoIterator<Item = (u64, &'a str, &'a str)>,
    tears: &[Tear],
) -> NodeLogReport {
    let mut report = NodeLogReport::default();
    // Every repair: (log file cut, offset cut from, where).
    let mut repairs: Vec<(String, u64, At)> = Vec::new();
    // Term -> (node that logged becoming its leader, where).
    let mut leaders: BTreeMap<u64, Vec<At>> = BTreeMap::new();
    // (term, leader named, where) of every `leader known` line.
    // Snapshot index -> (digest, chain, where) of every snapshot logged.
    let mut snapshot_states: BTreeMap<u64, Vec<(String, String, At)>> = BTreeMap::new();
    let mut views: Vec<(u64, u64, At)> = Vec::new();
    for (id, file, text) in logs {
        report.nodes += 1;
        // The newest vote this node granted, with the line that said so.
        let mut granted: Option<(u64, u64, usize)> = None;
        // The newest snapshot this node took (index, line), and whether a
        // damaged snapshot file was skipped since.
        let mut durable_snapshot: Option<(u64, usize)> = None;
        let mut damaged_skipped = false;
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let plain;
            let line = if line.contains('\x1b') {
                plain = strip_colour(line);
                plain.as_str()
            } else {
                line
            };
            let at = || At {
                node: id,
                file: file.to_string(),
                line: line_no,
                unix_s: line_time(line),
            };
            if line.contains(WAL_REPAIR) {
                *report.wal_repairs.entry(id).or_default() += 1;
                if let (Some(cut), Some(offset)) = (field(line, "file"), field_u64(line, "offset"))
                {
                    repairs.push((file_name(cut).to_string(), offset, at()));
                }
            } else if line.contains(SNAPSHOT_TAKEN) || line.contains(SNAPSHOT_INSTALLED) {
                let installed = line.contains(SNAPSHOT_INSTALLED);
                let count = if installed {
                    &mut report.snapshots_installed
                } else {
                    &mut report.snapshots_taken
                };
                *count.entry(id).or_default() += 1;
                let Some(index) = field_u64(line, "index") else {
                    continue;
                };
                if durable_snapshot.is_none_or(|(i, _)| index >= i) {
                    durable_snapshot = Some((index, line_no));
                }
                if let (Some(digest), Some(chain)) = (field(line, "digest"), field(line, "chain")) {
                    snapshot_states.entry(index).or_default().push((
                        digest.to_string(),
                        chain.to_string(),
                        at(),
                    ));
                }
                if installed
                    && let (Some(index), Some(previous)) = (
                        field_u64(line, "index"),
                        field_u64(line, "previous_applied"),
                    )
                    && index < previous
                {
                    report.violations.push(Violation {
                        text: format!(
                            "node {id} had applied index {previous} and installed a snapshot at \
                             index {index} ({file}:{line_no}): its state machine went back"
                        ),
                        unix_s: line_time(line),
                    });
                }
            } else if line.contains(SNAPSHOT_DAMAGED) {
                damaged_skipped = true;
            } else if line.contains(" leader known ") {
                if let (Some(leader), Some(term)) =
                    (field_u64(line, "leader"), field_u64(line, "term"))
                {
                    views.push((term, leader, at()));
                }
            } else if line.contains(" vote granted ") {
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
                if let Some((taken, taken_at)) = durable_snapshot
                    && let Some(loaded) = field_u64(line, "snapshot_index")
                    && loaded < taken
                    && !damaged_skipped
                {
                    report.violations.push(Violation {
                        text: format!(
                            "node {id} had a durable snapshot at index {taken} ({file}:{taken_at}), then \
                             restarted from snapshot index {loaded} ({file}:{line_no}): a durable \
                             snapshot was lost"
                        ),
                        unix_s: line_time(line),
                    });
                }
                damaged_skipped = false;
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
                    report.violations.push(Violation {
                        text: format!(
                            "node {id} granted its vote to node {candidate} in term {t} \
                             ({file}:{granted_at}), then restarted with term {term} and vote {vote} \
                             ({file}:{line_no}): a granted vote was not durable"
                        ),
                        unix_s: line_time(line),
                    });
                }
            } else if line.contains(" role changed ")
                && field(line, "role") == Some("Leader")
                && let Some(term) = field_u64(line, "term")
            {
                leaders.entry(term).or_default().push(at());
            }
        }
    }
    check_repairs(&repairs, tears, &mut report);
    report.leader_terms = leaders.len();
    for (index, states) in &snapshot_states {
        if let Some(v) = differing_snapshots(*index, states) {
            report.violations.push(v);
        }
    }
    for (term, ats) in &leaders {
        let ids: BTreeSet<u64> = ats.iter().map(|a| a.node).collect();
        if ids.len() > 1 {
            let lines: Vec<String> = ats.iter().map(At::show).collect();
            report.violations.push(Violation {
                text: format!(
                    "term {term} had more than one leader: nodes {ids:?} ({})",
                    lines.join(", ")
                ),
                unix_s: latest(ats.iter().map(|a| a.unix_s)),
            });
        }
    }
    // A node may learn of a leader before that leader's own line is written
    // (or the leader may die first): only a different node that logged
    // leading the same term contradicts a view.
    let mut wrong: BTreeMap<(u64, u64), Vec<&At>> = BTreeMap::new();
    for (term, named, at) in &views {
        let Some(ats) = leaders.get(term) else {
            continue;
        };
        report.leader_views_checked += 1;
        if !ats.iter().any(|a| a.node == *named) {
            wrong.entry((*term, *named)).or_default().push(at);
        }
    }
    for ((term, named), ats) in wrong {
        let leader = &leaders[&term][0];
        let seen: Vec<String> = ats.iter().map(|a| a.show()).collect();
        report.violations.push(Violation {
            text: format!(
                "node {} became leader of term {term} ({}), but {} named node {named} as its leader ({})",
                leader.node,
                leader.show(),
                if ats.len() == 1 {
                    format!("node {}", ats[0].node)
                } else {
                    format!("{} lines", ats.len())
                },
                seen.join(", ")
            ),
            unix_s: ats.iter().filter_map(|a| a.unix_s).min_by(|a, b| a.total_cmp(b)),
        });
    }
    report
}

/// Each torn write against the node's first repair after it (its restart):
/// the repair of the same file must not cut below where the whole records
/// ended. A torn write with no repair after it (the node never restarted)
/// is not checked.
fn check_repairs(repairs: &[(String, u64, At)], tears: &[Tear], report: &mut NodeLogReport) {
    for tear in tears {
        // A node's repairs are in its log's order, which is time order.
        let Some((file, offset, at)) = repairs
            .iter()
            .find(|(_, _, at)| at.node == tear.node && at.unix_s.is_some_and(|t| t >= tear.unix_s))
        else {
            continue;
        };
        if *file != tear.file {
            continue;
        }
        report.tears_checked += 1;
        if *offset < tear.kept {
            report.violations.push(Violation {
                text: format!(
                    "node {} cut whole records off its write-ahead log at restart: killed with \
                     whole records up to byte {} of {file} and a torn write after them, it cut \
                     from byte {offset} ({}): {} bytes it had written are lost",
                    tear.node,
                    tear.kept,
                    at.show(),
                    tear.kept - offset
                ),
                unix_s: at.unix_s,
            });
        }
    }
}

/// The violation, if the snapshots logged at `index` (digest, chain, where)
/// do not all hold the same state. It is dated by the first line that
/// disagrees with one written before it.
fn differing_snapshots(index: u64, states: &[(String, String, At)]) -> Option<Violation> {
    let mut by_time: Vec<&(String, String, At)> = states.iter().collect();
    by_time.sort_by(|a, b| {
        let t = |x: &At| x.unix_s.unwrap_or(f64::INFINITY);
        t(&a.2).total_cmp(&t(&b.2))
    });
    let first = by_time[0];
    let differs = by_time
        .iter()
        .find(|(d, c, _)| (d, c) != (&first.0, &first.1))?;
    let show = |(d, c, at): &(String, String, At)| {
        format!("node {} digest {d} chain {c} ({})", at.node, at.show())
    };
    Some(Violation {
        text: format!(
            "the nodes' snapshots at index {index} hold different states: {} but {}",
            show(first),
            show(differs)
        ),
        unix_s: differs.2.unix_s,
    })
}

fn latest(times: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    times.flatten().max_by(|a, b| a.total_cmp(b))
}

/// The time a tracing line starts with (`2026-11-27T04:53:57.472150Z`), in
/// seconds since the Unix epoch.
pub fn line_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let hours: i64 = t.next()?.parse().ok()?;
    let minutes: i64 = t.next()?.parse().ok()?;
    let seconds: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hours * 3600 + minutes * 60) as f64 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        let v = &r.violations[0];
        assert!(
            v.text
                .contains("node 2 granted its vote to node 1 in term 3")
        );
        assert!(v.text.contains("node-2.log:2"));
        assert_eq!(v.unix_s, line_time(T));
        assert_eq!(r.first_violation_unix_s(), v.unix_s);

        // A term that went backwards loses the vote as well.
        let log = [
            line("node::driver: vote granted term=3 candidate=1"),
            line("node: restored durable state id=2 term=2 vote=Some(1) commit=4 entries=5"),
        ]
        .concat();
        assert!(!check_logs([(2, "node-2.log", log.as_str())]).ok());
    }

    #[test]
    fn snapshots_are_counted_and_a_restart_keeps_the_newest() {
        let taken = |index: u64| {
            line(&format!(
                "node::driver: snapshot taken index={index} term=2 bytes=900 digest={index}7 chain={index}9 encode_ms=0 write_ms=1"
            ))
        };
        let restored = |snapshot: u64| {
            line(&format!(
                "node: restored durable state id=3 term=2 vote=None commit=0 snapshot_index={snapshot} first_index=0 entries=0"
            ))
        };
        let installed = |index: u64, previous: u64| {
            line(&format!(
                "node::driver: snapshot installed index={index} term=3 bytes=900 from=1 previous_applied={previous} digest={index}7 chain={index}9"
            ))
        };
        let log = [
            restored(0),
            taken(300),
            taken(600),
            restored(600),
            installed(1500, 700),
            taken(1800),
            restored(1800),
        ]
        .concat();
        let r = check_logs([(3, "node-3.log", log.as_str())]);
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.snapshots_taken, BTreeMap::from([(3, 3)]));
        assert_eq!(r.snapshots_installed, BTreeMap::from([(3, 1)]));
        let json = r.to_json();
        assert_eq!(json["snapshots_taken"], 3);
        assert_eq!(json["snapshots_installed_per_node"]["3"], 1);
        assert!(r.summary().contains("snapshots taken 3, installed 1"));

        // Restarting from an older snapshot than one taken loses it.
        let lost = [taken(300), taken(600), restored(300)].concat();
        let r = check_logs([(3, "node-3.log", lost.as_str())]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].text.contains(
                "node 3 had a durable snapshot at index 600 (node-3.log:2), then restarted from snapshot index 300 (node-3.log:3)"
            ),
            "{}",
            r.violations[0].text
        );
        // Unless the node said the newer file was damaged and skipped it.
        let damaged = [
            taken(300),
            taken(600),
            line("node: damaged snapshot file skipped; started from an older snapshot and the log after it file=x"),
            restored(300),
        ]
        .concat();
        assert!(check_logs([(3, "node-3.log", damaged.as_str())]).ok());

        // A snapshot below what was applied takes the state machine back.
        let back = installed(400, 700);
        let r = check_logs([(3, "node-3.log", back.as_str())]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].text.contains("went back"));

        // An installed snapshot is durable too.
        let lost = [installed(1500, 700), restored(600)].concat();
        assert!(!check_logs([(3, "node-3.log", lost.as_str())]).ok());
    }

    #[test]
    fn snapshots_at_one_index_must_hold_one_state() {
        let at = |time: &str, rest: &str| {
            format!("2026-11-27T04:53:{time}Z  INFO node::driver: {rest}\n")
        };
        let one = at(
            "50.0",
            "snapshot taken index=600 term=2 bytes=900 digest=11 chain=22 encode_ms=0 write_ms=1",
        );
        let same = at(
            "51.0",
            "snapshot installed index=600 term=2 bytes=900 from=1 previous_applied=100 digest=11 chain=22",
        );
        let r = check_logs([
            (1, "node-1.log", one.as_str()),
            (2, "node-2.log", same.as_str()),
        ]);
        assert!(r.ok(), "{:?}", r.violations);
        let other = at(
            "52.0",
            "snapshot taken index=600 term=2 bytes=900 digest=12 chain=22 encode_ms=0 write_ms=1",
        );
        let later = at(
            "53.0",
            "snapshot taken index=900 term=2 bytes=900 digest=5 chain=6 encode_ms=0 write_ms=1",
        );
        let r = check_logs([
            (1, "node-1.log", one.as_str()),
            (2, "node-2.log", same.as_str()),
            (
                3,
                "node-3.log",
                [other.as_str(), later.as_str()].concat().as_str(),
            ),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert_eq!(
            r.violations[0].text,
            "the nodes' snapshots at index 600 hold different states: node 1 digest 11 chain 22 \
             (node-1.log:1) but node 3 digest 12 chain 22 (node-3.log:1)"
        );
        assert_eq!(r.violations[0].unix_s, line_time(&other));
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
        assert_eq!(bad.violations.len(), 1);
        assert_eq!(
            bad.violations[0].text,
            "term 4 had more than one leader: nodes {1, 2} (node-1.log:1, node-2.log:1)"
        );
    }

    #[test]
    fn a_view_of_the_wrong_leader_is_a_violation() {
        let leads = line("node::driver: role changed role=Leader term=4 previous=Candidate")
            + &line("node::driver: leader known leader=1 term=4");
        let follows = line("node::driver: leader known leader=1 term=4")
            + &line("node::driver: leader known leader=3 term=5");
        let r = check_logs([
            (1, "node-1.log", leads.as_str()),
            (2, "node-2.log", follows.as_str()),
        ]);
        // Term 5's leader never logged: nothing to contradict.
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.leader_views_checked, 2);

        let wrong = line("node::driver: leader known leader=2 term=4");
        let r = check_logs([
            (1, "node-1.log", leads.as_str()),
            (3, "node-3.log", wrong.as_str()),
        ]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert_eq!(
            r.violations[0].text,
            "node 1 became leader of term 4 (node-1.log:1), but node 3 named node 2 as its leader (node-3.log:1)"
        );
    }

    #[test]
    fn wal_repairs_are_counted_not_violations() {
        let log = line(
            "raftkv_wal: write-ahead log /d/wal: cutting a torn tail of 7 bytes at offset 100: short record",
        ) + &line(
            "node: cut a torn record at the end of the write-ahead log file=/d/wal offset=100 bytes=7",
        ) + &line(
            "raftkv_wal: write-ahead log /d/wal: cutting a torn tail of 3 bytes at offset 200: bad checksum",
        );
        let r = check_logs([(4, "node-4.log", log.as_str())]);
        assert!(r.ok());
        assert_eq!(r.wal_repairs, BTreeMap::from([(4, 2)]));
        assert_eq!(r.to_json()["wal_repairs"], 2);
        assert!(r.summary().contains("WAL repairs 2"));
    }

    #[test]
    fn a_repair_may_cut_the_torn_write_but_no_whole_record_before_it() {
        let at = |t: &str, rest: &str| format!("{t}  WARN {rest}\n");
        let repair = |offset: u64| {
            format!(
                "raftkv_wal: write-ahead log /r/n1/wal-1.log: cutting a torn tail of 30 bytes at offset {offset}: \
                 short record file=/r/n1/wal-1.log offset={offset} bytes=30"
            )
        };
        // Killed at second 10 (whole records up to byte 500) and at second
        // 20 (up to byte 900); restarted after each.
        let history = [
            r#"{"index":1,"time":5,"process":"nemesis","type":"info","f":"kill","value":{"nodes":[1],"torn":[{"node":1,"bytes":30,"file":"/r/n1/wal-1.log","kept":500,"unix_s":10.0}]}}"#,
            r#"{"index":2,"time":6,"process":"nemesis","type":"info","f":"kill","value":{"nodes":[1,2],"torn":[{"node":1,"bytes":30,"file":"/r/n1/wal-1.log","kept":900,"unix_s":20.0},{"node":2,"bytes":0}]}}"#,
        ]
        .join("\n");
        let tears = tears_in_history(&history);
        assert_eq!(tears.len(), 2, "{tears:?}");
        assert_eq!(tears[0].file, "wal-1.log");
        let good = at("1970-01-01T00:00:05Z", &repair(100))
            + &at("1970-01-01T00:00:11Z", &repair(500))
            + &at("1970-01-01T00:00:21Z", &repair(900));
        let r = check_logs_with_tears([(1, "node-1.log", good.as_str())], &tears);
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.tears_checked, 2);
        // The second restart cut the last whole record (bytes 870-900) too.
        let bad =
            at("1970-01-01T00:00:11Z", &repair(500)) + &at("1970-01-01T00:00:21Z", &repair(870));
        let r = check_logs_with_tears([(1, "node-1.log", bad.as_str())], &tears);
        assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        assert!(v.text.contains("node 1 cut whole records"), "{}", v.text);
        assert!(
            v.text.contains("byte 900 of wal-1.log") && v.text.contains("node-1.log:2"),
            "{}",
            v.text
        );
        assert!(v.text.contains("30 bytes"), "{}", v.text);
        assert_eq!(v.unix_s, Some(21.0));
        // No restart after the second kill: only the first is checked.
        let once = at("1970-01-01T00:00:11Z", &repair(500));
        let r = check_logs_with_tears([(1, "node-1.log", once.as_str())], &tears);
        assert!(r.ok());
        assert_eq!(r.tears_checked, 1);
    }

    #[test]
    fn reads_line_times() {
        assert_eq!(line_time("1970-01-01T00:00:01.5Z  INFO x"), Some(1.5));
        // 2026-11-27 03:30:54 UTC
        assert_eq!(
            line_time("2026-11-27T03:30:54.250000Z  INFO node: serving"),
            Some(1_795_750_254.25)
        );
        assert_eq!(line_time("2000-02-29T00:00:00Z x"), Some(951_782_400.0));
        assert_eq!(line_time("not a time"), None);
        assert_eq!(line_time(""), None);
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
