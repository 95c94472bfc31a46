//! Lock cycles: `contenders` tasks, each with its own connection, repeat
//! "acquire the one lock, release it" until a deadline. A cycle's latency runs
//! from sending the first acquire attempt to the release's reply, so under
//! contention it includes the time spent waiting for the other holders.
//!
//! Three ways to take a lock:
//! - [`LockBackend::Cohort`]: `LOCK.ACQUIRE name ttl_ms WAIT wait_ms` (the
//!   server queues waiters and answers with a fencing token, or nil when the
//!   wait runs out, after which the contender asks again), then
//!   `LOCK.RELEASE name token`.
//! - [`LockBackend::Redis`]: `SET name token NX PX ttl_ms`; a contender that
//!   gets nil sleeps `retry_sleep` and tries again, since Redis has no queue of
//!   waiters. Release is a check-and-delete in one Lua `EVAL`
//!   ([`REDIS_RELEASE_SCRIPT`]), the idiom Redis documents for `SET NX` locks.
//! - [`LockBackend::Etcd`]: etcd's v3lock service through the JSON gateway.
//!   Each contender grants one lease (`/v3/lease/grant`, TTL covering the run,
//!   as a long-lived etcd client session does), then per cycle
//!   `/v3/lock/lock {name, lease}` (blocks until granted, answers the owner
//!   key) and `/v3/lock/unlock {key}`. Leases are revoked at the end.
//!
//! Mutual exclusion is checked on the client side: a holder marks a shared
//! slot after its acquire succeeds and clears it before it sends the release;
//! finding the slot already marked is an overlap. With a TTL far longer than a
//! cycle, any overlap is a broken lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::time::timeout_at;

use crate::base64;
use crate::http::{self, json_string_field};
use crate::latency::Summary;
use crate::resp::{self, Value};
use crate::{elapsed_us, CONNECTIONS_MAX, DURATION_MAX};

/// Check-and-delete release for `SET NX` locks: deletes the key only if it
/// still holds this holder's token.
pub const REDIS_RELEASE_SCRIPT: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/// Longest a single request may take before the contender reports an error
/// (a lock wait is bounded separately by the run's deadline).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed requests in a row after which a contender gives up.
pub const CONSECUTIVE_ERRORS_MAX: u64 = 100;
/// Longest lease or lock TTL.
pub const TTL_MS_MAX: u64 = 3_600_000;

/// How the lock is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockBackend {
    Cohort,
    Redis,
    Etcd,
}

/// What one lock run does.
#[derive(Clone, Debug)]
pub struct LockSettings {
    pub backend: LockBackend,
    pub address: SocketAddr,
    pub contenders: usize,
    pub duration: Duration,
    /// The lock's lease (cohort, Redis). etcd's lease lasts the whole run.
    pub ttl_ms: u64,
    /// cohort's `WAIT`: how long the server queues an acquire.
    pub wait_ms: u64,
    /// Redis: pause after a refused `SET NX` before the next attempt.
    pub retry_sleep: Duration,
    /// How long a holder keeps the lock before releasing it (zero: it only
    /// yields to the other tasks once, so the overlap check has a window).
    pub hold: Duration,
    pub lock_name: String,
}

impl LockSettings {
    pub fn validate(&self) -> Result<()> {
        if !(1..=CONNECTIONS_MAX).contains(&self.contenders) {
            bail!("contenders must be between 1 and {CONNECTIONS_MAX}");
        }
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            bail!("duration must be between 1 ms and {} s", DURATION_MAX.as_secs());
        }
        if !(1..=TTL_MS_MAX).contains(&self.ttl_ms) || !(1..=TTL_MS_MAX).contains(&self.wait_ms) {
            bail!("ttl and wait must be between 1 and {TTL_MS_MAX} ms");
        }
        if self.retry_sleep > Duration::from_secs(1) || self.hold > Duration::from_secs(1) {
            bail!("retry sleep and hold must be at most 1 s");
        }
        if self.lock_name.is_empty() {
            bail!("the lock needs a name");
        }
        Ok(())
    }
}

