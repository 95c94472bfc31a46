//! A deterministic simulator of consensus clusters under faults.
//!
//! One `u64` seed decides everything in a run: the number of replicas (3–7
//! unless fixed), the network's loss, duplication and delay, the partitions
//! (leader isolated, majority/minority, one-way links, two majorities over a
//! bridge node, everyone alone, short flapping ones), crashes that lose what
//! was not yet durable, membership changes and leadership transfers, and the
//! clients' workload of puts, gets, appends and compare-and-sets with
//! timeouts and retries. The same seed gives the same run, event for event;
//! [`Report::digest`] fingerprints it.
//!
//! Each run has a **fault phase**, during which only safety is required, and
//! a **healing phase** (network calm, every replica restarted) at the end of
//! which the cluster must have converged and served every client. Judgement
//! comes from outside the engine: the invariants in [`invariants`] on every
//! step, and the linearizability checker of the `check` crate on the
//! recorded client history.
//!
//! ```no_run
//! let report = sim::run(&sim::Config::new(42));
//! assert!(report.failure.is_none(), "{:?}", report.failure);
//! ```

pub mod invariants;
pub mod kv;
pub mod network;
pub mod world;

use std::panic::{catch_unwind, AssertUnwindSafe};

use consensus::paxos::Paxos;
use consensus::raft::Raft;
use consensus::Bug;

/// The consensus engines the simulator can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Raft,
    Paxos,
}

impl EngineKind {
    pub fn from_name(name: &str) -> Option<EngineKind> {
        match name {
            "raft" => Some(EngineKind::Raft),
            "paxos" => Some(EngineKind::Paxos),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Raft => "raft",
            EngineKind::Paxos => "paxos",
        }
    }

    pub const ALL: [EngineKind; 2] = [EngineKind::Raft, EngineKind::Paxos];

    /// The deliberately broken variants of this engine.
    pub fn bugs(self) -> &'static [Bug] {
        Bug::for_engine(self.name())
    }
}

/// Which fault kinds the injector may use.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Loss, duplication, delay and reordering of messages.
    pub network: bool,
    pub partitions: bool,
    pub crashes: bool,
    pub membership: bool,
    pub transfers: bool,
}

impl Faults {
    pub fn all() -> Faults {
        Faults { network: true, partitions: true, crashes: true, membership: true, transfers: true }
    }

    pub fn none() -> Faults {
        Faults {
            network: false,
            partitions: false,
            crashes: false,
            membership: false,
            transfers: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub engine: EngineKind,
    /// Replicas; chosen by the seed in 3..=7 when `None`.
    pub nodes: Option<usize>,
    pub clients: usize,
    /// Length of the fault phase, in simulated milliseconds.
    pub fault_ms: u64,
    /// Length of the healing phase.
    pub heal_ms: u64,
    pub faults: Faults,
    pub bug: Option<Bug>,
    /// Print a readable trace of the run to standard output.
    pub trace: bool,
    /// Search steps the linearizability checker may take before it answers
    /// "unknown".
    pub checker_steps: u64,
    /// For engine comparisons: crash the leader at this time (it stays down
    /// until healing) and measure how long commits stop.
    pub kill_leader_at_ms: Option<u64>,
}

impl Config {
    pub fn new(seed: u64) -> Config {
        Config {
            seed,
            engine: EngineKind::Raft,
            nodes: None,
            clients: 5,
            fault_ms: 6_000,
            heal_ms: 3_000,
            faults: Faults::all(),
            bug: None,
            trace: false,
            checker_steps: 2_000_000,
            kill_leader_at_ms: None,
        }
    }
}

/// Counts of what happened in a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub messages: u64,
    pub elections: u64,
    pub applied: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub membership_changes: u64,
    pub compactions: u64,
    pub snapshots_installed: u64,
    pub client_requests: u64,
    pub client_ok: u64,
    pub indeterminate: u64,
    pub unknown_checks: u64,
    /// Distinct client commands committed (counted once per log index).
    pub commands_committed: u64,
    /// Disk syncs, summed over replicas.
    pub syncs: u64,
    /// With `kill_leader_at_ms`: milliseconds from the leader's crash to the
    /// next committed client command.
    pub recovery_ms: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    /// Why the run failed, or `None` if every check passed.
    pub failure: Option<String>,
    /// A fingerprint of the whole run: equal seeds give equal digests.
    pub digest: u64,
    pub stats: Stats,
    pub operations: u64,
}

/// Runs one seed. A panic inside the run (an engine's assertion) is a
/// failure of that seed, not of the simulator.
pub fn run(config: &Config) -> Report {
    let config = config.clone();
    let seed = config.seed;
    let outcome = catch_unwind(AssertUnwindSafe(|| match config.engine {
        EngineKind::Raft => world::World::<Raft>::new(config, Raft::new).run(),
        EngineKind::Paxos => world::World::<Paxos>::new(config, Paxos::new).run(),
    }));
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "unknown panic".to_string());
        Report {
            seed,
            failure: Some(format!("panic: {message}")),
            digest: 0,
            stats: Stats::default(),
            operations: 0,
        }
    })
}

