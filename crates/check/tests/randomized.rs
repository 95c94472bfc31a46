//! Randomized histories: produced by running a real sequential register map, each operation
//! taking effect at one instant inside a random interval, so they are linearizable by
//! construction. The checker must accept every one, and reject each after one read is changed to
//! a value no operation wrote.

use check::{check, Budget, Op, Operation, Outcome, Verdict};
use std::collections::BTreeMap;

/// A seeded generator (SplitMix64): the same seed gives the same histories on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Shape {
    operations: usize,
    clients: usize,
    keys: usize,
    /// Percent of operations whose client never learns the result.
    indeterminate_percent: u64,
    /// How many distinct values writes draw from: few make reads ambiguous and the search
    /// hard, many make it easy.
    values: u64,
}

/// What a client is doing.
enum Client {
    Idle,
    /// Invoked, not yet in effect. `lost`: it will never take effect.
    Invoked {
        index: usize,
        lost: bool,
    },
    /// In effect with this result, not yet returned to the client.
    Applied {
        index: usize,
        outcome: Outcome,
    },
}

/// Only digits are ever written, so a value with a letter in it was never written.
fn random_op(rng: &mut Rng, shape: &Shape) -> Op {
    let key = format!("k{}", rng.below(shape.keys as u64));
    let values = shape.values;
    let digit = |rng: &mut Rng| rng.below(values).to_string();
    match rng.below(10) {
        0..=2 => Op::Put { key, value: digit(rng) },
        3..=6 => Op::Get { key },
        7 => Op::Append { key, value: digit(rng) },
        _ => {
            let expected = if rng.chance(20) { None } else { Some(digit(rng)) };
            Op::Cas { key, expected, new: digit(rng) }
        }
    }
}

/// Applies `op` to the register map and returns its result.
fn apply(registers: &mut BTreeMap<String, String>, op: &Op) -> Outcome {
    match op {
        Op::Put { key, value } => {
            registers.insert(key.clone(), value.clone());
            Outcome::Ok
        }
        Op::Get { key } => Outcome::Value(registers.get(key).cloned()),
        Op::Append { key, value } => {
            registers.entry(key.clone()).or_default().push_str(value);
            Outcome::Ok
        }
        Op::Cas { key, expected, new } => {
            let swapped = registers.get(key) == expected.as_ref();
            if swapped {
                registers.insert(key.clone(), new.clone());
            }
            Outcome::Swapped(swapped)
        }
    }
}

/// Simulates clients tick by tick: each tick every client may invoke, take effect (applying to
/// the register map at that instant) or return. Intervals overlap at random.
fn generate(rng: &mut Rng, shape: &Shape) -> Vec<Operation> {
    let mut registers = BTreeMap::new();
    let mut history: Vec<Operation> = Vec::new();
    let mut clients: Vec<Client> = (0..shape.clients).map(|_| Client::Idle).collect();
    let mut open = 0;
    let mut now = 0;
    while history.len() < shape.operations || open > 0 {
        now += 1 + rng.below(3);
        for (client, state) in clients.iter_mut().enumerate() {
            match std::mem::replace(state, Client::Idle) {
                Client::Idle if history.len() < shape.operations && rng.chance(40) => {
                    history.push(Operation {
                        client: client as u64,
                        op: random_op(rng, shape),
                        invoked_at: now,
                        completed: None,
                    });
                    let lost = rng.chance(shape.indeterminate_percent / 2);
                    *state = Client::Invoked { index: history.len() - 1, lost };
                    open += 1;
                }
                Client::Idle => {}
                Client::Invoked { lost: true, .. } if rng.chance(30) => open -= 1,
                Client::Invoked { index, lost: false } if rng.chance(40) => {
                    let outcome = apply(&mut registers, &history[index].op);
                    *state = Client::Applied { index, outcome };
                }
                invoked @ Client::Invoked { .. } => *state = invoked,
                Client::Applied { index, outcome } if rng.chance(40) => {
                    // Half the indeterminate ones took effect but the reply was lost.
                    if !rng.chance(shape.indeterminate_percent / 2) {
                        history[index].completed = Some((now, outcome));
                    }
                    open -= 1;
                }
                applied @ Client::Applied { .. } => *state = applied,
            }
        }
    }
    history
}

/// Changes one completed read, chosen at random, to return a value nothing wrote. Returns its
/// key, or `None` when the history has no completed read.
fn corrupt_one_read(rng: &mut Rng, history: &mut [Operation]) -> Option<String> {
    let reads: Vec<usize> = (0..history.len())
        .filter(|&index| {
            matches!(history[index].op, Op::Get { .. }) && history[index].completed.is_some()
        })
        .collect();
    if reads.is_empty() {
        return None;
    }
    let index = reads[rng.below(reads.len() as u64) as usize];
    let (_, outcome) = history[index].completed.as_mut().expect("chosen among completed reads");
    *outcome = Outcome::Value(Some("never written".into()));
    Some(history[index].op.key().to_owned())
}

fn run(seed: u64, histories: usize, shape: &Shape) {
    let mut rng = Rng(seed);
    let budget = Budget::default();
    for round in 0..histories {
        let mut history = generate(&mut rng, shape);
        let verdict = check(&history, &budget);
        assert_eq!(verdict, Verdict::Linearizable, "seed {seed} round {round}: {verdict:#?}");
        let Some(key) = corrupt_one_read(&mut rng, &mut history) else { continue };
        match check(&history, &budget) {
            Verdict::NotLinearizable { key: failed, explanation } => {
                assert_eq!(failed, key, "seed {seed} round {round}: {explanation}");
                assert!(explanation.contains("never written"), "{explanation}");
            }
            other => panic!("seed {seed} round {round}: corrupted history gave {other:#?}"),
        }
    }
}

#[test]
fn small_random_histories_pass_and_fail_when_corrupted() {
    // Goal: many small, highly concurrent histories, with indeterminate operations, are accepted,
    // and each is rejected once a read returns a never-written value.
    let shape = Shape { operations: 60, clients: 5, keys: 2, indeterminate_percent: 10, values: 4 };
    run(1, 300, &shape);
}

#[test]
fn long_random_histories_pass_and_fail_when_corrupted() {
    // Goal: the search stays fast on thousands of operations of one key.
    let shape =
        Shape { operations: 3000, clients: 6, keys: 1, indeterminate_percent: 0, values: 4 };
    run(5, 3, &shape);
}

#[test]
fn long_random_histories_with_indeterminate_operations() {
    // Goal: timeouts (indeterminate writes that took effect or not) on a long history with
    // varied values are resolved without exhausting the budget, both ways.
    let shape =
        Shape { operations: 1000, clients: 4, keys: 1, indeterminate_percent: 2, values: 1000 };
    run(3, 4, &shape);
}

#[test]
fn generated_histories_are_concurrent() {
    // Goal: the generator really produces overlapping intervals and indeterminate operations,
    // so the tests above exercise the search and not just a sequence.
    let shape =
        Shape { operations: 500, clients: 5, keys: 1, indeterminate_percent: 10, values: 4 };
    let history = generate(&mut Rng(3), &shape);
    let overlapping = history
        .windows(2)
        .filter(|pair| pair[0].completed.as_ref().map_or(true, |(at, _)| *at >= pair[1].invoked_at))
        .count();
    let indeterminate = history.iter().filter(|operation| operation.completed.is_none()).count();
    assert!(overlapping > 100, "{overlapping}");
    assert!(indeterminate > 10, "{indeterminate}");
}
