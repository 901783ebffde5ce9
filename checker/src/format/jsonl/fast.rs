//! The fast paths: lines in the common shape, parsed without serde_json;
//! `None` sends the line to serde_json.

use super::{Batch, Ev};
use crate::encoding;
use crate::history::EventType;

/// Bytes that end a plain string or need a look: the quote, a backslash,
/// control characters and non-ASCII bytes.
const STOPS_STRING: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c == b'"' as usize || c == b'\\' as usize || c < 0x20 || c >= 0x80;
        c += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (first byte lowest) that ends a plain
/// string or needs a look. Only the lowest bit set is exact (a borrow can
/// mark a byte above a marked one), which is all [`Cur::string`] uses.
fn string_stops(x: u64) -> u64 {
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGHS;
    zero(x ^ (ONES * u64::from(b'"')))
        | zero(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
        | (x & HIGHS)
}

/// How many of the bytes of `x` (first byte lowest) are ASCII digits
/// before the first that is not.
fn digit_run(x: u64) -> usize {
    let a = x ^ (ONES * u64::from(b'0'));
    // Per byte, without carries between bytes: the high bit is set when
    // the low seven bits are 10 or more, or the byte's own high bit is.
    let non_digit = (((a & !HIGHS) + ONES * 0x76) | a) & HIGHS;
    non_digit.trailing_zeros() as usize / 8
}

/// The value of the first `k` (1..=8) bytes of `x`, ASCII digits, the
/// first the most significant.
fn digits_value(x: u64, k: usize) -> u64 {
    // Digits moved to the top bytes (zeros before them), then combined in
    // pairs, fours and eights.
    let v = (x & (ONES * 0x0f)) << (8 * (8 - k));
    let v = (v.wrapping_mul(2561) >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(6_553_601) >> 16) & 0x0000_ffff_0000_ffff;
    v.wrapping_mul(42_949_672_960_001) >> 32
}

const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// A position in a line. With `SPACES` false (the template's lines) no
/// whitespace is skipped anywhere, and none is looked for.
struct Cur<'a, const SPACES: bool> {
    b: &'a [u8],
    i: usize,
}

impl<'a, const SPACES: bool> Cur<'a, SPACES> {
    fn ws(&mut self) {
        while SPACES && self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string without escapes or control characters, valid UTF-8:
    /// its bytes.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        // Most strings are plain ASCII: one pass to the first byte that
        // ends them or needs a look, eight bytes at a time.
        let mut stop = 0;
        loop {
            if let Some(word) = rest.get(stop..stop + 8) {
                let stops = string_stops(u64::from_le_bytes(word.try_into().expect("8 bytes")));
                if stops == 0 {
                    stop += 8;
                    continue;
                }
                stop += stops.trailing_zeros() as usize / 8;
                break;
            }
            stop += rest[stop..]
                .iter()
                .position(|&c| STOPS_STRING[c as usize])?;
            break;
        }
        let end = match rest[stop] {
            b'"' => stop,
            // Escapes and control characters: the slow path.
            b'\\' | 0..0x20 => return None,
            // Non-ASCII: valid UTF-8 up to the quote, no escape in it.
            _ => {
                let end = stop + rest[stop..].iter().position(|&c| c == b'"')?;
                let s = &rest[..end];
                if s.iter().any(|&c| c < 0x20 || c == b'\\') || std::str::from_utf8(s).is_err() {
                    return None;
                }
                end
            }
        };
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// The bytes up to the next quote, unchecked: for field names,
    /// which are then compared with the known ones.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let end = rest.iter().position(|&c| c == b'"')?;
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// An integer that fits an i64 (no fraction or exponent).
    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        self.ws();
        let rest = &self.b[self.i..];
        let negative = rest.first() == Some(&b'-');
        let digits = &rest[usize::from(negative)..];
        // Eight digits at a time while eight bytes are left, then one by
        // one; wrapping, as more than 19 digits are read again below.
        let (mut n, mut len) = (0u64, 0usize);
        loop {
            if let Some(word) = digits.get(len..len + 8) {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                let k = digit_run(word);
                if k > 0 {
                    n = n.wrapping_mul(POW10[k]).wrapping_add(digits_value(word, k));
                    len += k;
                }
                if k == 8 {
                    continue;
                }
                break;
            }
            match digits.get(len) {
                Some(&c) if c.is_ascii_digit() => {
                    n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                    len += 1;
                }
                _ => break,
            }
        }
        if len == 0
            || matches!(digits.get(len), Some(b'.' | b'e' | b'E'))
            || (digits[0] == b'0' && len > 1)
        {
            return None;
        }
        if len > 19 {
            n = digits[..len].iter().try_fold(0u64, |n, &c| {
                n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            })?;
        }
        self.i += usize::from(negative) + len;
        match (negative, n) {
            // serde_json reads -0 as a float.
            (true, 0) => None,
            (true, n) if n <= 1 << 63 => Some((n as i64).wrapping_neg()),
            (true, _) => None,
            (false, n) => i64::try_from(n).ok(),
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    /// Encodes one JSON value into `out`.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > crate::format::edn::MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => {
                let s = self.string()?;
                encoding::put_str_bytes(out, s);
            }
            b'n' if self.word(b"null") => encoding::put_nil(out),
            b't' if self.word(b"true") => encoding::put_bool(out, true),
            b'f' if self.word(b"false") => encoding::put_bool(out, false),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                let mut n = 0u64;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value(&mut items, depth + 1)?;
                        n += 1;
                        self.ws();
                        match *self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                encoding::put_list_header(out, n);
                out.extend_from_slice(&items);
            }
            b'{' => {
                self.i += 1;
                let mut items = Vec::new();
                let mut n = 0u64;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        let k = self.string()?;
                        encoding::put_str_bytes(&mut items, k);
                        self.eat(b':')?;
                        self.value(&mut items, depth + 1)?;
                        n += 1;
                        self.ws();
                        match *self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                encoding::put_map_header(out, n);
                out.extend_from_slice(&items);
            }
            _ => {
                let i = self.int()?;
                encoding::put_int(out, i);
            }
        }
        Some(())
    }
}

