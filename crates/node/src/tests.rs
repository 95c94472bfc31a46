//! Nodes driven in memory: a disk that persists at once, a network that
//! delivers everything, and time advanced tick by tick.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use consensus::paxos::Paxos;
use consensus::raft::Raft;
use consensus::{Durable, Engine, Membership, NodeId, Options};

type Build<E> = fn(Options, Membership, Durable) -> E;
use resp::Frame;

use crate::{
    Command, DiskTask, GroupId, Node, NodeOptions, PeerMessage, RequestId, Topology, DATA_GROUP,
};

const TICK_MS: u64 = 10;

struct Cluster<E: Engine> {
    build: Build<E>,
    nodes: BTreeMap<NodeId, Node<E>>,
    /// Each node's durable state, per group.
    disks: BTreeMap<NodeId, BTreeMap<GroupId, Durable>>,
    /// The sharded cluster's shape (`None`: one group on every node).
    topology: Option<Topology>,
    down: BTreeSet<NodeId>,
    isolated: BTreeSet<NodeId>,
    /// Drops each message with this probability, drawing from the generator.
    loss: Option<(consensus::rng::Rng, f64)>,
    network: VecDeque<(NodeId, NodeId, PeerMessage<E::Message>)>,
    /// Consensus messages delivered so far.
    consensus_delivered: u64,
    /// Replicas' requests for a leader's read index, delivered so far.
    read_indexes_delivered: u64,
    replies: BTreeMap<RequestId, Frame>,
    next_request: RequestId,
    now_ms: u64,
    options: fn(NodeId) -> NodeOptions,
}

fn options(id: NodeId) -> NodeOptions {
    let mut options = NodeOptions::new(id);
    options.request_timeout_ms = 1_000;
    options.snapshot_entries = 20;
    options
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
}

impl<E: Engine> Cluster<E> {
    fn new(size: u64, build: Build<E>) -> Cluster<E> {
        let mut cluster = Cluster {
            build,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            topology: None,
            down: BTreeSet::new(),
            isolated: BTreeSet::new(),
            loss: None,
            network: VecDeque::new(),
            consensus_delivered: 0,
            read_indexes_delivered: 0,
            replies: BTreeMap::new(),
            next_request: 0,
            now_ms: 1_000_000,
            options,
        };
        for id in 1..=size {
            cluster.disks.insert(id, BTreeMap::new());
            cluster.start(id, size);
        }
        cluster
    }

    /// `size` nodes holding `shards` groups of `replicas` replicas each.
    fn sharded(
        size: u64,
        shards: u64,
        replicas: usize,
        cluster_enabled: bool,
        build: Build<E>,
    ) -> Cluster<E> {
        let nodes: Vec<NodeId> = (1..=size).collect();
        let topology = Topology::sharded(&nodes, shards, replicas, cluster_enabled).unwrap();
        let mut cluster = Cluster::new(0, build);
        cluster.options = |id| {
            let mut options = options(id);
            options.client_address = format!("10.0.0.{id}:6379");
            options
        };
        cluster.topology = Some(topology);
        for id in 1..=size {
            cluster.disks.insert(id, BTreeMap::new());
            cluster.start(id, size);
        }
        cluster
    }

    /// Ticks until every group has a leader that every replica knows.
    fn elect_all(&mut self) {
        for _ in 0..300 {
            self.tick(1);
            let settled = self.nodes.values().all(|node| {
                node.shard_statuses().iter().all(|(_, status)| status.leader.is_some())
            });
            if settled {
                return;
            }
        }
        let mut leaderless = Vec::new();
        for node in self.nodes.values() {
            for (group, status) in node.shard_statuses() {
                if status.leader.is_none() {
                    let hibernating = node.is_group_hibernating(group);
                    leaderless.push(format!(
                        "n{} g{group}: {:?} term {} commit {} last {} hibernating {hibernating}",
                        node.id(),
                        status.role,
                        status.term,
                        status.commit,
                        status.last_index
                    ));
                }
            }
        }
        panic!("some group elected no leader: {leaderless:?}");
    }

    fn start(&mut self, id: NodeId, size: u64) {
        let founding = Membership::with_voters(1..=size);
        let disks = self.disks[&id].clone();
        let node = match &self.topology {
            Some(topology) => Node::with_topology(
                (self.options)(id),
                self.build,
                topology.clone(),
                BTreeMap::new(),
                disks,
                self.now_ms,
            ),
            None => Node::new(
                (self.options)(id),
                self.build,
                founding,
                BTreeMap::new(),
                disks.get(&DATA_GROUP).cloned().unwrap_or_default(),
                self.now_ms,
            ),
        };
        self.nodes.insert(id, node);
        self.down.remove(&id);
        self.flush(id);
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.down.insert(id);
    }

    /// Executes a node's outbox: disk at once, messages queued, replies kept.
    fn flush(&mut self, id: NodeId) {
        loop {
            let Some(node) = self.nodes.get_mut(&id) else { return };
            let outbox = node.take_outbox();
            if outbox.is_empty() {
                return;
            }
            let mut last_write = None;
            for task in outbox.disk {
                let disks = self.disks.get_mut(&id).expect("disk");
                match task {
                    DiskTask::Write(write) => {
                        let disk = disks.entry(write.group).or_default();
                        disk.persist(write.snapshot, write.entries, write.hard_state);
                        last_write = Some(write.id);
                    }
                    DiskTask::SaveSnapshot { group, snapshot } => {
                        disks.entry(group).or_default().compact(snapshot)
                    }
                }
            }
            for (to, message) in outbox.messages {
                self.network.push_back((id, to, message));
            }
            for (request, frame) in outbox.replies {
                assert!(self.replies.insert(request, frame).is_none(), "one reply per request");
            }
            if let Some(write) = last_write {
                let now = self.now_ms;
                self.nodes.get_mut(&id).expect("node").persisted(write, now);
            }
        }
    }

    fn deliver_all(&mut self) {
        let mut rounds = 0;
        while let Some((from, to, message)) = self.network.pop_front() {
            rounds += 1;
            assert!(rounds < 100_000, "messages never settle");
            if self.isolated.contains(&from) || self.isolated.contains(&to) {
                continue;
            }
            if let Some((rng, probability)) = self.loss.as_mut() {
                if rng.probability(*probability) {
                    continue;
                }
            }
            let now = self.now_ms;
            match &message {
                PeerMessage::Consensus { .. } => self.consensus_delivered += 1,
                PeerMessage::Forward { command: Command::ReadIndex, .. } => {
                    self.read_indexes_delivered += 1
                }
                _ => {}
            }
            if let Some(node) = self.nodes.get_mut(&to) {
                node.receive(from, message, now);
                self.flush(to);
            }
        }
    }

    fn tick(&mut self, count: u32) {
        for _ in 0..count {
            self.now_ms += TICK_MS;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let now = self.now_ms;
                self.nodes.get_mut(&id).expect("node").tick(now);
                self.flush(id);
            }
            self.deliver_all();
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .map(|node| node.status())
            .filter(|status| status.role == consensus::Role::Leader)
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..100 {
            self.tick(1);
            if let Some(leader) = self.leader() {
                return leader;
            }
        }
        panic!("no leader elected");
    }

    fn submit(&mut self, id: NodeId, command: Command) -> RequestId {
        self.next_request += 1;
        let request = self.next_request;
        let now = self.now_ms;
        self.nodes.get_mut(&id).expect("node").submit(request, command, now);
        self.flush(id);
        self.deliver_all();
        request
    }

    /// Submits as a `READONLY` connection would.
    fn submit_readonly(&mut self, id: NodeId, command: Command) -> RequestId {
        self.next_request += 1;
        let request = self.next_request;
        let now = self.now_ms;
        self.nodes.get_mut(&id).expect("node").submit_with(request, command, true, now);
        self.flush(id);
        self.deliver_all();
        request
    }

    /// As `call`, following `-MOVED` redirections as a cluster client does.
    fn call_following(&mut self, mut id: NodeId, words: &[&str]) -> Frame {
        for _ in 0..10 {
            match self.call(id, words) {
                Frame::Error(text) if text.starts_with("MOVED ") => {
                    id = moved_to(&text).expect("a MOVED names a node")
                }
                frame => return frame,
            }
        }
        panic!("{words:?} keeps being redirected");
    }

    /// Submits and ticks until the reply arrives.
    fn call(&mut self, id: NodeId, words: &[&str]) -> Frame {
        let request = self.submit(id, Command::Execute(args(words)));
        self.wait(request)
    }

    fn wait(&mut self, request: RequestId) -> Frame {
        for _ in 0..500 {
            if let Some(frame) = self.replies.remove(&request) {
                return frame;
            }
            self.tick(1);
        }
        panic!("no reply to request {request}");
    }
}

fn a_single_node_serves_writes_and_linearizable_reads<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(1, build);
    cluster.elect();
    assert_eq!(cluster.call(1, &["SET", "k", "v"]), Frame::ok());
    assert_eq!(cluster.call(1, &["GET", "k"]), Frame::bulk("v"));
    assert_eq!(cluster.call(1, &["INCR", "n"]), Frame::Integer(1));
    assert_eq!(cluster.call(1, &["INCR", "n"]), Frame::Integer(2));
}

fn any_node_accepts_any_command_and_followers_forward_to_the_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let followers: Vec<NodeId> = (1..=3).filter(|&id| id != leader).collect();
    assert_eq!(cluster.call(followers[0], &["SET", "k", "v1"]), Frame::ok());
    assert_eq!(cluster.call(followers[1], &["GET", "k"]), Frame::bulk("v1"));
    assert_eq!(cluster.call(leader, &["APPEND", "k", "x"]), Frame::Integer(3));
    assert_eq!(cluster.call(followers[0], &["GET", "k"]), Frame::bulk("v1x"));
    // Every replica applied the same entries to the same state.
    cluster.tick(5);
    let digests: BTreeSet<u64> = cluster.nodes.values().map(|node| node.state_digest()).collect();
    assert_eq!(digests.len(), 1);
}

fn a_blocked_pop_is_woken_by_a_push_on_another_node<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let other = if leader == 1 { 2 } else { 1 };
    let blocked = cluster.submit(other, Command::Execute(args(&["BLPOP", "queue", "0"])));
    cluster.tick(3);
    assert!(!cluster.replies.contains_key(&blocked), "nothing to pop yet");
    assert_eq!(cluster.call(leader, &["RPUSH", "queue", "job"]), Frame::Integer(1));
    let reply = cluster.wait(blocked);
    assert_eq!(reply, Frame::Array(vec![Frame::bulk("queue"), Frame::bulk("job")]));
    assert_eq!(cluster.call(leader, &["LLEN", "queue"]), Frame::Integer(0));
}

