//! Simulator throughput: seeds per second, and proposals committed per
//! second through a fault-free 3-node simulated cluster with and without
//! batching.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/support/mod.rs"]
mod support;

use support::sim::{Faults, Sim};

fn seeds(c: &mut Criterion) {
    let mut group = c.benchmark_group("simulated_seeds");
    group.throughput(Throughput::Elements(1));
    for nodes in [3, 5] {
        let mut seed = 0u64;
        group.bench_function(format!("{nodes}_nodes"), |b| {
            b.iter(|| {
                seed += 1;
                Sim::new(seed, nodes, None, false)
                    .run(200 + (seed % 7) * 60, 400)
                    .unwrap_or_else(|f| panic!("{f}"))
            })
        });
    }
    group.finish();
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("committed_proposals_3_nodes");
    // Unbatched: one proposal, then step until it is applied. Batched: many
    // proposals are taken into one ready and one Append.
    for batch in [1usize, 64, 512] {
        group.throughput(Throughput::Elements(batch as u64));
        let mut sim = Sim::new(1, 3, Some(Faults::none()), false);
        let leader = sim.elect(1000).expect("a leader is elected");
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter(|| {
                sim.commit_batch(leader, batch, 10_000)
                    .expect("the batch commits")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seeds, commits);
criterion_main!(benches);
