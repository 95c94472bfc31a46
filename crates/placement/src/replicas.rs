//! Shard replicas → nodes by weighted rendezvous hashing (highest random weight: Thaler and
//! Ravishankar, "Using name-based mappings to increase hit rates", 1998; weighted by the
//! logarithmic method of Schindelhauer and Schomaker, "Weighted distributed hash tables", 2005).
//!
//! Every node `n` with weight `w > 0` gets a score for shard `s`: with
//! `h = siphash24(REPLICA_KEY, le64(s) ‖ le64(n))` standing for the uniform variate
//! `u = (2h + 1) / 2^65`, the score is `w / -log2(u)`. `-log2(u) / w` is exponentially
//! distributed with rate proportional to `w`, so a node is the top scorer with probability
//! `w / Σw`. The logarithm is the integer [`crate::hash::log2_fixed`], and scores are compared
//! by exact cross-multiplication (`w_a · L_b` against `w_b · L_a` in 128 bits), so every node
//! ranks identically. Equal scores are ordered by node id, lower first.
//!
//! Replicas are taken down the ranking, skipping a node whose failure zone already holds one.
//! When there are fewer zones than replicas wanted, the remaining places go to the best-ranked
//! unused nodes regardless of zone and [`ReplicaSet::zones_shared`] says so. Because a node's
//! score for a shard depends only on the two ids and its weight, a node arriving or leaving
//! changes a replica set only by adding or removing that node (and the one node it displaces or
//! that replaces it). Weight 0 drains a node: it is never chosen.
//!
//! # Bounded loads
//!
//! Plain rendezvous hashing leaves replica counts per node spread like a binomial: at 100 nodes
//! and 10,000 shards of 3, the fullest node holds about 14% more than the mean.
//! [`place_replicas`] places many shards at once with a cap per node of
//! `⌈load_percent/100 · replicas · w / Σw⌉` (Mirrokni, Thorup and Zadimoghaddam, "Consistent
//! Hashing with Bounded Loads", SODA 2018, applied to rendezvous rankings): shards in ascending
//! id order each take the best-ranked nodes that are below their cap, in distinct zones. The
//! zone rule outranks the cap: a full node is still taken when only it keeps the zones apart. The
//! price is stability: a node's arrival or departure can now also shift replicas of shards whose
//! preferred nodes filled up differently, so the figures in docs/BENCHMARKS.md report both.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::hash::{hash_pair, neg_log2_uniform, REPLICA_KEY};
use crate::{NodeId, ShardId};

/// A node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Unique among the nodes passed together.
    pub id: NodeId,
    /// Failure zone (rack, availability zone): no two replicas of a shard share one if avoidable.
    pub zone: String,
    /// Relative capacity; 0 means the node takes no replicas (drained).
    pub weight: u32,
}

/// The nodes holding one shard's replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSet {
    /// Best-scored first: the first is the preferred leader. Fewer than asked for only when
    /// fewer nodes have a non-zero weight.
    pub nodes: Vec<NodeId>,
    /// True when there were fewer zones than replicas, so some zone holds two of them.
    pub zones_shared: bool,
}

/// One node's rendezvous score for a shard, `weight / denominator`.
#[derive(Clone, Copy, Debug)]
struct Score {
    weight: u32,
    denominator: u64,
    node: NodeId,
}

impl Score {
    fn new(shard: ShardId, node: &NodeInfo) -> Score {
        let denominator = neg_log2_uniform(hash_pair(REPLICA_KEY, shard, node.id));
        Score { weight: node.weight, denominator, node: node.id }
    }

    /// Best first: higher `weight / denominator`, then lower node id.
    fn rank(&self, other: &Score) -> Ordering {
        let mine = u128::from(self.weight) * u128::from(other.denominator);
        let theirs = u128::from(other.weight) * u128::from(self.denominator);
        theirs.cmp(&mine).then(self.node.cmp(&other.node))
    }
}

/// Every node with non-zero weight, best first for `shard`.
///
/// # Panics
///
/// If two nodes share an id: the caller's membership is corrupt.
pub fn rank_nodes(shard: ShardId, nodes: &[NodeInfo]) -> Vec<NodeId> {
    ranked(shard, nodes).into_iter().map(|(score, _)| score.node).collect()
}

