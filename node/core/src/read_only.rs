//! ReadIndex (§6.4 of Ongaro's dissertation).
//!
//! A read is queued until the leader has committed an entry of its own term.
//! Queued reads then start one quorum round together: the round records the
//! commit index at that moment and gets a fresh id that the leader's next
//! heartbeat carries. Once a quorum echoes an id, that round and every older
//! one are confirmed: the leader was still the leader after they started.

use std::collections::VecDeque;

use crate::types::{Index, ReadState};

#[derive(Debug)]
struct Round {
    id: u64,
    index: Index,
    ctxs: Vec<u64>,
}

#[derive(Debug, Default)]
pub struct ReadOnly {
    /// Reads that have not started a round yet.
    queued: Vec<u64>,
    /// Started, unconfirmed rounds, oldest first.
    rounds: VecDeque<Round>,
    /// Id of the latest round started (ids only grow, across terms too).
    last_round: u64,
}

impl ReadOnly {
    pub fn queue(&mut self, ctx: u64) {
        self.queued.push(ctx);
    }

    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Starts one round for every queued read at commit index `index`;
    /// returns its id.
    pub fn start_round(&mut self, index: Index) -> Option<u64> {
        if self.queued.is_empty() {
            return None;
        }
        self.last_round += 1;
        self.rounds.push_back(Round {
            id: self.last_round,
            index,
            ctxs: std::mem::take(&mut self.queued),
        });
        Some(self.last_round)
    }

    /// Id of the latest round started (0 if none).
    pub fn last_round(&self) -> u64 {
        self.last_round
    }

    pub fn has_pending_rounds(&self) -> bool {
        !self.rounds.is_empty()
    }

    /// A quorum has acknowledged round `id`: confirms it and all older rounds.
    pub fn confirm(&mut self, id: u64, out: &mut Vec<ReadState>) {
        while self.rounds.front().is_some_and(|r| r.id <= id) {
            let round = self.rounds.pop_front().expect("checked non-empty");
            out.extend(round.ctxs.into_iter().map(|ctx| ReadState {
                ctx,
                index: round.index,
            }));
        }
    }

    /// Leadership is lost: every read not yet confirmed fails.
    pub fn fail_all(&mut self, out: &mut Vec<u64>) {
        for round in self.rounds.drain(..) {
            out.extend(round.ctxs);
        }
        out.append(&mut self.queued);
    }
}
