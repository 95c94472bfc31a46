//! [`Node`]: one process's replicas of the cluster's shards, and the
//! routing of a client command to the shard that owns its keys.
//!
//! A key belongs to one of Redis Cluster's 16384 hash slots, a slot to one
//! shard (a consensus group) through the [`Topology`]'s slot table, and a
//! shard's replicas live on a few nodes. The node hosts a [`Shard`] for every
//! group placed on it; a command goes to the shard of its keys:
//!
//! - a group hosted here: its replica serves it (or forwards it to the
//!   group's leader, see `shard`);
//! - a group hosted elsewhere: the command is forwarded to a node hosting it,
//!   the last leader heard of first (nodes tell each other which groups they
//!   lead in periodic `Hello`s);
//! - in Redis Cluster mode (`cluster_enabled`) a command whose group is led
//!   elsewhere gets `-MOVED slot host:port` instead, so cluster-aware clients
//!   go to the leader themselves; `READONLY` connections read from any
//!   replica hosted here (linearizably: the replica asks the leader for its
//!   confirmed commit index and serves the read once it has applied it).
//!
//! Keys of one command must share a slot (`-CROSSSLOT` otherwise, as Redis
//! Cluster). DBSIZE, KEYS, FLUSHALL, FLUSHDB and RANDOMKEY run on every shard
//! and their replies combine; SCAN walks the shards one after another with a
//! cursor that carries the shard's position. A session (for `SEQ`) is opened
//! and closed in every shard under one id the node draws, so that a
//! sequenced command finds it in whichever shard its keys live.
//!
//! Every shard numbers its own disk writes; the node renumbers them in the
//! order it hands them to the disk, and maps a durable node-wide id back to
//! each shard's own, so that all groups share one log and one `fsync`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use consensus::rng::Rng;
use consensus::{Durable, Engine, Index, Membership, NodeId, Options, Role, Term};
use resp::Frame;

use crate::replica::DiskTask;
use crate::shard::Shard;
use crate::topology::{ClusterView, ShardView, Topology};
use crate::{GroupId, DATA_GROUP};

/// Identifies a client request on the node that received it.
pub type RequestId = u64;

/// What a client asks the node to do (connection-level commands such as
/// HELLO or CLIENT never reach the node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// One command line: a read, a write or a blocking command.
    Execute(Vec<Bytes>),
    /// MULTI … EXEC, applied as one entry.
    Transaction { watched: Vec<(Bytes, u64)>, commands: Vec<Vec<Bytes>> },
    /// The versions of keys, for WATCH (a linearizable read).
    KeyVersions(Vec<Bytes>),
    /// The leader's commit index once it has confirmed it still leads: a
    /// replica serving a read itself waits until it has applied that index
    /// (Raft §6.4's follower reads). Sent between nodes only.
    ReadIndex,
}

/// Who waits for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client connected to this node.
    Local(RequestId),
    /// A client of another node, which forwarded the command here.
    Remote { node: NodeId, request: RequestId },
}

/// Everything nodes say to each other.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerMessage<M> {
    /// A consensus message for one group.
    Consensus { group: GroupId, message: M },
    /// A client command forwarded to the leader of `group`.
    Forward { group: GroupId, request: RequestId, command: Command },
    /// The leader's reply to a forwarded command.
    Reply { group: GroupId, request: RequestId, frame: Frame },
    /// The receiver did not act on a forwarded command (it does not lead
    /// `group`); the sender should route it again.
    Redirect { group: GroupId, request: RequestId, leader: Option<NodeId> },
    /// A new node asks to be added to the cluster.
    Join { node: NodeId, peer: String, client: String },
    /// A learner of `group` reports it has caught up and may be promoted.
    CaughtUp { group: GroupId, node: NodeId },
    /// Where the members listen for peers: the answer to a `Join`, so the
    /// joining node can reach them before it has applied their addresses.
    Peers(Vec<(NodeId, String)>),
    /// Sent now and then to every peer: where this node listens, and the
    /// groups it leads (so that nodes route commands for groups they do not
    /// host, and answer `CLUSTER SLOTS`, without asking).
    Hello { node: NodeId, peer: String, client: String, leading: Vec<GroupId> },
    /// From a node to a member of groups it leads that are quiet: their
    /// (group, term, last index). Sent every heartbeat in place of the
    /// groups' own heartbeats once they hibernate.
    Quiesce(Vec<(GroupId, Term, Index)>),
    /// The answer to `Quiesce`: the listed groups this node's replicas have
    /// caught up with and now hibernate.
    QuiesceAck(Vec<(GroupId, Term, Index)>),
}

#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: NodeId,
    /// How long a command may wait for a leader before it fails.
    pub request_timeout_ms: u64,
    /// Applied entries between two snapshots of the state machine.
    pub snapshot_entries: u64,
    /// Expired keys removed per purge entry.
    pub purge_keys_max: usize,
    /// Where this node listens for peers and for clients (replicated so that
    /// every member knows where its peers are).
    pub peer_address: String,
    pub client_address: String,
    /// Engine tuning (election and heartbeat ticks, batching).
    pub engine: Options,
}

impl NodeOptions {
    pub fn new(id: NodeId) -> NodeOptions {
        NodeOptions {
            id,
            request_timeout_ms: 5_000,
            snapshot_entries: 10_000,
            purge_keys_max: 128,
            peer_address: String::new(),
            client_address: String::new(),
            engine: Options::new(id),
        }
    }
}

/// What the shell must do after a call into the node.
#[derive(Debug)]
pub struct Outbox<M> {
    /// Disk work, in order. Report each `Write` with [`Node::persisted`].
    pub disk: Vec<DiskTask>,
    pub messages: Vec<(NodeId, PeerMessage<M>)>,
    /// Messages to a peer address whose node is not in the address book yet.
    pub to_address: Vec<(String, PeerMessage<M>)>,
    pub replies: Vec<(RequestId, Frame)>,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox {
            disk: Vec::new(),
            messages: Vec::new(),
            to_address: Vec::new(),
            replies: Vec::new(),
        }
    }
}

impl<M> Outbox<M> {
    pub fn is_empty(&self) -> bool {
        self.disk.is_empty()
            && self.messages.is_empty()
            && self.to_address.is_empty()
            && self.replies.is_empty()
    }
}

/// A snapshot of the node for `INFO`.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit: Index,
    pub applied: Index,
    pub last_index: Index,
    pub snapshot_index: Index,
    pub membership: Membership,
    pub keys: usize,
    pub pending_requests: usize,
    pub blocked_clients: usize,
    /// Equal on replicas that applied the same entries.
    pub state_digest: u64,
    pub addresses: BTreeMap<NodeId, (String, String)>,
}

