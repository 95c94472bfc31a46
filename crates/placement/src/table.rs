//! The versioned slot → shard table, derived from the shard ring with bounded loads.
//!
//! # Where each slot sits on the ring
//!
//! Slot `s` stands at the middle of the `s`-th of 16384 equal arcs of the `u64` circle,
//! `point(s) = s · 2^50 + 2^49`. Neighbouring slots therefore tend to share an owner, which keeps
//! the `CLUSTER SLOTS` range list short.
//!
//! # Quotas
//!
//! A table for `n` shards gives every shard exactly `⌊16384 / n⌋` or `⌈16384 / n⌉` slots (so
//! max/mean ≤ 1 + n/16384: 1.006 at 100 shards). The `16384 mod n` larger quotas go to the shards
//! that already hold the most slots (ties: lower shard id), which is the choice that lets the most
//! slots stay where they are.
//!
//! # Building
//!
//! [`SlotTable::build`] is "Consistent Hashing with Bounded Loads" (Mirrokni, Thorup and
//! Zadimoghaddam, SODA 2018, §2) with the capacity of each shard set to its quota: slots are
//! taken in order, and each goes to the first shard at or after its point on the ring
//! ([`crate::Ring`], [`VNODES_PER_SHARD`] virtual nodes each) that is still below its quota.
//!
//! # Rebalancing
//!
//! [`SlotTable::rebalance`] moves only the slots it must:
//!
//! 1. Slots of shards that stay are kept, except that a shard above its new quota releases its
//!    surplus, choosing first the slots the new ring gives to another shard (then lower slots).
//! 2. Released slots go to **added** shards only, by the same bounded-load ring walk, so no slot
//!    moves between two shards that both stay.
//! 3. Slots of **removed** shards go to any shard still below its quota, by the same walk.
//!
//! Every slot that moves fills a shard's deficit, so the number moved is exactly
//! [`SlotTable::minimal_moves`], the fewest any balanced table can move. Step 2's rule holds
//! whenever the starting table is balanced, which every table built or rebalanced here is; a
//! table made unbalanced by hand ([`SlotTable::from_owners`]) is still brought to balance, and
//! only then may a slot move between two staying shards.
//!
//! # Encoding (version 1, little-endian)
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version = 1 |
//! | 8 | epoch |
//! | 4 | `k`, the number of shards (1 ..= 16384) |
//! | 8·k | shard ids, strictly ascending, each owning at least one slot |
//! | 2·16384 | for each slot in order, the index of its shard in the list above |
//!
//! The form is canonical: a table has exactly one encoding, and [`SlotTable::decode`] accepts
//! nothing else.

use std::collections::BTreeMap;

use crate::ring::Ring;
use crate::slot::{key_slot, SLOTS};
use crate::ShardId;

/// Virtual nodes per shard on the ring a table is derived from. Bounded loads make the table
/// balanced whatever this is, so it only trades locality for spread: each virtual node starts
/// a run of slots, and `CLUSTER SLOTS` lists every run (about 14 runs per shard at 16; 50 at 64).
pub const VNODES_PER_SHARD: u32 = 16;

/// Most shards a table may have: one slot each.
pub const SHARDS_MAX: usize = SLOTS as usize;

/// Version byte of [`SlotTable::encode`]'s format.
pub const ENCODING_VERSION: u8 = 1;

const HEADER_BYTES: usize = 1 + 8 + 4;
const SLOT_INDEX_BYTES: usize = 2 * SLOTS as usize;

const _: () = assert!(SHARDS_MAX <= u16::MAX as usize + 1, "slot owner indices must fit in u16");
const _: () = assert!(VNODES_PER_SHARD as usize * SHARDS_MAX <= crate::ring::RING_POINTS_MAX);

/// Why a slot table was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The encoding is of a version this code does not know.
    #[error("slot table version {0} is not supported")]
    UnknownVersion(u8),
    /// The input ends before the header or is not exactly as long as the header says.
    #[error("slot table encoding is {actual} bytes, expected {expected}")]
    Length { expected: usize, actual: usize },
    /// The shard count is zero or above [`SHARDS_MAX`].
    #[error("slot table lists {0} shards, expected 1..={SHARDS_MAX}")]
    ShardCount(u32),
    /// The shard list is not strictly ascending.
    #[error("slot table shard ids are not strictly ascending at position {0}")]
    ShardOrder(usize),
    /// A slot names a shard index past the end of the shard list.
    #[error("slot {slot} names shard index {index}, but only {count} shards are listed")]
    OwnerIndex { slot: u16, index: u16, count: u32 },
    /// A listed shard owns no slot (the encoding would not be canonical).
    #[error("shard {0} is listed but owns no slot")]
    UnusedShard(ShardId),
    /// An owner list does not have one entry per slot.
    #[error("an owner list has {0} entries, expected {SLOTS}")]
    SlotCount(usize),
}

