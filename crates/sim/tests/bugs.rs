//! Goal: every deliberately broken engine variant is caught by the
//! simulator's checkers within a bounded number of seeds. If a checker
//! stopped working, the variant it guards would pass and this test fails.

use consensus::Bug;
use sim::{run, Config};

const SEEDS_MAX: u64 = 300;

fn first_failing_seed(bug: Bug) -> Option<(u64, String)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..SEEDS_MAX).filter(|seed| seed % threads == thread).find_map(|seed| {
                        let mut config = Config::new(seed);
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
    for bug in Bug::ALL {
        match first_failing_seed(bug) {
            Some((seed, failure)) => {
                let summary: String = failure.chars().take(160).collect();
                println!("{}: caught by seed {seed}: {summary}", bug.name());
            }
            None => escaped.push(bug.name()),
        }
    }
    assert!(escaped.is_empty(), "not caught within {SEEDS_MAX} seeds: {escaped:?}");
}
