//! The per-key search: Wing & Gong's depth-first search over minimal operations, with Lowe's
//! cache of visited configurations and a doubly linked event list edited in place
//! ("lift"/"unlift", as in Lowe 2017 §3 and the dancing-links trick). The algorithm is explained
//! in the crate documentation; this module is its implementation.

use std::collections::HashMap;
use std::time::Instant;

use crate::explain::{self, Failure};
use crate::model::{Compiled, Register, StateId, ABSENT};
use crate::{Budget, Op, Operation, Verdict};

/// How many steps run between two reads of the wall clock (when a deadline is set): reading it
/// every step would cost more than the step.
const DEADLINE_CHECK_STEPS: u64 = 4096;

/// End of a list.
const NIL: usize = usize::MAX;
/// Head of the main list: calls of completed operations and all returns, by time.
const HEAD_MAIN: usize = 0;
/// Head of the side list: calls of indeterminate operations, by invocation time.
const HEAD_SIDE: usize = 1;

/// One operation of the partition, as the search sees it.
pub(crate) struct Entry<'a> {
    /// The number shown to people: the operation's index in the caller's slice.
    pub(crate) label: usize,
    pub(crate) operation: &'a Operation,
    pub(crate) compiled: Compiled,
}

impl Entry<'_> {
    pub(crate) fn completed_at(&self) -> Option<u64> {
        self.operation.completed.as_ref().map(|(at, _)| *at)
    }
}

/// The two event lists, threaded through shared `next`/`prev` arrays. Node 0 and 1 are the
/// heads; every other node is the call or the return of one operation. Removing a node keeps
/// its own links, so re-inserting nodes in the reverse order of removal restores the list.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    time: Vec<u64>,
    /// The operation of a node; `NIL` for the heads.
    operation_of: Vec<usize>,
    is_call: Vec<bool>,
    call_of: Vec<usize>,
    /// `NIL` for indeterminate operations, which have no return.
    return_of: Vec<usize>,
}

impl Events {
    fn new(entries: &[Entry]) -> Self {
        // (time, is_return, operation): at equal times calls sort before returns, so an
        // operation invoked at the instant another completes counts as concurrent with it.
        let mut main: Vec<(u64, bool, usize)> = Vec::new();
        let mut side: Vec<(u64, bool, usize)> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let invoked_at = entry.operation.invoked_at;
            match entry.completed_at() {
                Some(completed_at) => {
                    main.push((invoked_at, false, index));
                    main.push((completed_at, true, index));
                }
                None => side.push((invoked_at, false, index)),
            }
        }
        main.sort_unstable();
        side.sort_unstable();

        let node_count = 2 + main.len() + side.len();
        let mut events = Events {
            next: vec![NIL; node_count],
            prev: vec![NIL; node_count],
            time: vec![0; node_count],
            operation_of: vec![NIL; node_count],
            is_call: vec![false; node_count],
            call_of: vec![NIL; entries.len()],
            return_of: vec![NIL; entries.len()],
        };
        let mut node = 2;
        for (head, list) in [(HEAD_MAIN, &main), (HEAD_SIDE, &side)] {
            let mut last = head;
            for &(time, is_return, operation) in list {
                events.next[last] = node;
                events.prev[node] = last;
                events.time[node] = time;
                events.operation_of[node] = operation;
                events.is_call[node] = !is_return;
                if is_return {
                    events.return_of[operation] = node;
                } else {
                    events.call_of[operation] = node;
                }
                last = node;
                node += 1;
            }
        }
        events
    }

    fn unlink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = after;
        if after != NIL {
            self.prev[after] = before;
        }
    }

    fn relink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = node;
        if after != NIL {
            self.prev[after] = node;
        }
    }

    /// Removes a linearized operation's call and return.
    fn lift(&mut self, operation: usize) {
        self.unlink(self.call_of[operation]);
        if self.return_of[operation] != NIL {
            self.unlink(self.return_of[operation]);
        }
    }

    /// Undoes the latest `lift`, which must have been of `operation`.
    fn unlift(&mut self, operation: usize) {
        if self.return_of[operation] != NIL {
            self.relink(self.return_of[operation]);
        }
        self.relink(self.call_of[operation]);
    }
}

