//! Seeds that once failed, kept so the bugs they found stay fixed.

use sim::{run, Config, EngineKind};

/// Goal: Multi-Paxos seeds that once broke leader completeness or liveness
/// pass. The bug: a proposer adopting a higher log truncated its own log
/// after its commit index before fetching that log, so a fetch cut short left
/// it without chosen values it had accepted, and a later ballot whose quorum
/// included it overwrote them.
#[test]
fn paxos_seeds_that_lost_chosen_values_pass() {
    for seed in [3185, 3904, 7120, 9872] {
        let config = Config { engine: EngineKind::Paxos, ..Config::new(seed) };
        if let Some(failure) = run(&config).failure {
            panic!("seed {seed}: {failure}\n  reproduce: {}", sim::reproduce_command(&config));
        }
    }
}
