//! The crate's error type. Every variant is an operating condition; bugs are
//! assertions.

use std::io;

/// Why a storage operation failed.
///
/// `Clone` so that a poisoned log can hand the same reason to every caller;
/// that is why [`StorageError::Io`] keeps the error's kind and message rather
/// than the `io::Error` itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused an operation.
    #[error("{operation} {file}: {message} ({kind:?})")]
    Io { operation: &'static str, file: String, kind: io::ErrorKind, message: String },
    /// The disk is full (ENOSPC).
    #[error("{operation} {file}: no space left on device")]
    NoSpace { operation: &'static str, file: String },
    /// A file holds bytes that cannot be what this crate wrote, somewhere a
    /// torn write cannot explain. Never skipped: the node must stop.
    #[error("corrupt {file} at offset {offset}: {reason}")]
    Corrupt { file: String, offset: u64, reason: String },
    /// An earlier write or fsync failed; the log refuses all further work
    /// because it can no longer tell what is durable (fail-stop).
    #[error("storage poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// A single item is larger than a record may be.
    #[error("{what} of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge { what: &'static str, size_bytes: u64, limit_bytes: u64 },
}

impl StorageError {
    /// Converts an `io::Error` from `operation` on `file`.
    pub fn from_io(operation: &'static str, file: &str, error: &io::Error) -> StorageError {
        // ENOSPC is 28 on Linux and the BSDs (macOS included).
        const ENOSPC: i32 = 28;
        if error.raw_os_error() == Some(ENOSPC) {
            return StorageError::NoSpace { operation, file: file.to_string() };
        }
        StorageError::Io {
            operation,
            file: file.to_string(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt { file: file.to_string(), offset, reason: reason.into() }
    }
}
