//! Our JSON Lines format (see HISTORY.md).

use crate::error::CheckError;
use crate::history::{Event, EventType, Process};
use crate::value::Val;
use serde::Deserialize;
use std::borrow::Cow;

/// The newest format version this reader understands.
pub const VERSION: u64 = 1;

#[derive(Deserialize)]
struct RawEvent<'a> {
    index: Option<u64>,
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

/// Parses JSON Lines; blank lines are skipped. Large inputs are parsed in
/// chunks on all cores.
pub fn parse(text: &str) -> Result<Vec<Event>, CheckError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || text.len() < (4 << 20) {
        return parse_chunk(text, 0);
    }
    // Split at line boundaries into one chunk per core.
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut first_line = 0;
    for i in 1..=threads {
        let mut end = if i == threads {
            text.len()
        } else {
            (text.len() * i / threads).max(start)
        };
        while end < text.len() && text.as_bytes()[end - 1] != b'\n' {
            end += 1;
        }
        let chunk = &text[start..end];
        chunks.push((chunk, first_line));
        first_line += chunk.bytes().filter(|&b| b == b'\n').count();
        start = end;
    }
    let results: Vec<Result<Vec<Event>, CheckError>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|&(chunk, first)| s.spawn(move || parse_chunk(chunk, first)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser thread panicked"))
            .collect()
    });
    let mut events = Vec::with_capacity(text.len() / 80);
    for (i, r) in results.into_iter().enumerate() {
        let mut part = r?;
        // A header is allowed only on the very first line of the file.
        if i > 0 && part.is_empty() {
            continue;
        }
        events.append(&mut part);
    }
    Ok(events)
}

/// Parses lines of a chunk whose first line is line `first_line + 1`.
fn parse_chunk(text: &str, first_line: usize) -> Result<Vec<Event>, CheckError> {
    let mut events = Vec::with_capacity(text.len() / 80);
    for (n, line) in text.lines().enumerate() {
        let lineno = first_line + n + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('[') {
            return Err(super::json_array_error(lineno));
        }
        let raw: RawEvent = serde_json::from_str(trimmed).map_err(|e| {
            CheckError::parse(
                lineno,
                format!("{SHAPE}; {}", strip_position(&e.to_string())),
            )
        })?;
        if let Some(fmt) = &raw.format {
            if events.is_empty() && lineno == 1 && fmt == "raftkv-history" {
                match raw.version {
                    Some(v) if v <= VERSION => continue,
                    other => {
                        return Err(CheckError::parse(
                            lineno,
                            format!(
                                "format version 1..={VERSION} in the header, found {}",
                                other.map_or("none".to_string(), |v| v.to_string())
                            ),
                        ));
                    }
                }
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
                        other.to_json()
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
                    format!("\"type\" to be one of invoke, ok, fail, info; found {k:?}"),
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
                    format!("\"key\" to be a string, found {other}"),
                ));
            }
        };
        events.push(Event {
            line: lineno,
            index: raw.index,
            time: raw.time,
            process,
            kind,
            f,
            key,
            value: raw.value.unwrap_or(Val::Nil),
        });
    }
    Ok(events)
}

/// serde_json appends "at line 1 column N"; the line is always 1 here.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line 1 column ") {
        Some(i) => format!("{} (column {})", &msg[..i], &msg[i + 18..]),
        None => msg.to_string(),
    }
}
