//! The invariants of the log, checked both when writing and when replaying,
//! so that the log never holds something replay would refuse.

use raftkv_core::{Entry, HardState, Index, Term};

/// What the log holds after the records so far: the latest hard state and
/// the term of every entry (entry `i` is at position `i - 1`).
#[derive(Debug, Default)]
pub(crate) struct LogState {
    pub(crate) hard_state: HardState,
    pub(crate) terms: Vec<Term>,
}

impl LogState {
    pub(crate) fn last_index(&self) -> Index {
        self.terms.len() as Index
    }

    fn term_at(&self, index: Index) -> Term {
        if index == 0 {
            0
        } else {
            self.terms[(index - 1) as usize]
        }
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

    pub(crate) fn check_truncate(&self, from: Index) -> Result<(), String> {
        if from == 0 || from > self.last_index() + 1 {
            return Err(format!(
                "truncation from index {from} is outside 1..={} (last index {})",
                self.last_index() + 1,
                self.last_index()
            ));
        }
        Ok(())
    }

    /// Checks that `entries` may follow the log once truncated to `last`
    /// (`last <= last_index()`): contiguous indexes, terms never decreasing.
    pub(crate) fn check_append(&self, last: Index, entries: &[Entry]) -> Result<(), String> {
        let mut prev_index = last;
        let mut prev_term = self.term_at(last);
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

    pub(crate) fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub(crate) fn truncate(&mut self, from: Index) {
        self.terms.truncate((from - 1) as usize);
    }

    pub(crate) fn append(&mut self, entry: &Entry) {
        self.terms.push(entry.term);
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
}
