//! The `redis` crate (redis-rs) as a client of real `cohort` processes: typed commands,
//! pipelines, MULTI/EXEC transactions with WATCH, a blocking pop woken by another connection,
//! and RESP3.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Cluster;
use redis::{Commands, Connection, RedisResult, Value};

fn connect(port: u16) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let connection = client.get_connection().expect("connecting with redis-rs");
    connection.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    connection
}

#[test]
fn redis_rs_typed_commands_and_pipelines() {
    // Goal: typed reads and writes, plain and atomic pipelines round-trip through redis-rs.
    let cluster = Cluster::start("redis-rs-typed", 1, &[]);
    let mut connection = connect(cluster.node(1).port);

    let () = connection.set("name", "cohort").unwrap();
    let name: String = connection.get("name").unwrap();
    assert_eq!(name, "cohort");
    let missing: Option<String> = connection.get("missing").unwrap();
    assert_eq!(missing, None);
    let () = connection.set("number", 41_i64).unwrap();
    let number: i64 = connection.incr("number", 1).unwrap();
    assert_eq!(number, 42);
    let () = connection.hset_multiple("hash", &[("a", 1), ("b", 2)]).unwrap();
    let hash: BTreeMap<String, i64> = connection.hgetall("hash").unwrap();
    assert_eq!(hash, BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]));
    let length: usize = connection.rpush("list", &["x", "y", "z"]).unwrap();
    assert_eq!(length, 3);
    let list: Vec<String> = connection.lrange("list", 0, -1).unwrap();
    assert_eq!(list, ["x", "y", "z"]);
    let error = connection.incr::<_, _, i64>("name", 1).unwrap_err();
    assert_eq!(error.code(), Some("ERR"), "{error}");

    // A plain pipeline: replies come back in order, `ignore` drops one.
    let (counter, echoed, length): (i64, String, usize) = redis::pipe()
        .incr("counter", 5)
        .set("piped", "yes")
        .ignore()
        .get("piped")
        .llen("list")
        .query(&mut connection)
        .unwrap();
    assert_eq!((counter, echoed.as_str(), length), (5, "yes", 3));

    // An atomic pipeline is sent as MULTI ... EXEC.
    let (first, second): (i64, i64) = redis::pipe()
        .atomic()
        .incr("counter", 1)
        .incr("counter", 1)
        .query(&mut connection)
        .unwrap();
    assert_eq!((first, second), (6, 7));

    // A long pipeline in one write.
    let mut pipe = redis::pipe();
    for n in 0..1000 {
        pipe.set(format!("bulk-{n}"), n).ignore();
    }
    pipe.query::<()>(&mut connection).unwrap();
    let values: Vec<i64> =
        connection.mget((0..1000).map(|n| format!("bulk-{n}")).collect::<Vec<_>>()).unwrap();
    assert_eq!(values, (0..1000).collect::<Vec<i64>>());
}

#[test]
fn redis_rs_watch_transactions_lose_no_increment() {
    // Goal: `redis::transaction` (WATCH + MULTI/EXEC, retried on abort) makes concurrent
    // read-modify-write increments through different nodes exact.
    let cluster = Cluster::start("redis-rs-watch", 3, &[]);
    let ports = cluster.ports();

    // First, an abort is observable: a write by another client after WATCH voids EXEC.
    let mut watcher = connect(ports[0]);
    let mut other = connect(ports[1]);
    redis::cmd("WATCH").arg("watched").exec(&mut watcher).unwrap();
    let () = other.set("watched", "changed").unwrap();
    let aborted: Value = redis::pipe().atomic().set("watched", "mine").query(&mut watcher).unwrap();
    assert_eq!(aborted, Value::Nil, "EXEC after a watched key changed must be aborted");
    let value: String = other.get("watched").unwrap();
    assert_eq!(value, "changed");

    const THREADS: usize = 4;
    const INCREMENTS: i64 = 15;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let port = ports[thread % ports.len()];
            std::thread::spawn(move || {
                let mut connection = connect(port);
                for _ in 0..INCREMENTS {
                    let result: RedisResult<()> =
                        redis::transaction(&mut connection, &["balance"], |connection, pipe| {
                            let balance: Option<i64> = connection.get("balance")?;
                            pipe.set("balance", balance.unwrap_or(0) + 1).ignore().query(connection)
                        });
                    result.unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("transaction thread");
    }
    let mut connection = connect(ports[2]);
    let balance: i64 = connection.get("balance").unwrap();
    assert_eq!(balance, THREADS as i64 * INCREMENTS);
}

#[test]
fn redis_rs_blpop_is_woken_by_another_connection() {
    // Goal: a client blocked in BLPOP on one node is answered as soon as another client pushes
    // through a different node, long before its timeout.
    let cluster = Cluster::start("redis-rs-blpop", 3, &[]);
    let ports = cluster.ports();
    let blocked_port = ports[1];
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let mut connection = connect(blocked_port);
        let popped: Option<(String, String)> =
            redis::cmd("BLPOP").arg("jobs").arg(20).query(&mut connection).unwrap();
        (popped, started.elapsed())
    });
    // Give the waiter time to block before pushing.
    std::thread::sleep(Duration::from_millis(500));
    let mut pusher = connect(ports[2]);
    let _: usize = pusher.rpush("jobs", "job-1").unwrap();
    let (popped, waited) = waiter.join().expect("waiter thread");
    assert_eq!(popped, Some(("jobs".to_string(), "job-1".to_string())));
    assert!(waited < Duration::from_secs(10), "BLPOP returned only after {waited:?}");
    let left: usize = pusher.llen("jobs").unwrap();
    assert_eq!(left, 0, "the popped element must be gone");

    // A timeout with nothing pushed returns nil.
    let mut connection = connect(ports[0]);
    let started = Instant::now();
    let nothing: Option<(String, String)> =
        redis::cmd("BLPOP").arg("empty").arg(0.3).query(&mut connection).unwrap();
    assert_eq!(nothing, None);
    assert!(started.elapsed() >= Duration::from_millis(250), "BLPOP returned early");
}

#[test]
fn redis_rs_speaks_resp3() {
    // Goal: with `protocol=resp3` redis-rs negotiates HELLO 3 and gets RESP3 types back (a map
    // for HGETALL, a set for SMEMBERS, null for a missing key).
    let cluster = Cluster::start("redis-rs-resp3", 1, &[]);
    let port = cluster.node(1).port;
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol=resp3")).expect("client");
    let mut connection = client.get_connection().expect("connecting with RESP3");
    let () = connection.hset_multiple("fields", &[("one", "1"), ("two", "2")]).unwrap();
    let raw: Value = redis::cmd("HGETALL").arg("fields").query(&mut connection).unwrap();
    let Value::Map(pairs) = raw else { panic!("HGETALL under RESP3 should be a map: {raw:?}") };
    assert_eq!(pairs.len(), 2);
    let typed: BTreeMap<String, i64> = connection.hgetall("fields").unwrap();
    assert_eq!(typed, BTreeMap::from([("one".to_string(), 1), ("two".to_string(), 2)]));
    let _: usize = connection.sadd("members", &["a", "b"]).unwrap();
    let raw: Value = redis::cmd("SMEMBERS").arg("members").query(&mut connection).unwrap();
    assert!(matches!(raw, Value::Set(ref items) if items.len() == 2), "{raw:?}");
    let missing: Value = redis::cmd("GET").arg("absent").query(&mut connection).unwrap();
    assert_eq!(missing, Value::Nil);
}
