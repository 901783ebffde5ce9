//! Our JSON Lines format (see HISTORY.md), read as a stream: blocks of lines
//! are parsed on all cores while the next block is read, and their events
//! are paired into the history in file order. Memory stays proportional to
//! the history's operations, not to the file.
//!
//! Lines in the common shape (string keys and values without escapes,
//! integers, nested lists and objects of those) take a fast path that
//! encodes values straight into bytes; any other line, valid or not, goes
//! through serde_json, which also words the errors.

use crate::encoding;
use crate::error::CheckError;
use crate::history::{
    EventType, History, HistoryBuilder, Process, RawEvent as BuilderEvent, ValRef,
};
use crate::search::FxHasher;
use crate::value::Val;
use hashbrown::HashTable;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The newest format version this reader understands.
pub const VERSION: u64 = 1;

/// Bytes read and parsed at a time.
pub const BLOCK: usize = 8 << 20;

#[derive(Deserialize)]
struct SerdeEvent<'a> {
    time: Option<i64>,
    process: Option<Val>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Option<Cow<'a, str>>,
    key: Option<Val>,
    value: Option<Val>,
    /// Present only on the optional header line.
    format: Option<Cow<'a, str>>,
    version: Option<u64>,
}

const SHAPE: &str = "a JSON object like {\"index\":0,\"time\":1532000,\"process\":3,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k7\",\"value\":\"v12\"}";

/// One event of a batch: its value is a range of the batch's bytes; its
/// name and key are indexes into the batch's own tables.
#[derive(Clone, Copy, Debug)]
struct Ev {
    /// Line within the block (0-based).
    line: u32,
    time: Option<i64>,
    process: Option<i64>,
    kind: EventType,
    f: u32,
    key: Option<u32>,
    value: (u32, u32),
}

/// Distinct byte strings of a batch (operation names, encoded keys): few,
/// so the merge looks each up once per batch, not once per event.
#[derive(Default)]
struct Table {
    arena: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    index: HashTable<u32>,
}

/// A hash of a short byte string (names and keys are a few bytes).
fn hash_bytes(b: &[u8]) -> u64 {
    if b.len() > 16 {
        let mut h = FxHasher::default();
        h.write(b);
        return h.finish();
    }
    // Overlapping loads of the first and last bytes (no copy into a buffer,
    // which would stall the loads).
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let (lo, hi) = match b.len() {
        8.. => (word(0), word(b.len() - 8)),
        4.. => (half(0), half(b.len() - 4)),
        0 => (0, 0),
        n => (
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
            0,
        ),
    };
    // Two words in, then a full mix: hashbrown takes the bucket from the low
    // bits and a tag from the high ones.
    let mut x = lo.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ hi.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ b.len() as u64;
    x ^= x >> 32;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 29)
}

