//! The wire encoding of [`Message`]: what goes inside one transport frame.
//!
//! Integers are little-endian and fixed-width; `usize` never reaches the wire.
//! Every variable-length part carries a `u32` length or count in front of it.
//! The version byte differs from the Raft engine's, so a frame of one engine
//! is never taken for the other's.
//!
//! ```text
//! message    = version:u8 (= 0x50)  from:u64  to:u64  ballot:u64  tag:u8  body
//! tag body   0 PrePrepare          commit:u64
//!            1 PrePrepareResponse  granted:bool
//!            2 Prepare             prev_index:u64 prev_ballot:u64 transfer:bool
//!            3 Promise             granted:bool log_matches:bool prev_index:u64
//!                                  last_index:u64 last_ballot:u64 count:u32 entry*count
//!            4 Accept              prev_index:u64 prev_ballot:u64 commit:u64
//!                                  count:u32 entry*count
//!            5 Accepted            success:bool index:u64 hint_index:u64 hint_ballot:u64
//!            6 Heartbeat           commit:u64 round:u64
//!            7 HeartbeatResponse   round:u64
//!            8 InstallSnapshot     index:u64 ballot:u64 membership offset_bytes:u64 done:bool
//!                                  length:u32 data
//!            9 SnapshotResponse    index:u64 received_bytes:u64 done:bool
//!           10 TimeoutNow          (nothing)
//! entry      = index:u64 ballot:u64 payload_tag:u8 payload
//!              0 Noop (nothing) | 1 Command length:u32 bytes | 2 Membership membership
//! membership = voter_count:u32 voter:u64*  learner_count:u32 learner:u64*
//! bool       = one byte, 0 or 1
//! ```
//!
//! The encoding is canonical: a decoder accepts exactly the byte strings the
//! encoder produces (booleans are 0 or 1, member lists strictly ascending and
//! disjoint, no trailing bytes), so `encode(decode(bytes)) == bytes` whenever
//! decoding succeeds.
//!
//! Decoding treats its input as hostile. Before a count or length is acted on,
//! it is checked against the bytes that remain (each element needs at least a
//! known number of bytes), so the memory a frame can make the decoder allocate
//! is bounded by a small constant times the frame's length. Command payloads and
//! snapshot chunks are slices of the received frame, never copies.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::message::{Body, Message};
use crate::{Entry, Membership, NodeId, Payload, WireError};

/// The only version this code writes and reads.
const VERSION: u8 = 0x50;

const TAG_PRE_PREPARE: u8 = 0;
const TAG_PRE_PREPARE_RESPONSE: u8 = 1;
const TAG_PREPARE: u8 = 2;
const TAG_PROMISE: u8 = 3;
const TAG_ACCEPT: u8 = 4;
const TAG_ACCEPTED: u8 = 5;
const TAG_HEARTBEAT: u8 = 6;
const TAG_HEARTBEAT_RESPONSE: u8 = 7;
const TAG_INSTALL_SNAPSHOT: u8 = 8;
const TAG_SNAPSHOT_RESPONSE: u8 = 9;
const TAG_TIMEOUT_NOW: u8 = 10;

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

/// The fewest bytes one encoded entry occupies (index, term, payload tag).
const ENTRY_BYTES_MIN: u64 = 8 + 8 + 1;
/// One encoded node id.
const NODE_ID_BYTES: u64 = 8;

