//! The encoder: a [`Frame`] to RESP3 bytes, or to RESP2 bytes with RESP3-only types downgraded as
//! Redis does for a client that has not sent `HELLO 3`.

use bytes::{BufMut, BytesMut};

use crate::frame::Frame;
use crate::number::format_double;

/// The protocol version a connection speaks (`HELLO 2` / `HELLO 3`; RESP2 until `HELLO 3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// Appends `frame` to `out` in `protocol`.
///
/// RESP2 downgrades: Map → flat array of key, value, …; Set and Push → array; Double → bulk string
/// formatted like Redis (`1.5`, `inf`, `-inf`, `nan`); Boolean → integer 1/0; Null → `$-1`;
/// NullArray → `*-1`; Verbatim → bulk of its text; BigNumber → bulk. In RESP3 both nulls are `_`.
///
/// Simple strings, errors and big numbers travel on one line, so CR and LF in them are replaced by
/// spaces, as Redis does, rather than corrupting the stream. Nesting is walked with an explicit
/// stack, so a deep frame cannot overflow the call stack.
pub fn encode(frame: &Frame, protocol: Protocol, out: &mut BytesMut) {
    let resp3 = protocol == Protocol::Resp3;
    let mut pending: Vec<&Frame> = vec![frame];
    while let Some(frame) = pending.pop() {
        match frame {
            Frame::Simple(text) => put_line(out, b'+', text.as_bytes()),
            Frame::Error(text) => put_line(out, b'-', text.as_bytes()),
            Frame::Integer(value) => put_line(out, b':', value.to_string().as_bytes()),
            Frame::Bulk(bytes) => put_bulk(out, b'$', bytes),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Double(value) if resp3 => put_line(out, b',', format_double(*value).as_bytes()),
            Frame::Double(value) => put_bulk(out, b'$', format_double(*value).as_bytes()),
            Frame::Boolean(value) if resp3 => {
                out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" })
            }
            Frame::Boolean(value) => out.put_slice(if *value { b":1\r\n" } else { b":0\r\n" }),
            Frame::BigNumber(text) if resp3 => put_line(out, b'(', text.as_bytes()),
            Frame::BigNumber(text) => put_bulk(out, b'$', text.as_bytes()),
            Frame::Verbatim { format, text } if resp3 => {
                put_header(out, b'=', text.len() + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim { text, .. } => put_bulk(out, b'$', text),
            Frame::Array(items) => put_aggregate(out, b'*', items, &mut pending),
            Frame::Set(items) => {
                put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, &mut pending)
            }
            Frame::Push(items) => {
                put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, &mut pending)
            }
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len());
                } else {
                    put_header(out, b'*', pairs.len() * 2);
                }
                for (key, value) in pairs.iter().rev() {
                    pending.push(value);
                    pending.push(key);
                }
            }
        }
    }
}

fn put_header(out: &mut BytesMut, marker: u8, len: usize) {
    out.put_u8(marker);
    out.put_slice(len.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, marker: u8, payload: &[u8]) {
    put_header(out, marker, payload.len());
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// One line; CR and LF inside it become spaces (Redis `addReplyErrorFormat`/`sdsmapchars`).
fn put_line(out: &mut BytesMut, marker: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(marker);
    for byte in text {
        out.put_u8(if matches!(byte, b'\r' | b'\n') { b' ' } else { *byte });
    }
    out.put_slice(b"\r\n");
}

fn put_aggregate<'frame>(
    out: &mut BytesMut,
    marker: u8,
    items: &'frame [Frame],
    pending: &mut Vec<&'frame Frame>,
) {
    put_header(out, marker, items.len());
    pending.extend(items.iter().rev());
}
