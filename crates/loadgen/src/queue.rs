//! A stream used as a work queue, end to end: producers `XADD`, consumers in
//! one consumer group `XREADGROUP … COUNT n BLOCK ms … >` and `XACK` what they
//! read, all in one process.
//!
//! - Each of `producers` connections sends `pipeline` `XADD stream * seq <n>
//!   sent_us <t>` back to back and waits for the IDs; sequence numbers come
//!   from one shared counter, so every entry is distinct.
//! - Producers pause while more than `backlog_max` produced entries are not yet
//!   acknowledged, so the rate measured is what the whole path sustains, not
//!   how fast the stream can grow.
//! - Each of `consumers` connections reads up to `count` new entries, records
//!   their sequence numbers and end-to-end latency (from the producer's send to
//!   the consumer's receipt, one clock since both are here), and acknowledges
//!   them with one `XACK`.
//! - Producers stop at the deadline; the rate reported is entries acknowledged
//!   before it, per second. Consumers then drain until every produced entry is
//!   acknowledged (or `drain` runs out), and the report checks that every entry
//!   whose `XADD` succeeded was delivered, counting any delivered twice.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::latency::Summary;
use crate::resp::{self, Value};
use crate::{CONNECTIONS_MAX, DURATION_MAX, PIPELINE_MAX};

/// Most entries one `XREADGROUP` may ask for.
pub const COUNT_MAX: usize = 10_000;
/// Most produced entries allowed to wait for acknowledgement.
pub const BACKLOG_MAX: u64 = 10_000_000;

/// What one queue run does.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub address: SocketAddr,
    pub producers: usize,
    pub consumers: usize,
    /// `XADD`s each producer sends before waiting for their replies.
    pub pipeline: usize,
    /// `COUNT` of each `XREADGROUP`.
    pub count: usize,
    /// `BLOCK` of each `XREADGROUP`, in milliseconds.
    pub block_ms: u64,
    pub duration: Duration,
    /// How long consumers may keep draining after the producers stop.
    pub drain: Duration,
    pub backlog_max: u64,
    pub stream: String,
    pub group: String,
}

impl QueueSettings {
    pub fn validate(&self) -> Result<()> {
        if !(1..=CONNECTIONS_MAX).contains(&self.producers)
            || !(1..=CONNECTIONS_MAX).contains(&self.consumers)
        {
            bail!("producers and consumers must be between 1 and {CONNECTIONS_MAX}");
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            bail!("pipeline must be between 1 and {PIPELINE_MAX}");
        }
        if !(1..=COUNT_MAX).contains(&self.count) {
            bail!("count must be between 1 and {COUNT_MAX}");
        }
        if !(1..=60_000).contains(&self.block_ms) {
            bail!("block must be between 1 and 60000 ms");
        }
        if self.duration.is_zero() || self.duration > DURATION_MAX || self.drain > DURATION_MAX {
            bail!("duration must be between 1 ms and {} s", DURATION_MAX.as_secs());
        }
        if !(1..=BACKLOG_MAX).contains(&self.backlog_max) {
            bail!("backlog must be between 1 and {BACKLOG_MAX}");
        }
        if self.stream.is_empty() || self.group.is_empty() {
            bail!("the stream and the group need names");
        }
        Ok(())
    }
}

