//! The reply decoder (client side and tests): every RESP2 and RESP3 type, bounded by [`Limits`].
//!
//! It is stateless, so it first walks the buffer without allocating to learn whether a whole,
//! valid frame has arrived and how long it is (like mini-redis's `check`); only then does it take
//! those bytes and build the frame, slicing bulk payloads out of them without copying. Both walks
//! share one tokenizer and one loop over an explicit stack of open aggregates, so nesting depth
//! costs heap, never call stack, and is refused past `depth_max` before the aggregate is opened.
//!
//! Attributes (`|`) are parsed and discarded: an attribute map precedes the value it annotates and
//! is not counted as an element of the enclosing aggregate. Streamed strings and aggregates (`$?`,
//! `*?`, `;`, `.`) are refused. Simple strings and errors that are not UTF-8 are converted lossily.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::number::parse_strict_integer;

/// Redis-style bound on preallocation: vectors grow only as elements actually arrive.
const ITEMS_PREALLOCATED_MAX: usize = 1024;

/// Takes one complete reply frame off the front of `buffer`.
///
/// Returns `Ok(None)` and leaves `buffer` untouched while the frame is incomplete; on error the
/// buffer is also untouched, but the stream cannot be resynchronised. Each call re-walks the
/// partial frame, so feed it reasonably sized reads.
pub fn decode_frame(
    buffer: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Frame>, ProtocolError> {
    limits.assert_valid();
    let Some((_, frame_len)) = walk(&buffer[..], None, limits)? else {
        return Ok(None);
    };
    let bytes = buffer.split_to(frame_len).freeze();
    let (frame, consumed_len) = walk(&bytes, Some(&bytes), limits)?
        .expect("the validating walk found a complete frame in these bytes");
    assert_eq!(consumed_len, frame_len);
    Ok(Some(frame.expect("the building walk builds a frame")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AggregateKind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

enum Token {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    Null,
    NullArray,
    Double(f64),
    Boolean(bool),
    Verbatim { format: [u8; 3], text: Range<usize> },
    BigNumber(Range<usize>),
    Aggregate { kind: AggregateKind, len: usize },
}

struct Open {
    kind: AggregateKind,
    /// Child values still to come (twice the count for maps and attributes).
    remaining: usize,
    items: Vec<Frame>,
}

/// Walks one frame from the start of `input`. With `source` (the same bytes, owned) it builds the
/// frame; without, it only validates. Returns the frame and its length in bytes.
fn walk(
    input: &[u8],
    source: Option<&Bytes>,
    limits: &Limits,
) -> Result<Option<(Option<Frame>, usize)>, ProtocolError> {
    let mut position = 0;
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let Some((token, next_position)) = read_token(input, position, limits)? else {
            return Ok(None);
        };
        position = next_position;
        let mut value = match token {
            Token::Aggregate { kind, len } => {
                if stack.len() >= limits.depth_max {
                    return Err(ProtocolError::NestingTooDeep(limits.depth_max));
                }
                let children = match kind {
                    AggregateKind::Map | AggregateKind::Attribute => {
                        len.checked_mul(2).ok_or(ProtocolError::InvalidMultibulkLength)?
                    }
                    _ => len,
                };
                if children > 0 {
                    let capacity =
                        if source.is_some() { children.min(ITEMS_PREALLOCATED_MAX) } else { 0 };
                    stack.push(Open {
                        kind,
                        remaining: children,
                        items: Vec::with_capacity(capacity),
                    });
                    continue;
                }
                if kind == AggregateKind::Attribute {
                    continue;
                }
                source.map(|_| finish(kind, Vec::new()))
            }
            leaf => source.map(|source| leaf_frame(leaf, source)),
        };
        // Hand the finished value to its parent, closing every aggregate it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(Some((value, position)));
            };
            if let Some(frame) = value.take() {
                top.items.push(frame);
            }
            top.remaining -= 1;
            if top.remaining > 0 {
                break;
            }
            let open = stack.pop().expect("top exists");
            if open.kind == AggregateKind::Attribute {
                // Discarded, and not an element of the parent: the annotated value follows.
                break;
            }
            value = source.map(|_| finish(open.kind, open.items));
        }
    }
}

fn finish(kind: AggregateKind, items: Vec<Frame>) -> Frame {
    match kind {
        AggregateKind::Array => Frame::Array(items),
        AggregateKind::Set => Frame::Set(items),
        AggregateKind::Push => Frame::Push(items),
        AggregateKind::Map => {
            assert!(items.len() % 2 == 0, "a map holds key-value pairs");
            let mut items = items.into_iter();
            let mut pairs = Vec::with_capacity(items.len() / 2);
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                pairs.push((key, value));
            }
            Frame::Map(pairs)
        }
        AggregateKind::Attribute => unreachable!("attributes are discarded, never built"),
    }
}

fn leaf_frame(token: Token, source: &Bytes) -> Frame {
    let text = |range: Range<usize>| String::from_utf8_lossy(&source[range]).into_owned();
    match token {
        Token::Simple(range) => Frame::Simple(text(range)),
        Token::Error(range) => Frame::Error(text(range)),
        Token::Integer(value) => Frame::Integer(value),
        Token::Bulk(range) => Frame::Bulk(source.slice(range)),
        Token::Null => Frame::Null,
        Token::NullArray => Frame::NullArray,
        Token::Double(value) => Frame::Double(value),
        Token::Boolean(value) => Frame::Boolean(value),
        Token::Verbatim { format, text } => Frame::Verbatim { format, text: source.slice(text) },
        Token::BigNumber(range) => Frame::BigNumber(text(range)),
        Token::Aggregate { .. } => unreachable!("aggregates are built by the walk"),
    }
}

