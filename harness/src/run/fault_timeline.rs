//! The fault schedule as it happened, for the report: fault periods paired
//! from the nemesis events (by fault id), and an SVG timeline with a row per
//! node (killed, paused, leading, crashed) and a row per link that some
//! fault touched (cut, slowed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::recorder::{Event, Process};

/// One stretch of one fault on some nodes or links, in seconds since the
/// start of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// The fault's number in the schedule (0 for events without one).
    pub fault: u64,
    /// `kill`, `power`, `pause`, `partition` or `slow`.
    pub component: &'static str,
    /// The plan's name, e.g. `kill leader`.
    pub plan: String,
    pub start: f64,
    pub end: f64,
    pub nodes: Vec<u64>,
    pub links: Vec<(u64, u64)>,
    /// How the fault was shaped (partition groups, delays).
    pub detail: String,
}

/// The component a nemesis event starts or ends, and whether it starts it.
fn component(f: &str) -> Option<(&'static str, bool)> {
    Some(match f {
        "kill" => ("kill", true),
        "restart" => ("kill", false),
        "power-cut" => ("power", true),
        "power-on" => ("power", false),
        "pause" => ("pause", true),
        "resume" => ("pause", false),
        "partition" => ("partition", true),
        "heal" => ("partition", false),
        "slow" => ("slow", true),
        "slow-end" => ("slow", false),
        _ => return None,
    })
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

fn links(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l.get(0)?.as_u64()?, l.get(1)?.as_u64()?)))
        .collect()
}

