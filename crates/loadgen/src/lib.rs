//! A closed-loop load generator, used by `bench/run.sh` and
//! `bench/coordination.sh` to compare cohort with Redis and etcd where
//! `redis-benchmark` cannot: durable writes to etcd ([`run`]), lock cycles
//! ([`lock`]), a stream consumed as a queue end to end ([`queue`]), and write
//! availability while a node is killed ([`failover`]).
//!
//! The write load ([`run`]): each of `connections` tasks holds one TCP connection and repeats: take the
//! next key numbers from a shared counter (so every key written is unique),
//! send one request (or `pipeline` RESP requests back to back), wait for every
//! reply, record the round-trip time for each operation. A run stops at a
//! deadline (`duration`) or once `total_operations` keys have been written.
//!
//! Two protocols:
//! - [`Mode::Resp`]: `SET <prefix><number> <value>` over RESP, success is `+OK`.
//! - [`Mode::Etcd`]: `POST /v3/kv/put` with `{"key": base64, "value": base64}`
//!   over HTTP/1.1 keep-alive to etcd's JSON (grpc-gateway) endpoint, success is
//!   status 200.
//!
//! The report gives operations per second over the measured wall time and
//! latency percentiles (nearest-rank) over every operation that completed.

pub mod base64;
pub mod failover;
pub mod http;
pub mod latency;
pub mod lock;
pub mod queue;
pub mod resp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use latency::Summary;

/// Most connections one run may open.
pub const CONNECTIONS_MAX: usize = 4096;
/// Most requests one RESP connection may have in flight.
pub const PIPELINE_MAX: usize = 1024;
/// Largest value written.
pub const VALUE_SIZE_BYTES_MAX: usize = 1 << 20;
/// Longest run.
pub const DURATION_MAX: Duration = Duration::from_secs(3600);
/// Consecutive failed operations after which a connection gives up, so a
/// dead server ends the run instead of spinning on errors.
pub const CONSECUTIVE_ERRORS_MAX: u64 = 1000;

/// Which protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redis protocol `SET`.
    Resp,
    /// etcd v3 JSON gateway `PUT`.
    Etcd,
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this much wall time.
    After(Duration),
    /// Once this many keys have been written.
    Operations(u64),
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub address: SocketAddr,
    pub connections: usize,
    pub stop: Stop,
    /// RESP requests sent back to back before waiting for their replies.
    pub pipeline: usize,
    pub value_size_bytes: usize,
    /// Prepended to each key's number, so separate runs write separate keys.
    pub key_prefix: String,
}

impl Settings {
    /// Refuses settings outside the named limits.
    pub fn validate(&self) -> Result<()> {
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            bail!("connections must be between 1 and {CONNECTIONS_MAX}");
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            bail!("pipeline must be between 1 and {PIPELINE_MAX}");
        }
        if self.mode == Mode::Etcd && self.pipeline != 1 {
            bail!("etcd mode sends one request at a time per connection");
        }
        if self.value_size_bytes > VALUE_SIZE_BYTES_MAX {
            bail!("value size must be at most {VALUE_SIZE_BYTES_MAX} bytes");
        }
        match self.stop {
            Stop::After(duration) if duration.is_zero() || duration > DURATION_MAX => {
                bail!("duration must be between 1 ms and {} s", DURATION_MAX.as_secs())
            }
            Stop::Operations(0) => bail!("operations must be at least 1"),
            _ => Ok(()),
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub operations: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl Report {
    pub fn operations_per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of `name=value` pairs, easy to pick apart in a shell script.
    pub fn line(&self) -> String {
        format!(
            "ops_per_second={:.0} operations={} errors={} elapsed_seconds={:.3} p50_us={} \
             p99_us={} max_us={}",
            self.operations_per_second(),
            self.operations,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
        )
    }
}

/// What the connection tasks share.
struct Shared {
    settings: Settings,
    next_key: AtomicU64,
    deadline: Option<Instant>,
    value: Vec<u8>,
}

impl Shared {
    /// Claims up to `count` fresh key numbers, or none once the run is over.
    fn claim(&self, count: u64) -> Option<std::ops::Range<u64>> {
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        let first = self.next_key.fetch_add(count, Ordering::Relaxed);
        let end = match self.settings.stop {
            Stop::Operations(total) => first.saturating_add(count).min(total),
            Stop::After(_) => first + count,
        };
        (first < end).then_some(first..end)
    }

    fn key(&self, number: u64) -> Vec<u8> {
        format!("{}{number:012}", self.settings.key_prefix).into_bytes()
    }
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    operations: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// Runs the load and reports. Fails if no connection could be opened.
pub async fn run(settings: Settings) -> Result<Report> {
    settings.validate()?;
    let value = vec![b'v'; settings.value_size_bytes];
    let deadline = match settings.stop {
        Stop::After(duration) => Some(Instant::now() + duration),
        Stop::Operations(_) => None,
    };
    let connections = settings.connections;
    let shared = Arc::new(Shared { settings, next_key: AtomicU64::new(0), deadline, value });
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move { drive(&shared).await }));
    }
    let mut report =
        Report { operations: 0, errors: 0, elapsed: Duration::ZERO, latency: Summary::default() };
    let mut latencies_us = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        match task.await.context("connection task panicked")? {
            Ok(tally) => {
                report.operations += tally.operations;
                report.errors += tally.errors;
                latencies_us.extend(tally.latencies_us);
            }
            Err(error) => failures.push(error),
        }
    }
    report.elapsed = started.elapsed();
    if failures.len() == connections {
        return Err(failures.swap_remove(0).context("every connection failed"));
    }
    report.errors += failures.len() as u64;
    report.latency = Summary::of(&mut latencies_us);
    Ok(report)
}

/// One connection's closed loop.
async fn drive(shared: &Shared) -> Result<Tally> {
    let settings = &shared.settings;
    let mut tally = Tally::default();
    let mut consecutive_errors = 0;
    match settings.mode {
        Mode::Resp => {
            let mut connection = resp::Connection::connect(settings.address).await?;
            while let Some(numbers) = shared.claim(settings.pipeline as u64) {
                let keys: Vec<Vec<u8>> = numbers.map(|number| shared.key(number)).collect();
                let started = Instant::now();
                let outcomes = connection.set_batch(&keys, &shared.value).await?;
                let latency_us = elapsed_us(started);
                for ok in outcomes {
                    record(&mut tally, &mut consecutive_errors, ok, latency_us);
                }
                if consecutive_errors >= CONSECUTIVE_ERRORS_MAX {
                    bail!("{consecutive_errors} consecutive errors");
                }
            }
        }
        Mode::Etcd => {
            let mut connection = http::Connection::connect(settings.address).await?;
            while let Some(numbers) = shared.claim(1) {
                let key = shared.key(numbers.start);
                let started = Instant::now();
                let ok = connection.etcd_put(&key, &shared.value).await?;
                record(&mut tally, &mut consecutive_errors, ok, elapsed_us(started));
                if consecutive_errors >= CONSECUTIVE_ERRORS_MAX {
                    bail!("{consecutive_errors} consecutive errors");
                }
            }
        }
    }
    Ok(tally)
}

fn record(tally: &mut Tally, consecutive_errors: &mut u64, ok: bool, latency_us: u32) {
    if ok {
        tally.operations += 1;
        tally.latencies_us.push(latency_us);
        *consecutive_errors = 0;
    } else {
        tally.errors += 1;
        *consecutive_errors += 1;
    }
}

pub(crate) fn elapsed_us(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX)
}
