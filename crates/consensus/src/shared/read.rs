//! The leader's side of ReadIndex batching (Raft dissertation §6.4, with the
//! lease of §6.4.1), the same in both engines: reads join the heartbeat round
//! whose messages have not left yet, and a round acknowledged by a quorum of
//! voters releases its reads at the commit index recorded when the latest of
//! them arrived. When to start a round, and whether the leader may serve reads
//! at all yet, depends on the engine (its term or ballot), so that stays there.

use super::progress::{LeaderState, ReadRound};
use crate::{Index, Membership, NodeId, ReadState};

/// Reads a leader holds before confirming them; more are refused with
/// `Error::Busy` rather than queued without bound.
pub(crate) const READS_PENDING_MAX: usize = 65_536;

impl LeaderState {
    /// Adds reads that need the commit index `commit` to the latest round,
    /// which must be open (its heartbeats still in the outbox).
    pub(crate) fn join_read_round(&mut self, commit: Index, mut contexts: Vec<u64>) {
        let round = self.round;
        match self.reads.back_mut() {
            Some(pending) if pending.round == round => {
                // A later read needs the commit index as of its arrival; a
                // higher index is still correct for the earlier ones.
                pending.index = commit;
                pending.contexts.append(&mut contexts);
            }
            _ => self.reads.push_back(ReadRound { round, index: commit, contexts }),
        }
    }

    /// Completes the reads of every round a quorum of `membership`'s voters
    /// acknowledged (the leader `id` acknowledges its own rounds), moving them
    /// to `ready`, and extends the lease.
    pub(crate) fn confirm_read_rounds(
        &mut self,
        membership: &Membership,
        id: NodeId,
        election_ticks: u64,
        ready: &mut Vec<ReadState>,
    ) {
        let mut acked: Vec<u64> = membership
            .voters
            .iter()
            .map(|&voter| {
                if voter == id {
                    self.round
                } else {
                    self.progress.get(&voter).map_or(0, |p| p.acked_round)
                }
            })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked[membership.quorum() - 1];
        if confirmed <= self.confirmed_round {
            return;
        }
        self.confirmed_round = confirmed;
        while let Some(&(round, tick)) = self.round_ticks.front() {
            if round > confirmed {
                break;
            }
            self.round_ticks.pop_front();
            if round == confirmed {
                // Voters that acknowledged will not elect anyone else before
                // an election timeout on their clocks; one tick of margin.
                self.lease_until_tick = self.lease_until_tick.max(tick + election_ticks - 1);
            }
        }
        while self.reads.front().is_some_and(|r| r.round <= confirmed) {
            let round = self.reads.pop_front().expect("checked");
            let index = round.index;
            ready.extend(round.contexts.into_iter().map(|context| ReadState { context, index }));
        }
    }
}
