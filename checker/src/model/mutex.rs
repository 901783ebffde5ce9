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
    for (id, op) in checked_ops(history) {
        let acquire = match history.f(op) {
            "acquire" => true,
            "release" => false,
            _ => return Err(bad_op(history, op, "mutex", "f acquire or release")),
        };
        part.model.ops.push(acquire);
        part.op_ids.push(id);
        part.intervals.push(interval(history, op));
    }
    Ok(vec![Box::new(part)])
}