impl Table {
    fn get(&self, i: usize) -> &[u8] {
        &self.arena[if i == 0 { 0 } else { self.ends[i - 1] }..self.ends[i]]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn id(&mut self, b: &[u8]) -> u32 {
        let h = hash_bytes(b);
        let found = self.index.find(h, |&i| {
            self.hashes[i as usize] == h && self.get(i as usize) == b
        });
        if let Some(&i) = found {
            return i;
        }
        let i = self.ends.len() as u32;
        let hashes = &self.hashes;
        self.index.insert_unique(h, i, |&j| hashes[j as usize]);
        self.hashes.push(h);
        self.arena.extend_from_slice(b);
        self.ends.push(self.arena.len());
        i
    }
}

/// The events of one block of lines.
#[derive(Default)]
struct Batch {
    events: Vec<Ev>,
    bytes: Vec<u8>,
    fns: Table,
    keys: Table,
    /// Lines in the block.
    lines: usize,
    scratch: Vec<u8>,
}

impl Batch {
    fn range(&self, r: (u32, u32)) -> &[u8] {
        &self.bytes[r.0 as usize..r.1 as usize]
    }
}

/// A line-relative parse error: (line within the block, what was expected).
type LineError = (usize, String);

fn line_error(e: CheckError) -> LineError {
    match e {
        CheckError::Parse { line, expected, .. } => (line, expected),
        other => (0, other.to_string()),
    }
}

/// Parses one block of whole lines whose first line is line
/// `block_first_line` of the file (1-based; only line 1 may be a header).
fn parse_block(block: &[u8], block_first_line: usize) -> Result<Batch, LineError> {
    let mut batch = Batch {
        events: Vec::with_capacity(block.len() / 90),
        bytes: Vec::with_capacity(block.len() / 8),
        ..Batch::default()
    };
    let mut rel = 0usize;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len()));
    for end in ends {
        let raw = &block[start..end];
        start = end + 1;
        let line_no = rel;
        rel += 1;
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let mark = (batch.events.len(), batch.bytes.len());
        if fast::template(trimmed, line_no as u32, &mut batch).is_some() {
            continue;
        }
        batch.events.truncate(mark.0);
        batch.bytes.truncate(mark.1);
        if fast::line(trimmed, line_no as u32, &mut batch).is_some() {
            continue;
        }
        batch.events.truncate(mark.0);
        batch.bytes.truncate(mark.1);
        // The slow path: serde_json, for unusual lines and for errors.
        let text = std::str::from_utf8(trimmed).map_err(|e| {
            (
                line_no,
                format!(
                    "UTF-8 text, found a byte that is not UTF-8 (column {})",
                    e.valid_up_to() + 1 + (raw.len() - raw.trim_ascii_start().len())
                ),
            )
        })?;
        let lineno = block_first_line + line_no;
        match slow_line(text, lineno).map_err(|e| (line_no, line_error(e).1))? {
            None => {}
            Some(e) => {
                let f = batch.fns.id(e.f.as_bytes());
                let key = e
                    .key
                    .as_ref()
                    .map(|k| batch.keys.id(&encoding::to_bytes(k)));
                let start = batch.bytes.len() as u32;
                encoding::encode(&e.value, &mut batch.bytes);
                let value = (start, batch.bytes.len() as u32);
                batch.events.push(Ev {
                    line: line_no as u32,
                    time: e.time,
                    process: e.process.client(),
                    kind: e.kind,
                    f,
                    key,
                    value,
                });
            }
        }
    }
    // One piece more than there are newlines; a last line without one
    // counts too.
    batch.lines = rel - usize::from(block.last().is_none_or(|&b| b == b'\n'));
    Ok(batch)
}

/// An event as serde reads it.
struct SlowEvent {
    time: Option<i64>,
    process: Process,
    kind: EventType,
    f: String,
    key: Option<Val>,
    value: Val,
}

/// Parses one line with serde_json; `None` for the header.
fn slow_line(trimmed: &str, lineno: usize) -> Result<Option<SlowEvent>, CheckError> {
    if trimmed.starts_with('[') {
        return Err(super::json_array_error(lineno));
    }
    let raw: SerdeEvent = serde_json::from_str(trimmed).map_err(|e| {
        CheckError::parse(
            lineno,
            format!("{SHAPE}; {}", strip_position(&e.to_string())),
        )
    })?;
    if let Some(fmt) = &raw.format {
        if lineno == 1 && fmt == "raftkv-history" {
            return match raw.version {
                Some(v) if v <= VERSION => Ok(None),
                other => Err(CheckError::parse(
                    lineno,
                    format!(
                        "format version 1..={VERSION} in the header, found {}",
                        other.map_or("none".to_string(), |v| v.to_string())
                    ),
                )),
            };
        }
        return Err(CheckError::parse(
            lineno,
            "an event; a {\"format\":\"raftkv-history\",\"version\":1} header is allowed only on the first line",
        ));
    }
    let process = match raw.process {
        Some(Val::Int(p)) => Process::Client(p),
        Some(Val::Str(s)) if s == "nemesis" => Process::Nemesis,
        Some(other) => {
            return Err(CheckError::parse(
                lineno,
                format!(
                    "\"process\" to be an integer or \"nemesis\", found {}",
                    crate::value::shorten(&other.to_json())
                ),
            ));
        }
        None => {
            return Err(CheckError::parse(
                lineno,
                "a \"process\" field (an integer or \"nemesis\")",
            ));
        }
    };
    let kind = match raw.kind.as_deref() {
        Some(k) => EventType::parse(k).ok_or_else(|| {
            CheckError::parse(
                lineno,
                format!(
                    "\"type\" to be one of invoke, ok, fail, info; found {}",
                    crate::value::quote_short(k)
                ),
            )
        })?,
        None => {
            return Err(CheckError::parse(
                lineno,
                "a \"type\" field (invoke, ok, fail or info)",
            ));
        }
    };
    let f = match raw.f {
        Some(f) => f.into_owned(),
        None if process == Process::Nemesis => String::new(),
        None => {
            return Err(CheckError::parse(
                lineno,
                "an \"f\" field naming the operation (e.g. \"set\", \"get\", \"cas\")",
            ));
        }
    };
    let key = match raw.key {
        None | Some(Val::Nil) => None,
        Some(k @ (Val::Str(_) | Val::Int(_))) => Some(k),
        Some(other) => {
            return Err(CheckError::parse(
                lineno,
                format!("\"key\" to be a string, found {}", other.short()),
            ));
        }
    };
    Ok(Some(SlowEvent {
        time: raw.time,
        process,
        kind,
        f,
        key,
        value: raw.value.unwrap_or(Val::Nil),
    }))
}