fn blocked_pops_are_served_oldest_first_and_time_out_with_a_null_array<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let first = cluster.submit(leader, Command::Execute(args(&["BLPOP", "q", "0"])));
    cluster.tick(1);
    let second = cluster.submit(leader, Command::Execute(args(&["BLPOP", "q", "0.5"])));
    cluster.tick(1);
    assert_eq!(cluster.call(leader, &["RPUSH", "q", "a"]), Frame::Integer(1));
    assert_eq!(cluster.wait(first), Frame::Array(vec![Frame::bulk("q"), Frame::bulk("a")]));
    assert!(!cluster.replies.contains_key(&second));
    assert_eq!(cluster.wait(second), Frame::NullArray);
}

fn without_a_leader_a_command_fails_with_clusterdown_after_the_timeout<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let follower = if leader == 1 { 2 } else { 1 };
    cluster.isolated.insert(follower);
    cluster.tick(40);
    let request = cluster.submit(follower, Command::Execute(args(&["SET", "k", "v"])));
    let reply = cluster.wait(request);
    let Frame::Error(text) = reply else { panic!("expected an error, got {reply:?}") };
    assert!(text.starts_with("CLUSTERDOWN"), "{text}");
}

fn writes_survive_the_loss_of_the_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    for i in 0..30 {
        let value = i.to_string();
        assert_eq!(cluster.call(leader, &["SET", &format!("k{i}"), &value]), Frame::ok());
    }
    cluster.crash(leader);
    let survivor = if leader == 1 { 2 } else { 1 };
    assert_eq!(cluster.call(survivor, &["GET", "k29"]), Frame::bulk("29"));
    assert_eq!(cluster.call(survivor, &["SET", "after", "x"]), Frame::ok());
    // The old leader restarts from its disk (with a snapshot: 20 entries
    // per snapshot) and catches up.
    cluster.start(leader, 3);
    cluster.tick(30);
    assert_eq!(cluster.call(leader, &["GET", "after"]), Frame::bulk("x"));
    assert_eq!(cluster.call(leader, &["DBSIZE"]), Frame::Integer(31));
}

fn expired_keys_are_invisible_then_purged_by_the_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    assert_eq!(cluster.call(leader, &["SET", "k", "v", "PX", "50"]), Frame::ok());
    assert_eq!(cluster.call(leader, &["SET", "kept", "v"]), Frame::ok());
    cluster.tick(10);
    assert_eq!(cluster.call(leader, &["GET", "k"]), Frame::Null);
    cluster.tick(5);
    for node in cluster.nodes.values() {
        assert_eq!(node.status().keys, 1, "n{} still holds the expired key", node.id());
    }
}

fn transactions_apply_atomically_and_abort_on_a_changed_watched_key<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let versions = cluster.submit(leader, Command::KeyVersions(args(&["k"])));
    let Frame::Array(versions) = cluster.wait(versions) else { panic!("versions") };
    let Frame::Integer(version) = versions[0] else { panic!("integer") };
    let transaction = Command::Transaction {
        watched: vec![(Bytes::from_static(b"k"), version as u64)],
        commands: vec![args(&["SET", "k", "1"]), args(&["INCR", "k"])],
    };
    let request = cluster.submit(leader, transaction.clone());
    assert_eq!(cluster.wait(request), Frame::Array(vec![Frame::ok(), Frame::Integer(2)]));
    // The same watch is now stale: the transaction aborts.
    let request = cluster.submit(leader, transaction);
    assert_eq!(cluster.wait(request), Frame::NullArray);
    assert_eq!(cluster.call(leader, &["GET", "k"]), Frame::bulk("2"));
}

fn a_lock_waiter_on_a_follower_is_granted_when_the_holder_releases<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let follower = if leader == 1 { 2 } else { 1 };
    let Frame::Integer(first) = cluster.call(leader, &["LOCK.ACQUIRE", "l", "10000"]) else {
        panic!("the free lock is granted with a token")
    };
    let waiter = cluster
        .submit(follower, Command::Execute(args(&["LOCK.ACQUIRE", "l", "10000", "WAIT", "5000"])));
    cluster.tick(5);
    assert!(!cluster.replies.contains_key(&waiter), "the lock is held");
    let first_text = first.to_string();
    assert_eq!(cluster.call(leader, &["LOCK.RELEASE", "l", &first_text]), Frame::Integer(1));
    let Frame::Integer(second) = cluster.wait(waiter) else { panic!("the waiter gets a token") };
    assert!(second > first, "tokens grow: {first} then {second}");
    let second_text = second.to_string();
    let fenced = cluster.call(follower, &["LOCK.FENCED", "l", &second_text, "SET", "k", "v"]);
    assert_eq!(fenced, Frame::ok());
    let stale = cluster.call(follower, &["LOCK.FENCED", "l", &first_text, "SET", "k", "old"]);
    assert!(matches!(stale, Frame::Error(text) if text.starts_with("FENCED")));
    assert_eq!(cluster.call(leader, &["GET", "k"]), Frame::bulk("v"));
}

fn a_lock_wait_that_times_out_is_withdrawn_and_answered_null<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    cluster.call(leader, &["LOCK.ACQUIRE", "l", "100000"]);
    let waiter = cluster
        .submit(leader, Command::Execute(args(&["LOCK.ACQUIRE", "l", "1000", "WAIT", "200"])));
    assert_eq!(cluster.wait(waiter), Frame::Null);
    let Frame::Map(info) = cluster.call(leader, &["LOCK.INFO", "l"]) else { panic!("info") };
    assert_eq!(info[3].1, Frame::Integer(0), "no waiter left behind");
}

fn an_expired_lease_passes_to_the_waiter_without_other_traffic<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    cluster.call(leader, &["LOCK.ACQUIRE", "l", "100"]);
    let waiter = cluster
        .submit(leader, Command::Execute(args(&["LOCK.ACQUIRE", "l", "1000", "WAIT", "5000"])));
    assert!(matches!(cluster.wait(waiter), Frame::Integer(_)));
}

fn a_retried_sequenced_write_applies_once_even_through_a_new_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let Frame::Integer(session) = cluster.call(leader, &["SESSION.OPEN"]) else { panic!("id") };
    let session = session.to_string();
    let incr = ["SEQ", session.as_str(), "1", "INCR", "n"];
    assert_eq!(cluster.call(leader, &incr), Frame::Integer(1));
    cluster.crash(leader);
    let survivor = if leader == 1 { 2 } else { 1 };
    // The client did not see the reply and retries through another node.
    assert_eq!(cluster.call(survivor, &incr), Frame::Integer(1));
    assert_eq!(cluster.call(survivor, &["GET", "n"]), Frame::bulk("1"));
    let next = ["SEQ", session.as_str(), "2", "INCR", "n"];
    assert_eq!(cluster.call(survivor, &next), Frame::Integer(2));
}

fn an_observer_sees_the_next_elected_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let observer = cluster.submit(leader, Command::Execute(args(&["ELECT.OBSERVE", "e"])));
    cluster.tick(3);
    assert!(!cluster.replies.contains_key(&observer));
    let Frame::Integer(token) = cluster.call(leader, &["ELECT.CAMPAIGN", "e", "me", "10000"])
    else {
        panic!("campaign")
    };
    let expected = Frame::Array(vec![Frame::bulk("me"), Frame::Integer(token)]);
    assert_eq!(cluster.wait(observer), expected);
    assert_eq!(cluster.call(leader, &["ELECT.LEADER", "e"]), expected);
}

/// A client of the randomized runs: one command in flight, retried through
/// another node when it times out or is refused.
struct Actor {
    request: Option<(RequestId, u64)>,
    node: NodeId,
}

/// Crashes, restarts, isolation and message loss, drawn from a seed.
struct Faults {
    rng: consensus::rng::Rng,
    restart_at: BTreeMap<NodeId, u64>,
    heal_at: Option<u64>,
}

impl Faults {
    fn new(seed: u64) -> Faults {
        Faults { rng: consensus::rng::Rng::new(seed), restart_at: BTreeMap::new(), heal_at: None }
    }

    /// One tick of fault injection (only while `active`), then restarts and
    /// heals that are due.
    fn step<E: Engine>(&mut self, cluster: &mut Cluster<E>, tick: u64, active: bool) {
        if active && self.rng.chance(1, 150) && cluster.down.is_empty() {
            let victim = self.rng.range(1, 4);
            cluster.crash(victim);
            self.restart_at.insert(victim, tick + self.rng.range(5, 80));
        }
        if active && self.heal_at.is_none() && self.rng.chance(1, 150) {
            cluster.isolated.insert(self.rng.range(1, 4));
            self.heal_at = Some(tick + self.rng.range(5, 100));
        }
        let due: Vec<NodeId> = self
            .restart_at
            .iter()
            .filter(|(_, at)| **at <= tick || !active)
            .map(|(n, _)| *n)
            .collect();
        for node in due {
            self.restart_at.remove(&node);
            cluster.start(node, 3);
        }
        if self.heal_at.is_some_and(|at| at <= tick) || !active {
            cluster.isolated.clear();
            self.heal_at = None;
        }
    }
}

impl Actor {
    /// Submits `words` if idle; returns the reply once it arrives, or
    /// `None` while waiting. Retries elsewhere after `patience` ticks.
    fn drive<E: Engine>(
        &mut self,
        cluster: &mut Cluster<E>,
        rng: &mut consensus::rng::Rng,
        tick: u64,
        words: &[String],
    ) -> Option<Frame> {
        const PATIENCE_TICKS: u64 = 60;
        if let Some((request, sent)) = self.request {
            if let Some(frame) = cluster.replies.remove(&request) {
                self.request = None;
                return Some(frame);
            }
            if tick - sent < PATIENCE_TICKS {
                return None;
            }
            self.request = None;
            self.node = rng.range(1, 4);
        }
        if cluster.down.contains(&self.node) {
            self.node = rng.range(1, 4);
            return None;
        }
        let args = words.iter().map(|word| Bytes::from(word.clone())).collect();
        let request = cluster.submit(self.node, Command::Execute(args));
        self.request = Some((request, tick));
        None
    }
}

fn retryable(frame: &Frame) -> bool {
    matches!(frame, Frame::Error(text) if text.starts_with("CLUSTERDOWN") || text.starts_with("TRYAGAIN"))
}

