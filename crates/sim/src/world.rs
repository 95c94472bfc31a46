//! One simulated run: replicas, their disks, the network, clients and the
//! fault injector, driven by a single event queue in simulated milliseconds.
//!
//! # The disk model
//!
//! Each replica's disk is the real write-ahead log of the `storage` crate
//! ([`Wal`], one group, id 1) over its deterministic in-memory disk
//! ([`SimFs`]). A replica takes a `Ready`, queues its write and advances the
//! engine at once, but the write's messages, applies and reads are held until
//! the write is durable (driver rule 4 of the consensus crate). Writes
//! complete in order, each 1–3 ms after the one before it or together with
//! it. The writes completing at one instant form a batch: they are appended
//! to the log and made durable by one `Wal::sync` (group commit). Local
//! compactions go through `Wal::save_snapshot`, durable at the next sync; now
//! and then `Wal::compact` deletes obsolete segments.
//!
//! A crash first lets the disk finish a random prefix of the queued writes,
//! sync included (durable, but their messages never left: the "crash between
//! persist and send" case). The rest reach the log unsynced, and the disk
//! then keeps what a power failure would (`SimFs::crash` with a tear seeded
//! from the run's generator): everything synced plus a random-length prefix
//! of the unsynced bytes, so the next write may survive whole or torn at a
//! record boundary and the rest vanish. Memory (the engine, the state
//! machine) is lost entirely; the restarted replica is rebuilt from what
//! `Wal::open` recovers from the crashed disk.
//!
//! Alongside the log, each replica keeps the reference model
//! ([`Durable::persist`]) of exactly the writes that were synced; on every
//! recovery the invariant "storage recovers exactly what was synced"
//! ([`Invariants::check_recovery`]) compares the two.
//!
//! Rarely, a sync fails (`SimFs::fail_syncs`). The log is then poisoned and
//! the replica stops (fail-stop, as the server does): the failed batch is
//! never acknowledged, the disk is treated as crashed, and the replica stays
//! down until the healing phase restarts it.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use check::{Op, Operation, Outcome};
use consensus::rng::Rng;
use consensus::{
    Durable, Engine, Entry, HardState, Index, Membership, MembershipChange, Message, NodeId,
    Options, Payload, ReadState, Role, Snapshot, Term,
};
use storage::{GroupId, Persist, SimFs, StorageError, Tear, Wal, WalOptions};

use crate::invariants::{describe_durable, DiskStep, Invariants, LogView};
use crate::kv::{Fnv, Request, Store};
use crate::network::{Conditions, Network, Shape};
use crate::{Config, Report, Stats};

/// Formats and prints a trace line only when tracing is on.
macro_rules! trace {
    ($world:expr, $($argument:tt)*) => {
        if $world.config.trace {
            let line = format!($($argument)*);
            $world.emit_line(line);
        }
    };
}

/// How an engine is built; every engine offers this constructor shape.
pub type Build<E> = fn(Options, Membership, Durable) -> E;

const TICK_MS_MIN: u64 = 9;
const TICK_MS_MAX: u64 = 11;
const FAULT_PERIOD_MS: u64 = 50;
const CLIENT_ATTEMPT_TIMEOUT_MS: u64 = 150;
const CLIENT_GIVE_UP_MS: u64 = 1_500;
const LOG_MATCHING_PERIOD_MS: u64 = 100;
/// The group id of the simulated replica in its write-ahead log.
const GROUP: GroupId = 1;
/// During the fault phase, one batch sync in this many fails (fail-stop).
const SYNC_FAILURE_ODDS: u64 = 4_000;
/// Segments are small so that rotation and compaction run often; the size
/// is drawn per run in this range.
const SEGMENT_BYTES_MIN: u64 = 2 << 10;
const SEGMENT_BYTES_MAX: u64 = 16 << 10;
/// Beyond this many segments, a local compaction also compacts the log.
const SEGMENTS_KEPT_MAX: usize = 4;

#[derive(Clone, Debug)]
struct Route {
    client: u64,
    sequence: u64,
    attempt: u64,
}

#[derive(Clone, Debug)]
enum Reply {
    Done(Outcome),
    Retry { leader: Option<NodeId> },
}

#[derive(Clone, Debug)]
struct ClientRequest {
    route: Route,
    op: Op,
    via_log: bool,
}

enum Event<M> {
    Tick { node: NodeId, incarnation: u64 },
    Deliver { message: M },
    DiskDone { node: NodeId, incarnation: u64 },
    Request { node: NodeId, request: ClientRequest },
    Reply { client: u64, sequence: u64, attempt: u64, reply: Reply },
    ClientTimeout { client: u64, sequence: u64, attempt: u64 },
    ClientStart { client: u64 },
    Fault,
    Restart { node: NodeId },
    EndPartition { generation: u64 },
    CheckLogs,
    Heal,
    StopClients,
    KillLeader,
}

struct Scheduled<M> {
    time: u64,
    order: u64,
    event: Event<M>,
}

impl<M> PartialEq for Scheduled<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.order) == (other.time, other.order)
    }
}
impl<M> Eq for Scheduled<M> {}
impl<M> PartialOrd for Scheduled<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Scheduled<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.order).cmp(&(other.time, other.order))
    }
}

struct Write<M> {
    done_at: u64,
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    messages: Vec<M>,
    committed: Vec<Entry>,
    reads: Vec<ReadState>,
    aborted_reads: Vec<u64>,
}

