//! Behaviour of the shared log on the simulated disk: round trips, replaced
//! suffixes, snapshots, torn tails, corruption, fail-stop and compaction.

use std::collections::BTreeMap;

use bytes::Bytes;
use consensus::{Durable, Entry, HardState, Membership, Payload, Snapshot};
use storage::{snapshot_name, Fs, GroupId, Persist, SimFs, StorageError, Tear, Wal, WalOptions};

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, payload: Payload::Command(Bytes::from(format!("command {index}@{term}"))) }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|index| entry(index, term)).collect()
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index,
        term,
        membership: Membership::with_voters([1, 2, 3]),
        data: Bytes::from(format!("image at {index}")),
    }
}

fn hard_state(term: u64, commit: u64) -> HardState {
    HardState { term, vote: 1, commit }
}

fn append_entries(wal: &mut Wal<SimFs>, group: GroupId, entries: &[Entry]) {
    wal.append(group, Persist { entries, ..Persist::default() }).unwrap();
}

fn same(left: &Durable, right: &Durable) -> bool {
    left.hard_state == right.hard_state
        && left.snapshot == right.snapshot
        && left.entries == right.entries
}

fn assert_groups(actual: &BTreeMap<GroupId, Durable>, expected: &BTreeMap<GroupId, Durable>) {
    let groups: std::collections::BTreeSet<_> = actual.keys().chain(expected.keys()).collect();
    for group in groups {
        let actual = actual.get(group).cloned().unwrap_or_default();
        let expected = expected.get(group).cloned().unwrap_or_default();
        assert!(same(&actual, &expected), "group {group}: got {actual:?}, expected {expected:?}");
    }
}

fn reopen(fs: &SimFs, options: &WalOptions) -> (Wal<SimFs>, storage::Recovered) {
    Wal::open(fs.crash(Tear::None), options.clone()).unwrap()
}

/// Entries, hard states and snapshots of several groups come back exactly
/// after a sync and a crash.
#[test]
fn round_trip_several_groups() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, recovered) = Wal::open(fs.clone(), options.clone()).unwrap();
    assert!(recovered.groups.is_empty());
    let mut expected: BTreeMap<GroupId, Durable> = BTreeMap::new();
    for group in 1..=4u64 {
        let batch = entries(1..=group * 3, 1);
        let state = hard_state(1, group);
        wal.append(group, Persist { hard_state: Some(&state), snapshot: None, entries: &batch })
            .unwrap();
        expected.entry(group).or_default().persist(None, batch, Some(state));
    }
    let installed = snapshot(20, 2);
    let after = entries(21..=22, 2);
    let state = hard_state(2, 20);
    wal.append(
        9,
        Persist { hard_state: Some(&state), snapshot: Some(&installed), entries: &after },
    )
    .unwrap();
    expected.entry(9).or_default().persist(Some(installed), after, Some(state));
    wal.sync().unwrap();

    let (_wal, recovered) = reopen(&fs, &options);
    assert_groups(&recovered.groups, &expected);
    assert_eq!(recovered.torn_tail, None);
}

/// Entries whose first index is at or below the last one replace the log
/// from there, as `Durable::persist` does, across syncs and records.
#[test]
fn conflicting_suffix_is_replaced() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let mut expected = Durable::default();
    for (batch, sync) in [
        (entries(1..=10, 1), true),
        (entries(6..=8, 2), false),
        (entries(8..=12, 3), true),
        (entries(3..=3, 4), true),
    ] {
        append_entries(&mut wal, 5, &batch);
        expected.persist(None, batch, None);
        if sync {
            wal.sync().unwrap();
        }
    }
    assert_eq!(wal.last_index(5), Some(3));
    let (_wal, recovered) = reopen(&fs, &options);
    assert!(same(&recovered.groups[&5], &expected));
    assert_eq!(recovered.groups[&5].entries.last().unwrap().term, 4);
}

