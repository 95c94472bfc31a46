//! Shared helpers for the real-process tests: start `cohort` nodes as child processes on free
//! loopback ports, each with its own temporary data directory, wait for a leader by polling
//! `INFO cohort`, and talk RESP2 over a plain `std::net::TcpStream`.
//!
//! Every process started here is killed when its [`Cluster`] is dropped (also when a test
//! panics), and the cluster's temporary directory is removed; on a panic the tail of each
//! node's log is printed first so a failure can be diagnosed from the test output alone.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test, built by Cargo for integration tests.
pub const COHORT: &str = env!("CARGO_BIN_EXE_cohort");

/// Settings every test cluster uses: short ticks keep elections (10-20 ticks) well under a second.
pub const FAST_SETTINGS: &[&str] = &["--tick-ms", "20", "--request-timeout-ms", "2000"];

/// How long a reply may take before the test client gives up on the connection.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest bulk reply the test client accepts (the server's own default bulk limit).
const BULK_BYTES_MAX: usize = 512 << 20;
/// Deepest nested array the test client accepts.
const NESTING_DEPTH_MAX: usize = 8;
/// Longest header line the test client accepts.
const LINE_BYTES_MAX: usize = 64 << 10;

// ---- a tiny RESP2 client ---------------------------------------------------------------------

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    pub fn bulk(text: &str) -> Reply {
        Reply::Bulk(text.as_bytes().to_vec())
    }

    pub fn is_ok(&self) -> bool {
        *self == Reply::Simple("OK".to_string())
    }

    /// The reply as text, for messages and simple comparisons.
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(text) | Reply::Error(text) => text.clone(),
            Reply::Integer(number) => number.to_string(),
            Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Reply::Nil => "(nil)".to_string(),
            Reply::Array(items) => {
                let texts: Vec<String> = items.iter().map(Reply::text).collect();
                format!("[{}]", texts.join(", "))
            }
        }
    }
}

/// A blocking RESP2 connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.writer.set_read_timeout(Some(timeout))
    }

    /// Sends one command as a multibulk array without waiting for the reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, arguments: &[A]) -> io::Result<()> {
        self.writer.write_all(&encode_command(arguments))
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    pub fn command<A: AsRef<[u8]>>(&mut self, arguments: &[A]) -> io::Result<Reply> {
        self.send(arguments)?;
        self.read_reply()
    }

    /// Sends all commands in one write, then reads their replies in order.
    pub fn pipeline(&mut self, commands: &[Vec<String>]) -> io::Result<Vec<Reply>> {
        let mut bytes = Vec::new();
        for command in commands {
            bytes.extend(encode_command(command));
        }
        self.writer.write_all(&bytes)?;
        commands.iter().map(|_| self.read_reply()).collect()
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_nested(0)
    }

    /// Whether the server has closed the connection (end of stream or reset) with nothing
    /// more to read.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let read =
            (&mut self.reader).take(LINE_BYTES_MAX as u64 + 2).read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        if !line.ends_with(b"\r\n") {
            return Err(invalid(format!("reply line without CRLF: {line:?}")));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|error| invalid(error.to_string()))
    }

    fn read_nested(&mut self, depth: usize) -> io::Result<Reply> {
        if depth > NESTING_DEPTH_MAX {
            return Err(invalid("reply nested too deeply".to_string()));
        }
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => rest.parse().map(Reply::Integer).map_err(|_| invalid(line.clone())),
            "$" => {
                let length: i64 = rest.parse().map_err(|_| invalid(line.clone()))?;
                if length < 0 {
                    return Ok(Reply::Nil);
                }
                let length = usize::try_from(length).map_err(|_| invalid(line.clone()))?;
                if length > BULK_BYTES_MAX {
                    return Err(invalid(format!("bulk of {length} bytes")));
                }
                let mut bytes = vec![0u8; length + 2];
                self.reader.read_exact(&mut bytes)?;
                if !bytes.ends_with(b"\r\n") {
                    return Err(invalid("bulk without CRLF".to_string()));
                }
                bytes.truncate(length);
                Ok(Reply::Bulk(bytes))
            }
            "*" => {
                let count: i64 = rest.parse().map_err(|_| invalid(line.clone()))?;
                if count < 0 {
                    return Ok(Reply::Nil);
                }
                let count = usize::try_from(count).map_err(|_| invalid(line.clone()))?;
                // Each element takes at least three bytes, so the count is bounded by what the
                // server could have sent for a bulk reply.
                if count > BULK_BYTES_MAX / 3 {
                    return Err(invalid(format!("array of {count} elements")));
                }
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    items.push(self.read_nested(depth + 1)?);
                }
                Ok(Reply::Array(items))
            }
            _ => Err(invalid(format!("unknown reply type in {line:?}"))),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

