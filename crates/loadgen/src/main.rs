//! `loadgen`: closed-loop load against a RESP server or etcd.
//!
//! ```text
//! loadgen resp|etcd --address 127.0.0.1:6379 [--connections 64]
//!         [--duration-seconds 10 | --operations N] [--pipeline 1]
//!         [--value-size-bytes 16] [--key-prefix key:]
//! loadgen lock-cohort|lock-redis|lock-etcd --address A [--contenders 1]
//!         [--duration-seconds 10] [--ttl-ms 10000] [--wait-ms 1000]
//!         [--retry-sleep-us 1000] [--hold-us 0] [--lock-name bench-lock]
//! loadgen queue --address A [--producers 1] [--consumers 2] [--pipeline 32]
//!         [--count 100] [--block-ms 100] [--duration-seconds 10]
//!         [--drain-seconds 30] [--backlog 10000] [--stream queue] [--group workers]
//! loadgen failover --addresses A,B,C [--writers 4] [--duration-seconds 10]
//!         [--request-timeout-ms 200] [--kill-pid PID --kill-after-ms MS]
//! ```
//!
//! Prints one line of `name=value` pairs (see the `line` method of each report).
//! `queue` exits with failure when an acknowledged entry was never delivered.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use loadgen::failover::FailoverSettings;
use loadgen::lock::{LockBackend, LockSettings};
use loadgen::queue::QueueSettings;
use loadgen::{Mode, Settings, Stop};

const USAGE: &str = "usage: loadgen resp|etcd|lock-cohort|lock-redis|lock-etcd|queue|failover \
[options] (see the crate documentation for each mode's options)";

/// A parsed command line.
enum Command {
    Write(Settings),
    Lock(LockSettings),
    Queue(QueueSettings),
    Failover(FailoverSettings),
}

/// `--name value` pairs, each looked up by the mode that uses it; any left
/// over is an error.
struct Options {
    pairs: Vec<(String, String, bool)>,
}

impl Options {
    fn parse(words: &[String]) -> Result<Options> {
        let mut pairs = Vec::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            if !word.starts_with("--") {
                bail!("unexpected argument {word}\n{USAGE}");
            }
            let value = words.next().with_context(|| format!("{word} needs a value\n{USAGE}"))?;
            pairs.push((word[2..].to_string(), value.clone(), false));
        }
        Ok(Options { pairs })
    }

    fn text(&mut self, name: &str) -> Option<String> {
        let pair = self.pairs.iter_mut().rev().find(|(key, _, _)| key == name)?;
        pair.2 = true;
        Some(pair.1.clone())
    }

    fn number(&mut self, name: &str, default: u64) -> Result<u64> {
        match self.text(name) {
            None => Ok(default),
            Some(value) => value.parse().with_context(|| format!("--{name} {value}")),
        }
    }

    fn address(&mut self, name: &str) -> Result<SocketAddr> {
        let text = self.text(name).with_context(|| format!("--{name} is required\n{USAGE}"))?;
        text.parse().with_context(|| format!("--{name} {text}"))
    }

    fn seconds(&mut self, name: &str, default: u64) -> Result<Duration> {
        Ok(Duration::from_secs(self.number(name, default)?))
    }

    /// Refuses options no mode looked at.
    fn finish(self) -> Result<()> {
        match self.pairs.iter().find(|(_, _, used)| !used) {
            Some((name, _, _)) => bail!("unknown option --{name}\n{USAGE}"),
            None => Ok(()),
        }
    }
}

