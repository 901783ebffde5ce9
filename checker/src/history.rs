//! Events as recorded, and operations built by pairing each invoke with its
//! completion. A history keeps its values encoded ([`crate::encoding`]) in a
//! byte arena and its operations in a compact array, so that tens of
//! millions of operations fit in memory and are freed at once.

use crate::encoding;
use crate::error::CheckError;
use crate::search::FxBuild;
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

impl Process {
    /// The client's id; `None` for the nemesis.
    pub fn client(&self) -> Option<i64> {
        match self {
            Process::Client(p) => Some(*p),
            Process::Nemesis => None,
        }
    }
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

/// A value of a history: where its encoding is kept in the history's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValRef(u64);

impl ValRef {
    /// Nil, kept in no arena.
    pub const NIL: ValRef = ValRef(u64::MAX - 1);
    /// No value (an op without a key).
    pub const NONE: ValRef = ValRef(u64::MAX);

    pub fn is_none(self) -> bool {
        self == ValRef::NONE
    }
}

/// Values encoded one after another in chunks that never move, so a
/// reference stays valid and growing never copies.
#[derive(Clone, Debug, Default)]
pub struct Values {
    chunks: Vec<Vec<u8>>,
}

const CHUNK: usize = 8 << 20;

impl Values {
    /// Stores an encoded value (nil is not stored).
    pub fn push(&mut self, encoded: &[u8]) -> ValRef {
        if encoding::is_nil(encoded) {
            return ValRef::NIL;
        }
        let need = encoded.len() + 5;
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= need);
        if !fits {
            self.chunks.push(Vec::with_capacity(need.max(CHUNK)));
        }
        let ci = self.chunks.len() - 1;
        let chunk = &mut self.chunks[ci];
        let at = chunk.len();
        encoding::put_varint(chunk, encoded.len() as u64);
        chunk.extend_from_slice(encoded);
        ValRef((ci as u64) << 32 | at as u64)
    }

    /// The encoding of a stored value (nil's for [`ValRef::NIL`] and
    /// [`ValRef::NONE`]).
    pub fn get(&self, r: ValRef) -> &[u8] {
        if r == ValRef::NIL || r == ValRef::NONE {
            return encoding::NIL_BYTES;
        }
        let chunk = &self.chunks[(r.0 >> 32) as usize];
        let mut at = (r.0 & 0xffff_ffff) as usize;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = chunk[at];
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        &chunk[at..at + len]
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

/// Where an op's invoke or completion is: no position.
pub const NO_POS: u32 = u32::MAX;
/// An event without a time.
pub const NO_TIME: i64 = i64::MIN;

/// An invoke paired with its completion (72 bytes; values and names are
/// references into the history).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Op {
    pub process: i64,
    /// The key ([`ValRef::NONE`] if none).
    pub key: ValRef,
    /// The value given at invoke.
    pub input: ValRef,
    /// The value given at completion (nil for info/pending ops).
    pub output: ValRef,
    /// Times of the invoke and the completion ([`NO_TIME`] if not recorded).
    pub invoke_time: i64,
    pub complete_time: i64,
    /// Positions of the invoke and completion among the history's events
    /// ([`NO_POS`]: no completion).
    pub invoke_pos: u32,
    pub complete_pos: u32,
    pub invoke_line: u32,
    /// 0 if the op has no completion.
    pub complete_line: u32,
    /// The operation's name, an index into [`History::fns`].
    pub f: u16,
    pub status: Status,
}

/// A fault-injector event, kept for the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisEvent {
    /// Its time if the history is timed, else its position among events.
    pub rank: i64,
    pub time: Option<i64>,
    pub kind: EventType,
    pub f: String,
    pub value: Val,
    pub line: usize,
}

/// A history ready for checking.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
    pub values: Values,
    /// Operation names.
    pub fns: Vec<String>,
    pub nemesis: Vec<NemesisEvent>,
    /// Number of events read.
    pub events: usize,
    /// Number of lines read.
    pub lines: usize,
    /// Whether real-time order comes from `time` (true) or from the order of
    /// events (false).
    pub timed: bool,
}

impl History {
    /// Pairs invokes with completions (see [`HistoryBuilder`]).
    pub fn from_events(events: Vec<Event>) -> Result<History, CheckError> {
        let mut b = HistoryBuilder::default();
        let mut buf = Vec::new();
        for e in events {
            b.push_event(&e, &mut buf)?;
        }
        b.finish()
    }

    pub fn f(&self, op: &Op) -> &str {
        &self.fns[op.f as usize]
    }

    pub fn input(&self, op: &Op) -> Val {
        encoding::decode(self.values.get(op.input))
    }

