//! Leader balance: pick each shard's leader among its replicas so that no node leads more than
//! `⌈shards / nodes⌉` shards whenever some choice allows it, changing as few leaders away from
//! the preferred (first) replica as the search needs.
//!
//! This is load balancing with restricted assignment, solved as a semi-matching (Harvey, Ladner,
//! Lovász and Tamir, "Semi-matchings for bipartite graphs and load balancing", J. Algorithms
//! 2006, §3): start with every shard led by its first replica; while some node `u` leads more
//! than the cap, search breadth-first for an alternating path `u → s₁ → v₁ → s₂ → … → w` where
//! `u` leads `s₁`, `v₁` is another replica of `s₁` and leads `s₂`, and so on, ending at a node `w`
//! that leads at least two fewer shards than `u`. Moving each `sᵢ`'s leadership one step along
//! the path lowers `u` by one and raises `w` by one, leaving the rest unchanged. When no such
//! path exists from any overloaded node, every node reachable from one leads at least
//! `load(u) − 1`, and the shards they lead have no replica outside them, so no assignment has a
//! lower maximum: the result meets the cap whenever any assignment does, and otherwise has the
//! smallest possible maximum. Breadth-first search keeps each path, and so the leadership
//! transfers it costs, short.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{NodeId, ShardId};

/// A leader for every shard with at least one replica; see the module documentation. The cap is
/// `⌈shards / nodes⌉`, counting the shards with replicas and the distinct nodes named.
pub fn balance_leaders(replica_sets: &BTreeMap<ShardId, Vec<NodeId>>) -> BTreeMap<ShardId, NodeId> {
    let nodes: Vec<NodeId> =
        replica_sets.values().flatten().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let shards: Vec<(ShardId, Vec<usize>)> = replica_sets
        .iter()
        .filter(|(_, replicas)| !replicas.is_empty())
        .map(|(&shard, replicas)| {
            let mut indices: Vec<usize> = Vec::with_capacity(replicas.len());
            for replica in replicas {
                let index = nodes.binary_search(replica).expect("every replica is listed");
                if !indices.contains(&index) {
                    indices.push(index);
                }
            }
            (shard, indices)
        })
        .collect();
    if shards.is_empty() {
        return BTreeMap::new();
    }
    let cap = shards.len().div_ceil(nodes.len());

    let mut leader: Vec<usize> = shards.iter().map(|(_, replicas)| replicas[0]).collect();
    let mut led: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes.len()];
    for (shard, &node) in leader.iter().enumerate() {
        led[node].insert(shard);
    }
    // Nodes from which the last search found no path; cleared whenever loads change.
    let mut stuck = vec![false; nodes.len()];
    loop {
        let overloaded = (0..nodes.len())
            .filter(|&node| led[node].len() > cap && !stuck[node])
            .max_by_key(|&node| (led[node].len(), std::cmp::Reverse(node)));
        let Some(source) = overloaded else { break };
        match find_path(source, &shards, &led) {
            Some(path) => {
                for (shard, from, to) in path {
                    led[from].remove(&shard);
                    led[to].insert(shard);
                    leader[shard] = to;
                }
                stuck.fill(false);
            }
            None => stuck[source] = true,
        }
    }
    shards.iter().zip(&leader).map(|((shard, _), &node)| (*shard, nodes[node])).collect()
}

/// The shortest alternating path from `source` to a node leading at least two fewer shards, as
/// `(shard, from, to)` leadership moves, or `None`.
fn find_path(
    source: usize,
    shards: &[(ShardId, Vec<usize>)],
    led: &[BTreeSet<usize>],
) -> Option<Vec<(usize, usize, usize)>> {
    let target_load_max = led[source].len() - 2;
    let mut parent: Vec<Option<(usize, usize)>> = vec![None; led.len()];
    let mut visited = vec![false; led.len()];
    visited[source] = true;
    let mut queue = VecDeque::from([source]);
    while let Some(node) = queue.pop_front() {
        for &shard in &led[node] {
            for &replica in &shards[shard].1 {
                if visited[replica] {
                    continue;
                }
                visited[replica] = true;
                parent[replica] = Some((node, shard));
                if led[replica].len() <= target_load_max {
                    let mut path = Vec::new();
                    let mut current = replica;
                    while let Some((previous, shard)) = parent[current] {
                        path.push((shard, previous, current));
                        current = previous;
                    }
                    return Some(path);
                }
                queue.push_back(replica);
            }
        }
    }
    None
}
