//! [`Shard`]: this node's replica of one consensus group, and everything
//! between a command routed to that group and its reply: forwarding to the
//! group's leader, reads, blocked clients, and the driver loop of the
//! replica's engine. The [`Node`](crate::Node) picks the shard of a command
//! and merges the shards' outputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use consensus::rng::Rng;
use consensus::{
    Durable, Engine, Error, Index, Membership, MembershipChange, NodeId, Options, Proposal, Role,
    Term,
};
use resp::Frame;

use crate::entry::{Action, Payload};
use crate::node::{Command, NodeOptions, NodeStatus, Origin, Outbox, PeerMessage, RequestId};
use crate::replica::{Applied, DiskTask, Held, Replica, Write};
use crate::GroupId;

/// A client request this node received and has not answered.
struct LocalRequest {
    /// Kept to route it again after a redirect.
    command: Command,
    /// `None` for a blocking command waiting without a limit.
    deadline_ms: Option<u64>,
    /// The node it was forwarded to, if any.
    forwarded_to: Option<NodeId>,
    redirects: u32,
    /// A lock acquisition waiting in the replicated queue: the lock's name
    /// and when to withdraw it.
    lock_wait: Option<(Bytes, u64)>,
}

/// A read a replica serves from its own state once it has applied the
/// leader's read index.
struct ReplicaRead {
    command: Command,
    /// A leader answered; later answers (from a leader asked before a
    /// leader change) are ignored.
    index_known: bool,
}

/// A proposal in flight: who waits for it and what it was.
struct Pending {
    term: Term,
    origin: Origin,
    command: Command,
    /// Set when the proposal is a parked client's retry.
    waiter: Option<u64>,
}

/// A client parked by a blocking command, on the leader.
struct Waiter {
    id: u64,
    origin: Origin,
    args: Vec<Bytes>,
    keys: Vec<Bytes>,
    deadline_ms: Option<u64>,
    /// A retry of its command is in the log.
    proposed: bool,
    /// The timeout passed while a retry was in flight: answer with the
    /// retry's outcome, or with the timeout reply if it blocks again.
    expired: bool,
}

const REDIRECTS_MAX: u32 = 8;
/// The most applied entries a replica keeps in memory before a snapshot.
const SNAPSHOT_LOG_ENTRIES_MAX: u64 = 100_000;
/// How long a write forwarded to a deposed leader waits for its answer.
const LEADER_CHANGE_GRACE_MS: u64 = 1_000;
/// Ticks between a learner's reports that it has caught up.
const CAUGHT_UP_REPORT_TICKS: u64 = 10;

pub(crate) struct Shard<E: Engine> {
    options: NodeOptions,
    replica: Replica<E>,
    requests: BTreeMap<RequestId, LocalRequest>,
    waiting_for_leader: VecDeque<(Origin, Command)>,
    proposals: BTreeMap<Index, Pending>,
    reads: BTreeMap<u64, (Origin, Command)>,
    confirmed_reads: Vec<(Index, Origin, Command)>,
    /// Reads this replica serves itself, by request, until answered.
    replica_reads: BTreeMap<RequestId, ReplicaRead>,
    next_read_context: u64,
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
    purge_in_flight: Option<Index>,
    lease_expiry_in_flight: Option<Index>,
    membership_queue: VecDeque<MembershipChange>,
    was_leader: bool,
    known_leader: Option<NodeId>,
    next_write: u64,
    /// The last write every output produced from now on must wait for.
    output_barrier: u64,
    persisted_up_to: u64,
    /// Term and vote of the last hard state handed to the disk.
    handed_term_vote: (Term, NodeId),
    last_stamp_ms: u64,
    now_ms: u64,
    ticks: u64,
    rng: Rng,
    outbox: Outbox<E::Message>,
}

impl<E: Engine> Shard<E> {
    /// Builds the replica of `group` from what the disk held. `founding` is
    /// the group's founding membership (empty for a node joining a running
    /// cluster).
    pub fn new(
        options: NodeOptions,
        group: GroupId,
        build: fn(Options, Membership, Durable) -> E,
        founding: Membership,
        durable: Durable,
        now_ms: u64,
    ) -> Shard<E> {
        let handed_term_vote = (durable.hard_state.term, durable.hard_state.vote);
        let engine = build(options.engine.clone(), founding.clone(), durable.clone());
        let replica = Replica::new(group, engine, founding, &durable);
        let seed = options.engine.seed ^ now_ms ^ group.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut node = Shard {
            replica,
            requests: BTreeMap::new(),
            waiting_for_leader: VecDeque::new(),
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            confirmed_reads: Vec::new(),
            replica_reads: BTreeMap::new(),
            next_read_context: 0,
            waiters: VecDeque::new(),
            next_waiter: 0,
            purge_in_flight: None,
            lease_expiry_in_flight: None,
            membership_queue: VecDeque::new(),
            was_leader: false,
            known_leader: None,
            next_write: 0,
            output_barrier: 0,
            persisted_up_to: 0,
            handed_term_vote,
            last_stamp_ms: 0,
            now_ms,
            ticks: 0,
            rng: Rng::new(seed),
            outbox: Outbox::default(),
            options,
        };
        node.drive();
        node
    }

