//! Stream commands: replies and errors as Redis 7, consumer groups, the
//! dead-letter and idempotent-producer extensions, blocking and determinism.
mod common;
use commands::{Blocking, Store};
use common::*;
use resp::Frame;

fn entry(id: &str, fields: &[&str]) -> Frame {
    Frame::Array(vec![bulk(id), array(fields)])
}

fn entries(items: &[(&str, &[&str])]) -> Frame {
    Frame::Array(items.iter().map(|(id, fields)| entry(id, fields)).collect())
}

/// Looks a field up in a Map reply.
fn map_field(frame: &Frame, name: &str) -> Frame {
    let Frame::Map(pairs) = frame else { panic!("not a map: {frame:?}") };
    pairs.iter().find(|(key, _)| *key == bulk(name)).map(|(_, value)| value.clone()).unwrap()
}

fn blocking(h: &mut Harness, words: &[&str]) -> Blocking {
    let context = h.context();
    h.store.apply_blocking(&context, &line(words))
}

#[test]
fn xadd_ids_and_errors() {
    // Goal: explicit, auto and ms-* ids, monotonic auto ids, and XADD's error texts.
    let mut h = Harness::new();
    h.now_ms = 1000;
    assert_eq!(h.run(&["XADD", "s", "*", "a", "1"]), bulk("1000-0"));
    assert_eq!(h.run(&["XADD", "s", "*", "a", "2"]), bulk("1000-1"));
    h.now_ms = 900; // the leader's clock went backwards
    assert_eq!(h.run(&["XADD", "s", "*", "a", "3"]), bulk("1000-2"));
    assert_eq!(h.run(&["XADD", "s", "1000-*", "a", "4"]), bulk("1000-3"));
    assert_eq!(h.run(&["XADD", "s", "2000-*", "a", "5"]), bulk("2000-0"));
    assert_eq!(h.run(&["XADD", "s", "2000-5", "a", "6"]), bulk("2000-5"));
    assert_eq!(
        h.run(&["XADD", "s", "2000-5", "a", "7"]),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(
        h.run(&["XADD", "t", "0-0", "a", "1"]),
        err("ERR The ID specified in XADD must be greater than 0-0")
    );
    assert_eq!(h.run(&["EXISTS", "t"]), int(0), "a failed XADD creates nothing");
    assert_eq!(
        h.run(&["XADD", "s", "bad", "a", "1"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(
        h.run(&["XADD", "s", "*", "a"]),
        err("ERR wrong number of arguments for 'xadd' command")
    );
    assert_eq!(h.run(&["XADD", "none", "NOMKSTREAM", "*", "a", "1"]), Frame::Null);
    assert_eq!(h.run(&["EXISTS", "none"]), int(0));
    assert_eq!(h.run(&["XLEN", "s"]), int(6));
    assert_eq!(h.run(&["TYPE", "s"]), Frame::Simple("stream".into()));
    h.run(&["SET", "str", "x"]);
    assert_eq!(h.run(&["XADD", "str", "*", "a", "1"]), err(WRONGTYPE));
    assert_eq!(h.run(&["XLEN", "str"]), err(WRONGTYPE));
    assert_eq!(
        h.run(&["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "a", "1"]),
        err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
    );
    assert_eq!(
        h.run(&["XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "a", "1"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(
        h.run(&["XADD", "s", "MAXLEN", "-1", "*", "a", "1"]),
        err("ERR The MAXLEN argument must be >= 0.")
    );
}

#[test]
fn xadd_and_xtrim_trimming() {
    // Goal: exact MAXLEN/MINID trimming, and `~` trimming only by whole 100-entry nodes.
    let mut h = Harness::new();
    for index in 1..=5 {
        h.run(&["XADD", "s", &format!("{index}-0"), "f", "v"]);
    }
    assert_eq!(h.run(&["XADD", "s", "MAXLEN", "=", "3", "6-0", "f", "v"]), bulk("6-0"));
    assert_eq!(h.run(&["XLEN", "s"]), int(3));
    assert_eq!(h.run(&["XTRIM", "s", "MINID", "5"]), int(1));
    assert_eq!(
        h.run(&["XRANGE", "s", "-", "+"]),
        entries(&[("5-0", &["f", "v"]), ("6-0", &["f", "v"])])
    );
    assert_eq!(
        h.run(&["XTRIM", "s", "LIMIT", "1"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(
        h.run(&["XTRIM", "s", "LIMIT", "0"]),
        err("ERR syntax error, XTRIM must be called with a trimming strategy")
    );
    assert_eq!(h.run(&["XTRIM", "nokey", "MAXLEN", "0"]), int(0));
    for index in 0..250 {
        h.run(&["XADD", "big", "*", "n", &index.to_string()]);
    }
    assert_eq!(h.run(&["XTRIM", "big", "MAXLEN", "~", "100"]), int(100));
    assert_eq!(h.run(&["XLEN", "big"]), int(150));
    assert_eq!(h.run(&["XTRIM", "big", "MAXLEN", "~", "100"]), int(0), "50 < one node");
    assert_eq!(h.run(&["XTRIM", "big", "MAXLEN", "~", "0", "LIMIT", "99"]), int(0));
    assert_eq!(h.run(&["XTRIM", "big", "MAXLEN", "0"]), int(150));
    assert_eq!(h.run(&["EXISTS", "big"]), int(1), "an emptied stream stays");
}

#[test]
fn xrange_and_xrevrange() {
    // Goal: ranges with -, +, incomplete and exclusive ids, COUNT, and their errors.
    let mut h = Harness::new();
    for id in ["1-1", "1-2", "2-0", "3-5"] {
        h.run(&["XADD", "s", id, "id", id]);
    }
    let all = |ids: &[&str]| Frame::Array(ids.iter().map(|id| entry(id, &["id", id])).collect());
    assert_eq!(h.run(&["XRANGE", "s", "-", "+"]), all(&["1-1", "1-2", "2-0", "3-5"]));
    assert_eq!(h.run(&["XRANGE", "s", "1", "2"]), all(&["1-1", "1-2", "2-0"]));
    assert_eq!(h.run(&["XRANGE", "s", "(1-1", "+", "COUNT", "2"]), all(&["1-2", "2-0"]));
    assert_eq!(h.run(&["XRANGE", "s", "-", "(2-0"]), all(&["1-1", "1-2"]));
    assert_eq!(h.run(&["XREVRANGE", "s", "+", "-", "COUNT", "1"]), all(&["3-5"]));
    assert_eq!(h.run(&["XREVRANGE", "s", "2", "1"]), all(&["2-0", "1-2", "1-1"]));
    assert_eq!(h.run(&["XRANGE", "s", "3", "1"]), all(&[]));
    assert_eq!(h.run(&["XRANGE", "s", "-", "+", "COUNT", "0"]), Frame::NullArray);
    assert_eq!(h.run(&["XRANGE", "none", "-", "+"]), all(&[]));
    assert_eq!(h.run(&["XRANGE", "s", "-", "+", "LIMIT", "1"]), err(SYNTAX));
    assert_eq!(
        h.run(&["XRANGE", "s", "(-", "+"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(
        h.run(&["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"]),
        err("ERR invalid start ID for the interval")
    );
    assert_eq!(h.run(&["XRANGE", "s", "-", "(0-0"]), err("ERR invalid end ID for the interval"));
    assert_eq!(h.run(&["XDEL", "s", "1-2", "9-9"]), int(1));
    assert_eq!(
        h.run(&["XDEL", "s", "bad"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(h.run(&["XRANGE", "s", "-", "+"]), all(&["1-1", "2-0", "3-5"]));
}

#[test]
fn xread_reads_after_ids() {
    // Goal: XREAD serves entries after each id, `$` means nothing yet, COUNT limits, errors.
    let mut h = Harness::new();
    h.run(&["XADD", "a", "1-0", "x", "1"]);
    h.run(&["XADD", "a", "2-0", "x", "2"]);
    h.run(&["XADD", "b", "5-0", "y", "1"]);
    assert_eq!(
        h.run(&["XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("a"), entries(&[("1-0", &["x", "1"])])]),
            Frame::Array(vec![bulk("b"), entries(&[("5-0", &["y", "1"])])]),
        ])
    );
    assert_eq!(
        h.run(&["XREAD", "STREAMS", "a", "b", "1-0", "$"]),
        Frame::Array(vec![Frame::Array(vec![bulk("a"), entries(&[("2-0", &["x", "2"])])])])
    );
    assert_eq!(h.run(&["XREAD", "STREAMS", "a", "$"]), Frame::NullArray);
    assert_eq!(h.run(&["XREAD", "STREAMS", "missing", "0"]), Frame::NullArray);
    assert_eq!(
        h.run(&["XREAD", "STREAMS", "a", "b", "0"]),
        err("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.")
    );
    assert_eq!(
        h.run(&["XREAD", "STREAMS", "a", ">"]),
        err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
    );
    assert_eq!(h.run(&["XREAD", "COUNT", "1", "a", "0"]), err(SYNTAX));
    assert_eq!(
        h.run(&["XREAD", "BLOCK", "-1", "STREAMS", "a", "0"]),
        err("ERR timeout is negative")
    );
}

#[test]
fn xread_block_pins_dollar() {
    // Goal: XREAD BLOCK with `$` would block unchanged and asks retries to use the resolved id.
    let mut h = Harness::new();
    h.run(&["XADD", "a", "7-0", "x", "1"]);
    let digest = h.store.digest();
    let outcome = blocking(&mut h, &["XREAD", "BLOCK", "100", "STREAMS", "a", "b", "$", "0"]);
    assert_eq!(
        outcome,
        Blocking::WouldBlock {
            keys: line(&["a", "b"]),
            timeout_ms: Some(100),
            retry_args: Some(line(&["XREAD", "BLOCK", "100", "STREAMS", "a", "b", "7-0", "0"])),
        }
    );
    assert_eq!(h.store.digest(), digest, "blocking changed nothing");
    let Blocking::WouldBlock { retry_args: Some(retry), .. } = outcome else { unreachable!() };
    h.run(&["XADD", "a", "8-0", "x", "2"]);
    h.run(&["XADD", "a", "9-0", "x", "3"]);
    let context = h.context();
    assert_eq!(
        h.store.apply_blocking(&context, &retry),
        Blocking::Served(Frame::Array(vec![Frame::Array(vec![
            bulk("a"),
            entries(&[("8-0", &["x", "2"]), ("9-0", &["x", "3"])]),
        ])]))
    );
    let outcome = blocking(&mut h, &["XREAD", "BLOCK", "0", "STREAMS", "b", "0"]);
    assert_eq!(
        outcome,
        Blocking::WouldBlock { keys: line(&["b"]), timeout_ms: None, retry_args: None }
    );
    assert_eq!(
        h.run(&["XREAD", "BLOCK", "0", "STREAMS", "b", "0"]),
        Frame::NullArray,
        "MULTI form"
    );
}

#[test]
fn group_lifecycle() {
    // Goal: create, deliver, pending, ack, history, claim after idle; exact delivery counts.
    let mut h = Harness::new();
    h.now_ms = 10_000;
    assert_eq!(
        h.run(&["XGROUP", "CREATE", "s", "g", "$"]),
        err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
    );
    assert_eq!(h.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), ok());
    assert_eq!(h.run(&["XLEN", "s"]), int(0));
    assert_eq!(
        h.run(&["XGROUP", "CREATE", "s", "g", "$"]),
        err("BUSYGROUP Consumer Group name already exists")
    );
    for id in ["1-0", "2-0", "3-0"] {
        h.run(&["XADD", "s", id, "k", id]);
    }
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            entries(&[("1-0", &["k", "1-0"]), ("2-0", &["k", "2-0"])]),
        ])])
    );
    h.now_ms += 50;
    h.run(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]);
    assert_eq!(
        h.run(&["XPENDING", "s", "g"]),
        Frame::Array(vec![
            int(3),
            bulk("1-0"),
            bulk("3-0"),
            Frame::Array(vec![
                Frame::Array(vec![bulk("alice"), bulk("2")]),
                Frame::Array(vec![bulk("bob"), bulk("1")]),
            ]),
        ])
    );
    h.now_ms += 100;
    assert_eq!(
        h.run(&["XPENDING", "s", "g", "-", "+", "10"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("1-0"), bulk("alice"), int(150), int(1)]),
            Frame::Array(vec![bulk("2-0"), bulk("alice"), int(150), int(1)]),
            Frame::Array(vec![bulk("3-0"), bulk("bob"), int(100), int(1)]),
        ])
    );
    assert_eq!(
        h.run(&["XPENDING", "s", "g", "IDLE", "120", "-", "+", "10", "alice"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("1-0"), bulk("alice"), int(150), int(1)]),
            Frame::Array(vec![bulk("2-0"), bulk("alice"), int(150), int(1)]),
        ])
    );
    // History read: redelivery raises the count.
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            entries(&[("1-0", &["k", "1-0"]), ("2-0", &["k", "2-0"])]),
        ])])
    );
    assert_eq!(h.run(&["XACK", "s", "g", "1-0", "9-0"]), int(1));
    assert_eq!(
        h.run(&["XACK", "s", "g", "bad"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(h.run(&["XACK", "s", "nogroup", "1-0"]), int(0));
    // Claim bob's entry after it idled 100 ms.
    assert_eq!(h.run(&["XCLAIM", "s", "g", "alice", "200", "3-0"]), Frame::Array(vec![]));
    assert_eq!(
        h.run(&["XCLAIM", "s", "g", "alice", "100", "3-0"]),
        entries(&[("3-0", &["k", "3-0"])])
    );
    assert_eq!(
        h.run(&["XPENDING", "s", "g", "-", "+", "10"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("2-0"), bulk("alice"), int(0), int(2)]),
            Frame::Array(vec![bulk("3-0"), bulk("alice"), int(0), int(2)]),
        ])
    );
    assert_eq!(
        h.run(&["XCLAIM", "s", "g", "carol", "0", "2-0", "JUSTID", "IDLE", "500"]),
        Frame::Array(vec![bulk("2-0")])
    );
    assert_eq!(
        h.run(&["XPENDING", "s", "g", "-", "+", "1"]),
        Frame::Array(vec![Frame::Array(vec![bulk("2-0"), bulk("carol"), int(500), int(2)])])
    );
    assert_eq!(
        h.run(&["XCLAIM", "s", "g", "carol", "0", "3-0", "BOGUS"]),
        err("ERR Unrecognized XCLAIM option 'BOGUS'")
    );
    assert_eq!(
        h.run(&["XCLAIM", "s", "nogroup", "c", "0", "3-0"]),
        err("NOGROUP No such key 's' or consumer group 'nogroup'")
    );
    assert_eq!(h.run(&["XGROUP", "DELCONSUMER", "s", "g", "carol"]), int(1));
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "dave"]), int(1));
    assert_eq!(h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "dave"]), int(0));
    assert_eq!(h.run(&["XGROUP", "DESTROY", "s", "g"]), int(1));
    assert_eq!(h.run(&["XGROUP", "DESTROY", "s", "g"]), int(0));
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]),
        err("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option")
    );
}

