//! Hand-written histories with known answers: the checker must reject each classic anomaly and
//! accept the legitimate behaviours that look similar.

mod common;

use std::time::Instant;

use check::{check, check_key, Budget, Op, Operation, Outcome, Verdict};
use common::{append, cas, get, put};

fn verdict(history: &[Operation]) -> Verdict {
    check(history, &Budget::default())
}

#[track_caller]
fn assert_linearizable(history: &[Operation]) {
    let verdict = verdict(history);
    assert_eq!(verdict, Verdict::Linearizable, "{verdict:#?}");
}

/// Asserts the history is rejected on `key` and returns the explanation.
#[track_caller]
fn assert_not_linearizable(history: &[Operation], key: &str) -> String {
    match verdict(history) {
        Verdict::NotLinearizable { key: failed, explanation } => {
            assert_eq!(failed, key, "{explanation}");
            explanation
        }
        other => panic!("expected NotLinearizable on {key:?}, got {other:#?}"),
    }
}

fn rekey(operation: &Operation, key: &str) -> Operation {
    let op = match operation.op.clone() {
        Op::Put { value, .. } => Op::Put { key: key.into(), value },
        Op::Get { .. } => Op::Get { key: key.into() },
        Op::Append { value, .. } => Op::Append { key: key.into(), value },
        Op::Cas { expected, new, .. } => Op::Cas { key: key.into(), expected, new },
    };
    Operation { op, ..operation.clone() }
}

#[test]
fn stale_read_is_rejected() {
    // Goal: a read after a completed newer write must not return the older value.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "x", "b", 20, Some(30)),
        get(2, "x", Some("a"), 40, 50),
    ];
    assert_not_linearizable(&history, "x");
}

#[test]
fn lost_write_is_rejected() {
    // Goal: a completed write must be visible to reads invoked after it, here as absent.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        get(2, "x", Some("a"), 12, 14),
        put(1, "x", "b", 20, Some(30)),
        get(2, "x", Some("a"), 40, 50),
        get(3, "x", Some("a"), 60, 70),
    ];
    assert_not_linearizable(&history, "x");
    let never_visible = [put(1, "x", "a", 0, Some(10)), get(2, "x", None, 20, 30)];
    assert_not_linearizable(&never_visible, "x");
}

#[test]
fn read_of_never_written_value_is_rejected() {
    // Goal: a read may only return a value some write produced.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 0, Some(10)),
        get(3, "x", Some("c"), 5, 15),
    ];
    assert_not_linearizable(&history, "x");
}

#[test]
fn non_monotonic_reads_are_rejected() {
    // Goal: two sequential reads must not see a new value and then an older one.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 0, Some(100)),
        get(3, "x", Some("b"), 20, 30),
        get(3, "x", Some("a"), 40, 50),
    ];
    assert_not_linearizable(&history, "x");
    // Control: the same reads in the other order are fine, "b" being the later write.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 0, Some(100)),
        get(3, "x", Some("a"), 20, 30),
        get(3, "x", Some("b"), 40, 50),
    ];
    assert_linearizable(&history);
}

#[test]
fn cas_against_a_value_that_could_not_be_current_is_rejected() {
    // Goal: a successful CAS needs its expected value to be current at some instant within it.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "x", "b", 20, Some(30)),
        cas(2, "x", Some("a"), "c", 40, Some((50, true))),
    ];
    assert_not_linearizable(&history, "x");
    // Control: overlapping the second put, the CAS may take effect before it.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "x", "b", 20, Some(30)),
        cas(2, "x", Some("a"), "c", 25, Some((50, true))),
        get(3, "x", Some("b"), 60, 70),
    ];
    assert_linearizable(&history);
    // A failed CAS is a claim too: it says the value was not the expected one.
    let history =
        [put(1, "x", "a", 0, Some(10)), cas(2, "x", Some("a"), "c", 20, Some((30, false)))];
    assert_not_linearizable(&history, "x");
    // CAS on an absent key.
    let history = [
        cas(1, "x", None, "c", 0, Some((10, true))),
        cas(2, "x", None, "d", 20, Some((30, false))),
        get(3, "x", Some("c"), 40, 50),
    ];
    assert_linearizable(&history);
}

