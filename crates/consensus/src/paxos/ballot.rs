//! Ballots: totally ordered by (round, proposer), packed into a `u64` so that
//! the integer order is the ballot order (Paxos Made Simple §2.5: "each
//! proposer uses numbers from a disjoint set").
//!
//! `packed = round << 16 | node`. Node ids must stay below 65,536
//! (asserted when an engine is built); rounds below 2^48, which a replica
//! would need millions of years of elections to exhaust (asserted when a
//! ballot is made). Ballot zero (round zero) is "no ballot".

use super::message::Ballot;
use crate::NodeId;

/// Bits the node id occupies.
pub(super) const NODE_BITS: u32 = 16;
/// The largest node id a ballot can name.
pub(super) const NODE_ID_MAX: NodeId = (1 << NODE_BITS) - 1;
const ROUND_MAX: u64 = (1 << (64 - NODE_BITS)) - 1;

/// The ballot of `node` in `round`.
pub(super) fn make(round: u64, node: NodeId) -> Ballot {
    assert!(node != 0 && node <= NODE_ID_MAX, "node id {node} does not fit a ballot");
    assert!((1..=ROUND_MAX).contains(&round), "ballot round {round} out of range");
    (round << NODE_BITS) | node
}

pub(super) fn round(ballot: Ballot) -> u64 {
    ballot >> NODE_BITS
}

/// The proposer that owns `ballot` (zero for no ballot).
pub(super) fn node(ballot: Ballot) -> NodeId {
    ballot & NODE_ID_MAX
}

/// The lowest ballot `node` owns above `ballot`.
pub(super) fn next_for(ballot: Ballot, node: NodeId) -> Ballot {
    make(round(ballot) + 1, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_order_is_round_then_node() {
        // Goal: comparing packed ballots compares rounds first, then node ids.
        assert!(make(1, 5) < make(2, 1));
        assert!(make(3, 1) < make(3, 2));
        assert_eq!(round(make(7, 9)), 7);
        assert_eq!(node(make(7, 9)), 9);
        assert!(next_for(make(4, 9), 1) > make(4, 9));
        assert_eq!(node(0), 0);
    }

    #[test]
    #[should_panic(expected = "does not fit a ballot")]
    fn node_ids_beyond_sixteen_bits_are_refused() {
        // Goal: a node id that would overflow into the round is a loud error.
        make(1, NODE_ID_MAX + 1);
    }
}
