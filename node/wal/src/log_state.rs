//! The invariants of the log, checked both when writing and when replaying,
//! so that the log never holds something replay would refuse.
//!
//! The state covers a window of the log: the entries from `first` on. What
//! lies below `first` is either covered by a snapshot (after a snapshot
//! record or a compaction) or unknown (replay that starts at a segment whose
//! predecessors were deleted); the term just below the window is kept when
//! known, so that terms are checked across the boundary.

use raftkv_core::{Entry, HardState, Index, Term};

#[derive(Debug)]
pub(crate) struct LogState {
    pub(crate) hard_state: HardState,
    /// Index of `terms[0]` (or of the next entry when there is none).
    first: Index,
    /// Term of every entry from `first` on.
    terms: Vec<Term>,
    /// Term of the entry at `first - 1`, when known (0 for index 0).
    before: Option<Term>,
    /// Index of the newest snapshot record replayed or written (0 if none).
    pub(crate) snapshot: Index,
}

impl Default for LogState {
    fn default() -> LogState {
        LogState::starting_at(1)
    }
}

impl LogState {
    /// An empty log whose next entry is `first`; what precedes it is
    /// unknown unless `first` is 1.
    pub(crate) fn starting_at(first: Index) -> LogState {
        LogState {
            hard_state: HardState::default(),
            first,
            terms: Vec::new(),
            before: (first == 1).then_some(0),
            snapshot: 0,
        }
    }

    pub(crate) fn first_index(&self) -> Index {
        self.first
    }

    pub(crate) fn last_index(&self) -> Index {
        self.first + self.terms.len() as Index - 1
    }