impl<const SPACES: bool> Cur<'_, SPACES> {
    /// Moves past `lit` if the input continues with it. Inlined, so that
    /// comparing with a literal of known length needs no call.
    #[inline(always)]
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(lit)
            .then(|| self.i += lit.len())
    }

    /// A key: null (`Some(None)`), or a string or integer, interned in
    /// the batch.
    fn key(&mut self, batch: &mut Batch) -> Option<Option<u32>> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'"' | b'-' | b'0'..=b'9') => {}
            Some(b'n') if self.word(b"null") => return Some(None),
            _ => return None,
        }
        let mut k = std::mem::take(&mut batch.scratch);
        k.clear();
        let key = self.value(&mut k, 0).map(|()| Some(batch.keys.id(&k)));
        batch.scratch = k;
        key
    }
}

/// Parses a line written exactly as `harness run` and `checker generate`
/// write them (`{"index":0,"time":1,"process":3,"type":"invoke","f":"set",
/// "key":"k7","value":"v12"}`, no spaces; `index`, `time` and `key`
/// optional), with few comparisons; `None` for any other line.
pub(super) fn template(b: &[u8], line: u32, batch: &mut Batch) -> Option<()> {
    (template_prefix(b, line, batch)? == b.len()).then_some(())
}

/// [`template`] of the line at the start of `b`, which goes on past it:
/// how many bytes the line takes. (No token of the template crosses a
/// control character, so a line break ends it.)
pub(super) fn template_prefix(b: &[u8], line: u32, batch: &mut Batch) -> Option<usize> {
    let mut c = Cur::<false> { b, i: 0 };
    c.lit(b"{")?;
    if c.lit(b"\"index\":").is_some() {
        c.int().filter(|&i| i >= 0)?;
        c.lit(b",")?;
    }
    let mut time = None;
    if c.lit(b"\"time\":").is_some() {
        time = Some(c.int()?);
        c.lit(b",")?;
    }
    c.lit(b"\"process\":")?;
    let process = if c.lit(b"\"nemesis\"").is_some() {
        None
    } else {
        Some(c.int()?)
    };
    c.lit(b",\"type\":\"")?;
    let kind = if c.lit(b"invoke\"").is_some() {
        EventType::Invoke
    } else if c.lit(b"ok\"").is_some() {
        EventType::Ok
    } else if c.lit(b"info\"").is_some() {
        EventType::Info
    } else {
        c.lit(b"fail\"")?;
        EventType::Fail
    };
    c.lit(b",\"f\":")?;
    let f = batch.fns.id(c.string()?);
    let mut key = None;
    if c.lit(b",\"key\":").is_some() {
        key = c.key(batch)?;
    }
    c.lit(b",\"value\":")?;
    let start = batch.bytes.len() as u32;
    c.value(&mut batch.bytes, 0)?;
    let value = (start, batch.bytes.len() as u32);
    c.lit(b"}")?;
    batch.events.push(Ev {
        line,
        time,
        process,
        kind,
        f,
        key,
        value,
    });
    Some(c.i)
}

