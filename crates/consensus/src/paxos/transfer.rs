//! Leadership transfer (§3.10).

use super::{Body, Paxos, RoleState};
use crate::shared::membership::TransferStart;
use crate::{Error, NodeId};

impl Paxos {
    pub(super) fn start_transfer(&mut self, target: NodeId) -> Result<(), Error> {
        let last_index = self.log.last_index();
        let id = self.id();
        let RoleState::Leader(state) = &mut self.role else {
            return Err(Error::NotLeader { leader: self.leader });
        };
        match state.start_transfer(id, target, &self.membership, last_index)? {
            TransferStart::Nothing => {}
            TransferStart::TimeoutNow => self.send(target, Body::TimeoutNow),
            TransferStart::CatchUp => self.send_accept(target, true),
        }
        Ok(())
    }
}
