//! Human-readable accounts of a failed search: which operation could not be placed, after which
//! longest linearizable prefix, among which operations of the key. Listings are capped so that a
//! history of thousands of operations still gives a readable message.

use std::fmt::Write;

use crate::model::{Expectation, Register, StateId};
use crate::search::Entry;
use crate::{Op, Operation, Outcome};

/// Most operations listed in one section of an explanation.
const LISTED_MAX: usize = 64;
/// Longest value shown in full; longer ones are cut and their length given.
const VALUE_SHOWN_CHARS_MAX: usize = 48;

/// What the search knew when it gave up.
pub(crate) struct Failure<'a> {
    pub(crate) key: &'a str,
    pub(crate) entries: &'a [Entry<'a>],
    pub(crate) register: &'a Register,
    /// The deepest sequence of operation indices the search linearized.
    pub(crate) prefix: &'a [usize],
    pub(crate) state_after_prefix: StateId,
    /// The operation whose completion ended the deepest attempt.
    pub(crate) stuck: usize,
}

pub(crate) fn explain(failure: &Failure) -> String {
    let entries = failure.entries;
    let stuck = &entries[failure.stuck];
    let stuck_completed_at = stuck.completed_at().expect("only completed operations get stuck");
    let mut text = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        text,
        "key {:?}: no linearization of its {} operations exists.",
        failure.key,
        entries.len()
    );

    let _ = writeln!(
        text,
        "Longest linearizable prefix found: {} operations, leaving the register {}.",
        failure.prefix.len(),
        show_state(failure.register, failure.state_after_prefix)
    );
    let skipped = failure.prefix.len().saturating_sub(LISTED_MAX);
    if skipped > 0 {
        let _ = writeln!(text, "  ... {skipped} earlier operations");
    }
    for (position, &index) in failure.prefix.iter().enumerate().skip(skipped) {
        let _ = writeln!(text, "  {:>4}. {}", position + 1, describe(&entries[index]));
    }

    let _ = writeln!(
        text,
        "Could not place {}: it must take effect by t={}, and no order of the operations \
         invoked by then that extends the prefix lets the register return what it returned.",
        describe(stuck),
        stuck_completed_at
    );
    if stuck.compiled.expectation == Expectation::Impossible {
        let _ = writeln!(text, "  (that outcome cannot come from this kind of operation)");
    }

    let in_prefix: Vec<bool> = {
        let mut marks = vec![false; entries.len()];
        for &index in failure.prefix {
            marks[index] = true;
        }
        marks
    };
    let pending: Vec<&Entry> = entries
        .iter()
        .enumerate()
        .filter(|&(index, entry)| {
            !in_prefix[index] && entry.operation.invoked_at <= stuck_completed_at
        })
        .map(|(_, entry)| entry)
        .collect();
    let _ = writeln!(
        text,
        "Operations outside the prefix invoked by t={stuck_completed_at} ({}):",
        pending.len()
    );
    list(&mut text, &pending);
    if entries.len() <= LISTED_MAX {
        let all: Vec<&Entry> = entries.iter().collect();
        let _ = writeln!(text, "All operations of the key, by invocation:");
        list(&mut text, &all);
    }
    text
}

fn list(text: &mut String, entries: &[&Entry]) {
    for entry in entries.iter().take(LISTED_MAX) {
        let _ = writeln!(text, "  {}", describe(entry));
    }
    if entries.len() > LISTED_MAX {
        let _ = writeln!(text, "  ... and {} more", entries.len() - LISTED_MAX);
    }
}

/// One line per operation: `#label client C [invoked, completed] op -> outcome`.
pub(crate) fn describe(entry: &Entry) -> String {
    describe_operation(entry.label, entry.operation)
}

pub(crate) fn describe_operation(label: usize, operation: &Operation) -> String {
    let completed_at =
        operation.completed.as_ref().map_or_else(|| "?".to_owned(), |(at, _)| at.to_string());
    let op = match &operation.op {
        Op::Put { value, .. } => format!("put {}", show(value)),
        Op::Get { .. } => "get".to_owned(),
        Op::Append { value, .. } => format!("append {}", show(value)),
        Op::Cas { expected, new, .. } => {
            format!("cas {} -> {}", show_option(expected.as_deref()), show(new))
        }
    };
    let outcome = match &operation.completed {
        None => "? (indeterminate)".to_owned(),
        Some((_, Outcome::Ok)) => "ok".to_owned(),
        Some((_, Outcome::Value(value))) => show_option(value.as_deref()),
        Some((_, Outcome::Swapped(true))) => "swapped".to_owned(),
        Some((_, Outcome::Swapped(false))) => "not swapped".to_owned(),
    };
    format!(
        "#{label} client {} [{}, {completed_at}] {op} -> {outcome}",
        operation.client, operation.invoked_at
    )
}

fn show_state(register: &Register, state: StateId) -> String {
    match register.value(state) {
        None => "absent".to_owned(),
        Some(value) => format!("holding {}", show(value)),
    }
}

fn show_option(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_owned(), show)
}

/// A quoted value, cut when long (appended values can grow to thousands of characters).
fn show(value: &str) -> String {
    let chars = value.chars().count();
    if chars <= VALUE_SHOWN_CHARS_MAX {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(VALUE_SHOWN_CHARS_MAX).collect();
    format!("{head:?}... ({chars} characters)")
}
