//! Sequential specifications, and how each splits a history into
//! independent partitions (P-compositionality).

pub mod kv;
pub mod multi_register;
pub mod mutex;
pub mod register;

use crate::error::CheckError;
use crate::history::{History, Op, Status};
use crate::search::{self, Control, FxBuild, Interval, SearchResult, SeqModel};
use crate::value::Val;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ModelKind {
    /// Chosen from the format and the operation names.
    #[default]
    Auto,
    /// Per-key map: set/put, get, cas, append; noop touches nothing.
    Kv,
    /// One register: read, write (cas accepted too).
    Register,
    /// One register: read, write, cas.
    CasRegister,
    /// acquire, release.
    Mutex,
    /// txn of [:read k v] / [:write k v] micro-ops.
    MultiRegister,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Auto => "auto",
            ModelKind::Kv => "kv",
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Mutex => "mutex",
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Guesses the model from the operations' names.
    pub fn detect(history: &History) -> ModelKind {
        let mut fs = history.ops.iter().map(|o| o.f.as_str());
        if history.ops.iter().any(|o| o.key.is_some()) {
            return ModelKind::Kv;
        }
        if fs.clone().any(|f| f == "txn") {
            return ModelKind::MultiRegister;
        }
        if fs.clone().any(|f| f == "acquire" || f == "release") {
            return ModelKind::Mutex;
        }
        if fs.any(|f| matches!(f, "read" | "write" | "cas")) {
            return ModelKind::CasRegister;
        }
        ModelKind::Kv
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelKind {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<ModelKind, CheckError> {
        Ok(match s {
            "auto" => ModelKind::Auto,
            "kv" => ModelKind::Kv,
            "register" => ModelKind::Register,
            "cas-register" => ModelKind::CasRegister,
            "mutex" => ModelKind::Mutex,
            "multi-register" => ModelKind::MultiRegister,
            _ => {
                return Err(CheckError::Usage(format!(
                    "unknown model {s:?}; expected kv, register, cas-register, mutex or multi-register"
                )));
            }
        })
    }
}

/// How an acknowledged read that returned nil is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NilRead {
    /// The register or key held nil (was absent): the read constrains.
    Absent,
    /// The value read is unknown, so the read is always legal (Knossos's
    /// register, cas-register and multi-register models).
    Unknown,
}

impl NilRead {
    pub fn as_str(self) -> &'static str {
        match self {
            NilRead::Absent => "absent",
            NilRead::Unknown => "unknown",
        }
    }

    /// Whether an ok read that returned `value` constrains nothing.
    pub fn unconstrained(self, value: &Val) -> bool {
        self == NilRead::Unknown && value.is_nil()
    }
}

impl FromStr for NilRead {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<NilRead, CheckError> {
        match s {
            "absent" => Ok(NilRead::Absent),
            "unknown" => Ok(NilRead::Unknown),
            _ => Err(CheckError::Usage(format!(
                "unknown nil-read rule {s:?}; expected auto, absent or unknown"
            ))),
        }
    }
}

/// Initial values of registers or keys: one for all, and per register or
/// key (from an `--initial` map for the kv and multi-register models).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Initial {
    pub default: Val,
    pub per_key: Vec<(Val, Val)>,
}

impl Initial {
    /// The same initial value everywhere.
    pub fn all(v: Val) -> Initial {
        Initial {
            default: v,
            per_key: Vec::new(),
        }
    }

    /// The initial value of `key`. Map keys match registers by value, or by
    /// name across keywords, strings and symbols (`:x` = `"x"`), so an EDN
    /// or JSON map fits either kind of history.
    pub fn of(&self, key: &Val) -> &Val {
        self.per_key
            .iter()
            .find(|(k, _)| k == key || (k.as_text().is_some() && k.as_text() == key.as_text()))
            .map_or(&self.default, |(_, v)| v)
    }
}

/// What a model needs besides the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Semantics {
    pub initial: Initial,
    pub nil_read: NilRead,
}

impl Default for Semantics {
    fn default() -> Self {
        Semantics {
            initial: Initial::default(),
            nil_read: NilRead::Absent,
        }
    }
}

/// One independent part of a history, ready to search.
pub trait Job: Send {
    /// What the partition is (a key, "register", ...).
    fn label(&self) -> &str;
    /// History op ids, in partition op order.
    fn op_ids(&self) -> &[usize];
    /// Runs the search.
    fn run(&mut self, ctl: &Control, explain: bool) -> SearchResult;
}

/// A partition checked against model `M`.
pub struct Partition<M> {
    pub label: String,
    pub op_ids: Vec<usize>,
    pub intervals: Vec<Interval>,
    pub model: M,
}

impl<M: SeqModel + Send> Job for Partition<M> {
    fn label(&self) -> &str {
        &self.label
    }
    fn op_ids(&self) -> &[usize] {
        &self.op_ids
    }
    fn run(&mut self, ctl: &Control, explain: bool) -> SearchResult {
        if explain {
            self.model.prepare_explanation();
        }
        search::search(&mut self.model, &self.intervals, ctl, explain)
    }
}

/// Interns values as small integers; 0 is always `nil`.
#[derive(Clone, Debug)]
pub struct Interner {
    ids: HashMap<Val, u32, FxBuild>,
    vals: Vec<Val>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i = Interner {
            ids: HashMap::default(),
            vals: Vec::new(),
        };
        i.id(&Val::Nil);
        i
    }
}

impl Interner {
    pub fn id(&mut self, v: &Val) -> u32 {
        if let Some(&i) = self.ids.get(v) {
            return i;
        }
        let i = self.vals.len() as u32;
        self.vals.push(v.clone());
        self.ids.insert(v.clone(), i);
        i
    }

    /// Number of distinct values interned so far.
    pub fn len(&self) -> usize {
        self.vals.len()
    }

    /// Takes the next id for a value that no lookup returns (shown as nil).
    pub fn push_anonymous(&mut self) -> u32 {
        self.vals.push(Val::Nil);
        self.vals.len() as u32 - 1
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    pub fn val(&self, id: u32) -> &Val {
        &self.vals[id as usize]
    }
}

/// Ops that take part in the check: fail ops are dropped.
pub fn checked_ops(history: &History) -> impl Iterator<Item = &Op> {
    history.ops.iter().filter(|o| o.status != Status::Fail)
}

pub fn interval(op: &Op) -> Interval {
    Interval {
        call: op.call,
        ret: if op.status == Status::Ok {
            op.ret
        } else {
            None
        },
    }
}

/// Splits `history` into jobs for `kind` (not `Auto`).
pub fn partitions(
    kind: ModelKind,
    history: &History,
    sem: &Semantics,
) -> Result<Vec<Box<dyn Job>>, CheckError> {
    match kind {
        ModelKind::Kv | ModelKind::Auto => kv::partitions(history, sem),
        ModelKind::Register | ModelKind::CasRegister => register::partitions(history, sem),
        ModelKind::Mutex => mutex::partitions(history),
        ModelKind::MultiRegister => multi_register::partitions(history, sem),
    }
}

pub(crate) fn bad_op(op: &Op, model: &str, expected: &str) -> CheckError {
    CheckError::parse(
        op.invoke_line,
        format!(
            "{expected} for model {model}; found f={} value={}",
            crate::value::quote_short(&op.f),
            op.input.short()
        ),
    )
}

/// How a key is named in reports: a string key as its text, any other value
/// as written; cut when long (see [`Val::short`]).
pub fn key_label(key: &Val) -> String {
    match key {
        Val::Str(s) => crate::value::shorten(s),
        other => other.short(),
    }
}
