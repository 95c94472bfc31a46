//! Raw-byte tests of the request decoder against Redis's behaviour and error texts.

use bytes::{Bytes, BytesMut};
use resp::{Limits, ProtocolError, RequestDecoder, UnauthenticatedLimits};

/// Feeds `input` whole and collects every command until more bytes are needed or an error.
fn decode_all(limits: Limits, input: &[u8]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
    let mut decoder = RequestDecoder::new(limits);
    let mut buffer = BytesMut::from(input);
    let mut commands = Vec::new();
    loop {
        match decoder.decode(&mut buffer) {
            Ok(Some(command)) => commands.push(command),
            Ok(None) => return (commands, None),
            Err(error) => return (commands, Some(error)),
        }
    }
}

fn error_text(limits: Limits, input: &[u8]) -> String {
    match decode_all(limits, input).1 {
        Some(error) => error.to_string(),
        None => panic!("no error for {:?}", String::from_utf8_lossy(input)),
    }
}

fn arguments(command: &[&str]) -> Vec<Bytes> {
    command.iter().map(|argument| Bytes::copy_from_slice(argument.as_bytes())).collect()
}

/// Goal: every request-side error text is Redis's, byte for byte.
#[test]
fn error_texts_are_redis_texts() {
    let default = Limits::default;
    let cases: Vec<(Limits, Vec<u8>, &str)> = vec![
        (default(), b"*x\r\n".to_vec(), "Protocol error: invalid multibulk length"),
        (default(), b"*01\r\n".to_vec(), "Protocol error: invalid multibulk length"),
        (default(), b"*1048577\r\n".to_vec(), "Protocol error: invalid multibulk length"),
        (default(), b"*1\r\n$-1\r\n".to_vec(), "Protocol error: invalid bulk length"),
        (default(), b"*1\r\n$+3\r\nfoo\r\n".to_vec(), "Protocol error: invalid bulk length"),
        (default(), b"*1\r\n$629145600\r\n".to_vec(), "Protocol error: invalid bulk length"),
        (default(), b"*1\r\nX3\r\nfoo\r\n".to_vec(), "Protocol error: expected '$', got 'X'"),
        (default(), b"*1\r\n:3\r\n".to_vec(), "Protocol error: expected '$', got ':'"),
        (default(), b"*1\r\n\r\n".to_vec(), "Protocol error: expected '$', got ' '"),
        (default(), vec![b'a'; 64 * 1024 + 2], "Protocol error: too big inline request"),
        (
            default(),
            [&b"*"[..], &vec![b'1'; 64 * 1024][..]].concat(),
            "Protocol error: too big mbulk count string",
        ),
        (
            default(),
            [&b"*1\r\n$"[..], &vec![b'1'; 64 * 1024][..]].concat(),
            "Protocol error: too big bulk count string",
        ),
        (default(), b"set \"a b\r\n".to_vec(), "Protocol error: unbalanced quotes in request"),
        (default(), b"set 'a\r\n".to_vec(), "Protocol error: unbalanced quotes in request"),
        (default(), b"set \"a\"b\r\n".to_vec(), "Protocol error: unbalanced quotes in request"),
        (default(), b"set 'a'b\n".to_vec(), "Protocol error: unbalanced quotes in request"),
        (
            Limits::unauthenticated(),
            b"*11\r\n".to_vec(),
            "Protocol error: unauthenticated multibulk length",
        ),
        (
            Limits::unauthenticated(),
            b"*1\r\n$16385\r\n".to_vec(),
            "Protocol error: unauthenticated bulk length",
        ),
        // The ordinary limit is checked first, as in Redis.
        (
            Limits::unauthenticated(),
            b"*1\r\n$629145600\r\n".to_vec(),
            "Protocol error: invalid bulk length",
        ),
        (
            Limits::unauthenticated(),
            b"*2000000\r\n".to_vec(),
            "Protocol error: invalid multibulk length",
        ),
    ];
    for (limits, input, expected) in cases {
        assert_eq!(error_text(limits, &input), expected, "{:?}", String::from_utf8_lossy(&input));
    }
}

