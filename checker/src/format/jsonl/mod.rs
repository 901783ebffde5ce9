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
use crate::history::{EventType, History, Process, Values};
use crate::pairing::{HistoryBuilder, Names, Problem, Procs, Refused, SegEvent, Segment};
use crate::value::Val;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
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

/// The events of one block of lines, paired among themselves.
#[derive(Default)]
struct Batch {
    /// The line just parsed (the fast paths' output).
    events: Vec<Ev>,
    /// The block's values, in the layout of a history's values chunk.
    bytes: Vec<u8>,
    fns: Names,
    keys: Names,
    seg: Segment,
    /// Lines in the block.
    lines: usize,
    scratch: Vec<u8>,
}

impl Batch {
    fn range(&self, r: (u32, u32)) -> &[u8] {
        &self.bytes[r.0 as usize..r.1 as usize]
    }
}

/// Parses one block of whole lines whose first line is line
/// `block_first_line` of the file (1-based; only line 1 may be a header),
/// pairing its events into `batch` (a spare one, its memory reused);
/// parsing stops at the first error, kept in the batch's segment.
fn parse_block(
    block: &[u8],
    block_first_line: usize,
    procs: &mut Procs,
    mut batch: Batch,
) -> Batch {
    batch.events.clear();
    batch.bytes = Vec::with_capacity(block.len() / 8);
    batch.fns.clear();
    batch.keys.clear();
    batch.seg.reset(block_first_line == 1);
    batch.seg.reserve(block.len() / 200);
    // Pieces between newlines, the last one after the last newline.
    let mut pieces = 0usize;
    let mut start = 0;
    while start <= block.len() {
        let line_no = pieces;
        pieces += 1;
        // A line in the template's shape ending at a newline is parsed
        // without looking for its end first.
        if block.get(start) == Some(&b'{') {
            let mark = (batch.events.len(), batch.bytes.len());
            let taken = fast::template_prefix(&block[start..], line_no as u32, &mut batch);
            if let Some(len) = taken
                && matches!(block.get(start + len), Some(b'\n') | None)
            {
                if take(&mut batch, procs).is_err() {
                    break;
                }
                start += len + 1;
                continue;
            }
            batch.events.truncate(mark.0);
            batch.bytes.truncate(mark.1);
        }
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
        let raw = &block[start..end];
        start = end + 1;
        match other_line(raw, block_first_line, line_no, &mut batch) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                batch.seg.fail(line_no as u32 + 1, Problem::Text(e));
                break;
            }
        }
        if take(&mut batch, procs).is_err() {
            break;
        }
    }
    batch.seg.seal(procs);
    batch.bytes.shrink_to_fit();
    // A last line without a newline counts too.
    batch.lines = pieces - usize::from(block.last().is_none_or(|&b| b == b'\n'));
    batch
}

/// Parses a line (`raw`, line `line_no` of the block) that is not in the
/// template's shape into the batch's events: `Ok(false)` for a blank line
/// or the header, `Err` with what was expected.
fn other_line(
    raw: &[u8],
    block_first_line: usize,
    line_no: usize,
    batch: &mut Batch,
) -> Result<bool, String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Ok(false);
    }
    let mark = (batch.events.len(), batch.bytes.len());
    if fast::template(trimmed, line_no as u32, batch).is_some() {
        return Ok(true);
    }
    batch.events.truncate(mark.0);
    batch.bytes.truncate(mark.1);
    if fast::line(trimmed, line_no as u32, batch).is_some() {
        return Ok(true);
    }
    batch.events.truncate(mark.0);
    batch.bytes.truncate(mark.1);
    slow_path(
        trimmed,
        raw,
        block_first_line + line_no,
        line_no as u32,
        batch,
    )
}

/// Parses a line with serde_json into the batch's events: `Ok(false)` for
/// the header, `Err` with what was expected.
fn slow_path(
    trimmed: &[u8],
    raw: &[u8],
    lineno: usize,
    line_no: u32,
    batch: &mut Batch,
) -> Result<bool, String> {
    let text = std::str::from_utf8(trimmed).map_err(|e| {
        format!(
            "UTF-8 text, found a byte that is not UTF-8 (column {})",
            e.valid_up_to() + 1 + (raw.len() - raw.trim_ascii_start().len())
        )
    })?;
    let Some(e) = slow_line(text, lineno).map_err(|e| match e {
        CheckError::Parse { expected, .. } => expected,
        other => other.to_string(),
    })?
    else {
        return Ok(false);
    };
    let f = batch.fns.id(e.f.as_bytes());
    let key = e
        .key
        .as_ref()
        .map(|k| batch.keys.id(&encoding::to_bytes(k)));
    let start = batch.bytes.len() as u32;
    encoding::encode(&e.value, &mut batch.bytes);
    batch.events.push(Ev {
        line: line_no,
        time: e.time,
        process: e.process.client(),
        kind: e.kind,
        f,
        key,
        value: (start, batch.bytes.len() as u32),
    });
    Ok(true)
}

