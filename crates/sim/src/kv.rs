//! The simulated clients' key-value state machine.
//!
//! A map of string registers with the four operations the linearizability
//! checker models (put, get, append, compare-and-set), and a session table
//! that makes retries exactly-once (Raft dissertation §6.3): each request
//! carries the client's id and a sequence number; a request at or below the
//! last sequence applied for that client is answered from the table (or
//! ignored if older) instead of being applied again. The table is part of the
//! snapshot, so deduplication survives compaction and restarts.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use check::{Op, Outcome};

/// One client request as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub client: u64,
    pub sequence: u64,
    pub op: Op,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    values: BTreeMap<String, String>,
    /// client → (last sequence applied, its outcome)
    sessions: BTreeMap<u64, (u64, Outcome)>,
    /// Index of the last applied entry.
    pub applied: u64,
}

impl Store {
    /// Applies a request from the log and returns its outcome, or `None` for
    /// a stale request the client has already given up on.
    pub fn apply(&mut self, request: &Request) -> Option<Outcome> {
        if let Some((last, outcome)) = self.sessions.get(&request.client) {
            if request.sequence == *last {
                return Some(outcome.clone());
            }
            if request.sequence < *last {
                return None;
            }
        }
        let outcome = match &request.op {
            Op::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                Outcome::Ok
            }
            Op::Get { key } => Outcome::Value(self.values.get(key).cloned()),
            Op::Append { key, value } => {
                self.values.entry(key.clone()).or_default().push_str(value);
                Outcome::Ok
            }
            Op::Cas { key, expected, new } => {
                let swapped = self.values.get(key) == expected.as_ref();
                if swapped {
                    self.values.insert(key.clone(), new.clone());
                }
                Outcome::Swapped(swapped)
            }
        };
        self.sessions.insert(request.client, (request.sequence, outcome.clone()));
        Some(outcome)
    }

    /// Serves a read without the log (after a ReadIndex round).
    pub fn read(&self, key: &str) -> Outcome {
        Outcome::Value(self.values.get(key).cloned())
    }

    /// An order-independent digest of the whole state, for convergence checks.
    pub fn digest(&self) -> u64 {
        let mut hash = Fnv::new();
        for (key, value) in &self.values {
            hash.write(key.as_bytes());
            hash.write(&[0xff]);
            hash.write(value.as_bytes());
            hash.write(&[0xfe]);
        }
        for (client, (sequence, _)) in &self.sessions {
            hash.write_u64(*client);
            hash.write_u64(*sequence);
        }
        hash.finish()
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u64_le(self.applied);
        out.put_u64_le(self.values.len() as u64);
        for (key, value) in &self.values {
            put_string(&mut out, key);
            put_string(&mut out, value);
        }
        out.put_u64_le(self.sessions.len() as u64);
        for (client, (sequence, outcome)) in &self.sessions {
            out.put_u64_le(*client);
            out.put_u64_le(*sequence);
            put_outcome(&mut out, outcome);
        }
        out.freeze()
    }

    pub fn decode(mut bytes: &[u8]) -> Store {
        let mut store = Store { applied: bytes.get_u64_le(), ..Store::default() };
        for _ in 0..bytes.get_u64_le() {
            let key = get_string(&mut bytes);
            let value = get_string(&mut bytes);
            store.values.insert(key, value);
        }
        for _ in 0..bytes.get_u64_le() {
            let client = bytes.get_u64_le();
            let sequence = bytes.get_u64_le();
            let outcome = get_outcome(&mut bytes);
            store.sessions.insert(client, (sequence, outcome));
        }
        assert!(bytes.is_empty(), "trailing bytes in a snapshot");
        store
    }
}

