//! On-disk framing of records:
//! `[len u32 LE][crc32c u32 LE][type u8][payload]`, where `len` counts the
//! type byte and the payload and the checksum covers the same bytes.

use raftkv_core::{Entry, EntryKind, HardState, Index, Term};

pub(crate) const HEADER_LEN: usize = 8;

const TYPE_HARD_STATE: u8 = 1;
const TYPE_ENTRY: u8 = 2;
const TYPE_TRUNCATE: u8 = 3;
const TYPE_SNAPSHOT: u8 = 4;

const KIND_COMMAND: u8 = 0;
const KIND_NOOP: u8 = 1;

const HARD_STATE_LEN: usize = 8 + 1 + 8 + 8;
const ENTRY_FIXED_LEN: usize = 8 + 8 + 1;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    HardState(HardState),
    /// Deletes every entry with index >= the given one.
    Truncate(Index),
    Entry(Entry),
    /// A snapshot (last included index, term) installed from the leader:
    /// a log that holds that entry keeps what follows it, any other log is
    /// discarded and continues after the snapshot.
    Snapshot {
        index: Index,
        term: Term,
    },
}

/// Largest payload a frame can carry (its length must fit the u32 field).
pub(crate) const MAX_BODY_LEN: usize = u32::MAX as usize;

fn push_frame(out: &mut Vec<u8>, ty: u8, payload_parts: &[&[u8]]) {
    let body_len = 1 + payload_parts.iter().map(|p| p.len()).sum::<usize>();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(ty);
    for part in payload_parts {
        out.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn encode_hard_state(out: &mut Vec<u8>, hs: &HardState) {
    let mut p = [0u8; HARD_STATE_LEN];
    p[0..8].copy_from_slice(&hs.term.to_le_bytes());
    p[8] = u8::from(hs.vote.is_some());
    p[9..17].copy_from_slice(&hs.vote.unwrap_or(0).to_le_bytes());
    p[17..25].copy_from_slice(&hs.commit.to_le_bytes());
    push_frame(out, TYPE_HARD_STATE, &[&p]);
}

pub(crate) fn encode_truncate(out: &mut Vec<u8>, from: Index) {
    push_frame(out, TYPE_TRUNCATE, &[&from.to_le_bytes()]);
}

pub(crate) fn encode_snapshot(out: &mut Vec<u8>, index: Index, term: Term) {
    push_frame(
        out,
        TYPE_SNAPSHOT,
        &[&index.to_le_bytes(), &term.to_le_bytes()],
    );
}

/// Size of the body (type byte and payload) of an entry record.
pub(crate) fn entry_body_len(e: &Entry) -> usize {
    1 + ENTRY_FIXED_LEN + e.data.len()
}

pub(crate) fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    let mut p = [0u8; ENTRY_FIXED_LEN];
    p[0..8].copy_from_slice(&e.term.to_le_bytes());
    p[8..16].copy_from_slice(&e.index.to_le_bytes());
    p[16] = match e.kind {
        EntryKind::Command => KIND_COMMAND,
        EntryKind::Noop => KIND_NOOP,
    };
    push_frame(out, TYPE_ENTRY, &[&p, &e.data]);
}

/// The outcome of reading one frame at some offset.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A frame whose checksum matches: its type, payload and end offset.
    Valid {
        ty: u8,
        payload: &'a [u8],
        end: usize,
    },
    /// No valid frame starts here; says why.
    Bad(String),
}

pub(crate) fn is_known_type(ty: u8) -> bool {
    matches!(
        ty,
        TYPE_HARD_STATE | TYPE_ENTRY | TYPE_TRUNCATE | TYPE_SNAPSHOT
    )
}