/// Goal: the unauthenticated limits themselves are inclusive, and lifting them takes effect.
#[test]
fn unauthenticated_limits_are_inclusive_and_liftable() {
    let mut input = b"*10\r\n".to_vec();
    for _ in 0..10 {
        input.extend_from_slice(b"$16384\r\n");
        input.extend_from_slice(&[b'v'; 16384]);
        input.extend_from_slice(b"\r\n");
    }
    let (commands, error) = decode_all(Limits::unauthenticated(), &input);
    assert_eq!(error, None);
    assert_eq!(commands.len(), 1);
    assert!(commands[0].iter().all(|argument| argument.len() == 16384));

    let mut decoder = RequestDecoder::new(Limits::unauthenticated());
    decoder.set_limits(decoder.limits().authenticated());
    let mut buffer = BytesMut::from(&b"*11\r\n"[..]);
    assert_eq!(decoder.decode(&mut buffer), Ok(None));
    assert_eq!(decoder.limits().unauthenticated, None);
}

/// Goal: a 600 MiB bulk header is refused at the header, with no payload awaited or allocated.
#[test]
fn oversized_bulk_is_refused_at_the_header() {
    let mut decoder = RequestDecoder::default();
    let mut buffer = BytesMut::from(&b"*1\r\n$629145600\r\n"[..]);
    assert_eq!(decoder.decode(&mut buffer), Err(ProtocolError::InvalidBulkLength));
    assert!(buffer.capacity() < 1024, "nothing was reserved for the payload");
    // The stream is dead: the same error again, whatever follows.
    buffer.extend_from_slice(b"PING\r\n");
    assert_eq!(decoder.decode(&mut buffer), Err(ProtocolError::InvalidBulkLength));
}

/// Goal: several commands of both kinds in one buffer come out in order, blank lines skipped.
#[test]
fn pipelined_commands_in_one_buffer() {
    let input = b"*1\r\n$4\r\nPING\r\n\r\n   \r\nECHO hi\r\n*0\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\n";
    let (commands, error) = decode_all(Limits::default(), input);
    assert_eq!(error, None);
    assert_eq!(
        commands,
        vec![
            arguments(&["PING"]),
            arguments(&["ECHO", "hi"]),
            arguments(&["GET", "k"]),
            arguments(&["PING"]),
        ]
    );
}

/// Goal: inline commands split like `sdssplitargs`, quotes and escapes included.
#[test]
fn inline_quotes_and_escapes() {
    let cases: Vec<(&[u8], Vec<&[u8]>)> = vec![
        (b"set \"a b\" 'c\\'d'\r\n", vec![b"set", b"a b", b"c'd"]),
        (b"  set\tkey   value  \n", vec![b"set", b"key", b"value"]),
        (b"echo \"\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\\"\"\r\n", vec![b"echo", b"Az\n\r\t\x08\x07\\\""]),
        (b"echo \"\\xZZ\"\r\n", vec![b"echo", b"xZZ"]),
        (b"echo 'no \\n escape'\r\n", vec![b"echo", b"no \\n escape"]),
        (b"echo a\"b c\"\r\n", vec![b"echo", b"ab c"]),
        (b"echo \"\"\r\n", vec![b"echo", b""]),
        (b"echo \"a\"\t'b'\r\n", vec![b"echo", b"a", b"b"]),
        (b"echo a\x0bb\r\n", vec![b"echo", b"a\x0bb"]),
        (b"echo a\0b\r\n", vec![b"echo", b"a\0b"]),
    ];
    for (input, expected) in cases {
        let (commands, error) = decode_all(Limits::default(), input);
        assert_eq!(error, None, "{:?}", String::from_utf8_lossy(input));
        let expected: Vec<Bytes> = expected.into_iter().map(Bytes::copy_from_slice).collect();
        assert_eq!(commands, vec![expected], "{:?}", String::from_utf8_lossy(input));
    }
}

/// Goal: bulk arguments are binary-safe (CR, LF, NUL, high bytes) and split off without copying.
#[test]
fn binary_safe_bulks_without_copying() {
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\n*$").collect();
    let mut input = format!("*2\r\n$3\r\nSET\r\n${}\r\n", payload.len()).into_bytes();
    input.extend_from_slice(&payload);
    input.extend_from_slice(b"\r\n");
    let mut buffer = BytesMut::from(&input[..]);
    let start = buffer.as_ptr() as usize;
    let end = start + buffer.len();
    let command = RequestDecoder::default().decode(&mut buffer).unwrap().unwrap();
    assert_eq!(command[1], payload);
    let argument_start = command[1].as_ptr() as usize;
    assert!((start..end).contains(&argument_start), "argument points into the input buffer");
}

/// Goal: Redis's leniencies are kept: bytes after a header's CR and after a payload are skipped.
#[test]
fn redis_leniencies_are_kept() {
    let (commands, error) = decode_all(Limits::default(), b"*1\rX$3\rYfooZZ*1\r\n$1\r\nx\r\n");
    assert_eq!(error, None);
    assert_eq!(commands, vec![arguments(&["foo"]), arguments(&["x"])]);
}

