//! The wire encoding: round trips and hostile input.

use bytes::{Bytes, BytesMut};

use super::super::{Body, Message};
use crate::rng::Rng;
use crate::{Entry, Membership, Message as _, Payload, WireError};

fn encoded(message: &Message) -> Bytes {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    out.freeze()
}

fn every_variant() -> Vec<Message> {
    let entries = vec![
        Entry { index: 5, term: 65_537, payload: Payload::Noop },
        Entry { index: 6, term: 65_537, payload: Payload::Command(Bytes::from("set a 1")) },
        Entry {
            index: 7,
            term: 131_074,
            payload: Payload::Membership(Membership {
                voters: [1, 2, 3].into_iter().collect(),
                learners: [4].into_iter().collect(),
            }),
        },
    ];
    let bodies = vec![
        Body::PrePrepare { commit: 4 },
        Body::PrePrepareResponse { granted: true },
        Body::Prepare { prev_index: 4, prev_ballot: 65_537, transfer: true },
        Body::Promise {
            granted: true,
            log_matches: true,
            prev_index: 4,
            last_index: 9,
            last_ballot: 131_074,
            entries: entries.clone(),
        },
        Body::Promise {
            granted: false,
            log_matches: false,
            prev_index: 0,
            last_index: 0,
            last_ballot: 0,
            entries: Vec::new(),
        },
        Body::Accept { prev_index: 4, prev_ballot: 65_537, entries, commit: 3 },
        Body::Accepted { success: false, index: 9, hint_index: 3, hint_ballot: 1 },
        Body::Heartbeat { commit: 12, round: 99 },
        Body::HeartbeatResponse { round: 99 },
        Body::InstallSnapshot {
            index: 100,
            term: 65_537,
            membership: Membership::with_voters([1, 2]),
            offset_bytes: 512,
            data: Bytes::from(vec![0xAB; 40]),
            done: false,
        },
        Body::SnapshotResponse { index: 100, received_bytes: 552, done: true },
        Body::TimeoutNow,
    ];
    bodies.into_iter().map(|body| Message { from: 1, to: 2, ballot: 65_537, body }).collect()
}

#[test]
fn every_variant_round_trips_canonically() {
    // Goal: each message decodes to itself, and every strict prefix fails.
    for message in every_variant() {
        let bytes = encoded(&message);
        assert_eq!(Message::decode(bytes.clone()), Ok(message.clone()));
        for length in 0..bytes.len() {
            assert!(Message::decode(bytes.slice(..length)).is_err(), "prefix of {message:?}");
        }
    }
}

#[test]
fn malformed_frames_are_named_errors_and_noise_never_panics() {
    // Goal: a Raft frame, an unknown tag, a huge count and random noise are
    // errors, never panics or giant allocations; accepted mutations are
    // canonical.
    let valid = encoded(&every_variant()[0]);
    let mut raft_frame = valid.to_vec();
    raft_frame[0] = 1;
    assert_eq!(Message::decode(raft_frame.into()), Err(WireError::UnknownVersion(1)));
    let mut unknown = valid.to_vec();
    unknown[25] = 11;
    assert!(matches!(Message::decode(unknown.into()), Err(WireError::UnknownTag { .. })));
    let mut huge = encoded(&every_variant()[4]).to_vec();
    let at = huge.len() - 4;
    huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Message::decode(huge.into()), Err(WireError::Truncated { .. })));
    let mut rng = Rng::new(0x00ba_1107);
    for message in every_variant() {
        let mut bytes = encoded(&message).to_vec();
        for position in 0..bytes.len() {
            let original = bytes[position];
            bytes[position] = rng.next_u64() as u8;
            if let Ok(decoded) = Message::decode(Bytes::copy_from_slice(&bytes)) {
                assert_eq!(&encoded(&decoded)[..], &bytes[..], "non-canonical accept");
            }
            bytes[position] = original;
        }
    }
}
