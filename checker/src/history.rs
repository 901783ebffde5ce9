//! Events as recorded, and operations built by pairing each invoke with its
//! completion.

use crate::error::CheckError;
use crate::value::Val;
use std::collections::HashMap;

/// Who issued an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    /// A logical client; after an `info` it continues under a new id.
    Client(i64),
    /// The fault injector; its events are shown, never checked.
    Nemesis,
}

/// The type of an event (Jepsen vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn parse(s: &str) -> Option<EventType> {
        match s {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One line (or map) of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// 1-based line where the event starts.
    pub line: usize,
    pub index: Option<u64>,
    /// Nanoseconds since the run started, if recorded.
    pub time: Option<i64>,
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<Val>,
    pub value: Val,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Took effect exactly once between invoke and completion.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// May have taken effect at any time after its invoke, or never.
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Info => "info",
        }
    }
}

/// An invoke paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Position among the history's operations, in invoke order.
    pub id: usize,
    pub process: i64,
    pub f: String,
    pub key: Option<Val>,
    /// The value given at invoke.
    pub input: Val,
    /// The value given at completion (`Val::Nil` for info/pending ops).
    pub output: Val,
    pub status: Status,
    /// Real-time rank of the invoke (smaller = earlier).
    pub call: u64,
    /// Real-time rank of the completion; `None` when the op never returned
    /// usefully (info or no completion).
    pub ret: Option<u64>,
    pub call_time: Option<i64>,
    pub ret_time: Option<i64>,
    pub invoke_line: usize,
    pub complete_line: Option<usize>,
}

/// A fault-injector event, kept for the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisEvent {
    pub rank: u64,
    pub time: Option<i64>,
    pub kind: EventType,
    pub f: String,
    pub value: Val,
    pub line: usize,
}

/// A history ready for checking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
    pub nemesis: Vec<NemesisEvent>,
    /// Number of events read.
    pub events: usize,
    /// Whether ranks come from `time` (true) or from file order.
    pub timed: bool,
}

impl History {
    /// Pairs invokes with completions. Real-time order comes from `time` when
    /// every client event has one, otherwise from the order of events.
    pub fn from_events(events: Vec<Event>) -> Result<History, CheckError> {
        let timed = events
            .iter()
            .filter(|e| e.process != Process::Nemesis)
            .all(|e| e.time.is_some())
            && !events.is_empty();
        // Rank events: by (time, invokes before completions at equal times,
        // file order); equal times thus count as concurrent.
        let mut order: Vec<usize> = (0..events.len()).collect();
        if timed {
            order.sort_by_key(|&i| {
                let e = &events[i];
                (e.time.unwrap_or(i64::MIN), e.kind != EventType::Invoke, i)
            });
        }
        let mut rank = vec![0u64; events.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r as u64;
        }

        let mut ops: Vec<Op> = Vec::new();
        let mut nemesis = Vec::new();
        let mut pending: HashMap<i64, usize> = HashMap::new();
        let n_events = events.len();
        for (i, e) in events.into_iter().enumerate() {
            let p = match e.process {
                Process::Nemesis => {
                    nemesis.push(NemesisEvent {
                        rank: rank[i],
                        time: e.time,
                        kind: e.kind,
                        f: e.f,
                        value: e.value,
                        line: e.line,
                    });
                    continue;
                }
                Process::Client(p) => p,
            };
            match e.kind {
                EventType::Invoke => {
                    if let Some(&prev) = pending.get(&p) {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "a completion (ok/fail/info) for process {p}'s operation invoked on line {} before its next invoke",
                                ops[prev].invoke_line
                            ),
                        ));
                    }
                    pending.insert(p, ops.len());
                    ops.push(Op {
                        id: ops.len(),
                        process: p,
                        f: e.f,
                        key: e.key,
                        input: e.value,
                        output: Val::Nil,
                        status: Status::Info,
                        call: rank[i],
                        ret: None,
                        call_time: e.time,
                        ret_time: None,
                        invoke_line: e.line,
                        complete_line: None,
                    });
                }
                kind => {
                    let Some(id) = pending.remove(&p) else {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "an invoke by process {p} before this {} completion",
                                kind.as_str()
                            ),
                        ));
                    };
                    let op = &mut ops[id];
                    if op.f != e.f {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "f {:?} (as invoked on line {}), found {:?}",
                                op.f, op.invoke_line, e.f
                            ),
                        ));
                    }
                    if let (Some(want), Some(got)) = (&op.key, &e.key)
                        && want != got
                    {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "key {want} (as invoked on line {}), found {got}",
                                op.invoke_line
                            ),
                        ));
                    }
                    if op.key.is_none() {
                        op.key = e.key;
                    }
                    if let (Some(t0), Some(t1)) = (op.call_time, e.time)
                        && timed
                        && t1 < t0
                    {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "a time no earlier than the invoke's ({t0} on line {}), found {t1}",
                                op.invoke_line
                            ),
                        ));
                    }
                    op.complete_line = Some(e.line);
                    op.ret_time = e.time;
                    match kind {
                        EventType::Ok => {
                            op.status = Status::Ok;
                            op.output = e.value;
                            op.ret = Some(rank[i]);
                        }
                        EventType::Fail => {
                            op.status = Status::Fail;
                            op.output = e.value;
                            op.ret = Some(rank[i]);
                        }
                        _ => {
                            op.status = Status::Info;
                            op.output = e.value;
                        }
                    }
                }
            }
        }
        Ok(History {
            ops,
            nemesis,
            events: n_events,
            timed,
        })
    }
}
