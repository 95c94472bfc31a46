//! Cluster mode: which node serves a key.
//!
//! A cohort cluster started with `--cluster-enabled yes` splits its keys over 16384 hash slots
//! (Redis Cluster's CRC16 with `{hash tags}`, [`placement::key_slot`]); a node serves only the
//! slots of the shards it leads and answers `-MOVED slot host:port` for the others. This module
//! holds what the client knows about that: the slot map (slot → node, loaded with
//! `CLUSTER SLOTS`), the node registry (one connection pool per `host:port`, growing as nodes are
//! learnt), the parsing of `-MOVED` / `-ASK` replies, and the key a command is routed by.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use resp::Frame;

use crate::pool::Pool;

/// Hash slots of a Redis cluster.
pub(crate) const SLOT_COUNT: usize = 16384;

/// Redirections one call follows before the last `-MOVED` / `-ASK` is returned as its reply.
pub(crate) const REDIRECTS_MAX: u32 = 16;

/// A redirection reply: the command was not run and should go to `address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// `-MOVED slot host:port`: the slot is served by `address` from now on.
    Moved { slot: u16, address: String },
    /// `-ASK slot host:port`: this one command goes to `address`, preceded by `ASKING`.
    Ask { slot: u16, address: String },
}

impl Redirect {
    pub fn address(&self) -> &str {
        match self {
            Redirect::Moved { address, .. } | Redirect::Ask { address, .. } => address,
        }
    }
}

/// The redirection an error reply carries, if it is `-MOVED` or `-ASK` and well formed.
pub(crate) fn parse_redirect(text: &str) -> Option<Redirect> {
    let mut words = text.split_ascii_whitespace();
    let code = words.next()?;
    let slot: u16 = words.next()?.parse().ok()?;
    let address = words.next()?;
    if usize::from(slot) >= SLOT_COUNT || address.is_empty() || words.next().is_some() {
        return None;
    }
    // `:port` (no host) means the host of the node that replied; see `resolve`.
    if !address.contains(':') {
        return None;
    }
    let address = address.to_string();
    match code {
        "MOVED" => Some(Redirect::Moved { slot, address }),
        "ASK" => Some(Redirect::Ask { slot, address }),
        _ => None,
    }
}

/// A redirection's address as a dialable `host:port`: Redis leaves the host out (`:port`) when
/// it is the host of the node that replied, `from`.
pub(crate) fn resolve(address: &str, from: &str) -> String {
    let Some(port) = address.strip_prefix(':') else { return address.to_string() };
    match from.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => format!("{from}:{port}"),
    }
}

/// The redirection of a reply frame, if any.
pub(crate) fn redirect_of(frame: &Frame) -> Option<Redirect> {
    match frame {
        Frame::Error(text) => parse_redirect(text),
        _ => None,
    }
}

/// `CLUSTER SLOTS` as (start, end, master address) ranges. `None` if the reply is not an array
/// of ranges; ranges that are malformed or name no usable master are skipped.
pub(crate) fn parse_cluster_slots(frame: &Frame) -> Option<Vec<(u16, u16, String)>> {
    let Frame::Array(entries) = frame else { return None };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        let Frame::Array(parts) = entry else { continue };
        let (Some(Frame::Integer(start)), Some(Frame::Integer(end)), Some(Frame::Array(master))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let in_range = |n: i64| (0..SLOT_COUNT as i64).contains(&n);
        if !in_range(*start) || !in_range(*end) || start > end {
            continue;
        }
        let host = match master.first() {
            Some(Frame::Bulk(host)) => String::from_utf8_lossy(host).into_owned(),
            Some(Frame::Simple(host)) => host.clone(),
            _ => continue,
        };
        let Some(Frame::Integer(port)) = master.get(1) else { continue };
        if host.is_empty() || !(1..=65535).contains(port) {
            continue;
        }
        let address =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        ranges.push((*start as u16, *end as u16, address));
    }
    Some(ranges)
}

/// True for the error a node not in cluster mode answers `CLUSTER SLOTS` with.
pub(crate) fn is_cluster_disabled(frame: &Frame) -> bool {
    matches!(frame, Frame::Error(text) if text.contains("cluster support disabled"))
}

/// Commands that name no key: in cluster mode any node serves them.
const KEYLESS: &[&str] = &[
    "ping",
    "echo",
    "info",
    "time",
    "command",
    "cluster",
    "keys",
    "scan",
    "randomkey",
    "dbsize",
    "flushall",
    "flushdb",
    "session.open",
    "session.close",
    "multi",
    "exec",
    "discard",
    "unwatch",
    "hello",
    "auth",
    "select",
    "client",
    "readonly",
    "readwrite",
    "asking",
    "reset",
    "quit",
    "wait",
    "config",
    "role",
    "lastsave",
    "save",
    "bgsave",
    "debug",
    "publish",
    "subscribe",
    "psubscribe",
];

