//! Membership changes, learners, leadership transfer.

use super::Network;
use crate::raft::Body;
use crate::{Durable, Engine, Error, Membership, MembershipChange, Role};

/// A group {1,2,3} whose leader 1 has committed its no-op.
fn settled() -> Network {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.tick(1, 2);
    network
}

#[test]
fn membership_change_refusals() {
    // Each refusal rule: not leader, before a current-term commit, while
    // another change is uncommitted, invalid change, during a transfer.
    let mut network = Network::new(&[1, 2, 3]);
    network.filter = Some(Box::new(|m| !matches!(m.body, Body::AppendResponse { .. })));
    network.elect(1);
    assert_eq!(
        network.node_mut(1).propose_membership(MembershipChange::AddLearner(4)),
        Err(Error::MembershipChangePending),
        "no entry of the leader's term has committed yet"
    );
    assert_eq!(
        network.node_mut(2).propose_membership(MembershipChange::AddLearner(4)),
        Err(Error::NotLeader { leader: Some(1) })
    );
    network.filter = None;
    network.tick(1, 2);
    assert_eq!(
        network.node_mut(1).propose_membership(MembershipChange::AddLearner(2)),
        Err(Error::InvalidMembershipChange("node is already a member"))
    );
    assert_eq!(
        network.node_mut(1).propose_membership(MembershipChange::Promote(3)),
        Err(Error::InvalidMembershipChange("only a learner can be promoted"))
    );
    network.node_mut(1).propose_membership(MembershipChange::AddLearner(4)).expect("accepted");
    assert_eq!(
        network.node_mut(1).propose_membership(MembershipChange::AddLearner(5)),
        Err(Error::MembershipChangePending),
        "one change at a time"
    );
    network.deliver();
    network.node_mut(1).transfer_leadership(2).expect("transfer starts");
    assert_eq!(
        network.node_mut(1).propose_membership(MembershipChange::AddLearner(5)),
        Err(Error::TransferInProgress)
    );
}

#[test]
fn a_configuration_takes_effect_when_appended_and_reverts_when_truncated() {
    let mut network = settled();
    network.isolate(2);
    network.isolate(3);
    network.node_mut(1).propose_membership(MembershipChange::AddLearner(4)).expect("accepted");
    assert!(network.node(1).status().membership.learners.contains(&4), "in force at once");
    network.deliver();
    // Node 2 wins a new term without the entry; node 1's copy is overwritten.
    network.heal();
    network.isolate(1);
    network.tick_all(40);
    let leader = network.leaders().into_iter().find(|&id| id != 1).expect("a new leader");
    network.propose(leader, "x");
    network.heal();
    network.tick_all(5);
    assert_eq!(network.node(1).status().membership, Membership::with_voters([1, 2, 3]));
    network.assert_applied_agree();
}

#[test]
fn learners_receive_the_log_but_never_campaign_nor_count_in_a_quorum() {
    let founding = Membership { voters: [1, 2].into(), learners: [3].into() };
    let mut network = Network::with(founding, |_| {});
    network.tick(3, 200);
    assert_eq!(network.role(3), Role::Learner);
    assert_eq!(network.term(3), 0, "a learner never campaigns");
    assert_eq!(network.delivered.len(), 0, "nor asks anyone for anything");
    // With voter 2 away, the learner's support cannot elect node 1.
    network.isolate(2);
    network.tick(1, 100);
    assert_ne!(network.role(1), Role::Leader, "a learner's vote does not count");
    network.heal();
    network.tick_all(40);
    assert_eq!(network.leaders().len(), 1);
    let leader = network.leaders()[0];
    assert_ne!(leader, 3);
    network.propose(leader, "a");
    assert_eq!(network.commands(3), vec!["a"]);
    // Its acknowledgements do not count either: with the other voter away
    // nothing commits.
    let other = if leader == 1 { 2 } else { 1 };
    network.isolate(other);
    let proposal = network.node_mut(leader).propose("b".into()).expect("accepted");
    network.tick(leader, 3);
    assert!(network.node(leader).status().commit < proposal.index);
    assert_eq!(network.node(3).status().last_index, proposal.index, "yet it has the entry");
}

