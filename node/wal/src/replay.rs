//! Rebuilding the log's contents from the bytes of the log file.

use raftkv_core::{Entry, HardState};

use raftkv_plant::{self as plant, Plant};

use crate::log_state::LogState;
use crate::record::{self, Frame, HEADER_LEN, Record};

/// What replay found.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) state: LogState,
    pub(crate) hard_state: HardState,
    pub(crate) entries: Vec<Entry>,
    /// Length of the valid prefix of the file.
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

/// Replays `bytes`. A damaged record with no valid record anywhere after it
/// is a torn tail (an interrupted append or trailing zeros) and ends the
/// log; damage followed by a valid record cannot come from an interrupted
/// append, so it is an error.
pub(crate) fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut state = LogState::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut pos = 0usize;
    // Start of the last complete record.
    let mut last_start = 0usize;
    let mut torn_reason = None;
    while pos < bytes.len() {
        match record::read_frame(bytes, pos) {
            Frame::Valid { ty, payload, end } => {
                last_start = pos;
                let err = |reason: String| ReplayError {
                    offset: pos as u64,
                    reason,
                };
                match record::decode(ty, payload).map_err(err)? {
                    Record::HardState(hs) => {
                        state.check_hard_state(&hs).map_err(err)?;
                        state.set_hard_state(hs);
                    }
                    Record::Truncate(_) if plant::is(Plant::ReplayKeepsOverwritten) => {}
                    Record::Entry(e)
                        if plant::is(Plant::ReplayKeepsOverwritten)
                            && e.index <= state.last_index() => {}
                    Record::Truncate(from) => {
                        state.check_truncate(from).map_err(err)?;
                        state.truncate(from);
                        entries.truncate((from - 1) as usize);
                    }
                    Record::Entry(e) => {
                        state
                            .check_append(state.last_index(), std::slice::from_ref(&e))
                            .map_err(err)?;
                        state.append(&e);
                        entries.push(e);
                    }
                }
                pos = end;
            }
            Frame::Bad(reason) => {
                if let Some(next) = find_valid_frame(bytes, pos + 1) {
                    return Err(ReplayError {
                        offset: pos as u64,
                        reason: format!("{reason}, but a valid record follows at offset {next}"),
                    });
                }
                if plant::is(Plant::TornTailCutsLastRecord) && pos > 0 {
                    let mut shorter = replay(&bytes[..last_start])?;
                    shorter.torn_reason = Some(reason);
                    return Ok(shorter);
                }
                torn_reason = Some(reason);
                break;
            }
        }
    }
    Ok(Replayed {
        hard_state: state.hard_state,
        state,
        entries,
        valid_len: pos as u64,
        torn_reason,
    })
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
    use raftkv_core::EntryKind;

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

    #[test]
    fn replays_truncations() {
        let (bytes, _) = log();
        let r = replay(&bytes).unwrap();
        assert_eq!(r.entries.len(), 3);
        assert_eq!(r.entries[2], entry(3, 2, b"xyz"));
        assert_eq!(r.hard_state.vote, Some(1));
        assert_eq!(r.valid_len, bytes.len() as u64);
        assert!(r.torn_reason.is_none());
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let (mut bytes, _) = log();
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 100]);
        let r = replay(&bytes).unwrap();
        assert_eq!(r.valid_len, len as u64);
        assert!(r.torn_reason.is_some());
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
}
