//! Checkers that judge a system from outside. This crate holds the linearizability checker for
//! histories of a key-value store whose keys are registers (`Put`, `Get`, `Append`, `Cas`).
//!
//! A client history is a list of [`Operation`]s: who invoked what, when, and when it completed
//! with which [`Outcome`], or `completed: None` when the client never learnt (a timeout, a lost
//! connection). [`check`] answers whether some sequential order of the operations, respecting
//! real time, explains every result: [`Verdict::Linearizable`], [`Verdict::NotLinearizable`]
//! with an account of the failure, or [`Verdict::Unknown`] when the [`Budget`] ran out first.
//! The answer never depends on the machine: the search is bounded by a step count, and the
//! optional wall-clock deadline only ever turns an answer into `Unknown`.
//!
//! ```
//! use check::{check, Budget, Op, Operation, Outcome, Verdict};
//!
//! let put = Op::Put { key: "x".into(), value: "1".into() };
//! let get = Op::Get { key: "x".into() };
//! let history = [
//!     Operation { client: 1, op: put, invoked_at: 0, completed: Some((10, Outcome::Ok)) },
//!     // Invoked after the put completed, yet it misses it: a stale read.
//!     Operation { client: 2, op: get, invoked_at: 11, completed: Some((12, Outcome::Value(None))) },
//! ];
//! assert!(matches!(check(&history, &Budget::default()), Verdict::NotLinearizable { .. }));
//! ```
//!
//! # The algorithm as implemented
//!
//! **Partition by key.** Every operation touches one key and keys are independent registers, so
//! the history is linearizable iff each key's sub-history is (locality, Herlihy & Wing 1990
//! §3.3; exploited for checking as P-compositionality by Horn & Kroening, "Faster
//! linearizability checking via P-compositionality", FORTE 2015). [`check`] splits the history
//! and runs [`check_key`]'s search on each key in key order.
//!
//! **Per key: Wing & Gong's search** ("Testing and verifying concurrent objects", JPDC 1993),
//! in the form Lowe gives it ("Testing for linearizability", CCPE 29(4), 2017, §3). The
//! sequential specification is a register holding `Option<String>` (absent = `None`; `Append`
//! onto absent appends to ""; `Cas` swaps iff the current value equals `expected`). Invocations
//! and completions form a list of events ordered by time. An operation is *minimal* when it was
//! invoked no later than the earliest completion among the completed operations not yet
//! linearized: exactly those may take effect next without contradicting real time. The search
//! is depth-first: take the next minimal operation, apply it to the register, and if the
//! register could have returned what the client saw, remove its events from the list ("lift")
//! and recurse; when no minimal operation fits, pop the last one, put its events back
//! ("unlift", undone in reverse order so the list is restored exactly) and try the next one.
//! The key is linearizable as soon as every completed operation is placed, not linearizable
//! when the search backtracks past its first choice.
//!
//! **Lowe's cache.** Two orders that linearize the same set of operations and leave the register
//! in the same state have the same futures, so each (set, state) configuration is explored once:
//! the set is a bitset of `u64` words (stored compressed, since linearized operations are
//! mostly a prefix in invocation order) and register states are interned strings, so that a
//! configuration hashes in a few words. The cache is extended with *dominance* for
//! indeterminate operations: a configuration is also skipped when one with the same completed
//! operations, the same state and a subset of its indeterminate operations was visited, since
//! the extra ones might as well never have taken effect.
//!
//! **Indeterminate operations** (`completed: None`) have no completion event: each may take
//! effect at any point after its invocation, or never, with any result. They never bound the
//! minimal frontier. Because a pending one can always be placed last or dropped, the search
//! succeeds once all *completed* operations are placed. Among the minimal operations the search
//! tries completed ones first and indeterminate ones only after them, so that writes which
//! never took effect (the common case after a timeout) do not multiply the search; they are
//! still tried at every point, so the search stays complete. Three reductions keep their
//! combinations down without losing any linearization: identical indeterminate operations are
//! placed in invocation order (swapping two identical ones changes nothing observable); an
//! indeterminate operation that would not change the state where it is tried is not placed
//! there (the configuration without it dominates); and right after an indeterminate operation
//! only an operation that depends on it may follow: one it commutes with (unless it is an
//! identical one, which the first reduction already orders) or that absorbs it (a put
//! overwriting it) is skipped, because the order with the indeterminate operation moved
//! later or dropped is explored anyway. Configurations reached under that last restriction are
//! cached with it. An indeterminate `Get` has no effect and is dropped up front.
//!
//! **Time.** Times are compared, never subtracted. An operation invoked at the same instant
//! another completes counts as concurrent with it: the checker does not claim an order the
//! clocks cannot show. An outcome of the wrong kind for its operation (a `Get` that returned
//! `Swapped`) is a result no register gives: that operation can never be placed.
//!
//! **Cost.** Each step is one attempt to place an operation, a switch from completed to
//! indeterminate candidates, or one backtrack; [`Budget::steps_max`] bounds the steps of each
//! key's search. Histories whose operations overlap little take a few steps per operation;
//! adversarial ones (many concurrent or indeterminate writes) can need exponentially many, which
//! is why the answer may be `Unknown`. Memory grows with the configurations visited (one cache
//! entry per successful placement, tens of bytes each).

