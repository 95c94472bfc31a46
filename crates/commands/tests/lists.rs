//! List commands, including blocking pops served or reported as would-block.
mod common;
use commands::Blocking;
use common::*;
use resp::Frame;

#[test]
fn push_pop_range() {
    // Goal: pushes, pops with counts, ranges and indexes follow Redis 7.
    let mut h = Harness::new();
    assert_eq!(h.run(&["RPUSH", "l", "one", "two", "three", "four", "five"]), int(5));
    assert_eq!(h.run(&["LPOP", "l"]), bulk("one"));
    assert_eq!(h.run(&["RPOP", "l", "2"]), array(&["five", "four"]));
    assert_eq!(h.run(&["LPOP", "l", "0"]), Frame::Array(vec![]));
    assert_eq!(h.run(&["LPOP", "none", "2"]), Frame::NullArray);
    assert_eq!(h.run(&["LPOP", "none"]), Frame::Null);
    assert_eq!(h.run(&["LPOP", "l", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(h.run(&["LPUSHX", "none", "x"]), int(0));
    assert_eq!(h.run(&["LPUSH", "l", "zero"]), int(3));
    assert_eq!(h.run(&["LRANGE", "l", "0", "-1"]), array(&["zero", "two", "three"]));
    assert_eq!(h.run(&["LRANGE", "l", "-100", "100"]), array(&["zero", "two", "three"]));
    assert_eq!(h.run(&["LRANGE", "l", "5", "10"]), array(&[]));
    assert_eq!(h.run(&["LINDEX", "l", "-1"]), bulk("three"));
    assert_eq!(h.run(&["LINDEX", "l", "3"]), Frame::Null);
    assert_eq!(h.run(&["LLEN", "l"]), int(3));
    assert_eq!(h.run(&["LSET", "l", "1", "TWO"]), ok());
    assert_eq!(h.run(&["LSET", "l", "9", "x"]), err("ERR index out of range"));
    assert_eq!(h.run(&["LSET", "none", "0", "x"]), err("ERR no such key"));
    assert_eq!(h.run(&["RPOP", "l", "3"]), array(&["three", "TWO", "zero"]));
    assert_eq!(h.run(&["EXISTS", "l"]), int(0), "empty lists are deleted");
}

#[test]
fn lrem_ltrim_linsert_lpos() {
    // Goal: the documented examples of LREM, LTRIM, LINSERT and LPOS.
    let mut h = Harness::new();
    h.run(&["RPUSH", "mylist", "hello", "hello", "foo", "hello"]);
    assert_eq!(h.run(&["LREM", "mylist", "-2", "hello"]), int(2));
    assert_eq!(h.run(&["LRANGE", "mylist", "0", "-1"]), array(&["hello", "foo"]));
    h.run(&["DEL", "mylist"]);
    h.run(&["RPUSH", "mylist", "one", "two", "three"]);
    assert_eq!(h.run(&["LTRIM", "mylist", "1", "-1"]), ok());
    assert_eq!(h.run(&["LRANGE", "mylist", "0", "-1"]), array(&["two", "three"]));
    assert_eq!(h.run(&["LINSERT", "mylist", "BEFORE", "three", "2.5"]), int(3));
    assert_eq!(h.run(&["LINSERT", "mylist", "AFTER", "three", "4"]), int(4));
    assert_eq!(h.run(&["LINSERT", "mylist", "AFTER", "nope", "4"]), int(-1));
    assert_eq!(h.run(&["LINSERT", "none", "AFTER", "a", "b"]), int(0));
    assert_eq!(h.run(&["LINSERT", "mylist", "MIDDLE", "a", "b"]), err(SYNTAX));
    assert_eq!(h.run(&["LRANGE", "mylist", "0", "-1"]), array(&["two", "2.5", "three", "4"]));
    assert_eq!(h.run(&["LTRIM", "mylist", "5", "10"]), ok());
    assert_eq!(h.run(&["EXISTS", "mylist"]), int(0));
    h.run(&["RPUSH", "mylist", "a", "b", "c", "d", "1", "2", "3", "4", "3", "3", "3"]);
    assert_eq!(h.run(&["LPOS", "mylist", "3"]), int(6));
    assert_eq!(
        h.run(&["LPOS", "mylist", "3", "COUNT", "0", "RANK", "2"]),
        Frame::Array(vec![int(8), int(9), int(10)])
    );
    assert_eq!(h.run(&["LPOS", "mylist", "3", "RANK", "-1"]), int(10));
    assert_eq!(h.run(&["LPOS", "mylist", "3", "COUNT", "2"]), Frame::Array(vec![int(6), int(8)]));
    assert_eq!(h.run(&["LPOS", "mylist", "3", "MAXLEN", "5"]), Frame::Null);
    assert_eq!(h.run(&["LPOS", "mylist", "x"]), Frame::Null);
    assert_eq!(
        h.run(&["LPOS", "mylist", "3", "RANK", "0"]),
        err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
    );
    assert_eq!(h.run(&["LPOS", "mylist", "3", "COUNT", "-1"]), err("ERR COUNT can't be negative"));
    assert_eq!(
        h.run(&["LPOS", "mylist", "3", "MAXLEN", "-1"]),
        err("ERR MAXLEN can't be negative")
    );
}

#[test]
fn lmove_and_rpoplpush() {
    // Goal: moves between lists, rotation on one list, type checks on both keys.
    let mut h = Harness::new();
    h.run(&["RPUSH", "mylist", "one", "two", "three"]);
    assert_eq!(h.run(&["LMOVE", "mylist", "myotherlist", "RIGHT", "LEFT"]), bulk("three"));
    assert_eq!(h.run(&["LMOVE", "mylist", "myotherlist", "LEFT", "RIGHT"]), bulk("one"));
    assert_eq!(h.run(&["LRANGE", "mylist", "0", "-1"]), array(&["two"]));
    assert_eq!(h.run(&["LRANGE", "myotherlist", "0", "-1"]), array(&["three", "one"]));
    assert_eq!(h.run(&["RPOPLPUSH", "myotherlist", "myotherlist"]), bulk("one"));
    assert_eq!(h.run(&["LRANGE", "myotherlist", "0", "-1"]), array(&["one", "three"]));
    assert_eq!(h.run(&["LMOVE", "none", "x", "LEFT", "LEFT"]), Frame::Null);
    assert_eq!(h.run(&["LMOVE", "mylist", "x", "UP", "LEFT"]), err(SYNTAX));
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["LMOVE", "mylist", "str", "LEFT", "LEFT"]), err(WRONGTYPE));
    assert_eq!(h.run(&["LLEN", "mylist"]), int(1), "a failed move changes nothing");
}

#[test]
fn blocking_pops() {
    // Goal: blocking commands serve when data exists, else report WouldBlock without changes.
    let mut h = Harness::new();
    let context = h.context();
    let digest = h.store.digest();
    let outcome = h.store.apply_blocking(&context, &line(&["BLPOP", "a", "b", "1.5"]));
    assert_eq!(
        outcome,
        Blocking::WouldBlock { keys: line(&["a", "b"]), timeout_ms: Some(1500), retry_args: None }
    );
    assert_eq!(h.store.digest(), digest);
    assert_eq!(h.run(&["BLPOP", "a", "0"]), Frame::NullArray, "apply gives the timeout reply");
    h.run(&["RPUSH", "b", "x", "y"]);
    let served = h.store.apply_blocking(&context, &line(&["BRPOP", "a", "b", "0"]));
    assert_eq!(served, Blocking::Served(array(&["b", "y"])));
    let moved =
        h.store.apply_blocking(&context, &line(&["BLMOVE", "b", "c", "LEFT", "RIGHT", "0"]));
    assert_eq!(moved, Blocking::Served(bulk("x")));
    let waiting = h.store.apply_blocking(&context, &line(&["BRPOPLPUSH", "b", "c", "0"]));
    assert_eq!(
        waiting,
        Blocking::WouldBlock { keys: line(&["b"]), timeout_ms: None, retry_args: None }
    );
    assert_eq!(h.run(&["BLPOP", "a", "-1"]), err("ERR timeout is negative"));
    assert_eq!(h.run(&["BLPOP", "a", "x"]), err("ERR timeout is not a float or out of range"));
    h.run(&["SET", "s", "v"]);
    assert_eq!(h.run(&["BLPOP", "s", "0"]), err(WRONGTYPE));
    assert_eq!(
        h.store.apply_blocking(&context, &line(&["GET", "s"])),
        Blocking::Served(bulk("v")),
        "non-blocking commands are always served"
    );
}