struct Node<E: Engine> {
    id: NodeId,
    engine: Option<E>,
    incarnation: u64,
    tick_ms: u64,
    /// The replica's disk; a handle shared with `wal`, kept to crash it.
    fs: SimFs,
    wal: Wal<SimFs>,
    /// The reference model of exactly the writes that were synced.
    durable: Durable,
    /// Steps written to the log since its last sync (local compactions).
    unsynced: Vec<DiskStep>,
    /// What the log recovered when last opened; the next start builds the
    /// engine from it.
    recovered: Durable,
    /// A sync failed: the replica stays down until the healing phase.
    fail_stopped: bool,
    writes: VecDeque<Write<E::Message>>,
    store: Store,
    /// Membership and term as of the last applied entry, for snapshots.
    applied_membership: Membership,
    applied_term: Term,
    proposals: BTreeMap<Index, (Term, Route)>,
    reads: BTreeMap<u64, (Route, String)>,
    confirmed_reads: Vec<(Index, Route, String)>,
    next_read_context: u64,
    commit_seen: Index,
    led_term: Term,
}

struct Current {
    op: Op,
    sequence: u64,
    attempt: u64,
    invoked_at: u64,
    history_index: usize,
    via_log: bool,
}

struct Client {
    id: u64,
    sequence: u64,
    current: Option<Current>,
    target: NodeId,
    stopped: bool,
    served_after_heal: bool,
    last_seen: BTreeMap<String, Option<String>>,
}

pub struct World<E: Engine> {
    config: Config,
    build: Build<E>,
    rng: Rng,
    now: u64,
    order: u64,
    queue: BinaryHeap<Reverse<Scheduled<E::Message>>>,
    nodes: BTreeMap<NodeId, Node<E>>,
    founding: Membership,
    clients: Vec<Client>,
    history: Vec<Operation>,
    network: Network,
    conditions: Conditions,
    fault_conditions: Conditions,
    partition_generation: u64,
    healing: bool,
    heal_at: u64,
    keys: Vec<String>,
    snapshot_every: u64,
    wal_options: WalOptions,
    invariants: Invariants,
    /// The highest log index of a committed client command.
    max_command_index: u64,
    /// When the benchmark killed the leader, and the command index then.
    killed_at: Option<(u64, u64)>,
    trace: Fnv,
    stats: Stats,
}

impl<E: Engine> World<E> {
    pub fn new(config: Config, build: Build<E>) -> World<E> {
        let mut rng = Rng::new(config.seed);
        let node_count = config.nodes.unwrap_or_else(|| rng.range(3, 8) as usize);
        let founding = Membership::with_voters(1..=node_count as u64);
        let fault_conditions = if config.faults.network {
            let delay_ms_max = rng.range(2, 16);
            Conditions {
                drop_probability: *rng.choose(&[0.0, 0.01, 0.05, 0.1]).expect("choices"),
                duplicate_probability: *rng.choose(&[0.0, 0.01, 0.05]).expect("choices"),
                delay_ms_min: 1,
                delay_ms_max,
                long_delay_probability: *rng.choose(&[0.0, 0.01, 0.03]).expect("choices"),
                long_delay_ms_max: 300,
            }
        } else {
            Conditions::calm()
        };
        let key_count = rng.range(1, 6);
        let keys = (0..key_count).map(|k| format!("k{k}")).collect();
        let snapshot_every = rng.range(10, 120);
        let wal_options = WalOptions {
            segment_bytes_max: rng.range(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX + 1),
            ..WalOptions::default()
        };
        let clients = (0..config.clients as u64)
            .map(|id| Client {
                id: id + 1,
                sequence: 0,
                current: None,
                target: rng.range(1, node_count as u64 + 1),
                stopped: false,
                served_after_heal: false,
                last_seen: BTreeMap::new(),
            })
            .collect();
        let heal_at = config.fault_ms;
        let mut world = World {
            build,
            rng,
            now: 0,
            order: 0,
            queue: BinaryHeap::new(),
            nodes: BTreeMap::new(),
            founding,
            clients,
            history: Vec::new(),
            network: Network::default(),
            conditions: fault_conditions.clone(),
            fault_conditions,
            partition_generation: 0,
            healing: false,
            heal_at,
            keys,
            snapshot_every,
            wal_options,
            invariants: Invariants::default(),
            max_command_index: 0,
            killed_at: None,
            trace: Fnv::new(),
            stats: Stats::default(),
            config,
        };
        for id in 1..=node_count as u64 {
            let tick_ms = world.rng.range(TICK_MS_MIN, TICK_MS_MAX + 1);
            let fs = SimFs::new();
            let (wal, recovered) =
                Wal::open(fs.clone(), world.wal_options.clone()).expect("an empty disk opens");
            assert!(recovered.groups.is_empty(), "a new disk holds nothing");
            let node = Node {
                id,
                engine: None,
                incarnation: 0,
                tick_ms,
                fs,
                wal,
                durable: Durable::default(),
                unsynced: Vec::new(),
                recovered: Durable::default(),
                fail_stopped: false,
                writes: VecDeque::new(),
                store: Store::default(),
                applied_membership: world.founding.clone(),
                applied_term: 0,
                proposals: BTreeMap::new(),
                reads: BTreeMap::new(),
                confirmed_reads: Vec::new(),
                next_read_context: 0,
                commit_seen: 0,
                led_term: 0,
            };
            world.nodes.insert(id, node);
            world.start(id);
        }
        trace!(
            world,
            "seed {} nodes {} keys {} snapshot every {} network {:?}",
            world.config.seed,
            node_count,
            key_count,
            world.snapshot_every,
            world.conditions
        );
        for client in 0..world.clients.len() as u64 {
            let delay = world.rng.range(0, 20);
            world.schedule(delay, Event::ClientStart { client: client + 1 });
        }
        world.schedule(FAULT_PERIOD_MS, Event::Fault);
        world.schedule(LOG_MATCHING_PERIOD_MS, Event::CheckLogs);
        world.schedule(heal_at, Event::Heal);
        if let Some(at) = world.config.kill_leader_at_ms {
            world.schedule(at, Event::KillLeader);
        }
        let stop_at = heal_at + world.config.heal_ms * 6 / 10;
        world.schedule(stop_at, Event::StopClients);
        world
    }