fn parse(arguments: &[String]) -> Result<Command> {
    let mode = arguments.first().map(String::as_str).unwrap_or("");
    let mut options = Options::parse(arguments.get(1..).unwrap_or_default())?;
    let command = match mode {
        "resp" | "etcd" => {
            let stop = match options.text("operations") {
                Some(count) => Stop::Operations(count.parse().context("--operations")?),
                None => Stop::After(options.seconds("duration-seconds", 10)?),
            };
            Command::Write(Settings {
                mode: if mode == "resp" { Mode::Resp } else { Mode::Etcd },
                address: options.address("address")?,
                connections: options.number("connections", 64)? as usize,
                stop,
                pipeline: options.number("pipeline", 1)? as usize,
                value_size_bytes: options.number("value-size-bytes", 16)? as usize,
                key_prefix: options.text("key-prefix").unwrap_or_else(|| "key:".to_string()),
            })
        }
        "lock-cohort" | "lock-redis" | "lock-etcd" => Command::Lock(LockSettings {
            backend: match mode {
                "lock-cohort" => LockBackend::Cohort,
                "lock-redis" => LockBackend::Redis,
                _ => LockBackend::Etcd,
            },
            address: options.address("address")?,
            contenders: options.number("contenders", 1)? as usize,
            duration: options.seconds("duration-seconds", 10)?,
            ttl_ms: options.number("ttl-ms", 10_000)?,
            wait_ms: options.number("wait-ms", 1_000)?,
            retry_sleep: Duration::from_micros(options.number("retry-sleep-us", 1_000)?),
            hold: Duration::from_micros(options.number("hold-us", 0)?),
            lock_name: options.text("lock-name").unwrap_or_else(|| "bench-lock".to_string()),
        }),
        "queue" => Command::Queue(QueueSettings {
            address: options.address("address")?,
            producers: options.number("producers", 1)? as usize,
            consumers: options.number("consumers", 2)? as usize,
            pipeline: options.number("pipeline", 32)? as usize,
            count: options.number("count", 100)? as usize,
            block_ms: options.number("block-ms", 100)?,
            duration: options.seconds("duration-seconds", 10)?,
            drain: options.seconds("drain-seconds", 30)?,
            backlog_max: options.number("backlog", 10_000)?,
            stream: options.text("stream").unwrap_or_else(|| "queue".to_string()),
            group: options.text("group").unwrap_or_else(|| "workers".to_string()),
        }),
        "failover" => {
            let list = options.text("addresses").context("--addresses is required")?;
            let addresses = list
                .split(',')
                .map(|address| address.parse().with_context(|| format!("address {address}")))
                .collect::<Result<Vec<SocketAddr>>>()?;
            Command::Failover(FailoverSettings {
                addresses,
                writers: options.number("writers", 4)? as usize,
                duration: options.seconds("duration-seconds", 10)?,
                request_timeout: Duration::from_millis(options.number("request-timeout-ms", 200)?),
                kill: match options.text("kill-pid") {
                    None => None,
                    Some(pid) => Some((
                        pid.parse().with_context(|| format!("--kill-pid {pid}"))?,
                        Duration::from_millis(options.number("kill-after-ms", 4000)?),
                    )),
                },
            })
        }
        _ => bail!("{USAGE}"),
    };
    options.finish()?;
    match &command {
        Command::Write(settings) => settings.validate()?,
        Command::Lock(settings) => settings.validate()?,
        Command::Queue(settings) => settings.validate()?,
        Command::Failover(settings) => settings.validate()?,
    }
    Ok(command)
}

/// Runs the command; the report line and whether the run passed its own checks.
async fn execute(command: Command) -> Result<(String, bool)> {
    Ok(match command {
        Command::Write(settings) => (loadgen::run(settings).await?.line(), true),
        Command::Lock(settings) => {
            let report = loadgen::lock::run(settings).await?;
            (report.line(), report.overlaps == 0)
        }
        Command::Queue(settings) => {
            let report = loadgen::queue::run(settings).await?;
            (report.line(), report.missing == 0 && report.unexpected == 0)
        }
        Command::Failover(settings) => (loadgen::failover::run(settings).await?.line(), true),
    })
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&arguments).and_then(|command| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(execute(command))
    });
    match result {
        Ok((line, passed)) => {
            println!("{line}");
            if passed {
                ExitCode::SUCCESS
            } else {
                eprintln!("loadgen: the run's own checks failed (see the counts above)");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