/// Internal request ids (the parts of a command that spans shards) have
/// this bit set; the shell's ids never do.
const INTERNAL_REQUEST: RequestId = 1 << 63;
/// Ticks between two `Hello`s to every peer.
const HELLO_TICKS: u64 = 10;
/// A node not heard from for this many ticks is not given leadership.
const ALIVE_TICKS: u64 = 3 * HELLO_TICKS;
/// Ticks between two rounds of handing leaderships to preferred leaders.
const BALANCE_TICKS: u64 = 40;
/// Ticks between two `Quiesce` messages to every peer (the engines'
/// heartbeat interval): they list the quiet groups not yet hibernating, and
/// tell members that the sender's node is alive.
const QUIESCE_TICKS: u64 = 2;
/// Ticks between two `Quiesce` messages that list every quiet group,
/// hibernating ones included, to refresh their acknowledgements.
const QUIESCE_REFRESH_TICKS: u64 = 10;
/// A member's acknowledgement of a quiet group counts this many ticks.
const QUIESCE_ACK_TICKS: u64 = 2 * QUIESCE_REFRESH_TICKS + QUIESCE_TICKS;
/// A hibernating follower wakes when its leader's node has sent no
/// `Quiesce` for this many ticks, and ticks again toward an election.
const QUIESCE_SILENCE_TICKS: u64 = 3 * QUIESCE_TICKS;
/// Ticks between two maintenance ticks of a hibernating replica.
const HIBERNATING_MAINTENANCE_TICKS: u64 = 20;

/// A group this node leads that is quiet, on its way to hibernating.
struct QuietGroup {
    /// The term and last index the members acknowledge.
    position: (Term, Index),
    /// When each other member last acknowledged `position`.
    acked: BTreeMap<NodeId, u64>,
    /// Every member acknowledged recently: the engine is not ticked.
    hibernating: bool,
}
/// How often a command for a group this node does not host may be sent
/// to another node before it fails.
const REMOTE_REDIRECTS_MAX: u32 = 8;
/// A `SCAN` cursor over many shards: the shard's id (never 0) in the top
/// bits, the shard's own cursor (rounded down) in the rest. Rounding down can
/// only return keys again, which SCAN allows.
const SCAN_SHARD_SHIFT: u32 = 48;
const SCAN_INNER_SHIFT: u32 = 64 - SCAN_SHARD_SHIFT;

/// A command for a group this node does not host, sent to a node that
/// does.
struct RemoteRequest {
    group: GroupId,
    command: Command,
    /// The node it was sent to; `None` while it waits for a retry.
    sent_to: Option<NodeId>,
    redirects: u32,
    deadline_ms: u64,
}

/// How the parts of a command sent to every shard combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gather {
    /// DBSIZE: the sum of the integers.
    Sum,
    /// KEYS: every part's elements.
    Concat,
    /// FLUSHALL, FLUSHDB: `+OK` once every part said so.
    AllOk,
    /// RANDOMKEY: the first non-null part, from a rotating start.
    FirstNonNull { start: usize },
    /// SCAN: one shard at a time; the reply's cursor is rewritten to carry
    /// the shard (`group`) or, when it is done, the one after it.
    Scan { group: GroupId, next: Option<GroupId> },
    /// SESSION.OPEN: every part answers the same id.
    Same,
    /// SESSION.CLOSE: 1 if any part closed the session.
    Any,
}

/// A client command split over shards, waiting for its parts.
struct Gathering {
    request: RequestId,
    gather: Gather,
    parts: BTreeMap<RequestId, Option<Frame>>,
}

pub struct Node<E: Engine> {
    options: NodeOptions,
    topology: Topology,
    shards: BTreeMap<GroupId, Shard<E>>,
    /// Peer addresses known locally (the founding members' from the
    /// command line, the members' from a join answer or a `Hello`) until a
    /// replicated book has them.
    local_peers: BTreeMap<NodeId, String>,
    /// Client addresses learnt from `Hello`s.
    client_addresses: BTreeMap<NodeId, String>,
    /// The last node known to lead each group this node does not host.
    leader_hints: BTreeMap<GroupId, NodeId>,
    /// When each peer's last `Hello` arrived (this node's tick count).
    heard_from: BTreeMap<NodeId, u64>,
    /// Quiet groups this node leads.
    quiet: BTreeMap<GroupId, QuietGroup>,
    /// Groups this node follows that hibernate, with their leader's node
    /// and the position acknowledged.
    hibernating: BTreeMap<GroupId, (NodeId, (Term, Index))>,
    /// When each node's last `Quiesce` arrived.
    quiesce_from: BTreeMap<NodeId, u64>,
    remote: BTreeMap<RequestId, RemoteRequest>,
    gatherings: BTreeMap<RequestId, Gathering>,
    /// Internal request → the gathering it is a part of.
    parts: BTreeMap<RequestId, RequestId>,
    next_internal: RequestId,
    /// Draws session ids.
    rng: Rng,
    /// Writes handed to the disk and not yet durable: (node-wide id, group,
    /// the shard's own id). The shell persists writes in order.
    writes: VecDeque<(u64, GroupId, u64)>,
    next_write: u64,
    ticks: u64,
    now_ms: u64,
    outbox: Outbox<E::Message>,
}

impl<E: Engine> Node<E> {
    /// A node of an unsharded cluster: one group holding every slot.
    /// `founding` is the group's founding membership (empty for a node
    /// joining a running cluster); `peers` maps the founding members to
    /// their peer addresses.
    pub fn new(
        options: NodeOptions,
        build: fn(Options, Membership, Durable) -> E,
        founding: Membership,
        peers: BTreeMap<NodeId, String>,
        durable: Durable,
        now_ms: u64,
    ) -> Node<E> {
        let voters: Vec<NodeId> = founding.voters.iter().copied().collect();
        let topology = Topology::single(&voters);
        let mut node = Node::empty(options, topology, peers, now_ms);
        let shard = Shard::new(node.options.clone(), DATA_GROUP, build, founding, durable, now_ms);
        node.shards.insert(DATA_GROUP, shard);
        node.collect(DATA_GROUP);
        node
    }

