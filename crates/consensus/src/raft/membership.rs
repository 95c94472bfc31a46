//! Single-server membership changes (§4.1, §4.2) with the current-term
//! commit fix; see the `raft` module documentation for why this method.

use super::{Raft, RoleState};
use crate::shared::membership::membership_at;
use crate::{Error, Index, Membership, MembershipChange, Payload, Proposal};

impl Raft {
    pub(super) fn propose_membership_change(
        &mut self,
        change: MembershipChange,
    ) -> Result<Proposal, Error> {
        let RoleState::Leader(state) = &self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        if state.transfer.is_some() {
            return Err(Error::TransferInProgress);
        }
        // One change at a time: the last one must have committed.
        if self.membership_index > self.log.commit() {
            return Err(Error::MembershipChangePending);
        }
        // The fix to §4.1: until an entry of this term commits, a change
        // proposed by an earlier leader may still be in flight unseen.
        if self.log.term_at(self.log.commit()) != Some(self.term) {
            return Err(Error::MembershipChangePending);
        }
        let next = self.membership.apply(&change)?;
        self.propose_payload(Payload::Membership(next))
    }

    /// A membership entry at `index` was appended: it takes effect now.
    pub(super) fn set_membership(&mut self, membership: Membership, index: Index) {
        self.membership = membership;
        self.membership_index = index;
        self.sync_progress();
    }

    /// Re-derives the configuration after the log changed other than by
    /// appending at the end: the last membership entry in the log, else the
    /// snapshot's, else the founding one.
    pub(super) fn recompute_membership(&mut self) {
        let last = self.log.last_index();
        let (membership, index) = self.membership_at_with_index(last);
        self.membership = membership;
        self.membership_index = index;
        self.sync_progress();
    }

    /// The configuration in force at `index` (which must not precede the
    /// snapshot).
    pub(super) fn membership_at(&self, index: Index) -> Membership {
        self.membership_at_with_index(index).0
    }

    fn membership_at_with_index(&self, index: Index) -> (Membership, Index) {
        membership_at(&self.log, index, self.snapshot_membership.as_ref(), &self.founding)
    }

    /// Keeps the leader's progress map equal to the other members.
    fn sync_progress(&mut self) {
        let id = self.id();
        let next_index = self.log.last_index() + 1;
        let RoleState::Leader(state) = &mut self.role else { return };
        state.sync_progress(&self.membership, id, next_index);
    }
}
