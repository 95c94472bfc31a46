//! Scripted scenarios: every script under `tests/scenarios` runs against
//! every engine (scripts named `*.<engine>.txt` only against that engine).
//! Regenerate expected outputs with `SCENARIO_REWRITE=1 cargo test -p
//! consensus --test scenarios` and review the diff.

mod scenario;

use std::path::Path;

use consensus::paxos::Paxos;
use consensus::raft::Raft;

#[test]
fn raft_scenarios_match_their_expected_traces() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let count = scenario::run_directory(&directory, "raft", Raft::new);
    assert!(count >= 5, "expected at least five scenarios, found {count}");
}

#[test]
fn paxos_scenarios_match_their_expected_traces() {
    // Goal: the Multi-Paxos engine behaves as its reviewed traces show.
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let count = scenario::run_directory(&directory, "paxos", Paxos::new);
    assert!(count >= 5, "expected at least five scenarios, found {count}");
}

/// The harness must notice a wrong expectation, or the scenarios prove
/// nothing.
#[test]
fn a_script_with_a_wrong_expectation_is_reported() {
    let script = "cluster voters=1\n----\nok\n\nstatus\n----\nn1 Follower term 99\n";
    let (_, mismatches) = scenario::run_script(script, Raft::new);
    assert!(mismatches.iter().any(|m| m.contains("status")), "{mismatches:?}");
}
