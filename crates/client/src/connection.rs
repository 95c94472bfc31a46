//! One TCP connection speaking RESP2: encodes commands, decodes replies in order.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::{Frame, Limits, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A connection to one server address. Replies are read in the order commands were written, so
/// any number of commands may be written before their replies are read (pipelining).
#[derive(Debug)]
pub(crate) struct Connection {
    address: String,
    stream: TcpStream,
    input: BytesMut,
    limits: Limits,
}

impl Connection {
    pub async fn connect(address: &str, timeout: Duration) -> Result<Connection> {
        let connected = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(Error::Io { address: address.to_string(), source }),
            Err(_) => {
                return Err(Error::Timeout {
                    address: address.to_string(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        };
        // Small requests must not wait for Nagle's algorithm.
        stream.set_nodelay(true).map_err(|source| Error::Io { address: address.into(), source })?;
        Ok(Connection {
            address: address.to_string(),
            stream,
            input: BytesMut::with_capacity(READ_CHUNK_BYTES),
            limits: Limits::default(),
        })
    }

    /// False if the server has closed this idle connection (or sent something unasked): it must
    /// not be reused. Never blocks.
    pub fn is_reusable(&self) -> bool {
        if !self.input.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(
            self.stream.try_read(&mut probe),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
        )
    }

    /// Writes every command, in order, with one write call.
    pub async fn send(&mut self, commands: &[Vec<Bytes>]) -> Result<()> {
        let mut output = BytesMut::new();
        for command in commands {
            let frame = Frame::Array(command.iter().cloned().map(Frame::Bulk).collect());
            resp::encode(&frame, Protocol::Resp2, &mut output);
        }
        self.stream.write_all(&output).await.map_err(|source| self.io(source))
    }

    /// Reads the next reply; `timeout` of `None` waits as long as the server takes.
    pub async fn receive(&mut self, timeout: Option<Duration>) -> Result<Frame> {
        match timeout {
            None => self.receive_unbounded().await,
            Some(limit) => match tokio::time::timeout(limit, self.receive_unbounded()).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout {
                    address: self.address.clone(),
                    timeout_ms: limit.as_millis() as u64,
                }),
            },
        }
    }

    async fn receive_unbounded(&mut self) -> Result<Frame> {
        loop {
            match resp::decode_frame(&mut self.input, &self.limits) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(source) => {
                    return Err(Error::Protocol { address: self.address.clone(), source })
                }
            }
            self.input.reserve(READ_CHUNK_BYTES);
            let read = self.stream.read_buf(&mut self.input).await.map_err(|e| self.io(e))?;
            if read == 0 {
                let closed = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                );
                return Err(self.io(closed));
            }
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { address: self.address.clone(), source }
    }
}
