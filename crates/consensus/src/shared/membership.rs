//! Membership bookkeeping both engines share (Raft dissertation §4.1: a
//! configuration takes effect as soon as its entry is in the log, committed
//! or not; Multi-Paxos reconfigures through its log the same way): which
//! configuration is in force at an index, the leader's progress map kept
//! equal to the other members, and the start of a leadership transfer
//! (§3.10). When a change may be proposed depends on the engine's own term or
//! ballot having committed, so that check stays in the engine.

use super::log::Log;
use super::progress::{LeaderState, Progress, Transfer};
use crate::{Error, Index, Membership, NodeId, Payload};

/// The configuration in force at `index` (which must not precede the
/// snapshot) and the index it was set at: the last membership entry in the
/// log up to `index`, else the snapshot's, else the founding one (index 0).
pub(crate) fn membership_at(
    log: &Log,
    index: Index,
    snapshot_membership: Option<&Membership>,
    founding: &Membership,
) -> (Membership, Index) {
    assert!(index >= log.snapshot_index());
    for entry in log.slice(log.first_index(), index).iter().rev() {
        if let Payload::Membership(membership) = &entry.payload {
            return (membership.clone(), entry.index);
        }
    }
    match snapshot_membership {
        Some(membership) => (membership.clone(), log.snapshot_index()),
        None => (founding.clone(), 0),
    }
}

/// What a leader sends to start a leadership transfer.
pub(crate) enum TransferStart {
    /// Nothing: the target is this leader, or the same transfer is under way.
    Nothing,
    /// The target's log is caught up: tell it to campaign now.
    TimeoutNow,
    /// The target must catch up first: send it what it lacks.
    CatchUp,
}

impl LeaderState {
    /// Keeps the progress map equal to the members other than the leader
    /// `id` (new ones start probing at `next_index`), and drops a transfer
    /// whose target is no longer a voter.
    pub(crate) fn sync_progress(&mut self, membership: &Membership, id: NodeId, next_index: Index) {
        self.progress.retain(|member, _| membership.contains(*member));
        for member in membership.members().filter(|&m| m != id) {
            self.progress.entry(member).or_insert_with(|| Progress::new(next_index));
        }
        if self.transfer.as_ref().is_some_and(|t| !membership.voters.contains(&t.target)) {
            self.transfer = None;
        }
    }

    /// Starts transferring leadership from `id` to `target`, a voter of
    /// `membership`; the leader's log ends at `last_index`.
    pub(crate) fn start_transfer(
        &mut self,
        id: NodeId,
        target: NodeId,
        membership: &Membership,
        last_index: Index,
    ) -> Result<TransferStart, Error> {
        if target == id {
            return Ok(TransferStart::Nothing);
        }
        if !membership.voters.contains(&target) {
            return Err(Error::InvalidTransferTarget(target));
        }
        if let Some(transfer) = &self.transfer {
            return if transfer.target == target {
                Ok(TransferStart::Nothing)
            } else {
                Err(Error::TransferInProgress)
            };
        }
        self.transfer = Some(Transfer { target, elapsed_ticks: 0 });
        let caught_up = self.progress.get(&target).is_some_and(|p| p.match_index == last_index);
        Ok(if caught_up { TransferStart::TimeoutNow } else { TransferStart::CatchUp })
    }
}
