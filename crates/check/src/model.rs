//! The sequential specification of one key: a register holding `Option<String>`.
//!
//! The search compares and hashes model states millions of times, so a state is not a `String`
//! but a [`StateId`]: an index into an interner owned by the [`Register`]. `ABSENT` is the
//! absent key; every other id names one distinct string. Equal ids mean equal states, which is
//! exactly what the search's cache of visited configurations needs.
//!
//! Each operation is compiled once into an [`Effect`] (what it does to the register) and an
//! [`Expectation`] (what result the client saw), so that a step is a few integer comparisons
//! except for `Append`, whose new state is a concatenation, memoized per (state, operation).

use std::collections::HashMap;

use crate::{Op, Outcome};

/// An interned register state; [`ABSENT`] is the absent key.
pub(crate) type StateId = u32;

/// The state of a key that does not exist.
pub(crate) const ABSENT: StateId = 0;

/// What an operation does to the register.
#[derive(Clone, Debug)]
pub(crate) enum Effect {
    /// `Put`: the register now holds this state.
    Set(StateId),
    /// `Get`: no change.
    Read,
    /// `Append`: concatenate this suffix onto the current value (absent counts as "").
    Append(String),
    /// `Cas`: holds `new` afterwards iff it held `expected` before.
    CompareAndSwap { expected: StateId, new: StateId },
}

/// What result the client observed, in the register's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expectation {
    /// The client never learnt the result: any result is consistent.
    Anything,
    /// `Put` and `Append` acknowledged.
    Acknowledged,
    /// `Get` returned this state.
    Read(StateId),
    /// `Cas` reported whether it swapped.
    Swapped(bool),
    /// The outcome is of the wrong kind for the operation (a `Get` that returned `Swapped`,
    /// say): no register produces it, so the operation can never be placed.
    Impossible,
}

/// One operation compiled against a [`Register`]'s interner.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub(crate) effect: Effect,
    pub(crate) expectation: Expectation,
}

/// The register model with its state interner.
pub(crate) struct Register {
    /// `values[id]` is the string of state `id`; `values[ABSENT]` is an unused placeholder.
    values: Vec<String>,
    ids: HashMap<String, StateId>,
    /// `(state before, operation index) -> state after` for `Append`, which would otherwise
    /// allocate a concatenation on every attempt.
    appended: HashMap<(StateId, usize), StateId>,
}

impl Register {
    pub(crate) fn new() -> Self {
        Register { values: vec![String::new()], ids: HashMap::new(), appended: HashMap::new() }
    }

    /// The id of `value`, allocating one if this string was never seen.
    pub(crate) fn intern(&mut self, value: &str) -> StateId {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("more than 2^32 distinct states");
        self.values.push(value.to_owned());
        self.ids.insert(value.to_owned(), id);
        id
    }

    fn intern_option(&mut self, value: Option<&str>) -> StateId {
        value.map_or(ABSENT, |value| self.intern(value))
    }

    /// The value of a state, `None` for absent.
    pub(crate) fn value(&self, state: StateId) -> Option<&str> {
        if state == ABSENT {
            None
        } else {
            Some(&self.values[state as usize])
        }
    }

    /// Compiles an operation and the outcome its client observed (`None`: indeterminate).
    pub(crate) fn compile(&mut self, op: &Op, outcome: Option<&Outcome>) -> Compiled {
        let effect = match op {
            Op::Put { value, .. } => Effect::Set(self.intern(value)),
            Op::Get { .. } => Effect::Read,
            Op::Append { value, .. } => Effect::Append(value.clone()),
            Op::Cas { expected, new, .. } => Effect::CompareAndSwap {
                expected: self.intern_option(expected.as_deref()),
                new: self.intern(new),
            },
        };
        let expectation = match (op, outcome) {
            (_, None) => Expectation::Anything,
            (Op::Put { .. } | Op::Append { .. }, Some(Outcome::Ok)) => Expectation::Acknowledged,
            (Op::Get { .. }, Some(Outcome::Value(value))) => {
                Expectation::Read(self.intern_option(value.as_deref()))
            }
            (Op::Cas { .. }, Some(Outcome::Swapped(swapped))) => Expectation::Swapped(*swapped),
            (_, Some(_)) => Expectation::Impossible,
        };
        Compiled { effect, expectation }
    }

