//! Opening the log: replay, torn-tail repair and leftover cleanup.
//!
//! Replay applies each record to a per-group model of the durable state,
//! exactly as the records' meanings are documented in `docs/STORAGE.md`:
//!
//! - Entries: contiguous entries; a first index at or below the group's last
//!   index replaces the log from there (Raft's rule that a conflicting
//!   suffix is dropped, §5.3), one above it is a gap and an error;
//! - HardState: replaces the group's hard state;
//! - Snapshot marker: drops the entries up to its index (all of them if it
//!   replaces the log) and names the snapshot file to load.
//!
//! Replay is strict about gaps, except for a group's first Entries record
//! when older segments were compacted away (see the `wal` module).

use std::collections::{BTreeMap, BTreeSet};

use consensus::{Durable, Entry, HardState, Snapshot};

use crate::format::{
    self, check_frame, decode_body, decode_segment_header, encode_segment_header, Record,
    SnapshotMarker, SEGMENT_HEADER_BYTES,
};
use crate::fs::{read_all, File, Fs};
use crate::wal::{
    note_record, parse_segment_name, segment_name, snapshot_name, GroupState, Recovered, Segment,
    TornTail, Wal, WalOptions, TEMPORARY_SUFFIX,
};
use crate::{GroupId, StorageError};

/// One group's durable state as replay rebuilds it.
#[derive(Default)]
struct ReplayGroup {
    hard_state: HardState,
    marker: Option<SnapshotMarker>,
    entries: Vec<Entry>,
    entries_seen: bool,
    /// Where the record that began the current log is, for error messages.
    log_start: (String, u64),
}

impl ReplayGroup {
    fn snapshot_index(&self) -> u64 {
        self.marker.as_ref().map_or(0, |marker| marker.index)
    }

    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_index(), |entry| entry.index)
    }

    fn apply(
        &mut self,
        record: Record,
        lenient_start: bool,
        file: &str,
        offset: u64,
    ) -> Result<(), StorageError> {
        match record {
            Record::HardState(hard_state) => self.hard_state = hard_state,
            Record::Truncate(index) => {
                if index <= self.snapshot_index() {
                    return Err(StorageError::corrupt(
                        file,
                        offset,
                        format!("truncation at {index} at or below the snapshot"),
                    ));
                }
                self.entries.retain(|entry| entry.index < index);
            }
            Record::SnapshotMarker(marker) => {
                if marker.index < self.snapshot_index() {
                    return Err(StorageError::corrupt(
                        file,
                        offset,
                        format!(
                            "snapshot marker at {} behind the earlier one at {}",
                            marker.index,
                            self.snapshot_index()
                        ),
                    ));
                }
                if marker.replaces_log {
                    self.entries.clear();
                } else {
                    self.entries.retain(|entry| entry.index > marker.index);
                }
                self.marker = Some(marker);
            }
            Record::Entries(entries) => {
                let first = entries[0].index;
                if first <= self.snapshot_index() {
                    return Err(StorageError::corrupt(
                        file,
                        offset,
                        format!(
                            "entries from {first} at or below the snapshot {}",
                            self.snapshot_index()
                        ),
                    ));
                }
                let may_start_anywhere = lenient_start && !self.entries_seen;
                if first > self.last_index() + 1 && !may_start_anywhere {
                    return Err(StorageError::corrupt(
                        file,
                        offset,
                        format!("entries from {first} leave a gap after {}", self.last_index()),
                    ));
                }
                self.entries.retain(|entry| entry.index < first);
                if self.entries.is_empty() {
                    self.log_start = (file.to_string(), offset);
                }
                self.entries.extend(entries);
                self.entries_seen = true;
            }
        }
        Ok(())
    }
}

/// Whether a valid record starts anywhere at or after `from`.
fn valid_record_after(bytes: &[u8], from: usize, record_bytes_max: u32) -> Option<usize> {
    (from..bytes.len()).find(|&offset| {
        check_frame(&bytes[offset..], record_bytes_max)
            .is_ok_and(|(_, body)| decode_body(body).is_ok())
    })
}

