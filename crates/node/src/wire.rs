//! The wire encoding of [`PeerMessage`]: what one node sends another inside a
//! transport frame.
//!
//! Integers are little-endian and fixed-width; every variable-length part has
//! a `u32` length or count in front of it.
//!
//! ```text
//! peer message = version:u8 (= 2)  tag:u8  body
//! tag body   0 Consensus  group:u64 length:u32 message       (the engine's encoding)
//!            1 Forward    group:u64 request:u64 command
//!            2 Reply      group:u64 request:u64 length:u32 frame      (RESP3)
//!                         null_array_count:u32 position:u32*
//!            3 Redirect   group:u64 request:u64 has_leader:bool [leader:u64 if has_leader]
//!            4 Join       node:u64 peer:string client:string
//!            5 CaughtUp   group:u64 node:u64
//!            6 Peers      count:u32, (node:u64, peer address)*
//!            7 Hello      node:u64 peer:string client:string count:u32 led_group:u64*
//!            8 Quiesce    count:u32 (group:u64 term:u64 index:u64)*
//!            9 QuiesceAck count:u32 (group:u64 term:u64 index:u64)*
//! command    = tag:u8 body
//!            0 Execute      arguments
//!            1 Transaction  watched_count:u32 (key:bytes version:u64)* command_count:u32 arguments*
//!            2 KeyVersions  arguments
//!            3 ReadIndex    (nothing)
//! arguments  = count:u32 bytes*
//! bytes      = length:u32 byte*          string = bytes holding UTF-8
//! bool       = one byte, 0 or 1
//! ```
//!
//! A reply frame travels as RESP3, which the `resp` crate already encodes and
//! decodes with bounds. RESP3 has one null where RESP2 has two (`$-1` and
//! `*-1`), so a `NullArray` (BLPOP's timeout reply) would arrive as a plain
//! `Null` and reach a RESP2 client as `$-1` instead of the `*-1` Redis sends.
//! The positions of the `NullArray`s (counted in pre-order, the order RESP
//! writes values in) follow the frame so that the receiver restores them.
//!
//! Decoding treats its input as hostile: every count and length is checked
//! against the bytes that remain before it is acted on, the RESP limits are
//! derived from the frame's own length, unknown versions and tags and trailing
//! bytes are errors, and nothing panics. Arguments, keys and bulk strings are
//! slices of the received buffer where the APIs allow it (a reply frame is
//! copied once, because the RESP decoder works on a `BytesMut`).

use bytes::{BufMut, Bytes, BytesMut};
use consensus::wire::{put_bool, put_bytes, put_length, Reader};
use consensus::WireError;
use resp::{Frame, Limits, Protocol};

use crate::node::{Command, PeerMessage};

/// The only version this code writes and reads.
const VERSION: u8 = 2;

const TAG_CONSENSUS: u8 = 0;
const TAG_FORWARD: u8 = 1;
const TAG_REPLY: u8 = 2;
const TAG_REDIRECT: u8 = 3;
const TAG_JOIN: u8 = 4;
const TAG_CAUGHT_UP: u8 = 5;
const TAG_PEERS: u8 = 6;
const TAG_HELLO: u8 = 7;
const TAG_QUIESCE: u8 = 8;
const TAG_QUIESCE_ACK: u8 = 9;

const COMMAND_EXECUTE: u8 = 0;
const COMMAND_TRANSACTION: u8 = 1;
const COMMAND_KEY_VERSIONS: u8 = 2;
const COMMAND_READ_INDEX: u8 = 3;

/// The fewest bytes one encoded element of each list occupies.
const ARGUMENT_BYTES_MIN: u64 = 4;
const WATCHED_KEY_BYTES_MIN: u64 = 4 + 8;
const ARGUMENTS_BYTES_MIN: u64 = 4;
const POSITION_BYTES: u64 = 4;

/// Reply nesting accepted from a peer: what any client of ours accepts.
const REPLY_DEPTH_MAX: usize = resp::DEPTH_MAX_DEFAULT;

