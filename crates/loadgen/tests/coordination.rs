//! Runs the lock, queue and failover modes against small in-process fakes on
//! loopback: a RESP server with just enough of `SET NX`, `EVAL`, `LOCK.*` and
//! streams, and an HTTP server with etcd's lease and lock endpoints. Each
//! check is also run against a deliberately broken fake to prove it can fail.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadgen::failover::FailoverSettings;
use loadgen::lock::{LockBackend, LockSettings};
use loadgen::queue::QueueSettings;
use loadgen::resp::{encode_command, parse, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The fake's whole state, behind one mutex.
#[derive(Default)]
struct State {
    strings: BTreeMap<Vec<u8>, Vec<u8>>,
    lock_token: Option<i64>,
    next_token: i64,
    entries: Vec<(String, Vec<Vec<u8>>)>,
    /// Entries before this index were delivered to the group.
    delivered: usize,
    pending: BTreeMap<String, ()>,
    /// Grant every LOCK.ACQUIRE, held or not.
    broken_lock: bool,
    /// Skip every tenth entry when delivering.
    lossy_queue: bool,
    /// Stop answering (the process froze).
    frozen: bool,
}

type Shared = Arc<Mutex<State>>;

async fn listen(state: Shared) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_resp(stream, state.clone()));
        }
    });
    address
}

