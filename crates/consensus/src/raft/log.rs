//! What the Raft engine adds to the shared log (`crate::shared::log`): the
//! election restriction, which compares logs by their last term.

use crate::shared::log::Log;
use crate::{Index, Term};

impl Log {
    /// Whether a candidate whose log ends at (`last_index`, `last_term`) is
    /// at least as up to date as this log (§3.6.1 / §5.4.1 election restriction).
    pub(super) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }
}
