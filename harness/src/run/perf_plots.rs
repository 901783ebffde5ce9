//! The run's latency and rate plots, per operation, as Jepsen's perf
//! checker draws them (`latency-raw`, `latency-quantiles`, `rate`): for
//! each operation, every op's latency at its invoke time, coloured by how
//! it ended, with the p50/p95/p99/max of the acknowledged ones per time
//! window; and completions per second per outcome. Definite failures (a
//! cas whose expected value differed: a correct answer) are told apart
//! from indeterminate ones (info: timeouts, lost connections), and drawn
//! beneath the others. Lines stop where the data stops; fault periods are
//! shaded. Inline SVG; a point stands for every op falling on the same
//! 2x2-pixel cell, so a plot's size is bounded by its area, not by the
//! number of ops.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::recorder::{Event, EventType};
use super::report::Band;
use super::summary::{Completed, completed_ops};

const W: f64 = 600.0;
const H: f64 = 180.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 24.0;
/// Side of the pixel cell a latency point stands for.
const CELL: f64 = 2.0;

/// How an op ended, in drawing order (later on top).
const KINDS: [(EventType, &str, &str); 3] = [
    (
        EventType::Fail,
        "#a99bc9",
        "fail (definite: did not happen, e.g. a cas whose expected value differed)",
    ),
    (EventType::Ok, "#2f7fd0", "ok"),
    (
        EventType::Info,
        "#ff8c00",
        "info (indeterminate: timed out or lost)",
    ),
];

/// Latency quantiles per window, and their colours (as Jepsen's).
const QUANTILES: [(f64, &str, &str); 4] = [
    (0.5, "#2a9d3f", "p50"),
    (0.95, "#7b3fbf", "p95"),
    (0.99, "#e67e00", "p99"),
    (1.0, "#d62728", "max"),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// One plot: its time range and vertical scale.
struct Panel {
    t_end: f64,
}

impl Panel {
    fn x(&self, t: f64) -> f64 {
        LEFT + (W - LEFT - RIGHT) * (t / self.t_end).clamp(0.0, 1.0)
    }

    fn open(&self, out: &mut String, id: &str, title: &str, bands: &[Band]) {
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" id="{id}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><rect width="{W}" height="{H}" fill="white"/><text x="{LEFT}" y="11" font-size="11" font-weight="bold">{t}</text>"##,
            t = escape(title)
        );
        for b in bands {
            let (x0, x1) = (self.x(b.start), self.x(b.end));
            let _ = write!(
                out,
                r##"<rect class="fault" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#d0d8ff" opacity="0.5"><title>{} ({:.1} s to {:.1} s)</title></rect>"##,
                (x1 - x0).max(1.0),
                H - TOP - BOTTOM,
                escape(&b.label),
                b.start,
                b.end,
            );
        }
    }

    fn close(&self, out: &mut String) {
        let y = H - BOTTOM;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
            W - RIGHT
        );
        let step = nice_step(self.t_end / 8.0);
        let mut t = 0.0;
        while t <= self.t_end + 1e-9 {
            let x = self.x(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" font-size="10" text-anchor="middle">{}s</text>"##,
                y + 4.0,
                y + 15.0,
                (t * 1000.0).round() / 1000.0
            );
            t += step;
        }
        out.push_str("</svg>");
    }
}