/// Pairs every fault start with its end (a fault still active at `end`
/// ends there).
pub fn periods(events: &[Event], end: f64) -> Vec<Period> {
    let mut open: BTreeMap<(u64, &'static str), Period> = BTreeMap::new();
    let mut done = Vec::new();
    for e in events {
        if !matches!(e.process, Process::Nemesis(_)) {
            continue;
        }
        let Some((component, starts)) = component(&e.f) else {
            continue;
        };
        let t = e.time as f64 / 1e9;
        let fault = e.value.get("fault").and_then(Value::as_u64).unwrap_or(0);
        let key = (fault, component);
        if starts {
            if let Some(mut p) = open.remove(&key) {
                p.end = t;
                done.push(p);
            }
            let v = &e.value;
            let detail = match component {
                "partition" => v["groups"].as_str().unwrap_or("").to_string(),
                "slow" => format!(
                    "delay {:.0} ms, jitter {:.0} ms{}",
                    v["delay_ms"].as_f64().unwrap_or(0.0),
                    v["jitter_ms"].as_f64().unwrap_or(0.0),
                    if v["stalls"].as_bool() == Some(true) {
                        ", stalls"
                    } else {
                        ""
                    }
                ),
                "power" => power_detail(&v["cuts"]),
                _ => String::new(),
            };
            let plan = v["plan"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.f.clone());
            open.insert(
                key,
                Period {
                    fault,
                    component,
                    plan,
                    start: t,
                    end,
                    nodes: ids(&v["nodes"]),
                    links: links(if component == "slow" {
                        &v["links"]
                    } else {
                        &v["cut"]
                    }),
                    detail,
                },
            );
        } else if let Some(mut p) = open.remove(&key) {
            p.end = t;
            done.push(p);
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| a.start.total_cmp(&b.start));
    done
}

/// What each node's power cut lost and what a torn write kept of it.
fn power_detail(cuts: &Value) -> String {
    cuts.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "n{} lost {} B (torn {}, kept {} B)",
                c["node"].as_u64().unwrap_or(0),
                c["bytes_lost"].as_u64().unwrap_or(0),
                c["torn"].as_str().unwrap_or("?"),
                c["bytes_kept"].as_u64().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(component: &str) -> &'static str {
    match component {
        "kill" => "#d62728",
        "power" => "#6b0f1a",
        "pause" => "#ff9f1c",
        "partition" => "#3a5ccc",
        _ => "#b58ee0",
    }
}

const ROW: f64 = 14.0;
const LEFT: f64 = 60.0;
const W: f64 = 900.0;

/// The timeline: a row per node (kill, pause, crash marks, and a thin green
/// bar while it leads) and a row per link some fault cut or slowed.
/// `leaders` are (time, leader) changes; `crashes` (node, time).
pub fn svg(
    periods: &[Period],
    nodes: u64,
    leaders: &[(f64, Option<u64>)],
    crashes: &[(u64, f64)],
    t_end: f64,
) -> String {
    let x = |t: f64| LEFT + (W - LEFT - 10.0) * (t / t_end.max(1e-9)).clamp(0.0, 1.0);
    let touched: BTreeSet<(u64, u64)> = periods
        .iter()
        .flat_map(|p| p.links.iter().copied())
        .collect();
    let link_rows: BTreeMap<(u64, u64), usize> = touched
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, nodes as usize + i))
        .collect();
    let rows = nodes as usize + link_rows.len();
    let height = ROW * rows as f64 + 24.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="fault-timeline" width="{W}" height="{height}" viewBox="0 0 {W} {height}" role="img" aria-label="fault timeline"><rect width="{W}" height="{height}" fill="white"/>"#
    );
    let y = |row: usize| 4.0 + ROW * row as f64;
    for n in 1..=nodes {
        let row = n as usize - 1;
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end">node {n}</text><line x1="{LEFT}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/>"##,
            LEFT - 4.0,
            y(row) + 10.0,
            y(row) + ROW - 1.0,
            W - 10.0,
            y(row) + ROW - 1.0
        );
    }
    for (&(a, b), &row) in &link_rows {
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#446">{a}&#8594;{b}</text>"##,
            LEFT - 4.0,
            y(row) + 10.0
        );
    }
    // Leadership: a thin bar under each node's row while it leads.
    for (i, &(t, leader)) in leaders.iter().enumerate() {
        let Some(node) = leader.filter(|&n| n >= 1 && n <= nodes) else {
            continue;
        };
        let until = leaders.get(i + 1).map_or(t_end, |&(t, _)| t);
        let row = node as usize - 1;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="3" fill="#2a9d3f"><title>node {node} leads ({t:.1}s to {until:.1}s)</title></rect>"##,
            x(t),
            y(row) + ROW - 4.0,
            (x(until) - x(t)).max(0.5)
        );
    }
    for p in periods {
        let title = format!(
            "fault {}: {} ({}){} {:.1}s to {:.1}s",
            p.fault,
            p.plan,
            p.component,
            if p.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", p.detail)
            },
            p.start,
            p.end
        );
        let mut rows: Vec<usize> = p
            .nodes
            .iter()
            .filter(|&&n| n >= 1 && n <= nodes)
            .map(|&n| n as usize - 1)
            .collect();
        rows.extend(p.links.iter().filter_map(|l| link_rows.get(l).copied()));
        let (x0, x1) = (x(p.start), x(p.end));
        for row in rows {
            let _ = write!(
                out,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" opacity="0.75"><title>{}</title></rect>"#,
                y(row) + 1.0,
                (x1 - x0).max(1.0),
                ROW - 6.0,
                colour(p.component),
                escape(&title)
            );
        }
    }
    for &(node, t) in crashes {
        if node >= 1 && node <= nodes {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" fill="#000" text-anchor="middle">&#10005;<title>node {node} exited on its own at {t:.1}s</title></text>"##,
                x(t),
                y(node as usize - 1) + 11.0
            );
        }
    }
    let axis = y(rows) + 2.0;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{axis:.1}" x2="{}" y2="{axis:.1}" stroke="#333"/>"##,
        W - 10.0
    );
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|s| t_end / s <= 12.0)
        .unwrap_or(1200.0);
    let mut t = 0.0;
    while t <= t_end + 1e-9 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{t}s</text>"#,
            x(t),
            axis + 14.0
        );
        t += step;
    }
    out.push_str("</svg>");
    out
}

