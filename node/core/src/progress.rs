//! What the leader knows about each follower's log.

use std::collections::VecDeque;

use crate::types::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// The follower's log position is unknown: send one Append at a time and
    /// wait for its answer (or the next heartbeat response) before the next.
    Probe,
    /// The follower matched recently: stream Appends optimistically, up to
    /// `max_inflight` unacknowledged ones.
    Replicate,
    /// The follower needs entries the leader compacted: a snapshot is on its
    /// way and nothing else is sent until it is acknowledged or its transfer
    /// reported.
    Snapshot,
}

#[derive(Debug, Clone)]
pub struct Progress {
    /// Highest index known replicated (and durable) on the follower.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    pub state: ProgressState,
    /// In Probe: an Append is out and unanswered.
    pub probe_sent: bool,
    /// Last index of each unacknowledged Append, in send order.
    pub inflight: VecDeque<Index>,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Highest ReadIndex round this follower has acknowledged.
    pub read_ack: u64,
    /// In Snapshot: the index of the snapshot in flight.
    pub pending_snapshot: Index,
}

impl Progress {
    pub fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            read_ack: 0,
            pending_snapshot: 0,
        }
    }

    /// True if no more Appends with entries may be sent now.
    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight.max(1),
            ProgressState::Snapshot => true,
        }
    }

    /// Records an Append whose last entry is `last` was sent.
    pub fn sent(&mut self, last: Index) {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent = true,
            ProgressState::Replicate => {
                self.next_index = last + 1;
                self.inflight.push_back(last);
            }
        }
    }

    /// A successful AppendResponse for `index`. Returns true if it moved the
    /// match index.
    pub fn on_ack(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        let moved = index > self.match_index;
        if moved {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
        }
        match self.state {
            ProgressState::Probe if index == self.match_index => self.become_replicate(),
            // The follower has (at least) the snapshot: stream from there.
            ProgressState::Snapshot if self.match_index >= self.pending_snapshot => {
                self.become_replicate()
            }
            _ => {}
        }
        moved
    }

    pub fn become_probe(&mut self, next_index: Index) {
        self.state = ProgressState::Probe;
        self.next_index = next_index.max(self.match_index + 1);
        self.probe_sent = false;
        self.inflight.clear();
        self.pending_snapshot = 0;
    }

    /// A snapshot of `index` is being sent: nothing else until it is done.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot;
        self.pending_snapshot = index;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// The transfer of the snapshot in flight ended. On success the follower
    /// continues after the snapshot; either way the next Append waits for
    /// its answer or the next heartbeat response (so a failed transfer is
    /// retried at the heartbeat pace, not in a loop).
    pub fn snapshot_sent(&mut self, success: bool) {
        let next = if success {
            self.pending_snapshot + 1
        } else {
            self.match_index + 1
        };
        self.become_probe(next);
        self.probe_sent = true;
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
        self.pending_snapshot = 0;
    }
}
