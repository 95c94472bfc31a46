//! `loadgen`: closed-loop write load against a RESP server or etcd.
//!
//! ```text
//! loadgen resp|etcd --address 127.0.0.1:6379 [--connections 64]
//!         [--duration-seconds 10 | --operations N] [--pipeline 1]
//!         [--value-size-bytes 16] [--key-prefix key:]
//! ```
//!
//! Prints one line of `name=value` pairs (see [`loadgen::Report::line`]).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use loadgen::{Mode, Settings, Stop};

const USAGE: &str = "usage: loadgen resp|etcd --address HOST:PORT [--connections N] \
[--duration-seconds S | --operations N] [--pipeline N] [--value-size-bytes N] [--key-prefix P]";

fn parse(arguments: &[String]) -> Result<Settings> {
    let mode = match arguments.first().map(String::as_str) {
        Some("resp") => Mode::Resp,
        Some("etcd") => Mode::Etcd,
        _ => bail!("{USAGE}"),
    };
    let mut address = None;
    let mut settings = Settings {
        mode,
        address: "127.0.0.1:6379".parse()?,
        connections: 64,
        stop: Stop::After(Duration::from_secs(10)),
        pipeline: 1,
        value_size_bytes: 16,
        key_prefix: "key:".to_string(),
    };
    let mut words = arguments[1..].iter();
    while let Some(word) = words.next() {
        let value = words.next().with_context(|| format!("{word} needs a value\n{USAGE}"))?;
        let number = || value.parse::<u64>().with_context(|| format!("{word} {value}"));
        match word.as_str() {
            "--address" => address = Some(value.parse().with_context(|| word.clone())?),
            "--connections" => settings.connections = number()? as usize,
            "--duration-seconds" => settings.stop = Stop::After(Duration::from_secs(number()?)),
            "--operations" => settings.stop = Stop::Operations(number()?),
            "--pipeline" => settings.pipeline = number()? as usize,
            "--value-size-bytes" => settings.value_size_bytes = number()? as usize,
            "--key-prefix" => settings.key_prefix = value.clone(),
            _ => bail!("unknown option {word}\n{USAGE}"),
        }
    }
    settings.address = address.with_context(|| format!("--address is required\n{USAGE}"))?;
    settings.validate()?;
    Ok(settings)
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&arguments).and_then(|settings| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(loadgen::run(settings))
    });
    match result {
        Ok(report) => {
            println!("{}", report.line());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
