//! The server-side request decoder: Redis's `processMultibulkBuffer` and `processInlineBuffer`
//! (networking.c) made incremental and bounded.
//!
//! A request whose first byte is `*` is a multibulk: `*<count>\r\n` then `count` bulk strings
//! `$<length>\r\n<bytes>\r\n`. Anything else is an inline command: one line, split into arguments
//! by the rules of Redis's `sdssplitargs` (sds.c). Counts `<= 0` and blank inline lines are
//! commands with no arguments, which Redis skips; so does this decoder.
//!
//! The decoder keeps its place between calls: the argument count, the arguments already split off,
//! the length of the bulk being awaited, and how far an unfinished header line has been searched.
//! A slowly arriving request therefore costs time linear in its size, and waiting for a bulk
//! payload is one length comparison per call.
//!
//! Faithful to Redis, including its leniencies: the byte after a header's `\r` and the two bytes
//! after a bulk payload are skipped unchecked. Deliberate differences, each so that the result
//! does not depend on how the bytes were split into reads: an inline line longer than
//! `inline_len_max` is refused even when its line end has already arrived (Redis only refuses one
//! still unterminated at 64 KiB); a header line whose `\r` lies beyond `inline_len_max` is "too
//! big" (Redis may instead call it an invalid length); a command larger than `query_buffer_max`
//! is refused at the bulk header that would exceed it (Redis measures its whole input buffer). A
//! NUL byte is an ordinary byte everywhere (Redis's `strchr` and `sdssplitargs` stop at it).

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::number::parse_strict_integer;

/// Redis preallocates at most this many argument slots, whatever count the header claims; the
/// vector grows only as arguments actually arrive.
const ARGUMENTS_PREALLOCATED_MAX: usize = 1024;

/// Decodes client requests from one connection's input, keeping partial progress between calls.
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
    /// The error that ended this connection's stream; returned again on every later call.
    failure: Option<ProtocolError>,
}

#[derive(Debug)]
enum State {
    /// Between commands. The first `scanned_bytes` bytes of the buffer hold no line end.
    Start { scanned_bytes: usize },
    /// Inside a multibulk whose header has been consumed.
    Multibulk(Multibulk),
}

#[derive(Debug)]
struct Multibulk {
    /// Arguments still to come.
    remaining: usize,
    arguments: Vec<Bytes>,
    /// Wire bytes of this command consumed so far, for `query_buffer_max`.
    consumed_bytes: usize,
    element: Element,
}

#[derive(Debug)]
enum Element {
    /// Awaiting `$<length>\r\n`; the first `scanned_bytes` bytes hold no `\r`.
    Header { scanned_bytes: usize },
    /// Awaiting `len` payload bytes and the two bytes that end them.
    Payload { len: usize },
}

impl Default for RequestDecoder {
    fn default() -> RequestDecoder {
        RequestDecoder::new(Limits::default())
    }
}

impl RequestDecoder {
    /// A decoder at the start of a stream. Panics if `limits` contradict each other.
    pub fn new(limits: Limits) -> RequestDecoder {
        limits.assert_valid();
        RequestDecoder { limits, state: State::Start { scanned_bytes: 0 }, failure: None }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the limits, typically with [`Limits::authenticated`] after `AUTH` succeeds. They
    /// apply from the next header read; a header already accepted stays accepted.
    pub fn set_limits(&mut self, limits: Limits) {
        limits.assert_valid();
        self.limits = limits;
    }

    /// True when no command is partly consumed (the buffer may still hold part of a first line).
    pub fn is_between_commands(&self) -> bool {
        matches!(self.state, State::Start { .. })
    }

    /// Takes the next command's arguments off the front of `buffer`.
    ///
    /// Returns `Ok(None)` when `buffer` holds no complete command yet; the bytes of a partial
    /// multibulk may already have been taken, so keep calling with the same decoder and buffer as
    /// more bytes arrive. Arguments are split off `buffer` without copying (inline arguments, being
    /// unescaped, are copied). After an error the stream cannot be resynchronised: every later
    /// call returns the same error, and the connection should be closed.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let result = self.decode_command(buffer);
        if let Err(error) = &result {
            self.failure = Some(error.clone());
        }
        result
    }