    /// Takes everything this replica produced since the last call.
    pub fn take_outbox(&mut self) -> Outbox<E::Message> {
        std::mem::take(&mut self.outbox)
    }

    /// The replicated address book: node → (peer address, client address).
    pub fn addresses(&self) -> &BTreeMap<NodeId, (String, String)> {
        &self.replica.machine.addresses
    }

    /// Keys stored in this replica's state machine, for `CLUSTER
    /// COUNTKEYSINSLOT` and `GETKEYSINSLOT`.
    pub fn store(&self) -> &commands::Store {
        &self.replica.machine.store
    }

    /// A digest of the state machine, equal on replicas that applied the
    /// same entries.
    pub fn state_digest(&self) -> u64 {
        self.replica.machine.store.digest()
    }

    pub fn status(&self) -> NodeStatus {
        let status = self.replica.engine.status();
        NodeStatus {
            id: self.options.id,
            role: status.role,
            term: status.term,
            leader: status.leader,
            commit: status.commit,
            applied: self.replica.machine.applied,
            last_index: status.last_index,
            snapshot_index: self.replica.snapshot_index,
            membership: status.membership,
            keys: self.replica.machine.store.len(),
            pending_requests: self.requests.len(),
            blocked_clients: self.waiters.len(),
            state_digest: self.replica.machine.store.digest(),
            addresses: self.replica.machine.addresses.clone(),
        }
    }

    // ----- inputs -----------------------------------------------------------

    /// Advances time by one engine tick.
    pub fn tick(&mut self, now_ms: u64) {
        self.replica.engine.tick();
        self.maintain(now_ms);
    }

    /// The work of a tick without the engine's: request and waiter
    /// deadlines, purges, lease expiry, membership steps. A hibernating
    /// replica (see the node) runs only this, now and then.
    pub fn maintain(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.ticks += 1;
        self.expire_requests();
        self.expire_waiters();
        self.withdraw_lock_waits();
        self.propose_purge();
        self.propose_lease_expiry();
        self.advance_membership();
        self.replicate_own_address();
        self.report_caught_up();
        self.drive();
    }

    /// A client command arrived at this node.
    pub fn submit(&mut self, request: RequestId, command: Command, now_ms: u64) {
        self.now_ms = now_ms;
        let lock_wait = lock_wait(&command, now_ms);
        let deadline_ms = match &command {
            _ if lock_wait.is_some() => None,
            Command::Execute(args) if is_blocking(args) => None,
            _ => Some(now_ms + self.options.request_timeout_ms),
        };
        let local = LocalRequest {
            command: command.clone(),
            deadline_ms,
            forwarded_to: None,
            redirects: 0,
            lock_wait,
        };
        self.requests.insert(request, local);
        self.route(Origin::Local(request), command);
        self.drive();
    }

    /// A consensus message for this group arrived.
    pub fn step(&mut self, message: E::Message, now_ms: u64) {
        self.now_ms = now_ms;
        self.replica.engine.step(message);
        self.drive();
    }

    /// Another node forwarded a client command for this group here.
    pub fn forwarded(&mut self, from: NodeId, request: RequestId, command: Command, now_ms: u64) {
        self.now_ms = now_ms;
        if self.is_leader() {
            self.route(Origin::Remote { node: from, request }, command);
        } else {
            let leader = self.leader().filter(|&leader| leader != from);
            let group = self.replica.group;
            self.send(from, PeerMessage::Redirect { group, request, leader });
        }
        self.drive();
    }

    /// The leader answered a command this replica forwarded.
    pub fn reply_received(&mut self, request: RequestId, frame: Frame, now_ms: u64) {
        self.now_ms = now_ms;
        self.reply(Origin::Local(request), frame);
        self.drive();
    }

    /// A read this replica serves from its own state (for a `READONLY`
    /// client): it asks the leader for its confirmed commit index and
    /// answers once it has applied that far, which makes the read
    /// linearizable without the leader serving it (Raft §6.4). As the
    /// leader it simply reads.
    pub fn read_on_replica(&mut self, request: RequestId, command: Command, now_ms: u64) {
        self.now_ms = now_ms;
        let local = LocalRequest {
            command: Command::ReadIndex,
            deadline_ms: Some(now_ms + self.options.request_timeout_ms),
            forwarded_to: None,
            redirects: 0,
            lock_wait: None,
        };
        self.requests.insert(request, local);
        if self.is_leader() {
            self.requests.get_mut(&request).expect("request").command = command.clone();
            self.read(Origin::Local(request), command);
        } else {
            self.replica_reads.insert(request, ReplicaRead { command, index_known: false });
            self.route(Origin::Local(request), Command::ReadIndex);
        }
        self.drive();
    }

    /// A node this replica forwarded a command to does not lead the group.
    pub fn redirect_received(&mut self, request: RequestId, leader: Option<NodeId>, now_ms: u64) {
        self.now_ms = now_ms;
        self.redirected(request, leader);
        self.drive();
    }

