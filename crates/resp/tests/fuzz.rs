//! Deterministic randomized testing of both decoders: random and mutated-valid inputs, fed whole
//! and split at random points. Every run uses the same seeds, so a failure reproduces; the seed
//! and case number are in every assertion message.

use bytes::{Bytes, BytesMut};
use resp::UnauthenticatedLimits;
use resp::{decode_frame, encode, Frame, Limits, Protocol, ProtocolError, RequestDecoder};

const CASES: usize = 20_000;

/// xorshift64: tiny, seeded, good enough to explore parsers.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Bytes that steer random input into the parsers' interesting branches.
const ALPHABET: &[u8] = b"*$\r\n\r\n0123456789-+?\"'\\ \tx:abcf_,#(=%~>|!;.\0\xff";

fn random_bytes(random: &mut Random, len_max: usize) -> Vec<u8> {
    let len = random.below(len_max + 1);
    (0..len)
        .map(|_| {
            if random.chance(80) {
                ALPHABET[random.below(ALPHABET.len())]
            } else {
                random.next() as u8
            }
        })
        .collect()
}

fn mutate(random: &mut Random, input: &mut Vec<u8>) {
    for _ in 0..=random.below(3) {
        let position = random.below(input.len() + 1);
        match random.below(5) {
            0 if position < input.len() => input[position] = ALPHABET[random.below(ALPHABET.len())],
            1 => {
                let inserted = random_bytes(random, 4);
                input.splice(position..position, inserted);
            }
            2 => {
                let end = (position + random.below(6)).min(input.len());
                input.drain(position..end);
            }
            3 => {
                let end = (position + random.below(12)).min(input.len());
                let copy = input[position..end].to_vec();
                input.splice(position..position, copy);
            }
            _ => input.truncate(position),
        }
    }
}

/// Sorted split points inside `len`, sometimes every byte.
fn random_splits(random: &mut Random, len: usize) -> Vec<usize> {
    if len < 200 && random.chance(10) {
        return (1..len).collect();
    }
    let mut splits: Vec<usize> = (0..random.below(5)).map(|_| random.below(len + 1)).collect();
    splits.sort_unstable();
    splits
}

fn pieces<'input>(input: &'input [u8], splits: &[usize]) -> Vec<&'input [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &split in splits {
        pieces.push(&input[start..split]);
        start = split;
    }
    pieces.push(&input[start..]);
    pieces
}

fn tight_limits() -> Limits {
    Limits {
        bulk_len_max: 24,
        array_len_max: 4,
        inline_len_max: 32,
        query_buffer_max: 96,
        depth_max: 3,
        unauthenticated: None,
    }
}

fn limit_sets() -> [Limits; 3] {
    let mut unauthenticated = tight_limits();
    unauthenticated.unauthenticated =
        Some(UnauthenticatedLimits { bulk_len_max: 8, array_len_max: 2 });
    [Limits::default(), tight_limits(), unauthenticated]
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Debug, PartialEq)]
struct RequestOutcome {
    commands: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
    consumed_bytes: usize,
}

/// Feeds `pieces` one after another, draining commands after each, and checks per command that
/// the decoder consumed at least as many bytes as the arguments it returned hold.
fn run_requests(limits: Limits, pieces: &[&[u8]], context: &str) -> RequestOutcome {
    let mut decoder = RequestDecoder::new(limits);
    let mut buffer = BytesMut::new();
    let mut fed_bytes = 0;
    let mut consumed_at_last_command = 0;
    let mut commands = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed_bytes += piece.len();
        loop {
            let result = decoder.decode(&mut buffer);
            let consumed_bytes = fed_bytes - buffer.len();
            match result {
                Ok(Some(command)) => {
                    assert!(!command.is_empty(), "{context}: empty commands are skipped");
                    let argument_bytes: usize = command.iter().map(Bytes::len).sum();
                    assert!(
                        argument_bytes < consumed_bytes - consumed_at_last_command,
                        "{context}: a command returned from fewer bytes than it holds"
                    );
                    consumed_at_last_command = consumed_bytes;
                    commands.push(command);
                }
                Ok(None) => break,
                Err(error) => {
                    // The stream is dead and says so again.
                    assert_eq!(decoder.decode(&mut buffer), Err(error.clone()), "{context}");
                    return RequestOutcome { commands, error: Some(error), consumed_bytes };
                }
            }
        }
    }
    RequestOutcome { commands, error: None, consumed_bytes: fed_bytes - buffer.len() }
}