/// Pairs the event just parsed (the batch's last) in the batch's segment;
/// `Err` if it does not pair (the error is kept in the segment).
fn take(batch: &mut Batch, procs: &mut Procs) -> Result<(), Refused> {
    let e = batch.events.pop().expect("a line was parsed");
    let line = e.line + 1;
    let (start, end) = (e.value.0 as usize, e.value.1 as usize);
    // The value is the last thing a line writes.
    debug_assert_eq!(end, batch.bytes.len());
    let Some(process) = e.process else {
        let value = encoding::decode(batch.range(e.value));
        batch.bytes.truncate(start);
        let f = std::str::from_utf8(batch.fns.get(e.f as usize)).expect("validated UTF-8");
        return batch.seg.push_nemesis(line, e.time, e.kind, f, value);
    };
    // A completion that repeats its invoke's value shares it.
    let shared = match e.kind {
        EventType::Invoke => None,
        _ => batch
            .seg
            .pending_input(procs, process, &batch.bytes, &batch.bytes[start..end]),
    };
    let value = match shared {
        Some(input) => {
            batch.bytes.truncate(start);
            input
        }
        None => Values::seal_last(&mut batch.bytes, start),
    };
    batch.seg.push(
        procs,
        SegEvent {
            line,
            time: e.time,
            process,
            kind: e.kind,
            f: e.f,
            key: e.key,
            value,
        },
        &batch.fns,
        &batch.keys,
    )
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

mod fast;

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
type Parsed = (usize, Batch);

/// Parses a block; only the file's first line may be the header, so the
/// slow path is told line 1 for the first block's first line and a later
/// line for every other.
fn parse_nth_block(block: &Block, procs: &mut Procs, spare: Batch) -> Batch {
    parse_block(
        block.lines(),
        if block.seq == 0 { 1 } else { 2 },
        procs,
        spare,
    )
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
    let (spare_tx, spare_rx) = mpsc::channel::<Batch>();
    // Parsers share the block receiver; when the last one stops (the merge
    // gave up, or the blocks ran out) it is dropped and the reader stops.
    let block_rx = Arc::new(Mutex::new(block_rx));
    let spare_rx = Arc::new(Mutex::new(spare_rx));
    std::thread::scope(|s| {
        let reading =
            s.spawn(move || read_blocks(reader, prefix, block_tx, recycle_rx, block_size));
        for _ in 0..threads {
            let batch_tx = batch_tx.clone();
            let recycle_tx = recycle_tx.clone();
            let block_rx = Arc::clone(&block_rx);
            let spare_rx = Arc::clone(&spare_rx);
            s.spawn(move || {
                let mut procs = Procs::default();
                loop {
                    let block = block_rx.lock().unwrap().recv();
                    let Ok(block) = block else { break };
                    let spare = spare_rx.lock().unwrap().try_recv().unwrap_or_default();
                    let batch = parse_nth_block(&block, &mut procs, spare);
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
        let built = merge(batch_rx.into_iter(), |spare| {
            let _ = spare_tx.send(spare);
        });
        let read_result = reading.join().expect("reader thread");
        let h = built?;
        read_result.map_err(|e| CheckError::Io {
            path: Default::default(),
            reason: e.to_string(),
        })?;
        Ok(h)
    })
}

/// Joins the batches into a history, in block order (batches may arrive
/// out of order), giving each batch back to `spare` once joined.
fn merge(
    batches: impl Iterator<Item = Parsed>,
    mut spare: impl FnMut(Batch),
) -> Result<History, CheckError> {
    let mut b = HistoryBuilder::default();
    let mut waiting: BTreeMap<usize, Batch> = BTreeMap::new();
    let mut next = 0;
    let mut first_line = 1usize;
    for (seq, batch) in batches {
        waiting.insert(seq, batch);
        while let Some(mut batch) = waiting.remove(&next) {
            let values = std::mem::take(&mut batch.bytes);
            b.join(&mut batch.seg, first_line, &batch.fns, &batch.keys, values)?;
            first_line += batch.lines;
            spare(batch);
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
        let batch = parse_nth_block(&block, &mut Procs::default(), Batch::default());
        return merge(std::iter::once((0, batch)), drop);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    read(text.as_bytes(), Vec::new(), threads)
}

#[cfg(test)]
mod tests;