impl<M: consensus::Message> PeerMessage<M> {
    /// The message's wire encoding, in the layout the module documentation gives.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(VERSION);
        match self {
            PeerMessage::Consensus { group, message } => {
                out.put_u8(TAG_CONSENSUS);
                out.put_u64_le(*group);
                let mut encoded = BytesMut::new();
                message.encode(&mut encoded);
                put_bytes(&mut out, &encoded, "consensus message");
            }
            PeerMessage::Forward { group, request, command } => {
                out.put_u8(TAG_FORWARD);
                out.put_u64_le(*group);
                out.put_u64_le(*request);
                put_command(&mut out, command);
            }
            PeerMessage::Reply { group, request, frame } => {
                out.put_u8(TAG_REPLY);
                out.put_u64_le(*group);
                out.put_u64_le(*request);
                put_frame(&mut out, frame);
            }
            PeerMessage::Redirect { group, request, leader } => {
                out.put_u8(TAG_REDIRECT);
                out.put_u64_le(*group);
                out.put_u64_le(*request);
                match leader {
                    None => put_bool(&mut out, false),
                    Some(leader) => {
                        put_bool(&mut out, true);
                        out.put_u64_le(*leader);
                    }
                }
            }
            PeerMessage::Join { node, peer, client } => {
                out.put_u8(TAG_JOIN);
                out.put_u64_le(*node);
                put_bytes(&mut out, peer.as_bytes(), "peer address");
                put_bytes(&mut out, client.as_bytes(), "client address");
            }
            PeerMessage::CaughtUp { group, node } => {
                out.put_u8(TAG_CAUGHT_UP);
                out.put_u64_le(*group);
                out.put_u64_le(*node);
            }
            PeerMessage::Hello { node, peer, client, leading } => {
                out.put_u8(TAG_HELLO);
                out.put_u64_le(*node);
                put_bytes(&mut out, peer.as_bytes(), "peer address");
                put_bytes(&mut out, client.as_bytes(), "client address");
                put_length(&mut out, leading.len(), "led groups");
                for group in leading {
                    out.put_u64_le(*group);
                }
            }
            PeerMessage::Peers(peers) => {
                out.put_u8(TAG_PEERS);
                put_length(&mut out, peers.len(), "peers");
                for (node, address) in peers {
                    out.put_u64_le(*node);
                    put_bytes(&mut out, address.as_bytes(), "peer address");
                }
            }
            PeerMessage::Quiesce(groups) | PeerMessage::QuiesceAck(groups) => {
                let tag = if matches!(self, PeerMessage::Quiesce(_)) {
                    TAG_QUIESCE
                } else {
                    TAG_QUIESCE_ACK
                };
                out.put_u8(tag);
                put_length(&mut out, groups.len(), "quiet groups");
                for (group, term, index) in groups {
                    out.put_u64_le(*group);
                    out.put_u64_le(*term);
                    out.put_u64_le(*index);
                }
            }
        }
        out.freeze()
    }

    /// Decodes one message that occupies all of `bytes`.
    pub fn decode(bytes: Bytes) -> Result<Self, WireError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8("version")?;
        if version != VERSION {
            return Err(WireError::UnknownVersion(version));
        }
        let message = match reader.u8("peer message tag")? {
            TAG_CONSENSUS => {
                let group = reader.u64("group")?;
                let message = M::decode(reader.bytes("consensus message")?)?;
                PeerMessage::Consensus { group, message }
            }
            TAG_FORWARD => {
                let group = reader.u64("group")?;
                let request = reader.u64("request")?;
                PeerMessage::Forward { group, request, command: read_command(&mut reader)? }
            }
            TAG_REPLY => {
                let group = reader.u64("group")?;
                let request = reader.u64("request")?;
                PeerMessage::Reply { group, request, frame: take_frame(&mut reader)? }
            }
            TAG_REDIRECT => {
                let group = reader.u64("group")?;
                let request = reader.u64("request")?;
                let leader =
                    if reader.bool("has_leader")? { Some(reader.u64("leader")?) } else { None };
                PeerMessage::Redirect { group, request, leader }
            }
            TAG_JOIN => PeerMessage::Join {
                node: reader.u64("node")?,
                peer: reader.string("peer address")?,
                client: reader.string("client address")?,
            },
            TAG_CAUGHT_UP => {
                PeerMessage::CaughtUp { group: reader.u64("group")?, node: reader.u64("node")? }
            }
            TAG_HELLO => {
                let node = reader.u64("node")?;
                let peer = reader.string("peer address")?;
                let client = reader.string("client address")?;
                let count = reader.count("led groups", 8)?;
                let mut leading = Vec::with_capacity(count);
                for _ in 0..count {
                    leading.push(reader.u64("group")?);
                }
                PeerMessage::Hello { node, peer, client, leading }
            }
            TAG_PEERS => {
                // Each peer takes at least a node id and a length.
                let count = reader.count("peers", 12)?;
                let mut peers = Vec::with_capacity(count);
                for _ in 0..count {
                    peers.push((reader.u64("node")?, reader.string("peer address")?));
                }
                PeerMessage::Peers(peers)
            }
            tag @ (TAG_QUIESCE | TAG_QUIESCE_ACK) => {
                let count = reader.count("quiet groups", 24)?;
                let mut groups = Vec::with_capacity(count);
                for _ in 0..count {
                    groups.push((reader.u64("group")?, reader.u64("term")?, reader.u64("index")?));
                }
                if tag == TAG_QUIESCE {
                    PeerMessage::Quiesce(groups)
                } else {
                    PeerMessage::QuiesceAck(groups)
                }
            }
            tag => return Err(WireError::UnknownTag { kind: "peer message", tag }),
        };
        reader.finish()?;
        Ok(message)
    }
}