pub fn encode_command<A: AsRef<[u8]>>(arguments: &[A]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", arguments.len()).into_bytes();
    for argument in arguments {
        let argument = argument.as_ref();
        bytes.extend(format!("${}\r\n", argument.len()).as_bytes());
        bytes.extend(argument);
        bytes.extend(b"\r\n");
    }
    bytes
}

/// `words` as owned strings, for [`Client::pipeline`].
pub fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

// ---- processes -------------------------------------------------------------------------------

/// Picks `count` distinct free loopback ports. Every listener is held until all are chosen, so
/// the ports differ from each other; another process could still take one before the node binds
/// it, which makes that node fail to start with a clear "listening for ..." error.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port"))
        .collect();
    listeners.iter().map(|listener| listener.local_addr().expect("local address").port()).collect()
}

/// A fresh, unique directory under the system temporary directory.
fn unique_directory(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let directory = std::env::temp_dir().join(format!(
        "cohort-itest-{name}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&directory).expect("creating a test directory");
    directory
}

/// Sends `signal` to a process.
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal}): {}", io::Error::last_os_error());
}

/// One `cohort serve` process, restartable with the same arguments and data directory.
pub struct Node {
    pub id: u64,
    pub port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    arguments: Vec<String>,
    open_files_max: Option<u64>,
    child: Option<Child>,
}

impl Node {
    /// Starts the process (again, after a stop).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("opening the node log");
        let mut command = match self.open_files_max {
            // `exec` keeps the pid, so signals reach cohort itself.
            Some(limit) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(COHORT);
                command
            }
            None => Command::new(COHORT),
        };
        command
            .args(&self.arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log);
        self.child = Some(command.spawn().expect("starting cohort"));
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process's exit status if it has exited (reaping it); `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful shutdown) and reap; the node must exit within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        signal(self.pid(), libc::SIGTERM);
        match self.wait_exit(timeout) {
            Some(status) => status,
            None => {
                self.kill();
                panic!("node {} ignored SIGTERM for {timeout:?}", self.id);
            }
        }
    }

    /// Waits for the process to exit on its own; `None` if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().expect("waiting for cohort") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
            .unwrap_or_else(|error| panic!("connecting to node {}: {error}", self.id))
    }

    /// Waits until the node answers PING.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok()?) {
                panic!("node {} exited during startup ({status}):\n{}", self.id, self.log_text());
            }
            let pong = Client::connect(self.port).and_then(|mut client| client.command(&["PING"]));
            if matches!(pong, Ok(Reply::Simple(ref text)) if text == "PONG") {
                return;
            }
            assert!(Instant::now() < deadline, "node {} not ready: {pong:?}", self.id);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `INFO <section>` as field → value.
    pub fn info(&self, section: &str) -> io::Result<BTreeMap<String, String>> {
        let reply = Client::connect(self.port)?.command(&["INFO", section])?;
        let Reply::Bulk(bytes) = reply else {
            return Err(invalid(format!("INFO replied {reply:?}")));
        };
        Ok(parse_info(&String::from_utf8_lossy(&bytes)))
    }

    /// Everything the node has written to stdout and stderr, over all its runs.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The write-ahead log segment with the highest sequence number.
    pub fn newest_wal_file(&self) -> PathBuf {
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&self.data_dir)
            .expect("listing the data directory")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
                name.starts_with("wal-") && name.ends_with(".log")
            })
            .collect();
        // Names carry a zero-padded sequence number, so the last in name order is the newest.
        segments.sort();
        segments.pop().expect("the data directory holds a wal-*.log segment")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_string(), value.trim().to_string()))
        .collect()
}