    /// A node of a cluster shaped by `topology`: it hosts a replica of
    /// every group the topology places on it, recovered from `durable`
    /// (missing groups start empty).
    pub fn with_topology(
        options: NodeOptions,
        build: fn(Options, Membership, Durable) -> E,
        topology: Topology,
        peers: BTreeMap<NodeId, String>,
        mut durable: BTreeMap<GroupId, Durable>,
        now_ms: u64,
    ) -> Node<E> {
        let groups = topology.groups_of(options.id);
        let mut node = Node::empty(options, topology, peers, now_ms);
        for group in groups {
            let founding = Membership::with_voters(node.topology.shards[&group].iter().copied());
            let state = durable.remove(&group).unwrap_or_default();
            let shard = Shard::new(node.options.clone(), group, build, founding, state, now_ms);
            node.shards.insert(group, shard);
            node.collect(group);
        }
        node
    }

    fn empty(
        options: NodeOptions,
        topology: Topology,
        peers: BTreeMap<NodeId, String>,
        now_ms: u64,
    ) -> Node<E> {
        Node {
            rng: Rng::new(options.engine.seed ^ now_ms ^ options.id.rotate_left(32)),
            options,
            topology,
            shards: BTreeMap::new(),
            local_peers: peers,
            client_addresses: BTreeMap::new(),
            leader_hints: BTreeMap::new(),
            heard_from: BTreeMap::new(),
            quiet: BTreeMap::new(),
            hibernating: BTreeMap::new(),
            quiesce_from: BTreeMap::new(),
            remote: BTreeMap::new(),
            gatherings: BTreeMap::new(),
            parts: BTreeMap::new(),
            next_internal: INTERNAL_REQUEST,
            writes: VecDeque::new(),
            next_write: 0,
            ticks: 0,
            now_ms,
            outbox: Outbox::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.options.id
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The groups this node hosts a replica of.
    pub fn groups(&self) -> Vec<GroupId> {
        self.shards.keys().copied().collect()
    }

    /// Takes everything the shell must do now.
    pub fn take_outbox(&mut self) -> Outbox<E::Message> {
        std::mem::take(&mut self.outbox)
    }

    /// Peer addresses of every node this node knows, itself excluded.
    /// The shell calls this after every event, so it must stay cheap with
    /// many groups: a sharded cluster's nodes are all known from the
    /// founding list and the `Hello`s, and only an unsharded cluster's one
    /// replicated book (where joined nodes appear) is consulted.
    pub fn peer_addresses(&self) -> BTreeMap<NodeId, String> {
        let mut addresses = self.local_peers.clone();
        if !self.topology.is_sharded() {
            for shard in self.shards.values() {
                // The replicated book is the truth once it knows a node.
                let replicated = shard.addresses().iter().map(|(n, (p, _))| (*n, p.clone()));
                addresses.extend(replicated.filter(|(_, peer)| !peer.is_empty()));
            }
        }
        addresses.remove(&self.options.id);
        addresses
    }

    /// Where `node` listens for clients, if known: from the node's own
    /// `Hello`, else from a replicated address book.
    pub fn client_address(&self, node: NodeId) -> Option<String> {
        if node == self.options.id {
            return Some(self.options.client_address.clone()).filter(|a| !a.is_empty());
        }
        if let Some(address) = self.client_addresses.get(&node).filter(|a| !a.is_empty()) {
            return Some(address.clone());
        }
        self.shards
            .values()
            .filter_map(|shard| shard.addresses().get(&node))
            .map(|(_, client)| client.clone())
            .find(|client| !client.is_empty())
    }

    /// The message a new node sends to any member to join.
    pub fn join_message(&self) -> PeerMessage<E::Message> {
        PeerMessage::Join {
            node: self.options.id,
            peer: self.options.peer_address.clone(),
            client: self.options.client_address.clone(),
        }
    }

    /// A digest of the hosted state machines, equal on nodes that host the
    /// same groups and applied the same entries.
    pub fn state_digest(&self) -> u64 {
        match self.shards.len() {
            1 => self.shards.values().next().expect("one shard").state_digest(),
            _ => self.shards.iter().fold(0u64, |digest, (group, shard)| {
                let mixed = shard.state_digest() ^ group.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                digest.rotate_left(5) ^ mixed
            }),
        }
    }

    /// The status of the node's first group (the data group of an
    /// unsharded cluster), with the keys and clients of every hosted group.
    pub fn status(&self) -> NodeStatus {
        let mut shards = self.shards.values();
        let Some(first) = shards.next() else {
            return NodeStatus {
                id: self.options.id,
                role: Role::Follower,
                term: 0,
                leader: None,
                commit: 0,
                applied: 0,
                last_index: 0,
                snapshot_index: 0,
                membership: Membership::default(),
                keys: 0,
                pending_requests: self.remote.len(),
                blocked_clients: 0,
                state_digest: 0,
                addresses: BTreeMap::new(),
            };
        };
        let mut status = first.status();
        for shard in shards {
            let other = shard.status();
            status.keys += other.keys;
            status.pending_requests += other.pending_requests;
            status.blocked_clients += other.blocked_clients;
        }
        status.pending_requests += self.remote.len();
        status.state_digest = self.state_digest();
        status
    }

    /// The status of every hosted group.
    pub fn shard_statuses(&self) -> Vec<(GroupId, NodeStatus)> {
        self.shards.iter().map(|(group, shard)| (*group, shard.status())).collect()
    }

    /// Whether this node's replica of `group` hibernates (skips its
    /// engine's ticks because the group is idle).
    pub fn is_group_hibernating(&self, group: GroupId) -> bool {
        self.is_hibernating(group)
    }

    /// The cluster as this node sees it, for the `CLUSTER` commands.
    pub fn cluster_view(&self) -> ClusterView {
        let mut nodes = BTreeMap::new();
        let known = self.topology.nodes().into_iter().chain(self.peer_addresses().into_keys());
        for node in known.chain([self.options.id]) {
            nodes.insert(node, self.client_address(node).unwrap_or_default());
        }
        let mut ranges: BTreeMap<GroupId, Vec<(u16, u16)>> = BTreeMap::new();
        for (start, end, group) in self.topology.slots.ranges() {
            ranges.entry(group).or_default().push((start, end));
        }
        let shards = self
            .topology
            .shards
            .iter()
            .map(|(group, replicas)| {
                let mut replicas = replicas.clone();
                if let Some(shard) = self.shards.get(group) {
                    // An unsharded cluster's members are its group's voters.
                    let membership = shard.status().membership;
                    for node in membership.voters.iter().chain(&membership.learners) {
                        if !replicas.contains(node) {
                            replicas.push(*node);
                        }
                    }
                }
                ShardView {
                    group: *group,
                    slots: ranges.remove(group).unwrap_or_default(),
                    leader: self.leader_of(*group).or_else(|| replicas.first().copied()),
                    replicas,
                }
            })
            .collect();
        ClusterView {
            enabled: self.topology.cluster_enabled,
            epoch: self.topology.slots.epoch,
            myself: self.options.id,
            nodes,
            shards,
        }
    }

    /// Up to `count` keys of `slot` (live at `now_ms`), if this node hosts
    /// the slot's group: a local read, as Redis's `CLUSTER GETKEYSINSLOT`.
    pub fn keys_in_slot(&self, slot: u16, count: usize, now_ms: u64) -> Option<Vec<Bytes>> {
        let shard = self.shards.get(&self.topology.group_of_slot(slot))?;
        let keys = shard.store().key_names(now_ms).filter(|key| placement::key_slot(key) == slot);
        Some(keys.take(count).map(Bytes::copy_from_slice).collect())
    }

    // ----- inputs -----------------------------------------------------------

    /// Advances time by one engine tick.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.ticks += 1;
        let maintenance = self.ticks % HIBERNATING_MAINTENANCE_TICKS == 0;
        let groups: Vec<GroupId> = self.shards.keys().copied().collect();
        for group in groups {
            let hibernating = self.is_hibernating(group);
            let shard = self.shards.get_mut(&group).expect("shard");
            if !hibernating {
                shard.tick(now_ms);
            } else if maintenance {
                shard.maintain(now_ms);
            } else {
                continue;
            }
            self.collect(group);
        }
        if self.topology.is_sharded() && self.ticks % QUIESCE_TICKS == 0 {
            self.quiesce();
        }
        self.expire_remote();
        self.retry_remote();
        if self.ticks % HELLO_TICKS == 0 {
            self.say_hello();
        }
        if self.ticks % BALANCE_TICKS == 0 {
            self.balance_leaders();
        }
    }

    /// A client command arrived at this node.
    pub fn submit(&mut self, request: RequestId, command: Command, now_ms: u64) {
        self.submit_with(request, command, false, now_ms);
    }

    /// A client command arrived; `readonly` is set for connections that
    /// sent `READONLY` (in cluster mode they read from any replica instead
    /// of being redirected to the leader).
    pub fn submit_with(
        &mut self,
        request: RequestId,
        command: Command,
        readonly: bool,
        now_ms: u64,
    ) {
        self.now_ms = now_ms;
        if !self.topology.is_sharded() {
            let group = *self.topology.shards.keys().next().expect("a topology has a shard");
            if let Some(frame) = self.moved(group, &command, readonly, None) {
                self.outbox.replies.push((request, frame));
                return;
            }
            self.dispatch(request, group, command);
            return;
        }
        match command_slot(&command) {
            Err(frame) => self.outbox.replies.push((request, frame)),
            Ok(Some(slot)) => {
                let group = self.topology.group_of_slot(slot);
                if let Some(frame) = self.moved(group, &command, readonly, Some(slot)) {
                    self.outbox.replies.push((request, frame));
                    return;
                }
                let hosted = self.shards.contains_key(&group);
                if readonly && hosted && self.topology.cluster_enabled && is_read(&command) {
                    // A READONLY client's read, served by this replica.
                    self.wake(group);
                    let shard = self.shards.get_mut(&group).expect("hosted");
                    shard.read_on_replica(request, command, now_ms);
                    self.collect(group);
                    return;
                }
                self.dispatch(request, group, command);
            }
            Ok(None) => self.submit_keyless(request, command),
        }
    }

    /// A message from a peer arrived.
    pub fn receive(&mut self, from: NodeId, message: PeerMessage<E::Message>, now_ms: u64) {
        self.now_ms = now_ms;
        match message {
            PeerMessage::Consensus { group, message } => {
                if let Some(shard) = self.shards.get_mut(&group) {
                    shard.step(message, now_ms);
                    self.collect(group);
                    // A hibernating follower answers its leader's last
                    // heartbeats and stays asleep; anything that changes it
                    // (entries, a new term, an election) wakes it.
                    if let Some(&(leader, position)) = self.hibernating.get(&group) {
                        let shard = &self.shards[&group];
                        let unchanged = shard.leader() == Some(leader)
                            && shard.quiet_position() == Some(position);
                        if !unchanged {
                            self.wake(group);
                        }
                    }
                }
            }
            PeerMessage::Forward { group, request, command } => {
                self.wake(group);
                if let Some(shard) = self.shards.get_mut(&group) {
                    shard.forwarded(from, request, command, now_ms);
                    self.collect(group);
                } else {
                    let leader = self.leader_hints.get(&group).copied().filter(|&l| l != from);
                    self.send(from, PeerMessage::Redirect { group, request, leader });
                }
            }
            PeerMessage::Reply { group, request, frame } => {
                if self.remote.remove(&request).is_some() {
                    self.leader_hints.insert(group, from);
                    self.answer(request, frame);
                } else if let Some(shard) = self.shards.get_mut(&group) {
                    shard.reply_received(request, frame, now_ms);
                    self.collect(group);
                }
            }
            PeerMessage::Redirect { group, request, leader } => {
                if self.remote.contains_key(&request) {
                    self.remote_redirected(request, leader);
                } else if let Some(shard) = self.shards.get_mut(&group) {
                    shard.redirect_received(request, leader, now_ms);
                    self.collect(group);
                }
            }
            PeerMessage::Join { node, peer, client } => self.join(node, peer, client),
            PeerMessage::Peers(peers) => {
                for (node, peer) in peers {
                    if node != self.options.id && !peer.is_empty() {
                        self.local_peers.insert(node, peer);
                    }
                }
            }
            PeerMessage::CaughtUp { group, node } => {
                self.wake(group);
                if let Some(shard) = self.shards.get_mut(&group) {
                    shard.caught_up(node, now_ms);
                    self.collect(group);
                }
            }
            PeerMessage::Hello { node, peer, client, leading } => {
                if node != self.options.id {
                    self.heard_from.insert(node, self.ticks);
                    if !peer.is_empty() {
                        self.local_peers.insert(node, peer);
                    }
                    if !client.is_empty() {
                        self.client_addresses.insert(node, client);
                    }
                    // A node that restarted quickly keeps sending `Quiesce`
                    // but leads nothing: groups hibernating under it wake
                    // and elect a leader.
                    let abandoned: Vec<GroupId> = self
                        .hibernating
                        .iter()
                        .filter(|(group, (leader, _))| *leader == node && !leading.contains(group))
                        .map(|(group, _)| *group)
                        .collect();
                    for group in abandoned {
                        self.wake(group);
                    }
                    for group in leading {
                        self.leader_hints.insert(group, node);
                    }
                }
            }
            PeerMessage::Quiesce(groups) => self.quiesce_received(from, groups),
            PeerMessage::QuiesceAck(groups) => {
                let ticks = self.ticks;
                for (group, term, index) in groups {
                    if let Some(quiet) = self.quiet.get_mut(&group) {
                        if quiet.position == (term, index) {
                            quiet.acked.insert(from, ticks);
                        }
                    }
                }
            }
        }
    }

    /// The disk made every write up to `write_id` durable.
    pub fn persisted(&mut self, write_id: u64, now_ms: u64) {
        self.now_ms = now_ms;
        let mut durable: BTreeMap<GroupId, u64> = BTreeMap::new();
        while let Some(&(id, group, local)) = self.writes.front() {
            if id > write_id {
                break;
            }
            durable.insert(group, local);
            self.writes.pop_front();
        }
        for (group, local) in durable {
            if let Some(shard) = self.shards.get_mut(&group) {
                shard.persisted(local, now_ms);
                self.collect(group);
            }
        }
    }

    /// Hands the leadership of `group` to `target`, if this node leads it.
    pub fn transfer_leadership(&mut self, group: GroupId, target: NodeId, now_ms: u64) {
        self.now_ms = now_ms;
        self.wake(group);
        if let Some(shard) = self.shards.get_mut(&group) {
            shard.transfer_leadership(target, now_ms);
            self.collect(group);
        }
    }

    // ----- routing ----------------------------------------------------------

    /// Who leads `group`, as this node knows it.
    fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        match self.shards.get(&group) {
            Some(shard) => shard.leader(),
            // A hint about a node gone silent is stale.
            None => self.leader_hints.get(&group).copied().filter(|node| {
                self.heard_from.get(node).is_some_and(|&at| self.ticks - at <= ALIVE_TICKS)
            }),
        }
    }

