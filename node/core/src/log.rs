//! The in-memory Raft log, its snapshot and its durability boundary.
//!
//! The log holds the entries from `first` on. Everything up to the
//! snapshot's index is covered by the caller's snapshot; entries at or
//! below it may still be held (for followers that lag) until the caller
//! compacts them, so `first <= snapshot.index + 1` always holds and the log
//! knows the term of every index from `first - 1` (when that is the
//! snapshot's index) to `last_index()`.
//!
//! Two boundaries move through it:
//! - `unstable_from`: the first entry not yet handed to the caller in a
//!   `Ready`;
//! - `durable`: the last entry the caller has reported durable.
//!
//! A truncation below either boundary pulls it back, so both always describe
//! a prefix of the current log.

use std::collections::VecDeque;

use crate::types::{Entry, Index, SnapshotMeta, Term};

#[derive(Debug)]
pub struct RaftLog {
    /// The newest snapshot the caller holds (index 0 without one).
    snapshot: SnapshotMeta,
    /// Index of `entries[0]` (or of the next entry when there is none).
    first: Index,
    entries: VecDeque<Entry>,
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
    /// Highest committed index handed out for applying (or covered by the
    /// snapshot the state machine was restored from).
    pub handed_out: Index,
    /// Highest index the caller reported applied.
    pub applied: Index,
}

impl RaftLog {
    /// A log restored from disk: everything in it is durable, and the
    /// caller's state machine holds the snapshot. `entries` must start at
    /// or below the snapshot's index + 1 and be contiguous.
    pub fn restored(
        snapshot: Option<SnapshotMeta>,
        entries: Vec<Entry>,
        committed: Index,
    ) -> RaftLog {
        let snapshot = snapshot.unwrap_or_default();
        let first = entries.first().map_or(snapshot.index + 1, |e| e.index);
        let last = first + entries.len() as Index - 1;
        let last = last.max(snapshot.index);
        RaftLog {
            first,
            entries: entries.into(),
            unstable_from: last + 1,
            pending_truncate: None,
            durable: last,
            writes: VecDeque::new(),
            committed: committed.max(snapshot.index),
            handed_out: snapshot.index,
            applied: snapshot.index,
            snapshot,
        }
    }

    /// First index held in the log.
    pub fn first_index(&self) -> Index {
        self.first
    }

    pub fn last_index(&self) -> Index {
        (self.first + self.entries.len() as Index - 1).max(self.snapshot.index)
    }

    pub fn last_term(&self) -> Term {
        self.term(self.last_index()).unwrap_or(0)
    }

    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// Term of the entry at `index`; 0 for index 0; `None` past the end or
    /// below what the log and its snapshot know.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        if let Some(e) = self.entry(index) {
            return Some(e.term);
        }
        (index == self.snapshot.index).then_some(self.snapshot.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index < self.first {
            return None;
        }
        self.entries.get((index - self.first) as usize)
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

    /// First index of the run of entries with the same term as `index`
    /// (as far back as the log knows terms).
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term(index).unwrap_or(0);
        let mut i = index;
        while i > 1 && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Last index whose entry has `term`, if any, searching at or below `from`
    /// (as far back as the log knows terms).
    pub fn last_index_of_term(&self, term: Term, from: Index) -> Option<Index> {
        let mut i = from.min(self.last_index());
        while i > 0 {
            let t = self.term(i)?;
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
        if self.entries.is_empty() {
            self.first = entry.index;
        }
        self.entries.push_back(entry);
    }

    /// Deletes every entry with index >= `from`.
    pub fn truncate(&mut self, from: Index) {
        debug_assert!(from > self.committed, "truncating committed entries");
        if from > self.last_index() {
            return;
        }
        self.entries.truncate((from - self.first) as usize);
        self.pull_back(from);
    }

    /// Pulls the handed-out and durable boundaries back below `from`.
    fn pull_back(&mut self, from: Index) {
        if from < self.unstable_from {
            self.unstable_from = from;
            self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
        }
        self.durable = self.durable.min(from - 1);
        for w in self.writes.iter_mut() {
            w.1 = w.1.min(from - 1);
        }
    }

    /// Records a snapshot the caller made durable. Older ones are ignored.
    pub fn snapshot_saved(&mut self, meta: SnapshotMeta) {
        if meta.index > self.snapshot.index {
            self.snapshot = meta;
        }
    }

    /// Drops the entries up to `to`, as far as the snapshot covers them and
    /// the state machine applied them. Returns the new first index.
    pub fn compact(&mut self, to: Index) -> Index {
        let to = to.min(self.applied).min(self.snapshot.index);
        while self.first <= to && !self.entries.is_empty() {
            self.entries.pop_front();
            self.first += 1;
        }
        if self.entries.is_empty() {
            self.first = self.first.max(to + 1);
        }
        self.first
    }

    /// Replaces the whole log with `snapshot` (a snapshot from the leader
    /// that this log does not match): the log continues after its index.
    pub fn install(&mut self, snapshot: SnapshotMeta) {
        let index = snapshot.index;
        self.entries.clear();
        self.first = index + 1;
        // Earlier writes in flight are superseded: once durable, they prove
        // nothing beyond the snapshot, which itself is durable only with the
        // ready that hands it out.
        self.durable = self.durable.min(index);
        for w in self.writes.iter_mut() {
            w.1 = w.1.min(index);
        }
        self.unstable_from = index + 1;
        self.pending_truncate = None;
        self.committed = index;
        self.handed_out = index;
        self.snapshot = snapshot;
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
        let start = self.unstable_from.max(self.first) - self.first;
        let entries = self.entries.range(start as usize..).cloned().collect();
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
        let lo = (self.handed_out + 1 - self.first) as usize;
        let out = self
            .entries
            .range(lo..(hi + 1 - self.first) as usize)
            .cloned()
            .collect();
        self.handed_out = hi;
        out
    }
}