/// Appends a reply frame: its RESP3 bytes, then the positions of its null
/// arrays (RESP3 has one null; RESP2 clients need `*-1` back where it was).
fn put_frame(out: &mut BytesMut, frame: &Frame) {
    let mut encoded = BytesMut::new();
    resp::encode(frame, Protocol::Resp3, &mut encoded);
    put_bytes(out, &encoded, "reply frame");
    let positions = null_array_positions(frame);
    put_length(out, positions.len(), "null array positions");
    for position in positions {
        out.put_u32_le(position);
    }
}

fn take_frame(reader: &mut Reader) -> Result<Frame, WireError> {
    let mut frame = read_frame(reader.bytes("reply frame")?)?;
    let count = reader.count("null array positions", POSITION_BYTES)?;
    let mut positions = Vec::with_capacity(count);
    for _ in 0..count {
        positions.push(reader.u32("null array position")?);
    }
    restore_null_arrays(&mut frame, &positions)?;
    Ok(frame)
}

/// A reply frame as bytes that [`decode_frame`] turns back into the same
/// frame (for state that caches replies, such as client sessions).
pub(crate) fn encode_frame(frame: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    put_frame(&mut out, frame);
    out.freeze()
}

pub(crate) fn decode_frame(bytes: Bytes) -> Result<Frame, WireError> {
    let mut reader = Reader::new(bytes);
    let frame = take_frame(&mut reader)?;
    reader.finish()?;
    Ok(frame)
}

fn put_arguments(out: &mut BytesMut, arguments: &[Bytes]) {
    put_length(out, arguments.len(), "argument count");
    for argument in arguments {
        put_bytes(out, argument, "argument");
    }
}

fn put_command(out: &mut BytesMut, command: &Command) {
    match command {
        Command::Execute(arguments) => {
            out.put_u8(COMMAND_EXECUTE);
            put_arguments(out, arguments);
        }
        Command::Transaction { watched, commands } => {
            out.put_u8(COMMAND_TRANSACTION);
            put_length(out, watched.len(), "watched key count");
            for (key, version) in watched {
                put_bytes(out, key, "watched key");
                out.put_u64_le(*version);
            }
            put_length(out, commands.len(), "transaction command count");
            for arguments in commands {
                put_arguments(out, arguments);
            }
        }
        Command::KeyVersions(keys) => {
            out.put_u8(COMMAND_KEY_VERSIONS);
            put_arguments(out, keys);
        }
        Command::ReadIndex => out.put_u8(COMMAND_READ_INDEX),
    }
}

fn read_arguments(reader: &mut Reader) -> Result<Vec<Bytes>, WireError> {
    let count = reader.count("argument count", ARGUMENT_BYTES_MIN)?;
    let mut arguments = Vec::with_capacity(count);
    for _ in 0..count {
        arguments.push(reader.bytes("argument")?);
    }
    Ok(arguments)
}

