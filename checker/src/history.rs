//! Events as recorded, and operations built by pairing each invoke with its
//! completion. A history keeps its values encoded ([`crate::encoding`]) in a
//! byte arena and its operations in a compact array, so that tens of
//! millions of operations fit in memory and are freed at once.

use crate::encoding;
use crate::error::CheckError;
use crate::value::Val;

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

    /// A reference local to a segment being built: an index, or a position
    /// in the segment's values (see [`crate::pairing`]).
    pub(crate) fn local(i: u64) -> ValRef {
        ValRef(i)
    }

    pub(crate) fn local_index(self) -> usize {
        self.0 as usize
    }

    /// A position in a segment's values made a reference into the chunk
    /// the segment's values became (nil and none stay).
    pub(crate) fn in_chunk(self, chunk: u64) -> ValRef {
        if self == ValRef::NIL || self == ValRef::NONE {
            self
        } else {
            ValRef(chunk << 32 | self.0)
        }
    }
}

/// Values encoded one after another in chunks that never move, so a
/// reference stays valid and growing never copies. A chunk is either filled
/// by [`Values::push`] or taken whole (a segment's values, see
/// [`Values::push_chunk`]).
#[derive(Clone, Debug, Default)]
pub struct Values {
    chunks: Vec<Vec<u8>>,
    /// The chunk `push` appends to, if any.
    open: Option<usize>,
}

const CHUNK: usize = 8 << 20;

impl Values {
    /// Appends an encoded value to `chunk` in the layout of a chunk (its
    /// length, then its encoding); returns its position as a local
    /// reference, [`ValRef::NIL`] for nil (not stored).
    pub fn put(chunk: &mut Vec<u8>, encoded: &[u8]) -> ValRef {
        if encoding::is_nil(encoded) {
            return ValRef::NIL;
        }
        let at = chunk.len();
        encoding::put_varint(chunk, encoded.len() as u64);
        chunk.extend_from_slice(encoded);
        ValRef::local(at as u64)
    }

    /// Makes the encoding at `chunk[start..]` (the chunk's last bytes) a
    /// value in the layout of a chunk, inserting its length before it;
    /// returns its position as a local reference, [`ValRef::NIL`] for nil
    /// (then removed).
    pub fn seal_last(chunk: &mut Vec<u8>, start: usize) -> ValRef {
        let len = chunk.len() - start;
        if encoding::is_nil(&chunk[start..]) {
            chunk.truncate(start);
            return ValRef::NIL;
        }
        if len < 0x80 {
            chunk.insert(start, len as u8);
        } else {
            let mut prefix = Vec::with_capacity(10);
            encoding::put_varint(&mut prefix, len as u64);
            chunk.splice(start..start, prefix);
        }
        ValRef::local(start as u64)
    }

    /// Stores an encoded value (nil is not stored).
    pub fn push(&mut self, encoded: &[u8]) -> ValRef {
        if encoding::is_nil(encoded) {
            return ValRef::NIL;
        }
        let need = encoded.len() + 5;
        let ci = match self.open {
            Some(ci) if self.chunks[ci].capacity() - self.chunks[ci].len() >= need => ci,
            _ => {
                self.chunks.push(Vec::with_capacity(need.max(CHUNK)));
                self.open = Some(self.chunks.len() - 1);
                self.chunks.len() - 1
            }
        };
        Values::put(&mut self.chunks[ci], encoded).in_chunk(ci as u64)
    }

    /// Takes a chunk of values written by [`Values::put`] or
    /// [`Values::seal_last`]; its local references become references by
    /// [`ValRef::in_chunk`] with the number returned.
    pub fn push_chunk(&mut self, chunk: Vec<u8>) -> u64 {
        self.chunks.push(chunk);
        (self.chunks.len() - 1) as u64
    }

    /// The encoding of a stored value (nil's for [`ValRef::NIL`] and
    /// [`ValRef::NONE`]).
    pub fn get(&self, r: ValRef) -> &[u8] {
        if r == ValRef::NIL || r == ValRef::NONE {
            return encoding::NIL_BYTES;
        }
        Values::stored(&self.chunks[(r.0 >> 32) as usize], r.0 & 0xffff_ffff)
    }

    /// The encoding of a value at a local reference into `chunk` (see
    /// [`Values::put`]), nil's for [`ValRef::NIL`].
    pub fn get_local(chunk: &[u8], r: ValRef) -> &[u8] {
        if r == ValRef::NIL || r == ValRef::NONE {
            return encoding::NIL_BYTES;
        }
        Values::stored(chunk, r.0)
    }

    /// The value stored at `at` in `chunk`: its length, then its encoding.
    fn stored(chunk: &[u8], at: u64) -> &[u8] {
        let mut at = at as usize;
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
    /// Pairs invokes with completions (see [`crate::pairing`]).
    pub fn from_events(events: Vec<Event>) -> Result<History, CheckError> {
        let mut b = crate::pairing::Events::default();
        for e in &events {
            b.push(e)?;
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
