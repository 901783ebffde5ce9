//! Sequential specifications, and how each splits a history into
//! independent partitions (P-compositionality).

pub mod kv;
pub mod multi_register;
pub mod mutex;
pub mod register;

use crate::encoding;
use crate::error::CheckError;
use crate::history::{History, Op, Status};
use crate::search::{self, Control, FxHasher, Interval, SearchResult, SeqModel};
use crate::value::Val;
use hashbrown::HashTable;
use std::fmt;
use std::hash::Hasher;
use std::str::FromStr;
use std::sync::Arc;

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
        let mut fs = history.fns.iter().map(String::as_str);
        if history.ops.iter().any(|o| !o.key.is_none()) {
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
    /// Runs the search for at most `budget` iterations (see
    /// [`search::search`]).
    fn run(&mut self, ctl: &Control, explain: bool, budget: u64) -> SearchResult;
    /// Called once the partition is decided: frees what only searching
    /// needs (a later [`run`](Job::run) builds it again).
    fn finish(&mut self) {}
    /// The model's state after each op of `order` (history op ids: a
    /// linearization of this partition or a prefix of one), as shown to
    /// people; `None` if an op of `order` is not in this partition or
    /// cannot take effect where it is.
    fn states_after(&mut self, order: &[usize]) -> Option<Vec<String>>;
}

/// A partition checked against model `M`.
pub struct Partition<M> {
    pub label: String,
    pub op_ids: Vec<usize>,
    pub intervals: Vec<Interval>,
    pub model: M,
}

impl<M: SeqModel + Send> Job for Partition<M>
where
    M::State: Send + 'static,
{
    fn label(&self) -> &str {
        &self.label
    }
    fn op_ids(&self) -> &[usize] {
        &self.op_ids
    }
    fn run(&mut self, ctl: &Control, explain: bool, budget: u64) -> SearchResult {
        if explain {
            self.model.prepare_explanation();
        }
        search::search(&mut self.model, &self.intervals, ctl, explain, budget)
    }
    fn states_after(&mut self, order: &[usize]) -> Option<Vec<String>> {
        let local: std::collections::HashMap<usize, usize> = self
            .op_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        // The real values, as an explanation shows them.
        self.model.prepare_explanation();
        let mut state = self.model.init();
        let mut out = Vec::with_capacity(order.len());
        for id in order {
            let next = local.get(id).and_then(|&op| self.model.step(&state, op));
            let Some(next) = next else {
                self.model.end_search();
                return None;
            };
            state = next;
            out.push(self.model.show_state(&state));
        }
        self.model.end_search();
        Some(out)
    }
}

/// Interns values as small dense ids; 0 is always `nil`. Values are kept
/// once, encoded ([`crate::encoding`]) in one byte arena, so an interner is a
/// few allocations however many values it holds: its memory is counted
/// exactly and freed at once.
#[derive(Clone, Debug)]
pub struct Interner {
    arena: Vec<u8>,
    /// End of each value's encoding in `arena`.
    ends: Vec<usize>,
    /// (id, 32-bit hash of its encoding): growing the table rehashes from
    /// the stored hash, never from the (possibly long) values.
    table: HashTable<(u32, u32)>,
    scratch: Vec<u8>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::with_capacity(0, 0)
    }
}

/// A value's 32-bit hash, and the table hash made from it.
fn bytes_hash(b: &[u8]) -> u32 {
    let mut h = FxHasher::default();
    h.write(b);
    (h.finish() >> 32) as u32
}

fn table_hash(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(h)
}

impl Interner {
    /// An interner with room for `values` values of `bytes` bytes in all
    /// before it grows.
    pub fn with_capacity(values: usize, bytes: usize) -> Interner {
        let mut i = Interner {
            arena: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(values),
            table: HashTable::with_capacity(values),
            scratch: Vec::new(),
        };
        i.id(&Val::Nil);
        i
    }

    pub fn id(&mut self, v: &Val) -> u32 {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encoding::encode(v, &mut buf);
        let id = self.id_encoded(&buf);
        self.scratch = buf;
        id
    }