fn read_command(reader: &mut Reader) -> Result<Command, WireError> {
    match reader.u8("command tag")? {
        COMMAND_EXECUTE => Ok(Command::Execute(read_arguments(reader)?)),
        COMMAND_TRANSACTION => {
            let count = reader.count("watched key count", WATCHED_KEY_BYTES_MIN)?;
            let mut watched = Vec::with_capacity(count);
            for _ in 0..count {
                watched.push((reader.bytes("watched key")?, reader.u64("watched version")?));
            }
            let count = reader.count("transaction command count", ARGUMENTS_BYTES_MIN)?;
            let mut commands = Vec::with_capacity(count);
            for _ in 0..count {
                commands.push(read_arguments(reader)?);
            }
            Ok(Command::Transaction { watched, commands })
        }
        COMMAND_KEY_VERSIONS => Ok(Command::KeyVersions(read_arguments(reader)?)),
        COMMAND_READ_INDEX => Ok(Command::ReadIndex),
        tag => Err(WireError::UnknownTag { kind: "command", tag }),
    }
}

/// Exactly one RESP3 frame filling `bytes`. The limits come from the frame's
/// own length (no bulk or aggregate can be longer than the bytes that hold it),
/// so any reply a node can send passes, and nothing can claim more.
fn read_frame(bytes: Bytes) -> Result<Frame, WireError> {
    let field = "reply frame";
    let length = bytes.len();
    let line_len_max = length.max(resp::INLINE_LEN_MAX_MIN);
    let limits = Limits {
        bulk_len_max: length,
        array_len_max: length.max(1),
        inline_len_max: line_len_max,
        query_buffer_max: line_len_max,
        depth_max: REPLY_DEPTH_MAX,
        unauthenticated: None,
    };
    let mut buffer = BytesMut::from(bytes);
    match resp::decode_frame(&mut buffer, &limits) {
        Ok(Some(frame)) if buffer.is_empty() => Ok(frame),
        Ok(Some(_)) => Err(WireError::Invalid { field, reason: "bytes after the RESP frame" }),
        Ok(None) => Err(WireError::Invalid { field, reason: "incomplete RESP frame" }),
        Err(_) => Err(WireError::Invalid { field, reason: "malformed RESP3" }),
    }
}

/// The pre-order positions of every `NullArray` in `frame`, ascending.
fn null_array_positions(frame: &Frame) -> Vec<u32> {
    let mut positions = Vec::new();
    let mut pending = vec![frame];
    let mut position: u32 = 0;
    while let Some(frame) = pending.pop() {
        if *frame == Frame::NullArray {
            positions.push(position);
        }
        match frame {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                pending.extend(items.iter().rev());
            }
            Frame::Map(pairs) => {
                for (key, value) in pairs.iter().rev() {
                    pending.push(value);
                    pending.push(key);
                }
            }
            _ => {}
        }
        position = position.checked_add(1).expect("a reply holds fewer than 2^32 values");
    }
    positions
}

