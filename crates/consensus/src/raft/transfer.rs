//! Leadership transfer (§3.10).

use super::{Body, Raft, RoleState};
use crate::{Error, NodeId};

impl Raft {
    pub(super) fn start_transfer(&mut self, target: NodeId) -> Result<(), Error> {
        let last_index = self.log.last_index();
        let id = self.id();
        let RoleState::Leader(state) = &mut self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        if target == id {
            return Ok(());
        }
        if !self.membership.voters.contains(&target) {
            return Err(Error::InvalidTransferTarget(target));
        }
        if let Some(transfer) = &state.transfer {
            return if transfer.target == target { Ok(()) } else { Err(Error::TransferInProgress) };
        }
        state.transfer = Some(crate::shared::progress::Transfer { target, elapsed_ticks: 0 });
        let caught_up = state.progress.get(&target).is_some_and(|p| p.match_index == last_index);
        if caught_up {
            self.send(target, Body::TimeoutNow);
        } else {
            self.send_append(target, true);
        }
        Ok(())
    }
}
