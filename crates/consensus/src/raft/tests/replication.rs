//! Log replication, commit rules, catch-up, backtracking, flow control.

use std::cell::Cell;
use std::rc::Rc;

use super::{entries, Network};
use crate::raft::Body;
use crate::{Durable, Engine, Error, HardState, Membership, Role};

#[test]
fn proposals_replicate_and_commit_everywhere_in_order() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    for command in ["a", "b", "c"] {
        network.propose(1, command);
    }
    network.tick_all(3);
    for id in [1, 2, 3] {
        assert_eq!(network.commands(id), vec!["a", "b", "c"], "node {id}");
    }
    network.assert_applied_agree();
}

#[test]
fn a_follower_proposal_is_refused_with_a_leader_hint() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    let refused = network.node_mut(2).propose("x".into());
    assert_eq!(refused, Err(Error::NotLeader { leader: Some(1) }));
}

#[test]
fn uncommitted_proposals_are_bounded() {
    let mut network =
        Network::with(Membership::with_voters([1, 2, 3]), |o| o.uncommitted_entries_max = 3);
    network.elect(1);
    network.isolate(2);
    network.isolate(3);
    for command in ["a", "b", "c"] {
        network.propose(1, command);
    }
    assert_eq!(network.node_mut(1).propose("d".into()), Err(Error::Busy));
}

#[test]
fn a_follower_behind_catches_up_in_bounded_batches() {
    let mut network = Network::with(Membership::with_voters([1, 2, 3]), |o| {
        o.append_entries_max = 4;
        o.inflight_appends_max = 2;
    });
    network.elect(1);
    network.isolate(3);
    let commands: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    for command in &commands {
        network.propose(1, command);
    }
    assert!(network.commands(3).is_empty());
    network.heal();
    network.tick_all(10);
    assert_eq!(network.commands(3), commands);
    network.assert_applied_agree();
    let too_big = network
        .count_delivered(|m| matches!(&m.body, Body::Append { entries, .. } if entries.len() > 4));
    assert_eq!(too_big, 0, "batches respect append_entries_max");
}

#[test]
fn conflicting_suffixes_are_replaced_after_fast_backtracking() {
    // Node 2 holds five uncommitted entries of term 2 from a deposed leader;
    // node 1 (term 3 entries) wins and must overwrite them, skipping the
    // whole term-2 run in one round trip.
    let founding = Membership::with_voters([1, 2, 3]);
    let mut network = Network::with(founding.clone(), |_| {});
    let logs = [
        (1, 3, entries(&[(1, 1), (2, 1), (3, 3), (4, 3), (5, 3)])),
        (2, 3, entries(&[(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2)])),
        (3, 3, entries(&[(1, 1), (2, 1), (3, 3), (4, 3)])),
    ];
    for (id, term, log) in logs {
        let durable = Durable {
            hard_state: HardState { term, vote: 0, commit: 2 },
            snapshot: None,
            entries: log,
        };
        network.add(id, super::options(id), founding.clone(), durable);
    }
    network.elect(1);
    network.tick_all(2);
    let leader_log = network.durable_log(1);
    assert_eq!(network.durable_log(2), leader_log);
    assert_eq!(network.durable_log(3), leader_log);
    let rejections = network.count_delivered(|m| {
        m.from == 2 && matches!(m.body, Body::AppendResponse { success: false, .. })
    });
    assert_eq!(rejections, 1, "one rejection skips the whole conflicting term");
    network.assert_applied_agree();
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    // §3.6.2: S1 leads term 4 with 2@2 from its term-2 reign; once 2@2 is on
    // S1, S2, S3 (a majority) it is still not committed, because S5 (2@3)
    // could yet win and overwrite it. It commits only with 3@4.
    let founding = Membership::with_voters([1, 2, 3, 4, 5]);
    let mut network = Network::with(founding.clone(), |_| {});
    let logs = [
        (1, entries(&[(1, 1), (2, 2)])),
        (2, entries(&[(1, 1), (2, 2)])),
        (3, entries(&[(1, 1)])),
        (4, entries(&[(1, 1)])),
        (5, entries(&[(1, 1), (2, 3)])),
    ];
    for (id, log) in logs {
        let mut options = super::options(id);
        options.append_entries_max = 1;
        let durable = Durable {
            hard_state: HardState { term: 3, vote: 0, commit: 1 },
            snapshot: None,
            entries: log,
        };
        network.add(id, options, founding.clone(), durable);
    }
    // Strip the term-4 no-op from every append so only 2@2 spreads.
    network.filter = Some(Box::new(|message| {
        if let Body::Append { entries, .. } = &mut message.body {
            entries.retain(|e| e.term != 4);
        }
        true
    }));
    network.elect(1);
    assert_eq!(network.term(1), 4);
    network.tick(1, 4);
    let holders =
        [1, 2, 3, 4].iter().filter(|&&id| network.durable_log(id).contains(&(2, 2))).count();
    assert!(holders >= 3, "2@2 is on a majority");
    assert_eq!(network.node(1).status().commit, 1, "but not committed by counting replicas");
    assert!(network.applied.values().all(|a| a.iter().all(|e| e.index < 2)));
    network.heal();
    network.tick(1, 4);
    assert_eq!(network.node(1).status().commit, 3, "3@4 commits, and 2@2 with it");
    network.assert_applied_agree();
}

#[test]
fn pipelining_stops_at_the_inflight_window() {
    // Flow control: with acknowledgements lost, a leader in Replicate state
    // sends at most `inflight_appends_max` appends carrying entries.
    let mut network = Network::with(Membership::with_voters([1, 2]), |o| {
        o.inflight_appends_max = 3;
        o.append_entries_max = 1;
    });
    network.elect(1);
    network.propose(1, "warm-up"); // node 2 is now in Replicate state
    let sent = Rc::new(Cell::new(0));
    let counter = Rc::clone(&sent);
    network.filter = Some(Box::new(move |message| {
        if let Body::Append { entries, .. } = &message.body {
            if !entries.is_empty() {
                counter.set(counter.get() + 1);
            }
            return false;
        }
        true
    }));
    for i in 0..10 {
        network.node_mut(1).propose(format!("c{i}").into()).expect("accepted");
        network.deliver();
    }
    assert_eq!(sent.get(), 3);
    assert_eq!(network.role(1), Role::Leader);
    // Once messages flow again, heartbeats restart replication and all commits.
    network.filter = None;
    network.tick_all(10);
    assert_eq!(network.commands(2).len(), 11);
}

#[test]
fn heartbeats_never_carry_a_commit_index_beyond_the_followers_match() {
    let mut network = Network::new(&[1, 2, 3]);
    network.elect(1);
    network.isolate(3);
    network.propose(1, "a");
    network.propose(1, "b");
    let commit = network.node(1).status().commit;
    let heartbeats = Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = Rc::clone(&heartbeats);
    network.heal();
    network.filter = Some(Box::new(move |message| {
        if let Body::Heartbeat { commit, .. } = message.body {
            seen.borrow_mut().push((message.to, commit));
        }
        !matches!(message.body, Body::Append { .. }) || message.to != 3
    }));
    network.tick(1, 2);
    let heartbeats = heartbeats.borrow();
    assert!(heartbeats.contains(&(2, commit)));
    assert!(heartbeats.iter().any(|(to, _)| *to == 3));
    assert!(heartbeats.iter().filter(|(to, _)| *to == 3).all(|&(_, c)| c < commit));
    assert!(network.node(3).status().commit < commit);
}
