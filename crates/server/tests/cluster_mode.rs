//! Redis Cluster mode with real `cohort` processes and real cluster clients. Five nodes are
//! started with `--shards 10 --replicas 3 --cluster-enabled yes`: the 16384 hash slots are split
//! over ten consensus groups, each replicated on three of the nodes, and a node answers `-MOVED`
//! for a slot whose shard it does not lead.
//!
//! - One cluster serves, in turn, redis-py's `RedisCluster` (`tests/python/cluster_mode.py`),
//!   `redis-cli -c` and redis-rs's `ClusterClient`, each given a single node's port, after the
//!   `CLUSTER` subcommands, `-MOVED`, `-CROSSSLOT` and `INFO cluster` are checked by hand.
//! - Another cluster loses a node to SIGKILL while writers follow `-MOVED` by hand and through
//!   redis-rs: every acknowledged write must stay readable with its value, and `CLUSTER SLOTS`
//!   on every survivor must name a live master for every slot soon after the kill.
//!
//! Without redis-cli or redis-py the parts needing them fail under CI (which installs both, see
//! `.ci/run`) and are skipped, loudly, elsewhere.

mod common;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{parse_info, Ack, Client, Cluster, ClusterOptions, Node, Reply, WriterOutcome};
use redis::cluster::{cluster_pipe, ClusterClient, ClusterConnection};
use redis::{Commands, RedisResult};

/// Nodes of every cluster here.
const NODES: usize = 5;
/// What makes the cluster sharded and puts it in Redis Cluster mode.
const CLUSTER_FLAGS: &[&str] = &["--shards", "10", "--replicas", "3", "--cluster-enabled", "yes"];
const SHARDS: usize = 10;
const SLOT_COUNT: usize = 16384;
/// How long every node must list the same masters before a new cluster counts as settled.
const LEADERS_SETTLED: Duration = Duration::from_millis(1500);
/// `-MOVED` hops one command may take before the caller sees the last redirection.
const REDIRECTS_MAX: usize = 5;
/// Longest a redis-cli invocation or the Python script may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(40);

// ---- slots -----------------------------------------------------------------------------------

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The hash slot of `key`: the CRC16 of its hash tag (the text between the first `{` and the
/// next `}`, if not empty) or of the whole key, modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&byte| byte == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&byte| byte == b'}') {
            Some(length) if length > 0 => &key[open + 1..open + 1 + length],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOT_COUNT as u16
}

/// For each slot, a hash tag whose keys land in it.
fn slot_tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); SLOT_COUNT];
        let mut missing = SLOT_COUNT;
        let mut n = 0u64;
        while missing > 0 {
            let tag = format!("t{n}");
            let slot = usize::from(key_slot(tag.as_bytes()));
            if tags[slot].is_empty() {
                tags[slot] = tag;
                missing -= 1;
            }
            n += 1;
        }
        tags
    })
}

/// A key named after `name` that lands in `slot`.
fn key_in_slot(slot: u16, name: &str) -> String {
    format!("{{{}}}{name}", slot_tags()[usize::from(slot)])
}

/// One entry of `CLUSTER SLOTS`, nodes given by client port.
#[derive(Clone, Debug)]
struct SlotRange {
    start: u16,
    end: u16,
    master: u16,
    replicas: Vec<u16>,
}

fn parse_slots(reply: &Reply) -> Result<Vec<SlotRange>, String> {
    let Reply::Array(entries) = reply else {
        return Err(format!("CLUSTER SLOTS replied {reply:?}"));
    };
    entries
        .iter()
        .map(|entry| match entry {
            Reply::Array(items) => match items.as_slice() {
                [Reply::Integer(start), Reply::Integer(end), master, replicas @ ..] => {
                    Ok(SlotRange {
                        start: u16::try_from(*start).map_err(|_| format!("start {start}"))?,
                        end: u16::try_from(*end).map_err(|_| format!("end {end}"))?,
                        master: slot_node_port(master)?,
                        replicas: replicas.iter().map(slot_node_port).collect::<Result<_, _>>()?,
                    })
                }
                _ => Err(format!("malformed CLUSTER SLOTS entry {}", entry.text())),
            },
            _ => Err(format!("malformed CLUSTER SLOTS entry {}", entry.text())),
        })
        .collect()
}

/// The port of a `CLUSTER SLOTS` node, `[ip, port, id, …]`.
fn slot_node_port(node: &Reply) -> Result<u16, String> {
    if let Reply::Array(fields) = node {
        if let [Reply::Bulk(ip), Reply::Integer(port), Reply::Bulk(id), ..] = fields.as_slice() {
            if ip.as_slice() == b"127.0.0.1" && id.len() == 40 {
                return u16::try_from(*port).map_err(|_| format!("port {port}"));
            }
        }
    }
    Err(format!("malformed CLUSTER SLOTS node {}", node.text()))
}

