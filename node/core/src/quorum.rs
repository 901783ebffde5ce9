//! Majority arithmetic shared by elections, commitment and ReadIndex.

/// Votes needed for a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest value that a majority of `values` (one per voter) reach.
pub fn quorum_value<T: Ord + Copy + Default>(values: &mut [T]) -> T {
    if values.is_empty() {
        return T::default();
    }
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[majority(values.len()) - 1]
}

/// Outcome of an election tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    Won,
    Lost,
    Pending,
}

/// Tallies `granted` and `rejected` votes out of `voters`.
pub fn tally(voters: usize, granted: usize, rejected: usize) -> VoteResult {
    let need = majority(voters);
    if granted >= need {
        VoteResult::Won
    } else if rejected >= need || voters - rejected < need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn quorum_value_is_the_majority_th_highest() {
        assert_eq!(quorum_value(&mut [5u64, 1, 3]), 3);
        assert_eq!(quorum_value(&mut [5u64, 1, 3, 9, 2]), 3);
        assert_eq!(quorum_value(&mut [7u64]), 7);
    }

    #[test]
    fn tally_outcomes() {
        assert_eq!(tally(3, 2, 0), VoteResult::Won);
        assert_eq!(tally(3, 1, 1), VoteResult::Pending);
        assert_eq!(tally(3, 1, 2), VoteResult::Lost);
        assert_eq!(tally(1, 1, 0), VoteResult::Won);
    }
}
