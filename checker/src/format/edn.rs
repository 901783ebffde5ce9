//! A small EDN reader, and Jepsen/Knossos op maps read from it.

use crate::error::CheckError;
use crate::history::{Event, EventType, Process};
use crate::value::Val;

/// Deepest nesting of forms accepted (as serde_json's default limit): deeper
/// input is refused rather than overflowing the stack.
pub const MAX_DEPTH: usize = 128;

/// Reads EDN forms, tracking the line of each.
pub struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            src: text.as_bytes(),
            pos: 0,
            line: 1,
            depth: 0,
        }
    }

    pub fn line(&self) -> usize {
        self.line
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace, commas and `;` comments.
    pub fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => {
                    self.bump();
                }
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.src.len()
    }

    /// Reads one form, or returns the closing delimiter it found instead.
    fn read_or_close(&mut self) -> Result<Result<Val, u8>, CheckError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CheckError::parse(
                self.line,
                format!("forms nested at most {MAX_DEPTH} levels deep"),
            ));
        }
        let form = self.read_form();
        self.depth -= 1;
        form
    }

    fn read_form(&mut self) -> Result<Result<Val, u8>, CheckError> {
        self.skip_ws();
        let line = self.line;
        let Some(c) = self.peek() else {
            return Err(CheckError::parse(line, "an EDN value, found end of input"));
        };
        match c {
            b')' | b']' | b'}' => {
                self.bump();
                Ok(Err(c))
            }
            b'(' | b'[' => {
                self.bump();
                let close = if c == b'(' { b')' } else { b']' };
                Ok(Ok(Val::List(self.read_seq(close, line)?)))
            }
            b'{' => {
                self.bump();
                let items = self.read_seq(b'}', line)?;
                if items.len() % 2 != 0 {
                    return Err(CheckError::parse(
                        line,
                        "a map with an even number of forms (key value pairs)",
                    ));
                }
                let mut it = items.into_iter();
                let mut m = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    m.push((k, v));
                }
                Ok(Ok(Val::Map(m)))
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Ok(Ok(Val::List(self.read_seq(b'}', line)?)))
                    }
                    Some(b'_') => {
                        self.bump();
                        self.read()?;
                        self.read_or_close()
                    }
                    _ => {
                        // A tagged literal such as #jepsen.history.Op{...}: keep the form.
                        let _tag = self.read_atom();
                        self.read().map(Ok)
                    }
                }
            }
            b'"' => {
                self.bump();
                let mut out = Vec::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(CheckError::parse(
                                line,
                                "a closing '\"' for the string starting here, found the end of the input (truncated?)",
                            ));
                        }
                        Some(b'"') => break,
                        Some(b'\\') => match self.bump() {
                            Some(b'n') => out.push(b'\n'),
                            Some(b't') => out.push(b'\t'),
                            Some(b'r') => out.push(b'\r'),
                            Some(c) => out.push(c),
                            None => {
                                return Err(CheckError::parse(line, "an escaped character"));
                            }
                        },
                        Some(c) => out.push(c),
                    }
                }
                Ok(Ok(Val::Str(String::from_utf8_lossy(&out).into_owned())))
            }
            b'\\' => {
                self.bump();
                let a = self.read_atom();
                Ok(Ok(Val::Str(a)))
            }
            _ => {
                let a = self.read_atom();
                if a.is_empty() {
                    self.bump();
                    return Err(CheckError::parse(
                        line,
                        format!("an EDN value, found {:?}", c as char),
                    ));
                }
                Ok(Ok(atom(&a)))
            }
        }
    }

    fn read_atom(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || b",()[]{}\";".contains(&c) {
                break;
            }
            self.bump();
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    fn read_seq(&mut self, close: u8, open_line: usize) -> Result<Vec<Val>, CheckError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.pos >= self.src.len() {
                return Err(CheckError::parse(
                    open_line,
                    format!(
                        "a closing '{}' for the form opened here, found the end of the input (truncated?)",
                        close as char
                    ),
                ));
            }
            match self.read_or_close()? {
                Ok(v) => items.push(v),
                Err(c) if c == close => return Ok(items),
                Err(c) => {
                    return Err(CheckError::parse(
                        self.line,
                        format!("'{}', found '{}'", close as char, c as char),
                    ));
                }
            }
        }
    }

    /// Reads one complete form.
    pub fn read(&mut self) -> Result<Val, CheckError> {
        let line = self.line;
        match self.read_or_close()? {
            Ok(v) => Ok(v),
            Err(c) => Err(CheckError::parse(
                line,
                format!("an EDN value, found an unmatched '{}'", c as char),
            )),
        }
    }
}

fn atom(a: &str) -> Val {
    match a {
        "nil" => return Val::Nil,
        "true" => return Val::Bool(true),
        "false" => return Val::Bool(false),
        _ => {}
    }
    if let Some(k) = a.strip_prefix(':') {
        return Val::Keyword(k.to_string());
    }
    let digits = a.strip_suffix('N').unwrap_or(a);
    if let Ok(i) = digits.parse::<i64>() {
        return Val::Int(i);
    }
    if a.parse::<f64>().is_ok()
        || a.strip_suffix('M')
            .is_some_and(|x| x.parse::<f64>().is_ok())
    {
        return Val::Num(a.to_string());
    }
    Val::Symbol(a.to_string())
}