    /// In cluster mode, the `-MOVED` reply for a command this node should
    /// not serve: its group is led elsewhere (and the client is not a
    /// `READONLY` one reading from a replica this node hosts). `None` means
    /// serve it here (or proxy it: when the leader is unknown, or its client
    /// address is, the command waits for a leader like any other).
    fn moved(
        &self,
        group: GroupId,
        command: &Command,
        readonly: bool,
        slot: Option<u16>,
    ) -> Option<Frame> {
        if !self.topology.cluster_enabled {
            return None;
        }
        let hosted = self.shards.get(&group);
        if hosted.is_some_and(|shard| shard.is_leader()) {
            return None;
        }
        if readonly && hosted.is_some() && is_read(command) {
            return None;
        }
        // No leader known: the command waits for one here (or is forwarded)
        // rather than sending the client to a node that may be dead.
        let leader = self.leader_of(group)?;
        if leader == self.options.id {
            return None;
        }
        let address = self.client_address(leader)?;
        let slot =
            slot.or_else(|| first_key(command).map(|key| placement::key_slot(&key))).unwrap_or(0);
        Some(Frame::error(format!("MOVED {slot} {address}")))
    }

    /// Hands a command to the replica of `group` here, or sends it to a
    /// node that hosts one.
    fn dispatch(&mut self, request: RequestId, group: GroupId, command: Command) {
        self.wake(group);
        if let Some(shard) = self.shards.get_mut(&group) {
            shard.submit(request, command, self.now_ms);
            self.collect(group);
            return;
        }
        if waits_for_others(&command) {
            // A blocked client or a lock waiter is answered by its origin
            // node, which must hold a replica of the shard to see the grant,
            // withdraw the wait at its deadline, or follow the waiter across
            // leader changes. Refused rather than risk an element or a lock
            // handed to a client that was told it failed.
            let frame = Frame::error(
                "ERR this node holds no replica of the key's shard: send blocking commands and \
                 lock or election waits to a node that does (CLUSTER SLOTS, cohort cluster \
                 status)",
            );
            self.answer(request, frame);
            return;
        }
        let deadline_ms = self.now_ms + self.options.request_timeout_ms;
        let remote = RemoteRequest { group, command, sent_to: None, redirects: 0, deadline_ms };
        self.remote.insert(request, remote);
        self.send_remote(request, None);
    }

