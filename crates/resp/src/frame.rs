use bytes::Bytes;

/// One RESP value, as sent by clients (arrays of bulk strings, or inline
/// commands) or by the server (any type). RESP3-only types are downgraded to
/// their RESP2 forms by the encoder when the connection speaks RESP2.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK\r\n`
    Simple(String),
    /// `-ERR message\r\n`; the string includes the error code (`ERR`,
    /// `WRONGTYPE`, `MOVED` …).
    Error(String),
    /// `:42\r\n`
    Integer(i64),
    /// `$5\r\nhello\r\n`
    Bulk(Bytes),
    /// `*2\r\n…`
    Array(Vec<Frame>),
    /// RESP2 `$-1\r\n` / `*-1\r\n`, RESP3 `_\r\n`.
    Null,
    /// RESP2 `*-1\r\n` (a null array, as BLPOP's timeout reply); RESP3 `_\r\n`.
    NullArray,
    /// RESP3 `,3.14\r\n`; RESP2 bulk string.
    Double(f64),
    /// RESP3 `#t\r\n`; RESP2 integer 1/0.
    Boolean(bool),
    /// RESP3 `%2\r\n…`; RESP2 flat array of key, value, ….
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~2\r\n…`; RESP2 array.
    Set(Vec<Frame>),
    /// RESP3 `=15\r\ntxt:Some string\r\n`; RESP2 bulk string.
    Verbatim { format: [u8; 3], text: Bytes },
    /// RESP3 `(3492890328409238509324850943850943825024385\r\n`; RESP2 bulk.
    BigNumber(String),
    /// RESP3 `>2\r\n…` out-of-band push; RESP2 array.
    Push(Vec<Frame>),
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple("OK".to_string())
    }

    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Frame {
        Frame::Bulk(bytes.into())
    }
}