struct Replay {
    groups: BTreeMap<GroupId, ReplayGroup>,
    index: BTreeMap<GroupId, GroupState>,
    lenient_start: bool,
    torn_tail: Option<TornTail>,
    record_bytes_max: u32,
}

impl Replay {
    /// Replays one segment, repairing its tail if it is the last one.
    fn segment<Fl: File>(
        &mut self,
        segment: &mut Segment,
        file: &mut Fl,
        last: bool,
    ) -> Result<(), StorageError> {
        let name = segment.name.clone();
        let bytes = read_all(file)?;
        match decode_segment_header(&bytes) {
            Ok(sequence) if sequence == segment.first_sequence => {}
            Ok(sequence) => {
                return Err(StorageError::corrupt(
                    &name,
                    0,
                    format!("header says sequence {sequence}"),
                ));
            }
            Err(reason) => {
                if !last || valid_record_after(&bytes, 0, self.record_bytes_max).is_some() {
                    return Err(StorageError::corrupt(&name, 0, reason));
                }
                // The segment was being created when the node stopped.
                file.set_len(0)?;
                file.write_at(0, &encode_segment_header(segment.first_sequence))?;
                file.sync()?;
                self.torn_tail = Some(TornTail {
                    file: name,
                    offset: 0,
                    truncated_bytes: bytes.len() as u64,
                    reason,
                });
                segment.size_bytes = SEGMENT_HEADER_BYTES as u64;
                return Ok(());
            }
        }
        let mut offset = SEGMENT_HEADER_BYTES;
        while offset < bytes.len() {
            match check_frame(&bytes[offset..], self.record_bytes_max) {
                Ok((total, body)) => {
                    let (group, record) = decode_body(body)
                        .map_err(|reason| StorageError::corrupt(&name, offset as u64, reason))?;
                    self.index.entry(group).or_default();
                    note_index(&mut self.index, group, &record, segment);
                    self.groups.entry(group).or_default().apply(
                        record,
                        self.lenient_start,
                        &name,
                        offset as u64,
                    )?;
                    segment.records += 1;
                    offset += total;
                }
                Err(reason) => {
                    if !last {
                        return Err(StorageError::corrupt(&name, offset as u64, reason));
                    }
                    if let Some(next) =
                        valid_record_after(&bytes, offset + 1, self.record_bytes_max)
                    {
                        return Err(StorageError::corrupt(
                            &name,
                            offset as u64,
                            format!("{reason}, yet a valid record follows at offset {next}"),
                        ));
                    }
                    file.set_len(offset as u64)?;
                    file.sync()?;
                    self.torn_tail = Some(TornTail {
                        file: name.clone(),
                        offset: offset as u64,
                        truncated_bytes: (bytes.len() - offset) as u64,
                        reason,
                    });
                    break;
                }
            }
        }
        segment.size_bytes = offset.min(bytes.len()) as u64;
        Ok(())
    }
}

fn note_index(
    index: &mut BTreeMap<GroupId, GroupState>,
    group: GroupId,
    record: &Record,
    segment: &mut Segment,
) {
    note_record(segment, group, record);
    let state = index.get_mut(&group).expect("inserted before");
    match record {
        Record::HardState(hard_state) => {
            state.hard_state = hard_state.clone();
            state.hard_state_segment = segment.first_sequence;
        }
        Record::SnapshotMarker(marker) => {
            state.snapshot = Some(marker.clone());
            state.snapshot_segment = segment.first_sequence;
        }
        Record::Entries(_) | Record::Truncate(_) => {}
    }
}

/// Reads and checks the snapshot file a marker names.
pub(crate) fn read_snapshot<F: Fs>(
    fs: &F,
    group: GroupId,
    marker: &SnapshotMarker,
) -> Result<Snapshot, StorageError> {
    let name = snapshot_name(group, marker.index, marker.term);
    let mut file = fs.open(&name).map_err(|error| {
        StorageError::corrupt(&name, 0, format!("snapshot file named by a durable marker: {error}"))
    })?;
    let bytes = read_all(&mut file)?;
    let (file_group, snapshot) = format::decode_snapshot_file(&bytes)
        .map_err(|reason| StorageError::corrupt(&name, 0, reason))?;
    if file_group != group
        || snapshot.index != marker.index
        || snapshot.term != marker.term
        || snapshot.membership != marker.membership
    {
        return Err(StorageError::corrupt(&name, 0, "snapshot file does not match its marker"));
    }
    Ok(snapshot)
}