#[test]
fn a_replica_promoted_unawares_still_votes() {
    // Node 3 was promoted by an entry it never received; it must still help
    // elect a leader when the only other up-to-date voter is down.
    let mut network = settled();
    network.add(4, super::options(4), Membership::default(), Durable::default());
    network.node_mut(1).propose_membership(MembershipChange::AddLearner(4)).expect("accepted");
    network.tick_all(4);
    network.isolate(4);
    network.node_mut(1).propose_membership(MembershipChange::Promote(4)).expect("accepted");
    network.tick_all(4); // {1,2,3,4} commits with 1, 2, 3
    assert_eq!(network.role(4), Role::Learner);
    // Node 1 goes down; 2 and 3 need a third vote of four, which only the
    // unaware node 4 can give.
    network.isolate(1);
    network.isolated.remove(&4);
    network.tick_all(60);
    let leaders: Vec<_> = network.leaders().into_iter().filter(|&id| id != 1).collect();
    assert_eq!(leaders.len(), 1, "2 or 3 is elected with node 4's vote");
    assert!(network
        .delivered
        .iter()
        .any(|m| m.from == 4 && m.body == Body::VoteResponse { granted: true }));
}

#[test]
fn a_new_node_joins_as_learner_catches_up_and_is_promoted() {
    let mut network = settled();
    network.propose(1, "a");
    network.add(4, super::options(4), Membership::default(), Durable::default());
    network.node_mut(1).propose_membership(MembershipChange::AddLearner(4)).expect("accepted");
    network.tick_all(4);
    assert_eq!(network.role(4), Role::Learner);
    assert_eq!(network.commands(4), vec!["a"]);
    network.node_mut(1).propose_membership(MembershipChange::Promote(4)).expect("accepted");
    network.tick_all(4);
    assert_eq!(network.role(4), Role::Follower);
    assert_eq!(network.node(4).status().membership.voters.len(), 4);
    network.node_mut(1).transfer_leadership(4).expect("a voter can lead");
    network.deliver();
    assert_eq!(network.leaders(), vec![4]);
}

#[test]
fn removing_the_leader_makes_it_step_down_once_committed() {
    let mut network = settled();
    let proposal =
        network.node_mut(1).propose_membership(MembershipChange::Remove(1)).expect("accepted");
    assert_eq!(network.role(1), Role::Leader, "keeps leading until the change commits");
    network.deliver();
    network.tick(1, 2);
    assert_ne!(network.role(1), Role::Leader);
    network.tick_all(40);
    let leaders = network.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
    assert!(network.node(leaders[0]).status().commit >= proposal.index);
    assert_eq!(network.node(leaders[0]).status().membership, Membership::with_voters([2, 3]));
    // The removed node never campaigns.
    let term = network.term(1);
    network.isolate(2);
    network.isolate(3);
    network.tick(1, 100);
    assert_eq!(network.term(1), term);
    assert_eq!(network.role(1), Role::Follower);
}

#[test]
fn leadership_transfer_hands_over_and_blocks_proposals_meanwhile() {
    let mut network = settled();
    network.isolate(2);
    network.propose(1, "a");
    network.heal();
    let term = network.term(1);
    network.node_mut(1).transfer_leadership(2).expect("accepted");
    assert_eq!(network.node_mut(1).propose("b".into()), Err(Error::TransferInProgress));
    assert_eq!(network.node_mut(1).transfer_leadership(3), Err(Error::TransferInProgress));
    network.deliver();
    assert_eq!(network.leaders(), vec![2]);
    assert_eq!(network.term(2), term + 1);
    assert_eq!(network.commands(2), vec!["a"]);
}

#[test]
fn a_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout() {
    let mut network = settled();
    network.isolate(2);
    network.node_mut(1).transfer_leadership(2).expect("accepted");
    assert_eq!(network.node_mut(1).transfer_leadership(4), Err(Error::InvalidTransferTarget(4)));
    network.tick(1, 10);
    network.propose(1, "a");
    assert_eq!(network.leaders(), vec![1]);
}
