//! Election timers, PreVote and votes (§3.4, §3.6.1, §9.6), and the leader's
//! periodic duties (heartbeats, CheckQuorum §6.2, transfer timeout §3.10).

use super::{Body, Raft, RoleState, Votes};
use crate::{Index, NodeId, Term};

impl Raft {
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed_ticks = self.election_elapsed_ticks.saturating_add(1);
        // Learners, removed replicas and replicas still learning the
        // configuration never campaign.
        if self.is_voter() && self.election_elapsed_ticks >= self.randomized_election_ticks {
            if self.options.pre_vote {
                self.campaign_pre_vote();
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
                let term = self.term;
                self.become_follower(term, None);
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
    /// heard from since the last CheckQuorum round.
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

    fn campaign_pre_vote(&mut self) {
        self.role = RoleState::PreCandidate(Votes::default());
        self.leader = None;
        self.reset_election_timer();
        let term = self.term + 1;
        self.record_vote(self.id(), true, true);
        if !matches!(self.role, RoleState::PreCandidate(_)) {
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for voter in self.other_voters() {
            self.send_with_term(voter, term, Body::PreVote { last_index, last_term });
        }
    }

    /// Starts a real election in a new term; `transfer` marks a campaign
    /// ordered by `TimeoutNow`.
    pub(super) fn campaign(&mut self, transfer: bool) {
        let term = self.term + 1;
        self.become_follower(term, None);
        self.role = RoleState::Candidate(Votes::default());
        self.vote = self.id();
        self.record_vote(self.id(), true, false);
        if !matches!(self.role, RoleState::Candidate(_)) {
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for voter in self.other_voters() {
            self.send(voter, Body::Vote { last_index, last_term, transfer });
        }
    }

    fn other_voters(&self) -> Vec<NodeId> {
        self.membership.voters.iter().copied().filter(|&v| v != self.id()).collect()
    }

    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
        pre: bool,
    ) {
        let free = self.vote == from
            || (self.vote == 0 && self.leader.is_none())
            || (pre && term > self.term);
        let up_to_date =
            self.log.is_up_to_date(last_index, last_term) || bug!(self, VoteWithoutLogCheck);
        // Whether this replica is a voter does not matter here: only the
        // candidate's configuration decides whose votes count (it ignores
        // learners'). A replica promoted by an entry it has not yet received
        // still believes it is a learner, or not a member at all, and if it
        // refused, a group whose other voters are down could never elect.
        let granted = free && up_to_date;
        if pre {
            let response_term = if granted { term } else { self.term };
            self.send_with_term(from, response_term, Body::PreVoteResponse { granted });
            return;
        }
        if granted {
            assert!(self.vote == 0 || self.vote == from, "two votes in term {}", self.term);
            self.vote = from;
            self.reset_election_timer();
        }
        self.send(from, Body::VoteResponse { granted });
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre: bool,
    ) {
        let expected_term = if pre && granted { self.term + 1 } else { self.term };
        let campaigning = match self.role {
            RoleState::PreCandidate(_) => pre,
            RoleState::Candidate(_) => !pre,
            _ => false,
        };
        if campaigning && term == expected_term && self.membership.voters.contains(&from) {
            self.record_vote(from, granted, pre);
        }
    }

    /// Counts one vote and acts on the outcome once a quorum has spoken.
    fn record_vote(&mut self, voter: NodeId, granted: bool, pre: bool) {
        let quorum = self.membership.quorum();
        let (RoleState::PreCandidate(votes) | RoleState::Candidate(votes)) = &mut self.role else {
            return;
        };
        if granted {
            votes.granted.insert(voter);
        } else {
            votes.rejected.insert(voter);
        }
        if votes.granted.len() >= quorum {
            if pre {
                self.campaign(false);
            } else {
                self.become_leader();
            }
        } else if votes.rejected.len() >= quorum {
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    pub(super) fn handle_timeout_now(&mut self) {
        if self.is_voter() {
            self.campaign(true);
        }
    }
}