/// Turns the `Null`s at `positions` (pre-order, strictly ascending) back into
/// `NullArray`s; any other value there, or a position past the frame, is an
/// error.
fn restore_null_arrays(frame: &mut Frame, positions: &[u32]) -> Result<(), WireError> {
    let field = "null array positions";
    let mut positions = positions.iter().copied().peekable();
    let mut pending = vec![frame];
    let mut position: u32 = 0;
    while let Some(frame) = pending.pop() {
        if positions.peek() == Some(&position) {
            positions.next();
            if *frame != Frame::Null {
                return Err(WireError::Invalid { field, reason: "position is not a null" });
            }
            *frame = Frame::NullArray;
        }
        match frame {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                pending.extend(items.iter_mut().rev());
            }
            Frame::Map(pairs) => {
                for (key, value) in pairs.iter_mut().rev() {
                    pending.push(value);
                    pending.push(key);
                }
            }
            _ => {}
        }
        // The frame came from fewer than 2^32 bytes and every value takes at
        // least three, so the count cannot overflow.
        position += 1;
        if positions.peek().is_some_and(|next| *next < position) {
            return Err(WireError::Invalid { field, reason: "positions not strictly ascending" });
        }
    }
    match positions.next() {
        None => Ok(()),
        Some(_) => Err(WireError::Invalid { field, reason: "position past the frame" }),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use consensus::raft::{Body, Message};
    use consensus::rng::Rng;
    use consensus::{Entry, Membership, Payload, WireError};
    use resp::Frame;

    use super::{TAG_REPLY, VERSION};
    use crate::node::{Command, PeerMessage};

    type Peer = PeerMessage<Message>;

    fn raft(body: Body) -> Message {
        Message { from: 1, to: 2, term: 3, body }
    }

    fn arguments(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
    }

    /// A reply using every frame type, nested, with null arrays at several depths.
    fn every_frame() -> Frame {
        Frame::Array(vec![
            Frame::ok(),
            Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            Frame::Integer(-42),
            Frame::bulk("bulk\r\nwith line ends"),
            Frame::Bulk(Bytes::new()),
            Frame::Null,
            Frame::NullArray,
            Frame::Double(1.5),
            Frame::Double(f64::NEG_INFINITY),
            Frame::Boolean(true),
            Frame::Map(vec![
                (Frame::bulk("key"), Frame::NullArray),
                (Frame::Null, Frame::Set(vec![Frame::Integer(1), Frame::NullArray])),
            ]),
            Frame::Verbatim { format: *b"txt", text: Bytes::from("some text") },
            Frame::BigNumber("-3492890328409238509324850943850943825024385".into()),
            Frame::Push(vec![Frame::Array(Vec::new()), Frame::Map(Vec::new())]),
        ])
    }

    /// One hand-written message of every variant and every command shape.
    fn every_variant() -> Vec<Peer> {
        vec![
            Peer::Consensus { group: 1, message: raft(Body::Heartbeat { commit: 4, round: 5 }) },
            Peer::Consensus {
                group: u64::MAX,
                message: raft(Body::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries: vec![
                        Entry { index: 2, term: 1, payload: Payload::Command(Bytes::from("x")) },
                        Entry {
                            index: 3,
                            term: 1,
                            payload: Payload::Membership(Membership::with_voters([1, 2])),
                        },
                    ],
                    commit: 2,
                }),
            },
            Peer::Forward {
                group: 7,
                request: 7,
                command: Command::Execute(arguments(&["SET", "k", "v"])),
            },
            Peer::Forward { group: 8, request: 8, command: Command::Execute(Vec::new()) },
            Peer::Forward { group: 12, request: 17, command: Command::ReadIndex },
            Peer::Forward {
                group: 2,
                request: 9,
                command: Command::Transaction {
                    watched: vec![(Bytes::from("k"), 3), (Bytes::new(), u64::MAX)],
                    commands: vec![arguments(&["INCR", "k"]), Vec::new(), arguments(&["GET", ""])],
                },
            },
            Peer::Forward {
                group: 2,
                request: 10,
                command: Command::Transaction { watched: Vec::new(), commands: Vec::new() },
            },
            Peer::Forward {
                group: 11,
                request: 11,
                command: Command::KeyVersions(arguments(&["a", "b"])),
            },
            Peer::Reply { group: 1, request: 12, frame: every_frame() },
            Peer::Reply { group: 1, request: 13, frame: Frame::NullArray },
            Peer::Reply { group: 1, request: 14, frame: Frame::Null },
            Peer::Redirect { group: 3, request: 15, leader: None },
            Peer::Redirect { group: 3, request: 16, leader: Some(3) },
            Peer::Join { node: 4, peer: "10.0.0.4:7000".into(), client: "10.0.0.4:6379".into() },
            Peer::Join { node: 5, peer: String::new(), client: "h\u{e9}te:1".into() },
            Peer::CaughtUp { group: 9, node: 4 },
            Peer::Hello {
                node: 6,
                peer: "10.0.0.6:7000".into(),
                client: "10.0.0.6:6379".into(),
                leading: vec![1, 7],
            },
            Peer::Hello {
                node: 7,
                peer: String::new(),
                client: String::new(),
                leading: Vec::new(),
            },
            Peer::Peers(vec![(1, "127.0.0.1:17001".to_string()), (2, String::new())]),
        ]
    }

    fn random_bytes(rng: &mut Rng, length_max: u64) -> Bytes {
        let length = rng.range(0, length_max + 1);
        (0..length).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>().into()
    }

    fn random_arguments(rng: &mut Rng) -> Vec<Bytes> {
        (0..rng.range(0, 5)).map(|_| random_bytes(rng, 12)).collect()
    }

    fn random_text(rng: &mut Rng) -> String {
        let alphabet = ["a", "Z", "0", " ", ":", "\u{e9}", "\u{1F600}", "-"];
        (0..rng.range(0, 10)).map(|_| *rng.choose(&alphabet).unwrap()).collect()
    }

    /// A random frame of every type, nested at most `depth` deep. Doubles are
    /// never NaN, so frames compare equal to themselves.
    fn random_frame(rng: &mut Rng, depth: u32) -> Frame {
        let kinds = if depth == 0 { 10 } else { 14 };
        match rng.range(0, kinds) {
            0 => Frame::Simple(random_text(rng)),
            1 => Frame::Error(format!("ERR {}", random_text(rng))),
            2 => Frame::Integer(rng.next_u64() as i64),
            3 => Frame::Bulk(random_bytes(rng, 16)),
            4 => Frame::Null,
            5 => Frame::NullArray,
            6 => Frame::Double(*rng.choose(&[0.0, -2.5, 1e300, 3.0e-7, f64::INFINITY]).unwrap()),
            7 => Frame::Boolean(rng.chance(1, 2)),
            8 => Frame::Verbatim { format: *b"mkd", text: random_bytes(rng, 8) },
            9 => Frame::BigNumber(format!("{}{}", rng.next_u64(), rng.next_u64())),
            10 => Frame::Array(random_frames(rng, depth - 1)),
            11 => Frame::Set(random_frames(rng, depth - 1)),
            12 => Frame::Push(random_frames(rng, depth - 1)),
            _ => Frame::Map(
                (0..rng.range(0, 4))
                    .map(|_| (random_frame(rng, depth - 1), random_frame(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    fn random_frames(rng: &mut Rng, depth: u32) -> Vec<Frame> {
        (0..rng.range(0, 5)).map(|_| random_frame(rng, depth)).collect()
    }

    fn random_raft(rng: &mut Rng) -> Message {
        let body = match rng.range(0, 3) {
            0 => Body::Heartbeat { commit: rng.next_u64(), round: rng.next_u64() },
            1 => Body::Append {
                prev_index: rng.next_u64(),
                prev_term: rng.next_u64(),
                entries: (0..rng.range(0, 4))
                    .map(|index| Entry {
                        index,
                        term: 1,
                        payload: Payload::Command(random_bytes(rng, 20)),
                    })
                    .collect(),
                commit: rng.next_u64(),
            },
            _ => Body::TimeoutNow,
        };
        Message { from: rng.next_u64(), to: rng.next_u64(), term: rng.next_u64(), body }
    }

    fn random_command(rng: &mut Rng) -> Command {
        match rng.range(0, 3) {
            0 => Command::Execute(random_arguments(rng)),
            1 => Command::Transaction {
                watched: (0..rng.range(0, 3))
                    .map(|_| (random_bytes(rng, 8), rng.next_u64()))
                    .collect(),
                commands: (0..rng.range(0, 4)).map(|_| random_arguments(rng)).collect(),
            },
            _ => Command::KeyVersions(random_arguments(rng)),
        }
    }

    fn random_message(rng: &mut Rng) -> Peer {
        match rng.range(0, 7) {
            0 => Peer::Consensus { group: rng.next_u64(), message: random_raft(rng) },
            1 => Peer::Forward {
                group: rng.next_u64(),
                request: rng.next_u64(),
                command: random_command(rng),
            },
            2 => Peer::Reply {
                group: rng.next_u64(),
                request: rng.next_u64(),
                frame: random_frame(rng, 3),
            },
            3 => Peer::Redirect {
                group: rng.next_u64(),
                request: rng.next_u64(),
                leader: rng.chance(1, 2).then(|| rng.next_u64()),
            },
            4 => Peer::Join {
                node: rng.next_u64(),
                peer: random_text(rng),
                client: random_text(rng),
            },
            5 => Peer::Hello {
                node: rng.next_u64(),
                peer: random_text(rng),
                client: random_text(rng),
                leading: (0..rng.range(0, 4)).map(|_| rng.next_u64()).collect(),
            },
            _ => Peer::CaughtUp { group: rng.next_u64(), node: rng.next_u64() },
        }
    }

    /// Whatever the decoder accepts re-encodes, and that encoding is a fixed
    /// point: it decodes to a message that encodes to the same bytes.
    fn check_accepted(bytes: &[u8]) -> Option<Peer> {
        let decoded = Peer::decode(Bytes::copy_from_slice(bytes)).ok()?;
        let encoded = decoded.encode();
        let again = Peer::decode(encoded.clone()).expect("a re-encoded message decodes");
        assert_eq!(again.encode(), encoded, "re-encoding is not stable");
        Some(decoded)
    }

    #[test]
    fn every_variant_round_trips() {
        // Goal: each hand-written message, every frame type included, decodes to itself.
        for message in every_variant() {
            assert_eq!(Peer::decode(message.encode()), Ok(message.clone()), "{message:?}");
        }
    }

    #[test]
    fn random_messages_round_trip() {
        // Goal: thousands of seeded random messages of every shape decode to themselves.
        let mut rng = Rng::new(0x5eed_0002);
        for _ in 0..5_000 {
            let message = random_message(&mut rng);
            assert_eq!(Peer::decode(message.encode()), Ok(message));
        }
    }

    #[test]
    fn null_arrays_survive_where_resp3_would_lose_them() {
        // Goal: BLPOP's timeout reply reaches the client node as a null array, not a null.
        let frame = Frame::Array(vec![Frame::Null, Frame::NullArray]);
        let mut plain = bytes::BytesMut::new();
        resp::encode(&frame, resp::Protocol::Resp3, &mut plain);
        assert_eq!(&plain[..], b"*2\r\n_\r\n_\r\n", "RESP3 alone cannot tell them apart");
        let decoded =
            Peer::decode(Peer::Reply { group: 1, request: 1, frame: frame.clone() }.encode());
        assert_eq!(decoded, Ok(Peer::Reply { group: 1, request: 1, frame }));
    }

    #[test]
    fn null_array_positions_are_checked() {
        // Goal: a position that names no null, repeats, or lies past the frame is refused.
        let encode_with = |frame: &[u8], positions: &[u32]| {
            let mut bytes = vec![VERSION, TAG_REPLY];
            bytes.extend_from_slice(&1u64.to_le_bytes());
            bytes.extend_from_slice(&1u64.to_le_bytes());
            bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            bytes.extend_from_slice(frame);
            bytes.extend_from_slice(&(positions.len() as u32).to_le_bytes());
            for position in positions {
                bytes.extend_from_slice(&position.to_le_bytes());
            }
            Peer::decode(bytes.into())
        };
        let frame = b"*3\r\n_\r\n:1\r\n_\r\n";
        let restored = Frame::Array(vec![Frame::NullArray, Frame::Integer(1), Frame::NullArray]);
        assert_eq!(
            encode_with(frame, &[1, 3]),
            Ok(Peer::Reply { group: 1, request: 1, frame: restored })
        );
        for positions in [&[0][..], &[2], &[4], &[1, 1], &[3, 1]] {
            assert!(
                matches!(encode_with(frame, positions), Err(WireError::Invalid { .. })),
                "{positions:?} accepted"
            );
        }
    }

    #[test]
    fn large_replies_pass_and_over_deep_ones_are_refused() {
        // Goal: the RESP limits follow the frame's size (a reply line longer than a client's
        // 64 KiB header limit still travels), while nesting stays bounded.
        let long_error = Frame::Error(format!("ERR {}", "x".repeat(100_000)));
        let many = Frame::Array(vec![Frame::Integer(1); 5_000]);
        let big_bulk = Frame::Bulk(Bytes::from(vec![7u8; 1 << 20]));
        for frame in [long_error, many, big_bulk] {
            let message = Peer::Reply { group: 1, request: 1, frame };
            assert_eq!(Peer::decode(message.encode()), Ok(message));
        }
        let mut deep = Frame::Null;
        for _ in 0..=super::REPLY_DEPTH_MAX {
            deep = Frame::Array(vec![deep]);
        }
        assert_eq!(
            Peer::decode(Peer::Reply { group: 1, request: 1, frame: deep }.encode()),
            Err(WireError::Invalid { field: "reply frame", reason: "malformed RESP3" })
        );
    }

    #[test]
    fn malformed_frames_are_named_errors() {
        // Goal: each kind of malformation gives the error that describes it.
        let valid = Peer::Redirect { group: 3, request: 1, leader: Some(2) }.encode();
        let mut bytes = valid.to_vec();
        bytes[0] = 9;
        assert_eq!(Peer::decode(bytes.into()), Err(WireError::UnknownVersion(9)));
        let mut bytes = valid.to_vec();
        bytes[1] = 10;
        assert_eq!(
            Peer::decode(bytes.into()),
            Err(WireError::UnknownTag { kind: "peer message", tag: 10 })
        );
        let mut bytes = valid.to_vec();
        bytes[18] = 2;
        assert!(matches!(
            Peer::decode(bytes.into()),
            Err(WireError::Invalid { field: "has_leader", .. })
        ));
        let mut bytes = valid.to_vec();
        bytes.push(0);
        assert_eq!(Peer::decode(bytes.into()), Err(WireError::TrailingBytes(1)));

        let mut bytes =
            Peer::Forward { group: 1, request: 1, command: Command::Execute(Vec::new()) }
                .encode()
                .to_vec();
        let count_at = bytes.len() - 4;
        bytes[count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Peer::decode(bytes.into()),
            Err(WireError::Truncated { field: "argument count", .. })
        ));

        let join = Peer::Join { node: 1, peer: "é".into(), client: String::new() }.encode();
        let mut bytes = join.to_vec();
        bytes[14] = 0xFF;
        assert_eq!(
            Peer::decode(bytes.into()),
            Err(WireError::Invalid { field: "peer address", reason: "not UTF-8" })
        );

        // The engine's own errors come through unchanged.
        let consensus = Peer::Consensus { group: 1, message: raft(Body::TimeoutNow) }.encode();
        let mut bytes = consensus.to_vec();
        bytes[14] = 7;
        assert_eq!(Peer::decode(bytes.into()), Err(WireError::UnknownVersion(7)));
    }

    #[test]
    fn arguments_are_not_copied() {
        // Goal: forwarded arguments point into the received frame's buffer.
        let frame = Peer::Forward {
            group: 1,
            request: 1,
            command: Command::Execute(arguments(&["GET", "k"])),
        }
        .encode();
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let Ok(Peer::Forward { command: Command::Execute(decoded), .. }) =
            Peer::decode(frame.clone())
        else {
            panic!("decoded another variant");
        };
        assert!(decoded.iter().all(|argument| frame_range.contains(&(argument.as_ptr() as usize))));
    }

    #[test]
    fn fuzz_truncations_mutations_and_noise_never_panic() {
        // Goal: no byte string makes the decoder panic; truncations always fail; whatever a
        // mutated frame decodes to re-encodes stably.
        let mut rng = Rng::new(0xf023);
        let mut messages = every_variant();
        messages.extend((0..300).map(|_| random_message(&mut rng)));
        let mut accepted_mutations = 0;
        for message in &messages {
            let bytes = message.encode();
            for length in 0..bytes.len() {
                assert!(Peer::decode(bytes.slice(..length)).is_err(), "a prefix of {message:?}");
            }
            let mut mutated = bytes.to_vec();
            for position in 0..mutated.len() {
                let original = mutated[position];
                for value in [original ^ 1, original ^ 0x80, 0, 0xFF, rng.next_u64() as u8] {
                    mutated[position] = value;
                    if check_accepted(&mutated).is_some() {
                        accepted_mutations += 1;
                    }
                }
                mutated[position] = original;
            }
        }
        assert!(accepted_mutations > 10_000, "only {accepted_mutations} mutations decoded");
        for _ in 0..20_000 {
            let mut noise = random_bytes(&mut rng, 80).to_vec();
            // Start most noise with a valid version and tag so it reaches the bodies.
            if noise.len() > 2 && rng.chance(3, 4) {
                noise[0] = VERSION;
                noise[1] = rng.range(0, 6) as u8;
            }
            check_accepted(&noise);
        }
    }
}
