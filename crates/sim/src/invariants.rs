//! Safety invariants, checked continuously from outside the engines.
//!
//! The checker sees only what a driver sees: statuses, the durable logs on
//! the simulated disks, and the entries each replica applies. It never reads
//! an engine's internals, so the same checks hold every engine to account.
//!
//! - **Election safety**: at most one leader per term (Raft §3.6.3, Figure 3.2).
//! - **Log matching**: two durable logs holding an entry with the same index
//!   and term are identical up to that index.
//! - **Leader completeness**: a new leader's log holds every entry any
//!   replica has applied (applied implies committed).
//! - **State-machine safety**: every replica applies the same entry at each
//!   index, each index once, in order.
//! - **Commit monotonicity**: a replica's commit index never decreases while
//!   it runs, and its durable commit index never decreases across crashes.
//! - **Storage recovers exactly what was synced**: after a crash, the state
//!   the write-ahead log recovers equals the reference model
//!   ([`Durable::persist`], [`Durable::compact`]) of every synced write plus
//!   some prefix, in record order, of the writes issued since the last sync.
//!   Nothing acknowledged is lost, nothing is invented, nothing is reordered.

use std::collections::BTreeMap;

use consensus::{Durable, Entry, HardState, Index, NodeId, Payload, Snapshot, Term};

use crate::kv::Fnv;

/// A fixed digest of an entry's content.
pub fn entry_digest(entry: &Entry) -> u64 {
    let mut hash = Fnv::new();
    hash.write_u64(entry.term);
    match &entry.payload {
        Payload::Noop => hash.write(&[0]),
        Payload::Command(bytes) => {
            hash.write(&[1]);
            hash.write(bytes);
        }
        Payload::Membership(membership) => {
            hash.write(&[2]);
            for voter in &membership.voters {
                hash.write_u64(*voter);
            }
            hash.write(&[3]);
            for learner in &membership.learners {
                hash.write_u64(*learner);
            }
        }
    }
    hash.finish()
}

/// A replica's log as the checker sees it: a snapshot point and the entries
/// after it.
pub struct LogView<'a> {
    pub snapshot_index: Index,
    pub snapshot_term: Term,
    pub entries: &'a [Entry],
}

impl LogView<'_> {
    fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        let first = self.entries.first()?.index;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize).map(|entry| entry.term)
    }

    fn entry_at(&self, index: Index) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize)
    }

    fn last_index(&self) -> Index {
        self.entries.last().map_or(self.snapshot_index, |entry| entry.index)
    }
}

/// One record's worth of change to a replica's durable state, in the order
/// the write-ahead log writes them (snapshot marker, entries, hard state for
/// a `Ready`). A torn tail can cut between any two of them, never inside one,
/// because each is one checksummed record.
#[derive(Clone, Debug)]
pub enum DiskStep {
    /// A snapshot from the leader (it may replace the whole log).
    Install(Snapshot),
    Entries(Vec<Entry>),
    HardState(HardState),
    /// A snapshot the replica took of its own state machine.
    Compact(Snapshot),
}

impl DiskStep {
    /// The steps one `Ready`'s durable parts are written as.
    pub fn of_write(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    ) -> Vec<DiskStep> {
        let mut steps = Vec::new();
        steps.extend(snapshot.map(DiskStep::Install));
        if !entries.is_empty() {
            steps.push(DiskStep::Entries(entries));
        }
        steps.extend(hard_state.map(DiskStep::HardState));
        steps
    }

    /// Applies the step to the reference model.
    pub fn apply(&self, durable: &mut Durable) {
        match self.clone() {
            DiskStep::Install(snapshot) => durable.persist(Some(snapshot), Vec::new(), None),
            DiskStep::Entries(entries) => durable.persist(None, entries, None),
            DiskStep::HardState(hard_state) => durable.persist(None, Vec::new(), Some(hard_state)),
            DiskStep::Compact(snapshot) => durable.compact(snapshot),
        }
    }
}

fn same_durable(left: &Durable, right: &Durable) -> bool {
    left.hard_state == right.hard_state
        && left.snapshot == right.snapshot
        && left.entries == right.entries
}

/// A one-line summary of a durable state for failure messages.
pub fn describe_durable(durable: &Durable) -> String {
    let snapshot = durable.snapshot.as_ref().map(|snapshot| (snapshot.index, snapshot.term));
    let first = durable.entries.first().map(|entry| (entry.index, entry.term));
    let last = durable.entries.last().map(|entry| (entry.index, entry.term));
    format!(
        "{:?}, snapshot {snapshot:?}, {} entries from {first:?} to {last:?}",
        durable.hard_state,
        durable.entries.len()
    )
}

