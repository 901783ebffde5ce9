//! Simulator throughput: seeds per second, and proposals committed per
//! second through a fault-free 3-node simulated cluster with and without
//! batching.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/support/mod.rs"]
mod support;

use raftkv_core::{Config, Message, Raft, Restored, Role};
use support::sim::{Faults, Sim};

/// Three cores wired back to back with no checks, instant delivery and
/// instant fsync: what the core itself costs per committed proposal.
struct Wired {
    nodes: Vec<Raft>,
    queue: Vec<Message>,
}

impl Wired {
    fn new() -> Wired {
        let nodes = (1..=3)
            .map(|id| Raft::new(Config::new(id, vec![1, 2, 3]), Restored::default(), id).unwrap())
            .collect();
        let mut w = Wired {
            nodes,
            queue: Vec::new(),
        };
        while w.nodes[0].status().role != Role::Leader {
            w.nodes[0].tick();
            w.pump();
        }
        w
    }

    /// Delivers and persists until quiet; returns entries applied by node 1.
    fn pump(&mut self) -> usize {
        let mut applied = 0;
        loop {
            for (i, r) in self.nodes.iter_mut().enumerate() {
                while r.has_ready() {
                    let rd = r.ready();
                    self.queue.extend(rd.messages);
                    r.on_persisted(rd.number);
                    self.queue.extend(rd.persisted_messages);
                    if let Some(last) = rd.committed.last() {
                        r.on_applied(last.index);
                        if i == 0 {
                            applied += rd.committed.len();
                        }
                    }
                }
            }
            if self.queue.is_empty() {
                return applied;
            }
            for m in std::mem::take(&mut self.queue) {
                let to = m.to as usize - 1;
                self.nodes[to].step(m);
            }
        }
    }

    fn commit_batch(&mut self, n: usize) {
        for _ in 0..n {
            self.nodes[0].propose(vec![0u8; 16]).unwrap();
        }
        let mut applied = 0;
        while applied < n {
            applied += self.pump();
            if applied < n {
                for r in &mut self.nodes {
                    r.tick();
                }
            }
        }
    }
}

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

fn core_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_only_committed_proposals_3_nodes");
    for batch in [1usize, 64, 512] {
        group.throughput(Throughput::Elements(batch as u64));
        let mut wired = Wired::new();
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter(|| wired.commit_batch(batch))
        });
    }
    group.finish();
}

criterion_group!(benches, seeds, commits, core_only);
criterion_main!(benches);
