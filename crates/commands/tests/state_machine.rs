//! Whole-store properties: determinism, snapshots, transactions, WATCH versions, expiry.
mod common;
use bytes::Bytes;
use commands::{Context, SnapshotError, Store};
use common::*;
use resp::Frame;

/// A tiny seeded generator for the test's command stream (independent of the crate's).
struct TestRng(u64);

impl TestRng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn random_command(rng: &mut TestRng) -> Vec<Bytes> {
    let key = format!("k{}", rng.below(20));
    let other = format!("k{}", rng.below(20));
    let value = format!("{}", rng.below(50));
    let ttl = format!("{}", 1 + rng.below(3000));
    let words: Vec<String> = match rng.below(26) {
        0 => vec!["SET".into(), key, value],
        1 => vec!["SET".into(), key, value, "PX".into(), ttl],
        2 => vec!["INCRBY".into(), key, value],
        3 => vec!["APPEND".into(), key, value],
        4 => vec!["DEL".into(), key, other],
        5 => vec!["EXPIRE".into(), key, ttl, "GT".into()],
        6 => vec!["PERSIST".into(), key],
        7 => vec!["RENAME".into(), key, other],
        8 => vec!["HSET".into(), key, value.clone(), value],
        9 => vec!["HDEL".into(), key, value],
        10 => vec!["HINCRBYFLOAT".into(), key, value, "0.5".into()],
        11 => vec!["LPUSH".into(), key, value],
        12 => vec!["RPOP".into(), key, "2".into()],
        13 => vec!["LMOVE".into(), key, other, "LEFT".into(), "RIGHT".into()],
        14 => vec!["LREM".into(), key, "0".into(), value],
        15 => vec!["SADD".into(), key, value],
        16 => vec!["SPOP".into(), key],
        17 => vec!["SRANDMEMBER".into(), key, "-3".into()],
        18 => vec!["SUNIONSTORE".into(), other, key.clone(), key],
        19 => vec!["SMOVE".into(), key, other, value],
        20 => vec!["RANDOMKEY".into()],
        21 => vec!["SCAN".into(), "0".into(), "COUNT".into(), "5".into()],
        22 => vec!["GETEX".into(), key, "PX".into(), ttl],
        23 => vec!["HRANDFIELD".into(), key, "2".into(), "WITHVALUES".into()],
        24 => vec!["SETRANGE".into(), key, value.clone(), value],
        _ => vec!["BLPOP".into(), key, other, "0".into()],
    };
    words.into_iter().map(Bytes::from).collect()
}

#[test]
fn same_log_same_state_and_replies() {
    // Goal: two stores fed one random command stream agree on every reply and digest,
    // and a snapshot restored mid-stream continues identically.
    let mut rng = TestRng(0x9e37_79b9);
    let mut first = Store::new();
    let mut second = Store::new();
    let mut restored: Option<Store> = None;
    let mut now_ms = 1_000_000;
    for step in 0..5_000u64 {
        now_ms += rng.below(40);
        let context = Context { now_ms, seed: step.wrapping_mul(0x2545_f491_4f6c_dd1d) };
        let command = random_command(&mut rng);
        let reply = first.apply(&context, &command);
        assert_eq!(reply, second.apply(&context, &command), "step {step} {command:?}");
        if let Some(copy) = restored.as_mut() {
            assert_eq!(reply, copy.apply(&context, &command), "restored copy, step {step}");
        }
        if step % 97 == 0 {
            let expired = first.expired_keys(now_ms, 4);
            assert_eq!(
                first.purge_expired(now_ms, &expired),
                second.purge_expired(now_ms, &expired)
            );
            if let Some(copy) = restored.as_mut() {
                copy.purge_expired(now_ms, &expired);
            }
        }
        if step == 2_500 {
            let copy = Store::restore(&first.snapshot()).expect("own snapshot restores");
            assert_eq!(copy.digest(), first.digest());
            restored = Some(copy);
        }
        assert_eq!(first.digest(), second.digest(), "step {step}");
    }
    assert_eq!(restored.unwrap().digest(), first.digest());
    assert!(!first.is_empty());
}

#[test]
fn digest_detects_differences() {
    // Goal: the digest is a working checker: it differs when the state differs.
    let mut h = Harness::new();
    let empty = h.store.digest();
    h.run(&["SET", "a", "1"]);
    let one = h.store.digest();
    assert_ne!(empty, one);
    let mut other = Harness::new();
    other.run(&["SET", "a", "2"]);
    assert_ne!(one, other.store.digest());
}

