//! The deterministic Redis state machine every replica of a consensus group
//! applies (DESIGN.md §6).
//!
//! Each committed log entry carries a command line and a [`Context`]: the
//! leader's timestamp and a random seed. [`Store::apply`] is a pure function
//! of the store and the entry, so replicas that apply the same log hold the
//! same keys and produce the same replies. Nothing here reads a clock, draws
//! OS randomness, or iterates an unordered map where order is visible:
//!
//! - TTLs are compared with `context.now_ms`; an expired key is invisible to
//!   every command at once. Its memory is reclaimed when a write touches it or
//!   when the leader proposes its removal ([`Store::expired_keys`] →
//!   [`Store::purge_expired`] in a later entry).
//! - SPOP, SRANDMEMBER, HRANDFIELD and RANDOMKEY draw from `context.seed`.
//! - Keys, hash fields and set members are kept in *scan order* (a fixed
//!   64-bit hash, then bytes; see `keyspace`), which also makes SCAN's cursor
//!   meaningful on every replica, across failovers.
//!
//! # Parts
//!
//! - [`spec`]: the static command table ([`lookup`], [`table`]) for arity
//!   checks, COMMAND, key extraction and routing.
//! - `strings`, `keys`, `hashes`, `lists`, `sets`, `streams`: one module per
//!   type family;
//!   each command is a small function that parses its arguments (rejecting
//!   leftovers with Redis's texts) and applies them.
//! - `store`: [`Store`], the one dispatch `match`, transactions and blocking.
//! - `snapshot`: the versioned, checksummed snapshot format.
//!
//! # Blocking commands
//!
//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, XREAD and XREADGROUP go through the
//! log like any write (XREAD too: a blocked read must be ordered with the
//! writes that wake it).
//! [`Store::apply_blocking`] either serves them (data was there: same effect
//! and reply as the non-blocking form) or returns [`Blocking::WouldBlock`]
//! having changed nothing; the node then parks the client, and re-proposes the
//! command after applies that touch one of the returned keys, or replies the
//! null array when the timeout passes. When `WouldBlock` carries
//! `retry_args`, the node re-proposes those instead of the original command
//! line (XREAD pins `$` to the id it meant when the client first blocked). [`Store::apply`] on a blocking command
//! that cannot be served returns the timeout reply at once, which is what
//! Redis does inside MULTI.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use commands::{Context, Store};
//! use resp::Frame;
//!
//! let line = |words: &[&str]| -> Vec<Bytes> {
//!     words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
//! };
//! let mut store = Store::new();
//! let context = Context { now_ms: 1_000, seed: 42 };
//! assert_eq!(store.apply(&context, &line(&["SET", "k", "v", "PX", "100"])), Frame::ok());
//! assert_eq!(store.read(&context, &line(&["GET", "k"])), Frame::bulk("v"));
//! let later = Context { now_ms: 1_101, seed: 43 };
//! assert_eq!(store.read(&later, &line(&["GET", "k"])), Frame::Null);
//! ```

mod glob;
mod hashes;
mod keys;
mod keyspace;
mod lists;
mod parse;
mod random;
mod reply;
mod sets;
mod snapshot;
pub mod spec;
mod store;
mod streams;
mod strings;

pub use snapshot::SnapshotError;
pub use spec::{command_keys, lookup, table, CommandSpec};
pub use store::{Blocking, Context, Store};
