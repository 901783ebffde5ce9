//! Checking a whole history: parse, split into partitions, decide them in
//! parallel, then (separately, with its own time limit) explain a failure.

use crate::error::CheckError;
use crate::format::{self, Format};
use crate::history::{History, NO_TIME, Status};
use crate::model::{self, Initial, Job, ModelKind, NilRead, Semantics};
use crate::search::{Abort, Control, SearchResult, UNLIMITED, drop_big};
use crate::value::{Val, shorten};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub model: ModelKind,
    /// Initial value of every register/key; `None` = nil/absent (Porcupine's
    /// key-value files default to ""). For the kv and multi-register models a
    /// map gives each key or register its own (`{:x 0 :y 0}`; keys not in
    /// the map keep the default).
    pub initial: Option<Val>,
    /// How an ok read of nil is taken; `None` = by the format (see
    /// [`default_nil_read`]).
    pub nil_read: Option<NilRead>,
    pub format: Format,
    /// Past this the verdict is Unknown.
    pub time_limit: Option<Duration>,
    /// Time allowed for explaining a failure, after deciding.
    pub explain_time_limit: Duration,
    /// Whether to explain a failure at all.
    pub explain: bool,
    /// Bound on the memory the searches keep (memo tables, values built by
    /// appends), all partitions together.
    pub memo_limit_bytes: usize,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Decide every partition even after one is found illegal (all failing
    /// keys are then listed; the first is explained).
    pub check_all_keys: bool,
    /// Whether a history needs an operation that completed ok to pass: one
    /// without is trivially linearizable, and by default gets verdict
    /// unknown rather than a pass (Knossos calls it valid).
    pub require_ok: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: ModelKind::Auto,
            initial: None,
            nil_read: None,
            format: Format::Auto,
            time_limit: None,
            explain_time_limit: Duration::from_secs(10),
            explain: true,
            memo_limit_bytes: 4 << 30,
            threads: 0,
            check_all_keys: false,
            require_ok: true,
        }
    }
}

/// The answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not-linearizable",
            Verdict::Unknown => "unknown",
        }
    }

    /// 0 linearizable, 1 not linearizable, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable => 1,
            Verdict::Unknown => 2,
        }
    }
}

/// What happened to one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionStatus {
    Linearizable,
    NotLinearizable,
    /// Not finished (limit reached, or stopped after another partition failed).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct PartitionReport {
    /// The key (or "register", "mutex", the registers of a multi-register group).
    pub label: String,
    /// History op ids in this partition.
    pub op_ids: Vec<usize>,
    pub status: PartitionStatus,
    /// History op ids in linearization order, when linearizable.
    pub linearization: Vec<usize>,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The partition (key) that has no linearization.
    pub key: String,
    /// History id of the op that cannot be linearized, if explained.
    pub op: Option<usize>,
    /// History ids of the longest linearizable prefix found, in order.
    pub prefix: Vec<usize>,
    /// Model state after the prefix.
    pub state: Option<String>,
    /// History ids of ops concurrent with `op`.
    pub concurrent: Vec<usize>,
    /// False when the explanation ran out of time or memory (the prefix is
    /// then the longest seen so far) or was not asked for.
    pub complete: bool,
}

