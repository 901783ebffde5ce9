//! Knossos's mutex: `acquire` needs it free, `release` needs it held.

use super::{Job, Partition, bad_op, checked_ops, interval};
use crate::error::CheckError;
use crate::history::History;
use crate::search::SeqModel;

pub struct MutexModel {
    /// true = acquire, false = release.
    pub ops: Vec<bool>,
}

impl SeqModel for MutexModel {
    type State = bool;
    fn init(&mut self) -> bool {
        false
    }
    fn step(&mut self, held: &bool, op: usize) -> Option<bool> {
        let acquire = self.ops[op];
        (acquire != *held).then_some(acquire)
    }
    fn show_state(&self, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_string()
    }
}

pub fn partitions(history: &History) -> Result<Vec<Box<dyn Job>>, CheckError> {
    let mut part = Partition {
        label: "mutex".to_string(),
        op_ids: Vec::new(),
        intervals: Vec::new(),
        model: MutexModel { ops: Vec::new() },
    };
    for op in checked_ops(history) {
        let acquire = match op.f.as_str() {
            "acquire" => true,
            "release" => false,
            _ => return Err(bad_op(op, "mutex", "f acquire or release")),
        };
        part.model.ops.push(acquire);
        part.op_ids.push(op.id);
        part.intervals.push(interval(op));
    }
    Ok(vec![Box::new(part)])
}
