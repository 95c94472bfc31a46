//! Phase 1, value recovery, gap filling, reads, transfer, membership and
//! snapshot catch-up.

use bytes::Bytes;

use super::super::{ballot, Body};
use super::Network;
use crate::{Engine, Error, Membership, MembershipChange, Payload, Role, Snapshot};

#[test]
fn a_campaign_wins_phase_one_and_fills_the_next_slot_with_a_noop() {
    // Goal: phase 1 with a quorum makes the proposer leader of its own
    // ballot, persisted as (round, node), and its no-op is chosen everywhere.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    let status = network.nodes[&1].status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.term, ballot::make(1, 1));
    assert_eq!(status.commit, 1);
    for id in [2, 3] {
        assert_eq!(network.leader_of(id), Some(1));
        assert_eq!(network.durable[&id].hard_state.term, 1, "promised round");
        assert_eq!(network.durable[&id].hard_state.vote, 1, "promised proposer");
    }
    network.tick(3);
    for id in [1, 2, 3] {
        assert_eq!(network.applied[&id].first().map(|e| e.payload.clone()), Some(Payload::Noop));
    }
}

#[test]
fn a_lower_ballot_is_refused_and_its_proposer_learns_the_higher_one() {
    // Goal: after promising a higher ballot, an acceptor ignores the old
    // leader's accepts and its nack makes the old leader step down.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.node(2).campaign(true);
    network.stabilize_with(|message| message.to != 1 && message.from != 1);
    assert_eq!(network.nodes[&2].role(), Role::Leader);
    network.propose(1, "stale");
    network.stabilize();
    assert_eq!(network.nodes[&1].role(), Role::Follower);
    assert!(network.nodes[&1].status().term >= ballot::make(2, 2));
    assert!(network.commands(3).is_empty(), "nothing of the old ballot was chosen");
}

#[test]
fn a_new_leader_recovers_values_accepted_by_a_minority_in_batches() {
    // Goal: values that only one surviving acceptor holds are recovered by
    // the next leader, fetched batch by batch, keep their ballot tags, and
    // are chosen again under the new leader's no-op.
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |options| {
        options.append_entries_max = 1;
    });
    network.campaign(1);
    network.tick(3);
    let first = network.propose(1, "a");
    network.propose(1, "b");
    network.propose(1, "c");
    // n3 hears nothing of them: only n2 holds the values besides n1.
    network.stabilize_with(|message| message.to != 3 && message.from != 3);
    assert_eq!(network.durable[&2].entries.last().map(|e| e.index), Some(4));
    network.isolated.insert(1);
    let before = network.delivered.len();
    network.campaign(3);
    assert_eq!(network.nodes[&3].role(), Role::Leader);
    let promises = network.delivered[before..].iter().filter(|kind| **kind == "promise").count();
    assert!(promises >= 3, "one promise and at least two fetched batches ({promises})");
    network.tick(3);
    assert_eq!(network.commands(3), ["a", "b", "c"]);
    assert_eq!(network.commands(2), ["a", "b", "c"]);
    let tag = network.applied[&3].iter().find(|e| e.index == first.index).map(|e| e.term);
    assert_eq!(tag, Some(first.term), "a recovered value keeps its ballot tag (driver rule 7)");
    let last = network.applied[&3].last().expect("applied");
    assert_eq!((last.payload.clone(), last.term), (Payload::Noop, network.nodes[&3].status().term));
}

#[test]
fn an_unreachable_higher_log_makes_the_proposer_abandon_its_ballot() {
    // Goal: a promise reporting a higher log the proposer cannot fetch
    // (its owner compacted past the proposer's commit index) stops the
    // proposer from leading rather than losing chosen values.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.tick(3);
    network.propose(1, "a");
    network.stabilize_with(|message| message.to != 3 && message.from != 3);
    let applied = network.nodes[&1].status().applied;
    let term = network.applied[&1].last().expect("applied").term;
    let snapshot = Snapshot {
        index: applied,
        term,
        membership: Membership::with_voters([1, 2, 3]),
        data: Bytes::from_static(b"image"),
    };
    network.node(1).compact(snapshot.clone());
    network.node(2).compact(snapshot);
    network.isolated.insert(2);
    network.node(3).campaign(false);
    network.stabilize();
    assert_ne!(network.nodes[&3].role(), Role::Leader);
}

