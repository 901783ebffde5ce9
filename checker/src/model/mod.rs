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
    initial: &Val,
) -> Result<Vec<Box<dyn Job>>, CheckError> {
    match kind {
        ModelKind::Kv | ModelKind::Auto => kv::partitions(history, initial),
        ModelKind::Register | ModelKind::CasRegister => register::partitions(history, initial),
        ModelKind::Mutex => mutex::partitions(history),
        ModelKind::MultiRegister => multi_register::partitions(history, initial),
    }
}

pub(crate) fn bad_op(op: &Op, model: &str, expected: &str) -> CheckError {
    CheckError::parse(
        op.invoke_line,
        format!(
            "{expected} for model {model}; found f={:?} value={}",
            op.f, op.input
        ),
    )
}