/// Goal: under crashes, isolation and message loss, increments sent through
/// sessions and retried until acknowledged end at exactly the number of
/// acknowledged increments: no retry is ever applied twice.
fn sequenced_increments_through_faults_are_applied_exactly_once<E: Engine>(build: Build<E>) {
    for seed in 0..6 {
        let mut cluster = Cluster::new(3, build);
        cluster.loss = Some((consensus::rng::Rng::new(seed ^ 0xdead), 0.03));
        let mut rng = consensus::rng::Rng::new(seed);
        let mut faults = Faults::new(seed + 100);
        cluster.elect();
        let mut sessions = Vec::new();
        for client in 0..4u64 {
            let node = 1 + client % 3;
            let Frame::Integer(id) = cluster.call(node, &["SESSION.OPEN"]) else {
                panic!("session")
            };
            sessions.push(id);
        }
        let mut actors: Vec<Actor> =
            (0..4).map(|c| Actor { request: None, node: 1 + c % 3 }).collect();
        let mut sequence = [1u64; 4];
        let mut acknowledged = 0u64;
        for tick in 0..3_000u64 {
            let active = tick < 2_200;
            faults.step(&mut cluster, tick, active);
            for (client, actor) in actors.iter_mut().enumerate() {
                if tick >= 2_600 && actor.request.is_none() {
                    continue;
                }
                let words: Vec<String> = vec![
                    "SEQ".into(),
                    sessions[client].to_string(),
                    sequence[client].to_string(),
                    "INCR".into(),
                    "counter".into(),
                ];
                match actor.drive(&mut cluster, &mut rng, tick, &words) {
                    Some(Frame::Integer(_)) => {
                        acknowledged += 1;
                        sequence[client] += 1;
                    }
                    Some(frame) if retryable(&frame) => {}
                    Some(frame) => panic!("seed {seed}: unexpected reply {frame:?}"),
                    None => {}
                }
            }
            cluster.tick(1);
        }
        cluster.loss = None;
        cluster.tick(50);
        let leader = cluster.elect();
        let expected = acknowledged.to_string();
        assert!(acknowledged > 50, "seed {seed}: the run made progress ({acknowledged})");
        assert_eq!(cluster.call(leader, &["GET", "counter"]), Frame::bulk(expected), "seed {seed}");
    }
}

