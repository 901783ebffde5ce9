"use strict";
// Draws the checker's timeline: reads the operations the checker embedded
// (BLOB, see columns.rs) once, then draws the part of one key in view into
// canvases on every change of key, zoom or pan.

const $ = id => document.getElementById(id);
const FILL = ["#6cc070", "#d4d4e0", "#f5c542"];
const STATUS = ["ok", "fail", "info"];
const CONC = "#1f5fbf";
const SEL = "#00a0c0";
const FAULT_START = /^(start|kill|pause|partition|isolate|crash|fault|slow)/;
const FAULT_STOP = /^(stop|heal|resume|restart|recover|unpause)/;
const LABEL_W = 78, RIGHT = 14, LANE_H = 26, BAR_H = 16;
const UNIT_S = META.timed ? META.q / 1e9 : null;

let KEYS = [], STRINGS = [], FAULTS = [];
let cur = null;           // the key shown
let t0 = 0, t1 = 1;       // the window, in history units / META.q
let landedAs = "";        // what the page opened on
let hits = [];            // [x0, y0, x1, y1, op] of the bars drawn
let selected = -1;        // op clicked
let hovered = -1;

// ---- reading the embedded data ------------------------------------------

class Reader {
  constructor(buf, at) { this.b = buf; this.p = at; }
  u() {
    let v = 0, m = 1, b;
    do { b = this.b[this.p++]; v += (b & 127) * m; m *= 128; } while (b & 128);
    return v;
  }
  s() { const v = this.u(); return v % 2 ? -(v + 1) / 2 : v / 2; }
}

async function inflate(text) {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function readBlob() {
  const buf = await inflate(BLOB);
  const col = {};
  let at = 0;
  for (const [name, len] of META.layout) { col[name] = new Reader(buf, at); col[name].end = at + len; at += len; }
  const dec = new TextDecoder();
  const r = col.strings;
  while (r.p < r.end) { const n = r.u(); STRINGS.push(dec.decode(buf.subarray(r.p, r.p + n))); r.p += n; }
  // String codes (columns.rs, Strings): 0 none, 1 the next new string,
  // d + 1 the string d entries back; resolved in the order they were made.
  let made = 0;
  const str = code => code === 0 ? -1 : code === 1 ? made++ : made - (code - 1);
  KEYS = META.keys.map(meta => newKey(meta));
  // The ops, in history order, each to its key.
  const count = new Int32Array(KEYS.length);
  let id = 0, call = 0, line = 0;
  const total = KEYS.reduce((s, K) => s + K.n, 0);
  for (let j = 0; j < total; j++) {
    id += col.id.u();
    const K = KEYS[col.key.u()], i = count[K.index]++;
    K.id[i] = id;
    K.proc[i] = META.procs[col.proc.u()];
    call += col.call.s(); K.call[i] = call;
    const d = col.dur.u();
    K.done[i] = d > 0 ? 1 : 0;
    K.end[i] = d > 0 ? call + d - 1 : NaN;
    const fs = col.fs.u(); K.f[i] = Math.floor(fs / 3); K.st[i] = fs % 3;
    K.inp[i] = str(col.in.u()); K.out[i] = str(col.out.u());
    line += col.line.s(); K.line[i] = line;
    const cl = col.cline.u(); K.cline[i] = cl ? line + cl : 0;
  }
  // Per key: its linearization, and the state after each op of it (0 the
  // same as before, 1 the op's input, 2 its output, else a string code + 2).
  for (const K of KEYS) {
    const m = K.meta.lin;
    K.order = new Int32Array(m);
    let at = 0;
    for (let p = 0; p < m; p++) { at += col.lin.s(); K.order[p] = at; K.pos[at] = p; }
    if (!K.meta.states) continue;
    let s = -1;
    for (let p = 0; p < m; p++) {
      const i = K.order[p], code = col.state.u();
      if (code === 1) s = K.inp[i]; else if (code === 2) s = K.out[i]; else if (code > 2) s = str(code - 2);
      K.state[i] = s;
    }
  }
}

function newKey(meta) {
  const n = meta.n;
  return {
    meta, n, label: meta.label, index: META.keys.indexOf(meta),
    id: new Int32Array(n), proc: new Float64Array(n), call: new Float64Array(n),
    end: new Float64Array(n), done: new Uint8Array(n), st: new Uint8Array(n),
    f: new Uint16Array(n), inp: new Int32Array(n), out: new Int32Array(n),
    line: new Int32Array(n), cline: new Int32Array(n),
    pos: new Int32Array(n).fill(-1), state: new Int32Array(n).fill(-1),
  };
}

// What drawing needs, worked out when a key is first shown.
function prepare(K) {
  if (K.ready) return;
  const n = K.n;
  let tMin = Infinity, tMax = -Infinity, maxDur = 0;
  for (let i = 0; i < n; i++) {
    tMin = Math.min(tMin, K.call[i]);
    tMax = Math.max(tMax, K.done[i] ? K.end[i] : K.call[i]);
    if (K.done[i]) maxDur = Math.max(maxDur, K.end[i] - K.call[i]);
  }
  if (!n) { tMin = 0; tMax = 1; }
  K.tMin = tMin; K.tMax = Math.max(tMax, tMin + 1);
  // Ops that never completed last to the end of the key.
  K.vend = new Float64Array(n);
  K.open = [];
  for (let i = 0; i < n; i++) {
    K.vend[i] = K.done[i] ? K.end[i] : K.tMax;
    if (!K.done[i]) K.open.push(i);
  }
  K.maxDur = maxDur;
  K.byCall = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => K.call[a] - K.call[b] || a - b);
  K.calls = Float64Array.from(K.byCall, i => K.call[i]);
  const durs = [];
  for (let i = 0; i < n; i++) if (K.done[i] && K.st[i] === 0) durs.push(K.end[i] - K.call[i]);
  durs.sort((a, b) => a - b);
  K.median = Math.max(1, durs.length ? durs[durs.length >> 1] : (K.tMax - K.tMin) / Math.max(1, n));
  // Lanes: a process's ops never overlap, and processes whose ops on this
  // key do not overlap in time (one taking over after another crashed)
  // share a lane.
  const life = new Map();
  for (let i = 0; i < n; i++) {
    const p = K.proc[i], l = life.get(p);
    if (!l) life.set(p, { p, a: K.call[i], b: K.vend[i] });
    else { l.a = Math.min(l.a, K.call[i]); l.b = Math.max(l.b, K.vend[i]); }
  }
  const procs = [...life.values()].sort((x, y) => x.a - y.a || x.p - y.p);
  K.lanes = [];
  const laneOf = new Map();
  for (const l of procs) {
    let k = K.lanes.findIndex(lane => lane[lane.length - 1].b < l.a);
    if (k < 0) { k = K.lanes.length; K.lanes.push([]); }
    K.lanes[k].push(l);
    laneOf.set(l.p, k);
  }
  K.lane = Int32Array.from(K.proc, p => laneOf.get(p));
  K.ready = true;
}