    /// Sends a remote request to `leader`, or to the group's likeliest
    /// leader: the last one heard of, else the next replica in turn.
    fn send_remote(&mut self, request: RequestId, leader: Option<NodeId>) {
        let Some(remote) = self.remote.get(&request) else { return };
        let group = remote.group;
        let replicas = self.topology.shards.get(&group).cloned().unwrap_or_default();
        let target = leader
            .or_else(|| self.leader_hints.get(&group).copied())
            .or_else(|| replicas.get(remote.redirects as usize % replicas.len().max(1)).copied());
        let Some(target) = target.filter(|&target| target != self.options.id) else {
            self.remote.remove(&request);
            self.answer(request, Frame::error("CLUSTERDOWN the slot's shard has no replica"));
            return;
        };
        let remote = self.remote.get_mut(&request).expect("remote request");
        remote.sent_to = Some(target);
        let command = remote.command.clone();
        self.send(target, PeerMessage::Forward { group, request, command });
    }

    fn remote_redirected(&mut self, request: RequestId, leader: Option<NodeId>) {
        let remote = self.remote.get_mut(&request).expect("remote request");
        remote.redirects += 1;
        remote.sent_to = None;
        let group = remote.group;
        if remote.redirects > REMOTE_REDIRECTS_MAX {
            self.remote.remove(&request);
            let frame = Frame::error("CLUSTERDOWN the shard's leader keeps moving; try again");
            self.answer(request, frame);
            return;
        }
        match leader {
            Some(leader) => {
                self.leader_hints.insert(group, leader);
                self.send_remote(request, Some(leader));
            }
            None => {
                // No leader known there: try the next replica on a later tick.
                self.leader_hints.remove(&group);
            }
        }
    }

    fn retry_remote(&mut self) {
        let waiting: Vec<RequestId> = self
            .remote
            .iter()
            .filter(|(_, remote)| remote.sent_to.is_none())
            .map(|(request, _)| *request)
            .collect();
        for request in waiting {
            self.send_remote(request, None);
        }
    }

