//! Becoming leader, proposing, and log replication (§3.5, §3.6.2, §10.2.1
//! pipelining), with flow control per follower (see `shared::progress`).

use super::{Body, Raft, RoleState};
use crate::shared::progress::{HeartbeatFollowUp, LeaderState, Progress};
use crate::{Entry, Error, Index, NodeId, Payload, Proposal, Term};

impl Raft {
    pub(super) fn become_leader(&mut self) {
        assert!(matches!(self.role, RoleState::Candidate(_)));
        let mut state = LeaderState::new();
        let next = self.log.last_index() + 1;
        for member in self.membership.members().filter(|&m| m != self.id()) {
            state.progress.insert(member, Progress::new(next));
        }
        state.broadcast_pending = true;
        self.role = RoleState::Leader(Box::new(state));
        self.leader = Some(self.id());
        self.election_elapsed_ticks = 0;
        if !bug!(self, SkipElectionNoop) {
            // §3.6.2 / §6.4: an entry of the new term lets earlier entries
            // commit and tells the leader what is committed.
            self.append_local(Payload::Noop);
        }
        self.maybe_commit();
    }

    /// Appends a proposal from the driver, if this replica leads.
    pub(super) fn propose_payload(&mut self, payload: Payload) -> Result<Proposal, Error> {
        let RoleState::Leader(state) = &self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        if state.transfer.is_some() {
            return Err(Error::TransferInProgress);
        }
        let uncommitted = self.log.last_index() - self.log.commit();
        if uncommitted >= self.options.uncommitted_entries_max as u64 {
            return Err(Error::Busy);
        }
        let index = self.append_local(payload);
        self.maybe_commit();
        Ok(Proposal { index, term: self.term })
    }

    /// Appends one entry of the current term to the leader's log.
    fn append_local(&mut self, payload: Payload) -> Index {
        let index = self.log.last_index() + 1;
        let membership = match &payload {
            Payload::Membership(membership) => Some(membership.clone()),
            _ => None,
        };
        self.log.append(&[Entry { index, term: self.term, payload }]);
        if let Some(membership) = membership {
            self.set_membership(membership, index);
        }
        if let RoleState::Leader(state) = &mut self.role {
            state.broadcast_pending = true;
        }
        index
    }

    /// Sends what each follower lacks (or the commit index) if a broadcast is
    /// pending. Called when a `Ready` is built, so proposals made between two
    /// `Ready`s travel in one batch.
    pub(super) fn flush_broadcast(&mut self) {
        let RoleState::Leader(state) = &mut self.role else { return };
        if !std::mem::take(&mut state.broadcast_pending) {
            return;
        }
        let followers: Vec<NodeId> = state.progress.keys().copied().collect();
        for follower in followers {
            self.send_append(follower, true);
        }
    }

    /// Sends the next append to `to` unless its flow control holds it back.
    /// An empty append is sent only if `send_if_empty` (to carry the commit
    /// index or probe the follower's log).
    pub(super) fn send_append(&mut self, to: NodeId, send_if_empty: bool) {
        let RoleState::Leader(state) = &mut self.role else { return };
        let Some(progress) = state.progress.get_mut(&to) else { return };
        if progress.is_paused(self.options.inflight_appends_max) {
            return;
        }
        let prev_index = progress.next_index - 1;
        let Some(prev_term) = self.log.term_at(prev_index) else {
            self.start_snapshot_transfer(to);
            return;
        };
        let entries = if progress.next_index <= self.log.last_index() {
            self.log.batch(
                progress.next_index,
                self.options.append_entries_max,
                self.options.append_bytes_max,
            )
        } else {
            Vec::new()
        };
        if entries.is_empty() && !send_if_empty {
            return;
        }
        progress.sent_append(entries.last().map(|e| e.index));
        let commit = self.log.commit();
        self.send(to, Body::Append { prev_index, prev_term, entries, commit });
    }

