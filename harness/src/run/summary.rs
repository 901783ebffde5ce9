//! `summary.json`: configuration, seed, counts, throughput, latencies,
//! nemesis events, verdicts and timings of a run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::faults::nemesis::NemesisReport;
use super::recorder::{Event, EventType, Process};
use super::workload::Counters;
use super::{Args, Timings};

pub struct RunInfo<'a> {
    pub args: &'a Args,
    pub seed: u64,
    pub concurrency: usize,
    pub nemesis: &'a NemesisReport,
    /// Faults in the schedule.
    pub planned_faults: usize,
    pub run_dir: &'a Path,
    pub timings: Timings,
    pub notes: Vec<String>,
    /// Peer connections that went through the link proxies.
    pub proxied_connections: u64,
    pub workload_duration: Duration,
    /// When the workload started (seconds since the Unix epoch).
    pub started_unix_s: f64,
    /// The command line that repeats the run.
    pub reproduce: &'a str,
    /// Whether the nodes' data directories were kept.
    pub data_kept: bool,
}

/// How often cas applied: `{ok, fail, success_rate}` over the cas
/// operations with a definite outcome.
pub fn cas_json(counters: &Counters) -> Value {
    let ok = counters.cas_ok.load(Ordering::Relaxed);
    let fail = counters.cas_fail.load(Ordering::Relaxed);
    let rate = if ok + fail == 0 {
        None
    } else {
        Some(ok as f64 / (ok + fail) as f64)
    };
    json!({ "ok": ok, "fail": fail, "success_rate": rate })
}

/// A completed operation: invoke time, completion time (ns), kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub f: String,
    pub start: u64,
    pub end: u64,
    pub kind: EventType,
}

/// Pairs every invoke with its process's next completion.
pub fn completed_ops(events: &[Event]) -> Vec<Completed> {
    let mut open: HashMap<u64, (String, u64)> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p, (e.f.clone(), e.time));
        } else if let Some((f, start)) = open.remove(&p) {
            out.push(Completed {
                f,
                start,
                end: e.time,
                kind: e.kind,
            });
        }
    }
    out
}

/// The p-th percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn latency_stats(ms: &mut [f64]) -> Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    let round = |v: Option<f64>| v.map(|v| (v * 1000.0).round() / 1000.0);
    json!({
        "count": ms.len(),
        "p50_ms": round(percentile(ms, 50.0)),
        "p90_ms": round(percentile(ms, 90.0)),
        "p99_ms": round(percentile(ms, 99.0)),
        "max_ms": round(ms.last().copied()),
    })
}

pub fn build(info: &RunInfo, events: &[Event], outcome: &raftkv_checker::Outcome) -> Value {
    let ops = completed_ops(events);
    let mut counts: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    for e in events {
        if let Process::Client(_) = e.process {
            *counts
                .entry(e.f.clone())
                .or_default()
                .entry(e.kind.name())
                .or_default() += 1;
        }
    }
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut all_ok = Vec::new();
    for op in &ops {
        if op.kind == EventType::Ok {
            let ms = (op.end - op.start) as f64 / 1e6;
            latencies.entry(op.f.clone()).or_default().push(ms);
            all_ok.push(ms);
        }
    }
    let mut latency: BTreeMap<String, Value> = latencies
        .iter_mut()
        .map(|(f, v)| (f.clone(), latency_stats(v)))
        .collect();
    latency.insert("all".into(), latency_stats(&mut all_ok));
    let secs = info.workload_duration.as_secs_f64().max(1e-9);
    let workload_end = info.workload_duration.as_nanos() as u64;
    let in_workload = ops.iter().filter(|o| o.end <= workload_end);
    let (mut ok, mut total) = (0u64, 0u64);
    for o in in_workload {
        total += 1;
        if o.kind == EventType::Ok {
            ok += 1;
        }
    }
    let nemesis: Vec<Value> = events
        .iter()
        .filter(|e| matches!(e.process, Process::Nemesis(_)))
        .map(|e| json!({ "time_s": e.time as f64 / 1e9, "f": e.f, "value": e.value }))
        .collect();
    let a = info.args;
    let n = info.nemesis;
    json!({
        "config": {
            "nodes": a.nodes,
            "duration_s": a.duration.as_secs_f64(),
            "nemesis": a.nemesis,
            "nemesis_interval_s": a.nemesis_interval.as_secs_f64(),
            "nemesis_target": a.nemesis_target,
            "concurrency": info.concurrency,
            "keys": a.keys,
            "mix": a.mix,
            "rate": a.rate,
            "op_timeout_s": a.op_timeout.as_secs_f64(),
            "node_args": super::target::raftkv_node_args(&a.node_args),
        },
        "seed": info.seed,
        "reproduce": info.reproduce,
        "started_unix_s": info.started_unix_s,
        "run_dir": info.run_dir.display().to_string(),
        "data_kept": info.data_kept,
        "events": events.len(),
        "counts": counts,
        "throughput": {
            "ops_per_s": total as f64 / secs,
            "ok_per_s": ok as f64 / secs,
        },
        "latency": latency,
        "nemesis": {
            "planned": info.planned_faults,
            "applied": n.applied,
            "skipped": n.skipped,
            "plans": n.plans,
        },
        "proxied_connections": info.proxied_connections,
        "nemesis_events": nemesis,
        "verdict": outcome.verdict.as_str(),
        "exit_code": outcome.exit_code(),
        "check": outcome.to_json(),
        "timings": info.timings,
        "notes": info.notes,
    })
}

