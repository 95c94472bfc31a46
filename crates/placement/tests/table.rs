//! Slot table properties: balance, determinism, minimal movement, encoding.

mod common;

use std::collections::BTreeSet;

use common::Xorshift;
use placement::{SlotTable, TableError, SLOTS};

/// Fails unless every shard of `shards` owns `⌊16384/n⌋` or `⌈16384/n⌉` slots and no other shard
/// owns any.
fn assert_balanced(table: &SlotTable, shards: &[u64]) {
    let distinct: BTreeSet<u64> = shards.iter().copied().collect();
    let counts = table.slot_counts();
    assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), distinct, "owners are the shards");
    let floor = u32::from(SLOTS) / distinct.len() as u32;
    let ceil = u32::from(SLOTS).div_ceil(distinct.len() as u32);
    for (shard, count) in counts {
        assert!((floor..=ceil).contains(&count), "shard {shard} owns {count} slots");
    }
}

/// Fails unless `next` moved exactly the minimal number of slots from `previous` and none
/// between two shards present in both shard sets.
fn assert_minimal_moves(previous: &SlotTable, next: &SlotTable, shards: &[u64]) {
    let moves = previous.moves(next);
    assert_eq!(moves.len() as u32, previous.minimal_moves(shards), "moves are minimal");
    let before: BTreeSet<u64> = previous.shards().into_iter().collect();
    let after: BTreeSet<u64> = shards.iter().copied().collect();
    for (slot, from, to) in moves {
        let both_stay = before.contains(&from) && after.contains(&from) && before.contains(&to);
        assert!(!both_stay, "slot {slot} moved between staying shards {from} and {to}");
    }
}

/// The checkers above reject an unbalanced table and a gratuitous move (they can fail).
#[test]
fn checkers_detect_violations() {
    let table = SlotTable::build(&[1, 2]);
    let mut owners = table.owners().to_vec();
    let stolen = owners.iter().position(|&owner| owner == 1).unwrap();
    owners[stolen] = 2;
    let skewed = SlotTable::from_owners(2, &owners).unwrap();
    let unbalanced = std::panic::catch_unwind(|| assert_balanced(&skewed, &[1, 2]));
    assert!(unbalanced.is_err());
    let gratuitous = std::panic::catch_unwind(|| assert_minimal_moves(&table, &skewed, &[1, 2]));
    assert!(gratuitous.is_err());
}

/// Tables are balanced within one slot for any shard count, so max/mean ≤ 1.05 up to 100 shards.
#[test]
fn build_is_balanced() {
    let mut random = Xorshift::new(1);
    let mut counts: Vec<usize> = (1..=100).collect();
    counts.extend([127, 1000, 5000, 16384]);
    for count in counts {
        let shards = random.distinct_ids(count);
        let table = SlotTable::build(&shards);
        assert_balanced(&table, &shards);
        let max = *table.slot_counts().values().max().unwrap() as f64;
        let mean = f64::from(SLOTS) / count as f64;
        if count <= 100 {
            assert!(max / mean <= 1.05, "{count} shards: max/mean {}", max / mean);
        }
    }
}

/// The same shard set, in any order and with repeats, gives byte-identical tables.
#[test]
fn build_is_deterministic() {
    let mut random = Xorshift::new(2);
    for _ in 0..20 {
        let count = 1 + random.below(60) as usize;
        let shards = random.distinct_ids(count);
        let mut shuffled = shards.clone();
        for index in (1..shuffled.len()).rev() {
            shuffled.swap(index, random.below(index as u64 + 1) as usize);
        }
        shuffled.push(shards[0]);
        assert_eq!(SlotTable::build(&shards).encode(), SlotTable::build(&shuffled).encode());
    }
}

/// Random sequences of shard additions and removals move exactly the minimal number of slots,
/// never between two staying shards, and stay balanced.
#[test]
fn rebalance_moves_the_minimum() {
    let mut random = Xorshift::new(3);
    for _ in 0..12 {
        let count = 1 + random.below(40) as usize;
        let mut shards = random.distinct_ids(count);
        let mut table = SlotTable::build(&shards);
        for _ in 0..8 {
            let removals = random.below(3.min(shards.len() as u64)) as usize;
            for _ in 0..removals {
                shards.remove(random.below(shards.len() as u64) as usize);
            }
            let additions = random.below(4) + u64::from(shards.is_empty());
            shards.extend(random.distinct_ids(additions as usize));
            let next = table.rebalance(&shards);
            assert_eq!(next.epoch, table.epoch + 1);
            assert_balanced(&next, &shards);
            assert_minimal_moves(&table, &next, &shards);
            assert_eq!(next, table.rebalance(&shards), "deterministic");
            table = next;
        }
    }
}