/// How to start a [`Cluster`].
pub struct ClusterOptions<'a> {
    /// Names the temporary directory, for finding leftovers.
    pub name: &'a str,
    pub nodes: u64,
    /// Flags added to every node's `cohort serve` command line.
    pub extra: Vec<String>,
    /// Starts each node through `sh -c 'ulimit -n N && exec cohort …'`.
    pub open_files_max: Option<u64>,
}

impl<'a> ClusterOptions<'a> {
    pub fn new(name: &'a str, nodes: u64) -> Self {
        let extra = FAST_SETTINGS.iter().map(|flag| flag.to_string()).collect();
        ClusterOptions { name, nodes, extra, open_files_max: None }
    }

    pub fn with(mut self, flags: &[&str]) -> Self {
        self.extra.extend(flags.iter().map(|flag| flag.to_string()));
        self
    }
}

/// Nodes founded together with `--initial-cluster`, in their own temporary directory.
pub struct Cluster {
    pub nodes: Vec<Node>,
    root: PathBuf,
}

impl Cluster {
    /// Starts `nodes` nodes with [`FAST_SETTINGS`] plus `flags`, and waits for a leader.
    pub fn start(name: &str, nodes: u64, flags: &[&str]) -> Cluster {
        Cluster::start_with(ClusterOptions::new(name, nodes).with(flags))
    }

    pub fn start_with(options: ClusterOptions) -> Cluster {
        let cluster = Cluster::launch(options);
        cluster.wait_for_leader(Duration::from_secs(20));
        cluster
    }

