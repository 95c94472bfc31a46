//! Linearizable reads with ReadIndex semantics (Raft dissertation §6.4,
//! which PML §4.3's master leases refine), optionally from a lease. The
//! quorum round confirms that no higher ballot has been promised by a
//! quorum since the read arrived.

use super::{Paxos, RoleState};
use crate::shared::progress::ReadRound;
use crate::{Error, ReadState};

/// Reads a leader holds before confirming them; more are refused with
/// `Error::Busy` rather than queued without bound.
pub(super) const READS_PENDING_MAX: usize = 65_536;

impl Paxos {
    pub(super) fn start_read(&mut self, context: u64) -> Result<(), Error> {
        let commit = self.log.commit();
        let committed_own_ballot = self.log.ballot_at(commit) == Some(self.ballot);
        let single_voter =
            self.membership.voters.len() == 1 && self.membership.voters.contains(&self.id());
        let lease_allowed = self.options.lease_reads && self.options.check_quorum;
        let ticks = self.ticks;
        let RoleState::Leader(state) = &mut self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        if state.pending_read_count() >= READS_PENDING_MAX {
            return Err(Error::Busy);
        }
        // §6.4 step 1: until an entry of this term commits, the leader does
        // not know the full commit index.
        if !committed_own_ballot {
            state.reads_waiting.push(context);
            return Ok(());
        }
        let lease_valid =
            lease_allowed && state.transfer.is_none() && ticks < state.lease_until_tick;
        if single_voter || lease_valid {
            self.reads.push(ReadState { context, index: commit });
            return Ok(());
        }
        self.join_read_round(vec![context]);
        Ok(())
    }

    /// Adds reads to the round whose heartbeats have not left yet, or starts
    /// a new round.
    fn join_read_round(&mut self, mut contexts: Vec<u64>) {
        let commit = self.log.commit();
        let RoleState::Leader(state) = &mut self.role else { return };
        if !state.round_open {
            self.broadcast_heartbeat();
        }
        let RoleState::Leader(state) = &mut self.role else { return };
        let round = state.round;
        match state.reads.back_mut() {
            Some(pending) if pending.round == round => {
                // A later read needs the commit index as of its arrival; a
                // higher index is still correct for the earlier ones.
                pending.index = commit;
                pending.contexts.append(&mut contexts);
            }
            _ => state.reads.push_back(ReadRound { round, index: commit, contexts }),
        }
        self.confirm_rounds();
    }

    /// Starts the reads that waited for this term's first commit.
    pub(super) fn release_waiting_reads(&mut self) {
        if self.log.ballot_at(self.log.commit()) != Some(self.ballot) {
            return;
        }
        let single_voter =
            self.membership.voters.len() == 1 && self.membership.voters.contains(&self.id());
        let commit = self.log.commit();
        let RoleState::Leader(state) = &mut self.role else { return };
        if state.reads_waiting.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut state.reads_waiting);
        if single_voter {
            self.reads
                .extend(waiting.into_iter().map(|context| ReadState { context, index: commit }));
        } else {
            self.join_read_round(waiting);
        }
    }

    /// Completes the reads of every round a quorum of voters acknowledged,
    /// and extends the lease.
    pub(super) fn confirm_rounds(&mut self) {
        let id = self.id();
        let quorum = self.membership.quorum();
        let election_ticks = u64::from(self.options.election_ticks);
        let RoleState::Leader(state) = &mut self.role else { return };
        let mut acked: Vec<u64> = self
            .membership
            .voters
            .iter()
            .map(|&voter| {
                if voter == id {
                    state.round
                } else {
                    state.progress.get(&voter).map_or(0, |p| p.acked_round)
                }
            })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked[quorum - 1];
        if confirmed <= state.confirmed_round {
            return;
        }
        state.confirmed_round = confirmed;
        while let Some(&(round, tick)) = state.round_ticks.front() {
            if round > confirmed {
                break;
            }
            state.round_ticks.pop_front();
            if round == confirmed {
                // Voters that acknowledged will not elect anyone else before
                // an election timeout on their clocks; one tick of margin.
                state.lease_until_tick = state.lease_until_tick.max(tick + election_ticks - 1);
            }
        }
        while state.reads.front().is_some_and(|r| r.round <= confirmed) {
            let round = state.reads.pop_front().expect("checked");
            let index = round.index;
            self.reads
                .extend(round.contexts.into_iter().map(|context| ReadState { context, index }));
        }
    }
}
