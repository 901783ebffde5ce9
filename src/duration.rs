//! The one syntax every duration flag of the raftkv programs takes: a
//! number with an optional unit, `500ms`, `30s`, `1.5s`, `2m`, `1h`. A bare
//! number is in the flag's own unit: seconds, or milliseconds for the
//! node's flags whose names end in `-ms`.

use std::time::Duration;

/// The unit of a bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareUnit {
    Seconds,
    Milliseconds,
}

/// Parses a duration whose bare numbers are seconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    parse_with(s, BareUnit::Seconds)
}

/// Parses a duration whose bare numbers are milliseconds.
pub fn parse_ms(s: &str) -> Result<Duration, String> {
    parse_with(s, BareUnit::Milliseconds)
}

/// Parses `s`; a number without a unit is in `bare`.
pub fn parse_with(s: &str, bare: BareUnit) -> Result<Duration, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 2m or 1h"))?;
    let scale = match (unit, bare) {
        ("", BareUnit::Seconds) | ("s", _) => 1.0,
        ("", BareUnit::Milliseconds) | ("ms", _) => 1e-3,
        ("m", _) => 60.0,
        ("h", _) => 3600.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ms, s, m or h, e.g. 500ms, 30s)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{s:?} is too long a duration"))
}

/// Formats a duration in the syntax [`parse`] reads, in the largest unit
/// that shows it exactly (`1500ms`, `30s`, `2m`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}s", d.as_secs_f64());
    }
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(" 7 "), Ok(Duration::from_secs(7)));
        assert_eq!(parse_ms("50"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_ms("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        for (input, why) in [
            ("-5s", "negative"),
            ("-1", "negative"),
            ("5x", "unknown unit"),
            ("10 s", "unknown unit"),
            ("s", "not a duration"),
            ("", "not a duration"),
            ("ten", "not a duration"),
            ("1.2.3s", "not a duration"),
            ("1e20", "unknown unit"),
            ("99999999999999999999999s", "too long"),
            ("10000000000000000000h", "too long"),
        ] {
            let err = parse(input).unwrap_err();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(30),
            Duration::from_secs(120),
            Duration::from_secs(7200),
            Duration::from_micros(1500),
        ] {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(90)), "90s");
    }
}