#[test]
fn noack_setid_and_deleted_history() {
    // Goal: NOACK creates no PEL entries; SETID rewinds; deleted entries come back as nil.
    let mut h = Harness::new();
    for id in ["1-0", "2-0"] {
        h.run(&["XADD", "s", id, "f", "v"]);
    }
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"]);
    assert_eq!(
        h.run(&["XPENDING", "s", "g"]),
        Frame::Array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
    );
    assert_eq!(h.run(&["XGROUP", "SETID", "s", "g", "0"]), ok());
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    h.run(&["XDEL", "s", "1-0"]);
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![
                Frame::Array(vec![bulk("1-0"), Frame::NullArray]),
                entry("2-0", &["f", "v"]),
            ]),
        ])])
    );
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"]),
        err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
    );
    // XAUTOCLAIM drops the deleted id and reports it in the third element.
    assert_eq!(
        h.run(&["XAUTOCLAIM", "s", "g", "other", "0", "0", "COUNT", "1"]),
        Frame::Array(vec![bulk("2-0"), Frame::Array(vec![]), array(&["1-0"])])
    );
    assert_eq!(
        h.run(&["XAUTOCLAIM", "s", "g", "other", "0", "0", "COUNT", "1"]),
        Frame::Array(vec![bulk("0-0"), entries(&[("2-0", &["f", "v"])]), Frame::Array(vec![])])
    );
    assert_eq!(
        h.run(&["XAUTOCLAIM", "s", "g", "other", "0", "0", "COUNT", "0"]),
        err("ERR COUNT must be > 0")
    );
}