    /// Starts the nodes and waits until each answers PING, not for a leader (a sharded
    /// cluster has one per shard).
    pub fn launch(options: ClusterOptions) -> Cluster {
        let root = unique_directory(options.name);
        let count = usize::try_from(options.nodes).expect("node count fits usize");
        let ports = free_ports(2 * count);
        let initial_cluster: Vec<String> = (0..count)
            .map(|index| format!("{}=127.0.0.1:{}", index + 1, ports[count + index]))
            .collect();
        let initial_cluster = initial_cluster.join(",");
        let mut cluster = Cluster { nodes: Vec::new(), root: root.clone() };
        for index in 0..count {
            let id = index as u64 + 1;
            let data_dir = root.join(format!("node-{id}"));
            let mut arguments = words(&["serve", "--node-id", &id.to_string()]);
            arguments.extend(words(&["--port", &ports[index].to_string()]));
            arguments.extend(words(&["--peer-port", &ports[count + index].to_string()]));
            arguments.extend(words(&["--data-dir", data_dir.to_str().expect("utf-8 path")]));
            arguments.extend(words(&["--initial-cluster", &initial_cluster]));
            arguments.extend(options.extra.iter().cloned());
            let mut node = Node {
                id,
                port: ports[index],
                peer_port: ports[count + index],
                data_dir,
                log_path: root.join(format!("node-{id}.log")),
                arguments,
                open_files_max: options.open_files_max,
                child: None,
            };
            node.start();
            cluster.nodes.push(node);
        }
        for node in &mut cluster.nodes {
            node.wait_ready(Duration::from_secs(20));
        }
        cluster
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[usize::try_from(id - 1).expect("id fits usize")]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[usize::try_from(id - 1).expect("id fits usize")]
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// Waits until one running node reports `role:leader` and every running node names it as
    /// `leader_id`; returns its id.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let reason = match self.agreed_leader() {
                Ok(leader) => return leader,
                Err(reason) => reason,
            };
            assert!(Instant::now() < deadline, "no leader after {timeout:?}: {reason}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn agreed_leader(&self) -> Result<u64, String> {
        let mut leaders = Vec::new();
        let mut named = Vec::new();
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            let info = node.info("cohort").map_err(|error| format!("node {}: {error}", node.id))?;
            if info.get("role").map(String::as_str) == Some("leader") {
                leaders.push(node.id);
            }
            named.push(info.get("leader_id").cloned().unwrap_or_default());
        }
        match leaders.as_slice() {
            [leader] if named.iter().all(|name| *name == leader.to_string()) => Ok(*leader),
            _ => Err(format!("leaders {leaders:?}, leader_id per node {named:?}")),
        }
    }

    /// Waits until every running node reports the same `applied_index` and `state_digest`
    /// twice in a row, 200 ms apart (so the cluster is idle); returns them.
    pub fn wait_converged(&self, timeout: Duration) -> (u64, String) {
        let deadline = Instant::now() + timeout;
        let mut previous = None;
        loop {
            let mut views = Vec::new();
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                if let Ok(info) = node.info("cohort") {
                    let applied: u64 = info["applied_index"].parse().expect("applied_index");
                    views.push((applied, info["state_digest"].clone()));
                }
            }
            let running = self.nodes.iter().filter(|node| node.is_running()).count();
            let agreed = views.len() == running && views.windows(2).all(|pair| pair[0] == pair[1]);
            if agreed {
                let view = views[0].clone();
                if previous.as_ref() == Some(&view) {
                    return view;
                }
                previous = Some(view);
            } else {
                previous = None;
            }
            assert!(Instant::now() < deadline, "replicas did not converge: {views:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            print_log_tails(self.nodes.iter().map(|node| (node.id, node.log_text())));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Prints the last 40 lines of each node's log, for a test that is failing.
pub fn print_log_tails(logs: impl IntoIterator<Item = (u64, String)>) {
    for (id, text) in logs {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!("---- node {id} log (last 40 lines) ----\n{}", tail.join("\n"));
    }
}

/// Whether `program arguments…` runs and exits 0. Under CI a missing tool is a failure (CI
/// must install it); elsewhere the test says loudly that its checks did not run.
pub fn tool_available(program: &str, arguments: &[&str], what: &str, install: &str) -> bool {
    let found = Command::new(program)
        .args(arguments)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not available; CI must install it (see .ci/run)");
    }
    eprintln!("=================================================================");
    eprintln!("NOTICE: {what} not found; the checks that need it did NOT run.");
    eprintln!("Install it with: {install}");
    eprintln!("=================================================================");
    false
}

// ---- writers ---------------------------------------------------------------------------------

/// A write that got `+OK`.
#[derive(Clone, Debug)]
pub struct Ack {
    pub key: String,
    pub value: String,
    /// When the command was sent and when its `+OK` arrived.
    pub sent: Instant,
    pub acknowledged: Instant,
}

/// Client threads writing unique keys `{prefix}{client}-{n}`, each through its own node and
/// moving to the next node when a connection fails.
pub struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<WriterOutcome>>,
    pub acknowledged: Arc<AtomicU64>,
}

#[derive(Default, Debug)]
pub struct WriterOutcome {
    pub acks: Vec<Ack>,
    /// Writes that got an error reply or no reply: they may or may not have been applied.
    pub uncertain: Vec<String>,
}

impl Writers {
    pub fn start(ports: &[u16], clients: usize, prefix: &str) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|client| {
                let ports = ports.to_vec();
                let stop = stop.clone();
                let acknowledged = acknowledged.clone();
                let prefix = format!("{prefix}{client}-");
                std::thread::spawn(move || {
                    write_loop(client, &ports, &prefix, &stop, &acknowledged)
                })
            })
            .collect();
        Writers { stop, threads, acknowledged }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Stops the threads and merges what they saw.
    pub fn stop(self) -> WriterOutcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcome = WriterOutcome::default();
        for thread in self.threads {
            let part = thread.join().expect("writer thread panicked");
            outcome.acks.extend(part.acks);
            outcome.uncertain.extend(part.uncertain);
        }
        outcome
    }
}

