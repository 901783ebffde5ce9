//! Input formats and their detection.

pub mod edn;
pub mod jepsen_log;
pub mod jsonl;

use crate::error::CheckError;
use crate::history::History;
use std::fmt;
use std::str::FromStr;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Decide from the content.
    #[default]
    Auto,
    /// Our JSON Lines (HISTORY.md).
    Jsonl,
    /// Jepsen/Knossos EDN op maps.
    Edn,
    /// Porcupine's key-value files: one EDN op map per line with `:key`.
    PorcupineKv,
    /// Jepsen console logs (`INFO jepsen.util - 2 :invoke :write 4`).
    JepsenLog,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineKv => "porcupine-kv",
            Format::JepsenLog => "jepsen-log",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Format, CheckError> {
        Ok(match s {
            "auto" => Format::Auto,
            "jsonl" | "json" => Format::Jsonl,
            "edn" => Format::Edn,
            "porcupine-kv" => Format::PorcupineKv,
            "jepsen-log" => Format::JepsenLog,
            _ => {
                return Err(CheckError::Usage(format!(
                    "unknown format {s:?}; expected auto, jsonl, edn, porcupine-kv or jepsen-log"
                )));
            }
        })
    }
}

/// Guesses the format from the first meaningful content.
pub fn detect(text: &str) -> Result<Format, CheckError> {
    if text
        .lines()
        .take(200)
        .any(|l| l.contains(jepsen_log::MARKER))
    {
        return Ok(Format::JepsenLog);
    }
    let mut r = edn::Reader::new(text);
    r.skip_ws();
    let line = r.line();
    let rest = text
        .lines()
        .nth(line - 1)
        .map(|l| l.trim_start().to_string())
        .unwrap_or_default();
    let after_brace = rest.strip_prefix('{').map(|s| s.trim_start());
    match after_brace {
        Some(s) if s.starts_with('"') || s.starts_with('}') => return Ok(Format::Jsonl),
        Some(s) if s.starts_with(':') => {
            return Ok(if rest.contains(":key") {
                Format::PorcupineKv
            } else {
                Format::Edn
            });
        }
        _ => {}
    }
    if let Some(inner) = rest.strip_prefix('[')
        && looks_like_json_object(inner.trim_start())
    {
        return Err(json_array_error(line));
    }
    if rest.starts_with('[') || rest.starts_with('(') || rest.starts_with('{') {
        return Ok(Format::Edn);
    }
    if text.trim().is_empty() {
        return Ok(Format::Jsonl);
    }
    Err(CheckError::parse(
        line,
        "a history: JSON lines ({\"process\":..}), EDN op maps ({:process ..}) or a Jepsen log (\"jepsen.util - ..\"); use --format to force one",
    ))
}

/// Whether `s` starts like a JSON object (`{"`), not an EDN map (`{:`).
fn looks_like_json_object(s: &str) -> bool {
    s.strip_prefix('{')
        .is_some_and(|r| r.trim_start().starts_with('"'))
}

/// The error for a JSON array of events where JSON Lines were expected.
pub fn json_array_error(line: usize) -> CheckError {
    CheckError::parse(
        line,
        "JSON Lines (one event object per line), found a JSON array; convert it with: jq -c '.[]' FILE",
    )
}

/// Parses `text` in `format` (detecting it if `Auto`) into a history;
/// returns it and the format used.
pub fn parse(text: &str, format: Format) -> Result<(History, Format), CheckError> {
    let format = match format {
        Format::Auto => detect(text)?,
        f => f,
    };
    let mut history = match format {
        Format::Jsonl => jsonl::parse(text)?,
        Format::Edn | Format::PorcupineKv => History::from_events(edn::parse(text)?)?,
        Format::JepsenLog => History::from_events(jepsen_log::parse(text)?)?,
        Format::Auto => unreachable!("resolved above"),
    };
    history.lines = text.lines().count();
    Ok((history, format))
}