#[test]
fn duplicated_append_is_rejected() {
    // Goal: an append invoked once must not appear twice in a value.
    let history = [
        append(1, "x", "a", 0, Some(10)),
        append(1, "x", "b", 20, Some(30)),
        get(2, "x", Some("abb"), 40, 50),
    ];
    assert_not_linearizable(&history, "x");
    let history = [append(1, "x", "a", 0, Some(10)), get(2, "x", Some("aa"), 20, 30)];
    assert_not_linearizable(&history, "x");
    // Control: concurrent appends land in either order, once each.
    let history = [
        append(1, "x", "a", 0, Some(10)),
        append(2, "x", "b", 0, Some(10)),
        get(3, "x", Some("ba"), 20, 30),
    ];
    assert_linearizable(&history);
}

#[test]
fn concurrent_writes_may_be_read_in_either_order() {
    // Goal: reads overlapping two concurrent writes may see them in either order, once chosen.
    for first in ["a", "b"] {
        let history = [
            put(1, "x", "a", 0, Some(10)),
            put(2, "x", "b", 0, Some(10)),
            get(3, "x", Some(first), 20, 30),
            get(4, "x", Some(first), 40, 50),
        ];
        assert_linearizable(&history);
    }
    // Reads during the writes can even see both values, one after the other.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 0, Some(10)),
        get(3, "x", None, 1, 2),
        get(3, "x", Some("b"), 3, 4),
        get(3, "x", Some("a"), 5, 6),
        get(4, "x", Some("a"), 20, 30),
    ];
    assert_linearizable(&history);
}

#[test]
fn indeterminate_writes_may_be_seen_or_not() {
    // Goal: an indeterminate write may take effect later than its invocation, or never.
    let seen_late = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 5, None),
        get(3, "x", Some("a"), 20, 30),
        get(3, "x", Some("b"), 40, 50),
    ];
    assert_linearizable(&seen_late);
    let never_seen = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 5, None),
        get(3, "x", Some("a"), 20, 30),
        get(3, "x", Some("a"), 40, 50),
    ];
    assert_linearizable(&never_seen);
    // It still takes effect at most once: after "b" was seen, "a" cannot come back.
    let flip_flop = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 5, None),
        get(3, "x", Some("b"), 20, 30),
        get(3, "x", Some("a"), 40, 50),
    ];
    assert_not_linearizable(&flip_flop, "x");
}

#[test]
fn indeterminate_operation_may_explain_a_read() {
    // Goal: a read of a value only an indeterminate write produced forces that write in.
    let history = [put(1, "x", "a", 0, None), get(2, "x", Some("a"), 10, 20)];
    assert_linearizable(&history);
    let history = [
        cas(1, "x", None, "a", 0, None),
        append(2, "x", "b", 1, None),
        get(3, "x", Some("ab"), 10, 20),
    ];
    assert_linearizable(&history);
    // Two indeterminate writes, each seen in turn, in the order opposite to their invocation.
    let history = [
        put(1, "x", "a", 0, None),
        put(2, "x", "b", 1, None),
        get(3, "x", Some("b"), 10, 11),
        get(3, "x", Some("a"), 12, 13),
    ];
    assert_linearizable(&history);
    // But not one invoked after the read completed.
    let history = [get(2, "x", Some("a"), 10, 20), put(1, "x", "a", 30, None)];
    assert_not_linearizable(&history, "x");
    // Two identical indeterminate appends, both seen: they must be able to stand side by side
    // (the symmetry reduction orders them, so "they commute" must not push one later).
    let history = [
        put(1, "x", "a", 0, Some(1)),
        append(2, "x", "b", 2, None),
        append(3, "x", "b", 3, None),
        get(4, "x", Some("abb"), 10, 11),
    ];
    assert_linearizable(&history);
    let history = [
        put(1, "x", "a", 0, Some(1)),
        append(2, "x", "b", 2, None),
        append(3, "x", "b", 3, None),
        get(4, "x", Some("abbb"), 10, 11),
    ];
    assert_not_linearizable(&history, "x");
}

#[test]
fn keys_are_independent() {
    // Goal: each key is its own register; a failure is reported on the key that has it.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "y", "b", 20, Some(30)),
        get(2, "x", Some("a"), 40, 50),
        get(2, "y", Some("b"), 40, 50),
        get(2, "z", None, 40, 50),
    ];
    assert_linearizable(&history);
    let history = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "y", "b", 20, Some(30)),
        get(2, "x", Some("a"), 40, 50),
        get(2, "y", Some("a"), 40, 50),
    ];
    assert_not_linearizable(&history, "y");
    let y: Vec<&Operation> = history.iter().filter(|operation| operation.op.key() == "y").collect();
    assert!(matches!(check_key("y", &y, &Budget::default()), Verdict::NotLinearizable { .. }));
    let x: Vec<&Operation> = history.iter().filter(|operation| operation.op.key() == "x").collect();
    assert_eq!(check_key("x", &x, &Budget::default()), Verdict::Linearizable);
}