/// The number of unsynced steps that, applied to `synced`, give `recovered`;
/// the longest if several do, `None` if no prefix does.
pub fn matching_prefix(
    synced: &Durable,
    unsynced: &[DiskStep],
    recovered: &Durable,
) -> Option<usize> {
    let mut state = synced.clone();
    let mut matched = same_durable(&state, recovered).then_some(0);
    for (count, step) in unsynced.iter().enumerate() {
        step.apply(&mut state);
        if same_durable(&state, recovered) {
            matched = Some(count + 1);
        }
    }
    matched
}

#[derive(Default)]
pub struct Invariants {
    leaders: BTreeMap<Term, NodeId>,
    /// index → (term, digest) of every entry any replica has applied.
    applied: BTreeMap<Index, (Term, u64)>,
    /// index → the highest leader term observed when the entry was first
    /// applied: it was committed in that term or an earlier one.
    committed_by: BTreeMap<Index, Term>,
    /// The first violation found; the run fails with it.
    pub violation: Option<String>,
}

impl Invariants {
    fn fail(&mut self, message: String) {
        if self.violation.is_none() {
            self.violation = Some(message);
        }
    }

    pub fn highest_applied(&self) -> Index {
        self.applied.keys().next_back().copied().unwrap_or(0)
    }

    /// Records that `node` is leader of `term`; returns true the first time.
    pub fn observe_leader(&mut self, node: NodeId, term: Term) -> bool {
        match self.leaders.get(&term) {
            Some(&other) if other != node => {
                self.fail(format!(
                    "election safety: nodes {other} and {node} both lead term {term}"
                ));
                false
            }
            Some(_) => false,
            None => {
                self.leaders.insert(term, node);
                true
            }
        }
    }

    /// A new leader's log must hold every applied entry past its snapshot.
    ///
    /// Raft §5.4 promises this for leaders of *higher* terms than the one
    /// that committed the entry: a candidate whose votes were delayed may
    /// still become leader of an older term after a newer term committed
    /// entries it lacks (it can commit nothing: its term is stale). So an
    /// entry is checked only against leaders of terms above every term
    /// observed when it was first applied.
    pub fn check_leader_completeness(&mut self, node: NodeId, term: Term, log: &LogView<'_>) {
        for (&index, &(applied_term, _)) in self.applied.range(log.snapshot_index + 1..) {
            if self.committed_by.get(&index).is_some_and(|&committed| committed >= term) {
                continue;
            }
            match log.term_at(index) {
                Some(found) if found == applied_term => {}
                found => {
                    let message = format!(
                        "leader completeness: node {node} leads term {term} but holds {found:?} at \
                         index {index}, where term {applied_term} was applied"
                    );
                    self.fail(message);
                    return;
                }
            }
        }
    }

    /// Records one applied entry.
    pub fn observe_apply(&mut self, node: NodeId, entry: &Entry) {
        let digest = entry_digest(entry);
        match self.applied.get(&entry.index) {
            Some(&(term, known)) if known != digest => {
                let message = format!(
                    "state-machine safety: node {node} applied {entry:?} at index {}, another \
                     replica applied an entry of term {term} there",
                    entry.index
                );
                self.fail(message);
            }
            Some(_) => {}
            None => {
                self.applied.insert(entry.index, (entry.term, digest));
                let highest_term = self.leaders.keys().next_back().copied().unwrap_or(0);
                self.committed_by.insert(entry.index, highest_term.max(entry.term));
            }
        }
    }

    /// Storage recovers exactly what was synced: `recovered` (what the log
    /// replayed after a crash) must be `synced` (the model of every synced
    /// write) plus a prefix of `unsynced` (the steps written since the last
    /// sync). Returns how many unsynced steps survived.
    pub fn check_recovery(
        &mut self,
        node: NodeId,
        synced: &Durable,
        unsynced: &[DiskStep],
        recovered: &Durable,
    ) -> Option<usize> {
        let matched = matching_prefix(synced, unsynced, recovered);
        if matched.is_none() {
            let mut latest = synced.clone();
            for step in unsynced {
                step.apply(&mut latest);
            }
            self.fail(format!(
                "storage recovers exactly what was synced: n{node} recovered [{}], which is no \
                 prefix of the {} steps written since the last sync; synced [{}], all written [{}]",
                describe_durable(recovered),
                unsynced.len(),
                describe_durable(synced),
                describe_durable(&latest)
            ));
        }
        matched
    }

