//! A self-contained timeline page (no network): one lane per process, one
//! bar per operation from invoke to completion, coloured by ok/fail/info;
//! the linearization found, the offending operation highlighted, nemesis
//! events as shaded bands, details on hover; the failing key first, every
//! key reachable from the index.

use crate::check::{Outcome, PartitionStatus};
use crate::history::{History, Status};
use serde_json::json;

/// The offending operation's outline colour (tests look for its pixels).
pub const HIGHLIGHT: &str = "#ff00ff";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Most operations drawn in one page.
pub const MAX_DRAWN_OPS: usize = 200_000;

fn status_text(s: &PartitionStatus) -> &'static str {
    match s {
        PartitionStatus::Linearizable => "linearizable",
        PartitionStatus::NotLinearizable => "not linearizable",
        PartitionStatus::Unknown => "not decided",
    }
}

/// The page's data, embedded as JSON.
fn data(outcome: &Outcome) -> serde_json::Value {
    let h: &History = &outcome.history;
    let end = h
        .ops
        .iter()
        .map(|o| h.ret(o).unwrap_or(h.call(o)))
        .chain(h.nemesis.iter().map(|n| n.rank))
        .fold(0, i64::max);
    // The page composes each op's description from its fields and lines.
    let lines = |o: &crate::history::Op| json!([o.invoke_line, History::complete_line(o)]);
    let key_label = crate::model::key_label;
    let failure = outcome.failure.as_ref();
    let mut drawn = 0usize;
    let mut drawn_labels = std::collections::HashSet::new();
    let keys: Vec<serde_json::Value> = outcome
        .partitions
        .iter()
        .map(|p| {
            // Keep the page a sensible size: past the cap, keys are listed
            // but their ops are left out (the failing key always comes first).
            if drawn > 0 && drawn + p.op_ids.len() > MAX_DRAWN_OPS {
                return json!({
                    "label": p.label,
                    "status": status_text(&p.status),
                    "ops": [],
                    "omitted": p.op_ids.len(),
                });
            }
            drawn += p.op_ids.len();
            drawn_labels.insert(p.label.clone());
            // Linearization positions: the prefix for the failing key, the
            // full order otherwise.
            let order: &[usize] = match (p.status.clone(), failure) {
                (PartitionStatus::NotLinearizable, Some(f)) if f.key == p.label => &f.prefix,
                _ => &p.linearization,
            };
            let position: std::collections::HashMap<usize, usize> =
                order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
            let ops: Vec<serde_json::Value> = p
                .op_ids
                .iter()
                .map(|&id| {
                    let o = &h.ops[id];
                    let pos = position.get(&id).copied();
                    json!([
                        id,
                        o.process,
                        h.call(o),
                        h.ret(o),
                        o.status.as_str(),
                        pos,
                        lines(o),
                        short(h, o),
                    ])
                })
                .collect();
            json!({
                "label": p.label,
                "status": status_text(&p.status),
                "ops": ops,
                "omitted": 0,
            })
        })
        .collect();
    // Fail ops are left out of partitions; show them on their key too, if
    // that key is drawn.
    let fails: Vec<serde_json::Value> = h
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status == Status::Fail)
        .filter_map(|(id, o)| {
            let key = h.key(o).as_ref().map(key_label);
            if key.as_ref().is_some_and(|k| !drawn_labels.contains(k)) {
                return None;
            }
            Some(json!([
                id,
                o.process,
                h.call(o),
                h.ret(o),
                "fail",
                null,
                lines(o),
                short(h, o),
                key,
            ]))
        })
        .collect();
    let nemesis: Vec<serde_json::Value> = h
        .nemesis
        .iter()
        .map(|n| json!([n.rank, n.kind.as_str(), n.f, n.value.short()]))
        .collect();
    json!({
        "timed": h.timed,
        "end": end,
        "keys": keys,
        "fails": fails,
        "nemesis": nemesis,
        "offending": failure.and_then(|f| f.op),
        "failingKey": failure.map(|f| f.key.clone()),
    })
}

