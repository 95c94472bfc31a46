//! The building blocks of every wire encoding in cohort: a bounded [`Reader`]
//! that takes fields off the front of a received frame, and the `put_*`
//! writers that mirror it. Both engines encode their messages with them, and
//! so does the node's peer protocol, so one frame format has one reader.
//!
//! Integers are little-endian and fixed-width; `usize` never reaches the wire.
//! Every variable-length part carries a `u32` length or count in front of it,
//! and a bool is one byte, 0 or 1.
//!
//! The reader treats its input as hostile: before a count or length is acted
//! on, it is checked against the bytes that remain (each element needs at
//! least a known number of bytes), so the memory a frame can make a decoder
//! allocate is bounded by a small constant times the frame's length. Byte
//! strings are slices of the received frame, never copies.
//!
//! Both engines also lay out log entries and memberships the same way:
//!
//! ```text
//! entry      = index:u64 term:u64 payload_tag:u8 payload
//!              0 Noop (nothing) | 1 Command length:u32 bytes | 2 Membership membership
//! membership = voter_count:u32 voter:u64*  learner_count:u32 learner:u64*
//! ```
//!
//! (`term` is the Multi-Paxos ballot an entry was first proposed in.)

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Entry, Membership, NodeId, Payload, WireError};

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

/// The fewest bytes one encoded entry occupies (index, term, payload tag).
pub(crate) const ENTRY_BYTES_MIN: u64 = 8 + 8 + 1;
/// One encoded node id.
const NODE_ID_BYTES: u64 = 8;

/// Reads fields off the front of a frame, checking each against what remains.
pub struct Reader {
    bytes: Bytes,
}

impl Reader {
    pub fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    pub fn remaining_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn need(&self, field: &'static str, needed_bytes: u64) -> Result<(), WireError> {
        let remaining_bytes = self.remaining_bytes();
        if needed_bytes > remaining_bytes {
            return Err(WireError::Truncated { field, needed_bytes, remaining_bytes });
        }
        Ok(())
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.need(field, 1)?;
        Ok(self.bytes.get_u8())
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.need(field, 4)?;
        Ok(self.bytes.get_u32_le())
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_u64_le())
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Invalid { field, reason: "a boolean is 0 or 1" }),
        }
    }

    /// A `u32` count of elements that each occupy at least `element_bytes_min`
    /// bytes; refused unless that many could follow.
    pub fn count(
        &mut self,
        field: &'static str,
        element_bytes_min: u64,
    ) -> Result<usize, WireError> {
        assert!(element_bytes_min >= 1);
        let count = self.u32(field)?;
        self.need(field, u64::from(count) * element_bytes_min)?;
        Ok(usize::try_from(count).expect("a count that fits in the frame fits in usize"))
    }

    /// A `u32` length and that many bytes, sliced from the frame (no copy).
    pub fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let length = self.u32(field)?;
        self.need(field, u64::from(length))?;
        Ok(self.bytes.split_to(length as usize))
    }

    /// A `u32` length and that many bytes of UTF-8.
    pub fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| WireError::Invalid { field, reason: "not UTF-8" })
    }

    /// Ends the frame: a decoder accepts no bytes after the last field.
    pub fn finish(self) -> Result<(), WireError> {
        match self.remaining_bytes() {
            0 => Ok(()),
            left_over => Err(WireError::TrailingBytes(left_over)),
        }
    }
}

pub fn put_bool(out: &mut BytesMut, value: bool) {
    out.put_u8(u8::from(value));
}

/// Writes a `u32` length. A length beyond `u32` is a bug in the sender:
/// messages are built far below it (`append_bytes_max`, `snapshot_chunk_bytes`;
/// no command or reply comes near 4 GiB, bulks stop at 512 MiB).
pub fn put_length(out: &mut BytesMut, length: usize, field: &str) {
    let length = u32::try_from(length)
        .unwrap_or_else(|_| panic!("{field} of {length} does not fit the wire's u32"));
    out.put_u32_le(length);
}

/// Writes a `u32` length and the bytes, the layout [`Reader::bytes`] reads.
pub fn put_bytes(out: &mut BytesMut, bytes: &[u8], field: &str) {
    put_length(out, bytes.len(), field);
    out.put_slice(bytes);
}

/// Writes a count and the entries, the layout [`read_entries`] reads.
pub(crate) fn put_entries(out: &mut BytesMut, entries: &[Entry]) {
    put_length(out, entries.len(), "entry count");
    for entry in entries {
        put_entry(out, entry);
    }
}