    fn schedule(&mut self, delay_ms: u64, event: Event<E::Message>) {
        self.order += 1;
        let scheduled = Scheduled { time: self.now + delay_ms, order: self.order, event };
        self.queue.push(Reverse(scheduled));
    }

    /// Prints a trace line (only called when tracing; see `trace!`).
    fn emit_line(&mut self, line: String) {
        println!("{:>7} {line}", self.now);
    }

    fn record(&mut self, fields: &[u64]) {
        self.trace.write_u64(self.now);
        for field in fields {
            self.trace.write_u64(*field);
        }
    }

    pub fn run(mut self) -> Report {
        let end = self.config.fault_ms + self.config.heal_ms;
        while let Some(Reverse(scheduled)) = self.queue.pop() {
            if scheduled.time > end {
                break;
            }
            self.now = scheduled.time;
            self.stats.events += 1;
            self.handle(scheduled.event);
            if self.invariants.violation.is_some() {
                break;
            }
        }
        self.now = end;
        self.finish()
    }

    fn handle(&mut self, event: Event<E::Message>) {
        match event {
            Event::Tick { node, incarnation } => {
                let Some(state) = self.nodes.get_mut(&node) else { return };
                if state.incarnation != incarnation {
                    return;
                }
                if let Some(engine) = state.engine.as_mut() {
                    engine.tick();
                    let tick_ms = state.tick_ms;
                    self.schedule(tick_ms, Event::Tick { node, incarnation });
                    self.drive(node);
                }
            }
            Event::Deliver { message } => {
                let (from, to) = (message.from(), message.to());
                if self.network.is_blocked(from, to) {
                    return;
                }
                self.record(&[1, from, to]);
                if self.config.trace {
                    trace!(self, "deliver {message:?}");
                }
                let Some(node) = self.nodes.get_mut(&to) else { return };
                if let Some(engine) = node.engine.as_mut() {
                    engine.step(message);
                    self.drive(to);
                }
            }
            Event::DiskDone { node, incarnation } => {
                if self.nodes[&node].incarnation == incarnation {
                    self.complete_writes(node);
                }
            }
            Event::Request { node, request } => self.serve_request(node, request),
            Event::Reply { client, sequence, attempt, reply } => {
                self.client_reply(client, sequence, attempt, reply)
            }
            Event::ClientTimeout { client, sequence, attempt } => {
                let index = (client - 1) as usize;
                let matches = self.clients[index]
                    .current
                    .as_ref()
                    .is_some_and(|c| c.sequence == sequence && c.attempt == attempt);
                if matches {
                    let target = self.rng.range(1, self.nodes.len() as u64 + 1);
                    self.client_retry(client, target);
                }
            }
            Event::ClientStart { client } => self.client_start(client),
            Event::Fault => {
                if !self.healing {
                    self.inject_fault();
                    self.schedule(FAULT_PERIOD_MS, Event::Fault);
                }
            }
            Event::Restart { node } => {
                let state = &self.nodes[&node];
                if state.engine.is_none() && !state.fail_stopped {
                    self.start(node);
                }
            }
            Event::EndPartition { generation } => {
                if generation == self.partition_generation && !self.healing {
                    self.network.heal();
                    trace!(self, "partition ends");
                }
            }
            Event::CheckLogs => {
                self.check_log_matching();
                self.schedule(LOG_MATCHING_PERIOD_MS, Event::CheckLogs);
            }
            Event::Heal => {
                self.healing = true;
                self.network.heal();
                self.conditions = Conditions::calm();
                trace!(self, "heal: network calm, every node restarted");
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                for id in ids {
                    if self.nodes[&id].engine.is_none() {
                        self.start(id);
                    }
                }
            }
            Event::KillLeader => {
                if let Some(leader) = self.leader() {
                    self.crash(leader);
                    self.killed_at = Some((self.now, self.max_command_index));
                    trace!(self, "benchmark: n{leader} killed");
                }
            }
            Event::StopClients => {
                for client in &mut self.clients {
                    client.stopped = true;
                }
            }
        }
    }

    // ----- replicas -------------------------------------------------------

    fn start(&mut self, id: NodeId) {
        let seed = self.config.seed;
        let node = self.nodes.get_mut(&id).expect("node");
        node.incarnation += 1;
        let mut options = Options::new(id);
        options.seed = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (node.incarnation << 48);
        options.snapshot_chunk_bytes = 512;
        options.inflight_appends_max = 1 + (seed % 8) as usize;
        options.append_entries_max = 1 + (seed % 16) as usize;
        options.bug = self.config.bug;
        // Built from what the log recovered, never from the model.
        let recovered = std::mem::take(&mut node.recovered);
        node.fail_stopped = false;
        node.store = match &recovered.snapshot {
            Some(snapshot) => Store::decode(&snapshot.data),
            None => Store::default(),
        };
        (node.applied_membership, node.applied_term) = match &recovered.snapshot {
            Some(snapshot) => (snapshot.membership.clone(), snapshot.term),
            None => (self.founding.clone(), 0),
        };
        node.engine = Some((self.build)(options, self.founding.clone(), recovered));
        node.commit_seen = 0;
        node.led_term = 0;
        let (incarnation, tick_ms) = (node.incarnation, node.tick_ms);
        self.record(&[2, id, incarnation]);
        trace!(self, "n{id} starts (incarnation {incarnation})");
        let phase = self.rng.range(1, tick_ms + 1);
        self.schedule(phase, Event::Tick { node: id, incarnation });
        self.drive(id);
    }

