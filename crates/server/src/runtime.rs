//! The shell around the sans-IO node: one task owns the [`Node`] and feeds
//! it time, client commands, peer messages and disk completions; one thread
//! owns the write-ahead log and makes batches durable with one `fsync`
//! (group commit); the transport moves peer messages.
//!
//! ```text
//!  connections ──Call──▶ ┌───────────┐ ──DiskTask──▶ disk thread (Wal, fsync per batch)
//!  transport ─(id,bytes)▶│ node task │ ◀─persisted── ┘
//!  ticker ──────────────▶└───────────┘ ──bytes──▶ transport;  ──Frame──▶ connections
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use consensus::paxos::Paxos;
use consensus::raft::Raft;
use consensus::{Engine, Membership, NodeId, Options};
use node::{Command, DiskTask, Node, NodeOptions, PeerMessage, RequestId, Topology, DATA_GROUP};
use resp::Frame;
use storage::{Fsync, OsFs, Persist, Wal, WalOptions};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::handle::{Call, Info, NodeHandle, ShardInfo};
use crate::log;
use crate::transport::Transport;

/// Queue between connections and the node task.
const CALLS_QUEUE_MAX: usize = 65_536;
/// Peer messages waiting for the node task.
const INBOUND_QUEUE_MAX: usize = 65_536;
/// How long a graceful shutdown waits for commands in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A cluster id both ends of a peer connection must agree on. The engine is
/// part of it, so a node running another engine is refused at the handshake.
pub fn cluster_id(consensus: Consensus) -> u64 {
    0xC0_4047_0000 | consensus as u64
}

/// The consensus engine a cluster runs, fixed when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consensus {
    Raft = 1,
    Paxos = 2,
}

impl Consensus {
    pub fn name(self) -> &'static str {
        match self {
            Consensus::Raft => "raft",
            Consensus::Paxos => "paxos",
        }
    }

    pub fn from_name(name: &str) -> Option<Consensus> {
        match name {
            "raft" => Some(Consensus::Raft),
            "paxos" => Some(Consensus::Paxos),
            _ => None,
        }
    }
}

/// The file in the data directory that records the cluster's engine.
const CONSENSUS_FILE: &str = "consensus";
/// The file in the data directory that records a sharded cluster's shape.
const TOPOLOGY_FILE: &str = "topology";

/// Writes `bytes` to `name` in the data directory, durably: a temporary
/// file, fsync, rename, fsync of the directory.
fn write_durably(config: &Config, name: &str, bytes: &[u8]) -> Result<()> {
    let path = config.data_dir.join(name);
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(&config.data_dir)?.sync_all()?;
    Ok(())
}

