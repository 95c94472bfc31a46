//! Placement-only simulation: how much moves, and how balanced things are, when shards and nodes
//! come and go. Prints the figures recorded in docs/BENCHMARKS.md ("Placement").
//!
//! `cargo run --release -p placement --example simulate`

use std::collections::{BTreeMap, BTreeSet};

use placement::{
    balance_leaders, place_replicas, replicas, NodeInfo, Ring, SlotTable, SLOTS, VNODES_PER_SHARD,
};

const NODES: u64 = 100;
const ZONES: u64 = 10;
const SHARDS: u64 = 10_000;
const REPLICAS: usize = 3;

fn main() {
    println!("## slots -> shards ({VNODES_PER_SHARD} virtual nodes per shard)");
    for count in [10u64, 100] {
        slot_figures(count);
    }
    println!();
    println!(
        "## shard replicas -> nodes ({NODES} nodes in {ZONES} zones, {SHARDS} shards x {REPLICAS})"
    );
    replica_figures();
    for load_percent in [110, 105] {
        println!();
        println!("## the same with bounded loads (place_replicas, load_percent {load_percent})");
        bounded_figures(load_percent);
    }
}

fn max_over_mean(counts: impl Iterator<Item = u32>, total: f64, parts: f64) -> f64 {
    f64::from(counts.max().unwrap_or(0)) / (total / parts)
}

fn slot_figures(count: u64) {
    let shards: Vec<u64> = (1..=count).collect();
    let table = SlotTable::build(&shards);
    let slots = f64::from(SLOTS);
    let balance = max_over_mean(table.slot_counts().into_values(), slots, count as f64);
    // The plain ring without bounded loads, for comparison.
    let ring = Ring::new(&shards, VNODES_PER_SHARD);
    let ring_owner = |ring: &Ring, slot: u16| ring.owner((u64::from(slot) << 50) | (1 << 49));
    let mut ring_counts: BTreeMap<u64, u32> = BTreeMap::new();
    for slot in 0..SLOTS {
        *ring_counts.entry(ring_owner(&ring, slot)).or_default() += 1;
    }
    let ring_balance = max_over_mean(ring_counts.into_values(), slots, count as f64);
    println!(
        "{count} shards: slots per shard max/mean {balance:.4} (plain ring {ring_balance:.3}), \
         {} slot ranges",
        table.ranges().len()
    );

    let grown: Vec<u64> = (1..=count + 1).collect();
    let bigger = table.rebalance(&grown);
    let moved = table.moves(&bigger).len();
    let grown_ring = Ring::new(&grown, VNODES_PER_SHARD);
    let ring_moved =
        (0..SLOTS).filter(|&slot| ring_owner(&ring, slot) != ring_owner(&grown_ring, slot)).count();
    let fair_share = slots / (count + 1) as f64;
    println!(
        "  add 1 shard: {moved} slots moved, minimal {}, fair share {fair_share:.1} \
         (ratio {:.3}); plain ring moves {ring_moved}",
        table.minimal_moves(&grown),
        moved as f64 / fair_share
    );
    let shrunk: Vec<u64> = (2..=count).collect();
    let smaller = table.rebalance(&shrunk);
    println!(
        "  remove 1 shard: {} slots moved, minimal {} (the leaving shard held {})",
        table.moves(&smaller).len(),
        table.minimal_moves(&shrunk),
        table.slot_counts()[&1]
    );
}

fn cluster(ids: impl Iterator<Item = u64>) -> Vec<NodeInfo> {
    ids.map(|id| NodeInfo { id, zone: format!("zone-{}", id % ZONES), weight: 1 }).collect()
}

fn placement_of(nodes: &[NodeInfo]) -> BTreeMap<u64, Vec<u64>> {
    (0..SHARDS)
        .map(|shard| {
            let set = replicas(shard, nodes, REPLICAS);
            assert!(!set.zones_shared);
            (shard, set.nodes)
        })
        .collect()
}

fn pairs(placement: &BTreeMap<u64, Vec<u64>>) -> BTreeSet<(u64, u64)> {
    placement.iter().flat_map(|(&shard, nodes)| nodes.iter().map(move |&n| (shard, n))).collect()
}

fn per_node(placement: &BTreeMap<u64, Vec<u64>>) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for node in placement.values().flatten() {
        *counts.entry(*node).or_default() += 1;
    }
    counts
}

