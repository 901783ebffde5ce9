//! Bytes written to a file since its last sync: a sparse set of
//! non-overlapping, non-adjacent byte ranges laid over the durable content.

use std::collections::BTreeMap;

/// Unsynced bytes of one file, keyed by the offset of each range.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extents {
    ranges: BTreeMap<u64, Vec<u8>>,
    bytes: u64,
}

impl Extents {
    /// Total bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(&o, v)| (o, v.as_slice()))
    }

    pub fn clear(&mut self) {
        self.ranges.clear();
        self.bytes = 0;
    }

    /// Lays `data` over `[off, off + data.len())`, merging it with every range
    /// it overlaps or touches. Appending right after a range extends that
    /// range in place, so a run of appends costs what the bytes cost.
    pub fn write(&mut self, off: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = off + data.len() as u64;
        // The range that starts at or before `off` and reaches it, if any.
        let head = self
            .ranges
            .range(..=off)
            .next_back()
            .filter(|(s, v)| **s + v.len() as u64 >= off)
            .map(|(s, _)| *s);
        let start = head.unwrap_or(off);
        let mut buf = match head {
            Some(s) => self.ranges.remove(&s).expect("head range exists"),
            None => Vec::new(),
        };
        self.bytes -= buf.len() as u64;
        // Ranges that start inside (off, end] are swallowed; keep the part
        // of the last one that reaches past `end`.
        let swallowed: Vec<u64> = self
            .ranges
            .range((
                std::ops::Bound::Excluded(off),
                std::ops::Bound::Included(end),
            ))
            .map(|(s, _)| *s)
            .collect();
        let mut tail: Vec<u8> = Vec::new();
        for s in swallowed {
            let v = self.ranges.remove(&s).expect("range exists");
            self.bytes -= v.len() as u64;
            let v_end = s + v.len() as u64;
            if v_end > end {
                tail = v[(end - s) as usize..].to_vec();
            }
        }
        let rel = (off - start) as usize;
        let buf_end = start + buf.len() as u64;
        if buf_end > end {
            // The head range covers the whole write: overwrite in place.
            buf[rel..rel + data.len()].copy_from_slice(data);
        } else {
            buf.truncate(rel);
            buf.extend_from_slice(data);
            buf.extend_from_slice(&tail);
        }
        self.bytes += buf.len() as u64;
        self.ranges.insert(start, buf);
    }

    /// Drops every byte at or after `len`.
    pub fn truncate(&mut self, len: u64) {
        let beyond: Vec<u64> = self.ranges.range(len..).map(|(s, _)| *s).collect();
        for s in beyond {
            let v = self.ranges.remove(&s).expect("range exists");
            self.bytes -= v.len() as u64;
        }
        if let Some((s, v)) = self.ranges.range_mut(..len).next_back() {
            let keep = (len - *s) as usize;
            if v.len() > keep {
                self.bytes -= (v.len() - keep) as u64;
                v.truncate(keep);
            }
        }
    }

    /// Copies the held bytes that fall in `[off, off + buf.len())` into `buf`,
    /// leaving the other bytes of `buf` as they are.
    pub fn overlay(&self, off: u64, buf: &mut [u8]) {
        let end = off + buf.len() as u64;
        let first = self
            .ranges
            .range(..=off)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(off);
        for (&s, v) in self.ranges.range(first..end) {
            let v_end = s + v.len() as u64;
            let lo = s.max(off);
            let hi = v_end.min(end);
            if lo < hi {
                buf[(lo - off) as usize..(hi - off) as usize]
                    .copy_from_slice(&v[(lo - s) as usize..(hi - s) as usize]);
            }
        }
    }

    /// Whether any held byte falls in `[lo, hi)`.
    pub fn touches(&self, lo: u64, hi: u64) -> bool {
        let before = self
            .ranges
            .range(..=lo)
            .next_back()
            .is_some_and(|(s, v)| s + v.len() as u64 > lo);
        before || self.ranges.range(lo..hi).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A plain byte vector with a "written" mask: what `Extents` must equal.
    #[derive(Default)]
    struct Naive {
        bytes: Vec<Option<u8>>,
    }

    impl Naive {
        fn write(&mut self, off: u64, data: &[u8]) {
            let end = off as usize + data.len();
            if self.bytes.len() < end {
                self.bytes.resize(end, None);
            }
            for (i, b) in data.iter().enumerate() {
                self.bytes[off as usize + i] = Some(*b);
            }
        }
        fn truncate(&mut self, len: u64) {
            self.bytes.truncate(len as usize);
        }
    }

    fn check(e: &Extents, n: &Naive) {
        let total = n.bytes.iter().filter(|b| b.is_some()).count() as u64;
        assert_eq!(e.bytes(), total);
        let mut prev_end = None;
        for (s, v) in e.iter() {
            assert!(!v.is_empty());
            if let Some(p) = prev_end {
                assert!(s > p, "ranges must neither overlap nor touch");
            }
            prev_end = Some(s + v.len() as u64);
            for (i, b) in v.iter().enumerate() {
                assert_eq!(n.bytes[s as usize + i], Some(*b));
            }
        }
        let len = n.bytes.len() + 8;
        let mut buf = vec![0xAA; len];
        e.overlay(0, &mut buf);
        for (i, b) in buf.iter().enumerate() {
            let want = n.bytes.get(i).copied().flatten().unwrap_or(0xAA);
            assert_eq!(*b, want, "byte {i}");
        }
    }

    #[test]
    fn appends_extend_one_range() {
        let mut e = Extents::default();
        e.write(10, b"abc");
        e.write(13, b"def");
        e.write(16, b"g");
        assert_eq!(e.iter().collect::<Vec<_>>(), vec![(10, &b"abcdefg"[..])]);
        assert_eq!(e.bytes(), 7);
    }

    #[test]
    fn overwrite_merges_neighbours() {
        let mut e = Extents::default();
        e.write(0, b"aaaa");
        e.write(8, b"bbbb");
        e.write(2, b"XXXXXXX");
        assert_eq!(
            e.iter().collect::<Vec<_>>(),
            vec![(0, &b"aaXXXXXXXbbb"[..])]
        );
        e.truncate(5);
        assert_eq!(e.iter().collect::<Vec<_>>(), vec![(0, &b"aaXXX"[..])]);
        assert!(e.touches(4, 5));
        assert!(!e.touches(5, 100));
    }

    #[test]
    fn random_operations_match_a_byte_vector() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut e = Extents::default();
            let mut n = Naive::default();
            for _ in 0..60 {
                if rng.random_bool(0.8) {
                    let off = rng.random_range(0..120u64);
                    let len = rng.random_range(1..30usize);
                    let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                    e.write(off, &data);
                    n.write(off, &data);
                } else {
                    let len = rng.random_range(0..150u64);
                    e.truncate(len);
                    n.truncate(len);
                }
                check(&e, &n);
                let lo = rng.random_range(0..150u64);
                let hi = lo + rng.random_range(1..20u64);
                let want = (lo..hi).any(|i| n.bytes.get(i as usize).copied().flatten().is_some());
                assert_eq!(e.touches(lo, hi), want, "seed {seed}");
            }
        }
    }
}