#[test]
fn reads_wait_for_a_quorum_round_and_abort_on_losing_leadership() {
    // Goal: ReadIndex answers only after a heartbeat quorum, at the commit
    // index; a deposed leader fails its pending reads.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.tick(3);
    network.propose(1, "x");
    network.stabilize();
    network.node(1).read_index(7).expect("leader reads");
    network.drive();
    assert!(network.reads[&1].is_empty(), "not before the quorum round");
    network.stabilize();
    let read = network.reads[&1].last().copied().expect("confirmed");
    assert_eq!((read.context, read.index), (7, network.nodes[&1].status().commit));
    network.node(1).read_index(8).expect("leader reads");
    network.isolated.insert(1);
    network.stabilize();
    network.isolated.clear();
    network.campaign(2);
    assert!(network.aborted[&1].contains(&8));
    assert_eq!(network.node(3).read_index(9), Err(Error::NotLeader { leader: Some(2) }));
}

#[test]
fn leadership_moves_to_the_chosen_replica() {
    // Goal: a transfer brings the target up to date, then the target runs
    // phase 1 at once and leads a higher ballot; proposals wait meanwhile.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.tick(3);
    network.node(1).transfer_leadership(3).expect("transfer starts");
    assert_eq!(network.node(1).propose(Bytes::from_static(b"z")), Err(Error::TransferInProgress));
    network.stabilize();
    assert_eq!(network.nodes[&3].role(), Role::Leader);
    assert_eq!(network.leader_of(1), Some(3));
    assert_eq!(network.node(1).transfer_leadership(2), Err(Error::NotLeader { leader: Some(3) }));
}

#[test]
fn membership_changes_one_at_a_time_and_a_removed_leader_hands_over() {
    // Goal: a learner catches up, is promoted; a second change waits for the
    // first; removing the leader makes it step down and the others elect.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.tick(3);
    network.start(4, Membership::default());
    network.node(1).propose_membership(MembershipChange::AddLearner(4)).expect("add learner");
    assert_eq!(
        network.node(1).propose_membership(MembershipChange::Promote(4)),
        Err(Error::MembershipChangePending)
    );
    network.tick(3);
    assert_eq!(network.nodes[&4].role(), Role::Learner);
    network.node(1).propose_membership(MembershipChange::Promote(4)).expect("promote");
    network.tick(3);
    assert!(network.nodes[&4].status().membership.voters.contains(&4));
    network.node(1).propose_membership(MembershipChange::Remove(1)).expect("remove leader");
    network.tick(3);
    assert_ne!(network.nodes[&1].role(), Role::Leader);
    network.tick(40);
    let leaders: Vec<_> =
        [2, 3, 4].into_iter().filter(|id| network.nodes[id].role() == Role::Leader).collect();
    assert_eq!(leaders.len(), 1, "the remaining voters elect one leader");
    assert_eq!(network.nodes[&leaders[0]].status().membership.voters.len(), 3);
}

#[test]
fn a_lagging_replica_catches_up_by_a_chunked_snapshot_and_survives_restart() {
    // Goal: after compaction, a replica that missed the prefix receives the
    // snapshot in chunks, installs it, then follows the log; a restart
    // rebuilds the same state from what was durable.
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |options| {
        options.snapshot_chunk_bytes = 3;
    });
    network.campaign(1);
    network.tick(3);
    network.isolated.insert(3);
    for text in ["a", "b", "c"] {
        network.propose(1, text);
    }
    network.tick(3);
    let status = network.nodes[&1].status();
    let term = network.applied[&1].last().expect("applied").term;
    network.node(1).compact(Snapshot {
        index: status.applied,
        term,
        membership: Membership::with_voters([1, 2, 3]),
        data: Bytes::from_static(b"a b c image"),
    });
    network.isolated.clear();
    network.tick(5);
    let chunks = network.delivered.iter().filter(|kind| **kind == "install-snapshot").count();
    assert!(chunks >= 4, "the image travels in chunks ({chunks})");
    assert_eq!(network.durable[&3].snapshot.as_ref().map(|s| s.index), Some(status.applied));
    network.propose(1, "d");
    network.tick(3);
    assert_eq!(network.commands(3), ["d"]);
    network.restart(3);
    network.tick(3);
    assert_eq!(network.nodes[&3].status().commit, network.nodes[&1].status().commit);
}

#[test]
fn a_returning_partitioned_replica_does_not_disrupt_the_leader() {
    // Goal: PrePrepare and the quorum check keep a replica that was cut off
    // from raising ballots or deposing a healthy leader when it returns.
    let mut network = Network::new(&[1, 2, 3]);
    network.campaign(1);
    network.isolated.insert(3);
    network.tick(60);
    let ballot_before = network.nodes[&1].status().term;
    assert_eq!(network.nodes[&3].status().term, ballot_before, "no ballot inflation");
    network.isolated.clear();
    network.tick(30);
    assert_eq!(network.nodes[&1].role(), Role::Leader);
    assert_eq!(network.nodes[&1].status().term, ballot_before);
}