async fn serve_resp(mut stream: TcpStream, state: Shared) {
    let mut buffer = Vec::new();
    loop {
        while let Some((request, used)) = parse(&buffer, 0).unwrap() {
            buffer.drain(..used);
            let Value::Array(words) = request else { panic!("request is not an array") };
            let words: Vec<Vec<u8>> = words
                .into_iter()
                .map(|word| match word {
                    Value::Bulk(bytes) => bytes,
                    other => panic!("word {other:?}"),
                })
                .collect();
            let reply = answer(&state, &words).await;
            if reply.is_empty() {
                return;
            }
            if stream.write_all(&reply).await.is_err() {
                return;
            }
        }
        if stream.read_buf(&mut buffer).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

fn bulk(bytes: &[u8]) -> Vec<u8> {
    let mut output = format!("${}\r\n", bytes.len()).into_bytes();
    output.extend_from_slice(bytes);
    output.extend_from_slice(b"\r\n");
    output
}

fn number(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes).unwrap().parse().unwrap()
}

/// One reply in RESP bytes, waiting (by polling) while a blocking command blocks.
async fn answer(state: &Shared, words: &[Vec<u8>]) -> Vec<u8> {
    let waited = Instant::now();
    loop {
        let reply = {
            let mut state = state.lock().unwrap();
            if state.frozen {
                None
            } else {
                try_answer(&mut state, words, waited)
            }
        };
        if let Some(reply) = reply {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The reply, or `None` while the command blocks (or the fake is frozen).
fn try_answer(state: &mut State, words: &[Vec<u8>], waited: Instant) -> Option<Vec<u8>> {
    let command = String::from_utf8_lossy(&words[0]).to_uppercase();
    match command.as_str() {
        "SET" if words.len() == 6 => {
            // SET name token NX PX ttl
            if state.strings.contains_key(&words[1]) {
                return Some(b"$-1\r\n".to_vec());
            }
            state.strings.insert(words[1].clone(), words[2].clone());
            return Some(b"+OK\r\n".to_vec());
        }
        "SET" => return Some(b"+OK\r\n".to_vec()),
        "EVAL" => {
            // EVAL script 1 name token: check-and-delete.
            let released = state.strings.get(&words[3]) == Some(&words[4]);
            if released {
                state.strings.remove(&words[3]);
            }
            return Some(format!(":{}\r\n", u8::from(released)).into_bytes());
        }
        "LOCK.ACQUIRE" => {
            let wait = Duration::from_millis(number(&words[4]));
            if state.lock_token.is_none() || state.broken_lock {
                state.next_token += 1;
                state.lock_token = Some(state.next_token);
                return Some(format!(":{}\r\n", state.next_token).into_bytes());
            }
            if waited.elapsed() >= wait {
                return Some(b"$-1\r\n".to_vec());
            }
        }
        "LOCK.RELEASE" => {
            let token = number(&words[2]) as i64;
            let released = state.lock_token == Some(token);
            if released {
                state.lock_token = None;
            }
            return Some(format!(":{}\r\n", u8::from(released)).into_bytes());
        }
        "XGROUP" => return Some(b"+OK\r\n".to_vec()),
        "XADD" => {
            let id = format!("{}-0", state.entries.len() + 1);
            state.entries.push((id.clone(), words[3..].to_vec()));
            return Some(bulk(id.as_bytes()));
        }
        "XREADGROUP" => {
            // XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s >
            let count = number(&words[5]) as usize;
            let block = Duration::from_millis(number(&words[7]));
            if state.delivered < state.entries.len() {
                let end = (state.delivered + count).min(state.entries.len());
                let mut entries = Vec::new();
                for index in state.delivered..end {
                    if state.lossy_queue && index % 10 == 9 {
                        continue;
                    }
                    let (id, fields) = &state.entries[index];
                    state.pending.insert(id.clone(), ());
                    let mut entry = b"*2\r\n".to_vec();
                    entry.extend(bulk(id.as_bytes()));
                    let words: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                    encode_command(&mut entry, &words);
                    entries.push(entry);
                }
                state.delivered = end;
                let mut reply = b"*1\r\n*2\r\n".to_vec();
                reply.extend(bulk(&words[9]));
                reply.extend(format!("*{}\r\n", entries.len()).into_bytes());
                reply.extend(entries.concat());
                return Some(reply);
            }
            if waited.elapsed() >= block {
                return Some(b"*-1\r\n".to_vec());
            }
        }
        "XACK" => {
            let mut acked = 0;
            for id in &words[3..] {
                if state.pending.remove(&String::from_utf8_lossy(id).into_owned()).is_some() {
                    acked += 1;
                }
            }
            return Some(format!(":{acked}\r\n").into_bytes());
        }
        other => return Some(format!("-ERR unknown command {other}\r\n").into_bytes()),
    }
    None
}

fn lock_settings(backend: LockBackend, address: SocketAddr, contenders: usize) -> LockSettings {
    LockSettings {
        backend,
        address,
        contenders,
        duration: Duration::from_millis(400),
        ttl_ms: 10_000,
        wait_ms: 50,
        retry_sleep: Duration::from_micros(500),
        hold: Duration::ZERO,
        lock_name: "bench-lock".to_string(),
    }
}

/// Contending cohort-style lock cycles complete, and the lock is never held twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohort_lock_cycles_exclude_each_other() {
    let address = listen(Shared::default()).await;
    let report = loadgen::lock::run(lock_settings(LockBackend::Cohort, address, 4)).await.unwrap();
    assert!(report.cycles > 10, "{}", report.line());
    assert_eq!((report.errors, report.overlaps), (0, 0), "{}", report.line());
    assert!(report.latency.p50_us <= report.latency.p99_us);
}

/// Redis-style `SET NX` locks retry refusals and release by check-and-delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lock_cycles_retry_and_release() {
    let state = Shared::default();
    let address = listen(state.clone()).await;
    let report = loadgen::lock::run(lock_settings(LockBackend::Redis, address, 4)).await.unwrap();
    assert!(report.cycles > 10, "{}", report.line());
    assert!(report.retries > 0, "four contenders on one lock must be refused sometimes");
    assert_eq!((report.errors, report.overlaps), (0, 0), "{}", report.line());
    assert!(state.lock().unwrap().strings.is_empty(), "every cycle released its lock");
}

/// A lock that grants everyone is caught as overlapping holders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_lock_is_reported_as_overlaps() {
    let state = Shared::default();
    state.lock().unwrap().broken_lock = true;
    let address = listen(state).await;
    let mut settings = lock_settings(LockBackend::Cohort, address, 4);
    settings.hold = Duration::from_millis(2);
    let report = loadgen::lock::run(settings).await.unwrap();
    assert!(report.overlaps > 0, "{}", report.line());
}

/// Every entry produced is delivered once and acknowledged; the rate is positive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_every_entry() {
    let address = listen(Shared::default()).await;
    let report = loadgen::queue::run(queue_settings(address)).await.unwrap();
    assert!(report.produced > 100, "{}", report.line());
    assert!(report.delivered_all(), "{}", report.line());
    assert_eq!(report.acked, report.produced);
    assert!(report.entries_per_second() > 0.0);
}