/// Why `ranges` do not cover every slot exactly once with a master among `live`, if they do not.
fn coverage_problem(ranges: &[SlotRange], live: &[u16]) -> Option<String> {
    let mut sorted: Vec<&SlotRange> = ranges.iter().collect();
    sorted.sort_by_key(|range| range.start);
    let mut next = 0usize;
    for range in sorted {
        if usize::from(range.start) != next || range.end < range.start {
            return Some(format!("slot {next} is followed by range {}-{}", range.start, range.end));
        }
        if !live.contains(&range.master) {
            return Some(format!(
                "range {}-{} has master {} among live ports {live:?}",
                range.start, range.end, range.master
            ));
        }
        next = usize::from(range.end) + 1;
    }
    (next != SLOT_COUNT).then(|| format!("slots from {next} on are not listed"))
}

/// The target port of a `-MOVED <slot> <host>:<port>` reply.
fn moved_to(reply: &Reply) -> Option<(u16, u16)> {
    let Reply::Error(text) = reply else { return None };
    let mut words = text.split_whitespace();
    if words.next() != Some("MOVED") {
        return None;
    }
    let slot = words.next()?.parse().ok()?;
    let port = words.next()?.rsplit_once(':')?.1.parse().ok()?;
    Some((slot, port))
}

// ---- a client that follows -MOVED ------------------------------------------------------------

/// Sends each keyed command to the node that leads the key's slot, as cluster clients do: a slot
/// table from `CLUSTER SLOTS`, updated by each `-MOVED` and reloaded after a connection error.
struct Router {
    seeds: Vec<u16>,
    next_seed: usize,
    /// Slot → client port; 0 when unknown.
    table: Vec<u16>,
    ranges: Vec<SlotRange>,
    stale: bool,
    connections: BTreeMap<u16, Client>,
}

impl Router {
    fn new(seeds: &[u16]) -> Router {
        Router {
            seeds: seeds.to_vec(),
            next_seed: 0,
            table: vec![0; SLOT_COUNT],
            ranges: Vec::new(),
            stale: true,
            connections: BTreeMap::new(),
        }
    }

