//! RESP2/RESP3 frames and a bounded, pure codec (no IO, no clock, no randomness).
//!
//! Three parts, each usable alone:
//!
//! - [`RequestDecoder`] turns a connection's input into commands, exactly as Redis's
//!   `processMultibulkBuffer` / `processInlineBuffer` (networking.c) do: multibulk arrays of bulk
//!   strings, or inline lines split like `sdssplitargs` (quotes and escapes). It keeps its place
//!   between calls, so a slowly arriving request is never re-parsed, and splits arguments off the
//!   buffer without copying. Its error texts are Redis's, which clients and test suites compare.
//! - [`encode`] writes any [`Frame`] in RESP3, or in RESP2 with RESP3 types downgraded the way
//!   Redis downgrades them (see [`Frame`] and [`encode`]).
//! - [`decode_frame`] parses replies of every RESP2/RESP3 type for clients and tests.
//!
//! # Limits
//!
//! Every length a peer declares is checked against [`Limits`] before anything is allocated or
//! awaited for it; a violation is a [`ProtocolError`] after which the connection is closed.
//!
//! | limit | default | why |
//! |---|---|---|
//! | `bulk_len_max` | 512 MiB | Redis's `proto-max-bulk-len`: one argument cannot claim more memory; a `$629145600` header is refused on sight. |
//! | `array_len_max` | 1 Mi | caps the argument vector (which is also preallocated to at most 1024 slots). |
//! | `inline_len_max` | 64 KiB | Redis's `PROTO_INLINE_MAX_SIZE`: caps an inline command and any header line, so a peer that never sends a line end cannot grow the buffer. |
//! | `query_buffer_max` | 1 GiB | Redis's `client-query-buffer-limit`: caps one command in total, since many maximal bulks would otherwise add up. |
//! | `depth_max` | 128 | caps reply nesting, which is walked with an explicit stack. |
//! | `unauthenticated` | 10 arguments, 16 KiB bulks | Redis's pre-`AUTH` limits ([`Limits::unauthenticated`]): a stranger cannot make the server buffer much. Lift them with [`RequestDecoder::set_limits`]`(limits.authenticated())`. |
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use resp::{decode_frame, encode, Frame, Limits, Protocol, RequestDecoder};
//!
//! // Server side: two pipelined commands, one multibulk and one inline.
//! let mut decoder = RequestDecoder::new(Limits::unauthenticated());
//! let mut input = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\nset \"a b\" 'c\\'d'\r\n"[..]);
//! let auth = decoder.decode(&mut input).unwrap().unwrap();
//! assert_eq!(auth, vec!["AUTH", "secret"]);
//! decoder.set_limits(decoder.limits().authenticated());
//! let set = decoder.decode(&mut input).unwrap().unwrap();
//! assert_eq!(set, vec!["set", "a b", "c'd"]);
//! assert_eq!(decoder.decode(&mut input).unwrap(), None);
//!
//! // Replies: a RESP3 map is a flat array for a RESP2 client.
//! let reply = Frame::Map(vec![(Frame::bulk("role"), Frame::Simple("master".into()))]);
//! let mut output = BytesMut::new();
//! encode(&reply, Protocol::Resp2, &mut output);
//! assert_eq!(&output[..], b"*2\r\n$4\r\nrole\r\n+master\r\n");
//! encode(&reply, Protocol::Resp3, &mut output);
//! decode_frame(&mut output, &Limits::default()).unwrap().unwrap();
//! assert_eq!(decode_frame(&mut output, &Limits::default()).unwrap(), Some(reply));
//!
//! // A protocol error is sent as `-ERR {error}` before closing.
//! let mut bad = BytesMut::from(&b"*1\r\n$629145600\r\n"[..]);
//! let error = RequestDecoder::default().decode(&mut bad).unwrap_err();
//! assert_eq!(format!("-ERR {error}"), "-ERR Protocol error: invalid bulk length");
//! ```

mod encode;
mod error;
mod frame;
mod limits;
mod number;
mod reply;
mod request;

pub use encode::{encode, Protocol};
pub use error::ProtocolError;
pub use frame::Frame;
pub use limits::{
    Limits, UnauthenticatedLimits, ARRAY_LEN_MAX_DEFAULT, BULK_LEN_MAX_DEFAULT, DEPTH_MAX_DEFAULT,
    INLINE_LEN_MAX_DEFAULT, INLINE_LEN_MAX_MIN, QUERY_BUFFER_MAX_DEFAULT,
    UNAUTHENTICATED_ARRAY_LEN_MAX, UNAUTHENTICATED_BULK_LEN_MAX,
};
pub use reply::decode_frame;
pub use request::{split_arguments, RequestDecoder};