/// An installed snapshot keeps the log after it only if the log held its
/// last entry; a local compaction always keeps it; old files are removed.
#[test]
fn snapshots_follow_the_reference_rules() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let mut matching = Durable::default();
    let mut conflicting = Durable::default();
    for (group, model) in [(1, &mut matching), (2, &mut conflicting)] {
        let batch = entries(1..=10, 1);
        append_entries(&mut wal, group, &batch);
        model.persist(None, batch, None);
    }
    let local = snapshot(3, 1);
    wal.save_snapshot(1, &local).unwrap();
    matching.compact(local);
    wal.sync().unwrap();
    let same_log = snapshot(5, 1);
    let other_log = snapshot(5, 7);
    for (group, model, installed) in
        [(1, &mut matching, same_log), (2, &mut conflicting, other_log)]
    {
        wal.append(group, Persist { snapshot: Some(&installed), ..Persist::default() }).unwrap();
        model.persist(Some(installed), Vec::new(), None);
    }
    wal.sync().unwrap();
    assert_eq!(matching.entries.len(), 5);
    assert!(conflicting.entries.is_empty());

    let (mut wal, recovered) = reopen(&fs, &options);
    assert!(same(&recovered.groups[&1], &matching));
    assert!(same(&recovered.groups[&2], &conflicting));
    assert_eq!(wal.load_snapshot(1).unwrap(), matching.snapshot);
    let snapshot_files: Vec<String> =
        fs.list().unwrap().into_iter().filter(|name| name.ends_with(".snap")).collect();
    assert_eq!(snapshot_files, vec![snapshot_name(1, 5, 1), snapshot_name(2, 5, 7)]);
}

/// A record cut short at the end of the last segment is truncated and
/// reported with file and offset; what was synced survives.
#[test]
fn torn_tail_is_truncated_and_reported() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let synced = entries(1..=3, 1);
    append_entries(&mut wal, 1, &synced);
    wal.sync().unwrap();
    let segment = wal.segment_names().pop().unwrap();
    let synced_len = fs.contents(&segment).unwrap().len() as u64;
    append_entries(&mut wal, 1, &entries(4..=6, 1));
    wal.flush(false).unwrap();

    let torn = fs.crash(Tear::KeepBytes(11));
    let (_wal, recovered) = Wal::open(torn.clone(), options.clone()).unwrap();
    let tail = recovered.torn_tail.expect("torn tail reported");
    assert_eq!(
        (tail.file.as_str(), tail.offset, tail.truncated_bytes),
        (&*segment, synced_len, 11)
    );
    assert_eq!(recovered.groups[&1].entries, synced);

    // The truncation itself was made durable: a second crash finds no tear.
    let (_wal, again) = Wal::open(torn.crash(Tear::None), options).unwrap();
    assert_eq!(again.torn_tail, None);
    assert_eq!(again.groups[&1].entries, synced);
}

/// Zeros after the last record (a file extended but never written) are a
/// torn tail too.
#[test]
fn zeroed_tail_is_torn() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    append_entries(&mut wal, 1, &entries(1..=2, 1));
    wal.sync().unwrap();
    let segment = wal.segment_names().pop().unwrap();
    fs.append_durably(&segment, &[0u8; 100]);
    let (_wal, recovered) = reopen(&fs, &options);
    assert_eq!(recovered.torn_tail.unwrap().truncated_bytes, 100);
    assert_eq!(recovered.groups[&1].entries.len(), 2);
}

/// A damaged record followed by valid ones is corruption naming the file
/// and the record's offset, in an old segment and in the last one alike.
#[test]
fn corruption_in_the_middle_is_loud() {
    let options = WalOptions { segment_bytes_max: 400, ..WalOptions::default() };
    let fs = SimFs::new();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    for index in 1..=40 {
        append_entries(&mut wal, 1, &entries(index..=index, 1));
        wal.sync().unwrap();
    }
    let names = wal.segment_names();
    assert!(names.len() >= 3, "rotation happened: {names:?}");
    // The first record of a segment starts right after the 24-byte header.
    for name in [&names[0], names.last().unwrap()] {
        let damaged = fs.crash(Tear::None);
        assert!(damaged.contents(name).unwrap().len() > 100);
        damaged.corrupt(name, 24 + 12);
        let error = Wal::open(damaged, options.clone()).unwrap_err();
        match error {
            StorageError::Corrupt { file, offset, .. } => {
                assert_eq!((&file, offset), (name, 24));
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}

/// A missing middle segment is detected by the sequence numbers.
#[test]
fn missing_segment_is_detected() {
    let options = WalOptions { segment_bytes_max: 300, ..WalOptions::default() };
    let fs = SimFs::new();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    for index in 1..=30 {
        append_entries(&mut wal, 1, &entries(index..=index, 1));
        wal.sync().unwrap();
    }
    let names = wal.segment_names();
    let damaged = fs.crash(Tear::None);
    damaged.remove(&names[1]).unwrap();
    let error = Wal::open(damaged, options).unwrap_err();
    assert!(
        matches!(error, StorageError::Corrupt { ref file, .. } if *file == names[2]),
        "{error}"
    );
}

/// A failed fsync poisons the log for that call and every later one, and
/// nothing after the last successful sync is claimed durable.
#[test]
fn failed_fsync_poisons() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let acknowledged = entries(1..=3, 1);
    append_entries(&mut wal, 1, &acknowledged);
    wal.sync().unwrap();
    append_entries(&mut wal, 1, &entries(4..=5, 1));
    fs.fail_syncs(true);
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned(_))));
    fs.fail_syncs(false);
    assert!(wal.is_poisoned());
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned(_))));
    assert!(matches!(
        wal.append(1, Persist { entries: &entries(6..=6, 1), ..Persist::default() }),
        Err(StorageError::Poisoned(_))
    ));
    assert!(matches!(wal.compact(), Err(StorageError::Poisoned(_))));
    let (_wal, recovered) = Wal::open(fs.crash(Tear::None), options).unwrap();
    assert_eq!(recovered.groups[&1].entries, acknowledged);
}

