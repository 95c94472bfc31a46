//! The log on real files: round trip, torn tail and corruption, each in its
//! own fresh directory under the system temporary directory.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use consensus::{Entry, HardState, Membership, Payload, Snapshot};
use storage::{OsFs, Persist, StorageError, Wal, WalOptions};

/// A directory removed when dropped, even if the test fails.
struct TemporaryDirectory(PathBuf);

impl TemporaryDirectory {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("cohort-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TemporaryDirectory(path)
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|index| Entry { index, term: 1, payload: Payload::Command(Bytes::from(vec![1; 50])) })
        .collect()
}

fn write_some(directory: &TemporaryDirectory) -> Vec<Entry> {
    let (mut wal, _) = Wal::open(OsFs::new(&directory.0).unwrap(), WalOptions::default()).unwrap();
    let batch = entries(1..=20);
    let hard_state = HardState { term: 1, vote: 2, commit: 5 };
    wal.append(1, Persist { hard_state: Some(&hard_state), snapshot: None, entries: &batch })
        .unwrap();
    wal.save_snapshot(
        1,
        &Snapshot {
            index: 5,
            term: 1,
            membership: Membership::with_voters([1, 2]),
            data: Bytes::from_static(b"image"),
        },
    )
    .unwrap();
    wal.sync().unwrap();
    batch[5..].to_vec()
}

/// What was synced to real files comes back on reopen.
#[test]
fn round_trip_on_real_files() {
    let directory = TemporaryDirectory::new("round-trip");
    let expected = write_some(&directory);
    let (_wal, recovered) =
        Wal::open(OsFs::new(&directory.0).unwrap(), WalOptions::default()).unwrap();
    let group = &recovered.groups[&1];
    assert_eq!(group.entries, expected);
    assert_eq!(group.hard_state.commit, 5);
    assert_eq!(group.snapshot.as_ref().unwrap().data, Bytes::from_static(b"image"));
}

/// Half a record appended to a real segment is a reported torn tail.
#[test]
fn torn_tail_on_real_files() {
    let directory = TemporaryDirectory::new("torn");
    let expected = write_some(&directory);
    let segment = directory.0.join(storage::segment_name(0));
    let length = std::fs::metadata(&segment).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[40, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(file);
    let (_wal, recovered) =
        Wal::open(OsFs::new(&directory.0).unwrap(), WalOptions::default()).unwrap();
    let torn = recovered.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.truncated_bytes), (length, 7));
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), length);
    assert_eq!(recovered.groups[&1].entries, expected);
}

/// A flipped byte inside the first record of a real segment is corruption.
#[test]
fn corruption_on_real_files() {
    let directory = TemporaryDirectory::new("corrupt");
    write_some(&directory);
    let segment = directory.0.join(storage::segment_name(0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[40] ^= 0xFF;
    std::fs::write(&segment, bytes).unwrap();
    let error = Wal::open(OsFs::new(&directory.0).unwrap(), WalOptions::default()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { file, offset: 24, .. } if *file == storage::segment_name(0)),
        "{error}"
    );
}
