//! The failure detector, PrePrepare, and phase 1 with value recovery (PMS
//! §2.2, §2.5, §3; PML §3), plus the leader's periodic duties (heartbeats,
//! the quorum check, the transfer timeout).

use std::collections::BTreeSet;

use super::message::Ballot;
use super::{ballot, Body, Paxos, RoleState};
use crate::{Entry, Index, NodeId};

/// The answers gathered by a replica asking whether it may start `ballot`.
pub(super) struct PrePrepares {
    ballot: Ballot,
    granted: BTreeSet<NodeId>,
    rejected: BTreeSet<NodeId>,
}

/// A candidate's phase-1 state for its own ballot.
pub(super) struct Phase1 {
    /// Every slot after this one is being recovered (the commit index).
    prev_index: Index,
    transfer: bool,
    granted: BTreeSet<NodeId>,
    rejected: BTreeSet<NodeId>,
    /// The highest rank any promise reported, whether or not its log could
    /// be obtained.
    highest_rank: (Ballot, Index),
    /// The highest log that can be obtained: its owner, rank, and the first
    /// batch of its entries after `prev_index` (empty for the candidate's own).
    best: Best,
    /// The owner of the best log, while its remaining batches are fetched.
    fetching: Option<NodeId>,
    /// The last slot where this replica's log is known to equal the best
    /// log; the next batch is fetched after it.
    fetched_index: Index,
}

struct Best {
    node: NodeId,
    rank: (Ballot, Index),
    entries: Vec<Entry>,
}

/// A phase-1b reply, unpacked.
pub(super) struct PromiseReply {
    pub(super) granted: bool,
    pub(super) log_matches: bool,
    pub(super) prev_index: Index,
    pub(super) last_index: Index,
    pub(super) last_ballot: Ballot,
    pub(super) entries: Vec<Entry>,
}

impl PromiseReply {
    /// Whether `entries` could be the acceptor's log after `prev_index`:
    /// contiguous, tags never decreasing, ending at or before `last_index`
    /// with the announced tag if they reach it. Untrusted input is checked
    /// before it can reach the log's assertions.
    fn entries_are_consistent(&self, prev_ballot: Ballot) -> bool {
        let mut previous = prev_ballot;
        for (expected, entry) in (self.prev_index + 1..).zip(&self.entries) {
            if entry.index != expected || entry.term < previous || entry.term > self.last_ballot {
                return false;
            }
            previous = entry.term;
        }
        let end = self.prev_index + self.entries.len() as u64;
        end <= self.last_index && (end < self.last_index || previous == self.last_ballot)
    }
}