    /// Term of the entry at `index`, if the window knows it.
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index + 1 == self.first {
            return self.before;
        }
        if index < self.first {
            return None;
        }
        self.terms.get((index - self.first) as usize).copied()
    }

    /// A term never goes backwards, and a vote cast in a term never changes.
    pub(crate) fn check_hard_state(&self, hs: &HardState) -> Result<(), String> {
        let cur = &self.hard_state;
        if hs.term < cur.term {
            return Err(format!(
                "hard state term {} is lower than the previous term {}",
                hs.term, cur.term
            ));
        }
        if hs.term == cur.term && cur.vote.is_some() && hs.vote != cur.vote {
            return Err(format!(
                "hard state changes the vote in term {} from {:?} to {:?}",
                hs.term, cur.vote, hs.vote
            ));
        }
        Ok(())
    }

    /// A truncation deletes entries the log has (or the first one after
    /// them); below a snapshot there is nothing left to delete.
    pub(crate) fn check_truncate(&self, from: Index) -> Result<(), String> {
        if from == 0 || from > self.last_index() + 1 || from <= self.snapshot {
            return Err(format!(
                "truncation from index {from} is outside {}..={} (last index {}, snapshot {})",
                self.snapshot.max(1),
                self.last_index() + 1,
                self.last_index(),
                self.snapshot
            ));
        }
        Ok(())
    }

    /// Checks that `entries` may follow the log once truncated to `last`
    /// (`last <= last_index()`): contiguous indexes, terms never decreasing.
    pub(crate) fn check_append(&self, last: Index, entries: &[Entry]) -> Result<(), String> {
        let mut prev_index = last;
        let mut prev_term = self.term_at(last).unwrap_or(0);
        for e in entries {
            if e.index != prev_index + 1 {
                return Err(format!(
                    "entry index {} does not follow the last index {prev_index}",
                    e.index
                ));
            }
            if e.term < prev_term {
                return Err(format!(
                    "entry {} has term {}, lower than the previous entry's term {prev_term}",
                    e.index, e.term
                ));
            }
            prev_index = e.index;
            prev_term = e.term;
        }
        Ok(())
    }

    /// Snapshots never go back.
    pub(crate) fn check_snapshot(&self, index: Index, term: Term) -> Result<(), String> {
        if index == 0 || index < self.snapshot {
            return Err(format!(
                "snapshot at index {index} (term {term}) is older than the snapshot at {}",
                self.snapshot
            ));
        }
        Ok(())
    }

    /// Records the term of the entry just below the window.
    pub(crate) fn set_before(&mut self, term: Term) {
        self.before = Some(term);
    }

    pub(crate) fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub(crate) fn truncate(&mut self, from: Index) {
        if from <= self.first {
            // Below the window (possible only where the window's start is
            // unknown): the log now continues from `from`.
            self.before = self.term_at(from - 1);
            self.first = from;
            self.terms.clear();
        } else {
            self.terms.truncate((from - self.first) as usize);
        }
    }

    pub(crate) fn append(&mut self, entry: &Entry) {
        self.terms.push(entry.term);
    }

    /// The paper's rule for installing a snapshot: a log that holds the
    /// snapshot's last entry keeps what follows it; any other log is
    /// discarded and continues after the snapshot.
    pub(crate) fn install_snapshot(&mut self, index: Index, term: Term) {
        self.snapshot = index;
        if self.term_at(index) != Some(term) {
            self.first = index + 1;
            self.terms.clear();
            self.before = Some(term);
        }
    }

    /// Forgets the entries up to `through` (compacted behind a snapshot).
    pub(crate) fn compact(&mut self, through: Index) {
        if through < self.first {
            return;
        }
        let drop = ((through + 1 - self.first) as usize).min(self.terms.len());
        self.before = self.term_at(self.first + drop as Index - 1);
        self.terms.drain(..drop);
        self.first += drop as Index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::EntryKind;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Command,
            data: vec![],
        }
    }

    #[test]
    fn append_must_be_contiguous_with_non_decreasing_terms() {
        let mut s = LogState::default();
        assert!(s.check_append(0, &[e(1, 1), e(2, 1), e(3, 2)]).is_ok());
        assert!(s.check_append(0, &[e(2, 1)]).is_err());
        assert!(s.check_append(0, &[e(1, 2), e(2, 1)]).is_err());
        for x in [e(1, 1), e(2, 2)] {
            s.append(&x);
        }
        assert!(s.check_append(2, &[e(3, 1)]).is_err());
        assert!(s.check_append(1, &[e(2, 1)]).is_ok());
        assert!(s.check_truncate(0).is_err());
        assert!(s.check_truncate(4).is_err());
        assert!(s.check_truncate(3).is_ok());
    }

    #[test]
    fn hard_state_term_and_vote_rules() {
        let mut s = LogState::default();
        let hs = |term, vote| HardState {
            term,
            vote,
            commit: 0,
        };
        s.set_hard_state(hs(3, Some(1)));
        assert!(s.check_hard_state(&hs(2, None)).is_err());
        assert!(s.check_hard_state(&hs(3, Some(2))).is_err());
        assert!(s.check_hard_state(&hs(3, None)).is_err());
        assert!(s.check_hard_state(&hs(3, Some(1))).is_ok());
        assert!(s.check_hard_state(&hs(4, None)).is_ok());
    }

    #[test]
    fn a_snapshot_keeps_a_matching_log_and_replaces_any_other() {
        let mut s = LogState::default();
        for x in [e(1, 1), e(2, 1), e(3, 2), e(4, 2)] {
            s.append(&x);
        }
        s.install_snapshot(3, 2);
        assert_eq!((s.first_index(), s.last_index()), (1, 4));
        s.install_snapshot(6, 3);
        assert_eq!((s.first_index(), s.last_index()), (7, 6));
        assert_eq!(s.term_at(6), Some(3));
        assert!(
            s.check_append(6, &[e(7, 2)]).is_err(),
            "term below the snapshot's"
        );
        assert!(s.check_append(6, &[e(7, 3)]).is_ok());
        assert!(s.check_truncate(6).is_err(), "below the snapshot");
        assert!(s.check_snapshot(5, 3).is_err(), "older snapshot");
    }

    #[test]
    fn compaction_keeps_the_term_at_the_boundary() {
        let mut s = LogState::default();
        for x in [e(1, 1), e(2, 1), e(3, 2), e(4, 2)] {
            s.append(&x);
        }
        s.compact(2);
        assert_eq!((s.first_index(), s.last_index()), (3, 4));
        assert_eq!(s.term_at(2), Some(1));
        assert_eq!(s.term_at(1), None);
        s.compact(10);
        assert_eq!((s.first_index(), s.last_index()), (5, 4));
        assert_eq!(s.term_at(4), Some(2));
        assert!(s.check_append(4, &[e(5, 2)]).is_ok());
    }

    #[test]
    fn an_unknown_start_allows_truncation_below_it() {
        // Replay from a segment whose predecessors were deleted.
        let mut s = LogState::starting_at(101);
        for i in 101..=103 {
            s.append(&e(i, 5));
        }
        assert!(s.check_truncate(50).is_ok());
        s.truncate(50);
        assert_eq!((s.first_index(), s.last_index()), (50, 49));
        assert!(s.check_append(49, &[e(50, 6)]).is_ok());
    }
}
