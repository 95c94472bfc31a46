//! An async (tokio) Rust client for cohort, the strongly consistent Redis-protocol store.
//!
//! # Parts
//!
//! - [`Client`] holds the server addresses, a small pool of idle connections per address
//!   (`pool`), and a [`Router`] that picks the address for each command. The default
//!   [`FailoverRouter`] uses one address until it fails, then the next: any cohort node accepts
//!   any command. A slot-aware router for cluster mode implements the same trait.
//! - Typed calls ([`Client::get`], [`Client::incr`], [`Client::hset`], …) return typed values;
//!   [`Client::command`] sends anything and returns the raw [`Frame`]; [`Client::pipeline`]
//!   sends many commands with one write.
//! - Locks ([`Client::lock`] → [`LockGuard`]), queues ([`Client::xreadgroup`],
//!   [`Client::brpop`], …) and elections ([`Client::campaign`], [`Client::observe`]).
//!
//! # Safe retries (exactly-once writes)
//!
//! Lost connections, timeouts and the server's `-CLUSTERDOWN` / `-TRYAGAIN` replies are retried
//! with exponential backoff (`Options::backoff_initial` doubling to `backoff_max`, at most
//! `attempts_max` attempts), moving to the next address after each failure. A retried write could
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
//! // A pipeline: one write, replies in order.
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