/// Goal: mutual exclusion under faults, judged by what the protected
/// resource accepted: writes fenced by lock tokens land in token order,
/// even when holders crash, stall behind partitions or outlive their lease.
fn fenced_writes_of_contending_lock_holders_land_in_token_order<E: Engine>(build: Build<E>) {
    for seed in 0..6 {
        let mut cluster = Cluster::new(3, build);
        cluster.loss = Some((consensus::rng::Rng::new(seed ^ 0xbeef), 0.02));
        let mut rng = consensus::rng::Rng::new(seed);
        let mut faults = Faults::new(seed + 200);
        cluster.elect();
        let mut actors: Vec<Actor> =
            (0..5).map(|c| Actor { request: None, node: 1 + c % 3 }).collect();
        // Each client: acquire → fenced write → fenced write → release.
        let mut phase = [0u8; 5];
        let mut token: [Option<i64>; 5] = [None; 5];
        let mut accepted = 0u64;
        for tick in 0..3_000u64 {
            faults.step(&mut cluster, tick, tick < 2_200);
            for (client, actor) in actors.iter_mut().enumerate() {
                let words: Vec<String> = match (phase[client], token[client]) {
                    (0, _) => {
                        ["LOCK.ACQUIRE", "l", "400", "WAIT", "300"].map(String::from).to_vec()
                    }
                    (1 | 2, Some(t)) => vec![
                        "LOCK.FENCED".into(),
                        "l".into(),
                        t.to_string(),
                        "RPUSH".into(),
                        "log".into(),
                        t.to_string(),
                    ],
                    (_, Some(t)) => vec!["LOCK.RELEASE".into(), "l".into(), t.to_string()],
                    (_, None) => unreachable!(),
                };
                let Some(frame) = actor.drive(&mut cluster, &mut rng, tick, &words) else {
                    continue;
                };
                match (phase[client], frame) {
                    (0, Frame::Integer(t)) => {
                        token[client] = Some(t);
                        phase[client] = 1;
                    }
                    (1 | 2, Frame::Integer(_)) => {
                        accepted += 1;
                        phase[client] += 1;
                    }
                    (1 | 2, Frame::Error(text)) if text.starts_with("FENCED") => phase[client] = 3,
                    (3, Frame::Integer(_)) => {
                        phase[client] = 0;
                        token[client] = None;
                    }
                    (_, frame) if retryable(&frame) || frame == Frame::Null => {
                        // A write's fate is unknown after CLUSTERDOWN: start over
                        // by releasing (harmless if the lock is gone).
                        if phase[client] != 0 {
                            phase[client] = 3;
                        }
                    }
                    (p, frame) => panic!("seed {seed}: phase {p}: unexpected {frame:?}"),
                }
            }
            cluster.tick(1);
        }
        cluster.loss = None;
        cluster.tick(50);
        let leader = cluster.elect();
        let Frame::Array(log) = cluster.call(leader, &["LRANGE", "log", "0", "-1"]) else {
            panic!("log")
        };
        let tokens: Vec<u64> = log
            .iter()
            .map(|frame| match frame {
                Frame::Bulk(bytes) => std::str::from_utf8(bytes).unwrap().parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(tokens.len() as u64 >= accepted.min(40), "seed {seed}: writes were accepted");
        assert!(accepted > 20, "seed {seed}: the run made progress ({accepted})");
        for pair in tokens.windows(2) {
            assert!(pair[0] <= pair[1], "seed {seed}: token {} wrote after {}", pair[1], pair[0]);
        }
    }
}

/// Goal: a sequenced blocking pop is served once; its retry (after a lost
/// reply) gets the same element instead of popping another.
fn a_sequenced_blocking_pop_retried_after_it_was_served_gets_the_same_element<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::new(3, build);
    let leader = cluster.elect();
    let Frame::Integer(session) = cluster.call(leader, &["SESSION.OPEN"]) else { panic!("id") };
    let session = session.to_string();
    let pop = ["SEQ", session.as_str(), "1", "BLPOP", "q", "0"];
    let blocked = cluster.submit(leader, Command::Execute(args(&pop)));
    cluster.tick(3);
    assert!(!cluster.replies.contains_key(&blocked));
    cluster.call(leader, &["RPUSH", "q", "a", "b"]);
    let served = Frame::Array(vec![Frame::bulk("q"), Frame::bulk("a")]);
    assert_eq!(cluster.wait(blocked), served);
    let other = if leader == 1 { 2 } else { 1 };
    assert_eq!(cluster.call(other, &pop), served, "the retry replays, it does not pop b");
    assert_eq!(cluster.call(other, &["LLEN", "q"]), Frame::Integer(1));
}

/// Goal: a consumer group under crashes, isolation and message loss
/// delivers every acknowledged XADD at least once, never redelivers what
/// was XACKed, and counts deliveries exactly.
fn stream_groups_deliver_every_acknowledged_entry_through_faults<E: Engine>(build: Build<E>) {
    for seed in 0..4 {
        let mut cluster = Cluster::new(3, build);
        cluster.loss = Some((consensus::rng::Rng::new(seed ^ 0xfeed), 0.02));
        let mut rng = consensus::rng::Rng::new(seed);
        let mut faults = Faults::new(seed + 300);
        let leader = cluster.elect();
        let created = cluster.call(leader, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        assert_eq!(created, Frame::ok());
        let Frame::Integer(session) = cluster.call(leader, &["SESSION.OPEN"]) else { panic!() };
        let mut producer = Actor { request: None, node: 1 };
        let mut consumers: Vec<Actor> =
            (0..2).map(|c| Actor { request: None, node: 2 + c }).collect();
        let mut produced_sequence = 1u64;
        let mut produced = BTreeSet::new();
        let mut acked: BTreeSet<String> = BTreeSet::new();
        let mut to_ack: Vec<Option<String>> = vec![None, None];
        for tick in 0..2_500u64 {
            faults.step(&mut cluster, tick, tick < 1_800);
            if tick < 2_000 || producer.request.is_some() {
                let words: Vec<String> = vec![
                    "SEQ".into(),
                    session.to_string(),
                    produced_sequence.to_string(),
                    "XADD".into(),
                    "s".into(),
                    "*".into(),
                    "n".into(),
                    produced_sequence.to_string(),
                ];
                match producer.drive(&mut cluster, &mut rng, tick, &words) {
                    Some(Frame::Bulk(id)) => {
                        produced.insert(String::from_utf8(id.to_vec()).unwrap());
                        produced_sequence += 1;
                    }
                    Some(frame) if retryable(&frame) => {}
                    Some(frame) => panic!("seed {seed}: XADD replied {frame:?}"),
                    None => {}
                }
            }
            for (index, consumer) in consumers.iter_mut().enumerate() {
                // Near the end, consumers only finish what they started.
                if tick >= 2_200 && to_ack[index].is_none() && consumer.request.is_none() {
                    continue;
                }
                let name = format!("c{index}");
                let words: Vec<String> = match &to_ack[index] {
                    Some(id) => ["XACK", "s", "g", id].map(String::from).to_vec(),
                    // Claim entries idle for a while (a crashed consumer's),
                    // else read new ones.
                    None if tick % 7 == 0 => {
                        ["XAUTOCLAIM", "s", "g", &name, "300", "0", "COUNT", "1"]
                            .map(String::from)
                            .to_vec()
                    }
                    None => ["XREADGROUP", "GROUP", "g", &name, "COUNT", "1", "STREAMS", "s", ">"]
                        .map(String::from)
                        .to_vec(),
                };
                let Some(frame) = consumer.drive(&mut cluster, &mut rng, tick, &words) else {
                    continue;
                };
                if let Some(id) = to_ack[index].clone() {
                    match frame {
                        Frame::Integer(_) => {
                            acked.insert(id);
                            to_ack[index] = None;
                        }
                        frame if retryable(&frame) => {}
                        frame => panic!("seed {seed}: XACK replied {frame:?}"),
                    }
                    continue;
                }
                if let Some(id) = first_entry_id(&frame) {
                    assert!(!acked.contains(&id), "seed {seed}: {id} was redelivered after XACK");
                    to_ack[index] = Some(id);
                }
            }
            cluster.tick(1);
        }
        cluster.loss = None;
        cluster.tick(50);
        let leader = cluster.elect();
        // Every acknowledged XADD is in the stream, and is either acked or
        // still pending for the group (at-least-once: nothing fell between).
        let Frame::Array(entries) = cluster.call(leader, &["XRANGE", "s", "-", "+"]) else {
            panic!("range")
        };
        let stored: BTreeSet<String> = entries.iter().filter_map(first_entry_id_of_pair).collect();
        for id in &produced {
            assert!(stored.contains(id), "seed {seed}: acknowledged XADD {id} is missing");
        }
        let Frame::Array(pending) =
            cluster.call(leader, &["XPENDING", "s", "g", "-", "+", "100000"])
        else {
            panic!("pending")
        };
        let pending: BTreeSet<String> = pending.iter().filter_map(first_entry_id_of_pair).collect();
        // An XACK still unanswered at the end may or may not have applied.
        let unsure: BTreeSet<String> = to_ack.iter().flatten().cloned().collect();
        let read_by_group: BTreeSet<String> =
            acked.union(&pending).chain(unsure.iter()).cloned().collect();
        let Frame::Array(unread) =
            cluster.call(leader, &["XREADGROUP", "GROUP", "g", "final", "STREAMS", "s", ">"])
        else {
            panic!("the group still has entries to deliver or none ({seed})")
        };
        let unread: BTreeSet<String> = match unread.first() {
            Some(Frame::Array(stream)) => match stream.get(1) {
                Some(Frame::Array(entries)) => {
                    entries.iter().filter_map(first_entry_id_of_pair).collect()
                }
                _ => BTreeSet::new(),
            },
            _ => BTreeSet::new(),
        };
        for id in &stored {
            assert!(
                read_by_group.contains(id) || unread.contains(id),
                "seed {seed}: {id} was neither delivered, pending nor still deliverable"
            );
        }
        assert!(produced.len() > 30, "seed {seed}: the run made progress ({})", produced.len());
        assert!(acked.len() > 10, "seed {seed}: consumers made progress ({})", acked.len());
    }
}

/// The id of the first entry of an XREADGROUP or XAUTOCLAIM reply.
fn first_entry_id(frame: &Frame) -> Option<String> {
    let Frame::Array(items) = frame else { return None };
    let entries = match items.first()? {
        // XREADGROUP: [[stream, [[id, fields]…]]]
        Frame::Array(stream) => stream.get(1)?,
        // XAUTOCLAIM: [cursor, [[id, fields]…], deleted]
        Frame::Bulk(_) => items.get(1)?,
        _ => return None,
    };
    let Frame::Array(entries) = entries else { return None };
    entries.first().and_then(first_entry_id_of_pair)
}

fn first_entry_id_of_pair(entry: &Frame) -> Option<String> {
    let Frame::Array(pair) = entry else { return None };
    match pair.first()? {
        Frame::Bulk(id) => Some(String::from_utf8(id.to_vec()).ok()?),
        _ => None,
    }
}

/// Goal: a node started empty joins a running cluster: it is added as a
/// learner, catches up, asks to be promoted, and becomes a voter that
/// serves commands.
fn a_new_node_joins_catches_up_and_becomes_a_voter<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::new(1, build);
    cluster.elect();
    for i in 0..30 {
        cluster.call(1, &["SET", &format!("k{i}"), "v"]);
    }
    let mut options = (cluster.options)(2);
    options.peer_address = "127.0.0.1:2".to_string();
    let now = cluster.now_ms;
    let joining = Node::new(
        options,
        cluster.build,
        Membership::default(),
        BTreeMap::new(),
        Durable::default(),
        now,
    );
    cluster.disks.insert(2, BTreeMap::new());
    cluster.nodes.insert(2, joining);
    let join = cluster.nodes[&2].join_message();
    cluster.network.push_back((2, 1, join));
    for _ in 0..200 {
        cluster.tick(1);
        if cluster.nodes[&1].status().membership.voters.contains(&2) {
            break;
        }
    }
    assert!(cluster.nodes[&1].status().membership.voters.contains(&2), "node 2 was promoted");
    assert_eq!(cluster.call(2, &["GET", "k29"]), Frame::bulk("v"));
    assert_eq!(cluster.call(2, &["SET", "after", "join"]), Frame::ok());
    assert_eq!(cluster.call(1, &["GET", "after"]), Frame::bulk("join"));
}

/// Every node-level test runs against both engines.
/// The node a `-MOVED slot 10.0.0.N:6379` reply names (the harness's
/// client addresses).
fn moved_to(text: &str) -> Option<NodeId> {
    let address = text.split_whitespace().nth(2)?;
    address.strip_prefix("10.0.0.")?.split(':').next()?.parse().ok()
}

/// The node hosting a replica of the group that owns `key` and leading it.
fn slot_leader<E: Engine>(cluster: &Cluster<E>, key: &str) -> (GroupId, NodeId) {
    let topology = cluster.topology.as_ref().expect("sharded");
    let group = topology.group_of_slot(placement::key_slot(key.as_bytes()));
    let leader = cluster
        .nodes
        .values()
        .find(|node| {
            node.shard_statuses()
                .iter()
                .any(|(g, status)| *g == group && status.role == consensus::Role::Leader)
        })
        .map(|node| node.id())
        .expect("the group has a leader");
    (group, leader)
}

fn a_sharded_cluster_spreads_keys_over_shards_and_serves_them_from_any_node<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::sharded(5, 10, 3, false, build);
    cluster.elect_all();
    let keys = 120;
    for i in 0..keys {
        let node = 1 + i % 5;
        let reply = cluster.call(node, &["SET", &format!("key:{i}"), &format!("value {i}")]);
        assert_eq!(reply, Frame::ok(), "SET key:{i} through n{node}");
    }
    for i in 0..keys {
        let node = 1 + (i * 7 + 3) % 5;
        let reply = cluster.call(node, &["GET", &format!("key:{i}")]);
        assert_eq!(reply, Frame::bulk(format!("value {i}")), "GET key:{i} through n{node}");
    }
    // Every key lives on exactly the three replicas of its slot's group.
    let topology = cluster.topology.clone().unwrap();
    for i in 0..keys {
        let key = format!("key:{i}");
        let slot = placement::key_slot(key.as_bytes());
        let holders: Vec<NodeId> = cluster
            .nodes
            .values()
            .filter(|node| {
                node.keys_in_slot(slot, usize::MAX, cluster.now_ms)
                    .is_some_and(|held| held.iter().any(|k| k == key.as_bytes()))
            })
            .map(|node| node.id())
            .collect();
        let mut expected = topology.shards[&topology.group_of_slot(slot)].clone();
        expected.sort_unstable();
        assert_eq!(holders, expected, "{key} held by the wrong nodes");
    }
    // Whole-keyspace commands combine every shard's part.
    for node in 1..=5 {
        assert_eq!(cluster.call(node, &["DBSIZE"]), Frame::Integer(keys as i64));
    }
    let Frame::Array(listed) = cluster.call(2, &["KEYS", "key:*"]) else { panic!("KEYS") };
    assert_eq!(listed.len(), keys as usize);
    let mut scanned = BTreeSet::new();
    let mut cursor = "0".to_string();
    for round in 0.. {
        assert!(round < 1_000, "SCAN never ends");
        let Frame::Array(reply) = cluster.call(3, &["SCAN", &cursor, "COUNT", "7"]) else {
            panic!("SCAN")
        };
        let (Frame::Bulk(next), Frame::Array(names)) = (&reply[0], &reply[1]) else {
            panic!("SCAN reply {reply:?}")
        };
        for name in names {
            let Frame::Bulk(name) = name else { panic!("name") };
            scanned.insert(name.clone());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(scanned.len(), keys as usize, "SCAN missed keys");
    assert!(matches!(cluster.call(4, &["RANDOMKEY"]), Frame::Bulk(_)));
    // Keys of one command must share a slot; hash tags make them.
    let crossed = cluster.call(1, &["MSET", "a", "1", "b", "2"]);
    assert!(matches!(&crossed, Frame::Error(e) if e.starts_with("CROSSSLOT")), "{crossed:?}");
    assert_eq!(cluster.call(1, &["MSET", "{user}a", "1", "{user}b", "2"]), Frame::ok());
    assert_eq!(
        cluster.call(5, &["MGET", "{user}a", "{user}b"]),
        Frame::Array(vec![Frame::bulk("1"), Frame::bulk("2")])
    );
    // A fenced command's keys must share the lock's slot.
    let Frame::Integer(token) = cluster.call(2, &["LOCK.ACQUIRE", "l2", "30000"]) else {
        panic!("LOCK.ACQUIRE")
    };
    let token = token.to_string();
    let crossed = cluster.call(2, &["LOCK.FENCED", "l2", &token, "SET", "foo", "x"]);
    assert!(matches!(&crossed, Frame::Error(e) if e.starts_with("CROSSSLOT")), "{crossed:?}");
    let Frame::Integer(token) = cluster.call(2, &["LOCK.ACQUIRE", "{foo}lock", "30000"]) else {
        panic!("LOCK.ACQUIRE")
    };
    let token = token.to_string();
    let fenced = cluster.call(4, &["LOCK.FENCED", "{foo}lock", &token, "SET", "foo", "x"]);
    assert_eq!(fenced, Frame::ok());
    assert_eq!(cluster.call(1, &["GET", "foo"]), Frame::bulk("x"));
    // A node without a replica of a key's shard refuses to carry a blocked
    // client or a lock wait (it could not answer a grant or withdraw it)
    // and loses nothing; a node with one serves them.
    let group = topology.group_of_slot(placement::key_slot(b"queue"));
    let outsider = (1..=5).find(|n| !topology.shards[&group].contains(n)).expect("an outsider");
    let insider = topology.shards[&group][0];
    for words in [&["BLPOP", "queue", "0"][..], &["LOCK.ACQUIRE", "queue", "30000", "WAIT", "800"]]
    {
        let refused = cluster.call(outsider, words);
        assert!(
            matches!(&refused, Frame::Error(e) if e.contains("holds no replica")),
            "{refused:?}"
        );
    }
    assert_eq!(cluster.call(outsider, &["RPUSH", "queue", "x"]), Frame::Integer(1));
    assert_eq!(
        cluster.call(insider, &["BLPOP", "queue", "1"]),
        Frame::Array(vec![Frame::bulk("queue"), Frame::bulk("x")])
    );
    // Commands spanning every shard cannot hide inside MULTI or SEQ.
    let multi = Command::Transaction { watched: Vec::new(), commands: vec![args(&["FLUSHALL"])] };
    let request = cluster.submit(2, multi);
    let refused = cluster.wait(request);
    assert!(matches!(&refused, Frame::Error(e) if e.contains("spans every shard")), "{refused:?}");
    assert_eq!(cluster.call(5, &["FLUSHALL"]), Frame::ok());
    assert_eq!(cluster.call(1, &["DBSIZE"]), Frame::Integer(0));
}

fn cluster_mode_redirects_to_the_slot_leader_and_readonly_reads_from_replicas<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::sharded(5, 6, 3, true, build);
    cluster.elect_all();
    // Addresses and leaders travel in the nodes' periodic hellos; leaders
    // settle on their preferred nodes.
    cluster.tick(400);
    let key = "user:1000";
    let slot = placement::key_slot(key.as_bytes());
    let (group, leader) = slot_leader(&cluster, key);
    assert_eq!(cluster.call(leader, &["SET", key, "v"]), Frame::ok());
    let topology = cluster.topology.clone().unwrap();
    let replicas = topology.shards[&group].clone();
    let moved = Frame::Error(format!("MOVED {slot} 10.0.0.{leader}:6379"));
    for node in 1..=5 {
        if node == leader {
            continue;
        }
        assert_eq!(cluster.call(node, &["GET", key]), moved, "GET through n{node}");
        // READONLY clients read from a replica hosted here, linearizably;
        // a node without a replica still redirects them.
        cluster.next_request += 1;
        let request = cluster.next_request;
        let now = cluster.now_ms;
        let command = Command::Execute(args(&["GET", key]));
        let read_indexes = cluster.read_indexes_delivered;
        cluster.nodes.get_mut(&node).unwrap().submit_with(request, command, true, now);
        cluster.flush(node);
        cluster.deliver_all();
        let reply = cluster.wait(request);
        if replicas.contains(&node) {
            assert_eq!(reply, Frame::bulk("v"), "READONLY GET on replica n{node}");
            // Served by the replica: it asked the leader for a read index only.
            assert_eq!(cluster.read_indexes_delivered, read_indexes + 1);
        } else {
            assert_eq!(reply, moved, "READONLY GET on n{node}, which holds no replica");
        }
    }
    // Every node reports the same leader for every shard.
    let views: Vec<_> = cluster.nodes.values().map(|node| node.cluster_view().shards).collect();
    assert!(views.windows(2).all(|pair| pair[0] == pair[1]), "views differ: {views:?}");
    let view = cluster.nodes[&1].cluster_view();
    let covered: u32 = view
        .shards
        .iter()
        .flat_map(|shard| shard.slots.iter().map(|(a, b)| u32::from(b - a) + 1))
        .sum();
    assert_eq!(covered, 16384);
    assert_eq!(view.nodes.len(), 5);
    assert!(view.nodes.values().all(|address| !address.is_empty()));
}

/// How many groups each node leads.
fn leaders_per_node<E: Engine>(cluster: &Cluster<E>) -> BTreeMap<NodeId, usize> {
    let mut leads = BTreeMap::new();
    for node in cluster.nodes.values() {
        let led = node
            .shard_statuses()
            .iter()
            .filter(|(_, status)| status.role == consensus::Role::Leader)
            .count();
        leads.insert(node.id(), led);
    }
    leads
}

fn leaders_spread_to_preferred_nodes_and_return_after_a_node_restarts<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::sharded(5, 10, 3, false, build);
    cluster.elect_all();
    // Hellos, then a few balancing rounds.
    cluster.tick(400);
    assert_eq!(leaders_per_node(&cluster), (1..=5).map(|n| (n, 2)).collect());
    for i in 0..40 {
        assert_eq!(cluster.call(1 + i % 5, &["SET", &format!("k{i}"), "1"]), Frame::ok());
    }
    // Node 3 dies: its groups elect other leaders, every key stays writable.
    cluster.crash(3);
    cluster.tick(100);
    let leads = leaders_per_node(&cluster);
    assert_eq!(leads.values().sum::<usize>(), 10, "{leads:?}");
    for i in 0..40 {
        assert_eq!(cluster.call(1 + (i % 2), &["INCR", &format!("k{i}")]), Frame::Integer(2));
    }
    // It comes back and is given its groups again.
    cluster.start(3, 5);
    cluster.tick(600);
    assert_eq!(leaders_per_node(&cluster), (1..=5).map(|n| (n, 2)).collect());
    for i in 0..40 {
        assert_eq!(cluster.call(3, &["GET", &format!("k{i}")]), Frame::bulk("2"));
    }
}

