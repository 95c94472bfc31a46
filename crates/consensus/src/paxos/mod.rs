//! Multi-Paxos, following Lamport's "Paxos Made Simple" (2001, cited as PMS
//! with its section numbers) and Chandra, Griesemer and Redstone's "Paxos
//! Made Live" (PODC 2007, PML), behind the same [`Engine`] contract as
//! [`crate::raft`].
//!
//! # The algorithm as implemented
//!
//! **Ballots (PMS §2.2, §2.5).** A ballot is a pair (round, proposer id),
//! totally ordered, each proposer owning its own ballots, packed into a
//! `u64` whose integer order is the ballot order (see [`ballot`]). The
//! contract's numbers map as follows: `HardState.term` is the promised
//! ballot's round and `HardState.vote` its proposer; `Entry.term`,
//! `Proposal.term` and `Status.term` are packed ballots. Because a ballot
//! names its proposer, two replicas can never lead the same ballot.
//!
//! **Acceptors (PMS §2.2 P1a, §2.5).** A replica promises a ballot higher
//! than any it promised, except one of the round it already promised in
//! (refusing is always safe; this keeps two proposers of one round from
//! both gathering a quorum, so rounds behave like Raft's terms and a
//! doomed lower ballot rarely wins phase 1), and from then on ignores phase-1 and phase-2
//! messages of lower ballots, answering them with its promised ballot (the
//! "nack" of PMS §2.5) so a deposed proposer learns it lost. The promise is
//! part of the `HardState` handed out in the same `Ready` as the reply, so
//! driver rule 1 makes it durable before the reply leaves; accepted values
//! are `Ready.entries`, likewise durable before the acknowledgement.
//!
//! **A stable leader runs phase 1 once for all slots (PMS §3, PML §3).** A
//! replica that suspects the leader has failed picks the lowest ballot of
//! its own above its promise and sends one `Prepare` for every slot after
//! its commit index (its first unchosen slot minus one). Each acceptor
//! promises and returns what it accepted in those slots, a batch at a time.
//!
//! **Value recovery (PMS §2.2 P2c, §3).** Acceptors keep their accepted
//! slots as one contiguous log whose entries carry the ballot in which their
//! value was first proposed, and accept a batch only if it extends their log
//! where the leader's log has the same entry (the check of Raft's
//! AppendEntries). Such logs are ordered by (ballot of the last entry,
//! length), and the proposer recovers, for all its slots at once, the
//! highest log among its phase-1 quorum and its own: it adopts that log,
//! fetching the rest of it from its owner batch by batch, before it leads.
//! Each batch is merged as an acceptor merges an `Accept`: only conflicting
//! entries are replaced, so a fetch cut short never takes from the proposer
//! an accepted (possibly chosen) value that the two logs share.
//! This is P2c's "value of the highest-numbered proposal" applied to the
//! whole suffix; a proposer that sees a higher log it cannot obtain (its
//! owner compacted past the proposer's commit index) abandons the ballot.
//!
//! **Gap filling (PMS §3).** Logs are contiguous, so the only gap a new
//! leader meets is at the end: it proposes a no-op in its own ballot right
//! after the recovered slots. A slot counts as chosen once a quorum of
//! voters accepted it *and* the leader's entry there carries the leader's
//! ballot; the recovered slots before it are chosen with it. Only then does
//! the leader serve reads and membership changes.
//!
//! **Phase 2, pipelined and batched (PML §4.1).** Per acceptor the leader
//! streams `Accept`s of at most `append_entries_max` entries and
//! `append_bytes_max` bytes, with at most `inflight_appends_max` in flight;
//! a rejected one moves that acceptor to one-at-a-time probing, backing off
//! by a whole ballot per round trip. Chosen slots are learned by acceptors
//! through the commit index piggybacked on accepts and heartbeats
//! (`min(match, commit)`), and applied in slot order (`Ready.committed`).
//!
//! **Catch-up (PML §5.5).** A replica whose next slot the leader has
//! compacted receives the leader's snapshot in chunks of
//! `snapshot_chunk_bytes`, one chunk in flight, restarted on mismatch.
//!
//! **Failure detector and backoff (PMS §3, PML §3).** The leader sends
//! heartbeats every `heartbeat_ticks`; a replica that hears none for a
//! random time in `[election_ticks, 2 * election_ticks)` (drawn from the
//! seeded [`Rng`], and drawn again after every rejection, which is the
//! randomized backoff that lets duelling proposers settle) first sends a
//! `PrePrepare`. Acceptors that heard the leader within `election_ticks`
//! refuse it and ignore `Prepare`s (except a transfer's), and a leader that
//! hears no quorum for `election_ticks` steps down: a replica returning from
//! a partition cannot disrupt a healthy leader, as with Raft's PreVote and
//! CheckQuorum.
//!
//! **Reads.** ReadIndex exactly as in Raft §6.4: once its no-op is chosen
//! the leader records its commit index and answers after a quorum
//! acknowledged a heartbeat round started after the read; losing leadership
//! aborts pending reads.
//!
//! **Reconfiguration through the log (PMS §3 last paragraphs, PML §5.4).**
//! Membership is a log entry, one single-server change at a time, accepted
//! only once the leader's no-op is chosen and no other change is unchosen.
//! Lamport lets a change chosen at slot `s` govern slots from `s + α`, so
//! that a leader always knows the configuration of the slots it has in
//! flight. This engine does not implement the window: acceptors only accept
//! contiguously, so a configuration takes effect as soon as its entry is
//! appended, for every decision from then on, and reverts if that entry is
//! overwritten; safety comes from single-server changes (any two
//! consecutive configurations share a voter majority, Raft §4.1) and from
//! refusing a change until the leader's own no-op is chosen. A leader that
//! removes itself keeps leading until the change is chosen, then steps
//! down; learners receive the log and never count in a quorum.
//!
//! **Leadership transfer.** The leader stops taking proposals, brings the
//! target's log up to date, and sends `TimeoutNow`; the target runs phase 1
//! at once, and its `Prepare`s override the acceptors' stickiness.
//!
//! # Where this differs from the Raft engine
//!
//! - Ballots are (round, proposer) pairs, so no two proposers ever compete
//!   for the same number; there are no split votes, only a higher ballot
//!   pre-empting a lower one.
//! - Acceptors promise any higher ballot whatever their log: nothing like
//!   Raft's up-to-date check (§3.6.1) restricts who may lead. The proposer
//!   instead recovers the highest log from its phase-1 quorum and adopts it;
//!   Raft never moves entries *to* a new leader.
//! - The phase-1 reply carries the accepted values; Raft's vote carries a
//!   yes or no.
//!
//! And where it differs from textbook Multi-Paxos: acceptors accept
//! contiguously and a recovered value keeps the ballot tag it was first
//! proposed with instead of being re-tagged with the new ballot. The tag is
//! what the driver compares to decide a proposal (driver rule 7), so a
//! re-tag would make a chosen proposal look lost; keeping tags keeps logs
//! that share an entry identical before it (Raft's log matching), which is
//! what lets recovery compare whole logs by their last entry.

