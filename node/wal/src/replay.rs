//! Rebuilding the log's contents from the bytes of its segments, in order.

use raftkv_core::{Entry, Index, Term};

use raftkv_plant::{self as plant, Plant};

use crate::log_state::LogState;
use crate::record::{self, Frame, HEADER_LEN, Record};

/// The log as replayed so far: its state and the entries of its window.
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) state: LogState,
    /// The entries from `state.first_index()` on.
    pub(crate) entries: Vec<Entry>,
}

/// How one segment ended.
#[derive(Debug)]
pub(crate) struct SegmentEnd {
    /// Length of the valid prefix of the segment.
    pub(crate) valid_len: u64,
    /// Why the bytes after `valid_len` (if any) are a torn tail.
    pub(crate) torn_reason: Option<String>,
}

/// Damage that is not a torn tail.
#[derive(Debug)]
pub(crate) struct ReplayError {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

impl Replay {
    /// Replay of a log whose first segment starts at index `first`.
    pub(crate) fn starting_at(first: Index) -> Replay {
        Replay {
            state: LogState::starting_at(first),
            entries: Vec::new(),
        }
    }

    /// Replays the bytes of one segment. A damaged record with no valid
    /// record anywhere after it is a torn tail (an interrupted append or
    /// trailing zeros) and ends the log, if this is the `last` segment;
    /// damage followed by a valid record, or in an earlier segment, cannot
    /// come from an interrupted append, so it is an error.
    pub(crate) fn segment(&mut self, bytes: &[u8], last: bool) -> Result<SegmentEnd, ReplayError> {
        let mut frames: Vec<(usize, u8, &[u8])> = Vec::new();
        let mut pos = 0usize;
        let mut torn_reason = None;
        while pos < bytes.len() {
            match record::read_frame(bytes, pos) {
                Frame::Valid { ty, payload, end } => {
                    frames.push((pos, ty, payload));
                    pos = end;
                }
                Frame::Bad(reason) => {
                    if let Some(next) = find_valid_frame(bytes, pos + 1) {
                        return Err(ReplayError {
                            offset: pos as u64,
                            reason: format!(
                                "{reason}, but a valid record follows at offset {next}"
                            ),
                        });
                    }
                    if !last {
                        return Err(ReplayError {
                            offset: pos as u64,
                            reason: format!("{reason}, in a segment that later segments follow"),
                        });
                    }
                    if plant::is(Plant::TornTailCutsLastRecord)
                        && let Some((start, _, _)) = frames.pop()
                    {
                        pos = start;
                    }
                    torn_reason = Some(reason);
                    break;
                }
            }
        }
        for (at, ty, payload) in frames {
            let err = |reason: String| ReplayError {
                offset: at as u64,
                reason,
            };
            let rec = record::decode(ty, payload).map_err(err)?;
            self.apply(rec).map_err(err)?;
        }
        Ok(SegmentEnd {
            valid_len: pos as u64,
            torn_reason,
        })
    }

    fn apply(&mut self, rec: Record) -> Result<(), String> {
        let state = &mut self.state;
        match rec {
            Record::HardState(hs) => {
                state.check_hard_state(&hs)?;
                state.set_hard_state(hs);
            }
            Record::Truncate(_) if plant::is(Plant::ReplayKeepsOverwritten) => {}
            Record::Entry(e)
                if plant::is(Plant::ReplayKeepsOverwritten) && e.index <= state.last_index() => {}
            Record::Truncate(from) => {
                state.check_truncate(from)?;
                self.truncate(from);
            }
            Record::Entry(e) => {
                state.check_append(state.last_index(), std::slice::from_ref(&e))?;
                state.append(&e);
                self.entries.push(e);
            }
            Record::Snapshot { index, term } => {
                state.check_snapshot(index, term)?;
                self.install_snapshot(index, term);
            }
        }
        Ok(())
    }

    fn truncate(&mut self, from: Index) {
        let first = self.state.first_index();
        if from <= first {
            self.entries.clear();
        } else {
            self.entries.truncate((from - first) as usize);
        }
        self.state.truncate(from);
    }

    /// Puts the snapshot the node restarts from under the replayed log,
    /// which starts at or before the entry after it: a log that ends before
    /// the snapshot, or holds another entry at its index, is discarded; a
    /// log that holds its entry, or starts right after it, is kept.
    pub(crate) fn join_snapshot(&mut self, index: Index, term: Term) {
        if self.state.first_index() == index + 1 && self.state.term_at(index).is_none() {
            self.state.set_before(term);
        }
        self.install_snapshot(index, term);
    }

