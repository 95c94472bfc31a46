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

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Body, Message};
use crate::wire::{
    put_bool, put_bytes, put_entries, put_membership, read_entries, read_membership, Reader,
};
use crate::WireError;

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
            put_entries(out, entries);
        }
        Body::Accept { prev_index, prev_ballot, entries, commit } => {
            out.put_u8(TAG_ACCEPT);
            out.put_u64_le(*prev_index);
            out.put_u64_le(*prev_ballot);
            out.put_u64_le(*commit);
            put_entries(out, entries);
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
            let entries = read_entries(&mut reader, "entry ballot")?;
            Body::Promise { granted, log_matches, prev_index, last_index, last_ballot, entries }
        }
        TAG_ACCEPT => {
            let prev_index = reader.u64("prev_index")?;
            let prev_ballot = reader.u64("prev_ballot")?;
            let commit = reader.u64("commit")?;
            let entries = read_entries(&mut reader, "entry ballot")?;
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
