//! The acceptor's accepted slots as one contiguous log: every entry after the
//! latest snapshot, plus the marks the `Ready` protocol needs. An entry's
//! `term` is the ballot its value was first proposed in.
//!
//! Indices: `snapshot_index` is the last index the snapshot covers (zero for
//! none); `entries[i]` has index `snapshot_index + 1 + i`. `commit` is the
//! highest index known committed; `applied` the last index handed out in
//! `Ready.committed` (or covered by a handed-out snapshot); `unstable_from`
//! the first index not yet handed out in `Ready.entries`.

use super::message::Ballot;
use crate::{Entry, Index, Snapshot};

pub(super) struct PaxosLog {
    snapshot_index: Index,
    snapshot_ballot: Ballot,
    entries: Vec<Entry>,
    commit: Index,
    applied: Index,
    unstable_from: Index,
}

impl PaxosLog {
    /// A log restored from durable state: every entry given is already durable.
    pub(super) fn restore_durable(
        snapshot: Option<&Snapshot>,
        entries: Vec<Entry>,
        commit: Index,
    ) -> PaxosLog {
        let (snapshot_index, snapshot_ballot) = snapshot.map_or((0, 0), |s| (s.index, s.term));
        let mut log = PaxosLog {
            snapshot_index,
            snapshot_ballot,
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

    pub(super) fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    pub(super) fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    pub(super) fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as u64
    }

    pub(super) fn last_ballot(&self) -> Ballot {
        self.entries.last().map_or(self.snapshot_ballot, |e| e.term)
    }

    pub(super) fn commit(&self) -> Index {
        self.commit
    }

    pub(super) fn applied(&self) -> Index {
        self.applied
    }

    /// The term of the entry at `index`, if the log still knows it.
    pub(super) fn ballot_at(&self, index: Index) -> Option<Ballot> {
        if index == self.snapshot_index {
            Some(self.snapshot_ballot)
        } else if index < self.snapshot_index || index > self.last_index() {
            None
        } else {
            Some(self.entries[(index - self.snapshot_index - 1) as usize].term)
        }
    }

    /// Entries in `[from, to]`, which must be in memory.
    pub(super) fn slice(&self, from: Index, to: Index) -> &[Entry] {
        if from > to {
            return &[];
        }
        assert!(from > self.snapshot_index && to <= self.last_index(), "slice {from}..={to}");
        let base = self.snapshot_index + 1;
        &self.entries[(from - base) as usize..=(to - base) as usize]
    }

    /// Entries from `from` on, at most `count_max` of them and at most
    /// `bytes_max` payload bytes, but always at least one if any exist.
    pub(super) fn batch(&self, from: Index, count_max: usize, bytes_max: usize) -> Vec<Entry> {
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

    /// The log's rank for value recovery: (tag of the last entry, length).
    pub(super) fn rank(&self) -> (Ballot, Index) {
        (self.last_ballot(), self.last_index())
    }

    /// Appends entries that directly follow the last one.
    pub(super) fn append(&mut self, entries: &[Entry]) {
        let mut previous_ballot = self.last_ballot();
        for (expected, entry) in (self.last_index() + 1..).zip(entries) {
            assert_eq!(entry.index, expected, "appended entries must be contiguous");
            assert!(entry.term >= previous_ballot, "appended entry terms must not decrease");
            previous_ballot = entry.term;
        }
        self.entries.extend_from_slice(entries);
    }

    /// Drops the entries from `index` on; they must not be committed.
    pub(super) fn truncate_from(&mut self, index: Index) {
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
    pub(super) fn find_conflict(&self, entries: &[Entry]) -> Option<usize> {
        entries.iter().position(|e| self.ballot_at(e.index) != Some(e.term))
    }

    /// The first index of the run of entries with the same term as `index`.
    pub(super) fn first_index_of_ballot_at(&self, index: Index) -> Index {
        let term = self.ballot_at(index).expect("index in the log");
        let mut first = index;
        while first > self.first_index() && self.ballot_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding `term`, if any entry in memory has it.
    pub(super) fn last_index_of_ballot(&self, term: Ballot) -> Option<Index> {
        // Ballots never decrease along the log: scan back until they drop below.
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.term >= term)
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    pub(super) fn commit_to(&mut self, index: Index) -> bool {
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
    pub(super) fn restore(&mut self, index: Index, term: Ballot) {
        assert!(index > self.commit, "restoring a snapshot at or below the commit index");
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_ballot = term;
        self.commit = index;
        self.unstable_from = index + 1;
    }

    /// Drops entries up to `index` (already applied) after a local snapshot.
    pub(super) fn compact(&mut self, index: Index) {
        assert!(index <= self.applied && index > self.snapshot_index);
        let term = self.ballot_at(index).expect("compacted index in the log");
        self.entries.drain(..(index - self.snapshot_index) as usize);
        self.snapshot_index = index;
        self.snapshot_ballot = term;
    }

    pub(super) fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Hands out every entry not yet handed out for persistence.
    pub(super) fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self.unstable_from.max(self.first_index());
        let entries = self.slice(from, self.last_index()).to_vec();
        self.unstable_from = self.last_index() + 1;
        entries
    }

    /// Whether chosen slots wait to be applied. Everything in memory has
    /// been handed out for persistence once `take_unstable` ran in the same
    /// `Ready`, so the commit index is the bound.
    pub(super) fn has_applicable(&self) -> bool {
        self.commit > self.applied
    }

    /// Hands out the chosen entries to apply, contiguous after the last
    /// handed out.
    pub(super) fn take_applicable(&mut self) -> Vec<Entry> {
        let to = self.commit;
        if to <= self.applied {
            return Vec::new();
        }
        let entries = self.slice(self.applied + 1, to).to_vec();
        assert_eq!(entries.first().map(|e| e.index), Some(self.applied + 1));
        self.applied = to;
        entries
    }

    /// A snapshot was handed out: the state machine jumps to its index.
    pub(super) fn applied_snapshot(&mut self, index: Index) {
        assert!(index >= self.applied, "a snapshot behind the applied slot");
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
