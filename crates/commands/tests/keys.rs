//! Generic key commands: TTL options, renames, KEYS, SCAN's cursor guarantees.
mod common;
use std::collections::BTreeSet;

use common::*;
use resp::Frame;

#[test]
fn expire_options() {
    // Goal: EXPIRE's NX/XX/GT/LT rules, past times and error texts match Redis 7.
    let mut h = Harness::new();
    h.run(&["SET", "k", "v"]);
    assert_eq!(h.run(&["EXPIRE", "k", "100", "XX"]), int(0));
    assert_eq!(h.run(&["EXPIRE", "k", "100", "GT"]), int(0), "no TTL counts as infinite");
    assert_eq!(h.run(&["EXPIRE", "k", "100", "LT"]), int(1));
    assert_eq!(h.run(&["EXPIRE", "k", "50", "NX"]), int(0));
    assert_eq!(h.run(&["EXPIRE", "k", "200", "GT"]), int(1));
    assert_eq!(h.run(&["TTL", "k"]), int(200));
    assert_eq!(h.run(&["PEXPIRE", "k", "1500"]), int(1));
    assert_eq!(h.run(&["TTL", "k"]), int(2), "TTL rounds to the nearest second");
    assert_eq!(h.run(&["PTTL", "k"]), int(1500));
    let at = (h.now_ms / 1000 + 10).to_string();
    assert_eq!(h.run(&["EXPIREAT", "k", &at]), int(1));
    assert_eq!(h.run(&["EXPIRETIME", "k"]), int(h.now_ms as i64 / 1000 + 10));
    assert_eq!(h.run(&["PERSIST", "k"]), int(1));
    assert_eq!(h.run(&["PERSIST", "k"]), int(0));
    assert_eq!(h.run(&["EXPIRETIME", "k"]), int(-1));
    assert_eq!(h.run(&["EXPIRETIME", "none"]), int(-2));
    assert_eq!(h.run(&["EXPIRE", "none", "10"]), int(0));
    assert_eq!(
        h.run(&["EXPIRE", "k", "10", "NX", "XX"]),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        h.run(&["EXPIRE", "k", "10", "GT", "LT"]),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(h.run(&["EXPIRE", "k", "10", "FOO"]), err("ERR Unsupported option FOO"));
    assert_eq!(
        h.run(&["EXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(h.run(&["EXPIRE", "k", "ten"]), err(NOT_INTEGER));
    assert_eq!(h.run(&["EXPIRE", "k", "-1"]), int(1));
    assert_eq!(h.run(&["EXISTS", "k"]), int(0), "a past time deletes the key");
}

#[test]
fn del_exists_type_rename() {
    // Goal: DEL/EXISTS/TYPE/RENAME/RENAMENX/TOUCH/DBSIZE/FLUSHALL semantics.
    let mut h = Harness::new();
    h.run(&["SET", "key1", "Hello"]);
    h.run(&["SET", "key2", "World"]);
    assert_eq!(h.run(&["EXISTS", "key1", "key1", "nosuchkey"]), int(2));
    assert_eq!(h.run(&["DEL", "key1", "key2", "key3"]), int(2));
    h.run(&["SET", "a", "1", "EX", "100"]);
    assert_eq!(h.run(&["RENAME", "a", "b"]), ok());
    assert_eq!(h.run(&["TTL", "b"]), int(100), "RENAME keeps the TTL");
    assert_eq!(h.run(&["RENAME", "a", "b"]), err("ERR no such key"));
    assert_eq!(h.run(&["RENAME", "b", "b"]), ok());
    h.run(&["SET", "c", "3"]);
    assert_eq!(h.run(&["RENAMENX", "b", "c"]), int(0));
    assert_eq!(h.run(&["RENAMENX", "b", "d"]), int(1));
    assert_eq!(h.run(&["GET", "d"]), bulk("1"));
    assert_eq!(h.run(&["TYPE", "d"]), Frame::Simple("string".into()));
    assert_eq!(h.run(&["TYPE", "zz"]), Frame::Simple("none".into()));
    h.run(&["HSET", "h", "f", "v"]);
    assert_eq!(h.run(&["TYPE", "h"]), Frame::Simple("hash".into()));
    assert_eq!(h.run(&["TOUCH", "c", "d", "zz"]), int(2));
    assert_eq!(h.run(&["DBSIZE"]), int(3));
    assert_eq!(h.run(&["UNLINK", "c"]), int(1));
    assert_eq!(h.run(&["FLUSHALL", "BOGUS"]), err(SYNTAX));
    assert_eq!(h.run(&["FLUSHALL", "ASYNC"]), ok());
    assert_eq!(h.run(&["DBSIZE"]), int(0));
    assert_eq!(h.run(&["RANDOMKEY"]), Frame::Null);
}

#[test]
fn keys_pattern_and_randomkey() {
    // Goal: KEYS filters with Redis globbing and RANDOMKEY returns only live keys.
    let mut h = Harness::new();
    h.run(&["MSET", "firstname", "Jack", "lastname", "Stuntman", "age", "35"]);
    assert_eq!(sorted(h.run(&["KEYS", "*name*"])), sorted(array(&["firstname", "lastname"])));
    assert_eq!(sorted(h.run(&["KEYS", "a??"])), sorted(array(&["age"])));
    assert_eq!(sorted(h.run(&["KEYS", "*"])).len(), 3);
    h.run(&["SET", "gone", "x", "PX", "1"]);
    h.now_ms += 2;
    assert_eq!(sorted(h.run(&["KEYS", "*"])).len(), 3);
    for seed in 0..50 {
        h.seed = seed;
        let key = h.run(&["RANDOMKEY"]);
        assert!(["firstname", "lastname", "age"].iter().any(|name| bulk(name) == key), "{key:?}");
    }
}

fn scan_all(
    h: &mut Harness,
    extra: &[&str],
    mut during: impl FnMut(&mut Harness, usize),
) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for round in 0.. {
        let mut words = vec!["SCAN", cursor.as_str()];
        words.extend_from_slice(extra);
        let Frame::Array(parts) = h.run(&words) else { panic!("scan reply") };
        let [Frame::Bulk(next), Frame::Array(keys)] = &parts[..] else { panic!("scan shape") };
        for key in keys {
            let Frame::Bulk(key) = key else { panic!() };
            seen.push(String::from_utf8(key.to_vec()).unwrap());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
        during(h, round);
        assert!(round < 10_000, "scan does not terminate");
    }
    seen
}

#[test]
fn scan_returns_stable_keys_despite_churn() {
    // Goal: every key present for the whole iteration is returned, with keys added and removed meanwhile.
    let mut h = Harness::new();
    for index in 0..500 {
        h.run(&["SET", &format!("stable:{index}"), "v"]);
        h.run(&["SET", &format!("churn:{index}"), "v"]);
    }
    let seen = scan_all(&mut h, &["COUNT", "7"], |h, round| {
        h.run(&["DEL", &format!("churn:{round}")]);
        h.run(&["SET", &format!("added:{round}"), "v"]);
    });
    let seen: BTreeSet<String> = seen.into_iter().collect();
    for index in 0..500 {
        assert!(seen.contains(&format!("stable:{index}")), "stable:{index} missed");
    }
}

#[test]
fn scan_cursor_is_portable_between_replicas() {
    // Goal: a cursor from one store continues correctly on another with the same data (failover).
    let mut first = Harness::new();
    let mut second = Harness::new();
    for index in 0..100 {
        first.run(&["SET", &format!("k{index}"), "v"]);
        second.run(&["SET", &format!("k{index}"), "v"]);
    }
    let Frame::Array(parts) = first.run(&["SCAN", "0", "COUNT", "10"]) else { panic!() };
    let Frame::Bulk(cursor) = &parts[0] else { panic!() };
    let cursor = std::str::from_utf8(cursor).unwrap();
    assert_eq!(first.run(&["SCAN", cursor]), second.run(&["SCAN", cursor]));
}

#[test]
fn scan_options() {
    // Goal: MATCH, TYPE, COUNT validation and cursor errors.
    let mut h = Harness::new();
    h.run(&["SET", "s1", "v"]);
    h.run(&["SADD", "set1", "m"]);
    h.run(&["SET", "other", "v"]);
    let all = scan_all(&mut h, &["MATCH", "s*", "COUNT", "1000"], |_, _| {});
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), ["s1", "set1"].map(String::from).into());
    let sets = scan_all(&mut h, &["TYPE", "set"], |_, _| {});
    assert_eq!(sets, vec!["set1".to_string()]);
    assert_eq!(h.run(&["SCAN", "0", "COUNT", "0"]), err(SYNTAX));
    assert_eq!(h.run(&["SCAN", "0", "COUNT", "x"]), err(NOT_INTEGER));
    assert_eq!(h.run(&["SCAN", "0", "BOGUS", "1"]), err(SYNTAX));
    assert_eq!(h.run(&["SCAN", "abc"]), err("ERR invalid cursor"));
}