#[test]
fn equal_times_count_as_concurrent() {
    // Goal: an operation invoked at the instant another completes may be ordered before it.
    let history = [put(1, "x", "a", 0, Some(10)), get(2, "x", None, 10, 12)];
    assert_linearizable(&history);
    let history = [put(1, "x", "a", 0, Some(10)), get(2, "x", None, 11, 12)];
    assert_not_linearizable(&history, "x");
}

#[test]
fn trivial_histories_are_linearizable() {
    // Goal: nothing completed means nothing to contradict.
    assert_linearizable(&[]);
    assert_linearizable(&[put(1, "x", "a", 0, None), get(2, "x", Some("a"), 0, 0)]);
    let indeterminate_read =
        Operation { client: 1, op: Op::Get { key: "x".into() }, invoked_at: 0, completed: None };
    assert_linearizable(&[indeterminate_read]);
}

#[test]
fn outcome_of_the_wrong_kind_is_rejected() {
    // Goal: a result no register operation of that kind returns cannot be explained.
    let history = [Operation {
        client: 1,
        op: Op::Get { key: "x".into() },
        invoked_at: 0,
        completed: Some((1, Outcome::Swapped(true))),
    }];
    let explanation = assert_not_linearizable(&history, "x");
    assert!(explanation.contains("cannot come from this kind of operation"), "{explanation}");
}

#[test]
fn explanation_names_prefix_and_stuck_operation() {
    // Goal: the account shows the longest prefix and the operation that could not be placed.
    let history = [
        put(1, "x", "a", 0, Some(10)),
        get(2, "x", Some("a"), 20, 30),
        put(1, "x", "b", 40, Some(50)),
        get(2, "x", Some("a"), 60, 70),
    ];
    let explanation = assert_not_linearizable(&history, "x");
    assert!(explanation.contains("key \"x\""), "{explanation}");
    assert!(
        explanation.contains("Longest linearizable prefix found: 3 operations"),
        "{explanation}"
    );
    assert!(explanation.contains("holding \"b\""), "{explanation}");
    assert!(
        explanation.contains("Could not place #3 client 2 [60, 70] get -> \"a\""),
        "{explanation}"
    );
    // Labels are indices in the caller's history, across keys.
    let mut mixed = vec![put(9, "other", "z", 0, Some(1))];
    mixed.extend(history.iter().cloned());
    let explanation = assert_not_linearizable(&mixed, "x");
    assert!(explanation.contains("Could not place #4 client 2"), "{explanation}");
}

#[test]
fn exhausted_budget_gives_unknown() {
    // Goal: when the budget runs out the checker claims nothing, whichever way the truth lies.
    let linearizable = [
        put(1, "x", "a", 0, Some(10)),
        put(2, "x", "b", 0, Some(10)),
        get(3, "x", Some("a"), 20, 30),
    ];
    let stale = [
        put(1, "x", "a", 0, Some(10)),
        put(1, "x", "b", 20, Some(30)),
        get(2, "x", Some("a"), 40, 50),
    ];
    let one_step = Budget { steps_max: 1, deadline: None };
    for history in [&linearizable, &stale] {
        match check(history, &one_step) {
            Verdict::Unknown { key, reason } => {
                assert_eq!(key, "x");
                assert!(reason.contains("step budget of 1 exhausted"), "{reason}");
            }
            other => panic!("expected Unknown, got {other:#?}"),
        }
    }
    let past_deadline = Budget { steps_max: u64::MAX, deadline: Some(Instant::now()) };
    assert!(matches!(check(&stale, &past_deadline), Verdict::Unknown { .. }));
    // A definite failure on one key wins over another key left undecided.
    let mut both: Vec<Operation> = stale.iter().map(|operation| rekey(operation, "a")).collect();
    both.push(get(1, "b", Some("never written"), 0, 1));
    let three_steps = Budget { steps_max: 3, deadline: None };
    assert!(matches!(check(&both[..3], &three_steps), Verdict::Unknown { .. }));
    assert!(
        matches!(check(&both, &three_steps), Verdict::NotLinearizable { key, .. } if key == "b")
    );
}

#[test]
#[should_panic(expected = "completed before it was invoked")]
fn completion_before_invocation_panics() {
    // Goal: a broken recorder is reported as such, not as a finding about the system.
    check(&[put(1, "x", "a", 10, Some(5))], &Budget::default());
}
