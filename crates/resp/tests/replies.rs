//! Raw-byte tests of the encoder and the reply decoder.

use bytes::{Bytes, BytesMut};
use resp::{decode_frame, encode, Frame, Limits, Protocol, ProtocolError};

fn encoded(frame: &Frame, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(frame, protocol, &mut out);
    out.to_vec()
}

fn decoded(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    decode_frame(&mut BytesMut::from(input), &Limits::default())
}

/// Goal: every frame type has Redis's RESP3 bytes and Redis's RESP2 downgrade.
#[test]
fn encodes_each_type_in_both_protocols() {
    let verbatim = Frame::Verbatim { format: *b"txt", text: Bytes::from("Some string") };
    let cases: Vec<(Frame, &[u8], &[u8])> = vec![
        (Frame::ok(), b"+OK\r\n", b"+OK\r\n"),
        (Frame::error("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
        (Frame::Integer(-42), b":-42\r\n", b":-42\r\n"),
        (Frame::bulk("hi"), b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (Frame::bulk(""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (Frame::Null, b"_\r\n", b"$-1\r\n"),
        (Frame::NullArray, b"_\r\n", b"*-1\r\n"),
        (Frame::Double(2.75), b",2.75\r\n", b"$4\r\n2.75\r\n"),
        (Frame::Double(f64::INFINITY), b",inf\r\n", b"$3\r\ninf\r\n"),
        (Frame::Double(f64::NEG_INFINITY), b",-inf\r\n", b"$4\r\n-inf\r\n"),
        (Frame::Double(f64::NAN), b",nan\r\n", b"$3\r\nnan\r\n"),
        (Frame::Double(10.0), b",10\r\n", b"$2\r\n10\r\n"),
        (Frame::Boolean(true), b"#t\r\n", b":1\r\n"),
        (Frame::Boolean(false), b"#f\r\n", b":0\r\n"),
        (verbatim, b"=15\r\ntxt:Some string\r\n", b"$11\r\nSome string\r\n"),
        (
            Frame::BigNumber("-123456789012345678901234567890".into()),
            b"(-123456789012345678901234567890\r\n",
            b"$31\r\n-123456789012345678901234567890\r\n",
        ),
        (
            Frame::Map(vec![
                (Frame::bulk("a"), Frame::Integer(1)),
                (Frame::bulk("b"), Frame::Null),
            ]),
            b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n",
            b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n",
        ),
        (Frame::Set(vec![Frame::Integer(1)]), b"~1\r\n:1\r\n", b"*1\r\n:1\r\n"),
        (
            Frame::Push(vec![Frame::bulk("message"), Frame::Array(vec![])]),
            b">2\r\n$7\r\nmessage\r\n*0\r\n",
            b"*2\r\n$7\r\nmessage\r\n*0\r\n",
        ),
    ];
    for (frame, resp3, resp2) in cases {
        assert_eq!(encoded(&frame, Protocol::Resp3), resp3, "{frame:?}");
        assert_eq!(encoded(&frame, Protocol::Resp2), resp2, "{frame:?}");
    }
}

/// Goal: CR and LF never reach a one-line reply; they become spaces as in Redis.
#[test]
fn line_replies_cannot_break_the_stream() {
    assert_eq!(encoded(&Frame::error("ERR a\r\nb\n"), Protocol::Resp2), b"-ERR a  b \r\n");
    assert_eq!(encoded(&Frame::Simple("x\ry".into()), Protocol::Resp3), b"+x y\r\n");
}

/// Goal: a nesting far deeper than any stack allows is encoded without recursion.
#[test]
fn deep_frames_encode_without_recursion() {
    let depth = 200_000;
    let mut frame = Frame::Integer(7);
    for _ in 0..depth {
        frame = Frame::Array(vec![frame]);
    }
    let mut out = BytesMut::new();
    encode(&frame, Protocol::Resp3, &mut out);
    assert_eq!(out.len(), depth * 4 + 4);
    // Drop iteratively too: the derived drop of a 200 000-deep frame would recurse.
    let mut current = frame;
    while let Frame::Array(mut items) = current {
        current = items.pop().unwrap();
    }
}

/// Goal: every RESP2/RESP3 type decodes, and so does RESP2's null array.
#[test]
fn decodes_each_type() {
    let cases: Vec<(&[u8], Frame)> = vec![
        (b"+OK\r\n", Frame::ok()),
        (b"-ERR x\r\n", Frame::error("ERR x")),
        (b"!8\r\nERR a\r\nb\r\n", Frame::error("ERR a\r\nb")),
        (b":+5\r\n", Frame::Integer(5)),
        (b"$-1\r\n", Frame::Null),
        (b"*-1\r\n", Frame::NullArray),
        (b"_\r\n", Frame::Null),
        (b",1.5\r\n", Frame::Double(1.5)),
        (b",-inf\r\n", Frame::Double(f64::NEG_INFINITY)),
        (b",1e+20\r\n", Frame::Double(1e20)),
        (b"#t\r\n", Frame::Boolean(true)),
        (b"(12345678901234567890123\r\n", Frame::BigNumber("12345678901234567890123".into())),
        (b"=8\r\nmkd:# hi\r\n", Frame::Verbatim { format: *b"mkd", text: Bytes::from("# hi") }),
        (b"$4\r\na\r\nb\r\n", Frame::bulk("a\r\nb")),
        (
            b"%1\r\n+k\r\n~2\r\n:1\r\n>0\r\n",
            Frame::Map(vec![(
                Frame::Simple("k".into()),
                Frame::Set(vec![Frame::Integer(1), Frame::Push(vec![])]),
            )]),
        ),
    ];
    for (input, expected) in cases {
        let mut buffer = BytesMut::from(input);
        assert_eq!(decode_frame(&mut buffer, &Limits::default()), Ok(Some(expected)), "{input:?}");
        assert!(buffer.is_empty());
    }
    assert!(matches!(decoded(b",nan\r\n"), Ok(Some(Frame::Double(value))) if value.is_nan()));
}

/// Goal: attributes are skipped, at the top level and inside aggregates, without counting.
#[test]
fn attributes_are_skipped() {
    let top = b"|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n";
    assert_eq!(decoded(top), Ok(Some(Frame::bulk("hi"))));
    let inner = b"*2\r\n:1\r\n|1\r\n+a\r\n*1\r\n:0\r\n:2\r\n";
    assert_eq!(decoded(inner), Ok(Some(Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]))));
    // An attribute alone is not a frame yet.
    assert_eq!(decoded(b"|1\r\n+a\r\n:1\r\n"), Ok(None));
    assert_eq!(decoded(b"|0\r\n:9\r\n"), Ok(Some(Frame::Integer(9))));
}

/// Goal: malformed replies give the matching error and never a frame.
#[test]
fn malformed_replies_are_refused() {
    let cases: Vec<(&[u8], ProtocolError)> = vec![
        (b"?\r\n", ProtocolError::UnknownReplyType(b'?')),
        (b"$?\r\n", ProtocolError::StreamedUnsupported),
        (b"*?\r\n", ProtocolError::StreamedUnsupported),
        (b";4\r\nabcd\r\n", ProtocolError::StreamedUnsupported),
        (b"$-2\r\n", ProtocolError::InvalidBulkLength),
        (b"$629145600\r\n", ProtocolError::InvalidBulkLength),
        (b"%-1\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1048577\r\n", ProtocolError::InvalidMultibulkLength),
        (b"$3\r\nabcd\r\n", ProtocolError::ExpectedLineEnd),
        (b"+OK\rX", ProtocolError::ExpectedLineEnd),
        (b":1.5\r\n", ProtocolError::InvalidInteger),
        (b",abc\r\n", ProtocolError::InvalidDouble),
        (b"#x\r\n", ProtocolError::InvalidBoolean),
        (b"_x\r\n", ProtocolError::InvalidNull),
        (b"(12a\r\n", ProtocolError::InvalidBigNumber),
        (b"=3\r\ntxt\r\n", ProtocolError::InvalidVerbatim),
        (b"=4\r\ntxt-\r\n", ProtocolError::InvalidVerbatim),
    ];
    for (input, expected) in cases {
        let mut buffer = BytesMut::from(input);
        assert_eq!(decode_frame(&mut buffer, &Limits::default()), Err(expected), "{input:?}");
        assert_eq!(&buffer[..], input, "an error leaves the buffer untouched");
    }
    let mut long_line = vec![b'+'; 64 * 1024 + 2];
    long_line[0] = b'+';
    assert_eq!(decoded(&long_line), Err(ProtocolError::ReplyLineTooBig));
}

/// Goal: nesting is bounded by `depth_max`, checked before descending, at any input depth.
#[test]
fn nesting_depth_is_bounded() {
    let limits = Limits { depth_max: 3, ..Limits::default() };
    let three = b"*1\r\n*1\r\n*1\r\n:1\r\n";
    assert!(decode_frame(&mut BytesMut::from(&three[..]), &limits).unwrap().is_some());
    let four = b"*1\r\n*1\r\n*1\r\n*0\r\n";
    assert_eq!(
        decode_frame(&mut BytesMut::from(&four[..]), &limits),
        Err(ProtocolError::NestingTooDeep(3))
    );
    // A million levels of input: refused at level 129 with the default limits, no recursion.
    let hostile = b"*1\r\n".repeat(1_000_000);
    assert_eq!(decoded(&hostile), Err(ProtocolError::NestingTooDeep(128)));
}

/// Goal: an incomplete reply is `None` at every split point and leaves the buffer untouched.
#[test]
fn partial_replies_wait() {
    let mut input = BytesMut::new();
    let frame = Frame::Array(vec![
        Frame::bulk("a\r\nb"),
        Frame::Map(vec![(
            Frame::Double(2.5),
            Frame::Verbatim { format: *b"txt", text: "t".into() },
        )]),
        Frame::Null,
    ]);
    encode(&frame, Protocol::Resp3, &mut input);
    for split in 0..input.len() {
        let mut buffer = BytesMut::from(&input[..split]);
        assert_eq!(decode_frame(&mut buffer, &Limits::default()), Ok(None), "split at {split}");
        assert_eq!(buffer.len(), split);
    }
    let mut whole = input.clone();
    whole.extend_from_slice(b"+next\r\n");
    assert_eq!(decode_frame(&mut whole, &Limits::default()), Ok(Some(frame)));
    assert_eq!(&whole[..], b"+next\r\n");
}