/// The set of linearized operations, one bit each.
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Self {
        Bitset { words: vec![0; bits.div_ceil(64)] }
    }

    fn set(&mut self, bit: usize) {
        self.words[bit / 64] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: usize) {
        self.words[bit / 64] &= !(1 << (bit % 64));
    }

    fn contains(&self, bit: usize) -> bool {
        self.words[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// The completed half of a visited configuration: which completed operations are linearized,
/// and the register state. The set is stored compressed: completed operations are numbered by
/// invocation and linearized ones form mostly a prefix, so the key keeps the count of leading
/// all-ones words and the words after it up to the last non-zero one. Equal sets give equal
/// keys, so equality stays exact.
#[derive(PartialEq, Eq, Hash)]
struct CompletedKey {
    full_words: u32,
    rest: Box<[u64]>,
    state: StateId,
}

impl CompletedKey {
    fn new(linearized: &Bitset, state: StateId) -> Self {
        let words = &linearized.words;
        let full = words.iter().take_while(|&&word| word == u64::MAX).count();
        let end = words.iter().rposition(|&word| word != 0).map_or(full, |last| last + 1);
        let end = end.max(full);
        CompletedKey {
            full_words: u32::try_from(full).expect("partition too large"),
            rest: words[full..end].into(),
            state,
        }
    }
}

/// The indeterminate half of a visited configuration; see `Search::visit`.
struct Visited {
    indeterminate: Box<[u64]>,
    restriction: Option<(usize, StateId)>,
}

/// Whether every bit of `small` is set in `large` (same length).
fn is_subset(small: &[u64], large: &[u64]) -> bool {
    small.iter().zip(large).all(|(small, large)| small & !large == 0)
}

/// Where the search looks for the next candidate.
#[derive(Clone, Copy)]
enum Cursor {
    /// Scanning the main list; a return ends the completed candidates.
    Main(usize),
    /// Scanning the side list for indeterminate operations invoked no later than `bound_at`,
    /// the completion time of `bound_operation`, the first pending return.
    Side { node: usize, bound_at: u64, bound_operation: usize },
}

/// One linearized operation on the stack, with what is needed to undo it and resume.
struct Frame {
    operation: usize,
    state_before: StateId,
    /// `Some((bound_at, bound_operation))` when it was taken from the side list.
    side_bound: Option<(u64, usize)>,
}

/// Runs the search over one key's operations. `operations` pairs each operation with the label
/// (index) that explanations show.
pub(crate) fn check_partition(
    key: &str,
    operations: &[(usize, &Operation)],
    budget: &Budget,
) -> Verdict {
    let mut register = Register::new();
    let mut entries: Vec<Entry> = operations
        .iter()
        // An indeterminate read changes nothing and constrains nothing: leave it out.
        .filter(|(_, operation)| {
            operation.completed.is_some() || !matches!(operation.op, Op::Get { .. })
        })
        .map(|&(label, operation)| Entry {
            label,
            operation,
            compiled: register
                .compile(&operation.op, operation.completed.as_ref().map(|(_, outcome)| outcome)),
        })
        .collect();
    // Number operations by invocation so the linearized set is mostly a prefix (see
    // `CompletedKey`); the label keeps the caller's numbering.
    entries.sort_by_key(|entry| (entry.operation.invoked_at, entry.label));
    Search::new(key, &entries, register, budget).run()
}

struct Search<'a> {
    key: &'a str,
    entries: &'a [Entry<'a>],
    register: Register,
    budget: &'a Budget,
    events: Events,
    /// Each operation's number within its class (completed or indeterminate), its bit in the
    /// matching set below.
    rank: Vec<usize>,
    completed_linearized_set: Bitset,
    indeterminate_linearized_set: Bitset,
    /// Lowe's cache with dominance: for each (completed set, state) visited, the sets of
    /// indeterminate operations it was visited with.
    cache: HashMap<CompletedKey, Vec<Visited>>,
    /// For an indeterminate operation, the latest one invoked before it that is identical
    /// (`NIL` if none); see `may_place`.
    previous_identical: Vec<usize>,
    configurations: u64,
    stack: Vec<Frame>,
    state: StateId,
    completed_total: usize,
    completed_linearized: usize,
    steps: u64,
    /// The deepest stack seen at a dead end, the state after it, and the operation whose
    /// return ended it: the material of the explanation.
    best_prefix: Vec<usize>,
    best_state: StateId,
    best_stuck: Option<usize>,
}

