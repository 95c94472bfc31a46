//! A minimal RESP client for `SET`: commands go out as RESP arrays of bulk
//! strings, replies are read as single lines (`+OK` or `-ERR …`), since `SET`
//! without options never answers anything else.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line accepted; a longer one means the server is not
/// answering `SET` the way Redis does.
pub const REPLY_LINE_BYTES_MAX: u64 = 64 * 1024;

/// One RESP connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
    line: Vec<u8>,
}

impl Connection {
    pub async fn connect(address: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::new(stream), request: Vec::new(), line: Vec::new() })
    }

    /// Sends `SET key value` for every key back to back, then reads one reply
    /// per key; `true` where the reply was `+OK`.
    pub async fn set_batch(&mut self, keys: &[Vec<u8>], value: &[u8]) -> Result<Vec<bool>> {
        self.request.clear();
        for key in keys {
            encode_command(&mut self.request, &[b"SET", key, value]);
        }
        self.stream.get_mut().write_all(&self.request).await.context("sending SET")?;
        let mut outcomes = Vec::with_capacity(keys.len());
        for _ in keys {
            outcomes.push(self.read_status().await?);
        }
        Ok(outcomes)
    }

    /// Reads one simple-string or error reply.
    async fn read_status(&mut self) -> Result<bool> {
        self.line.clear();
        let read = (&mut self.stream)
            .take(REPLY_LINE_BYTES_MAX)
            .read_until(b'\n', &mut self.line)
            .await
            .context("reading a reply")?;
        if read == 0 {
            bail!("server closed the connection");
        }
        parse_status(&self.line)
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

/// `+OK` is success, `-…` a failed operation; anything else, or a line cut
/// short, is a protocol error.
pub fn parse_status(line: &[u8]) -> Result<bool> {
    let Some(body) = line.strip_suffix(b"\r\n") else {
        bail!("reply line not terminated by CRLF (or longer than {REPLY_LINE_BYTES_MAX} bytes)");
    };
    match body.first() {
        Some(b'+') => Ok(body == b"+OK"),
        Some(b'-') => Ok(false),
        _ => bail!("unexpected reply to SET: {:?}", String::from_utf8_lossy(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_command, parse_status};

    /// Commands are encoded as arrays of bulk strings, byte for byte.
    #[test]
    fn encodes_arrays_of_bulk_strings() {
        let mut output = Vec::new();
        encode_command(&mut output, &[b"SET", b"k", b""]);
        assert_eq!(output, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    /// Only `+OK` counts as success; errors are failures; other replies are refused.
    #[test]
    fn classifies_replies() {
        assert!(parse_status(b"+OK\r\n").unwrap());
        assert!(!parse_status(b"-ERR no leader\r\n").unwrap());
        assert!(!parse_status(b"+QUEUED\r\n").unwrap());
        assert!(parse_status(b"$2\r\n").is_err());
        assert!(parse_status(b"+OK").is_err());
    }
}