/// The time windows (seconds) quantiles and rates are taken over: about
/// 60 over the run.
fn window(t_end: f64) -> f64 {
    nice_step(t_end / 60.0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).floor() as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Latency of `f`'s ops over time, log scale.
fn latency_panel(f: &str, ops: &[&Completed], bands: &[Band], t_end: f64) -> String {
    let panel = Panel { t_end };
    let mut out = String::new();
    panel.open(
        &mut out,
        &format!("latency-{f}"),
        &format!("{f}: latency (ms)"),
        bands,
    );
    let ms = |o: &Completed| ((o.end - o.start) as f64 / 1e6).max(0.01);
    let lo = ops
        .iter()
        .map(|o| ms(o))
        .fold(f64::INFINITY, f64::min)
        .min(0.1)
        .log10()
        .floor();
    let hi = ops
        .iter()
        .map(|o| ms(o))
        .fold(0.0, f64::max)
        .max(10.0)
        .log10()
        .ceil();
    let y = |v: f64| {
        let frac = (v.max(0.01).log10() - lo) / (hi - lo).max(1e-9);
        H - BOTTOM - frac * (H - TOP - BOTTOM)
    };
    let mut decade = lo;
    while decade <= hi {
        let yy = y(10f64.powf(decade));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            yy + 3.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for (kind, colour, name) in KINDS {
        let cells: BTreeSet<(i64, i64)> = ops
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| {
                let x = panel.x(o.start as f64 / 1e9);
                ((x / CELL) as i64, (y(ms(o)) / CELL) as i64)
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        // One path of small squares, each move relative to the last.
        let size = if kind == EventType::Info { 3 } else { 2 };
        let mut d = String::with_capacity(cells.len() * 10);
        let (mut px, mut py) = (0i64, 0i64);
        for (cx, cy) in &cells {
            let (x, y) = (cx * CELL as i64, cy * CELL as i64);
            let _ = write!(d, "m{} {}h{size}v{size}h-{size}z", x - px, y - py);
            (px, py) = (x, y);
        }
        let count = ops.iter().filter(|o| o.kind == kind).count();
        let _ = write!(
            out,
            r#"<path class="points-{}" d="{d}" fill="{colour}"><title>{f} {}: {count}</title></path>"#,
            kind.name(),
            escape(name)
        );
    }
    // Quantiles of the acknowledged ops, per window that has any.
    let dt = window(t_end);
    let mut windows: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.kind == EventType::Ok) {
        windows
            .entry((o.start as f64 / 1e9 / dt) as i64)
            .or_default()
            .push(ms(o));
    }
    for v in windows.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    for (q, colour, name) in QUANTILES {
        let points: Vec<(f64, f64)> = windows
            .iter()
            .map(|(&w, v)| (panel.x((w as f64 + 0.5) * dt), y(quantile(v, q))))
            .collect();
        let _ = write!(
            out,
            r#"<path class="quantile-{name}" d="{}" fill="none" stroke="{colour}" stroke-width="1.3"><title>{f} {name} of ok ops per {dt} s</title></path>"#,
            broken_line(&points, panel.x(dt) - panel.x(0.0))
        );
    }
    panel.close(&mut out);
    out
}

/// A polyline through `points` (in x order), broken where two neighbours
/// are more than a window apart: no line is drawn across a gap in the data.
fn broken_line(points: &[(f64, f64)], window_px: f64) -> String {
    let mut d = String::new();
    let mut last: Option<f64> = None;
    for &(x, y) in points {
        let cmd = if last.is_some_and(|lx| x - lx <= window_px * 1.5) {
            "L"
        } else {
            "M"
        };
        let _ = write!(d, "{cmd}{x:.1} {y:.1}");
        last = Some(x);
    }
    d
}

/// Completions of `f` per second over time, one line per outcome; the last
/// window ends at the last completion.
fn rate_panel(f: &str, ops: &[&Completed], bands: &[Band], t_end: f64) -> String {
    let panel = Panel { t_end };
    let mut out = String::new();
    panel.open(
        &mut out,
        &format!("rate-{f}"),
        &format!("{f}: completions per second"),
        bands,
    );
    let dt = window(t_end);
    let last = ops.iter().map(|o| o.end as f64 / 1e9).fold(0.0, f64::max);
    // Windows up to the last completion; a last window shorter than half a
    // window joins the one before.
    let full = (last / dt).floor() as usize;
    let tail = last - full as f64 * dt;
    let n = if tail >= dt / 2.0 || full == 0 {
        full + 1
    } else {
        full
    };
    let width = |w: usize| {
        if w + 1 < n {
            dt
        } else {
            (last - w as f64 * dt).max(dt / 2.0)
        }
    };
    let mut series: Vec<(EventType, &str, &str, Vec<f64>)> = Vec::new();
    for (kind, colour, name) in KINDS {
        let mut counts = vec![0.0; n];
        for o in ops.iter().filter(|o| o.kind == kind) {
            let w = ((o.end as f64 / 1e9 / dt) as usize).min(n - 1);
            counts[w] += 1.0;
        }
        if counts.iter().all(|&c| c == 0.0) {
            continue;
        }
        let rates = counts
            .iter()
            .enumerate()
            .map(|(w, c)| c / width(w))
            .collect();
        series.push((kind, colour, name, rates));
    }
    let max = series
        .iter()
        .flat_map(|s| s.3.iter().copied())
        .fold(1.0, f64::max);
    let y = |v: f64| H - BOTTOM - v / max * (H - TOP - BOTTOM);
    for v in [0.0, max / 2.0, max] {
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{:.0}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            y(v) + 3.0,
            v,
            yy = y(v)
        );
    }
    for (kind, colour, name, rates) in &series {
        let points: Vec<String> = rates
            .iter()
            .enumerate()
            .map(|(w, r)| {
                let mid = w as f64 * dt + width(w) / 2.0;
                format!("{:.1},{:.1}", panel.x(mid), y(*r))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="rate-{}" fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{f} {}</title></polyline>"#,
            kind.name(),
            points.join(" "),
            escape(name)
        );
    }
    panel.close(&mut out);
    out
}

/// The section: a legend, then per operation its latency and rate plots
/// side by side.
pub fn section(events: &[Event], bands: &[Band], t_end: f64) -> String {
    let ops = completed_ops(events);
    let mut by_f: BTreeMap<&str, Vec<&Completed>> = BTreeMap::new();
    for o in &ops {
        by_f.entry(o.f.as_str()).or_default().push(o);
    }
    let mut out = String::from(r#"<p class="legend">"#);
    for (_, colour, name) in KINDS {
        let _ = write!(
            out,
            r#"<span><b style="color:{colour}">&#9632;</b> {}</span>"#,
            escape(name)
        );
    }
    for (_, colour, name) in QUANTILES {
        let _ = write!(
            out,
            r#"<span><b style="color:{colour}">&#8212;</b> {name} of ok ops</span>"#
        );
    }
    out.push_str(r#"<span style="background:#d0d8ff">&nbsp;fault&nbsp;</span></p>"#);
    for (f, ops) in &by_f {
        out.push_str(r#"<div class="perf-row">"#);
        out.push_str(&latency_panel(f, ops, bands, t_end));
        out.push_str(&rate_panel(f, ops, bands, t_end));
        out.push_str("</div>");
    }
    if by_f.is_empty() {
        out.push_str("<p>No operation completed.</p>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::recorder::Process;
    use serde_json::Value;

    fn ev(t_ms: u64, p: u64, kind: EventType, f: &str) -> Event {
        Event {
            index: 0,
            time: t_ms * 1_000_000,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some("k".into()),
            value: Value::Null,
            error: None,
            node: None,
            log_index: None,
        }
    }

    /// `n` ops of `f` by one process, one every `every_ms`, each taking
    /// `lat_ms` and ending as `kind`.
    fn ops(f: &str, p: u64, n: u64, every_ms: u64, lat_ms: u64, kind: EventType) -> Vec<Event> {
        (0..n)
            .flat_map(|i| {
                let t = i * every_ms;
                [ev(t, p, EventType::Invoke, f), ev(t + lat_ms, p, kind, f)]
            })
            .collect()
    }

    fn sorted(mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by_key(|e| e.time);
        events
    }

    #[test]
    fn definite_fails_are_drawn_apart_and_beneath() {
        let events = sorted(
            [
                ops("cas", 1, 500, 10, 2, EventType::Fail),
                ops("cas", 2, 100, 50, 2, EventType::Ok),
            ]
            .concat(),
        );
        let html = section(&events, &[], 5.0);
        let fail = html.find("class=\"points-fail\"").expect("fails drawn");
        let ok = html.find("class=\"points-ok\"").expect("oks drawn");
        assert!(fail < ok, "fails beneath the oks");
        assert!(html.contains("fill=\"#a99bc9\""), "in their own colour");
        assert!(!html.contains("#d62728\"><title>cas fail"), "not red");
        // Quantiles are of the ok ops only: 2 ms.
        assert!(html.contains("class=\"quantile-max\""));
    }

    #[test]
    fn plots_are_per_operation_and_bounded_by_their_area() {
        // 200,000 ops in 20 s: the points are cells, not ops.
        let events = sorted(
            (0..20)
                .flat_map(|p| {
                    ops(
                        ["get", "set"][p as usize % 2],
                        p,
                        10_000,
                        2,
                        1 + p % 7,
                        EventType::Ok,
                    )
                })
                .collect(),
        );
        let html = section(&events, &[], 20.0);
        for id in ["latency-get", "latency-set", "rate-get", "rate-set"] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.len() < 200_000, "{} bytes", html.len());
    }

    /// The rate of the last window is the rate of the ops in it, not a drop
    /// towards 0 because the window is cut short by the end of the run.
    #[test]
    fn rate_lines_end_where_the_data_ends() {
        // 100 ops/s for 10.3 s.
        let events = ops("get", 1, 1030, 10, 1, EventType::Ok);
        let html = section(&events, &[], 12.0);
        let at = html.find("class=\"rate-ok\"").unwrap();
        let points = &html[at..];
        let points = &points[points.find("points=\"").unwrap() + 8..];
        let points: Vec<(f64, f64)> = points[..points.find('"').unwrap()]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        let panel = Panel { t_end: 12.0 };
        let (last_x, last_y) = *points.last().unwrap();
        assert!(
            last_x <= panel.x(10.31),
            "line stops at the last op: {last_x}"
        );
        let first_y = points[1].1;
        assert!(
            (last_y - first_y).abs() < 10.0,
            "no drop at the end: {points:?}"
        );
    }

    #[test]
    fn quantile_lines_break_where_no_op_completed() {
        let events = sorted(
            [
                ops("set", 1, 100, 10, 1, EventType::Ok),
                ops("set", 1, 100, 10, 1, EventType::Ok)
                    .into_iter()
                    .map(|mut e| {
                        e.time += 5_000_000_000;
                        e
                    })
                    .collect(),
            ]
            .concat(),
        );
        let html = section(&events, &[], 6.0);
        let at = html.find("class=\"quantile-p50\" d=\"").unwrap() + 24;
        let d = &html[at..at + html[at..].find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "two runs of data: {d}");
    }
}
