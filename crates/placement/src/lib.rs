//! Placement: where every key, slot and shard replica lives. Pure: no IO, no clock, no
//! randomness; every node computes byte-identical results from the same inputs.
//!
//! The chain, and the module for each link:
//!
//! 1. **key → slot** ([`key_slot`], module `slot`): CRC-16/XMODEM mod 16384 with `{hash tag}`s,
//!    exactly Redis Cluster's, so cluster-aware clients route as they would against Redis.
//! 2. **slot → shard** ([`SlotTable`], modules `ring` and `table`): a consistent-hash
//!    [`Ring`] of shards with virtual nodes, materialised into a versioned 16384-entry table
//!    with bounded loads (every shard within one slot of the mean). Adding or removing shards
//!    moves the fewest slots any balanced table can, and never between two staying shards.
//! 3. **shard → replica nodes** ([`replicas`], module `replicas`): weighted rendezvous hashing,
//!    never two replicas in one failure zone while zones last; the first replica is the
//!    preferred leader.
//! 4. **leaders** ([`balance_leaders`], module `leaders`): one leader per shard among its
//!    replicas, no node leading more than its fair share when any choice allows it.
//!
//! Every hash is specified in module `hash` (SipHash-2-4 with fixed keys over little-endian
//! bytes, integer-only logarithms); golden vectors in the tests pin the outputs down.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use placement::{balance_leaders, key_slot, replicas, NodeInfo, SlotTable};
//!
//! let table = SlotTable::build(&[1, 2, 3]);
//! let shard = table.shard_of_key(b"{user1000}.following");
//! assert_eq!(shard, table.shard_of_slot(key_slot(b"{user1000}.followers")));
//!
//! // A fourth shard takes slots from the others, and only from them.
//! let next = table.rebalance(&[1, 2, 3, 4]);
//! assert_eq!(next.epoch, table.epoch + 1);
//! assert!(next.moves(&table).iter().all(|&(_, to, _)| to == 4));
//! assert_eq!(SlotTable::decode(&next.encode()), Ok(next));
//!
//! let nodes: Vec<NodeInfo> = (0..6)
//!     .map(|id| NodeInfo { id, zone: format!("zone-{}", id % 3), weight: 1 })
//!     .collect();
//! let set = replicas(shard, &nodes, 3);
//! assert_eq!(set.nodes.len(), 3);
//! assert!(!set.zones_shared);
//!
//! let sets: BTreeMap<_, _> = (1..=4).map(|s| (s, replicas(s, &nodes, 3).nodes)).collect();
//! let leaders = balance_leaders(&sets);
//! assert!(leaders.iter().all(|(shard, leader)| sets[shard].contains(leader)));
//! ```

pub mod hash;
mod leaders;
mod replicas;
mod ring;
mod slot;
mod table;

pub use leaders::balance_leaders;
pub use replicas::{place_replicas, rank_nodes, replicas, NodeInfo, ReplicaSet};
pub use ring::{Ring, RING_POINTS_MAX};
pub use slot::{crc16, hash_tag, key_slot, SLOTS};
pub use table::{SlotTable, TableError, ENCODING_VERSION, SHARDS_MAX, VNODES_PER_SHARD};

/// Identifies a shard: one consensus group owning a set of slots.
pub type ShardId = u64;

/// Identifies a node (one `cohort` process).
pub type NodeId = u64;