/// A pipelined stream of valid requests and the commands it holds.
fn random_request_stream(random: &mut Random) -> (Vec<u8>, Vec<Vec<Bytes>>) {
    let mut stream = Vec::new();
    let mut commands = Vec::new();
    for _ in 0..=random.below(4) {
        match random.below(6) {
            0..=2 => {
                let count = 1 + random.below(4);
                stream.extend_from_slice(format!("*{count}\r\n").as_bytes());
                let mut command = Vec::new();
                for _ in 0..count {
                    let len_max = if random.chance(5) { 300 } else { 12 };
                    let argument: Vec<u8> =
                        (0..random.below(len_max)).map(|_| random.next() as u8).collect();
                    stream.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
                    stream.extend_from_slice(&argument);
                    stream.extend_from_slice(b"\r\n");
                    command.push(Bytes::from(argument));
                }
                commands.push(command);
            }
            3 | 4 => {
                let mut command = Vec::new();
                for index in 0..=random.below(3) {
                    if index > 0 {
                        stream.push(b' ');
                    }
                    let word: Vec<u8> =
                        (0..=random.below(6)).map(|_| b'a' + random.below(26) as u8).collect();
                    if random.chance(30) {
                        // Quoted with a space and an escaped quote inside.
                        stream.extend_from_slice(b"\"");
                        stream.extend_from_slice(&word);
                        stream.extend_from_slice(b" \\\"\"");
                        command.push(Bytes::from([&word[..], b" \""].concat()));
                    } else {
                        stream.extend_from_slice(&word);
                        command.push(Bytes::from(word));
                    }
                }
                stream.extend_from_slice(if random.chance(50) { b"\r\n" } else { b"\n" });
                commands.push(command);
            }
            _ => {
                let skipped: [&[u8]; 4] = [b"\r\n", b"\n", b"*0\r\n", b"*-1\r\n"];
                stream.extend_from_slice(skipped[random.below(skipped.len())]);
            }
        }
    }
    (stream, commands)
}