pub fn write(dir: &Path, summary: &Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(summary).expect("json values serialize");
    std::fs::write(dir.join("summary.json"), text + "\n")
}

/// A few lines for the terminal.
pub fn human(summary: &Value, outcome: &raftkv_checker::Outcome) -> String {
    let mut out = String::new();
    let counts = summary["counts"].as_object().cloned().unwrap_or_default();
    for (f, c) in counts {
        let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!(
            "{f:>5}: {} ok, {} fail, {} info\n",
            n("ok"),
            n("fail"),
            n("info")
        ));
    }
    let l = &summary["latency"]["all"];
    out.push_str(&format!(
        "throughput {:.0} ops/s; ok latency p50 {} ms, p99 {} ms, max {} ms\n",
        summary["throughput"]["ops_per_s"].as_f64().unwrap_or(0.0),
        l["p50_ms"],
        l["p99_ms"],
        l["max_ms"]
    ));
    let cas = &summary["cas"];
    if let Some(rate) = cas["success_rate"].as_f64() {
        out.push_str(&format!(
            "cas applied {} of {} with a definite outcome ({:.0} %)\n",
            cas["ok"],
            cas["ok"].as_u64().unwrap_or(0) + cas["fail"].as_u64().unwrap_or(0),
            rate * 100.0
        ));
    }
    out.push_str(&format!(
        "faults: {} applied of {} planned ({} skipped: their nodes were held by another fault); seed {}\n",
        summary["nemesis"]["applied"],
        summary["nemesis"]["planned"],
        summary["nemesis"]["skipped"],
        summary["seed"]
    ));
    for note in summary["notes"].as_array().into_iter().flatten() {
        out.push_str(&format!("note: {}\n", note.as_str().unwrap_or_default()));
    }
    out.push_str(&outcome.summary());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn ev(index: u64, time: u64, p: u64, kind: EventType, f: &str) -> Event {
        Event {
            index,
            time,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            error: None,
            node: None,
            log_index: None,
        }
    }

    #[test]
    fn pairs_operations_and_takes_percentiles() {
        let events = vec![
            ev(0, 0, 1, EventType::Invoke, "set"),
            ev(1, 1_000_000, 2, EventType::Invoke, "get"),
            ev(2, 3_000_000, 1, EventType::Ok, "set"),
            ev(3, 9_000_000, 2, EventType::Info, "get"),
        ];
        let ops = completed_ops(&events);
        assert_eq!(ops.len(), 2);
        assert_eq!(
            (ops[0].f.as_str(), ops[0].end - ops[0].start),
            ("set", 3_000_000)
        );
        assert_eq!(ops[1].kind, EventType::Info);

        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&v, 99.0), Some(10.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
