//! Builders for hand-written histories: `put(client, key, value, invoked_at, completed_at)` and
//! friends, with `None` as the completion time for an indeterminate operation.

#![allow(dead_code)] // Each test file uses a different subset.

use check::{Op, Operation, Outcome};

fn operation(client: u64, op: Op, invoked_at: u64, completed: Option<(u64, Outcome)>) -> Operation {
    Operation { client, op, invoked_at, completed }
}

fn finish(completed_at: Option<u64>, outcome: Outcome) -> Option<(u64, Outcome)> {
    completed_at.map(|at| (at, outcome))
}

pub fn put(
    client: u64,
    key: &str,
    value: &str,
    invoked_at: u64,
    completed_at: Option<u64>,
) -> Operation {
    let op = Op::Put { key: key.into(), value: value.into() };
    operation(client, op, invoked_at, finish(completed_at, Outcome::Ok))
}

pub fn append(
    client: u64,
    key: &str,
    value: &str,
    invoked_at: u64,
    completed_at: Option<u64>,
) -> Operation {
    let op = Op::Append { key: key.into(), value: value.into() };
    operation(client, op, invoked_at, finish(completed_at, Outcome::Ok))
}

/// A completed read that returned `value`.
pub fn get(
    client: u64,
    key: &str,
    value: Option<&str>,
    invoked_at: u64,
    completed_at: u64,
) -> Operation {
    let op = Op::Get { key: key.into() };
    let outcome = Outcome::Value(value.map(str::to_owned));
    operation(client, op, invoked_at, Some((completed_at, outcome)))
}

/// A compare-and-swap; `swapped` is `None` when indeterminate.
pub fn cas(
    client: u64,
    key: &str,
    expected: Option<&str>,
    new: &str,
    invoked_at: u64,
    completed: Option<(u64, bool)>,
) -> Operation {
    let op = Op::Cas { key: key.into(), expected: expected.map(str::to_owned), new: new.into() };
    let completed = completed.map(|(at, swapped)| (at, Outcome::Swapped(swapped)));
    operation(client, op, invoked_at, completed)
}