    fn connection(&mut self, port: u16) -> io::Result<&mut Client> {
        match self.connections.entry(port) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let client = Client::connect(port)?;
                client.set_read_timeout(Duration::from_secs(5))?;
                Ok(entry.insert(client))
            }
        }
    }

    /// A command on one node; the connection is dropped after an error.
    fn on_node(&mut self, port: u16, arguments: &[&str]) -> io::Result<Reply> {
        let result = self.connection(port).and_then(|client| client.command(arguments));
        if result.is_err() {
            self.connections.remove(&port);
        }
        result
    }

    /// Reloads the slot table from the first seed that answers `CLUSTER SLOTS`.
    fn refresh(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        for _ in 0..self.seeds.len() {
            let port = self.seeds[self.next_seed % self.seeds.len()];
            self.next_seed += 1;
            let parsed = self
                .on_node(port, &["CLUSTER", "SLOTS"])
                .map_err(|error| error.to_string())
                .and_then(|reply| parse_slots(&reply));
            match parsed {
                Ok(ranges) => {
                    self.table.fill(0);
                    for range in &ranges {
                        for slot in range.start..=range.end {
                            self.table[usize::from(slot)] = range.master;
                        }
                    }
                    self.ranges = ranges;
                    self.stale = false;
                    return Ok(());
                }
                Err(problem) => problems.push(format!("{port}: {problem}")),
            }
        }
        Err(problems.join("; "))
    }

    fn port_of(&mut self, slot: u16) -> u16 {
        if self.stale {
            let _ = self.refresh();
        }
        match self.table[usize::from(slot)] {
            0 => {
                self.next_seed += 1;
                self.seeds[self.next_seed % self.seeds.len()]
            }
            port => port,
        }
    }

    /// A command whose second argument is a key, sent to the key's slot's node and following
    /// up to [`REDIRECTS_MAX`] redirections.
    fn command(&mut self, arguments: &[&str]) -> io::Result<Reply> {
        let slot = key_slot(arguments[1].as_bytes());
        let mut port = self.port_of(slot);
        let mut hops = 0;
        loop {
            let reply = self.on_node(port, arguments).inspect_err(|_| self.stale = true)?;
            match moved_to(&reply) {
                Some((moved_slot, target)) if hops < REDIRECTS_MAX && moved_slot == slot => {
                    self.table[usize::from(slot)] = target;
                    port = target;
                    hops += 1;
                }
                _ => return Ok(reply),
            }
        }
    }

    /// [`Router::command`] again after errors and error replies until `deadline`; returns the
    /// last outcome.
    fn command_until(&mut self, arguments: &[&str], deadline: Instant) -> Result<Reply, String> {
        loop {
            let outcome = match self.command(arguments) {
                Ok(Reply::Error(text)) => Err(format!("-{text}")),
                Ok(reply) => return Ok(reply),
                Err(error) => Err(error.to_string()),
            };
            if Instant::now() >= deadline {
                return outcome;
            }
            self.stale = true;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---- processes -------------------------------------------------------------------------------

/// A sharded cluster in Redis Cluster mode, in its own temporary directory. Its processes are
/// killed when it is dropped (also when a test panics, after printing the tail of each log).
struct ShardedCluster {
    cluster: Cluster,
}

impl ShardedCluster {
    /// Starts [`NODES`] nodes with the common fast settings and [`CLUSTER_FLAGS`] and waits until every
    /// slot range takes a write through its leader.
    fn start(name: &str) -> ShardedCluster {
        let options = ClusterOptions::new(name, NODES as u64).with(CLUSTER_FLAGS);
        let mut cluster = ShardedCluster { cluster: Cluster::launch(options) };
        let started = Instant::now();
        cluster.wait_serving(Duration::from_secs(30));
        eprintln!("{name}: every slot range took a write {:?} after startup", started.elapsed());
        cluster
    }

    fn root(&self) -> &Path {
        self.cluster.root()
    }

    fn ports(&self) -> Vec<u16> {
        self.cluster.nodes.iter().map(|node| node.port).collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.cluster.nodes.iter().filter(|node| node.is_running()).map(|n| n.port).collect()
    }

    /// Panics, with its log, if a node that should run has exited.
    fn assert_running(&mut self) {
        for id in 1..=NODES as u64 {
            let node = self.cluster.node_mut(id);
            if let Some(status) = node.exited() {
                panic!("node {id} exited ({status}):\n{}", node.log_text());
            }
        }
    }

    fn node_on_port(&mut self, port: u16) -> &mut Node {
        let id = self.cluster.nodes.iter().find(|node| node.port == port).expect("a node").id;
        self.cluster.node_mut(id)
    }

    /// Waits until [`ShardedCluster::serving_problem`] finds none, then until every live node
    /// lists the same masters in `CLUSTER SLOTS` for [`LEADERS_SETTLED`] (leaderships move to
    /// their preferred nodes shortly after startup).
    fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let Some(problem) = self.serving_problem() else { break };
            assert!(Instant::now() < deadline, "cluster not serving after {timeout:?}: {problem}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut settled: Option<(Masters, Instant)> = None;
        loop {
            self.assert_running();
            match self.agreed_masters() {
                Ok(shape) => match &settled {
                    Some((previous, since)) if *previous == shape => {
                        if since.elapsed() >= LEADERS_SETTLED {
                            return;
                        }
                    }
                    _ => settled = Some((shape, Instant::now())),
                },
                Err(problem) => {
                    assert!(
                        Instant::now() < deadline,
                        "CLUSTER SLOTS differ between nodes after {timeout:?}: {problem}"
                    );
                    settled = None;
                }
            }
            assert!(Instant::now() < deadline, "leaders still moving after {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `(start, end, master port)` of every range, if every live node lists the same.
    fn agreed_masters(&self) -> Result<Masters, String> {
        let mut agreed: Option<Masters> = None;
        for port in self.live_ports() {
            let ranges = Client::connect(port)
                .and_then(|mut client| client.command(&["CLUSTER", "SLOTS"]))
                .map_err(|error| format!("{port}: {error}"))
                .and_then(|reply| parse_slots(&reply))?;
            let shape = masters_shape(&ranges);
            match &agreed {
                Some(first) if *first != shape => return Err(format!("{port} differs")),
                Some(_) => {}
                None => agreed = Some(shape),
            }
        }
        agreed.ok_or_else(|| "no live node".to_string())
    }

    /// Why the live nodes do not serve every slot yet: a node whose `CLUSTER SLOTS` misses a
    /// slot or names a dead master, or a slot range where a write through its master fails.
    fn serving_problem(&self) -> Option<String> {
        let live = self.live_ports();
        for &port in &live {
            if let Some(problem) = slots_problem(port, &live) {
                return Some(format!("port {port}: {problem}"));
            }
        }
        let mut router = Router::new(&live);
        if let Err(problem) = router.refresh() {
            return Some(problem);
        }
        for range in router.ranges.clone() {
            let key = key_in_slot(range.start, "probe");
            match router.command(&["SET", &key, "1"]) {
                Ok(reply) if reply.is_ok() => {}
                other => return Some(format!("SET {key} (slot {}): {other:?}", range.start)),
            }
            match router.command(&["DEL", &key]) {
                Ok(Reply::Integer(1)) => {}
                other => return Some(format!("DEL {key} (slot {}): {other:?}", range.start)),
            }
        }
        None
    }
}

/// `(start, end, master port)` of each slot range, sorted.
type Masters = Vec<(u16, u16, u16)>;

/// The [`Masters`] of `ranges`.
fn masters_shape(ranges: &[SlotRange]) -> Masters {
    let mut shape: Vec<_> =
        ranges.iter().map(|range| (range.start, range.end, range.master)).collect();
    shape.sort_unstable();
    shape
}

/// Why `CLUSTER SLOTS` on `port` does not cover every slot with a master among `live`.
fn slots_problem(port: u16, live: &[u16]) -> Option<String> {
    let reply =
        match Client::connect(port).and_then(|mut client| client.command(&["CLUSTER", "SLOTS"])) {
            Ok(reply) => reply,
            Err(error) => return Some(error.to_string()),
        };
    match parse_slots(&reply) {
        Ok(ranges) => coverage_problem(&ranges, live),
        Err(problem) => Some(problem),
    }
}

// ---- external tools --------------------------------------------------------------------------

fn wait_with_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `redis-cli -c -p <port> <arguments>` with `input` on standard input; returns stdout.
fn redis_cli(port: u16, arguments: &[&str], input: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-c", "-p", &port.to_string()])
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting redis-cli");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    // A writer thread, so a long script cannot block on a full pipe while redis-cli waits on
    // its full output pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || io::read_to_string(stdout));
    let status = wait_with_timeout(&mut child, TOOL_TIMEOUT, "redis-cli");
    writer.join().expect("stdin writer").expect("writing to redis-cli");
    let output = reader.join().expect("stdout reader").expect("reading redis-cli output");
    assert!(status.success(), "redis-cli -c {arguments:?} exited with {status}: {output}");
    output
}

/// Runs `tests/python/<name>` with every client port in `COHORT_PORTS`; panics, showing its
/// output, unless it exits with 0.
fn run_python(name: &str, ports: &[u16], directory: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("python").join(name);
    let output_path = directory.join(format!("{name}.out"));
    let output = File::create(&output_path).expect("creating the script output file");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&script)
        .env("COHORT_PORTS", ports.join(","))
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("cloning the output handle"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|error| panic!("starting python3 {name}: {error}"));
    let status = wait_with_timeout(&mut child, TOOL_TIMEOUT, name);
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    println!("---- {name} ----\n{text}");
    assert!(status.success(), "{name} exited with {status}\n---- output ----\n{text}");
}

// ---- the clients test ------------------------------------------------------------------------

#[test]
fn cluster_clients_reach_every_slot_through_one_node() {
    // Goal: the cluster answers the Redis Cluster protocol, and redis-py, redis-cli and
    // redis-rs, each given one node, read and write keys of every shard by following -MOVED.
    let mut cluster = ShardedCluster::start("cluster-mode-clients");
    let ports = cluster.ports();
    let started = Instant::now();

    cluster_protocol_by_hand(&ports);
    if common::tool_available(
        "python3",
        &["-c", "import redis"],
        "redis-py",
        "python3 -m pip install redis",
    ) {
        run_python("cluster_mode.py", &ports, cluster.root());
    }
    if common::tool_available(
        "redis-cli",
        &["--version"],
        "redis-cli",
        "apt-get install -y redis-tools",
    ) {
        redis_cli_follows_moved(&ports);
    }
    redis_rs_cluster_client(ports[0]);
    cluster.assert_running();
    eprintln!("cluster clients: all parts done in {:?}", started.elapsed());
}

/// `INFO cluster`, the `CLUSTER` subcommands, `-MOVED` and `-CROSSSLOT`, with the plain client.
fn cluster_protocol_by_hand(ports: &[u16]) {
    let entry = ports[0];
    let mut client = Client::connect(entry).expect("connecting");

    let Reply::Bulk(info) = client.command(&["INFO", "cluster"]).unwrap() else {
        panic!("INFO cluster is not a bulk string")
    };
    let info = parse_info(&String::from_utf8_lossy(&info));
    assert_eq!(
        info.get("cluster_enabled").map(String::as_str),
        Some("1"),
        "INFO cluster: {info:?}"
    );

    let Reply::Bulk(text) = client.command(&["CLUSTER", "INFO"]).unwrap() else {
        panic!("CLUSTER INFO is not a bulk string")
    };
    let fields = parse_info(&String::from_utf8_lossy(&text));
    for (field, want) in [
        ("cluster_enabled", "1".to_string()),
        ("cluster_state", "ok".to_string()),
        ("cluster_slots_assigned", SLOT_COUNT.to_string()),
        ("cluster_slots_ok", SLOT_COUNT.to_string()),
        ("cluster_known_nodes", NODES.to_string()),
        ("cluster_size", SHARDS.to_string()),
    ] {
        assert_eq!(fields.get(field), Some(&want), "CLUSTER INFO {field}: {fields:?}");
    }

    // Every node lists the same masters for the same ranges, and every port appears. A node
    // leading any shard is only ever a master (clients keep one role per node), so a range
    // lists as replicas only the followers of its shard that lead nothing.
    let ranges = parse_slots(&client.command(&["CLUSTER", "SLOTS"]).unwrap()).unwrap();
    assert_eq!(coverage_problem(&ranges, ports), None, "CLUSTER SLOTS on {entry}");
    let masters: BTreeSet<u16> = ranges.iter().map(|range| range.master).collect();
    for range in &ranges {
        let distinct: BTreeSet<u16> = range.replicas.iter().copied().collect();
        assert!(
            range.replicas.len() <= 2 && distinct.len() == range.replicas.len(),
            "range {range:?}: at most 2 other replicas per shard"
        );
        assert!(distinct.is_disjoint(&masters), "range {range:?} lists a master as a replica");
    }
    let listed: BTreeSet<u16> = ranges
        .iter()
        .flat_map(|range| range.replicas.iter().chain([&range.master]))
        .copied()
        .collect();
    assert_eq!(listed, ports.iter().copied().collect(), "ports in CLUSTER SLOTS");
    for &port in &ports[1..] {
        let reply = Client::connect(port).unwrap().command(&["CLUSTER", "SLOTS"]).unwrap();
        let other = parse_slots(&reply).unwrap();
        assert_eq!(
            masters_shape(&other),
            masters_shape(&ranges),
            "CLUSTER SLOTS on {port} and {entry} differ"
        );
    }

    let Reply::Bulk(myid) = client.command(&["CLUSTER", "MYID"]).unwrap() else {
        panic!("CLUSTER MYID is not a bulk string")
    };
    let myid = String::from_utf8(myid).unwrap();
    assert!(myid.len() == 40 && myid.chars().all(|c| c.is_ascii_hexdigit()), "MYID {myid:?}");
    let Reply::Bulk(nodes) = client.command(&["CLUSTER", "NODES"]).unwrap() else {
        panic!("CLUSTER NODES is not a bulk string")
    };
    let nodes = String::from_utf8(nodes).unwrap();
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), NODES, "CLUSTER NODES:\n{nodes}");
    let myself: Vec<&&str> = lines.iter().filter(|line| line.contains("myself")).collect();
    assert_eq!(myself.len(), 1, "CLUSTER NODES:\n{nodes}");
    assert!(myself[0].starts_with(&myid), "myself line {:?}, MYID {myid}", myself[0]);
    assert!(myself[0].contains(&format!("127.0.0.1:{entry}@")), "myself line {:?}", myself[0]);
    match client.command(&["CLUSTER", "SHARDS"]).unwrap() {
        Reply::Array(shards) => assert_eq!(shards.len(), SHARDS, "CLUSTER SHARDS"),
        other => panic!("CLUSTER SHARDS replied {other:?}"),
    }

    // Key slots: Redis's own examples, and hash tags as the specification defines them.
    let keyslot =
        |client: &mut Client, key: &str| match client.command(&["CLUSTER", "KEYSLOT", key]) {
            Ok(Reply::Integer(slot)) => slot,
            other => panic!("CLUSTER KEYSLOT {key}: {other:?}"),
        };
    for (key, slot) in [("foo", 12182), ("bar", 5061), ("hello", 866), ("123456789", 12739)] {
        assert_eq!(keyslot(&mut client, key), slot, "CLUSTER KEYSLOT {key}");
    }
    for (key, hashed) in [
        ("{user1000}.following", "user1000"),
        ("{user1000}.followers", "user1000"),
        ("foo{}{bar}", "foo{}{bar}"),
        ("foo{{bar}}zap", "{bar"),
        ("foo{bar}{zap}", "bar"),
        ("{}", "{}"),
    ] {
        let want = i64::from(key_slot(hashed.as_bytes()));
        assert_eq!(keyslot(&mut client, key), want, "CLUSTER KEYSLOT {key} hashes {hashed:?}");
    }
    for n in 0..200 {
        let key = format!("slot-check-{n}");
        assert_eq!(keyslot(&mut client, &key), i64::from(key_slot(key.as_bytes())), "{key}");
    }

    // A key of a slot the node does not lead is redirected to the slot's master.
    let elsewhere =
        ranges.iter().find(|range| range.master != entry).expect("a range led elsewhere");
    let key = key_in_slot(elsewhere.start, "moved");
    let reply = client.command(&["GET", &key]).unwrap();
    let (slot, port) =
        moved_to(&reply).unwrap_or_else(|| panic!("GET {key} on {entry}: {reply:?}"));
    assert_eq!(slot, elsewhere.start, "GET {key}: {reply:?}");
    assert!(ports.contains(&port) && port != entry, "GET {key} on {entry}: {reply:?}");

    // Keys of two slots in one command are refused by every node, whoever leads the slots.
    let (first, second) = ("cross-a", "cross-b");
    assert_ne!(key_slot(first.as_bytes()), key_slot(second.as_bytes()));
    for &port in ports {
        let mut node = Client::connect(port).unwrap();
        for command in [
            vec!["MSET", first, "1", second, "2"],
            vec!["MGET", first, second],
            vec!["DEL", first, second],
        ] {
            let reply = node.command(&command).unwrap();
            assert!(
                matches!(&reply, Reply::Error(text) if text.starts_with("CROSSSLOT")),
                "{command:?} on {port}: {reply:?}"
            );
        }
    }
}

/// `redis-cli -c` through one node: a session of SETs and GETs over many slots, CLUSTER INFO,
/// KEYSLOT, and keys counted in their slot on the slot's master.
fn redis_cli_follows_moved(ports: &[u16]) {
    let entry = ports[0];
    const KEYS: usize = 50;
    let keys: Vec<String> = (0..KEYS).map(|n| format!("cli:{n}")).collect();
    let value = |n: usize| format!("cli-value-{n}");

    let ranges =
        parse_slots(&Client::connect(entry).unwrap().command(&["CLUSTER", "SLOTS"]).unwrap())
            .unwrap();
    let master_of = |slot: u16| {
        ranges.iter().find(|range| (range.start..=range.end).contains(&slot)).expect("slot").master
    };
    let masters: BTreeSet<u16> =
        keys.iter().map(|key| master_of(key_slot(key.as_bytes()))).collect();
    assert!(masters.len() >= 3, "the keys should spread over the masters: {masters:?}");

    let mut input = String::new();
    for (n, key) in keys.iter().enumerate() {
        input.push_str(&format!("SET {key} {}\n", value(n)));
    }
    for key in &keys {
        input.push_str(&format!("GET {key}\n"));
    }
    let output = redis_cli(entry, &[], &input);
    let redirects = output.lines().filter(|line| line.starts_with("-> Redirected")).count();
    let lines: Vec<&str> =
        output.lines().filter(|line| !line.starts_with("-> Redirected")).collect();
    let mut expected: Vec<String> = vec!["OK".to_string(); KEYS];
    expected.extend((0..KEYS).map(value));
    assert_eq!(lines, expected, "redis-cli -c session output:\n{output}");
    eprintln!("redis-cli -c: {KEYS} keys over {} masters, {redirects} redirections", masters.len());

    // Each value was written where its slot lives: read back at each slot's master directly.
    for (n, key) in keys.iter().enumerate() {
        let port = master_of(key_slot(key.as_bytes()));
        let reply = Client::connect(port).unwrap().command(&["GET", key]).unwrap();
        assert_eq!(reply, Reply::bulk(&value(n)), "GET {key} on its master {port}");
        assert_eq!(redis_cli(ports[n % ports.len()], &["GET", key], ""), format!("{}\n", value(n)));
    }

    let info = parse_info(&redis_cli(ports[1], &["CLUSTER", "INFO"], ""));
    assert_eq!(info.get("cluster_state").map(String::as_str), Some("ok"), "CLUSTER INFO: {info:?}");
    assert_eq!(redis_cli(entry, &["CLUSTER", "KEYSLOT", "foo"], ""), "12182\n");
    let following = redis_cli(entry, &["CLUSTER", "KEYSLOT", "{user1000}.following"], "");
    let followers = redis_cli(entry, &["CLUSTER", "KEYSLOT", "{user1000}.followers"], "");
    assert_eq!(following, followers, "hash-tagged keys share a slot");
    assert_eq!(following, format!("{}\n", key_slot(b"user1000")));
    let refused = redis_cli(entry, &["MSET", "cross-a", "1", "cross-b", "2"], "");
    assert!(refused.starts_with("CROSSSLOT"), "redis-cli -c MSET across slots: {refused:?}");

    // Hash-tagged keys share one slot, counted and listed by the slot's master.
    let tagged: Vec<String> = (0..5).map(|n| format!("{{cli}}:{n}")).collect();
    let mut input = String::new();
    for key in &tagged {
        input.push_str(&format!("SET {key} tagged\n"));
    }
    let output = redis_cli(ports[2], &[], &input);
    let oks = output.lines().filter(|line| *line == "OK").count();
    assert_eq!(oks, tagged.len(), "redis-cli -c tagged SETs:\n{output}");
    let slot = key_slot(b"cli");
    let mut master = Client::connect(master_of(slot)).unwrap();
    let count = master.command(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).unwrap();
    assert_eq!(count, Reply::Integer(tagged.len() as i64), "COUNTKEYSINSLOT {slot}");
    let listed = master.command(&["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "100"]).unwrap();
    let Reply::Array(listed) = listed else { panic!("GETKEYSINSLOT replied {listed:?}") };
    let mut listed: Vec<String> = listed.iter().map(Reply::text).collect();
    listed.sort();
    assert_eq!(listed, tagged, "GETKEYSINSLOT {slot}");
}

/// redis-rs's cluster client from one node's address: typed commands on 100 keys, a cluster
/// pipeline across slots, and MSET/MGET on hash-tagged keys.
fn redis_rs_cluster_client(entry: u16) {
    let client = ClusterClient::builder(vec![format!("redis://127.0.0.1:{entry}/")])
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(10))
        .retries(5)
        .min_retry_wait(50)
        .max_retry_wait(1000)
        .build()
        .expect("a redis-rs cluster client");
    let mut connection = client.get_connection().expect("connecting with redis-rs");
    for n in 0..100 {
        let () = connection.set(format!("rs:{n}"), format!("rs-value-{n}")).unwrap();
    }
    for n in 0..100 {
        let value: String = connection.get(format!("rs:{n}")).unwrap();
        assert_eq!(value, format!("rs-value-{n}"));
    }
    let missing: Option<String> = connection.get("rs:missing").unwrap();
    assert_eq!(missing, None);
    let count: i64 = connection.incr("rs:counter", 5).unwrap();
    assert_eq!(count, 5);

    let mut pipe = cluster_pipe();
    for n in 0..100 {
        pipe.set(format!("rs-pipe:{n}"), n).ignore();
    }
    pipe.exec(&mut connection).expect("a cluster pipeline of SETs");
    let mut pipe = cluster_pipe();
    for n in 0..100 {
        pipe.get(format!("rs-pipe:{n}"));
    }
    let values: Vec<i64> = pipe.query(&mut connection).expect("a cluster pipeline of GETs");
    assert_eq!(values, (0..100).collect::<Vec<i64>>());

    let pairs = [("{rs}.a", "1"), ("{rs}.b", "2"), ("{rs}.c", "3")];
    let () = connection.mset(&pairs).unwrap();
    let values: Vec<String> = connection.mget(&["{rs}.a", "{rs}.b", "{rs}.c"]).unwrap();
    assert_eq!(values, ["1", "2", "3"]);
}

// ---- the failure test ------------------------------------------------------------------------

/// Writer threads following `-MOVED` with a [`Router`].
const ROUTER_WRITERS: usize = 3;
/// Acknowledged writes before the kill.
const WRITES_BEFORE_KILL: u64 = 300;
/// Acknowledged writes after the kill, and how long writing goes on after it at least.
const WRITES_AFTER_KILL: u64 = 300;
const WRITING_AFTER_KILL: Duration = Duration::from_secs(4);
/// How soon after the kill every survivor's `CLUSTER SLOTS` must name a live master for every
/// slot.
const SLOTS_RECOVERED_WITHIN: Duration = Duration::from_secs(10);

struct Writers {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    threads: Vec<(String, JoinHandle<WriterOutcome>)>,
}

impl Writers {
    fn start(ports: &[u16]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for writer in 0..ROUTER_WRITERS {
            let (ports, stop, acknowledged) = (ports.to_vec(), stop.clone(), acknowledged.clone());
            let prefix = format!("router{writer}-");
            let thread = std::thread::spawn(move || {
                router_write_loop(&ports, &prefix, writer, &stop, &acknowledged)
            });
            threads.push((format!("router writer {writer}"), thread));
        }
        let (ports, stop_rs, acknowledged_rs) =
            (ports.to_vec(), stop.clone(), acknowledged.clone());
        let thread =
            std::thread::spawn(move || redis_rs_write_loop(&ports, &stop_rs, &acknowledged_rs));
        threads.push(("redis-rs writer".to_string(), thread));
        Writers { stop, acknowledged, threads }
    }

    fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    fn wait_for(&self, target: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acknowledged() < target {
            assert!(
                Instant::now() < deadline,
                "only {} of {target} writes acknowledged within {timeout:?}",
                self.acknowledged()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self) -> Vec<(String, WriterOutcome)> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads)
            .into_iter()
            .map(|(name, thread)| {
                let outcome = thread.join().unwrap_or_else(|_| panic!("{name} panicked"));
                (name, outcome)
            })
            .collect()
    }
}

impl Drop for Writers {
    /// Stops the threads of a test that failed before [`Writers::stop`].
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn router_write_loop(
    ports: &[u16],
    prefix: &str,
    writer: usize,
    stop: &AtomicBool,
    acknowledged: &AtomicU64,
) -> WriterOutcome {
    let mut seeds = ports.to_vec();
    seeds.rotate_left(writer % ports.len());
    let mut router = Router::new(&seeds);
    let mut outcome = WriterOutcome::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{prefix}{n}");
        let value = format!("value-of-{key}");
        n += 1;
        let sent = Instant::now();
        match router.command(&["SET", &key, &value]) {
            Ok(reply) if reply.is_ok() => {
                acknowledged.fetch_add(1, Ordering::Relaxed);
                outcome.acks.push(Ack { key, value, sent, acknowledged: Instant::now() });
            }
            _ => {
                outcome.uncertain.push(key);
                router.stale = true;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    outcome
}

fn redis_rs_connect(port: u16) -> RedisResult<ClusterConnection> {
    ClusterClient::builder(vec![format!("redis://127.0.0.1:{port}/")])
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(3))
        .retries(3)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .build()?
        .get_connection()
}

/// Writes through redis-rs's cluster connection, reconnecting through the next node after an
/// error, as an application would.
fn redis_rs_write_loop(
    ports: &[u16],
    stop: &AtomicBool,
    acknowledged: &AtomicU64,
) -> WriterOutcome {
    let mut outcome = WriterOutcome::default();
    let mut connection: Option<ClusterConnection> = None;
    let mut seed = 0usize;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(open) = connection.as_mut() else {
            match redis_rs_connect(ports[seed % ports.len()]) {
                Ok(open) => connection = Some(open),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
            seed += 1;
            continue;
        };
        let key = format!("rs-writer-{n}");
        let value = format!("value-of-{key}");
        n += 1;
        let sent = Instant::now();
        let result: RedisResult<()> = open.set(&key, &value);
        match result {
            Ok(()) => {
                acknowledged.fetch_add(1, Ordering::Relaxed);
                outcome.acks.push(Ack { key, value, sent, acknowledged: Instant::now() });
            }
            Err(_) => {
                outcome.uncertain.push(key);
                connection = None;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    outcome
}

#[test]
fn killing_a_node_loses_no_acknowledged_write() {
    // Goal: SIGKILL of a node that leads shards, under writes from cluster clients, loses no
    // acknowledged write; the survivors take over its shards and CLUSTER SLOTS shows it.
    let mut cluster = ShardedCluster::start("cluster-mode-kill");
    let ports = cluster.ports();
    let mut router = Router::new(&ports);
    router.refresh().expect("CLUSTER SLOTS");
    let before = router.ranges.clone();

    // The victim: the node, other than the first, that leads the most slots.
    let mut led: BTreeMap<u16, usize> = BTreeMap::new();
    for range in &before {
        *led.entry(range.master).or_default() += usize::from(range.end - range.start) + 1;
    }
    let victim = ports[1..]
        .iter()
        .copied()
        .max_by_key(|port| led.get(port).copied().unwrap_or(0))
        .expect("a node to kill");
    let victim_slots: Vec<(u16, u16)> = before
        .iter()
        .filter(|range| range.master == victim)
        .map(|range| (range.start, range.end))
        .collect();
    assert!(!victim_slots.is_empty(), "port {victim} leads no slot: {led:?}");

    let writers = Writers::start(&ports);
    writers.wait_for(WRITES_BEFORE_KILL, Duration::from_secs(15));

    let at_kill = writers.acknowledged();
    let killed_at = Instant::now();
    cluster.node_on_port(victim).kill();
    eprintln!("killed the node on port {victim} (SIGKILL), leader of {} slots", led[&victim]);

    // Every survivor soon names a live master for every slot.
    let survivors = cluster.live_ports();
    loop {
        cluster.assert_running();
        let problems: Vec<String> = survivors
            .iter()
            .filter_map(|&port| slots_problem(port, &survivors).map(|p| format!("{port}: {p}")))
            .collect();
        if problems.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < SLOTS_RECOVERED_WITHIN,
            "CLUSTER SLOTS still lacks a live master {SLOTS_RECOVERED_WITHIN:?} after the kill: \
             {problems:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "CLUSTER SLOTS named live masters everywhere {:?} after the kill",
        killed_at.elapsed()
    );

    writers.wait_for(at_kill + WRITES_AFTER_KILL, Duration::from_secs(20));
    if let Some(rest) = WRITING_AFTER_KILL.checked_sub(killed_at.elapsed()) {
        std::thread::sleep(rest);
    }
    let outcomes = writers.stop();
    cluster.assert_running();

    let mut acks: Vec<Ack> = Vec::new();
    for (name, outcome) in outcomes {
        let after: Vec<&Ack> = outcome.acks.iter().filter(|ack| ack.sent > killed_at).collect();
        eprintln!(
            "{name}: {} acknowledged ({} sent after the kill), {} uncertain",
            outcome.acks.len(),
            after.len(),
            outcome.uncertain.len()
        );
        assert!(!after.is_empty(), "{name} wrote nothing after the kill");
        acks.extend(outcome.acks);
    }
    let in_victim_slots = |ack: &&Ack| {
        let slot = key_slot(ack.key.as_bytes());
        victim_slots.iter().any(|(start, end)| (*start..=*end).contains(&slot))
    };
    let moved_writes =
        acks.iter().filter(|ack| ack.sent > killed_at).filter(in_victim_slots).count();
    assert!(moved_writes > 0, "no write to the killed node's former slots was acknowledged");

    // Every acknowledged write reads back with its value, through each slot's new master.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reader = Router::new(&survivors);
    let mut lost = Vec::new();
    for ack in &acks {
        match reader.command_until(&["GET", &ack.key], deadline) {
            Ok(reply) if reply == Reply::bulk(&ack.value) => {}
            other => lost.push(format!("{} → {other:?}", ack.key)),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost or changed, first: {:?}",
        lost.len(),
        acks.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "{} acknowledged writes all read back, {moved_writes} of them to the killed node's \
         former slots after the kill",
        acks.len()
    );
}