/// What one queue run measured.
#[derive(Clone, Debug)]
pub struct QueueReport {
    /// Entries acknowledged before the producers' deadline.
    pub acked_in_window: u64,
    pub duration: Duration,
    /// Entries whose `XADD` answered an ID.
    pub produced: u64,
    /// Entries counted by `XACK` replies, drain included.
    pub acked: u64,
    /// Produced entries never delivered to a consumer.
    pub missing: u64,
    /// Deliveries beyond the first of one entry.
    pub duplicates: u64,
    /// Delivered entries whose `XADD` did not answer an ID.
    pub unexpected: u64,
    /// Error replies (to `XADD`, `XREADGROUP` or `XACK`).
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl QueueReport {
    pub fn entries_per_second(&self) -> f64 {
        self.acked_in_window as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Every produced entry delivered, none twice, none from nowhere.
    pub fn delivered_all(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.unexpected == 0
    }

    /// One line of `name=value` pairs.
    pub fn line(&self) -> String {
        format!(
            "entries_per_second={:.0} produced={} acked={} missing={} duplicates={} \
             unexpected={} errors={} elapsed_seconds={:.3} p50_us={} p99_us={} max_us={}",
            self.entries_per_second(),
            self.produced,
            self.acked,
            self.missing,
            self.duplicates,
            self.unexpected,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
        )
    }
}

struct Shared {
    settings: QueueSettings,
    started: Instant,
    deadline: Instant,
    drain_deadline: Instant,
    next_sequence: AtomicU64,
    produced: AtomicU64,
    acked: AtomicU64,
    acked_in_window: AtomicU64,
    producers_done: AtomicUsize,
    errors: AtomicU64,
}

/// One entry as a consumer read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: Vec<u8>,
    pub sequence: u64,
    pub sent_us: u64,
}

/// Creates the group, runs producers and consumers, checks delivery.
pub async fn run(settings: QueueSettings) -> Result<QueueReport> {
    settings.validate()?;
    let mut setup = resp::Connection::connect(settings.address).await?;
    let words: [&[u8]; 6] = [
        b"XGROUP",
        b"CREATE",
        settings.stream.as_bytes(),
        settings.group.as_bytes(),
        b"$",
        b"MKSTREAM",
    ];
    match setup.call(&words).await? {
        Value::Simple(_) => {}
        other => bail!("XGROUP CREATE answered {}", other.describe()),
    }
    let started = Instant::now();
    let (producers, consumers) = (settings.producers, settings.consumers);
    let shared = Arc::new(Shared {
        deadline: started + settings.duration,
        drain_deadline: started + settings.duration + settings.drain,
        settings,
        started,
        next_sequence: AtomicU64::new(0),
        produced: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        acked_in_window: AtomicU64::new(0),
        producers_done: AtomicUsize::new(0),
        errors: AtomicU64::new(0),
    });
    let producer_tasks: Vec<_> = (0..producers)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let result = produce(&shared).await;
                shared.producers_done.fetch_add(1, Ordering::SeqCst);
                result
            })
        })
        .collect();
    let consumer_tasks: Vec<_> = (0..consumers)
        .map(|number| {
            let shared = shared.clone();
            tokio::spawn(async move { consume(&shared, number).await })
        })
        .collect();
    let mut produced = Vec::new();
    for task in producer_tasks {
        produced.extend(task.await.context("producer panicked")??);
    }
    let mut delivered = Vec::new();
    let mut latencies_us = Vec::new();
    for task in consumer_tasks {
        let (entries, latencies) = task.await.context("consumer panicked")??;
        delivered.extend(entries);
        latencies_us.extend(latencies);
    }
    let (missing, duplicates, unexpected) = compare(&mut produced, &mut delivered);
    Ok(QueueReport {
        acked_in_window: shared.acked_in_window.load(Ordering::SeqCst),
        duration: shared.settings.duration,
        produced: produced.len() as u64,
        acked: shared.acked.load(Ordering::SeqCst),
        missing,
        duplicates,
        unexpected,
        errors: shared.errors.load(Ordering::SeqCst),
        elapsed: started.elapsed(),
        latency: Summary::of(&mut latencies_us),
    })
}

/// Sends pipelined `XADD`s until the deadline; returns the sequence numbers
/// that got an ID.
async fn produce(shared: &Shared) -> Result<Vec<u64>> {
    let settings = &shared.settings;
    let mut connection = resp::Connection::connect(settings.address).await?;
    let mut produced = Vec::new();
    let batch = settings.pipeline as u64;
    'run: while Instant::now() < shared.deadline {
        loop {
            let backlog = shared
                .produced
                .load(Ordering::SeqCst)
                .saturating_sub(shared.acked.load(Ordering::SeqCst));
            if backlog + batch <= settings.backlog_max {
                break;
            }
            if Instant::now() >= shared.deadline {
                break 'run;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let first = shared.next_sequence.fetch_add(batch, Ordering::SeqCst);
        let sent_us = shared.started.elapsed().as_micros().to_string();
        for sequence in first..first + batch {
            let sequence = sequence.to_string();
            connection.queue(&[
                b"XADD",
                settings.stream.as_bytes(),
                b"*",
                b"seq",
                sequence.as_bytes(),
                b"sent_us",
                sent_us.as_bytes(),
            ]);
        }
        connection.flush().await?;
        for sequence in first..first + batch {
            match connection.read_value().await? {
                Value::Bulk(_) => {
                    produced.push(sequence);
                    shared.produced.fetch_add(1, Ordering::SeqCst);
                }
                Value::Error(_) => {
                    shared.errors.fetch_add(1, Ordering::SeqCst);
                }
                other => bail!("XADD answered {}", other.describe()),
            }
        }
    }
    Ok(produced)
}

/// Reads and acknowledges until everything produced is acknowledged after the
/// producers stopped, or the drain time runs out. Returns the sequence numbers
/// delivered and their latencies.
async fn consume(shared: &Shared, number: usize) -> Result<(Vec<u64>, Vec<u32>)> {
    let settings = &shared.settings;
    let mut connection = resp::Connection::connect(settings.address).await?;
    let consumer = format!("consumer-{number}");
    let count = settings.count.to_string();
    let block = settings.block_ms.to_string();
    let mut delivered = Vec::new();
    let mut latencies_us = Vec::new();
    let mut consecutive_errors = 0u64;
    loop {
        let now = Instant::now();
        if now >= shared.drain_deadline {
            break;
        }
        if shared.producers_done.load(Ordering::SeqCst) == settings.producers
            && shared.acked.load(Ordering::SeqCst) >= shared.produced.load(Ordering::SeqCst)
        {
            break;
        }
        let words: [&[u8]; 11] = [
            b"XREADGROUP",
            b"GROUP",
            settings.group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block.as_bytes(),
            b"STREAMS",
            settings.stream.as_bytes(),
            b">",
        ];
        let entries = match connection.call(&words).await? {
            Value::Error(text) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                consecutive_errors += 1;
                if consecutive_errors >= crate::CONSECUTIVE_ERRORS_MAX {
                    bail!("XREADGROUP failed: {}", String::from_utf8_lossy(&text));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            value => parse_entries(&value)?,
        };
        consecutive_errors = 0;
        if entries.is_empty() {
            continue;
        }
        let received_us = shared.started.elapsed().as_micros() as u64;
        let mut words: Vec<&[u8]> =
            vec![b"XACK", settings.stream.as_bytes(), settings.group.as_bytes()];
        for entry in &entries {
            delivered.push(entry.sequence);
            let latency_us = received_us.saturating_sub(entry.sent_us);
            latencies_us.push(u32::try_from(latency_us).unwrap_or(u32::MAX));
            words.push(&entry.id);
        }
        match connection.call(&words).await? {
            Value::Integer(acked) => {
                let acked = u64::try_from(acked).context("negative XACK count")?;
                shared.acked.fetch_add(acked, Ordering::SeqCst);
                if Instant::now() <= shared.deadline {
                    shared.acked_in_window.fetch_add(acked, Ordering::SeqCst);
                }
            }
            Value::Error(_) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
            }
            other => bail!("XACK answered {}", other.describe()),
        }
    }
    Ok((delivered, latencies_us))
}

/// The entries of an `XREADGROUP` reply (nil when the block ran out):
/// `[[stream, [[id, [field, value, …]], …]], …]`.
pub fn parse_entries(reply: &Value) -> Result<Vec<Entry>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        other => bail!("XREADGROUP answered {}", other.describe()),
    };
    let mut entries = Vec::new();
    for stream in streams {
        let Value::Array(pair) = stream else { bail!("stream element is not an array") };
        let [_, Value::Array(stream_entries)] = pair.as_slice() else {
            bail!("stream element is not [name, entries]");
        };
        for entry in stream_entries {
            entries.push(parse_entry(entry)?);
        }
    }
    Ok(entries)
}

