//! The disk abstraction: a flat directory of files.
//!
//! Everything above this module is written against these two traits, so the
//! same log runs on real files ([`crate::OsFs`]) and on a simulated disk
//! ([`crate::SimFs`]) that loses whatever was not made durable. The traits
//! state the durability rules the log relies on, which are those of POSIX
//! taken strictly:
//!
//! - bytes written to a file are durable only after [`File::sync`] on it;
//! - a file's existence under a name (after [`Fs::create`] or [`Fs::rename`])
//!   and the absence of a removed name are durable only after
//!   [`Fs::sync_dir`];
//! - a crash may keep any prefix of the bytes appended since the last sync
//!   (a torn tail).

use crate::StorageError;

/// A directory of files, named by plain file names (no separators).
pub trait Fs {
    type File: File;

    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> Result<Self::File, StorageError>;
    /// Creates an empty file, truncating one that exists.
    fn create(&self, name: &str) -> Result<Self::File, StorageError>;
    /// The names of all files, in ascending order.
    fn list(&self) -> Result<Vec<String>, StorageError>;
    fn remove(&self, name: &str) -> Result<(), StorageError>;
    /// Atomically replaces `to` (if it exists) with `from`.
    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// Makes creations, renames and removals so far durable.
    fn sync_dir(&self) -> Result<(), StorageError>;
}

/// An open file.
pub trait File {
    /// Fills `buffer` from `offset`; reading past the end is an error.
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), StorageError>;
    /// Writes all of `data` at `offset`, extending the file if needed.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError>;
    fn len(&mut self) -> Result<u64, StorageError>;
    fn is_empty(&mut self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> Result<(), StorageError>;
    /// Makes the file's contents durable (fsync).
    fn sync(&mut self) -> Result<(), StorageError>;
}

/// Reads a whole file into memory.
pub fn read_all<F: File>(file: &mut F) -> Result<Vec<u8>, StorageError> {
    let len = file.len()?;
    let len = usize::try_from(len).expect("file larger than the address space");
    let mut bytes = vec![0u8; len];
    file.read_at(0, &mut bytes)?;
    Ok(bytes)
}

/// Asserts that `name` is a plain file name.
pub(crate) fn assert_plain_name(name: &str) {
    assert!(
        !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..",
        "not a plain file name: {name:?}"
    );
}