    fn expire_remote(&mut self) {
        let now = self.now_ms;
        let expired: Vec<RequestId> = self
            .remote
            .iter()
            .filter(|(_, remote)| remote.deadline_ms <= now)
            .map(|(request, _)| *request)
            .collect();
        for request in expired {
            self.remote.remove(&request);
            let frame = Frame::error(
                "CLUSTERDOWN no reply from the shard's leader in time; the command may or may not \
                 have been applied",
            );
            self.answer(request, frame);
        }
    }

    /// A command without keys on a sharded cluster: the commands that act on
    /// the whole keyspace run on every shard (in cluster mode, on the shards
    /// this node leads, as a Redis master answers for its own slots), and
    /// the parts combine; anything else runs on the first shard.
    fn submit_keyless(&mut self, request: RequestId, command: Command) {
        if let Some(name) = spanning_inside(&command) {
            let frame = Frame::error(format!(
                "ERR {} spans every shard of a sharded cluster: it cannot run inside MULTI or SEQ",
                name.to_ascii_uppercase()
            ));
            self.outbox.replies.push((request, frame));
            return;
        }
        let name = match &command {
            Command::Execute(args) => args.first().map(|name| name.to_ascii_lowercase()),
            _ => None,
        };
        let gather = match name.as_deref() {
            Some(b"dbsize") => Gather::Sum,
            Some(b"keys") => Gather::Concat,
            Some(b"flushall" | b"flushdb") => Gather::AllOk,
            Some(b"randomkey") => Gather::FirstNonNull { start: self.ticks as usize },
            Some(b"scan") => Gather::Scan { group: 0, next: None },
            Some(b"session.open") => Gather::Same,
            Some(b"session.close") => Gather::Any,
            _ => {
                let group = *self.topology.shards.keys().next().expect("a topology has a shard");
                self.dispatch(request, group, command);
                return;
            }
        };
        let everywhere = matches!(gather, Gather::Same | Gather::Any);
        let groups: Vec<GroupId> = if self.topology.cluster_enabled && !everywhere {
            self.shards.iter().filter(|(_, s)| s.is_leader()).map(|(g, _)| *g).collect()
        } else {
            self.topology.shards.keys().copied().collect()
        };
        if groups.is_empty() {
            let frame = match gather {
                Gather::Sum => Frame::Integer(0),
                Gather::Concat => Frame::Array(Vec::new()),
                Gather::AllOk => Frame::ok(),
                Gather::FirstNonNull { .. } => Frame::Null,
                Gather::Same | Gather::Any => Frame::error("CLUSTERDOWN no shard"),
                Gather::Scan { .. } => {
                    Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())])
                }
            };
            self.outbox.replies.push((request, frame));
            return;
        }
        let Command::Execute(mut args) = command else { unreachable!("named above") };
        if gather == Gather::Same {
            // One id for the session in every shard, above every log index.
            let id = self.rng.next_u64() | (1 << 62);
            let id = id & !(1 << 63);
            args.extend([Bytes::from_static(b"ID"), Bytes::from(id.to_string())]);
        }
        let mut gathering = Gathering { request, gather, parts: BTreeMap::new() };
        let mut sends = Vec::new();
        if let Gather::Scan { .. } = gather {
            let cursor = args.get(1).and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok());
            let Some(cursor) = cursor else {
                self.outbox.replies.push((request, Frame::error("ERR invalid cursor")));
                return;
            };
            // The cursor names the shard by its id, not by its position in
            // the list of shards: that list (the shards this node leads, in
            // cluster mode) may change between two calls.
            let group = match cursor >> SCAN_SHARD_SHIFT {
                0 => groups[0],
                group => group,
            };
            if !self.topology.shards.contains_key(&group) {
                self.outbox.replies.push((request, Frame::error("ERR invalid cursor")));
                return;
            }
            let inner = (cursor & ((1 << SCAN_SHARD_SHIFT) - 1)) << SCAN_INNER_SHIFT;
            args[1] = Bytes::from(inner.to_string());
            let next = groups.iter().copied().find(|&other| other > group);
            gathering.gather = Gather::Scan { group, next };
            sends.push((group, args));
        } else {
            for group in groups {
                sends.push((group, args.clone()));
            }
        }
        let mut ids = Vec::new();
        for (group, args) in sends {
            self.next_internal += 1;
            let part = self.next_internal;
            gathering.parts.insert(part, None);
            self.parts.insert(part, request);
            ids.push((part, group, args));
        }
        self.gatherings.insert(request, gathering);
        for (part, group, args) in ids {
            self.dispatch(part, group, Command::Execute(args));
        }
    }

    /// A reply for a client request or for a part of one.
    fn answer(&mut self, request: RequestId, frame: Frame) {
        if request & INTERNAL_REQUEST == 0 {
            self.outbox.replies.push((request, frame));
            return;
        }
        let Some(parent) = self.parts.remove(&request) else { return };
        let Some(gathering) = self.gatherings.get_mut(&parent) else { return };
        gathering.parts.insert(request, Some(frame));
        if gathering.parts.values().any(Option::is_none) {
            return;
        }
        let gathering = self.gatherings.remove(&parent).expect("gathering");
        let frame = combine(gathering.gather, gathering.parts.into_values().flatten().collect());
        self.outbox.replies.push((gathering.request, frame));
    }

    fn send(&mut self, to: NodeId, message: PeerMessage<E::Message>) {
        self.outbox.messages.push((to, message));
    }

    /// Moves a shard's outputs into the node's outbox, numbering its disk
    /// writes node-wide, and routes its replies.
    fn collect(&mut self, group: GroupId) {
        let Some(shard) = self.shards.get_mut(&group) else { return };
        let outbox = shard.take_outbox();
        if !outbox.messages.is_empty() && self.quiet.get(&group).is_some_and(|q| q.hibernating) {
            // A hibernating leader has something to say: the group is not
            // idle any more.
            self.wake(group);
        }
        for task in outbox.disk {
            match task {
                DiskTask::Write(mut write) => {
                    self.next_write += 1;
                    self.writes.push_back((self.next_write, group, write.id));
                    write.id = self.next_write;
                    self.outbox.disk.push(DiskTask::Write(write));
                }
                snapshot @ DiskTask::SaveSnapshot { .. } => self.outbox.disk.push(snapshot),
            }
        }
        self.outbox.messages.extend(outbox.messages);
        self.outbox.to_address.extend(outbox.to_address);
        for (request, frame) in outbox.replies {
            self.answer(request, frame);
        }
    }

    fn join(&mut self, node: NodeId, peer: String, client: String) {
        // Tell the newcomer where everyone listens, so it can answer the
        // leader before it has applied the replicated addresses.
        let mut peers: Vec<(NodeId, String)> = self.peer_addresses().into_iter().collect();
        peers.push((self.options.id, self.options.peer_address.clone()));
        self.outbox.to_address.push((peer.clone(), PeerMessage::Peers(peers)));
        if self.topology.is_sharded() {
            // Adding a node to a sharded cluster moves replicas and slots,
            // which needs the placement controller; until then the node
            // learns the peers and nothing more.
            return;
        }
        let group = *self.topology.shards.keys().next().expect("a topology has a shard");
        if let Some(shard) = self.shards.get_mut(&group) {
            shard.join_requested(node, peer, client, self.now_ms);
            self.collect(group);
        }
    }

    /// Every group this node leads and whose preferred leader (the first
    /// replica the topology lists; the topology spreads them so every node
    /// prefers its fair share) is another node that is alive, is handed to
    /// it. A leader elected while the preferred one was down gives the
    /// group back once it returns.
    fn balance_leaders(&mut self) {
        if !self.topology.is_sharded() {
            return;
        }
        let ticks = self.ticks;
        let alive = |heard: Option<&u64>| heard.is_some_and(|&at| ticks - at <= ALIVE_TICKS);
        let handovers: Vec<(GroupId, NodeId)> = self
            .shards
            .iter()
            .filter(|(_, shard)| shard.is_leader())
            .filter_map(|(group, _)| {
                let preferred = *self.topology.shards.get(group)?.first()?;
                let handover =
                    preferred != self.options.id && alive(self.heard_from.get(&preferred));
                handover.then_some((*group, preferred))
            })
            .collect();
        for (group, preferred) in handovers {
            self.transfer_leadership(group, preferred, self.now_ms);
        }
    }

    // ----- hibernation ------------------------------------------------------

    /// Whether the replica of `group` here skips its engine's ticks.
    fn is_hibernating(&self, group: GroupId) -> bool {
        self.hibernating.contains_key(&group)
            || self.quiet.get(&group).is_some_and(|quiet| quiet.hibernating)
    }

    /// The group is active: its replica here ticks again, and as its leader
    /// this node must collect fresh acknowledgements before it hibernates.
    fn wake(&mut self, group: GroupId) {
        self.hibernating.remove(&group);
        self.quiet.remove(&group);
    }

    /// Idle groups cost close to nothing: a leader whose group is quiet
    /// lists it, with its term and last index, in the one `Quiesce` message
    /// it sends each peer node every heartbeat; members that have caught up
    /// with exactly that position stop ticking their replica and
    /// acknowledge; once every member acknowledged, the leader stops ticking
    /// too, so the group sends no heartbeats, and lists it only every
    /// `QUIESCE_REFRESH_TICKS` to refresh the acknowledgements. The per-node
    /// `Quiesce` keeps flowing, empty if need be: a member that stops
    /// hearing it (the leader's node died) ticks again and elects a new
    /// leader after its usual timeout; a leader missing a member's
    /// acknowledgement ticks again. Any activity — a client command, a
    /// consensus message, a membership step — wakes the group on the node
    /// that sees it, and the messages it causes wake the other replicas.
    /// Ticks only drive timeouts, so skipping them never affects safety.
    fn quiesce(&mut self) {
        let ticks = self.ticks;
        let refresh = ticks % QUIESCE_REFRESH_TICKS == 0;
        let mut outgoing: BTreeMap<NodeId, Vec<(GroupId, Term, Index)>> = self
            .topology
            .nodes()
            .into_iter()
            .filter(|&node| node != self.options.id)
            .map(|node| (node, Vec::new()))
            .collect();
        let groups: Vec<GroupId> = self.shards.keys().copied().collect();
        for group in groups {
            let shard = &self.shards[&group];
            let Some(position) = shard.quiet_position().filter(|_| shard.is_leader()) else {
                if self.quiet.get(&group).is_some_and(|quiet| quiet.hibernating) {
                    self.wake(group);
                } else {
                    self.quiet.remove(&group);
                }
                continue;
            };
            let members = shard.other_members();
            let quiet = self.quiet.entry(group).or_insert_with(|| QuietGroup {
                position,
                acked: BTreeMap::new(),
                hibernating: false,
            });
            if quiet.position != position {
                *quiet = QuietGroup { position, acked: BTreeMap::new(), hibernating: false };
            }
            let all_acked = members.iter().all(|member| {
                quiet.acked.get(member).is_some_and(|&at| ticks - at <= QUIESCE_ACK_TICKS)
            });
            let listed = refresh || !quiet.hibernating;
            quiet.hibernating = all_acked;
            if listed {
                for member in members {
                    outgoing.entry(member).or_default().push((group, position.0, position.1));
                }
            }
        }
        for (node, groups) in outgoing {
            self.send(node, PeerMessage::Quiesce(groups));
        }
        // Followers whose leader's node went silent tick again.
        let silent: Vec<GroupId> = self
            .hibernating
            .iter()
            .filter(|(_, (leader, _))| {
                !self
                    .quiesce_from
                    .get(leader)
                    .is_some_and(|&at| ticks - at <= QUIESCE_SILENCE_TICKS)
            })
            .map(|(group, _)| *group)
            .collect();
        for group in silent {
            self.wake(group);
        }
    }

    fn quiesce_received(&mut self, from: NodeId, groups: Vec<(GroupId, Term, Index)>) {
        self.quiesce_from.insert(from, self.ticks);
        let mut acknowledged = Vec::new();
        for (group, term, index) in groups {
            let Some(shard) = self.shards.get(&group) else { continue };
            let caught_up = !shard.is_leader()
                && shard.leader() == Some(from)
                && shard.quiet_position() == Some((term, index));
            if caught_up {
                self.hibernating.insert(group, (from, (term, index)));
                acknowledged.push((group, term, index));
            } else {
                self.wake(group);
            }
        }
        if !acknowledged.is_empty() {
            self.send(from, PeerMessage::QuiesceAck(acknowledged));
        }
    }

    fn say_hello(&mut self) {
        let leading: Vec<GroupId> =
            self.shards.iter().filter(|(_, shard)| shard.is_leader()).map(|(g, _)| *g).collect();
        let mut nodes: BTreeSet<NodeId> = self.peer_addresses().into_keys().collect();
        nodes.extend(self.topology.nodes());
        nodes.remove(&self.options.id);
        for node in nodes {
            let hello = PeerMessage::Hello {
                node: self.options.id,
                peer: self.options.peer_address.clone(),
                client: self.options.client_address.clone(),
                leading: leading.clone(),
            };
            self.send(node, hello);
        }
    }
}