/// Commands that change the state of their connection, or depend on it: a pipeline holding one
/// is sent whole to one node.
const CONNECTION_STATE: &[&str] = &[
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "select",
    "asking",
    "readonly",
    "readwrite",
    "hello",
    "auth",
    "reset",
    "client",
];

fn named(list: &[&str], name: &[u8]) -> bool {
    list.iter().any(|entry| entry.as_bytes().eq_ignore_ascii_case(name))
}

/// True if `args` changes or reads its connection's state (`MULTI`, `WATCH`, `ASKING`…).
pub(crate) fn uses_connection_state(args: &[Bytes]) -> bool {
    args.first().is_some_and(|name| named(CONNECTION_STATE, name))
}

/// The key a command is routed by: the first key it names (the server refuses commands whose
/// keys span slots with `-CROSSSLOT`), or `None` for a keyless command. `SEQ id n command…` is
/// routed by the wrapped command. A command this table does not know is routed by its first
/// argument: if that guess is wrong the node's `-MOVED` corrects it.
pub(crate) fn routing_key(args: &[Bytes]) -> Option<&Bytes> {
    let name = args.first()?;
    if name.eq_ignore_ascii_case(b"seq") {
        return routing_key(args.get(3..)?);
    }
    if named(KEYLESS, name) {
        return None;
    }
    if name.eq_ignore_ascii_case(b"xgroup") || name.eq_ignore_ascii_case(b"xinfo") {
        // XGROUP CREATE key …, XINFO STREAM key …; XGROUP HELP has no key.
        return args.get(2);
    }
    if name.eq_ignore_ascii_case(b"sintercard") {
        // SINTERCARD numkeys key …
        return args.get(2);
    }
    if name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup") {
        // … STREAMS key … id …
        let streams = args.iter().position(|arg| arg.eq_ignore_ascii_case(b"streams"))?;
        return args.get(streams + 1);
    }
    args.get(1)
}

/// The slot of a command's routing key.
pub(crate) fn command_slot(args: &[Bytes]) -> Option<u16> {
    routing_key(args).map(|key| placement::key_slot(key))
}

/// Slot → node (an index into [`Nodes`]); `None` for a slot no node is known for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotMap {
    owners: Vec<Option<usize>>,
}

impl Default for SlotMap {
    fn default() -> SlotMap {
        SlotMap { owners: vec![None; SLOT_COUNT] }
    }
}

impl SlotMap {
    pub fn owner(&self, slot: u16) -> Option<usize> {
        self.owners.get(usize::from(slot)).copied().flatten()
    }

    /// Records that `node` serves `slot` (from a `-MOVED`).
    pub fn set(&mut self, slot: u16, node: usize) {
        if let Some(owner) = self.owners.get_mut(usize::from(slot)) {
            *owner = Some(node);
        }
    }

    /// A map holding exactly `ranges` (inclusive start, end, node).
    pub fn from_ranges(ranges: &[(u16, u16, usize)]) -> SlotMap {
        let mut map = SlotMap::default();
        for &(start, end, node) in ranges {
            for slot in start..=end.min(SLOT_COUNT as u16 - 1) {
                map.set(slot, node);
            }
        }
        map
    }

    /// Slots with a known node.
    #[cfg(test)]
    pub fn covered(&self) -> usize {
        self.owners.iter().filter(|owner| owner.is_some()).count()
    }
}

/// Every node address the client knows, each with its connection pool. Grows, never shrinks, so
/// an index stays valid; the addresses given to the client come first, in their order.
#[derive(Debug)]
pub(crate) struct Nodes {
    inner: RwLock<NodeList>,
    idle_max: usize,
}

#[derive(Debug, Default)]
struct NodeList {
    pools: Vec<Arc<Pool>>,
    addresses: Vec<String>,
    by_address: HashMap<String, usize>,
}

impl Nodes {
    pub fn new(addresses: &[&str], idle_max: usize) -> Nodes {
        let nodes = Nodes { inner: RwLock::new(NodeList::default()), idle_max };
        {
            let mut list = nodes.inner.write().expect("nodes lock");
            for address in addresses {
                // Duplicates keep their own index so the router's indices stay those given.
                let index = list.pools.len();
                list.pools.push(Arc::new(Pool::new(address.to_string(), idle_max)));
                list.addresses.push(address.to_string());
                list.by_address.entry(address.to_string()).or_insert(index);
            }
        }
        nodes
    }

    pub fn pool(&self, node: usize) -> Arc<Pool> {
        self.inner.read().expect("nodes lock").pools[node].clone()
    }

    pub fn len(&self) -> usize {
        self.inner.read().expect("nodes lock").pools.len()
    }

