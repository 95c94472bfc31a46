//! `SimFs`: a deterministic, in-memory disk that forgets what was not synced.
//!
//! Every file (an inode) holds two byte strings: `written`, what reads see, and
//! `synced`, what survived the last [`File::sync`]. The directory likewise has
//! two name tables: the live one, and the one captured by the last
//! [`Fs::sync_dir`]. [`SimFs::crash`] builds the disk a reboot would find:
//! the durable name table, each file holding its synced bytes, optionally
//! followed by a seeded random-length prefix of the bytes appended after them
//! (a torn tail). Overwrites of synced bytes that were not synced are lost.
//!
//! Faults: [`SimFs::fail_syncs`] makes every file and directory sync fail, and
//! [`SimFs::set_capacity_bytes`] makes writes that would grow the disk past a
//! size fail with [`StorageError::NoSpace`]. [`SimFs::corrupt`] flips a byte,
//! durably, to test checksum detection.
//!
//! A `SimFs` is a cheap handle: clones share one disk, so a test can keep one
//! to crash the disk while the log owns another.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use consensus::rng::Rng;

use crate::fs::{assert_plain_name, File, Fs};
use crate::StorageError;

type InodeId = u64;

#[derive(Clone, Debug, Default)]
struct Inode {
    written: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: BTreeMap<InodeId, Inode>,
    names: BTreeMap<String, InodeId>,
    names_durable: BTreeMap<String, InodeId>,
    inode_next: InodeId,
    fail_syncs: bool,
    capacity_bytes: Option<u64>,
    syncs: u64,
}

impl Disk {
    fn inode(&mut self, name: &str, id: InodeId) -> Result<&mut Inode, StorageError> {
        // A handle to a removed file still works, as on POSIX.
        self.inodes.get_mut(&id).ok_or_else(|| not_found("access", name))
    }

    fn used_bytes(&self) -> u64 {
        self.inodes.values().map(|inode| inode.written.len() as u64).sum()
    }

    fn check_growth(&self, name: &str, growth_bytes: u64) -> Result<(), StorageError> {
        match self.capacity_bytes {
            Some(capacity) if self.used_bytes() + growth_bytes > capacity => {
                Err(StorageError::NoSpace { operation: "write", file: name.to_string() })
            }
            _ => Ok(()),
        }
    }

    fn sync_fault(&self, operation: &'static str, name: &str) -> Result<(), StorageError> {
        if self.fail_syncs {
            return Err(StorageError::Io {
                operation,
                file: name.to_string(),
                kind: io::ErrorKind::Other,
                message: "injected fsync failure".to_string(),
            });
        }
        Ok(())
    }
}

fn not_found(operation: &'static str, name: &str) -> StorageError {
    StorageError::Io {
        operation,
        file: name.to_string(),
        kind: io::ErrorKind::NotFound,
        message: "no such file".to_string(),
    }
}

/// A simulated directory; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

/// How a crash treats bytes appended after a file's last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// All of them are lost.
    None,
    /// A random-length prefix of them survives, drawn from this seed.
    Seeded(u64),
    /// Up to this many of them survive, in every file.
    KeepBytes(u64),
}

impl SimFs {
    pub fn new() -> Self {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().expect("SimFs lock poisoned")
    }

    /// The disk after a power failure now: only durable names, each file
    /// with its synced bytes plus what `tear` keeps of the unsynced tail.
    pub fn crash(&self, tear: Tear) -> SimFs {
        let disk = self.lock();
        let mut rng = match tear {
            Tear::Seeded(seed) => Some(Rng::new(seed)),
            _ => None,
        };
        let mut crashed = Disk { inode_next: disk.inode_next, ..Disk::default() };
        for (name, &id) in &disk.names_durable {
            let inode = &disk.inodes[&id];
            let mut bytes = inode.synced.clone();
            let appended = inode.written.len().saturating_sub(bytes.len());
            let keep = match tear {
                Tear::None => 0,
                Tear::KeepBytes(count) => {
                    appended.min(usize::try_from(count).unwrap_or(usize::MAX))
                }
                Tear::Seeded(_) => {
                    let rng = rng.as_mut().expect("seeded");
                    usize::try_from(rng.range(0, appended as u64 + 1)).expect("fits")
                }
            };
            bytes.extend_from_slice(&inode.written[inode.synced.len()..inode.synced.len() + keep]);
            crashed.inodes.insert(id, Inode { written: bytes.clone(), synced: bytes });
            crashed.names.insert(name.clone(), id);
            crashed.names_durable.insert(name.clone(), id);
        }
        SimFs { disk: Arc::new(Mutex::new(crashed)) }
    }