// ---- time ----------------------------------------------------------------

function seconds(t) { return t * UNIT_S; }
function niceStep(raw) {
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}
function fmtTime(t, step) {
  if (!META.timed) return "#" + Math.round(t);
  const d = Math.max(0, Math.min(9, Math.ceil(-Math.log10(step * UNIT_S) - 1e-9)));
  const s = seconds(t).toFixed(d);
  return (/^-0\.?0*$/.test(s) ? s.slice(1) : s) + " s";
}
function fmtDur(d) {
  if (!META.timed) return d + " events";
  const s = seconds(d);
  if (s >= 1) return s.toFixed(3) + " s";
  if (s >= 1e-3) return (s * 1e3).toFixed(s >= 0.1 ? 0 : 2) + " ms";
  return (s * 1e6).toFixed(1) + " µs";
}

// Fault periods: from a fault's start until every fault started is over.
function faultPeriods() {
  const out = [];
  let depth = 0, open = 0, first = null;
  for (const [t, , f, v] of META.nemesis) {
    if (FAULT_START.test(f)) { if (depth++ === 0) { open = t; first = f + " " + v; } }
    else if (FAULT_STOP.test(f) && depth > 0) { depth = /-all$/.test(f) ? 0 : depth - 1; if (depth === 0) out.push([open, t, first]); }
  }
  if (depth > 0) out.push([open, META.end, first]);
  return out;
}

// ---- the view ------------------------------------------------------------

function plotW() { return Math.max(200, $("lanes").clientWidth - LABEL_W - RIGHT); }
function xOf(t) { return LABEL_W + (t - t0) / (t1 - t0) * plotW(); }
function tOf(x) { return t0 + (x - LABEL_W) / plotW() * (t1 - t0); }
// A window in which a typical op is about 40 px wide.
function readableSpan(K) { return K.median * plotW() / 40; }

function setWindow(a, b) {
  const K = cur;
  const min = Math.max(1e-9, K.median / 50);
  if (b - a < min) { const m = (a + b) / 2; a = m - min / 2; b = m + min / 2; }
  const full = (K.tMax - K.tMin) * 1.1 + 2 * min;
  if (b - a > full) { const m = (K.tMin + K.tMax) / 2; a = m - full / 2; b = m + full / 2; }
  t0 = a; t1 = b;
  draw();
}

