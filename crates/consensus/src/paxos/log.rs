//! What Multi-Paxos adds to the shared log (`crate::shared::log`): the
//! acceptor's accepted slots are that one contiguous log, and an entry's
//! `term` is the ballot its value was first proposed in. These names read the
//! tags as ballots, and `rank` orders logs for value recovery.

use super::message::Ballot;
use crate::shared::log::Log;
use crate::Index;

impl Log {
    pub(super) fn last_ballot(&self) -> Ballot {
        self.last_term()
    }

    pub(super) fn ballot_at(&self, index: Index) -> Option<Ballot> {
        self.term_at(index)
    }

    /// The log's rank for value recovery: (tag of the last entry, length).
    pub(super) fn rank(&self) -> (Ballot, Index) {
        (self.last_ballot(), self.last_index())
    }
}
