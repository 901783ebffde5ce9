//! Knossos's `register` and `cas-register`: one register with `read`,
//! `write` and `cas`. An ok read's value must equal the register's; info
//! reads constrain nothing, and nor do ok reads of nil when nil means
//! "unknown" ([`super::NilRead`]).

use super::kv::{KvModel, KvOp};
use super::{Interner, Job, Partition, Semantics, bad_op, checked_ops, interval};
use crate::error::CheckError;
use crate::history::{History, Status};

const EXPECTED: &str = "f read (ok value read), write (value) or cas (value [expected new])";

pub fn partitions(history: &History, sem: &Semantics) -> Result<Vec<Box<dyn Job>>, CheckError> {
    let mut values = Interner::default();
    let initial = values.id(&sem.initial.default);
    let mut part = Partition {
        label: "register".to_string(),
        op_ids: Vec::new(),
        intervals: Vec::new(),
        model: KvModel::new(values, initial),
    };
    for op in checked_ops(history) {
        let values = &mut part.model.values;
        let rop = match op.f.as_str() {
            "write" | "set" => KvOp::Set(values.id(&op.input)),
            "read" | "get" => {
                if op.status != Status::Ok || sem.nil_read.unconstrained(&op.output) {
                    continue;
                }
                KvOp::Get(values.id(&op.output))
            }
            "cas" => match op.input.as_list() {
                Some([e, n]) => KvOp::Cas {
                    expected: values.id(e),
                    new: values.id(n),
                },
                _ => return Err(bad_op(op, "cas-register", "cas value [expected new]")),
            },
            _ => return Err(bad_op(op, "register", EXPECTED)),
        };
        part.model.ops.push(rop);
        part.op_ids.push(op.id);
        part.intervals.push(interval(op));
    }
    super::kv::simplify(&mut part);
    Ok(vec![Box::new(part)])
}