/// Reads the token at `position`: its type byte, its line, and any payload.
fn read_token(
    input: &[u8],
    position: usize,
    limits: &Limits,
) -> Result<Option<(Token, usize)>, ProtocolError> {
    let Some(&marker) = input.get(position) else {
        return Ok(None);
    };
    match marker {
        b'+' | b'-' | b':' | b'$' | b'!' | b'=' | b'*' | b'%' | b'~' | b'>' | b'|' | b'_'
        | b',' | b'#' | b'(' => {}
        b';' | b'.' => return Err(ProtocolError::StreamedUnsupported),
        other => return Err(ProtocolError::UnknownReplyType(other)),
    }
    let Some((line, after_line)) = read_line(input, position + 1, limits)? else {
        return Ok(None);
    };
    let text = &input[line.clone()];
    let token = match marker {
        b'+' => Token::Simple(line),
        b'-' => Token::Error(line),
        b':' => Token::Integer(parse_text(text).ok_or(ProtocolError::InvalidInteger)?),
        b'_' if text.is_empty() => Token::Null,
        b'_' => return Err(ProtocolError::InvalidNull),
        b',' => Token::Double(parse_text(text).ok_or(ProtocolError::InvalidDouble)?),
        b'#' => match text {
            b"t" => Token::Boolean(true),
            b"f" => Token::Boolean(false),
            _ => return Err(ProtocolError::InvalidBoolean),
        },
        b'(' if is_big_number(text) => Token::BigNumber(line),
        b'(' => return Err(ProtocolError::InvalidBigNumber),
        b'$' | b'!' | b'=' => {
            if text == b"?" {
                return Err(ProtocolError::StreamedUnsupported);
            }
            let declared = parse_strict_integer(text).ok_or(ProtocolError::InvalidBulkLength)?;
            if marker == b'$' && declared == -1 {
                return Ok(Some((Token::Null, after_line)));
            }
            if declared < 0 || declared > limits.bulk_len_max as i64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let len = usize::try_from(declared).expect("non-negative and within bulk_len_max");
            let Some(payload) = read_payload(input, after_line, len)? else {
                return Ok(None);
            };
            let token = match marker {
                b'$' => Token::Bulk(payload.clone()),
                b'!' => Token::Error(payload.clone()),
                _ => verbatim(input, payload.clone())?,
            };
            return Ok(Some((token, payload.end + 2)));
        }
        _ => {
            if text == b"?" {
                return Err(ProtocolError::StreamedUnsupported);
            }
            let declared =
                parse_strict_integer(text).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if marker == b'*' && declared == -1 {
                return Ok(Some((Token::NullArray, after_line)));
            }
            if declared < 0 || declared > limits.array_len_max as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            let len = usize::try_from(declared).expect("non-negative and within array_len_max");
            let kind = match marker {
                b'*' => AggregateKind::Array,
                b'%' => AggregateKind::Map,
                b'~' => AggregateKind::Set,
                b'>' => AggregateKind::Push,
                _ => AggregateKind::Attribute,
            };
            Token::Aggregate { kind, len }
        }
    };
    Ok(Some((token, after_line)))
}

/// The line starting at `start`, up to `\r\n`, at most `inline_len_max` bytes long.
fn read_line(
    input: &[u8],
    start: usize,
    limits: &Limits,
) -> Result<Option<(Range<usize>, usize)>, ProtocolError> {
    let available = &input[start.min(input.len())..];
    let window = &available[..available.len().min(limits.inline_len_max + 1)];
    let Some(line_len) = window.iter().position(|byte| *byte == b'\r') else {
        if available.len() > limits.inline_len_max {
            return Err(ProtocolError::ReplyLineTooBig);
        }
        return Ok(None);
    };
    match available.get(line_len + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((start..start + line_len, start + line_len + 2))),
        Some(_) => Err(ProtocolError::ExpectedLineEnd),
    }
}

/// `len` payload bytes at `start` followed by `\r\n`.
fn read_payload(
    input: &[u8],
    start: usize,
    len: usize,
) -> Result<Option<Range<usize>>, ProtocolError> {
    let end = start + len;
    match input.get(end..end + 2) {
        None => Ok(None),
        Some(b"\r\n") => Ok(Some(start..end)),
        Some(_) => Err(ProtocolError::ExpectedLineEnd),
    }
}

fn verbatim(input: &[u8], payload: Range<usize>) -> Result<Token, ProtocolError> {
    let bytes = &input[payload.clone()];
    if bytes.len() < 4 || bytes[3] != b':' {
        return Err(ProtocolError::InvalidVerbatim);
    }
    let format = [bytes[0], bytes[1], bytes[2]];
    Ok(Token::Verbatim { format, text: payload.start + 4..payload.end })
}

fn parse_text<T: std::str::FromStr>(text: &[u8]) -> Option<T> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn is_big_number(text: &[u8]) -> bool {
    let digits = match text.split_first() {
        Some((b'-' | b'+', rest)) => rest,
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}
