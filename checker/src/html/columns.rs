//! The compact encoding of the page's operations: columns of unsigned
//! LEB128 varints (signed values zigzag-encoded) and a table of strings,
//! deflated and in base64. The page inflates it with the browser's
//! `DecompressionStream` and reads it back in `timeline.js` (`readBlob`).

use base64::Engine as _;
use std::collections::HashMap;
use std::io::Write as _;

/// One column of numbers.
#[derive(Default)]
pub struct Column {
    bytes: Vec<u8>,
}

impl Column {
    pub fn push(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }

    pub fn push_signed(&mut self, v: i64) {
        self.push(((v << 1) ^ (v >> 63)) as u64);
    }
}

/// Strings, each stored once, referred to by how far back in the table
/// they are (recent values are referred to again most): 0 is "none", 1 a
/// string not seen before (appended to the table), `d + 1` the string `d`
/// entries before the end of the table.
#[derive(Default)]
pub struct Strings {
    index: HashMap<String, usize>,
    bytes: Vec<u8>,
    len: usize,
}

impl Strings {
    /// The code of `s` (see the type's doc), adding it if new.
    pub fn code(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return (self.len - i) as u64 + 1;
        }
        self.index.insert(s.to_string(), self.len);
        self.len += 1;
        let mut len = Column::default();
        len.push(s.len() as u64);
        self.bytes.extend_from_slice(&len.bytes);
        self.bytes.extend_from_slice(s.as_bytes());
        1
    }
}

/// Named columns and the string table, in the order the page reads them.
pub struct Blob {
    pub columns: Vec<(&'static str, Column)>,
    pub strings: Strings,
}

impl Blob {
    pub fn new(names: &[&'static str]) -> Blob {
        Blob {
            columns: names.iter().map(|&n| (n, Column::default())).collect(),
            strings: Strings::default(),
        }
    }

    pub fn col(&mut self, name: &str) -> &mut Column {
        &mut self
            .columns
            .iter_mut()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .1
    }

    /// The columns' names and byte lengths (for the page), and the blob:
    /// every column, then the strings, deflated, in base64.
    pub fn finish(self) -> (Vec<(&'static str, usize)>, String) {
        let mut raw = Vec::new();
        let mut layout = Vec::new();
        for (name, c) in &self.columns {
            layout.push((*name, c.bytes.len()));
            raw.extend_from_slice(&c.bytes);
        }
        layout.push(("strings", self.strings.bytes.len()));
        raw.extend_from_slice(&self.strings.bytes);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&raw).expect("writing to memory");
        let deflated = z.finish().expect("writing to memory");
        (
            layout,
            base64::engine::general_purpose::STANDARD.encode(deflated),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_string_codes() {
        let mut c = Column::default();
        c.push(0);
        c.push(127);
        c.push(128);
        c.push(300);
        c.push_signed(-1);
        c.push_signed(1);
        assert_eq!(c.bytes, [0, 127, 0x80, 1, 0xac, 2, 1, 2]);
        let mut s = Strings::default();
        assert_eq!(s.code("a"), 1);
        assert_eq!(s.code("bc"), 1);
        assert_eq!(s.code("a"), 3);
        assert_eq!(s.code("bc"), 2);
        assert_eq!(s.bytes, b"\x01a\x02bc");
    }
}
