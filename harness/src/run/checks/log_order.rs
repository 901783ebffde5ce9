//! The log indexes a target gave its acknowledged operations, against real
//! time. A target that names the log position of each answer (raftkv's
//! index, etcd's revision) promises, if it is linearizable:
//!
//! - two acknowledged writes never share a position (one entry each);
//! - a write acknowledged before another operation began sits before it:
//!   a later write's position is higher, a later read's at least as high;
//! - a read answered before a write began is below that write.
//!
//! A read served by a leader that no longer leads, or a write answered for
//! an entry that is not its own, breaks these rules even when the values
//! read happen to fit, so this check sees what the values may hide. Ops
//! without a position (failed, indeterminate, or a target that gives none)
//! are left out.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::super::recorder::{Event, EventType, Process};

/// Violations shown in full; the rest are counted.
const SHOWN: usize = 10;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogOrderReport {
    /// Acknowledged operations that named a position.
    pub checked: u64,
    pub violations: Vec<String>,
    /// Seconds from the start of the workload to the first violating answer.
    pub first_violation_s: Option<f64>,
}

/// The highest position acknowledged so far, and by which operation.
#[derive(Debug, Clone, Copy, Default)]
struct Highest {
    index: u64,
    /// History index of the completion that gave it.
    event: u64,
    time: u64,
}

impl Highest {
    fn raise(&mut self, index: u64, e: &Event) {
        if index > self.index {
            *self = Highest {
                index,
                event: e.index,
                time: e.time,
            };
        }
    }
}

fn is_write(f: &str) -> bool {
    matches!(f, "set" | "cas" | "noop")
}

/// Checks the client operations of `events` (in history order).
pub fn check(events: &[Event]) -> LogOrderReport {
    let mut report = LogOrderReport::default();
    let mut writes_done = Highest::default();
    let mut reads_done = Highest::default();
    // Per process: what was acknowledged when its operation began.
    let mut at_invoke: HashMap<u64, (Highest, Highest)> = HashMap::new();
    // Position -> the write acknowledged there (event index).
    let mut owners: HashMap<u64, u64> = HashMap::new();
    let mut found = 0usize;
    for e in events {
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                at_invoke.insert(p, (writes_done, reads_done));
                continue;
            }
            EventType::Ok => {}
            _ => {
                at_invoke.remove(&p);
                continue;
            }
        }
        let Some((w, r)) = at_invoke.remove(&p) else {
            continue;
        };
        let Some(index) = e.log_index else {
            continue;
        };
        report.checked += 1;
        let what = |e: &Event| {
            format!(
                "{} {} (history line {}, {:.3} s)",
                e.f,
                e.key.as_deref().unwrap_or(""),
                e.index + 1,
                e.time as f64 / 1e9
            )
        };
        let mut problems = Vec::new();
        if is_write(&e.f) {
            if let Some(&other) = owners.get(&index) {
                problems.push(format!(
                    "{} was acknowledged at log index {index}, as was the write of history line {}",
                    what(e),
                    other + 1
                ));
            } else {
                owners.insert(index, e.index);
            }
            for (before, kind) in [(w, "write was acknowledged"), (r, "read was served")] {
                if before.index > 0 && index <= before.index {
                    problems.push(format!(
                        "{} was acknowledged at log index {index}, but began after a {kind} at index {} (history line {}, {:.3} s)",
                        what(e),
                        before.index,
                        before.event + 1,
                        before.time as f64 / 1e9
                    ));
                }
            }
        } else if w.index > 0 && index < w.index {
            problems.push(format!(
                "{} was served at log index {index}, but began after a write was acknowledged at index {} (history line {}, {:.3} s): it missed that write",
                what(e),
                w.index,
                w.event + 1,
                w.time as f64 / 1e9
            ));
        } else if r.index > 0 && index < r.index {
            problems.push(format!(
                "{} was served at log index {index}, but began after a read was served at index {} (history line {}, {:.3} s)",
                what(e),
                r.index,
                r.event + 1,
                r.time as f64 / 1e9
            ));
        }
        if !problems.is_empty() {
            report.first_violation_s.get_or_insert(e.time as f64 / 1e9);
            for text in problems {
                found += 1;
                if report.violations.len() < SHOWN {
                    report.violations.push(text);
                }
            }
        }
        if is_write(&e.f) {
            writes_done.raise(index, e);
        } else {
            reads_done.raise(index, e);
        }
    }
    if found > SHOWN {
        report
            .violations
            .push(format!("... and {} more", found - SHOWN));
    }
    report
}

