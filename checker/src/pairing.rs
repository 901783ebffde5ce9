//! Pairing each client invoke with the next completion of the same process,
//! a segment of consecutive lines at a time. A [`Segment`] pairs the events
//! it holds among themselves, so the segments of one file can be built on
//! several threads; [`HistoryBuilder`] joins them in file order, where the
//! events a segment could not pair (a process's first completion, whose
//! invoke came before the segment) meet the ops still pending.
//!
//! Errors are reported in file order: the first line at fault wins, whether
//! a segment found it or the join did.

use crate::encoding;
use crate::error::CheckError;
use crate::history::{
    EventType, History, NO_POS, NO_TIME, NemesisEvent, Op, Status, ValRef, Values,
};
use crate::search::{FxBuild, FxHasher};
use crate::value::Val;
use hashbrown::HashTable;
use std::collections::HashMap;
use std::hash::Hasher;

/// Distinct byte strings (operation names, encoded keys), numbered in order
/// of first appearance: a segment's names are few, so the join looks each
/// up once per segment, not once per event.
#[derive(Default)]
pub struct Names {
    arena: Vec<u8>,
    ends: Vec<usize>,
    index: HashTable<Entry>,
}

/// A name in the index: its [`Digest`] and number.
#[derive(Clone, Copy)]
struct Entry {
    digest: Digest,
    id: u32,
}

/// Two words and the length of a byte string: the string itself when it
/// is at most 16 bytes long (so equal digests mean equal strings, without
/// looking at the bytes), else a hash of it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digest {
    lo: u64,
    hi: u64,
    len: usize,
}

impl Digest {
    fn of(b: &[u8]) -> Digest {
        // Overlapping loads of the first and last bytes: together they hold
        // every byte of a string of up to 16 (no copy into a buffer, which
        // would stall the loads).
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let half = |at: usize| {
            u64::from(u32::from_le_bytes(
                b[at..at + 4].try_into().expect("4 bytes"),
            ))
        };
        let (lo, hi) = match b.len() {
            17.. => {
                let mut h = FxHasher::default();
                h.write(b);
                (h.finish(), 0)
            }
            8.. => (word(0), word(b.len() - 8)),
            4.. => (half(0), half(b.len() - 4)),
            0 => (0, 0),
            n => (
                u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
                0,
            ),
        };
        Digest {
            lo,
            hi,
            len: b.len(),
        }
    }

    /// Whether the digest is the string itself.
    fn exact(&self) -> bool {
        self.len <= 16
    }

    /// The table hash: both words in, then a full mix (hashbrown takes the
    /// bucket from the low bits and a tag from the high ones).
    fn hash(&self) -> u64 {
        let mut x = self.lo.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ self.hi.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ self.len as u64;
        x ^= x >> 32;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 29)
    }
}

impl Names {
    pub fn get(&self, i: usize) -> &[u8] {
        &self.arena[if i == 0 { 0 } else { self.ends[i - 1] }..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The number of `b`, numbering it if new.
    pub fn id(&mut self, b: &[u8]) -> u32 {
        let d = Digest::of(b);
        let h = d.hash();
        let found = self.index.find(h, |e| {
            e.digest == d && (d.exact() || self.get(e.id as usize) == b)
        });
        if let Some(e) = found {
            return e.id;
        }
        let id = self.ends.len() as u32;
        self.index
            .insert_unique(h, Entry { digest: d, id }, |e| e.digest.hash());
        self.arena.extend_from_slice(b);
        self.ends.push(self.arena.len());
        id
    }

    /// Forgets every name, keeping the memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.ends.clear();
        self.index.clear();
    }
}

/// Where each process stands within a segment: not seen yet, idle (its
/// last op completed), or with one of the segment's ops pending. Kept
/// between segments (built one after another on a thread) for its memory.
#[derive(Default)]
pub struct Procs {
    /// For processes 0..DENSE: 0 not seen, 1 idle, i + 2 op i pending.
    dense: Vec<u32>,
    sparse: HashMap<i64, u32, FxBuild>,
    /// Processes seen, in order of first appearance.
    touched: Vec<i64>,
}

/// Process ids below this are looked up in an array (Jepsen numbers its
/// clients from 0 and gives a client a new id after each crash).
const DENSE: i64 = 1 << 22;
const NOT_SEEN: u32 = 0;
const IDLE: u32 = 1;

impl Procs {
    fn get(&self, p: i64) -> u32 {
        if (0..DENSE).contains(&p) {
            self.dense.get(p as usize).copied().unwrap_or(NOT_SEEN)
        } else {
            self.sparse.get(&p).copied().unwrap_or(NOT_SEEN)
        }
    }

