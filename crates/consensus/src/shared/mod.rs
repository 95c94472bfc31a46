//! Parts both engines use unchanged: Raft (`crate::raft`) and Multi-Paxos
//! (`crate::paxos`) replicate one log the same way once a leader is
//! established (Paxos's phase 2 is Raft's AppendEntries with ballots for
//! terms), so the leader's per-follower bookkeeping is one piece of code.
//!
//! What differs between the engines — how a leader is chosen, what a log
//! position is tagged with and what the tag means — stays in each engine.
//!
//! - `log`: the in-memory log and its `Ready` marks, and the conflict hint
//!   that lets a leader skip a whole term or ballot when logs diverge.
//! - `progress`: per-follower flow control and the rest of the leader's state.
//! - `read`: ReadIndex rounds and the lease.
//! - `membership`: the configuration in force at an index, the progress map
//!   kept equal to it, and the start of a leadership transfer.
//! - `snapshot`: chunked snapshot transfer, both ends.
//!
//! Each engine calls these from its own `impl`, passing its own term or
//! ballot where a rule depends on it; the engines' messages stay separate.

pub(crate) mod log;
pub(crate) mod membership;
pub(crate) mod progress;
pub(crate) mod read;
pub(crate) mod snapshot;
