//! Append throughput of the write-ahead log: entries of 64-byte values with
//! one fdatasync per entry versus one per batch of 64 (group commit).
//!
//! Run with `cargo bench -p raftkv-wal --bench wal_throughput`. On the
//! project's 2-core build machine (ext4 on a virtio disk, where one
//! fdatasync takes about 5-6 ms whatever was written) it measured:
//!
//! | entries per sync | time per sync | entries/s |
//! |---|---|---|
//! | 1  | 5.99 ms | 167 |
//! | 64 | 6.32 ms | 10,120 |
//!
//! The sync dominates, so throughput scales with the batch size.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raftkv_core::{Entry, EntryKind};
use raftkv_wal::Wal;

const VALUE_BYTES: usize = 64;

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append_64B");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for per_sync in [1usize, 64] {
        group.throughput(Throughput::Elements(per_sync as u64));
        group.bench_function(format!("{per_sync}_entries_per_sync"), |b| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut wal, _) = Wal::open(dir.path()).expect("open wal");
            let mut next = 1u64;
            let data = vec![0x5au8; VALUE_BYTES];
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..per_sync {
                        let e = Entry {
                            term: 1,
                            index: next,
                            kind: EntryKind::Command,
                            data: data.clone(),
                        };
                        next += 1;
                        wal.write(None, None, std::slice::from_ref(&e))
                            .expect("write");
                    }
                    wal.sync().expect("sync");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