    /// The index of `address`, registering it if it is new.
    pub fn index_of(&self, address: &str) -> usize {
        if let Some(&index) = self.inner.read().expect("nodes lock").by_address.get(address) {
            return index;
        }
        let mut list = self.inner.write().expect("nodes lock");
        if let Some(&index) = list.by_address.get(address) {
            return index;
        }
        let index = list.pools.len();
        list.pools.push(Arc::new(Pool::new(address.to_string(), self.idle_max)));
        list.addresses.push(address.to_string());
        list.by_address.insert(address.to_string(), index);
        index
    }

    pub fn address(&self, node: usize) -> String {
        self.inner.read().expect("nodes lock").addresses[node].clone()
    }
}

const MODE_UNKNOWN: u8 = 0;
const MODE_PLAIN: u8 = 1;
const MODE_CLUSTER: u8 = 2;

/// Whether the servers run in cluster mode, as far as the client has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Not checked yet: routed like `Plain` until a `-MOVED` arrives.
    Unknown,
    /// Any node serves any command (it forwards to the leader).
    Plain,
    /// Nodes serve only their slots.
    Cluster,
}

/// The cluster-mode state of a client.
#[derive(Debug)]
pub(crate) struct Cluster {
    mode: AtomicU8,
    map: RwLock<SlotMap>,
    /// Full reloads of the map so far; a refresh that waited for another one skips its own.
    reloads: AtomicU64,
    /// Serializes reloads.
    pub reloading: tokio::sync::Mutex<()>,
    /// The map is believed out of date (a node failed or the cluster was down): reload before
    /// the next attempt.
    stale: AtomicBool,
    /// A background reload is scheduled or running.
    pub background: AtomicBool,
    /// Where keyless commands go in cluster mode; moves on when that node fails.
    any: AtomicUsize,
}

impl Default for Cluster {
    fn default() -> Cluster {
        Cluster {
            mode: AtomicU8::new(MODE_UNKNOWN),
            map: RwLock::new(SlotMap::default()),
            reloads: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            stale: AtomicBool::new(false),
            background: AtomicBool::new(false),
            any: AtomicUsize::new(0),
        }
    }
}