/// A queue that loses entries is caught by the delivery check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_losing_entries_is_caught() {
    let state = Shared::default();
    state.lock().unwrap().lossy_queue = true;
    let address = listen(state).await;
    let mut settings = queue_settings(address);
    settings.drain = Duration::from_millis(300);
    let report = loadgen::queue::run(settings).await.unwrap();
    assert!(report.missing > 0, "{}", report.line());
    assert!(!report.delivered_all());
}

fn queue_settings(address: SocketAddr) -> QueueSettings {
    QueueSettings {
        address,
        producers: 2,
        consumers: 2,
        pipeline: 8,
        count: 100,
        block_ms: 20,
        duration: Duration::from_millis(300),
        drain: Duration::from_secs(5),
        backlog_max: 500,
        stream: "s".to_string(),
        group: "g".to_string(),
    }
}

/// Writers move off a node that stops answering; the gap is where it froze.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_measures_the_gap_around_a_frozen_node() {
    let first = Shared::default();
    let addresses = vec![listen(first.clone()).await, listen(Shared::default()).await];
    let settings = FailoverSettings {
        addresses,
        writers: 1,
        duration: Duration::from_millis(600),
        request_timeout: Duration::from_millis(100),
        kill: None,
    };
    let freezer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        first.lock().unwrap().frozen = true;
    });
    let report = loadgen::failover::run(settings).await.unwrap();
    freezer.await.unwrap();
    assert!(report.writes > 10, "{}", report.line());
    assert!(report.failures >= 1, "{}", report.line());
    // One timed-out request (100 ms) plus a reconnect, starting near 200 ms.
    assert!(report.gap >= Duration::from_millis(90), "{}", report.line());
    assert!(report.gap < Duration::from_millis(350), "{}", report.line());
    let start_ms = report.gap_start.as_millis();
    assert!((150..=300).contains(&start_ms), "{}", report.line());
}

/// The run kills the given process at the given time and measures writes around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_kills_the_process_on_time() {
    let mut victim = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let settings = FailoverSettings {
        addresses: vec![listen(Shared::default()).await],
        writers: 2,
        duration: Duration::from_millis(400),
        request_timeout: Duration::from_millis(100),
        kill: Some((victim.id(), Duration::from_millis(200))),
    };
    let report = loadgen::failover::run(settings).await.unwrap();
    let status = victim.wait().unwrap();
    assert!(!status.success(), "the victim was killed, not left to finish");
    let kill = report.kill.clone().unwrap();
    assert!((200..300).contains(&kill.at.as_millis()), "{}", report.line());
    // The fake kept answering, so writes went on right after the kill.
    assert!(kill.gap_end.is_some() && kill.unavailable < Duration::from_millis(50));
    assert!(kill.gap_start <= kill.at + Duration::from_millis(100), "{}", report.line());
}

/// etcd's lease and lock endpoints, one keep-alive connection at a time.
async fn serve_etcd(stream: TcpStream, held: Arc<Mutex<bool>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut path = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if let Some(rest) = line.strip_prefix("POST ") {
                path = rest.split(' ').next().unwrap().to_string();
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        let body = String::from_utf8(body).unwrap();
        let reply = match path.as_str() {
            "/v3/lease/grant" => r#"{"ID":"42","TTL":"70"}"#.to_string(),
            "/v3/lock/lock" => {
                assert!(body.contains(r#""lease":"42""#), "{body}");
                loop {
                    {
                        let mut held = held.lock().unwrap();
                        if !*held {
                            *held = true;
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                r#"{"header":{},"key":"YmVuY2gtbG9jay8yYQ=="}"#.to_string()
            }
            "/v3/lock/unlock" => {
                assert!(body.contains("YmVuY2gtbG9jay8yYQ=="), "{body}");
                *held.lock().unwrap() = false;
                "{}".to_string()
            }
            "/v3/lease/revoke" => "{}".to_string(),
            other => panic!("unexpected path {other}"),
        };
        let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}", reply.len());
        if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// etcd lock cycles grant a lease, lock with it, unlock by owner key, and exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_lock_cycles_exclude_each_other() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(false));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_etcd(stream, held.clone()));
        }
    });
    let report = loadgen::lock::run(lock_settings(LockBackend::Etcd, address, 3)).await.unwrap();
    assert!(report.cycles > 10, "{}", report.line());
    assert_eq!((report.errors, report.overlaps), (0, 0), "{}", report.line());
}
