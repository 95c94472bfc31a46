//! Runs the load generator against tiny in-process servers on loopback and
//! checks that every operation reached the server exactly once, with unique keys.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use loadgen::{Mode, Settings, Stop};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Seen = Arc<Mutex<Vec<String>>>;

/// Accepts connections forever, handing each to `serve`.
async fn listen<F, Fut>(serve: F) -> (std::net::SocketAddr, Seen)
where
    F: Fn(TcpStream, Seen) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, shared.clone()));
        }
    });
    (address, seen)
}

/// Answers every `SET` with `+OK`, or `-ERR` for keys ending in 7, recording keys.
async fn resp_server(stream: TcpStream, seen: Seen) {
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        lines.push(line.trim_end().to_string());
        // *3, $3, SET, $n, key, $n, value
        if lines.len() == 7 {
            assert_eq!(lines[..3], ["*3", "$3", "SET"]);
            let key = lines[4].clone();
            let reply: &[u8] = if key.ends_with('7') { b"-ERR refused\r\n" } else { b"+OK\r\n" };
            seen.lock().unwrap().push(key);
            reader.get_mut().write_all(reply).await.unwrap();
            lines.clear();
        }
    }
}

/// Answers every PUT with a chunked 200 response, recording request bodies.
async fn http_server(stream: TcpStream, seen: Seen) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
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
        seen.lock().unwrap().push(String::from_utf8(body).unwrap());
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        2\r\n{}\r\n0\r\n\r\n";
        reader.get_mut().write_all(response.as_bytes()).await.unwrap();
    }
}

fn settings(mode: Mode, address: std::net::SocketAddr, pipeline: usize) -> Settings {
    Settings {
        mode,
        address,
        connections: 8,
        stop: Stop::Operations(1000),
        pipeline,
        value_size_bytes: 16,
        key_prefix: "k".to_string(),
    }
}

/// Pipelined SETs write each of the 1000 keys once and count refusals as errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_writes_every_key_once() {
    let (address, seen) = listen(resp_server).await;
    let report = loadgen::run(settings(Mode::Resp, address, 16)).await.unwrap();
    let keys = seen.lock().unwrap().clone();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), 1000);
    assert_eq!(unique.len(), 1000);
    assert_eq!(report.errors, 100, "keys 7, 17, … 997 are refused");
    assert_eq!(report.operations, 900);
    assert!(report.latency.p50_us <= report.latency.p99_us);
}

/// etcd PUTs carry base64 keys, and chunked responses keep the connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_puts_every_key_once() {
    let (address, seen) = listen(http_server).await;
    let report = loadgen::run(settings(Mode::Etcd, address, 1)).await.unwrap();
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(report.operations, 1000);
    assert_eq!(report.errors, 0);
    assert_eq!(bodies.iter().collect::<BTreeSet<_>>().len(), 1000);
    // "k000000000000" in base64, value of sixteen 'v'.
    let first = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        loadgen::base64::encode(b"k000000000000"),
        loadgen::base64::encode(&[b'v'; 16])
    );
    assert!(bodies.contains(&first), "{first} not among {:?}", &bodies[..3]);
}

/// A server that is not listening fails the run instead of reporting zeros.
#[tokio::test]
async fn unreachable_server_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    assert!(loadgen::run(settings(Mode::Resp, address, 1)).await.is_err());
}