impl<'a> Search<'a> {
    fn new(key: &'a str, entries: &'a [Entry<'a>], register: Register, budget: &'a Budget) -> Self {
        let mut counts = [0, 0];
        let rank = entries
            .iter()
            .map(|entry| {
                let count = &mut counts[usize::from(entry.completed_at().is_none())];
                *count += 1;
                *count - 1
            })
            .collect();
        let [completed_total, indeterminate_total] = counts;
        let mut latest: HashMap<&Op, usize> = HashMap::new();
        let previous_identical = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| match entry.completed_at() {
                Some(_) => NIL,
                None => latest.insert(&entry.operation.op, index).unwrap_or(NIL),
            })
            .collect();
        Search {
            key,
            entries,
            register,
            budget,
            events: Events::new(entries),
            rank,
            completed_linearized_set: Bitset::new(completed_total),
            indeterminate_linearized_set: Bitset::new(indeterminate_total),
            cache: HashMap::new(),
            previous_identical,
            configurations: 0,
            stack: Vec::new(),
            state: ABSENT,
            completed_total,
            completed_linearized: 0,
            steps: 0,
            best_prefix: Vec::new(),
            best_state: ABSENT,
            best_stuck: None,
        }
    }

    fn run(mut self) -> Verdict {
        let mut cursor = Cursor::Main(self.events.next[HEAD_MAIN]);
        loop {
            // Indeterminate operations still pending can all be placed at the end (any result
            // is consistent) or dropped, so this is success.
            if self.completed_linearized == self.completed_total {
                return Verdict::Linearizable;
            }
            if let Some(reason) = self.out_of_budget() {
                return Verdict::Unknown { key: self.key.to_owned(), reason };
            }
            self.steps += 1;
            cursor = match cursor {
                Cursor::Main(node) => {
                    assert!(node != NIL, "a completed operation is pending, so is its return");
                    let operation = self.events.operation_of[node];
                    if !self.events.is_call[node] {
                        Cursor::Side {
                            node: self.events.next[HEAD_SIDE],
                            bound_at: self.events.time[node],
                            bound_operation: operation,
                        }
                    } else if self.try_linearize(operation, None) {
                        Cursor::Main(self.events.next[HEAD_MAIN])
                    } else {
                        Cursor::Main(self.events.next[node])
                    }
                }
                Cursor::Side { node, bound_at, bound_operation } => {
                    if node == NIL || self.events.time[node] > bound_at {
                        match self.backtrack(bound_operation) {
                            Some(cursor) => cursor,
                            None => return self.not_linearizable(),
                        }
                    } else {
                        let operation = self.events.operation_of[node];
                        if self.may_place(operation)
                            && self.try_linearize(operation, Some((bound_at, bound_operation)))
                        {
                            Cursor::Main(self.events.next[HEAD_MAIN])
                        } else {
                            Cursor::Side { node: self.events.next[node], bound_at, bound_operation }
                        }
                    }
                }
            };
        }
    }

