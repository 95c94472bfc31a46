//! Elections: one leader, PreVote, CheckQuorum, stickiness, restarts.

use super::{entries, Network};
use crate::raft::{Body, Message};
use crate::{Durable, Engine, HardState, Membership, Role};

#[test]
fn ticking_elects_exactly_one_leader_that_everyone_follows() {
    let mut network = Network::new(&[1, 2, 3]);
    network.tick_all(40);
    let leaders = network.leaders();
    assert_eq!(leaders.len(), 1, "exactly one leader");
    let leader = leaders[0];
    for id in [1, 2, 3] {
        let status = network.node(id).status();
        assert_eq!(status.leader, Some(leader));
        assert_eq!(status.term, network.term(leader));
        if id != leader {
            assert_eq!(status.role, Role::Follower);
        }
    }
}

#[test]
fn single_voter_elects_itself_and_commits_alone() {
    let mut network = Network::new(&[1]);
    network.elect(1);
    let proposal = network.propose(1, "a");
    assert_eq!(network.node(1).status().commit, proposal.index);
    assert_eq!(network.commands(1), vec!["a"]);
}

#[test]
fn pre_vote_keeps_a_partitioned_replica_from_inflating_terms() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    let term = network.term(1);
    network.isolate(3);
    network.tick(3, 200);
    assert_eq!(network.term(3), term, "pre-votes move no term");
    network.heal();
    network.tick_all(30);
    assert_eq!(network.leaders(), vec![1], "the healthy leader keeps leading");
    assert_eq!(network.term(1), term);
    assert_eq!(network.node(3).status().leader, Some(1));
}

#[test]
fn without_pre_vote_a_partitioned_replica_does_inflate_terms() {
    // Shows the previous test can fail: the same scenario, PreVote off.
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |o| o.pre_vote = false);
    network.elect(1);
    let term = network.term(1);
    network.isolate(3);
    network.tick(3, 200);
    assert!(network.term(3) > term + 5);
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.isolate(1);
    network.tick(1, 2 * 10 + 1);
    assert_eq!(network.role(1), Role::Follower);
    assert_eq!(network.node(1).status().leader, None);
}

#[test]
fn a_leader_that_hears_from_a_quorum_stays_leader() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.isolate(3);
    network.tick_all(100);
    assert_eq!(network.leaders(), vec![1]);
}

#[test]
fn followers_that_hear_a_leader_ignore_vote_requests() {
    // Leader stickiness: a vote request of a higher term neither moves the
    // follower's term nor gets an answer while the leader is fresh.
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    let term = network.term(2);
    let last_index = network.node(2).status().last_index;
    let request = Message {
        from: 3,
        to: 2,
        term: term + 1,
        body: Body::Vote { last_index, last_term: term, transfer: false },
    };
    network.node_mut(2).step(request);
    assert_eq!(network.term(2), term);
    assert!(!network.node(2).has_ready());
}

#[test]
fn vote_requires_an_up_to_date_log() {
    // §5.4.1: a candidate with a shorter log of the same last term is refused.
    let durable = Durable {
        hard_state: HardState { term: 2, vote: 0, commit: 0 },
        snapshot: None,
        entries: entries(&[(1, 1), (2, 2)]),
    };
    let mut raft =
        crate::raft::Raft::new(super::options(2), Membership::with_voters([1, 2, 3]), durable);
    raft.step(Message {
        from: 3,
        to: 2,
        term: 3,
        body: Body::Vote { last_index: 1, last_term: 2, transfer: false },
    });
    let ready = raft.ready();
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(ready.messages[0].body, Body::VoteResponse { granted: false });
    assert_eq!(ready.hard_state.expect("term moved").vote, 0);
}

#[test]
fn restart_from_durable_keeps_term_vote_and_log() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.propose(1, "a");
    network.propose(1, "b");
    let before = network.node(2).status();
    let vote = network.durable[&2].hard_state.vote;
    assert_eq!(vote, 1);
    network.restart(2);
    let after = network.node(2).status();
    assert_eq!(
        (after.term, after.last_index, after.commit),
        (before.term, before.last_index, before.commit)
    );
    // The vote survives: a rival in the same term is refused.
    let last_index = after.last_index;
    network.node_mut(2).step(Message {
        from: 3,
        to: 2,
        term: after.term,
        body: Body::Vote { last_index: last_index + 5, last_term: after.term, transfer: false },
    });
    let ready = network.node_mut(2).ready();
    assert!(ready.messages.iter().any(|m| m.body == Body::VoteResponse { granted: false }));
    // Committed entries are handed out again to rebuild the state machine.
    assert_eq!(ready.committed.len() as u64, after.commit);
    network.node_mut(2).advance();
}

#[test]
#[should_panic(expected = "ready() called twice")]
fn ready_and_advance_must_alternate() {
    let mut network = Network::new(&[1]);
    network.node_mut(1).tick();
    let _ = network.node_mut(1).ready();
    let _ = network.node_mut(1).ready();
}