    /// A learner of this group reports it has caught up.
    pub fn caught_up(&mut self, node: NodeId, now_ms: u64) {
        self.now_ms = now_ms;
        let learner = self.replica.engine.status().membership.learners.contains(&node);
        if self.is_leader() && learner {
            self.queue_membership(MembershipChange::Promote(node));
        }
        self.drive();
    }

    /// A new node asks to join this group (the unsharded cluster's only one).
    pub fn join_requested(&mut self, node: NodeId, peer: String, client: String, now_ms: u64) {
        self.now_ms = now_ms;
        self.join(node, peer, client);
        self.drive();
    }

    /// The disk made every write up to `write_id` durable.
    pub fn persisted(&mut self, write_id: u64, now_ms: u64) {
        self.now_ms = now_ms;
        self.persisted_up_to = self.persisted_up_to.max(write_id);
        while self.replica.held.front().is_some_and(|held| held.write_id <= write_id) {
            let held = self.replica.held.pop_front().expect("held outputs");
            self.release(held);
        }
        self.drive();
    }

    /// The replica's term and last log index if it is quiet: nothing is in
    /// flight, no client waits on it, everything in the log is committed and
    /// applied and every output released, no purge, lease expiry or
    /// membership change is pending. A quiet group may hibernate.
    pub fn quiet_position(&self) -> Option<(Term, Index)> {
        let status = self.replica.engine.status();
        let quiet = matches!(status.role, Role::Leader | Role::Follower | Role::Learner)
            && status.leader.is_some()
            && status.commit == status.last_index
            && self.replica.machine.applied == status.commit
            && self.requests.is_empty()
            && self.waiting_for_leader.is_empty()
            && self.proposals.is_empty()
            && self.reads.is_empty()
            && self.confirmed_reads.is_empty()
            && self.waiters.is_empty()
            && self.replica.held.is_empty()
            && self.membership_queue.is_empty()
            && self.purge_in_flight.is_none()
            && self.lease_expiry_in_flight.is_none()
            && !self.replica.engine.has_ready();
        quiet.then_some((status.term, status.last_index))
    }

    /// Every member of the group but this node.
    pub fn other_members(&self) -> Vec<NodeId> {
        let membership = self.replica.engine.status().membership;
        let members = membership.voters.iter().chain(&membership.learners);
        members.copied().filter(|&node| node != self.options.id).collect()
    }

    /// Hands this group's leadership to `target` (a voter), if this
    /// replica leads it; the engine catches the target up first.
    pub fn transfer_leadership(&mut self, target: NodeId, now_ms: u64) {
        self.now_ms = now_ms;
        if self.is_leader() && self.replica.engine.status().membership.voters.contains(&target) {
            // Refused while another transfer or a membership change runs:
            // a later round tries again.
            let _ = self.replica.engine.transfer_leadership(target);
            self.drive();
        }
    }

    // ----- routing ----------------------------------------------------------

    pub fn is_leader(&self) -> bool {
        self.replica.engine.role() == Role::Leader
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.replica.engine.leader()
    }

    fn send(&mut self, to: NodeId, message: PeerMessage<E::Message>) {
        self.outbox.messages.push((to, message));
    }

    /// Sends a command where it can be served: here if this node leads, to
    /// the leader if one is known, or into the queue that waits for one.
    fn route(&mut self, origin: Origin, command: Command) {
        if self.is_leader() {
            self.lead(origin, command);
            return;
        }
        match (self.leader(), origin) {
            (Some(leader), Origin::Local(request)) if leader != self.options.id => {
                if let Some(local) = self.requests.get_mut(&request) {
                    local.forwarded_to = Some(leader);
                    let group = self.replica.group;
                    self.send(leader, PeerMessage::Forward { group, request, command });
                }
            }
            (Some(leader), Origin::Remote { node, request }) if leader != node => {
                // One hop only: the origin forwards again itself.
                let group = self.replica.group;
                self.send(node, PeerMessage::Redirect { group, request, leader: Some(leader) });
            }
            (_, Origin::Remote { node, request }) => {
                let group = self.replica.group;
                self.send(node, PeerMessage::Redirect { group, request, leader: None });
            }
            _ => self.waiting_for_leader.push_back((origin, command)),
        }
    }

    fn redirected(&mut self, request: RequestId, leader: Option<NodeId>) {
        let is_leader = self.is_leader();
        let group = self.replica.group;
        let Some(local) = self.requests.get_mut(&request) else { return };
        local.redirects += 1;
        local.forwarded_to = None;
        if local.redirects > REDIRECTS_MAX {
            let frame = Frame::error("CLUSTERDOWN the leader keeps moving; try again");
            self.reply(Origin::Local(request), frame);
            return;
        }
        let command = local.command.clone();
        match leader {
            Some(leader) if leader != self.options.id && !is_leader => {
                local.forwarded_to = Some(leader);
                self.send(leader, PeerMessage::Forward { group, request, command });
            }
            _ => self.route(Origin::Local(request), command),
        }
    }