/// The result of checking one history.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub file: Option<PathBuf>,
    pub format: Format,
    pub model: ModelKind,
    /// How ok reads of nil were taken.
    pub nil_read: NilRead,
    /// The initial values and nil-read rule the model was checked with.
    pub semantics: Semantics,
    pub verdict: Verdict,
    /// Why the verdict is Unknown.
    pub reason: Option<String>,
    pub history: Arc<History>,
    /// Ops taking part (fail ops and unconstrained ones excluded).
    pub ops_checked: usize,
    pub partitions: Vec<PartitionReport>,
    pub failure: Option<Failure>,
    /// Reading and parsing the input (zero for [`check_history`]).
    pub parse_time: Duration,
    pub decide_time: Duration,
    pub explain_time: Option<Duration>,
    /// Peak memo memory seen across partitions, in bytes (approximate).
    pub memo_peak_bytes: usize,
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }

    fn name(&self) -> String {
        self.file
            .as_ref()
            .map_or("<input>".to_string(), |p| p.display().to_string())
    }

    /// Keys (partitions) found not linearizable; with
    /// [`CheckOptions::check_all_keys`] unset, at most one.
    pub fn failing_keys(&self) -> Vec<&str> {
        self.partitions
            .iter()
            .filter(|p| p.status == PartitionStatus::NotLinearizable)
            .map(|p| p.label.as_str())
            .collect()
    }

    pub fn partitions_checked(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.status != PartitionStatus::Unknown)
            .count()
    }

    /// One line: file, verdict, counts. Like everything the report says
    /// (see [`Outcome::summary`], [`Outcome::to_json`]), the same for every
    /// run on the same history: times are apart ([`Outcome::timings_line`]).
    pub fn one_line(&self) -> String {
        let mut s = format!(
            "{}: {} ({} model, {} ops, {} of {} keys decided)",
            self.name(),
            self.verdict.as_str().to_uppercase().replace('-', " "),
            self.model,
            self.history.ops.len(),
            self.partitions_checked(),
            self.partitions.len(),
        );
        if let Some(r) = &self.reason {
            s.push_str(&format!(": {r}"));
        }
        if let Some(f) = &self.failure {
            s.push_str(&format!("; key {}", f.key));
        }
        s
    }

    /// Human-readable summary with the failure explained.
    pub fn summary(&self) -> String {
        let mut s = self.one_line();
        s.push('\n');
        s.push_str(&format!(
            "  format {}, nil reads {}, {} events, {} ops ({} checked), {} nemesis events\n",
            self.format,
            self.nil_read.as_str(),
            self.history.events,
            self.history.ops.len(),
            self.ops_checked,
            self.history.nemesis.len()
        ));
        if let Some(f) = &self.failure {
            let keys = self.failing_keys();
            if keys.len() > 1 {
                let shown: Vec<&str> = keys.iter().take(50).copied().collect();
                s.push_str(&format!(
                    "  {} keys not linearizable: {}{}\n",
                    keys.len(),
                    shown.join(", "),
                    if keys.len() > 50 { ", ..." } else { "" }
                ));
            }
            s.push_str(&format!("  key {}: no linearization exists\n", f.key));
            match f.op {
                Some(op) => {
                    let h = &self.history;
                    s.push_str(&format!("  cannot linearize: {}\n", describe(h, op)));
                    s.push_str(&format!(
                        "  longest linearizable prefix ({} ops{}), state after it: {}\n",
                        f.prefix.len(),
                        if f.complete {
                            ""
                        } else {
                            ", explanation incomplete"
                        },
                        f.state.as_deref().map_or("?".to_string(), |s| shorten(&s))
                    ));
                    let show = 20;
                    let skip = f.prefix.len().saturating_sub(show);
                    if skip > 0 {
                        s.push_str(&format!("    ... {skip} earlier ops\n"));
                    }
                    for &id in &f.prefix[skip..] {
                        s.push_str(&format!("    {}\n", describe(h, id)));
                    }
                    s.push_str(&format!("  concurrent ops ({}):\n", f.concurrent.len()));
                    for &id in f.concurrent.iter().take(show) {
                        s.push_str(&format!("    {}\n", describe(h, id)));
                    }
                    if f.concurrent.len() > show {
                        s.push_str(&format!("    ... {} more\n", f.concurrent.len() - show));
                    }
                }
                None => s.push_str("  (not explained)\n"),
            }
        }
        s
    }

    /// How long reading, deciding and explaining took, and the memo's
    /// peak: what differs from run to run.
    pub fn timings_line(&self) -> String {
        let mut s = format!(
            "  read {:.1} ms, decided in {:.1} ms",
            self.parse_time.as_secs_f64() * 1e3,
            self.decide_time.as_secs_f64() * 1e3
        );
        if let Some(t) = self.explain_time {
            s.push_str(&format!(", explained in {:.1} ms", t.as_secs_f64() * 1e3));
        }
        s.push_str(&format!(
            ", memo peak {:.1} MiB",
            self.memo_peak_bytes as f64 / (1 << 20) as f64
        ));
        s
    }

    /// [`Outcome::timings_line`] as JSON.
    pub fn timings_json(&self) -> serde_json::Value {
        json!({
            "parse_ms": self.parse_time.as_secs_f64() * 1e3,
            "decide_ms": self.decide_time.as_secs_f64() * 1e3,
            "explain_ms": self.explain_time.map(|t| t.as_secs_f64() * 1e3),
            "memo_peak_bytes": self.memo_peak_bytes,
        })
    }

    /// Machine-readable result.
    pub fn to_json(&self) -> serde_json::Value {
        let failure = self.failure.as_ref().map(|f| {
            json!({
                "key": f.key,
                "op": f.op.map(|id| op_json(&self.history, id)),
                "prefix": f.prefix.iter().map(|&id| op_json(&self.history, id)).collect::<Vec<_>>(),
                "state_after_prefix": f.state,
                "concurrent": f.concurrent.iter().map(|&id| op_json(&self.history, id)).collect::<Vec<_>>(),
                "complete": f.complete,
            })
        });
        json!({
            "file": self.file.as_ref().map(|p| p.display().to_string()),
            "format": self.format.as_str(),
            "model": self.model.as_str(),
            "nil_read": self.nil_read.as_str(),
            "verdict": self.verdict.as_str(),
            "exit_code": self.exit_code(),
            "reason": self.reason,
            "events": self.history.events,
            "ops": self.history.ops.len(),
            "ops_checked": self.ops_checked,
            "keys": self.partitions.len(),
            "keys_checked": self.partitions_checked(),
            "failing_keys": self.failing_keys(),
            "failure": failure,
        })
    }
}

