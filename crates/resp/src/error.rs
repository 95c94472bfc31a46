//! The one error type of the codec. The request-side texts are Redis's own (networking.c), because
//! clients and test suites compare them; the reply-side texts follow the same style.

/// A malformed or over-limit input. The connection that produced it cannot be resynchronised and
/// must be closed.
///
/// `Display` gives the text that follows `ERR ` in Redis's reply, so a server sends
/// `-ERR {error}\r\n` and closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*<count>` is not a strict decimal integer or exceeds `array_len_max`.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<length>` is not a strict decimal integer, is negative, or exceeds `bulk_len_max`.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A multibulk element does not start with `$`. Carries the byte found instead.
    #[error("Protocol error: expected '$', got '{}'", printable(*.0))]
    ExpectedBulkMarker(u8),
    /// An inline command line is longer than `inline_len_max`.
    #[error("Protocol error: too big inline request")]
    InlineRequestTooBig,
    /// The `*<count>` line is longer than `inline_len_max`.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// The `$<length>` line is longer than `inline_len_max`.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// An inline command has an unterminated quote, or a closing quote followed by a non-space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// Before authentication, `*<count>` exceeds the unauthenticated array limit.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// Before authentication, `$<length>` exceeds the unauthenticated bulk limit.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// One command would hold more than `query_buffer_max` bytes. Redis closes such a client
    /// without a reply (it only logs "Closing client that reached max query buffer length"); a
    /// server may do the same.
    #[error("Protocol error: client reached max query buffer length")]
    QueryBufferFull,
    /// A reply starts with a byte that is not a RESP2/RESP3 type marker.
    #[error("Protocol error: unknown reply type '{}'", printable(*.0))]
    UnknownReplyType(u8),
    /// A reply line (simple string, error, number, header) is longer than `inline_len_max`.
    #[error("Protocol error: too big reply line")]
    ReplyLineTooBig,
    /// A `\r` inside a reply is not followed by `\n`, or a bulk payload is not followed by `\r\n`.
    #[error("Protocol error: expected CRLF")]
    ExpectedLineEnd,
    /// `:` carries something other than a decimal 64-bit integer.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// `,` carries something other than a decimal floating point number, `inf`, `-inf` or `nan`.
    #[error("Protocol error: invalid double")]
    InvalidDouble,
    /// `#` carries something other than `t` or `f`.
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    /// `_` is followed by something other than `\r\n`.
    #[error("Protocol error: invalid null")]
    InvalidNull,
    /// `(` carries something other than an optionally signed run of decimal digits.
    #[error("Protocol error: invalid big number")]
    InvalidBigNumber,
    /// `=` is shorter than four bytes or lacks the `:` after its three-byte format.
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
    /// Aggregates nest deeper than `depth_max`. Carries the limit.
    #[error("Protocol error: nesting deeper than {0} levels")]
    NestingTooDeep(usize),
    /// RESP3 streamed strings and aggregates (`$?`, `*?`, `;`, `.`) are not supported.
    #[error("Protocol error: streamed strings and aggregates are not supported")]
    StreamedUnsupported,
}

/// Renders a byte the way Redis's `%c` does once `addReplyErrorFormat` has replaced CR and LF with
/// spaces (a reply line must not contain them). Bytes above 0x7F become the Latin-1 character of
/// that value, since a Rust string cannot hold the raw byte Redis would send.
fn printable(byte: u8) -> char {
    match byte {
        b'\r' | b'\n' => ' ',
        other => char::from(other),
    }
}