/// Parses one EDN value from a string (used for `--initial` and log values).
pub fn parse_value(text: &str) -> Result<Val, CheckError> {
    let mut r = Reader::new(text);
    let v = r.read()?;
    if !r.at_end() {
        return Err(CheckError::parse(r.line(), "a single EDN value"));
    }
    Ok(v)
}

fn map_get<'v>(m: &'v [(Val, Val)], key: &str) -> Option<&'v Val> {
    m.iter()
        .find(|(k, _)| matches!(k, Val::Keyword(s) if s == key))
        .map(|(_, v)| v)
}

/// Converts one Jepsen op map (`{:type :invoke, :f :cas, :value [1 4], :process 3}`).
pub fn op_map_to_event(v: &Val, line: usize) -> Result<Event, CheckError> {
    let Val::Map(m) = v else {
        return Err(CheckError::parse(
            line,
            format!(
                "an op map like {{:type :invoke, :f :read, :process 0, :value nil}}, found {v}"
            ),
        ));
    };
    let process = match map_get(m, "process") {
        Some(Val::Int(p)) => Process::Client(*p),
        Some(Val::Keyword(k)) if k == "nemesis" => Process::Nemesis,
        Some(other) => {
            return Err(CheckError::parse(
                line,
                format!(":process to be an integer or :nemesis, found {other}"),
            ));
        }
        None => return Err(CheckError::parse(line, "a :process entry in the op map")),
    };
    let kind = match map_get(m, "type") {
        Some(t) => t.as_text().and_then(EventType::parse).ok_or_else(|| {
            CheckError::parse(
                line,
                format!(":type to be one of :invoke :ok :fail :info, found {t}"),
            )
        })?,
        None => return Err(CheckError::parse(line, "a :type entry in the op map")),
    };
    let f = match map_get(m, "f") {
        Some(f) => match f.as_text() {
            Some(s) => s.to_string(),
            None => f.to_string(),
        },
        None if process == Process::Nemesis => String::new(),
        None => return Err(CheckError::parse(line, "an :f entry in the op map")),
    };
    let time = match map_get(m, "time") {
        None | Some(Val::Nil) => None,
        Some(Val::Int(t)) => Some(*t),
        Some(other) => {
            return Err(CheckError::parse(
                line,
                format!(":time to be an integer (nanoseconds), found {other}"),
            ));
        }
    };
    let index = match map_get(m, "index") {
        Some(Val::Int(i)) if *i >= 0 => Some(*i as u64),
        _ => None,
    };
    let key = match map_get(m, "key") {
        None | Some(Val::Nil) => None,
        Some(k) => Some(k.clone()),
    };
    Ok(Event {
        line,
        index,
        time,
        process,
        kind,
        f,
        key,
        value: map_get(m, "value").cloned().unwrap_or(Val::Nil),
    })
}

/// Parses a Jepsen/Knossos EDN history: one vector or list of op maps, or op
/// maps one after another (Porcupine's key-value files).
pub fn parse(text: &str) -> Result<Vec<Event>, CheckError> {
    let mut r = Reader::new(text);
    r.skip_ws();
    if matches!(r.peek(), Some(b'[') | Some(b'(')) {
        return parse_collection(text);
    }
    let mut events = Vec::new();
    while !r.at_end() {
        let line = r.line();
        let v = r.read()?;
        if !matches!(v, Val::Map(_)) {
            return Err(CheckError::parse(
                line,
                format!("an op map or a vector of op maps, found {v}"),
            ));
        }
        events.push(op_map_to_event(&v, line)?);
    }
    Ok(events)
}

/// Reads `[ {..} {..} ... ]` keeping each map's line.
fn parse_collection(text: &str) -> Result<Vec<Event>, CheckError> {
    let mut r = Reader::new(text);
    r.skip_ws();
    let open_line = r.line();
    let close = match r.bump() {
        Some(b'[') => b']',
        Some(b'(') => b')',
        _ => return Err(CheckError::parse(open_line, "'[' or '('")),
    };
    let mut events = Vec::new();
    loop {
        r.skip_ws();
        if r.pos >= r.src.len() {
            return Err(CheckError::parse(
                open_line,
                format!(
                    "a closing '{}' for the history opened here, found the end of the input (truncated?)",
                    close as char
                ),
            ));
        }
        let line = r.line();
        match r.read_or_close()? {
            Ok(v) => events.push(op_map_to_event(&v, line)?),
            Err(c) if c == close => break,
            Err(c) => {
                return Err(CheckError::parse(
                    line,
                    format!("'{}', found '{}'", close as char, c as char),
                ));
            }
        }
    }
    if !r.at_end() {
        return Err(CheckError::parse(
            r.line(),
            "end of input after the history's closing bracket",
        ));
    }
    Ok(events)
}