function zoom(factor, at) {
  const m = at === undefined ? (t0 + t1) / 2 : at;
  setWindow(m - (m - t0) * factor, m + (t1 - m) * factor);
}
function pan(frac) { const d = (t1 - t0) * frac; setWindow(t0 + d, t1 + d); }
function whole() { const K = cur, pad = (K.tMax - K.tMin) * 0.02 + K.median; landedAs = "whole"; setWindow(K.tMin - pad, K.tMax + pad); }
function centerOn(i) {
  const K = cur, w = Math.max(readableSpan(K) / 2, (K.vend[i] - K.call[i]) * 1.4);
  const m = (K.call[i] + Math.min(K.vend[i], K.call[i] + w)) / 2;
  selected = i;
  setWindow(m - w / 2, m + w / 2);
}

function failureOf(K) {
  const F = META.failure;
  return F && KEYS[F.key] === K && F.op !== null ? F : null;
}

// Where a key opens: on its failure (the op that cannot be linearized, the
// ops concurrent with it that completed and the last op of the longest
// linearizable prefix, as far as they fit a readable window), else on the
// start of the busiest fault, else on its first ops.
function land() {
  const K = cur, F = failureOf(K), span = readableSpan(K);
  if (F) {
    const f = F.op, fw = K.vend[f] - K.call[f];
    // As wide as lets the failing op be 20 px or more, and typical ops 40
    // px or more, unless it is far shorter than they are; a long failing op
    // (one that waited out a fault) with what came just before it.
    const limit = Math.max(Math.min(span, fw * plotW() / 20), span / 8, fw * 1.6);
    let a = K.call[f], b = K.vend[f];
    const want = [];
    if (K.meta.lin > 0) { const l = K.order[K.meta.lin - 1]; want.push([K.call[l], K.vend[l]]); }
    for (const c of F.concurrent) if (K.done[c]) want.push([K.call[c], K.end[c]]);
    const gap = ([x, y]) => Math.max(0, a - y, x - b);
    want.sort((p, q) => gap(p) - gap(q));
    for (const [x, y] of want) {
      const na = Math.min(a, x), nb = Math.max(b, y);
      if (nb - na <= limit) { a = na; b = nb; }
    }
    const w = Math.min(Math.max((b - a) * 1.3, limit * 0.75), Math.max(limit, (b - a) * 1.05));
    const m = (a + b) / 2;
    landedAs = "failure";
    return setWindow(m - w / 2, m + w / 2);
  }
  const fault = busiestFault(K);
  if (fault) {
    landedAs = "fault";
    return setWindow(fault[0] - span * 0.3, fault[0] + span * 0.7);
  }
  landedAs = "start";
  setWindow(K.tMin - span * 0.05, K.tMin + span * 0.95);
}

// The fault period in which most of the key's ops ended indeterminate (or,
// if none did, during which most ran).
function busiestFault(K) {
  let best = null, bestScore = 0;
  for (const fp of FAULTS) { const s = score(K, fp); if (s > bestScore) { best = fp; bestScore = s; } }
  return best;
}

function score(K, fp) {
  let s = 0;
  const lo = lowerBound(K.calls, fp[0] - K.maxDur);
  for (let j = lo; j < K.n && K.calls[j] <= fp[1]; j++) { const i = K.byCall[j]; if (K.vend[i] >= fp[0]) s += K.st[i] === 2 ? 1000 : 1; }
  return s;
}

function lowerBound(arr, v) {
  let lo = 0, hi = arr.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] < v) lo = m + 1; else hi = m; }
  return lo;
}

// The ops that overlap the window, in call order.
function inView() {
  const K = cur, out = [];
  for (const i of K.open) if (K.call[i] < t0 - K.maxDur && K.vend[i] >= t0) out.push(i);
  for (let j = lowerBound(K.calls, t0 - K.maxDur); j < K.n && K.calls[j] <= t1; j++) {
    const i = K.byCall[j];
    if (K.vend[i] >= t0) out.push(i);
  }
  return out;
}

// ---- drawing -------------------------------------------------------------

