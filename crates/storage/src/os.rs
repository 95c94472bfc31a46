//! `OsFs`: the [`Fs`] traits on real files, the only module that touches the
//! operating system.
//!
//! Contents are made durable with `File::sync_all` and the directory by
//! opening it and calling `sync_all` on it (an fsync of the directory, which
//! POSIX requires for creations, renames and removals to survive a crash).

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fs::{assert_plain_name, File, Fs};
use crate::StorageError;

/// A real directory.
#[derive(Clone, Debug)]
pub struct OsFs {
    directory: PathBuf,
}

impl OsFs {
    /// Uses `directory`, creating it (and its parents) if needed.
    pub fn new(directory: impl Into<PathBuf>) -> Result<OsFs, StorageError> {
        let directory = directory.into();
        fs::create_dir_all(&directory).map_err(|error| {
            StorageError::from_io("create directory", &directory.display().to_string(), &error)
        })?;
        Ok(OsFs { directory })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path(&self, name: &str) -> PathBuf {
        assert_plain_name(name);
        self.directory.join(name)
    }
}

impl Fs for OsFs {
    type File = OsFile;

    fn open(&self, name: &str) -> Result<OsFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name))
            .map_err(|error| StorageError::from_io("open", name, &error))?;
        Ok(OsFile { file, name: name.to_string() })
    }

    fn create(&self, name: &str) -> Result<OsFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name))
            .map_err(|error| StorageError::from_io("create", name, &error))?;
        Ok(OsFile { file, name: name.to_string() })
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        let directory = self.directory.display().to_string();
        let read = |error| StorageError::from_io("list", &directory, &error);
        let mut names = Vec::new();
        for item in fs::read_dir(&self.directory).map_err(read)? {
            let item = item.map_err(read)?;
            if item.file_type().map_err(read)?.is_file() {
                // Names that are not UTF-8 cannot be ours; skip them.
                if let Ok(name) = item.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn remove(&self, name: &str) -> Result<(), StorageError> {
        fs::remove_file(self.path(name))
            .map_err(|error| StorageError::from_io("remove", name, &error))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        fs::rename(self.path(from), self.path(to))
            .map_err(|error| StorageError::from_io("rename", from, &error))
    }

    fn sync_dir(&self) -> Result<(), StorageError> {
        let directory = self.directory.display().to_string();
        let handle = fs::File::open(&self.directory)
            .map_err(|error| StorageError::from_io("open directory", &directory, &error))?;
        handle
            .sync_all()
            .map_err(|error| StorageError::from_io("sync directory", &directory, &error))
    }
}

/// An open real file.
#[derive(Debug)]
pub struct OsFile {
    file: fs::File,
    name: String,
}

impl OsFile {
    fn error(&self, operation: &'static str) -> impl Fn(std::io::Error) -> StorageError + '_ {
        move |error| StorageError::from_io(operation, &self.name, &error)
    }
}

impl File for OsFile {
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), StorageError> {
        let name = self.name.clone();
        let error = |error| StorageError::from_io("read", &name, &error);
        self.file.seek(SeekFrom::Start(offset)).map_err(error)?;
        self.file.read_exact(buffer).map_err(error)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let name = self.name.clone();
        let error = |error| StorageError::from_io("write", &name, &error);
        self.file.seek(SeekFrom::Start(offset)).map_err(error)?;
        self.file.write_all(data).map_err(error)
    }

    fn len(&mut self) -> Result<u64, StorageError> {
        Ok(self.file.metadata().map_err(self.error("stat"))?.len())
    }

    fn set_len(&mut self, len: u64) -> Result<(), StorageError> {
        self.file.set_len(len).map_err(self.error("truncate"))
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_all().map_err(self.error("sync"))
    }
}