/// Goal: lines exactly at the inline limit pass and one byte more fails, however split.
#[test]
fn inline_limit_boundary() {
    let limits = Limits { inline_len_max: 64, ..Limits::default() };
    let at_limit = [vec![b'a'; 64], b"\r\n".to_vec()].concat();
    assert_eq!(decode_all(limits, &at_limit).0.len(), 1);
    let over_limit = [vec![b'a'; 65], b"\r\n".to_vec()].concat();
    assert_eq!(decode_all(limits, &over_limit).1, Some(ProtocolError::InlineRequestTooBig));
    // Waiting for the LF of a line at the limit is not an error yet.
    let waiting = [vec![b'a'; 64], b"\r".to_vec()].concat();
    assert_eq!(decode_all(limits, &waiting), (vec![], None));
}

/// Goal: a command larger than `query_buffer_max` is refused at the bulk header that exceeds it.
#[test]
fn query_buffer_limit_counts_the_whole_command() {
    let limits = Limits { query_buffer_max: 64, inline_len_max: 32, ..Limits::default() };
    // 4 + 8 + 22 = 34 bytes: fits.
    let small = b"*2\r\n$2\r\nab\r\n$20\r\n01234567890123456789\r\n";
    assert_eq!(decode_all(limits, small).0.len(), 1);
    // The third header would take the command to 4 + 2 * 28 + 5 + 26 + 2 > 64 bytes.
    let big = b"*3\r\n$20\r\n01234567890123456789\r\n$20\r\n01234567890123456789\r\n$20\r\n";
    assert_eq!(decode_all(limits, big).1, Some(ProtocolError::QueryBufferFull));
}

/// Goal: splitting a pipelined buffer at every byte gives the same commands as feeding it whole,
/// and a partial multibulk is not re-parsed (its consumed bytes leave the buffer).
#[test]
fn partial_input_at_every_split_point() {
    let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\nPING\r\n\r\nset \"a b\" 'c\\'d'\r\n*1\r\n$0\r\n\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    let (whole, error) = decode_all(Limits::default(), input);
    assert_eq!(error, None);
    assert_eq!(whole.len(), 5);
    assert_eq!(whole[0], vec![Bytes::from("SET"), Bytes::from("key"), Bytes::from("va\r\nl")]);
    for first in 0..=input.len() {
        for second in first..=input.len() {
            let mut decoder = RequestDecoder::default();
            let mut buffer = BytesMut::new();
            let mut commands = Vec::new();
            for piece in [&input[..first], &input[first..second], &input[second..]] {
                buffer.extend_from_slice(piece);
                while let Some(command) = decoder.decode(&mut buffer).unwrap() {
                    commands.push(command);
                }
            }
            assert_eq!(commands, whole, "split at {first} and {second}");
            assert!(buffer.is_empty());
            assert!(decoder.is_between_commands());
        }
    }
}

/// Goal: a payload arriving one byte at a time is awaited, not re-parsed, and the count check
/// accepts the exact length only.
#[test]
fn slow_payload_is_awaited_incrementally() {
    let mut decoder = RequestDecoder::default();
    let mut buffer = BytesMut::from(&b"*1\r\n$100000\r\n"[..]);
    assert_eq!(decoder.decode(&mut buffer), Ok(None));
    assert!(buffer.is_empty(), "the headers were consumed and remembered");
    for _ in 0..100_000 {
        buffer.extend_from_slice(b"z");
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
    }
    buffer.extend_from_slice(b"\r\n");
    let command = decoder.decode(&mut buffer).unwrap().unwrap();
    assert_eq!(command[0].len(), 100_000);
}

/// Goal: custom limits with a tight array bound produce the multibulk error at the bound + 1.
#[test]
fn custom_array_limit() {
    let limits = Limits {
        array_len_max: 3,
        unauthenticated: Some(UnauthenticatedLimits { array_len_max: 2, bulk_len_max: 4 }),
        ..Limits::default()
    };
    assert_eq!(decode_all(limits, b"*4\r\n").1, Some(ProtocolError::InvalidMultibulkLength));
    assert_eq!(
        decode_all(limits, b"*3\r\n").1,
        Some(ProtocolError::UnauthenticatedMultibulkLength)
    );
    assert_eq!(decode_all(limits, b"*2\r\n").1, None);
}
