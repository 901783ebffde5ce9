//! `report.html`: one self-contained page with the verdict, the checker's
//! timeline (embedded; it opens on the failure), latency and rate plots
//! per operation ([`perf_plots`], fault periods shaded, as in Jepsen's perf
//! checker) and the fault timeline per node and link ([`fault_timeline`]).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::recorder::Event;
use super::{fault_timeline, perf_plots};

/// A fault period in seconds since the start, with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub start: f64,
    pub end: f64,
    pub label: String,
}

/// The periods of process faults and partitions (slow links are left to
/// the fault timeline: they would shade most of a run).
pub fn fault_bands(events: &[Event], end: f64) -> Vec<Band> {
    fault_timeline::periods(events, end)
        .into_iter()
        .filter(|p| p.component != "slow")
        .map(|p| Band {
            start: p.start,
            end: p.end,
            label: p.plan,
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The violations of one check, in red; nothing when there are none.
fn violation_list(out: &mut String, violations: &[Value]) {
    if violations.is_empty() {
        return;
    }
    out.push_str(r#"<ul class="violations" style="color:#d62728">"#);
    for v in violations {
        let _ = write!(out, "<li>{}</li>", escape(v.as_str().unwrap_or("")));
    }
    out.push_str("</ul>");
}

/// The whole page. `timeline` is the checker's self-contained HTML page.
pub fn page(summary: &Value, events: &[Event], timeline: &str) -> String {
    let t_end = events.last().map_or(1.0, |e| e.time as f64 / 1e9).max(1.0);
    let bands = fault_bands(events, t_end);
    let verdict = summary["verdict"].as_str().unwrap_or("unknown");
    let nodes_violated = summary["node_checks"]["verdict"] == "violated"
        || summary["convergence"]["verdict"] == "violated"
        || summary["log_order"]["verdict"] == "violated"
        || summary["log_audit"]["verdict"] == "violated"
        || summary["crashes"].as_array().is_some_and(|c| !c.is_empty());
    let verdict_color = match verdict {
        _ if nodes_violated => "#d62728",
        "linearizable" => "#2a9d3f",
        "not-linearizable" => "#d62728",
        _ => "#e6a700",
    };
    let headline = match summary["verdict_text"].as_str() {
        Some("ok") => format!("{verdict}; the nodes agree and their logs hold up"),
        Some(text) => text.to_string(),
        None if nodes_violated => format!("{verdict} history; node logs show a safety violation"),
        None => verdict.to_string(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>raftkv run: {verdict}</title>
<style>body{{font-family:sans-serif;margin:20px;color:#222}} .verdict{{color:{verdict_color};font-size:1.4em;font-weight:bold}} table{{border-collapse:collapse}} td{{padding:2px 10px 2px 0;font-size:0.9em}} iframe{{width:100%;height:860px;border:1px solid #ccc}} .perf-row svg{{margin:0 8px 8px 0}} .legend span{{margin-right:14px;font-size:0.9em}}</style></head><body>
<h1>raftkv run</h1><p class="verdict" id="verdict">{}</p><table>"#,
        escape(&headline)
    );
    let cfg = &summary["config"];
    for (name, value) in [
        ("nodes", cfg["nodes"].to_string()),
        ("duration", format!("{} s", cfg["duration_s"])),
        ("nemesis", cfg["nemesis"].as_str().unwrap_or("").to_string()),
        ("concurrency", cfg["concurrency"].to_string()),
        ("keys", cfg["keys"].to_string()),
        ("seed", summary["seed"].to_string()),
        ("events", summary["events"].to_string()),
        (
            "throughput",
            format!(
                "{:.0} ops/s",
                summary["throughput"]["ops_per_s"].as_f64().unwrap_or(0.0)
            ),
        ),
        (
            "latency (ok)",
            format!(
                "p50 {} ms, p99 {} ms, max {} ms",
                summary["latency"]["all"]["p50_ms"],
                summary["latency"]["all"]["p99_ms"],
                summary["latency"]["all"]["max_ms"]
            ),
        ),
        (
            "faults",
            summary["nemesis"]["applied"].as_u64().map_or_else(
                || "-".into(),
                |applied| {
                    format!(
                        "{applied} applied of {} planned",
                        summary["nemesis"]["planned"]
                    )
                },
            ),
        ),
        (
            "cas applied",
            match summary["cas"]["success_rate"].as_f64() {
                Some(r) => format!(
                    "{:.0} % of {}",
                    r * 100.0,
                    summary["cas"]["ok"].as_u64().unwrap_or(0)
                        + summary["cas"]["fail"].as_u64().unwrap_or(0)
                ),
                None => "-".into(),
            },
        ),
        (
            "first anomaly",
            match summary.get("first_anomaly_s") {
                // Recorded by a harness that did not time anomalies.
                None => "-".into(),
                Some(t) => t
                    .as_f64()
                    .map_or("none".into(), |t| format!("{t:.1} s into the run")),
            },
        ),
        ("WAL repairs", wal_repairs(&summary["node_checks"])),
        (
            "snapshots taken / installed",
            snapshot_counts(&summary["node_checks"]),
        ),
        (
            "reproduce",
            summary["reproduce"].as_str().unwrap_or("-").to_string(),
        ),
    ] {
        let _ = write!(out, "<tr><td>{name}</td><td>{}</td></tr>", escape(&value));
    }
    out.push_str("</table>");
    let node_checks = &summary["node_checks"];
    if let Some(violations) = node_checks["violations"].as_array() {
        let status = if violations.is_empty() {
            "ok"
        } else {
            "VIOLATED"
        };
        let _ = write!(
            out,
            r#"<p id="node-checks">node logs: {status} (votes granted {}, restarts checked {}, terms with a leader {})</p>"#,
            node_checks["votes_granted"],
            node_checks["restarts_checked"],
            node_checks["leader_terms"]
        );
        violation_list(&mut out, violations);
    }
    let convergence = &summary["convergence"];
    if let Some(violations) = convergence["violations"].as_array() {
        let _ = write!(
            out,
            r#"<p id="node-states">node states: {}</p>"#,
            match convergence["verdict"].as_str() {
                Some("ok") => format!(
                    "ok ({} nodes applied the same {} entries and hold the same state)",
                    convergence["nodes"], convergence["applied_index"]
                ),
                Some(v) => v.to_uppercase(),
                None => "?".into(),
            }
        );
        violation_list(&mut out, violations);
    }
    let order = &summary["log_order"];
    if let Some(violations) = order["violations"].as_array() {
        let _ = write!(
            out,
            r#"<p id="log-order">log order: {}</p>"#,
            match order["verdict"].as_str() {
                Some("ok") => format!(
                    "ok ({} answers' log indexes follow real time)",
                    order["checked"]
                ),
                Some("not-checked") => "not checked (no answer named a log index)".into(),
                Some(v) => v.to_uppercase(),
                None => "?".into(),
            }
        );
        violation_list(&mut out, violations);
    }
    let audit = &summary["log_audit"];
    if let Some(violations) = audit["violations"].as_array() {
        let _ = write!(
            out,
            r#"<p id="log-audit">committed log: {}</p>"#,
            match audit["verdict"].as_str() {
                Some("ok") => format!(
                    "ok (the nodes agree on {} committed entries seen, {} compacted before a poll; {} answers agree with them)",
                    audit["entries"], audit["missed"], audit["answers_checked"]
                ),
                Some("skipped") =>
                    "not audited (the target cannot list its committed entries)".into(),
                Some(v) => format!("{} ({} found)", v.to_uppercase(), audit["violation_count"]),
                None => "?".into(),
            }
        );
        violation_list(&mut out, violations);
    }
    for crash in summary["crashes"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            r#"<pre class="crash" style="color:#d62728">{}</pre>"#,
            escape(crash["report"].as_str().unwrap_or(""))
        );
    }
    for note in summary["notes"].as_array().into_iter().flatten() {
        let _ = write!(out, "<p>note: {}</p>", escape(note.as_str().unwrap_or("")));
    }
    out.push_str("<h2>Timeline</h2>");
    out.push_str(&timeline_frame(timeline));
    out.push_str("<h2>Latency and rate per operation</h2>");
    out.push_str(&perf_plots::section(events, &bands, t_end));
    out.push_str(r##"<h2>Faults</h2><p class="legend"><span style="color:#d62728">&#9632; killed</span><span style="color:#ff9f1c">&#9632; paused</span><span style="color:#3a5ccc">&#9632; link cut</span><span style="color:#b58ee0">&#9632; link slowed</span><span style="color:#2a9d3f">&#9644; leads</span><span>&#10005; exited on its own</span></p>"##);
    let periods = fault_timeline::periods(events, t_end);
    out.push_str(&fault_timeline::svg(
        &periods,
        summary["config"]["nodes"].as_u64().unwrap_or(0),
        &fault_timeline::leaders(summary),
        &fault_timeline::crashes(summary),
        t_end,
    ));
    out.push_str("</body></html>\n");
    out
}

/// The checker's page in a frame of its own (its script and styles apart
/// from the report's).
fn timeline_frame(timeline: &str) -> String {
    if timeline.trim().is_empty() {
        return "<p>The checker produced no timeline.</p>".to_string();
    }
    // As a JS string rather than an escaped srcdoc attribute: JSON escapes
    // a quote in 2 bytes where HTML takes 6.
    let source = serde_json::to_string(timeline)
        .unwrap_or_default()
        .replace("</", "<\\/");
    format!(
        r#"<iframe id="timeline" title="checker timeline"></iframe><output id="timeline-state" hidden></output><script>{TIMELINE_FRAME_SCRIPT}
frame.srcdoc = {source};</script>"#
    )
}

/// Loads the timeline into its frame, hands it this page's URL fragment
/// (`report.html#whole`, `#key=k1&t=2.5,2.6`, see the checker's timeline)
/// and mirrors what it shows into this page's `#timeline-state`, so tests
/// and scripts can read it here.
const TIMELINE_FRAME_SCRIPT: &str = r#"const frame = document.getElementById("timeline");
frame.addEventListener("load", async () => {
  const t = frame.contentWindow.timeline;
  if (!t) return;
  await t.ready;
  if (location.hash.length > 1) t.go(location.hash.slice(1));
  const src = frame.contentDocument.getElementById("timeline-state"), dst = document.getElementById("timeline-state");
  const copy = () => { for (const [k, v] of Object.entries(src.dataset)) dst.dataset[k] = v; };
  copy();
  new MutationObserver(copy).observe(src, { attributes: true });
});"#;

/// Repairs at start-up, and how many torn writes the harness left were
/// checked against them (shown when any was).
fn wal_repairs(node_checks: &Value) -> String {
    let repairs = node_checks["wal_repairs"].to_string();
    match node_checks["torn_writes_checked"].as_u64() {
        Some(checked) if checked > 0 => {
            format!("{repairs} ({checked} torn writes left by the harness checked against them)")
        }
        _ => repairs,
    }
}

/// Snapshots taken and installed, in all and per node (`3 / 1 (n1 2/0, …)`).
fn snapshot_counts(node_checks: &Value) -> String {
    let (Some(taken), Some(installed)) = (
        node_checks["snapshots_taken"].as_u64(),
        node_checks["snapshots_installed"].as_u64(),
    ) else {
        return "-".into();
    };
    let empty = serde_json::Map::new();
    let per_taken = node_checks["snapshots_taken_per_node"]
        .as_object()
        .unwrap_or(&empty);
    let per_installed = node_checks["snapshots_installed_per_node"]
        .as_object()
        .unwrap_or(&empty);
    let mut nodes: Vec<u64> = per_taken
        .keys()
        .chain(per_installed.keys())
        .filter_map(|k| k.parse().ok())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let count = |m: &serde_json::Map<String, Value>, id: u64| {
        m.get(&id.to_string()).and_then(Value::as_u64).unwrap_or(0)
    };
    let per_node: Vec<String> = nodes
        .iter()
        .map(|&id| {
            format!(
                "n{id} {}/{}",
                count(per_taken, id),
                count(per_installed, id)
            )
        })
        .collect();
    if per_node.is_empty() {
        format!("{taken} / {installed}")
    } else {
        format!("{taken} / {installed} ({})", per_node.join(", "))
    }
}

pub fn write(
    dir: &Path,
    summary: &Value,
    events: &[Event],
    outcome: &raftkv_checker::Outcome,
) -> std::io::Result<()> {
    let timeline = raftkv_checker::render_html(outcome);
    std::fs::write(dir.join("report.html"), page(summary, events, &timeline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::recorder::{EventType, NEMESIS, Process};
    use serde_json::json;

    fn ev(time_s: f64, process: Process, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time: (time_s * 1e9) as u64,
            process,
            kind,
            f: f.into(),
            key: Some("k0".into()),
            value,
            error: None,
            node: None,
            log_index: None,
        }
    }

    #[test]
    fn snapshot_counts_show_totals_and_nodes() {
        let checks = json!({
            "snapshots_taken": 5,
            "snapshots_installed": 1,
            "snapshots_taken_per_node": {"1": 3, "2": 2},
            "snapshots_installed_per_node": {"3": 1},
        });
        assert_eq!(snapshot_counts(&checks), "5 / 1 (n1 3/0, n2 2/0, n3 0/1)");
        assert_eq!(snapshot_counts(&json!({})), "-");
    }

    fn history() -> Vec<Event> {
        let c = Process::Client(1);
        vec![
            ev(0.1, c, EventType::Invoke, "set", json!("a")),
            ev(0.2, c, EventType::Ok, "set", json!("a")),
            ev(
                1.0,
                NEMESIS,
                EventType::Info,
                "kill",
                json!({"target": "leader", "nodes": [1]}),
            ),
            ev(1.5, c, EventType::Invoke, "get", json!(null)),
            ev(2.5, c, EventType::Info, "get", json!(null)),
            ev(
                3.0,
                NEMESIS,
                EventType::Info,
                "restart",
                json!({"target": "leader", "nodes": [1]}),
            ),
            ev(
                4.0,
                NEMESIS,
                EventType::Info,
                "partition",
                json!({"shape": "bridge"}),
            ),
        ]
    }

    #[test]
    fn pairs_fault_bands() {
        let bands = fault_bands(&history(), 5.0);
        assert_eq!(
            bands,
            vec![
                Band {
                    start: 1.0,
                    end: 3.0,
                    label: "kill".into()
                },
                Band {
                    start: 4.0,
                    end: 5.0,
                    label: "partition".into()
                },
            ]
        );
    }

    #[test]
    fn page_is_self_contained_with_plots_and_timeline() {
        let summary = json!({"verdict": "linearizable", "config": {}, "throughput": {}, "latency": {"all": {}}});
        let html = page(
            &summary,
            &history(),
            "<html><body>timeline \"x\"</body></html>",
        );
        assert!(html.contains("linearizable"));
        // A summary without fault counts or anomaly times (an older run's)
        // shows them as unknown, not as "null" or "none".
        assert!(html.contains("<td>faults</td><td>-</td>"));
        assert!(html.contains("<td>first anomaly</td><td>-</td>"));
        assert!(!html.contains("null applied"));
        // A latency and a rate plot for each of get and set, and the fault
        // timeline.
        assert_eq!(html.matches("<svg").count(), 5);
        for id in ["latency-get", "rate-get", "latency-set", "rate-set"] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        // Every plot shades both fault periods.
        assert_eq!(html.matches("class=\"fault\"").count(), 8);
        // The ok set and the info get in their latency plots.
        assert!(html.contains("class=\"points-ok\"") && html.contains("class=\"points-info\""));
        // The timeline comes before the plots, the fault timeline after.
        assert!(html.find("id=\"timeline\"") < html.find("<svg"));
        assert!(html.find("id=\"rate-set\"") < html.find("<h2>Faults</h2>"));
        assert!(html.contains(r#".srcdoc = "<html><body>timeline \"x\"<\/body><\/html>";"#));
        assert!(!html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!html.contains("<script src"));
    }

    #[test]
    fn log_order_violations_are_shown_in_red() {
        let summary = json!({
            "verdict": "linearizable",
            "verdict_text": "log indexes out of real-time order",
            "config": {}, "throughput": {}, "latency": {"all": {}},
            "log_order": {
                "verdict": "violated",
                "checked": 12,
                "violations": ["set k1 was acknowledged at log index 7, as was the write of history line <3>"],
            },
        });
        let html = page(&summary, &history(), "<html></html>");
        assert!(html.contains(r#"<p id="log-order">log order: VIOLATED</p>"#));
        assert!(html.contains("as was the write of history line &lt;3&gt;</li>"));
        // The verdict is drawn as a failure although the history passed.
        assert!(html.contains("#d62728"));
        let ok = json!({
            "verdict": "linearizable", "config": {}, "throughput": {}, "latency": {"all": {}},
            "log_order": {"verdict": "ok", "checked": 12, "violations": []},
        });
        let html = page(&ok, &history(), "<html></html>");
        assert!(html.contains("log order: ok (12 answers' log indexes follow real time)"));
        assert!(!html.contains("class=\"violations\""));
    }

    #[test]
    fn committed_log_violations_are_shown_in_red() {
        let summary = json!({
            "verdict": "linearizable",
            "verdict_text": "committed log contradicts the nodes or the answers",
            "config": {}, "throughput": {}, "latency": {"all": {}},
            "log_audit": {
                "verdict": "violated", "entries": 900, "missed": 3, "answers_checked": 700,
                "violation_count": 1,
                "violations": ["set k1 = \"w1-2\" by process 4 failed at 3.0 s (not leader), but committed index 17 holds it"],
            },
        });
        let html = page(&summary, &history(), "<html></html>");
        assert!(html.contains(r#"<p id="log-audit">committed log: VIOLATED (1 found)</p>"#));
        assert!(html.contains("but committed index 17 holds it</li>"));
        assert!(html.contains("#d62728"));
        let ok = json!({
            "verdict": "linearizable", "config": {}, "throughput": {}, "latency": {"all": {}},
            "log_audit": {"verdict": "ok", "entries": 900, "missed": 3, "answers_checked": 700,
                          "violation_count": 0, "violations": []},
        });
        let html = page(&ok, &history(), "<html></html>");
        assert!(html.contains("committed log: ok (the nodes agree on 900 committed entries seen, 3 compacted before a poll; 700 answers agree with them)"));
        assert!(!html.contains("class=\"violations\""));
    }

    /// The headline run (5 nodes, 60 s, kills) records about 340,000 ops;
    /// its report must open at once and fit a CI log.
    #[test]
    fn report_of_a_headline_sized_run_stays_under_5_mb() {
        let opts = raftkv_checker::generate::GenOptions {
            ops: 340_000,
            processes: 10,
            keys: 5,
            info_rate: 0.001,
            with_fail: true,
            seed: 3,
        };
        let text = raftkv_checker::generate::to_jsonl(&raftkv_checker::generate::kv_history(&opts));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, text).unwrap();
        let events = crate::run::recorder::read_history(&path).unwrap();
        let outcome =
            raftkv_checker::check_file(&path, &raftkv_checker::CheckOptions::default()).unwrap();
        let summary = json!({"verdict": "linearizable", "config": {}, "throughput": {}, "latency": {"all": {}}});
        let html = page(&summary, &events, &raftkv_checker::render_html(&outcome));
        assert!(html.len() < 5_000_000, "{} bytes", html.len());
    }
}