/// A bar's label: the op in a few characters.
fn short(h: &History, o: &crate::history::Op) -> String {
    let out = match (o.status, h.f(o)) {
        (Status::Ok, "get" | "read" | "txn") => format!(" → {}", h.output(o).short()),
        _ => String::new(),
    };
    let input = h.input(o);
    let input = if input.is_nil() {
        String::new()
    } else {
        format!(" {}", input.short())
    };
    format!("{}{input}{out}", crate::value::shorten(&h.f(o)))
}

/// Renders the page.
pub fn render_html(outcome: &Outcome) -> String {
    let title = format!(
        "{} — {}",
        outcome
            .file
            .as_ref()
            .map_or("history".to_string(), |p| p.display().to_string()),
        outcome.verdict.as_str()
    );
    let mut summary = escape(&outcome.summary());
    if outcome.failure.is_none() && outcome.partitions.len() > 1 {
        summary.push_str("  select a key below to see its timeline\n");
    }
    let data = data(outcome).to_string().replace("</", "<\\/");
    let verdict_class = outcome.verdict.as_str();
    TEMPLATE
        .replace("{{TITLE}}", &escape(&title))
        .replace("{{VERDICT_CLASS}}", verdict_class)
        .replace("{{SUMMARY}}", &summary)
        .replace("{{HIGHLIGHT}}", HIGHLIGHT)
        .replace("{{MAXOPS}}", &MAX_DRAWN_OPS.to_string())
        .replace("{{DATA}}", &data)
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; background: #fafafa; color: #222; }
header { padding: 10px 16px; border-bottom: 1px solid #ccc; background: #fff; }
header.not-linearizable { border-left: 8px solid #d32f2f; }
header.linearizable { border-left: 8px solid #388e3c; }
header.unknown { border-left: 8px solid #f9a825; }
pre { margin: 4px 0; white-space: pre-wrap; font: 12px/1.35 ui-monospace, monospace; }
#main { display: flex; }
#keys { width: 190px; min-width: 190px; height: calc(100vh - 20px); overflow-y: auto; border-right: 1px solid #ccc; background: #fff; }
#keys input { width: 170px; margin: 6px; }
#keys a { display: block; padding: 2px 8px; color: #222; text-decoration: none; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: pointer; }
#keys a.bad { color: #c00; font-weight: bold; }
#keys a.unknown { color: #a60; }
#keys a.sel { background: #e3eaf7; }
#view { flex: 1; overflow: auto; padding: 8px 12px; }
#legend span { display: inline-block; margin-right: 14px; }
#legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; border: 1px solid #555; }
#tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #888; padding: 4px 6px; font: 12px ui-monospace, monospace; display: none; max-width: 640px; box-shadow: 2px 2px 6px rgba(0,0,0,.2); }
svg text { font: 11px ui-monospace, monospace; }
</style></head>
<body>
<header class="{{VERDICT_CLASS}}"><pre>{{SUMMARY}}</pre>
<div id="legend"><span><i style="background:#6cc070"></i>ok</span><span><i style="background:#f5c542"></i>info (indeterminate)</span><span><i style="background:#f2a3a3"></i>fail</span><span><i style="background:#fff;border:3px solid {{HIGHLIGHT}}"></i>cannot be linearized</span><span><i style="background:rgba(120,120,200,.18)"></i>nemesis</span><span>#n = position in the linearization found</span></div>
</header>
<div id="main"><nav id="keys"><input id="filter" placeholder="filter keys"><div id="keylist"></div></nav><div id="view"></div></div>
<div id="tip"></div>
<script>
const D = {{DATA}};
const HL = "{{HIGHLIGHT}}";
const MAXOPS = {{MAXOPS}};
const COLORS = { ok: "#6cc070", info: "#f5c542", fail: "#f2a3a3" };
const START = /^(start|kill|pause|partition|isolate|crash|fault|partition-start)/;
const STOP = /^(stop|heal|resume|restart|recover|unpause|partition-stop|heal-partition)/;
const tip = document.getElementById("tip");
function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
function showTip(ev, text) { tip.textContent = text; tip.style.display = "block"; tip.style.left = (ev.clientX + 12) + "px"; tip.style.top = (ev.clientY + 12) + "px"; }
function hideTip() { tip.style.display = "none"; }
function describe(o, ln, label) {
  const lines = ln[1] === null ? `line ${ln[0]}, no completion` : `lines ${ln[0]}-${ln[1]}`;
  return `op ${o[0]} process ${o[1]}: ${o[7]} on ${label} [${o[4]}] (${lines})`;
}
function render(ki) {
  const key = D.keys[ki];
  document.querySelectorAll("#keylist a").forEach(a => a.classList.toggle("sel", +a.dataset.k === ki));
  const ops = key.ops.map(o => ({ id: o[0], p: o[1], a: o[2], b: o[3], st: o[4], pos: o[5], d: describe(o, o[6], key.label), sh: o[7] }));
  for (const f of D.fails) if (f[8] === key.label) ops.push({ id: f[0], p: f[1], a: f[2], b: f[3], st: "fail", pos: null, d: describe(f, f[6], key.label), sh: f[7] });
  if (key.omitted) { document.getElementById("view").innerHTML = `<h3>key ${esc(key.label)} — ${esc(key.status)}</h3><p>${key.omitted} ops not drawn: the page holds at most ${MAXOPS} ops. Check this key alone to see it.</p>`; return; }
  if (!ops.length) { document.getElementById("view").innerHTML = "<p>no operations</p>"; return; }
  let t0 = Infinity, t1 = -Infinity;
  for (const o of ops) { t0 = Math.min(t0, o.a); t1 = Math.max(t1, o.b === null ? o.a : o.b); }
  const pad = (t1 - t0) * 0.03 + 1; t0 -= pad; const tEnd = t1 + pad;
  const procs = [...new Set(ops.map(o => o.p))].sort((x, y) => x - y);
  const lane = new Map(procs.map((p, i) => [p, i]));
  const W = Math.max(1100, Math.min(40000, ops.length * 36)), L = 70, R = 20, LH = 34, top = 28;
  const H = top + procs.length * LH + 20;
  const x = t => L + (t - t0) / (tEnd - t0) * (W - L - R);
  let s = `<svg width="${W}" height="${H}">`;
  s += `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`;
  // Nemesis: bands from a fault's start to its end, and a tick per event.
  let open = null;
  const ticks = [];
  for (const n of D.nemesis) {
    const [t, type, f] = n;
    if (START.test(f) && open === null) open = t;
    else if (STOP.test(f) && open !== null) { s += band(open, t); open = null; }
    ticks.push(n);
  }
  if (open !== null) s += band(open, D.end);
  function band(a, b) {
    if (b < t0 || a > tEnd) return "";
    const xa = x(Math.max(a, t0)), xb = x(Math.min(b, tEnd));
    return `<rect x="${xa}" y="${top - 6}" width="${Math.max(2, xb - xa)}" height="${H - top}" fill="rgba(120,120,200,.18)"/>`;
  }
  for (const [t, type, f, v] of ticks) {
    if (t < t0 || t > tEnd) continue;
    s += `<g class="nem" data-tip="${esc("nemesis " + type + " " + f + " " + v)}"><line x1="${x(t)}" x2="${x(t)}" y1="${top - 14}" y2="${H}" stroke="#7070c0" stroke-dasharray="3,3"/><text x="${x(t) + 2}" y="${top - 16}" fill="#5050a0">${esc(f)}</text></g>`;
  }
  procs.forEach((p, i) => {
    const y = top + i * LH;
    s += `<line x1="${L}" x2="${W - R}" y1="${y + LH / 2}" y2="${y + LH / 2}" stroke="#eee"/>`;
    s += `<text x="4" y="${y + LH / 2 + 4}">p${p}</text>`;
  });
  let offending = null;
  for (const o of ops) {
    const y = top + lane.get(o.p) * LH + 6, h = LH - 12;
    const xa = x(o.a), xb = o.b === null ? x(tEnd) : x(o.b);
    const w = Math.max(3, xb - xa);
    const hl = o.id === D.offending;
    const fill = COLORS[o.st] || "#ccc";
    const extra = o.b === null ? ` stroke-dasharray="6,3"` : "";
    const posText = o.pos === null ? "" : "#" + (o.pos + 1);
    const info = o.d + (o.pos === null ? "" : "  linearized " + posText) + (hl ? "  <- CANNOT BE LINEARIZED" : "");
    if (hl) { offending = { xa, y, w, h }; continue; }
    s += `<g data-tip="${esc(info)}"><rect x="${xa}" y="${y}" width="${w}" height="${h}" rx="3" fill="${fill}" stroke="#444"${extra}/>`;
    const label = (posText ? posText + " " : "") + o.sh;
    if (w > 26) s += `<svg x="${xa}" y="${y}" width="${w - 2}" height="${h}"><text x="3" y="${h - 7}" fill="#123">${esc(label)}</text></svg>`;
    s += `</g>`;
  }
  if (offending) {
    const o = ops.find(o => o.id === D.offending);
    const { xa, y, h } = offending;
    const w = Math.max(offending.w, 24);
    s += `<g data-tip="${esc(o.d + "  <- CANNOT BE LINEARIZED")}"><rect x="${xa - 3}" y="${y - 3}" width="${w + 6}" height="${h + 6}" rx="4" fill="${COLORS[o.st]}" stroke="${HL}" stroke-width="5"/>`;
    s += `<svg x="${xa}" y="${y}" width="${w}" height="${h}"><text x="3" y="${h - 7}" fill="#123">${esc(o.sh)}</text></svg>`;
    const right = xa + w > W - 180;
    s += `<text x="${right ? xa + w : xa}" y="${y - 6}" text-anchor="${right ? "end" : "start"}" fill="${HL}" font-weight="bold">cannot be linearized</text></g>`;
  }
  s += `</svg>`;
  const head = `<h3>key ${esc(key.label)} — ${esc(key.status)} — ${ops.length} ops, ${procs.length} processes</h3>`;
  let lin = "";
  const order = ops.filter(o => o.pos !== null).sort((a, b) => a.pos - b.pos);
  if (order.length) {
    const what = key.status === "not linearizable" ? "Longest linearizable prefix" : "Linearization";
    lin = `<h4>${what} (${order.length} ops)</h4><pre>` + order.slice(0, 500).map(o => "#" + (o.pos + 1) + "  " + esc(o.d)).join("\n") + (order.length > 500 ? "\n..." : "") + `</pre>`;
  }
  const v = document.getElementById("view");
  v.innerHTML = head + s + lin;
  v.querySelectorAll("[data-tip]").forEach(g => {
    g.addEventListener("mousemove", ev => showTip(ev, g.dataset.tip));
    g.addEventListener("mouseleave", hideTip);
  });
}
function keyList() {
  const f = document.getElementById("filter").value;
  const list = document.getElementById("keylist");
  let html = "";
  D.keys.forEach((k, i) => {
    if (f && !k.label.includes(f)) return;
    const cls = k.status === "not linearizable" ? "bad" : k.status === "not decided" ? "unknown" : "";
    html += `<a class="${cls}" data-k="${i}" title="${esc(k.label + ": " + k.status)}">${esc(k.label)} <small>(${k.ops.length || k.omitted})</small></a>`;
  });
  list.innerHTML = html;
  list.querySelectorAll("a").forEach(a => a.addEventListener("click", () => render(+a.dataset.k)));
}
document.getElementById("filter").addEventListener("input", keyList);
keyList();
if (D.keys.length) render(0); else document.getElementById("view").innerHTML = "<p>no operations to show</p>";
</script>
</body></html>
"##;
