//! Client requests as they travel through the log, and their replies.
//!
//! Encoding of a [`Request`] (varints are LEB128):
//! `[version=1][client_id][seq][time_ms][tag]` then by tag
//! 0 Noop: nothing; 1 Set: `[key][value]`; 2 Cas: `[key][expected][new]`
//! where byte strings are length-prefixed and `expected` is a byte 0
//! (absent) or 1 followed by the value.

use crate::codec::{DecodeError, Reader, put_bytes, put_varint};

const REQUEST_VERSION: u8 = 1;

const TAG_NOOP: u8 = 0;
const TAG_SET: u8 = 1;
const TAG_CAS: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Set {
        key: String,
        value: Vec<u8>,
    },
    /// Sets `key` to `new_value` if its current value equals `expected`
    /// (`None`: the key is absent).
    Cas {
        key: String,
        expected: Option<Vec<u8>>,
        new_value: Vec<u8>,
    },
    Noop,
}

/// A command with the session that issued it and the leader's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub client_id: u64,
    pub seq: u64,
    /// Milliseconds since the Unix epoch by the leader that proposed it.
    pub time_ms: u64,
    pub command: Command,
}

/// The outcome of applying a request; `index` is the log index it was
/// applied at (a retry gets the original reply, index included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Set {
        index: u64,
    },
    Cas {
        applied: bool,
        /// The value before the request (`None`: absent).
        previous: Option<Vec<u8>>,
        index: u64,
    },
    Noop {
        index: u64,
    },
    /// The client has no session (never opened, or expired): not applied.
    SessionExpired,
    /// The sequence number is below the session's latest: not applied.
    StaleSequence {
        last_seq: u64,
    },
}

fn put_option(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
    match v {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
    }
}

fn read_option(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.bytes()?.to_vec())),
        f => Err(r.error(format!("option flag {f}, expected 0 or 1"))),
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.payload_len());
        out.push(REQUEST_VERSION);
        put_varint(&mut out, self.client_id);
        put_varint(&mut out, self.seq);
        put_varint(&mut out, self.time_ms);
        match &self.command {
            Command::Noop => out.push(TAG_NOOP),
            Command::Set { key, value } => {
                out.push(TAG_SET);
                put_bytes(&mut out, key.as_bytes());
                put_bytes(&mut out, value);
            }
            Command::Cas {
                key,
                expected,
                new_value,
            } => {
                out.push(TAG_CAS);
                put_bytes(&mut out, key.as_bytes());
                put_option(&mut out, expected);
                put_bytes(&mut out, new_value);
            }
        }
        out
    }

    fn payload_len(&self) -> usize {
        match &self.command {
            Command::Noop => 0,
            Command::Set { key, value } => key.len() + value.len(),
            Command::Cas {
                key,
                expected,
                new_value,
            } => key.len() + expected.as_ref().map_or(0, Vec::len) + new_value.len(),
        }
    }

    /// Decodes bytes made by [`Request::encode`]; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new("request", bytes);
        let version = r.u8()?;
        if version != REQUEST_VERSION {
            return Err(DecodeError {
                what: "request",
                offset: 0,
                reason: format!("unknown version {version}"),
            });
        }
        let client_id = r.varint()?;
        let seq = r.varint()?;
        let time_ms = r.varint()?;
        let command = match r.u8()? {
            TAG_NOOP => Command::Noop,
            TAG_SET => Command::Set {
                key: r.string()?,
                value: r.bytes()?.to_vec(),
            },
            TAG_CAS => Command::Cas {
                key: r.string()?,
                expected: read_option(&mut r)?,
                new_value: r.bytes()?.to_vec(),
            },
            t => return Err(r.error(format!("unknown command tag {t}"))),
        };
        r.finish()?;
        Ok(Request {
            client_id,
            seq,
            time_ms,
            command,
        })
    }
}

const REPLY_SET: u8 = 1;
const REPLY_CAS: u8 = 2;
const REPLY_NOOP: u8 = 3;
const REPLY_SESSION_EXPIRED: u8 = 4;
const REPLY_STALE: u8 = 5;

impl Reply {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Set { index } => {
                out.push(REPLY_SET);
                put_varint(out, *index);
            }
            Reply::Cas {
                applied,
                previous,
                index,
            } => {
                out.push(REPLY_CAS);
                out.push(u8::from(*applied));
                put_option(out, previous);
                put_varint(out, *index);
            }
            Reply::Noop { index } => {
                out.push(REPLY_NOOP);
                put_varint(out, *index);
            }
            Reply::SessionExpired => out.push(REPLY_SESSION_EXPIRED),
            Reply::StaleSequence { last_seq } => {
                out.push(REPLY_STALE);
                put_varint(out, *last_seq);
            }
        }
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
        Ok(match r.u8()? {
            REPLY_SET => Reply::Set { index: r.varint()? },
            REPLY_CAS => {
                let applied = match r.u8()? {
                    0 => false,
                    1 => true,
                    b => return Err(r.error(format!("boolean byte {b}"))),
                };
                let previous = read_option(r)?;
                Reply::Cas {
                    applied,
                    previous,
                    index: r.varint()?,
                }
            }
            REPLY_NOOP => Reply::Noop { index: r.varint()? },
            REPLY_SESSION_EXPIRED => Reply::SessionExpired,
            REPLY_STALE => Reply::StaleSequence {
                last_seq: r.varint()?,
            },
            t => return Err(r.error(format!("unknown reply tag {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let cases = [
            Command::Noop,
            Command::Set {
                key: "k".into(),
                value: vec![],
            },
            Command::Set {
                key: "ключ".into(),
                value: vec![0, 1, 2, 255],
            },
            Command::Cas {
                key: "c".into(),
                expected: None,
                new_value: b"v".to_vec(),
            },
            Command::Cas {
                key: "c".into(),
                expected: Some(vec![]),
                new_value: vec![],
            },
        ];
        for (i, command) in cases.into_iter().enumerate() {
            let req = Request {
                client_id: u64::MAX - i as u64,
                seq: 1 << (i * 9),
                time_ms: 1_700_000_000_000 + i as u64,
                command,
            };
            let bytes = req.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), req);
            // Every strict prefix is an error.
            for n in 0..bytes.len() {
                assert!(Request::decode(&bytes[..n]).is_err(), "prefix {n}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Request::decode(&longer).is_err());
        }
    }

    #[test]
    fn replies_round_trip() {
        let replies = [
            Reply::Set { index: 5 },
            Reply::Cas {
                applied: true,
                previous: None,
                index: 6,
            },
            Reply::Cas {
                applied: false,
                previous: Some(b"x".to_vec()),
                index: 1 << 40,
            },
            Reply::Noop { index: 7 },
            Reply::SessionExpired,
            Reply::StaleSequence { last_seq: 9 },
        ];
        for reply in replies {
            let mut out = Vec::new();
            reply.encode_into(&mut out);
            let mut r = Reader::new("reply", &out);
            assert_eq!(Reply::decode_from(&mut r).unwrap(), reply);
            r.finish().unwrap();
        }
    }

    #[test]
    fn decode_errors_say_what_and_where() {
        let e = Request::decode(&[9]).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.to_string().contains("unknown version 9"), "{e}");
        let e = Request::decode(&[1, 1, 1, 1, 7]).unwrap_err();
        assert!(e.to_string().contains("unknown command tag 7"), "{e}");
        let e = Request::decode(&[1, 1, 1, 1, 1, 2, 0xff, 0xfe, 0]).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }
}
