//! The shared write-ahead log: group commit, recovery and compaction.
//!
//! # Writing
//!
//! [`Wal::append`] encodes what a group's `Ready` asks to persist into an
//! in-memory buffer, in the order snapshot marker, entries, hard state (so
//! that a torn tail can never leave a commit index beyond the entries that
//! back it). [`Wal::flush`] then, for everything buffered by all groups:
//!
//! 1. writes each pending snapshot to `<name>.tmp`, fsyncs it, renames it to
//!    its final name and fsyncs the directory, so that no marker can become
//!    durable before the file it names;
//! 2. writes the buffer at the end of the active segment and, if asked,
//!    fsyncs it once (group commit);
//! 3. removes snapshot files superseded by markers that are now durable;
//! 4. rotates to a new segment once the active one reaches
//!    [`WalOptions::segment_bytes_max`]: the old one is fsynced first, and the
//!    new one opens with a copy of every group's hard state and snapshot
//!    marker, so older segments never hold the only copy of either.
//!
//! Any failed write, fsync or directory operation poisons the log: that call
//! and every later one return [`StorageError::Poisoned`]. After a failed
//! fsync the kernel may have dropped the dirty pages, so retrying could
//! report durable what is not (the PostgreSQL "fsyncgate" lesson).
//!
//! # Recovery
//!
//! [`Wal::open`] replays every segment in sequence order. Each segment's
//! first sequence number (in its name and header) must equal the previous
//! segment's first sequence plus its record count, so a lost segment is
//! detected. A record that is cut short or fails its checksum is a torn tail
//! only if it is in the last segment and no valid record follows it anywhere
//! in the file; the file is then truncated there and the fact reported. Any
//! other damage is [`StorageError::Corrupt`] naming file and offset.
//!
//! # Compaction
//!
//! A segment is obsolete when, for every group it mentions, its entries are
//! at or below the group's snapshot index and later segments hold the
//! group's latest hard state and snapshot marker. [`Wal::compact`] deletes
//! obsolete segments from the oldest on, stopping at the first one still
//! needed. Only a prefix is ever deleted: a middle segment may hold the
//! replacement of entries that an older, kept segment still contains, and
//! deleting it would resurrect them. Because the deleted prefix may have held
//! the beginning of a group's log, replay accepts a group's first Entries
//! record at any index once a prefix is gone, and checks at the end that
//! each log starts right after its snapshot.

use std::collections::BTreeMap;

use consensus::{Durable, Entry, HardState, Index, Ready, Snapshot, Term};

use crate::format::{
    self, encode_record, encode_segment_header, entry_encoded_bytes, Record, SnapshotMarker,
    SEGMENT_HEADER_BYTES,
};
use crate::fs::{File, Fs};
use crate::{GroupId, StorageError};

/// Limits of the log.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// The active segment is rotated once it reaches this size.
    pub segment_bytes_max: u64,
    /// The largest record body (kind, group, payload). A batch of entries is
    /// split across records to fit; a single entry larger than this is
    /// refused with [`StorageError::TooLarge`].
    pub record_bytes_max: u32,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes_max: 64 << 20, record_bytes_max: 16 << 20 }
    }
}

impl WalOptions {
    /// Asserts the relations between the limits.
    pub fn validate(&self) {
        assert!(self.record_bytes_max >= 1024, "records must hold at least a small entry");
        assert!(self.segment_bytes_max > SEGMENT_HEADER_BYTES as u64);
    }
}

/// When the node fsyncs, as `INFO persistence` reports it. The log takes no
/// decision itself (it has no clock): the caller passes the outcome of
/// [`Fsync::fsync_now`] to [`Wal::flush`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Every flush is fsynced before anything is acknowledged (the default).
    #[default]
    Always,
    /// At most one second of acknowledged writes may be lost.
    EverySecond,
    /// The operating system decides; a crash may lose acknowledged writes.
    Never,
}

