//! A minimal HTTP/1.1 keep-alive client for etcd's JSON gateway
//! (`POST /v3/kv/put`, the lease and lock services). Responses are read by `Content-Length` or chunked
//! transfer coding (RFC 9112 §6–7), every part bounded.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::base64;

/// Longest status or header line.
pub const LINE_BYTES_MAX: u64 = 8 * 1024;
/// Most header lines in one response.
pub const HEADERS_MAX: usize = 100;
/// Largest response body.
pub const BODY_BYTES_MAX: usize = 1 << 20;

/// One keep-alive connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
    request: Vec<u8>,
}

/// How the body of a response is delimited.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

impl Connection {
    pub async fn connect(address: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            host: address.to_string(),
            request: vec![],
        })
    }

    /// Puts one key; `true` when etcd answered 200.
    pub async fn etcd_put(&mut self, key: &[u8], value: &[u8]) -> Result<bool> {
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{}\"}}",
            base64::encode(key),
            base64::encode(value)
        );
        let (status, _body) = self.post_json("/v3/kv/put", &body).await?;
        Ok(status == 200)
    }

    /// Sends one `POST` with a JSON body and reads the status and body of the
    /// response.
    pub async fn post_json(&mut self, path: &str, body: &str) -> Result<(u16, Vec<u8>)> {
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                self.host,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body.as_bytes());
        self.stream
            .get_mut()
            .write_all(&self.request)
            .await
            .with_context(|| format!("POST {path}"))?;
        self.read_response().await
    }

    /// Reads one response: its status code and body.
    async fn read_response(&mut self) -> Result<(u16, Vec<u8>)> {
        let status_line = self.read_line().await?;
        let status = parse_status_line(&status_line)?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            if headers.len() == HEADERS_MAX {
                bail!("more than {HEADERS_MAX} header lines");
            }
            headers.push(line);
        }
        let body = match framing(&headers)? {
            Framing::Length(length) => self.read_exact(length).await?,
            Framing::Chunked => self.read_chunked().await?,
        };
        Ok((status, body))
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_line = self.read_line().await?;
            let size_text = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                // Trailer fields, then the empty line.
                for _ in 0..=HEADERS_MAX {
                    if self.read_line().await?.is_empty() {
                        return Ok(body);
                    }
                }
                bail!("more than {HEADERS_MAX} trailer lines");
            }
            if body.len() + size > BODY_BYTES_MAX {
                bail!("response body over {BODY_BYTES_MAX} bytes");
            }
            body.extend(self.read_exact(size).await?);
            if !self.read_line().await?.is_empty() {
                bail!("chunk not followed by CRLF");
            }
        }
    }

    async fn read_exact(&mut self, length: usize) -> Result<Vec<u8>> {
        if length > BODY_BYTES_MAX {
            bail!("response body over {BODY_BYTES_MAX} bytes");
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.context("reading a response body")?;
        Ok(body)
    }

    /// One line without its CRLF.
    async fn read_line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)
            .await
            .context("reading a response")?;
        if read == 0 {
            bail!("server closed the connection");
        }
        let Some(line) = line.strip_suffix(b"\r\n") else {
            bail!("line not terminated by CRLF (or longer than {LINE_BYTES_MAX} bytes)");
        };
        Ok(String::from_utf8_lossy(line).into_owned())
    }
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &str) -> Result<u16> {
    let mut words = line.split(' ');
    match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => {
            code.parse().with_context(|| format!("bad status line {line:?}"))
        }
        _ => bail!("bad status line {line:?}"),
    }
}

/// The value of the first `"name":"…"` string field in a JSON body. Enough
/// for etcd's gateway answers, whose fields of interest (lease IDs as decimal
/// strings, keys as base64) never contain escapes.
pub fn json_string_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let pattern = format!("\"{name}\":\"");
    let start = body.find(&pattern)? + pattern.len();
    let length = body[start..].find('"')?;
    let value = &body[start..start + length];
    (!value.contains('\\')).then(|| value.to_string())
}

/// A response to a POST always has a body delimited by one of these.
fn framing(headers: &[String]) -> Result<Framing> {
    let mut framing = None;
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("bad header line {header:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            // Chunked wins over Content-Length (RFC 9112 §6.3).
            return Ok(Framing::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            let length = value.parse().with_context(|| format!("bad Content-Length {value:?}"))?;
            framing = Some(Framing::Length(length));
        }
    }
    framing.context("response has neither Content-Length nor chunked coding")
}

#[cfg(test)]
mod tests {
    use super::{framing, json_string_field, parse_status_line, Framing};

    /// String fields are found by name; missing or escaped ones are not guessed.
    #[test]
    fn finds_json_string_fields() {
        let body = br#"{"header":{"revision":"5"},"ID":"7587","TTL":"30","key":"bG9jaw=="}"#;
        assert_eq!(json_string_field(body, "ID").as_deref(), Some("7587"));
        assert_eq!(json_string_field(body, "key").as_deref(), Some("bG9jaw=="));
        assert_eq!(json_string_field(body, "revision").as_deref(), Some("5"));
        assert_eq!(json_string_field(body, "lease"), None);
        assert_eq!(json_string_field(br#"{"key":"a\"b"}"#, "key"), None);
    }

    /// Status codes come from the second word of an HTTP/1.x status line.
    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK").unwrap(), 200);
        assert_eq!(parse_status_line("HTTP/1.1 503 Service Unavailable").unwrap(), 503);
        assert!(parse_status_line("SPDY 200").is_err());
        assert!(parse_status_line("HTTP/1.1").is_err());
    }

    /// Bodies are framed by Content-Length or chunked coding, chunked first.
    #[test]
    fn picks_the_framing() {
        let headers = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(framing(&headers(&["content-length: 12"])).unwrap(), Framing::Length(12));
        assert_eq!(
            framing(&headers(&["Content-Length: 3", "Transfer-Encoding: chunked"])).unwrap(),
            Framing::Chunked
        );
        assert!(framing(&headers(&["Content-Type: text/plain"])).is_err());
        assert!(framing(&headers(&["Content-Length: many"])).is_err());
    }
}
