//! The in-memory log both engines keep: every entry after the latest
//! snapshot, plus the marks the `Ready` protocol needs.
//!
//! An entry's `term` is what its engine tags log positions with: the Raft
//! term, or in Multi-Paxos the ballot the value was first proposed in. Both
//! never decrease along the log, which is all this module relies on; what the
//! tag means (the election restriction, value recovery) stays in the engine.
//!
//! Indices: `snapshot_index` is the last index the snapshot covers (zero for
//! none); `entries[i]` has index `snapshot_index + 1 + i`. `commit` is the
//! highest index known committed; `applied` the last index handed out in
//! `Ready.committed` (or covered by a handed-out snapshot); `unstable_from`
//! the first index not yet handed out in `Ready.entries`.

use crate::{Entry, Index, Snapshot, Term};

pub(crate) struct Log {
    snapshot_index: Index,
    snapshot_term: Term,
    entries: Vec<Entry>,
    commit: Index,
    applied: Index,
    unstable_from: Index,
}

impl Log {
    /// A log restored from durable state: every entry given is already durable.
    pub(crate) fn restore_durable(
        snapshot: Option<&Snapshot>,
        entries: Vec<Entry>,
        commit: Index,
    ) -> Log {
        let (snapshot_index, snapshot_term) = snapshot.map_or((0, 0), |s| (s.index, s.term));
        let mut log = Log {
            snapshot_index,
            snapshot_term,
            entries: Vec::with_capacity(entries.len()),
            commit: snapshot_index,
            applied: snapshot_index,
            unstable_from: snapshot_index + 1,
        };
        // Entries the snapshot already covers may linger if the driver
        // compacted lazily; they are redundant, so skip them.
        let kept: Vec<Entry> = entries.into_iter().filter(|e| e.index > snapshot_index).collect();
        log.append(&kept);
        log.unstable_from = log.last_index() + 1;
        let commit = commit.max(snapshot_index);
        assert!(commit <= log.last_index(), "durable commit {commit} beyond the durable log");
        log.commit = commit;
        log
    }

    pub(crate) fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    pub(crate) fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    pub(crate) fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    pub(crate) fn commit(&self) -> Index {
        self.commit
    }

    pub(crate) fn applied(&self) -> Index {
        self.applied
    }

