//! An async (tokio) Rust client for cohort, the strongly consistent Redis-protocol store.
//!
//! # Parts
//!
//! - [`Client`] holds the server addresses, a small pool of idle connections per address
//!   (`pool`), and routes each command (see [Routing](#routing)): outside cluster mode a
//!   [`Router`] picks the address (the default [`FailoverRouter`] uses one address until it
//!   fails, then the next: any cohort node accepts any command); in cluster mode the slot map
//!   does.
//! - Typed calls ([`Client::get`], [`Client::incr`], [`Client::hset`], …) return typed values;
//!   [`Client::command`] sends anything and returns the raw [`Frame`]; [`Client::pipeline`]
//!   sends many commands with one write.
//! - Locks ([`Client::lock`] → [`LockGuard`]), queues ([`Client::xreadgroup`],
//!   [`Client::brpop`], …) and elections ([`Client::campaign`], [`Client::observe`]).
//!
//! # Routing
//!
//! A cohort cluster started with `--cluster-enabled yes` runs in Redis Cluster mode: keys map to
//! 16384 hash slots (CRC16 of the key, or of its `{hash tag}`), each node serves only the slots
//! of the shards it leads, and answers `-MOVED slot host:port` for the others. Otherwise (one
//! shard, or a sharded cluster without cluster mode) every node accepts every command and
//! forwards it to the right leader.
//!
//! - **Detection.** [`Client::connect`] sends `PING`, then `CLUSTER SLOTS`: an answer means
//!   cluster mode and loads the slot map; `ERR This instance has cluster support disabled` means
//!   not, and the client behaves exactly as without cluster support. A client made with
//!   [`Client::with_router`] does not ask; like any client, it switches to cluster mode at the
//!   first `-MOVED` it is answered. [`Client::is_cluster_mode`] tells which.
//! - **The slot map** (slot → node address) is replaced with a fresh `CLUSTER SLOTS` (from the
//!   first known node that answers one) after a `-MOVED` (in the background; the one slot the
//!   reply names is updated at once), and before the next attempt after a lost connection, a
//!   timeout or `-CLUSTERDOWN`, asking the failed node last. Nodes named by the map or by a
//!   redirection join the client's nodes, each with its own connection pool, so one address is
//!   enough to reach the whole cluster.
//! - **Which node.** A command goes to the node serving the slot of its first key (`SEQ` is
//!   routed by the command it wraps, a lock or election by its name, `XREADGROUP` by its first
//!   stream); the server answers `-CROSSSLOT` for keys in different slots (use hash tags). Keyless
//!   commands (`PING`, `SESSION.OPEN`, `DBSIZE`…) and slots missing from the map go to any node,
//!   the same one until it fails.
//! - **Redirections.** `-MOVED` is followed at once; `-ASK slot address` sends `ASKING` and the
//!   command to that address, for that one attempt; `-TRYAGAIN` is retried after the backoff
//!   pause. A redirection means the command did not run, so it is followed for every command
//!   (sessions or not, lock waits included) without counting as a failed attempt, up to 16
//!   times per call; past that the last redirection is the reply.
//! - **Pipelines** are split by node: each node gets one batch with its commands in pipeline
//!   order, the batches are sent concurrently, and the replies are put back in pipeline order.
//!   A command answered with a redirection is re-sent, alone or with others, where it points. A
//!   pipeline holding a command that depends on its connection (`MULTI`…`EXEC`, `WATCH`,
//!   `READONLY`…) is sent whole to the node of its first key. See [`Pipeline`].
//!
//! Sessions work unchanged: on a sharded cluster `SESSION.OPEN` (any node) opens the session in
//! every shard, so a write's `SEQ` can go to whichever node serves its key, and a retry that
//! lands on a new leader is answered from the session there.
//!
//! # Safe retries (exactly-once writes)
//!
//! Lost connections, timeouts and the server's `-CLUSTERDOWN` / `-TRYAGAIN` replies are retried
//! with exponential backoff (`Options::backoff_initial` doubling to `backoff_max`, at most
//! `attempts_max` attempts), moving to the next address after each failure (in cluster mode:
//! reloading the slot map). A retried write could
//! run twice, so by default the client opens a session (`SESSION.OPEN`) lazily and sends every
//! write as `SEQ session n command…` (Raft dissertation §6.3). Every attempt of one write carries
//! the same `n`; the server runs the first to arrive and answers the others with the remembered
//! reply, so the write is applied exactly once. Reads are not wrapped. The server remembers only
//! the last `n` of a session, so a session carries one write at a time; concurrent writes take
//! separate sessions from a small idle set.
//!
//! When the server answers `-SESSIONEXPIRED` (the session idled out, or was evicted), the client
//! opens a new session. If no earlier attempt of the write could have reached the server, the
//! write is simply re-sent in the new session. Otherwise the server no longer knows whether the
//! earlier attempt ran, so the call fails with [`Error::SessionExpired`]: exactly-once is not
//! promised for that write, and the caller decides.
//!
//! Blocking pops (`BLPOP`, `BLMOVE`, `XREADGROUP`…) are sequenced too: a retry that finds the pop
//! already served gets the element it popped. Commands the server will not sequence — lock and
//! election waits (`LOCK.ACQUIRE`, `ELECT.CAMPAIGN`, `ELECT.OBSERVE`, whose replies come from a
//! queue, not from the entry), sessions, transactions — are sent as they are and retried only when
//! they surely did not run (the connection could not be opened, or `-TRYAGAIN`). [`Client::raw`]
//! gives a client that treats every write that way (`Options::exactly_once = false` does too).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # async fn example() -> client::Result<()> {
//! let client = client::Client::connect(&["127.0.0.1:7001", "127.0.0.1:7002"]).await?;
//!
//! // Typed commands; the INCR is applied once even if the connection drops mid-call.
//! client.set("greeting", "hello").await?;
//! assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! let visits = client.incr("visits").await?;
//!
//! // A pipeline: one write (per node in cluster mode), replies in order.
//! let replies = client.pipeline().cmd(&[b"INCR", b"a"]).cmd(&[b"GET", b"a"]).query().await?;
//!
//! // A lock with a fencing token: the fenced write runs only while the lease is held.
//! let lock = client.lock("jobs", Duration::from_secs(10));
//! let guard = lock.wait(Duration::from_secs(2)).acquire().await?;
//! guard.fenced(&[b"SET", b"owner", b"me"]).await?;
//! assert!(!guard.lost());
//! guard.release().await?;
//!
//! // A stream consumer group as a work queue.
//! client.xgroup_create("queue", "workers", "$", true).await?;
//! client.xadd("queue", "*", &[("job", "resize")]).await?;
//! for entry in client.xreadgroup("workers", "w1", "queue", ">", 10, None).await? {
//!     client.xack("queue", "workers", &[&entry.id]).await?;
//! }
//!
//! // Elections: campaign, then watch who leads.
//! let term = client.campaign("scheduler", "node-a", Duration::from_secs(5), None).await?;
//! let leader = client.observe("scheduler", None, Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```

mod client;
mod commands;
mod connection;
mod election;
mod error;
mod kind;
mod lock;
mod pipeline;
mod pool;
mod queue;
mod router;
mod slots;
mod value;

pub use client::{Client, Options, PIPELINE_SESSIONS_MAX};
pub use commands::End;
pub use election::Leader;
pub use error::{Error, Result};
pub use lock::{LockBuilder, LockGuard};
pub use pipeline::Pipeline;
pub use queue::{AutoClaim, StreamEntry};
pub use resp::Frame;
pub use router::{FailoverRouter, Router};