    /// The paper's rule: a log that holds the snapshot's last entry keeps
    /// it and what follows; any other log is discarded.
    pub(crate) fn install_snapshot(&mut self, index: Index, term: Term) {
        if self.state.term_at(index) != Some(term) {
            self.entries.clear();
        }
        self.state.install_snapshot(index, term);
    }
}

/// The first offset at or after `from` where a frame of a known type with a
/// matching checksum starts.
fn find_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_LEN)).find(|&q| {
        // Checking the type byte first keeps the scan cheap: only a few
        // offsets get their checksum computed.
        record::is_known_type(bytes[q + HEADER_LEN])
            && matches!(record::read_frame(bytes, q), Frame::Valid { .. })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::{EntryKind, HardState};

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Command,
            data: data.to_vec(),
        }
    }

    fn log() -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        starts.push(out.len());
        record::encode_hard_state(
            &mut out,
            &HardState {
                term: 1,
                vote: Some(1),
                commit: 0,
            },
        );
        for i in 1..=3 {
            starts.push(out.len());
            record::encode_entry(&mut out, &entry(i, 1, b"abc"));
        }
        starts.push(out.len());
        record::encode_truncate(&mut out, 3);
        starts.push(out.len());
        record::encode_entry(&mut out, &entry(3, 2, b"xyz"));
        (out, starts)
    }

    fn replay(bytes: &[u8]) -> Result<(Replay, SegmentEnd), ReplayError> {
        let mut r = Replay::starting_at(1);
        let end = r.segment(bytes, true)?;
        Ok((r, end))
    }

    #[test]
    fn replays_truncations() {
        let (bytes, _) = log();
        let (r, end) = replay(&bytes).unwrap();
        assert_eq!(r.entries.len(), 3);
        assert_eq!(r.entries[2], entry(3, 2, b"xyz"));
        assert_eq!(r.state.hard_state.vote, Some(1));
        assert_eq!(end.valid_len, bytes.len() as u64);
        assert!(end.torn_reason.is_none());
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let (mut bytes, _) = log();
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 100]);
        let (_, end) = replay(&bytes).unwrap();
        assert_eq!(end.valid_len, len as u64);
        assert!(end.torn_reason.is_some());
    }

    #[test]
    fn a_torn_tail_in_an_earlier_segment_is_an_error() {
        let (mut bytes, _) = log();
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 100]);
        let e = Replay::starting_at(1).segment(&bytes, false).unwrap_err();
        assert_eq!(e.offset, len as u64);
    }

    #[test]
    fn damage_before_valid_records_is_an_error() {
        let (mut bytes, starts) = log();
        bytes[starts[2] + 2] ^= 0xff; // length field of entry 2
        let e = replay(&bytes).unwrap_err();
        assert_eq!(e.offset, starts[2] as u64);
    }

    #[test]
    fn invalid_content_is_an_error() {
        let mut bytes = Vec::new();
        record::encode_entry(&mut bytes, &entry(1, 1, b""));
        let second = bytes.len();
        record::encode_entry(&mut bytes, &entry(3, 1, b""));
        let e = replay(&bytes).unwrap_err();
        assert_eq!(e.offset, second as u64);
        assert!(e.reason.contains("does not follow"), "{}", e.reason);
    }

    #[test]
    fn a_snapshot_record_replaces_a_log_that_does_not_hold_its_entry() {
        let (mut bytes, _) = log();
        record::encode_snapshot(&mut bytes, 9, 3);
        record::encode_entry(&mut bytes, &entry(10, 3, b"after"));
        let (r, _) = replay(&bytes).unwrap();
        assert_eq!(r.entries, vec![entry(10, 3, b"after")]);
        assert_eq!(r.state.first_index(), 10);

        // A matching one keeps the log.
        let (mut bytes, _) = log();
        record::encode_snapshot(&mut bytes, 2, 1);
        let (r, _) = replay(&bytes).unwrap();
        assert_eq!(r.entries.len(), 3);
    }

    #[test]
    fn a_later_segment_continues_the_window() {
        // Its predecessors deleted, a segment that starts at 101 truncates
        // back to 50 (entries a new leader replaced) and goes on from there.
        let mut bytes = Vec::new();
        record::encode_entry(&mut bytes, &entry(101, 4, b"a"));
        record::encode_truncate(&mut bytes, 50);
        record::encode_entry(&mut bytes, &entry(50, 5, b"b"));
        let mut r = Replay::starting_at(101);
        r.segment(&bytes, true).unwrap();
        assert_eq!(r.entries, vec![entry(50, 5, b"b")]);
        assert_eq!(r.state.first_index(), 50);
    }
}