    /// Starts a heartbeat round: every follower gets the commit index it can
    /// adopt and the round number, which read requests wait on.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let ticks = self.ticks;
        let commit = self.log.commit();
        let RoleState::Leader(state) = &mut self.role else { return };
        let round = state.start_heartbeat_round(ticks, self.options.election_ticks);
        let heartbeats: Vec<(NodeId, Index)> =
            state.progress.iter().map(|(&id, p)| (id, p.match_index.min(commit))).collect();
        for (to, commit) in heartbeats {
            self.send(to, Body::Heartbeat { commit, round });
        }
        // A group with no other voter confirms its round at once.
        self.confirm_rounds();
    }

    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        let commit = self.log.commit();
        if prev_index < commit {
            // Entries up to our commit index are committed and therefore in
            // this leader's log too (Leader Completeness): skip them.
            entries.retain(|e| e.index > commit);
            if entries.first().is_some_and(|e| e.index != commit + 1) {
                return;
            }
            prev_index = commit;
            prev_term = self.log.term_at(commit).expect("commit index in the log");
        }
        if self.log.term_at(prev_index) != Some(prev_term) {
            let (hint_index, hint_term) = self.log.conflict_hint(prev_index);
            let body =
                Body::AppendResponse { success: false, index: prev_index, hint_index, hint_term };
            self.send(from, body);
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        if let Some(position) = self.log.find_conflict(&entries) {
            let first = entries[position].index;
            let truncated = first <= self.log.last_index();
            if truncated {
                assert!(!self.is_leader(), "a leader never truncates its own log");
                self.log.truncate_from(first);
            }
            self.log.append(&entries[position..]);
            let changes_membership =
                entries[position..].iter().any(|e| matches!(e.payload, Payload::Membership(_)));
            if truncated || changes_membership {
                self.recompute_membership();
            }
        }
        self.log.commit_to(leader_commit.min(last_new));
        let body =
            Body::AppendResponse { success: true, index: last_new, hint_index: 0, hint_term: 0 };
        self.send(from, body);
    }

    pub(super) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, round: u64) {
        self.log.commit_to(commit.min(self.log.last_index()));
        self.send(from, Body::HeartbeatResponse { round });
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: Index,
        hint_index: Index,
        hint_term: Term,
    ) {
        let last_index = self.log.last_index();
        let RoleState::Leader(state) = &mut self.role else { return };
        let Some(progress) = state.progress.get_mut(&from) else { return };
        progress.recent_active = true;
        if success {
            if index > last_index {
                return; // Not from this term's log: ignore.
            }
            let news = progress.append_succeeded(index);
            let caught_up = progress.match_index == last_index;
            let transfer_ready = state.transfer.as_ref().is_some_and(|t| t.target == from);
            if news && self.maybe_commit() {
                self.broadcast_commit();
            }
            if caught_up && transfer_ready && self.is_leader() {
                self.send(from, Body::TimeoutNow);
            }
            // Keep the pipeline full.
            self.send_append(from, false);
            return;
        }
        if progress.is_stale_refusal(index) {
            return;
        }
        let next = self.log.next_index_from_hint(hint_index, hint_term);
        let RoleState::Leader(state) = &mut self.role else { unreachable!() };
        let progress = state.progress.get_mut(&from).expect("checked above");
        progress.become_probe(next.min(index));
        self.send_append(from, true);
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        let last_index = self.log.last_index();
        let inflight_max = self.options.inflight_appends_max;
        let RoleState::Leader(state) = &mut self.role else { return };
        let Some(progress) = state.progress.get_mut(&from) else { return };
        let latest_round = state.round;
        match progress.heartbeat_acknowledged(round, latest_round, last_index, inflight_max) {
            HeartbeatFollowUp::Nothing => {}
            HeartbeatFollowUp::SnapshotChunk => self.send_snapshot_chunk(from),
            HeartbeatFollowUp::Append => self.send_append(from, true),
        }
        self.confirm_rounds();
    }

    /// Sends the new commit index to every follower.
    fn broadcast_commit(&mut self) {
        if let RoleState::Leader(state) = &mut self.role {
            state.broadcast_pending = true;
        }
    }

    /// Advances the commit index to the highest index a quorum of voters
    /// stores, if that entry has the current term (§3.6.2, Figure 3.7).
    /// Returns whether it advanced.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let RoleState::Leader(state) = &self.role else { return false };
        let mut quorum = self.membership.quorum();
        if bug!(self, CommitOnMinority) {
            quorum = (quorum - 1).max(1);
        }
        let candidate =
            state.quorum_match_index(&self.membership, self.id(), self.log.last_index(), quorum);
        if candidate <= self.log.commit() || self.log.term_at(candidate) != Some(self.term) {
            return false;
        }
        self.log.commit_to(candidate);
        self.on_leader_commit();
        true
    }

    /// Work unlocked by a new commit index on the leader.
    fn on_leader_commit(&mut self) {
        self.broadcast_commit();
        self.release_waiting_reads();
        if self.membership_index <= self.log.commit() && !self.is_voter() {
            // §4.2.2: a leader removed from the configuration steps down once
            // the change commits.
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}
