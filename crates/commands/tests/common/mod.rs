//! Helpers shared by the integration tests: command lines from words and a
//! store driven at an explicit time.
#![allow(dead_code)]

use bytes::Bytes;
use commands::{Context, Store};
use resp::Frame;

pub fn line(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
}

pub struct Harness {
    pub store: Store,
    pub now_ms: u64,
    pub seed: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness { store: Store::new(), now_ms: 1_700_000_000_000, seed: 1 }
    }

    pub fn context(&self) -> Context {
        Context { now_ms: self.now_ms, seed: self.seed }
    }

    /// Applies through the log path, and checks that the read path agrees for
    /// read-only commands.
    pub fn run(&mut self, words: &[&str]) -> Frame {
        let args = line(words);
        let context = self.context();
        let spec = commands::lookup(args[0].as_ref());
        let read = spec.filter(|spec| spec.is_readonly()).map(|_| self.store.read(&context, &args));
        let applied = self.store.apply(&context, &args);
        if let Some(read) = read {
            assert_eq!(read, applied, "read and apply disagree for {words:?}");
        }
        applied
    }
}

pub fn ok() -> Frame {
    Frame::ok()
}

pub fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

pub fn int(value: i64) -> Frame {
    Frame::Integer(value)
}

pub fn err(text: &str) -> Frame {
    Frame::Error(text.to_string())
}

pub fn array(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|item| bulk(item)).collect())
}

pub fn sorted(frame: Frame) -> Vec<Frame> {
    let mut items = match frame {
        Frame::Array(items) | Frame::Set(items) => items,
        other => panic!("not a collection: {other:?}"),
    };
    items.sort_by_key(|item| format!("{item:?}"));
    items
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";
