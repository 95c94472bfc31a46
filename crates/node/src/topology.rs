//! The cluster's shape: which shard (consensus group) owns each of the
//! 16384 hash slots, and which nodes hold each shard's replicas.
//!
//! A [`Topology`] is derived deterministically by the `placement` crate from
//! the founding node list, the shard count and the replication factor, so
//! every node computes the byte-identical result from the same inputs
//! (slots → shards by the consistent-hash ring with bounded loads; shards →
//! nodes: each shard, in id order, on the least-loaded nodes, ties broken by
//! the shard's rendezvous ranking, so replica counts differ by at most one). It is encoded
//! with an explicit version and little-endian integers so the shell can keep
//! it in the data directory.
//!
//! A topology with one shard holding every slot on every node is the
//! unsharded cluster: every node hosts the one group, and commands are
//! proxied to its leader whatever the client.

use std::collections::BTreeMap;

use consensus::NodeId;
use placement::{NodeInfo, SlotTable};

use crate::{GroupId, DATA_GROUP};

const ENCODING_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Slot → shard, with the table's epoch.
    pub slots: SlotTable,
    /// Each shard's replicas, the preferred leader first.
    pub shards: BTreeMap<GroupId, Vec<NodeId>>,
    /// Redis Cluster mode: a node answers `-MOVED` for slots whose shard it
    /// does not lead instead of proxying the command.
    pub cluster_enabled: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("the cluster needs at least one node")]
    NoNodes,
    #[error("the shard count must be between 1 and {max}, not {shards}")]
    ShardCount { shards: u64, max: usize },
    #[error("the replication factor must be between 1 and the node count {nodes}, not {replicas}")]
    Replicas { replicas: usize, nodes: usize },
    #[error("the topology record is malformed: {0}")]
    Malformed(&'static str),
}

impl Topology {
    /// One shard holding every slot, replicated on every node.
    pub fn single(nodes: &[NodeId]) -> Topology {
        Topology {
            slots: SlotTable::build(&[DATA_GROUP]),
            shards: BTreeMap::from([(DATA_GROUP, nodes.to_vec())]),
            cluster_enabled: false,
        }
    }

    /// `shards` shards (groups `1..=shards`) over `nodes`, each replicated
    /// `replicas` times.
    pub fn sharded(
        nodes: &[NodeId],
        shards: u64,
        replicas: usize,
        cluster_enabled: bool,
    ) -> Result<Topology, TopologyError> {
        if nodes.is_empty() {
            return Err(TopologyError::NoNodes);
        }
        if shards == 0 || shards as usize > placement::SHARDS_MAX {
            return Err(TopologyError::ShardCount { shards, max: placement::SHARDS_MAX });
        }
        if replicas == 0 || replicas > nodes.len() {
            return Err(TopologyError::Replicas { replicas, nodes: nodes.len() });
        }
        let ids: Vec<GroupId> = (DATA_GROUP..DATA_GROUP + shards).collect();
        let infos: Vec<NodeInfo> = nodes
            .iter()
            .map(|&id| NodeInfo { id, zone: format!("node-{id}"), weight: 1 })
            .collect();
        // Each shard goes to the least-loaded nodes, ties broken by the
        // shard's rendezvous ranking: replica counts differ by at most one.
        let mut loads: BTreeMap<NodeId, usize> = nodes.iter().map(|&node| (node, 0)).collect();
        let mut sets: BTreeMap<GroupId, Vec<NodeId>> = BTreeMap::new();
        for &shard in &ids {
            let ranking = placement::rank_nodes(shard, &infos);
            let mut order: Vec<(usize, usize, NodeId)> = ranking
                .iter()
                .enumerate()
                .map(|(rank, &node)| (loads[&node], rank, node))
                .collect();
            order.sort_unstable();
            let mut chosen: Vec<(usize, NodeId)> =
                order[..replicas].iter().map(|&(_, rank, node)| (rank, node)).collect();
            chosen.sort_unstable();
            for &(_, node) in &chosen {
                *loads.get_mut(&node).expect("node") += 1;
            }
            sets.insert(shard, chosen.into_iter().map(|(_, node)| node).collect());
        }
        // The preferred leader of each shard: spread so that every node
        // leads close to its fair share.
        let leaders = placement::balance_leaders(&sets);
        for (shard, nodes) in sets.iter_mut() {
            if let Some(position) = nodes.iter().position(|node| Some(node) == leaders.get(shard)) {
                nodes[..=position].rotate_right(1);
            }
        }
        Ok(Topology { slots: SlotTable::build(&ids), shards: sets, cluster_enabled })
    }

