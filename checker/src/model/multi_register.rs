//! Knossos's multi-register: `txn` ops whose value is a list of
//! `[:read k v]` / `[:write k v]` micro-ops over several registers.
//! Registers touched by a common txn form one partition (union-find).

use super::{Interner, Job, Partition, Semantics, bad_op, checked_ops, interval};
use crate::error::CheckError;
use crate::history::{History, Op, Status};
use crate::search::SeqModel;
use crate::value::Val;
use std::collections::HashMap;

/// A read whose value is unknown (an info txn's read, or a read of nil when
/// nil means "unknown").
const ANY: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct MicroOp {
    pub write: bool,
    /// Register index within the partition.
    pub reg: u32,
    pub value: u32,
}

pub struct MultiRegisterModel {
    pub ops: Vec<Vec<MicroOp>>,
    pub regs: Vec<Val>,
    pub values: Interner,
    /// Initial value of each register, by index.
    pub initial: Vec<u32>,
}

impl SeqModel for MultiRegisterModel {
    type State = Vec<u32>;
    fn init(&mut self) -> Vec<u32> {
        self.initial.clone()
    }
    fn step(&mut self, state: &Vec<u32>, op: usize) -> Option<Vec<u32>> {
        let mut s = state.clone();
        for m in &self.ops[op] {
            let r = m.reg as usize;
            if m.write {
                s[r] = m.value;
            } else if m.value != ANY && s[r] != m.value {
                return None;
            }
        }
        Some(s)
    }
    fn read_only(&self, op: usize) -> bool {
        self.ops[op].iter().all(|m| !m.write)
    }

    fn state_heap_bytes(&self, state: &Vec<u32>) -> usize {
        // The registers' values and the allocator's header.
        state.capacity() * 4 + 16
    }

    fn show_state(&self, state: &Vec<u32>) -> String {
        let parts: Vec<String> = self
            .regs
            .iter()
            .zip(state)
            .map(|(k, v)| format!("{} {}", k.short(), self.values.val(*v).short()))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

const EXPECTED: &str = "f txn with value [[:read k v] [:write k v] ...]";

fn micro_ops(history: &History, op: &Op) -> Result<Vec<(bool, Val, Val)>, CheckError> {
    let output = history.output(op);
    let src = if op.status == Status::Ok && !output.is_nil() {
        output
    } else {
        history.input(op)
    };
    let bad = || bad_op(history, op, "multi-register", EXPECTED);
    let list = src.as_list().ok_or_else(bad)?;
    let mut out = Vec::new();
    for m in list {
        match m.as_list() {
            Some([f, k, v]) => {
                let write = match f.as_text() {
                    Some("write") => true,
                    Some("read") => false,
                    _ => return Err(bad()),
                };
                out.push((write, k.clone(), v.clone()));
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

pub fn partitions(history: &History, sem: &Semantics) -> Result<Vec<Box<dyn Job>>, CheckError> {
    let mut reg_ids: HashMap<Val, usize> = HashMap::new();
    let mut regs: Vec<Val> = Vec::new();
    let mut parsed = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    for (id, op) in checked_ops(history) {
        if history.f(op) != "txn" {
            return Err(bad_op(history, op, "multi-register", EXPECTED));
        }
        let ms = micro_ops(history, op)?;
        let mut first = None;
        for (_, k, _) in &ms {
            let id = *reg_ids.entry(k.clone()).or_insert_with(|| {
                regs.push(k.clone());
                parent.push(parent.len());
                regs.len() - 1
            });
            match first {
                None => first = Some(id),
                Some(f) => {
                    let (a, b) = (find(&mut parent, f), find(&mut parent, id));
                    parent[a] = b;
                }
            }
        }
        if first.is_some() {
            parsed.push((id, op, ms));
        }
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut parts: Vec<Partition<MultiRegisterModel>> = Vec::new();
    let mut local: Vec<HashMap<usize, u32>> = Vec::new();
    for (id, op, ms) in parsed {
        let root = find(&mut parent, reg_ids[&ms[0].1]);
        let pi = *by_root.entry(root).or_insert_with(|| {
            parts.push(Partition {
                label: String::new(),
                op_ids: Vec::new(),
                intervals: Vec::new(),
                model: MultiRegisterModel {
                    ops: Vec::new(),
                    regs: Vec::new(),
                    values: Interner::default(),
                    initial: Vec::new(),
                },
            });
            local.push(HashMap::new());
            parts.len() - 1
        });
        let part = &mut parts[pi];
        let mut micro = Vec::new();
        for (write, k, v) in ms {
            let gid = reg_ids[&k];
            let model = &mut part.model;
            let reg = *local[pi].entry(gid).or_insert_with(|| {
                model.regs.push(k.clone());
                let init = model.values.id(sem.initial.of(&k));
                model.initial.push(init);
                (model.regs.len() - 1) as u32
            });
            let value = if !write && (op.status != Status::Ok || sem.nil_read.unconstrained(&v)) {
                ANY
            } else {
                model.values.id(&v)
            };
            micro.push(MicroOp { write, reg, value });
        }
        part.model.ops.push(micro);
        part.op_ids.push(id);
        part.intervals.push(interval(history, op));
    }
    Ok(parts
        .into_iter()
        .map(|mut p| {
            let names: Vec<String> = p.model.regs.iter().map(|r| r.to_string()).collect();
            p.label = crate::value::shorten(&names.join(","));
            Box::new(p) as Box<dyn Job>
        })
        .collect())
}