function canvasCtx(c, h) {
  const dpr = window.devicePixelRatio || 1, w = c.clientWidth;
  c.style.height = h + "px";
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

function unquote(s) { return /^"[^"\s]*"$/.test(s) ? s.slice(1, -1) : s; }
function opText(K, i, quoted) {
  const q = quoted ? s => s : unquote;
  const inp = K.inp[i] >= 0 ? " " + q(STRINGS[K.inp[i]]) : "";
  const out = K.out[i] >= 0 ? " → " + q(STRINGS[K.out[i]]) : "";
  return META.fns[K.f[i]] + inp + out;
}
function describe(K, i) {
  const lines = K.cline[i] ? `lines ${K.line[i]}-${K.cline[i]}` : `line ${K.line[i]}, no completion`;
  return `op ${K.id[i]} process ${K.proc[i]}: ${opText(K, i, true)} [${STATUS[K.st[i]]}] (${lines})`;
}
function stateText(K, i) { return K.state[i] >= 0 ? STRINGS[K.state[i]] : null; }

function draw() {
  const K = cur;
  const laneCount = Math.max(1, K.lanes.length);
  const H = laneCount * LANE_H + 8;
  const ctx = canvasCtx($("lanes"), H), W = $("lanes").clientWidth;
  const F = failureOf(K);
  const concurrent = new Set(F ? F.concurrent : []);
  // Fault periods.
  for (const [a, b] of FAULTS) {
    if (b < t0 || a > t1) continue;
    const xa = Math.max(LABEL_W, xOf(a)), xb = Math.min(W - RIGHT, xOf(b));
    ctx.fillStyle = "rgba(120,120,200,.16)";
    ctx.fillRect(xa, 0, Math.max(2, xb - xa), H);
  }
  for (let k = 0; k < laneCount; k++) {
    if (k % 2) { ctx.fillStyle = "rgba(0,0,0,.025)"; ctx.fillRect(LABEL_W, k * LANE_H + 4, W, LANE_H); }
  }
  const ops = inView();
  hits = [];
  const many = ops.length > 4000;
  ctx.font = "11px ui-monospace, monospace";
  ctx.textBaseline = "middle";
  let offending = null, prefixEnd = false, concIn = 0, linIn = 0;
  const lastPrefix = F && K.meta.lin > 0 ? K.order[K.meta.lin - 1] : -1;
  for (const i of ops) {
    const y = 4 + K.lane[i] * LANE_H + (LANE_H - BAR_H) / 2;
    const xa = Math.max(LABEL_W - 4, xOf(K.call[i]));
    const xb = Math.min(W, xOf(K.vend[i]));
    const w = Math.max(many ? 1 : 2, xb - xa);
    if (F && i === F.op) { offending = { i, xa, y, w }; continue; }
    ctx.fillStyle = FILL[K.st[i]];
    ctx.fillRect(xa, y, w, BAR_H);
    if (K.pos[i] >= 0) linIn++;
    if (i === lastPrefix) prefixEnd = true;
    if (!many && w > 3) {
      ctx.lineWidth = concurrent.has(i) ? 2 : 1;
      ctx.strokeStyle = concurrent.has(i) ? CONC : i === selected ? SEL : "#555";
      if (!K.done[i]) ctx.setLineDash([5, 3]);
      ctx.strokeRect(xa + .5, y + .5, w - 1, BAR_H - 1);
      ctx.setLineDash([]);
      if (K.st[i] === 2 && K.done[i]) {
        // An info op may take effect after the client gave up: a fading tail.
        const g = ctx.createLinearGradient(xb, 0, xb + 30, 0);
        g.addColorStop(0, "rgba(200,150,0,.8)"); g.addColorStop(1, "rgba(200,150,0,0)");
        ctx.fillStyle = g; ctx.fillRect(xb, y + BAR_H / 2 - 1, 30, 2);
      }
      if (w > 34) label(ctx, K, i, xa, y, w);
    }
    if (concurrent.has(i)) concIn++;
    hits.push([xa, y, xa + w, y + BAR_H, i]);
  }
  if (!many) drawPath(ctx, K, ops, F);
  if (offending) {
    const { i, xa, y } = offending, w = Math.max(offending.w, 10);
    ctx.fillStyle = FILL[K.st[i]];
    ctx.fillRect(xa, y, w, BAR_H);
    ctx.lineWidth = 4; ctx.strokeStyle = HL;
    ctx.strokeRect(xa - 2, y - 2, w + 4, BAR_H + 4);
    if (w > 34) label(ctx, K, i, xa, y, w);
    ctx.fillStyle = HL; ctx.font = "bold 11px system-ui, sans-serif";
    const text = "cannot be linearized: " + opText(K, i, false);
    const tw = ctx.measureText(text).width;
    const tx = Math.min(Math.max(LABEL_W + 2, xa), W - RIGHT - tw);
    ctx.fillText(text, tx, y > 14 ? y - 7 : y + BAR_H + 8);
    hits.push([xa, y, xa + w, y + BAR_H, i]);
  }
  // Lane labels, over whatever lies under them.
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, LABEL_W - 4, H);
  ctx.fillStyle = "#ccc"; ctx.fillRect(LABEL_W - 5, 0, 1, H);
  ctx.font = "11px ui-monospace, monospace"; ctx.fillStyle = "#222";
  const laneLabels = [];
  K.lanes.forEach((lane, k) => {
    const shown = lane.filter(l => l.b >= t0 && l.a <= t1).map(l => "p" + l.p);
    const text = shown.length ? (shown.length > 2 ? shown[0] + " +" + (shown.length - 1) : shown.join(" ")) : "p" + lane[0].p;
    laneLabels.push(text);
    ctx.fillText(text, 4, 4 + k * LANE_H + LANE_H / 2, LABEL_W - 10);
  });
  const ticks = drawAxis();
  drawOverview();
  $("range").textContent = `${fmtTime(t0, t1 - t0)} … ${fmtTime(t1, t1 - t0)}  (${fmtDur(t1 - t0)}, ${ops.length} ops)`;
  details(ops);
  publish({
    ready: 1, key: K.label, view: landedAs,
    from: META.timed ? seconds(t0) : t0, to: META.timed ? seconds(t1) : t1,
    unit: META.timed ? "s" : "event", keyFrom: META.timed ? seconds(K.tMin) : K.tMin,
    keyTo: META.timed ? seconds(K.tMax) : K.tMax, ops: K.n, opsInView: ops.length,
    lanes: K.lanes.length, laneLabels: laneLabels.join("|"), ticks: ticks.length,
    tickLabels: ticks.join("|"), offending: F ? K.id[F.op] : "",
    offendingInView: !!offending, offendingPx: offending ? Math.round(offending.w) : 0,
    concurrent: F ? F.concurrent.length : 0, concurrentInView: concIn,
    prefixEndInView: prefixEnd, linearizedInView: linIn, selected: selected >= 0 ? K.id[selected] : "",
  });
}