impl Cluster {
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            MODE_PLAIN => Mode::Plain,
            MODE_CLUSTER => Mode::Cluster,
            _ => Mode::Unknown,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        let value = match mode {
            Mode::Unknown => MODE_UNKNOWN,
            Mode::Plain => MODE_PLAIN,
            Mode::Cluster => MODE_CLUSTER,
        };
        self.mode.store(value, Ordering::Relaxed);
    }

    pub fn is_cluster(&self) -> bool {
        self.mode() == Mode::Cluster
    }

    /// The node serving `slot`, if known.
    pub fn owner(&self, slot: u16) -> Option<usize> {
        self.map.read().expect("slot map lock").owner(slot)
    }

    /// Applies a `-MOVED`: `node` serves `slot`, and the servers are in cluster mode.
    pub fn moved(&self, slot: u16, node: usize) {
        self.set_mode(Mode::Cluster);
        self.map.write().expect("slot map lock").set(slot, node);
    }

    /// Replaces the whole map (after `CLUSTER SLOTS`).
    pub fn install(&self, map: SlotMap) {
        *self.map.write().expect("slot map lock") = map;
        self.stale.store(false, Ordering::Relaxed);
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The node for a keyless command, among `count` known nodes.
    pub fn any(&self, count: usize) -> usize {
        self.any.load(Ordering::Relaxed) % count.max(1)
    }

    /// The keyless choice `node` failed: move on to the next one.
    pub fn any_failed(&self, node: usize, count: usize) {
        let current = self.any.load(Ordering::Relaxed);
        if current % count.max(1) == node {
            let _ = self.any.compare_exchange(
                current,
                (node + 1) % count.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    #[cfg(test)]
    pub fn map(&self) -> SlotMap {
        self.map.read().expect("slot map lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
    }

    #[test]
    fn redirections_are_parsed_and_malformed_ones_ignored() {
        // Goal: MOVED and ASK give the slot and address; anything else is not a redirection.
        assert_eq!(
            parse_redirect("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved { slot: 3999, address: "127.0.0.1:6381".into() })
        );
        assert_eq!(
            parse_redirect("ASK 0 10.0.0.2:7000"),
            Some(Redirect::Ask { slot: 0, address: "10.0.0.2:7000".into() })
        );
        let ipv6 = parse_redirect("MOVED 16383 [::1]:7000").unwrap();
        assert_eq!(ipv6.address(), "[::1]:7000");
        for text in [
            "MOVED",
            "MOVED 12",
            "MOVED 16384 127.0.0.1:1",
            "MOVED -1 127.0.0.1:1",
            "MOVED x 127.0.0.1:1",
            "MOVED 1 127.0.0.1:1 extra",
            "MOVED 1 6379",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "ERR MOVED 1 127.0.0.1:1",
        ] {
            assert_eq!(parse_redirect(text), None, "{text}");
        }
        assert_eq!(redirect_of(&Frame::Simple("MOVED 1 a:1".into())), None);
        let hostless = parse_redirect("MOVED 1 :6380").unwrap();
        assert_eq!(resolve(hostless.address(), "10.1.2.3:6379"), "10.1.2.3:6380");
        assert_eq!(resolve("10.0.0.9:7000", "10.1.2.3:6379"), "10.0.0.9:7000");
    }

    #[test]
    fn a_moved_reply_updates_only_its_slot() {
        // Goal: the map loaded from CLUSTER SLOTS answers every covered slot; a MOVED moves
        // exactly the slot it names and switches the client to cluster mode.
        let node = |host: &'static str, port: i64| {
            Frame::Array(vec![
                Frame::bulk(host),
                Frame::Integer(port),
                Frame::bulk("0000000000000000000000000000000000000001"),
                Frame::Map(Vec::new()),
            ])
        };
        let reply = Frame::Array(vec![
            Frame::Array(vec![
                Frame::Integer(0),
                Frame::Integer(8191),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7002),
            ]),
            Frame::Array(vec![
                Frame::Integer(8192),
                Frame::Integer(16383),
                node("127.0.0.1", 7002),
            ]),
            Frame::Array(vec![Frame::Integer(5), Frame::Integer(2)]), // malformed: skipped
        ]);
        let ranges = parse_cluster_slots(&reply).unwrap();
        assert_eq!(
            ranges,
            [(0, 8191, "127.0.0.1:7001".to_string()), (8192, 16383, "127.0.0.1:7002".to_string())]
        );
        assert_eq!(parse_cluster_slots(&Frame::error("ERR nope")), None);

        let nodes = Nodes::new(&["127.0.0.1:7002"], 1);
        let indexed: Vec<(u16, u16, usize)> = ranges
            .iter()
            .map(|(start, end, address)| (*start, *end, nodes.index_of(address)))
            .collect();
        assert_eq!(indexed, [(0, 8191, 1), (8192, 16383, 0)], "known addresses keep their index");
        let cluster = Cluster::default();
        assert_eq!(cluster.mode(), Mode::Unknown);
        cluster.install(SlotMap::from_ranges(&indexed));
        assert_eq!(cluster.map().covered(), SLOT_COUNT);
        assert_eq!(
            (cluster.owner(0), cluster.owner(8191), cluster.owner(8192)),
            (Some(1), Some(1), Some(0))
        );

        let Some(Redirect::Moved { slot, address }) = parse_redirect("MOVED 100 127.0.0.1:7003")
        else {
            panic!("a MOVED")
        };
        let new_node = nodes.index_of(&address);
        assert_eq!(new_node, 2);
        cluster.moved(slot, new_node);
        assert!(cluster.is_cluster());
        assert_eq!(
            (cluster.owner(99), cluster.owner(100), cluster.owner(101)),
            (Some(1), Some(2), Some(1))
        );
        assert_eq!(nodes.len(), 3);
    }

    #[test]
    fn commands_are_routed_by_their_first_key() {
        // Goal: the routing key is the key the server would check, SEQ is routed by the command
        // it wraps, and keyless commands have none.
        let key = |words: &[&str]| routing_key(&args(words)).cloned();
        let some = |text: &str| Some(Bytes::copy_from_slice(text.as_bytes()));
        assert_eq!(key(&["GET", "a"]), some("a"));
        assert_eq!(key(&["SEQ", "7", "3", "INCR", "b"]), some("b"));
        assert_eq!(key(&["SEQ", "7"]), None);
        assert_eq!(key(&["LOCK.ACQUIRE", "jobs", "1000"]), some("jobs"));
        assert_eq!(key(&["XGROUP", "CREATE", "s", "g", "$"]), some("s"));
        assert_eq!(
            key(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"]),
            some("s")
        );
        assert_eq!(key(&["SINTERCARD", "2", "x", "y"]), some("x"));
        for keyless in
            [&["PING"][..], &["SESSION.OPEN", "IDLE", "100"], &["CLUSTER", "SLOTS"], &["DBSIZE"]]
        {
            assert_eq!(key(keyless), None, "{keyless:?}");
        }
        assert_eq!(command_slot(&args(&["SET", "{foo}.bar", "x"])), Some(12182));
        assert_eq!(command_slot(&args(&["GET", "bar"])), Some(5061));
        assert_eq!(command_slot(&args(&["GET", "foo"])), Some(12182));
        assert!(uses_connection_state(&args(&["multi"])));
        assert!(!uses_connection_state(&args(&["INCR", "a"])));
    }
}