    /// Serves a command as the leader.
    fn lead(&mut self, origin: Origin, command: Command) {
        match command {
            Command::Execute(args) => {
                let Some(readonly) = args.first().and_then(|name| is_readonly(name)) else {
                    // The connection validates names; a forwarded one might
                    // come from a node of another version.
                    self.reply(origin, Frame::error("ERR unknown command"));
                    return;
                };
                if readonly {
                    self.read(origin, Command::Execute(args));
                } else {
                    self.propose(origin, Command::Execute(args), None);
                }
            }
            Command::KeyVersions(keys) => self.read(origin, Command::KeyVersions(keys)),
            Command::ReadIndex => self.read(origin, Command::ReadIndex),
            transaction @ Command::Transaction { .. } => self.propose(origin, transaction, None),
        }
    }

    fn read(&mut self, origin: Origin, command: Command) {
        self.next_read_context += 1;
        let context = self.next_read_context;
        match self.replica.engine.read_index(context) {
            Ok(()) => {
                self.reads.insert(context, (origin, command));
            }
            Err(error) => self.refused(origin, command, error),
        }
    }

    /// The leader's clock for a new entry: never behind an earlier stamp.
    fn stamp(&mut self) -> u64 {
        self.last_stamp_ms = self.last_stamp_ms.max(self.now_ms);
        self.last_stamp_ms
    }

    fn propose(&mut self, origin: Origin, command: Command, waiter: Option<u64>) {
        let action = match &command {
            Command::Execute(args) if is_coordination(args) => {
                let (origin_node, origin_request) = match origin {
                    Origin::Local(request) => (self.options.id, request),
                    Origin::Remote { node, request } => (node, request),
                };
                Action::Coordinate { origin_node, origin_request, args: args.clone() }
            }
            Command::Execute(args) => Action::Execute(args.clone()),
            Command::Transaction { watched, commands } => {
                Action::Transaction { watched: watched.clone(), commands: commands.clone() }
            }
            Command::KeyVersions(_) | Command::ReadIndex => unreachable!("reads are not proposed"),
        };
        let payload = Payload { time_ms: self.stamp(), seed: self.rng.next_u64(), action };
        match self.replica.engine.propose(payload.encode()) {
            Ok(Proposal { index, term }) => {
                let pending = Pending { term, origin, command, waiter };
                if let Some(lost) = self.proposals.insert(index, pending) {
                    // An index is reused only when the earlier proposal
                    // there was truncated away: it never applied.
                    self.retry(lost);
                }
            }
            Err(error) => {
                if let Some(id) = waiter {
                    self.unpark(id);
                }
                self.refused(origin, command, error);
            }
        }
    }

    fn refused(&mut self, origin: Origin, command: Command, error: Error) {
        match error {
            Error::Busy => self.reply(origin, Frame::error("TRYAGAIN too many requests in flight")),
            // Still the leader, but not taking proposals while it hands
            // leadership over: routing now would come straight back here.
            // The command waits for the next look at the leadership (every
            // `drive`), which finds the new leader or a leader taking
            // proposals again if the transfer failed.
            _ if self.is_leader() => self.waiting_for_leader.push_back((origin, command)),
            _ => self.route(origin, command),
        }
    }

    /// A proposal that never applied goes around again.
    fn retry(&mut self, pending: Pending) {
        match pending.waiter {
            Some(id) => self.unpark(id),
            None => self.route(pending.origin, pending.command),
        }
    }

    fn reply(&mut self, origin: Origin, frame: Frame) {
        match origin {
            Origin::Local(request) if self.replica_reads.contains_key(&request) => {
                let read = self.replica_reads.get_mut(&request).expect("replica read");
                match frame {
                    // The leader's read index: serve the read here once
                    // this replica has applied that far.
                    Frame::Integer(index) if index >= 0 && !read.index_known => {
                        read.index_known = true;
                        let command = read.command.clone();
                        if let Some(local) = self.requests.get_mut(&request) {
                            local.command = command.clone();
                            self.confirmed_reads.push((index as Index, origin, command));
                            self.serve_reads();
                        }
                    }
                    // A late answer from a leader asked before (the
                    // question went to the next leader too): the index
                    // is known already.
                    Frame::Integer(_) => {}
                    error => {
                        self.replica_reads.remove(&request);
                        self.reply(origin, error);
                    }
                }
            }
            Origin::Local(request) => {
                if self.requests.remove(&request).is_some() {
                    self.outbox.replies.push((request, frame));
                }
            }
            Origin::Remote { node, request } => {
                let group = self.replica.group;
                self.send(node, PeerMessage::Reply { group, request, frame })
            }
        }
    }

    // ----- the engine loop ---------------------------------------------------