/// Which shard owns each of the 16384 slots, and the epoch of that assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotTable {
    /// Increases by one with every rebalance; a node keeps the table with the highest epoch.
    pub epoch: u64,
    /// Exactly [`SLOTS`] entries.
    owners: Box<[ShardId]>,
}

/// The middle of slot `slot`'s arc of the `u64` circle.
fn slot_point(slot: u16) -> u64 {
    const ARC_BITS: u32 = 64 - SLOTS.trailing_zeros();
    (u64::from(slot) << ARC_BITS) | (1 << (ARC_BITS - 1))
}

/// Sorted, deduplicated shard ids, checked against the limits.
fn distinct_shards(shards: &[ShardId]) -> Vec<ShardId> {
    let mut distinct = shards.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(!distinct.is_empty(), "a slot table needs at least one shard");
    assert!(distinct.len() <= SHARDS_MAX, "more shards than slots");
    distinct
}

/// Each target shard's quota, given how many slots it holds now (`loads`, parallel to
/// `targets`): the larger quotas go to the most loaded, ties to the lower id.
fn quotas(targets: &[ShardId], loads: &[u32]) -> Vec<u32> {
    let count = targets.len() as u32;
    let base = u32::from(SLOTS) / count;
    let extra = (u32::from(SLOTS) % count) as usize;
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_unstable_by_key(|&index| (std::cmp::Reverse(loads[index]), targets[index]));
    let mut quotas = vec![base; targets.len()];
    for &index in &order[..extra] {
        quotas[index] += 1;
    }
    quotas
}

/// Slots held now by each target (parallel to `targets`); slots of other shards are not counted.
fn loads_of(owners: Option<&[ShardId]>, targets: &[ShardId]) -> Vec<u32> {
    let mut loads = vec![0u32; targets.len()];
    for owner in owners.into_iter().flatten() {
        if let Ok(index) = targets.binary_search(owner) {
            loads[index] += 1;
        }
    }
    loads
}

impl SlotTable {
    /// A balanced table for `shards` (duplicates ignored) at epoch 1, derived from the ring with
    /// bounded loads. Deterministic: the same shard set gives the same table on every node.
    ///
    /// # Panics
    ///
    /// If `shards` is empty or has more than [`SHARDS_MAX`] distinct ids.
    pub fn build(shards: &[ShardId]) -> SlotTable {
        SlotTable { epoch: 1, owners: assign(None, shards) }
    }

    /// The table for the new shard set `shards`, one epoch later, moving as few slots as any
    /// balanced table can (see the module documentation).
    ///
    /// # Panics
    ///
    /// If `shards` is empty or has more than [`SHARDS_MAX`] distinct ids, or the epoch would
    /// overflow.
    pub fn rebalance(&self, shards: &[ShardId]) -> SlotTable {
        let epoch = self.epoch.checked_add(1).expect("slot table epoch overflow");
        SlotTable { epoch, owners: assign(Some(&self.owners), shards) }
    }

    /// A table with the given owner of every slot, as a configuration or test might state it.
    pub fn from_owners(epoch: u64, owners: &[ShardId]) -> Result<SlotTable, TableError> {
        if owners.len() != usize::from(SLOTS) {
            return Err(TableError::SlotCount(owners.len()));
        }
        Ok(SlotTable { epoch, owners: owners.into() })
    }

    /// The fewest slots that must move to turn this table into any balanced table for `shards`
    /// (every shard at `⌊16384/n⌋` or `⌈16384/n⌉`): every slot not kept by a shard within
    /// its quota.
    pub fn minimal_moves(&self, shards: &[ShardId]) -> u32 {
        let targets = distinct_shards(shards);
        let loads = loads_of(Some(&self.owners), &targets);
        let kept: u32 = quotas(&targets, &loads).iter().zip(&loads).map(|(q, l)| *q.min(l)).sum();
        u32::from(SLOTS) - kept
    }