/// The slot every key of `command` hashes to; `None` for a command without
/// keys; `-CROSSSLOT` when its keys hash to different slots.
fn command_slot(command: &Command) -> Result<Option<u16>, Frame> {
    let keys = command_keys(command);
    let mut slots = keys.iter().map(|key| placement::key_slot(key));
    let Some(first) = slots.next() else { return Ok(None) };
    if slots.any(|slot| slot != first) {
        return Err(Frame::error("CROSSSLOT Keys in request don't hash to the same slot"));
    }
    Ok(Some(first))
}

fn first_key(command: &Command) -> Option<Bytes> {
    command_keys(command).into_iter().next()
}

/// The keys a command touches: its data keys, a lock's or an election's
/// name, the command inside `SEQ`, every command of a transaction and the
/// keys it watched.
pub fn command_keys(command: &Command) -> Vec<Bytes> {
    match command {
        Command::KeyVersions(keys) => keys.clone(),
        Command::ReadIndex => Vec::new(),
        Command::Transaction { watched, commands } => {
            let mut keys: Vec<Bytes> = watched.iter().map(|(key, _)| key.clone()).collect();
            for args in commands {
                keys.extend(args_keys(args));
            }
            keys
        }
        Command::Execute(args) => args_keys(args),
    }
}

fn args_keys(args: &[Bytes]) -> Vec<Bytes> {
    let Some(name) = args.first() else { return Vec::new() };
    if name.eq_ignore_ascii_case(b"seq") {
        return args.get(3..).map(args_keys).unwrap_or_default();
    }
    if crate::coordination::lookup_internal(name).is_some() {
        let lower = name.to_ascii_lowercase();
        let named = lower.starts_with(b"lock.") || lower.starts_with(b"elect.");
        let mut keys: Vec<Bytes> =
            if named { args.get(1).cloned().into_iter().collect() } else { Vec::new() };
        if lower == b"lock.fenced" {
            // The fenced command runs in the lock's shard: its keys must
            // share the lock name's slot.
            keys.extend(args.get(3..).map(args_keys).unwrap_or_default());
        }
        return keys;
    }
    commands::command_keys(args).unwrap_or_default()
}