    /// The id of an encoded value, interning it if new.
    pub fn id_encoded(&mut self, b: &[u8]) -> u32 {
        let h = bytes_hash(b);
        let found = self
            .table
            .find(table_hash(h), |&(i, hi)| hi == h && self.encoded(i) == b);
        if let Some(&(i, _)) = found {
            return i;
        }
        let i = self.ends.len() as u32;
        self.table
            .insert_unique(table_hash(h), (i, h), |&(_, hj)| table_hash(hj));
        self.arena.extend_from_slice(b);
        self.ends.push(self.arena.len());
        i
    }

    /// The encoding of value `id`.
    pub fn encoded(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.arena[if i == 0 { 0 } else { self.ends[i - 1] }..self.ends[i]]
    }

    /// Value `id`, decoded.
    pub fn val(&self, id: u32) -> Val {
        encoding::decode(self.encoded(id))
    }

    /// Number of distinct values interned so far.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Takes the next id for a value that no lookup returns (shown as nil).
    pub fn push_anonymous(&mut self) -> u32 {
        self.arena.extend_from_slice(encoding::NIL_BYTES);
        self.ends.push(self.arena.len());
        self.ends.len() as u32 - 1
    }

    /// Forgets the values interned after the first `len`, and the memory
    /// they took.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.ends.len() {
            return;
        }
        self.table.retain(|&mut (i, _)| (i as usize) < len);
        self.table.shrink_to_fit(|&(_, h)| table_hash(h));
        self.ends.truncate(len);
        self.ends.shrink_to_fit();
        self.arena.truncate(self.ends.last().copied().unwrap_or(0));
        self.arena.shrink_to_fit();
    }

    /// Bytes interning a value of up to `len` bytes may allocate: arrays
    /// that would be full double.
    pub fn growth(&self, len: usize) -> usize {
        let mut g = 0;
        if self.arena.len() + len > self.arena.capacity() {
            g += self.arena.capacity().max(len);
        }
        if self.ends.len() == self.ends.capacity() {
            g += self.ends.capacity().max(4) * 8;
        }
        if self.table.len() == self.table.capacity() {
            g += self.table.capacity().max(4) * 9;
        }
        g
    }

    /// Bytes allocated (a table slot: id, hash and a control byte).
    pub fn bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 9
    }
}

/// Ops that take part in the check, with their ids: fail ops are dropped.
pub fn checked_ops(history: &History) -> impl Iterator<Item = (usize, &Op)> {
    history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status != Status::Fail)
}

/// An op's interval: ok ops return; info ops may take effect any time after
/// their invoke.
pub fn interval(history: &History, op: &Op) -> Interval {
    Interval {
        call: history.call(op),
        ret: if op.status == Status::Ok {
            history.ret(op)
        } else {
            None
        },
    }
}

/// Whether `op` is a read that constrains nothing: one that did not return
/// ok, or (when nil means "unknown") returned nil.
pub fn unconstrained_read(history: &History, op: &Op, nil_read: NilRead) -> bool {
    matches!(history.f(op), "get" | "read") && read_constrains_nothing(history, op, nil_read)
}

/// Whether `op`, a read, constrains nothing (see [`unconstrained_read`]).
pub fn read_constrains_nothing(history: &History, op: &Op, nil_read: NilRead) -> bool {
    op.status != Status::Ok
        || (nil_read == NilRead::Unknown && encoding::is_nil(history.values.get(op.output)))
}

/// Splits `history` into jobs for `kind` (not `Auto`), on up to `threads`
/// threads.
pub fn partitions(
    kind: ModelKind,
    history: &Arc<History>,
    sem: &Semantics,
    threads: usize,
) -> Result<Vec<Box<dyn Job>>, CheckError> {
    match kind {
        ModelKind::Kv | ModelKind::Auto => kv::partitions(history, sem, threads),
        ModelKind::Register | ModelKind::CasRegister => register::partitions(history, sem),
        ModelKind::Mutex => mutex::partitions(history),
        ModelKind::MultiRegister => multi_register::partitions(history, sem),
    }
}

pub(crate) fn bad_op(history: &History, op: &Op, model: &str, expected: &str) -> CheckError {
    CheckError::parse(
        op.invoke_line as usize,
        format!(
            "{expected} for model {model}; found f={} value={}",
            crate::value::quote_short(history.f(op)),
            history.input(op).short()
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