fn parse_entry(entry: &Value) -> Result<Entry> {
    let Value::Array(parts) = entry else { bail!("entry is not an array") };
    let [Value::Bulk(id), Value::Array(fields)] = parts.as_slice() else {
        bail!("entry is not [id, fields]: {parts:?}");
    };
    let mut sequence = None;
    let mut sent_us = None;
    for pair in fields.chunks(2) {
        let [Value::Bulk(name), Value::Bulk(value)] = pair else { bail!("odd entry fields") };
        let number = || -> Result<u64> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse().ok())
                .context("entry field is not a number")
        };
        match name.as_slice() {
            b"seq" => sequence = Some(number()?),
            b"sent_us" => sent_us = Some(number()?),
            _ => {}
        }
    }
    Ok(Entry {
        id: id.clone(),
        sequence: sequence.context("entry without seq")?,
        sent_us: sent_us.context("entry without sent_us")?,
    })
}

/// Counts produced entries never delivered, deliveries beyond the first, and
/// delivered entries never produced. Sorts both lists.
pub fn compare(produced: &mut [u64], delivered: &mut [u64]) -> (u64, u64, u64) {
    produced.sort_unstable();
    delivered.sort_unstable();
    let total = delivered.len();
    let mut unique = delivered.to_vec();
    unique.dedup();
    let duplicates = (total - unique.len()) as u64;
    let missing = produced.iter().filter(|s| unique.binary_search(s).is_err()).count() as u64;
    let unexpected = unique.iter().filter(|s| produced.binary_search(s).is_err()).count() as u64;
    (missing, duplicates, unexpected)
}

#[cfg(test)]
mod tests {
    use super::{compare, parse_entries, Entry};
    use crate::resp::Value;

    fn bulk(text: &str) -> Value {
        Value::Bulk(text.as_bytes().to_vec())
    }

    /// An XREADGROUP reply yields each entry's ID, sequence and send time; nil is empty.
    #[test]
    fn parses_xreadgroup_replies() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("seq"), bulk("7"), bulk("sent_us"), bulk("12")]),
                ]),
                Value::Array(vec![
                    bulk("1-1"),
                    Value::Array(vec![bulk("sent_us"), bulk("13"), bulk("seq"), bulk("8")]),
                ]),
            ]),
        ])]);
        let entries = parse_entries(&reply).unwrap();
        assert_eq!(
            entries,
            [
                Entry { id: b"1-0".to_vec(), sequence: 7, sent_us: 12 },
                Entry { id: b"1-1".to_vec(), sequence: 8, sent_us: 13 },
            ]
        );
        assert!(parse_entries(&Value::Nil).unwrap().is_empty());
        assert!(parse_entries(&Value::Integer(3)).is_err());
        let without_seq = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(vec![])])]),
        ])]);
        assert!(parse_entries(&without_seq).is_err());
    }

    /// The delivery check finds missing, repeated and unknown entries.
    #[test]
    fn compare_finds_every_discrepancy() {
        assert_eq!(compare(&mut [3, 1, 2], &mut [2, 3, 1]), (0, 0, 0));
        assert_eq!(compare(&mut [1, 2, 3, 4], &mut [4, 2, 2, 9]), (2, 1, 1));
    }
}
