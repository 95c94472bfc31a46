//! Each deliberately broken variant changes exactly its rule.

use super::{entries, Network};
use crate::raft::{Body, Message, Raft};
use crate::{Bug, Durable, Engine, HardState, Membership, Payload};

fn with_bug(voters: &[u64], bug: Bug) -> Network {
    Network::with(Membership::with_voters(voters.iter().copied()), |o| o.bug = Some(bug))
}

#[test]
fn commit_on_minority_commits_without_a_quorum() {
    let mut network = with_bug(&[1, 2, 3], Bug::CommitOnMinority);
    network.elect(1);
    network.isolate(2);
    network.isolate(3);
    let proposal = network.propose(1, "a");
    assert_eq!(network.node(1).status().commit, proposal.index);
}

#[test]
fn vote_without_log_check_grants_a_stale_candidate() {
    let durable = Durable {
        hard_state: HardState { term: 2, vote: 0, commit: 0 },
        snapshot: None,
        entries: entries(&[(1, 1), (2, 2)]),
    };
    let mut options = super::options(2);
    options.bug = Some(Bug::VoteWithoutLogCheck);
    let mut raft = Raft::new(options, Membership::with_voters([1, 2, 3]), durable);
    let body = Body::Vote { last_index: 1, last_term: 1, transfer: false };
    raft.step(Message { from: 3, to: 2, term: 3, body });
    let ready = raft.ready();
    assert_eq!(ready.messages[0].body, Body::VoteResponse { granted: true });
}

#[test]
fn apply_before_commit_hands_out_uncommitted_entries() {
    let mut network = with_bug(&[1, 2, 3], Bug::ApplyBeforeCommit);
    network.elect(1);
    network.isolate(2);
    network.isolate(3);
    let proposal = network.propose(1, "a");
    assert!(network.node(1).status().commit < proposal.index);
    assert_eq!(network.commands(1), vec!["a"]);
}

#[test]
fn skip_election_noop_appends_nothing_and_reads_do_not_wait() {
    let mut network = with_bug(&[1, 2, 3], Bug::SkipElectionNoop);
    network.elect(1);
    assert_eq!(network.node(1).status().last_index, 0);
    network.node_mut(1).read_index(5).expect("accepted");
    network.deliver();
    assert_eq!(network.reads[&1].len(), 1);
    assert!(network.applied[&1].iter().all(|e| e.payload != Payload::Noop));
}

#[test]
fn read_without_heartbeat_answers_an_isolated_leader_at_once() {
    let mut network = with_bug(&[1, 2, 3], Bug::ReadWithoutHeartbeat);
    network.elect(1);
    network.isolate(2);
    network.isolate(3);
    network.node_mut(1).read_index(5).expect("accepted");
    network.process(1);
    assert_eq!(network.reads[&1].len(), 1);
}

/// Whether some seeded random run with `variant` trips a safety check.
fn random_runs_catch(variant: fn(&mut crate::Options)) -> bool {
    (0..40).any(|seed| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::random::run(seed, variant, false)
        }))
        .is_err()
    })
}

#[test]
fn the_random_fault_checks_catch_commit_on_minority() {
    assert!(random_runs_catch(|o| o.bug = Some(Bug::CommitOnMinority)));
}

#[test]
fn the_random_fault_checks_catch_vote_without_log_check() {
    assert!(random_runs_catch(|o| o.bug = Some(Bug::VoteWithoutLogCheck)));
}

#[test]
fn the_random_fault_checks_catch_read_without_heartbeat() {
    assert!(random_runs_catch(|o| o.bug = Some(Bug::ReadWithoutHeartbeat)));
}
