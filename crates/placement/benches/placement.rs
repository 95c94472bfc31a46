//! Measures the routing hot path, key → slot → shard, against a 100-shard table (target ≤ 40 ns),
//! and the slower placement computations a controller runs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use placement::{key_slot, replicas, NodeInfo, SlotTable};

fn routing(criterion: &mut Criterion) {
    let shards: Vec<u64> = (1..=100).collect();
    let table = SlotTable::build(&shards);
    let keys: Vec<Vec<u8>> =
        (0..1024).map(|index| format!("user:{index:08}:profile").into_bytes()).collect();
    let mut index = 0;
    criterion.bench_function("key_to_shard (21-byte key)", |bench| {
        bench.iter(|| {
            index = (index + 1) & 1023;
            black_box(table.shard_of_key(black_box(&keys[index])))
        })
    });
    let mut index = 0;
    criterion.bench_function("key_slot (21-byte key, no table)", |bench| {
        bench.iter(|| {
            index = (index + 1) & 1023;
            black_box(key_slot(black_box(&keys[index])))
        })
    });
    criterion.bench_function("key_slot hash tag (26-byte key)", |bench| {
        bench.iter(|| black_box(key_slot(black_box(b"{user:00001234}.followers"))))
    });
}

fn controller(criterion: &mut Criterion) {
    let shards: Vec<u64> = (1..=100).collect();
    criterion.bench_function("SlotTable::build (100 shards)", |bench| {
        bench.iter(|| black_box(SlotTable::build(black_box(&shards))))
    });
    let table = SlotTable::build(&shards);
    let grown: Vec<u64> = (1..=101).collect();
    criterion.bench_function("SlotTable::rebalance (100 -> 101 shards)", |bench| {
        bench.iter(|| black_box(table.rebalance(black_box(&grown))))
    });
    let nodes: Vec<NodeInfo> =
        (0..100).map(|id| NodeInfo { id, zone: format!("zone-{}", id % 5), weight: 1 }).collect();
    criterion.bench_function("replicas (100 nodes, 3 replicas)", |bench| {
        bench.iter(|| black_box(replicas(black_box(42), &nodes, 3)))
    });
}

criterion_group!(benches, routing, controller);
criterion_main!(benches);
