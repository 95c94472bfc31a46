//! Redis's exact error texts (clients parse them) and small reply helpers.
//!
//! Every application error is a deterministic reply: each replica computes
//! the same one from the same state, so errors never make replicas diverge.

use resp::Frame;

/// A command's outcome: `Err` carries an error reply, so parsing and type
/// checks can use `?`. Both arms are replies to the client.
pub(crate) type Reply = Result<Frame, Frame>;

pub(crate) const WRONG_TYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const SYNTAX: &str = "ERR syntax error";
pub(crate) const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub(crate) const NOT_FLOAT: &str = "ERR value is not a valid float";
pub(crate) const NO_SUCH_KEY: &str = "ERR no such key";
pub(crate) const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
pub(crate) const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
pub(crate) const STRING_TOO_LONG: &str =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub(crate) const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
pub(crate) const OUT_OF_RANGE: &str = "ERR value is out of range";
pub(crate) const INVALID_CURSOR: &str = "ERR invalid cursor";

pub(crate) fn error(text: &str) -> Frame {
    Frame::Error(text.to_string())
}

pub(crate) fn wrong_type() -> Frame {
    error(WRONG_TYPE)
}

pub(crate) fn wrong_arity(name: &str) -> Frame {
    Frame::Error(format!("ERR wrong number of arguments for '{name}' command"))
}

pub(crate) fn invalid_expire(name: &str) -> Frame {
    Frame::Error(format!("ERR invalid expire time in '{name}' command"))
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' ` exactly as
/// Redis 7 formats it: the name cut at 128 bytes, arguments appended while the
/// list is shorter than 128 bytes, each cut to what remains of 128.
pub(crate) fn unknown_command(args: &[bytes::Bytes]) -> Frame {
    const TEXT_BYTES_MAX: usize = 128;
    let name = args.first().map(|name| &name[..name.len().min(TEXT_BYTES_MAX)]).unwrap_or(b"");
    let mut listed: Vec<u8> = Vec::new();
    for argument in args.iter().skip(1) {
        if listed.len() >= TEXT_BYTES_MAX {
            break;
        }
        let room = TEXT_BYTES_MAX - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&argument[..argument.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    Frame::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        printable(name),
        printable(&listed)
    ))
}

/// Error replies are single-line: Redis replaces CR and LF with spaces.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

pub(crate) fn bulk(bytes: &[u8]) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(bytes))
}

pub(crate) fn integer(value: usize) -> Frame {
    Frame::Integer(i64::try_from(value).expect("collection sizes fit in i64"))
}
