//! The client's error type: what went wrong, and whether a retry could help.

use bytes::Bytes;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No address was given to [`crate::Client::connect`].
    #[error("no server address given")]
    NoAddresses,
    /// Connecting, writing or reading failed, or the server closed the connection.
    #[error("connection to {address} failed: {source}")]
    Io { address: String, source: std::io::Error },
    /// No reply arrived within the response timeout.
    #[error("no reply from {address} within {timeout_ms} ms")]
    Timeout { address: String, timeout_ms: u64 },
    /// The server sent bytes that are not RESP, or exceed the decoder's limits.
    #[error("protocol error from {address}: {source}")]
    Protocol { address: String, source: resp::ProtocolError },
    /// The server answered with an error reply (`WRONGTYPE …`, `ERR …`, `CLUSTERDOWN …`).
    #[error("server error: {0}")]
    Server(String),
    /// `LOCK.FENCED` refused the command: the token no longer holds the lock.
    #[error("{0}")]
    Fenced(String),
    /// The client session expired on the server between two attempts of one write: the write may
    /// or may not have been applied, so it was not retried. Exactly-once cannot be promised for
    /// it; the next write opens a fresh session.
    #[error("session expired during a retried write; it may or may not have been applied: {0}")]
    SessionExpired(String),
    /// A reply had a shape the typed call does not expect.
    #[error("unexpected reply to {command}: {reply}")]
    UnexpectedReply { command: String, reply: String },
    /// `acquire` with a wait found the lock still held when the wait ran out (or without a wait,
    /// found it held).
    #[error("lock '{}' not acquired", String::from_utf8_lossy(.0))]
    LockNotAcquired(Bytes),
}

/// The client's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True for errors the cluster may clear by itself: lost connections, timeouts, and the
    /// server's `CLUSTERDOWN` and `TRYAGAIN` replies.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Io { .. } | Error::Timeout { .. } => true,
            Error::Server(text) => is_retryable_reply(text),
            _ => false,
        }
    }

    /// True if this error is an `-ERR`-style reply starting with `code` (e.g. `"WRONGTYPE"`).
    pub fn is_server_code(&self, code: &str) -> bool {
        matches!(self, Error::Server(text) if error_code(text) == code)
    }
}

/// The first word of an error reply: its code.
pub(crate) fn error_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

/// Error replies that mean "not done, try again": no leader, or too many requests in flight.
pub(crate) fn is_retryable_reply(text: &str) -> bool {
    matches!(error_code(text), "CLUSTERDOWN" | "TRYAGAIN")
}