#[test]
fn snapshot_round_trip_and_corruption() {
    // Goal: snapshots restore every type, TTL and version, and reject damaged bytes.
    let mut h = Harness::new();
    h.run(&["SET", "s", "a long value that does not fit inline", "EX", "100"]);
    h.run(&["HSET", "h", "f", "v", "g", "w"]);
    h.run(&["RPUSH", "l", "1", "2", "3"]);
    h.run(&["SADD", "set", "x", "y"]);
    let bytes = h.store.snapshot();
    let restored = Store::restore(&bytes).unwrap();
    assert_eq!(restored.digest(), h.store.digest());
    assert_eq!(restored.len(), 4);
    assert_eq!(restored.key_version(b"h", h.now_ms), h.store.key_version(b"h", h.now_ms));
    let context = h.context();
    assert_eq!(restored.read(&context, &line(&["TTL", "s"])), int(100));
    assert_eq!(
        restored.read(&context, &line(&["LRANGE", "l", "0", "-1"])),
        array(&["1", "2", "3"])
    );
    let mut flipped = bytes.clone();
    flipped[30] ^= 1;
    assert_eq!(Store::restore(&flipped).unwrap_err(), SnapshotError::ChecksumMismatch);
    assert_eq!(
        Store::restore(&bytes[..bytes.len() - 1]).unwrap_err(),
        SnapshotError::ChecksumMismatch
    );
    assert_eq!(Store::restore(b"nonsense").unwrap_err(), SnapshotError::Truncated);
    assert_eq!(Store::restore(b"XXXXXXXXXXXXXXXXXXXX").unwrap_err(), SnapshotError::BadMagic);
    assert!(Store::restore(&Store::new().snapshot()).unwrap().is_empty());
}

#[test]
fn transactions_apply_atomically_or_abort() {
    // Goal: EXEC runs all queued commands in order, aborts on a changed watched key,
    // and discards everything on a queue-time error.
    let mut h = Harness::new();
    h.run(&["SET", "balance", "10"]);
    let context = h.context();
    let watched = vec![(Bytes::from("balance"), h.store.key_version(b"balance", h.now_ms))];
    let commands = vec![
        line(&["DECRBY", "balance", "3"]),
        line(&["INCR", "text"]),
        line(&["LPUSH", "balance", "x"]),
    ];
    let reply = h.store.apply_transaction(&context, &watched, &commands);
    assert_eq!(
        reply,
        Frame::Array(vec![int(7), int(1), err(WRONGTYPE)]),
        "runtime errors do not roll back"
    );
    let stale = h.store.apply_transaction(&context, &watched, &[line(&["SET", "balance", "0"])]);
    assert_eq!(stale, Frame::NullArray);
    assert_eq!(h.run(&["GET", "balance"]), bulk("7"), "an aborted transaction changes nothing");
    let before = h.store.digest();
    let queued_error =
        h.store.apply_transaction(&context, &[], &[line(&["SET", "a", "1"]), line(&["GET"])]);
    assert_eq!(queued_error, err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(h.store.digest(), before);
}

#[test]
fn watch_versions_track_every_change() {
    // Goal: key_version changes on write, delete, re-create and expiry, but not on reads.
    let mut h = Harness::new();
    let version = |h: &Harness, key: &str| h.store.key_version(key.as_bytes(), h.now_ms);
    let missing = version(&h, "k");
    h.run(&["SET", "k", "v", "PX", "100"]);
    let created = version(&h, "k");
    assert_ne!(missing, created);
    h.run(&["GET", "k"]);
    h.run(&["SET", "k", "v", "NX"]);
    assert_eq!(version(&h, "k"), created, "reads and refused writes are not changes");
    h.now_ms += 101;
    assert_ne!(version(&h, "k"), created, "expiry is a change");
    h.run(&["SET", "k", "v"]);
    h.run(&["DEL", "k"]);
    let deleted = version(&h, "k");
    h.run(&["SET", "k", "v"]);
    h.run(&["DEL", "k"]);
    assert_ne!(version(&h, "k"), deleted, "delete and re-create between WATCH and EXEC");
}

#[test]
fn leader_driven_expiry() {
    // Goal: expired_keys lists only expired keys, and purge_expired spares rewritten ones.
    let mut h = Harness::new();
    h.run(&["SET", "a", "1", "PX", "10"]);
    h.run(&["SET", "b", "1", "PX", "20"]);
    h.run(&["SET", "c", "1", "PX", "1000"]);
    h.run(&["SET", "d", "1"]);
    let later = h.now_ms + 30;
    assert_eq!(h.store.expired_keys(later, 10), line(&["a", "b"]));
    assert_eq!(h.store.expired_keys(later, 1), line(&["a"]));
    h.run(&["SET", "b", "fresh"]);
    assert_eq!(h.store.purge_expired(later, &line(&["a", "b", "zz"])), 1);
    assert_eq!(h.store.len(), 3);
    assert!(h.store.expired_keys(later, 10).is_empty());
}

#[test]
fn read_path_refuses_writes() {
    // Goal: read() serves read-only commands and refuses to run writes.
    let h = Harness::new();
    let context = h.context();
    assert!(matches!(h.store.read(&context, &line(&["SET", "a", "1"])), Frame::Error(_)));
    assert_eq!(h.store.read(&context, &line(&["DBSIZE"])), int(0));
}

#[test]
fn command_table_drives_arity() {
    // Goal: every table entry's arity check is enforced with Redis's message.
    let mut h = Harness::new();
    for spec in commands::table() {
        let too_few = spec.arity.unsigned_abs() as usize - 1;
        let mut words = vec![spec.name];
        words.extend(std::iter::repeat("x").take(too_few.saturating_sub(1)));
        if too_few == 0 {
            continue;
        }
        assert_eq!(
            h.run(&words),
            err(&format!("ERR wrong number of arguments for '{}' command", spec.name)),
            "{}",
            spec.name
        );
    }
}