    fn out_of_budget(&self) -> Option<String> {
        if self.steps >= self.budget.steps_max {
            return Some(format!(
                "step budget of {} exhausted; {}",
                self.budget.steps_max,
                self.progress()
            ));
        }
        if let Some(deadline) = self.budget.deadline {
            if self.steps % DEADLINE_CHECK_STEPS == 0 && Instant::now() >= deadline {
                return Some(format!(
                    "deadline passed after {} steps; {}",
                    self.steps,
                    self.progress()
                ));
            }
        }
        None
    }

    fn progress(&self) -> String {
        format!(
            "{} operations ({} completed), {} configurations visited, longest linearizable \
             prefix so far {} operations",
            self.entries.len(),
            self.completed_total,
            self.configurations,
            self.best_prefix.len().max(self.stack.len())
        )
    }

    /// Symmetry reduction for indeterminate operations: identical ones are placed in
    /// invocation order. If a linearization uses a later one where an earlier identical one is
    /// still unused, swapping the two gives another valid linearization (the earlier was
    /// invoked first, both have the same effect, and any result is consistent for both), so
    /// only these canonical orders need exploring.
    fn may_place(&self, operation: usize) -> bool {
        let previous = self.previous_identical[operation];
        previous == NIL || self.indeterminate_linearized_set.contains(self.rank[previous])
    }

    /// Places `operation` next if the register allows it and the resulting configuration is
    /// new; returns whether it did.
    fn try_linearize(&mut self, operation: usize, side_bound: Option<(u64, usize)>) -> bool {
        let entries = self.entries;
        let entry = &entries[operation];
        let Some(state_after) = self.register.step(self.state, &entry.compiled, operation) else {
            return false;
        };
        let completed = entry.completed_at().is_some();
        if !completed && state_after == self.state {
            // An indeterminate operation that changes nothing here (a CAS that does not swap,
            // a put of the current value) leads to a configuration the current one dominates
            // (see `visit`): skip it without a cache lookup.
            return false;
        }
        if self.follows_latest_needlessly(operation, state_after) {
            return false;
        }
        let rank = self.rank[operation];
        self.linearized_set(completed).set(rank);
        let restriction = if completed { None } else { Some((operation, self.state)) };
        if !self.visit(state_after, restriction) {
            self.linearized_set(completed).clear(rank);
            return false;
        }
        self.stack.push(Frame { operation, state_before: self.state, side_bound });
        self.state = state_after;
        if completed {
            self.completed_linearized += 1;
        }
        self.events.lift(operation);
        true
    }

    /// Whether `operation`, which would bring the register to `state_after`, may be skipped
    /// because the operation placed just before it is indeterminate and is either absorbed by
    /// it or commutes with it.
    ///
    /// Canonical linearizations: an indeterminate operation `v` immediately followed by `x` can
    /// be dropped when `x` absorbs it (`x` gives the same result and leaves the same state
    /// with or without `v` before it, as a put does), and can move after `x` when they commute
    /// (same result for `x`, same state after both), because `v` has no result to honour and
    /// no completion that real time could violate. Repeating these moves, and dropping
    /// indeterminate operations that change nothing or come last, turns any linearization into
    /// one where every indeterminate operation changes the state and is immediately followed by
    /// an operation that neither absorbs nor commutes with it (typically a read that sees its
    /// effect). The search explores only those; the alternatives are explored from the
    /// configuration before `v`, where `x` was tried too.
    fn follows_latest_needlessly(&mut self, operation: usize, state_after: StateId) -> bool {
        let Some(latest) = self.stack.last() else { return false };
        let entries = self.entries;
        let latest_entry = &entries[latest.operation];
        if latest_entry.completed_at().is_some() {
            return false;
        }
        let Some(without_latest) =
            self.register.step(latest.state_before, &entries[operation].compiled, operation)
        else {
            return false;
        };
        if without_latest == state_after {
            return true;
        }
        // Moving `latest` after `operation` is the canonical form only if the symmetry
        // reduction lets that order happen: an identical operation invoked later may never
        // precede it, so the two must be allowed side by side in invocation order.
        let identical_successor = self.previous_identical[operation] == latest.operation;
        !identical_successor
            && self.register.step(without_latest, &latest_entry.compiled, latest.operation)
                == Some(state_after)
    }

