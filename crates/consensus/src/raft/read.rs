//! Linearizable reads through ReadIndex (§6.4), optionally from a lease
//! (§6.4.1). See the module documentation of `raft` for the protocol.

use super::{Raft, RoleState};
use crate::shared::read::READS_PENDING_MAX;
use crate::{Error, ReadState};

impl Raft {
    pub(super) fn start_read(&mut self, context: u64) -> Result<(), Error> {
        let commit = self.log.commit();
        let committed_current_term = self.log.term_at(commit) == Some(self.term);
        let single_voter =
            self.membership.voters.len() == 1 && self.membership.voters.contains(&self.id());
        let lease_allowed = self.options.lease_reads && self.options.check_quorum;
        let ticks = self.ticks;
        let RoleState::Leader(state) = &mut self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        if bug!(self, ReadWithoutHeartbeat) {
            self.reads.push(ReadState { context, index: commit });
            return Ok(());
        }
        if state.pending_read_count() >= READS_PENDING_MAX {
            return Err(Error::Busy);
        }
        // §6.4 step 1: until an entry of this term commits, the leader does
        // not know the full commit index.
        if !committed_current_term && !bug!(self, SkipElectionNoop) {
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
    fn join_read_round(&mut self, contexts: Vec<u64>) {
        let commit = self.log.commit();
        let RoleState::Leader(state) = &mut self.role else { return };
        if !state.round_open {
            self.broadcast_heartbeat();
        }
        let RoleState::Leader(state) = &mut self.role else { return };
        state.join_read_round(commit, contexts);
        self.confirm_rounds();
    }

    /// Starts the reads that waited for this term's first commit.
    pub(super) fn release_waiting_reads(&mut self) {
        if self.log.term_at(self.log.commit()) != Some(self.term) {
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
        let election_ticks = u64::from(self.options.election_ticks);
        let RoleState::Leader(state) = &mut self.role else { return };
        state.confirm_read_rounds(&self.membership, id, election_ticks, &mut self.reads);
    }
}
