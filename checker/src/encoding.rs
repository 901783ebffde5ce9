//! A compact, canonical binary encoding of [`Val`]: equal values have equal
//! encodings, so values can be stored in flat byte arenas, compared and
//! hashed as bytes, and decoded only to be shown.
//!
//! Each value is a tag byte and a payload: nil, false, true; an integer
//! (zigzag varint); a number kept as text, a string, keyword or symbol
//! (varint length and bytes); a list or map (varint count, then the items or
//! key-value pairs).

use crate::value::Val;

const NIL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const NUM: u8 = 4;
const STR: u8 = 5;
const KEYWORD: u8 = 6;
const SYMBOL: u8 = 7;
const LIST: u8 = 8;
const MAP: u8 = 9;

/// The encoding of nil.
pub const NIL_BYTES: &[u8] = &[NIL];

pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*at];
        *at += 1;
        n |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return n;
        }
        shift += 7;
    }
}

/// Appends the encoding of a string.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_str_bytes(out, s.as_bytes());
}

/// Appends the encoding of a string given as bytes known to be UTF-8.
pub fn put_str_bytes(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 0x80 {
        out.extend_from_slice(&[STR, s.len() as u8]);
    } else {
        out.push(STR);
        put_varint(out, s.len() as u64);
    }
    out.extend_from_slice(s);
}

pub fn put_nil(out: &mut Vec<u8>) {
    out.push(NIL);
}

pub fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { TRUE } else { FALSE });
}

/// Appends a list's header; its `n` encoded items follow.
pub fn put_list_header(out: &mut Vec<u8>, n: u64) {
    out.push(LIST);
    put_varint(out, n);
}

/// Appends a map's header; its `n` encoded key-value pairs follow.
pub fn put_map_header(out: &mut Vec<u8>, n: u64) {
    out.push(MAP);
    put_varint(out, n);
}

/// Appends the encoding of an integer.
pub fn put_int(out: &mut Vec<u8>, i: i64) {
    out.push(INT);
    put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
}

/// Appends the encoding of `v`.
pub fn encode(v: &Val, out: &mut Vec<u8>) {
    let text = |out: &mut Vec<u8>, tag: u8, s: &str| {
        out.push(tag);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    };
    match v {
        Val::Nil => out.push(NIL),
        Val::Bool(false) => out.push(FALSE),
        Val::Bool(true) => out.push(TRUE),
        Val::Int(i) => put_int(out, *i),
        Val::Num(s) => text(out, NUM, s),
        Val::Str(s) => text(out, STR, s),
        Val::Keyword(s) => text(out, KEYWORD, s),
        Val::Symbol(s) => text(out, SYMBOL, s),
        Val::List(items) => {
            out.push(LIST);
            put_varint(out, items.len() as u64);
            for x in items {
                encode(x, out);
            }
        }
        Val::Map(pairs) => {
            out.push(MAP);
            put_varint(out, pairs.len() as u64);
            for (k, x) in pairs {
                encode(k, out);
                encode(x, out);
            }
        }
    }
}

/// The encoding of `v`.
pub fn to_bytes(v: &Val) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

/// Decodes one value starting at `*at`, moving `*at` past it.
fn decode_at(b: &[u8], at: &mut usize) -> Val {
    let tag = b[*at];
    *at += 1;
    let text = |at: &mut usize| {
        let n = varint(b, at) as usize;
        let s = String::from_utf8_lossy(&b[*at..*at + n]).into_owned();
        *at += n;
        s
    };
    match tag {
        NIL => Val::Nil,
        FALSE => Val::Bool(false),
        TRUE => Val::Bool(true),
        INT => {
            let z = varint(b, at);
            Val::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        NUM => Val::Num(text(at)),
        STR => Val::Str(text(at)),
        KEYWORD => Val::Keyword(text(at)),
        SYMBOL => Val::Symbol(text(at)),
        LIST => {
            let n = varint(b, at) as usize;
            Val::List((0..n).map(|_| decode_at(b, at)).collect())
        }
        _ => {
            let n = varint(b, at) as usize;
            Val::Map(
                (0..n)
                    .map(|_| {
                        let k = decode_at(b, at);
                        (k, decode_at(b, at))
                    })
                    .collect(),
            )
        }
    }
}

/// Decodes an encoded value.
pub fn decode(b: &[u8]) -> Val {
    decode_at(b, &mut 0)
}

/// Moves `*at` past one encoded value.
fn skip(b: &[u8], at: &mut usize) {
    let tag = b[*at];
    *at += 1;
    match tag {
        NIL | FALSE | TRUE => {}
        INT => {
            varint(b, at);
        }
        NUM | STR | KEYWORD | SYMBOL => {
            let n = varint(b, at) as usize;
            *at += n;
        }
        LIST => {
            for _ in 0..varint(b, at) {
                skip(b, at);
            }
        }
        _ => {
            for _ in 0..2 * varint(b, at) {
                skip(b, at);
            }
        }
    }
}

pub fn is_nil(b: &[u8]) -> bool {
    b == NIL_BYTES
}

/// The text of an encoded string, if it is one.
pub fn as_str(b: &[u8]) -> Option<&str> {
    if b.first() != Some(&STR) {
        return None;
    }
    let mut at = 1;
    let n = varint(b, &mut at) as usize;
    std::str::from_utf8(&b[at..at + n]).ok()
}

/// The encodings of the items of an encoded list of exactly `N` items.
pub fn list_items<const N: usize>(b: &[u8]) -> Option<[&[u8]; N]> {
    if b.first() != Some(&LIST) {
        return None;
    }
    let mut at = 1;
    if varint(b, &mut at) != N as u64 {
        return None;
    }
    let mut items = [&b[..0]; N];
    for item in &mut items {
        let start = at;
        skip(b, &mut at);
        *item = &b[start..at];
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_canonical() {
        let vals = [
            Val::Nil,
            Val::Bool(true),
            Val::Int(0),
            Val::Int(-1),
            Val::Int(i64::MIN),
            Val::Int(i64::MAX),
            Val::Num("1.5".into()),
            Val::Str("héllo".into()),
            Val::Str(String::new()),
            Val::Keyword("x".into()),
            Val::Symbol("x".into()),
            Val::List(vec![Val::Int(1), Val::Str("a".into())]),
            Val::Map(vec![(Val::Keyword("k".into()), Val::List(vec![]))]),
        ];
        for a in &vals {
            assert_eq!(&decode(&to_bytes(a)), a);
            for b in &vals {
                assert_eq!(to_bytes(a) == to_bytes(b), a == b, "{a:?} {b:?}");
            }
        }
        let pair = to_bytes(&Val::List(vec![Val::Int(1), Val::Nil]));
        let [e, n] = list_items::<2>(&pair).unwrap();
        assert_eq!((decode(e), decode(n)), (Val::Int(1), Val::Nil));
        assert!(list_items::<3>(&pair).is_none());
        assert_eq!(as_str(&to_bytes(&Val::Str("ab".into()))), Some("ab"));
        assert_eq!(as_str(&to_bytes(&Val::Keyword("ab".into()))), None);
    }
}