    /// The shard owning `slot`.
    ///
    /// # Panics
    ///
    /// If `slot ≥ SLOTS`; validate slot numbers that come from clients first.
    pub fn shard_of_slot(&self, slot: u16) -> ShardId {
        self.owners[usize::from(slot)]
    }

    /// The shard owning `key`'s slot.
    pub fn shard_of_key(&self, key: &[u8]) -> ShardId {
        self.owners[usize::from(key_slot(key))]
    }

    /// The owner of every slot, indexed by slot.
    pub fn owners(&self) -> &[ShardId] {
        &self.owners
    }

    /// The distinct shards owning slots, ascending.
    pub fn shards(&self) -> Vec<ShardId> {
        self.slot_counts().into_keys().collect()
    }

    /// How many slots each shard owns.
    pub fn slot_counts(&self) -> BTreeMap<ShardId, u32> {
        let mut counts = BTreeMap::new();
        for &owner in self.owners.iter() {
            *counts.entry(owner).or_insert(0) += 1;
        }
        counts
    }

    /// Maximal runs of consecutive slots with one owner: `(first slot, last slot, shard)`, in
    /// slot order, as `CLUSTER SLOTS` lists them.
    pub fn ranges(&self) -> Vec<(u16, u16, ShardId)> {
        let mut ranges: Vec<(u16, u16, ShardId)> = Vec::new();
        for (slot, &owner) in (0..SLOTS).zip(self.owners.iter()) {
            match ranges.last_mut() {
                Some((_, last, shard)) if *shard == owner => *last = slot,
                _ => ranges.push((slot, slot, owner)),
            }
        }
        ranges
    }

    /// Every slot whose owner differs in `next`: `(slot, from, to)`, in slot order.
    pub fn moves(&self, next: &SlotTable) -> Vec<(u16, ShardId, ShardId)> {
        (0..SLOTS)
            .zip(self.owners.iter().zip(next.owners.iter()))
            .filter(|(_, (from, to))| from != to)
            .map(|(slot, (&from, &to))| (slot, from, to))
            .collect()
    }

    /// The canonical version-1 encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let shards = self.shards();
        let mut bytes = Vec::with_capacity(HEADER_BYTES + 8 * shards.len() + SLOT_INDEX_BYTES);
        bytes.push(ENCODING_VERSION);
        bytes.extend_from_slice(&self.epoch.to_le_bytes());
        bytes.extend_from_slice(&(shards.len() as u32).to_le_bytes());
        for shard in &shards {
            bytes.extend_from_slice(&shard.to_le_bytes());
        }
        for owner in self.owners.iter() {
            let index = shards.binary_search(owner).expect("every owner is listed");
            bytes.extend_from_slice(&(index as u16).to_le_bytes());
        }
        bytes
    }

    /// Parses [`SlotTable::encode`]'s output, refusing anything not in canonical form. Nothing
    /// is allocated before the length is checked against the declared shard count.
    pub fn decode(bytes: &[u8]) -> Result<SlotTable, TableError> {
        let Some(header) = bytes.get(..HEADER_BYTES) else {
            return Err(TableError::Length { expected: HEADER_BYTES, actual: bytes.len() });
        };
        if header[0] != ENCODING_VERSION {
            return Err(TableError::UnknownVersion(header[0]));
        }
        let epoch = u64::from_le_bytes(header[1..9].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(header[9..13].try_into().expect("4 bytes"));
        if count == 0 || count as usize > SHARDS_MAX {
            return Err(TableError::ShardCount(count));
        }
        let expected = HEADER_BYTES + 8 * count as usize + SLOT_INDEX_BYTES;
        if bytes.len() != expected {
            return Err(TableError::Length { expected, actual: bytes.len() });
        }
        let (list, indices) = bytes[HEADER_BYTES..].split_at(8 * count as usize);
        let shards: Vec<ShardId> = list
            .chunks_exact(8)
            .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8 bytes")))
            .collect();
        if let Some(position) = shards.windows(2).position(|pair| pair[0] >= pair[1]) {
            return Err(TableError::ShardOrder(position + 1));
        }
        let mut used = vec![false; shards.len()];
        let mut owners = Vec::with_capacity(usize::from(SLOTS));
        for (slot, chunk) in (0..SLOTS).zip(indices.chunks_exact(2)) {
            let index = u16::from_le_bytes(chunk.try_into().expect("2 bytes"));
            let Some(&shard) = shards.get(usize::from(index)) else {
                return Err(TableError::OwnerIndex { slot, index, count });
            };
            used[usize::from(index)] = true;
            owners.push(shard);
        }
        if let Some(unused) = used.iter().position(|used| !used) {
            return Err(TableError::UnusedShard(shards[unused]));
        }
        Ok(SlotTable { epoch, owners: owners.into_boxed_slice() })
    }
}