/// A full disk (ENOSPC) poisons the log the same way.
#[test]
fn no_space_poisons() {
    let fs = SimFs::new();
    let options = WalOptions::default();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let acknowledged = entries(1..=3, 1);
    append_entries(&mut wal, 1, &acknowledged);
    wal.sync().unwrap();
    fs.set_capacity_bytes(Some(wal.size_bytes() + 10));
    append_entries(&mut wal, 1, &entries(4..=5, 1));
    let error = wal.sync().unwrap_err();
    assert!(
        matches!(&error, StorageError::Poisoned(reason) if reason.contains("no space")),
        "{error}"
    );
    fs.set_capacity_bytes(None);
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned(_))));
    let (_wal, recovered) = Wal::open(fs.crash(Tear::None), options).unwrap();
    assert_eq!(recovered.groups[&1].entries, acknowledged);
}

/// An entry larger than a record may be is refused without poisoning.
#[test]
fn oversized_entry_is_refused() {
    let options = WalOptions { record_bytes_max: 1024, ..WalOptions::default() };
    let (mut wal, _) = Wal::open(SimFs::new(), options).unwrap();
    let big = Entry { index: 1, term: 1, payload: Payload::Command(Bytes::from(vec![7u8; 2000])) };
    let error = wal.append(1, Persist { entries: &[big], ..Persist::default() }).unwrap_err();
    assert!(matches!(error, StorageError::TooLarge { .. }));
    assert!(!wal.is_poisoned());
    // Many small entries are split across records instead.
    let batch = entries(1..=200, 1);
    append_entries(&mut wal, 1, &batch);
    wal.sync().unwrap();
}

/// Rotation plus compaction frees the segments no group needs and keeps
/// everything the groups still need.
#[test]
fn rotation_and_compaction() {
    let options = WalOptions { segment_bytes_max: 512, ..WalOptions::default() };
    let fs = SimFs::new();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let mut expected: BTreeMap<GroupId, Durable> = BTreeMap::new();
    for index in 1..=60u64 {
        for group in 1..=3u64 {
            let batch = entries(index..=index, 1);
            let state = hard_state(1, index);
            wal.append(
                group,
                Persist { hard_state: Some(&state), snapshot: None, entries: &batch },
            )
            .unwrap();
            expected.entry(group).or_default().persist(None, batch, Some(state));
        }
        wal.sync().unwrap();
    }
    let segments_before = wal.segment_names();
    assert!(segments_before.len() > 5);

    // Group 3 has taken no snapshot: nothing can be freed yet.
    for group in 1..=2u64 {
        wal.save_snapshot(group, &snapshot(50, 1)).unwrap();
        expected.get_mut(&group).unwrap().compact(snapshot(50, 1));
    }
    assert_eq!(wal.compact().unwrap().segments_removed, 0);

    wal.save_snapshot(3, &snapshot(40, 1)).unwrap();
    expected.get_mut(&3).unwrap().compact(snapshot(40, 1));
    let report = wal.compact().unwrap();
    assert!(report.segments_removed > 0 && report.bytes_freed > 0, "{report:?}");
    let segments_after = wal.segment_names();
    assert_eq!(segments_after.len() + report.segments_removed, segments_before.len());
    assert!(fs
        .list()
        .unwrap()
        .iter()
        .all(|name| !segments_before[..report.segments_removed].contains(name)));

    let fs = fs.crash(Tear::None);
    let (mut wal, recovered) = Wal::open(fs.clone(), options.clone()).unwrap();
    assert_groups(&recovered.groups, &expected);
    // The log keeps working after compaction and reopening.
    let batch = entries(61..=61, 1);
    append_entries(&mut wal, 3, &batch);
    expected.get_mut(&3).unwrap().persist(None, batch, None);
    wal.sync().unwrap();
    let (_wal, recovered) = reopen(&fs, &options);
    assert_groups(&recovered.groups, &expected);
}
