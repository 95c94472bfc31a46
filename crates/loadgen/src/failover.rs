//! Write availability across a failure: `writers` tasks write continuously
//! (`SET failover:<writer>:<n> v`, one at a time) to the nodes of a cluster,
//! each request bounded by `request_timeout`. A writer that gets an error
//! reply, a timeout or a broken connection moves to the next node in the list
//! and reconnects, so the run keeps writing through whichever nodes live.
//!
//! With `kill`, the run itself sends SIGKILL (through `kill(1)`) to a given
//! process at a given time, so the kill and the writes share one clock, and
//! the report gives the unavailability it caused: the longest gap between
//! successful writes that begins between the last success before the kill and
//! `request_timeout` after it. (Writes already in flight complete in the first
//! milliseconds after the signal, so "the first success after the kill" would
//! often be one of those, not the recovery.) A gap with no success after it
//! runs to the end of the run and is reported as not recovered.
//!
//! It also gives the longest stretch of time with no successful write at all,
//! counted from the start of the run, between successes, and up to the end of
//! the run, so stalls that have nothing to do with the kill show up too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::resp::{self, set_succeeded};
use crate::{CONNECTIONS_MAX, DURATION_MAX};

/// Most nodes one run may write to.
pub const ADDRESSES_MAX: usize = 64;

/// What one failover run does.
#[derive(Clone, Debug)]
pub struct FailoverSettings {
    pub addresses: Vec<SocketAddr>,
    pub writers: usize,
    pub duration: Duration,
    pub request_timeout: Duration,
    /// Send SIGKILL to this process id this long into the run.
    pub kill: Option<(u32, Duration)>,
}

impl FailoverSettings {
    pub fn validate(&self) -> Result<()> {
        if !(1..=ADDRESSES_MAX).contains(&self.addresses.len()) {
            bail!("give between 1 and {ADDRESSES_MAX} addresses");
        }
        if !(1..=CONNECTIONS_MAX).contains(&self.writers) {
            bail!("writers must be between 1 and {CONNECTIONS_MAX}");
        }
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            bail!("duration must be between 1 ms and {} s", DURATION_MAX.as_secs());
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(60) {
            bail!("request timeout must be between 1 ms and 60 s");
        }
        if let Some((pid, after)) = self.kill {
            if pid <= 1 || after >= self.duration {
                bail!("the kill needs a process id above 1 and a time within the run");
            }
        }
        Ok(())
    }
}

/// What one failover run measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverReport {
    pub writes: u64,
    pub failures: u64,
    pub elapsed: Duration,
    /// The longest time without a successful write.
    pub gap: Duration,
    /// When that gap began and ended, from the start of the run.
    pub gap_start: Duration,
    pub gap_end: Duration,
    /// The kill, when one was asked for.
    pub kill: Option<KillReport>,
}

/// Writes around the kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillReport {
    /// When SIGKILL was sent, from the start of the run.
    pub at: Duration,
    /// The gap the kill caused: the success it began at (zero if none came
    /// before) and the one it ended at (`None`: the run ended first).
    pub gap_start: Duration,
    pub gap_end: Option<Duration>,
    /// Its length (to the end of the run if it never ended).
    pub unavailable: Duration,
}

impl FailoverReport {
    /// One line of `name=value` pairs.
    pub fn line(&self) -> String {
        let mut line = format!(
            "writes={} failures={} elapsed_seconds={:.3} max_gap_ms={} gap_start_ms={} \
             gap_end_ms={}",
            self.writes,
            self.failures,
            self.elapsed.as_secs_f64(),
            self.gap.as_millis(),
            self.gap_start.as_millis(),
            self.gap_end.as_millis(),
        );
        if let Some(kill) = &self.kill {
            let gap_end =
                kill.gap_end.map_or("none".to_string(), |time| time.as_millis().to_string());
            line += &format!(
                " kill_ms={} kill_gap_start_ms={} kill_gap_end_ms={} unavailable_ms={} \
                 recovered={}",
                kill.at.as_millis(),
                kill.gap_start.as_millis(),
                gap_end,
                kill.unavailable.as_millis(),
                kill.gap_end.is_some(),
            );
        }
        line
    }
}

/// One writer's record: when each success completed (from the start), and failures.
#[derive(Default)]
struct Tally {
    successes: Vec<Duration>,
    failures: u64,
}

/// Writes until the deadline and reports the longest gap.
pub async fn run(settings: FailoverSettings) -> Result<FailoverReport> {
    settings.validate()?;
    let settings = Arc::new(settings);
    let started = Instant::now();
    let tasks: Vec<_> = (0..settings.writers)
        .map(|writer| {
            let settings = settings.clone();
            tokio::spawn(async move { write(&settings, writer, started).await })
        })
        .collect();
    let killer = settings.kill.map(|(pid, after)| {
        tokio::spawn(async move {
            tokio::time::sleep_until((started + after).into()).await;
            let at = started.elapsed();
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .context("running kill")?;
            if !status.success() {
                bail!("kill -KILL {pid} failed: {status}");
            }
            Ok(at)
        })
    });
    let mut successes = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let tally = task.await.context("writer panicked")?;
        successes.extend(tally.successes);
        failures += tally.failures;
    }
    let elapsed = started.elapsed();
    let end = elapsed.max(settings.duration);
    let (gap, gap_start, gap_end) = longest_gap(&mut successes, end);
    let kill = match killer {
        None => None,
        Some(task) => {
            let at = task.await.context("kill task panicked")??;
            Some(around(&successes, at, settings.request_timeout, end))
        }
    };
    Ok(FailoverReport {
        writes: successes.len() as u64,
        failures,
        elapsed,
        gap,
        gap_start,
        gap_end,
        kill,
    })
}