/// Appends `message` to `out` in the layout the module documentation gives.
pub(super) fn encode(message: &Message, out: &mut BytesMut) {
    out.put_u8(VERSION);
    out.put_u64_le(message.from);
    out.put_u64_le(message.to);
    out.put_u64_le(message.ballot);
    match &message.body {
        Body::PrePrepare { commit } => {
            out.put_u8(TAG_PRE_PREPARE);
            out.put_u64_le(*commit);
        }
        Body::PrePrepareResponse { granted } => {
            out.put_u8(TAG_PRE_PREPARE_RESPONSE);
            put_bool(out, *granted);
        }
        Body::Prepare { prev_index, prev_ballot, transfer } => {
            out.put_u8(TAG_PREPARE);
            out.put_u64_le(*prev_index);
            out.put_u64_le(*prev_ballot);
            put_bool(out, *transfer);
        }
        Body::Promise { granted, log_matches, prev_index, last_index, last_ballot, entries } => {
            out.put_u8(TAG_PROMISE);
            put_bool(out, *granted);
            put_bool(out, *log_matches);
            out.put_u64_le(*prev_index);
            out.put_u64_le(*last_index);
            out.put_u64_le(*last_ballot);
            put_length(out, entries.len(), "entry count");
            for entry in entries {
                put_entry(out, entry);
            }
        }
        Body::Accept { prev_index, prev_ballot, entries, commit } => {
            out.put_u8(TAG_ACCEPT);
            out.put_u64_le(*prev_index);
            out.put_u64_le(*prev_ballot);
            out.put_u64_le(*commit);
            put_length(out, entries.len(), "entry count");
            for entry in entries {
                put_entry(out, entry);
            }
        }
        Body::Accepted { success, index, hint_index, hint_ballot } => {
            out.put_u8(TAG_ACCEPTED);
            put_bool(out, *success);
            out.put_u64_le(*index);
            out.put_u64_le(*hint_index);
            out.put_u64_le(*hint_ballot);
        }
        Body::Heartbeat { commit, round } => {
            out.put_u8(TAG_HEARTBEAT);
            out.put_u64_le(*commit);
            out.put_u64_le(*round);
        }
        Body::HeartbeatResponse { round } => {
            out.put_u8(TAG_HEARTBEAT_RESPONSE);
            out.put_u64_le(*round);
        }
        Body::InstallSnapshot { index, term, membership, offset_bytes, data, done } => {
            out.put_u8(TAG_INSTALL_SNAPSHOT);
            out.put_u64_le(*index);
            out.put_u64_le(*term);
            put_membership(out, membership);
            out.put_u64_le(*offset_bytes);
            put_bool(out, *done);
            put_bytes(out, data, "snapshot chunk");
        }
        Body::SnapshotResponse { index, received_bytes, done } => {
            out.put_u8(TAG_SNAPSHOT_RESPONSE);
            out.put_u64_le(*index);
            out.put_u64_le(*received_bytes);
            put_bool(out, *done);
        }
        Body::TimeoutNow => out.put_u8(TAG_TIMEOUT_NOW),
    }
}

/// Decodes one message that occupies all of `bytes`.
pub(super) fn decode(bytes: Bytes) -> Result<Message, WireError> {
    let mut reader = Reader::new(bytes);
    let version = reader.u8("version")?;
    if version != VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let from = reader.u64("from")?;
    let to = reader.u64("to")?;
    let ballot = reader.u64("ballot")?;
    let body = match reader.u8("message tag")? {
        TAG_PRE_PREPARE => Body::PrePrepare { commit: reader.u64("commit")? },
        TAG_PRE_PREPARE_RESPONSE => Body::PrePrepareResponse { granted: reader.bool("granted")? },
        TAG_PREPARE => Body::Prepare {
            prev_index: reader.u64("prev_index")?,
            prev_ballot: reader.u64("prev_ballot")?,
            transfer: reader.bool("transfer")?,
        },
        TAG_PROMISE => {
            let granted = reader.bool("granted")?;
            let log_matches = reader.bool("log_matches")?;
            let prev_index = reader.u64("prev_index")?;
            let last_index = reader.u64("last_index")?;
            let last_ballot = reader.u64("last_ballot")?;
            let entries = read_entries(&mut reader)?;
            Body::Promise { granted, log_matches, prev_index, last_index, last_ballot, entries }
        }
        TAG_ACCEPT => {
            let prev_index = reader.u64("prev_index")?;
            let prev_ballot = reader.u64("prev_ballot")?;
            let commit = reader.u64("commit")?;
            let entries = read_entries(&mut reader)?;
            Body::Accept { prev_index, prev_ballot, entries, commit }
        }
        TAG_ACCEPTED => Body::Accepted {
            success: reader.bool("success")?,
            index: reader.u64("index")?,
            hint_index: reader.u64("hint_index")?,
            hint_ballot: reader.u64("hint_ballot")?,
        },
        TAG_HEARTBEAT => {
            Body::Heartbeat { commit: reader.u64("commit")?, round: reader.u64("round")? }
        }
        TAG_HEARTBEAT_RESPONSE => Body::HeartbeatResponse { round: reader.u64("round")? },
        TAG_INSTALL_SNAPSHOT => Body::InstallSnapshot {
            index: reader.u64("snapshot index")?,
            term: reader.u64("snapshot ballot")?,
            membership: read_membership(&mut reader)?,
            offset_bytes: reader.u64("offset_bytes")?,
            done: reader.bool("done")?,
            data: reader.bytes("snapshot chunk")?,
        },
        TAG_SNAPSHOT_RESPONSE => Body::SnapshotResponse {
            index: reader.u64("snapshot index")?,
            received_bytes: reader.u64("received_bytes")?,
            done: reader.bool("done")?,
        },
        TAG_TIMEOUT_NOW => Body::TimeoutNow,
        tag => return Err(WireError::UnknownTag { kind: "paxos message", tag }),
    };
    reader.finish()?;
    Ok(Message { from, to, ballot, body })
}