    /// Memory is lost: the engine, the state machine and what waits on them.
    fn lose_memory(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        node.engine = None;
        node.incarnation += 1;
        node.proposals.clear();
        node.reads.clear();
        node.confirmed_reads.clear();
        self.stats.crashes += 1;
    }

    fn crash(&mut self, id: NodeId) {
        if self.nodes[&id].engine.is_none() {
            return;
        }
        self.lose_memory(id);
        // The disk may have finished a prefix of the queued writes, sync
        // included, before the process died: durable, but their messages
        // never left (the "crash between persist and send" case).
        let queued = self.nodes[&id].writes.len() as u64;
        let finished_count = if queued == 0 { 0 } else { self.rng.range(0, queued + 1) as usize };
        let node = self.nodes.get_mut(&id).expect("node");
        let finished: Vec<_> = node.writes.drain(..finished_count).collect();
        if !finished.is_empty() {
            for write in &finished {
                node.wal
                    .append(GROUP, write_persist(write))
                    .expect("a simulated write fits the log");
            }
            node.wal.sync().expect("only injected sync failures fail");
            self.acknowledge_unsynced(id);
            let node = self.nodes.get_mut(&id).expect("node");
            for write in finished {
                node.durable.persist(write.snapshot, write.entries, write.hard_state);
            }
        }
        // The rest reach the file but are never synced: the crash may keep
        // any prefix of their bytes, tearing the records it cuts.
        let node = self.nodes.get_mut(&id).expect("node");
        let mut written = std::mem::take(&mut node.unsynced);
        for write in node.writes.drain(..) {
            node.wal.append(GROUP, write_persist(&write)).expect("a simulated write fits the log");
            written.extend(DiskStep::of_write(write.snapshot, write.entries, write.hard_state));
        }
        node.wal.flush(false).expect("the simulated disk takes unsynced writes");
        let outcome = self.recover_disk(id, &written);
        self.record(&[3, id]);
        trace!(
            self,
            "n{id} CRASHES with {queued} queued writes, {finished_count} of them synced: {outcome}"
        );
    }

    /// The disk after a power failure, recovered by `Wal::open`, checked
    /// against the model of the synced writes plus `written` (the steps
    /// written since the last sync). Describes what survived.
    fn recover_disk(&mut self, id: NodeId, written: &[DiskStep]) -> String {
        let tear = Tear::Seeded(self.rng.next_u64());
        let node = self.nodes.get_mut(&id).expect("node");
        let crashed = node.fs.crash(tear);
        let (wal, recovered) = match Wal::open(crashed.clone(), self.wal_options.clone()) {
            Ok(opened) => opened,
            Err(error) => {
                let message = format!(
                    "storage recovers exactly what was synced: the log of n{id} does not open \
                     after a crash: {error}"
                );
                self.invariants.violation.get_or_insert(message.clone());
                return message;
            }
        };
        let durable = recovered.groups.get(&GROUP).cloned().unwrap_or_default();
        let survived = self.invariants.check_recovery(id, &node.durable, written, &durable);
        let description = format!(
            "{survived:?} of {} unsynced records survive, torn tail {:?}, recovered [{}]",
            written.len(),
            recovered.torn_tail.map(|torn| (torn.offset, torn.truncated_bytes)),
            describe_durable(&durable)
        );
        node.fs = crashed;
        node.wal = wal;
        node.durable = durable.clone();
        node.recovered = durable;
        node.unsynced.clear();
        description
    }

    /// A failed sync poisons the log: the replica stops and stays down until
    /// healing. `batch` was appended but never acknowledged; later queued
    /// writes never reach the poisoned log.
    fn fail_stop(&mut self, id: NodeId, error: StorageError, batch: Vec<Write<E::Message>>) {
        self.lose_memory(id);
        let node = self.nodes.get_mut(&id).expect("node");
        node.fail_stopped = true;
        node.writes.clear();
        let mut written = std::mem::take(&mut node.unsynced);
        for write in batch {
            written.extend(DiskStep::of_write(write.snapshot, write.entries, write.hard_state));
        }
        let outcome = self.recover_disk(id, &written);
        self.record(&[6, id]);
        trace!(self, "n{id} STOPS after a failed sync ({error}): {outcome}");
    }

    /// Takes every `Ready` the engine has and queues its write.
    fn drive(&mut self, id: NodeId) {
        loop {
            let node = self.nodes.get_mut(&id).expect("node");
            let Some(engine) = node.engine.as_mut() else { return };
            if !engine.has_ready() {
                break;
            }
            let ready = engine.ready();
            engine.advance();
            // Writes complete in order, each 1–3 ms after the one before
            // it, or together with it (one fsync for both: group commit).
            let last_done_at = node.writes.back().map(|write| write.done_at);
            let latency = match last_done_at {
                Some(_) => self.rng.range(0, 4),
                None => self.rng.range(1, 4),
            };
            let done_at = last_done_at.map_or(self.now, |last| last.max(self.now)) + latency;
            let new_batch = last_done_at != Some(done_at);
            let incarnation = node.incarnation;
            node.writes.push_back(Write {
                done_at,
                hard_state: ready.hard_state,
                snapshot: ready.snapshot,
                entries: ready.entries,
                messages: ready.messages,
                committed: ready.committed,
                reads: ready.reads,
                aborted_reads: ready.aborted_reads,
            });
            if new_batch {
                let delay = done_at - self.now;
                self.schedule(delay, Event::DiskDone { node: id, incarnation });
            }
        }
        self.observe_status(id);
    }

