//! What the timeline page draws, taken from an outcome: a small JSON object
//! (keys, processes, operation names, nemesis events, the failure) and the
//! operations of every drawn key in compact columns ([`super::columns`]),
//! with their linearization and the model's state after each of its ops.

use super::columns::Blob;
use crate::check::{Outcome, PartitionStatus};
use crate::history::{History, NO_TIME, Op, Status, ValRef};
use crate::model::{self, Job};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Most operations drawn in one page; keys past it are listed, not drawn
/// (the failing key always is).
pub const MAX_DRAWN_OPS: usize = 1_000_000;

/// The columns: per drawn op in history order (ids, times and lines
/// delta-encoded), then per key its linearization (each op's index among
/// the key's ops) and the model's state after each op of it; read back by
/// `readBlob` in `timeline.js`.
const COLUMNS: [&str; 12] = [
    "id", "key", "proc", "call", "dur", "fs", "in", "out", "line", "cline", "lin", "state",
];

/// A state's code: as the op's input or output (a write leaves the value
/// it wrote), else as a string of the table, shifted past those two.
const STATE_UNCHANGED: u64 = 0;
const STATE_IS_INPUT: u64 = 1;
const STATE_IS_OUTPUT: u64 = 2;

pub struct PageData {
    pub meta: Value,
    pub blob: String,
}

fn status_text(s: &PartitionStatus) -> &'static str {
    match s {
        PartitionStatus::Linearizable => "linearizable",
        PartitionStatus::NotLinearizable => "not linearizable",
        PartitionStatus::Unknown => "not decided",
    }
}

/// The drawn view each op belongs to: the partition holding it, else the
/// partition of its key (fail ops and ops that constrain nothing, such as
/// info reads, are in no partition but are drawn with their key), else the
/// only partition of a model without keys.
fn owners(outcome: &Outcome) -> Vec<Option<usize>> {
    let h = &outcome.history;
    let mut owner = vec![None; h.ops.len()];
    for (pi, p) in outcome.partitions.iter().enumerate() {
        for &id in &p.op_ids {
            owner[id] = Some(pi);
        }
    }
    let by_label: HashMap<&str, usize> = outcome
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.label.as_str(), i))
        .collect();
    let only = (outcome.partitions.len() == 1).then_some(0);
    let mut by_key: HashMap<ValRef, Option<usize>> = HashMap::new();
    for (id, op) in h.ops.iter().enumerate() {
        if owner[id].is_some() {
            continue;
        }
        owner[id] = if op.key.is_none() {
            only
        } else {
            *by_key.entry(op.key).or_insert_with(|| {
                let label = h.key(op).as_ref().map(model::key_label);
                label.and_then(|l| by_label.get(l.as_str()).copied())
            })
        };
    }
    owner
}

/// A time unit (in the history's units) that keeps a typical op about a
/// hundred units long: times are stored as whole units.
fn quantum(h: &History, ops: &[usize]) -> i64 {
    if !h.timed {
        return 1;
    }
    let mut d: Vec<i64> = ops
        .iter()
        .map(|&id| &h.ops[id])
        .filter(|o| o.status == Status::Ok)
        .filter_map(|o| h.ret(o).map(|r| r - h.call(o)))
        .collect();
    if d.is_empty() {
        return 1;
    }
    let mid = d.len() / 2;
    let median = *d.select_nth_unstable(mid).1;
    let mut q = 1i64;
    while q * 1000 <= median {
        q *= 10;
    }
    q
}

/// When an op's completion was recorded (info ops included), if it was.
fn completed_at(h: &History, o: &Op) -> Option<i64> {
    History::complete_line(o)?;
    if h.timed {
        (o.complete_time != NO_TIME).then_some(o.complete_time)
    } else {
        Some(i64::from(o.complete_pos))
    }
}

/// What an op's bar says: its input, and what it returned when that says
/// more (a read's value; nothing when a write echoes its input).
fn texts(h: &History, o: &Op) -> (Option<String>, Option<String>) {
    let input = h.input(o);
    let shown_in = (!input.is_nil()).then(|| input.short());
    let f = h.f(o);
    let out = match o.status {
        Status::Ok if matches!(f, "get" | "read" | "txn") => Some(h.output(o).short()),
        Status::Ok | Status::Fail => {
            let output = h.output(o);
            (!output.is_nil() && output != input).then(|| output.short())
        }
        Status::Info => None,
    };
    (shown_in, out)
}

