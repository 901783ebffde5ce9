//! The key-value model: each key is an independent register with `set`/`put`,
//! `get`, `cas` and `append`; `noop` touches no key.

use super::{Interner, Job, Partition, bad_op, checked_ops, interval};
use crate::error::CheckError;
use crate::history::{History, Status};
use crate::search::{FxBuild, SeqModel};
use crate::value::Val;
use std::collections::HashMap;

/// One operation on a key, values interned (0 = absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOp {
    Set(u32),
    /// A read that returned this value.
    Get(u32),
    Cas {
        expected: u32,
        new: u32,
    },
    Append(u32),
}

/// The sequential model of one key.
pub struct KvModel {
    pub ops: Vec<KvOp>,
    pub values: Interner,
    pub initial: u32,
}

impl SeqModel for KvModel {
    type State = u32;

    fn init(&mut self) -> u32 {
        self.initial
    }

    fn step(&mut self, state: &u32, op: usize) -> Option<u32> {
        match self.ops[op] {
            KvOp::Set(v) => Some(v),
            KvOp::Get(v) => (v == *state).then_some(*state),
            KvOp::Cas { expected, new } => (expected == *state).then_some(new),
            KvOp::Append(suffix) => {
                let mut s = match self.values.val(*state) {
                    Val::Str(s) => s.clone(),
                    Val::Nil => String::new(),
                    other => other.to_string(),
                };
                match self.values.val(suffix) {
                    Val::Str(x) => s.push_str(x),
                    other => s.push_str(&other.to_string()),
                }
                Some(self.values.id(&Val::Str(s)))
            }
        }
    }

    fn show_state(&self, state: &u32) -> String {
        match self.values.val(*state) {
            Val::Nil => "absent".to_string(),
            v => v.to_string(),
        }
    }
}

const EXPECTED: &str = "f set/put (value), get (ok value read, null = absent), cas (value [expected, new]), append (value) or noop, each but noop with a key";

/// Splits by key. Info reads and noops constrain nothing and are left out.
pub fn partitions(history: &History, initial: &Val) -> Result<Vec<Box<dyn Job>>, CheckError> {
    let mut by_key: HashMap<&Val, usize, FxBuild> = HashMap::default();
    let mut parts: Vec<Partition<KvModel>> = Vec::new();
    for op in checked_ops(history) {
        let unconstrained_read = matches!(op.f.as_str(), "get" | "read") && op.status != Status::Ok;
        if op.f == "noop" || unconstrained_read {
            continue;
        }
        let Some(key) = &op.key else {
            return Err(bad_op(op, "kv", EXPECTED));
        };
        let pi = *by_key.entry(key).or_insert_with(|| {
            let mut values = Interner::default();
            let initial = values.id(initial);
            parts.push(Partition {
                label: match key {
                    Val::Str(s) => s.clone(),
                    other => other.to_string(),
                },
                op_ids: Vec::new(),
                intervals: Vec::new(),
                model: KvModel {
                    ops: Vec::new(),
                    values,
                    initial,
                },
            });
            parts.len() - 1
        });
        let part = &mut parts[pi];
        let values = &mut part.model.values;
        let kop = match op.f.as_str() {
            "set" | "put" | "write" => KvOp::Set(values.id(&op.input)),
            "get" | "read" => KvOp::Get(values.id(&op.output)),
            "cas" => match op.input.as_list() {
                Some([e, n]) => KvOp::Cas {
                    expected: values.id(e),
                    new: values.id(n),
                },
                _ => return Err(bad_op(op, "kv", "cas value [expected, new]")),
            },
            "append" => KvOp::Append(values.id(&op.input)),
            _ => return Err(bad_op(op, "kv", EXPECTED)),
        };
        part.model.ops.push(kop);
        part.op_ids.push(op.id);
        part.intervals.push(interval(op));
    }
    Ok(parts
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn Job>)
        .collect())
}