    fn observe_status(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(engine) = node.engine.as_ref() else { return };
        let status = engine.status();
        if status.commit < node.commit_seen {
            let message = format!(
                "commit index of n{id} went back from {} to {}",
                node.commit_seen, status.commit
            );
            self.invariants.violation.get_or_insert(message);
        }
        node.commit_seen = status.commit;
        if status.role != Role::Leader || node.led_term == status.term {
            return;
        }
        node.led_term = status.term;
        if self.invariants.observe_leader(id, status.term) {
            self.stats.elections += 1;
            let mut log = node.durable.clone();
            for write in &node.writes {
                log.persist(write.snapshot.clone(), write.entries.clone(), None);
            }
            let view = log_view(&log);
            self.invariants.check_leader_completeness(id, status.term, &view);
            self.record(&[4, id, status.term]);
            trace!(self, "n{id} leads term {}", status.term);
        }
    }

    /// Completes every write of the batch due now: appends them to the log,
    /// one sync for all, then releases their messages, applies and reads.
    fn complete_writes(&mut self, id: NodeId) {
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("node");
        let mut batch = Vec::new();
        while node.writes.front().is_some_and(|write| write.done_at <= now) {
            batch.push(node.writes.pop_front().expect("a queued write"));
        }
        let mut durable_commit = node.durable.hard_state.commit;
        for write in &batch {
            if let Some(hard_state) = &write.hard_state {
                if hard_state.commit < durable_commit {
                    let message = format!(
                        "durable commit of n{id} went back from {durable_commit} to {}",
                        hard_state.commit
                    );
                    self.invariants.violation.get_or_insert(message);
                    return;
                }
                durable_commit = hard_state.commit;
            }
            node.wal.append(GROUP, write_persist(write)).expect("a simulated write fits the log");
        }
        let sync_fails =
            !self.healing && self.config.faults.crashes && self.rng.chance(1, SYNC_FAILURE_ODDS);
        let node = self.nodes.get_mut(&id).expect("node");
        if sync_fails {
            node.fs.fail_syncs(true);
        }
        let synced = node.wal.sync();
        self.stats.syncs += 1;
        if sync_fails {
            // Only this sync fails; the poisoned log refuses the rest anyway.
            node.fs.fail_syncs(false);
        }
        if let Err(error) = synced {
            self.fail_stop(id, error, batch);
            return;
        }
        self.acknowledge_unsynced(id);
        let node = self.nodes.get_mut(&id).expect("node");
        for write in &mut batch {
            let (snapshot, entries) = (write.snapshot.clone(), std::mem::take(&mut write.entries));
            node.durable.persist(snapshot, entries, write.hard_state.take());
        }
        for write in batch {
            self.release_write(id, write);
        }
        self.serve_confirmed_reads(id);
        self.maybe_compact(id);
    }

    /// The log was synced: what it held unsynced is in the model now.
    fn acknowledge_unsynced(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        for step in std::mem::take(&mut node.unsynced) {
            step.apply(&mut node.durable);
        }
    }

    /// A durable write's effects: its messages leave, its snapshot is
    /// installed, its committed entries applied and its reads confirmed.
    fn release_write(&mut self, id: NodeId, write: Write<E::Message>) {
        for message in write.messages {
            self.send(message);
        }
        if let Some(snapshot) = write.snapshot {
            let node = self.nodes.get_mut(&id).expect("node");
            node.store = Store::decode(&snapshot.data);
            assert_eq!(node.store.applied, snapshot.index, "snapshot image at its index");
            node.applied_membership = snapshot.membership.clone();
            node.applied_term = snapshot.term;
            self.stats.snapshots_installed += 1;
            trace!(self, "n{id} installs {snapshot:?}");
        }
        for entry in write.committed {
            self.apply(id, entry);
        }
        let node = self.nodes.get_mut(&id).expect("node");
        for read in write.reads {
            match node.reads.remove(&read.context) {
                Some((route, key)) => node.confirmed_reads.push((read.index, route, key)),
                None => {
                    let message = format!("n{id} confirmed read {} it never started", read.context);
                    self.invariants.violation.get_or_insert(message);
                }
            }
        }
        let node = self.nodes.get_mut(&id).expect("node");
        let mut aborted = Vec::new();
        for context in write.aborted_reads {
            if let Some((route, _)) = node.reads.remove(&context) {
                aborted.push(route);
            }
        }
        for route in aborted {
            self.reply(route, Reply::Retry { leader: None });
        }
    }