    fn set(&mut self, p: i64, state: u32, was: u32) {
        if was == NOT_SEEN {
            self.touched.push(p);
        }
        if (0..DENSE).contains(&p) {
            let i = p as usize;
            if i >= self.dense.len() {
                let len = (i + 1).max(self.dense.len() * 2).min(DENSE as usize);
                self.dense.resize(len, NOT_SEEN);
            }
            self.dense[i] = state;
        } else {
            self.sparse.insert(p, state);
        }
    }

    /// Each process seen with the segment op it leaves pending (or
    /// [`NO_POS`]), forgetting them all.
    fn drain_tails(&mut self, tails: &mut Vec<(i64, u32)>) {
        for &p in &self.touched {
            let s = if (0..DENSE).contains(&p) {
                std::mem::replace(&mut self.dense[p as usize], NOT_SEEN)
            } else {
                self.sparse.remove(&p).unwrap_or(NOT_SEEN)
            };
            tails.push((p, if s >= 2 { s - 2 } else { NO_POS }));
        }
        self.touched.clear();
    }
}

/// A client event as a segment takes it: its name, key and value already
/// stored with the segment.
#[derive(Clone, Copy, Debug)]
pub struct SegEvent {
    /// Line within the segment, from 1.
    pub line: u32,
    pub time: Option<i64>,
    pub process: i64,
    pub kind: EventType,
    /// Index into the segment's names.
    pub f: u32,
    /// Index into the segment's keys.
    pub key: Option<u32>,
    /// Where the value is in the segment's values ([`ValRef::NIL`] for nil).
    pub value: ValRef,
}

/// What is wrong at a line. The lines it names are the segment's until
/// the segment is joined.
#[derive(Debug)]
pub enum Problem {
    Text(String),
    DoubleInvoke {
        process: i64,
        invoke_line: u32,
    },
    Unpaired {
        process: i64,
        kind: EventType,
    },
    OtherF {
        invoked: String,
        invoke_line: u32,
        found: String,
    },
    OtherKey {
        invoked: String,
        invoke_line: u32,
        found: String,
    },
}

impl Problem {
    /// What was expected, with the lines it names given by `line`.
    pub fn expected(self, line: impl Fn(u32) -> usize) -> String {
        match self {
            Problem::Text(s) => s,
            Problem::DoubleInvoke {
                process,
                invoke_line,
            } => format!(
                "a completion (ok/fail/info) for process {process}'s operation invoked on line {} before its next invoke",
                line(invoke_line)
            ),
            Problem::Unpaired { process, kind } => format!(
                "an invoke by process {process} before this {} completion",
                kind.as_str()
            ),
            Problem::OtherF {
                invoked,
                invoke_line,
                found,
            } => format!(
                "f {invoked:?} (as invoked on line {}), found {found:?}",
                line(invoke_line)
            ),
            Problem::OtherKey {
                invoked,
                invoke_line,
                found,
            } => format!(
                "key {invoked} (as invoked on line {}), found {found}",
                line(invoke_line)
            ),
        }
    }
}

/// An event a segment refused; the segment keeps the error (see
/// [`Segment::take_error`]).
#[derive(Debug)]
pub struct Refused;

/// A completion earlier than its invoke: (line, invoke line, invoke time,
/// completion time).
type TimeError = (u32, u32, i64, i64);

/// A process's first event in a segment, when it needs the ops before the
/// segment: an invoke (no op of the process may still be pending) or a
/// completion (of the op pending).
#[derive(Clone, Copy, Debug)]
struct Head {
    pos: u32,
    event: SegEvent,
}

/// Why a completion does not fit the op it completes.
enum Misfit {
    F,
    Key,
}

/// Completes `op` with `c` (names, keys and values in the same tables as
/// `op`'s) at event position `pos`; notes a completion earlier than its
/// invoke in `time_error` unless one is noted.
fn complete(
    op: &mut Op,
    c: &SegEvent,
    f: u16,
    key: Option<ValRef>,
    pos: u32,
    time_error: &mut Option<TimeError>,
) -> Result<(), Misfit> {
    if op.f != f {
        return Err(Misfit::F);
    }
    if let Some(k) = key {
        if op.key.is_none() {
            op.key = k;
        } else if op.key != k {
            return Err(Misfit::Key);
        }
    }
    if let (Some(t1), true) = (c.time, op.invoke_time != NO_TIME)
        && t1 < op.invoke_time
        && time_error.is_none()
    {
        *time_error = Some((c.line, op.invoke_line, op.invoke_time, t1));
    }
    op.output = c.value;
    op.complete_time = c.time.unwrap_or(NO_TIME);
    op.complete_line = c.line;
    op.status = match c.kind {
        EventType::Ok => Status::Ok,
        EventType::Fail => Status::Fail,
        _ => Status::Info,
    };
    op.complete_pos = if op.status == Status::Info {
        NO_POS
    } else {
        pos
    };
    Ok(())
}

/// The events of consecutive lines, paired among themselves. Names, keys
/// and values are kept by the caller (see [`HistoryBuilder::join`]); ops
/// refer to them by index and position, and to lines and events by their
/// number within the segment.
pub struct Segment {
    /// Ops invoked in the segment, in invoke order.
    ops: Vec<Op>,
    heads: Vec<Head>,
    /// Each process seen and the op it leaves pending ([`NO_POS`]: none).
    tails: Vec<(i64, u32)>,
    nemesis: Vec<(u32, NemesisEvent)>,
    /// Events (client and nemesis).
    events: u32,
    /// The line of the last event.
    last_line: u32,
    any_client: bool,
    /// Whether every client event has a time.
    all_timed: bool,
    time_error: Option<TimeError>,
    /// The first error: events after it are not taken.
    error: Option<(u32, Problem)>,
    /// Whether the segment starts the history: a completion without an
    /// invoke before it in the segment is an error at once.
    starts_history: bool,
}

impl Default for Segment {
    fn default() -> Self {
        Segment::new(false)
    }
}

impl Segment {
    pub fn new(starts_history: bool) -> Segment {
        Segment {
            ops: Vec::new(),
            heads: Vec::new(),
            tails: Vec::new(),
            nemesis: Vec::new(),
            events: 0,
            last_line: 0,
            any_client: false,
            all_timed: true,
            time_error: None,
            error: None,
            starts_history,
        }
    }