impl Fsync {
    /// Whether a flush made `since_last_fsync_ms` after the last fsync should
    /// fsync.
    pub fn fsync_now(self, since_last_fsync_ms: u64) -> bool {
        match self {
            Fsync::Always => true,
            Fsync::EverySecond => since_last_fsync_ms >= 1000,
            Fsync::Never => false,
        }
    }

    /// The name used in configuration and `INFO` (Redis's `appendfsync`).
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySecond => "everysec",
            Fsync::Never => "no",
        }
    }

    pub fn from_name(name: &str) -> Option<Fsync> {
        [Fsync::Always, Fsync::EverySecond, Fsync::Never].into_iter().find(|f| f.name() == name)
    }
}

/// What one group asks to persist: the durable parts of a `Ready`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Persist<'a> {
    pub hard_state: Option<&'a HardState>,
    /// A snapshot from the leader: it replaces the whole log.
    pub snapshot: Option<&'a Snapshot>,
    pub entries: &'a [Entry],
}

impl<'a> Persist<'a> {
    pub fn from_ready<M>(ready: &'a Ready<M>) -> Self {
        Persist {
            hard_state: ready.hard_state.as_ref(),
            snapshot: ready.snapshot.as_ref(),
            entries: &ready.entries,
        }
    }
}

/// A torn tail found and truncated by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    pub offset: u64,
    pub truncated_bytes: u64,
    pub reason: String,
}

/// What [`Wal::open`] found.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Every group with anything durable.
    pub groups: BTreeMap<GroupId, Durable>,
    pub torn_tail: Option<TornTail>,
    /// Leftovers deleted: temporary files and snapshot files no durable
    /// marker refers to.
    pub removed_files: Vec<String>,
    pub segments: usize,
}

/// What [`Wal::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub segments_removed: usize,
    pub bytes_freed: u64,
}

/// What one segment holds for one group, to judge obsolescence.
#[derive(Clone, Debug, Default)]
pub(crate) struct SegmentGroup {
    /// The highest entry index in the segment; 0 if none.
    pub(crate) entries_index_max: Index,
    pub(crate) hard_state: bool,
    pub(crate) snapshot_marker: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) first_sequence: u64,
    pub(crate) name: String,
    pub(crate) size_bytes: u64,
    pub(crate) records: u64,
    pub(crate) groups: BTreeMap<GroupId, SegmentGroup>,
}

/// The in-memory index of one group: no entries, only where things are.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupState {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotMarker>,
    /// The last log index (the snapshot's index when the log is empty).
    pub(crate) last_index: Index,
    /// First sequence of the segment holding the latest hard state record.
    pub(crate) hard_state_segment: u64,
    /// First sequence of the segment holding the latest snapshot marker.
    pub(crate) snapshot_segment: u64,
    /// The term of every entry in the log, as the first index of each run
    /// of equal terms: small (one item per term change), and enough to
    /// decide whether an installed snapshot matches the log.
    pub(crate) term_runs: BTreeMap<Index, Term>,
}

impl GroupState {
    pub(crate) fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |marker| marker.index)
    }

    /// The term of the entry at `index`, if the log holds it.
    fn term_at(&self, index: Index) -> Option<Term> {
        if index <= self.snapshot_index() || index > self.last_index {
            return None;
        }
        self.term_runs.range(..=index).next_back().map(|(_, &term)| term)
    }

    /// Drops the entries from `index` on.
    fn truncate_from(&mut self, index: Index) {
        assert!(index > self.snapshot_index());
        if index <= self.last_index {
            self.term_runs.split_off(&index);
            self.last_index = index - 1;
        }
    }

    /// Drops the entries up to `index` (which may lie beyond the log).
    fn drop_through(&mut self, index: Index) {
        let next_term = if index < self.last_index { self.term_at(index + 1) } else { None };
        self.term_runs = self.term_runs.split_off(&(index + 1));
        if let Some(term) = next_term {
            self.term_runs.entry(index + 1).or_insert(term);
        }
        self.last_index = self.last_index.max(index);
    }

    /// Appends entries that continue the log.
    pub(crate) fn push_entries(&mut self, entries: &[Entry]) {
        for entry in entries {
            assert_eq!(entry.index, self.last_index + 1, "entries continue the log");
            let previous = self.term_at(self.last_index);
            if previous != Some(entry.term) {
                self.term_runs.insert(entry.index, entry.term);
            }
            self.last_index = entry.index;
        }
    }
}