/// Parses a line in the common shape into `batch`; `None` if the line is
/// anything else (including the header and every error).
pub(super) fn line(b: &[u8], line: u32, batch: &mut Batch) -> Option<()> {
    let mut c = Cur::<true> { b, i: 0 };
    c.eat(b'{')?;
    let (mut time, mut process, mut kind, mut f, mut key, mut value) =
        (None, None, None, None, None, None);
    let mut seen = 0u8;
    let mut once = |bit: u8| -> Option<()> { (seen & bit == 0).then(|| seen |= bit) };
    c.ws();
    if c.b.get(c.i) == Some(&b'}') {
        return None;
    }
    loop {
        let name = c.raw_string()?;
        c.eat(b':')?;
        match name {
            b"process" => {
                once(1)?;
                c.ws();
                process = Some(if c.b.get(c.i) == Some(&b'"') {
                    (c.string()? == b"nemesis").then_some(None)?
                } else {
                    Some(c.int()?)
                });
            }
            b"type" => {
                once(2)?;
                kind = Some(match c.string()? {
                    b"invoke" => EventType::Invoke,
                    b"ok" => EventType::Ok,
                    b"fail" => EventType::Fail,
                    b"info" => EventType::Info,
                    _ => return None,
                });
            }
            b"f" => {
                once(4)?;
                f = Some(batch.fns.id(c.string()?));
            }
            b"key" => {
                once(8)?;
                key = c.key(batch)?;
            }
            b"value" => {
                once(16)?;
                let start = batch.bytes.len() as u32;
                c.value(&mut batch.bytes, 0)?;
                value = Some((start, batch.bytes.len() as u32));
            }
            b"time" => {
                once(32)?;
                if !c.word(b"null") {
                    time = Some(c.int()?);
                }
            }
            b"index" => {
                once(64)?;
                if !c.word(b"null") {
                    c.int().filter(|&i| i >= 0)?;
                }
            }
            // The header, unknown fields: the slow path.
            _ => return None,
        }
        c.ws();
        match *c.b.get(c.i)? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    c.ws();
    if c.i != b.len() {
        return None;
    }
    let process = process?;
    let f = match (f, process) {
        (Some(f), _) => f,
        (None, None) => batch.fns.id(b""),
        (None, Some(_)) => return None,
    };
    let value = match value {
        Some(v) => v,
        None => {
            let at = batch.bytes.len() as u32;
            encoding::put_nil(&mut batch.bytes);
            (at, at + 1)
        }
    };
    batch.events.push(Ev {
        line,
        time,
        process,
        kind: kind?,
        f,
        key,
        value,
    });
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Rng;

    /// Eight bytes: digits, then anything (bytes next to the digits' range
    /// and with the high bit set among them).
    fn word(rng: &mut Rng) -> [u8; 8] {
        let odd = [b'/', b':', b'0' | 0x80, b'9' | 0x80, 0x7f, 0xff, 0, b' '];
        let digits = rng.below(9) as usize;
        std::array::from_fn(|i| match i < digits {
            true => b'0' + rng.below(10) as u8,
            false if rng.chance(0.5) => odd[rng.below(8) as usize],
            false => rng.below(256) as u8,
        })
    }

    /// The word-at-a-time digit and string scans find what a byte-by-byte
    /// scan finds.
    #[test]
    fn word_scans_agree_with_byte_scans() {
        let mut rng = Rng::new(3);
        for _ in 0..200_000 {
            let b = word(&mut rng);
            let x = u64::from_le_bytes(b);
            let run = b.iter().take_while(|c| c.is_ascii_digit()).count();
            assert_eq!(digit_run(x), run, "{b:?}");
            if run > 0 {
                let value = b[..run]
                    .iter()
                    .fold(0, |n, &c| n * 10 + u64::from(c - b'0'));
                assert_eq!(digits_value(x, run), value, "{b:?}");
            }
            let stops = string_stops(x);
            let first = b.iter().position(|&c| STOPS_STRING[c as usize]);
            assert_eq!(
                (stops != 0).then(|| stops.trailing_zeros() as usize / 8),
                first,
                "{b:?}"
            );
        }
    }
}
