//! The wire encoding of [`Message`]: what goes inside one transport frame.
//!
//! Integers are little-endian and fixed-width; `usize` never reaches the wire.
//! Every variable-length part carries a `u32` length or count in front of it.
//!
//! ```text
//! message    = version:u8 (= 1)  from:u64  to:u64  term:u64  tag:u8  body
//! tag body   0 PreVote            last_index:u64 last_term:u64
//!            1 PreVoteResponse    granted:bool
//!            2 Vote               last_index:u64 last_term:u64 transfer:bool
//!            3 VoteResponse       granted:bool
//!            4 Append             prev_index:u64 prev_term:u64 commit:u64
//!                                 count:u32 entry*count
//!            5 AppendResponse     success:bool index:u64 hint_index:u64 hint_term:u64
//!            6 Heartbeat          commit:u64 round:u64
//!            7 HeartbeatResponse  round:u64
//!            8 InstallSnapshot    index:u64 term:u64 membership offset_bytes:u64 done:bool
//!                                 length:u32 data
//!            9 SnapshotResponse   index:u64 received_bytes:u64 done:bool
//!           10 TimeoutNow         (nothing)
//! entry      = index:u64 term:u64 payload_tag:u8 payload
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
const VERSION: u8 = 1;

const TAG_PRE_VOTE: u8 = 0;
const TAG_PRE_VOTE_RESPONSE: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_VOTE_RESPONSE: u8 = 3;
const TAG_APPEND: u8 = 4;
const TAG_APPEND_RESPONSE: u8 = 5;
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
    out.put_u64_le(message.term);
    match &message.body {
        Body::PreVote { last_index, last_term } => {
            out.put_u8(TAG_PRE_VOTE);
            out.put_u64_le(*last_index);
            out.put_u64_le(*last_term);
        }
        Body::PreVoteResponse { granted } => {
            out.put_u8(TAG_PRE_VOTE_RESPONSE);
            put_bool(out, *granted);
        }
        Body::Vote { last_index, last_term, transfer } => {
            out.put_u8(TAG_VOTE);
            out.put_u64_le(*last_index);
            out.put_u64_le(*last_term);
            put_bool(out, *transfer);
        }
        Body::VoteResponse { granted } => {
            out.put_u8(TAG_VOTE_RESPONSE);
            put_bool(out, *granted);
        }
        Body::Append { prev_index, prev_term, entries, commit } => {
            out.put_u8(TAG_APPEND);
            out.put_u64_le(*prev_index);
            out.put_u64_le(*prev_term);
            out.put_u64_le(*commit);
            put_entries(out, entries);
        }
        Body::AppendResponse { success, index, hint_index, hint_term } => {
            out.put_u8(TAG_APPEND_RESPONSE);
            put_bool(out, *success);
            out.put_u64_le(*index);
            out.put_u64_le(*hint_index);
            out.put_u64_le(*hint_term);
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
    let term = reader.u64("term")?;
    let body = match reader.u8("message tag")? {
        TAG_PRE_VOTE => Body::PreVote {
            last_index: reader.u64("last_index")?,
            last_term: reader.u64("last_term")?,
        },
        TAG_PRE_VOTE_RESPONSE => Body::PreVoteResponse { granted: reader.bool("granted")? },
        TAG_VOTE => Body::Vote {
            last_index: reader.u64("last_index")?,
            last_term: reader.u64("last_term")?,
            transfer: reader.bool("transfer")?,
        },
        TAG_VOTE_RESPONSE => Body::VoteResponse { granted: reader.bool("granted")? },
        TAG_APPEND => {
            let prev_index = reader.u64("prev_index")?;
            let prev_term = reader.u64("prev_term")?;
            let commit = reader.u64("commit")?;
            let entries = read_entries(&mut reader, "entry term")?;
            Body::Append { prev_index, prev_term, entries, commit }
        }
        TAG_APPEND_RESPONSE => Body::AppendResponse {
            success: reader.bool("success")?,
            index: reader.u64("index")?,
            hint_index: reader.u64("hint_index")?,
            hint_term: reader.u64("hint_term")?,
        },
        TAG_HEARTBEAT => {
            Body::Heartbeat { commit: reader.u64("commit")?, round: reader.u64("round")? }
        }
        TAG_HEARTBEAT_RESPONSE => Body::HeartbeatResponse { round: reader.u64("round")? },
        TAG_INSTALL_SNAPSHOT => Body::InstallSnapshot {
            index: reader.u64("snapshot index")?,
            term: reader.u64("snapshot term")?,
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
        tag => return Err(WireError::UnknownTag { kind: "raft message", tag }),
    };
    reader.finish()?;
    Ok(Message { from, to, term, body })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::rng::Rng;
    use crate::wire::ENTRY_BYTES_MIN;
    use crate::Message as _;
    use crate::{Entry, Membership, NodeId, Payload};

    fn encoded(message: &Message) -> Bytes {
        let mut out = BytesMut::new();
        message.encode(&mut out);
        out.freeze()
    }

    fn message(body: Body) -> Message {
        Message { from: 1, to: 2, term: 7, body }
    }

    fn membership(voters: &[NodeId], learners: &[NodeId]) -> Membership {
        Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
        }
    }

    /// One hand-written message of every body variant and every entry payload.
    fn every_variant() -> Vec<Message> {
        let bodies = vec![
            Body::PreVote { last_index: 10, last_term: 3 },
            Body::PreVoteResponse { granted: true },
            Body::PreVoteResponse { granted: false },
            Body::Vote { last_index: u64::MAX, last_term: 0, transfer: true },
            Body::Vote { last_index: 1, last_term: 1, transfer: false },
            Body::VoteResponse { granted: true },
            Body::Append { prev_index: 0, prev_term: 0, entries: Vec::new(), commit: 0 },
            Body::Append {
                prev_index: 4,
                prev_term: 2,
                entries: vec![
                    Entry { index: 5, term: 2, payload: Payload::Noop },
                    Entry { index: 6, term: 2, payload: Payload::Command(Bytes::from("set a 1")) },
                    Entry { index: 7, term: 2, payload: Payload::Command(Bytes::new()) },
                    Entry {
                        index: 8,
                        term: 3,
                        payload: Payload::Membership(membership(&[1], &[])),
                    },
                    Entry {
                        index: 9,
                        term: 3,
                        payload: Payload::Membership(membership(&[1, 2, 3], &[4, u64::MAX])),
                    },
                ],
                commit: 6,
            },
            Body::AppendResponse { success: false, index: 9, hint_index: 3, hint_term: 1 },
            Body::AppendResponse { success: true, index: 9, hint_index: 0, hint_term: 0 },
            Body::Heartbeat { commit: 12, round: 99 },
            Body::HeartbeatResponse { round: 99 },
            Body::InstallSnapshot {
                index: 100,
                term: 4,
                membership: membership(&[1, 2, 3], &[9]),
                offset_bytes: 65_536,
                data: Bytes::from(vec![0xAB; 300]),
                done: false,
            },
            Body::InstallSnapshot {
                index: 100,
                term: 4,
                membership: Membership::default(),
                offset_bytes: 0,
                data: Bytes::new(),
                done: true,
            },
            Body::SnapshotResponse { index: 100, received_bytes: 65_836, done: true },
            Body::TimeoutNow,
        ];
        bodies.into_iter().map(message).collect()
    }

    fn random_membership(rng: &mut Rng) -> Membership {
        let mut voters = BTreeSet::new();
        let mut learners = BTreeSet::new();
        for _ in 0..rng.range(0, 6) {
            let node = rng.range(0, 12);
            if rng.chance(1, 3) {
                if !voters.contains(&node) {
                    learners.insert(node);
                }
            } else if !learners.contains(&node) {
                voters.insert(node);
            }
        }
        Membership { voters, learners }
    }

    fn random_bytes(rng: &mut Rng, length_max: u64) -> Bytes {
        let length = rng.range(0, length_max + 1);
        (0..length).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>().into()
    }

    /// Small numbers most of the time (so bytes repeat), any number sometimes.
    fn random_u64(rng: &mut Rng) -> u64 {
        if rng.chance(1, 4) {
            rng.next_u64()
        } else {
            rng.range(0, 1000)
        }
    }

    fn random_entry(rng: &mut Rng) -> Entry {
        let payload = match rng.range(0, 3) {
            0 => Payload::Noop,
            1 => Payload::Command(random_bytes(rng, 40)),
            _ => Payload::Membership(random_membership(rng)),
        };
        Entry { index: random_u64(rng), term: random_u64(rng), payload }
    }

    fn random_message(rng: &mut Rng) -> Message {
        let body = match rng.range(0, 11) {
            0 => Body::PreVote { last_index: random_u64(rng), last_term: random_u64(rng) },
            1 => Body::PreVoteResponse { granted: rng.chance(1, 2) },
            2 => Body::Vote {
                last_index: random_u64(rng),
                last_term: random_u64(rng),
                transfer: rng.chance(1, 2),
            },
            3 => Body::VoteResponse { granted: rng.chance(1, 2) },
            4 => Body::Append {
                prev_index: random_u64(rng),
                prev_term: random_u64(rng),
                entries: (0..rng.range(0, 6)).map(|_| random_entry(rng)).collect(),
                commit: random_u64(rng),
            },
            5 => Body::AppendResponse {
                success: rng.chance(1, 2),
                index: random_u64(rng),
                hint_index: random_u64(rng),
                hint_term: random_u64(rng),
            },
            6 => Body::Heartbeat { commit: random_u64(rng), round: random_u64(rng) },
            7 => Body::HeartbeatResponse { round: random_u64(rng) },
            8 => Body::InstallSnapshot {
                index: random_u64(rng),
                term: random_u64(rng),
                membership: random_membership(rng),
                offset_bytes: random_u64(rng),
                data: random_bytes(rng, 64),
                done: rng.chance(1, 2),
            },
            9 => Body::SnapshotResponse {
                index: random_u64(rng),
                received_bytes: random_u64(rng),
                done: rng.chance(1, 2),
            },
            _ => Body::TimeoutNow,
        };
        Message { from: random_u64(rng), to: random_u64(rng), term: random_u64(rng), body }
    }

    /// Decoding untrusted bytes must return, never panic; whatever it accepts
    /// must be exactly what the encoder writes for the decoded message.
    fn check_canonical(bytes: &[u8]) -> Option<Message> {
        let decoded = Message::decode(Bytes::copy_from_slice(bytes)).ok()?;
        assert_eq!(&encoded(&decoded)[..], bytes, "accepted a non-canonical encoding");
        Some(decoded)
    }

    #[test]
    fn every_variant_round_trips() {
        // Goal: each hand-written message decodes to itself and its encoding is canonical.
        for message in every_variant() {
            let bytes = encoded(&message);
            assert_eq!(Message::decode(bytes.clone()), Ok(message.clone()), "{message:?}");
            assert_eq!(check_canonical(&bytes), Some(message));
        }
    }

    #[test]
    fn random_messages_round_trip() {
        // Goal: thousands of seeded random messages of every shape decode to themselves.
        let mut rng = Rng::new(0x5eed_0001);
        let mut kinds = BTreeSet::new();
        for _ in 0..5_000 {
            let message = random_message(&mut rng);
            kinds.insert(message.kind());
            assert_eq!(Message::decode(encoded(&message)), Ok(message));
        }
        assert_eq!(kinds.len(), 11, "the generator covers every variant");
    }

    #[test]
    fn heartbeat_layout_is_the_documented_one() {
        // Goal: pin the byte layout, so a change to it is a deliberate version bump.
        let bytes = encoded(&Message {
            from: 1,
            to: 0x0203,
            term: 5,
            body: Body::Heartbeat { commit: 6, round: 7 },
        });
        let mut expected = vec![1u8];
        for value in [1u64, 0x0203, 5] {
            expected.extend_from_slice(&value.to_le_bytes());
        }
        expected.push(6);
        for value in [6u64, 7] {
            expected.extend_from_slice(&value.to_le_bytes());
        }
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn command_payloads_and_snapshot_chunks_are_not_copied() {
        // Goal: decoded payloads point into the received frame's buffer.
        let message = message(Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry { index: 1, term: 1, payload: Payload::Command(Bytes::from("x")) }],
            commit: 0,
        });
        let frame = encoded(&message);
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let Body::Append { entries, .. } = Message::decode(frame.clone()).unwrap().body else {
            panic!("decoded another variant");
        };
        let Payload::Command(command) = &entries[0].payload else { panic!("not a command") };
        assert!(frame_range.contains(&(command.as_ptr() as usize)));

        let snapshot = every_variant()
            .into_iter()
            .find(|message| matches!(message.body, Body::InstallSnapshot { done: false, .. }))
            .unwrap();
        let frame = encoded(&snapshot);
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let Body::InstallSnapshot { data, .. } = Message::decode(frame.clone()).unwrap().body
        else {
            panic!("decoded another variant");
        };
        assert!(frame_range.contains(&(data.as_ptr() as usize)));
    }

    #[test]
    fn malformed_frames_are_named_errors() {
        // Goal: each kind of malformation gives the error that describes it.
        let valid = encoded(&message(Body::Vote { last_index: 1, last_term: 1, transfer: true }));
        let mut bytes = valid.to_vec();
        bytes[0] = 2;
        assert_eq!(Message::decode(bytes.into()), Err(WireError::UnknownVersion(2)));

        let mut bytes = valid.to_vec();
        bytes[25] = 11;
        assert_eq!(
            Message::decode(bytes.into()),
            Err(WireError::UnknownTag { kind: "raft message", tag: 11 })
        );

        let mut bytes = valid.to_vec();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            Message::decode(bytes.into()),
            Err(WireError::Invalid { field: "transfer", .. })
        ));

        let mut bytes = valid.to_vec();
        bytes.push(0);
        assert_eq!(Message::decode(bytes.into()), Err(WireError::TrailingBytes(1)));

        assert!(matches!(
            Message::decode(valid.slice(..valid.len() - 1)),
            Err(WireError::Truncated { field: "transfer", needed_bytes: 1, remaining_bytes: 0 })
        ));
        assert_eq!(
            Message::decode(Bytes::new()),
            Err(WireError::Truncated { field: "version", needed_bytes: 1, remaining_bytes: 0 })
        );
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        // Goal: a count the frame cannot hold is an error, not a giant allocation.
        let mut bytes = encoded(&message(Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: Vec::new(),
            commit: 0,
        }))
        .to_vec();
        let count_at = bytes.len() - 4;
        bytes[count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Message::decode(bytes.into()),
            Err(WireError::Truncated {
                field: "entry count",
                needed_bytes: u64::from(u32::MAX) * ENTRY_BYTES_MIN,
                remaining_bytes: 0,
            })
        );

        let empty_chunk = every_variant()
            .into_iter()
            .find(|message| matches!(message.body, Body::InstallSnapshot { done: true, .. }))
            .unwrap();
        let mut bytes = encoded(&empty_chunk).to_vec();
        let length_at = bytes.len() - 4;
        bytes[length_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Message::decode(bytes.into()),
            Err(WireError::Truncated { field: "snapshot chunk", .. })
        ));
    }

    #[test]
    fn duplicate_unordered_or_overlapping_members_are_refused() {
        // Goal: a membership that a BTreeSet would silently repair is an error.
        let valid = encoded(&message(Body::InstallSnapshot {
            index: 1,
            term: 1,
            membership: membership(&[1, 2], &[3]),
            offset_bytes: 0,
            data: Bytes::new(),
            done: true,
        }));
        // Voters start after the header (26 bytes) and index and term (16 bytes).
        let voters_at = 26 + 16 + 4;
        let rewrite = |voters: [u64; 2], learner: u64| {
            let mut bytes = valid.to_vec();
            bytes[voters_at..voters_at + 8].copy_from_slice(&voters[0].to_le_bytes());
            bytes[voters_at + 8..voters_at + 16].copy_from_slice(&voters[1].to_le_bytes());
            bytes[voters_at + 20..voters_at + 28].copy_from_slice(&learner.to_le_bytes());
            Message::decode(bytes.into())
        };
        assert!(rewrite([1, 2], 3).is_ok());
        assert!(matches!(rewrite([2, 2], 3), Err(WireError::Invalid { .. })));
        assert!(matches!(rewrite([2, 1], 3), Err(WireError::Invalid { .. })));
        assert!(matches!(rewrite([1, 2], 2), Err(WireError::Invalid { .. })));
    }

    #[test]
    fn fuzz_truncations_mutations_and_noise_never_panic() {
        // Goal: no byte string makes the decoder panic; truncations always fail; whatever a
        // mutated frame decodes to re-encodes to exactly that frame.
        let mut rng = Rng::new(0xf022);
        let mut messages = every_variant();
        messages.extend((0..300).map(|_| random_message(&mut rng)));
        let mut accepted_mutations = 0;
        for message in &messages {
            let bytes = encoded(message);
            for length in 0..bytes.len() {
                assert!(
                    Message::decode(bytes.slice(..length)).is_err(),
                    "a prefix of {message:?} decoded"
                );
            }
            let mut mutated = bytes.to_vec();
            for position in 0..mutated.len() {
                let original = mutated[position];
                for value in [original ^ 1, original ^ 0x80, 0, 0xFF, rng.next_u64() as u8] {
                    mutated[position] = value;
                    if let Some(decoded) = check_canonical(&mutated) {
                        accepted_mutations += 1;
                        assert_eq!(decoded == *message, value == original);
                    }
                }
                mutated[position] = original;
            }
        }
        // Most fields are free integers, so most mutations still decode: the check above ran.
        assert!(accepted_mutations > 10_000, "only {accepted_mutations} mutations decoded");
        for _ in 0..20_000 {
            let mut noise = random_bytes(&mut rng, 80).to_vec();
            // Start most noise with a valid version and tag so it reaches the bodies.
            if noise.len() > 26 && rng.chance(3, 4) {
                noise[0] = VERSION;
                noise[25] = rng.range(0, 11) as u8;
            }
            check_canonical(&noise);
        }
    }
}
