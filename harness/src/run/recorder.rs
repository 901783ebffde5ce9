//! The history recorder: every invoke, completion and nemesis event, as the
//! checker's JSONL (one object per line: index, time, process, type, f, key,
//! value). `time` is nanoseconds since the run started, on a monotonic clock,
//! read under the same lock that hands out `index`, so both orders agree.
//! An `ok` completion also says which node answered (`node`) and at which
//! log index (`log_index`), when the client knows; the checker ignores both.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who an event belongs to: a logical client or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Nemesis(NemesisTag),
}

/// Serializes as the string "nemesis".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NemesisTag {
    #[serde(rename = "nemesis")]
    Nemesis,
}

pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or is indeterminate (ignored by the checker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node that answered an `ok` operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// The log index the node answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
}

struct Inner {
    next_index: u64,
    out: BufWriter<File>,
    events: Vec<Event>,
    write_error: Option<std::io::Error>,
}

pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// Creates `path` and starts the clock.
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let out = BufWriter::new(File::create(path)?);
        Ok(Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                next_index: 0,
                out,
                events: Vec::new(),
                write_error: None,
            }),
        })
    }

    /// The instant event times count from.
    pub fn origin(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Appends one event, stamping its index and time; returns its time.
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
    ) -> u64 {
        self.append(unstamped(process, kind, f, key, value, error))
    }

    /// Like [`Recorder::record`] for a completion that names the node that
    /// answered and its log index (an acknowledgement, or a cas refused
    /// when applied).
    #[allow(clippy::too_many_arguments)]
    pub fn record_served(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
        node: Option<u64>,
        log_index: Option<u64>,
    ) -> u64 {
        self.append(Event {
            node,
            log_index,
            ..unstamped(process, kind, f, key, value, error)
        })
    }

    /// Stamps `event` with the next index and the time, and appends it.
    fn append(&self, mut event: Event) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let time = self.now();
        event.index = inner.next_index;
        event.time = time;
        inner.next_index += 1;
        if inner.write_error.is_none() {
            let line = serde_json::to_string(&event).expect("events serialize");
            if let Err(e) = writeln!(inner.out, "{line}") {
                inner.write_error = Some(e);
            }
        }
        inner.events.push(event);
        time
    }

    /// Flushes the file; reports the first write error, if any.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = inner.write_error.take() {
            return Err(e);
        }
        inner.out.flush()
    }

    /// A copy of every event recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }
}

/// Reads a history file written by [`Recorder`].
pub fn read_history(path: &Path) -> Result<Vec<Event>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: Event =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        events.push(event);
    }
    Ok(events)
}

/// An event not yet given its index and time (see `Recorder::append`).
fn unstamped(
    process: Process,
    kind: EventType,
    f: &str,
    key: Option<&str>,
    value: Value,
    error: Option<String>,
) -> Event {
    Event {
        index: 0,
        time: 0,
        process,
        kind,
        f: f.to_string(),
        key: key.map(str::to_string),
        value,
        error,
        node: None,
        log_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_the_checker_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        rec.record(
            Process::Client(3),
            EventType::Invoke,
            "set",
            Some("k7"),
            json!("v12"),
            None,
        );
        rec.record(
            NEMESIS,
            EventType::Info,
            "kill",
            None,
            json!({"nodes": [2]}),
            None,
        );
        rec.record(
            Process::Client(3),
            EventType::Ok,
            "set",
            Some("k7"),
            json!("v12"),
            None,
        );
        rec.record(
            Process::Client(4),
            EventType::Invoke,
            "noop",
            None,
            Value::Null,
            None,
        );
        rec.flush().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["index"], 0);
        assert_eq!(lines[0]["process"], 3);
        assert_eq!(lines[0]["type"], "invoke");
        assert_eq!(lines[0]["f"], "set");
        assert_eq!(lines[0]["key"], "k7");
        assert_eq!(lines[0]["value"], "v12");
        assert_eq!(lines[1]["process"], "nemesis");
        assert_eq!(lines[2]["index"], 2);
        assert!(lines[3].get("key").is_none(), "noop has no key");
        // Times never go backwards along the index order.
        let times: Vec<u64> = lines.iter().map(|l| l["time"].as_u64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));

        let back = read_history(&path).unwrap();
        assert_eq!(back, rec.events());
    }

    #[test]
    fn read_history_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, "{\"index\":0,\"time\":1,\"process\":1,\"type\":\"invoke\",\"f\":\"noop\",\"value\":null}\nnot json\n").unwrap();
        let err = read_history(&path).unwrap_err();
        assert!(err.contains("h.jsonl:2"), "{err}");
    }
}