/// A one-line description of op `id`, for people.
pub fn describe(h: &History, id: usize) -> String {
    let op = &h.ops[id];
    let f = h.f(op);
    let key = h
        .key(op)
        .map_or(String::new(), |k| format!(" {}", k.short()));
    let output = h.output(op);
    let out = match op.status {
        Status::Ok if !output.is_nil() || f == "get" || f == "read" => {
            format!(" -> {}", output.short())
        }
        _ => String::new(),
    };
    let lines = match History::complete_line(op) {
        Some(l) => format!("lines {}-{}", op.invoke_line, l),
        None => format!("line {}, no completion", op.invoke_line),
    };
    format!(
        "op {id} process {}: {}{} {}{} [{}] ({lines})",
        op.process,
        shorten(&f),
        key,
        h.input(op).short(),
        out,
        op.status.as_str()
    )
}

/// Op `id` as JSON.
pub fn op_json(h: &History, id: usize) -> serde_json::Value {
    let op = &h.ops[id];
    let time = |t: i64| (t != NO_TIME).then_some(t);
    json!({
        "id": id,
        "process": op.process,
        "f": h.f(op),
        "key": h.key(op).as_ref().map(Val::to_json),
        "value": h.input(op).to_json(),
        "output": h.output(op).to_json(),
        "status": op.status.as_str(),
        "invoke_line": op.invoke_line,
        "complete_line": History::complete_line(op),
        "invoke_time": time(op.invoke_time),
        "complete_time": time(op.complete_time),
    })
}

/// Reads and checks a history file. Our JSON Lines are read as a stream and
/// parsed on all cores; other formats are read whole.
pub fn check_file(path: impl AsRef<Path>, opts: &CheckOptions) -> Result<Outcome, CheckError> {
    let path = path.as_ref();
    let t0 = Instant::now();
    let io = |e: std::io::Error| CheckError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    // The first MiB tells the format; a file that fits in it is parsed in
    // memory, without threads.
    const PREFIX: usize = 1 << 20;
    let mut prefix = Vec::new();
    (&mut file)
        .take(PREFIX as u64)
        .read_to_end(&mut prefix)
        .map_err(io)?;
    let whole = prefix.len() < PREFIX;
    if prefix.starts_with(BOM) {
        prefix.drain(..BOM.len());
    }
    let format = match opts.format {
        Format::Auto => format::detect(&String::from_utf8_lossy(&prefix)),
        f => Ok(f),
    }
    .map_err(|e| e.with_path(path))?;
    let (history, format) = if format == Format::Jsonl && !whole {
        let history = format::jsonl::read(file, prefix, worker_threads(opts.threads))
            .map_err(|e| e.with_path(path))?;
        (history, format)
    } else {
        file.read_to_end(&mut prefix).map_err(io)?;
        let text = String::from_utf8(prefix).map_err(|e| {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            CheckError::parse(line, "UTF-8 text, found a byte that is not UTF-8").with_path(path)
        })?;
        format::parse(&text, format).map_err(|e| e.with_path(path))?
    };
    let parse_time = t0.elapsed();
    let mut out = check_parsed(history, format, opts).map_err(|e| e.with_path(path))?;
    out.file = Some(path.to_path_buf());
    out.parse_time = parse_time;
    Ok(out)
}

