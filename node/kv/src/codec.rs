//! The byte-level pieces of the binary encodings: LEB128 varints and
//! length-prefixed byte strings, with a reader that never panics.

/// Bytes that are not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what} at byte {offset}: {reason}")]
pub struct DecodeError {
    /// What was being decoded ("request", "snapshot").
    pub what: &'static str,
    pub offset: usize,
    pub reason: String,
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(crate) struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Reader {
            what,
            bytes,
            pos: 0,
        }
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            what: self.what,
            offset: self.pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.error("unexpected end of input"))?;
        self.pos += 1;
        Ok(b)
    }

    /// A canonical LEB128 u64 (at most 10 bytes, no redundant zero groups).
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let group = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                self.pos = start;
                return Err(self.error("varint overflows 64 bits"));
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    self.pos = start;
                    return Err(self.error("varint is not in its shortest form"));
                }
                return Ok(v);
            }
        }
        self.pos = start;
        Err(self.error("varint longer than 10 bytes"))
    }

    pub(crate) fn len(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.varint()?;
        let left = self.bytes.len() - self.pos;
        if n > left as u64 {
            self.pos = start;
            return Err(self.error(format!("length {n} exceeds the {left} bytes left")));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        let b = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Eight bytes, little-endian.
    pub(crate) fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let end = self.pos + 8;
        let b = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.error("unexpected end of input"))?;
        let v = u64::from_le_bytes(b.try_into().expect("eight bytes"));
        self.pos = end;
        Ok(v)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        let b = self.bytes()?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => {
                self.pos = start;
                Err(self.error("string is not valid UTF-8"))
            }
        }
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.bytes.len() {
            return Err(self.error(format!("{} trailing bytes", self.bytes.len() - self.pos)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_bad_forms() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new("test", &out);
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
        for bad in [
            &[0x80u8][..],
            &[0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0xff; 11],
        ] {
            assert!(Reader::new("test", bad).varint().is_err(), "{bad:?}");
        }
    }
}
