//! Compaction and chunked snapshot installation.

use bytes::Bytes;

use super::Network;
use crate::raft::Body;
use crate::{Engine, Membership, Role, Snapshot};

#[test]
fn a_lagging_follower_installs_the_snapshot_in_chunks_then_follows() {
    let mut network =
        Network::with(Membership::with_voters([1, 2, 3]), |o| o.snapshot_chunk_bytes = 100);
    network.elect(1);
    network.isolate(3);
    for i in 0..10 {
        network.propose(1, &format!("c{i}"));
    }
    let status = network.node(1).status();
    let image = Bytes::from(vec![7u8; 1050]);
    let snapshot = Snapshot {
        index: status.applied,
        term: status.term,
        membership: status.membership.clone(),
        data: image.clone(),
    };
    network.node_mut(1).compact(snapshot);
    assert_eq!(network.node(1).status().snapshot_index, status.applied);
    network.heal();
    network.tick_all(5);
    network.propose(1, "after");
    network.tick_all(2);
    let chunks =
        network.count_delivered(|m| m.to == 3 && matches!(m.body, Body::InstallSnapshot { .. }));
    assert!(chunks >= 11, "1050 bytes in 100-byte chunks, got {chunks}");
    let installed = &network.restored[&3];
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].data, image);
    assert_eq!(installed[0].index, status.applied);
    assert_eq!(network.commands(3), vec!["after"]);
    assert_eq!(network.node(3).status().snapshot_index, status.applied);
    assert_eq!(network.role(3), Role::Follower);
}

#[test]
fn lost_chunks_are_resent_and_reassembled_in_order() {
    let mut network =
        Network::with(Membership::with_voters([1, 2, 3]), |o| o.snapshot_chunk_bytes = 10);
    network.elect(1);
    network.isolate(2);
    network.propose(1, "a");
    network.propose(1, "b");
    let status = network.node(1).status();
    let image = Bytes::from((0u8..95).collect::<Vec<u8>>());
    let membership = status.membership.clone();
    network.node_mut(1).compact(Snapshot {
        index: status.applied,
        term: status.term,
        membership,
        data: image.clone(),
    });
    network.heal();
    // Drop every third chunk the first time it is seen.
    let mut seen = 0;
    network.filter = Some(Box::new(move |message| {
        if matches!(message.body, Body::InstallSnapshot { .. }) {
            seen += 1;
            return seen % 3 != 0;
        }
        true
    }));
    network.tick_all(60);
    assert_eq!(network.restored[&2][0].data, image);
    assert_eq!(network.node(2).status().commit, status.applied);
}
