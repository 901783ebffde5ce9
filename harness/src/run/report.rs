//! `report.html`: one self-contained page with the verdict, latency-over-time
//! and throughput-over-time plots (inline SVG, fault periods shaded, as in
//! Jepsen's latency and rate plots), the fault timeline per node and link
//! ([`fault_timeline`]) and the checker's timeline embedded.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::fault_timeline;
use super::recorder::{Event, EventType};
use super::summary::completed_ops;

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

const W: f64 = 900.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 10.0;

fn color(kind: EventType) -> &'static str {
    match kind {
        EventType::Ok => "#2a9d3f",
        EventType::Fail => "#d62728",
        EventType::Info => "#e6a700",
        EventType::Invoke => "#888",
    }
}

struct Frame {
    t_end: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        LEFT + (W - LEFT - 10.0) * (t / self.t_end).clamp(0.0, 1.0)
    }

    fn open(&self, out: &mut String, title: &str) {
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><rect width="{W}" height="{H}" fill="white"/>"#,
            escape(title)
        );
    }

    fn bands(&self, out: &mut String, bands: &[Band]) {
        for b in bands {
            let (x0, x1) = (self.x(b.start), self.x(b.end));
            let _ = write!(
                out,
                r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#d0d8ff" opacity="0.3"><title>{} ({:.1}s to {:.1}s)</title></rect><text x="{:.1}" y="{:.1}" font-size="9" fill="#446">{}</text>"##,
                (x1 - x0).max(1.0),
                H - TOP - BOTTOM,
                escape(&b.label),
                b.start,
                b.end,
                x0 + 2.0,
                TOP + 9.0,
                escape(&b.label)
            );
        }
    }

    fn x_axis(&self, out: &mut String) {
        let y = H - BOTTOM;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
            W - 10.0
        );
        let step = nice_step(self.t_end / 8.0);
        let mut t = 0.0;
        while t <= self.t_end + 1e-9 {
            let x = self.x(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" font-size="10" text-anchor="middle">{t}s</text>"##,
                y + 4.0,
                y + 16.0
            );
            t += step;
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Latency of every operation over time, log scale, coloured by outcome.
pub fn latency_svg(events: &[Event], bands: &[Band], t_end: f64) -> String {
    let frame = Frame { t_end };
    let mut out = String::new();
    frame.open(&mut out, "latency over time");
    frame.bands(&mut out, bands);
    let ops = completed_ops(events);
    let lat: Vec<f64> = ops
        .iter()
        .map(|o| ((o.end - o.start) as f64 / 1e6).max(0.01))
        .collect();
    let lo = lat
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.1)
        .log10()
        .floor();
    let hi = lat
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(10.0)
        .log10()
        .ceil();
    let y = |ms: f64| {
        let f = (ms.max(0.01).log10() - lo) / (hi - lo).max(1e-9);
        H - BOTTOM - f * (H - TOP - BOTTOM)
    };
    let mut decade = lo;
    while decade <= hi {
        let yy = y(10f64.powf(decade));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{} ms</text>"##,
            W - 10.0,
            LEFT - 4.0,
            yy + 3.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    // Keep the page small: at most ~20k points.
    let stride = (ops.len() / 20_000).max(1);
    for (i, (o, ms)) in ops.iter().zip(&lat).enumerate() {
        if i % stride != 0 && o.kind == EventType::Ok {
            continue;
        }
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{}"/>"#,
            frame.x(o.start as f64 / 1e9),
            y(*ms),
            color(o.kind)
        );
    }
    frame.x_axis(&mut out);
    out.push_str("</svg>");
    out
}

/// Completions per second over time, one line per outcome.
pub fn throughput_svg(events: &[Event], bands: &[Band], t_end: f64) -> String {
    let frame = Frame { t_end };
    let mut out = String::new();
    frame.open(&mut out, "throughput over time");
    frame.bands(&mut out, bands);
    let buckets = (t_end.ceil() as usize).max(1);
    let kinds = [EventType::Ok, EventType::Fail, EventType::Info];
    let mut counts = vec![[0u64; 3]; buckets];
    for o in completed_ops(events) {
        let b = ((o.end as f64 / 1e9) as usize).min(buckets - 1);
        if let Some(k) = kinds.iter().position(|&k| k == o.kind) {
            counts[b][k] += 1;
        }
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let y = |v: f64| H - BOTTOM - v / max * (H - TOP - BOTTOM);
    for v in [0.0, max / 2.0, max] {
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end">{:.0}/s</text>"##,
            LEFT - 4.0,
            y(v) + 3.0,
            v
        );
    }
    for (k, kind) in kinds.iter().enumerate() {
        let points: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(b, c)| format!("{:.1},{:.1}", frame.x(b as f64 + 0.5), y(c[k] as f64)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
            color(*kind),
            points.join(" "),
            kind.name()
        );
    }
    frame.x_axis(&mut out);
    out.push_str("</svg>");
    out
}