const BOM: &[u8] = "\u{feff}".as_bytes();

/// Checks a history given as text.
pub fn check_text(text: &str, opts: &CheckOptions) -> Result<Outcome, CheckError> {
    let t0 = Instant::now();
    // A UTF-8 byte-order mark (some editors write one) is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (history, format) = format::parse(text, opts.format)?;
    let parse_time = t0.elapsed();
    let mut out = check_parsed(history, format, opts)?;
    out.parse_time = parse_time;
    Ok(out)
}

/// Checks a parsed history of `format`.
fn check_parsed(
    history: History,
    format: Format,
    opts: &CheckOptions,
) -> Result<Outcome, CheckError> {
    if history.ops.is_empty() {
        return Err(empty_history(&history));
    }
    let model = match opts.model {
        ModelKind::Auto => match format {
            Format::Jsonl | Format::PorcupineKv => ModelKind::Kv,
            _ => ModelKind::detect(&history),
        },
        m => m,
    };
    let sem = semantics(opts, format, model)?;
    let mut out = check_history(history, model, &sem, opts)?;
    out.format = format;
    Ok(out)
}

/// A history without client operations proves nothing: a run that recorded
/// nothing must not pass a gate.
fn empty_history(history: &History) -> CheckError {
    let what = if history.nemesis.is_empty() {
        "the history is empty".to_string()
    } else {
        format!(
            "the history has only {} nemesis events",
            history.nemesis.len()
        )
    };
    CheckError::parse(
        history.lines + 1,
        format!(
            "at least one client operation (an invoke), found none: {what}, so nothing can be checked"
        ),
    )
}

/// How ok reads of nil are taken in each format unless told: Jepsen/Knossos
/// EDN follows Knossos's models (nil = the value read is unknown); our JSON
/// Lines, Porcupine's key-value files and Jepsen console logs (as Porcupine
/// reads them) take nil as "absent".
pub fn default_nil_read(format: Format) -> NilRead {
    match format {
        Format::Edn => NilRead::Unknown,
        _ => NilRead::Absent,
    }
}

/// The initial values and nil-read rule for checking a history of `format`
/// against `model`.
pub fn semantics(
    opts: &CheckOptions,
    format: Format,
    model: ModelKind,
) -> Result<Semantics, CheckError> {
    let default = match (format, model) {
        (Format::PorcupineKv, ModelKind::Kv) => Val::Str(String::new()),
        _ => Val::Nil,
    };
    let initial = match (&opts.initial, model) {
        (None, _) => Initial::all(default),
        (Some(_), ModelKind::Mutex) => {
            return Err(CheckError::Usage(
                "--initial does not apply to the mutex model (it starts free)".into(),
            ));
        }
        (Some(Val::Map(m)), ModelKind::Kv | ModelKind::MultiRegister) => Initial {
            default,
            per_key: m.clone(),
        },
        (Some(v), _) => Initial::all(v.clone()),
    };
    Ok(Semantics {
        initial,
        nil_read: opts.nil_read.unwrap_or(default_nil_read(format)),
    })
}