/// Whether the deliberately broken variant `Bug::$bug` is selected (always
/// false without the `bugs` feature).
macro_rules! bug {
    ($paxos:expr, $bug:ident) => {{
        #[cfg(feature = "bugs")]
        let selected = $paxos.options.bug == Some(crate::Bug::$bug);
        #[cfg(not(feature = "bugs"))]
        let selected = false;
        selected
    }};
}

mod ballot;
mod log;
mod membership;
mod message;
mod phase1;
mod phase2;
mod read;
mod snapshot;
#[cfg(test)]
mod tests;
mod transfer;
mod wire;

pub use message::{Ballot, Body, Message};

use bytes::Bytes;

use crate::rng::Rng;
use crate::shared::log::Log;
use crate::shared::progress::LeaderState;
use crate::shared::snapshot::{Chunk, SnapshotReceiver};
use crate::{
    Durable, Engine, Error, HardState, Index, Membership, MembershipChange, NodeId, Options,
    Proposal, ReadState, Ready, Role, Snapshot, Status,
};
use phase1::{Phase1, PrePrepares};

/// The replica's role and the data only that role has.
enum RoleState {
    Follower,
    /// Asking whether a quorum would promise a new ballot.
    PreCandidate(PrePrepares),
    /// Running phase 1 in its own ballot.
    Candidate(Box<Phase1>),
    Leader(Box<LeaderState>),
}