function label(ctx, K, i, xa, y, w) {
  const text = (K.pos[i] >= 0 ? "#" + (K.pos[i] + 1) + " " : "") + opText(K, i, false);
  ctx.save();
  ctx.beginPath(); ctx.rect(xa, y, w - 2, BAR_H); ctx.clip();
  ctx.fillStyle = "#123"; ctx.font = "11px ui-monospace, monospace";
  ctx.fillText(text, xa + 3, y + BAR_H / 2 + 1);
  ctx.restore();
}

// The linearization through the ops in view: a point in each op's interval
// (as early as the order allows), joined in linearization order; for a
// failing key, on to the op that cannot follow.
function drawPath(ctx, K, ops, F) {
  const lin = ops.filter(i => K.pos[i] >= 0).sort((a, b) => K.pos[a] - K.pos[b]);
  if (lin.length > 600) return;
  ctx.strokeStyle = "rgba(20,20,60,.7)"; ctx.fillStyle = "rgba(20,20,60,.85)"; ctx.lineWidth = 1.2;
  let prev = null, t = -Infinity;
  for (const i of lin) {
    t = Math.min(Math.max(t, K.call[i]), K.vend[i]);
    const x = xOf(t), y = 4 + K.lane[i] * LANE_H + LANE_H / 2;
    if (prev && K.pos[i] === K.pos[prev.i] + 1) { ctx.beginPath(); ctx.moveTo(prev.x, prev.y); ctx.lineTo(x, y); ctx.stroke(); }
    ctx.beginPath(); ctx.arc(x, y, 2.5, 0, 7); ctx.fill();
    prev = { i, x, y };
  }
  if (F && prev && K.pos[prev.i] === K.meta.lin - 1) {
    const f = F.op, x = xOf(Math.max(t, K.call[f])), y = 4 + K.lane[f] * LANE_H + LANE_H / 2;
    ctx.strokeStyle = HL; ctx.setLineDash([4, 3]); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(prev.x, prev.y); ctx.lineTo(x, y); ctx.stroke(); ctx.setLineDash([]);
  }
}