fn write_loop(
    client: usize,
    ports: &[u16],
    prefix: &str,
    stop: &AtomicBool,
    acknowledged: &AtomicU64,
) -> WriterOutcome {
    let mut outcome = WriterOutcome::default();
    let mut target = client % ports.len();
    let mut connection: Option<Client> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(client) = connection.as_mut() else {
            match Client::connect(ports[target]) {
                Ok(client) => connection = Some(client),
                Err(_) => {
                    target = (target + 1) % ports.len();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            continue;
        };
        let key = format!("{prefix}{n}");
        let value = format!("value-of-{key}");
        n += 1;
        let sent = Instant::now();
        match client.command(&["SET", &key, &value]) {
            Ok(reply) if reply.is_ok() => {
                acknowledged.fetch_add(1, Ordering::Relaxed);
                outcome.acks.push(Ack { key, value, sent, acknowledged: Instant::now() });
            }
            Ok(_) => {
                outcome.uncertain.push(key);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                outcome.uncertain.push(key);
                connection = None;
                target = (target + 1) % ports.len();
            }
        }
    }
    outcome
}

/// Reads every acknowledged key through the node on `port` (pipelined GETs) and panics on the
/// first one missing or holding another value.
pub fn assert_all_present(port: u16, acks: &[Ack], label: &str) {
    let mut client =
        Client::connect(port).unwrap_or_else(|error| panic!("{label}: connecting: {error}"));
    for chunk in acks.chunks(500) {
        let commands: Vec<Vec<String>> =
            chunk.iter().map(|ack| words(&["GET", &ack.key])).collect();
        let replies =
            client.pipeline(&commands).unwrap_or_else(|error| panic!("{label}: reading: {error}"));
        for (ack, reply) in chunk.iter().zip(replies) {
            assert_eq!(
                reply,
                Reply::bulk(&ack.value),
                "{label}: acknowledged key {} lost or changed",
                ack.key
            );
        }
    }
}

/// Runs `SET` for `count` keys `{prefix}{n}` through `port`, pipelined, and returns the
/// acknowledged ones (all must be acknowledged).
pub fn write_keys(port: u16, prefix: &str, count: usize) -> Vec<Ack> {
    let mut client = Client::connect(port).expect("connecting to write keys");
    let mut acks = Vec::new();
    for start in (0..count).step_by(100) {
        let end = (start + 100).min(count);
        let sent = Instant::now();
        let batch: Vec<(String, String)> = (start..end)
            .map(|n| (format!("{prefix}{n}"), format!("value-of-{prefix}{n}")))
            .collect();
        let commands: Vec<Vec<String>> =
            batch.iter().map(|(key, value)| words(&["SET", key, value])).collect();
        let replies = client.pipeline(&commands).expect("pipelined SET");
        for ((key, value), reply) in batch.into_iter().zip(replies) {
            assert!(reply.is_ok(), "SET {key}: {reply:?}");
            acks.push(Ack { key, value, sent, acknowledged: Instant::now() });
        }
    }
    acks
}

/// Appends `bytes` to the end of `path`.
pub fn append_to_file(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).expect("opening the segment");
    file.write_all(bytes).expect("appending to the segment");
    file.sync_all().expect("syncing the segment");
}

/// The resident set size of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn resident_kib(pid: u32) -> u64 {
    let mut text = String::new();
    File::open(format!("/proc/{pid}/status"))
        .and_then(|mut file| file.read_to_string(&mut text))
        .expect("reading /proc/<pid>/status");
    let line = text.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// Serialises the parts of tests that must not overlap within one test binary (such as
/// measuring a process while another test floods the machine).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