    fn apply(&mut self, id: NodeId, entry: Entry) {
        let node = self.nodes.get_mut(&id).expect("node");
        if entry.index != node.store.applied + 1 {
            let message = format!(
                "n{id} was handed entry {} to apply after applying {}",
                entry.index, node.store.applied
            );
            self.invariants.violation.get_or_insert(message);
            return;
        }
        self.invariants.observe_apply(id, &entry);
        if matches!(entry.payload, Payload::Command(_)) && entry.index > self.max_command_index {
            self.max_command_index = entry.index;
            self.stats.commands_committed += 1;
            if let Some((killed_at, index_then)) = self.killed_at {
                if entry.index > index_then && self.stats.recovery_ms.is_none() {
                    self.stats.recovery_ms = Some(self.now - killed_at);
                }
            }
        }
        let node = self.nodes.get_mut(&id).expect("node");
        node.store.applied = entry.index;
        node.applied_term = entry.term;
        self.stats.applied += 1;
        let outcome = match &entry.payload {
            Payload::Noop => None,
            Payload::Membership(membership) => {
                node.applied_membership = membership.clone();
                None
            }
            Payload::Command(bytes) => node.store.apply(&Request::decode(bytes)),
        };
        if let Some((term, route)) = node.proposals.remove(&entry.index) {
            let reply = match outcome {
                Some(outcome) if term == entry.term => Reply::Done(outcome),
                _ => Reply::Retry { leader: None },
            };
            self.reply(route, reply);
        }
    }

    fn serve_confirmed_reads(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        let applied = node.store.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            node.confirmed_reads.drain(..).partition(|(index, _, _)| *index <= applied);
        node.confirmed_reads = waiting;
        let replies: Vec<(Route, Outcome)> =
            ready.into_iter().map(|(_, route, key)| (route, node.store.read(&key))).collect();
        for (route, outcome) in replies {
            self.reply(route, Reply::Done(outcome));
        }
    }

    fn maybe_compact(&mut self, id: NodeId) {
        let snapshot_every = self.snapshot_every;
        let node = self.nodes.get_mut(&id).expect("node");
        let snapshot_index =
            node.unsynced.iter().fold(node.durable.snapshot_index(), |index, step| match step {
                DiskStep::Compact(snapshot) => index.max(snapshot.index),
                _ => index,
            });
        let applied = node.store.applied;
        if applied < snapshot_index + snapshot_every {
            return;
        }
        let Some(engine) = node.engine.as_mut() else { return };
        let snapshot = Snapshot {
            index: applied,
            term: node.applied_term,
            membership: node.applied_membership.clone(),
            data: node.store.encode(),
        };
        engine.compact(snapshot.clone());
        node.wal.save_snapshot(GROUP, &snapshot).expect("the log is not poisoned");
        node.unsynced.push(DiskStep::Compact(snapshot));
        self.stats.compactions += 1;
        let compact_log =
            node.wal.segment_names().len() > SEGMENTS_KEPT_MAX || self.rng.chance(1, 4);
        if compact_log {
            // `Wal::compact` syncs first, so the snapshot is durable after it.
            let node = self.nodes.get_mut(&id).expect("node");
            match node.wal.compact() {
                Ok(_) => self.acknowledge_unsynced(id),
                Err(error) => {
                    self.fail_stop(id, error, Vec::new());
                    return;
                }
            }
        }
        self.drive(id);
    }