/// The command line that reproduces a run of `config`.
pub fn reproduce_command(config: &Config) -> String {
    let mut command = format!(
        "cargo run --release --bin sim -- --engine {} --seed {}",
        config.engine.name(),
        config.seed
    );
    if let Some(nodes) = config.nodes {
        command.push_str(&format!(" --nodes {nodes}"));
    }
    if let Some(bug) = config.bug {
        command.push_str(&format!(" --bug {}", bug.name()));
    }
    let defaults = Config::new(0);
    if config.fault_ms != defaults.fault_ms {
        command.push_str(&format!(" --fault-ms {}", config.fault_ms));
    }
    if config.heal_ms != defaults.heal_ms {
        command.push_str(&format!(" --heal-ms {}", config.heal_ms));
    }
    if config.clients != defaults.clients {
        command.push_str(&format!(" --clients {}", config.clients));
    }
    let faults = &config.faults;
    for (enabled, name) in [
        (faults.network, "network"),
        (faults.partitions, "partitions"),
        (faults.crashes, "crashes"),
        (faults.membership, "membership"),
        (faults.transfers, "transfers"),
    ] {
        if !enabled {
            command.push_str(&format!(" --no-{name}"));
        }
    }
    command.push_str(" --trace");
    command
}

/// The engines side by side on the same workload: three replicas, no faults
/// but one: the leader is killed mid-run and stays down until healing.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub engine: EngineKind,
    pub seeds: u64,
    pub failures: u64,
    pub commands_committed: u64,
    pub messages_per_command: f64,
    pub syncs_per_command: f64,
    /// Milliseconds from the leader's death to the next committed command,
    /// median and worst over the seeds (a tick is 9–11 ms).
    pub recovery_ms_median: u64,
    pub recovery_ms_max: u64,
}

/// Runs the comparison workload for `engine` over `seeds`.
pub fn compare(engine: EngineKind, seeds: std::ops::Range<u64>) -> Comparison {
    let (mut messages, mut syncs, mut commands, mut failures) = (0, 0, 0, 0);
    let mut recoveries = Vec::new();
    let count = seeds.end - seeds.start;
    for seed in seeds {
        let mut config = Config::new(seed);
        config.engine = engine;
        config.nodes = Some(3);
        config.faults = Faults::none();
        config.kill_leader_at_ms = Some(config.fault_ms / 2);
        let report = run(&config);
        if report.failure.is_some() {
            failures += 1;
        }
        messages += report.stats.messages;
        syncs += report.stats.syncs;
        commands += report.stats.commands_committed;
        recoveries.extend(report.stats.recovery_ms);
    }
    recoveries.sort_unstable();
    let per_command = |total: u64| total as f64 / commands.max(1) as f64;
    Comparison {
        engine,
        seeds: count,
        failures,
        commands_committed: commands,
        messages_per_command: per_command(messages),
        syncs_per_command: per_command(syncs),
        recovery_ms_median: recoveries.get(recoveries.len() / 2).copied().unwrap_or(0),
        recovery_ms_max: recoveries.last().copied().unwrap_or(0),
    }
}
