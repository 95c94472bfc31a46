//! Replica placement and leader balance properties: zone rule, stability, weights, determinism,
//! leader caps.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{nodes, Xorshift};
use placement::{balance_leaders, place_replicas, rank_nodes, replicas, NodeInfo};

/// Fails unless the set has `count` distinct nodes in distinct zones (or says it could not).
fn assert_zone_rule(set: &placement::ReplicaSet, nodes: &[NodeInfo], count: usize) {
    let zone_of: BTreeMap<u64, &str> = nodes.iter().map(|n| (n.id, n.zone.as_str())).collect();
    let distinct: BTreeSet<u64> = set.nodes.iter().copied().collect();
    assert_eq!(distinct.len(), set.nodes.len(), "distinct nodes");
    assert_eq!(set.nodes.len(), count.min(nodes.iter().filter(|n| n.weight > 0).count()));
    let zones: BTreeSet<&str> = set.nodes.iter().map(|id| zone_of[id]).collect();
    assert_eq!(zones.len() < set.nodes.len(), set.zones_shared, "zones_shared tells the truth");
    let zone_count = nodes.iter().map(|n| n.zone.as_str()).collect::<BTreeSet<_>>().len();
    if zone_count >= count {
        assert!(!set.zones_shared, "enough zones, so none is shared");
    }
}

/// The zone checker catches two replicas in one zone (it can fail).
#[test]
fn zone_checker_detects_a_shared_zone() {
    let cluster = nodes(0, 6, 3);
    let bad = placement::ReplicaSet { nodes: vec![0, 3, 1], zones_shared: false };
    assert!(std::panic::catch_unwind(|| assert_zone_rule(&bad, &cluster, 3)).is_err());
}

/// Replicas never share a zone while zones last; with fewer zones they fall back to distinct
/// nodes and say so.
#[test]
fn replicas_respect_zones() {
    let mut random = Xorshift::new(10);
    for _ in 0..200 {
        let count = 1 + random.below(5) as usize;
        let node_count = 1 + random.below(30);
        let zones = 1 + random.below(8);
        let cluster = nodes(random.below(1000), node_count, zones);
        let set = replicas(random.next(), &cluster, count);
        assert_zone_rule(&set, &cluster, count);
    }
    let set = replicas(1, &nodes(0, 6, 2), 3);
    assert!(set.zones_shared, "two zones cannot hold three replicas apart");
    assert_eq!(set.nodes.len(), 3);
}

/// The order of the node list does not matter, and the set is the ranking's best per zone.
#[test]
fn replicas_are_deterministic_and_ranked() {
    let mut random = Xorshift::new(11);
    let mut cluster = nodes(0, 20, 4);
    for node in &mut cluster {
        node.weight = 1 + random.below(4) as u32;
    }
    for shard in 0..100 {
        let set = replicas(shard, &cluster, 3);
        let mut reversed = cluster.clone();
        reversed.reverse();
        assert_eq!(set, replicas(shard, &reversed, 3));
        let ranking = rank_nodes(shard, &cluster);
        assert_eq!(set.nodes[0], ranking[0], "the top-ranked node is the preferred leader");
        let positions: Vec<usize> =
            set.nodes.iter().map(|id| ranking.iter().position(|r| r == id).unwrap()).collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "ordered by score");
    }
}

/// A node joining changes a replica set only by entering it (displacing one node); a node
/// leaving only by being replaced. Checked with and without enough zones.
#[test]
fn replica_sets_change_only_around_the_moving_node() {
    let mut random = Xorshift::new(12);
    for zones in [2u64, 3, 5, 10] {
        let cluster = nodes(0, 30, zones);
        let joiner =
            NodeInfo { id: 1000, zone: format!("zone-{}", random.below(zones)), weight: 1 };
        let mut grown = cluster.clone();
        grown.push(joiner);
        let lost = random.below(30);
        let shrunk: Vec<NodeInfo> = cluster.iter().filter(|n| n.id != lost).cloned().collect();
        for shard in 0..500 {
            let before: BTreeSet<u64> = replicas(shard, &cluster, 3).nodes.into_iter().collect();
            let after: BTreeSet<u64> = replicas(shard, &grown, 3).nodes.into_iter().collect();
            let entered: Vec<u64> = after.difference(&before).copied().collect();
            assert!(entered.is_empty() || entered == [1000], "join: {entered:?} entered");
            assert!(before.difference(&after).count() <= entered.len());
            let after: BTreeSet<u64> = replicas(shard, &shrunk, 3).nodes.into_iter().collect();
            let left: Vec<u64> = before.difference(&after).copied().collect();
            assert!(left.is_empty() || left == [lost], "loss: {left:?} left");
            assert_eq!(after.difference(&before).count(), left.len());
        }
    }
}

/// Weight 0 drains a node; otherwise a node is preferred leader in proportion to its weight.
#[test]
fn weights_steer_placement() {
    let mut cluster = nodes(0, 4, 4);
    cluster[0].weight = 0;
    cluster[1].weight = 3;
    let mut first = [0u32; 4];
    for shard in 0..20_000 {
        let set = replicas(shard, &cluster, 3);
        assert!(!set.nodes.contains(&0), "a drained node holds nothing");
        first[set.nodes[0] as usize] += 1;
    }
    // Expected shares 3/5, 1/5, 1/5 of 20,000: 12,000 and 4,000 (standard deviation ~70).
    assert!((11_600..12_400).contains(&first[1]), "{first:?}");
    assert!((3_700..4_300).contains(&first[2]) && (3_700..4_300).contains(&first[3]), "{first:?}");
    assert_eq!(replicas(1, &[], 3).nodes, Vec::<u64>::new());
}