function drawAxis() {
  const c = $("axis"), ctx = canvasCtx(c, 30), W = c.clientWidth;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, 30);
  const step = niceStep((t1 - t0) / Math.max(2, Math.floor(plotW() / 110)));
  ctx.font = "11px ui-monospace, monospace"; ctx.fillStyle = "#333"; ctx.strokeStyle = "#888";
  ctx.textBaseline = "alphabetic";
  const labels = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const x = Math.round(xOf(t)) + .5;
    if (x < LABEL_W) continue;
    ctx.beginPath(); ctx.moveTo(x, 20); ctx.lineTo(x, 30); ctx.stroke();
    const s = fmtTime(t, step);
    labels.push(s);
    ctx.fillText(s, Math.min(x + 2, W - ctx.measureText(s).width - 2), 16);
  }
  for (const [t, , f] of META.nemesis) {
    if (t < t0 || t > t1) continue;
    const x = xOf(t);
    ctx.fillStyle = "#5050a0"; ctx.fillRect(x, 20, 1, 10);
    ctx.fillText(f, x + 2, 28);
    ctx.fillStyle = "#333";
  }
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, LABEL_W - 4, 30);
  ctx.fillStyle = "#555"; ctx.fillText(META.timed ? "time" : "event", 4, 16);
  ctx.fillStyle = "#ccc"; ctx.fillRect(0, 29, W, 1);
  return labels;
}

function drawOverview() {
  const K = cur, c = $("overview"), ctx = canvasCtx(c, 34), W = c.clientWidth;
  const a = K.tMin, b = K.tMax, x = t => LABEL_W + (t - a) / (b - a) * (W - LABEL_W - RIGHT);
  if (!K.density || K.density.length !== W) {
    K.density = new Float64Array(W);
    for (let i = 0; i < K.n; i++) K.density[Math.min(W - 1, Math.max(0, Math.floor(x(K.call[i]))))] += K.st[i] === 2 ? 20 : 1;
  }
  for (const [fa, fb] of FAULTS) { ctx.fillStyle = "rgba(120,120,200,.25)"; ctx.fillRect(x(fa), 0, Math.max(1, x(fb) - x(fa)), 34); }
  const max = Math.max(1, ...K.density);
  ctx.fillStyle = "#7a9";
  for (let px = 0; px < W; px++) if (K.density[px]) { const h = 4 + 24 * Math.sqrt(K.density[px] / max); ctx.fillRect(px, 32 - h, 1, h); }
  const F = failureOf(K);
  if (F) { ctx.fillStyle = HL; ctx.fillRect(x(K.call[F.op]) - 1, 0, 3, 34); }
  ctx.strokeStyle = "#1f5fbf"; ctx.lineWidth = 2;
  const xa = Math.max(LABEL_W, x(t0)), xb = Math.min(W - 1, x(t1));
  ctx.strokeRect(xa, 1, Math.max(3, xb - xa), 32);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, LABEL_W - 4, 34);
  ctx.fillStyle = "#555"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
  ctx.fillText("whole key", 4, 17);
}

// ---- the panel below: the failure and the linearization in view ----------

function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
function row(K, i, cls) {
  const pos = K.pos[i] >= 0 ? "#" + (K.pos[i] + 1) : "";
  const st = stateText(K, i);
  return `<tr class="op ${cls || ""}" data-op="${i}"><td>${pos}</td><td>${esc(describe(K, i))}</td><td>${st === null ? "" : "state after: " + esc(st)}</td></tr>`;
}
function details(ops) {
  const K = cur, F = failureOf(K);
  let h = "";
  if (F) {
    h += `<h4>Cannot be linearized</h4><table>${row(K, F.op, "bad")}</table>`;
    h += `<p>after the longest linearizable prefix found (${K.meta.lin} ops${F.complete ? "" : ", explanation incomplete"}), which leaves the state <b>${esc(F.state === null ? "?" : F.state)}</b>; it ends with:</p><table>`;
    for (let p = Math.max(0, K.meta.lin - 8); p < K.meta.lin; p++) h += row(K, K.order[p]);
    h += `</table><h4>Concurrent with it (${F.concurrent.length})</h4><table>`;
    for (const c of F.concurrent.slice(0, 40)) h += row(K, c);
    h += `</table>`;
  }
  const lin = ops.filter(i => K.pos[i] >= 0).sort((a, b) => K.pos[a] - K.pos[b]);
  const what = F ? "The prefix" : K.meta.status === "linearizable" ? "The linearization" : "Linearization";
  if (lin.length) {
    h += `<h4>${what} in view (${lin.length} of ${K.meta.lin} ops${lin.length > 300 ? ", the first 300" : ""}), with the model's state after each</h4><table>`;
    for (const i of lin.slice(0, 300)) h += row(K, i);
    h += `</table>`;
  } else if (!K.meta.lin) {
    h += `<p>No linearization to show for this key (${esc(K.meta.status)}).</p>`;
  }
  $("details").innerHTML = h;
}