fn put_entry(out: &mut BytesMut, entry: &Entry) {
    out.put_u64_le(entry.index);
    out.put_u64_le(entry.term);
    match &entry.payload {
        Payload::Noop => out.put_u8(PAYLOAD_NOOP),
        Payload::Command(command) => {
            out.put_u8(PAYLOAD_COMMAND);
            put_bytes(out, command, "command");
        }
        Payload::Membership(membership) => {
            out.put_u8(PAYLOAD_MEMBERSHIP);
            put_membership(out, membership);
        }
    }
}

pub(crate) fn put_membership(out: &mut BytesMut, membership: &Membership) {
    for members in [&membership.voters, &membership.learners] {
        put_length(out, members.len(), "member count");
        for member in members {
            out.put_u64_le(*member);
        }
    }
}

/// A count and that many entries; `term_field` names an entry's tag in
/// errors ("entry term" in Raft, "entry ballot" in Multi-Paxos).
pub(crate) fn read_entries(
    reader: &mut Reader,
    term_field: &'static str,
) -> Result<Vec<Entry>, WireError> {
    let count = reader.count("entry count", ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(read_entry(reader, term_field)?);
    }
    Ok(entries)
}

fn read_entry(reader: &mut Reader, term_field: &'static str) -> Result<Entry, WireError> {
    let index = reader.u64("entry index")?;
    let term = reader.u64(term_field)?;
    let payload = match reader.u8("payload tag")? {
        PAYLOAD_NOOP => Payload::Noop,
        PAYLOAD_COMMAND => Payload::Command(reader.bytes("command")?),
        PAYLOAD_MEMBERSHIP => Payload::Membership(read_membership(reader)?),
        tag => return Err(WireError::UnknownTag { kind: "entry payload", tag }),
    };
    Ok(Entry { index, term, payload })
}

pub(crate) fn read_membership(reader: &mut Reader) -> Result<Membership, WireError> {
    let voters = read_members(reader, "voter count")?;
    let learners = read_members(reader, "learner count")?;
    if voters.iter().any(|voter| learners.contains(voter)) {
        return Err(WireError::Invalid {
            field: "membership",
            reason: "a node is both voter and learner",
        });
    }
    Ok(Membership {
        voters: voters.into_iter().collect(),
        learners: learners.into_iter().collect(),
    })
}

/// A strictly ascending list of node ids (the order a `BTreeSet` encodes in),
/// so that a duplicate cannot be silently merged.
fn read_members(reader: &mut Reader, field: &'static str) -> Result<Vec<NodeId>, WireError> {
    let count = reader.count(field, NODE_ID_BYTES)?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member = reader.u64("member")?;
        if members.last().is_some_and(|last| *last >= member) {
            return Err(WireError::Invalid { field, reason: "members not strictly ascending" });
        }
        members.push(member);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_counts_and_lengths_beyond_the_frame() {
        // Goal: a count or length larger than what remains is an error before any allocation.
        let mut out = BytesMut::new();
        out.put_u32_le(3);
        out.put_u64_le(7);
        let mut reader = Reader::new(out.freeze());
        assert_eq!(
            reader.count("items", 8),
            Err(WireError::Truncated { field: "items", needed_bytes: 24, remaining_bytes: 8 })
        );
        let mut reader = Reader::new(Bytes::from_static(&[5, 0, 0, 0, b'a']));
        assert_eq!(
            reader.bytes("name"),
            Err(WireError::Truncated { field: "name", needed_bytes: 5, remaining_bytes: 1 })
        );
    }

    #[test]
    fn writers_and_reader_agree() {
        // Goal: what the put_* writers produce, the reader takes back exactly, then finishes.
        let mut out = BytesMut::new();
        put_bool(&mut out, true);
        put_bytes(&mut out, b"hello", "greeting");
        put_bytes(&mut out, "é".as_bytes(), "name");
        let mut reader = Reader::new(out.freeze());
        assert_eq!(reader.bool("flag"), Ok(true));
        assert_eq!(reader.bytes("greeting"), Ok(Bytes::from_static(b"hello")));
        assert_eq!(reader.string("name"), Ok("é".to_string()));
        assert_eq!(reader.finish(), Ok(()));
    }

    #[test]
    fn reader_refuses_bad_booleans_bad_utf8_and_trailing_bytes() {
        // Goal: each malformed field is a named error, never a panic or a guess.
        let mut reader = Reader::new(Bytes::from_static(&[2]));
        assert!(matches!(reader.bool("flag"), Err(WireError::Invalid { field: "flag", .. })));
        let mut reader = Reader::new(Bytes::from_static(&[1, 0, 0, 0, 0xff]));
        assert!(matches!(reader.string("name"), Err(WireError::Invalid { field: "name", .. })));
        let reader = Reader::new(Bytes::from_static(&[0, 0]));
        assert_eq!(reader.finish(), Err(WireError::TrailingBytes(2)));
    }
}