    /// Takes every `Ready` the engine has, queues its write, and holds its
    /// other outputs until the write is durable.
    fn drive(&mut self) {
        while self.replica.engine.has_ready() {
            let ready = self.replica.engine.ready();
            self.replica.engine.advance();
            let has_write =
                ready.hard_state.is_some() || ready.snapshot.is_some() || !ready.entries.is_empty();
            // A hard state that only moves the commit index promises nothing
            // to anyone: commit is a fact about other replicas' durable logs,
            // and a restarted replica learns it again. Outputs wait for
            // entries, snapshots, terms and votes, not for that write, which
            // keeps an fsync off the commit path.
            let term_or_vote = ready
                .hard_state
                .as_ref()
                .map(|hard_state| (hard_state.term, hard_state.vote))
                .filter(|&term_vote| term_vote != self.handed_term_vote);
            let must_wait =
                ready.snapshot.is_some() || !ready.entries.is_empty() || term_or_vote.is_some();
            if let Some(term_vote) = term_or_vote {
                self.handed_term_vote = term_vote;
            }
            if has_write {
                self.next_write += 1;
                self.outbox.disk.push(DiskTask::Write(Write {
                    id: self.next_write,
                    group: self.replica.group,
                    hard_state: ready.hard_state,
                    snapshot: ready.snapshot.clone(),
                    entries: ready.entries,
                }));
            }
            if must_wait {
                self.output_barrier = self.next_write;
            }
            let held = Held {
                write_id: self.output_barrier,
                messages: ready.messages,
                snapshot: ready.snapshot,
                committed: ready.committed,
                reads: ready.reads,
                aborted_reads: ready.aborted_reads,
            };
            if held.write_id <= self.persisted_up_to && self.replica.held.is_empty() {
                self.release(held);
            } else {
                self.replica.held.push_back(held);
            }
        }
        self.on_role_change();
    }

    fn release(&mut self, held: Held<E::Message>) {
        let group = self.replica.group;
        for message in held.messages {
            let to = consensus::Message::to(&message);
            self.send(to, PeerMessage::Consensus { group, message });
        }
        if let Some(snapshot) = held.snapshot {
            self.replica.machine = crate::replica::StateMachine::restore(&snapshot);
            self.replica.snapshot_index = snapshot.index;
            // Proposals the snapshot covers have an unknown fate here.
            let covered: Vec<Index> =
                self.proposals.range(..=snapshot.index).map(|(i, _)| *i).collect();
            for index in covered {
                let pending = self.proposals.remove(&index).expect("proposal");
                let frame = Frame::error(
                    "CLUSTERDOWN leadership changed; the command may or may not have been applied",
                );
                self.finish_pending(pending, frame);
            }
        }
        for entry in &held.committed {
            let applied = self.replica.machine.apply(entry);
            self.applied(entry.index, entry.term, applied);
            self.notify_waiters();
        }
        for read in held.reads {
            match self.reads.remove(&read.context) {
                // A replica's read: it waits for the index on its side.
                Some((origin, Command::ReadIndex)) => {
                    self.reply(origin, Frame::Integer(read.index as i64))
                }
                Some((origin, command)) => self.confirmed_reads.push((read.index, origin, command)),
                None => {}
            }
        }
        for context in held.aborted_reads {
            if let Some((origin, command)) = self.reads.remove(&context) {
                self.route(origin, command);
            }
        }
        self.serve_reads();
        self.wake_waiters();
        self.maybe_snapshot();
    }

    fn applied(&mut self, index: Index, term: Term, applied: Applied) {
        if self.purge_in_flight == Some(index) {
            self.purge_in_flight = None;
        }
        if self.lease_expiry_in_flight == Some(index) {
            self.lease_expiry_in_flight = None;
        }
        let Some(pending) = self.proposals.remove(&index) else { return };
        if pending.term != term {
            self.retry(pending);
            return;
        }
        match applied {
            // The origin node answers when the replicated queue grants or
            // withdraws the client.
            Applied::Deferred => {}
            Applied::Nothing => self.finish_pending(pending, Frame::ok()),
            Applied::Reply(frame) => self.finish_pending(pending, frame),
            Applied::WouldBlock { keys, timeout_ms, retry_args } => {
                if let Some(id) = pending.waiter {
                    if let (Some(retry), Some(waiter)) =
                        (retry_args, self.waiters.iter_mut().find(|waiter| waiter.id == id))
                    {
                        waiter.args = retry;
                    }
                    self.unpark(id);
                    return;
                }
                let Command::Execute(args) = pending.command else {
                    unreachable!("only single commands block")
                };
                // Retries must run what the state machine asks for (XREAD's
                // `$` pinned to the id it meant when the client blocked).
                let args = retry_args.unwrap_or(args);
                let deadline_ms = timeout_ms.map(|timeout| self.now_ms.saturating_add(timeout));
                self.next_waiter += 1;
                self.waiters.push_back(Waiter {
                    id: self.next_waiter,
                    origin: pending.origin,
                    args,
                    keys,
                    deadline_ms,
                    proposed: false,
                    expired: false,
                });
            }
        }
    }

    /// Answers a proposal whose entry applied (or whose fate is settled).
    fn finish_pending(&mut self, pending: Pending, frame: Frame) {
        if let Some(id) = pending.waiter {
            self.waiters.retain(|waiter| waiter.id != id);
        }
        self.reply(pending.origin, frame);
    }

