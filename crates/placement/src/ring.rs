//! A consistent-hash ring of shards with virtual nodes (Karger et al., "Consistent Hashing and
//! Random Trees", STOC 1997, §4).
//!
//! Each shard `s` places `vnodes_per_shard` points on the `u64` circle; virtual node `i` sits at
//! `siphash24(RING_KEY, le64(s) ‖ le64(i))`. A position on the circle is owned by the first point
//! at or after it, wrapping past `u64::MAX` to the smallest point. Two shards whose points
//! collide are ordered by shard id, so the lower id owns the shared point. Adding a shard only
//! takes arcs from the others, and removing one only gives its arcs away: that is what keeps
//! slot movement small.

use crate::hash::{hash_pair, RING_KEY};
use crate::ShardId;

/// Most points a ring may hold: bounds the memory a configuration can ask for (64 MiB).
pub const RING_POINTS_MAX: usize = 1 << 22;

/// Shards placed on the `u64` circle through virtual nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    /// `(point, shard)` sorted by point, then shard id.
    points: Vec<(u64, ShardId)>,
}

impl Ring {
    /// The ring of `shards` (duplicates ignored), each with `vnodes_per_shard` points.
    ///
    /// # Panics
    ///
    /// If `shards` is empty, `vnodes_per_shard` is zero, or the ring would exceed
    /// [`RING_POINTS_MAX`] points: a ring must own every position, and its size is bounded.
    pub fn new(shards: &[ShardId], vnodes_per_shard: u32) -> Ring {
        let mut distinct = shards.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(!distinct.is_empty(), "a ring needs at least one shard");
        assert!(vnodes_per_shard > 0, "a shard needs at least one virtual node");
        let total = distinct.len().checked_mul(vnodes_per_shard as usize);
        assert!(total.is_some_and(|total| total <= RING_POINTS_MAX), "ring too large");
        let mut points = Vec::with_capacity(total.unwrap_or(0));
        for &shard in &distinct {
            for vnode in 0..vnodes_per_shard {
                points.push((hash_pair(RING_KEY, shard, u64::from(vnode)), shard));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The shard owning `point`: the first virtual node at or after it, wrapping around.
    pub fn owner(&self, point: u64) -> ShardId {
        self.points[self.successor(point)].1
    }

    /// Index of the first point at or after `point`, wrapping to 0.
    pub(crate) fn successor(&self, point: u64) -> usize {
        let index = self.points.partition_point(|&(entry, _)| entry < point);
        if index == self.points.len() {
            0
        } else {
            index
        }
    }

    /// The `(point, shard)` pairs in ring order.
    pub fn points(&self) -> &[(u64, ShardId)] {
        &self.points
    }

    /// Shards in ring order starting at `point`'s owner and going once around the circle: the
    /// walk a bounded-load assignment follows when the owner is full.
    pub(crate) fn walk(&self, point: u64) -> impl Iterator<Item = ShardId> + '_ {
        let start = self.successor(point);
        self.points[start..].iter().chain(&self.points[..start]).map(|&(_, shard)| shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ownership follows the first point at or after a position and wraps past the top.
    #[test]
    fn owner_is_clockwise_successor_with_wraparound() {
        let ring = Ring::new(&[7, 3, 7], 4);
        assert_eq!(ring.points().len(), 8, "duplicate shard ids are ignored");
        for window in ring.points().windows(2) {
            assert!(window[0] < window[1]);
            let (point, shard) = window[1];
            assert_eq!(ring.owner(point), shard);
            assert_eq!(ring.owner(window[0].0 + 1), shard);
        }
        let (first_point, first_shard) = ring.points()[0];
        let (last_point, _) = *ring.points().last().unwrap();
        assert_eq!(ring.owner(0), first_shard);
        assert_eq!(ring.owner(first_point), first_shard);
        if last_point < u64::MAX {
            assert_eq!(ring.owner(last_point + 1), first_shard, "wraps around");
        }
        assert_eq!(ring.walk(last_point).count(), 8);
    }
}