/// serde_json appends "at line 1 column N"; the line is always 1 here.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line 1 column ") {
        Some(i) => format!("{} (column {})", &msg[..i], &msg[i + 18..]),
        None => msg.to_string(),
    }
}

/// The fast path: `None` sends the line to serde_json.
mod fast {
    use super::{Batch, Ev};
    use crate::encoding;
    use crate::history::EventType;

    struct Cur<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cur<'a> {
        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            self.ws();
            (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
        }

        /// A string without escapes or control characters, valid UTF-8:
        /// its bytes.
        fn string(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let rest = &self.b[self.i..];
            // One pass: find the quote, note any byte that needs a look
            // (control, backslash, non-ASCII).
            let mut odd = false;
            let mut end = 0;
            loop {
                let c = *rest.get(end)?;
                if c == b'"' {
                    break;
                }
                odd |= c < 0x20 || c == b'\\' || c >= 0x80;
                end += 1;
            }
            let s = &rest[..end];
            self.i += end + 1;
            if odd && (s.iter().any(|&c| c < 0x20 || c == b'\\') || std::str::from_utf8(s).is_err())
            {
                return None;
            }
            Some(s)
        }

        /// The bytes up to the next quote, unchecked: for field names,
        /// which are then compared with the known ones.
        fn raw_string(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let rest = &self.b[self.i..];
            let end = rest.iter().position(|&c| c == b'"')?;
            self.i += end + 1;
            Some(&rest[..end])
        }

        /// An integer that fits an i64 (no fraction or exponent).
        fn int(&mut self) -> Option<i64> {
            self.ws();
            let negative = self.b.get(self.i) == Some(&b'-');
            self.i += usize::from(negative);
            let digits = self.i;
            // Accumulated negated, so that i64::MIN fits.
            let mut n: i64 = 0;
            while let Some(&c) = self.b.get(self.i) {
                if !c.is_ascii_digit() {
                    break;
                }
                n = n.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
                self.i += 1;
            }
            if self.i == digits
                || matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'))
                || (self.b[digits] == b'0' && self.i - digits > 1)
            {
                return None;
            }
            match (negative, n) {
                // serde_json reads -0 as a float.
                (true, 0) => None,
                (true, _) => Some(n),
                (false, _) => n.checked_neg(),
            }
        }

        fn word(&mut self, w: &[u8]) -> bool {
            self.ws();
            if self.b[self.i..].starts_with(w) {
                self.i += w.len();
                true
            } else {
                false
            }
        }