    /// Whether the keyspace is split over more than one group.
    pub fn is_sharded(&self) -> bool {
        self.shards.len() > 1
    }

    pub fn group_of_slot(&self, slot: u16) -> GroupId {
        self.slots.shard_of_slot(slot)
    }

    /// The groups `node` holds a replica of.
    pub fn groups_of(&self, node: NodeId) -> Vec<GroupId> {
        self.shards
            .iter()
            .filter(|(_, replicas)| replicas.contains(&node))
            .map(|(group, _)| *group)
            .collect()
    }

    /// Every node holding a replica of some shard.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.shards.values().flatten().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_VERSION, u8::from(self.cluster_enabled)];
        out.extend_from_slice(&(self.shards.len() as u32).to_le_bytes());
        for (group, replicas) in &self.shards {
            out.extend_from_slice(&group.to_le_bytes());
            out.extend_from_slice(&(replicas.len() as u32).to_le_bytes());
            for node in replicas {
                out.extend_from_slice(&node.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.slots.encode());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Topology, TopologyError> {
        let mut reader = Reader(bytes);
        if reader.u8()? != ENCODING_VERSION {
            return Err(TopologyError::Malformed("unknown version"));
        }
        let cluster_enabled = reader.u8()? != 0;
        let count = reader.u32()?;
        let mut shards = BTreeMap::new();
        for _ in 0..count {
            let group = reader.u64()?;
            let replicas = reader.u32()?;
            if replicas as usize > reader.0.len() / 8 {
                return Err(TopologyError::Malformed("replica count past the end"));
            }
            let nodes = (0..replicas).map(|_| reader.u64()).collect::<Result<Vec<_>, _>>()?;
            shards.insert(group, nodes);
        }
        let slots = SlotTable::decode(reader.0)
            .map_err(|_| TopologyError::Malformed("slot table does not decode"))?;
        if slots.shards().iter().any(|shard| !shards.contains_key(shard)) {
            return Err(TopologyError::Malformed("a slot belongs to an unknown shard"));
        }
        Ok(Topology { slots, shards, cluster_enabled })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], TopologyError> {
        if self.0.len() < N {
            return Err(TopologyError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("length checked"))
    }

    fn u8(&mut self) -> Result<u8, TopologyError> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, TopologyError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, TopologyError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

/// A node's view of the cluster, for `CLUSTER SLOTS`, `SHARDS`, `NODES`
/// and `INFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    pub enabled: bool,
    /// The slot table's epoch.
    pub epoch: u64,
    /// The node answering.
    pub myself: NodeId,
    /// Every node's client address (`host:port`); empty when unknown.
    pub nodes: BTreeMap<NodeId, String>,
    pub shards: Vec<ShardView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardView {
    pub group: GroupId,
    /// Inclusive slot ranges, ascending.
    pub slots: Vec<(u16, u16)>,
    /// The leader as this node knows it (the preferred leader when it knows
    /// none: clients need a master for every slot).
    pub leader: Option<NodeId>,
    /// Every replica, the leader among them.
    pub replicas: Vec<NodeId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_topology_is_deterministic_and_round_trips() {
        let nodes = [1, 2, 3, 4, 5];
        let topology = Topology::sharded(&nodes, 10, 3, true).unwrap();
        assert_eq!(topology, Topology::sharded(&[5, 4, 3, 2, 1], 10, 3, true).unwrap());
        assert_eq!(Topology::decode(&topology.encode()), Ok(topology.clone()));
        for replicas in topology.shards.values() {
            assert_eq!(replicas.len(), 3);
            let mut distinct = replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "two replicas of a shard on one node");
        }
        // Every node leads two of the ten shards.
        let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
        for replicas in topology.shards.values() {
            *leads.entry(replicas[0]).or_default() += 1;
        }
        assert!(leads.values().all(|&count| count == 2), "{leads:?}");
        // Each node holds six replicas (30 over 5 nodes).
        for node in nodes {
            assert_eq!(topology.groups_of(node).len(), 6, "node {node}");
        }
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(Topology::sharded(&[], 1, 1, true), Err(TopologyError::NoNodes));
        assert!(Topology::sharded(&[1, 2], 0, 1, true).is_err());
        assert!(Topology::sharded(&[1, 2], 4, 3, true).is_err());
        let encoded = Topology::sharded(&[1, 2, 3], 4, 2, false).unwrap().encode();
        for cut in 0..encoded.len() {
            assert!(Topology::decode(&encoded[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }
}