// ---- interaction -----------------------------------------------------------

function tipFor(K, i) {
  const F = failureOf(K);
  let s = describe(K, i);
  s += `\ninvoked ${fmtTime(K.call[i], K.median / 10)}`;
  if (K.done[i]) s += `, ${STATUS[K.st[i]] === "info" ? "gave up" : "completed"} ${fmtTime(K.end[i], K.median / 10)} (${fmtDur(K.end[i] - K.call[i])})`;
  else s += ", never completed";
  if (K.pos[i] >= 0) {
    s += `\nlinearized #${K.pos[i] + 1} of ${K.meta.lin}`;
    const st = stateText(K, i);
    if (st !== null) s += `; state after: ${st}`;
  } else if (K.st[i] === 1) s += "\nfailed: took no effect, not part of the check";
  else if (F) s += "\nnot in the longest linearizable prefix";
  if (F && i === F.op) s += `\nCANNOT BE LINEARIZED: no order lets it follow the prefix (state after the prefix: ${F.state})`;
  if (F && F.concurrent.includes(i)) s += "\nconcurrent with the op that cannot be linearized";
  return s;
}
function showTip(i, x, y) {
  const tip = $("tip");
  tip.textContent = tipFor(cur, i);
  tip.style.display = "block";
  tip.style.left = Math.min(x + 14, window.innerWidth - 420) + "px";
  tip.style.top = (y + 14) + "px";
}
function hitAt(x, y) {
  for (let j = hits.length - 1; j >= 0; j--) { const h = hits[j]; if (x >= h[0] - 1 && x <= h[2] + 1 && y >= h[1] && y <= h[3]) return h[4]; }
  return -1;
}

function show(ki, a, b) {
  cur = KEYS[ki];
  prepare(cur);
  selected = -1;
  document.querySelectorAll("#keylist a").forEach(el => el.classList.toggle("sel", +el.dataset.k === ki));
  $("key-title").textContent = `key ${cur.label}: ${cur.meta.status}, ${cur.n} ops, ${cur.lanes.length} lanes`;
  const F = failureOf(cur);
  $("btn-land").textContent = F ? "failure" : busiestFault(cur) ? "busiest fault" : "start";
  if (a !== undefined) { landedAs = "link"; setWindow(a, b); } else land();
}

function keyList() {
  const f = $("filter").value;
  let html = "";
  KEYS.forEach((K, i) => {
    if (f && !K.label.includes(f)) return;
    const cls = K.meta.status === "not linearizable" ? "bad" : K.meta.status === "not decided" ? "unknown" : "";
    html += `<a class="${cls}" data-k="${i}" title="${esc(K.label + ": " + K.meta.status)}">${esc(K.label)} <small>(${K.n || K.meta.omitted})</small></a>`;
  });
  $("keylist").innerHTML = html;
  $("keylist").querySelectorAll("a").forEach(a => a.addEventListener("click", () => pick(+a.dataset.k)));
}

function pick(ki) {
  if (!KEYS[ki].n) {
    $("key-title").textContent = `key ${KEYS[ki].label}: ${KEYS[ki].meta.status}; ${KEYS[ki].meta.omitted} ops not drawn (the page holds the first keys' ops); check this key alone to see it`;
    return;
  }
  show(ki);
}

