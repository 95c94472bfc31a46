//! Engine throughput without IO: three replicas in memory, messages handed
//! over directly, "persistence" a no-op. Measures committed entries per
//! second of CPU for batches of proposals, so the figure is the engine's own
//! cost (replication bookkeeping, batching, commit), not the disk's.
//!
//! `cargo bench -p consensus --bench engine`

use std::collections::VecDeque;

use bytes::Bytes;
use consensus::raft::Raft;
use consensus::{Durable, Engine, Membership, Message, Options, Role};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Cluster<E: Engine> {
    replicas: Vec<E>,
    network: VecDeque<E::Message>,
    applied: u64,
    /// (index, term) of the last entry each replica applied.
    last_applied: Vec<(u64, u64)>,
    compacted: u64,
}

impl<E: Engine> Cluster<E> {
    fn new(build: fn(Options, Membership, Durable) -> E) -> Self {
        let founding = Membership::with_voters([1, 2, 3]);
        let replicas = (1..=3)
            .map(|id| {
                let mut options = Options::new(id);
                options.append_entries_max = 1024;
                options.inflight_appends_max = 256;
                build(options, founding.clone(), Durable::default())
            })
            .collect();
        let mut cluster = Cluster {
            replicas,
            network: VecDeque::new(),
            applied: 0,
            last_applied: vec![(0, 0); 3],
            compacted: 0,
        };
        // Only replica 1 ticks, so it is the one that times out and leads.
        for _ in 0..100 {
            cluster.replicas[0].tick();
            cluster.settle();
            if cluster.replicas[0].status().role == Role::Leader {
                break;
            }
        }
        assert_eq!(cluster.replicas[0].status().role, Role::Leader);
        cluster
    }

    fn drain(&mut self, index: usize) {
        while self.replicas[index].has_ready() {
            let ready = self.replicas[index].ready();
            if let Some(last) = ready.committed.last() {
                self.last_applied[index] = (last.index, last.term);
            }
            if index == 0 {
                self.applied += ready.committed.len() as u64;
            }
            self.network.extend(ready.messages);
            self.replicas[index].advance();
        }
    }

    fn settle(&mut self) {
        loop {
            for index in 0..self.replicas.len() {
                self.drain(index);
            }
            if self.network.is_empty() {
                return;
            }
            while let Some(message) = self.network.pop_front() {
                let target = (message.to() - 1) as usize;
                self.replicas[target].step(message);
            }
        }
    }

    /// Proposes `batch` commands and runs until the leader applied them all.
    fn commit_batch(&mut self, batch: usize, command: &Bytes) {
        let target = self.applied + batch as u64;
        for _ in 0..batch {
            self.replicas[0].propose(command.clone()).expect("leader accepts");
        }
        while self.applied < target {
            self.settle();
            if self.applied < target {
                // Commit notices travel with the next heartbeat or append.
                self.replicas[0].tick();
            }
        }
        // Keep memory flat over millions of iterations, as a node would.
        if self.applied - self.compacted > 100_000 {
            self.compacted = self.applied;
            let membership = Membership::with_voters([1, 2, 3]);
            for (replica, &(index, term)) in self.replicas.iter_mut().zip(&self.last_applied) {
                let data = Bytes::new();
                let membership = membership.clone();
                replica.compact(consensus::Snapshot { index, term, membership, data });
            }
        }
    }
}

fn raft_commit(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("raft_3_replicas_commit");
    let command = Bytes::from(vec![0u8; 16]);
    for batch in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |bencher, &batch| {
            let mut cluster = Cluster::new(Raft::new);
            bencher.iter(|| cluster.commit_batch(batch, &command));
        });
    }
    group.finish();
}

criterion_group!(benches, raft_commit);
criterion_main!(benches);
