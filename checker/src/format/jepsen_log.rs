//! Jepsen console logs as printed by older Jepsen runs:
//! `INFO  jepsen.util - 2 :invoke :write 4` (fields split by tabs or runs
//! of spaces). Other log lines are skipped.

use crate::error::CheckError;
use crate::format::edn;
use crate::history::{Event, EventType, Process};
use crate::value::Val;

/// The marker that starts an op line's fields.
pub const MARKER: &str = "jepsen.util - ";

pub fn parse(text: &str) -> Result<Vec<Event>, CheckError> {
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let rest = line[at + MARKER.len()..].trim();
        let (process, rest) = split_field(rest);
        let (kind, rest) = split_field(rest);
        let (f, value) = split_field(rest);
        if process.is_empty() || kind.is_empty() || f.is_empty() {
            let found = [process, kind, f].iter().filter(|x| !x.is_empty()).count();
            return Err(CheckError::parse(
                lineno,
                format!(
                    "\"jepsen.util - PROCESS TYPE F VALUE\" (fields split by tabs or spaces), found {found} of the first 3 fields (truncated line?)"
                ),
            ));
        }
        let process = if process == ":nemesis" {
            Process::Nemesis
        } else {
            match process.parse::<i64>() {
                Ok(p) => Process::Client(p),
                Err(_) => {
                    return Err(CheckError::parse(
                        lineno,
                        format!("a process number or :nemesis, found {process:?}"),
                    ));
                }
            }
        };
        let kind = kind
            .strip_prefix(':')
            .and_then(EventType::parse)
            .ok_or_else(|| {
                CheckError::parse(
                    lineno,
                    format!("a type :invoke, :ok, :fail or :info, found {kind:?}"),
                )
            })?;
        let f = f.strip_prefix(':').unwrap_or(f).to_string();
        let value = value.trim();
        let value = if value.is_empty() {
            Val::Nil
        } else {
            match edn::parse_value(value) {
                Ok(v) => v,
                // Nemesis values and the error messages of fail and info
                // completions are free text.
                Err(_)
                    if process == Process::Nemesis
                        || matches!(kind, EventType::Fail | EventType::Info) =>
                {
                    Val::Str(value.to_string())
                }
                Err(e) => {
                    let why = match e {
                        CheckError::Parse { expected, .. } => expected,
                        other => other.to_string(),
                    };
                    return Err(CheckError::parse(
                        lineno,
                        format!(
                            "one EDN value after the op name, found {}: expected {why}",
                            crate::value::quote_short(value)
                        ),
                    ));
                }
            }
        };
        events.push(Event {
            line: lineno,
            index: None,
            time: None,
            process,
            kind,
            f,
            key: None,
            value,
        });
    }
    Ok(events)
}

/// Splits off the first whitespace-separated field.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}