/// Goal: the request decoder never panics, never returns a command from fewer bytes than it
/// holds, gives the same outcome however its input is split, and decodes valid streams exactly.
#[test]
fn request_decoder_fuzz() {
    let seed = 0x5eed_0001;
    let mut random = Random(seed);
    for case in 0..CASES {
        let (mut input, expected) = random_request_stream(&mut random);
        let valid = match random.below(4) {
            0 => {
                input = random_bytes(&mut random, 64);
                false
            }
            1 => {
                mutate(&mut random, &mut input);
                false
            }
            _ => true,
        };
        for limits in limit_sets() {
            let context =
                format!("seed {seed:#x} case {case} input {:?}", Bytes::from(input.clone()));
            let whole = run_requests(limits, &[&input], &context);
            if valid && limits == Limits::default() {
                assert_eq!(whole.error, None, "{context}");
                assert_eq!(whole.commands, expected, "{context}");
                assert_eq!(whole.consumed_bytes, input.len(), "{context}");
            }
            let splits = random_splits(&mut random, input.len());
            let split = run_requests(limits, &pieces(&input, &splits), &context);
            assert_eq!(split, whole, "{context} splits {splits:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replies

fn random_text(random: &mut Random) -> String {
    const CHARACTERS: &[&str] = &["a", "Z", "0", " ", "-", ":", "é", "→", "\t", "OK", "ERR"];
    (0..random.below(8)).map(|_| CHARACTERS[random.below(CHARACTERS.len())]).collect()
}

fn random_double(random: &mut Random) -> f64 {
    match random.below(6) {
        0 => f64::from_bits(random.next()),
        1 => [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.0, -0.0][random.below(5)],
        2 => random.below(2000) as f64 - 1000.0,
        _ => (random.below(1_000_000) as f64 - 500_000.0) / 1000.0,
    }
}

fn random_frame(random: &mut Random, depth: usize) -> Frame {
    let leaf_only = depth == 0;
    match random.below(if leaf_only { 10 } else { 14 }) {
        0 => Frame::Simple(random_text(random)),
        1 => Frame::Error(format!("ERR {}", random_text(random))),
        2 => Frame::Integer(random.next() as i64 >> random.below(64)),
        3 => Frame::Bulk((0..random.below(20)).map(|_| random.next() as u8).collect()),
        4 => [Frame::Null, Frame::NullArray][random.below(2)].clone(),
        5 => Frame::Double(random_double(random)),
        6 => Frame::Boolean(random.chance(50)),
        7 => Frame::Verbatim {
            format: [b't', b'x', b't'],
            text: (0..random.below(20)).map(|_| random.next() as u8).collect(),
        },
        8 => {
            let sign = if random.chance(30) { "-" } else { "" };
            let digits: String =
                (0..=random.below(40)).map(|_| char::from(b'0' + random.below(10) as u8)).collect();
            Frame::BigNumber(format!("{sign}{digits}"))
        }
        9 => Frame::bulk(""),
        kind => {
            let len = random.below(4);
            let mut items =
                || (0..len).map(|_| random_frame(random, depth - 1)).collect::<Vec<_>>();
            match kind {
                10 => Frame::Array(items()),
                11 => Frame::Set(items()),
                12 => Frame::Push(items()),
                _ => {
                    let keys = items();
                    let values = items();
                    Frame::Map(keys.into_iter().zip(values).collect())
                }
            }
        }
    }
}

/// Debug output compares doubles by value and prints every NaN alike.
fn same(left: &Frame, right: &Frame) -> bool {
    format!("{left:?}") == format!("{right:?}")
}

/// `original` as a RESP3 client sees it: both nulls are `_`, which decodes as `Null`.
fn resp3_view(original: &Frame) -> Frame {
    let all = |items: &[Frame]| items.iter().map(resp3_view).collect();
    match original {
        Frame::NullArray => Frame::Null,
        Frame::Array(items) => Frame::Array(all(items)),
        Frame::Set(items) => Frame::Set(all(items)),
        Frame::Push(items) => Frame::Push(all(items)),
        Frame::Map(pairs) => Frame::Map(
            pairs.iter().map(|(key, value)| (resp3_view(key), resp3_view(value))).collect(),
        ),
        other => other.clone(),
    }
}

fn assert_encoding_decoded(original: &Frame, protocol: Protocol, decoded: &Frame, context: &str) {
    match protocol {
        Protocol::Resp3 => {
            assert!(same(decoded, &resp3_view(original)), "{context}: {original:?} got {decoded:?}")
        }
        Protocol::Resp2 => assert_downgraded(original, decoded, context),
    }
}

/// Checks that `decoded` is `original` as a RESP2 client sees it (see `encode`).
fn assert_downgraded(original: &Frame, decoded: &Frame, context: &str) {
    let mismatch = || panic!("{context}: {original:?} downgraded to {decoded:?}");
    match (original, decoded) {
        (Frame::Double(value), Frame::Bulk(text)) => {
            let parsed: f64 = std::str::from_utf8(text).unwrap().parse().unwrap();
            if !(parsed.to_bits() == value.to_bits() || parsed.is_nan() && value.is_nan()) {
                mismatch();
            }
        }
        (Frame::Boolean(value), Frame::Integer(number)) if i64::from(*value) == *number => {}
        (Frame::Verbatim { text, .. }, Frame::Bulk(bulk)) if text == bulk => {}
        (Frame::BigNumber(text), Frame::Bulk(bulk)) if text.as_bytes() == bulk => {}
        (Frame::Map(pairs), Frame::Array(items)) if pairs.len() * 2 == items.len() => {
            for (index, (key, value)) in pairs.iter().enumerate() {
                assert_downgraded(key, &items[index * 2], context);
                assert_downgraded(value, &items[index * 2 + 1], context);
            }
        }
        (
            Frame::Array(originals) | Frame::Set(originals) | Frame::Push(originals),
            Frame::Array(items),
        ) if originals.len() == items.len() => {
            for (original, item) in originals.iter().zip(items) {
                assert_downgraded(original, item, context);
            }
        }
        (original, decoded) if same(original, decoded) => {}
        _ => mismatch(),
    }
}

/// Bulk-like payload bytes a frame holds: it cannot have come from fewer wire bytes.
fn payload_bytes(frame: &Frame) -> usize {
    match frame {
        Frame::Bulk(bytes) | Frame::Verbatim { text: bytes, .. } => bytes.len(),
        Frame::BigNumber(text) => text.len(),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            items.iter().map(payload_bytes).sum()
        }
        Frame::Map(pairs) => {
            pairs.iter().map(|(key, value)| payload_bytes(key) + payload_bytes(value)).sum()
        }
        _ => 0,
    }
}

#[derive(Debug)]
struct ReplyOutcome {
    frames: Vec<Frame>,
    error: Option<ProtocolError>,
    consumed_bytes: usize,
}

fn run_replies(limits: &Limits, pieces: &[&[u8]], context: &str) -> ReplyOutcome {
    let mut buffer = BytesMut::new();
    let mut fed_bytes = 0;
    let mut frames = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed_bytes += piece.len();
        loop {
            let before = buffer.clone();
            match decode_frame(&mut buffer, limits) {
                Ok(Some(frame)) => {
                    let consumed = before.len() - buffer.len();
                    assert!(
                        consumed >= 3 + payload_bytes(&frame),
                        "{context}: {frame:?} from {consumed} bytes"
                    );
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buffer, before, "{context}: waiting consumes nothing");
                    break;
                }
                Err(error) => {
                    assert_eq!(buffer, before, "{context}: an error consumes nothing");
                    return ReplyOutcome {
                        frames,
                        error: Some(error),
                        consumed_bytes: fed_bytes - buffer.len(),
                    };
                }
            }
        }
    }
    ReplyOutcome { frames, error: None, consumed_bytes: fed_bytes - buffer.len() }
}

fn assert_same_outcome(left: &ReplyOutcome, right: &ReplyOutcome, context: &str) {
    assert_eq!(format!("{left:?}"), format!("{right:?}"), "{context}");
}

/// Goal: encode then decode returns the frame in RESP3 and its documented downgrade in RESP2,
/// consuming exactly the encoded bytes.
#[test]
fn encode_decode_round_trip() {
    let seed = 0x5eed_0002;
    let mut random = Random(seed);
    for case in 0..CASES {
        let frame = random_frame(&mut random, 3);
        let context = format!("seed {seed:#x} case {case} frame {frame:?}");
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            let mut wire = BytesMut::new();
            encode(&frame, protocol, &mut wire);
            let len = wire.len();
            wire.extend_from_slice(b"+after\r\n");
            let decoded = decode_frame(&mut wire, &Limits::default()).unwrap().unwrap();
            assert_eq!(wire.len(), 8, "{context}: consumed exactly {len} bytes");
            assert_encoding_decoded(&frame, protocol, &decoded, &context);
        }
    }
}