    fn decode_command(
        &mut self,
        buffer: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let started = match &mut self.state {
                State::Start { scanned_bytes } => {
                    if buffer.is_empty() {
                        return Ok(None);
                    }
                    if buffer[0] == b'*' {
                        match multibulk_header(&self.limits, buffer, scanned_bytes)? {
                            Header::Incomplete => return Ok(None),
                            Header::Empty => continue,
                            Header::Started(multibulk) => multibulk,
                        }
                    } else {
                        match inline_command(&self.limits, buffer, scanned_bytes)? {
                            None => return Ok(None),
                            Some(arguments) if arguments.is_empty() => {
                                *scanned_bytes = 0;
                                continue;
                            }
                            Some(arguments) => {
                                *scanned_bytes = 0;
                                return Ok(Some(arguments));
                            }
                        }
                    }
                }
                State::Multibulk(multibulk) => {
                    let complete = multibulk_elements(&self.limits, buffer, multibulk)?;
                    if complete {
                        let arguments = std::mem::take(&mut multibulk.arguments);
                        self.state = State::Start { scanned_bytes: 0 };
                        return Ok(Some(arguments));
                    }
                    return Ok(None);
                }
            };
            self.state = State::Multibulk(started);
        }
    }
}

enum Header {
    Incomplete,
    /// `*0`, or a negative count: a command with no arguments, skipped.
    Empty,
    Started(Multibulk),
}

/// Finds `byte` among the first `window_bytes` bytes of `buffer`, resuming after the
/// `scanned_bytes` already known not to hold it.
fn find_in_window(
    buffer: &[u8],
    scanned_bytes: &mut usize,
    window_bytes: usize,
    byte: u8,
) -> Option<usize> {
    let end = buffer.len().min(window_bytes);
    let start = (*scanned_bytes).min(end);
    match buffer[start..end].iter().position(|candidate| *candidate == byte) {
        Some(offset) => Some(start + offset),
        None => {
            *scanned_bytes = end;
            None
        }
    }
}