    /// Applies operation `index` (compiled as `compiled`) to `state`. Returns the state after
    /// it, or `None` when the register could not have produced the observed result from `state`.
    pub(crate) fn step(
        &mut self,
        state: StateId,
        compiled: &Compiled,
        index: usize,
    ) -> Option<StateId> {
        if compiled.expectation == Expectation::Impossible {
            return None;
        }
        match &compiled.effect {
            Effect::Set(value) => Some(*value),
            Effect::Read => match compiled.expectation {
                Expectation::Read(value) if value != state => None,
                _ => Some(state),
            },
            Effect::Append(suffix) => Some(self.append(state, suffix, index)),
            Effect::CompareAndSwap { expected, new } => {
                let swapped = state == *expected;
                match compiled.expectation {
                    Expectation::Swapped(observed) if observed != swapped => None,
                    _ if swapped => Some(*new),
                    _ => Some(state),
                }
            }
        }
    }

    fn append(&mut self, state: StateId, suffix: &str, index: usize) -> StateId {
        if let Some(&after) = self.appended.get(&(state, index)) {
            return after;
        }
        let mut value = self.value(state).unwrap_or("").to_owned();
        value.push_str(suffix);
        let after = self.intern(&value);
        self.appended.insert((state, index), after);
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(value: &str) -> Op {
        Op::Put { key: "k".into(), value: value.into() }
    }

    /// Goal: each operation kind moves the register and accepts exactly the results a register
    /// could return from the given state.
    #[test]
    fn steps_follow_register_semantics() {
        let mut register = Register::new();
        let a = register.intern("a");

        let compiled = register.compile(&put("a"), Some(&Outcome::Ok));
        assert_eq!(register.step(ABSENT, &compiled, 0), Some(a));

        let get_a = register.compile(&Op::Get { key: "k".into() }, Some(&Outcome::Value(None)));
        assert_eq!(register.step(ABSENT, &get_a, 1), Some(ABSENT));
        assert_eq!(register.step(a, &get_a, 1), None);

        let append = Op::Append { key: "k".into(), value: "b".into() };
        let compiled = register.compile(&append, Some(&Outcome::Ok));
        let ab = register.step(a, &compiled, 2).unwrap();
        assert_eq!(register.value(ab), Some("ab"));
        let b = register.step(ABSENT, &compiled, 2).unwrap();
        assert_eq!(register.value(b), Some("b"));

        let cas = Op::Cas { key: "k".into(), expected: None, new: "c".into() };
        let swapped = register.compile(&cas, Some(&Outcome::Swapped(true)));
        let c = register.step(ABSENT, &swapped, 3).unwrap();
        assert_eq!(register.value(c), Some("c"));
        assert_eq!(register.step(a, &swapped, 3), None);
        let not_swapped = register.compile(&cas, Some(&Outcome::Swapped(false)));
        assert_eq!(register.step(a, &not_swapped, 3), Some(a));
        assert_eq!(register.step(ABSENT, &not_swapped, 3), None);
        let unknown = register.compile(&cas, None);
        assert_eq!(register.step(ABSENT, &unknown, 3), Some(c));
        assert_eq!(register.step(a, &unknown, 3), Some(a));

        let wrong_kind = register.compile(&put("a"), Some(&Outcome::Swapped(true)));
        assert_eq!(register.step(ABSENT, &wrong_kind, 4), None);
    }

    /// Goal: the empty string and the absent key are different states.
    #[test]
    fn empty_string_is_not_absent() {
        let mut register = Register::new();
        assert_ne!(register.intern(""), ABSENT);
        let empty = register.intern("");
        assert_eq!(register.value(empty), Some(""));
        assert_eq!(register.value(ABSENT), None);
    }
}