fn ranked(shard: ShardId, nodes: &[NodeInfo]) -> Vec<(Score, &str)> {
    let mut ids: Vec<NodeId> = nodes.iter().map(|node| node.id).collect();
    ids.sort_unstable();
    assert!(ids.windows(2).all(|pair| pair[0] != pair[1]), "node ids must be unique");
    let mut scores: Vec<(Score, &str)> = nodes
        .iter()
        .filter(|node| node.weight > 0)
        .map(|node| (Score::new(shard, node), node.zone.as_str()))
        .collect();
    scores.sort_unstable_by(|a, b| a.0.rank(&b.0));
    scores
}

/// The `count` nodes that hold `shard`'s replicas: see the module documentation.
///
/// # Panics
///
/// If two nodes share an id.
pub fn replicas(shard: ShardId, nodes: &[NodeInfo], count: usize) -> ReplicaSet {
    choose(&ranked(shard, nodes), count, |_| true)
}

/// Takes `count` nodes down `scores`: first distinct zones among nodes `open` accepts, then
/// distinct zones among any nodes, then any unused nodes (sharing zones). Returns them in
/// ranking order.
fn choose(scores: &[(Score, &str)], count: usize, open: impl Fn(NodeId) -> bool) -> ReplicaSet {
    let mut chosen = vec![false; scores.len()];
    let mut zones: BTreeSet<&str> = BTreeSet::new();
    let mut picked = 0;
    for only_open in [true, false] {
        for (index, (score, zone)) in scores.iter().enumerate() {
            if picked == count {
                break;
            }
            if !chosen[index] && (!only_open || open(score.node)) && !zones.contains(zone) {
                zones.insert(zone);
                chosen[index] = true;
                picked += 1;
            }
        }
    }
    let zones_shared = picked < count.min(scores.len());
    // Fewer zones than replicas: the best-ranked unused nodes, whatever their zone or load.
    for chosen in chosen.iter_mut().filter(|chosen| !**chosen) {
        if picked == count {
            break;
        }
        *chosen = true;
        picked += 1;
    }
    let nodes: Vec<NodeId> =
        scores.iter().zip(&chosen).filter(|(_, chosen)| **chosen).map(|(s, _)| s.0.node).collect();
    assert_eq!(nodes.len(), count.min(scores.len()));
    ReplicaSet { nodes, zones_shared }
}

/// Replica sets for all `shards` at once with bounded loads: no node holds more than
/// `⌈load_percent/100 · (shards · count) · weight / Σweight⌉` replicas unless the zone rule
/// forces it (see the module documentation). Deterministic: shards are placed in ascending id
/// order whatever order they are given in.
///
/// # Panics
///
/// If two nodes share an id, or `load_percent` is below 100 (the caps could not hold every
/// replica).
pub fn place_replicas(
    shards: &[ShardId],
    nodes: &[NodeInfo],
    count: usize,
    load_percent: u32,
) -> BTreeMap<ShardId, ReplicaSet> {
    assert!(load_percent >= 100, "caps below the mean cannot hold every replica");
    let shards: BTreeSet<ShardId> = shards.iter().copied().collect();
    let weight_total: u128 = nodes.iter().map(|node| u128::from(node.weight)).sum();
    let demand = shards.len() as u128 * count as u128;
    // cap = ⌈load_percent · demand · weight / (100 · Σweight)⌉, exactly, in integers.
    let caps: BTreeMap<NodeId, u128> = nodes
        .iter()
        .map(|node| {
            let numerator = u128::from(load_percent) * demand * u128::from(node.weight);
            (node.id, numerator.div_ceil(100 * weight_total.max(1)))
        })
        .collect();
    let mut loads: BTreeMap<NodeId, u128> = BTreeMap::new();
    let mut placement = BTreeMap::new();
    for shard in shards {
        let scores = ranked(shard, nodes);
        let set =
            choose(&scores, count, |node| loads.get(&node).copied().unwrap_or(0) < caps[&node]);
        for node in &set.nodes {
            *loads.entry(*node).or_default() += 1;
        }
        placement.insert(shard, set);
    }
    placement
}
