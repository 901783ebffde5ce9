//! What the lazy filesystem costs a write-ahead log: `raftkv-wal` appends
//! of 64-byte entries, one fdatasync per entry and per batch of 64, on a
//! plain directory and on a lazy filesystem (with and without fsyncs of
//! its backing directory), measured side by side.
//!
//! Run as root with `cargo bench -p raftkv-lazyfs --bench wal_on_lazyfs`.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raftkv_core::{Entry, EntryKind};
use raftkv_lazyfs::{MountOptions, Mounted};
use raftkv_wal::Wal;

const VALUE_BYTES: usize = 64;

fn append(c: &mut Criterion, name: &str, dir: &Path) {
    let mut group = c.benchmark_group("wal_append_64B");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for per_sync in [1usize, 64] {
        group.throughput(Throughput::Elements(per_sync as u64));
        group.bench_function(format!("{name}/{per_sync}_entries_per_sync"), |b| {
            let data_dir = dir.join(format!("wal-{per_sync}"));
            let (mut wal, _) = Wal::open(&data_dir).expect("open wal");
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

fn bench(c: &mut Criterion) {
    if let Err(e) = raftkv_lazyfs::check_available() {
        panic!("this benchmark mounts a lazy filesystem: {e}");
    }
    let plain = tempfile::tempdir().expect("temp dir");
    append(c, "plain", plain.path());
    for (name, sync_backing) in [("lazyfs", true), ("lazyfs-no-backing-sync", false)] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
        std::fs::create_dir(&backing).expect("mkdir");
        std::fs::create_dir(&mnt).expect("mkdir");
        let fs = Mounted::mount(&backing, &mnt, &MountOptions { sync_backing }).expect("mount");
        append(c, name, &mnt);
        fs.unmount().expect("unmount");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
