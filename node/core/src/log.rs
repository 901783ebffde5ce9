//! The in-memory Raft log and its durability boundary.
//!
//! Every entry lives in memory (there are no snapshots yet, so the log starts
//! at index 1). Two boundaries move through it:
//! - `unstable_from`: the first entry not yet handed to the caller in a
//!   `Ready`;
//! - `durable`: the last entry the caller has reported durable.
//!
//! A truncation below either boundary pulls it back, so both always describe
//! a prefix of the current log.

use std::collections::VecDeque;

use crate::types::{Entry, Index, Term};

#[derive(Debug)]
pub struct RaftLog {
    /// `entries[i]` has index `i + 1`.
    entries: Vec<Entry>,
    /// First index not yet handed out in a `Ready`.
    unstable_from: Index,
    /// Set when handed-out entries must be deleted before the next write.
    pending_truncate: Option<Index>,
    /// Last index known durable on the local disk.
    durable: Index,
    /// Handed-out writes not yet durable: (ready number, last index written),
    /// the index clamped by later truncations.
    writes: VecDeque<(u64, Index)>,
    /// Highest index known committed.
    pub committed: Index,
    /// Highest committed index handed out for applying.
    pub handed_out: Index,
    /// Highest index the caller reported applied.
    pub applied: Index,
}

impl RaftLog {
    /// A log restored from disk: everything in it is durable.
    pub fn restored(entries: Vec<Entry>, committed: Index) -> RaftLog {
        let last = entries.len() as Index;
        RaftLog {
            entries,
            unstable_from: last + 1,
            pending_truncate: None,
            durable: last,
            writes: VecDeque::new(),
            committed,
            handed_out: 0,
            applied: 0,
        }
    }

    /// First index held in the log.
    pub fn first_index(&self) -> Index {
        1
    }

    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// Term of the entry at `index`; 0 for index 0, `None` past the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// True if the log has an entry at `index` with `term`.
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: a candidate with (last_term, last_index) is at least as up to
    /// date as this log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// First index of the run of entries with the same term as `index`.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term(index).unwrap_or(0);
        let mut i = index;
        while i > 1 && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Last index whose entry has `term`, if any, searching at or below `from`.
    pub fn last_index_of_term(&self, term: Term, from: Index) -> Option<Index> {
        let mut i = from.min(self.last_index());
        while i > 0 {
            let t = self.term(i).unwrap_or(0);
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i -= 1;
        }
        None
    }

    pub fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Deletes every entry with index >= `from`.
    pub fn truncate(&mut self, from: Index) {
        debug_assert!(from > self.committed, "truncating committed entries");
        if from > self.last_index() {
            return;
        }
        self.entries.truncate(from as usize - 1);
        if from < self.unstable_from {
            self.unstable_from = from;
            self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
        }
        self.durable = self.durable.min(from - 1);
        for w in self.writes.iter_mut() {
            w.1 = w.1.min(from - 1);
        }
    }

    /// Entries in `[lo, hi]`, at most `max_entries` and about `max_bytes`
    /// (always at least one).
    pub fn slice(&self, lo: Index, hi: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut i = lo;
        while i <= hi && out.len() < max_entries.max(1) {
            let Some(e) = self.entry(i) else { break };
            if !out.is_empty() && bytes + e.data.len() > max_bytes {
                break;
            }
            bytes += e.data.len();
            out.push(e.clone());
            i += 1;
        }
        out
    }

    pub fn has_unstable(&self) -> bool {
        self.pending_truncate.is_some() || self.unstable_from <= self.last_index()
    }

    /// Hands out the truncation and entries not yet given to the caller, as
    /// part of ready `number`.
    pub fn take_unstable(&mut self, number: u64) -> (Option<Index>, Vec<Entry>) {
        let truncate = self.pending_truncate.take();
        let entries = self.entries[self.unstable_from as usize - 1..].to_vec();
        self.unstable_from = self.last_index() + 1;
        self.writes.push_back((number, self.last_index()));
        (truncate, entries)
    }

    pub fn durable(&self) -> Index {
        self.durable
    }

    /// Records that ready `number` and all before it are durable.
    pub fn persisted(&mut self, number: u64) {
        while let Some(&(n, last)) = self.writes.front() {
            if n > number {
                break;
            }
            self.durable = self.durable.max(last);
            self.writes.pop_front();
        }
    }

    pub fn has_committed_to_hand_out(&self) -> bool {
        self.committed.min(self.durable) > self.handed_out
    }

    /// Committed, durable entries not yet handed out for applying.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let hi = self.committed.min(self.durable);
        if hi <= self.handed_out {
            return Vec::new();
        }
        let out = self.entries[self.handed_out as usize..hi as usize].to_vec();
        self.handed_out = hi;
        out
    }
}
