//! Hostile and heavy clients against a real `cohort` process: protocol garbage is answered
//! with `-ERR Protocol error…` and a disconnect while other clients carry on; a 600 MiB bulk
//! header is refused before any of it is buffered; 10,000 simultaneous connections are all
//! served; the client limit answers the first client beyond it with Redis's error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{resident_kib, Client, Cluster, ClusterOptions, Reply};

/// Deterministic noise (xorshift64), so a failure reproduces.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends `bytes` and expects one `-ERR Protocol error` line, then the connection closed.
fn expect_protocol_error(port: u16, bytes: &[u8], label: &str) {
    let mut client = Client::connect(port).unwrap();
    client.send_raw(bytes).unwrap();
    let reply = client.read_reply().unwrap_or_else(|error| panic!("{label}: {error}"));
    let Reply::Error(text) = &reply else { panic!("{label}: expected an error, got {reply:?}") };
    assert!(text.starts_with("ERR Protocol error"), "{label}: {text}");
    assert!(client.is_closed_by_server(), "{label}: connection left open after {text}");
}

#[test]
fn garbage_gets_a_protocol_error_and_others_keep_working() {
    // Goal: clients sending noise are cut off with a protocol error while a well-behaved client
    // on the same server is unaffected.
    let cluster = Cluster::start("abuse-garbage", 1, &[]);
    let port = cluster.node(1).port;
    let mut good = Client::connect(port).unwrap();
    assert!(good.command(&["SET", "steady", "0"]).unwrap().is_ok());
    for seed in 1..=20u64 {
        // A multibulk header followed by noise: never a valid count.
        let mut bytes = b"*".to_vec();
        bytes.extend(noise(seed, 200).into_iter().map(|byte| {
            if byte.is_ascii_digit() {
                b'x'
            } else {
                byte
            }
        }));
        bytes.extend(b"\r\n");
        expect_protocol_error(port, &bytes, &format!("multibulk noise, seed {seed}"));
        // An inline line that never ends: refused once it is longer than the longest line
        // plus its `\r` (64 KiB + 1). Exactly one byte past that, so the server has read
        // everything when it closes (no reset loses the reply).
        let line: Vec<u8> = noise(seed, (64 << 10) + 2)
            .into_iter()
            .map(|byte| if byte == b'\n' || byte == b'\r' { b'.' } else { byte })
            .collect();
        expect_protocol_error(port, &line, &format!("endless inline line, seed {seed}"));
        let count = good.command(&["INCR", "steady"]).unwrap();
        assert_eq!(count, Reply::Integer(seed as i64), "the good client after seed {seed}");
    }
    // Each garbage client was disconnected: only the good one (and INFO's own) remain.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let clients = cluster.node(1).info("clients").unwrap();
        let connected: u64 = clients["connected_clients"].parse().unwrap();
        if connected <= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{connected} clients still connected");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_huge_bulk_header_is_refused_without_allocating() {
    // Goal: `$629145600` (600 MiB, past the 512 MiB limit) is refused with Redis's error at the
    // header, and the server's resident memory does not grow toward the announced size.
    let _exclusive = common::exclusive();
    let cluster = Cluster::start("abuse-bulk", 1, &[]);
    let node = cluster.node(1);
    let before_kib = resident_kib(node.pid());
    for _ in 0..5 {
        let mut client = Client::connect(node.port).unwrap();
        // Only the header: bytes the server never reads would make its close a reset, which
        // can discard the reply before this client reads it.
        client.send_raw(b"*1\r\n$629145600\r\n").unwrap();
        let reply = client.read_reply().unwrap();
        assert_eq!(reply, Reply::Error("ERR Protocol error: invalid bulk length".to_string()));
        assert!(client.is_closed_by_server());
    }
    // Just under the limit is a valid header: the server may wait for the body, but must not
    // reserve it up front.
    let mut pending = Client::connect(node.port).unwrap();
    pending.send_raw(b"*2\r\n$4\r\nECHO\r\n$536870000\r\n").unwrap();
    pending.send_raw(&[b'b'; 1 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after_kib = resident_kib(node.pid());
    eprintln!("resident memory: {before_kib} KiB before, {after_kib} KiB after");
    assert!(after_kib < 200 << 10, "resident memory {after_kib} KiB");
    assert!(after_kib < before_kib + (64 << 10), "grew from {before_kib} to {after_kib} KiB");
    drop(pending);
    let mut client = Client::connect(node.port).unwrap();
    assert_eq!(client.command(&["PING"]).unwrap(), Reply::Simple("PONG".to_string()));
}

/// Raises this process's open-file limit (children inherit it) as far as allowed, up to
/// `wanted`; returns the soft limit now in force.
fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(result, 0, "getrlimit: {}", std::io::Error::last_os_error());
    if limit.rlim_cur >= wanted {
        return limit.rlim_cur;
    }
    // Root may raise the hard limit too; anyone may raise the soft one up to the hard one.
    let raised = libc::rlimit { rlim_cur: wanted, rlim_max: wanted.max(limit.rlim_max) };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return wanted;
    }
    let capped = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
    // SAFETY: as above.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) };
    assert_eq!(result, 0, "setrlimit: {}", std::io::Error::last_os_error());
    limit.rlim_max
}