/// A Multi-Paxos replica. See the module documentation for the algorithm.
pub struct Paxos {
    options: Options,
    rng: Rng,
    /// The highest ballot this replica promised (or leads).
    ballot: Ballot,
    leader: Option<NodeId>,
    role: RoleState,
    log: Log,
    founding: Membership,
    /// The configuration in force: the latest one in the log.
    membership: Membership,
    /// Slot of the entry that set `membership` (the snapshot index or zero
    /// when it comes from the snapshot or the founding configuration).
    membership_index: Index,
    /// The membership in force at the snapshot index.
    snapshot_membership: Option<Membership>,
    /// The latest state-machine image, sent to replicas that need it.
    snapshot: Option<Snapshot>,
    incoming_snapshot: SnapshotReceiver,
    /// A snapshot received from the leader, to hand out in the next `Ready`.
    pending_snapshot: Option<Snapshot>,
    election_elapsed_ticks: u32,
    randomized_election_ticks: u32,
    /// Ticks since construction; only compared with itself (leases).
    ticks: u64,
    messages: Vec<Message>,
    reads: Vec<ReadState>,
    aborted_reads: Vec<u64>,
    /// The hard state last handed out (or found durable at start).
    hard_state_handed: HardState,
    ready_outstanding: bool,
}

impl Paxos {
    /// `founding`: the membership the group was created with (same value on
    /// every restart; a replica joining a running group passes an empty
    /// membership and learns the configuration from the leader). `durable`:
    /// exactly what was persisted before (the default for a new replica).
    pub fn new(options: Options, founding: Membership, durable: Durable) -> Paxos {
        options.validate();
        assert!(options.id <= ballot::NODE_ID_MAX, "node id {} does not fit a ballot", options.id);
        assert!(founding.members().all(|member| member <= ballot::NODE_ID_MAX));
        let Durable { hard_state, snapshot, entries } = durable;
        let log = Log::restore_durable(snapshot.as_ref(), entries, hard_state.commit);
        let mut rng = Rng::new(options.seed);
        let randomized_election_ticks = rng
            .range(u64::from(options.election_ticks), 2 * u64::from(options.election_ticks))
            as u32;
        let promised =
            if hard_state.term == 0 { 0 } else { ballot::make(hard_state.term, hard_state.vote) };
        let mut paxos = Paxos {
            rng,
            ballot: promised,
            leader: None,
            role: RoleState::Follower,
            log,
            membership: founding.clone(),
            founding,
            membership_index: 0,
            snapshot_membership: snapshot.as_ref().map(|s| s.membership.clone()),
            snapshot,
            incoming_snapshot: SnapshotReceiver::default(),
            pending_snapshot: None,
            election_elapsed_ticks: 0,
            randomized_election_ticks,
            ticks: 0,
            messages: Vec::new(),
            reads: Vec::new(),
            aborted_reads: Vec::new(),
            hard_state_handed: hard_state,
            ready_outstanding: false,
            options,
        };
        paxos.recompute_membership();
        paxos
    }

    fn id(&self) -> NodeId {
        self.options.id
    }

    /// The promise as the contract stores it: round in `term`, proposer in
    /// `vote`.
    fn hard_state(&self) -> HardState {
        HardState {
            term: ballot::round(self.ballot),
            vote: ballot::node(self.ballot),
            commit: self.log.commit(),
        }
    }

    fn is_voter(&self) -> bool {
        self.membership.voters.contains(&self.id())
    }

    fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    fn send(&mut self, to: NodeId, body: Body) {
        let ballot = self.ballot;
        self.send_with_ballot(to, ballot, body);
    }

    fn send_with_ballot(&mut self, to: NodeId, ballot: Ballot, body: Body) {
        assert_ne!(to, self.id(), "a replica never messages itself");
        self.messages.push(Message { from: self.id(), to, ballot, body });
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        let low = u64::from(self.options.election_ticks);
        self.randomized_election_ticks = self.rng.range(low, 2 * low) as u32;
    }

    /// Promises `ballot` (if higher) and follows `leader`. Abandons any
    /// leader-only work: pending reads abort, a transfer stops.
    fn become_follower(&mut self, ballot: Ballot, leader: Option<NodeId>) {
        assert!(ballot >= self.ballot, "a promise never decreases");
        self.ballot = ballot;
        if let RoleState::Leader(state) = &mut self.role {
            let state = &mut **state;
            self.aborted_reads.append(&mut state.reads_waiting);
            for round in state.reads.drain(..) {
                self.aborted_reads.extend(round.contexts);
            }
        }
        self.role = RoleState::Follower;
        self.leader = leader;
        self.reset_election_timer();
    }

    /// Whether this replica heard from a leader within the minimum election
    /// timeout, so that it should refuse to help start a new ballot.
    fn in_leader_lease(&self) -> bool {
        let heard_leader = self.leader.is_some()
            && (self.is_leader() || self.election_elapsed_ticks < self.options.election_ticks);
        let restarting =
            self.options.lease_reads && self.ticks < u64::from(self.options.election_ticks);
        self.options.check_quorum && (heard_leader || restarting)
    }

