//! The simulator's own guarantees: seeds pass under every fault kind, and a
//! seed reproduces its run exactly.

use sim::{run, Config, EngineKind};

fn run_seeds(seeds: std::ops::Range<u64>, configure: impl Fn(&mut Config) + Sync) -> Vec<String> {
    let seeds: Vec<u64> = seeds.collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks: Vec<&[u64]> = seeds.chunks(seeds.len().div_ceil(threads).max(1)).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let configure = &configure;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for &seed in chunk {
                        let mut config = Config::new(seed);
                        configure(&mut config);
                        if let Some(failure) = run(&config).failure {
                            failures.push(format!(
                                "seed {seed}: {failure}\n  reproduce: {}",
                                sim::reproduce_command(&config)
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|handle| handle.join().expect("seed thread")).collect()
    })
}

/// Goal: a few hundred seeds with every fault kind enabled pass all checks.
#[test]
fn raft_passes_seeds_under_all_faults() {
    let failures = run_seeds(0..300, |_| {});
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Goal: every cluster size from one to seven replicas passes, including
/// the single-replica group a lone node runs.
#[test]
fn raft_passes_every_cluster_size() {
    for nodes in 1..=7 {
        let failures = run_seeds(1_000..1_010, |config| config.nodes = Some(nodes));
        assert!(failures.is_empty(), "{nodes} nodes: {}", failures.join("\n"));
    }
}

/// Goal: the Multi-Paxos engine passes the same seeds under every fault kind.
#[test]
fn paxos_passes_seeds_under_all_faults() {
    let failures = run_seeds(0..300, |config| config.engine = EngineKind::Paxos);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Goal: the Multi-Paxos engine passes every cluster size from one to seven.
#[test]
fn paxos_passes_every_cluster_size() {
    for nodes in 1..=7 {
        let failures = run_seeds(1_000..1_010, |config| {
            config.engine = EngineKind::Paxos;
            config.nodes = Some(nodes);
        });
        assert!(failures.is_empty(), "{nodes} nodes: {}", failures.join("\n"));
    }
}

/// Goal: a Multi-Paxos seed reproduces its run exactly, and its runs
/// exercise elections, crashes, snapshots and membership changes.
#[test]
fn paxos_runs_reproduce_and_exercise_faults() {
    let config = |seed| Config { engine: EngineKind::Paxos, ..Config::new(seed) };
    assert_eq!(run(&config(7)).digest, run(&config(7)).digest);
    assert_ne!(run(&config(7)).digest, run(&config(8)).digest);
    let mut totals = sim::Stats::default();
    for seed in 0..20 {
        let stats = run(&config(seed)).stats;
        totals.elections += stats.elections;
        totals.crashes += stats.crashes;
        totals.client_ok += stats.client_ok;
        totals.snapshots_installed += stats.snapshots_installed;
        totals.membership_changes += stats.membership_changes;
    }
    assert!(totals.elections > 40, "{totals:?}");
    assert!(totals.crashes > 20, "{totals:?}");
    assert!(totals.client_ok > 2_000, "{totals:?}");
    assert!(totals.snapshots_installed > 0, "{totals:?}");
    assert!(totals.membership_changes > 0, "{totals:?}");
}

/// Goal: the same seed gives the same run, event for event; another seed
/// gives another run.
#[test]
fn a_seed_reproduces_its_run_exactly() {
    let first = run(&Config::new(7));
    let second = run(&Config::new(7));
    let other = run(&Config::new(8));
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.stats.events, second.stats.events);
    assert_ne!(first.digest, other.digest);
}

/// Goal: runs really exercise the faults and the workload, so a pass means
/// something.
#[test]
fn runs_exercise_faults_and_clients() {
    let mut totals = sim::Stats::default();
    for seed in 0..20 {
        let stats = run(&Config::new(seed)).stats;
        totals.crashes += stats.crashes;
        totals.partitions += stats.partitions;
        totals.elections += stats.elections;
        totals.client_ok += stats.client_ok;
        totals.snapshots_installed += stats.snapshots_installed;
        totals.membership_changes += stats.membership_changes;
        totals.compactions += stats.compactions;
    }
    assert!(totals.crashes > 20, "{totals:?}");
    assert!(totals.partitions > 20, "{totals:?}");
    assert!(totals.elections > 40, "{totals:?}");
    assert!(totals.client_ok > 2_000, "{totals:?}");
    assert!(totals.compactions > 20, "{totals:?}");
    assert!(totals.snapshots_installed > 0, "{totals:?}");
    assert!(totals.membership_changes > 0, "{totals:?}");
}