#[test]
fn prepares_naming_another_proposer_are_ignored() {
    // Goal: a message claiming a ballot that is not its sender's changes
    // nothing (a proposer speaks only in its own ballots).
    let mut network = Network::new(&[1, 2, 3]);
    let forged = super::super::Message {
        from: 2,
        to: 1,
        ballot: ballot::make(9, 3),
        body: Body::Prepare { prev_index: 0, prev_ballot: 0, transfer: true },
    };
    network.node(1).step(forged);
    network.drive();
    assert_eq!(network.nodes[&1].status().term, 0);
    assert!(network.queue.is_empty());
}

#[test]
fn an_interrupted_recovery_keeps_the_values_the_proposer_already_accepted() {
    // Goal: a proposer that adopts a higher log batch by batch never drops
    // accepted values that log shares with its own, so when the fetch is cut
    // short a later ballot cannot overwrite a value chosen before it.
    let mut network = Network::with(Membership::with_voters([1, 2, 3, 4, 5]), |options| {
        options.append_entries_max = 1;
    });
    network.campaign(1);
    network.tick(3);
    for text in ["a", "b", "c"] {
        network.propose(1, text);
    }
    // n2 accepts a, b, c but never learns they are chosen (quorum is three).
    network.stabilize_with(|message| [message.from, message.to].iter().all(|&id| id <= 2));
    assert_eq!(network.nodes[&2].status().commit, 1);
    assert_eq!(network.nodes[&2].status().last_index, 4);
    // n3 accepts them too: a, b, c are chosen by {1, 2, 3}.
    network.isolated.extend([2, 4, 5]);
    network.tick(3);
    network.isolated.clear();
    assert_eq!(network.nodes[&1].status().commit, 4);
    assert_eq!(network.nodes[&4].status().last_index, 1);
    // n1 alone holds a fourth value, so its log outranks n2's.
    network.propose(1, "d");
    network.stabilize_with(|message| message.from != 1);
    // n2 runs phase 1 with {1, 2, 4}; n1's log is the highest, and the
    // fetch of its second batch is lost.
    network.node(2).campaign(true);
    network.stabilize_with(|message| {
        let fetch = matches!(message.body, Body::Prepare { prev_index, .. } if prev_index > 1);
        ![3, 5].contains(&message.to) && ![3, 5].contains(&message.from) && !fetch
    });
    assert_eq!(network.nodes[&2].role(), Role::Candidate, "stuck fetching n1's log");
    assert!(network.nodes[&2].status().last_index >= 4, "n2 kept the values it accepted");
    // Without n1 and n3, n2 leads again from its own log with {2, 4, 5}.
    network.isolated.extend([1, 3]);
    network.campaign(2);
    assert_eq!(network.nodes[&2].role(), Role::Leader);
    network.tick(3);
    let chosen = ["a", "b", "c"].map(String::from);
    assert!(network.commands(2).starts_with(&chosen), "chosen values survive");
    assert_eq!(network.commands(1), ["a", "b", "c"]);
}

#[test]
fn a_proposer_fetches_only_the_part_of_the_higher_log_it_lacks() {
    // Goal: a proposer whose log is a prefix of the highest log (both end in
    // the same ballot's entries) fetches only the entries after its own, and
    // still leads with the whole highest log.
    let mut network = Network::with(Membership::with_voters([1, 2, 3, 4, 5]), |options| {
        options.append_entries_max = 1;
    });
    network.campaign(1);
    network.tick(3);
    for text in ["a", "b", "c"] {
        network.propose(1, text);
    }
    // n2 accepts a, b, c without learning they are chosen; d and e stay on n1.
    network.stabilize_with(|message| [message.from, message.to].iter().all(|&id| id <= 2));
    network.propose(1, "d");
    network.propose(1, "e");
    network.stabilize_with(|message| message.from != 1);
    assert_eq!(network.nodes[&2].status().commit, 1);
    network.isolated.extend([4, 5]);
    let before = network.delivered.len();
    network.campaign(2);
    assert_eq!(network.nodes[&2].role(), Role::Leader);
    let promises = network.delivered[before..].iter().filter(|kind| **kind == "promise").count();
    // n1's and n3's promises, then one fetch each for d and e.
    assert_eq!(promises, 4, "slots 3 and 4, already held, are not fetched again");
    network.tick(3);
    assert_eq!(network.commands(2), ["a", "b", "c", "d", "e"]);
}