    fn step_message(&mut self, message: Message) {
        if message.to != self.id() || message.from == self.id() || message.from == 0 {
            return;
        }
        let from = message.from;
        if message.body.carries_own_ballot() && ballot::node(message.ballot) != from {
            return; // Malformed: a proposer speaks only in its own ballots.
        }
        if message.ballot > self.ballot {
            match &message.body {
                Body::PrePrepare { .. } | Body::Prepare { transfer: false, .. }
                    if self.in_leader_lease() =>
                {
                    return;
                }
                Body::PrePrepare { .. } | Body::PrePrepareResponse { granted: true } => {}
                Body::Prepare { prev_index, .. }
                    if ballot::round(message.ballot) == ballot::round(self.ballot) =>
                {
                    // One promise per round: a duelling proposer of the same
                    // round is refused (refusing is always safe for an
                    // acceptor), so at most one proposer per round gathers a
                    // quorum and rounds behave like Raft's terms.
                    self.refuse_prepare(from, message.ballot, *prev_index);
                    return;
                }
                body => {
                    let leader = body.is_from_leader().then_some(from);
                    self.become_follower(message.ballot, leader);
                }
            }
        } else if message.ballot < self.ballot {
            self.answer_stale(from, message.ballot, message.body);
            return;
        }
        self.dispatch(from, message.ballot, message.body);
    }

    /// A message of a ballot lower than the promised one: tell the sender.
    fn answer_stale(&mut self, from: NodeId, stale: Ballot, body: Body) {
        match body {
            Body::Accept { prev_index, prev_ballot, entries, commit }
                if bug!(self, AcceptLowerBallot) =>
            {
                // The broken acceptor accepts and acknowledges in the stale
                // ballot, as if it had never promised the higher one.
                let promised = std::mem::replace(&mut self.ballot, stale);
                self.handle_accept(from, prev_index, prev_ballot, entries, commit);
                self.ballot = promised;
            }
            Body::Heartbeat { commit, round } if bug!(self, AcceptLowerBallot) => {
                let promised = std::mem::replace(&mut self.ballot, stale);
                self.handle_heartbeat(from, commit, round);
                self.ballot = promised;
            }
            Body::Accept { .. } | Body::Heartbeat { .. } | Body::InstallSnapshot { .. } => {
                // A deposed leader learns the higher ballot and steps down.
                self.send(from, Body::HeartbeatResponse { round: 0 });
            }
            Body::PrePrepare { .. } => {
                self.send(from, Body::PrePrepareResponse { granted: false });
            }
            Body::Prepare { prev_index, .. } => {
                let ballot = self.ballot;
                self.refuse_prepare(from, ballot, prev_index);
            }
            _ => {}
        }
    }

    /// A phase-1 refusal ("nack") in `ballot`: the replier's higher promise,
    /// or the proposer's own ballot when refused for its round.
    fn refuse_prepare(&mut self, from: NodeId, ballot: Ballot, prev_index: Index) {
        let body = Body::Promise {
            granted: false,
            log_matches: false,
            prev_index,
            last_index: 0,
            last_ballot: 0,
            entries: Vec::new(),
        };
        self.send_with_ballot(from, ballot, body);
    }

    fn dispatch(&mut self, from: NodeId, ballot: Ballot, body: Body) {
        match body {
            Body::PrePrepare { commit } => self.handle_pre_prepare(from, ballot, commit),
            Body::PrePrepareResponse { granted } => {
                self.handle_pre_prepare_response(from, ballot, granted)
            }
            Body::Prepare { prev_index, prev_ballot, .. } => {
                self.handle_prepare(from, prev_index, prev_ballot)
            }
            Body::Promise {
                granted,
                log_matches,
                prev_index,
                last_index,
                last_ballot,
                entries,
            } => {
                let promise = phase1::PromiseReply {
                    granted,
                    log_matches,
                    prev_index,
                    last_index,
                    last_ballot,
                    entries,
                };
                self.handle_promise(from, ballot, promise)
            }
            Body::Accept { prev_index, prev_ballot, entries, commit } => {
                self.follow(from);
                self.handle_accept(from, prev_index, prev_ballot, entries, commit);
            }
            Body::Heartbeat { commit, round } => {
                self.follow(from);
                self.handle_heartbeat(from, commit, round);
            }
            Body::InstallSnapshot { index, term, membership, offset_bytes, data, done } => {
                self.follow(from);
                let chunk = Chunk { index, term, membership, offset_bytes, data, done };
                self.handle_snapshot_chunk(from, chunk);
            }
            Body::TimeoutNow => {
                self.follow(from);
                self.handle_timeout_now();
            }
            Body::Accepted { success, index, hint_index, hint_ballot } => {
                self.handle_accepted(from, success, index, hint_index, hint_ballot)
            }
            Body::HeartbeatResponse { round } => self.handle_heartbeat_response(from, round),
            Body::SnapshotResponse { index, received_bytes, done } => {
                self.handle_snapshot_response(from, index, received_bytes, done)
            }
        }
    }