    /// A parked client's retry blocked again (or never applied).
    fn unpark(&mut self, id: u64) {
        let Some(position) = self.waiters.iter().position(|waiter| waiter.id == id) else { return };
        if self.waiters[position].expired {
            let waiter = self.waiters.remove(position).expect("waiter");
            self.reply(waiter.origin, Frame::NullArray);
        } else {
            self.waiters[position].proposed = false;
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.replica.machine.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            self.confirmed_reads.drain(..).partition(|(index, _, _)| *index <= applied);
        self.confirmed_reads = waiting;
        let context = self.replica.machine.read_context(self.now_ms);
        for (_, origin, command) in ready {
            if let Origin::Local(request) = origin {
                // A replica read answered: its reply goes to the client as is.
                self.replica_reads.remove(&request);
            }
            let store = &self.replica.machine.store;
            let frame = match &command {
                Command::Execute(args) if is_coordination(args) => {
                    self.replica.machine.coordination.read(context.now_ms, args)
                }
                Command::Execute(args) => store.read(&context, args),
                Command::KeyVersions(keys) => Frame::Array(
                    keys.iter()
                        .map(|key| Frame::Integer(store.key_version(key, context.now_ms) as i64))
                        .collect(),
                ),
                Command::Transaction { .. } | Command::ReadIndex => {
                    unreachable!(
                        "transactions are writes; read indexes are answered when confirmed"
                    )
                }
            };
            self.reply(origin, frame);
        }
    }

    /// After writes applied, proposes the oldest parked client whose keys
    /// were written, one per key.
    fn wake_waiters(&mut self) {
        let touched: BTreeSet<Bytes> = self.replica.machine.touched.drain(..).collect();
        if touched.is_empty() || !self.is_leader() {
            return;
        }
        let mut claimed: BTreeSet<Bytes> = BTreeSet::new();
        let mut wake = Vec::new();
        for waiter in &self.waiters {
            let relevant = waiter.keys.iter().any(|key| touched.contains(key));
            let free = waiter.keys.iter().all(|key| !claimed.contains(key));
            if relevant && free && !waiter.proposed {
                wake.push(waiter.id);
            }
            if relevant || waiter.proposed {
                claimed.extend(waiter.keys.iter().cloned());
            }
        }
        for id in wake {
            let waiter = self.waiters.iter_mut().find(|waiter| waiter.id == id).expect("waiter");
            waiter.proposed = true;
            let (origin, args) = (waiter.origin, waiter.args.clone());
            self.propose(origin, Command::Execute(args), Some(id));
        }
    }

    /// Snapshots once the log since the last one is at least as long as the
    /// state is large (and `snapshot_entries` long): serializing the whole
    /// state costs time proportional to its size, so this keeps that cost a
    /// constant per applied entry instead of growing with the keyspace. The
    /// engines keep the log since the last snapshot in memory, so the wait is
    /// capped at `SNAPSHOT_LOG_ENTRIES_MAX` entries.
    fn maybe_snapshot(&mut self) {
        let machine = &self.replica.machine;
        let state_sized = (machine.store.len() as u64).min(SNAPSHOT_LOG_ENTRIES_MAX);
        let threshold = self.options.snapshot_entries.max(state_sized);
        if machine.applied < self.replica.snapshot_index + threshold {
            return;
        }
        let snapshot = machine.snapshot();
        self.replica.snapshot_index = snapshot.index;
        self.replica.engine.compact(snapshot.clone());
        self.outbox.disk.push(DiskTask::SaveSnapshot { group: self.replica.group, snapshot });
    }

    // ----- time -------------------------------------------------------------

    fn expire_requests(&mut self) {
        let now = self.now_ms;
        let expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, local)| local.deadline_ms.is_some_and(|deadline| deadline <= now))
            .map(|(request, _)| *request)
            .collect();
        for request in expired {
            let local = &self.requests[&request];
            let text = if local.forwarded_to.is_some() || self.proposals_for(request) {
                "CLUSTERDOWN no reply from the leader in time; the command may or may not have \
                 been applied"
            } else {
                "CLUSTERDOWN no leader elected in time"
            };
            self.reply(Origin::Local(request), Frame::error(text));
        }
        let requests = &self.requests;
        self.waiting_for_leader.retain(|(origin, _)| match origin {
            Origin::Local(request) => requests.contains_key(request),
            Origin::Remote { .. } => true,
        });
    }

    fn proposals_for(&self, request: RequestId) -> bool {
        self.proposals.values().any(|pending| pending.origin == Origin::Local(request))
    }

    fn expire_waiters(&mut self) {
        let now = self.now_ms;
        let mut timed_out = Vec::new();
        for waiter in &mut self.waiters {
            if waiter.deadline_ms.is_some_and(|deadline| deadline <= now) && !waiter.expired {
                waiter.expired = true;
                if !waiter.proposed {
                    timed_out.push(waiter.id);
                }
            }
        }
        for id in timed_out {
            self.unpark(id);
        }
    }

    fn propose_purge(&mut self) {
        if !self.is_leader() || self.purge_in_flight.is_some() {
            return;
        }
        let machine = &self.replica.machine;
        let now = self.now_ms.max(machine.time_ms);
        let keys = machine.store.expired_keys(now, self.options.purge_keys_max);
        if keys.is_empty() {
            return;
        }
        let payload = Payload { time_ms: self.stamp(), seed: 0, action: Action::Purge(keys) };
        if let Ok(proposal) = self.replica.engine.propose(payload.encode()) {
            self.purge_in_flight = Some(proposal.index);
        }
    }

    // ----- leadership and membership ----------------------------------------

    /// On gaining leadership, serves the commands that waited for a leader;
    /// on losing it, hands parked clients and queued work back to routing.
    fn on_role_change(&mut self) {
        let leader_known = self.leader().is_some();
        let is_leader = self.is_leader();
        if is_leader != self.was_leader {
            self.was_leader = is_leader;
            if !is_leader {
                self.purge_in_flight = None;
                self.lease_expiry_in_flight = None;
                self.membership_queue.clear();
                let parked: Vec<Waiter> = self.waiters.drain(..).collect();
                let (in_flight, idle): (Vec<Waiter>, Vec<Waiter>) =
                    parked.into_iter().partition(|waiter| waiter.proposed);
                // A retry in the log settles its waiter when it applies.
                self.waiters.extend(in_flight);
                for waiter in idle {
                    self.route(waiter.origin, Command::Execute(waiter.args));
                }
            }
        }
        let leader = self.leader();
        if leader.is_some() && leader != self.known_leader {
            let previous = self.known_leader;
            self.known_leader = leader;
            if previous.is_some() {
                self.abandon_forwarded(previous);
            }
        }
        if leader_known && !self.waiting_for_leader.is_empty() {
            let waiting: Vec<(Origin, Command)> = self.waiting_for_leader.drain(..).collect();
            for (origin, command) in waiting {
                self.route(origin, command);
            }
            // Routing may have produced more engine work.
            if self.replica.engine.has_ready() {
                self.drive();
            }
        }
    }

    /// Commands forwarded to a leader that is no longer the leader may never
    /// be answered. Reads and blocking commands (which change nothing until
    /// served) are routed again; a write may or may not have been applied,
    /// and retrying it could apply it twice, so it waits a short grace for
    /// the old leader's answer and then fails with an error that says so.
    fn abandon_forwarded(&mut self, previous: Option<NodeId>) {
        let abandoned: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, local)| local.forwarded_to.is_some() && local.forwarded_to == previous)
            .map(|(request, _)| *request)
            .collect();
        for request in abandoned {
            let local = self.requests.get_mut(&request).expect("request");
            local.forwarded_to = None;
            let command = local.command.clone();
            if local.lock_wait.is_some() {
                // Queued or not, the withdrawal at its deadline settles it.
                continue;
            }
            if is_safe_to_resend(&command) {
                self.route(Origin::Local(request), command);
            } else {
                // The old leader may still be alive and answer (with the
                // result, or a redirect once it learns its entry was lost):
                // give it a short grace, then report the unknown outcome.
                local.forwarded_to = previous;
                let grace = self.now_ms + LEADER_CHANGE_GRACE_MS;
                local.deadline_ms = Some(local.deadline_ms.map_or(grace, |d| d.min(grace)));
            }
        }
    }

    /// Answers the clients of this node that the last applied entry
    /// granted a lock or withdrew from a queue.
    fn notify_waiters(&mut self) {
        let notifications = std::mem::take(&mut self.replica.machine.coordination.notifications);
        for (origin, frame) in notifications {
            if origin.node == self.options.id {
                self.reply(Origin::Local(origin.request), frame);
            }
        }
    }

    /// Lock waits whose time ran out are withdrawn through the log, and
    /// answered when the withdrawal applies (with the token, if the grant
    /// came first).
    fn withdraw_lock_waits(&mut self) {
        let now = self.now_ms;
        let due: Vec<(RequestId, Bytes)> = self
            .requests
            .iter()
            .filter_map(|(request, local)| match &local.lock_wait {
                Some((name, deadline)) if *deadline <= now => Some((*request, name.clone())),
                _ => None,
            })
            .collect();
        for (request, name) in due {
            let id = self.options.id.to_string();
            let cancel = Command::Execute(vec![
                Bytes::from_static(b"LOCK.CANCEL"),
                name,
                Bytes::from(id),
                Bytes::from(request.to_string()),
            ]);
            let local = self.requests.get_mut(&request).expect("request");
            local.lock_wait = None;
            local.command = cancel.clone();
            local.deadline_ms = Some(now + self.options.request_timeout_ms);
            self.route(Origin::Local(request), cancel);
        }
    }

    /// The leader proposes the end of a lease that has waiters, so they are
    /// served even when no other command touches the lock.
    fn propose_lease_expiry(&mut self) {
        if !self.is_leader() || self.lease_expiry_in_flight.is_some() {
            return;
        }
        let machine = &self.replica.machine;
        let now = self.now_ms.max(machine.time_ms);
        let Some(name) = machine.coordination.expired_lease(now) else { return };
        let args = vec![Bytes::from_static(b"LOCK.EXPIRE"), name];
        let action = Action::Coordinate { origin_node: 0, origin_request: 0, args };
        let payload = Payload { time_ms: self.stamp(), seed: 0, action };
        if let Ok(proposal) = self.replica.engine.propose(payload.encode()) {
            self.lease_expiry_in_flight = Some(proposal.index);
        }
    }

    fn join(&mut self, node: NodeId, peer: String, client: String) {
        if !self.is_leader() {
            if let Some(leader) = self.leader() {
                self.send(leader, PeerMessage::Join { node, peer, client });
            }
            return;
        }
        let known =
            self.replica.machine.addresses.get(&node) == Some(&(peer.clone(), client.clone()));
        if !known {
            let action = Action::Address { node, peer, client };
            let payload = Payload { time_ms: self.stamp(), seed: 0, action };
            // If this fails the joining node asks again.
            let _ = self.replica.engine.propose(payload.encode());
        }
        if !self.replica.engine.status().membership.contains(node) {
            self.queue_membership(MembershipChange::AddLearner(node));
        }
    }

    /// The leader puts its own address in the replicated book (founding
    /// members are known only from the command line until then), so nodes
    /// that join later learn it from the log.
    fn replicate_own_address(&mut self) {
        if self.ticks % CAUGHT_UP_REPORT_TICKS != 0 || !self.is_leader() {
            return;
        }
        let own = (self.options.peer_address.clone(), self.options.client_address.clone());
        if own.0.is_empty() || self.replica.machine.addresses.get(&self.options.id) == Some(&own) {
            return;
        }
        let (peer, client) = own;
        let action = Action::Address { node: self.options.id, peer, client };
        let payload = Payload { time_ms: self.stamp(), seed: 0, action };
        // If this is refused (busy, stepping down), a later tick tries again.
        let _ = self.replica.engine.propose(payload.encode());
    }

    fn queue_membership(&mut self, change: MembershipChange) {
        if !self.membership_queue.contains(&change) {
            self.membership_queue.push_back(change);
        }
    }

    fn advance_membership(&mut self) {
        let Some(&change) = self.membership_queue.front() else { return };
        if !self.is_leader() {
            return;
        }
        match self.replica.engine.propose_membership(change) {
            Ok(_) | Err(Error::InvalidMembershipChange(_)) => {
                self.membership_queue.pop_front();
            }
            // Another change is in flight, or this term has not committed
            // yet: try again on a later tick.
            Err(_) => {}
        }
    }

    /// A learner that has applied everything it knows is committed asks the
    /// leader to promote it.
    fn report_caught_up(&mut self) {
        if self.ticks % CAUGHT_UP_REPORT_TICKS != 0 {
            return;
        }
        let status = self.replica.engine.status();
        let caught_up = status.role == Role::Learner
            && status.commit > 0
            && self.replica.machine.applied >= status.commit;
        if let (true, Some(leader)) = (caught_up, status.leader) {
            let group = self.replica.group;
            self.send(leader, PeerMessage::CaughtUp { group, node: self.options.id });
        }
    }
}