/// `*<count>\r\n`. The `\r` must lie within the first `inline_len_max + 1` bytes (the `*`
/// included), as Redis's 64 KiB bound on an unterminated count line.
fn multibulk_header(
    limits: &Limits,
    buffer: &mut BytesMut,
    scanned_bytes: &mut usize,
) -> Result<Header, ProtocolError> {
    let Some(line_end) = find_in_window(buffer, scanned_bytes, limits.inline_len_max + 1, b'\r')
    else {
        if buffer.len() > limits.inline_len_max {
            return Err(ProtocolError::MultibulkCountTooBig);
        }
        return Ok(Header::Incomplete);
    };
    // Redis needs one byte after the `\r` (it does not check that it is `\n`).
    if buffer.len() < line_end + 2 {
        return Ok(Header::Incomplete);
    }
    let count = match parse_strict_integer(&buffer[1..line_end]) {
        Some(count) if count <= limits.array_len_max as i64 => count,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    if let Some(unauthenticated) = limits.unauthenticated {
        if count > unauthenticated.array_len_max as i64 {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
    }
    buffer.advance(line_end + 2);
    *scanned_bytes = 0;
    if count <= 0 {
        return Ok(Header::Empty);
    }
    let remaining = usize::try_from(count).expect("count is positive and within array_len_max");
    Ok(Header::Started(Multibulk {
        remaining,
        arguments: Vec::with_capacity(remaining.min(ARGUMENTS_PREALLOCATED_MAX)),
        consumed_bytes: line_end + 2,
        element: Element::Header { scanned_bytes: 0 },
    }))
}

/// Reads bulk headers and payloads until the multibulk is complete (`true`) or input runs out.
fn multibulk_elements(
    limits: &Limits,
    buffer: &mut BytesMut,
    multibulk: &mut Multibulk,
) -> Result<bool, ProtocolError> {
    while multibulk.remaining > 0 {
        match &mut multibulk.element {
            Element::Header { scanned_bytes } => {
                let window_bytes = limits.inline_len_max + 1;
                let Some(line_end) = find_in_window(buffer, scanned_bytes, window_bytes, b'\r')
                else {
                    if buffer.len() > limits.inline_len_max {
                        return Err(ProtocolError::BulkCountTooBig);
                    }
                    return Ok(false);
                };
                if buffer.len() < line_end + 2 {
                    return Ok(false);
                }
                if buffer[0] != b'$' {
                    return Err(ProtocolError::ExpectedBulkMarker(buffer[0]));
                }
                let len = match parse_strict_integer(&buffer[1..line_end]) {
                    Some(len) if len >= 0 && len <= limits.bulk_len_max as i64 => {
                        usize::try_from(len).expect("len is non-negative and within bulk_len_max")
                    }
                    _ => return Err(ProtocolError::InvalidBulkLength),
                };
                if let Some(unauthenticated) = limits.unauthenticated {
                    if len > unauthenticated.bulk_len_max {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                }
                // Refused here, before the payload is awaited or buffered.
                multibulk.consumed_bytes += line_end + 2;
                if multibulk.consumed_bytes + len + 2 > limits.query_buffer_max {
                    return Err(ProtocolError::QueryBufferFull);
                }
                buffer.advance(line_end + 2);
                multibulk.element = Element::Payload { len };
            }
            Element::Payload { len } => {
                let len = *len;
                if buffer.len() < len + 2 {
                    return Ok(false);
                }
                let argument = buffer.split_to(len).freeze();
                // Redis skips the two bytes after a payload without checking them.
                buffer.advance(2);
                multibulk.consumed_bytes += len + 2;
                multibulk.arguments.push(argument);
                multibulk.remaining -= 1;
                multibulk.element = Element::Header { scanned_bytes: 0 };
            }
        }
    }
    Ok(true)
}

/// One inline line, ended by `\n` or `\r\n`, of at most `inline_len_max` bytes before its end.
fn inline_command(
    limits: &Limits,
    buffer: &mut BytesMut,
    scanned_bytes: &mut usize,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    // A line of `inline_len_max` bytes plus `\r\n` is the longest acceptable.
    let window_bytes = limits.inline_len_max + 2;
    let Some(newline) = find_in_window(buffer, scanned_bytes, window_bytes, b'\n') else {
        if buffer.len() > limits.inline_len_max + 1 {
            return Err(ProtocolError::InlineRequestTooBig);
        }
        return Ok(None);
    };
    let line_len = if newline > 0 && buffer[newline - 1] == b'\r' { newline - 1 } else { newline };
    if line_len > limits.inline_len_max {
        return Err(ProtocolError::InlineRequestTooBig);
    }
    let arguments = split_arguments(&buffer[..line_len])?;
    buffer.advance(newline + 1);
    Ok(Some(arguments))
}

/// C's `isspace` in the C locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    let digit = char::from(*byte?).to_digit(16)?;
    Some(digit as u8)
}

#[derive(Clone, Copy)]
enum Quote {
    None,
    Double,
    Single,
}

/// Redis's `sdssplitargs`: arguments separated by blanks; inside `"…"` the escapes `\xHH`, `\n`,
/// `\r`, `\t`, `\b`, `\a` and `\<any>`; inside `'…'` only `\'`. A quote may start mid-argument
/// (`a"b c"` is `ab c`), but a closing quote must be followed by a blank or the end of the line.
pub fn split_arguments(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut arguments = Vec::new();
    let mut position = 0;
    loop {
        while line.get(position).is_some_and(|byte| is_space(*byte)) {
            position += 1;
        }
        if position >= line.len() {
            return Ok(arguments);
        }
        let mut argument = Vec::new();
        let mut quote = Quote::None;
        loop {
            let byte = line.get(position).copied();
            let next = line.get(position + 1).copied();
            match (quote, byte) {
                (Quote::Double | Quote::Single, None) => {
                    return Err(ProtocolError::UnbalancedQuotes)
                }
                (Quote::Double, Some(b'\\')) if next == Some(b'x') => {
                    match (hex_value(line.get(position + 2)), hex_value(line.get(position + 3))) {
                        (Some(high), Some(low)) => {
                            argument.push(high * 16 + low);
                            position += 4;
                        }
                        // Not a hex escape: `\x` is the ordinary escape of `x`.
                        _ => {
                            argument.push(b'x');
                            position += 2;
                        }
                    }
                }
                (Quote::Double, Some(b'\\')) if next.is_some() => {
                    argument.push(match next {
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'b') => 0x08,
                        Some(b'a') => 0x07,
                        Some(other) => other,
                        None => unreachable!("guarded by next.is_some()"),
                    });
                    position += 2;
                }
                (Quote::Single, Some(b'\\')) if next == Some(b'\'') => {
                    argument.push(b'\'');
                    position += 2;
                }
                (Quote::Double, Some(b'"')) | (Quote::Single, Some(b'\'')) => {
                    if next.is_some_and(|after| !is_space(after)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    position += 1;
                    break;
                }
                (Quote::None, None) => break,
                (Quote::None, Some(b' ' | b'\n' | b'\r' | b'\t')) => {
                    position += 1;
                    break;
                }
                (Quote::None, Some(b'"')) => {
                    quote = Quote::Double;
                    position += 1;
                }
                (Quote::None, Some(b'\'')) => {
                    quote = Quote::Single;
                    position += 1;
                }
                (_, Some(other)) => {
                    argument.push(other);
                    position += 1;
                }
            }
        }
        arguments.push(Bytes::from(argument));
    }
}