pub(crate) fn open<F: Fs>(fs: F, options: WalOptions) -> Result<(Wal<F>, Recovered), StorageError> {
    let mut segment_names = Vec::new();
    let mut leftovers = Vec::new();
    let mut snapshot_files = Vec::new();
    for name in fs.list()? {
        if name.starts_with("wal-") {
            let sequence = parse_segment_name(&name)
                .ok_or_else(|| StorageError::corrupt(&name, 0, "unrecognized segment name"))?;
            segment_names.push((sequence, name));
        } else if name.starts_with("snapshot-") && name.ends_with(TEMPORARY_SUFFIX) {
            leftovers.push(name);
        } else if name.starts_with("snapshot-") && name.ends_with(".snap") {
            snapshot_files.push(name);
        }
    }
    segment_names.sort();

    let mut replay = Replay {
        groups: BTreeMap::new(),
        index: BTreeMap::new(),
        lenient_start: segment_names.first().is_some_and(|(sequence, _)| *sequence > 0),
        torn_tail: None,
        record_bytes_max: options.record_bytes_max,
    };
    let mut segments: Vec<Segment> = Vec::new();
    let mut active = None;
    for (position, (sequence, name)) in segment_names.iter().enumerate() {
        if let Some(previous) = segments.last() {
            let expected = previous.first_sequence + previous.records;
            if *sequence != expected {
                return Err(StorageError::corrupt(
                    name,
                    0,
                    format!(
                        "starts at sequence {sequence}, expected {expected}: a segment is missing"
                    ),
                ));
            }
        }
        let mut segment = Segment {
            first_sequence: *sequence,
            name: name.clone(),
            size_bytes: 0,
            records: 0,
            groups: BTreeMap::new(),
        };
        let mut file = fs.open(name)?;
        replay.segment(&mut segment, &mut file, position + 1 == segment_names.len())?;
        segments.push(segment);
        active = Some(file);
    }
    let active = match active {
        Some(file) => file,
        None => {
            let name = segment_name(0);
            let mut file = fs.create(&name)?;
            let header = encode_segment_header(0);
            file.write_at(0, &header)?;
            file.sync()?;
            fs.sync_dir()?;
            segments.push(Segment {
                first_sequence: 0,
                name,
                size_bytes: header.len() as u64,
                records: 0,
                groups: BTreeMap::new(),
            });
            file
        }
    };

    let mut recovered = Recovered { segments: segments.len(), ..Recovered::default() };
    let mut referenced = BTreeSet::new();
    for (&group, state) in &replay.groups {
        let snapshot_index = state.snapshot_index();
        if let Some(first) = state.entries.first() {
            if first.index != snapshot_index + 1 {
                let (file, offset) = &state.log_start;
                return Err(StorageError::corrupt(
                    file,
                    *offset,
                    format!(
                        "group {group}: log starts at {} but its snapshot ends at {snapshot_index}",
                        first.index
                    ),
                ));
            }
        }
        let snapshot = match &state.marker {
            Some(marker) => {
                referenced.insert(snapshot_name(group, marker.index, marker.term));
                Some(read_snapshot(&fs, group, marker)?)
            }
            None => None,
        };
        let index = replay.index.get_mut(&group).expect("indexed");
        index.last_index = snapshot_index;
        index.term_runs.clear();
        index.push_entries(&state.entries);
        recovered.groups.insert(
            group,
            Durable {
                hard_state: state.hard_state.clone(),
                snapshot,
                entries: state.entries.clone(),
            },
        );
    }
    leftovers.extend(snapshot_files.into_iter().filter(|name| !referenced.contains(name)));
    for name in &leftovers {
        fs.remove(name)?;
    }
    if !leftovers.is_empty() {
        fs.sync_dir()?;
    }
    recovered.removed_files = leftovers;
    recovered.torn_tail = replay.torn_tail;
    Ok((Wal::from_recovery(fs, options, segments, active, replay.index), recovered))
}
