//! Knossos's `register` and `cas-register`: one register with `read`,
//! `write` and `cas`. An ok read's value must equal the register's; info
//! reads constrain nothing, and nor do ok reads of nil when nil means
//! "unknown" ([`super::NilRead`]).

use super::kv::{KvModel, KvOp};
use super::{
    Interner, Job, Partition, Semantics, bad_op, checked_ops, interval, unconstrained_read,
};
use crate::encoding;
use crate::error::CheckError;
use crate::history::History;

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
    for (id, op) in checked_ops(history) {
        let values = &mut part.model.values;
        let input = history.values.get(op.input);
        let rop = match history.f(op) {
            "write" | "set" => KvOp::Set(values.id_encoded(input)),
            "read" | "get" => {
                if unconstrained_read(history, op, sem.nil_read) {
                    continue;
                }
                KvOp::Get(values.id_encoded(history.values.get(op.output)))
            }
            "cas" => match encoding::list_items::<2>(input) {
                Some([e, n]) => KvOp::Cas {
                    expected: values.id_encoded(e),
                    new: values.id_encoded(n),
                },
                _ => {
                    return Err(bad_op(
                        history,
                        op,
                        "cas-register",
                        "cas value [expected new]",
                    ));
                }
            },
            _ => return Err(bad_op(history, op, "register", EXPECTED)),
        };
        part.model.ops.push(rop);
        part.op_ids.push(id);
        part.intervals.push(interval(history, op));
    }
    super::kv::simplify(&mut part);
    Ok(vec![Box::new(part)])
}