/// Goal: the reply decoder never panics, never consumes on `None` or error, and gives the same
/// outcome however its input is split, on random, mutated and valid streams.
#[test]
fn reply_decoder_fuzz() {
    let seed = 0x5eed_0003;
    let mut random = Random(seed);
    for case in 0..CASES {
        let mut frames = Vec::new();
        let mut input = BytesMut::new();
        for _ in 0..=random.below(3) {
            let frame = random_frame(&mut random, 3);
            let protocol = if random.chance(50) { Protocol::Resp3 } else { Protocol::Resp2 };
            encode(&frame, protocol, &mut input);
            frames.push((frame, protocol));
        }
        let mut input = input.to_vec();
        let valid = random.below(4) >= 2;
        match random.below(4) {
            _ if valid => {}
            0 => input = random_bytes(&mut random, 64),
            1 => mutate(&mut random, &mut input),
            2 => {
                // An attribute before a valid stream must not change what is decoded.
                input.splice(
                    0..0,
                    b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n".iter().copied(),
                );
            }
            _ => {}
        }
        for limits in limit_sets() {
            let context =
                format!("seed {seed:#x} case {case} input {:?}", Bytes::from(input.clone()));
            let whole = run_replies(&limits, &[&input], &context);
            if valid && limits == Limits::default() {
                assert_eq!(whole.error, None, "{context}");
                assert_eq!(whole.consumed_bytes, input.len(), "{context}");
                assert_eq!(whole.frames.len(), frames.len(), "{context}");
                for ((original, protocol), decoded) in frames.iter().zip(&whole.frames) {
                    assert_encoding_decoded(original, *protocol, decoded, &context);
                }
            }
            let splits = random_splits(&mut random, input.len());
            let split = run_replies(&limits, &pieces(&input, &splits), &context);
            assert_same_outcome(&split, &whole, &format!("{context} splits {splits:?}"));
        }
    }
}