    /// While `fail` holds, every file and directory sync fails.
    pub fn fail_syncs(&self, fail: bool) {
        self.lock().fail_syncs = fail;
    }

    /// Writes that would grow the disk beyond `capacity` bytes fail with
    /// ENOSPC.
    pub fn set_capacity_bytes(&self, capacity: Option<u64>) {
        self.lock().capacity_bytes = capacity;
    }

    /// Flips every bit of the byte at `offset` of `name`, durably.
    pub fn corrupt(&self, name: &str, offset: u64) {
        let mut disk = self.lock();
        let id = disk.names[name];
        let inode = disk.inodes.get_mut(&id).expect("inode");
        let offset = usize::try_from(offset).expect("fits");
        inode.written[offset] ^= 0xFF;
        if offset < inode.synced.len() {
            inode.synced[offset] ^= 0xFF;
        }
    }

    /// Appends `bytes` to `name` durably (for planting garbage in tests).
    pub fn append_durably(&self, name: &str, bytes: &[u8]) {
        let mut disk = self.lock();
        let id = disk.names[name];
        let inode = disk.inodes.get_mut(&id).expect("inode");
        inode.written.extend_from_slice(bytes);
        inode.synced = inode.written.clone();
    }

    /// The current (not necessarily durable) contents of `name`.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let disk = self.lock();
        disk.names.get(name).map(|id| disk.inodes[id].written.clone())
    }

    /// How many successful file and directory syncs were made.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
}

impl Fs for SimFs {
    type File = SimFile;

    fn open(&self, name: &str) -> Result<SimFile, StorageError> {
        assert_plain_name(name);
        let disk = self.lock();
        let id = *disk.names.get(name).ok_or_else(|| not_found("open", name))?;
        Ok(SimFile { disk: self.disk.clone(), id, name: name.to_string() })
    }

    fn create(&self, name: &str) -> Result<SimFile, StorageError> {
        assert_plain_name(name);
        let mut disk = self.lock();
        let id = match disk.names.get(name) {
            Some(&id) => {
                disk.inode(name, id)?.written.clear();
                id
            }
            None => {
                let id = disk.inode_next;
                disk.inode_next += 1;
                disk.inodes.insert(id, Inode::default());
                disk.names.insert(name.to_string(), id);
                id
            }
        };
        Ok(SimFile { disk: self.disk.clone(), id, name: name.to_string() })
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn remove(&self, name: &str) -> Result<(), StorageError> {
        assert_plain_name(name);
        let mut disk = self.lock();
        disk.names.remove(name).ok_or_else(|| not_found("remove", name))?;
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        assert_plain_name(from);
        assert_plain_name(to);
        let mut disk = self.lock();
        let id = disk.names.remove(from).ok_or_else(|| not_found("rename", from))?;
        disk.names.insert(to.to_string(), id);
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), StorageError> {
        let mut disk = self.lock();
        disk.sync_fault("sync directory", ".")?;
        disk.names_durable = disk.names.clone();
        disk.syncs += 1;
        // Inodes no name (live or durable) refers to can never be reached
        // after a crash; dropping them keeps long simulations small. Open
        // handles to them keep working only until here, which the log never
        // relies on.
        let Disk { inodes, names, .. } = &mut *disk;
        inodes.retain(|id, _| names.values().any(|live| live == id));
        Ok(())
    }
}

/// A handle to a file of a [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    disk: Arc<Mutex<Disk>>,
    id: InodeId,
    name: String,
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().expect("SimFs lock poisoned")
    }
}