const CONNECTIONS: usize = 10_000;
/// File descriptors the test process needs beyond the connections (pipes, logs, the runtime).
const SPARE_FILES: u64 = 500;

#[test]
fn ten_thousand_connections_are_served() {
    // Goal: 10,000 clients connected at once all get PONG, and the server stays healthy.
    let _exclusive = common::exclusive();
    let open_files = raise_open_files(65_536);
    assert!(
        open_files >= CONNECTIONS as u64 + SPARE_FILES,
        "the open-file limit is {open_files}; this test needs {}",
        CONNECTIONS as u64 + SPARE_FILES
    );
    let mut options = ClusterOptions::new("abuse-many", 1).with(&["--max-clients", "20000"]);
    options.open_files_max = Some(open_files);
    let cluster = Cluster::start_with(options);
    let port = cluster.node(1).port;

    // Connect from a few threads at once; each keeps its sockets open.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..CONNECTIONS / 4)
                    .map(|_| {
                        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                        TcpStream::connect_timeout(&address, Duration::from_secs(10))
                            .expect("connecting")
                    })
                    .collect::<Vec<TcpStream>>()
            })
        })
        .collect();
    let mut sockets: Vec<TcpStream> =
        threads.into_iter().flat_map(|thread| thread.join().expect("connect thread")).collect();
    assert_eq!(sockets.len(), CONNECTIONS);
    for socket in &mut sockets {
        socket.write_all(b"PING\r\n").expect("sending PING");
    }
    for (number, socket) in sockets.iter_mut().enumerate() {
        socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reply = [0u8; 7];
        socket.read_exact(&mut reply).unwrap_or_else(|error| panic!("client {number}: {error}"));
        assert_eq!(&reply, b"+PONG\r\n", "client {number}");
    }
    let clients = cluster.node(1).info("clients").unwrap();
    let connected: usize = clients["connected_clients"].parse().unwrap();
    assert!(connected > CONNECTIONS, "connected_clients {connected}");
    let mut client = Client::connect(port).unwrap();
    let reply = client.command(&["SET", "still", "healthy"]).unwrap();
    assert!(reply.is_ok(), "SET with {CONNECTIONS} clients connected: {reply:?}");
    assert_eq!(client.command(&["GET", "still"]).unwrap(), Reply::bulk("healthy"));
    drop(sockets);
    // Closed connections are released.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let clients = cluster.node(1).info("clients").unwrap();
        let connected: usize = clients["connected_clients"].parse().unwrap();
        if connected <= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{connected} clients still registered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_client_beyond_max_clients_is_refused() {
    // Goal: with `--max-clients 100`, 100 clients are served and the 101st gets Redis's
    // `-ERR max number of clients reached` and is disconnected.
    let cluster = Cluster::start("abuse-max-clients", 1, &["--max-clients", "100"]);
    let port = cluster.node(1).port;
    // Wait until the connections used while starting are released, counting this one.
    let mut first = Client::connect(port).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Reply::Bulk(text) = first.command(&["INFO", "clients"]).unwrap() else {
            panic!("INFO is a bulk reply")
        };
        let info = common::parse_info(&String::from_utf8_lossy(&text));
        if info["connected_clients"] == "1" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "clients linger: {info:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut clients = vec![first];
    for number in 2..=100 {
        let mut client = Client::connect(port).unwrap();
        let pong = client.command(&["PING"]).unwrap();
        assert_eq!(pong, Reply::Simple("PONG".to_string()), "client {number}");
        clients.push(client);
    }
    let mut refused = Client::connect(port).unwrap();
    let reply = refused.read_reply().unwrap();
    assert_eq!(reply, Reply::Error("ERR max number of clients reached".to_string()));
    assert!(refused.is_closed_by_server());
    // Those admitted still work, and a slot frees when one leaves.
    assert_eq!(clients[99].command(&["PING"]).unwrap(), Reply::Simple("PONG".to_string()));
    drop(clients.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut client = Client::connect(port).unwrap();
        match client.command(&["PING"]) {
            Ok(Reply::Simple(pong)) if pong == "PONG" => break,
            other => {
                assert!(std::time::Instant::now() < deadline, "no slot freed: {other:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
