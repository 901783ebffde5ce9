//! Values carried by operations, shared by every input format.

use std::fmt;

/// A value read from a history: JSON and EDN both map onto this.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    /// A number that is not an i64, kept as written.
    Num(String),
    Str(String),
    /// An EDN keyword, without the leading colon.
    Keyword(String),
    /// An EDN symbol.
    Symbol(String),
    List(Vec<Val>),
    Map(Vec<(Val, Val)>),
}

impl Val {
    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Nil)
    }

    /// The text of a string, keyword or symbol.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Keyword(s) | Val::Symbol(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Val]> {
        match self {
            Val::List(v) => Some(v),
            _ => None,
        }
    }

    /// Converts a JSON value.
    pub fn from_json(v: &serde_json::Value) -> Val {
        match v {
            serde_json::Value::Null => Val::Nil,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Num(n.to_string()),
            },
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            serde_json::Value::Object(o) => Val::Map(
                o.iter()
                    .map(|(k, v)| (Val::Str(k.clone()), Val::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON (keywords and symbols become strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Val::Nil => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::from(*i),
            Val::Num(s) => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(J::Number)
                .unwrap_or_else(|| J::String(s.clone())),
            Val::Str(s) | Val::Symbol(s) => J::String(s.clone()),
            Val::Keyword(s) => J::String(format!(":{s}")),
            Val::List(v) => J::Array(v.iter().map(Val::to_json).collect()),
            Val::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Val::Str(s) | Val::Keyword(s) | Val::Symbol(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

/// Values and texts longer than this many bytes are cut when shown to
/// people (text summaries, the timeline page).
pub const SHOWN_MAX: usize = 120;

/// Collects at most `max` bytes of what is written (at a char boundary),
/// counting all of it.
struct Capped {
    shown: String,
    max: usize,
    total: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        if self.shown.len() < self.max {
            let mut room = (self.max - self.shown.len()).min(s.len());
            while !s.is_char_boundary(room) {
                room -= 1;
            }
            self.shown.push_str(&s[..room]);
        }
        Ok(())
    }
}

/// `x` displayed, cut to [`SHOWN_MAX`] bytes with its full length noted:
/// `"aaaa…" (10485760 bytes)`.
pub fn shorten(x: &dyn fmt::Display) -> String {
    let mut c = Capped {
        shown: String::new(),
        max: SHOWN_MAX,
        total: 0,
    };
    let _ = fmt::write(&mut c, format_args!("{x}"));
    if c.total <= SHOWN_MAX {
        c.shown
    } else {
        format!("{}… ({} bytes)", c.shown, c.total)
    }
}

/// A text quoted as `{:?}` would, cut to [`SHOWN_MAX`] bytes.
pub fn quote_short(s: &str) -> String {
    shorten(&format_args!("{s:?}"))
}

impl Val {
    /// The value as shown to people: cut to [`SHOWN_MAX`] bytes, with the
    /// full length noted.
    pub fn short(&self) -> String {
        shorten(self)
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Nil => write!(f, "nil"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Num(s) | Val::Symbol(s) => write!(f, "{s}"),
            Val::Str(s) => write!(f, "{s:?}"),
            Val::Keyword(s) => write!(f, ":{s}"),
            Val::List(v) => {
                write!(f, "[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, "]")
            }
            Val::Map(m) => {
                write!(f, "{{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Val {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Val, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> serde::de::Visitor<'de> for ValVisitor {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Nil)
    }
    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Nil)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Val, E> {
        Ok(Val::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Val, E> {
        Ok(Val::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Val, E> {
        Ok(i64::try_from(u).map_or_else(|_| Val::Num(u.to_string()), Val::Int))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Val, E> {
        Ok(Val::Num(x.to_string()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Val, E> {
        Ok(Val::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Val, E> {
        Ok(Val::Str(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Val::List(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut m = Vec::new();
        while let Some((k, v)) = a.next_entry::<String, Val>()? {
            m.push((Val::Str(k), v));
        }
        Ok(Val::Map(m))
    }
}