    /// A message only the current ballot's leader sends arrived from `leader`.
    fn follow(&mut self, leader: NodeId) {
        assert!(!self.is_leader(), "two leaders of ballot {}", self.ballot);
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(self.ballot, Some(leader));
        }
        self.leader = Some(leader);
        self.election_elapsed_ticks = 0;
    }
}

impl Engine for Paxos {
    type Message = Message;

    fn id(&self) -> NodeId {
        self.options.id
    }

    fn tick(&mut self) {
        self.ticks += 1;
        if self.is_leader() {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    fn step(&mut self, message: Message) {
        self.step_message(message);
    }

    fn propose(&mut self, command: Bytes) -> Result<Proposal, Error> {
        self.propose_payload(crate::Payload::Command(command))
    }

    fn read_index(&mut self, context: u64) -> Result<(), Error> {
        self.start_read(context)
    }

    fn propose_membership(&mut self, change: MembershipChange) -> Result<Proposal, Error> {
        self.propose_membership_change(change)
    }

    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), Error> {
        self.start_transfer(target)
    }

    fn compact(&mut self, snapshot: Snapshot) {
        self.compact_to(snapshot);
    }

    fn has_ready(&self) -> bool {
        let broadcast_pending = match &self.role {
            RoleState::Leader(state) => state.broadcast_pending,
            _ => false,
        };
        self.hard_state() != self.hard_state_handed
            || self.pending_snapshot.is_some()
            || self.log.has_unstable()
            || !self.messages.is_empty()
            || self.log.has_applicable(false)
            || !self.reads.is_empty()
            || !self.aborted_reads.is_empty()
            || broadcast_pending
    }

    fn ready(&mut self) -> Ready<Message> {
        assert!(!self.ready_outstanding, "ready() called twice without advance()");
        self.flush_broadcast();
        if let RoleState::Leader(state) = &mut self.role {
            state.round_open = false;
        }
        let mut ready = Ready::default();
        let hard_state = self.hard_state();
        if hard_state != self.hard_state_handed {
            assert!(hard_state.term >= self.hard_state_handed.term, "promises never decrease");
            assert!(hard_state.commit >= self.hard_state_handed.commit, "commit never decreases");
            self.hard_state_handed = hard_state.clone();
            ready.hard_state = Some(hard_state);
        }
        if let Some(snapshot) = self.pending_snapshot.take() {
            // Nothing is applied past the commit index, so a snapshot is never behind.
            self.log.applied_snapshot(snapshot.index, false);
            ready.snapshot = Some(snapshot);
        }
        ready.entries = self.log.take_unstable();
        ready.messages = std::mem::take(&mut self.messages);
        // Only chosen slots are applied: no variant applies eagerly.
        ready.committed = self.log.take_applicable(false);
        if bug!(self, ApplyOutOfOrder) && ready.committed.len() >= 2 {
            let last = ready.committed.len() - 1;
            ready.committed.swap(last - 1, last);
        }
        ready.reads = std::mem::take(&mut self.reads);
        ready.aborted_reads = std::mem::take(&mut self.aborted_reads);
        self.ready_outstanding = true;
        ready
    }

    fn advance(&mut self) {
        assert!(self.ready_outstanding, "advance() without a ready()");
        self.ready_outstanding = false;
    }

    fn role(&self) -> Role {
        match self.role {
            RoleState::Leader(_) => Role::Leader,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Follower if self.membership.learners.contains(&self.id()) => Role::Learner,
            RoleState::Follower => Role::Follower,
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    fn status(&self) -> Status {
        Status {
            id: self.id(),
            role: Engine::role(self),
            term: self.ballot,
            leader: self.leader,
            commit: self.log.commit(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            membership: self.membership.clone(),
        }
    }
}