    /// Empties the segment, keeping its memory.
    pub fn reset(&mut self, starts_history: bool) {
        self.ops.clear();
        self.heads.clear();
        self.tails.clear();
        self.nemesis.clear();
        self.events = 0;
        self.last_line = 0;
        self.any_client = false;
        self.all_timed = true;
        self.time_error = None;
        self.error = None;
        self.starts_history = starts_history;
    }

    /// Makes room for `ops` ops.
    pub fn reserve(&mut self, ops: usize) {
        self.ops.reserve(ops);
    }

    /// Records an error at `line`; no event is taken after it.
    pub fn fail(&mut self, line: u32, problem: Problem) {
        if self.error.is_none() {
            self.error = Some((line, problem));
        }
    }

    /// The segment's error, if any: (line within the segment, what).
    pub fn error(&self) -> Option<&(u32, Problem)> {
        self.error.as_ref()
    }

    /// Takes the segment's error, its line made absolute by `line`.
    pub fn take_error(&mut self, line: impl Fn(u32) -> usize) -> Option<CheckError> {
        self.error
            .take()
            .map(|(l, p)| CheckError::parse(line(l), p.expected(&line)))
    }

    fn next_pos(&mut self, line: u32) -> Result<u32, Refused> {
        let pos = self.events;
        self.last_line = line;
        match pos.checked_add(1) {
            Some(n) => self.events = n,
            None => {
                self.fail(
                    line,
                    Problem::Text("a history of at most 4294967295 events".into()),
                );
                return Err(Refused);
            }
        }
        Ok(pos)
    }

    /// Takes a nemesis event.
    pub fn push_nemesis(
        &mut self,
        line: u32,
        time: Option<i64>,
        kind: EventType,
        f: &str,
        value: Val,
    ) -> Result<(), Refused> {
        let pos = self.next_pos(line)?;
        self.nemesis.push((
            pos,
            NemesisEvent {
                rank: 0,
                time,
                kind,
                f: f.to_string(),
                value,
                line: line as usize,
            },
        ));
        Ok(())
    }