/// Growing 10 → 11 shards moves no more than 1.2× the new shard's fair share, and shrinking
/// 11 → 10 moves only the leaving shard's slots.
#[test]
fn one_shard_more_or_less_at_ten() {
    let shards: Vec<u64> = (1..=10).collect();
    let table = SlotTable::build(&shards);
    let grown: Vec<u64> = (1..=11).collect();
    let bigger = table.rebalance(&grown);
    let fair_share = f64::from(SLOTS) / 11.0;
    let moved = table.moves(&bigger).len() as f64;
    assert!(moved <= 1.2 * fair_share, "moved {moved}, fair share {fair_share}");
    assert!(table.moves(&bigger).iter().all(|&(_, _, to)| to == 11));
    let shrunk = bigger.rebalance(&shards);
    let leaving = bigger.slot_counts()[&11] as usize;
    assert_eq!(bigger.moves(&shrunk).len(), leaving);
    assert!(bigger.moves(&shrunk).iter().all(|&(_, from, _)| from == 11));
    assert_eq!(table.rebalance(&shards).moves(&table), vec![], "same set: nothing moves");
}

/// A hand-made unbalanced table is brought to balance with the minimal number of moves.
#[test]
fn rebalance_repairs_an_unbalanced_table() {
    let mut owners = vec![1u64; usize::from(SLOTS)];
    owners[..100].fill(2);
    owners[100..150].fill(3);
    let skewed = SlotTable::from_owners(7, &owners).unwrap();
    for shards in [vec![1, 2, 3], vec![1, 2, 3, 4], vec![2, 3]] {
        let next = skewed.rebalance(&shards);
        assert_eq!(next.epoch, 8);
        assert_balanced(&next, &shards);
        assert_eq!(skewed.moves(&next).len() as u32, skewed.minimal_moves(&shards));
    }
    assert_eq!(SlotTable::from_owners(1, &owners[1..]), Err(TableError::SlotCount(16383)));
}

/// Encoding round-trips, is little-endian and versioned as documented, and re-encodes
/// byte-identically.
#[test]
fn encoding_round_trips_in_canonical_form() {
    let mut random = Xorshift::new(4);
    for count in [1usize, 2, 3, 10, 100, 16384] {
        let table =
            SlotTable::build(&random.distinct_ids(count)).rebalance(&random.distinct_ids(3));
        let bytes = table.encode();
        assert_eq!(bytes.len(), 13 + 8 * 3 + 2 * 16384);
        assert_eq!(bytes[0], 1, "version");
        assert_eq!(bytes[1..9], 2u64.to_le_bytes(), "epoch");
        assert_eq!(bytes[9..13], 3u32.to_le_bytes(), "shard count");
        let decoded = SlotTable::decode(&bytes).unwrap();
        assert_eq!(decoded, table);
        assert_eq!(decoded.encode(), bytes);
    }
}

/// Decoding refuses every malformed input with the matching error, and never panics on
/// truncations or byte flips.
#[test]
fn decoding_refuses_malformed_input() {
    let table = SlotTable::build(&[5, 9, 12]);
    let bytes = table.encode();
    for length in 0..bytes.len() {
        assert!(SlotTable::decode(&bytes[..length]).is_err(), "truncated at {length}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(SlotTable::decode(&longer), Err(TableError::Length { .. })));
    let mut version = bytes.clone();
    version[0] = 2;
    assert_eq!(SlotTable::decode(&version), Err(TableError::UnknownVersion(2)));
    for count in [0u32, 16385, u32::MAX] {
        let mut shards = bytes.clone();
        shards[9..13].copy_from_slice(&count.to_le_bytes());
        assert_eq!(SlotTable::decode(&shards), Err(TableError::ShardCount(count)));
    }
    let mut order = bytes.clone();
    order[13..21].copy_from_slice(&9u64.to_le_bytes());
    assert_eq!(SlotTable::decode(&order), Err(TableError::ShardOrder(1)));
    let mut index = bytes.clone();
    index[37..39].copy_from_slice(&3u16.to_le_bytes());
    assert_eq!(
        SlotTable::decode(&index),
        Err(TableError::OwnerIndex { slot: 0, index: 3, count: 3 })
    );
    let mut unused = bytes.clone();
    for slot in 0..usize::from(SLOTS) {
        let at = 37 + 2 * slot;
        if unused[at] == 2 {
            unused[at] = 1;
        }
    }
    assert_eq!(SlotTable::decode(&unused), Err(TableError::UnusedShard(12)));
    let mut random = Xorshift::new(5);
    for _ in 0..2000 {
        let mut flipped = bytes.clone();
        let at = random.below(bytes.len() as u64) as usize;
        flipped[at] ^= 1 << random.below(8);
        if let Ok(decoded) = SlotTable::decode(&flipped) {
            assert_eq!(decoded.encode(), flipped, "anything accepted is canonical");
        }
    }
}

/// Lookups agree with the owner list, and ranges cover every slot once, in order.
#[test]
fn lookups_and_ranges_agree() {
    let table = SlotTable::build(&[3, 1, 4, 15, 9, 2, 6]);
    assert_eq!(table.shards(), vec![1, 2, 3, 4, 6, 9, 15]);
    assert_eq!(table.shard_of_key(b"foo"), table.shard_of_slot(12182));
    let mut next_slot = 0u32;
    let ranges = table.ranges();
    for window in ranges.windows(2) {
        assert_ne!(window[0].2, window[1].2, "ranges are maximal");
    }
    for (first, last, shard) in ranges {
        assert_eq!(u32::from(first), next_slot);
        for slot in first..=last {
            assert_eq!(table.shard_of_slot(slot), shard);
        }
        next_slot = u32::from(last) + 1;
    }
    assert_eq!(next_slot, u32::from(SLOTS));
}
