//! Parts both engines use unchanged: Raft (`crate::raft`) and Multi-Paxos
//! (`crate::paxos`) replicate one log the same way once a leader is
//! established (Paxos's phase 2 is Raft's AppendEntries with ballots for
//! terms), so the leader's per-follower bookkeeping is one piece of code.
//!
//! What differs between the engines — how a leader is chosen, what a log
//! position is tagged with and what the tag means — stays in each engine.

pub(crate) mod log;
pub(crate) mod membership;
pub(crate) mod progress;
pub(crate) mod read;
pub(crate) mod snapshot;