fn sessions_span_every_shard_of_a_sharded_cluster<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::sharded(3, 6, 3, false, build);
    cluster.elect_all();
    let Frame::Integer(id) = cluster.call(2, &["SESSION.OPEN"]) else { panic!("SESSION.OPEN") };
    let id = id.to_string();
    // Keys in different shards, each incremented once per sequence number,
    // each sequence number sent twice.
    let keys: Vec<String> = (0..12).map(|i| format!("counter:{i}")).collect();
    let topology = cluster.topology.clone().unwrap();
    let groups: BTreeSet<GroupId> =
        keys.iter().map(|k| topology.group_of_slot(placement::key_slot(k.as_bytes()))).collect();
    assert!(groups.len() > 2, "the keys fall in too few shards: {groups:?}");
    for (n, key) in keys.iter().enumerate() {
        let sequence = (n + 1).to_string();
        for node in [1, 3] {
            let reply = cluster.call(node, &["SEQ", &id, &sequence, "INCR", key]);
            assert_eq!(reply, Frame::Integer(1), "SEQ {sequence} INCR {key} through n{node}");
        }
    }
    for key in &keys {
        assert_eq!(cluster.call(1, &["GET", key]), Frame::bulk("1"));
    }
    assert_eq!(cluster.call(3, &["SESSION.CLOSE", &id]), Frame::Integer(1));
    let expired = cluster.call(1, &["SEQ", &id, "99", "INCR", &keys[0]]);
    assert!(matches!(&expired, Frame::Error(e) if e.starts_with("SESSIONEXPIRED")), "{expired:?}");
}

fn idle_groups_hibernate_and_wake_on_a_command_or_a_dead_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::sharded(3, 30, 3, false, build);
    cluster.elect_all();
    cluster.tick(400);
    // Idle: no group sends a heartbeat of its own.
    let before = cluster.consensus_delivered;
    cluster.tick(200);
    assert_eq!(cluster.consensus_delivered, before, "idle groups still exchange messages");
    // A command wakes its group and is served at once.
    let request = cluster.submit(2, Command::Execute(args(&["SET", "k", "v"])));
    let mut waited = 0;
    while !cluster.replies.contains_key(&request) {
        cluster.tick(1);
        waited += 1;
        assert!(waited < 5, "a hibernating group took too long to serve a write");
    }
    assert_eq!(cluster.replies.remove(&request), Some(Frame::ok()));
    cluster.tick(200);
    // Its leader's node dies: the followers wake and elect new leaders.
    let (_, leader) = slot_leader(&cluster, "k");
    cluster.crash(leader);
    let survivor = if leader == 1 { 2 } else { 1 };
    for _ in 0..100 {
        cluster.tick(1);
    }
    let led: usize = leaders_per_node(&cluster).values().sum();
    assert_eq!(led, 30, "some group has no leader after its leader's node died");
    assert_eq!(cluster.call(survivor, &["GET", "k"]), Frame::bulk("v"));
}

fn a_write_reaching_a_leader_that_is_handing_over_waits_for_the_new_leader<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::sharded(3, 3, 3, false, build);
    cluster.elect_all();
    let (group, leader) = slot_leader(&cluster, "k");
    let target = if leader == 1 { 2 } else { 1 };
    // The transfer starts and, before any message moves, a write arrives:
    // the engine refuses proposals until the transfer ends.
    cluster.next_request += 1;
    let request = cluster.next_request;
    let now = cluster.now_ms;
    let node = cluster.nodes.get_mut(&leader).unwrap();
    node.transfer_leadership(group, target, now);
    node.submit(request, Command::Execute(args(&["SET", "k", "v"])), now);
    cluster.flush(leader);
    cluster.deliver_all();
    assert_eq!(cluster.wait(request), Frame::ok());
    assert_eq!(cluster.call(3, &["GET", "k"]), Frame::bulk("v"));
    assert_eq!(slot_leader(&cluster, "k"), (group, target));
}

/// A register operation of the randomized sharded runs.
#[derive(Clone, Copy, Debug)]
enum RegisterOp {
    Set(u64),
    Get,
    Incr,
}

/// An operation submitted and not answered yet.
struct InFlight {
    request: RequestId,
    node: NodeId,
    /// The node's incarnation when the operation was submitted: a crash
    /// loses every request the node held.
    incarnation: u64,
    key: String,
    op: RegisterOp,
    /// The command line, resubmitted as is when a sequenced increment's
    /// fate is unknown.
    words: Vec<String>,
    /// When the operation was first submitted.
    invoked_at: u64,
    /// When the latest submission was.
    sent_at: u64,
    /// Sent as a `READONLY` client's read (cluster mode).
    readonly: bool,
}

/// A register client: its `SEQ` id and last sequence number (increments
/// are sequenced, so that one whose reply was lost is retried until it
/// answers), and what it awaits.
struct RegisterClient {
    session: Option<i64>,
    sequence: u64,
    in_flight: Option<InFlight>,
}

/// What a reply says about an operation.
enum Settled {
    /// It took effect (or read) with this outcome.
    Done(check::Outcome),
    /// The node does not know whether it took effect.
    Unknown,
    /// The node refused it: it never took effect.
    Refused,
}

/// Values live in the checker's register as unary strings ("111" is 3), so
/// that an increment whose reply was lost is an `Append` of "1", and one
/// that answered `n` is a compare-and-swap from `n - 1` to `n`.
fn unary(value: i64) -> String {
    assert!(value >= 0, "values stay non-negative");
    "1".repeat(value as usize)
}

fn settle(op: RegisterOp, frame: &Frame) -> Settled {
    if let Frame::Error(text) = frame {
        if text.contains("may or may not") {
            return Settled::Unknown;
        }
        assert!(
            text.starts_with("CLUSTERDOWN") || text.starts_with("TRYAGAIN"),
            "{op:?}: unexpected error {text}"
        );
        return Settled::Refused;
    }
    let outcome = match (op, frame) {
        (RegisterOp::Set(_), frame) if *frame == Frame::ok() => check::Outcome::Ok,
        (RegisterOp::Get, Frame::Null) => check::Outcome::Value(None),
        (RegisterOp::Get, Frame::Bulk(bytes)) => {
            let value: i64 = std::str::from_utf8(bytes).unwrap().parse().unwrap();
            check::Outcome::Value(Some(unary(value)))
        }
        (RegisterOp::Incr, Frame::Integer(value)) => {
            assert!(*value >= 1, "INCR answered {value}");
            check::Outcome::Swapped(true)
        }
        (op, frame) => panic!("{op:?}: unexpected reply {frame:?}"),
    };
    Settled::Done(outcome)
}

