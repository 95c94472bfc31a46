//! A minimal RESP2 client: commands go out as arrays of bulk strings, replies
//! are decoded into [`Value`]s by [`parse`], which first checks that a whole
//! reply has arrived ("need more bytes" is `Ok(None)`, not an error) and bounds
//! every length and the nesting depth, since the server is not trusted.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest simple-string, error or length line.
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// Largest bulk string accepted (INFO replies and stream entries fit easily).
pub const BULK_BYTES_MAX: usize = 8 << 20;
/// Most elements in one array.
pub const ARRAY_LENGTH_MAX: usize = 1 << 20;
/// Deepest nesting of arrays (XREADGROUP replies nest four deep).
pub const DEPTH_MAX: usize = 8;
/// Most unparsed bytes held while waiting for the rest of a reply.
pub const BUFFER_BYTES_MAX: usize = 64 << 20;

/// One decoded reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    /// A nil bulk string or nil array.
    Nil,
    Array(Vec<Value>),
}

impl Value {
    /// The text of an error reply, for reports.
    pub fn describe(&self) -> String {
        match self {
            Value::Error(text) => String::from_utf8_lossy(text).into_owned(),
            other => format!("{other:?}"),
        }
    }
}

/// One RESP connection.
pub struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Connection {
    pub async fn connect(address: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, request: Vec::new(), buffer: Vec::new() })
    }

    /// Adds one command to the outgoing batch (sent by [`Connection::flush`]).
    pub fn queue(&mut self, words: &[&[u8]]) {
        encode_command(&mut self.request, words);
    }

    /// Sends every queued command.
    pub async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.request).await.context("sending a command")?;
        self.request.clear();
        Ok(())
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, words: &[&[u8]]) -> Result<Value> {
        self.queue(words);
        self.flush().await?;
        self.read_value().await
    }

    /// Reads the next reply.
    pub async fn read_value(&mut self) -> Result<Value> {
        loop {
            if let Some((value, used)) = parse(&self.buffer, 0)? {
                self.buffer.drain(..used);
                return Ok(value);
            }
            if self.buffer.len() > BUFFER_BYTES_MAX {
                bail!("reply longer than {BUFFER_BYTES_MAX} bytes");
            }
            let read = self.stream.read_buf(&mut self.buffer).await.context("reading a reply")?;
            if read == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// Sends `SET key value` for every key back to back, then reads one reply
    /// per key; `true` where the reply was `+OK`, `false` for an error reply.
    pub async fn set_batch(&mut self, keys: &[Vec<u8>], value: &[u8]) -> Result<Vec<bool>> {
        for key in keys {
            self.queue(&[b"SET", key, value]);
        }
        self.flush().await?;
        let mut outcomes = Vec::with_capacity(keys.len());
        for _ in keys {
            outcomes.push(set_succeeded(&self.read_value().await?)?);
        }
        Ok(outcomes)
    }
}

/// `+OK` is success, an error reply a failed operation; anything else means
/// the server does not answer `SET` the way Redis does.
pub fn set_succeeded(value: &Value) -> Result<bool> {
    match value {
        Value::Simple(text) => Ok(text == b"OK"),
        Value::Error(_) => Ok(false),
        other => bail!("unexpected reply to SET: {other:?}"),
    }
}

/// Appends one command as a RESP array of bulk strings.
pub fn encode_command(output: &mut Vec<u8>, words: &[&[u8]]) {
    output.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for word in words {
        output.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        output.extend_from_slice(word);
        output.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply from the front of `input`: the value and the bytes it
/// used, or `None` when the reply is not complete yet. Recursion is bounded by
/// [`DEPTH_MAX`].
pub fn parse(input: &[u8], depth: usize) -> Result<Option<(Value, usize)>> {
    let Some(line_end) = input.windows(2).position(|pair| pair == b"\r\n") else {
        if input.len() > LINE_BYTES_MAX {
            bail!("reply line longer than {LINE_BYTES_MAX} bytes");
        }
        return Ok(None);
    };
    if line_end > LINE_BYTES_MAX {
        bail!("reply line longer than {LINE_BYTES_MAX} bytes");
    }
    if line_end == 0 {
        bail!("empty reply line");
    }
    let line = &input[1..line_end];
    let mut used = line_end + 2;
    let value = match input[0] {
        b'+' => Value::Simple(line.to_vec()),
        b'-' => Value::Error(line.to_vec()),
        b':' => Value::Integer(integer(line)?),
        b'$' => {
            let length = integer(line)?;
            if length == -1 {
                return Ok(Some((Value::Nil, used)));
            }
            let length = bounded_length(length, BULK_BYTES_MAX)?;
            if input.len() < used + length + 2 {
                return Ok(None);
            }
            if &input[used + length..used + length + 2] != b"\r\n" {
                bail!("bulk string not followed by CRLF");
            }
            let bulk = input[used..used + length].to_vec();
            used += length + 2;
            Value::Bulk(bulk)
        }
        b'*' => {
            let length = integer(line)?;
            if length == -1 {
                return Ok(Some((Value::Nil, used)));
            }
            let length = bounded_length(length, ARRAY_LENGTH_MAX)?;
            if depth >= DEPTH_MAX {
                bail!("arrays nested deeper than {DEPTH_MAX}");
            }
            let mut elements = Vec::with_capacity(length.min(1024));
            for _ in 0..length {
                let Some((element, element_bytes)) = parse(&input[used..], depth + 1)? else {
                    return Ok(None);
                };
                elements.push(element);
                used += element_bytes;
            }
            Value::Array(elements)
        }
        other => bail!("unexpected reply type byte {other:#04x}"),
    };
    Ok(Some((value, used)))
}

fn integer(text: &[u8]) -> Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .with_context(|| format!("bad integer {:?}", String::from_utf8_lossy(text)))
}

fn bounded_length(length: i64, maximum: usize) -> Result<usize> {
    match usize::try_from(length) {
        Ok(length) if length <= maximum => Ok(length),
        _ => bail!("length {length} outside 0..={maximum}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_command, parse, set_succeeded, Value, DEPTH_MAX};

    /// Commands are encoded as arrays of bulk strings, byte for byte.
    #[test]
    fn encodes_arrays_of_bulk_strings() {
        let mut output = Vec::new();
        encode_command(&mut output, &[b"SET", b"k", b""]);
        assert_eq!(output, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    /// Every reply type decodes, nested arrays included, and reports its length.
    #[test]
    fn decodes_every_reply_type() {
        let input = b"*3\r\n$3\r\nabc\r\n:-5\r\n*2\r\n+OK\r\n$-1\r\nrest";
        let (value, used) = parse(input, 0).unwrap().unwrap();
        assert_eq!(
            value,
            Value::Array(vec![
                Value::Bulk(b"abc".to_vec()),
                Value::Integer(-5),
                Value::Array(vec![Value::Simple(b"OK".to_vec()), Value::Nil]),
            ])
        );
        assert_eq!(&input[used..], b"rest");
        assert_eq!(parse(b"*-1\r\n", 0).unwrap().unwrap().0, Value::Nil);
        assert_eq!(parse(b"-ERR x\r\n", 0).unwrap().unwrap().0, Value::Error(b"ERR x".to_vec()));
    }

    /// A reply cut anywhere is "need more bytes", never a wrong value.
    #[test]
    fn incomplete_replies_need_more_bytes() {
        let input = b"*2\r\n$5\r\nhello\r\n:42\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut], 0).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(input, 0).unwrap().is_some());
    }

    /// Hostile lengths, depths and type bytes are refused.
    #[test]
    fn refuses_hostile_replies() {
        assert!(parse(b"$99999999999\r\n", 0).is_err());
        assert!(parse(b"*-2\r\n", 0).is_err());
        assert!(parse(b"$3\r\nabcXY", 0).is_err());
        assert!(parse(b"!3\r\n", 0).is_err());
        assert!(parse(b":x\r\n", 0).is_err());
        let deep = "*1\r\n".repeat(DEPTH_MAX + 1) + ":1\r\n";
        assert!(parse(deep.as_bytes(), 0).is_err());
        let shallow = "*1\r\n".repeat(DEPTH_MAX) + ":1\r\n";
        assert!(parse(shallow.as_bytes(), 0).unwrap().is_some());
    }

    /// Only `+OK` counts as success; errors are failures; other replies are refused.
    #[test]
    fn classifies_set_replies() {
        assert!(set_succeeded(&Value::Simple(b"OK".to_vec())).unwrap());
        assert!(!set_succeeded(&Value::Error(b"ERR no leader".to_vec())).unwrap());
        assert!(!set_succeeded(&Value::Simple(b"QUEUED".to_vec())).unwrap());
        assert!(set_succeeded(&Value::Integer(1)).is_err());
    }
}