async fn write(settings: &FailoverSettings, writer: usize, started: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut node = writer % settings.addresses.len();
    let mut connection: Option<resp::Connection> = None;
    let value = [b'v'; 16];
    let mut number = 0u64;
    while started.elapsed() < settings.duration {
        let address = settings.addresses[node];
        let timeout = settings.request_timeout;
        let key = format!("failover:{writer}:{number}");
        number += 1;
        let attempt = async {
            if connection.is_none() {
                connection = Some(resp::Connection::connect(address).await?);
            }
            let open = connection.as_mut().expect("connected above");
            let reply = open.call(&[b"SET", key.as_bytes(), &value]).await?;
            set_succeeded(&reply)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(true)) => tally.successes.push(started.elapsed()),
            _ => {
                tally.failures += 1;
                connection = None;
                node = (node + 1) % settings.addresses.len();
                // A refused connection fails at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    tally
}

/// The longest interval without a success in `[0, end]`: (length, start, end).
pub fn longest_gap(successes: &mut [Duration], end: Duration) -> (Duration, Duration, Duration) {
    successes.sort_unstable();
    let mut best = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut previous = Duration::ZERO;
    for &time in successes.iter().chain(std::iter::once(&end)) {
        let time = time.min(end);
        let gap = time.saturating_sub(previous);
        if gap > best.0 {
            best = (gap, previous, time);
        }
        previous = previous.max(time);
    }
    best
}

/// The longest gap in sorted `successes` (closed by `end` when none follows)
/// that begins at the last success at or before `at`, or at any success up to
/// `window` after it.
pub fn around(successes: &[Duration], at: Duration, window: Duration, end: Duration) -> KillReport {
    let split = successes.partition_point(|&time| time <= at);
    let first = split.saturating_sub(1);
    let mut best = KillReport { at, gap_start: Duration::ZERO, gap_end: None, unavailable: end };
    if split == 0 {
        // No success before the kill: the gap runs from the start of the run.
        best.gap_end = successes.first().copied();
        best.unavailable = best.gap_end.unwrap_or(end);
    } else {
        best.unavailable = Duration::ZERO;
    }
    for index in first..successes.len() {
        let start = successes[index];
        if start > at + window {
            break;
        }
        let next = successes.get(index + 1).copied();
        let gap = next.unwrap_or(end).saturating_sub(start);
        if gap > best.unavailable {
            best = KillReport { at, gap_start: start, gap_end: next, unavailable: gap };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{around, longest_gap, KillReport};

    /// The gap the kill caused is found even after writes that were in flight at the kill.
    #[test]
    fn finds_the_gap_the_kill_caused() {
        let successes = [ms(10), ms(20), ms(26), ms(27), ms(900), ms(950)];
        let expected = KillReport {
            at: ms(25),
            gap_start: ms(27),
            gap_end: Some(ms(900)),
            unavailable: ms(873),
        };
        assert_eq!(around(&successes, ms(25), ms(100), ms(1000)), expected);
        // A gap that begins after the window is not the kill's.
        let late = [ms(10), ms(20), ms(30), ms(500), ms(990)];
        let expected = KillReport {
            at: ms(15),
            gap_start: ms(30),
            gap_end: Some(ms(500)),
            unavailable: ms(470),
        };
        assert_eq!(around(&late, ms(15), ms(20), ms(1000)), expected);
        // No success after the kill: not recovered, the gap runs to the end.
        let expected =
            KillReport { at: ms(960), gap_start: ms(950), gap_end: None, unavailable: ms(50) };
        assert_eq!(around(&successes, ms(960), ms(100), ms(1000)), expected);
        // No success before it: the gap runs from the start.
        let expected =
            KillReport { at: ms(5), gap_start: ms(0), gap_end: Some(ms(10)), unavailable: ms(10) };
        assert_eq!(around(&successes, ms(5), ms(1), ms(1000)), expected);
    }

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// The longest gap is found between successes, before the first and after the last.
    #[test]
    fn finds_the_longest_gap() {
        assert_eq!(longest_gap(&mut [ms(30), ms(10), ms(20)], ms(40)), (ms(10), ms(0), ms(10)));
        assert_eq!(longest_gap(&mut [ms(5), ms(100), ms(10)], ms(110)), (ms(90), ms(10), ms(100)));
        assert_eq!(longest_gap(&mut [ms(5)], ms(500)), (ms(495), ms(5), ms(500)));
        assert_eq!(longest_gap(&mut [], ms(70)), (ms(70), ms(0), ms(70)));
    }
}