    /// Pairwise log matching over the durable logs.
    pub fn check_log_matching(&mut self, logs: &[(NodeId, LogView<'_>)]) {
        for (i, (left_node, left)) in logs.iter().enumerate() {
            for (right_node, right) in &logs[i + 1..] {
                let low = left.snapshot_index.max(right.snapshot_index) + 1;
                let high = left.last_index().min(right.last_index());
                // Find the highest index where both hold the same term: from
                // there down, the two logs must be identical.
                let mut matched = false;
                for index in (low..=high).rev() {
                    let (Some(a), Some(b)) = (left.entry_at(index), right.entry_at(index)) else {
                        continue;
                    };
                    if !matched && a.term == b.term {
                        matched = true;
                    }
                    if matched && (a.term != b.term || entry_digest(a) != entry_digest(b)) {
                        let message = format!(
                            "log matching: nodes {left_node} and {right_node} agree on a later \
                             entry but differ at index {index}: {a:?} vs {b:?}"
                        );
                        self.fail(message);
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(index: Index, term: Term, data: &'static str) -> Entry {
        Entry { index, term, payload: Payload::Command(Bytes::from_static(data.as_bytes())) }
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut invariants = Invariants::default();
        assert!(invariants.observe_leader(1, 5));
        assert!(invariants.violation.is_none());
        invariants.observe_leader(2, 5);
        assert!(invariants.violation.unwrap().contains("election safety"));
    }

    #[test]
    fn different_entries_applied_at_one_index_are_caught() {
        let mut invariants = Invariants::default();
        invariants.observe_apply(1, &entry(1, 1, "a"));
        invariants.observe_apply(2, &entry(1, 1, "a"));
        assert!(invariants.violation.is_none());
        invariants.observe_apply(3, &entry(1, 2, "b"));
        assert!(invariants.violation.unwrap().contains("state-machine safety"));
    }

    #[test]
    fn a_leader_missing_an_applied_entry_is_caught() {
        let mut invariants = Invariants::default();
        invariants.observe_apply(1, &entry(1, 1, "a"));
        invariants.observe_apply(1, &entry(2, 1, "b"));
        let log = [entry(1, 1, "a")];
        let view = LogView { snapshot_index: 0, snapshot_term: 0, entries: &log };
        invariants.check_leader_completeness(2, 2, &view);
        assert!(invariants.violation.unwrap().contains("leader completeness"));
    }

    #[test]
    fn a_late_leader_of_an_older_term_may_lack_what_a_newer_term_committed() {
        let mut invariants = Invariants::default();
        invariants.observe_leader(1, 3);
        invariants.observe_apply(1, &entry(1, 3, "a"));
        let view = LogView { snapshot_index: 0, snapshot_term: 0, entries: &[] };
        // Term 2's votes were delayed: its leader appears after term 3 committed.
        invariants.check_leader_completeness(2, 2, &view);
        assert!(invariants.violation.is_none());
        invariants.check_leader_completeness(4, 4, &view);
        assert!(invariants.violation.unwrap().contains("leader completeness"));
    }

    /// The recovery check accepts the synced state plus any prefix of the
    /// unsynced steps, and rejects a lost synced write or a reordering.
    #[test]
    fn recovery_that_loses_synced_state_is_caught() {
        let mut synced = Durable::default();
        synced.persist(
            None,
            vec![entry(1, 1, "a")],
            Some(HardState { term: 1, vote: 1, commit: 0 }),
        );
        let unsynced = DiskStep::of_write(
            None,
            vec![entry(2, 1, "b")],
            Some(HardState { term: 1, vote: 1, commit: 2 }),
        );
        let mut invariants = Invariants::default();
        let mut torn = synced.clone();
        unsynced[0].apply(&mut torn);
        assert_eq!(invariants.check_recovery(1, &synced, &unsynced, &synced), Some(0));
        assert_eq!(invariants.check_recovery(1, &synced, &unsynced, &torn), Some(1));
        assert!(invariants.violation.is_none());

        // The hard state without the entries it follows: out of order.
        let mut reordered = synced.clone();
        unsynced[1].apply(&mut reordered);
        assert_eq!(invariants.check_recovery(1, &synced, &unsynced, &reordered), None);
        assert!(invariants.violation.take().unwrap().contains("exactly what was synced"));

        // The synced entry is missing.
        assert_eq!(invariants.check_recovery(1, &synced, &unsynced, &Durable::default()), None);
        assert!(invariants.violation.unwrap().contains("exactly what was synced"));
    }

    #[test]
    fn logs_that_agree_late_but_differ_early_are_caught() {
        let mut invariants = Invariants::default();
        let left = [entry(1, 1, "a"), entry(2, 2, "b")];
        let right = [entry(1, 1, "x"), entry(2, 2, "b")];
        let good = [entry(1, 1, "a"), entry(2, 3, "c")];
        let view = |entries| LogView { snapshot_index: 0, snapshot_term: 0, entries };
        invariants.check_log_matching(&[(1, view(&left)), (3, view(&good))]);
        assert!(invariants.violation.is_none(), "diverging suffixes are allowed");
        invariants.check_log_matching(&[(1, view(&left)), (2, view(&right))]);
        assert!(invariants.violation.unwrap().contains("log matching"));
    }
}