impl Paxos {
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed_ticks = self.election_elapsed_ticks.saturating_add(1);
        // Learners, removed replicas and replicas still learning the
        // configuration never propose.
        if self.is_voter() && self.election_elapsed_ticks >= self.randomized_election_ticks {
            if self.options.pre_vote {
                self.campaign_pre_prepare();
            } else {
                self.campaign(false);
            }
        }
    }

    pub(super) fn tick_leader(&mut self) {
        let election_ticks = self.options.election_ticks;
        let heartbeat_ticks = self.options.heartbeat_ticks;
        let RoleState::Leader(state) = &mut self.role else { unreachable!() };
        state.heartbeat_elapsed_ticks += 1;
        state.quorum_elapsed_ticks += 1;
        if let Some(transfer) = &mut state.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= election_ticks {
                state.transfer = None;
            }
        }
        let heartbeat_due = state.heartbeat_elapsed_ticks >= heartbeat_ticks;
        if state.quorum_elapsed_ticks >= election_ticks {
            state.quorum_elapsed_ticks = 0;
            if self.options.check_quorum && !self.quorum_recently_active() {
                let ballot = self.ballot;
                self.become_follower(ballot, None);
                return;
            }
            let RoleState::Leader(state) = &mut self.role else { unreachable!() };
            for progress in state.progress.values_mut() {
                progress.recent_active = false;
            }
        }
        if heartbeat_due {
            self.broadcast_heartbeat();
        }
    }

    /// Whether a quorum of voters (this leader included, if it is one) was
    /// heard from since the last quorum check.
    fn quorum_recently_active(&self) -> bool {
        let RoleState::Leader(state) = &self.role else { return false };
        let active = self
            .membership
            .voters
            .iter()
            .filter(|&&voter| {
                voter == self.id() || state.progress.get(&voter).is_some_and(|p| p.recent_active)
            })
            .count();
        active >= self.membership.quorum()
    }

    fn other_voters(&self) -> Vec<NodeId> {
        self.membership.voters.iter().copied().filter(|&v| v != self.id()).collect()
    }

    fn campaign_pre_prepare(&mut self) {
        let prospective = ballot::next_for(self.ballot, self.id());
        self.role = RoleState::PreCandidate(PrePrepares {
            ballot: prospective,
            granted: BTreeSet::new(),
            rejected: BTreeSet::new(),
        });
        self.leader = None;
        self.reset_election_timer();
        self.record_pre_prepare(self.id(), true);
        if !matches!(self.role, RoleState::PreCandidate(_)) {
            return;
        }
        let commit = self.log.commit();
        for voter in self.other_voters() {
            self.send_with_ballot(voter, prospective, Body::PrePrepare { commit });
        }
    }

    pub(super) fn handle_pre_prepare(&mut self, from: NodeId, prospective: Ballot, commit: Index) {
        // A proposer whose chosen prefix this replica has compacted away
        // could not recover the values after it from here.
        let granted = prospective > self.ballot && commit >= self.log.snapshot_index();
        let ballot = if granted { prospective } else { self.ballot };
        self.send_with_ballot(from, ballot, Body::PrePrepareResponse { granted });
    }

    pub(super) fn handle_pre_prepare_response(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        granted: bool,
    ) {
        let RoleState::PreCandidate(answers) = &self.role else { return };
        let expected = if granted { answers.ballot } else { self.ballot };
        if ballot == expected && self.membership.voters.contains(&from) {
            self.record_pre_prepare(from, granted);
        }
    }

    fn record_pre_prepare(&mut self, voter: NodeId, granted: bool) {
        let quorum = self.membership.quorum();
        let RoleState::PreCandidate(answers) = &mut self.role else { return };
        if granted {
            answers.granted.insert(voter);
        } else {
            answers.rejected.insert(voter);
        }
        if answers.granted.len() >= quorum {
            self.campaign(false);
        } else if answers.rejected.len() >= quorum {
            let ballot = self.ballot;
            self.become_follower(ballot, None);
        }
    }

    /// Starts phase 1 in a new ballot of this replica's own; `transfer`
    /// marks a campaign ordered by `TimeoutNow`.
    pub(super) fn campaign(&mut self, transfer: bool) {
        let ballot = ballot::next_for(self.ballot, self.id());
        self.become_follower(ballot, None);
        let prev_index = self.log.commit();
        let prev_ballot = self.log.ballot_at(prev_index).expect("the commit index is in the log");
        let rank = self.log.rank();
        self.role = RoleState::Candidate(Box::new(Phase1 {
            prev_index,
            transfer,
            granted: BTreeSet::new(),
            rejected: BTreeSet::new(),
            highest_rank: rank,
            best: Best { node: self.id(), rank, entries: Vec::new() },
            fetching: None,
            fetched_index: prev_index,
        }));
        self.record_promise(self.id());
        if !matches!(self.role, RoleState::Candidate(_)) {
            return;
        }
        for voter in self.other_voters() {
            self.send(voter, Body::Prepare { prev_index, prev_ballot, transfer });
        }
    }

    /// Phase 1b: the ballot is promised (the step logic raised it); report
    /// the accepted slots after `prev_index`, one batch of them.
    pub(super) fn handle_prepare(&mut self, from: NodeId, prev_index: Index, prev_ballot: Ballot) {
        let log_matches = self.log.ballot_at(prev_index) == Some(prev_ballot);
        let (last_ballot, last_index) = self.log.rank();
        let entries = if log_matches && prev_index < last_index {
            self.log.batch(
                prev_index + 1,
                self.options.append_entries_max,
                self.options.append_bytes_max,
            )
        } else {
            Vec::new()
        };
        self.reset_election_timer();
        let body = Body::Promise {
            granted: true,
            log_matches,
            prev_index,
            last_index,
            last_ballot,
            entries,
        };
        self.send(from, body);
    }

    pub(super) fn handle_promise(&mut self, from: NodeId, ballot: Ballot, reply: PromiseReply) {
        if ballot != self.ballot || !self.membership.voters.contains(&from) {
            return;
        }
        let RoleState::Candidate(phase1) = &mut self.role else { return };
        if phase1.fetching == Some(from) {
            if reply.granted && reply.prev_index == phase1.fetched_index {
                self.continue_fetch(from, reply);
            }
            return;
        }
        if !reply.granted {
            phase1.rejected.insert(from);
            if phase1.rejected.len() >= self.membership.quorum() {
                let ballot = self.ballot;
                self.become_follower(ballot, None);
            }
            return;
        }
        if phase1.granted.contains(&from) || reply.prev_index != phase1.prev_index {
            return;
        }
        let rank = (reply.last_ballot, reply.last_index);
        phase1.highest_rank = phase1.highest_rank.max(rank);
        let Some(prev_ballot) = self.log.ballot_at(phase1.prev_index) else { return };
        if reply.log_matches && rank > phase1.best.rank && reply.entries_are_consistent(prev_ballot)
        {
            phase1.best = Best { node: from, rank, entries: reply.entries };
        }
        self.record_promise(from);
    }

    fn record_promise(&mut self, voter: NodeId) {
        let quorum = self.membership.quorum();
        let RoleState::Candidate(phase1) = &mut self.role else { return };
        phase1.granted.insert(voter);
        if phase1.granted.len() >= quorum && phase1.fetching.is_none() {
            self.finish_phase1();
        }
    }

    /// A quorum promised: adopt the highest log (PMS P2c for every slot at
    /// once), then lead.
    fn finish_phase1(&mut self) {
        if bug!(self, SkipValueRecovery) {
            self.become_leader();
            return;
        }
        let id = self.id();
        let RoleState::Candidate(phase1) = &mut self.role else { return };
        if phase1.highest_rank > phase1.best.rank || self.log.commit() != phase1.prev_index {
            // A higher log exists that this replica cannot obtain from the
            // replicas that hold it: leading could lose chosen values.
            let ballot = self.ballot;
            self.become_follower(ballot, None);
            return;
        }
        if phase1.best.node == id {
            self.become_leader();
            return;
        }
        let best_node = phase1.best.node;
        let entries = std::mem::take(&mut phase1.best.entries);
        let best_last_index = phase1.best.rank.1;
        phase1.fetching = Some(best_node);
        self.adopt(entries);
        self.fetch_or_lead(best_node, best_last_index);
    }

    /// Merges a batch of the best log, which starts right after the fetched
    /// prefix, into this replica's log. Only entries that conflict are
    /// replaced, as an acceptor does with an `Accept` (Raft §5.3): an entry
    /// the best log shares may already be chosen, and until the fetch
    /// completes it may be the only copy this replica will ever report, so
    /// dropping it (say, truncating everything after the commit index before
    /// fetching) would let a later ballot recover a log without a chosen value
    /// if the fetch is cut short. A conflicting entry is never chosen: a
    /// chosen value is in every log ranked at least as high as the quorum
    /// that chose it, and the best log outranks this one.
    fn adopt(&mut self, entries: Vec<Entry>) {
        let RoleState::Candidate(phase1) = &mut self.role else { return };
        assert_eq!(
            entries.first().map_or(phase1.fetched_index + 1, |e| e.index),
            phase1.fetched_index + 1
        );
        phase1.fetched_index += entries.len() as Index;
        let Some(position) = self.log.find_conflict(&entries) else { return };
        let first = entries[position].index;
        if first <= self.log.last_index() {
            self.log.truncate_from(first);
        }
        self.log.append(&entries[position..]);
        self.recompute_membership();
    }

    /// Leads if the whole best log is here, else asks its owner for more.
    fn fetch_or_lead(&mut self, owner: NodeId, last_index: Index) {
        let (own_last_ballot, own_last_index) = self.log.rank();
        let RoleState::Candidate(phase1) = &mut self.role else { return };
        if own_last_ballot == phase1.best.rank.0 && own_last_index > phase1.fetched_index {
            // Both logs end in entries of the same ballot, so both are
            // prefixes of that ballot's leader's log (logs that share an
            // entry are identical before it), and this shorter one is a
            // prefix of the best log: no need to fetch what is already here.
            assert!(own_last_index < last_index, "the best log outranks this one");
            phase1.fetched_index = own_last_index;
        }
        let fetched_index = phase1.fetched_index;
        if fetched_index >= last_index {
            // The best log outranks this replica's, so a suffix of this log
            // beyond it would have had to conflict with it.
            assert_eq!(self.log.last_index(), last_index, "the adopted log is the best log");
            self.become_leader();
            return;
        }
        let transfer = phase1.transfer;
        let prev_ballot =
            self.log.ballot_at(fetched_index).expect("the fetched prefix is in the log");
        self.send(owner, Body::Prepare { prev_index: fetched_index, prev_ballot, transfer });
    }

    fn continue_fetch(&mut self, owner: NodeId, reply: PromiseReply) {
        let RoleState::Candidate(phase1) = &self.role else { return };
        let prev_ballot =
            self.log.ballot_at(phase1.fetched_index).expect("the fetched prefix is in the log");
        if !reply.log_matches || !reply.entries_are_consistent(prev_ballot) {
            // The owner's log changed under the promise: start again later.
            let ballot = self.ballot;
            self.become_follower(ballot, None);
            return;
        }
        let last_index = reply.last_index;
        self.adopt(reply.entries);
        self.fetch_or_lead(owner, last_index);
    }

    pub(super) fn handle_timeout_now(&mut self) {
        if self.is_voter() {
            self.campaign(true);
        }
    }
}