    fn linearized_set(&mut self, completed: bool) -> &mut Bitset {
        if completed {
            &mut self.completed_linearized_set
        } else {
            &mut self.indeterminate_linearized_set
        }
    }

    /// Records the current sets with `state` as visited; returns false when an equal or
    /// dominating configuration was visited before, so nothing new lies below this one.
    /// `restriction` is `Some((operation, state before it))` when the configuration was just
    /// reached by placing an indeterminate operation: its exploration is then limited to what
    /// may follow that operation (see `follows_latest_needlessly`), so it only dominates or is
    /// dominated by configurations with the same restriction or none.
    ///
    /// Dominance: with the same completed operations linearized and the same state, an
    /// unrestricted configuration that used a subset of the indeterminate operations can do
    /// everything this one can, since the extra ones may simply never take effect, and which
    /// operations may go next depends only on the pending completed ones. With no indeterminate
    /// operations this is exactly Lowe's cache of equal configurations.
    fn visit(&mut self, state: StateId, restriction: Option<(usize, StateId)>) -> bool {
        let key = CompletedKey::new(&self.completed_linearized_set, state);
        let taken = self.indeterminate_linearized_set.words.as_slice();
        let seen = self.cache.entry(key).or_default();
        let dominates = |earlier: &Visited, later_restriction, later: &[u64]| {
            (earlier.restriction.is_none() || earlier.restriction == later_restriction)
                && is_subset(&earlier.indeterminate, later)
        };
        if seen.iter().any(|earlier| dominates(earlier, restriction, taken)) {
            return false;
        }
        // Keep the list short: the configurations this one dominates are redundant now.
        let this = Visited { indeterminate: taken.into(), restriction };
        seen.retain(|later| !dominates(&this, later.restriction, &later.indeterminate));
        seen.push(this);
        self.configurations += 1;
        true
    }

    /// At a dead end (`stuck` must take effect next, and nothing can): records the deepest
    /// prefix, undoes the latest placement and returns where to resume, or `None` when the
    /// stack is empty and every order has been tried.
    fn backtrack(&mut self, stuck: usize) -> Option<Cursor> {
        if self.best_stuck.is_none() || self.stack.len() > self.best_prefix.len() {
            self.best_prefix = self.stack.iter().map(|frame| frame.operation).collect();
            self.best_state = self.state;
            self.best_stuck = Some(stuck);
        }
        let frame = self.stack.pop()?;
        let operation = frame.operation;
        let completed = self.entries[operation].completed_at().is_some();
        let rank = self.rank[operation];
        assert!(self.linearized_set(completed).contains(rank));
        self.linearized_set(completed).clear(rank);
        self.state = frame.state_before;
        if completed {
            self.completed_linearized -= 1;
        }
        self.events.unlift(operation);
        let after = self.events.next[self.events.call_of[operation]];
        Some(match frame.side_bound {
            None => Cursor::Main(after),
            Some((bound_at, bound_operation)) => {
                Cursor::Side { node: after, bound_at, bound_operation }
            }
        })
    }

    fn not_linearizable(self) -> Verdict {
        let stuck = self.best_stuck.expect("a dead end was recorded before giving up");
        let failure = Failure {
            key: self.key,
            entries: self.entries,
            register: &self.register,
            prefix: &self.best_prefix,
            state_after_prefix: self.best_state,
            stuck,
        };
        Verdict::NotLinearizable {
            key: self.key.to_owned(),
            explanation: explain::explain(&failure),
        }
    }
}