/// The checker's view of an operation and what its client learnt.
fn recorded(
    client: u64,
    key: &str,
    op: RegisterOp,
    invoked_at: u64,
    reply: Option<(u64, &Frame)>,
) -> Option<check::Operation> {
    let key = key.to_string();
    let settled = reply.map(|(at, frame)| (at, settle(op, frame)));
    let completed = match settled {
        Some((_, Settled::Refused)) => return None,
        Some((_, Settled::Unknown)) | None => None,
        Some((at, Settled::Done(outcome))) => Some((at, outcome)),
    };
    let op = match (op, &completed) {
        (RegisterOp::Set(value), _) => check::Op::Put { key, value: unary(value as i64) },
        (RegisterOp::Get, _) => check::Op::Get { key },
        (RegisterOp::Incr, None) => check::Op::Append { key, value: "1".into() },
        (RegisterOp::Incr, Some(_)) => {
            let Some((_, Frame::Integer(value))) = reply else { unreachable!() };
            let expected = (*value > 1).then(|| unary(value - 1));
            check::Op::Cas { key, expected, new: unary(*value) }
        }
    };
    Some(check::Operation { client, op, invoked_at, completed })
}

/// A randomized run of register clients against a sharded cluster.
struct RegisterRun<E: Engine> {
    cluster: Cluster<E>,
    history: Vec<check::Operation>,
    /// Groups seen hibernating at the end of the idle phase.
    hibernated: usize,
    /// Operations that completed with a result.
    completed: usize,
    /// `-MOVED` replies the clients followed.
    redirects: usize,
}

const REGISTER_KEYS: usize = 30;
const REGISTER_CLIENTS: u64 = 12;
const REGISTER_NODES: u64 = 5;

/// Clients run SET, GET and INCR on keys spread over 10 shards of a 5-node
/// cluster, each through a random node, while nodes crash and restart, are
/// cut off and messages are lost; an idle phase in the middle lets groups
/// hibernate. Increments are sequenced (`SEQ`) and resent until they
/// answer, so that their effect is known. Times are half-ticks: a reply seen at the start of tick `t`
/// completed at `2t`, a command submitted during tick `t` was invoked at
/// `2t + 1`. With `amnesia`, every node crashes when the second active phase
/// starts and four of them come back with empty disks (the fifth stays
/// down): a durability loss no consensus protocol survives.
fn run_registers<E: Engine>(build: Build<E>, seed: u64, amnesia: bool) -> RegisterRun<E> {
    run_registers_in(build, seed, amnesia, false)
}

/// `run_registers`, in Redis Cluster mode when `cluster_mode` is set: clients
/// follow `-MOVED`, and half of the reads are a `READONLY` client's, served
/// by whichever replica the client reached.
fn run_registers_in<E: Engine>(
    build: Build<E>,
    seed: u64,
    amnesia: bool,
    cluster_mode: bool,
) -> RegisterRun<E> {
    const FIRST_ACTIVE_END: u64 = 400;
    const IDLE_END: u64 = 700;
    const SECOND_ACTIVE_END: u64 = 1_100;
    const SETTLE_END: u64 = 1_500;
    const PATIENCE_TICKS: u64 = 300;
    let mut cluster = Cluster::sharded(REGISTER_NODES, 10, 3, cluster_mode, build);
    let mut rng = consensus::rng::Rng::new(seed.wrapping_mul(0x9e37_79b9) + 17);
    cluster.elect_all();
    let keys: Vec<String> = (0..REGISTER_KEYS).map(|i| format!("register:{i}")).collect();
    let topology = cluster.topology.clone().unwrap();
    let groups: BTreeSet<GroupId> =
        keys.iter().map(|k| topology.group_of_slot(placement::key_slot(k.as_bytes()))).collect();
    assert!(groups.len() >= 8, "the keys fall in too few shards: {groups:?}");
    let mut clients: Vec<RegisterClient> = (0..REGISTER_CLIENTS)
        .map(|client| {
            let node = 1 + client % REGISTER_NODES;
            let reply = cluster.call(node, &["SESSION.OPEN"]);
            let Frame::Integer(id) = reply else { panic!("seed {seed}: SESSION.OPEN: {reply:?}") };
            RegisterClient { session: Some(id), sequence: 0, in_flight: None }
        })
        .collect();
    cluster.loss = Some((consensus::rng::Rng::new(seed ^ 0x5eed), 0.02));
    let mut incarnation: BTreeMap<NodeId, u64> = (1..=REGISTER_NODES).map(|n| (n, 0)).collect();
    let mut restart_at: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut heal_at: Option<u64> = None;
    let mut history = Vec::new();
    let mut hibernated = 0;
    let mut completed = 0;
    let mut amnesiac = false;
    let mut redirects = 0;
    let mut next_value = 1u64;
    for tick in 0..SETTLE_END {
        let active = tick < FIRST_ACTIVE_END || (IDLE_END..SECOND_ACTIVE_END).contains(&tick);
        let faulty = tick < SECOND_ACTIVE_END && !amnesiac;
        // Replies that arrived during the previous tick.
        for (client, state) in clients.iter_mut().enumerate() {
            let Some(flight) = &mut state.in_flight else { continue };
            let reply = cluster.replies.remove(&flight.request);
            let lost = incarnation[&flight.node] != flight.incarnation;
            let late = tick - flight.sent_at / 2 > PATIENCE_TICKS;
            if reply.is_none() && !lost && !late {
                continue;
            }
            if let Some(Frame::Error(text)) = &reply {
                if let Some(target) = text.strip_prefix("MOVED ").and(moved_to(text)) {
                    // Not executed: sent where the node said, as a cluster client does.
                    redirects += 1;
                    let node = if cluster.nodes.contains_key(&target) {
                        target
                    } else {
                        let up: Vec<NodeId> = cluster.nodes.keys().copied().collect();
                        *rng.choose(&up).expect("a node is up")
                    };
                    let command =
                        Command::Execute(flight.words.iter().cloned().map(Bytes::from).collect());
                    flight.request = if flight.readonly {
                        cluster.submit_readonly(node, command)
                    } else {
                        cluster.submit(node, command)
                    };
                    flight.node = node;
                    flight.incarnation = incarnation[&node];
                    flight.sent_at = 2 * tick + 1;
                    continue;
                }
            }
            let expired =
                matches!(&reply, Some(Frame::Error(text)) if text.starts_with("SESSIONEXPIRED"));
            if expired {
                state.session = None;
            }
            let sequenced = matches!(flight.op, RegisterOp::Incr) && state.session.is_some();
            let settled = reply.as_ref().filter(|_| !expired).map(|frame| settle(flight.op, frame));
            if sequenced && !matches!(settled, Some(Settled::Done(_))) {
                // Sent again, through another node, until it answers.
                let up: Vec<NodeId> = cluster.nodes.keys().copied().collect();
                let node = *rng.choose(&up).expect("a node is up");
                let args = flight.words.iter().cloned().map(Bytes::from).collect();
                flight.request = cluster.submit(node, Command::Execute(args));
                flight.node = node;
                flight.incarnation = incarnation[&node];
                flight.sent_at = 2 * tick + 1;
                continue;
            }
            let reply = reply.as_ref().filter(|_| !expired).map(|frame| (2 * tick, frame));
            let operation =
                recorded(client as u64, &flight.key, flight.op, flight.invoked_at, reply);
            if let Some(operation) = operation {
                completed += usize::from(operation.completed.is_some());
                history.push(operation);
            }
            state.in_flight = None;
        }
        if tick == IDLE_END {
            hibernated = cluster
                .nodes
                .values()
                .flat_map(|node| node.groups().into_iter().map(move |g| (node, g)))
                .filter(|(node, group)| node.is_group_hibernating(*group))
                .count();
        }
        if amnesia && tick == IDLE_END {
            amnesiac = true;
            for node in 1..=REGISTER_NODES {
                if !cluster.down.contains(&node) {
                    cluster.crash(node);
                }
                *incarnation.get_mut(&node).unwrap() += 1;
            }
            cluster.isolated.clear();
            restart_at.clear();
            heal_at = None;
            for node in 1..REGISTER_NODES {
                cluster.disks.insert(node, BTreeMap::new());
                cluster.start(node, REGISTER_NODES);
            }
        }
        if faulty {
            if cluster.down.is_empty() && rng.chance(1, 200) {
                let victim = rng.range(1, REGISTER_NODES + 1);
                cluster.crash(victim);
                *incarnation.get_mut(&victim).unwrap() += 1;
                // Quick restarts too: a leader node back within its
                // followers' silence window must not strand its groups.
                restart_at.insert(victim, tick + rng.range(1, 150));
            }
            if heal_at.is_none() && rng.chance(1, 200) {
                cluster.isolated.insert(rng.range(1, REGISTER_NODES + 1));
                heal_at = Some(tick + rng.range(20, 150));
            }
        }
        let restarts: Vec<NodeId> =
            restart_at.iter().filter(|(_, at)| **at <= tick).map(|(n, _)| *n).collect();
        for node in restarts {
            restart_at.remove(&node);
            cluster.start(node, REGISTER_NODES);
        }
        if heal_at.is_some_and(|at| at <= tick) || !faulty {
            cluster.isolated.clear();
            heal_at = None;
        }
        if tick == SECOND_ACTIVE_END {
            cluster.loss = None;
        }
        if active {
            for (client, state) in clients.iter_mut().enumerate() {
                if state.in_flight.is_some() || !rng.chance(1, 3) {
                    continue;
                }
                let up: Vec<NodeId> = cluster.nodes.keys().copied().collect();
                let node = *rng.choose(&up).expect("a node is up");
                let key = keys[rng.range(0, REGISTER_KEYS as u64) as usize].clone();
                let op = match rng.range(0, 10) {
                    0..=3 => RegisterOp::Get,
                    4..=6 => {
                        // Values mostly distinct, so that reads tell writes apart.
                        next_value += 1;
                        RegisterOp::Set(next_value % 97 + 1 + 100 * (client as u64 % 3))
                    }
                    _ => RegisterOp::Incr,
                };
                let words: Vec<String> = match (op, state.session) {
                    (RegisterOp::Set(value), _) => {
                        vec!["SET".into(), key.clone(), value.to_string()]
                    }
                    (RegisterOp::Get, _) => vec!["GET".into(), key.clone()],
                    (RegisterOp::Incr, Some(session)) => {
                        state.sequence += 1;
                        let sequence = state.sequence.to_string();
                        let seq = ["SEQ", &session.to_string(), &sequence, "INCR", &key];
                        seq.map(String::from).to_vec()
                    }
                    (RegisterOp::Incr, None) => vec!["INCR".into(), key.clone()],
                };
                let args = words.iter().cloned().map(Bytes::from).collect();
                let readonly = cluster_mode && matches!(op, RegisterOp::Get) && rng.chance(1, 2);
                let request = if readonly {
                    cluster.submit_readonly(node, Command::Execute(args))
                } else {
                    cluster.submit(node, Command::Execute(args))
                };
                state.in_flight = Some(InFlight {
                    request,
                    node,
                    incarnation: incarnation[&node],
                    key,
                    op,
                    words,
                    invoked_at: 2 * tick + 1,
                    sent_at: 2 * tick + 1,
                    readonly,
                });
            }
        }
        cluster.tick(1);
    }
    // Whatever is still unanswered may or may not have taken effect.
    for (client, state) in clients.iter_mut().enumerate() {
        if let Some(flight) = state.in_flight.take() {
            let reply = cluster.replies.remove(&flight.request);
            let reply = reply.as_ref().map(|frame| (2 * SETTLE_END, frame));
            if let Some(operation) =
                recorded(client as u64, &flight.key, flight.op, flight.invoked_at, reply)
            {
                history.push(operation);
            }
        }
    }
    // A final read of every key, one at a time, through every live node in turn.
    cluster.elect_all();
    let up: Vec<NodeId> = cluster.nodes.keys().copied().collect();
    let mut time = 2 * SETTLE_END + 2;
    for (i, key) in keys.iter().enumerate() {
        let node = up[i % up.len()];
        let frame = cluster.call_following(node, &["GET", key]);
        assert!(!matches!(frame, Frame::Error(_)), "seed {seed}: final GET {key}: {frame:?}");
        let operation =
            recorded(REGISTER_CLIENTS, key, RegisterOp::Get, time, Some((time + 1, &frame)));
        history.push(operation.expect("a read that answered"));
        completed += 1;
        time += 2;
    }
    RegisterRun { cluster, history, hibernated, completed, redirects }
}