    pub fn output(&self, op: &Op) -> Val {
        encoding::decode(self.values.get(op.output))
    }

    pub fn key(&self, op: &Op) -> Option<Val> {
        (!op.key.is_none()).then(|| encoding::decode(self.values.get(op.key)))
    }

    /// The real-time rank of an op's invoke: its time, or its position.
    pub fn call(&self, op: &Op) -> i64 {
        if self.timed {
            op.invoke_time
        } else {
            i64::from(op.invoke_pos)
        }
    }

    /// The real-time rank of an op's completion, if it completed ok or
    /// failed (info ops and ops without completion never returned usefully).
    pub fn ret(&self, op: &Op) -> Option<i64> {
        if op.status == Status::Info {
            None
        } else if self.timed {
            Some(op.complete_time)
        } else {
            Some(i64::from(op.complete_pos))
        }
    }

    /// The op's completion line, if it has one.
    pub fn complete_line(op: &Op) -> Option<usize> {
        (op.complete_line != 0).then_some(op.complete_line as usize)
    }

    /// Bytes the history holds (approximate).
    pub fn bytes(&self) -> usize {
        self.ops.capacity() * std::mem::size_of::<Op>() + self.values.bytes()
    }
}

/// An event as the builder takes it: its name and key interned by
/// [`HistoryBuilder::fn_id`] and [`HistoryBuilder::key_ref`], its value
/// encoded.
#[derive(Clone, Copy, Debug)]
pub struct RawEvent<'a> {
    pub line: usize,
    pub time: Option<i64>,
    /// `None` for the nemesis.
    pub process: Option<i64>,
    pub kind: EventType,
    pub f: u16,
    pub key: Option<ValRef>,
    pub value: &'a [u8],
}

/// Builds a history event by event: pairs each client invoke with the next
/// completion of the same process, checks the pairing, interns keys and
/// operation names, and stores values once (a completion value equal to the
/// invoke's is shared).
#[derive(Default)]
pub struct HistoryBuilder {
    h: History,
    pending: HashMap<i64, u32, FxBuild>,
    keys: HashMap<Vec<u8>, ValRef, FxBuild>,
    fns: HashMap<String, u16, FxBuild>,
    /// Whether every client event so far has a time.
    all_timed: bool,
    any_client: bool,
    /// The first completion earlier than its invoke: (line, invoke line,
    /// invoke time, completion time).
    time_error: Option<(usize, u32, i64, i64)>,
    /// Nemesis events' times and positions, for their ranks.
    nemesis_pos: Vec<u32>,
}

fn line32(line: usize) -> Result<u32, CheckError> {
    u32::try_from(line)
        .map_err(|_| CheckError::parse(line, "a history of at most 4294967295 lines"))
}

impl HistoryBuilder {
    /// Takes a Jepsen-style event with its values as [`Val`]s.
    pub fn push_event(&mut self, e: &Event, buf: &mut Vec<u8>) -> Result<(), CheckError> {
        if e.process == Process::Nemesis {
            self.push_nemesis(e.line, e.time, e.kind, &e.f, e.value.clone());
            return Ok(());
        }
        buf.clear();
        encoding::encode(&e.value, buf);
        let value_end = buf.len();
        if let Some(k) = &e.key {
            encoding::encode(k, buf);
        }
        let (value, key) = buf.split_at(value_end);
        let key = e.key.as_ref().map(|_| self.key_ref(key));
        let f = self.fn_id(&e.f).map_err(|m| CheckError::parse(e.line, m))?;
        self.push(RawEvent {
            line: e.line,
            time: e.time,
            process: e.process.client(),
            kind: e.kind,
            f,
            key,
            value,
        })
    }

    /// Takes a nemesis event.
    pub fn push_nemesis(
        &mut self,
        line: usize,
        time: Option<i64>,
        kind: EventType,
        f: &str,
        value: Val,
    ) {
        self.nemesis_pos
            .push(u32::try_from(self.h.events).unwrap_or(NO_POS));
        self.h.nemesis.push(NemesisEvent {
            rank: 0,
            time,
            kind,
            f: f.to_string(),
            value,
            line,
        });
        self.h.events += 1;
    }