/// Checks a parsed history against `model` (not Auto).
pub fn check_history(
    history: History,
    model: ModelKind,
    sem: &Semantics,
    opts: &CheckOptions,
) -> Result<Outcome, CheckError> {
    let start = Instant::now();
    let model = if model == ModelKind::Auto {
        ModelKind::detect(&history)
    } else {
        model
    };
    let history = Arc::new(history);
    let jobs: Vec<Mutex<Box<dyn Job>>> =
        model::partitions(model, &history, sem, worker_threads(opts.threads))?
            .into_iter()
            .map(Mutex::new)
            .collect();
    let ctl = Control::new(
        opts.time_limit.and_then(|t| start.checked_add(t)),
        opts.memo_limit_bytes,
    );
    let results = decide_all(&jobs, &ctl, opts.threads, !opts.check_all_keys);
    let jobs: Vec<Box<dyn Job>> = jobs.into_iter().map(|m| m.into_inner().unwrap()).collect();
    let decide_time = start.elapsed();
    let ops_checked = jobs.iter().map(|j| j.op_ids().len()).sum();

    let mut reports = Vec::with_capacity(jobs.len());
    let mut failed: Option<usize> = None;
    let mut abort: Option<Abort> = None;
    for (i, (job, res)) in jobs.iter().zip(&results.outcomes).enumerate() {
        let (status, linearization) = match res {
            Some(SearchResult::Linearizable(order)) => (
                PartitionStatus::Linearizable,
                order.iter().map(|&o| job.op_ids()[o]).collect(),
            ),
            Some(SearchResult::Illegal(_)) => {
                // The first failing partition in partition order, whatever
                // the order the threads found them in.
                if failed.is_none() {
                    failed = Some(i);
                }
                (PartitionStatus::NotLinearizable, Vec::new())
            }
            Some(SearchResult::Aborted(a, _)) => {
                if *a != Abort::Stopped {
                    abort = Some(*a);
                }
                (PartitionStatus::Unknown, Vec::new())
            }
            None => (PartitionStatus::Unknown, Vec::new()),
        };
        reports.push(PartitionReport {
            label: job.label().to_string(),
            op_ids: job.op_ids().to_vec(),
            status,
            linearization,
        });
    }
    let mut jobs = jobs;
    let (verdict, reason) = match (failed, abort) {
        (Some(_), _) => (Verdict::NotLinearizable, None),
        (None, Some(a)) => (
            Verdict::Unknown,
            Some(format!(
                "{} after {} of {} keys ({} ops) were decided",
                match a {
                    Abort::TimeLimit => "time limit reached",
                    Abort::MemoryLimit => "memo memory limit reached",
                    Abort::Stopped | Abort::Budget => "stopped",
                },
                reports
                    .iter()
                    .filter(|r| r.status != PartitionStatus::Unknown)
                    .count(),
                reports.len(),
                reports
                    .iter()
                    .filter(|r| r.status != PartitionStatus::Unknown)
                    .map(|r| r.op_ids.len())
                    .sum::<usize>()
            )),
        ),
        (None, None) => match nothing_completed(&history).filter(|_| opts.require_ok) {
            Some(why) => (Verdict::Unknown, Some(why)),
            None => (Verdict::Linearizable, None),
        },
    };

    let mut failure = None;
    let mut explain_time = None;
    if let Some(i) = failed {
        let job = &mut jobs[i];
        let mut f = Failure {
            key: job.label().to_string(),
            op: None,
            prefix: Vec::new(),
            state: None,
            concurrent: Vec::new(),
            complete: false,
        };
        if opts.explain {
            let t0 = Instant::now();
            let ectl = Control::new(
                t0.checked_add(opts.explain_time_limit),
                opts.memo_limit_bytes,
            );
            let (stuck, complete) = match job.run(&ectl, true, UNLIMITED) {
                SearchResult::Illegal(s) => (s, true),
                SearchResult::Aborted(_, s) => (s, false),
                SearchResult::Linearizable(_) => (None, false),
            };
            if let Some(st) = stuck {
                let ids = job.op_ids();
                let op = ids[st.op];
                f.op = Some(op);
                f.prefix = st.prefix.iter().map(|&o| ids[o]).collect();
                f.state = Some(st.state);
                let target = &history.ops[op];
                let (start, end) = (
                    history.call(target),
                    history.ret(target).unwrap_or(i64::MAX),
                );
                f.concurrent = ids
                    .iter()
                    .copied()
                    .filter(|&o| {
                        let x = &history.ops[o];
                        o != op && history.call(x) < end && history.ret(x).is_none_or(|r| r > start)
                    })
                    .collect();
                f.complete = complete;
            }
            explain_time = Some(t0.elapsed());
        }
        failure = Some(f);
        // Put the explained key first, then any other failing keys.
        let r = reports.remove(i);
        reports.insert(0, r);
        reports[1..].sort_by_key(|r| r.status != PartitionStatus::NotLinearizable);
    }

    // Partitions hold what their searches built: freed off the caller's time.
    drop_big(jobs, history.ops.len() * 64);

    Ok(Outcome {
        file: None,
        format: Format::Auto,
        model,
        nil_read: sem.nil_read,
        semantics: sem.clone(),
        verdict,
        reason,
        history,
        ops_checked,
        partitions: reports,
        failure,
        parse_time: Duration::ZERO,
        decide_time,
        explain_time,
        memo_peak_bytes: results.mem_peak,
    })
}

