//! Set commands: algebra, random draws from the entry seed, SSCAN.
mod common;
use common::*;
use resp::Frame;

#[test]
fn membership() {
    // Goal: SADD/SREM/SISMEMBER/SMISMEMBER/SCARD/SMEMBERS/SMOVE semantics.
    let mut h = Harness::new();
    assert_eq!(h.run(&["SADD", "myset", "Hello", "World", "World"]), int(2));
    assert_eq!(h.run(&["SCARD", "myset"]), int(2));
    assert_eq!(h.run(&["SISMEMBER", "myset", "Hello"]), int(1));
    assert_eq!(
        h.run(&["SMISMEMBER", "myset", "Hello", "nope"]),
        Frame::Array(vec![int(1), int(0)])
    );
    assert_eq!(sorted(h.run(&["SMEMBERS", "myset"])), sorted(array(&["Hello", "World"])));
    assert_eq!(h.run(&["SMOVE", "myset", "other", "Hello"]), int(1));
    assert_eq!(h.run(&["SMOVE", "myset", "other", "Hello"]), int(0));
    assert_eq!(h.run(&["SREM", "myset", "World", "x"]), int(1));
    assert_eq!(h.run(&["EXISTS", "myset"]), int(0));
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["SADD", "str", "a"]), err(WRONGTYPE));
    assert_eq!(h.run(&["SMOVE", "other", "str", "Hello"]), err(WRONGTYPE));
    assert_eq!(h.run(&["SINTER", "other", "str"]), err(WRONGTYPE));
}

#[test]
fn algebra() {
    // Goal: SINTER/SUNION/SDIFF, their STORE forms and SINTERCARD with its errors.
    let mut h = Harness::new();
    h.run(&["SADD", "key1", "a", "b", "c", "d"]);
    h.run(&["SADD", "key2", "c"]);
    h.run(&["SADD", "key3", "a", "c", "e"]);
    assert_eq!(sorted(h.run(&["SDIFF", "key1", "key2", "key3"])), sorted(array(&["b", "d"])));
    assert_eq!(sorted(h.run(&["SINTER", "key1", "key2", "key3"])), sorted(array(&["c"])));
    assert_eq!(
        sorted(h.run(&["SUNION", "key1", "key2", "key3"])),
        sorted(array(&["a", "b", "c", "d", "e"]))
    );
    assert_eq!(sorted(h.run(&["SINTER", "key1", "missing"])), vec![]);
    assert_eq!(h.run(&["SUNIONSTORE", "dest", "key1", "key3"]), int(5));
    assert_eq!(h.run(&["SINTERSTORE", "dest", "key1", "missing"]), int(0));
    assert_eq!(h.run(&["EXISTS", "dest"]), int(0));
    assert_eq!(h.run(&["SDIFFSTORE", "key1", "key1", "key2"]), int(3));
    assert_eq!(h.run(&["SINTERCARD", "2", "key1", "key3"]), int(1));
    assert_eq!(h.run(&["SINTERCARD", "1", "key1", "LIMIT", "2"]), int(2));
    assert_eq!(h.run(&["SINTERCARD", "0", "key1"]), err("ERR numkeys should be greater than 0"));
    assert_eq!(
        h.run(&["SINTERCARD", "3", "key1"]),
        err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        h.run(&["SINTERCARD", "1", "key1", "LIMIT", "-1"]),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(h.run(&["SINTERCARD", "1", "key1", "BOGUS"]), err(SYNTAX));
}

#[test]
fn random_draws_follow_the_seed() {
    // Goal: SPOP/SRANDMEMBER replies depend only on the seed; counts follow Redis rules.
    let mut first = Harness::new();
    let mut second = Harness::new();
    for h in [&mut first, &mut second] {
        for index in 0..50 {
            h.run(&["SADD", "s", &format!("m{index}")]);
        }
    }
    for seed in 0..20 {
        first.seed = seed;
        second.seed = seed;
        assert_eq!(first.run(&["SRANDMEMBER", "s", "-5"]), second.run(&["SRANDMEMBER", "s", "-5"]));
        assert_eq!(first.run(&["SPOP", "s"]), second.run(&["SPOP", "s"]));
    }
    assert_eq!(first.store.digest(), second.store.digest());
    assert_eq!(first.run(&["SCARD", "s"]), int(30));
    let Frame::Array(distinct) = first.run(&["SRANDMEMBER", "s", "10"]) else { panic!() };
    let unique: std::collections::BTreeSet<_> = distinct.iter().map(|f| format!("{f:?}")).collect();
    assert_eq!(unique.len(), 10);
    assert_eq!(sorted(first.run(&["SRANDMEMBER", "s", "100"])).len(), 30);
    let Frame::Set(popped) = first.run(&["SPOP", "s", "25"]) else { panic!() };
    assert_eq!(popped.len(), 25);
    assert_eq!(first.run(&["SCARD", "s"]), int(5));
    assert_eq!(first.run(&["SPOP", "s", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(first.run(&["SPOP", "none"]), Frame::Null);
}

#[test]
fn sscan_covers_the_set() {
    // Goal: SSCAN visits every member exactly once when the set does not change.
    let mut h = Harness::new();
    for index in 0..200 {
        h.run(&["SADD", "s", &format!("m{index}")]);
    }
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let Frame::Array(parts) = h.run(&["SSCAN", "s", &cursor, "COUNT", "13"]) else { panic!() };
        let Frame::Bulk(next) = &parts[0] else { panic!() };
        let Frame::Array(items) = &parts[1] else { panic!() };
        seen.extend(items.iter().map(|f| format!("{f:?}")));
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (200, 200));
}