/// The sharded cluster's topology: the one recorded in the data directory,
/// or, on a new node started with `--shards` or `--cluster-enabled`, the one
/// derived from the founding members (and then recorded). `None` for an
/// unsharded cluster, whose one group's membership changes by joins.
fn load_topology(config: &Config, log_is_empty: bool) -> Result<Option<Topology>> {
    let path = config.data_dir.join(TOPOLOGY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let topology = Topology::decode(&bytes)
                .with_context(|| format!("reading the cluster topology in {}", path.display()))?;
            if topology.shards.len() as u64 != config.shards && config.shards > 1 {
                log!(
                    "{} records {} shards; --shards {} applies only to a new cluster",
                    path.display(),
                    topology.shards.len(),
                    config.shards
                );
            }
            Ok(Some(topology))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if config.shards <= 1 && !config.cluster_enabled {
                return Ok(None);
            }
            if !log_is_empty {
                bail!(
                    "{} holds an unsharded cluster's log; --shards and --cluster-enabled are \
                     fixed when a cluster is created",
                    config.data_dir.display()
                );
            }
            let mut nodes: Vec<NodeId> = config.initial_cluster.keys().copied().collect();
            if nodes.is_empty() {
                nodes.push(config.node_id);
            }
            let replicas = config.replicas.unwrap_or(3).min(nodes.len());
            let topology =
                Topology::sharded(&nodes, config.shards, replicas, config.cluster_enabled)?;
            write_durably(config, TOPOLOGY_FILE, &topology.encode())
                .with_context(|| format!("recording the cluster topology in {}", path.display()))?;
            Ok(Some(topology))
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Records the engine on first start; refuses to start with another one.
fn check_consensus(config: &Config) -> Result<()> {
    let path = config.data_dir.join(CONSENSUS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(recorded) => {
            let recorded = recorded.trim();
            if recorded != config.consensus.name() {
                bail!(
                    "{} was created with --consensus {recorded}; this node was started with \
                     --consensus {} (the engine is fixed when a cluster is created)",
                    config.data_dir.display(),
                    config.consensus.name()
                );
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let temporary = path.with_extension("tmp");
            std::fs::write(&temporary, format!("{}\n", config.consensus.name()))?;
            std::fs::File::open(&temporary)?.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            std::fs::File::open(&config.data_dir)?.sync_all()?;
            Ok(())
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

use std::sync::atomic::{AtomicU64, Ordering};

enum DiskEvent {
    /// Every write up to this id is durable (as the fsync policy defines).
    Persisted(u64),
    /// The log failed and refuses all further writes.
    Poisoned(String),
}

/// What the node task hands the rest of the process.
pub struct Started {
    pub handle: NodeHandle,
    pub task: tokio::task::JoinHandle<Result<()>>,
    pub peer_address: SocketAddr,
}

/// Opens the data directory, recovers the log, and starts the node task,
/// the disk thread and the transport.
pub async fn start(config: Arc<Config>, shutdown: watch::Receiver<bool>) -> Result<Started> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    check_consensus(&config)?;
    let fs = OsFs::new(&config.data_dir)
        .with_context(|| format!("opening data directory {}", config.data_dir.display()))?;
    let (wal, recovered) = Wal::open(fs, WalOptions::default())
        .with_context(|| format!("recovering the log in {}", config.data_dir.display()))?;
    if let Some(torn) = &recovered.torn_tail {
        log!(
            "recovery: truncated a torn tail of {} bytes at offset {} of {} ({})",
            torn.truncated_bytes,
            torn.offset,
            torn.file,
            torn.reason
        );
    }
    let topology = load_topology(&config, recovered.groups.is_empty())?;
    for (group, durable) in &recovered.groups {
        log!(
            "recovered group {group} from {} segment(s): term {} commit {} snapshot {} entries {}",
            recovered.segments,
            durable.hard_state.term,
            durable.hard_state.commit,
            durable.snapshot_index(),
            durable.entries.len()
        );
    }
    if let Some(topology) = &topology {
        log!(
            "sharded cluster: {} shards, this node holds replicas of groups {:?}{}",
            topology.shards.len(),
            topology.groups_of(config.node_id),
            if topology.cluster_enabled { "; cluster mode" } else { "" }
        );
    }

    let founding = founding_membership(&config);
    let peers: BTreeMap<NodeId, String> = config.initial_cluster.clone();
    let peer_listen: SocketAddr = format!("{}:{}", config.bind, config.peer_port)
        .parse()
        .with_context(|| format!("peer address {}:{}", config.bind, config.peer_port))?;
    let mut options = NodeOptions::new(config.node_id);
    options.request_timeout_ms = config.request_timeout_ms;
    options.snapshot_entries = config.snapshot_entries;
    options.peer_address = advertised(&config, config.peer_port);
    options.client_address = advertised(&config, config.port);
    options.engine = engine_options(&config);
    let groups = recovered.groups;
    match config.consensus {
        Consensus::Raft => {
            let node = build_node(options, Raft::new, topology, founding, peers, groups);
            launch(config, node, wal, peer_listen, shutdown).await
        }
        Consensus::Paxos => {
            let node = build_node(options, Paxos::new, topology, founding, peers, groups);
            launch(config, node, wal, peer_listen, shutdown).await
        }
    }
}

fn build_node<E: Engine>(
    options: NodeOptions,
    build: fn(Options, Membership, consensus::Durable) -> E,
    topology: Option<Topology>,
    founding: Membership,
    peers: BTreeMap<NodeId, String>,
    mut groups: BTreeMap<node::GroupId, consensus::Durable>,
) -> Node<E> {
    match topology {
        Some(topology) => Node::with_topology(options, build, topology, peers, groups, now_ms()),
        None => {
            let durable = groups.remove(&DATA_GROUP).unwrap_or_default();
            Node::new(options, build, founding, peers, durable, now_ms())
        }
    }
}

async fn launch<E: Engine + Send + 'static>(
    config: Arc<Config>,
    node: Node<E>,
    wal: Wal<OsFs>,
    peer_listen: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> Result<Started>
where
    E::Message: Send,
{
    let (inbound_sender, inbound) = mpsc::channel(INBOUND_QUEUE_MAX);
    let cluster = cluster_id(config.consensus);
    let transport = Transport::start(config.node_id, cluster, peer_listen, inbound_sender)
        .await
        .with_context(|| format!("listening for peers on {peer_listen}"))?;
    let peer_address = transport.local_addr();
    transport.set_peers(node.peer_addresses());

    let (disk_sender, disk_receiver) = std_mpsc::channel::<Vec<DiskTask>>();
    let (disk_event_sender, disk_events) = mpsc::unbounded_channel();
    let fsync = config.fsync;
    let log_bytes = Arc::new(AtomicU64::new(wal.size_bytes()));
    let disk_log_bytes = log_bytes.clone();
    std::thread::Builder::new()
        .name("disk".to_string())
        .spawn(move || disk_thread(wal, fsync, disk_receiver, disk_event_sender, disk_log_bytes))
        .context("starting the disk thread")?;

    let (calls_sender, calls) = mpsc::channel(CALLS_QUEUE_MAX);
    let node_task = NodeTask {
        config: config.clone(),
        node,
        transport,
        disk: disk_sender,
        waiting: BTreeMap::new(),
        next_request: 0,
        poisoned: None,
        log_bytes,
        peers: BTreeMap::new(),
    };
    let task = tokio::spawn(node_task.run(calls, inbound, disk_events, shutdown));
    Ok(Started { handle: NodeHandle::new(calls_sender), task, peer_address })
}

fn founding_membership(config: &Config) -> Membership {
    if config.join.is_some() {
        // A joining node learns the configuration from the leader.
        Membership::default()
    } else if config.initial_cluster.is_empty() {
        Membership::with_voters([config.node_id])
    } else {
        Membership::with_voters(config.initial_cluster.keys().copied())
    }
}

/// The address other nodes and clients should use for `port`.
fn advertised(config: &Config, port: u16) -> String {
    let host = if config.bind == "0.0.0.0" { "127.0.0.1" } else { config.bind.as_str() };
    format!("{host}:{port}")
}

fn engine_options(config: &Config) -> Options {
    let mut options = Options::new(config.node_id);
    options.election_ticks = 10;
    options.heartbeat_ticks = 2;
    // Seeds differ between restarts so a restarted node does not repeat its
    // election timeouts; the engine itself never draws OS randomness.
    options.seed = config.node_id ^ now_ms().rotate_left(17);
    options
}

struct NodeTask<E: Engine> {
    config: Arc<Config>,
    node: Node<E>,
    transport: Transport,
    disk: std_mpsc::Sender<Vec<DiskTask>>,
    waiting: BTreeMap<RequestId, oneshot::Sender<Frame>>,
    next_request: RequestId,
    poisoned: Option<String>,
    log_bytes: Arc<AtomicU64>,
    peers: BTreeMap<NodeId, String>,
}

impl<E: Engine> NodeTask<E> {
    async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        mut inbound: mpsc::Receiver<(NodeId, Bytes)>,
        mut disk_events: mpsc::UnboundedReceiver<DiskEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut ticker = tokio::time::interval(Duration::from_millis(self.config.tick_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut join_retry = tokio::time::interval(Duration::from_secs(1));
        self.flush();
        loop {
            tokio::select! {
                _ = ticker.tick() => self.node.tick(now_ms()),
                _ = join_retry.tick(), if self.config.join.is_some() => self.ask_to_join(),
                call = calls.recv() => match call {
                    Some(call) => {
                        self.call(call);
                        // Take whatever else is queued before flushing, so a
                        // burst of commands shares one disk batch.
                        while let Ok(call) = calls.try_recv() {
                            self.call(call);
                        }
                    }
                    None => break,
                },
                message = inbound.recv() => {
                    if let Some((from, bytes)) = message {
                        self.peer_message(from, bytes);
                    }
                }
                event = disk_events.recv() => match event {
                    Some(DiskEvent::Persisted(write)) => self.node.persisted(write, now_ms()),
                    Some(DiskEvent::Poisoned(reason)) => self.poison(reason),
                    None => bail!("the disk thread stopped"),
                },
                _ = shutdown.changed() => break,
            }
            self.flush();
        }
        self.drain(&mut calls, &mut disk_events).await;
        self.transport.shutdown().await;
        log!("node {} stopped", self.config.node_id);
        Ok(())
    }

    /// Graceful shutdown: stop taking commands, finish the ones in flight
    /// (for a bounded time), and let the disk thread finish its batch.
    async fn drain(
        &mut self,
        calls: &mut mpsc::Receiver<Call>,
        disk_events: &mut mpsc::UnboundedReceiver<DiskEvent>,
    ) {
        calls.close();
        while let Ok(call) = calls.try_recv() {
            self.call(call);
        }
        self.flush();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !self.waiting.is_empty() && Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, disk_events.recv()).await {
                Ok(Some(DiskEvent::Persisted(write))) => self.node.persisted(write, now_ms()),
                Ok(Some(DiskEvent::Poisoned(reason))) => self.poison(reason),
                _ => break,
            }
            self.flush();
        }
        for (_, reply) in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Frame::error("ERR server is shutting down"));
        }
    }

    fn call(&mut self, call: Call) {
        match call {
            Call::Command { command, readonly, reply } => {
                if let Some(reason) = &self.poisoned {
                    if !is_read(&command) {
                        let text = format!(
                            "MISCONF the write-ahead log failed ({reason}); this node refuses writes"
                        );
                        let _ = reply.send(Frame::error(text));
                        return;
                    }
                }
                self.next_request += 1;
                let request = self.next_request;
                self.waiting.insert(request, reply);
                self.node.submit_with(request, command, readonly, now_ms());
            }
            Call::Cluster { reply } => {
                let _ = reply.send(self.node.cluster_view());
            }
            Call::KeysInSlot { slot, count, reply } => {
                let _ = reply.send(self.node.keys_in_slot(slot, count, now_ms()));
            }
            Call::Info { reply } => {
                let info = Info {
                    node: self.node.status(),
                    log_bytes: self.log_bytes.load(Ordering::Relaxed),
                    fsync: self.config.fsync.name(),
                    engine: self.config.consensus.name(),
                    poisoned: self.poisoned.clone(),
                    cluster_enabled: self.node.topology().cluster_enabled,
                    shards: self.node.topology().shards.len(),
                    shard_statuses: self.shard_infos(),
                    client_addresses: self.client_addresses(),
                };
                let _ = reply.send(info);
            }
        }
    }

    /// Every hosted group's status, for a sharded cluster.
    fn shard_infos(&self) -> Vec<ShardInfo> {
        let topology = self.node.topology();
        if !topology.is_sharded() {
            return Vec::new();
        }
        let counts = topology.slots.slot_counts();
        self.node
            .shard_statuses()
            .into_iter()
            .map(|(group, status)| ShardInfo {
                group,
                status,
                hibernating: self.node.is_group_hibernating(group),
                slots: counts.get(&group).copied().unwrap_or(0),
            })
            .collect()
    }

    fn client_addresses(&self) -> Vec<(u64, String)> {
        let mut nodes: Vec<NodeId> = self.node.topology().nodes();
        nodes.extend(self.node.peer_addresses().into_keys());
        nodes.push(self.config.node_id);
        nodes.sort_unstable();
        nodes.dedup();
        nodes
            .into_iter()
            .map(|node| (node, self.node.client_address(node).unwrap_or_default()))
            .collect()
    }

    fn peer_message(&mut self, from: NodeId, bytes: Bytes) {
        match PeerMessage::<E::Message>::decode(bytes) {
            Ok(message) => self.node.receive(from, message, now_ms()),
            Err(error) => log!("dropping a malformed message from node {from}: {error}"),
        }
    }

    fn ask_to_join(&mut self) {
        let status = self.node.status();
        if status.membership.voters.contains(&self.config.node_id) {
            return;
        }
        if let Some(address) = &self.config.join {
            let message: PeerMessage<E::Message> = self.node.join_message();
            self.transport.send_to_address(address.clone(), message.encode());
        }
    }

    fn poison(&mut self, reason: String) {
        log!("the write-ahead log failed and refuses writes: {reason}");
        self.poisoned = Some(reason);
    }

    /// Executes the node's outbox.
    fn flush(&mut self) {
        let outbox = self.node.take_outbox();
        if !outbox.disk.is_empty() && self.disk.send(outbox.disk).is_err() {
            self.poison("the disk thread stopped".to_string());
        }
        for (to, message) in outbox.messages {
            self.transport.send(to, message.encode());
        }
        for (address, message) in outbox.to_address {
            self.transport.send_to_address(address, message.encode());
        }
        for (request, frame) in outbox.replies {
            if let Some(reply) = self.waiting.remove(&request) {
                let _ = reply.send(frame);
            }
        }
        let peers = self.node.peer_addresses();
        if peers != self.peers {
            self.transport.set_peers(peers.clone());
            self.peers = peers;
        }
    }
}

fn is_read(command: &Command) -> bool {
    match command {
        Command::KeyVersions(_) | Command::ReadIndex => true,
        Command::Transaction { .. } => false,
        Command::Execute(args) => args
            .first()
            .and_then(|name| commands::lookup(name))
            .is_some_and(|spec| spec.is_readonly()),
    }
}

/// Owns the log. Takes every batch queued, appends it, and makes it durable
/// with one `fsync` (group commit), then reports the last write id.
fn disk_thread(
    mut wal: Wal<OsFs>,
    fsync: Fsync,
    tasks: std_mpsc::Receiver<Vec<DiskTask>>,
    events: mpsc::UnboundedSender<DiskEvent>,
    log_bytes: Arc<AtomicU64>,
) {
    let mut last_fsync = Instant::now();
    let mut dirty = false;
    loop {
        let first = match tasks.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => batch,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                if dirty
                    && fsync == Fsync::EverySecond
                    && last_fsync.elapsed() >= Duration::from_secs(1)
                {
                    if let Err(error) = wal.sync() {
                        let _ = events.send(DiskEvent::Poisoned(error.to_string()));
                        return;
                    }
                    dirty = false;
                    last_fsync = Instant::now();
                }
                continue;
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                let _ = wal.sync();
                return;
            }
        };
        let mut batch = first;
        while let Ok(more) = tasks.try_recv() {
            batch.extend(more);
        }
        let mut last_write = None;
        let mut snapshots = false;
        let result = batch.into_iter().try_for_each(|task| match task {
            DiskTask::Write(write) => {
                last_write = Some(write.id);
                let persist = Persist {
                    hard_state: write.hard_state.as_ref(),
                    snapshot: write.snapshot.as_ref(),
                    entries: &write.entries,
                };
                wal.append(write.group, persist)
            }
            DiskTask::SaveSnapshot { group, snapshot } => {
                snapshots = true;
                wal.save_snapshot(group, &snapshot)
            }
        });
        let now_fsync = match fsync {
            Fsync::Always => true,
            Fsync::EverySecond => last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::Never => false,
        };
        let result = result.and_then(|()| wal.flush(now_fsync));
        if let Err(error) = result {
            let _ = events.send(DiskEvent::Poisoned(error.to_string()));
            return;
        }
        if now_fsync {
            last_fsync = Instant::now();
            dirty = false;
        } else {
            dirty = true;
        }
        if snapshots {
            if let Err(error) = wal.compact() {
                let _ = events.send(DiskEvent::Poisoned(error.to_string()));
                return;
            }
        }
        log_bytes.store(wal.size_bytes(), Ordering::Relaxed);
        if let Some(write) = last_write {
            if events.send(DiskEvent::Persisted(write)).is_err() {
                return;
            }
        }
    }
}