/// Ticks until the replicas of every group hold the same state and have
/// applied the same entries; panics with the disagreement otherwise.
fn assert_replicas_converge<E: Engine>(cluster: &mut Cluster<E>, context: &str) {
    let topology = cluster.topology.clone().expect("sharded");
    let mut disagreement = String::new();
    for _ in 0..400 {
        disagreement.clear();
        for (group, replicas) in &topology.shards {
            let states: BTreeSet<(u64, u64)> = replicas
                .iter()
                .filter_map(|node| cluster.nodes.get(node))
                .filter_map(|node| {
                    let statuses = node.shard_statuses();
                    let (_, status) = statuses.into_iter().find(|(g, _)| g == group)?;
                    Some((status.applied, status.state_digest))
                })
                .collect();
            if states.len() != 1 {
                disagreement += &format!("group {group}: (applied, digest) {states:?}; ");
            }
        }
        if disagreement.is_empty() {
            return;
        }
        cluster.tick(1);
    }
    panic!("{context}: replicas do not converge: {disagreement}");
}

/// Goal: under crashes, restarts, isolation, message loss and hibernation,
/// the registers of a sharded cluster are linearizable, judged by the
/// checker on the clients' history, and every group's replicas converge.
fn sharded_registers_stay_linearizable_through_faults<E: Engine>(build: Build<E>) {
    registers_stay_linearizable(build, false);
}

/// Goal: the same in Redis Cluster mode, with clients following `-MOVED`
/// and half of the reads served by `READONLY` replicas.
fn cluster_mode_registers_and_replica_reads_stay_linearizable_through_faults<E: Engine>(
    build: Build<E>,
) {
    registers_stay_linearizable(build, true);
}

fn registers_stay_linearizable<E: Engine>(build: Build<E>, cluster_mode: bool) {
    let mut hibernated = 0;
    let (mut redirects, mut replica_reads) = (0, 0);
    for seed in 0..50 {
        let mut run = run_registers_in(build, seed, false, cluster_mode);
        let verdict = check::check(&run.history, &check::Budget::default());
        match verdict {
            check::Verdict::Linearizable => {}
            check::Verdict::NotLinearizable { key, explanation } => {
                panic!("seed {seed}: {key} is not linearizable:\n{explanation}")
            }
            check::Verdict::Unknown { key, reason } => {
                panic!("seed {seed}: {key} could not be checked: {reason}")
            }
        }
        assert!(run.completed > 300, "seed {seed}: the run made progress ({})", run.completed);
        hibernated += run.hibernated;
        redirects += run.redirects;
        replica_reads += run.cluster.read_indexes_delivered;
        assert_replicas_converge(&mut run.cluster, &format!("seed {seed}"));
    }
    assert!(hibernated > 0, "no group ever hibernated during the idle phases");
    if cluster_mode {
        assert!(redirects > 100 && replica_reads > 100, "{redirects} MOVED, {replica_reads} reads");
    }
}

/// Goal: the linearizability test can fail. Histories that break the
/// register's contract are rejected: a read of a value nobody wrote, a
/// key read absent after an acknowledged write, and the history of a run
/// whose nodes lost their disks (acknowledged writes vanish).
fn the_register_checker_rejects_broken_histories_and_runs<E: Engine>(build: Build<E>) {
    let run = run_registers(build, 0, false);
    assert_eq!(check::check(&run.history, &check::Budget::default()), check::Verdict::Linearizable);
    // A read of a value never written.
    let mut forged = run.history.clone();
    let read = forged
        .iter_mut()
        .rev()
        .find(|operation| matches!(operation.completed, Some((_, check::Outcome::Value(Some(_))))))
        .expect("a read of a value");
    read.completed.as_mut().unwrap().1 = check::Outcome::Value(Some(unary(100_000)));
    let key = read.op.key().to_string();
    let verdict = check::check(&forged, &check::Budget::default());
    assert!(
        matches!(&verdict, check::Verdict::NotLinearizable { key: k, .. } if *k == key),
        "a read of a value never written passed: {verdict:?}"
    );
    // A key read absent after an acknowledged write (nothing deletes keys).
    let mut forged = run.history.clone();
    let written = forged
        .iter()
        .find(|operation| {
            matches!(operation.op, check::Op::Put { .. })
                && matches!(operation.completed, Some((_, check::Outcome::Ok)))
        })
        .expect("an acknowledged write");
    let key = written.op.key().to_string();
    let end = forged.iter().filter_map(|o| o.completed.as_ref().map(|(at, _)| *at)).max().unwrap();
    forged.push(check::Operation {
        client: REGISTER_CLIENTS + 1,
        op: check::Op::Get { key: key.clone() },
        invoked_at: end + 1,
        completed: Some((end + 2, check::Outcome::Value(None))),
    });
    let verdict = check::check(&forged, &check::Budget::default());
    assert!(
        matches!(&verdict, check::Verdict::NotLinearizable { key: k, .. } if *k == key),
        "a lost write passed: {verdict:?}"
    );
    // Nodes that forget what they acknowledged.
    for seed in 0..3 {
        let run = run_registers(build, seed, true);
        let verdict = check::check(&run.history, &check::Budget::default());
        assert!(
            matches!(verdict, check::Verdict::NotLinearizable { .. }),
            "seed {seed}: a run that lost its disks passed: {verdict:?}"
        );
        // Rejected on keys whose every operation has a known effect, too.
        let mut by_key: BTreeMap<&str, Vec<&check::Operation>> = BTreeMap::new();
        for operation in &run.history {
            by_key.entry(operation.op.key()).or_default().push(operation);
        }
        let rejected = by_key
            .iter()
            .filter(|(_, ops)| !ops.iter().any(|o| matches!(o.op, check::Op::Append { .. })))
            .filter(|(key, ops)| {
                let verdict = check::check_key(key, ops, &check::Budget::default());
                matches!(verdict, check::Verdict::NotLinearizable { .. })
            })
            .count();
        assert!(rejected > 0, "seed {seed}: no key without lost increments was rejected");
    }
}

/// Goal: idle groups hibernate, and a partition of the node leading most
/// of them does not leave them stranded: the other replicas notice the
/// silence, elect leaders among themselves and serve writes in bounded
/// time; the cut-off leader serves nothing stale, and once the partition
/// heals its replicas converge without losing a write.
fn hibernating_groups_survive_a_partition_of_their_leader<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::sharded(3, 12, 3, false, build);
    cluster.elect_all();
    let topology = cluster.topology.clone().unwrap();
    // One key per group.
    let mut keys: BTreeMap<GroupId, String> = BTreeMap::new();
    for i in 0.. {
        if keys.len() == topology.shards.len() {
            break;
        }
        assert!(i < 10_000, "no key for some group");
        let key = format!("h:{i}");
        keys.entry(topology.group_of_slot(placement::key_slot(key.as_bytes()))).or_insert(key);
    }
    for (n, key) in keys.values().enumerate() {
        assert_eq!(cluster.call(1 + n as u64 % 3, &["SET", key, "before"]), Frame::ok());
    }
    // Leaders settle, then every group goes quiet.
    cluster.tick(400);
    let before = cluster.consensus_delivered;
    cluster.tick(200);
    assert_eq!(cluster.consensus_delivered, before, "idle groups still exchange messages");
    for node in cluster.nodes.values() {
        for group in node.groups() {
            assert!(node.is_group_hibernating(group), "n{} g{group} is awake", node.id());
        }
    }
    let leads = leaders_per_node(&cluster);
    let (&cut, &led) =
        leads.iter().max_by_key(|(node, led)| (**led, std::cmp::Reverse(**node))).unwrap();
    assert!(led > 0, "{leads:?}");
    let others: Vec<NodeId> = (1..=3).filter(|&n| n != cut).collect();
    cluster.isolated.insert(cut);
    // Every group elects a leader on the majority side.
    let mut waited = 0;
    loop {
        cluster.tick(1);
        waited += 1;
        let led_by_others: BTreeSet<GroupId> = others
            .iter()
            .flat_map(|node| cluster.nodes[node].shard_statuses())
            .filter(|(_, status)| status.role == consensus::Role::Leader)
            .map(|(group, _)| group)
            .collect();
        if led_by_others.len() == topology.shards.len() {
            break;
        }
        assert!(waited < 150, "after {waited} ticks only {led_by_others:?} have a leader");
    }
    // Each serves a write submitted on the majority side, in bounded time.
    let requests: Vec<(GroupId, RequestId)> = keys
        .iter()
        .enumerate()
        .map(|(n, (group, key))| {
            let command = Command::Execute(args(&["SET", key, "during"]));
            (*group, cluster.submit(others[n % 2], command))
        })
        .collect();
    for (group, request) in requests {
        let mut waited = 0;
        while !cluster.replies.contains_key(&request) {
            cluster.tick(1);
            waited += 1;
            assert!(waited < 50, "group {group}: the write took too long");
        }
        assert_eq!(cluster.replies.remove(&request), Some(Frame::ok()), "group {group}");
    }
    // The cut-off node neither reads the old values nor applies writes.
    let stale: Vec<(GroupId, RequestId, RequestId)> = keys
        .iter()
        .map(|(group, key)| {
            let read = cluster.submit(cut, Command::Execute(args(&["GET", key])));
            let write = cluster.submit(cut, Command::Execute(args(&["SET", key, "cut"])));
            (*group, read, write)
        })
        .collect();
    for (group, read, write) in stale {
        for request in [read, write] {
            let reply = cluster.wait(request);
            let Frame::Error(text) = &reply else {
                panic!("group {group}: the cut-off node answered {reply:?}")
            };
            assert!(text.starts_with("CLUSTERDOWN"), "group {group}: {text}");
        }
    }
    // The partition heals: the old leader's replicas catch up.
    cluster.isolated.clear();
    assert_replicas_converge(&mut cluster, "after the partition");
    for (n, key) in keys.values().enumerate() {
        let node = [cut, others[0], others[1]][n % 3];
        assert_eq!(cluster.call(node, &["GET", key]), Frame::bulk("during"), "{key} via n{node}");
    }
}