impl Request {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u64_le(self.client);
        out.put_u64_le(self.sequence);
        match &self.op {
            Op::Put { key, value } => {
                out.put_u8(0);
                put_string(&mut out, key);
                put_string(&mut out, value);
            }
            Op::Get { key } => {
                out.put_u8(1);
                put_string(&mut out, key);
            }
            Op::Append { key, value } => {
                out.put_u8(2);
                put_string(&mut out, key);
                put_string(&mut out, value);
            }
            Op::Cas { key, expected, new } => {
                out.put_u8(3);
                put_string(&mut out, key);
                put_option(&mut out, expected.as_deref());
                put_string(&mut out, new);
            }
        }
        out.freeze()
    }

    pub fn decode(mut bytes: &[u8]) -> Request {
        let client = bytes.get_u64_le();
        let sequence = bytes.get_u64_le();
        let op = match bytes.get_u8() {
            0 => Op::Put { key: get_string(&mut bytes), value: get_string(&mut bytes) },
            1 => Op::Get { key: get_string(&mut bytes) },
            2 => Op::Append { key: get_string(&mut bytes), value: get_string(&mut bytes) },
            3 => Op::Cas {
                key: get_string(&mut bytes),
                expected: get_option(&mut bytes),
                new: get_string(&mut bytes),
            },
            other => panic!("unknown request kind {other}"),
        };
        assert!(bytes.is_empty(), "trailing bytes in a request");
        Request { client, sequence, op }
    }
}

fn put_string(out: &mut BytesMut, text: &str) {
    out.put_u32_le(text.len() as u32);
    out.put_slice(text.as_bytes());
}

fn get_string(bytes: &mut &[u8]) -> String {
    let length = bytes.get_u32_le() as usize;
    let text = String::from_utf8(bytes[..length].to_vec()).expect("utf-8");
    bytes.advance(length);
    text
}

fn put_option(out: &mut BytesMut, text: Option<&str>) {
    match text {
        None => out.put_u8(0),
        Some(text) => {
            out.put_u8(1);
            put_string(out, text);
        }
    }
}

fn get_option(bytes: &mut &[u8]) -> Option<String> {
    match bytes.get_u8() {
        0 => None,
        _ => Some(get_string(bytes)),
    }
}

fn put_outcome(out: &mut BytesMut, outcome: &Outcome) {
    match outcome {
        Outcome::Ok => out.put_u8(0),
        Outcome::Value(value) => {
            out.put_u8(1);
            put_option(out, value.as_deref());
        }
        Outcome::Swapped(swapped) => {
            out.put_u8(2);
            out.put_u8(u8::from(*swapped));
        }
    }
}

fn get_outcome(bytes: &mut &[u8]) -> Outcome {
    match bytes.get_u8() {
        0 => Outcome::Ok,
        1 => Outcome::Value(get_option(bytes)),
        _ => Outcome::Swapped(bytes.get_u8() == 1),
    }
}

/// FNV-1a, 64-bit: a fixed hash so digests are identical on every run.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_request_is_applied_once_and_answered_with_the_first_outcome() {
        let mut store = Store::default();
        let append = Request {
            client: 1,
            sequence: 1,
            op: Op::Append { key: "k".into(), value: "x".into() },
        };
        assert_eq!(store.apply(&append), Some(Outcome::Ok));
        assert_eq!(store.apply(&append), Some(Outcome::Ok));
        assert_eq!(store.read("k"), Outcome::Value(Some("x".into())));
        let stale = Request { client: 1, sequence: 0, op: Op::Get { key: "k".into() } };
        assert_eq!(store.apply(&stale), None);
    }

    #[test]
    fn requests_and_snapshots_round_trip() {
        let mut store = Store::default();
        let requests = [
            Request { client: 1, sequence: 1, op: Op::Put { key: "a".into(), value: "1".into() } },
            Request {
                client: 2,
                sequence: 7,
                op: Op::Cas { key: "a".into(), expected: Some("1".into()), new: "2".into() },
            },
            Request { client: 3, sequence: 2, op: Op::Get { key: "b".into() } },
        ];
        for request in &requests {
            assert_eq!(&Request::decode(&request.encode()), request);
            store.apply(request);
        }
        store.applied = 3;
        let restored = Store::decode(&store.encode());
        assert_eq!(restored, store);
        assert_eq!(restored.digest(), store.digest());
    }
}