fn read_entries(reader: &mut Reader) -> Result<Vec<Entry>, WireError> {
    let count = reader.count("entry count", ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(read_entry(reader)?);
    }
    Ok(entries)
}

fn put_bool(out: &mut BytesMut, value: bool) {
    out.put_u8(u8::from(value));
}

/// Writes a `u32` length. A length beyond `u32` is a bug in the sender:
/// messages are built far below it (`append_bytes_max`, `snapshot_chunk_bytes`).
fn put_length(out: &mut BytesMut, length: usize, field: &str) {
    let length = u32::try_from(length)
        .unwrap_or_else(|_| panic!("{field} of {length} does not fit the wire's u32"));
    out.put_u32_le(length);
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8], field: &str) {
    put_length(out, bytes.len(), field);
    out.put_slice(bytes);
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

fn put_membership(out: &mut BytesMut, membership: &Membership) {
    for members in [&membership.voters, &membership.learners] {
        put_length(out, members.len(), "member count");
        for member in members {
            out.put_u64_le(*member);
        }
    }
}

fn read_entry(reader: &mut Reader) -> Result<Entry, WireError> {
    let index = reader.u64("entry index")?;
    let term = reader.u64("entry ballot")?;
    let payload = match reader.u8("payload tag")? {
        PAYLOAD_NOOP => Payload::Noop,
        PAYLOAD_COMMAND => Payload::Command(reader.bytes("command")?),
        PAYLOAD_MEMBERSHIP => Payload::Membership(read_membership(reader)?),
        tag => return Err(WireError::UnknownTag { kind: "entry payload", tag }),
    };
    Ok(Entry { index, term, payload })
}

fn read_membership(reader: &mut Reader) -> Result<Membership, WireError> {
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

/// Reads fields off the front of a frame, checking each against what remains.
struct Reader {
    bytes: Bytes,
}

impl Reader {
    fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    fn remaining_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn need(&self, field: &'static str, needed_bytes: u64) -> Result<(), WireError> {
        let remaining_bytes = self.remaining_bytes();
        if needed_bytes > remaining_bytes {
            return Err(WireError::Truncated { field, needed_bytes, remaining_bytes });
        }
        Ok(())
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.need(field, 1)?;
        Ok(self.bytes.get_u8())
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.need(field, 4)?;
        Ok(self.bytes.get_u32_le())
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_u64_le())
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Invalid { field, reason: "a boolean is 0 or 1" }),
        }
    }

    /// A `u32` count of elements that each occupy at least `element_bytes_min`
    /// bytes; refused unless that many could follow.
    fn count(&mut self, field: &'static str, element_bytes_min: u64) -> Result<usize, WireError> {
        assert!(element_bytes_min >= 1);
        let count = self.u32(field)?;
        self.need(field, u64::from(count) * element_bytes_min)?;
        Ok(usize::try_from(count).expect("a count that fits in the frame fits in usize"))
    }

    /// A `u32` length and that many bytes, sliced from the frame (no copy).
    fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let length = self.u32(field)?;
        self.need(field, u64::from(length))?;
        Ok(self.bytes.split_to(length as usize))
    }

    fn finish(self) -> Result<(), WireError> {
        match self.remaining_bytes() {
            0 => Ok(()),
            left_over => Err(WireError::TrailingBytes(left_over)),
        }
    }
}