/// The whole page. `timeline` is the checker's self-contained HTML page.
pub fn page(summary: &Value, events: &[Event], timeline: &str) -> String {
    let t_end = events.last().map_or(1.0, |e| e.time as f64 / 1e9).max(1.0);
    let bands = fault_bands(events, t_end);
    let verdict = summary["verdict"].as_str().unwrap_or("unknown");
    let nodes_violated = summary["node_checks"]["verdict"] == "violated"
        || summary["convergence"]["verdict"] == "violated"
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
<style>body{{font-family:sans-serif;margin:20px;color:#222}} .verdict{{color:{verdict_color};font-size:1.4em;font-weight:bold}} table{{border-collapse:collapse}} td{{padding:2px 10px 2px 0;font-size:0.9em}} .legend span{{margin-right:14px}} iframe{{width:100%;height:900px;border:1px solid #ccc}}</style></head><body>
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
            format!(
                "{} applied of {} planned",
                summary["nemesis"]["applied"], summary["nemesis"]["planned"]
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
            summary["first_anomaly_s"]
                .as_f64()
                .map_or("none".into(), |t| format!("{t:.1} s into the run")),
        ),
        (
            "WAL repairs",
            summary["node_checks"]["wal_repairs"].to_string(),
        ),
        (
            "reproduce",
            summary["reproduce"].as_str().unwrap_or("").to_string(),
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
        if !violations.is_empty() {
            out.push_str(r#"<ul class="violations" style="color:#d62728">"#);
            for v in violations {
                let _ = write!(out, "<li>{}</li>", escape(v.as_str().unwrap_or("")));
            }
            out.push_str("</ul>");
        }
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
        if !violations.is_empty() {
            out.push_str(r#"<ul class="violations" style="color:#d62728">"#);
            for v in violations {
                let _ = write!(out, "<li>{}</li>", escape(v.as_str().unwrap_or("")));
            }
            out.push_str("</ul>");
        }
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
    out.push_str(r##"<p class="legend"><span style="color:#2a9d3f">&#9679; ok</span><span style="color:#d62728">&#9679; fail</span><span style="color:#e6a700">&#9679; info</span><span style="background:#d0d8ff">&nbsp;fault&nbsp;</span></p>"##);
    out.push_str("<h2>Latency</h2>");
    out.push_str(&latency_svg(events, &bands, t_end));
    out.push_str("<h2>Throughput</h2>");
    out.push_str(&throughput_svg(events, &bands, t_end));
    out.push_str(r##"<h2>Faults</h2><p class="legend"><span style="color:#d62728">&#9632; killed</span><span style="color:#ff9f1c">&#9632; paused</span><span style="color:#3a5ccc">&#9632; link cut</span><span style="color:#b58ee0">&#9632; link slowed</span><span style="color:#2a9d3f">&#9644; leads</span><span>&#10005; exited on its own</span></p>"##);
    let periods = fault_timeline::periods(events, t_end);
    out.push_str(&fault_timeline::svg(
        &periods,
        summary["config"]["nodes"].as_u64().unwrap_or(0),
        &fault_timeline::leaders(summary),
        &fault_timeline::crashes(summary),
        t_end,
    ));
    out.push_str("<h2>Timeline</h2>");
    if timeline.trim().is_empty() {
        out.push_str("<p>The checker produced no timeline.</p>");
    } else {
        // As a JS string rather than an escaped srcdoc attribute: JSON
        // escapes a quote in 2 bytes where HTML takes 6.
        let source = serde_json::to_string(timeline)
            .unwrap_or_default()
            .replace("</", "<\\/");
        let _ = write!(
            out,
            r#"<iframe id="timeline" title="checker timeline"></iframe><script>document.getElementById("timeline").srcdoc = {source};</script>"#
        );
    }
    out.push_str("</body></html>\n");
    out
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
    use crate::run::recorder::{NEMESIS, Process};
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
        assert_eq!(html.matches("<svg").count(), 3);
        // Two plots shade both fault periods.
        assert_eq!(html.matches("fill=\"#d0d8ff\"").count(), 4);
        // One ok and one info operation in the latency plot.
        assert!(html.contains("fill=\"#2a9d3f\"/>") && html.contains("fill=\"#e6a700\"/>"));
        assert!(html.contains(r#".srcdoc = "<html><body>timeline \"x\"<\/body><\/html>";"#));
        assert!(!html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!html.contains("<script src"));
    }
}