    /// The term of the entry at `index`, if the log still knows it.
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else if index < self.snapshot_index || index > self.last_index() {
            None
        } else {
            Some(self.entries[(index - self.snapshot_index - 1) as usize].term)
        }
    }

    /// Entries in `[from, to]`, which must be in memory.
    pub(crate) fn slice(&self, from: Index, to: Index) -> &[Entry] {
        if from > to {
            return &[];
        }
        assert!(from > self.snapshot_index && to <= self.last_index(), "slice {from}..={to}");
        let base = self.snapshot_index + 1;
        &self.entries[(from - base) as usize..=(to - base) as usize]
    }

    /// Entries from `from` on, at most `count_max` of them and at most
    /// `bytes_max` payload bytes, but always at least one if any exist.
    pub(crate) fn batch(&self, from: Index, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        let last = self.last_index().min(from.saturating_add(count_max as u64) - 1);
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for entry in self.slice(from, last) {
            bytes = bytes.saturating_add(payload_bytes(entry));
            if !batch.is_empty() && bytes > bytes_max {
                break;
            }
            batch.push(entry.clone());
        }
        batch
    }

    /// Appends entries that directly follow the last one.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let mut previous_term = self.last_term();
        for (expected, entry) in (self.last_index() + 1..).zip(entries) {
            assert_eq!(entry.index, expected, "appended entries must be contiguous");
            assert!(entry.term >= previous_term, "appended entry terms must not decrease");
            previous_term = entry.term;
        }
        self.entries.extend_from_slice(entries);
    }

    /// Drops the entries from `index` on; they must not be committed.
    pub(crate) fn truncate_from(&mut self, index: Index) {
        assert!(index > self.commit, "truncating committed entry {index} (commit {})", self.commit);
        assert!(index > self.snapshot_index);
        if index > self.last_index() {
            return;
        }
        self.entries.truncate((index - self.snapshot_index - 1) as usize);
        self.unstable_from = self.unstable_from.min(index);
    }

    /// The first entry in `entries` whose term differs from this log's entry at
    /// that index (or that this log lacks), as a position in `entries`.
    pub(crate) fn find_conflict(&self, entries: &[Entry]) -> Option<usize> {
        entries.iter().position(|e| self.term_at(e.index) != Some(e.term))
    }

    /// The first index of the run of entries with the same term as `index`.
    pub(crate) fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term_at(index).expect("index in the log");
        let mut first = index;
        while first > self.first_index() && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding `term`, if any entry in memory has it.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<Index> {
        // Terms never decrease along the log: scan back until they drop below.
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.term >= term)
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Where a leader should retry after this log refused an append at
    /// `prev_index` (fast backtracking, Raft dissertation §3.5): the first index of the
    /// term held there and that term, or, when the log has no entry there,
    /// its last index and term zero.
    pub(crate) fn conflict_hint(&self, prev_index: Index) -> (Index, Term) {
        if prev_index > self.last_index() {
            (self.last_index(), 0)
        } else {
            let term = self.term_at(prev_index).expect("in the log");
            (self.first_index_of_term_at(prev_index), term)
        }
    }

    /// The leader's side of [`Log::conflict_hint`]: the next index to try for
    /// a follower that answered (`hint_index`, `hint_term`). With the hint's
    /// term in this log, skip past its last entry of that term; without it,
    /// start at the hint's first index of that term.
    pub(crate) fn next_index_from_hint(&self, hint_index: Index, hint_term: Term) -> Index {
        if hint_term == 0 {
            hint_index + 1
        } else {
            match self.last_index_of_term(hint_term) {
                Some(last_of_term) => last_of_term + 1,
                None => hint_index,
            }
        }
    }

    pub(crate) fn commit_to(&mut self, index: Index) -> bool {
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        if index > self.commit {
            self.commit = index;
            true
        } else {
            false
        }
    }

    /// Replaces the whole log by a snapshot received from the leader.
    pub(crate) fn restore(&mut self, index: Index, term: Term) {
        assert!(index > self.commit, "restoring a snapshot at or below the commit index");
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.commit = index;
        self.unstable_from = index + 1;
    }

    /// Drops entries up to `index` (already applied) after a local snapshot.
    pub(crate) fn compact(&mut self, index: Index) {
        assert!(index <= self.applied && index > self.snapshot_index);
        let term = self.term_at(index).expect("compacted index in the log");
        self.entries.drain(..(index - self.snapshot_index) as usize);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Hands out every entry not yet handed out for persistence.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self.unstable_from.max(self.first_index());
        let entries = self.slice(from, self.last_index()).to_vec();
        self.unstable_from = self.last_index() + 1;
        entries
    }

    /// The last index that may be handed out to apply: committed and handed
    /// out for persistence (everything in memory has been, once `take_unstable`
    /// ran in the same `Ready`). `eager` hands out uncommitted entries too.
    pub(crate) fn applicable_to(&self, eager: bool) -> Index {
        if eager {
            self.last_index()
        } else {
            self.commit
        }
    }

    pub(crate) fn has_applicable(&self, eager: bool) -> bool {
        self.applicable_to(eager) > self.applied
    }

    /// Hands out the entries to apply, contiguous after the last handed out.
    pub(crate) fn take_applicable(&mut self, eager: bool) -> Vec<Entry> {
        let to = self.applicable_to(eager);
        if to <= self.applied {
            return Vec::new();
        }
        let entries = self.slice(self.applied + 1, to).to_vec();
        assert_eq!(entries.first().map(|e| e.index), Some(self.applied + 1));
        self.applied = to;
        entries
    }

    /// A snapshot was handed out: the state machine jumps to its index.
    /// `applied_ahead_allowed` tolerates a snapshot behind what was already
    /// applied, which only a deliberately broken variant that applies past
    /// the commit index can cause.
    pub(crate) fn applied_snapshot(&mut self, index: Index, applied_ahead_allowed: bool) {
        assert!(
            index >= self.applied || applied_ahead_allowed,
            "a snapshot behind the applied index"
        );
        self.applied = index;
    }
}

/// The bytes an entry contributes to an append batch's size limit.
fn payload_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        crate::Payload::Command(bytes) => bytes.len(),
        crate::Payload::Noop => 0,
        crate::Payload::Membership(membership) => 8 * membership.members().count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    fn log_of_terms(terms: &[Term]) -> Log {
        let entries = terms
            .iter()
            .zip(1..)
            .map(|(&term, index)| Entry { index, term, payload: Payload::Noop })
            .collect();
        Log::restore_durable(None, entries, 0)
    }

    #[test]
    fn conflict_hints_lead_the_leader_past_whole_terms() {
        // Goal: a refusal names the first index of the conflicting term, and the leader skips it.
        let follower = log_of_terms(&[1, 1, 2, 2, 2]);
        assert_eq!(follower.conflict_hint(4), (3, 2));
        assert_eq!(follower.conflict_hint(9), (5, 0));
        let leader = log_of_terms(&[1, 1, 2, 3, 3, 3]);
        assert_eq!(leader.next_index_from_hint(3, 2), 4, "past the leader's last entry of term 2");
        assert_eq!(leader.next_index_from_hint(3, 7), 3, "an unknown term: retry at its start");
        assert_eq!(leader.next_index_from_hint(5, 0), 6, "a short log: right after its end");
    }
}
