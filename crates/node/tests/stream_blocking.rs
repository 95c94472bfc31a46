//! Blocked stream reads through a single in-memory node: XREAD BLOCK with
//! `$` and XREADGROUP BLOCK are parked, then served by the XADD that wakes
//! them.

use std::collections::BTreeMap;

use bytes::Bytes;
use consensus::raft::Raft;
use consensus::{Durable, Membership};
use node::{Command, DiskTask, Node, NodeOptions, RequestId};
use resp::Frame;

const TICK_MS: u64 = 10;

struct Single {
    node: Node<Raft>,
    disk: Durable,
    replies: BTreeMap<RequestId, Frame>,
    next_request: RequestId,
    now_ms: u64,
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
}

impl Single {
    fn new() -> Single {
        let now_ms = 1_000_000;
        let disk = Durable::default();
        let node = Node::new(
            NodeOptions::new(1),
            Raft::new,
            Membership::with_voters(1..=1),
            BTreeMap::new(),
            disk.clone(),
            now_ms,
        );
        let mut single = Single { node, disk, replies: BTreeMap::new(), next_request: 0, now_ms };
        single.flush();
        for _ in 0..200 {
            single.tick();
            if single.node.status().role == consensus::Role::Leader {
                return single;
            }
        }
        panic!("the single node never led");
    }

    fn flush(&mut self) {
        loop {
            let outbox = self.node.take_outbox();
            if outbox.is_empty() {
                return;
            }
            let mut last_write = None;
            for task in outbox.disk {
                match task {
                    DiskTask::Write(write) => {
                        self.disk.persist(write.snapshot, write.entries, write.hard_state);
                        last_write = Some(write.id);
                    }
                    DiskTask::SaveSnapshot { snapshot, .. } => self.disk.compact(snapshot),
                }
            }
            for (request, frame) in outbox.replies {
                assert!(self.replies.insert(request, frame).is_none(), "one reply per request");
            }
            if let Some(write) = last_write {
                self.node.persisted(write, self.now_ms);
            }
        }
    }

    fn tick(&mut self) {
        self.now_ms += TICK_MS;
        self.node.tick(self.now_ms);
        self.flush();
    }

    fn submit(&mut self, words: &[&str]) -> RequestId {
        self.next_request += 1;
        self.node.submit(self.next_request, Command::Execute(args(words)), self.now_ms);
        self.flush();
        self.next_request
    }

    fn wait(&mut self, request: RequestId) -> Frame {
        for _ in 0..500 {
            if let Some(frame) = self.replies.remove(&request) {
                return frame;
            }
            self.tick();
        }
        panic!("no reply to request {request}");
    }

    fn call(&mut self, words: &[&str]) -> Frame {
        let request = self.submit(words);
        self.wait(request)
    }
}

fn text(value: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(value.as_bytes()))
}

fn read_reply(key: &str, id: &str, field: &str, value: &str) -> Frame {
    Frame::Array(vec![Frame::Array(vec![
        text(key),
        Frame::Array(vec![Frame::Array(vec![
            text(id),
            Frame::Array(vec![text(field), text(value)]),
        ])]),
    ])])
}

#[test]
fn xread_block_with_dollar_gets_the_entry_that_woke_it() {
    // Goal: the retry runs with `$` pinned, so the waking XADD's entry is the one served.
    let mut single = Single::new();
    assert_eq!(single.call(&["XADD", "s", "1-0", "f", "old"]), Frame::bulk("1-0"));
    let blocked = single.submit(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    for _ in 0..3 {
        single.tick();
    }
    assert!(!single.replies.contains_key(&blocked), "nothing newer than $ yet");
    assert_eq!(single.call(&["XADD", "s", "2-0", "f", "new"]), Frame::bulk("2-0"));
    assert_eq!(single.wait(blocked), read_reply("s", "2-0", "f", "new"));
    // A non-blocking XREAD still answers at once.
    assert_eq!(single.call(&["XREAD", "STREAMS", "s", "1-0"]), read_reply("s", "2-0", "f", "new"));
}

#[test]
fn xreadgroup_block_is_served_by_a_later_xadd_and_times_out_otherwise() {
    // Goal: a parked XREADGROUP gets the new entry once; another times out with a null array.
    let mut single = Single::new();
    assert_eq!(single.call(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), Frame::ok());
    let blocked =
        single.submit(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    single.tick();
    assert!(!single.replies.contains_key(&blocked));
    assert_eq!(single.call(&["XADD", "s", "5-0", "f", "v"]), Frame::bulk("5-0"));
    assert_eq!(single.wait(blocked), read_reply("s", "5-0", "f", "v"));
    let timed =
        single.submit(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"]);
    assert_eq!(single.wait(timed), Frame::NullArray);
    let pending = single.call(&["XPENDING", "s", "g"]);
    let Frame::Array(summary) = pending else { panic!("{pending:?}") };
    assert_eq!(summary[0], Frame::Integer(1), "delivered exactly once");
}
