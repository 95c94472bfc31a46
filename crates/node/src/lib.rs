//! The sans-IO node: one process's replicas, and everything between a client
//! command and the consensus log.
//!
//! A [`Node`] owns a replica of a consensus group (an [`Engine`] and the
//! Redis state machine of the `commands` crate) and routes commands:
//!
//! - **Writes** are stamped with the leader's clock and a random seed
//!   ([`entry::Payload`]), proposed, and answered when the entry applies. A
//!   proposal whose index ends up holding another term's entry was never
//!   applied, so it is routed again.
//! - **Reads** are linearizable: the leader confirms its leadership with a
//!   quorum (ReadIndex), waits until it has applied the read index, then reads
//!   its own state.
//! - **Any node accepts any command**: a follower forwards it to the leader
//!   and relays the reply (proxy mode). With no leader known, a command waits
//!   up to `request_timeout_ms`, then fails with `-CLUSTERDOWN`.
//! - **Blocking pops** (BLPOP …) go through the log. If the list is empty
//!   when the entry applies, the leader parks the client and proposes the
//!   command again after an entry that writes one of its keys applies, oldest
//!   waiter first; the timeout is measured on the leader. XREAD and
//!   XREADGROUP block the same way (XREAD, a read, still goes through the
//!   log so that blocking is ordered with the writes that wake it); when the
//!   state machine returns `retry_args` (XREAD's `$` resolved to a concrete
//!   id), the parked client's retries propose those instead of the original
//!   command line.
//! - **Expiry**: the leader proposes the removal of keys it sees expired;
//!   they are invisible to every command from their deadline on anyway.
//!
//! The node never reads a clock, touches a socket or a file: the shell passes
//! the time into every call and executes the [`Outbox`]: disk writes (in
//! order; report each with [`Node::persisted`]), messages to peers, and client
//! replies. A `Ready`'s messages, applies and reads are held until its write
//! is durable (driver rule 4), so the shell may batch writes of many groups
//! into one `fsync` (group commit).

pub mod coordination;
pub mod entry;
mod node;
mod replica;
mod shard;
pub mod topology;
mod wire;

pub use node::{
    command_keys, Command, Node, NodeOptions, NodeStatus, Origin, Outbox, PeerMessage, RequestId,
};
pub use replica::{DiskTask, Write};
pub use topology::{ClusterView, ShardView, Topology, TopologyError};

/// Identifies a consensus group on a node. The data group of a single-group
/// cluster is [`DATA_GROUP`].
pub type GroupId = u64;

pub const DATA_GROUP: GroupId = 1;

#[cfg(test)]
mod tests;