function bind() {
  const lanes = $("lanes");
  let drag = null;
  lanes.addEventListener("mousedown", e => { drag = { x: e.clientX, a: t0, b: t1, moved: false }; lanes.style.cursor = "grabbing"; });
  window.addEventListener("mouseup", e => {
    if (drag && !drag.moved) {
      const r = lanes.getBoundingClientRect(), i = hitAt(e.clientX - r.left, e.clientY - r.top);
      if (i >= 0) { selected = i; draw(); }
    }
    drag = null; lanes.style.cursor = "grab";
  });
  window.addEventListener("mousemove", e => {
    if (drag) {
      const dx = e.clientX - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      const d = dx / plotW() * (drag.b - drag.a);
      setWindow(drag.a - d, drag.b - d);
    }
  });
  lanes.addEventListener("mousemove", e => {
    const r = lanes.getBoundingClientRect(), i = hitAt(e.clientX - r.left, e.clientY - r.top);
    hovered = i;
    if (i >= 0) showTip(i, e.clientX, e.clientY); else $("tip").style.display = "none";
  });
  lanes.addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
  const wheel = e => {
    e.preventDefault();
    const r = lanes.getBoundingClientRect();
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) pan((e.deltaX || e.deltaY) / 1000);
    else zoom(Math.pow(1.0015, e.deltaY), tOf(e.clientX - r.left));
  };
  lanes.addEventListener("wheel", wheel, { passive: false });
  $("axis").addEventListener("wheel", wheel, { passive: false });
  $("overview").addEventListener("click", e => {
    const K = cur, c = $("overview"), r = c.getBoundingClientRect();
    const t = K.tMin + (e.clientX - r.left - LABEL_W) / (c.clientWidth - LABEL_W - RIGHT) * (K.tMax - K.tMin);
    const w = t1 - t0;
    setWindow(t - w / 2, t + w / 2);
  });
  $("btn-land").onclick = () => land();
  $("btn-whole").onclick = () => whole();
  $("btn-in").onclick = () => zoom(0.5);
  $("btn-out").onclick = () => zoom(2);
  $("btn-left").onclick = () => pan(-0.5);
  $("btn-right").onclick = () => pan(0.5);
  $("details").addEventListener("click", e => {
    const tr = e.target.closest("tr.op");
    if (tr) centerOn(+tr.dataset.op);
  });
  window.addEventListener("keydown", e => {
    if (e.target.tagName === "INPUT") return;
    const k = e.key;
    if (k === "+" || k === "=") zoom(0.5);
    else if (k === "-") zoom(2);
    else if (k === "ArrowLeft") pan(-0.25);
    else if (k === "ArrowRight") pan(0.25);
    else if (k === "0") whole();
    else if (k === "f") land();
    else return;
    e.preventDefault();
  });
  window.addEventListener("resize", () => draw());
  $("filter").addEventListener("input", keyList);
}

function publish(v) {
  const o = $("timeline-state");
  for (const [k, val] of Object.entries(v)) o.dataset[k] = String(val);
}

// `#key=LABEL&t=FROM,TO` (seconds, or event positions in an untimed
// history), `#whole`, `#op=ID` (centre on an op and show its details as on
// hover).
function fromFragment(fragment) {
  const h = decodeURIComponent(fragment);
  if (!h) return false;
  const p = new Map(h.split("&").map(kv => { const i = kv.indexOf("="); return i < 0 ? [kv, ""] : [kv.slice(0, i), kv.slice(i + 1)]; }));
  let ki = KEYS.findIndex(K => K.label === p.get("key"));
  if (ki < 0) ki = META.failure ? META.failure.key : 0;
  const range = (p.get("t") || "").split(",").map(Number);
  const unit = META.timed ? 1 / UNIT_S : 1;
  if (range.length === 2 && range.every(Number.isFinite)) show(ki, range[0] * unit, range[1] * unit);
  else show(ki);
  if (p.has("whole")) whole();
  if (p.has("op")) {
    const i = cur.id.indexOf(+p.get("op"));
    if (i >= 0) { centerOn(i); showTip(i, 200, 200); hovered = i; }
  }
  return true;
}

window.timeline = {
  go: fragment => fromFragment(fragment),
  show: (label, from, to) => {
    const ki = KEYS.findIndex(K => K.label === label);
    const unit = META.timed ? 1 / UNIT_S : 1;
    if (ki >= 0) show(ki, from === undefined ? undefined : from * unit, to === undefined ? undefined : to * unit);
  },
  whole: () => whole(),
  land: () => land(),
  zoom: f => zoom(f),
};

async function main() {
  $("headline").textContent = $("summary").textContent.split("\n")[0] + "  (details)";
  FAULTS = faultPeriods();
  if (!window.DecompressionStream) {
    $("details").textContent = "This browser cannot read the embedded operations (it has no DecompressionStream); open the page in a current Chrome, Firefox or Safari.";
    return;
  }
  await readBlob();
  keyList();
  bind();
  if (!KEYS.length || !KEYS[0].n) { $("details").textContent = "No operations to show."; publish({ ready: 1 }); return; }
  if (!fromFragment(location.hash.slice(1))) {
    let ki = META.failure ? META.failure.key : 0;
    if (!META.failure) {
      // A passing history opens on the key busiest in its busiest fault.
      let best = -1;
      KEYS.forEach((K, i) => { if (!K.n) return; prepare(K); const f = busiestFault(K); const s = f ? score(K, f) : 0; if (s > best) { best = s; ki = i; } });
    }
    show(ki);
  }
  window.addEventListener("hashchange", () => fromFragment(location.hash.slice(1)));
}

// Resolves once the page is drawn (a page that embeds this one waits on it).
window.timeline.ready = main().catch(e => { $("details").textContent = "Cannot draw the timeline: " + e; publish({ ready: 1, error: String(e) }); });
