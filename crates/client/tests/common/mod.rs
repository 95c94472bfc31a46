//! Test fixtures: a real `cohort` process per test, and a TCP proxy that can cut a connection
//! after the server received a request but before its reply reaches the client.

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test's own bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// The server binary: `COHORT_BIN`, or the workspace's release build.
fn binary() -> Option<PathBuf> {
    let path = match std::env::var_os("COHORT_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/cohort"),
    };
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "cohort binary not found at {}: build it with `cargo build --release -p server`",
        path.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    loud(&message);
    None
}

/// Prints past the test harness's output capture, so a skip is seen even when the test passes.
pub fn loud(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "\n!!!!!!!! SKIPPING: {message} !!!!!!!!\n");
}

/// Servers run one at a time: the tests measure leases and timeouts in hundreds of milliseconds,
/// which a machine shared by many fsyncing servers cannot keep.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The turn to run servers. A test that failed while holding it poisons it; it is still free.
fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A one-node `cohort serve`, killed and its data removed on drop.
pub struct Server {
    child: Child,
    /// Released after the process is killed (fields drop after `Drop::drop`).
    _turn: MutexGuard<'static, ()>,
    pub port: u16,
    directory: PathBuf,
}

impl Server {
    /// Starts a server and waits until it answers; `None` (after a loud message) if the binary
    /// is missing outside CI.
    pub fn start() -> Option<Server> {
        let binary = binary()?;
        let turn = take_turn();
        let port = free_port();
        let peer_port = free_port();
        let directory =
            std::env::temp_dir().join(format!("cohort-client-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("test directory");
        let log = std::fs::File::create(directory.join("cohort.log")).expect("log file");
        let child = Command::new(binary)
            .arg("serve")
            .args(["--port", &port.to_string(), "--peer-port", &peer_port.to_string()])
            .arg("--data-dir")
            .arg(directory.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start cohort");
        let server = Server { child, _turn: turn, port, directory };
        server.wait_ready();
        Some(server)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                stream.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
                // A write succeeds only once the node has a leader; before, it waits or fails.
                let request = b"*3\r\n$3\r\nSET\r\n$5\r\nready\r\n$1\r\n1\r\n";
                let mut reply = [0u8; 64];
                if stream.write_all(request).is_ok() {
                    if let Ok(count) = stream.read(&mut reply) {
                        if reply[..count].starts_with(b"+OK") {
                            return;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cohort on port {} did not become ready; see {}", self.port, self.log_path());
    }

    fn log_path(&self) -> String {
        self.directory.join("cohort.log").display().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A sharded cluster of `cohort serve` processes on free ports, all started with `flags` (e.g.
/// `--shards 6 --replicas 3 --cluster-enabled yes`); killed and their data removed on drop.
pub struct Cluster {
    children: Vec<Child>,
    _turn: MutexGuard<'static, ()>,
    pub ports: Vec<u16>,
    directory: PathBuf,
}

impl Cluster {
    /// Starts `nodes` processes and waits until every one accepts connections; `None` (after a
    /// loud message) if the binary is missing outside CI.
    pub fn start(nodes: usize, flags: &[&str]) -> Option<Cluster> {
        let binary = binary()?;
        let turn = take_turn();
        let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let peer_ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let directory = std::env::temp_dir().join(format!(
            "cohort-client-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("test directory");
        let members: Vec<String> = peer_ports
            .iter()
            .enumerate()
            .map(|(index, port)| format!("{}=127.0.0.1:{port}", index + 1))
            .collect();
        let mut cluster =
            Cluster { children: Vec::new(), _turn: turn, ports: ports.clone(), directory };
        for (index, (port, peer_port)) in ports.iter().zip(&peer_ports).enumerate() {
            let node_directory = cluster.directory.join(format!("node-{}", index + 1));
            std::fs::create_dir_all(&node_directory).expect("node directory");
            let log = std::fs::File::create(node_directory.join("cohort.log")).expect("log file");
            let child = Command::new(&binary)
                .arg("serve")
                .args(["--node-id", &(index + 1).to_string()])
                .args(["--port", &port.to_string(), "--peer-port", &peer_port.to_string()])
                .arg("--data-dir")
                .arg(node_directory.join("data"))
                .args(["--initial-cluster", &members.join(",")])
                .args(flags)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("start cohort");
            cluster.children.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in &ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "node on port {port} did not start; see the logs under {}",
                    cluster.directory.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(cluster)
    }

    pub fn address(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.ports[node])
    }

    /// Kills one node (SIGKILL).
    pub fn kill(&mut self, node: usize) {
        let _ = self.children[node].kill();
        let _ = self.children[node].wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// Forwards connections to `target`. While `cuts` is positive, a client request containing
/// `pattern` is forwarded, the server given time to apply it, and then both connections are
/// closed once the server has replied, without passing the reply on: the write surely happened,
/// and the client cannot know.
pub struct CuttingProxy {
    pub port: u16,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(target: String, pattern: &'static [u8], cuts: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let cuts = Arc::new(AtomicUsize::new(cuts));
        let remaining = cuts.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let remaining = remaining.clone();
                tokio::spawn(async move {
                    let _ = relay(client, target, pattern, remaining).await;
                });
            }
        });
        CuttingProxy { port, cuts, task }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts still to make.
    pub fn cuts_left(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    target: String,
    pattern: &[u8],
    cuts: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(target).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cutting = Arc::new(AtomicBool::new(false));
    let cut_seen = cutting.clone();
    let mut replies = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = server_read.read(&mut buffer).await.unwrap_or(0);
            // The first reply after a cut is the cut request's: swallow it and close.
            if count == 0 || cut_seen.load(Ordering::SeqCst) {
                return;
            }
            if client_write.write_all(&buffer[..count]).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let count = client_read.read(&mut buffer).await?;
        if count == 0 {
            break;
        }
        let chunk = &buffer[..count];
        let cut = chunk.windows(pattern.len()).any(|window| window == pattern)
            && cuts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if cut {
            cutting.store(true, Ordering::SeqCst);
            server_write.write_all(chunk).await?;
            // Once the server has replied, the request surely ran; then close both sides.
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut replies).await;
            replies.abort();
            return Ok(());
        }
        server_write.write_all(chunk).await?;
    }
    replies.abort();
    Ok(())
}

/// Runs a test body under [`TEST_TIMEOUT`].
pub async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.expect("test exceeded its time bound");
}
