//! The client against real `cohort` processes: typed commands, pipelines, exactly-once retries,
//! locks, elections and queues. Each test starts its own one-node server on free ports.

mod common;

use std::time::Duration;

use bytes::Bytes;
use client::{Client, End, Error, Frame, Options};
use common::{bounded, CuttingProxy, Server};

macro_rules! server_or_skip {
    () => {
        match Server::start() {
            Some(server) => server,
            None => return,
        }
    };
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_commands_return_typed_values() {
    // Goal: each typed call sends the right command and decodes the reply into the right type.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        assert!(!client.is_cluster_mode(), "cluster support disabled: routed as before");
        assert_eq!(client.get("missing").await.unwrap(), None);
        client.set("k", "v").await.unwrap();
        assert_eq!(client.get("k").await.unwrap(), Some(bytes("v")));
        assert!(!client.set_if_absent("k", "w").await.unwrap());
        assert!(client.set_if_absent("k2", "w").await.unwrap());
        assert_eq!(client.incr("n").await.unwrap(), 1);
        assert_eq!(client.incr_by("n", 41).await.unwrap(), 42);
        assert!(client.exists("n").await.unwrap());
        assert_eq!(client.ttl("n").await.unwrap(), None);
        assert!(client.expire("n", Duration::from_secs(100)).await.unwrap());
        let ttl = client.ttl("n").await.unwrap().expect("a TTL");
        assert!(ttl > Duration::from_secs(90) && ttl <= Duration::from_secs(100), "{ttl:?}");
        assert_eq!(client.del(&["n", "k2", "absent"]).await.unwrap(), 2);

        assert_eq!(client.lpush("list", &["a", "b"]).await.unwrap(), 2);
        assert_eq!(client.rpush("list", &["c"]).await.unwrap(), 3);
        assert_eq!(
            client.lrange("list", 0, -1).await.unwrap(),
            [bytes("b"), bytes("a"), bytes("c")]
        );
        assert_eq!(client.rpop("list").await.unwrap(), Some(bytes("c")));
        assert_eq!(client.lpop("list").await.unwrap(), Some(bytes("b")));
        assert_eq!(client.llen("list").await.unwrap(), 1);

        assert_eq!(client.hset("h", &[("f1", "1"), ("f2", "2")]).await.unwrap(), 2);
        assert_eq!(client.hget("h", "f2").await.unwrap(), Some(bytes("2")));
        let mut all = client.hgetall("h").await.unwrap();
        all.sort();
        assert_eq!(all, [(bytes("f1"), bytes("1")), (bytes("f2"), bytes("2"))]);
        assert_eq!(client.hdel("h", &["f1", "nope"]).await.unwrap(), 1);

        // The raw command and typed errors.
        let reply = client.command(&[b"ECHO", b"hi"]).await.unwrap();
        assert_eq!(reply, Frame::Bulk(bytes("hi")));
        let wrong = client.incr("list").await.unwrap_err();
        assert!(wrong.is_server_code("WRONGTYPE"), "{wrong}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queue_blocking_pops_wait_and_time_out() {
    // Goal: BRPOP/BLMOVE return None after their timeout and the element once one is pushed.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(client.brpop(&["jobs"], Duration::from_millis(200)).await.unwrap(), None);
        assert!(started.elapsed() >= Duration::from_millis(150));

        let producer = client.clone();
        let push = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            producer.lpush("jobs", &["job-1"]).await.unwrap();
        });
        let popped = client.brpop(&["jobs"], Duration::from_secs(5)).await.unwrap();
        assert_eq!(popped, Some((bytes("jobs"), bytes("job-1"))));
        push.await.unwrap();

        client.lpush("jobs", &["job-2"]).await.unwrap();
        let moved = client
            .blmove("jobs", "processing", End::Right, End::Left, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(moved, Some(bytes("job-2")));
        assert_eq!(client.lrange("processing", 0, -1).await.unwrap(), [bytes("job-2")]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_return_replies_in_order_with_errors_in_place() {
    // Goal: a pipeline's replies come back one per command, in order, error replies in place,
    // both with sessions (writes wrapped in SEQ) and without.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        for (round, client) in [client.clone(), client.raw()].into_iter().enumerate() {
            let replies = client
                .pipeline()
                .cmd(&[b"SET", b"p", b"x"])
                .cmd(&[b"INCR", b"p"])
                .cmd(&[b"DEL", b"p"])
                .cmd(&[b"INCR", b"p"])
                .cmd(&[b"INCR", b"p"])
                .cmd(&[b"GET", b"p"])
                .query()
                .await
                .unwrap();
            assert_eq!(replies.len(), 6, "round {round}");
            assert_eq!(replies[0], Frame::Simple("OK".into()));
            assert!(matches!(&replies[1], Frame::Error(text) if text.starts_with("ERR")));
            assert_eq!(replies[2], Frame::Integer(1));
            assert_eq!(replies[3], Frame::Integer(1));
            assert_eq!(replies[4], Frame::Integer(2));
            assert_eq!(replies[5], Frame::Bulk(bytes("2")));
        }
        assert!(client.pipeline().query().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_with_the_same_number_applies_once() {
    // Goal: the server side of exactly-once: the same (session, n) sent twice has one effect and
    // the same reply; an unknown session is SESSIONEXPIRED.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap().raw();
        let Frame::Integer(id) = client.command(&[b"SESSION.OPEN"]).await.unwrap() else {
            panic!("a session id")
        };
        let id = id.to_string();
        let seq = |n: &'static [u8]| [b"SEQ".as_slice(), id.as_bytes(), n, b"INCR", b"once"];
        assert_eq!(client.command(&seq(b"1")).await.unwrap(), Frame::Integer(1));
        assert_eq!(client.command(&seq(b"1")).await.unwrap(), Frame::Integer(1));
        assert_eq!(client.get("once").await.unwrap(), Some(bytes("1")));
        assert_eq!(client.command(&seq(b"2")).await.unwrap(), Frame::Integer(2));
        let expired = client.command(&[b"SEQ", b"999999", b"1", b"INCR", b"once"]).await;
        assert!(expired.unwrap_err().is_server_code("SESSIONEXPIRED"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_reply_is_lost_is_retried_and_applied_once() {
    // Goal: the connection dies after the server applied an INCR but before the reply arrived;
    // the client retries with the same sequence number and the counter moves by exactly one.
    // Without sessions, the same loss surfaces as an error instead of a second increment.
    let server = server_or_skip!();
    bounded(async {
        let direct = Client::connect(&[&server.address()]).await.unwrap();

        let proxy = CuttingProxy::start(server.address(), b"INCR", 1).await;
        let client = Client::connect(&[&proxy.address()]).await.unwrap();
        assert_eq!(client.incr("counter").await.unwrap(), 1);
        assert_eq!(proxy.cuts_left(), 0, "the proxy cut the first attempt");
        assert_eq!(direct.get("counter").await.unwrap(), Some(bytes("1")));
        assert_eq!(client.incr("counter").await.unwrap(), 2);

        let proxy = CuttingProxy::start(server.address(), b"INCR", 1).await;
        let raw = Client::connect(&[&proxy.address()]).await.unwrap().raw();
        let error = raw.incr("counter").await.unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error}");
        assert_eq!(direct.get("counter").await.unwrap(), Some(bytes("3")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_reopened_or_reported() {
    // Goal: a session that idled out is replaced silently when the write surely did not run, and
    // reported as SessionExpired when an earlier attempt may have run.
    let server = server_or_skip!();
    bounded(async {
        let options = Options {
            session_idle: Duration::from_millis(200),
            backoff_initial: Duration::from_millis(500),
            ..Options::default()
        };
        let client = Client::connect_with(&[&server.address()], options.clone()).await.unwrap();
        assert_eq!(client.incr("s").await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(client.incr("s").await.unwrap(), 2, "reopened transparently");

        // First attempt applied and cut; the retry comes after the session idled out.
        let proxy = CuttingProxy::start(server.address(), b"INCR", 1).await;
        let client = Client::connect_with(&[&proxy.address()], options).await.unwrap();
        let error = client.incr("s").await.unwrap_err();
        assert!(matches!(error, Error::SessionExpired(_)), "{error}");
        assert_eq!(client.get("s").await.unwrap(), Some(bytes("3")), "applied once");
        assert_eq!(client.incr("s").await.unwrap(), 4, "the next write uses a new session");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_lock_is_granted_a_larger_token_after_release() {
    // Goal: a second client queues for a held lock, gets it only after the first releases, and
    // its fencing token is larger; a dropped guard releases in the background.
    let server = server_or_skip!();
    bounded(async {
        let first = Client::connect(&[&server.address()]).await.unwrap();
        let second = Client::connect(&[&server.address()]).await.unwrap();
        let ttl = Duration::from_secs(3);
        let held = first.lock("resource", ttl).owner("first").acquire().await.unwrap();

        let busy = second.lock("resource", ttl).acquire().await.unwrap_err();
        assert!(matches!(busy, Error::LockNotAcquired(_)), "{busy}");
        let waiter = tokio::spawn(async move {
            second.lock("resource", ttl).wait(Duration::from_secs(5)).acquire().await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "the second client waits while the lock is held");
        let first_token = held.token();
        assert!(held.release().await.unwrap(), "released while held");
        let granted = waiter.await.unwrap().unwrap();
        assert!(granted.token() > first_token, "{} > {first_token}", granted.token());
        assert!(!granted.lost());

        let token = granted.token();
        drop(granted);
        // The background release frees the lock well before its 3 s lease would end.
        let again = first.lock("resource", ttl).wait(Duration::from_secs(1)).acquire().await;
        assert!(again.unwrap().token() > token);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_reported_and_its_fenced_writes_refused() {
    // Goal: while held, the guard's refresher keeps the lease past its ttl and fenced writes run;
    // once the lease is taken away the guard reports it lost and fenced writes are refused.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        // Leases are generous: a loaded machine may stall a refresh for a second.
        let guard = client.lock("lease", Duration::from_secs(3)).acquire().await.unwrap();
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert!(!guard.lost(), "refreshed past its ttl");
        let reply = guard.fenced(&[b"SET", b"fenced-key", b"1"]).await.unwrap();
        assert_eq!(reply, Frame::Simple("OK".into()));

        // Someone else ends the lease (as an expiry during a long pause would).
        let other = Client::connect(&[&server.address()]).await.unwrap();
        assert!(other
            .command(&[b"LOCK.RELEASE", b"lease", guard.token().to_string().as_bytes()])
            .await
            .map(|reply| reply == Frame::Integer(1))
            .unwrap());
        let successor = other.lock("lease", Duration::from_secs(5)).acquire().await.unwrap();
        tokio::time::timeout(Duration::from_secs(3), guard.wait_lost()).await.expect("lost seen");
        assert!(guard.lost());

        let refused = guard.fenced(&[b"SET", b"fenced-key", b"2"]).await.unwrap_err();
        assert!(matches!(refused, Error::Fenced(_)), "{refused}");
        assert_eq!(client.get("fenced-key").await.unwrap(), Some(bytes("1")));
        successor.fenced(&[b"SET", b"fenced-key", b"3"]).await.unwrap();
        assert_eq!(client.get("fenced-key").await.unwrap(), Some(bytes("3")));
        assert!(!guard.release().await.unwrap(), "no longer held");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_each_new_leader() {
    // Goal: an observer waiting on an empty election wakes with the first leader; observing after
    // that leader's token wakes with the next one once the first resigns.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        assert_eq!(client.leader("scheduler").await.unwrap(), None);
        let observer = client.clone();
        let first_seen = tokio::spawn(async move {
            observer.observe("scheduler", None, Duration::from_secs(5)).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ttl = Duration::from_secs(5);
        let term_a = client.campaign("scheduler", "a", ttl, None).await.unwrap().expect("leads");
        let seen = first_seen.await.unwrap().unwrap().expect("a leader");
        assert_eq!((seen.value.clone(), seen.token), (bytes("a"), term_a.token()));
        assert_eq!(client.leader("scheduler").await.unwrap(), Some(seen.clone()));
        assert!(client.campaign("scheduler", "b", ttl, None).await.unwrap().is_none());

        let observer = client.clone();
        let after = seen.token;
        let next_seen = tokio::spawn(async move {
            observer.observe("scheduler", Some(after), Duration::from_secs(5)).await
        });
        let candidate = client.clone();
        let term_b = tokio::spawn(async move {
            candidate.campaign("scheduler", "b", ttl, Some(Duration::from_secs(5))).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(client.resign("scheduler", term_a.token()).await.unwrap());
        let term_b = term_b.await.unwrap().unwrap().expect("b leads after a resigns");
        let next = next_seen.await.unwrap().unwrap().expect("the next leader");
        assert_eq!((next.value, next.token), (bytes("b"), term_b.token()));
        assert!(next.token > after);
        // An observer with nothing new to see times out with None.
        let quiet = client.observe("scheduler", Some(next.token), Duration::from_millis(200)).await;
        assert_eq!(quiet.unwrap(), None);
        drop(term_a);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_consumer_groups_deliver_acknowledge_and_reclaim() {
    // Goal: entries added to a stream are delivered to one consumer each, acknowledged ones leave
    // the pending list, and unacknowledged ones are reclaimed by another consumer.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        if let Err(error) = client.xgroup_create("tasks", "workers", "$", true).await {
            if error.to_string().contains("unknown command") && std::env::var_os("CI").is_none() {
                common::loud("this cohort build has no streams");
                return;
            }
            panic!("{error}");
        }
        let mut ids = Vec::new();
        for job in ["a", "b", "c"] {
            ids.push(client.xadd("tasks", "*", &[("job", job)]).await.unwrap());
        }
        let first = client.xreadgroup("workers", "w1", "tasks", ">", 2, None).await.unwrap();
        assert_eq!(first.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids[..2]);
        assert_eq!(first[0].fields, [(bytes("job"), bytes("a"))]);
        let second = client
            .xreadgroup("workers", "w2", "tasks", ">", 10, Some(Duration::from_millis(100)))
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, ids[2]);
        assert_eq!(client.xack("tasks", "workers", &[&ids[0], &ids[2]]).await.unwrap(), 2);
        let empty = client
            .xreadgroup("workers", "w2", "tasks", ">", 10, Some(Duration::from_millis(100)))
            .await
            .unwrap();
        assert!(empty.is_empty());

        // w1 "crashed" holding ids[1]; w2 takes it over.
        let claimed =
            client.xautoclaim("tasks", "workers", "w2", Duration::ZERO, "0", 10).await.unwrap();
        assert_eq!(claimed.entries.len(), 1);
        assert_eq!(claimed.entries[0].id, ids[1]);
        assert_eq!(client.xack("tasks", "workers", &[&ids[1]]).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_whose_replies_are_lost_is_retried_and_applied_once() {
    // Goal: a pipeline of writes applied by the server but cut before its replies arrive is
    // re-sent and every write is answered from its session: each counter moves by one.
    let server = server_or_skip!();
    bounded(async {
        let proxy = CuttingProxy::start(server.address(), b"INCR", 1).await;
        let client = Client::connect(&[&proxy.address()]).await.unwrap();
        let replies = client
            .pipeline()
            .cmd(&[b"INCR", b"x"])
            .cmd(&[b"INCR", b"y"])
            .cmd(&[b"INCRBY", b"x", b"10"])
            .cmd(&[b"GET", b"x"])
            .query()
            .await
            .unwrap();
        assert_eq!(proxy.cuts_left(), 0, "the proxy cut the first attempt");
        let expected = [Frame::Integer(1), Frame::Integer(1), Frame::Integer(11)];
        assert_eq!(replies[..3], expected);
        assert_eq!(replies[3], Frame::Bulk(bytes("11")));
        assert_eq!(client.get("y").await.unwrap(), Some(bytes("1")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_over_past_an_address_that_refuses_connections() {
    // Goal: with a dead first address, connecting and writing go to the next one.
    let server = server_or_skip!();
    bounded(async {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let dead = dead.to_string(); // the listener is dropped: connections are refused
        let client = Client::connect(&[&dead, &server.address()]).await.unwrap();
        assert_eq!(client.incr("failover").await.unwrap(), 1);
        let only_dead = Options { attempts_max: 2, ..Options::default() };
        let error = Client::connect_with(&[&dead], only_dead).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_be_refreshed_is_reported_lost() {
    // Goal: when the cluster becomes unreachable, the guard reports the lease lost once a whole
    // ttl has passed without a successful refresh.
    let server = server_or_skip!();
    bounded(async {
        let client = Client::connect(&[&server.address()]).await.unwrap();
        let ttl = Duration::from_secs(3);
        let guard = client.lock("unreachable", ttl).acquire().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!guard.lost());
        drop(server); // kills the process
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), guard.wait_lost()).await.expect("lost seen");
        assert!(started.elapsed() <= ttl + Duration::from_secs(1), "{:?}", started.elapsed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_whose_reply_is_lost_returns_the_same_element_once() {
    // Goal: blocking pops and group reads run inside the session, so a retry after a lost reply
    // gets the element the first attempt took, and no second element is consumed.
    let server = server_or_skip!();
    bounded(async {
        let direct = Client::connect(&[&server.address()]).await.unwrap();
        direct.lpush("q", &["one", "two"]).await.unwrap();
        let proxy = CuttingProxy::start(server.address(), b"BRPOP", 1).await;
        let client = Client::connect(&[&proxy.address()]).await.unwrap();
        let popped = client.brpop(&["q"], Duration::from_secs(2)).await.unwrap();
        assert_eq!(proxy.cuts_left(), 0, "the proxy cut the first attempt");
        assert_eq!(popped, Some((bytes("q"), bytes("one"))));
        assert_eq!(direct.lrange("q", 0, -1).await.unwrap(), [bytes("two")]);

        direct.xgroup_create("s", "g", "0", true).await.unwrap();
        let first = direct.xadd("s", "*", &[("n", "1")]).await.unwrap();
        let second = direct.xadd("s", "*", &[("n", "2")]).await.unwrap();
        let proxy = CuttingProxy::start(server.address(), b"XREADGROUP", 1).await;
        let client = Client::connect(&[&proxy.address()]).await.unwrap();
        let read = client.xreadgroup("g", "c", "s", ">", 1, None).await.unwrap();
        assert_eq!(proxy.cuts_left(), 0, "the proxy cut the first attempt");
        assert_eq!(read.iter().map(|entry| &entry.id).collect::<Vec<_>>(), [&first]);
        let next = direct.xreadgroup("g", "c", "s", ">", 10, None).await.unwrap();
        assert_eq!(next.iter().map(|entry| &entry.id).collect::<Vec<_>>(), [&second]);
    })
    .await;
}
