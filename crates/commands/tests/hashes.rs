//! Hash commands: documented examples, errors, deterministic order.
mod common;
use common::*;
use resp::Frame;

#[test]
fn basic_hash_commands() {
    // Goal: HSET/HGET/HMGET/HDEL/HLEN/HEXISTS/HSTRLEN/HGETALL/HKEYS/HVALS semantics.
    let mut h = Harness::new();
    assert_eq!(h.run(&["HSET", "myhash", "field1", "Hello"]), int(1));
    assert_eq!(h.run(&["HSET", "myhash", "field1", "Hi", "field2", "World"]), int(1));
    assert_eq!(h.run(&["HGET", "myhash", "field1"]), bulk("Hi"));
    assert_eq!(h.run(&["HGET", "myhash", "nofield"]), Frame::Null);
    assert_eq!(
        h.run(&["HMGET", "myhash", "field1", "field2", "nofield"]),
        Frame::Array(vec![bulk("Hi"), bulk("World"), Frame::Null])
    );
    assert_eq!(h.run(&["HSETNX", "myhash", "field1", "x"]), int(0));
    assert_eq!(h.run(&["HSETNX", "myhash", "field3", "x"]), int(1));
    assert_eq!(h.run(&["HLEN", "myhash"]), int(3));
    assert_eq!(h.run(&["HEXISTS", "myhash", "field3"]), int(1));
    assert_eq!(h.run(&["HSTRLEN", "myhash", "field2"]), int(5));
    assert_eq!(h.run(&["HDEL", "myhash", "field3", "nofield"]), int(1));
    let Frame::Map(pairs) = h.run(&["HGETALL", "myhash"]) else { panic!("map") };
    let mut pairs: Vec<_> = pairs.into_iter().map(|(f, v)| format!("{f:?}={v:?}")).collect();
    pairs.sort();
    assert_eq!(pairs.len(), 2);
    assert_eq!(sorted(h.run(&["HKEYS", "myhash"])), sorted(array(&["field1", "field2"])));
    assert_eq!(sorted(h.run(&["HVALS", "myhash"])), sorted(array(&["Hi", "World"])));
    assert_eq!(h.run(&["HDEL", "myhash", "field1", "field2"]), int(2));
    assert_eq!(h.run(&["EXISTS", "myhash"]), int(0), "the last field takes the key");
    assert_eq!(
        h.run(&["HSET", "myhash", "a"]),
        err("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        h.run(&["HSET", "myhash", "a", "1", "b"]),
        err("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(h.run(&["HMSET", "m", "a", "1"]), ok());
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["HGET", "str", "a"]), err(WRONGTYPE));
    assert_eq!(h.run(&["HSET", "str", "a", "1"]), err(WRONGTYPE));
    assert_eq!(h.run(&["GET", "str"]), bulk("v"));
}

#[test]
fn hash_increments() {
    // Goal: HINCRBY/HINCRBYFLOAT arithmetic and their specific error texts.
    let mut h = Harness::new();
    h.run(&["HSET", "h", "field", "5"]);
    assert_eq!(h.run(&["HINCRBY", "h", "field", "1"]), int(6));
    assert_eq!(h.run(&["HINCRBY", "h", "field", "-10"]), int(-4));
    h.run(&["HSET", "h", "text", "abc", "big", "9223372036854775807"]);
    assert_eq!(h.run(&["HINCRBY", "h", "text", "1"]), err("ERR hash value is not an integer"));
    assert_eq!(
        h.run(&["HINCRBY", "h", "big", "1"]),
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(h.run(&["HINCRBY", "h", "field", "x"]), err(NOT_INTEGER));
    h.run(&["HSET", "mykey", "field", "10.50"]);
    assert_eq!(h.run(&["HINCRBYFLOAT", "mykey", "field", "0.1"]), bulk("10.6"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "mykey", "field", "-5"]), bulk("5.6"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "h", "text", "1"]), err("ERR hash value is not a float"));
    assert_eq!(h.run(&["HINCRBYFLOAT", "new", "f", "2.5"]), bulk("2.5"));
}

#[test]
fn hrandfield_and_hscan() {
    // Goal: HRANDFIELD counts (distinct/repeating) and HSCAN full iteration with MATCH/NOVALUES.
    let mut h = Harness::new();
    h.run(&["HSET", "coin", "heads", "obverse", "tails", "reverse", "edge", "null"]);
    let Frame::Bulk(one) = h.run(&["HRANDFIELD", "coin"]) else { panic!() };
    assert!([&b"heads"[..], b"tails", b"edge"].contains(&&one[..]));
    assert_eq!(
        sorted(h.run(&["HRANDFIELD", "coin", "5"])),
        sorted(array(&["heads", "tails", "edge"]))
    );
    let Frame::Array(two) = h.run(&["HRANDFIELD", "coin", "2"]) else { panic!() };
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    let Frame::Array(repeats) = h.run(&["HRANDFIELD", "coin", "-7", "WITHVALUES"]) else {
        panic!()
    };
    assert_eq!(repeats.len(), 14);
    assert_eq!(h.run(&["HRANDFIELD", "coin", "1", "BOGUS"]), err(SYNTAX));
    assert_eq!(
        h.run(&["HRANDFIELD", "coin", "-4611686018427387904"]),
        err("ERR value is out of range"),
        "huge repeating draws are refused rather than allocated on every replica"
    );
    assert_eq!(h.run(&["HRANDFIELD", "none"]), Frame::Null);
    assert_eq!(h.run(&["HRANDFIELD", "none", "3"]), Frame::Array(vec![]));
    for index in 0..100 {
        h.run(&["HSET", "big", &format!("f{index}"), "v"]);
    }
    let mut cursor = "0".to_string();
    let mut fields = Vec::new();
    loop {
        let Frame::Array(parts) =
            h.run(&["HSCAN", "big", &cursor, "COUNT", "9", "MATCH", "f1*", "NOVALUES"])
        else {
            panic!()
        };
        let Frame::Bulk(next) = &parts[0] else { panic!() };
        let Frame::Array(items) = &parts[1] else { panic!() };
        fields.extend(items.iter().cloned());
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(fields.len(), 11, "f1 and f10..f19");
}
