//! ReadIndex: quorum confirmation, batching, refusal, abort, leases.

use super::Network;
use crate::raft::Body;
use crate::{Engine, Error, Membership, ReadState};

#[test]
fn read_index_completes_only_after_a_quorum_acknowledges() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.propose(1, "a");
    let commit = network.node(1).status().commit;
    network.node_mut(1).read_index(7).expect("leader accepts reads");
    network.process(1);
    assert!(network.reads.get(&1).map_or(true, |r| r.is_empty()), "not before the round");
    network.deliver();
    assert_eq!(network.reads[&1], vec![ReadState { context: 7, index: commit }]);
}

#[test]
fn concurrent_reads_share_one_heartbeat_round() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    let before = network.count_delivered(|m| matches!(m.body, Body::Heartbeat { .. }));
    for context in 1..=5 {
        network.node_mut(1).read_index(context).expect("accepted");
    }
    network.deliver();
    let after = network.count_delivered(|m| matches!(m.body, Body::Heartbeat { .. }));
    assert_eq!(after - before, 2, "one heartbeat per follower for all five reads");
    let contexts: Vec<u64> = network.reads[&1].iter().map(|r| r.context).collect();
    assert_eq!(contexts, vec![1, 2, 3, 4, 5]);
}

#[test]
fn reads_without_a_quorum_never_complete_and_abort_on_step_down() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.isolate(2);
    network.isolate(3);
    network.node_mut(1).read_index(9).expect("accepted");
    network.tick(1, 5);
    assert!(network.reads.get(&1).map_or(true, |r| r.is_empty()));
    network.tick(1, 20); // CheckQuorum deposes the leader
    assert_eq!(network.aborted[&1], vec![9]);
    assert!(network.reads[&1].is_empty());
}

#[test]
fn reads_on_a_follower_are_refused_with_a_leader_hint() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    assert_eq!(network.node_mut(3).read_index(1), Err(Error::NotLeader { leader: Some(1) }));
}

#[test]
fn reads_wait_for_the_leaders_first_commit_in_its_term() {
    // §6.4: until the no-op commits the leader may not know the commit index.
    let mut network = Network::new(&[1, 2, 3]);
    network.filter = Some(Box::new(|m| !matches!(m.body, Body::AppendResponse { .. })));
    network.elect(1);
    network.node_mut(1).read_index(4).expect("accepted");
    network.tick(1, 4);
    assert!(network.reads.get(&1).map_or(true, |r| r.is_empty()));
    network.filter = None;
    network.tick(1, 4);
    let commit = network.node(1).status().commit;
    assert_eq!(network.reads[&1], vec![ReadState { context: 4, index: commit }]);
}

#[test]
fn a_single_voter_confirms_reads_at_once() {
    let mut network = Network::new(&[1]);
    network.elect(1);
    network.node_mut(1).read_index(3).expect("accepted");
    network.process(1);
    assert_eq!(network.reads[&1].len(), 1);
}

#[test]
fn lease_reads_skip_the_round_while_the_lease_holds() {
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |o| o.lease_reads = true);
    network.tick_all(40);
    let leader = network.leaders()[0];
    network.tick(leader, 2); // one more acknowledged round renews the lease
    for id in [1, 2, 3].into_iter().filter(|&id| id != leader) {
        network.isolate(id);
    }
    network.node_mut(leader).read_index(1).expect("accepted");
    network.process(leader);
    assert_eq!(network.reads[&leader].len(), 1, "served from the lease without a round");
    network.tick(leader, 12); // the lease runs out
    network.node_mut(leader).read_index(2).expect("accepted");
    network.process(leader);
    assert_eq!(network.reads[&leader].len(), 1, "no lease left: waits for a quorum");
}

#[test]
fn with_lease_reads_a_restarted_replica_stays_silent_for_an_election_timeout() {
    // The leader's lease counts on voters not voting for an election timeout
    // after acknowledging it; a restart must not shorten that.
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |o| o.lease_reads = true);
    network.tick_all(40);
    let leader = network.leaders()[0];
    let voter = if leader == 1 { 2 } else { 1 };
    network.restart(voter);
    let term = network.term(voter);
    let last_index = network.node(voter).status().last_index;
    let request = |term| crate::raft::Message {
        from: 3,
        to: voter,
        term,
        body: Body::Vote { last_index, last_term: term, transfer: false },
    };
    network.node_mut(voter).step(request(term + 1));
    assert_eq!(network.term(voter), term, "ignored right after the restart");
    for _ in 0..10 {
        network.node_mut(voter).tick();
    }
    network.node_mut(voter).step(request(term + 1));
    assert_eq!(network.term(voter), term + 1, "answered once the timeout has passed");
}