/// Why a history in which no operation completed ok proves nothing, if so:
/// such a history is trivially linearizable (failed ops are dropped, the
/// others may never have taken effect), so a run in which every request
/// failed or timed out must not pass a gate.
fn nothing_completed(history: &History) -> Option<String> {
    if history.ops.iter().any(|o| o.status == Status::Ok) {
        return None;
    }
    let failed = history
        .ops
        .iter()
        .filter(|o| o.status == Status::Fail)
        .count();
    Some(format!(
        "no operation completed ok ({} invoked: {failed} failed, {} indeterminate), so the history constrains nothing",
        history.ops.len(),
        history.ops.len() - failed
    ))
}

/// More worker threads than this are not started, whatever was asked.
pub const MAX_THREADS: usize = 256;

/// The threads to use when `requested` (0: one per core) are asked for.
fn worker_threads(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, MAX_THREADS)
}

struct Decided {
    outcomes: Vec<Option<SearchResult>>,
    mem_peak: usize,
}

/// Iterations a partition's first search may take, at least, and per op
/// (a search that meets no concurrency takes a few per op); each retry gets
/// [`BUDGET_GROWTH`] times more.
pub const FIRST_BUDGET: u64 = 1 << 16;
pub const FIRST_BUDGET_PER_OP: u64 = 64;
pub const BUDGET_GROWTH: u64 = 4;

/// A search to run: (round, rank of the partition by size, partition,
/// iteration budget).
type Turn = (u32, usize, usize, u64);

/// Decides every partition on a pool of threads. Searches run in rounds
/// with iteration budgets (biggest partition first within a round): a
/// partition that uses up its budget is put back for the next round with a
/// bigger one, and searched again from the start after every partition has
/// had its turn in this round. One hard partition thus cannot hold back the
/// others (an easy violation elsewhere is still found at once), and
/// restarting costs at most 1/(growth - 1) of the work of the run that
/// finishes.
///
/// With `stop_at_first_illegal`, the round in which a partition is first
/// found illegal is the last: every partition still gets its turn in that
/// round, later rounds are not run, and what a thread decided in a later
/// round meanwhile is dropped. Whether a partition is decided within a
/// round's budget does not depend on the threads, so which partitions are
/// decided, and which fail, is the same for every run and thread count
/// (unless the time or memory limit cuts a search short).
fn decide_all(
    jobs: &[Mutex<Box<dyn Job>>],
    ctl: &Control,
    threads: usize,
    stop_at_first_illegal: bool,
) -> Decided {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].lock().unwrap().op_ids().len()));
    let queue: Mutex<BinaryHeap<Reverse<Turn>>> = Mutex::new(
        order
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let ops = jobs[i].lock().unwrap().op_ids().len() as u64;
                let budget = FIRST_BUDGET.max(FIRST_BUDGET_PER_OP.saturating_mul(ops));
                Reverse((0, rank, i, budget))
            })
            .collect(),
    );
    let threads = worker_threads(threads).min(jobs.len()).max(1);
    // Each partition's result and the round that gave it.
    let outcomes: Vec<Mutex<Option<(u32, SearchResult)>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    // The first round that found an illegal partition (when stopping there).
    let last_round = AtomicU32::new(u32::MAX);
    let work = || {
        loop {
            let Some(Reverse((round, rank, i, budget))) = queue.lock().unwrap().pop() else {
                break;
            };
            // Turns come out in round order: every turn left is too late.
            if ctl.stopped() || round > last_round.load(Ordering::SeqCst) {
                break;
            }
            let res = jobs[i].lock().unwrap().run(ctl, false, budget);
            match res {
                SearchResult::Aborted(Abort::Budget, _) => {
                    let more = budget.saturating_mul(BUDGET_GROWTH);
                    queue
                        .lock()
                        .unwrap()
                        .push(Reverse((round + 1, rank, i, more)));
                    continue;
                }
                SearchResult::Illegal(_) if stop_at_first_illegal => {
                    last_round.fetch_min(round, Ordering::SeqCst);
                }
                _ => {}
            }
            jobs[i].lock().unwrap().finish();
            *outcomes[i].lock().unwrap() = Some((round, res));
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let last_round = last_round.into_inner();
    Decided {
        outcomes: outcomes
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap()
                    .filter(|(round, _)| *round <= last_round)
                    .map(|(_, res)| res)
            })
            .collect(),
        mem_peak: ctl.mem_peak(),
    }
}