/// What one lock run measured.
#[derive(Clone, Debug)]
pub struct LockReport {
    pub cycles: u64,
    pub errors: u64,
    /// Times a contender acquired the lock while the client-side slot said
    /// another contender held it.
    pub overlaps: u64,
    /// Refused attempts (Redis `SET NX` nil, cohort `WAIT` ran out).
    pub retries: u64,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl LockReport {
    pub fn cycles_per_second(&self) -> f64 {
        self.cycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of `name=value` pairs.
    pub fn line(&self) -> String {
        format!(
            "cycles_per_second={:.1} cycles={} errors={} overlaps={} retries={} \
             elapsed_seconds={:.3} p50_us={} p99_us={} max_us={}",
            self.cycles_per_second(),
            self.cycles,
            self.errors,
            self.overlaps,
            self.retries,
            self.elapsed.as_secs_f64(),
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
        )
    }
}

/// What the contenders share.
struct Shared {
    settings: LockSettings,
    deadline: tokio::time::Instant,
    /// 0 when nobody holds the lock, else the holder's number plus one.
    holder: AtomicU64,
    overlaps: AtomicU64,
}

/// One contender's tally.
#[derive(Default)]
struct Tally {
    cycles: u64,
    errors: u64,
    retries: u64,
    latencies_us: Vec<u32>,
}

/// Runs the contenders and reports. Fails if every contender failed.
pub async fn run(settings: LockSettings) -> Result<LockReport> {
    settings.validate()?;
    let contenders = settings.contenders;
    let deadline = tokio::time::Instant::now() + settings.duration;
    let shared = Arc::new(Shared {
        settings,
        deadline,
        holder: AtomicU64::new(0),
        overlaps: AtomicU64::new(0),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..contenders)
        .map(|number| {
            let shared = shared.clone();
            tokio::spawn(async move { contend(&shared, number as u64).await })
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut report = LockReport {
        cycles: 0,
        errors: 0,
        overlaps: 0,
        retries: 0,
        elapsed: Duration::ZERO,
        latency: Summary::default(),
    };
    let mut failures = Vec::new();
    for task in tasks {
        match task.await.context("contender panicked")? {
            Ok(tally) => {
                report.cycles += tally.cycles;
                report.errors += tally.errors;
                report.retries += tally.retries;
                latencies_us.extend(tally.latencies_us);
            }
            Err(error) => failures.push(error),
        }
    }
    report.elapsed = started.elapsed();
    if failures.len() == contenders {
        return Err(failures.swap_remove(0).context("every contender failed"));
    }
    report.errors += failures.len() as u64;
    report.overlaps = shared.overlaps.load(Ordering::SeqCst);
    report.latency = Summary::of(&mut latencies_us);
    Ok(report)
}

/// A connection able to take and give back the lock.
enum Client {
    Resp(resp::Connection),
    Etcd { connection: http::Connection, lease: String },
}

/// What an acquire attempt came to.
enum Attempt {
    /// Acquired; the value needed to release it.
    Held(Vec<u8>),
    /// Refused or timed out on the server; try again.
    Again,
}

async fn contend(shared: &Shared, number: u64) -> Result<Tally> {
    let settings = &shared.settings;
    let mut client = match settings.backend {
        LockBackend::Cohort | LockBackend::Redis => {
            Client::Resp(resp::Connection::connect(settings.address).await?)
        }
        LockBackend::Etcd => {
            let mut connection = http::Connection::connect(settings.address).await?;
            let ttl_seconds = settings.duration.as_secs() + 60;
            let lease = etcd_grant(&mut connection, ttl_seconds).await?;
            Client::Etcd { connection, lease }
        }
    };
    let mut tally = Tally::default();
    let outcome = cycles(shared, number, &mut client, &mut tally).await;
    if let Client::Etcd { lease, .. } = &client {
        // A contender cut off while waiting leaves its waiter key behind; revoking
        // the lease deletes it (on a fresh connection: the old one may be mid-request).
        let mut connection = http::Connection::connect(settings.address).await?;
        let body = format!("{{\"ID\":\"{lease}\"}}");
        connection.post_json("/v3/lease/revoke", &body).await?;
    }
    outcome.map(|()| tally)
}

async fn cycles(
    shared: &Shared,
    number: u64,
    client: &mut Client,
    tally: &mut Tally,
) -> Result<()> {
    let settings = &shared.settings;
    let mut consecutive_errors = 0;
    let mut attempt_number = 0u64;
    while tokio::time::Instant::now() < shared.deadline {
        let started = Instant::now();
        // Acquire, retrying refusals, until the deadline.
        let held = loop {
            attempt_number += 1;
            let token = format!("{number}:{attempt_number}");
            let attempt = timeout_at(shared.deadline, acquire(settings, client, &token)).await;
            match attempt {
                Err(_elapsed) => return Ok(()),
                Ok(Ok(Attempt::Held(release))) => break release,
                Ok(Ok(Attempt::Again)) => {
                    tally.retries += 1;
                    if settings.backend == LockBackend::Redis {
                        tokio::time::sleep(settings.retry_sleep).await;
                    }
                }
                Ok(Err(error)) => {
                    tally.errors += 1;
                    consecutive_errors += 1;
                    if consecutive_errors >= CONSECUTIVE_ERRORS_MAX {
                        return Err(error.context(format!("{consecutive_errors} errors in a row")));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            if tokio::time::Instant::now() >= shared.deadline {
                return Ok(());
            }
        };
        if shared
            .holder
            .compare_exchange(0, number + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            shared.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if settings.hold.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(settings.hold).await;
        }
        // Cleared before the release is sent: nobody can be granted the lock
        // until the server has seen the release.
        let _ = shared.holder.compare_exchange(number + 1, 0, Ordering::SeqCst, Ordering::SeqCst);
        let released = tokio::time::timeout(REQUEST_TIMEOUT, release(settings, client, &held))
            .await
            .context("release timed out")
            .and_then(|result| result);
        match released {
            Ok(true) => {
                tally.cycles += 1;
                tally.latencies_us.push(elapsed_us(started));
                consecutive_errors = 0;
            }
            Ok(false) => {
                tally.errors += 1;
                consecutive_errors += 1;
            }
            Err(error) => return Err(error),
        }
        if consecutive_errors >= CONSECUTIVE_ERRORS_MAX {
            bail!("{consecutive_errors} failed releases in a row");
        }
    }
    Ok(())
}

async fn acquire(settings: &LockSettings, client: &mut Client, token: &str) -> Result<Attempt> {
    let name = settings.lock_name.as_bytes();
    let ttl = settings.ttl_ms.to_string();
    match client {
        Client::Resp(connection) if settings.backend == LockBackend::Cohort => {
            let wait = settings.wait_ms.to_string();
            let words: [&[u8]; 5] =
                [b"LOCK.ACQUIRE", name, ttl.as_bytes(), b"WAIT", wait.as_bytes()];
            match connection.call(&words).await? {
                Value::Integer(token) => Ok(Attempt::Held(token.to_string().into_bytes())),
                Value::Nil => Ok(Attempt::Again),
                other => bail!("LOCK.ACQUIRE answered {}", other.describe()),
            }
        }
        Client::Resp(connection) => {
            let words: [&[u8]; 6] = [b"SET", name, token.as_bytes(), b"NX", b"PX", ttl.as_bytes()];
            match connection.call(&words).await? {
                Value::Simple(text) if text == b"OK" => {
                    Ok(Attempt::Held(token.as_bytes().to_vec()))
                }
                Value::Nil => Ok(Attempt::Again),
                other => bail!("SET NX answered {}", other.describe()),
            }
        }
        Client::Etcd { connection, lease } => {
            let body = format!("{{\"name\":\"{}\",\"lease\":\"{lease}\"}}", base64::encode(name));
            let (status, body) = connection.post_json("/v3/lock/lock", &body).await?;
            if status != 200 {
                bail!("/v3/lock/lock answered {status}: {}", String::from_utf8_lossy(&body));
            }
            let key = json_string_field(&body, "key").context("/v3/lock/lock without a key")?;
            Ok(Attempt::Held(key.into_bytes()))
        }
    }
}

/// Gives the lock back; `false` when the server says this holder did not hold it.
async fn release(settings: &LockSettings, client: &mut Client, held: &[u8]) -> Result<bool> {
    let name = settings.lock_name.as_bytes();
    match client {
        Client::Resp(connection) if settings.backend == LockBackend::Cohort => {
            match connection.call(&[b"LOCK.RELEASE", name, held]).await? {
                Value::Integer(released) => Ok(released == 1),
                other => bail!("LOCK.RELEASE answered {}", other.describe()),
            }
        }
        Client::Resp(connection) => {
            let script = REDIS_RELEASE_SCRIPT.as_bytes();
            match connection.call(&[b"EVAL", script, b"1", name, held]).await? {
                Value::Integer(released) => Ok(released == 1),
                other => bail!("EVAL release answered {}", other.describe()),
            }
        }
        Client::Etcd { connection, .. } => {
            let key = std::str::from_utf8(held).context("etcd owner key")?;
            let (status, body) =
                connection.post_json("/v3/lock/unlock", &format!("{{\"key\":\"{key}\"}}")).await?;
            if status != 200 {
                bail!("/v3/lock/unlock answered {status}: {}", String::from_utf8_lossy(&body));
            }
            Ok(true)
        }
    }
}

/// Grants a lease and returns its ID (a decimal string, as the gateway writes int64s).
async fn etcd_grant(connection: &mut http::Connection, ttl_seconds: u64) -> Result<String> {
    let (status, body) =
        connection.post_json("/v3/lease/grant", &format!("{{\"TTL\":{ttl_seconds}}}")).await?;
    if status != 200 {
        bail!("/v3/lease/grant answered {status}: {}", String::from_utf8_lossy(&body));
    }
    json_string_field(&body, "ID").context("/v3/lease/grant without an ID")
}