    /// The id of an operation name.
    pub fn fn_id(&mut self, f: &str) -> Result<u16, &'static str> {
        if let Some(&i) = self.fns.get(f) {
            return Ok(i);
        }
        let i = u16::try_from(self.h.fns.len())
            .ok()
            .filter(|&i| i < u16::MAX)
            .ok_or("at most 65535 different operation names")?;
        self.h.fns.push(f.to_string());
        self.fns.insert(f.to_string(), i);
        Ok(i)
    }

    /// The one reference of an encoded key.
    pub fn key_ref(&mut self, key: &[u8]) -> ValRef {
        if let Some(&r) = self.keys.get(key) {
            return r;
        }
        let r = self.h.values.push(key);
        self.keys.insert(key.to_vec(), r);
        r
    }

    /// Takes a client (or nemesis) event.
    pub fn push(&mut self, e: RawEvent) -> Result<(), CheckError> {
        let Some(p) = e.process else {
            let f = self.h.fns[e.f as usize].clone();
            self.push_nemesis(e.line, e.time, e.kind, &f, encoding::decode(e.value));
            return Ok(());
        };
        let pos = u32::try_from(self.h.events)
            .map_err(|_| CheckError::parse(e.line, "a history of at most 4294967295 events"))?;
        self.h.events += 1;
        if !self.any_client {
            self.any_client = true;
            self.all_timed = true;
        }
        self.all_timed &= e.time.is_some();
        let line = line32(e.line)?;
        match e.kind {
            EventType::Invoke => {
                let id = self.h.ops.len() as u32;
                if let Some(prev) = self.pending.insert(p, id) {
                    return Err(CheckError::parse(
                        e.line,
                        format!(
                            "a completion (ok/fail/info) for process {p}'s operation invoked on line {} before its next invoke",
                            self.h.ops[prev as usize].invoke_line
                        ),
                    ));
                }
                let key = e.key.unwrap_or(ValRef::NONE);
                let input = self.h.values.push(e.value);
                self.h.ops.push(Op {
                    process: p,
                    key,
                    input,
                    output: ValRef::NIL,
                    invoke_time: e.time.unwrap_or(NO_TIME),
                    complete_time: NO_TIME,
                    invoke_pos: pos,
                    complete_pos: NO_POS,
                    invoke_line: line,
                    complete_line: 0,
                    f: e.f,
                    status: Status::Info,
                });
            }
            kind => {
                let Some(id) = self.pending.remove(&p) else {
                    return Err(CheckError::parse(
                        e.line,
                        format!(
                            "an invoke by process {p} before this {} completion",
                            kind.as_str()
                        ),
                    ));
                };
                let op = self.h.ops[id as usize];
                if op.f != e.f {
                    return Err(CheckError::parse(
                        e.line,
                        format!(
                            "f {:?} (as invoked on line {}), found {:?}",
                            self.h.fns[op.f as usize], op.invoke_line, self.h.fns[e.f as usize]
                        ),
                    ));
                }
                let mut key = op.key;
                if let Some(k) = e.key {
                    if op.key.is_none() {
                        key = k;
                    } else if op.key != k {
                        return Err(CheckError::parse(
                            e.line,
                            format!(
                                "key {} (as invoked on line {}), found {}",
                                encoding::decode(self.h.values.get(op.key)).short(),
                                op.invoke_line,
                                encoding::decode(self.h.values.get(k)).short()
                            ),
                        ));
                    }
                }
                if let (Some(t1), true) = (e.time, op.invoke_time != NO_TIME)
                    && t1 < op.invoke_time
                    && self.time_error.is_none()
                {
                    self.time_error = Some((e.line, op.invoke_line, op.invoke_time, t1));
                }
                let output = if self.h.values.get(op.input) == e.value {
                    op.input
                } else {
                    self.h.values.push(e.value)
                };
                let op = &mut self.h.ops[id as usize];
                op.key = key;
                op.output = output;
                op.complete_time = e.time.unwrap_or(NO_TIME);
                op.complete_pos = pos;
                op.complete_line = line;
                op.status = match kind {
                    EventType::Ok => Status::Ok,
                    EventType::Fail => Status::Fail,
                    _ => Status::Info,
                };
                if op.status == Status::Info {
                    op.complete_pos = NO_POS;
                }
            }
        }
        Ok(())
    }

    /// The history: real-time order from `time` when every client event has
    /// one, otherwise from the order of events.
    pub fn finish(mut self) -> Result<History, CheckError> {
        let timed = self.any_client && self.all_timed;
        if timed && let Some((line, invoke_line, t0, t1)) = self.time_error {
            return Err(CheckError::parse(
                line,
                format!(
                    "a time no earlier than the invoke's ({t0} on line {invoke_line}), found {t1}"
                ),
            ));
        }
        self.h.timed = timed;
        for (n, &pos) in self.h.nemesis.iter_mut().zip(&self.nemesis_pos) {
            n.rank = match (timed, n.time) {
                (true, t) => t.unwrap_or(0),
                (false, _) => i64::from(pos),
            };
        }
        self.h.ops.shrink_to_fit();
        Ok(self.h)
    }
}