    fn send(&mut self, message: E::Message) {
        let (from, to) = (message.from(), message.to());
        self.stats.messages += 1;
        if self.network.is_blocked(from, to)
            || self.rng.probability(self.conditions.drop_probability)
        {
            return;
        }
        let copies =
            if self.rng.probability(self.conditions.duplicate_probability) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.message_delay();
            self.schedule(delay, Event::Deliver { message: message.clone() });
        }
    }

    fn message_delay(&mut self) -> u64 {
        let conditions = &self.conditions;
        if conditions.long_delay_ms_max > 0
            && self.rng.probability(conditions.long_delay_probability)
        {
            let max = self.conditions.long_delay_ms_max;
            return self.rng.range(1, max + 1);
        }
        let (low, high) = (self.conditions.delay_ms_min, self.conditions.delay_ms_max);
        self.rng.range(low, high + 1)
    }

    fn check_log_matching(&mut self) {
        let logs: Vec<(NodeId, LogView<'_>)> =
            self.nodes.values().map(|node| (node.id, log_view(&node.durable))).collect();
        let mut invariants = std::mem::take(&mut self.invariants);
        invariants.check_log_matching(&logs);
        self.invariants = invariants;
    }

    // ----- client requests at a replica ------------------------------------

    fn serve_request(&mut self, id: NodeId, request: ClientRequest) {
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(engine) = node.engine.as_mut() else { return };
        let status = engine.status();
        let route = request.route;
        if status.role != Role::Leader {
            self.reply(route, Reply::Retry { leader: status.leader });
            return;
        }
        let mut lost = None;
        let result = match (&request.op, request.via_log) {
            (Op::Get { key }, false) => {
                node.next_read_context += 1;
                let context = node.next_read_context;
                let result = engine.read_index(context);
                if result.is_ok() {
                    node.reads.insert(context, (route.clone(), key.clone()));
                }
                result
            }
            (op, _) => {
                let command =
                    Request { client: route.client, sequence: route.sequence, op: op.clone() };
                engine.propose(command.encode()).map(|proposal| {
                    // Reusing an index means the earlier proposal there was lost.
                    lost = node
                        .proposals
                        .insert(proposal.index, (proposal.term, route.clone()))
                        .map(|(_, route)| route);
                })
            }
        };
        if let Err(error) = result {
            trace!(self, "n{id} refuses a request: {error}");
            self.reply(route, Reply::Retry { leader: status.leader });
        }
        if let Some(lost) = lost {
            self.reply(lost, Reply::Retry { leader: None });
        }
        self.drive(id);
    }

    fn reply(&mut self, route: Route, reply: Reply) {
        let delay = self.rng.range(1, 4);
        let Route { client, sequence, attempt } = route;
        self.schedule(delay, Event::Reply { client, sequence, attempt, reply });
    }

    // ----- clients ----------------------------------------------------------

    fn client_start(&mut self, client_id: u64) {
        let index = (client_id - 1) as usize;
        if self.clients[index].stopped || self.clients[index].current.is_some() {
            return;
        }
        let key = self.rng.choose(&self.keys).expect("keys").clone();
        let client = &mut self.clients[index];
        client.sequence += 1;
        let sequence = client.sequence;
        let value = format!("c{client_id}s{sequence}.");
        let op = match self.rng.range(0, 20) {
            0..=6 => Op::Get { key },
            7..=11 => Op::Put { key, value },
            12..=16 => Op::Append { key, value },
            _ => {
                let expected = self.clients[index].last_seen.get(&key).cloned().flatten();
                Op::Cas { key, expected, new: value }
            }
        };
        let via_log = matches!(op, Op::Get { .. }) && self.rng.chance(1, 4);
        self.history.push(Operation {
            client: client_id,
            op: op.clone(),
            invoked_at: self.now,
            completed: None,
        });
        let history_index = self.history.len() - 1;
        let client = &mut self.clients[index];
        client.current = Some(Current {
            op,
            sequence,
            attempt: 0,
            invoked_at: self.now,
            history_index,
            via_log,
        });
        let target = client.target;
        self.client_send(client_id, target);
    }

    fn client_send(&mut self, client_id: u64, target: NodeId) {
        let index = (client_id - 1) as usize;
        let client = &mut self.clients[index];
        client.target = target;
        let current = client.current.as_ref().expect("an operation in flight");
        let request = ClientRequest {
            route: Route {
                client: client_id,
                sequence: current.sequence,
                attempt: current.attempt,
            },
            op: current.op.clone(),
            via_log: current.via_log,
        };
        let (sequence, attempt) = (current.sequence, current.attempt);
        self.stats.client_requests += 1;
        if !self.rng.probability(self.conditions.drop_probability) {
            let delay = self.rng.range(1, 4);
            self.schedule(delay, Event::Request { node: target, request });
        }
        let timeout = CLIENT_ATTEMPT_TIMEOUT_MS;
        self.schedule(timeout, Event::ClientTimeout { client: client_id, sequence, attempt });
    }

    fn client_retry(&mut self, client_id: u64, target: NodeId) {
        let index = (client_id - 1) as usize;
        let now = self.now;
        let client = &mut self.clients[index];
        let current = client.current.as_mut().expect("an operation in flight");
        if now - current.invoked_at > CLIENT_GIVE_UP_MS {
            // The outcome stays unknown: the history records no completion.
            client.current = None;
            self.stats.indeterminate += 1;
            let delay = self.rng.range(0, 10);
            self.schedule(delay, Event::ClientStart { client: client_id });
            return;
        }
        current.attempt += 1;
        self.client_send(client_id, target);
    }

    fn client_reply(&mut self, client_id: u64, sequence: u64, attempt: u64, reply: Reply) {
        let index = (client_id - 1) as usize;
        let Some(current) = self.clients[index].current.as_ref() else { return };
        if current.sequence != sequence {
            return;
        }
        match reply {
            Reply::Done(outcome) => {
                let history_index = current.history_index;
                let op = current.op.clone();
                let client = &mut self.clients[index];
                if let (Op::Get { key }, Outcome::Value(value)) = (&op, &outcome) {
                    client.last_seen.insert(key.clone(), value.clone());
                }
                if self.healing && current_invoked_after(client, self.heal_at) {
                    client.served_after_heal = true;
                }
                client.current = None;
                self.history[history_index].completed = Some((self.now, outcome));
                self.stats.client_ok += 1;
                let delay = self.rng.range(0, 10);
                self.schedule(delay, Event::ClientStart { client: client_id });
            }
            Reply::Retry { leader } => {
                if current.attempt != attempt {
                    return;
                }
                let target = match leader {
                    Some(leader) if self.rng.chance(9, 10) => leader,
                    _ => self.rng.range(1, self.nodes.len() as u64 + 1),
                };
                self.client_retry(client_id, target);
            }
        }
    }

    // ----- faults -----------------------------------------------------------

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .filter_map(|node| node.engine.as_ref().map(|engine| engine.status()))
            .filter(|status| status.role == Role::Leader)
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    fn inject_fault(&mut self) {
        let faults = self.config.faults.clone();
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        if faults.partitions
            && ids.len() > 1
            && !self.network.is_partitioned()
            && self.rng.chance(1, 8)
        {
            let shape = *self.rng.choose(&Shape::ALL).expect("shapes");
            let leader = self.leader();
            let description = self.network.partition(shape, &ids, leader, &mut self.rng);
            self.partition_generation += 1;
            // Mostly long partitions; some short ones, which flap.
            let duration = if self.rng.chance(1, 3) {
                self.rng.range(10, 60)
            } else {
                self.rng.range(100, 1500)
            };
            let generation = self.partition_generation;
            self.schedule(duration, Event::EndPartition { generation });
            self.stats.partitions += 1;
            self.record(&[5, shape as u64]);
            trace!(self, "partition for {duration} ms: {description}");
        }
        if faults.network {
            // Network conditions change over the run.
            self.conditions = if self.rng.chance(1, 10) {
                Conditions::calm()
            } else {
                self.fault_conditions.clone()
            };
        }
        if faults.crashes && self.rng.chance(1, 300) {
            // Everyone at once: a full-cluster restart from the disks alone.
            for &id in &ids {
                self.crash(id);
                let downtime = self.rng.range(20, 600);
                self.schedule(downtime, Event::Restart { node: id });
            }
        } else if faults.crashes && self.rng.chance(1, 12) {
            let victim = match self.leader() {
                Some(leader) if self.rng.chance(1, 2) => leader,
                _ => *self.rng.choose(&ids).expect("nodes"),
            };
            self.crash(victim);
            let downtime = self.rng.range(20, 1200);
            self.schedule(downtime, Event::Restart { node: victim });
        }
        if faults.membership && self.rng.chance(1, 40) {
            self.change_membership();
        }
        if faults.transfers && self.rng.chance(1, 40) {
            if let Some(leader) = self.leader() {
                let target = *self.rng.choose(&ids).expect("nodes");
                let engine = self.nodes.get_mut(&leader).and_then(|n| n.engine.as_mut());
                let result = engine.expect("leader is up").transfer_leadership(target);
                trace!(self, "transfer leadership n{leader} -> n{target}: {result:?}");
                self.drive(leader);
            }
        }
    }

    /// Walks the membership around like a placement controller would:
    /// re-add removed nodes as learners, promote learners, remove voters
    /// while at least four remain.
    fn change_membership(&mut self) {
        let Some(leader) = self.leader() else { return };
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let engine = self.nodes.get_mut(&leader).and_then(|n| n.engine.as_mut()).expect("leader");
        let membership = engine.status().membership;
        let change = if let Some(&learner) = membership.learners.iter().next() {
            MembershipChange::Promote(learner)
        } else if let Some(&outside) = ids.iter().find(|id| !membership.contains(**id)) {
            MembershipChange::AddLearner(outside)
        } else if membership.voters.len() >= 4 {
            let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
            MembershipChange::Remove(*self.rng.choose(&voters).expect("voters"))
        } else {
            return;
        };
        let engine = self.nodes.get_mut(&leader).and_then(|n| n.engine.as_mut()).expect("leader");
        let result = engine.propose_membership(change);
        self.stats.membership_changes += u64::from(result.is_ok());
        trace!(self, "n{leader} proposes {change:?}: {result:?}");
        self.drive(leader);
    }

    // ----- the verdict ------------------------------------------------------

    fn finish(mut self) -> Report {
        self.check_log_matching();
        if self.config.trace {
            for node in self.nodes.values() {
                let status = node.engine.as_ref().map(|engine| engine.status());
                let last = node.durable.entries.last().map(|entry| (entry.index, entry.term));
                println!(
                    "end n{}: {status:?} durable last {last:?} applied {}",
                    node.id, node.store.applied
                );
            }
        }
        let mut failure = self.invariants.violation.take();
        if failure.is_none() {
            failure = self.check_liveness();
        }
        if failure.is_none() {
            let budget = check::Budget { steps_max: self.config.checker_steps, deadline: None };
            match check::check(&self.history, &budget) {
                check::Verdict::Linearizable => {}
                check::Verdict::NotLinearizable { key, explanation } => {
                    failure = Some(format!("history not linearizable on key {key}: {explanation}"));
                }
                check::Verdict::Unknown { key, reason } => {
                    self.stats.unknown_checks += 1;
                    trace!(self, "linearizability unknown on {key}: {reason}");
                }
            }
        }
        let mut digest = self.trace;
        digest.write_u64(self.stats.events);
        for operation in &self.history {
            digest.write_u64(operation.invoked_at);
            digest.write_u64(operation.completed.as_ref().map_or(u64::MAX, |(at, _)| *at));
        }
        Report {
            seed: self.config.seed,
            failure,
            digest: digest.finish(),
            stats: self.stats,
            operations: self.history.len() as u64,
        }
    }

    fn check_liveness(&self) -> Option<String> {
        for client in &self.clients {
            if let Some(current) = &client.current {
                return Some(format!(
                    "liveness: client {} still waits after healing for {:?} (invoked at {})",
                    client.id, current.op, current.invoked_at
                ));
            }
            if !client.served_after_heal {
                return Some(format!(
                    "liveness: client {} was never served after healing",
                    client.id
                ));
            }
        }
        let Some(leader) = self.leader() else {
            return Some("liveness: no leader after healing".to_string());
        };
        let status = self.nodes[&leader].engine.as_ref().expect("leader is up").status();
        let highest = self.invariants.highest_applied();
        let reference = &self.nodes[&leader].store;
        for member in status.membership.members() {
            let node = &self.nodes[&member];
            if node.store.applied < highest || node.store.applied != reference.applied {
                return Some(format!(
                    "convergence: n{member} applied {} while leader n{leader} applied {} and the \
                     highest applied anywhere is {highest}",
                    node.store.applied, reference.applied
                ));
            }
            if node.store.digest() != reference.digest() {
                return Some(format!(
                    "convergence: n{member} and leader n{leader} applied up to {} but their states \
                     differ",
                    reference.applied
                ));
            }
        }
        None
    }
}

fn current_invoked_after(client: &Client, time: u64) -> bool {
    client.current.as_ref().is_some_and(|current| current.invoked_at >= time)
}

/// What a write asks the log to persist.
fn write_persist<M>(write: &Write<M>) -> Persist<'_> {
    Persist {
        hard_state: write.hard_state.as_ref(),
        snapshot: write.snapshot.as_ref(),
        entries: &write.entries,
    }
}

fn log_view(durable: &Durable) -> LogView<'_> {
    let (snapshot_index, snapshot_term) =
        durable.snapshot.as_ref().map_or((0, 0), |snapshot| (snapshot.index, snapshot.term));
    LogView { snapshot_index, snapshot_term, entries: &durable.entries }
}