/// The owners for `shards`, starting from `previous` (none: build from scratch).
fn assign(previous: Option<&[ShardId]>, shards: &[ShardId]) -> Box<[ShardId]> {
    let targets = distinct_shards(shards);
    let ring = Ring::new(&targets, VNODES_PER_SHARD);
    let loads = loads_of(previous, &targets);
    let quotas = quotas(&targets, &loads);
    let index_of = |shard: ShardId| targets.binary_search(&shard).ok();

    // Keep every slot of a staying shard; gather each staying shard's slots to trim surpluses.
    let mut owners: Vec<Option<ShardId>> = vec![None; usize::from(SLOTS)];
    let mut held: Vec<Vec<u16>> = vec![Vec::new(); targets.len()];
    let mut from_removed: Vec<u16> = Vec::new();
    for slot in 0..SLOTS {
        let owner = previous.map(|owners| owners[usize::from(slot)]);
        match owner.and_then(index_of) {
            Some(index) => {
                owners[usize::from(slot)] = owner;
                held[index].push(slot);
            }
            None => from_removed.push(slot),
        }
    }

    // 1. Shards above quota release their surplus, preferring slots the ring gives elsewhere.
    let mut released: Vec<u16> = Vec::new();
    for (index, slots) in held.iter_mut().enumerate() {
        let surplus = slots.len().saturating_sub(quotas[index] as usize);
        if surplus == 0 {
            continue;
        }
        slots.sort_by_key(|&slot| (ring.owner(slot_point(slot)) == targets[index], slot));
        for &slot in &slots[..surplus] {
            owners[usize::from(slot)] = None;
            released.push(slot);
        }
        slots.truncate(slots.len() - surplus);
    }
    released.sort_unstable();
    let mut remaining: Vec<u32> =
        quotas.iter().zip(&held).map(|(quota, slots)| quota - slots.len() as u32).collect();
    let pool = released.len() + from_removed.len();
    assert_eq!(remaining.iter().map(|&r| r as usize).sum::<usize>(), pool);

    // 2. Released slots go to added shards (those holding nothing before).
    let added: Vec<bool> = loads.iter().map(|&load| previous.is_some() && load == 0).collect();
    let mut added_open: u32 = (0..targets.len()).filter(|&i| added[i]).map(|i| remaining[i]).sum();
    for &slot in &released {
        // Only a hand-made, unbalanced table can release more than the added shards take.
        let shard = walk_to_open(&ring, slot, &targets, &remaining, |index| {
            added_open == 0 || added[index]
        });
        let index = targets.binary_search(&shard).expect("ring shard is a target");
        remaining[index] -= 1;
        if added[index] {
            added_open -= 1;
        }
        owners[usize::from(slot)] = Some(shard);
    }
    // 3. Slots of removed shards (all slots, when building) go to any shard below quota.
    for &slot in &from_removed {
        let shard = walk_to_open(&ring, slot, &targets, &remaining, |_| true);
        remaining[targets.binary_search(&shard).expect("ring shard is a target")] -= 1;
        owners[usize::from(slot)] = Some(shard);
    }
    assert!(remaining.iter().all(|&r| r == 0), "every quota is met");
    owners.into_iter().map(|owner| owner.expect("every slot is assigned")).collect()
}

/// The first shard at or after `slot`'s point on the ring that `eligible` accepts and that is
/// still below its quota.
fn walk_to_open(
    ring: &Ring,
    slot: u16,
    targets: &[ShardId],
    remaining: &[u32],
    eligible: impl Fn(usize) -> bool,
) -> ShardId {
    ring.walk(slot_point(slot))
        .find(|&shard| {
            let index = targets.binary_search(&shard).expect("ring shard is a target");
            eligible(index) && remaining[index] > 0
        })
        .expect("open quota remains while slots remain unassigned")
}