impl File for SimFile {
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), StorageError> {
        let mut disk = self.lock();
        let inode = disk.inode(&self.name, self.id)?;
        let start = usize::try_from(offset).expect("fits");
        let end = start.checked_add(buffer.len()).expect("fits");
        if end > inode.written.len() {
            return Err(StorageError::Io {
                operation: "read",
                file: self.name.clone(),
                kind: io::ErrorKind::UnexpectedEof,
                message: format!("read {start}..{end} past the end {}", inode.written.len()),
            });
        }
        buffer.copy_from_slice(&inode.written[start..end]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut disk = self.lock();
        let start = usize::try_from(offset).expect("fits");
        let end = start.checked_add(data.len()).expect("fits");
        let current = disk.inode(&self.name, self.id)?.written.len();
        disk.check_growth(&self.name, end.saturating_sub(current) as u64)?;
        let inode = disk.inode(&self.name, self.id)?;
        if end > inode.written.len() {
            inode.written.resize(end, 0);
        }
        inode.written[start..end].copy_from_slice(data);
        Ok(())
    }

    fn len(&mut self) -> Result<u64, StorageError> {
        let mut disk = self.lock();
        Ok(disk.inode(&self.name, self.id)?.written.len() as u64)
    }

    fn set_len(&mut self, len: u64) -> Result<(), StorageError> {
        let mut disk = self.lock();
        let len = usize::try_from(len).expect("fits");
        let current = disk.inode(&self.name, self.id)?.written.len();
        disk.check_growth(&self.name, len.saturating_sub(current) as u64)?;
        disk.inode(&self.name, self.id)?.written.resize(len, 0);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let mut disk = self.lock();
        disk.sync_fault("sync", &self.name)?;
        let inode = disk.inode(&self.name, self.id)?;
        inode.synced = inode.written.clone();
        disk.syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unsynced bytes and unsynced names vanish in a crash; synced ones stay.
    #[test]
    fn crash_keeps_only_synced_state() {
        let fs = SimFs::new();
        let mut durable = fs.create("durable").unwrap();
        durable.write_at(0, b"abc").unwrap();
        durable.sync().unwrap();
        fs.sync_dir().unwrap();
        durable.write_at(3, b"def").unwrap();
        let mut fresh = fs.create("fresh").unwrap();
        fresh.write_at(0, b"x").unwrap();
        fresh.sync().unwrap();

        let crashed = fs.crash(Tear::None);
        assert_eq!(crashed.list().unwrap(), vec!["durable".to_string()]);
        assert_eq!(crashed.contents("durable").unwrap(), b"abc");

        let torn = fs.crash(Tear::KeepBytes(2));
        assert_eq!(torn.contents("durable").unwrap(), b"abcde");
    }

    /// A rename or removal is undone by a crash until the directory is synced.
    #[test]
    fn directory_operations_need_sync_dir() {
        let fs = SimFs::new();
        let mut file = fs.create("a").unwrap();
        file.write_at(0, b"1").unwrap();
        file.sync().unwrap();
        fs.sync_dir().unwrap();
        fs.rename("a", "b").unwrap();
        assert_eq!(fs.crash(Tear::None).list().unwrap(), vec!["a".to_string()]);
        fs.sync_dir().unwrap();
        assert_eq!(fs.crash(Tear::None).list().unwrap(), vec!["b".to_string()]);
        fs.remove("b").unwrap();
        assert_eq!(fs.crash(Tear::None).list().unwrap(), vec!["b".to_string()]);
        fs.sync_dir().unwrap();
        assert!(fs.crash(Tear::None).list().unwrap().is_empty());
    }

    /// Injected faults surface as errors and change nothing durable.
    #[test]
    fn injected_faults() {
        let fs = SimFs::new();
        let mut file = fs.create("a").unwrap();
        fs.set_capacity_bytes(Some(4));
        file.write_at(0, b"1234").unwrap();
        assert!(matches!(file.write_at(4, b"5"), Err(StorageError::NoSpace { .. })));
        fs.fail_syncs(true);
        assert!(file.sync().is_err());
        assert!(fs.sync_dir().is_err());
        assert!(fs.crash(Tear::None).list().unwrap().is_empty());
    }
}