        /// Encodes one JSON value into `out`.
        fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
            if depth > crate::format::edn::MAX_DEPTH {
                return None;
            }
            self.ws();
            match *self.b.get(self.i)? {
                b'"' => {
                    let s = self.string()?;
                    encoding::put_str_bytes(out, s);
                }
                b'n' if self.word(b"null") => encoding::put_nil(out),
                b't' if self.word(b"true") => encoding::put_bool(out, true),
                b'f' if self.word(b"false") => encoding::put_bool(out, false),
                b'[' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    let mut n = 0u64;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                    } else {
                        loop {
                            self.value(&mut items, depth + 1)?;
                            n += 1;
                            self.ws();
                            match *self.b.get(self.i)? {
                                b',' => self.i += 1,
                                b']' => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    encoding::put_list_header(out, n);
                    out.extend_from_slice(&items);
                }
                b'{' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    let mut n = 0u64;
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                    } else {
                        loop {
                            let k = self.string()?;
                            encoding::put_str_bytes(&mut items, k);
                            self.eat(b':')?;
                            self.value(&mut items, depth + 1)?;
                            n += 1;
                            self.ws();
                            match *self.b.get(self.i)? {
                                b',' => self.i += 1,
                                b'}' => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    encoding::put_map_header(out, n);
                    out.extend_from_slice(&items);
                }
                _ => {
                    let i = self.int()?;
                    encoding::put_int(out, i);
                }
            }
            Some(())
        }
    }

    impl Cur<'_> {
        /// Moves past `lit` if the input continues with it.
        fn lit(&mut self, lit: &[u8]) -> Option<()> {
            self.b[self.i..]
                .starts_with(lit)
                .then(|| self.i += lit.len())
        }