/// Goal: a node that leads hibernating groups and restarts faster than
/// its followers notice its silence does not leave those groups
/// leaderless: after the restart its replicas are followers, so the groups
/// must elect a leader again, with no client command to wake them.
///
/// The restarted node sends its (empty) `Quiesce` every heartbeat, so
/// followers hibernating with it as their leader kept hearing from its node
/// and never ticked; they rejected its pre-votes as long as they believed in
/// their leader, and the group stayed leaderless until a command reached it
/// (found by `sharded_registers_stay_linearizable_through_faults` when every
/// crashed node restarted at once: raft seed 34, n4 down for 3 ticks, its
/// group 7 stranded; paxos seed 49, n1 down for 2 ticks, group 8 stranded).
/// Its next `Hello`, which lists the groups it leads, now wakes them.
fn a_leader_node_restarted_quickly_does_not_strand_its_hibernating_groups<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::sharded(3, 3, 3, false, build);
    cluster.elect_all();
    assert_eq!(cluster.call(1, &["SET", "k", "v"]), Frame::ok());
    cluster.tick(400);
    for node in cluster.nodes.values() {
        for group in node.groups() {
            assert!(node.is_group_hibernating(group), "n{} g{group} is awake", node.id());
        }
    }
    let (group, leader) = slot_leader(&cluster, "k");
    cluster.crash(leader);
    cluster.tick(2);
    cluster.start(leader, 3);
    cluster.tick(300);
    for node in cluster.nodes.values() {
        let statuses = node.shard_statuses();
        let (_, status) = statuses.iter().find(|(g, _)| *g == group).expect("hosted");
        let Some(known) = status.leader else {
            panic!("n{} knows no leader of group {group}: {:?}", node.id(), status.role)
        };
        let (_, led) = cluster.nodes[&known]
            .shard_statuses()
            .into_iter()
            .find(|(g, _)| *g == group)
            .expect("hosted");
        assert_eq!(
            led.role,
            consensus::Role::Leader,
            "n{} follows n{known} in group {group}, which does not lead it",
            node.id()
        );
    }
    assert_eq!(cluster.call(leader, &["GET", "k"]), Frame::bulk("v"));
}

/// Goal: a cluster-mode SCAN (over the shards the node leads) returns every
/// key of the shards it leads throughout, even when leadership of another
/// shard moves between two calls (the cursor names shards by id).
fn a_cluster_mode_scan_survives_a_leadership_change_between_calls<E: Engine>(build: Build<E>) {
    let mut cluster = Cluster::sharded(3, 6, 3, true, build);
    cluster.elect_all();
    cluster.tick(400);
    let topology = cluster.topology.clone().unwrap();
    for i in 0..90 {
        let key = format!("scan:{i}");
        assert_eq!(cluster.call_following(1, &["SET", &key, "v"]), Frame::ok());
    }
    let led: Vec<GroupId> = cluster.nodes[&1]
        .shard_statuses()
        .iter()
        .filter(|(_, status)| status.role == consensus::Role::Leader)
        .map(|(group, _)| *group)
        .collect();
    assert!(led.len() >= 2, "node 1 leads {led:?}");
    let moved = led[0];
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    for round in 0.. {
        assert!(round < 1_000, "SCAN never ends");
        let Frame::Array(reply) = cluster.call(1, &["SCAN", &cursor, "COUNT", "2"]) else {
            panic!("SCAN")
        };
        let (Frame::Bulk(next), Frame::Array(names)) = (&reply[0], &reply[1]) else {
            panic!("SCAN reply {reply:?}")
        };
        for name in names {
            let Frame::Bulk(name) = name else { panic!("name {name:?}") };
            seen.insert(String::from_utf8(name.to_vec()).unwrap());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if round == 0 {
            // Node 1 gives up the first shard it leads, mid-scan.
            let target = topology.shards[&moved].iter().copied().find(|&n| n != 1).unwrap();
            let now = cluster.now_ms;
            cluster.nodes.get_mut(&1).unwrap().transfer_leadership(moved, target, now);
            cluster.flush(1);
            cluster.deliver_all();
            cluster.tick(30);
        }
        if cursor == "0" {
            break;
        }
    }
    for i in 0..90 {
        let key = format!("scan:{i}");
        let group = topology.group_of_slot(placement::key_slot(key.as_bytes()));
        if led.contains(&group) && group != moved {
            assert!(seen.contains(&key), "SCAN missed {key} (group {group})");
        }
    }
}

/// Goal: a replica read asks one leader for its read index, leadership
/// moves, it asks the next one; the first leader's answer arrives late,
/// after the second's, while the replica still waits to apply. The late
/// index must not reach the client as the value (it did: a GET answered
/// with an integer).
fn a_late_read_index_from_an_earlier_leader_is_not_a_replica_reads_value<E: Engine>(
    build: Build<E>,
) {
    let mut cluster = Cluster::sharded(3, 3, 3, true, build);
    cluster.elect_all();
    cluster.tick(400);
    assert_eq!(cluster.call_following(1, &["SET", "k", "v"]), Frame::ok());
    let (group, leader) = slot_leader(&cluster, "k");
    let reader = (1..=3).find(|&n| n != leader).unwrap();
    let next_leader = (1..=3).find(|&n| n != leader && n != reader).unwrap();
    cluster.next_request += 1;
    let request = cluster.next_request;
    let now = cluster.now_ms;
    let command = Command::Execute(args(&["GET", "k"]));
    cluster.nodes.get_mut(&reader).unwrap().submit_with(request, command, true, now);
    cluster.flush(reader);
    // Deliver everything but the first leader's answer to the reader.
    let is_answer = |from: NodeId, to: NodeId, message: &PeerMessage<E::Message>| {
        from != reader
            && to == reader
            && matches!(message, PeerMessage::Reply { request: r, .. } if *r == request)
    };
    let mut late = None;
    while let Some((from, to, message)) = cluster.network.pop_front() {
        if late.is_none() && is_answer(from, to, &message) {
            late = Some((from, message));
            continue;
        }
        let now = cluster.now_ms;
        cluster.nodes.get_mut(&to).unwrap().receive(from, message, now);
        cluster.flush(to);
    }
    let (late_from, late) = late.expect("the first leader answered the read index");
    assert_eq!(late_from, leader);
    // Leadership moves; the reader asks the new leader, whose answer comes
    // first; the old answer arrives right after it.
    let now = cluster.now_ms;
    cluster.nodes.get_mut(&leader).unwrap().transfer_leadership(group, next_leader, now);
    cluster.flush(leader);
    let mut late = Some(late);
    for _ in 0..100 {
        while let Some((from, to, message)) = cluster.network.pop_front() {
            let answer = is_answer(from, to, &message);
            let now = cluster.now_ms;
            cluster.nodes.get_mut(&to).unwrap().receive(from, message, now);
            cluster.flush(to);
            if answer {
                if let Some(late) = late.take() {
                    cluster.nodes.get_mut(&reader).unwrap().receive(leader, late, now);
                    cluster.flush(reader);
                }
            }
        }
        if cluster.replies.contains_key(&request) {
            break;
        }
        cluster.tick(1);
    }
    assert!(late.is_none(), "the new leader never answered the read index");
    assert_eq!(cluster.replies.remove(&request), Some(Frame::bulk("v")));
}

macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn raft() {
                    super::$name(super::Raft::new);
                }

                #[test]
                fn paxos() {
                    super::$name(super::Paxos::new);
                }
            }
        )*
    };
}

both_engines!(
    a_late_read_index_from_an_earlier_leader_is_not_a_replica_reads_value,
    a_cluster_mode_scan_survives_a_leadership_change_between_calls,
    cluster_mode_registers_and_replica_reads_stay_linearizable_through_faults,
    a_leader_node_restarted_quickly_does_not_strand_its_hibernating_groups,
    sharded_registers_stay_linearizable_through_faults,
    the_register_checker_rejects_broken_histories_and_runs,
    hibernating_groups_survive_a_partition_of_their_leader,
    a_write_reaching_a_leader_that_is_handing_over_waits_for_the_new_leader,
    idle_groups_hibernate_and_wake_on_a_command_or_a_dead_leader,
    sessions_span_every_shard_of_a_sharded_cluster,
    leaders_spread_to_preferred_nodes_and_return_after_a_node_restarts,
    a_sharded_cluster_spreads_keys_over_shards_and_serves_them_from_any_node,
    cluster_mode_redirects_to_the_slot_leader_and_readonly_reads_from_replicas,
    a_new_node_joins_catches_up_and_becomes_a_voter,
    a_sequenced_blocking_pop_retried_after_it_was_served_gets_the_same_element,
    stream_groups_deliver_every_acknowledged_entry_through_faults,
    a_single_node_serves_writes_and_linearizable_reads,
    any_node_accepts_any_command_and_followers_forward_to_the_leader,
    a_blocked_pop_is_woken_by_a_push_on_another_node,
    blocked_pops_are_served_oldest_first_and_time_out_with_a_null_array,
    without_a_leader_a_command_fails_with_clusterdown_after_the_timeout,
    writes_survive_the_loss_of_the_leader,
    expired_keys_are_invisible_then_purged_by_the_leader,
    transactions_apply_atomically_and_abort_on_a_changed_watched_key,
    a_lock_waiter_on_a_follower_is_granted_when_the_holder_releases,
    a_lock_wait_that_times_out_is_withdrawn_and_answered_null,
    an_expired_lease_passes_to_the_waiter_without_other_traffic,
    a_retried_sequenced_write_applies_once_even_through_a_new_leader,
    an_observer_sees_the_next_elected_leader,
    sequenced_increments_through_faults_are_applied_exactly_once,
    fenced_writes_of_contending_lock_holders_land_in_token_order,
);