pub(crate) fn read_frame(bytes: &[u8], pos: usize) -> Frame<'_> {
    let rest = &bytes[pos..];
    if rest.len() < HEADER_LEN {
        return Frame::Bad(format!(
            "incomplete record header ({} of {HEADER_LEN} bytes)",
            rest.len()
        ));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len == 0 {
        return Frame::Bad("record length is zero".to_string());
    }
    if len > rest.len() - HEADER_LEN {
        return Frame::Bad(format!(
            "record of {len} bytes extends past the end of the file ({} bytes left)",
            rest.len() - HEADER_LEN
        ));
    }
    let body = &rest[HEADER_LEN..HEADER_LEN + len];
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Frame::Bad(format!(
            "checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        ));
    }
    Frame::Valid {
        ty: body[0],
        payload: &body[1..],
        end: pos + HEADER_LEN + len,
    }
}

fn u64_at(p: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(p[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the body of a frame whose checksum already matched.
pub(crate) fn decode(ty: u8, p: &[u8]) -> Result<Record, String> {
    match ty {
        TYPE_HARD_STATE => {
            if p.len() != HARD_STATE_LEN {
                return Err(format!(
                    "hard state record has {} payload bytes, expected {HARD_STATE_LEN}",
                    p.len()
                ));
            }
            let vote = match p[8] {
                0 => None,
                1 => Some(u64_at(p, 9)),
                f => {
                    return Err(format!(
                        "hard state record has vote flag {f}, expected 0 or 1"
                    ));
                }
            };
            Ok(Record::HardState(HardState {
                term: u64_at(p, 0),
                vote,
                commit: u64_at(p, 17),
            }))
        }
        TYPE_TRUNCATE => {
            if p.len() != 8 {
                return Err(format!(
                    "truncate record has {} payload bytes, expected 8",
                    p.len()
                ));
            }
            Ok(Record::Truncate(u64_at(p, 0)))
        }
        TYPE_SNAPSHOT => {
            if p.len() != 16 {
                return Err(format!(
                    "snapshot record has {} payload bytes, expected 16",
                    p.len()
                ));
            }
            Ok(Record::Snapshot {
                index: u64_at(p, 0),
                term: u64_at(p, 8),
            })
        }
        TYPE_ENTRY => {
            if p.len() < ENTRY_FIXED_LEN {
                return Err(format!(
                    "entry record has {} payload bytes, expected at least {ENTRY_FIXED_LEN}",
                    p.len()
                ));
            }
            let kind = match p[16] {
                KIND_COMMAND => EntryKind::Command,
                KIND_NOOP => EntryKind::Noop,
                k => return Err(format!("entry record has unknown kind {k}")),
            };
            Ok(Record::Entry(Entry {
                term: u64_at(p, 0),
                index: u64_at(p, 8),
                kind,
                data: p[ENTRY_FIXED_LEN..].to_vec(),
            }))
        }
        t => Err(format!("unknown record type {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(rec: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        match rec {
            Record::HardState(hs) => encode_hard_state(&mut out, hs),
            Record::Truncate(i) => encode_truncate(&mut out, *i),
            Record::Entry(e) => encode_entry(&mut out, e),
            Record::Snapshot { index, term } => encode_snapshot(&mut out, *index, *term),
        }
        out
    }

    #[test]
    fn records_round_trip() {
        let recs = [
            Record::HardState(HardState {
                term: 7,
                vote: Some(3),
                commit: 42,
            }),
            Record::HardState(HardState {
                term: 1,
                vote: None,
                commit: 0,
            }),
            Record::Truncate(9),
            Record::Snapshot { index: 12, term: 4 },
            Record::Entry(Entry {
                term: 2,
                index: 5,
                kind: EntryKind::Command,
                data: b"hello".to_vec(),
            }),
            Record::Entry(Entry {
                term: 2,
                index: 6,
                kind: EntryKind::Noop,
                data: vec![],
            }),
        ];
        for rec in &recs {
            let bytes = one(rec);
            match read_frame(&bytes, 0) {
                Frame::Valid { ty, payload, end } => {
                    assert_eq!(end, bytes.len());
                    assert_eq!(&decode(ty, payload).unwrap(), rec);
                }
                Frame::Bad(r) => panic!("bad frame: {r}"),
            }
        }
    }

    #[test]
    fn damaged_frames_are_bad() {
        let bytes = one(&Record::Truncate(3));
        assert!(matches!(read_frame(&bytes[..5], 0), Frame::Bad(_)));
        assert!(matches!(
            read_frame(&bytes[..bytes.len() - 1], 0),
            Frame::Bad(_)
        ));
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(matches!(read_frame(&flipped, 0), Frame::Bad(_)));
        assert!(matches!(read_frame(&[0u8; 16], 0), Frame::Bad(_)));
    }
}
