//! Seeded test inputs: a tiny xorshift generator and node-set builders.

#![allow(dead_code)]

use placement::NodeInfo;

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"):
/// deterministic from its seed, good enough to vary test inputs.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        // A zero state would stay zero.
        Xorshift(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (bias negligible for the small bounds used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// `count` distinct ids drawn from the whole `u64` range.
    pub fn distinct_ids(&mut self, count: usize) -> Vec<u64> {
        let mut ids = std::collections::BTreeSet::new();
        while ids.len() < count {
            ids.insert(self.next());
        }
        ids.into_iter().collect()
    }
}

/// `count` nodes with ids `first..`, spread round-robin over `zones` zones, weight 1.
pub fn nodes(first: u64, count: u64, zones: u64) -> Vec<NodeInfo> {
    (first..first + count)
        .map(|id| NodeInfo { id, zone: format!("zone-{}", id % zones), weight: 1 })
        .collect()
}