pub fn segment_name(first_sequence: u64) -> String {
    format!("wal-{first_sequence:020}.log")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn snapshot_name(group: GroupId, index: Index, term: Term) -> String {
    format!("snapshot-{group:020}-{index:020}-{term:020}.snap")
}

pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// The shared write-ahead log of one node; see the module documentation.
pub struct Wal<F: Fs> {
    fs: F,
    options: WalOptions,
    /// Ascending by sequence; the last is the active segment.
    segments: Vec<Segment>,
    active: F::File,
    buffer: Vec<u8>,
    buffer_records: u64,
    /// Bytes were written to the active segment since its last fsync.
    unsynced: bool,
    pending_snapshots: Vec<(GroupId, Snapshot)>,
    /// Snapshot files to delete once the markers superseding them are durable.
    superseded_snapshots: Vec<String>,
    /// Superseded snapshot files whose markers were flushed but not fsynced.
    superseded_snapshots_flushed: Vec<String>,
    groups: BTreeMap<GroupId, GroupState>,
    poisoned: Option<String>,
}

impl<F: Fs> std::fmt::Debug for Wal<F> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Wal")
            .field("segments", &self.segments.len())
            .field("groups", &self.groups.len())
            .field("buffered_bytes", &self.buffer.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl<F: Fs> Wal<F> {
    /// Opens the log in `fs` (creating it if empty), replays it, and returns
    /// every group's durable state.
    pub fn open(fs: F, options: WalOptions) -> Result<(Wal<F>, Recovered), StorageError> {
        options.validate();
        crate::recovery::open(fs, options)
    }

    pub(crate) fn from_recovery(
        fs: F,
        options: WalOptions,
        segments: Vec<Segment>,
        active: F::File,
        groups: BTreeMap<GroupId, GroupState>,
    ) -> Wal<F> {
        assert!(!segments.is_empty(), "the log always has an active segment");
        Wal {
            fs,
            options,
            segments,
            active,
            buffer: Vec::new(),
            buffer_records: 0,
            unsynced: false,
            pending_snapshots: Vec::new(),
            superseded_snapshots: Vec::new(),
            superseded_snapshots_flushed: Vec::new(),
            groups,
            poisoned: None,
        }
    }

    fn check_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Runs an IO step; a failure poisons the log.
    fn guard<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.check_poisoned()?;
        step(self).map_err(|error| {
            let reason = error.to_string();
            self.poisoned = Some(reason.clone());
            StorageError::Poisoned(reason)
        })
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Buffers what `group` asks to persist. Nothing is written until
    /// [`Wal::flush`]. Only [`StorageError::TooLarge`] (nothing buffered)
    /// and [`StorageError::Poisoned`] are returned.
    pub fn append(&mut self, group: GroupId, persist: Persist<'_>) -> Result<(), StorageError> {
        self.check_poisoned()?;
        self.check_entry_sizes(persist.entries)?;
        if let Some(snapshot) = persist.snapshot {
            self.buffer_snapshot(group, snapshot, true);
        } else {
            self.groups.entry(group).or_default();
        }
        if !persist.entries.is_empty() {
            self.buffer_entries(group, persist.entries);
        }
        if let Some(hard_state) = persist.hard_state {
            let state = self.groups.entry(group).or_default();
            assert!(
                hard_state.commit >= state.hard_state.commit
                    && hard_state.term >= state.hard_state.term,
                "group {group}: hard state went backwards: {:?} after {:?}",
                hard_state,
                state.hard_state
            );
            state.hard_state = hard_state.clone();
            self.buffer_record(group, &Record::HardState(hard_state.clone()));
        }
        Ok(())
    }

    /// Buffers a snapshot the node took of `group`'s state machine at an
    /// applied index: the log up to its index is compacted, later entries
    /// are kept.
    /// This is [`consensus::Durable::compact`] made durable.
    pub fn save_snapshot(
        &mut self,
        group: GroupId,
        snapshot: &Snapshot,
    ) -> Result<(), StorageError> {
        self.check_poisoned()?;
        self.buffer_snapshot(group, snapshot, false);
        Ok(())
    }

    fn check_entry_sizes(&self, entries: &[Entry]) -> Result<(), StorageError> {
        let limit = u64::from(self.options.record_bytes_max) - 13;
        for entry in entries {
            let size = entry_encoded_bytes(entry);
            if size > limit {
                return Err(StorageError::TooLarge {
                    what: "log entry",
                    size_bytes: size,
                    limit_bytes: limit,
                });
            }
        }
        Ok(())
    }

    /// `installed`: the snapshot came from the leader (Raft §7: the log after
    /// it survives only if the log holds its last entry); otherwise it is a
    /// local compaction, which always keeps the log after it.
    fn buffer_snapshot(&mut self, group: GroupId, snapshot: &Snapshot, installed: bool) {
        let state = self.groups.entry(group).or_default();
        assert!(
            snapshot.index >= state.snapshot_index(),
            "group {group}: snapshot at {} behind the current one at {}",
            snapshot.index,
            state.snapshot_index()
        );
        if let Some(old) = &state.snapshot {
            let old_name = snapshot_name(group, old.index, old.term);
            if old_name != snapshot_name(group, snapshot.index, snapshot.term) {
                self.superseded_snapshots.push(old_name);
            }
        }
        let replaces_log = installed && state.term_at(snapshot.index) != Some(snapshot.term);
        if replaces_log {
            state.term_runs.clear();
            state.last_index = snapshot.index;
        } else {
            state.drop_through(snapshot.index);
        }
        let marker = SnapshotMarker {
            index: snapshot.index,
            term: snapshot.term,
            membership: snapshot.membership.clone(),
            replaces_log,
        };
        state.snapshot = Some(marker.clone());
        self.pending_snapshots.push((group, snapshot.clone()));
        self.buffer_record(group, &Record::SnapshotMarker(marker));
    }

    fn buffer_entries(&mut self, group: GroupId, entries: &[Entry]) {
        assert!(
            entries.windows(2).all(|pair| pair[1].index == pair[0].index + 1),
            "group {group}: entries to persist are not contiguous"
        );
        let state = self.groups.entry(group).or_default();
        // As `Durable::persist`: the log is replaced from the first entry on,
        // and entries the snapshot already covers are not written.
        let first = entries[0].index;
        let replace_from = first.max(state.snapshot_index() + 1);
        let skipped = usize::try_from(replace_from - first).unwrap_or(usize::MAX);
        let entries = entries.get(skipped..).unwrap_or(&[]);
        if entries.is_empty() {
            if replace_from <= state.last_index {
                state.truncate_from(replace_from);
                self.buffer_record(group, &Record::Truncate(replace_from));
            }
            return;
        }
        assert!(
            replace_from <= state.last_index + 1,
            "group {group}: entries from {replace_from} leave a gap after {}",
            state.last_index
        );
        state.truncate_from(replace_from);
        state.push_entries(entries);
        // Split into records that fit `record_bytes_max`: kind, group and
        // count take 13 bytes of the body.
        let limit = u64::from(self.options.record_bytes_max) - 13;
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut size = 0;
            while end < entries.len() && size + entry_encoded_bytes(&entries[end]) <= limit {
                size += entry_encoded_bytes(&entries[end]);
                end += 1;
            }
            assert!(end > start, "entry sizes are checked before buffering");
            self.buffer_record(group, &Record::Entries(entries[start..end].to_vec()));
            start = end;
        }
    }

    fn buffer_record(&mut self, group: GroupId, record: &Record) {
        encode_record(&mut self.buffer, group, record);
        self.buffer_records += 1;
        let active = self.segments.last_mut().expect("an active segment");
        note_record(active, group, record);
        let state = self.groups.get_mut(&group).expect("group state exists");
        match record {
            Record::HardState(_) => state.hard_state_segment = active.first_sequence,
            Record::SnapshotMarker(_) => state.snapshot_segment = active.first_sequence,
            Record::Entries(_) | Record::Truncate(_) => {}
        }
    }

    /// Writes everything buffered and, if `fsync`, makes it durable with one
    /// fsync. Returns once it is; callers acknowledge only after `Ok`.
    pub fn flush(&mut self, fsync: bool) -> Result<(), StorageError> {
        self.guard(|wal| wal.flush_inner(fsync))
    }

    /// `flush(true)`: everything appended so far is durable on `Ok`.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.flush(true)
    }

    fn flush_inner(&mut self, fsync: bool) -> Result<(), StorageError> {
        self.write_pending_snapshots()?;
        if !self.buffer.is_empty() {
            let active = self.segments.last_mut().expect("an active segment");
            self.active.write_at(active.size_bytes, &self.buffer)?;
            active.size_bytes += self.buffer.len() as u64;
            active.records += self.buffer_records;
            self.buffer.clear();
            self.buffer_records = 0;
            self.unsynced = true;
            self.superseded_snapshots_flushed.append(&mut self.superseded_snapshots);
        }
        if fsync {
            self.fsync_active()?;
        }
        let active = self.segments.last().expect("an active segment");
        if active.size_bytes >= self.options.segment_bytes_max {
            self.rotate()?;
        }
        Ok(())
    }

    fn write_pending_snapshots(&mut self) -> Result<(), StorageError> {
        if self.pending_snapshots.is_empty() {
            return Ok(());
        }
        for (group, snapshot) in std::mem::take(&mut self.pending_snapshots) {
            let name = snapshot_name(group, snapshot.index, snapshot.term);
            let temporary = format!("{name}{TEMPORARY_SUFFIX}");
            let mut file = self.fs.create(&temporary)?;
            file.write_at(0, &format::encode_snapshot_file(group, &snapshot))?;
            file.sync()?;
            self.fs.rename(&temporary, &name)?;
        }
        self.fs.sync_dir()
    }

    fn fsync_active(&mut self) -> Result<(), StorageError> {
        if self.unsynced {
            self.active.sync()?;
            self.unsynced = false;
        }
        // The markers that superseded these files are durable now. A crash
        // before the removals are durable only leaves orphans, which the
        // next open deletes.
        for name in std::mem::take(&mut self.superseded_snapshots_flushed) {
            let still_current = self.groups.iter().any(|(&group, state)| {
                state
                    .snapshot
                    .as_ref()
                    .is_some_and(|marker| snapshot_name(group, marker.index, marker.term) == name)
            });
            if !still_current && self.fs.list()?.contains(&name) {
                self.fs.remove(&name)?;
            }
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), StorageError> {
        // The old segment must be complete and durable before a newer one
        // can exist: only the last segment may ever have a torn tail.
        self.fsync_active()?;
        let previous = self.segments.last().expect("an active segment");
        let first_sequence = previous.first_sequence + previous.records;
        let mut segment = Segment {
            first_sequence,
            name: segment_name(first_sequence),
            size_bytes: 0,
            records: 0,
            groups: BTreeMap::new(),
        };
        let mut bytes = encode_segment_header(first_sequence).to_vec();
        for (&group, state) in &mut self.groups {
            let hard_state = Record::HardState(state.hard_state.clone());
            encode_record(&mut bytes, group, &hard_state);
            note_record(&mut segment, group, &hard_state);
            segment.records += 1;
            state.hard_state_segment = first_sequence;
            if let Some(marker) = &state.snapshot {
                // A copy must not drop the entries after the snapshot that
                // older segments hold.
                let copy = Record::SnapshotMarker(SnapshotMarker {
                    replaces_log: false,
                    ..marker.clone()
                });
                encode_record(&mut bytes, group, &copy);
                note_record(&mut segment, group, &copy);
                segment.records += 1;
                state.snapshot_segment = first_sequence;
            }
        }
        segment.size_bytes = bytes.len() as u64;
        let mut file = self.fs.create(&segment.name)?;
        file.write_at(0, &bytes)?;
        file.sync()?;
        self.fs.sync_dir()?;
        self.active = file;
        self.segments.push(segment);
        Ok(())
    }

    /// Makes everything durable, then deletes the oldest segments that hold
    /// nothing still needed (see the module documentation).
    pub fn compact(&mut self) -> Result<CompactReport, StorageError> {
        self.sync()?;
        self.guard(|wal| {
            let mut report = CompactReport::default();
            while wal.segments.len() > 1 && wal.is_obsolete(&wal.segments[0]) {
                let segment = wal.segments.remove(0);
                wal.fs.remove(&segment.name)?;
                // One directory sync per removal keeps the surviving segments
                // a contiguous sequence whatever order a crash persists
                // removals in.
                wal.fs.sync_dir()?;
                report.segments_removed += 1;
                report.bytes_freed += segment.size_bytes;
            }
            Ok(report)
        })
    }

    fn is_obsolete(&self, segment: &Segment) -> bool {
        segment.groups.iter().all(|(group, held)| {
            let state = &self.groups[group];
            held.entries_index_max <= state.snapshot_index()
                && (!held.hard_state || state.hard_state_segment > segment.first_sequence)
                && (!held.snapshot_marker || state.snapshot_segment > segment.first_sequence)
        })
    }

    /// Reads `group`'s current snapshot file back (to send it to a replica
    /// that lags). Reflects buffered snapshots only once flushed.
    pub fn load_snapshot(&mut self, group: GroupId) -> Result<Option<Snapshot>, StorageError> {
        self.check_poisoned()?;
        let Some(marker) = self.groups.get(&group).and_then(|state| state.snapshot.clone()) else {
            return Ok(None);
        };
        crate::recovery::read_snapshot(&self.fs, group, &marker).map(Some)
    }

    /// Names of the segments, oldest first.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|segment| segment.name.clone()).collect()
    }

    /// Bytes in all segments, including what is buffered.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|segment| segment.size_bytes).sum::<u64>()
            + self.buffer.len() as u64
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// The groups known to the log.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// The last log index of `group` (including buffered appends).
    pub fn last_index(&self, group: GroupId) -> Option<Index> {
        self.groups.get(&group).map(|state| state.last_index)
    }

    /// The underlying directory.
    pub fn fs(&self) -> &F {
        &self.fs
    }
}

/// Records in `segment`'s index what `record` holds for `group`.
pub(crate) fn note_record(segment: &mut Segment, group: GroupId, record: &Record) {
    let held = segment.groups.entry(group).or_default();
    match record {
        Record::Entries(entries) => {
            let last = entries[entries.len() - 1].index;
            held.entries_index_max = held.entries_index_max.max(last);
        }
        Record::HardState(_) => held.hard_state = true,
        Record::SnapshotMarker(_) => held.snapshot_marker = true,
        // Truncations only affect older records, which are deleted first.
        Record::Truncate(_) => {}
    }
}