/// Whether sending a command again cannot apply it twice.
fn is_safe_to_resend(command: &Command) -> bool {
    match command {
        Command::KeyVersions(_) | Command::ReadIndex => true,
        Command::Transaction { .. } => false,
        Command::Execute(args) => {
            let Some(name) = args.first() else { return false };
            if name.eq_ignore_ascii_case(b"seq") {
                // The session applies a sequence number at most once.
                return true;
            }
            if let Some(spec) = crate::coordination::lookup(name) {
                // Observing an election changes nothing until it is served.
                return !spec.write || name.eq_ignore_ascii_case(b"elect.observe");
            }
            commands::lookup(name).is_some_and(|spec| spec.is_readonly() || spec.is_blocking())
        }
    }
}

fn is_coordination(args: &[Bytes]) -> bool {
    args.first().and_then(|name| crate::coordination::lookup_internal(name)).is_some()
}

/// Whether a command is served on the read path (`Some(true)`), goes
/// through the log (`Some(false)`), or is unknown. A blocking read (XREAD)
/// goes through the log: blocking must be ordered with the writes that wake
/// it.
fn is_readonly(name: &[u8]) -> Option<bool> {
    if let Some(spec) = crate::coordination::lookup_internal(name) {
        return Some(!spec.write);
    }
    commands::lookup(name).map(|spec| spec.is_readonly() && !spec.is_blocking())
}

pub(crate) fn is_blocking(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else { return false };
    if name.eq_ignore_ascii_case(b"elect.observe") {
        return true;
    }
    if name.eq_ignore_ascii_case(b"seq") {
        return args.len() > 3 && is_blocking(&args[3..]);
    }
    commands::lookup(name).is_some_and(|spec| spec.is_blocking())
}

/// For `LOCK.ACQUIRE … WAIT ms` and `ELECT.CAMPAIGN … WAIT ms`: the lock's
/// name and when this node withdraws the wait.
pub(crate) fn lock_wait(command: &Command, now_ms: u64) -> Option<(Bytes, u64)> {
    let Command::Execute(args) = command else { return None };
    let name = args.first()?;
    if !name.eq_ignore_ascii_case(b"lock.acquire") && !name.eq_ignore_ascii_case(b"elect.campaign")
    {
        return None;
    }
    let position = args.iter().position(|arg| arg.eq_ignore_ascii_case(b"wait"))?;
    let wait_ms: u64 = std::str::from_utf8(args.get(position + 1)?).ok()?.parse().ok()?;
    Some((args.get(1)?.clone(), now_ms.saturating_add(wait_ms)))
}