    /// The value `process`'s op pending in the segment was invoked with,
    /// if the segment holds one and that value is `encoded` (a completion
    /// that repeats it shares it).
    pub fn pending_input(
        &self,
        procs: &Procs,
        process: i64,
        values: &[u8],
        encoded: &[u8],
    ) -> Option<ValRef> {
        let state = procs.get(process);
        let input = self.ops.get(state.checked_sub(2)? as usize)?.input;
        (Values::get_local(values, input) == encoded).then_some(input)
    }

    /// Takes a client event; `Err` (the error kept in the segment) if it
    /// does not pair. `fns` and `keys` name the event's and earlier ops'
    /// names and keys, for errors.
    pub fn push(
        &mut self,
        procs: &mut Procs,
        e: SegEvent,
        fns: &Names,
        keys: &Names,
    ) -> Result<(), Refused> {
        let pos = self.next_pos(e.line)?;
        self.any_client = true;
        self.all_timed &= e.time.is_some();
        let f = match u16::try_from(e.f) {
            Ok(f) if f < u16::MAX => f,
            _ => {
                self.fail(e.line, Problem::Text(TOO_MANY_NAMES.into()));
                return Err(Refused);
            }
        };
        let state = procs.get(e.process);
        let key = e.key.map(|k| ValRef::local(u64::from(k)));
        if e.kind == EventType::Invoke {
            if state >= 2 {
                let invoke_line = self.ops[(state - 2) as usize].invoke_line;
                self.fail(
                    e.line,
                    Problem::DoubleInvoke {
                        process: e.process,
                        invoke_line,
                    },
                );
                return Err(Refused);
            }
            if state == NOT_SEEN && !self.starts_history {
                self.heads.push(Head { pos, event: e });
            }
            let id = self.ops.len() as u32;
            self.ops.push(Op {
                process: e.process,
                key: key.unwrap_or(ValRef::NONE),
                input: e.value,
                output: ValRef::NIL,
                invoke_time: e.time.unwrap_or(NO_TIME),
                complete_time: NO_TIME,
                invoke_pos: pos,
                complete_pos: NO_POS,
                invoke_line: e.line,
                complete_line: 0,
                f,
                status: Status::Info,
            });
            procs.set(e.process, id + 2, state);
            return Ok(());
        }
        if state >= 2 {
            let op = &mut self.ops[(state - 2) as usize];
            if let Err(misfit) = complete(op, &e, f, key, pos, &mut self.time_error) {
                let op = *op;
                let problem = match misfit {
                    Misfit::F => Problem::OtherF {
                        invoked: name(fns, op.f.into()),
                        invoke_line: op.invoke_line,
                        found: name(fns, f.into()),
                    },
                    Misfit::Key => Problem::OtherKey {
                        invoked: key_text(keys.get(op.key.local_index())),
                        invoke_line: op.invoke_line,
                        found: key_text(keys.get(e.key.unwrap_or_default() as usize)),
                    },
                };
                self.fail(e.line, problem);
                return Err(Refused);
            }
        } else if state == IDLE || self.starts_history {
            self.fail(
                e.line,
                Problem::Unpaired {
                    process: e.process,
                    kind: e.kind,
                },
            );
            return Err(Refused);
        } else {
            self.heads.push(Head { pos, event: e });
        }
        procs.set(e.process, IDLE, state);
        Ok(())
    }

    /// Ends the segment: notes which op each process leaves pending, and
    /// readies `procs` for the next segment.
    pub fn seal(&mut self, procs: &mut Procs) {
        procs.drain_tails(&mut self.tails);
    }
}

const TOO_MANY_NAMES: &str = "at most 65535 different operation names";

fn name(fns: &Names, f: usize) -> String {
    String::from_utf8_lossy(fns.get(f)).into_owned()
}

fn key_text(encoded: &[u8]) -> String {
    encoding::decode(encoded).short()
}

/// Builds a history from segments joined in file order: pairs each
/// segment's leftover completions with the ops pending before it, checks
/// that no process invokes while an op of it is pending, interns keys and
/// operation names, and keeps each segment's values as one chunk.
#[derive(Default)]
pub struct HistoryBuilder {
    h: History,
    pending: HashMap<i64, u32, FxBuild>,
    keys: HashMap<Vec<u8>, ValRef, FxBuild>,
    fns: HashMap<String, u16, FxBuild>,
    /// Whether every client event so far has a time.
    all_timed: bool,
    any_client: bool,
    time_error: Option<(usize, u32, i64, i64)>,
    /// Nemesis events' positions, for their ranks.
    nemesis_pos: Vec<u32>,
}

/// What the lines and events of a segment are in the whole history.
struct Offsets {
    /// The segment's line 1.
    first_line: usize,
    /// Events before the segment.
    events: u64,
}

impl Offsets {
    fn line(&self, l: u32) -> usize {
        self.first_line - 1 + l as usize
    }
}

impl HistoryBuilder {
    /// The id of an operation name.
    fn fn_id(&mut self, f: &str) -> Result<u16, &'static str> {
        if let Some(&i) = self.fns.get(f) {
            return Ok(i);
        }
        let i = u16::try_from(self.h.fns.len())
            .ok()
            .filter(|&i| i < u16::MAX)
            .ok_or(TOO_MANY_NAMES)?;
        self.h.fns.push(f.to_string());
        self.fns.insert(f.to_string(), i);
        Ok(i)
    }

