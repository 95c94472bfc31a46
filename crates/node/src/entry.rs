//! What a log entry's command payload holds, byte for byte.
//!
//! Every payload starts with a kind byte, then the leader's timestamp and a
//! random seed (the only clock and randomness the state machine sees), then
//! the kind's body. Integers are little-endian and fixed width; byte strings
//! are a `u32` length and the bytes.
//!
//! ```text
//! kind u8 | time_ms u64 | seed u64 | body
//! 1 Execute      body: argc u32, (len u32, bytes)*
//! 2 Transaction  body: watched u32, (key, version u64)*, commands u32, (argc, args)*
//! 3 Purge        body: keys u32, (len u32, bytes)*
//! 4 Address      body: node u64, peer address, client address
//! 5 Coordinate   body: origin node u64, origin request u64, argc u32, (len u32, bytes)*
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bounds on decoded payloads, so a corrupt entry cannot ask for a huge
/// allocation.
const ARGUMENTS_MAX: u32 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// One Redis command line.
    Execute(Vec<Bytes>),
    /// MULTI/EXEC: `watched` keys with the versions seen at WATCH time.
    Transaction { watched: Vec<(Bytes, u64)>, commands: Vec<Vec<Bytes>> },
    /// Remove keys the leader found expired (if they still are).
    Purge(Vec<Bytes>),
    /// Where a node listens, replicated so every member can reach it.
    Address { node: u64, peer: String, client: String },
    /// A coordination command (sessions, locks, elections) with the client
    /// connection it came from, which answers it if it has to wait.
    Coordinate { origin_node: u64, origin_request: u64, args: Vec<Bytes> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub time_ms: u64,
    pub seed: u64,
    pub action: Action,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed entry payload: {0}")]
pub struct DecodeError(pub &'static str);

impl Payload {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        let kind = match &self.action {
            Action::Execute(_) => 1,
            Action::Transaction { .. } => 2,
            Action::Purge(_) => 3,
            Action::Address { .. } => 4,
            Action::Coordinate { .. } => 5,
        };
        out.put_u8(kind);
        out.put_u64_le(self.time_ms);
        out.put_u64_le(self.seed);
        match &self.action {
            Action::Execute(args) => put_args(&mut out, args),
            Action::Transaction { watched, commands } => {
                out.put_u32_le(watched.len() as u32);
                for (key, version) in watched {
                    put_bytes(&mut out, key);
                    out.put_u64_le(*version);
                }
                out.put_u32_le(commands.len() as u32);
                for args in commands {
                    put_args(&mut out, args);
                }
            }
            Action::Purge(keys) => put_args(&mut out, keys),
            Action::Address { node, peer, client } => {
                out.put_u64_le(*node);
                put_bytes(&mut out, peer.as_bytes());
                put_bytes(&mut out, client.as_bytes());
            }
            Action::Coordinate { origin_node, origin_request, args } => {
                out.put_u64_le(*origin_node);
                out.put_u64_le(*origin_request);
                put_args(&mut out, args);
            }
        }
        out.freeze()
    }

    pub fn decode(bytes: &Bytes) -> Result<Payload, DecodeError> {
        let mut reader = Reader { bytes: bytes.clone() };
        let kind = reader.u8()?;
        let time_ms = reader.u64()?;
        let seed = reader.u64()?;
        let action = match kind {
            1 => Action::Execute(reader.args()?),
            2 => {
                let count = reader.count()?;
                let mut watched = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    watched.push((reader.bytes()?, reader.u64()?));
                }
                let count = reader.count()?;
                let mut commands = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    commands.push(reader.args()?);
                }
                Action::Transaction { watched, commands }
            }
            3 => Action::Purge(reader.args()?),
            4 => Action::Address {
                node: reader.u64()?,
                peer: reader.string()?,
                client: reader.string()?,
            },
            5 => Action::Coordinate {
                origin_node: reader.u64()?,
                origin_request: reader.u64()?,
                args: reader.args()?,
            },
            _ => return Err(DecodeError("unknown kind")),
        };
        if reader.bytes.has_remaining() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Payload { time_ms, seed, action })
    }
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

fn put_args(out: &mut BytesMut, args: &[Bytes]) {
    out.put_u32_le(args.len() as u32);
    for arg in args {
        put_bytes(out, arg);
    }
}

struct Reader {
    bytes: Bytes,
}

impl Reader {
    fn need(&self, count: usize) -> Result<(), DecodeError> {
        if self.bytes.remaining() < count {
            Err(DecodeError("truncated"))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.bytes.get_u8())
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.bytes.get_u64_le())
    }

    fn count(&mut self) -> Result<usize, DecodeError> {
        self.need(4)?;
        let count = self.bytes.get_u32_le();
        if count > ARGUMENTS_MAX {
            return Err(DecodeError("count too large"));
        }
        Ok(count as usize)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        self.need(4)?;
        let length = self.bytes.get_u32_le() as usize;
        self.need(length)?;
        Ok(self.bytes.split_to(length))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError("address not UTF-8"))
    }

    fn args(&mut self) -> Result<Vec<Bytes>, DecodeError> {
        let count = self.count()?;
        let mut args = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            args.push(self.bytes()?);
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn every_kind_round_trips() {
        let actions = [
            Action::Execute(args(&["SET", "k", "v"])),
            Action::Transaction {
                watched: vec![(Bytes::from_static(b"k"), 7)],
                commands: vec![args(&["INCR", "k"]), args(&["GET", "k"])],
            },
            Action::Purge(args(&["a", "b"])),
            Action::Address { node: 3, peer: "127.0.0.1:7000".into(), client: "x:1".into() },
            Action::Coordinate {
                origin_node: 2,
                origin_request: 99,
                args: args(&["LOCK.ACQUIRE", "l", "100"]),
            },
        ];
        for action in actions {
            let payload = Payload { time_ms: 1_700_000_000_000, seed: 42, action };
            assert_eq!(Payload::decode(&payload.encode()), Ok(payload));
        }
    }

    #[test]
    fn truncated_or_padded_payloads_are_refused_not_trusted() {
        let payload = Payload { time_ms: 1, seed: 2, action: Action::Execute(args(&["GET", "k"])) };
        let bytes = payload.encode();
        for cut in 0..bytes.len() {
            assert!(Payload::decode(&bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut padded = BytesMut::from(&bytes[..]);
        padded.put_u8(0);
        assert!(Payload::decode(&padded.freeze()).is_err());
        let mut huge = BytesMut::new();
        huge.put_u8(1);
        huge.put_u64_le(0);
        huge.put_u64_le(0);
        huge.put_u32_le(u32::MAX);
        assert!(Payload::decode(&huge.freeze()).is_err());
    }
}