fn replica_figures() {
    let nodes = cluster(0..NODES);
    let before = placement_of(&nodes);
    let total = (SHARDS as usize * REPLICAS) as f64;
    let counts = per_node(&before);
    println!(
        "replicas per node: max/mean {:.3}, min/mean {:.3}",
        max_over_mean(counts.values().copied(), total, NODES as f64),
        f64::from(*counts.values().min().unwrap()) / (total / NODES as f64)
    );

    let joined = placement_of(&cluster(0..=NODES));
    let added = pairs(&joined).difference(&pairs(&before)).count();
    let onto_joiner = pairs(&joined).iter().filter(|&&(_, node)| node == NODES).count();
    println!(
        "node join: {added} replicas moved ({onto_joiner} onto the new node), optimal {:.1} \
         (its fair share, ratio {:.3})",
        total / (NODES + 1) as f64,
        added as f64 / (total / (NODES + 1) as f64)
    );

    let lost = 17;
    let survived = placement_of(&cluster((0..NODES).filter(|&id| id != lost)));
    let recreated = pairs(&survived).difference(&pairs(&before)).count();
    let on_lost = pairs(&before).iter().filter(|&&(_, node)| node == lost).count();
    println!("node loss: {recreated} replicas re-created, optimal {on_lost} (those it held)");

    let preferred = per_node(&before.iter().map(|(&s, nodes)| (s, vec![nodes[0]])).collect());
    let leaders = balance_leaders(&before);
    let mut led: BTreeMap<u64, u32> = BTreeMap::new();
    for leader in leaders.values() {
        *led.entry(*leader).or_default() += 1;
    }
    let transfers = leaders.iter().filter(|(shard, leader)| before[shard][0] != **leader).count();
    println!(
        "leaders per node: preferred-only max {} min {}; balanced max {} min {} \
         (cap ceil({SHARDS}/{NODES}) = {}), {transfers} leaders moved off the preferred replica",
        preferred.values().max().unwrap(),
        preferred.values().min().unwrap(),
        led.values().max().unwrap(),
        led.values().min().unwrap(),
        SHARDS.div_ceil(NODES)
    );
}

fn bounded_placement(nodes: &[NodeInfo], load_percent: u32) -> BTreeMap<u64, Vec<u64>> {
    let shards: Vec<u64> = (0..SHARDS).collect();
    place_replicas(&shards, nodes, REPLICAS, load_percent)
        .into_iter()
        .map(|(shard, set)| {
            assert!(!set.zones_shared);
            (shard, set.nodes)
        })
        .collect()
}

fn bounded_figures(load_percent: u32) {
    let before = bounded_placement(&cluster(0..NODES), load_percent);
    let total = (SHARDS as usize * REPLICAS) as f64;
    let counts = per_node(&before);
    println!(
        "replicas per node: max/mean {:.3}, min/mean {:.3}",
        max_over_mean(counts.values().copied(), total, NODES as f64),
        f64::from(*counts.values().min().unwrap()) / (total / NODES as f64)
    );
    let joined = bounded_placement(&cluster(0..=NODES), load_percent);
    let added = pairs(&joined).difference(&pairs(&before)).count();
    let onto_joiner = pairs(&joined).iter().filter(|&&(_, node)| node == NODES).count();
    println!(
        "node join: {added} replicas moved ({onto_joiner} onto the new node), optimal {:.1} \
         (ratio {:.3})",
        total / (NODES + 1) as f64,
        added as f64 / (total / (NODES + 1) as f64)
    );
    let lost = 17;
    let survived = bounded_placement(&cluster((0..NODES).filter(|&id| id != lost)), load_percent);
    let recreated = pairs(&survived).difference(&pairs(&before)).count();
    let on_lost = pairs(&before).iter().filter(|&&(_, node)| node == lost).count();
    println!(
        "node loss: {recreated} replicas re-created, optimal {on_lost} (ratio {:.3})",
        recreated as f64 / on_lost as f64
    );
    let leaders = balance_leaders(&before);
    let mut led: BTreeMap<u64, u32> = BTreeMap::new();
    for leader in leaders.values() {
        *led.entry(*leader).or_default() += 1;
    }
    let transfers = leaders.iter().filter(|(shard, leader)| before[shard][0] != **leader).count();
    println!(
        "leaders per node: balanced max {} min {}, {transfers} moved off the preferred replica",
        led.values().max().unwrap(),
        led.values().min().unwrap()
    );
}