/// Commands that run on every shard and combine their replies.
const SPANNING: [&str; 6] = ["dbsize", "keys", "flushall", "flushdb", "randomkey", "scan"];

/// The spanning command inside a transaction or a `SEQ`, which would run on
/// one shard only.
fn spanning_inside(command: &Command) -> Option<&'static str> {
    let spanning = |args: &[Bytes]| {
        let name = args.first()?;
        SPANNING.iter().copied().find(|spanning| name.eq_ignore_ascii_case(spanning.as_bytes()))
    };
    match command {
        Command::Transaction { commands, .. } => commands.iter().find_map(|args| spanning(args)),
        Command::Execute(args) if args.first().is_some_and(|n| n.eq_ignore_ascii_case(b"seq")) => {
            spanning(args.get(3..).unwrap_or_default())
        }
        _ => None,
    }
}

/// Whether a command may wait on other clients (a blocking pop, a stream
/// read with BLOCK, a lock or election wait).
fn waits_for_others(command: &Command) -> bool {
    let Command::Execute(args) = command else { return false };
    let inner = match args.first() {
        Some(name) if name.eq_ignore_ascii_case(b"seq") => args.get(3..).unwrap_or_default(),
        _ => &args[..],
    };
    let Some(name) = inner.first() else { return false };
    if name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup") {
        // Without BLOCK they answer at once.
        return inner.iter().any(|arg| arg.eq_ignore_ascii_case(b"block"));
    }
    crate::shard::is_blocking(inner) || crate::shard::lock_wait(command, 0).is_some()
}

/// Whether a command only reads (served by `READONLY` clients' replicas).
fn is_read(command: &Command) -> bool {
    match command {
        Command::KeyVersions(_) | Command::ReadIndex => true,
        Command::Transaction { .. } => false,
        Command::Execute(args) => args.first().is_some_and(|name| {
            commands::lookup(name).is_some_and(|spec| spec.is_readonly() && !spec.is_blocking())
        }),
    }
}

/// Combines the parts of a command that ran on several shards.
fn combine(gather: Gather, parts: Vec<Frame>) -> Frame {
    if let Some(error) = parts.iter().find(|frame| matches!(frame, Frame::Error(_))) {
        return error.clone();
    }
    match gather {
        Gather::Sum => Frame::Integer(
            parts.iter().map(|frame| if let Frame::Integer(n) = frame { *n } else { 0 }).sum(),
        ),
        Gather::Concat => Frame::Array(
            parts
                .into_iter()
                .flat_map(|frame| match frame {
                    Frame::Array(elements) | Frame::Set(elements) => elements,
                    _ => Vec::new(),
                })
                .collect(),
        ),
        Gather::AllOk => Frame::ok(),
        Gather::Same => {
            let first = parts.first().cloned().unwrap_or(Frame::Null);
            if parts.iter().all(|part| *part == first) {
                first
            } else {
                Frame::error("ERR the shards disagree")
            }
        }
        Gather::Any => {
            Frame::Integer(i64::from(parts.iter().any(|part| *part == Frame::Integer(1))))
        }
        Gather::FirstNonNull { start } => {
            let count = parts.len();
            (0..count)
                .map(|offset| &parts[(start + offset) % count])
                .find(|frame| !matches!(frame, Frame::Null | Frame::NullArray))
                .cloned()
                .unwrap_or(Frame::Null)
        }
        Gather::Scan { group, next } => {
            let Some(Frame::Array(mut reply)) = parts.into_iter().next() else {
                return Frame::error("ERR malformed SCAN reply from a shard");
            };
            let inner = match reply.first() {
                Some(Frame::Bulk(cursor)) => {
                    std::str::from_utf8(cursor).ok().and_then(|c| c.parse::<u64>().ok())
                }
                _ => None,
            };
            let Some(inner) = inner else {
                return Frame::error("ERR malformed SCAN reply from a shard");
            };
            let next = if inner == 0 {
                // This shard is done: the next one from its start, or the end.
                next.map_or(0, |next| next << SCAN_SHARD_SHIFT)
            } else {
                (group << SCAN_SHARD_SHIFT) | (inner >> SCAN_INNER_SHIFT)
            };
            reply[0] = Frame::bulk(next.to_string());
            Frame::Array(reply)
        }
    }
}
