//! A brute-force reference checker for small histories: tries every order of
//! the operations consistent with real time, against its own straightforward
//! key-value semantics (independent of [`crate::model`] and [`crate::search`]).
//! Used to cross-check the search.

use crate::history::{History, Status};
use crate::model::Semantics;
use crate::value::Val;
use std::collections::BTreeMap;

/// Largest number of ops [`linearizable_kv`] accepts.
pub const MAX_OPS: usize = 12;

type Store = BTreeMap<Option<Val>, Val>;

/// An op with its values decoded.
struct Op {
    id: usize,
    key: Option<Val>,
    f: String,
    input: Val,
    output: Val,
    status: Status,
    call: i64,
    /// Completion of an ok op.
    ret: Option<i64>,
}

fn ops(history: &History) -> Vec<Op> {
    history
        .ops
        .iter()
        .enumerate()
        .map(|(id, o)| Op {
            id,
            key: history.key(o),
            f: history.f(o).to_string(),
            input: history.input(o),
            output: history.output(o),
            status: o.status,
            call: history.call(o),
            ret: history.ret(o).filter(|_| o.status == Status::Ok),
        })
        .collect()
}

fn unconstrained(op: &Op, sem: &Semantics) -> bool {
    matches!(op.f.as_str(), "get" | "read") && sem.nil_read.unconstrained(&op.output)
}

fn apply(store: &Store, op: &Op, sem: &Semantics) -> Option<Store> {
    let initial = op
        .key
        .as_ref()
        .map_or(&sem.initial.default, |k| sem.initial.of(k));
    let cur = store.get(&op.key).unwrap_or(initial).clone();
    let mut next = store.clone();
    match op.f.as_str() {
        "set" | "put" | "write" => {
            next.insert(op.key.clone(), op.input.clone());
        }
        "get" | "read"
            if op.status == Status::Ok && op.output != cur && !unconstrained(op, sem) =>
        {
            return None;
        }
        "cas" => {
            let [expected, new] = op.input.as_list()? else {
                return None;
            };
            if *expected != cur {
                return None;
            }
            next.insert(op.key.clone(), new.clone());
        }
        "append" => {
            let mut s = match cur {
                Val::Str(s) => s,
                Val::Nil => String::new(),
                other => other.to_string(),
            };
            match &op.input {
                Val::Str(x) => s.push_str(x),
                other => s.push_str(&other.to_string()),
            }
            next.insert(op.key.clone(), Val::Str(s));
        }
        _ => {}
    }
    Some(next)
}

/// Whether the history is linearizable as a key-value map (ops without a key
/// act on one register). `None` if it has more than [`MAX_OPS`] ops.
pub fn linearizable_kv(history: &History, sem: &Semantics) -> Option<bool> {
    let ops: Vec<Op> = ops(history)
        .into_iter()
        .filter(|o| o.status != Status::Fail)
        .collect();
    if ops.len() > MAX_OPS {
        return None;
    }
    Some(dfs(&ops, (1u32 << ops.len()) - 1, &Store::new(), sem))
}

fn dfs(ops: &[Op], remaining: u32, store: &Store, sem: &Semantics) -> bool {
    let must_finish = |i: usize| ops[i].status == Status::Ok;
    if (0..ops.len()).all(|i| remaining & (1 << i) == 0 || !must_finish(i)) {
        return true;
    }
    for i in 0..ops.len() {
        if remaining & (1 << i) == 0 {
            continue;
        }
        // i may go next only if no remaining ok op completed before i began.
        let blocked = (0..ops.len()).any(|j| {
            remaining & (1 << j) != 0
                && must_finish(j)
                && ops[j].ret.is_some_and(|r| r < ops[i].call)
        });
        if blocked {
            continue;
        }
        if let Some(next) = apply(store, &ops[i], sem)
            && dfs(ops, remaining & !(1 << i), &next, sem)
        {
            return true;
        }
    }
    false
}

/// Whether `order` (history op ids) is a legal linearization of the ops on
/// `key` (all ops if `None`): it contains every ok op on the key, no fail op,
/// respects real time, and every op's output matches the key-value semantics
/// when applied in that order.
pub fn is_linearization(
    history: &History,
    key: Option<&Val>,
    order: &[usize],
    sem: &Semantics,
) -> bool {
    let ops = ops(history);
    let mut seen = vec![false; ops.len()];
    let mut store = Store::new();
    for (pos, &id) in order.iter().enumerate() {
        let op = &ops[id];
        if op.status == Status::Fail || seen[id] {
            return false;
        }
        seen[id] = true;
        // Every op placed later must not have completed before this began.
        if order[pos + 1..]
            .iter()
            .any(|&later| ops[later].ret.is_some_and(|r| r < op.call))
        {
            return false;
        }
        match apply(&store, op, sem) {
            Some(next) => store = next,
            None => return false,
        }
    }
    ops.iter()
        .filter(|o| key.is_none() || o.key.as_ref() == key)
        .filter(|o| o.f != "noop")
        .filter(|o| !unconstrained(o, sem))
        .all(|o| o.status != Status::Ok || seen[o.id])
}
