//! Safety under random faults: seeded runs that lose, duplicate and reorder
//! messages, partition and restart replicas, compact logs, change membership
//! and transfer leadership, while the network checks that replicas apply the
//! same entry at every index and that reads see every earlier commit; then,
//! healed, the group must elect a leader and commit again.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Network;
use crate::rng::Rng;
use crate::{Durable, Engine, Membership, MembershipChange, NodeId, Payload, Role, Snapshot};

const NODES: [NodeId; 5] = [1, 2, 3, 4, 5];

fn build(seed: u64, variant: fn(&mut crate::Options)) -> Network {
    let founding = Membership::with_voters([1, 2, 3]);
    let tune = move |options: &mut crate::Options| {
        variant(options);
        options.append_entries_max = 3;
        options.inflight_appends_max = 4;
        options.snapshot_chunk_bytes = 16;
        options.uncommitted_entries_max = 64;
        options.seed = seed.wrapping_mul(31).wrapping_add(options.id);
    };
    let mut network = Network::with(founding, tune);
    for id in [4, 5] {
        let mut options = super::options(id);
        tune(&mut options);
        network.add(id, options, Membership::default(), Durable::default());
    }
    network
}

/// The membership `id`'s state machine is at: what `compact` must be given.
fn applied_membership(network: &Network, id: NodeId) -> Membership {
    let from_entries = network.applied[&id].iter().rev().find_map(|e| match &e.payload {
        Payload::Membership(membership) => Some(membership.clone()),
        _ => None,
    });
    from_entries
        .or_else(|| network.durable[&id].snapshot.as_ref().map(|s| s.membership.clone()))
        .unwrap_or_else(|| network.founding[&id].clone())
}

fn compact(network: &mut Network, id: NodeId) {
    let status = network.node(id).status();
    let index = network.applied_index[&id];
    if index <= status.snapshot_index {
        return;
    }
    let term = network.applied[&id].iter().find(|e| e.index == index).map(|e| e.term);
    let Some(term) = term else { return };
    let membership = applied_membership(network, id);
    let data = Bytes::from(format!("image of {id} at {index}").repeat(3));
    let snapshot = Snapshot { index, term, membership, data };
    network.node_mut(id).compact(snapshot.clone());
    let durable = network.durable.get_mut(&id).expect("known node");
    durable.entries.retain(|e| e.index > index);
    durable.snapshot = Some(snapshot);
}

fn change_membership(network: &mut Network, rng: &mut Rng) {
    let Some(&leader) = network.leaders().first() else { return };
    let membership = network.node(leader).status().membership;
    let change = match rng.range(0, 3) {
        0 => MembershipChange::AddLearner(NODES[rng.range(0, 5) as usize]),
        1 => match membership.learners.iter().next() {
            Some(&learner) => MembershipChange::Promote(learner),
            None => return,
        },
        _ => {
            if membership.voters.len() <= 3 {
                return; // keep enough voters for the run to make progress
            }
            MembershipChange::Remove(NODES[rng.range(0, 5) as usize])
        }
    };
    let _ = network.node_mut(leader).propose_membership(change);
}

/// One seeded run; `variant` adjusts every replica's options.
/// With `lockstep_clocks` a tick reaches every replica at once (no clock
/// drift, which lease reads need); otherwise one replica's clock advances.
pub(super) fn run(seed: u64, variant: fn(&mut crate::Options), lockstep_clocks: bool) {
    let mut rng = Rng::new(seed);
    let mut network = build(seed, variant);
    let mut leaders_by_term: BTreeMap<u64, NodeId> = BTreeMap::new();
    let mut next_read = 1u64;
    let mut next_command = 0u64;
    for _ in 0..4000 {
        let id = NODES[rng.range(0, 5) as usize];
        match rng.range(0, 100) {
            0..=44 => {
                if !network.queue.is_empty() {
                    let position = rng.range(0, network.queue.len() as u64) as usize;
                    let message = network.queue.remove(position).expect("in range");
                    if rng.chance(1, 20) {
                        network.queue.push_back(message.clone());
                    }
                    if !rng.chance(1, 10) {
                        network.deliver_message(message);
                    }
                }
            }
            45..=69 if lockstep_clocks => {
                if rng.chance(1, 5) {
                    NODES.iter().for_each(|&node| network.node_mut(node).tick());
                }
            }
            45..=69 => network.node_mut(id).tick(),
            70..=79 => {
                next_command += 1;
                let _ = network.node_mut(id).propose(Bytes::from(format!("c{next_command}")));
            }
            80..=83 => {
                let floor = NODES.iter().map(|&n| network.node(n).status().commit).max();
                network.read_floors.insert(next_read, floor.unwrap_or(0));
                let _ = network.node_mut(id).read_index(next_read);
                next_read += 1;
            }
            84..=85 => network.restart(id),
            86..=88 => {
                if rng.chance(1, 2) {
                    network.isolated.clear();
                } else {
                    network.isolate(id);
                }
            }
            89..=91 => compact(&mut network, id),
            92..=95 => change_membership(&mut network, &mut rng),
            _ => {
                if let Some(&leader) = network.leaders().first() {
                    let _ = network.node_mut(leader).transfer_leadership(id);
                }
            }
        }
        network.process_all();
        for node in NODES {
            let status = network.node(node).status();
            if status.role == Role::Leader {
                let leader = *leaders_by_term.entry(status.term).or_insert(node);
                assert_eq!(leader, node, "two leaders in term {} (seed {seed})", status.term);
            }
        }
    }
    // Healing: everything flows again; within a bounded time some leader
    // must commit a new command on every voter of its configuration.
    network.isolated.clear();
    let recovered = (0..60).any(|_| {
        network.tick_all(5);
        let Some(&leader) = network.leaders().first() else { return false };
        let Ok(proposal) = network.node_mut(leader).propose(Bytes::from_static(b"final")) else {
            return false;
        };
        network.tick_all(10);
        let voters = network.node(leader).status().membership.voters;
        voters.iter().all(|&voter| {
            let applied = &network.applied[&voter];
            applied.iter().any(|e| e.index == proposal.index && e.term == proposal.term)
        })
    });
    assert!(recovered, "the healed group never committed again (seed {seed})");
}

#[test]
fn random_faults_never_break_safety_and_the_group_recovers() {
    for seed in 0..150 {
        run(seed, |_| {}, false);
    }
}

#[test]
fn random_faults_with_lease_reads_and_without_pre_vote() {
    for seed in 1000..1150 {
        let variant = |options: &mut crate::Options| {
            options.lease_reads = true;
            options.pre_vote = false;
        };
        run(seed, variant, true);
    }
}