        /// A key: null (`Some(None)`), or a string or integer, interned in
        /// the batch.
        fn key(&mut self, batch: &mut Batch) -> Option<Option<u32>> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'"' | b'-' | b'0'..=b'9') => {}
                Some(b'n') if self.word(b"null") => return Some(None),
                _ => return None,
            }
            let mut k = std::mem::take(&mut batch.scratch);
            k.clear();
            let key = self.value(&mut k, 0).map(|()| Some(batch.keys.id(&k)));
            batch.scratch = k;
            key
        }
    }

    /// Parses a line written exactly as `harness run` and `checker generate`
    /// write them (`{"index":0,"time":1,"process":3,"type":"invoke","f":"set",
    /// "key":"k7","value":"v12"}`, no spaces; `index`, `time` and `key`
    /// optional), with few comparisons; `None` for any other line.
    pub(super) fn template(b: &[u8], line: u32, batch: &mut Batch) -> Option<()> {
        let mut c = Cur { b, i: 0 };
        c.lit(b"{")?;
        if c.lit(b"\"index\":").is_some() {
            c.int().filter(|&i| i >= 0)?;
            c.lit(b",")?;
        }
        let mut time = None;
        if c.lit(b"\"time\":").is_some() {
            time = Some(c.int()?);
            c.lit(b",")?;
        }
        c.lit(b"\"process\":")?;
        let process = if c.lit(b"\"nemesis\"").is_some() {
            None
        } else {
            Some(c.int()?)
        };
        c.lit(b",\"type\":\"")?;
        let kind = if c.lit(b"invoke\"").is_some() {
            EventType::Invoke
        } else if c.lit(b"ok\"").is_some() {
            EventType::Ok
        } else if c.lit(b"info\"").is_some() {
            EventType::Info
        } else {
            c.lit(b"fail\"")?;
            EventType::Fail
        };
        c.lit(b",\"f\":")?;
        let f = batch.fns.id(c.string()?);
        let mut key = None;
        if c.lit(b",\"key\":").is_some() {
            key = c.key(batch)?;
        }
        c.lit(b",\"value\":")?;
        let start = batch.bytes.len() as u32;
        c.value(&mut batch.bytes, 0)?;
        let value = (start, batch.bytes.len() as u32);
        c.lit(b"}")?;
        if c.i != b.len() {
            return None;
        }
        batch.events.push(Ev {
            line,
            time,
            process,
            kind,
            f,
            key,
            value,
        });
        Some(())
    }

    /// Parses a line in the common shape into `batch`; `None` if the line is
    /// anything else (including the header and every error).
    pub(super) fn line(b: &[u8], line: u32, batch: &mut Batch) -> Option<()> {
        let mut c = Cur { b, i: 0 };
        c.eat(b'{')?;
        let (mut time, mut process, mut kind, mut f, mut key, mut value) =
            (None, None, None, None, None, None);
        let mut seen = 0u8;
        let mut once = |bit: u8| -> Option<()> { (seen & bit == 0).then(|| seen |= bit) };
        c.ws();
        if c.b.get(c.i) == Some(&b'}') {
            return None;
        }
        loop {
            let name = c.raw_string()?;
            c.eat(b':')?;
            match name {
                b"process" => {
                    once(1)?;
                    c.ws();
                    process = Some(if c.b.get(c.i) == Some(&b'"') {
                        (c.string()? == b"nemesis").then_some(None)?
                    } else {
                        Some(c.int()?)
                    });
                }
                b"type" => {
                    once(2)?;
                    kind = Some(match c.string()? {
                        b"invoke" => EventType::Invoke,
                        b"ok" => EventType::Ok,
                        b"fail" => EventType::Fail,
                        b"info" => EventType::Info,
                        _ => return None,
                    });
                }
                b"f" => {
                    once(4)?;
                    f = Some(batch.fns.id(c.string()?));
                }
                b"key" => {
                    once(8)?;
                    key = c.key(batch)?;
                }
                b"value" => {
                    once(16)?;
                    let start = batch.bytes.len() as u32;
                    c.value(&mut batch.bytes, 0)?;
                    value = Some((start, batch.bytes.len() as u32));
                }
                b"time" => {
                    once(32)?;
                    if !c.word(b"null") {
                        time = Some(c.int()?);
                    }
                }
                b"index" => {
                    once(64)?;
                    if !c.word(b"null") {
                        c.int().filter(|&i| i >= 0)?;
                    }
                }
                // The header, unknown fields: the slow path.
                _ => return None,
            }
            c.ws();
            match *c.b.get(c.i)? {
                b',' => c.i += 1,
                b'}' => {
                    c.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        c.ws();
        if c.i != b.len() {
            return None;
        }
        let process = process?;
        let f = match (f, process) {
            (Some(f), _) => f,
            (None, None) => batch.fns.id(b""),
            (None, Some(_)) => return None,
        };
        let value = match value {
            Some(v) => v,
            None => {
                let at = batch.bytes.len() as u32;
                encoding::put_nil(&mut batch.bytes);
                (at, at + 1)
            }
        };
        batch.events.push(Ev {
            line,
            time,
            process,
            kind: kind?,
            f,
            key,
            value,
        });
        Some(())
    }
}

/// A block of whole lines (`bytes[..len]`) and its position in the file.
struct Block {
    seq: usize,
    bytes: Vec<u8>,
    len: usize,
}

impl Block {
    fn lines(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads `reader` (after `prefix`, already read) in blocks that end at a line
/// end (a line longer than a block makes its block longer), sending them to
/// `tx`; returns the first read error. Buffers come back through `recycled`
/// once parsed, so memory is allocated (and zeroed) only for the first few.
fn read_blocks(
    mut reader: impl Read,
    prefix: Vec<u8>,
    tx: mpsc::SyncSender<Block>,
    recycled: mpsc::Receiver<Vec<u8>>,
    block_size: usize,
) -> std::io::Result<()> {
    let mut carry = prefix;
    let mut seq = 0;
    let mut eof = false;
    while !eof {
        let mut buf = recycled.try_recv().unwrap_or_default();
        if buf.len() < block_size + carry.len() {
            buf.resize(block_size + carry.len(), 0);
        }
        buf[..carry.len()].copy_from_slice(&carry);
        let mut len = carry.len();
        carry.clear();
        loop {
            while len < buf.len() && !eof {
                match reader.read(&mut buf[len..]) {
                    Ok(0) => eof = true,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if eof {
                break;
            }
            match buf[..len].iter().rposition(|&b| b == b'\n') {
                Some(end) => {
                    carry.extend_from_slice(&buf[end + 1..len]);
                    len = end + 1;
                    break;
                }
                None => buf.resize(buf.len() + block_size, 0),
            }
        }
        if tx
            .send(Block {
                seq,
                bytes: buf,
                len,
            })
            .is_err()
        {
            return Ok(());
        }
        seq += 1;
    }
    Ok(())
}

/// What a parser thread sends: a block's number and its events.
type Parsed = (usize, Result<Batch, LineError>);

/// Parses a block; only the file's first line may be the header, so the
/// slow path is told line 1 for the first block's first line and a later
/// line for every other.
fn parse_nth_block(block: &Block) -> Result<Batch, LineError> {
    parse_block(block.lines(), if block.seq == 0 { 1 } else { 2 })
}

/// Reads a JSON Lines history from `reader` (after `prefix`, the bytes
/// already read from it), parsing blocks on `threads` threads while reading.
pub fn read(
    reader: impl Read + Send,
    prefix: Vec<u8>,
    threads: usize,
) -> Result<History, CheckError> {
    read_in_blocks(reader, prefix, threads, BLOCK)
}

/// [`read`] with blocks of `block_size` bytes.
pub fn read_in_blocks(
    reader: impl Read + Send,
    prefix: Vec<u8>,
    threads: usize,
    block_size: usize,
) -> Result<History, CheckError> {
    let threads = threads.max(1);
    let block_size = block_size.max(1);
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(threads + 1);
    let (batch_tx, batch_rx) = mpsc::sync_channel::<Parsed>(threads + 1);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
    // Parsers share the block receiver; when the last one stops (the merge
    // gave up, or the blocks ran out) it is dropped and the reader stops.
    let block_rx = Arc::new(Mutex::new(block_rx));
    std::thread::scope(|s| {
        let reading =
            s.spawn(move || read_blocks(reader, prefix, block_tx, recycle_rx, block_size));
        for _ in 0..threads {
            let batch_tx = batch_tx.clone();
            let recycle_tx = recycle_tx.clone();
            let block_rx = Arc::clone(&block_rx);
            s.spawn(move || {
                loop {
                    let block = block_rx.lock().unwrap().recv();
                    let Ok(block) = block else { break };
                    let batch = parse_nth_block(&block);
                    let _ = recycle_tx.send(block.bytes);
                    if batch_tx.send((block.seq, batch)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(recycle_tx);
        drop(batch_tx);
        drop(block_rx);
        let built = merge(batch_rx.into_iter());
        let read_result = reading.join().expect("reader thread");
        let h = built?;
        read_result.map_err(|e| CheckError::Io {
            path: Default::default(),
            reason: e.to_string(),
        })?;
        Ok(h)
    })
}

/// Pairs the batches' events into a history, in block order (batches may
/// arrive out of order).
fn merge(batches: impl Iterator<Item = Parsed>) -> Result<History, CheckError> {
    let mut b = HistoryBuilder::default();
    let mut waiting: BTreeMap<usize, Result<Batch, LineError>> = BTreeMap::new();
    let mut next = 0;
    let mut first_line = 1usize;
    for (seq, batch) in batches {
        waiting.insert(seq, batch);
        while let Some(batch) = waiting.remove(&next) {
            let batch = batch.map_err(|(rel, what)| CheckError::parse(first_line + rel, what))?;
            let fns: Vec<u16> = (0..batch.fns.len())
                .map(|i| b.fn_id(std::str::from_utf8(batch.fns.get(i)).expect("validated UTF-8")))
                .collect::<Result<_, _>>()
                .map_err(|e| CheckError::parse(first_line, e))?;
            let keys: Vec<ValRef> = (0..batch.keys.len())
                .map(|i| b.key_ref(batch.keys.get(i)))
                .collect();
            for e in &batch.events {
                b.push(BuilderEvent {
                    line: first_line + e.line as usize,
                    time: e.time,
                    process: e.process,
                    kind: e.kind,
                    f: fns[e.f as usize],
                    key: e.key.map(|k| keys[k as usize]),
                    value: batch.range(e.value),
                })?;
            }
            first_line += batch.lines;
            next += 1;
        }
    }
    let mut h = b.finish()?;
    h.lines = first_line - 1;
    Ok(h)
}

/// Parses JSON Lines from memory: small texts on the calling thread, larger
/// ones on all cores.
pub fn parse(text: &str) -> Result<History, CheckError> {
    if text.len() <= BLOCK {
        let block = Block {
            seq: 0,
            bytes: text.as_bytes().to_vec(),
            len: text.len(),
        };
        return merge(std::iter::once((0, parse_nth_block(&block))));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    read(text.as_bytes(), Vec::new(), threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenOptions, Rng, kv_history, to_jsonl};

    /// A random JSON value as text, sometimes with escapes, floats, big
    /// numbers, nesting or spaces that only the slow path takes.
    fn random_value(rng: &mut Rng, depth: usize) -> String {
        match rng.below(if depth > 2 { 7 } else { 9 }) {
            0 => "null".into(),
            1 => ["true", "false"][rng.below(2) as usize].into(),
            2 => format!("{}", rng.next_u64() as i64 >> rng.below(64)),
            3 => [
                "1.5",
                "-0",
                "1e3",
                "18446744073709551615",
                "-9223372036854775809",
                "0.1",
            ][rng.below(6) as usize]
                .into(),
            4 => format!("\"v{}\"", rng.below(1000)),
            5 => [
                "\"a\\\"b\"",
                "\"\\u00e9t\\u00e9\"",
                "\"tab\\there\"",
                "\"été\"",
                "\"\\/\"",
            ][rng.below(5) as usize]
                .into(),
            6 => "\"\"".into(),
            7 => {
                let n = rng.below(3);
                let items: Vec<String> = (0..n).map(|_| random_value(rng, depth + 1)).collect();
                format!("[{}]", items.join(if rng.chance(0.5) { "," } else { ", " }))
            }
            _ => {
                let n = rng.below(3);
                let items: Vec<String> = (0..n)
                    .map(|i| format!("\"f{i}\":{}", random_value(rng, depth + 1)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }

    fn random_line(rng: &mut Rng) -> String {
        let mut fields = vec![
            format!(
                "\"process\":{}",
                if rng.chance(0.1) {
                    "\"nemesis\"".to_string()
                } else {
                    rng.below(50).to_string()
                }
            ),
            format!(
                "\"type\":\"{}\"",
                ["invoke", "ok", "fail", "info", "done"][rng.below(5) as usize]
            ),
            format!(
                "\"f\":\"{}\"",
                ["set", "get", "cas", "s\\u0065t"][rng.below(4) as usize]
            ),
            format!("\"value\":{}", random_value(rng, 0)),
        ];
        if rng.chance(0.8) {
            fields.insert(0, format!("\"time\":{}", rng.below(1 << 40)));
        }
        if rng.chance(0.8) {
            fields.insert(0, format!("\"index\":{}", rng.below(1 << 20)));
        }
        if rng.chance(0.9) {
            let key =
                ["\"k1\"", "\"k2\"", "7", "null", "\"k\\u0031\"", "[1]"][rng.below(6) as usize];
            fields.insert(fields.len() - 1, format!("\"key\":{key}"));
        }
        if rng.chance(0.05) {
            fields.push("\"extra\":[1,{\"a\":null}]".into());
        }
        if rng.chance(0.2) {
            let i = rng.below(fields.len() as u64) as usize;
            let j = rng.below(fields.len() as u64) as usize;
            fields.swap(i, j);
        }
        if rng.chance(0.05) {
            fields.remove(rng.below(fields.len() as u64) as usize);
        }
        let sep = if rng.chance(0.1) { ", " } else { "," };
        format!("{{{}}}", fields.join(sep))
    }

    /// Each fast path, where it takes a line, reads it as serde_json does;
    /// where serde_json refuses a line, neither takes it.
    #[test]
    fn fast_paths_read_lines_as_serde_does() {
        let mut rng = Rng::new(5);
        let (mut template, mut general, mut slow_only) = (0, 0, 0);
        for case in 0..20_000 {
            let line = random_line(&mut rng);
            let slow = slow_line(&line, 2);
            for (which, fast) in [
                (
                    "template",
                    fast::template as fn(&[u8], u32, &mut Batch) -> Option<()>,
                ),
                ("general", fast::line),
            ] {
                let mut batch = Batch::default();
                if fast(line.as_bytes(), 0, &mut batch).is_none() {
                    continue;
                }
                match which {
                    "template" => template += 1,
                    _ => general += 1,
                }
                let slow = match &slow {
                    Ok(Some(e)) => e,
                    other => panic!(
                        "case {case}: {which} took {line}, serde: {:?}",
                        other.as_ref().err()
                    ),
                };
                let e = batch.events[0];
                assert_eq!(e.time, slow.time, "case {case} {which}: {line}");
                assert_eq!(
                    e.process,
                    slow.process.client(),
                    "case {case} {which}: {line}"
                );
                assert_eq!(e.kind, slow.kind, "case {case} {which}: {line}");
                assert_eq!(
                    batch.fns.get(e.f as usize),
                    slow.f.as_bytes(),
                    "case {case} {which}: {line}"
                );
                assert_eq!(
                    e.key.map(|k| batch.keys.get(k as usize).to_vec()),
                    slow.key.as_ref().map(encoding::to_bytes),
                    "case {case} {which}: {line}"
                );
                assert_eq!(
                    batch.range(e.value),
                    encoding::to_bytes(&slow.value).as_slice(),
                    "case {case} {which}: {line}"
                );
            }
            let mut batch = Batch::default();
            if fast::line(line.as_bytes(), 0, &mut batch).is_none() && matches!(slow, Ok(Some(_))) {
                slow_only += 1;
            }
        }
        assert!(
            template > 2000 && general > 5000 && slow_only > 2000,
            "template {template}, general {general}, slow only {slow_only}"
        );
    }

    /// One op as comparable values.
    fn ops(h: &History) -> Vec<String> {
        h.ops
            .iter()
            .map(|o| {
                format!(
                    "{} {} {:?} {:?} {:?} {:?} {} {} {} {} {} {}",
                    o.process,
                    h.f(o),
                    h.key(o),
                    h.input(o),
                    h.output(o),
                    o.status,
                    o.invoke_time,
                    o.complete_time,
                    o.invoke_pos,
                    o.complete_pos,
                    o.invoke_line,
                    o.complete_line
                )
            })
            .collect()
    }

    /// Any block size and number of parser threads gives the same history,
    /// and an error names the same line.
    #[test]
    fn blocks_and_threads_do_not_change_the_history() {
        let events = kv_history(&GenOptions {
            ops: 3000,
            processes: 8,
            keys: 5,
            ..GenOptions::default()
        });
        let mut text = String::from("{\"format\":\"raftkv-history\",\"version\":1}\n");
        for (i, line) in to_jsonl(&events).lines().enumerate() {
            // Lines in other shapes, and blank lines, here and there.
            if i % 97 == 0 {
                text.push_str(&line.replace(",", ", "));
            } else if i % 89 == 0 {
                text.push_str(&line.replace("\"v", "\"\\u0076"));
            } else {
                text.push_str(line);
            }
            text.push_str(if i % 101 == 0 { "\n\n" } else { "\n" });
        }
        let one = parse(&text).unwrap();
        assert_eq!(one.events, events.len());
        let want = ops(&one);
        for (block, threads) in [(1, 1), (100, 3), (4096, 2), (30_000, 4)] {
            let h = read_in_blocks(text.as_bytes(), Vec::new(), threads, block).unwrap();
            assert_eq!(ops(&h), want, "block {block}, threads {threads}");
            assert_eq!((h.events, h.lines), (one.events, one.lines));
        }
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.len() - 17;
        let mut broken: Vec<&str> = lines.clone();
        broken[at] = "{\"process\":1,\"type\":\"invoke\"";
        let broken = broken.join("\n");
        for block in [100, 4096, 1 << 20] {
            match read_in_blocks(broken.as_bytes(), Vec::new(), 2, block) {
                Err(CheckError::Parse { line, .. }) => assert_eq!(line, at + 1, "block {block}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