pub fn page_data(outcome: &Outcome) -> PageData {
    let h: &History = &outcome.history;
    let owner = owners(outcome);
    let mut sizes = vec![0usize; outcome.partitions.len()];
    for pi in owner.iter().flatten() {
        sizes[*pi] += 1;
    }
    // The failing key comes first among the partitions, so it is drawn.
    let mut drawn = vec![false; sizes.len()];
    let mut total = 0usize;
    for (pi, &size) in sizes.iter().enumerate() {
        if total == 0 || total + size <= MAX_DRAWN_OPS {
            total += size;
            drawn[pi] = true;
        }
    }
    let ops: Vec<usize> = (0..h.ops.len())
        .filter(|&id| owner[id].is_some_and(|pi| drawn[pi]))
        .collect();
    let q = quantum(h, &ops);

    let mut blob = Blob::new(&COLUMNS);
    let mut procs: HashMap<i64, usize> = HashMap::new();
    let mut proc_list: Vec<i64> = Vec::new();
    // Each drawn op's index among its key's ops, and its texts.
    let mut local = vec![0usize; h.ops.len()];
    let mut shown: HashMap<usize, (Option<String>, Option<String>)> = HashMap::new();
    let mut counts = vec![0usize; sizes.len()];
    let mut end = i64::MIN;
    let (mut prev_id, mut prev_call, mut prev_line) = (0i64, 0i64, 0i64);
    let failure = outcome.failure.as_ref();
    for &id in &ops {
        let o = &h.ops[id];
        let pi = owner[id].expect("drawn ops have a key");
        local[id] = counts[pi];
        counts[pi] += 1;
        let call = h.call(o).div_euclid(q);
        let proc = *procs.entry(o.process).or_insert_with(|| {
            proc_list.push(o.process);
            proc_list.len() - 1
        });
        let status = match o.status {
            Status::Ok => 0,
            Status::Fail => 1,
            Status::Info => 2,
        };
        let done = completed_at(h, o).map(|t| t.div_euclid(q));
        end = end.max(done.unwrap_or(call));
        let (input, output) = texts(h, o);
        let line = i64::from(o.invoke_line);
        blob.col("id").push((id as i64 - prev_id) as u64);
        blob.col("key").push(pi as u64);
        blob.col("proc").push(proc as u64);
        blob.col("call").push_signed(call - prev_call);
        blob.col("dur")
            .push(done.map_or(0, |d| (d - call).max(0) as u64 + 1));
        blob.col("fs").push(u64::from(o.f) * 3 + status);
        let code = input.as_deref().map_or(0, |s| blob.strings.code(s));
        blob.col("in").push(code);
        let code = output.as_deref().map_or(0, |s| blob.strings.code(s));
        blob.col("out").push(code);
        blob.col("line").push_signed(line - prev_line);
        blob.col("cline")
            .push(History::complete_line(o).map_or(0, |l| (l as u64).saturating_sub(line as u64)));
        (prev_id, prev_call, prev_line) = (id as i64, call, line);
        shown.insert(id, (input, output));
    }

    let mut jobs: Option<Vec<Box<dyn Job>>> = None;
    let mut keys = Vec::new();
    let mut failure_meta = Value::Null;
    for (pi, p) in outcome.partitions.iter().enumerate() {
        if !drawn[pi] {
            keys.push(json!({
                "label": p.label, "status": status_text(&p.status),
                "n": 0, "lin": 0, "states": false, "omitted": sizes[pi],
            }));
            continue;
        }
        let failing =
            failure.filter(|f| p.status == PartitionStatus::NotLinearizable && f.key == p.label);
        let order: &[usize] = match failing {
            Some(f) => &f.prefix,
            None => &p.linearization,
        };
        let mut prev = 0i64;
        for id in order {
            let i = local[*id] as i64;
            blob.col("lin").push_signed(i - prev);
            prev = i;
        }
        let states = if order.is_empty() {
            None
        } else {
            let jobs = jobs.get_or_insert_with(|| {
                model::partitions(outcome.model, &outcome.history, &outcome.semantics, 1)
                    .unwrap_or_default()
            });
            jobs.iter_mut()
                .find(|j| j.label() == p.label)
                .and_then(|j| j.states_after(order))
        };
        if let Some(states) = &states {
            let mut last: Option<&str> = None;
            for (s, id) in states.iter().zip(order) {
                let (input, output) = &shown[id];
                let code = if last == Some(s.as_str()) {
                    STATE_UNCHANGED
                } else if input.as_deref() == Some(s.as_str()) {
                    STATE_IS_INPUT
                } else if output.as_deref() == Some(s.as_str()) {
                    STATE_IS_OUTPUT
                } else {
                    blob.strings.code(s) + 2
                };
                blob.col("state").push(code);
                last = Some(s);
            }
        }
        if let Some(f) = failing {
            let concurrent: Vec<usize> = f.concurrent.iter().map(|&id| local[id]).collect();
            failure_meta = json!({
                "key": keys.len(),
                "op": f.op.map(|id| local[id]),
                "concurrent": concurrent,
                "state": f.state,
                "complete": f.complete,
            });
        }
        keys.push(json!({
            "label": p.label, "status": status_text(&p.status),
            "n": sizes[pi], "lin": order.len(), "states": states.is_some(), "omitted": 0,
        }));
    }
    let nemesis: Vec<Value> = h
        .nemesis
        .iter()
        .map(|n| {
            let t = n.rank.div_euclid(q);
            end = end.max(t);
            json!([t, n.kind.as_str(), n.f, n.value.short()])
        })
        .collect();
    let (layout, blob) = blob.finish();
    let layout: Vec<Value> = layout.into_iter().map(|(n, l)| json!([n, l])).collect();
    let meta = json!({
        "verdict": outcome.verdict.as_str(),
        "timed": h.timed,
        "q": q,
        "end": end.max(0),
        "fns": h.fns,
        "procs": proc_list,
        "keys": keys,
        "layout": layout,
        "nemesis": nemesis,
        "failure": failure_meta,
    });
    PageData { meta, blob }
}