impl LogOrderReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verdict": if self.checked == 0 { "not-checked" } else if self.ok() { "ok" } else { "violated" },
            "checked": self.checked,
            "first_violation_s": self.first_violation_s,
            "violations": self.violations,
        })
    }

    /// One line (and the violations) for the terminal.
    pub fn summary(&self) -> String {
        let mut s = if self.checked == 0 {
            "log order: not checked (no answer named a log index)".to_string()
        } else if self.ok() {
            format!(
                "log order: ok ({} answers' log indexes follow real time)",
                self.checked
            )
        } else {
            "log order: VIOLATED".to_string()
        };
        for v in &self.violations {
            s.push_str("\n  ");
            s.push_str(v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(process, type, f, time, index)` rows as events.
    fn events(rows: &[(u64, EventType, &str, u64, Option<u64>)]) -> Vec<Event> {
        rows.iter()
            .enumerate()
            .map(|(i, &(p, kind, f, time, log_index))| Event {
                index: i as u64,
                time,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: Some("k".into()),
                value: Value::Null,
                error: None,
                node: None,
                log_index,
            })
            .collect()
    }

    use EventType::{Info, Invoke, Ok as Done};

    #[test]
    fn a_run_in_real_time_order_passes() {
        let ev = events(&[
            (1, Invoke, "set", 1, None),
            (2, Invoke, "get", 2, None),
            // Concurrent: the read may be served below the write.
            (2, Done, "get", 3, Some(4)),
            (1, Done, "set", 4, Some(5)),
            (1, Invoke, "cas", 5, None),
            (2, Invoke, "get", 6, None),
            (2, Done, "get", 7, Some(5)),
            (1, Done, "cas", 8, Some(6)),
            (3, Invoke, "set", 9, None),
            (3, Info, "set", 10, None),
        ]);
        let r = check(&ev);
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.checked, 4);
    }

    #[test]
    fn a_read_below_an_earlier_write_is_caught() {
        let ev = events(&[
            (1, Invoke, "set", 1, None),
            (1, Done, "set", 2, Some(10)),
            (2, Invoke, "get", 3, None),
            (2, Done, "get", 4, Some(9)),
        ]);
        let r = check(&ev);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].contains("missed that write"),
            "{}",
            r.violations[0]
        );
        assert_eq!(r.first_violation_s, Some(4e-9));
    }

    #[test]
    fn two_writes_at_one_index_are_caught() {
        let ev = events(&[
            (1, Invoke, "set", 1, None),
            (2, Invoke, "set", 2, None),
            (1, Done, "set", 3, Some(7)),
            (2, Done, "set", 4, Some(7)),
        ]);
        let r = check(&ev);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("as was the write of history line 3"));
    }

    #[test]
    fn a_write_below_an_earlier_read_or_write_is_caught() {
        let ev = events(&[
            (1, Invoke, "get", 1, None),
            (1, Done, "get", 2, Some(8)),
            (2, Invoke, "set", 3, None),
            (2, Done, "set", 4, Some(8)),
            (3, Invoke, "noop", 5, None),
            (3, Done, "noop", 6, Some(3)),
        ]);
        let r = check(&ev);
        // The set at 8 is not above the read at 8; the noop at 3 is below
        // both.
        assert_eq!(r.violations.len(), 3, "{:?}", r.violations);
        assert!(!r.ok());
        assert_eq!(r.to_json()["verdict"], "violated");
    }

    #[test]
    fn answers_without_an_index_are_not_checked() {
        let ev = events(&[(1, Invoke, "set", 1, None), (1, Done, "set", 2, None)]);
        let r = check(&ev);
        assert_eq!(r.checked, 0);
        assert!(r.ok());
        assert!(r.summary().contains("not checked"));
    }
}
