//! Golden vectors: fixed inputs and the outputs every node must compute. A failure here means
//! placements changed, which in a running cluster moves data: change these only with a new
//! format version and a migration.

use placement::hash::{log2_fixed, siphash24, REPLICA_KEY, RING_KEY};
use placement::{rank_nodes, replicas, NodeInfo, Ring, SlotTable};

/// The hash keys and the fixed-point logarithm are pinned.
#[test]
fn hashes_are_pinned() {
    assert_eq!(siphash24(RING_KEY, b""), 0xd0acccb655a5fe10);
    assert_eq!(siphash24(REPLICA_KEY, b"cohort"), 0xdab031385ffdc0b6);
    // floor(log2(x) · 2^32): log2 3 = 1.5849625007…, log2 10 = 3.3219280948…
    assert_eq!(log2_fixed(3), 6_807_362_105);
    assert_eq!(log2_fixed(10), 14_267_572_527);
    assert_eq!(log2_fixed(123_456_789), 115_446_276_791);
}

/// Virtual-node points of a small ring are pinned.
#[test]
fn ring_points_are_pinned() {
    let expected: [(u64, u64); 12] = [
        (0x2ba56dbe37520f42, 10),
        (0x5194365cadd2345e, 30),
        (0x51e51212ce7cb86e, 10),
        (0x59886c904392e2d6, 10),
        (0x61795e85fba4adf4, 20),
        (0x69835fead9218e00, 30),
        (0x7606feb45be59cbb, 30),
        (0x8363217af0980be9, 20),
        (0xbd679c8c99f28e3b, 20),
        (0xe8ae4f089a817872, 20),
        (0xf462d49f7bc2d4cd, 30),
        (0xfe2d56dd33f6fd33, 10),
    ];
    let ring = Ring::new(&[10, 20, 30], 4);
    assert_eq!(ring.points(), expected);
    assert_eq!(ring.owner(0), 10);
    assert_eq!(ring.owner(0x5194365cadd2345e), 30);
    assert_eq!(ring.owner(0xfe2d56dd33f6fd34), 10, "wraps to the first point");
}

/// Slot tables are pinned: the first runs of a 3-shard table, and fingerprints of the whole
/// encoding at 100 shards and after growing to 101.
#[test]
fn slot_tables_are_pinned() {
    let table = SlotTable::build(&[10, 20, 30]);
    assert_eq!(
        table.ranges()[..8],
        [
            (0, 903, 30),
            (904, 1397, 20),
            (1398, 1449, 10),
            (1450, 1721, 20),
            (1722, 2792, 10),
            (2793, 2876, 20),
            (2877, 3147, 10),
            (3148, 3153, 30)
        ]
    );
    let shards: Vec<u64> = (1..=100).collect();
    let table = SlotTable::build(&shards);
    assert_eq!(siphash24([0, 0], &table.encode()), 0x2aa4f0e3e54c79be);
    let grown: Vec<u64> = (1..=101).collect();
    assert_eq!(siphash24([0, 0], &table.rebalance(&grown).encode()), 0xae8211f91e16a70c);
}

/// Weighted, zoned replica sets and full rankings are pinned.
#[test]
fn replica_sets_are_pinned() {
    let nodes: Vec<NodeInfo> = (1..=6)
        .map(|id| NodeInfo { id, zone: format!("z{}", id % 3), weight: id as u32 })
        .collect();
    let expected: [([u64; 3], [u64; 6]); 5] = [
        ([3, 2, 4], [3, 2, 6, 4, 5, 1]),
        ([6, 2, 4], [6, 2, 3, 4, 5, 1]),
        ([5, 6, 4], [5, 2, 6, 4, 3, 1]),
        ([2, 3, 1], [2, 3, 1, 5, 4, 6]),
        ([2, 1, 3], [2, 1, 3, 5, 4, 6]),
    ];
    for (shard, (set, ranking)) in expected.iter().enumerate() {
        assert_eq!(replicas(shard as u64, &nodes, 3).nodes, set, "shard {shard}");
        assert_eq!(rank_nodes(shard as u64, &nodes), ranking, "shard {shard}");
    }
}
