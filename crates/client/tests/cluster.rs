//! The client against a sharded cohort cluster in cluster mode: three `cohort serve` processes
//! with `--shards 6 --replicas 3 --cluster-enabled yes`, each node leading some of the six
//! shards and answering `-MOVED` for the slots of the others. The client is given one address
//! and finds the rest from `CLUSTER SLOTS` and the redirections.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::{Client, FailoverRouter, Frame, Options};
use common::{Cluster, CuttingProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FLAGS: &[&str] = &["--shards", "6", "--replicas", "3", "--cluster-enabled", "yes"];
const NODES: usize = 3;
/// Every test's own bound, cluster start-up included.
const BOUND: Duration = Duration::from_secs(50);

macro_rules! cluster_or_skip {
    () => {
        match Cluster::start(NODES, FLAGS) {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(BOUND, body).await.expect("test exceeded its time bound");
}

/// One command on a fresh connection, no redirection followed: the node's own answer.
async fn direct(address: &str, args: &[&[u8]]) -> Frame {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).await.expect("write");
    let mut input = bytes::BytesMut::new();
    loop {
        if let Some(frame) = resp::decode_frame(&mut input, &resp::Limits::default()).expect("RESP")
        {
            return frame;
        }
        let read = stream.read_buf(&mut input).await.expect("read");
        assert!(read > 0, "{address} closed the connection");
    }
}

/// The keys `key-0` … `key-{count-1}` grouped by the master serving their slot (`host:port`),
/// as node 1's `CLUSTER SLOTS` tells.
async fn keys_by_master(cluster: &Cluster, count: usize) -> BTreeMap<String, Vec<String>> {
    let Frame::Array(ranges) = direct(&cluster.address(0), &[b"CLUSTER", b"SLOTS"]).await else {
        panic!("CLUSTER SLOTS is an array")
    };
    let mut masters = Vec::new();
    for range in ranges {
        let Frame::Array(parts) = range else { panic!("a range") };
        let (Frame::Integer(start), Frame::Integer(end), Frame::Array(master)) =
            (&parts[0], &parts[1], &parts[2])
        else {
            panic!("start, end, master")
        };
        let (Frame::Bulk(host), Frame::Integer(port)) = (&master[0], &master[1]) else {
            panic!("host, port")
        };
        masters.push((*start..=*end, format!("{}:{port}", String::from_utf8_lossy(host))));
    }
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in 0..count {
        let key = format!("key-{n}");
        let slot = i64::from(placement::key_slot(key.as_bytes()));
        let (_, master) =
            masters.iter().find(|(range, _)| range.contains(&slot)).expect("a master");
        keys.entry(master.clone()).or_default().push(key);
    }
    keys
}

/// Waits until the cluster serves a write in every shard (each has elected a leader), writing
/// through `client`, and then until the leaders have been handed to their preferred nodes: every
/// node leads some shard (at first one node may lead them all) and the slot map stays the same
/// for a second.
async fn wait_until_served(cluster: &Cluster, client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(25);
    // Keys 0..64 hash to slots all over the map: every shard holds some.
    for n in 0..64 {
        let key = format!("ready-{n}");
        loop {
            match client.set(&key, "1").await {
                Ok(()) => break,
                Err(error) => {
                    assert!(Instant::now() < deadline, "the cluster never served {key}: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let mut last = None;
    let mut same = 0;
    while same < 4 {
        let slots = direct(&cluster.address(0), &[b"CLUSTER", b"SLOTS"]).await;
        let spread = masters(&slots).len() == NODES;
        same = if spread && last.as_ref() == Some(&slots) { same + 1 } else { 0 };
        last = Some(slots);
        assert!(Instant::now() < deadline, "leaders never settled over the nodes: {last:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The masters a `CLUSTER SLOTS` reply names.
fn masters(slots: &Frame) -> BTreeSet<String> {
    let Frame::Array(ranges) = slots else { panic!("CLUSTER SLOTS is an array") };
    let mut masters = BTreeSet::new();
    for range in ranges {
        if let Frame::Array(parts) = range {
            if let Some(Frame::Array(master)) = parts.get(2) {
                if let (Some(Frame::Bulk(host)), Some(Frame::Integer(port))) =
                    (master.first(), master.get(1))
                {
                    masters.insert(format!("{}:{port}", String::from_utf8_lossy(host)));
                }
            }
        }
    }
    masters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_set_and_read_on_their_slots_nodes_from_one_address() {
    // Goal: given one node's address, the client detects cluster mode, and 200 keys spread over
    // every shard are written and read back; the first node alone would have refused (MOVED)
    // most of them, so the client did route by slot. Keyless commands and same-slot multi-key
    // commands work too.
    let cluster = cluster_or_skip!();
    bounded(async {
        let client = Client::connect(&[&cluster.address(0)]).await.unwrap();
        assert!(client.is_cluster_mode(), "CLUSTER SLOTS answered: cluster mode");
        wait_until_served(&cluster, &client).await;
        for n in 0..200 {
            client.set(format!("k{n}"), format!("v{n}")).await.unwrap();
        }
        for n in 0..200 {
            let value = client.get(format!("k{n}")).await.unwrap();
            assert_eq!(value, Some(bytes(&format!("v{n}"))), "k{n}");
        }
        let mut moved = 0;
        let mut served = 0;
        for n in 0..200 {
            match direct(&cluster.address(0), &[b"GET", format!("k{n}").as_bytes()]).await {
                Frame::Error(text) if text.starts_with("MOVED ") => moved += 1,
                Frame::Bulk(value) => {
                    assert_eq!(value, bytes(&format!("v{n}")));
                    served += 1;
                }
                other => panic!("k{n}: {other:?}"),
            }
        }
        assert!(moved > 0 && served > 0, "node 1 serves {served} keys and redirects {moved}");

        assert_eq!(client.command(&[b"PING"]).await.unwrap(), Frame::Simple("PONG".into()));
        client.set("{user}.name", "ada").await.unwrap();
        client.set("{user}.lang", "rust").await.unwrap();
        let both = client.command(&[b"MGET", b"{user}.name", b"{user}.lang"]).await.unwrap();
        assert_eq!(both, Frame::Array(vec![Frame::Bulk(bytes("ada")), Frame::Bulk(bytes("rust"))]));
        let cross = client.command(&[b"MGET", b"k1", b"k2"]).await.unwrap_err();
        assert!(cross.is_server_code("CROSSSLOT"), "{cross}");
        assert_eq!(client.del(&["k1"]).await.unwrap(), 1);
        assert_eq!(client.get("k1").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequenced_increments_in_every_shard_are_applied_once() {
    // Goal: writes inside the client's sessions (SEQ) are routed by the key they wrap and run
    // exactly once in every shard: concurrent increments sum exactly, a SEQ re-sent with the
    // same number is answered from the session, and an increment whose reply is cut after the
    // node applied it is retried and counted once.
    let cluster = cluster_or_skip!();
    bounded(async {
        let client = Client::connect(&[&cluster.address(0)]).await.unwrap();
        wait_until_served(&cluster, &client).await;
        let keys = keys_by_master(&cluster, 24).await;
        let all: Vec<String> = keys.values().flatten().cloned().collect();
        assert_eq!(keys.len(), NODES, "every node leads some keys: {keys:?}");
        let slots: BTreeSet<u16> =
            all.iter().map(|key| placement::key_slot(key.as_bytes())).collect();
        assert_eq!(slots.len(), all.len());
        let tasks: Vec<_> = (0..6)
            .map(|task| {
                let (client, all) = (client.clone(), all.clone());
                tokio::spawn(async move {
                    for round in 0..5 {
                        for key in &all {
                            client
                                .incr(key)
                                .await
                                .unwrap_or_else(|e| panic!("{task}/{round}: {e}"));
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        for key in &all {
            assert_eq!(client.get(key).await.unwrap(), Some(bytes("30")), "{key}");
        }

        // The same (session, n) twice, on keys of different shards: one effect, one reply.
        let raw = client.raw();
        let Frame::Integer(id) = raw.command(&[b"SESSION.OPEN"]).await.unwrap() else {
            panic!("a session id")
        };
        let id = id.to_string();
        for key in keys.values().map(|keys| &keys[0]) {
            let seq = [b"SEQ".as_slice(), id.as_bytes(), b"1", b"INCRBY", key.as_bytes(), b"5"];
            assert_eq!(raw.command(&seq).await.unwrap(), Frame::Integer(35), "{key}");
            assert_eq!(raw.command(&seq).await.unwrap(), Frame::Integer(35), "{key} replayed");
            assert_eq!(raw.get(key).await.unwrap(), Some(bytes("35")));
        }

        // A cut reply: a client that has not loaded the slot map yet (built with a router, it
        // learns cluster mode from the first MOVED) talks to node 1 through a proxy that
        // swallows the first INCR's reply after node 1 applied it. The key is one node 1 leads,
        // so the INCR ran there.
        let own = keys[&cluster.address(0)][0].clone();
        let proxy = CuttingProxy::start(cluster.address(0), b"INCR", 1).await;
        let router = Box::new(FailoverRouter::new(1));
        let proxied = Client::with_router(&[&proxy.address()], Options::default(), router).unwrap();
        assert!(!proxied.is_cluster_mode());
        assert_eq!(proxied.incr(&own).await.unwrap(), 36);
        assert_eq!(proxy.cuts_left(), 0, "the proxy cut the first attempt");
        assert_eq!(client.get(&own).await.unwrap(), Some(bytes("36")), "applied once");
        for key in &all {
            proxied.incr(key).await.unwrap();
        }
        assert!(proxied.is_cluster_mode(), "switched by a MOVED");
        for key in &all {
            let first_of_its_node = keys.values().any(|keys| &keys[0] == key);
            let expected = match (*key == own, first_of_its_node) {
                (true, _) => 37,
                (false, true) => 36,
                (false, false) => 31,
            };
            let value = client.get(key).await.unwrap().unwrap();
            let value: i32 = std::str::from_utf8(&value).unwrap().parse().unwrap();
            assert_eq!(value, expected, "{key}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_on_a_sharded_cluster_queue_fence_and_release() {
    // Goal: locks whose names live in different shards are acquired and released through one
    // address; a waiter is granted the lock after release with a larger token, and a fenced
    // write on a key of the lock's slot runs only for the holder.
    let cluster = cluster_or_skip!();
    bounded(async {
        let first = Client::connect(&[&cluster.address(0)]).await.unwrap();
        let second = Client::connect(&[&cluster.address(1)]).await.unwrap();
        wait_until_served(&cluster, &first).await;
        let ttl = Duration::from_secs(5);

        let names: Vec<String> = (0..8).map(|n| format!("lock-{n}")).collect();
        let slots: BTreeSet<u16> =
            names.iter().map(|name| placement::key_slot(name.as_bytes())).collect();
        assert!(slots.len() > 1);
        let mut guards = Vec::new();
        for name in &names {
            guards.push(first.lock(name, ttl).owner("first").acquire().await.unwrap());
        }
        for (name, guard) in names.iter().zip(&guards) {
            let busy = second.lock(name, ttl).acquire().await.unwrap_err();
            assert!(matches!(busy, client::Error::LockNotAcquired(_)), "{name}: {busy}");
            assert!(!guard.lost());
        }
        for guard in guards {
            assert!(guard.release().await.unwrap());
        }

        let held = first.lock("{jobs}", ttl).acquire().await.unwrap();
        let waiter = {
            let second = second.clone();
            tokio::spawn(async move {
                second.lock("{jobs}", ttl).wait(Duration::from_secs(10)).acquire().await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "the second client waits while the lock is held");
        let reply = held.fenced(&[b"SET", b"{jobs}.owner", b"first"]).await.unwrap();
        assert_eq!(reply, Frame::Simple("OK".into()));
        let first_token = held.token();
        assert!(held.release().await.unwrap());
        let granted = waiter.await.unwrap().unwrap();
        assert!(granted.token() > first_token);
        granted.fenced(&[b"SET", b"{jobs}.owner", b"second"]).await.unwrap();
        let stale = first
            .command(&[
                b"LOCK.FENCED",
                b"{jobs}",
                first_token.to_string().as_bytes(),
                b"SET",
                b"{jobs}.owner",
                b"stale",
            ])
            .await
            .unwrap_err();
        assert!(matches!(stale, client::Error::Fenced(_)), "{stale}");
        assert_eq!(first.get("{jobs}.owner").await.unwrap(), Some(bytes("second")));
        assert!(granted.release().await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_are_split_by_node_and_keep_their_order() {
    // Goal: a pipeline over keys of every shard is sent as one batch per node and its replies
    // come back in the order of the commands, error replies in place, with and without sessions;
    // a MULTI block stays on one node's connection.
    let cluster = cluster_or_skip!();
    bounded(async {
        let client = Client::connect(&[&cluster.address(2)]).await.unwrap();
        wait_until_served(&cluster, &client).await;
        let by_master = keys_by_master(&cluster, 30).await;
        assert_eq!(by_master.len(), NODES, "every node leads some keys: {by_master:?}");
        let keys: Vec<String> = by_master.into_values().flatten().collect();
        for (round, client) in [client.clone(), client.raw()].into_iter().enumerate() {
            let mut pipeline = client.pipeline();
            for key in &keys {
                let key = format!("{key}-{round}");
                pipeline.push(&[b"SET", key.as_bytes(), b"10"]);
                pipeline.push(&[b"INCR", key.as_bytes()]);
                pipeline.push(&[b"HSET", key.as_bytes(), b"f", b"v"]);
                pipeline.push(&[b"GET", key.as_bytes()]);
            }
            pipeline.push(&[b"PING"]);
            let replies = pipeline.query().await.unwrap();
            assert_eq!(replies.len(), keys.len() * 4 + 1);
            for (n, chunk) in replies.chunks(4).take(keys.len()).enumerate() {
                assert_eq!(chunk[0], Frame::Simple("OK".into()), "round {round} key {n}");
                assert_eq!(chunk[1], Frame::Integer(11), "round {round} key {n}");
                assert!(matches!(&chunk[2], Frame::Error(e) if e.starts_with("WRONGTYPE")));
                assert_eq!(chunk[3], Frame::Bulk(bytes("11")), "round {round} key {n}");
            }
            assert_eq!(replies.last(), Some(&Frame::Simple("PONG".into())));
        }

        let replies = client
            .raw()
            .pipeline()
            .cmd(&[b"MULTI"])
            .cmd(&[b"INCR", b"{tx}a"])
            .cmd(&[b"INCR", b"{tx}b"])
            .cmd(&[b"EXEC"])
            .query()
            .await
            .unwrap();
        assert_eq!(replies[3], Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_follows_new_leaders_when_its_only_seed_node_dies() {
    // Goal: the node the client was given is killed; the client, which learnt the other nodes
    // from the slot map, reloads the map from a survivor, keyless commands (new sessions) move
    // to a live node, and every acknowledged write stays readable. Increments retried across the
    // failover are applied once.
    let mut cluster = cluster_or_skip!();
    bounded(async {
        let options = Options {
            attempts_max: 30,
            backoff_max: Duration::from_millis(500),
            ..Options::default()
        };
        let client = Client::connect_with(&[&cluster.address(0)], options).await.unwrap();
        wait_until_served(&cluster, &client).await;
        let keys: Vec<String> =
            keys_by_master(&cluster, 24).await.into_values().flatten().collect();
        for key in &keys {
            assert_eq!(client.incr(key).await.unwrap(), 1, "{key}");
        }
        cluster.kill(0);
        // A fresh client handle without idle sessions: SESSION.OPEN must find a live node.
        let fresh = Client::with_router(
            &[&cluster.address(0), &cluster.address(1)],
            Options {
                attempts_max: 30,
                backoff_max: Duration::from_millis(500),
                ..Options::default()
            },
            Box::new(FailoverRouter::new(2)),
        )
        .unwrap();
        for key in &keys {
            assert_eq!(client.incr(key).await.unwrap(), 2, "{key} after the kill");
        }
        for key in &keys {
            assert_eq!(fresh.incr(key).await.unwrap(), 3, "{key} through a fresh client");
            assert_eq!(client.get(key).await.unwrap(), Some(bytes("3")), "{key}");
        }
        assert!(fresh.is_cluster_mode());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_cluster_without_cluster_mode_is_used_through_any_node() {
    // Goal: on a sharded cluster without cluster mode, CLUSTER SLOTS is refused, the client
    // stays out of cluster mode, and one node serves keys of every shard (it forwards them).
    let Some(cluster) = Cluster::start(NODES, &["--shards", "6", "--replicas", "3"]) else {
        return;
    };
    bounded(async {
        let client = Client::connect(&[&cluster.address(1)]).await.unwrap();
        assert!(!client.is_cluster_mode());
        let deadline = Instant::now() + Duration::from_secs(20);
        for n in 0..64 {
            while let Err(error) = client.set(format!("ready-{n}"), "1").await {
                assert!(Instant::now() < deadline, "ready-{n}: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for n in 0..50 {
            assert_eq!(client.incr(format!("plain-{n}")).await.unwrap(), 1, "plain-{n}");
        }
        let pipeline = client.pipeline().cmd(&[b"GET", b"plain-0"]).cmd(&[b"INCR", b"plain-1"]);
        let replies = pipeline.query().await.unwrap();
        assert_eq!(replies, [Frame::Bulk(bytes("1")), Frame::Integer(2)]);
        assert!(!client.is_cluster_mode());
    })
    .await;
}