#[test]
fn xreadgroup_block_changes_nothing() {
    // Goal: XREADGROUP `>` with nothing new would block without creating consumers or PEL entries.
    let mut h = Harness::new();
    h.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let digest = h.store.digest();
    let outcome =
        blocking(&mut h, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"]);
    assert_eq!(
        outcome,
        Blocking::WouldBlock { keys: line(&["s"]), timeout_ms: Some(50), retry_args: None }
    );
    assert_eq!(h.store.digest(), digest);
    assert_eq!(h.run(&["XINFO", "CONSUMERS", "s", "g"]), Frame::Array(vec![]));
    h.run(&["XADD", "s", "1-0", "f", "v"]);
    let served =
        blocking(&mut h, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"]);
    assert_eq!(
        served,
        Blocking::Served(Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            entries(&[("1-0", &["f", "v"])])
        ])]))
    );
    let again =
        blocking(&mut h, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"]);
    assert!(matches!(again, Blocking::WouldBlock { .. }), "the entry went to the first reader");
}

#[test]
fn dead_letters_after_max_deliveries() {
    // Goal: an entry delivered max_deliveries times moves to the dead-letter stream on the next try.
    let mut h = Harness::new();
    h.now_ms = 5_000;
    h.run(&["XADD", "{q}", "1-0", "job", "a"]);
    h.run(&["XGROUP", "CREATE", "{q}", "g", "0"]);
    assert_eq!(
        h.run(&["XGROUP", "SETDEADLETTER", "{q}", "g", "2", "other"]),
        err(
            "ERR the dead-letter key must hash to the stream's slot: give both the same {hash tag}"
        )
    );
    assert_eq!(h.run(&["XGROUP", "SETDEADLETTER", "{q}", "g", "2", "{q}:dead"]), ok());
    let groups = h.run(&["XINFO", "GROUPS", "{q}"]);
    let Frame::Array(groups) = groups else { panic!() };
    assert_eq!(map_field(&groups[0], "max-deliveries"), int(2));
    assert_eq!(map_field(&groups[0], "dead-letter-key"), bulk("{q}:dead"));
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", ">"]); // delivery 1
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", "0"]); // delivery 2
    h.now_ms = 6_000;
    // Delivery 3 would exceed 2: dead-lettered instead of claimed.
    assert_eq!(h.run(&["XCLAIM", "{q}", "g", "d", "0", "1-0"]), Frame::Array(vec![]));
    assert_eq!(
        h.run(&["XPENDING", "{q}", "g"]).clone(),
        Frame::Array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
    );
    assert_eq!(
        h.run(&["XRANGE", "{q}:dead", "-", "+"]),
        entries(&[(
            "6000-0",
            &["job", "a", "dead-letter-of", "{q}", "group", "g", "id", "1-0", "deliveries", "2"],
        )])
    );
    // History reads and XAUTOCLAIM apply the same policy; JUSTID does not count.
    h.run(&["XADD", "{q}", "2-0", "job", "b"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", ">"]);
    assert_eq!(h.run(&["XCLAIM", "{q}", "g", "c", "0", "2-0", "JUSTID"]), array(&["2-0"]));
    h.run(&["XAUTOCLAIM", "{q}", "g", "c", "0", "0"]); // delivery 2
    let history = h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", "0"]);
    assert_eq!(history, Frame::Array(vec![Frame::Array(vec![bulk("{q}"), Frame::Array(vec![])])]));
    assert_eq!(h.run(&["XLEN", "{q}:dead"]), int(2));
    // Disabled again, redelivery goes on.
    assert_eq!(h.run(&["XGROUP", "SETDEADLETTER", "{q}", "g", "0"]), ok());
    h.run(&["XADD", "{q}", "3-0", "job", "c"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", ">"]);
    for _ in 0..3 {
        h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "{q}", "0"]);
    }
    let pending = h.run(&["XPENDING", "{q}", "g", "-", "+", "1"]);
    assert_eq!(
        pending,
        Frame::Array(vec![Frame::Array(vec![bulk("3-0"), bulk("c"), int(0), int(4)])])
    );
    // A wrong-typed dead-letter key fails the command before any change.
    h.run(&["XGROUP", "SETDEADLETTER", "{q}", "g", "1", "{q}:str"]);
    h.run(&["SET", "{q}:str", "x"]);
    assert_eq!(h.run(&["XCLAIM", "{q}", "g", "c", "0", "3-0"]), err(WRONGTYPE));
}

#[test]
fn idempotent_producers() {
    // Goal: a retried XADD with the same producer and seq returns the first id and adds nothing.
    let mut h = Harness::new();
    h.now_ms = 100;
    assert_eq!(h.run(&["XADD", "s", "IDEMPOTENT", "p1", "1", "*", "f", "a"]), bulk("100-0"));
    h.now_ms = 200;
    assert_eq!(h.run(&["XADD", "s", "IDEMPOTENT", "p1", "1", "*", "f", "a"]), bulk("100-0"));
    assert_eq!(h.run(&["XLEN", "s"]), int(1));
    assert_eq!(
        h.run(&["XADD", "s", "IDEMPOTENT", "p1", "2", "MAXLEN", "5", "*", "f", "b"]),
        bulk("200-0")
    );
    assert_eq!(
        h.run(&["XADD", "s", "IDEMPOTENT", "p1", "1", "*", "f", "a"]),
        err("ERR IDEMPOTENT sequence 1 is lower than the last one seen for producer 'p1' (2)")
    );
    assert_eq!(h.run(&["XADD", "s", "IDEMPOTENT", "p2", "1", "*", "f", "c"]), bulk("200-1"));
    assert_eq!(
        h.run(&["XADD", "s", "IDEMPOTENT", "p2", "-1", "*", "f", "c"]),
        err("ERR IDEMPOTENT sequence must be a non-negative integer")
    );
    // The table survives a snapshot.
    let restored = Store::restore(&h.store.snapshot()).unwrap();
    h.store = restored;
    assert_eq!(h.run(&["XADD", "s", "IDEMPOTENT", "p2", "1", "*", "f", "c"]), bulk("200-1"));
    assert_eq!(h.run(&["XLEN", "s"]), int(3));
}

#[test]
fn xinfo_reports() {
    // Goal: XINFO STREAM, FULL, GROUPS and CONSUMERS report Redis's fields.
    let mut h = Harness::new();
    h.now_ms = 1_000;
    h.run(&["XADD", "s", "1-0", "a", "1"]);
    h.run(&["XADD", "s", "2-0", "b", "2"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"]);
    h.now_ms = 1_250;
    let info = h.run(&["XINFO", "STREAM", "s"]);
    assert_eq!(map_field(&info, "length"), int(2));
    assert_eq!(map_field(&info, "last-generated-id"), bulk("2-0"));
    assert_eq!(map_field(&info, "entries-added"), int(2));
    assert_eq!(map_field(&info, "groups"), int(1));
    assert_eq!(map_field(&info, "first-entry"), entry("1-0", &["a", "1"]));
    assert_eq!(map_field(&info, "last-entry"), entry("2-0", &["b", "2"]));
    let Frame::Array(groups) = h.run(&["XINFO", "GROUPS", "s"]) else { panic!() };
    assert_eq!(map_field(&groups[0], "pending"), int(1));
    assert_eq!(map_field(&groups[0], "last-delivered-id"), bulk("1-0"));
    assert_eq!(map_field(&groups[0], "entries-read"), int(1));
    assert_eq!(map_field(&groups[0], "lag"), int(1));
    assert_eq!(map_field(&groups[0], "max-deliveries"), Frame::Null);
    let Frame::Array(consumers) = h.run(&["XINFO", "CONSUMERS", "s", "g"]) else { panic!() };
    assert_eq!(map_field(&consumers[0], "idle"), int(250));
    assert_eq!(map_field(&consumers[0], "inactive"), int(250));
    let full = h.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "1"]);
    assert_eq!(map_field(&full, "entries"), entries(&[("1-0", &["a", "1"])]));
    assert_eq!(h.run(&["XINFO", "STREAM", "none"]), err("ERR no such key"));
    assert_eq!(
        h.run(&["XINFO", "CONSUMERS", "s", "x"]),
        err("NOGROUP No such consumer group 'x' for key name 's'")
    );
}

#[test]
fn determinism_and_snapshots() {
    // Goal: the same commands give the same replies and digest, also across a snapshot mid-way.
    let script: Vec<Vec<&str>> = vec![
        vec!["XADD", "{s}", "*", "f", "1"],
        vec!["XGROUP", "CREATE", "{s}", "g", "0"],
        vec!["XADD", "{s}", "IDEMPOTENT", "p", "1", "*", "f", "2"],
        vec!["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "{s}", ">"],
        vec!["XGROUP", "SETDEADLETTER", "{s}", "g", "2", "{s}:dead"],
        vec!["XADD", "{s}", "*", "f", "3"],
        vec!["XADD", "{s}", "IDEMPOTENT", "p", "1", "*", "f", "2"],
        vec!["XDEL", "{s}", "1700000000021-0"],
        vec!["XREADGROUP", "GROUP", "g", "d", "STREAMS", "{s}", ">"],
        vec!["XAUTOCLAIM", "{s}", "g", "e", "10", "0"],
        vec!["XCLAIM", "{s}", "g", "c", "0", "1700000000007-0"],
        vec!["XREADGROUP", "GROUP", "g", "d", "STREAMS", "{s}", "0"],
        vec!["XACK", "{s}", "g", "1700000000035-0"],
        vec!["XINFO", "STREAM", "{s}", "FULL"],
        vec!["XINFO", "GROUPS", "{s}"],
        vec!["XRANGE", "{s}:dead", "-", "+"],
        vec!["XPENDING", "{s}", "g", "-", "+", "10"],
    ];
    let run_all = |split: Option<usize>| {
        let mut h = Harness::new();
        let mut replies = Vec::new();
        for (index, words) in script.iter().enumerate() {
            if split == Some(index) {
                let bytes = h.store.snapshot();
                let restored = Store::restore(&bytes).unwrap();
                assert_eq!(restored.digest(), h.store.digest());
                assert_eq!(restored.snapshot(), bytes);
                h.store = restored;
            }
            h.now_ms += 7;
            h.seed += 1;
            replies.push(h.run(words));
        }
        (replies, h.store.digest())
    };
    let (replies, digest) = run_all(None);
    assert!(replies.iter().all(|reply| !matches!(reply, Frame::Error(_))), "{replies:?}");
    assert!(matches!(&replies[15], Frame::Array(letters) if letters.len() == 1), "{replies:?}");
    for split in 0..script.len() {
        assert_eq!(run_all(Some(split)), (replies.clone(), digest), "split at {split}");
    }
    let mut other = Harness::new();
    other.run(&["XADD", "s", "*", "f", "1"]);
    assert_ne!(other.store.digest(), digest, "the digest sees stream content");
    assert!(Store::restore(b"COHORTKV").is_err());
}

#[test]
fn streams_work_with_key_commands() {
    // Goal: DEL, EXISTS, EXPIRE, RENAME and WATCH versions treat streams like any key.
    let mut h = Harness::new();
    h.run(&["XADD", "s", "1-0", "f", "v"]);
    let version = h.store.key_version(b"s", h.now_ms);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    assert_ne!(h.store.key_version(b"s", h.now_ms), version);
    assert_eq!(h.run(&["EXPIRE", "s", "10"]), int(1));
    assert_eq!(h.run(&["RENAME", "s", "t"]), ok());
    assert_eq!(h.run(&["XLEN", "t"]), int(1));
    h.now_ms += 11_000;
    assert_eq!(h.run(&["EXISTS", "t"]), int(0));
    h.run(&["XADD", "u", "1-0", "f", "v"]);
    assert_eq!(h.run(&["DEL", "u"]), int(1));
    assert_eq!(h.run(&["XLEN", "u"]), int(0));
    h.run(&["LPUSH", "l", "x"]);
    assert_eq!(h.run(&["XRANGE", "l", "-", "+"]), err(WRONGTYPE));
    assert_eq!(h.run(&["XGROUP", "CREATE", "l", "g", "$"]), err(WRONGTYPE));
    assert_eq!(h.run(&["XREAD", "STREAMS", "l", "0"]), err(WRONGTYPE));
}
