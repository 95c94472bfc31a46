//! String commands: Redis 7 semantics, documented examples and exact error texts.
mod common;
use common::*;
use resp::Frame;

#[test]
fn set_get_and_options() {
    // Goal: SET's NX/XX/GET/KEEPTTL/expiry options behave as in Redis 7.
    let mut h = Harness::new();
    assert_eq!(h.run(&["SET", "k", "v"]), ok());
    assert_eq!(h.run(&["GET", "k"]), bulk("v"));
    assert_eq!(h.run(&["SET", "k", "w", "NX"]), Frame::Null);
    assert_eq!(h.run(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
    assert_eq!(h.run(&["SET", "missing", "w", "XX"]), Frame::Null);
    assert_eq!(h.run(&["SET", "new", "w", "NX", "GET"]), Frame::Null);
    assert_eq!(h.run(&["GET", "new"]), bulk("w"));
    assert_eq!(h.run(&["SET", "k", "x", "EX", "10"]), ok());
    assert_eq!(h.run(&["TTL", "k"]), int(10));
    assert_eq!(h.run(&["SET", "k", "y", "KEEPTTL"]), ok());
    assert_eq!(h.run(&["PTTL", "k"]), int(10_000));
    assert_eq!(h.run(&["SET", "k", "z"]), ok());
    assert_eq!(h.run(&["TTL", "k"]), int(-1));
    let at = (h.now_ms + 5_000).to_string();
    assert_eq!(h.run(&["SET", "k", "z", "pxat", &at]), ok());
    assert_eq!(h.run(&["PEXPIRETIME", "k"]), int(h.now_ms as i64 + 5_000));
}

#[test]
fn set_errors_are_redis_texts() {
    // Goal: invalid SET combinations reply with Redis's exact errors.
    let mut h = Harness::new();
    assert_eq!(h.run(&["SET", "k", "v", "NX", "XX"]), err(SYNTAX));
    assert_eq!(h.run(&["SET", "k", "v", "EX", "1", "PX", "1"]), err(SYNTAX));
    assert_eq!(h.run(&["SET", "k", "v", "EX"]), err(SYNTAX));
    assert_eq!(h.run(&["SET", "k", "v", "KEEPTTL", "EX", "1"]), err(SYNTAX));
    assert_eq!(h.run(&["SET", "k", "v", "EX", "x"]), err(NOT_INTEGER));
    assert_eq!(
        h.run(&["SET", "k", "v", "EX", "0"]),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        h.run(&["SET", "k", "v", "EX", "9223372036854775"]),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(h.run(&["SET", "k"]), err("ERR wrong number of arguments for 'set' command"));
    assert_eq!(h.run(&["GET", "k", "x"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(
        h.run(&["SETEX", "k", "-1", "v"]),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        h.run(&["PSETEX", "k", "0", "v"]),
        err("ERR invalid expire time in 'psetex' command")
    );
    h.run(&["LPUSH", "list", "a"]);
    assert_eq!(h.run(&["SET", "list", "v", "GET"]), err(WRONGTYPE));
    assert_eq!(h.run(&["TYPE", "list"]), Frame::Simple("list".into()));
    assert_eq!(h.run(&["GET", "list"]), err(WRONGTYPE));
    assert_eq!(h.run(&["SET", "list", "v"]), ok());
}

#[test]
fn unknown_command_text() {
    // Goal: the unknown-command error matches Redis 7 byte for byte.
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["foo", "a", "b"]),
        err("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(h.run(&["foo"]), err("ERR unknown command 'foo', with args beginning with: "));
}

#[test]
fn counters() {
    // Goal: INCR family arithmetic, overflow and parse errors match Redis.
    let mut h = Harness::new();
    h.run(&["SET", "mykey", "10"]);
    assert_eq!(h.run(&["INCR", "mykey"]), int(11));
    assert_eq!(h.run(&["GET", "mykey"]), bulk("11"));
    assert_eq!(h.run(&["DECRBY", "mykey", "3"]), int(8));
    assert_eq!(h.run(&["DECR", "fresh"]), int(-1));
    h.run(&["SET", "max", "9223372036854775807"]);
    assert_eq!(h.run(&["INCR", "max"]), err("ERR increment or decrement would overflow"));
    assert_eq!(
        h.run(&["DECRBY", "x", "-9223372036854775808"]),
        err("ERR decrement would overflow")
    );
    h.run(&["SET", "text", "abc"]);
    assert_eq!(h.run(&["INCR", "text"]), err(NOT_INTEGER));
    assert_eq!(h.run(&["INCRBY", "mykey", "1.5"]), err(NOT_INTEGER));
    h.run(&["SET", "f", "10.50"]);
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
    h.run(&["SET", "f", "5.0e3"]);
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "2.0e2"]), bulk("5200"));
    assert_eq!(h.run(&["INCRBYFLOAT", "f", "x"]), err("ERR value is not a valid float"));
    assert_eq!(h.run(&["INCRBYFLOAT", "text", "1"]), err("ERR value is not a valid float"));
    assert_eq!(
        h.run(&["INCRBYFLOAT", "f", "inf"]),
        err("ERR increment would produce NaN or Infinity")
    );
    h.run(&["SET", "ttl", "1", "EX", "100"]);
    h.run(&["INCR", "ttl"]);
    assert_eq!(h.run(&["TTL", "ttl"]), int(100), "INCR keeps the TTL");
}

#[test]
fn append_strlen_ranges() {
    // Goal: APPEND, STRLEN, GETRANGE, SETRANGE follow the documented examples and limits.
    let mut h = Harness::new();
    assert_eq!(h.run(&["APPEND", "mykey", "Hello"]), int(5));
    assert_eq!(h.run(&["APPEND", "mykey", " World"]), int(11));
    assert_eq!(h.run(&["GET", "mykey"]), bulk("Hello World"));
    assert_eq!(h.run(&["STRLEN", "mykey"]), int(11));
    assert_eq!(h.run(&["STRLEN", "nokey"]), int(0));
    h.run(&["SET", "s", "This is a string"]);
    assert_eq!(h.run(&["GETRANGE", "s", "0", "3"]), bulk("This"));
    assert_eq!(h.run(&["GETRANGE", "s", "-3", "-1"]), bulk("ing"));
    assert_eq!(h.run(&["GETRANGE", "s", "0", "-1"]), bulk("This is a string"));
    assert_eq!(h.run(&["GETRANGE", "s", "10", "100"]), bulk("string"));
    assert_eq!(h.run(&["GETRANGE", "s", "-1", "-5"]), bulk(""));
    assert_eq!(h.run(&["GETRANGE", "none", "0", "5"]), bulk(""));
    h.run(&["SET", "key1", "Hello World"]);
    assert_eq!(h.run(&["SETRANGE", "key1", "6", "Redis"]), int(11));
    assert_eq!(h.run(&["GET", "key1"]), bulk("Hello Redis"));
    assert_eq!(h.run(&["SETRANGE", "key2", "6", "Redis"]), int(11));
    assert_eq!(
        h.run(&["GET", "key2"]),
        Frame::Bulk(bytes::Bytes::from_static(b"\0\0\0\0\0\0Redis"))
    );
    assert_eq!(h.run(&["SETRANGE", "key3", "5", ""]), int(0));
    assert_eq!(h.run(&["EXISTS", "key3"]), int(0));
    assert_eq!(h.run(&["SETRANGE", "key1", "-1", "x"]), err("ERR offset is out of range"));
    assert_eq!(
        h.run(&["SETRANGE", "key1", "536870911", "xy"]),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
}

#[test]
fn multi_key_and_get_variants() {
    // Goal: MGET/MSET/MSETNX/GETSET/GETDEL/GETEX/SETNX semantics.
    let mut h = Harness::new();
    assert_eq!(h.run(&["MSET", "a", "1", "b", "2"]), ok());
    h.run(&["SADD", "set", "x"]);
    assert_eq!(
        h.run(&["MGET", "a", "b", "nope", "set"]),
        Frame::Array(vec![bulk("1"), bulk("2"), Frame::Null, Frame::Null])
    );
    assert_eq!(
        h.run(&["MSET", "a", "1", "b"]),
        err("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(h.run(&["MSETNX", "c", "3", "a", "9"]), int(0));
    assert_eq!(h.run(&["EXISTS", "c"]), int(0));
    assert_eq!(h.run(&["MSETNX", "c", "3", "d", "4"]), int(1));
    assert_eq!(h.run(&["SETNX", "c", "x"]), int(0));
    assert_eq!(h.run(&["GETSET", "c", "33"]), bulk("3"));
    assert_eq!(h.run(&["GETDEL", "c"]), bulk("33"));
    assert_eq!(h.run(&["GETDEL", "c"]), Frame::Null);
    assert_eq!(h.run(&["GETEX", "a", "EX", "100"]), bulk("1"));
    assert_eq!(h.run(&["TTL", "a"]), int(100));
    assert_eq!(h.run(&["GETEX", "a", "PERSIST"]), bulk("1"));
    assert_eq!(h.run(&["TTL", "a"]), int(-1));
    assert_eq!(
        h.run(&["GETEX", "a", "EX", "0"]),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(h.run(&["GETEX", "a", "PERSIST", "EX", "1"]), err(SYNTAX));
    assert_eq!(h.run(&["GETEX", "a", "PXAT", "1"]), bulk("1"));
    assert_eq!(h.run(&["EXISTS", "a"]), int(0), "an expiry in the past deletes");
    assert_eq!(h.run(&["GETEX", "set"]), err(WRONGTYPE));
}

#[test]
fn expired_keys_are_invisible_at_once() {
    // Goal: a key past its TTL is invisible to reads and writes before any purge.
    let mut h = Harness::new();
    h.run(&["SET", "k", "v", "PX", "100"]);
    h.run(&["SET", "n", "5", "PX", "100"]);
    h.now_ms += 100;
    assert_eq!(h.run(&["GET", "k"]), bulk("v"), "alive at exactly the expiry time");
    h.now_ms += 1;
    assert_eq!(h.run(&["GET", "k"]), Frame::Null);
    assert_eq!(h.run(&["EXISTS", "k"]), int(0));
    assert_eq!(h.run(&["TTL", "k"]), int(-2));
    assert_eq!(h.run(&["INCR", "n"]), int(1));
    assert_eq!(h.run(&["TTL", "n"]), int(-1));
    assert_eq!(h.run(&["SET", "k", "w", "NX"]), ok());
}
