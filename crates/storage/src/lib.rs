//! Durable storage for every consensus group on a node: one shared
//! write-ahead log with group commit, plus one file per snapshot.
//!
//! A node hosts many groups (shards). Each group's engine hands its driver a
//! [`consensus::Ready`]; the driver [`Wal::append`]s the durable parts of the
//! Readys of many groups, then calls [`Wal::sync`] once: one fsync makes all
//! of them durable (group commit), after which their messages may be sent
//! (driver rule 1). On restart, [`Wal::open`] replays the log and returns
//! every group's [`consensus::Durable`] state.
//!
//! # Parts
//!
//! - [`fs`]: the disk abstraction ([`Fs`], [`File`]) with two
//!   implementations: [`SimFs`], a deterministic in-memory disk that loses
//!   unsynced writes and tears tails on [`SimFs::crash`], and [`OsFs`] (the
//!   only module that touches the operating system).
//! - `format`: byte layouts of segment headers, records and snapshot files,
//!   framed with lengths and CRC-32C ([`crc32c`], implemented here).
//! - [`Wal`]: buffering, group commit, fail-stop poisoning, segment rotation
//!   and compaction; recovery with torn-tail truncation.
//!
//! The on-disk format is drawn byte by byte in `docs/STORAGE.md`.
//!
//! # Example
//!
//! ```
//! use consensus::{Entry, HardState, Payload};
//! use storage::{Persist, SimFs, Wal, WalOptions};
//!
//! let fs = SimFs::new();
//! let (mut wal, recovered) = Wal::open(fs.clone(), WalOptions::default()).unwrap();
//! assert!(recovered.groups.is_empty());
//! let entries = [Entry { index: 1, term: 1, payload: Payload::Noop }];
//! let hard_state = HardState { term: 1, vote: 1, commit: 0 };
//! wal.append(7, Persist { hard_state: Some(&hard_state), snapshot: None, entries: &entries })
//!     .unwrap();
//! wal.sync().unwrap(); // one fsync for every group appended since the last one
//!
//! let (_wal, recovered) = Wal::open(fs.crash(storage::Tear::None), WalOptions::default()).unwrap();
//! assert_eq!(recovered.groups[&7].entries, entries);
//! ```

pub mod crc32c;
mod error;
mod format;
pub mod fs;
mod os;
mod recovery;
mod sim;
mod wal;

pub use error::StorageError;
pub use fs::{File, Fs};
pub use os::{OsFile, OsFs};
pub use sim::{SimFile, SimFs, Tear};
pub use wal::{
    segment_name, snapshot_name, CompactReport, Fsync, Persist, Recovered, TornTail, Wal,
    WalOptions,
};

/// Identifies a consensus group (a shard, or the meta group) on a node.
pub type GroupId = u64;