    /// The one reference of an encoded key.
    fn key_ref(&mut self, key: &[u8]) -> ValRef {
        if let Some(&r) = self.keys.get(key) {
            return r;
        }
        let r = self.h.values.push(key);
        self.keys.insert(key.to_vec(), r);
        r
    }

    /// Joins the next segment, whose line 1 is line `first_line` of the
    /// file, with its names, keys and values (`values` becomes part of the
    /// history). The first error in file order is returned: the segment's
    /// own, or one of its leftover events' before it.
    pub fn join(
        &mut self,
        seg: &mut Segment,
        first_line: usize,
        fns: &Names,
        keys: &Names,
        values: Vec<u8>,
    ) -> Result<(), CheckError> {
        let at = Offsets {
            first_line,
            events: self.h.events as u64,
        };
        let fn_ids: Vec<u16> = (0..fns.len())
            .map(|i| self.fn_id(&String::from_utf8_lossy(fns.get(i))))
            .collect::<Result<_, _>>()
            .map_err(|e| CheckError::parse(first_line, e))?;
        let key_refs: Vec<ValRef> = (0..keys.len()).map(|i| self.key_ref(keys.get(i))).collect();
        let chunk = self.h.values.push_chunk(values);
        let value = |v: ValRef| v.in_chunk(chunk);
        let key = |k: ValRef| {
            if k.is_none() {
                k
            } else {
                key_refs[k.local_index()]
            }
        };
        let global_pos = |pos: u32| u32::try_from(at.events + u64::from(pos)).ok();
        let stop = seg.error.as_ref().map_or(u32::MAX, |(line, _)| *line);
        let mut time_error = None;
        for head in &seg.heads {
            let e = head.event;
            if e.line >= stop {
                break;
            }
            let line = at.line(e.line);
            let problem = if e.kind == EventType::Invoke {
                self.pending
                    .get(&e.process)
                    .map(|&prev| Problem::DoubleInvoke {
                        process: e.process,
                        invoke_line: self.h.ops[prev as usize].invoke_line,
                    })
            } else {
                match self.pending.remove(&e.process) {
                    None => Some(Problem::Unpaired {
                        process: e.process,
                        kind: e.kind,
                    }),
                    Some(id) => {
                        let pos = global_pos(head.pos).ok_or_else(|| too_many_events(line))?;
                        let line32 = line32(line)?;
                        let c = SegEvent {
                            line: line32,
                            value: value(e.value),
                            ..e
                        };
                        let f = fn_ids[e.f as usize];
                        let k = e.key.map(|k| key_refs[k as usize]);
                        let op = &mut self.h.ops[id as usize];
                        match complete(op, &c, f, k, pos, &mut time_error) {
                            Ok(()) => None,
                            Err(Misfit::F) => Some(Problem::OtherF {
                                invoked: self.h.fns[op.f as usize].clone(),
                                invoke_line: op.invoke_line,
                                found: self.h.fns[f as usize].clone(),
                            }),
                            Err(Misfit::Key) => Some(Problem::OtherKey {
                                invoked: key_text(self.h.values.get(op.key)),
                                invoke_line: op.invoke_line,
                                found: key_text(self.h.values.get(k.unwrap_or(ValRef::NONE))),
                            }),
                        }
                    }
                }
            };
            if let Some(p) = problem {
                return Err(CheckError::parse(line, p.expected(|l| l as usize)));
            }
        }
        if let Some(e) = seg.take_error(|l| at.line(l)) {
            return Err(e);
        }
        // Every line and position of the segment must fit its u32 field.
        if seg.events > 0 {
            line32(at.line(seg.last_line))?;
            global_pos(seg.events - 1).ok_or_else(|| too_many_events(first_line))?;
        }

        let op_base = self.h.ops.len();
        let line_base = (first_line - 1) as u32;
        let pos_base = at.events as u32;
        self.h.ops.reserve(seg.ops.len());
        self.h.ops.extend(seg.ops.drain(..).map(|mut op| {
            op.key = key(op.key);
            op.f = fn_ids[op.f as usize];
            op.input = value(op.input);
            op.output = value(op.output);
            op.invoke_pos += pos_base;
            op.invoke_line += line_base;
            if op.complete_pos != NO_POS {
                op.complete_pos += pos_base;
            }
            if op.complete_line != 0 {
                op.complete_line += line_base;
            }
            op
        }));
        for (p, tail) in seg.tails.drain(..) {
            if tail == NO_POS {
                self.pending.remove(&p);
            } else {
                self.pending.insert(p, (op_base + tail as usize) as u32);
            }
        }
        for (pos, mut n) in seg.nemesis.drain(..) {
            n.line = at.line(n.line as u32);
            self.nemesis_pos.push(pos + pos_base);
            self.h.nemesis.push(n);
        }
        // The segment's first completion earlier than its invoke: a
        // leftover one (lines already the file's), or one paired within.
        let local = seg
            .time_error
            .map(|(line, invoke_line, t0, t1)| (line + line_base, invoke_line + line_base, t0, t1));
        let first = match (time_error, local) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        if self.time_error.is_none() {
            self.time_error =
                first.map(|(line, invoke_line, t0, t1)| (line as usize, invoke_line, t0, t1));
        }
        if seg.any_client {
            self.all_timed = if self.any_client {
                self.all_timed && seg.all_timed
            } else {
                seg.all_timed
            };
            self.any_client = true;
        }
        self.h.events += seg.events as usize;
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

fn line32(line: usize) -> Result<u32, CheckError> {
    u32::try_from(line)
        .map_err(|_| CheckError::parse(line, "a history of at most 4294967295 lines"))
}

fn too_many_events(line: usize) -> CheckError {
    CheckError::parse(line, "a history of at most 4294967295 events")
}

/// A segment with the names, keys and values its events refer to: the
/// whole history when events come one by one.
pub struct Events {
    seg: Segment,
    procs: Procs,
    fns: Names,
    keys: Names,
    values: Vec<u8>,
    scratch: Vec<u8>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            seg: Segment::new(true),
            procs: Procs::default(),
            fns: Names::default(),
            keys: Names::default(),
            values: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Events {
    /// Takes an event with its values as [`Val`]s.
    pub fn push(&mut self, e: &crate::history::Event) -> Result<(), CheckError> {
        let line = line32(e.line)?;
        let taken = match e.process.client() {
            None => self
                .seg
                .push_nemesis(line, e.time, e.kind, &e.f, e.value.clone()),
            Some(process) => {
                self.scratch.clear();
                encoding::encode(&e.value, &mut self.scratch);
                let value = match e.kind {
                    EventType::Invoke => None,
                    _ => self
                        .seg
                        .pending_input(&self.procs, process, &self.values, &self.scratch),
                }
                .unwrap_or_else(|| Values::put(&mut self.values, &self.scratch));
                let key = e.key.as_ref().map(|k| {
                    self.scratch.clear();
                    encoding::encode(k, &mut self.scratch);
                    self.keys.id(&self.scratch)
                });
                let f = self.fns.id(e.f.as_bytes());
                self.seg.push(
                    &mut self.procs,
                    SegEvent {
                        line,
                        time: e.time,
                        process,
                        kind: e.kind,
                        f,
                        key,
                        value,
                    },
                    &self.fns,
                    &self.keys,
                )
            }
        };
        match taken {
            Ok(()) => Ok(()),
            Err(Refused) => Err(self
                .seg
                .take_error(|l| l as usize)
                .expect("a refused event leaves an error")),
        }
    }

    /// The history of the events taken.
    pub fn finish(mut self) -> Result<History, CheckError> {
        self.seg.seal(&mut self.procs);
        let mut b = HistoryBuilder::default();
        b.join(&mut self.seg, 1, &self.fns, &self.keys, self.values)?;
        b.finish()
    }
}
