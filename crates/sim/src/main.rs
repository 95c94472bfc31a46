//! `sim`: runs seeds of the consensus simulator.
//!
//! ```text
//! sim --seeds 1000                 seeds 0..1000, progress bar, "N passed, M failed"
//! sim --seed 42 --trace            one seed with a readable trace
//! sim --bug list                   the deliberately broken variants of the engine
//! sim --bug commit-on-minority --seeds 500
//! sim --engine paxos --seeds 1000  the same for the Multi-Paxos engine
//! ```

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use consensus::Bug;
use sim::{reproduce_command, run, Config, EngineKind, Report};

const USAGE: &str =
    "usage: sim [--seeds N | --seed S] [--start S] [--engine raft|paxos] [--nodes N]
           [--clients N] [--fault-ms MS] [--heal-ms MS] [--no-network] [--no-partitions]
           [--no-crashes] [--no-membership] [--no-transfers] [--bug NAME|list] [--trace]
           [--threads N] [--keep-going] [--compare]";

struct Arguments {
    config: Config,
    seeds: Option<u64>,
    start: u64,
    threads: usize,
    keep_going: bool,
    compare: bool,
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Option<Arguments>, String> {
    let mut arguments = Arguments {
        config: Config::new(0),
        seeds: None,
        start: 0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        keep_going: false,
        compare: false,
    };
    let mut single_seed = false;
    // Resolved once the engine is known, wherever `--engine` appears.
    let mut bug_name = None;
    while let Some(word) = words.next() {
        let mut value = |name: &str| words.next().ok_or(format!("{name} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|e| format!("{text}: {e}"));
        match word.as_str() {
            "--seeds" => arguments.seeds = Some(number(value("--seeds")?)?),
            "--seed" => {
                arguments.config.seed = number(value("--seed")?)?;
                single_seed = true;
            }
            "--start" => arguments.start = number(value("--start")?)?,
            "--engine" => {
                let name = value("--engine")?;
                arguments.config.engine =
                    EngineKind::from_name(&name).ok_or(format!("unknown engine {name}"))?;
            }
            "--nodes" => {
                let nodes = number(value("--nodes")?)? as usize;
                if !(1..=9).contains(&nodes) {
                    return Err("--nodes must be between 1 and 9".to_string());
                }
                arguments.config.nodes = Some(nodes);
            }
            "--clients" => arguments.config.clients = number(value("--clients")?)?.max(1) as usize,
            "--fault-ms" => arguments.config.fault_ms = number(value("--fault-ms")?)?,
            "--heal-ms" => arguments.config.heal_ms = number(value("--heal-ms")?)?.max(1_000),
            "--no-network" => arguments.config.faults.network = false,
            "--no-partitions" => arguments.config.faults.partitions = false,
            "--no-crashes" => arguments.config.faults.crashes = false,
            "--no-membership" => arguments.config.faults.membership = false,
            "--no-transfers" => arguments.config.faults.transfers = false,
            "--trace" => arguments.config.trace = true,
            "--threads" => arguments.threads = number(value("--threads")?)?.max(1) as usize,
            "--keep-going" => arguments.keep_going = true,
            "--compare" => arguments.compare = true,
            "--bug" => bug_name = Some(value("--bug")?),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let engine = arguments.config.engine;
    match bug_name.as_deref() {
        Some("list") => {
            for bug in engine.bugs() {
                println!("{}", bug.name());
            }
            return Ok(None);
        }
        Some(name) => {
            let bug = Bug::from_name(name).ok_or(format!("unknown bug {name}; see --bug list"))?;
            if !engine.bugs().contains(&bug) {
                return Err(format!(
                    "bug {name} is not a variant of the {} engine; see --bug list",
                    engine.name()
                ));
            }
            arguments.config.bug = Some(bug);
        }
        None => {}
    }
    if single_seed && arguments.seeds.is_some() {
        return Err("--seed and --seeds exclude each other".to_string());
    }
    if single_seed {
        arguments.start = arguments.config.seed;
        arguments.seeds = Some(1);
    }
    Ok(Some(arguments))
}

fn main() -> ExitCode {
    let arguments = match parse(std::env::args().skip(1)) {
        Ok(Some(arguments)) => arguments,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sim: {message}");
            return ExitCode::from(2);
        }
    };
    let count = arguments.seeds.unwrap_or(100);
    if arguments.compare {
        return compare_engines(arguments.start..arguments.start + count);
    }
    if count == 1 {
        return run_one(&arguments.config, arguments.start);
    }
    run_many(&arguments, count)
}

fn run_one(config: &Config, seed: u64) -> ExitCode {
    let config = Config { seed, ..config.clone() };
    println!("seed {seed}");
    let report = run(&config);
    print_stats(&report);
    match &report.failure {
        None => {
            println!("1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Some(failure) => {
            println!("seed {seed} FAILED: {failure}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn print_stats(report: &Report) {
    let stats = &report.stats;
    println!(
        "digest {:016x}: {} events, {} messages, {} elections, {} applied, {} crashes, {} \
         partitions, {} membership changes, {} compactions, {} snapshots installed, {} client \
         operations ({} ok, {} indeterminate)",
        report.digest,
        stats.events,
        stats.messages,
        stats.elections,
        stats.applied,
        stats.crashes,
        stats.partitions,
        stats.membership_changes,
        stats.compactions,
        stats.snapshots_installed,
        report.operations,
        stats.client_ok,
        stats.indeterminate
    );
}

fn run_many(arguments: &Arguments, count: u64) -> ExitCode {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let finished = Arc::new(AtomicU64::new(0));
    // A deliberately broken engine only has to be caught once.
    let stop_at_first_failure = arguments.config.bug.is_some() && !arguments.keep_going;
    let show_progress = std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        for _ in 0..arguments.threads {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) != 0 {
                    return;
                }
                let offset = next.fetch_add(1, Ordering::Relaxed);
                if offset >= count {
                    return;
                }
                let seed = arguments.start + offset;
                let report = run(&Config { seed, ..arguments.config.clone() });
                if let Some(failure) = report.failure {
                    failures.lock().expect("lock").push((seed, failure));
                    if stop_at_first_failure {
                        stop.store(1, Ordering::Relaxed);
                    }
                }
                let done = finished.fetch_add(1, Ordering::Relaxed) + 1;
                if show_progress {
                    progress(done, count, failures.lock().expect("lock").len(), started);
                }
            });
        }
    });
    if show_progress {
        eprintln!();
    }
    let done = finished.load(Ordering::Relaxed);
    let mut failures = failures.lock().expect("lock").clone();
    failures.sort();
    for (seed, failure) in &failures {
        println!("seed {seed} FAILED: {failure}");
        println!(
            "  reproduce: {}",
            reproduce_command(&Config { seed: *seed, ..arguments.config.clone() })
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} seeds in {:.1} s ({:.1} seeds/s) on {} threads",
        done,
        elapsed,
        done as f64 / elapsed.max(1e-9),
        arguments.threads
    );
    let failed = failures.len() as u64;
    println!("{} passed, {} failed", done - failed, failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn progress(done: u64, count: u64, failed: usize, started: Instant) {
    let width = 40;
    let filled = (done * width / count.max(1)) as usize;
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let mut stderr = std::io::stderr().lock();
    let _ = write!(
        stderr,
        "\r[{}{}] {done}/{count} {rate:.0} seeds/s, {failed} failed ",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    let _ = stderr.flush();
}

/// `sim --compare --seeds N`: both engines on the comparison workload.
fn compare_engines(seeds: std::ops::Range<u64>) -> ExitCode {
    println!(
        "3 replicas, 5 clients, no faults but the leader killed at mid-run; seeds {}..{}",
        seeds.start, seeds.end
    );
    println!(
        "| engine | seeds | failed | commands committed | messages / command | syncs / command \
         | recovery median (ms) | recovery max (ms) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut failed = 0;
    for engine in EngineKind::ALL {
        let c = sim::compare(engine, seeds.clone());
        failed += c.failures;
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
            engine.name(),
            c.seeds,
            c.failures,
            c.commands_committed,
            c.messages_per_command,
            c.syncs_per_command,
            c.recovery_ms_median,
            c.recovery_ms_max
        );
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