/// Leader changes from the summary's `leaders`.
pub fn leaders(summary: &Value) -> Vec<(f64, Option<u64>)> {
    summary["leaders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["time_s"].as_f64()?, c["node"].as_u64())))
        .collect()
}

/// Crashes from the summary's `crashes`.
pub fn crashes(summary: &Value) -> Vec<(u64, f64)> {
    summary["crashes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["node"].as_u64()?, c["time_s"].as_f64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::recorder::{EventType, NEMESIS};
    use serde_json::json;

    fn nemesis(time_s: f64, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: (time_s * 1e9) as u64,
            process: NEMESIS,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            error: None,
            node: None,
            log_index: None,
        }
    }

    fn schedule() -> Vec<Event> {
        vec![
            nemesis(
                1.0,
                "kill",
                json!({"fault": 1, "plan": "kill leader", "nodes": [2]}),
            ),
            nemesis(
                1.5,
                "partition",
                json!({"fault": 2, "plan": "partition bridge", "groups": "[1] <3> [2]", "cut": [[1, 2], [2, 1]]}),
            ),
            // A compound fault: pause, then cut, then resume, then heal.
            nemesis(
                2.0,
                "pause",
                json!({"fault": 3, "plan": "pause leader, resume deaf", "nodes": [1]}),
            ),
            nemesis(
                2.5,
                "restart",
                json!({"fault": 1, "plan": "kill leader", "nodes": [2]}),
            ),
            nemesis(
                3.0,
                "partition",
                json!({"fault": 3, "plan": "pause leader, resume deaf", "cut": [[2, 1], [3, 1]]}),
            ),
            nemesis(
                3.0,
                "resume",
                json!({"fault": 3, "plan": "pause leader, resume deaf", "nodes": [1]}),
            ),
            nemesis(3.5, "heal", json!({"fault": 2})),
            nemesis(
                4.0,
                "slow",
                json!({"fault": 4, "plan": "slow some", "links": [[3, 2]], "delay_ms": 20.0, "jitter_ms": 5.0, "stalls": true}),
            ),
        ]
    }

    #[test]
    fn overlapping_faults_pair_by_id() {
        let p = periods(&schedule(), 6.0);
        let summary: Vec<(u64, &str, f64, f64)> = p
            .iter()
            .map(|p| (p.fault, p.component, p.start, p.end))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "kill", 1.0, 2.5),
                (2, "partition", 1.5, 3.5),
                (3, "pause", 2.0, 3.0),
                (3, "partition", 3.0, 6.0),
                (4, "slow", 4.0, 6.0),
            ]
        );
        assert_eq!(p[0].nodes, vec![2]);
        assert_eq!(p[1].links, vec![(1, 2), (2, 1)]);
        assert_eq!(p[1].detail, "[1] <3> [2]");
        assert_eq!(p[4].detail, "delay 20 ms, jitter 5 ms, stalls");
    }

    #[test]
    fn a_power_cut_is_a_period_with_what_it_lost() {
        let events = vec![
            nemesis(
                1.0,
                "power-cut",
                json!({"fault": 5, "plan": "power-cut all", "nodes": [1, 2],
                       "cuts": [{"node": 1, "torn": "prefix", "bytes_lost": 300, "bytes_kept": 20},
                                {"node": 2, "torn": "none", "bytes_lost": 0, "bytes_kept": 0}]}),
            ),
            nemesis(2.0, "power-on", json!({"fault": 5, "nodes": [1, 2]})),
        ];
        let p = periods(&events, 3.0);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].component, p[0].start, p[0].end), ("power", 1.0, 2.0));
        assert_eq!(p[0].nodes, vec![1, 2]);
        assert_eq!(
            p[0].detail,
            "n1 lost 300 B (torn prefix, kept 20 B), n2 lost 0 B (torn none, kept 0 B)"
        );
        let svg = svg(&p, 2, &[], &[], 3.0);
        assert_eq!(svg.matches("fill=\"#6b0f1a\" opacity").count(), 2);
    }

    #[test]
    fn draws_a_row_per_node_and_per_touched_link() {
        let p = periods(&schedule(), 6.0);
        let svg = svg(&p, 3, &[(0.5, Some(1)), (2.2, Some(3))], &[(2, 5.0)], 6.0);
        for label in [
            "node 1",
            "node 2",
            "node 3",
            "1&#8594;2",
            "2&#8594;1",
            "3&#8594;1",
            "3&#8594;2",
        ] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        // One rect per node of a process fault, per link of a network one.
        assert_eq!(svg.matches("fill=\"#d62728\" opacity").count(), 1);
        assert_eq!(svg.matches("fill=\"#3a5ccc\" opacity").count(), 4);
        assert_eq!(svg.matches("fill=\"#b58ee0\" opacity").count(), 1);
        assert!(svg.contains("node 3 leads (2.2s to 6.0s)"));
        assert!(svg.contains("node 2 exited on its own at 5.0s"));
        assert!(
            svg.contains("fault 2: partition bridge (partition) [1] &lt;3&gt; [2] 1.5s to 3.5s")
        );
    }
}