/// Two nodes with one id are refused as a corrupt membership.
#[test]
#[should_panic(expected = "node ids must be unique")]
fn duplicate_node_ids_are_refused() {
    let mut cluster = nodes(0, 3, 3);
    cluster[2].id = 0;
    replicas(1, &cluster, 3);
}

/// Leaders are replicas, and no node leads more than ⌈shards/nodes⌉ on rendezvous placements.
#[test]
fn leaders_are_balanced() {
    let mut random = Xorshift::new(13);
    for _ in 0..10 {
        let node_count = 3 + random.below(40);
        let cluster = nodes(0, node_count, 1 + random.below(6));
        let shard_count = 1 + random.below(2000);
        let sets: BTreeMap<u64, Vec<u64>> =
            (0..shard_count).map(|shard| (shard, replicas(shard, &cluster, 3).nodes)).collect();
        let leaders = balance_leaders(&sets);
        assert_eq!(leaders.len(), sets.len());
        let mut led: BTreeMap<u64, usize> = BTreeMap::new();
        for (shard, leader) in &leaders {
            assert!(sets[shard].contains(leader));
            *led.entry(*leader).or_default() += 1;
        }
        let cap = (shard_count as usize).div_ceil(node_count as usize);
        assert!(led.values().all(|&count| count <= cap), "cap {cap}: {led:?}");
        assert_eq!(leaders, balance_leaders(&sets), "deterministic");
    }
}

/// Leadership moves along a chain when the overloaded node's own shards have no idle replica,
/// preferred leaders stay when the cap allows, and an impossible cap still gives the best maximum.
#[test]
fn leaders_move_along_chains_and_respect_impossible_caps() {
    // Node 1 prefers all three shards; shard 30 can move to 2 only if shard 20 moves to 3 first
    // (2 already leads 20 and 21).
    let sets: BTreeMap<u64, Vec<u64>> = [
        (10, vec![1, 2]),
        (11, vec![1, 2]),
        (12, vec![1, 2]),
        (20, vec![2, 3]),
        (21, vec![2]),
        (30, vec![3]),
    ]
    .into_iter()
    .collect();
    let leaders = balance_leaders(&sets);
    let mut led: BTreeMap<u64, usize> = BTreeMap::new();
    for leader in leaders.values() {
        *led.entry(*leader).or_default() += 1;
    }
    assert!(led.values().all(|&count| count <= 2), "{leaders:?}");
    // Balanced preferences stay untouched.
    let sets: BTreeMap<u64, Vec<u64>> = [(1, vec![1, 2]), (2, vec![2, 1])].into_iter().collect();
    assert_eq!(balance_leaders(&sets), [(1, 1), (2, 2)].into_iter().collect());
    // Every shard lives only on node 1 plus one elsewhere: node 1 must lead those it alone holds.
    let sets: BTreeMap<u64, Vec<u64>> = (0..10)
        .map(|shard| (shard, if shard < 8 { vec![1] } else { vec![1, 2] }))
        .chain([(10, vec![]), (11, vec![3, 1])])
        .collect();
    let leaders = balance_leaders(&sets);
    assert_eq!(leaders.len(), 11, "a shard without replicas gets no leader");
    assert_eq!(leaders.values().filter(|&&leader| leader == 1).count(), 8);
}

/// Bounded-load placement keeps every node under its cap and the zone rule intact, and with a
/// cap too loose to bind it is exactly per-shard rendezvous placement.
#[test]
fn bounded_load_placement_caps_nodes() {
    let mut random = Xorshift::new(14);
    for _ in 0..4 {
        // Zones many enough that none must hold more than its weighted share.
        let mut cluster = nodes(0, 20 + random.below(30), 6 + random.below(5));
        for node in &mut cluster {
            node.weight = 1 + random.below(3) as u32;
        }
        let shards: Vec<u64> = (0..1000 + random.below(2000)).collect();
        let placement = place_replicas(&shards, &cluster, 3, 110);
        assert_eq!(placement.len(), shards.len());
        let weight_total: u64 = cluster.iter().map(|n| u64::from(n.weight)).sum();
        let mut loads: BTreeMap<u64, u64> = BTreeMap::new();
        for set in placement.values() {
            assert_zone_rule(set, &cluster, 3);
            for node in &set.nodes {
                *loads.entry(*node).or_default() += 1;
            }
        }
        for node in &cluster {
            let cap = (110 * 3 * shards.len() as u64 * u64::from(node.weight))
                .div_ceil(100 * weight_total);
            assert!(loads.get(&node.id).copied().unwrap_or(0) <= cap, "node {} over", node.id);
        }
        let mut reversed = shards.clone();
        reversed.reverse();
        assert_eq!(placement, place_replicas(&reversed, &cluster, 3, 110), "order-independent");
        let loose = place_replicas(&shards, &cluster, 3, u32::MAX);
        for (shard, set) in loose {
            assert_eq!(set, replicas(shard, &cluster, 3));
        }
    }
}

/// The zone rule outranks the cap: the only node of a zone takes every shard's replica there.
#[test]
fn zone_rule_outranks_load_cap() {
    let mut cluster = nodes(1, 6, 1);
    cluster[0].zone = "lonely".into();
    for node in &mut cluster[1..3] {
        node.zone = "second".into();
    }
    let shards: Vec<u64> = (0..300).collect();
    let placement = place_replicas(&shards, &cluster, 3, 100);
    for set in placement.values() {
        assert!(!set.zones_shared);
        assert!(set.nodes.contains(&1), "{set:?}");
    }
}