mod explain;
mod model;
mod search;

use std::collections::BTreeMap;
use std::time::Instant;

/// A key-value register-map operation as a client invoked it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Sets the key to `value`; returns [`Outcome::Ok`].
    Put { key: String, value: String },
    /// Reads the key; returns [`Outcome::Value`] (`None` when absent).
    Get { key: String },
    /// Concatenates `value` onto the current value (absent counts as ""); returns
    /// [`Outcome::Ok`].
    Append { key: String, value: String },
    /// Sets the key to `new` iff its current value equals `expected` (`None`: absent); returns
    /// [`Outcome::Swapped`] saying whether it did.
    Cas { key: String, expected: Option<String>, new: String },
}

impl Op {
    /// The one key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. }
            | Op::Get { key }
            | Op::Append { key, .. }
            | Op::Cas { key, .. } => key,
        }
    }
}

/// What an operation returned to its client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Value(Option<String>),
    Swapped(bool),
}

/// One operation of a history. Times are any monotonically comparable u64 (simulated ticks,
/// nanoseconds...). `completed == None` means indeterminate: the client never learnt the result
/// (timeout, lost connection), so the operation may have taken effect at any point after
/// `invoked_at`, or never.
#[derive(Clone, Debug)]
pub struct Operation {
    pub client: u64,
    pub op: Op,
    pub invoked_at: u64,
    pub completed: Option<(u64, Outcome)>,
}

/// Limits on the work of a check.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Most search steps for each key; reproducible, unlike the deadline.
    pub steps_max: u64,
    /// A wall-clock limit, read only every few thousand steps; reaching it gives `Unknown`.
    pub deadline: Option<Instant>,
}

impl Budget {
    /// The default step limit per key: a few seconds of work at most (a step takes about a
    /// tenth of a microsecond), far more than histories with bounded concurrency need.
    pub const STEPS_MAX_DEFAULT: u64 = 20_000_000;
}

impl Default for Budget {
    fn default() -> Self {
        Budget { steps_max: Self::STEPS_MAX_DEFAULT, deadline: None }
    }
}

/// The answer of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// A human-readable account: the operations of the key involved, the longest linearizable
    /// prefix found, and the operation that could not be placed.
    NotLinearizable {
        key: String,
        explanation: String,
    },
    /// The budget ran out before an answer: this claims nothing either way.
    Unknown {
        key: String,
        reason: String,
    },
}

/// Checks a whole history: linearizable iff every key's sub-history is. Returns the first
/// non-linearizable key in key order; otherwise the first key the budget could not decide,
/// if any; otherwise `Linearizable`. The budget applies to each key separately. Operations
/// are labelled by their index in `history` in explanations.
///
/// # Panics
/// If an operation completed before it was invoked (a broken recorder, not a finding).
pub fn check(history: &[Operation], budget: &Budget) -> Verdict {
    let mut partitions: BTreeMap<&str, Vec<(usize, &Operation)>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        assert_times_ordered(index, operation);
        partitions.entry(operation.op.key()).or_default().push((index, operation));
    }
    let mut undecided = None;
    for (key, operations) in &partitions {
        match search::check_partition(key, operations, budget) {
            Verdict::Linearizable => {}
            failure @ Verdict::NotLinearizable { .. } => return failure,
            unknown @ Verdict::Unknown { .. } => {
                undecided.get_or_insert(unknown);
            }
        }
    }
    undecided.unwrap_or(Verdict::Linearizable)
}

/// Checks one key's partition of a history. Operations are labelled by their index in
/// `history` in explanations.
///
/// # Panics
/// If an operation touches another key, or completed before it was invoked.
pub fn check_key(key: &str, history: &[&Operation], budget: &Budget) -> Verdict {
    let operations: Vec<(usize, &Operation)> = history.iter().copied().enumerate().collect();
    for &(index, operation) in &operations {
        assert!(
            operation.op.key() == key,
            "check_key({key:?}): operation #{index} touches key {:?}",
            operation.op.key()
        );
        assert_times_ordered(index, operation);
    }
    search::check_partition(key, &operations, budget)
}

fn assert_times_ordered(index: usize, operation: &Operation) {
    if let Some((completed_at, _)) = &operation.completed {
        assert!(
            *completed_at >= operation.invoked_at,
            "operation completed before it was invoked: {}",
            explain::describe_operation(index, operation)
        );
    }
}
