//! Goal: every deliberately broken engine variant is caught by the
//! simulator's checkers within a bounded number of seeds. If a checker
//! stopped working, the variant it guards would pass and this test fails.

use consensus::Bug;
use sim::{run, Config, EngineKind};

/// Most variants fail within a few seeds; the rarest (a Paxos acceptor taking a
/// lower ballot) needs a leader change that races in-flight accepts.
const SEEDS_MAX: u64 = 1_000;

fn first_failing_seed(engine: EngineKind, bug: Bug) -> Option<(u64, String)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..SEEDS_MAX).filter(|seed| seed % threads == thread).find_map(|seed| {
                        let mut config = Config::new(seed);
                        config.engine = engine;
                        config.bug = Some(bug);
                        run(&config).failure.map(|failure| (seed, failure))
                    })
                })
            })
            .collect();
        handles.into_iter().filter_map(|handle| handle.join().expect("thread")).min()
    })
}

#[test]
fn every_bug_variant_is_caught() {
    let mut escaped = Vec::new();
    for engine in EngineKind::ALL {
        assert!(!engine.bugs().is_empty(), "{} has no bug variants", engine.name());
        for &bug in engine.bugs() {
            match first_failing_seed(engine, bug) {
                Some((seed, failure)) => {
                    let summary: String = failure.chars().take(160).collect();
                    println!("{} {}: caught by seed {seed}: {summary}", engine.name(), bug.name());
                }
                None => escaped.push(bug.name()),
            }
        }
    }
    let listed: usize = EngineKind::ALL.iter().map(|engine| engine.bugs().len()).sum();
    assert_eq!(listed, Bug::ALL.len(), "every variant belongs to exactly one engine");
    assert!(escaped.is_empty(), "not caught within {SEEDS_MAX} seeds: {escaped:?}");
}
