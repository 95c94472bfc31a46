//! Raft, as described in Diego Ongaro's dissertation "Consensus: Bridging
//! Theory and Practice" (Stanford, 2014); section numbers below refer to it.
//!
//! # The algorithm as implemented
//!
//! **Terms and roles (§3.3).** Time is divided into terms, each with at most
//! one leader. A replica's term never decreases; seeing a higher term in a
//! message makes it a follower of that term, with two exceptions from §9.6:
//! a `PreVote` (and a granted `PreVoteResponse`) speaks of a term nobody has
//! entered yet, so it moves no one's term; and a replica that heard from a
//! leader within the minimum election timeout ignores vote requests of any
//! term ("leader stickiness", §4.2.3), unless the request comes from a
//! leadership transfer. Stale-term messages are dropped, except appends,
//! heartbeats and pre-votes, which are answered with the current term so a
//! deposed leader or a lagging candidate learns it (§3.3).
//!
//! **Elections (§3.4, §9.6).** A voter that hears nothing for a random
//! timeout in `[election_ticks, 2 * election_ticks)` (drawn from the seeded
//! [`Rng`]) first asks for pre-votes for `term + 1`; only with a quorum of
//! them does it increment its term, vote for itself and ask for real votes.
//! A partitioned replica therefore never inflates terms, and on rejoining
//! cannot depose a healthy leader. A voter grants a vote only if the
//! candidate's log is at least as up to date as its own (§3.6.1) and it has
//! not voted for someone else in this term; the vote is part of the
//! `HardState` handed out in the same `Ready` as the response, so driver
//! rule 1 makes it durable before the response leaves.
//!
//! **Leaders (§3.5, §3.6.2).** A new leader appends a no-op entry of its
//! term. It commits an index once a quorum of voters stores it *and* the
//! entry there has the leader's current term (Figure 3.7): counting replicas
//! never commits an entry of an earlier term directly. With CheckQuorum a
//! leader that has not heard from a quorum of voters within an election
//! timeout steps down (§6.2).
//!
//! **Replication (§3.5).** Per follower, the leader keeps `match` and `next`
//! and a flow-control state (see `shared::progress`): probing one append at a
//! time, or pipelining up to `inflight_appends_max` appends of at most
//! `append_entries_max` entries and `append_bytes_max` payload bytes. A
//! follower that rejects an append hints where the logs may match (the term
//! at the rejected index and the first index of that term, or its last
//! index), so the leader skips a whole term per round trip (§3.5's
//! optimisation). Heartbeats carry `min(match, commit)` so a follower never
//! commits an entry it has not been shown to match.
//!
//! **Snapshots (§5.1–§5.3).** [`Engine::compact`] drops the log up to an
//! applied index and keeps the image. A follower whose `next` lies below the
//! first entry still in memory receives that image in chunks of
//! `snapshot_chunk_bytes` (one chunk in flight, resent on heartbeat
//! responses, restarted from zero on mismatch). On the last chunk, following
//! Figure 5.3's rules 6–7: if the follower's log already holds the snapshot's
//! last entry (same index and term), it keeps its log and just commits up to
//! that index; otherwise it discards its whole log and hands the snapshot out
//! in `Ready.snapshot` (lib.rs driver rule 4).
//!
//! **Reads (§6.4).** `read_index` on a leader waits until an entry of its
//! term has committed, records the commit index, and completes once a quorum
//! of voters has acknowledged a heartbeat round started after the read
//! arrived. Reads arriving while a round's heartbeats are still in the outbox
//! join that round (batching). A single-voter group answers at once. With
//! `lease_reads` (and CheckQuorum), a leader whose round started at tick `t`
//! was acknowledged by a quorum may answer without a round until tick
//! `t + election_ticks - 1`: those voters will not vote for anyone else
//! before an election timeout passes on *their* clocks, so the lease is safe
//! only while clocks run at nearly the same rate (bounded drift; the one
//! tick margin absorbs at most one tick of drift per election timeout).
//! Because a restart forgets when the leader was last heard, a replica
//! started with `lease_reads` ignores vote requests for its first election
//! timeout. A leadership transfer bypasses stickiness, so no lease is used
//! during one, and rounds started during one never extend the lease. Losing
//! leadership aborts every pending read.
//!
//! **Leadership transfer (§3.10).** The leader stops accepting proposals,
//! brings the target's log up to date, then sends `TimeoutNow`; the target
//! campaigns at once, without PreVote, and its vote requests carry a flag
//! that overrides stickiness. The transfer is abandoned after an election
//! timeout.
//!
//! **Membership (§4.1, §4.2).** Changes are single-server steps (add a
//! learner, promote a learner, remove a member), one at a time: any two
//! consecutive configurations then share a majority, so no joint consensus is
//! needed. A configuration takes effect on each replica as soon as its entry
//! is appended, not when committed, and reverts if that entry is truncated
//! (the configuration is recomputed from the last membership entry in the
//! log, else the snapshot's, else the founding one). Following the fix
//! published on the raft-dev list (2015) and noted in the dissertation's
//! errata, a leader proposes a change only after an entry of its current term
//! has committed and while no other change is uncommitted; otherwise
//! `Error::MembershipChangePending`. A leader that removes itself keeps
//! leading (without counting itself) until the change commits, then steps
//! down (§4.2.2); a replica that is not a voter never campaigns. Learners
//! receive the log but never campaign and never count in a quorum: a
//! candidate counts only the votes of voters in its own configuration. A
//! replica does answer vote requests whatever it believes its own role is
//! (as etcd-io/raft does): one promoted by an entry it has not received yet
//! still thinks it is a learner, and if it refused, a group whose other
//! voters are down could never elect a leader again.
//!
//! Messages from replicas outside the membership are not ignored wholesale:
//! a replica lagging behind may not yet know the configuration that makes
//! the sender a member, and refusing its votes could stall elections. A
//! removed replica cannot disrupt anyway: it stops campaigning once it knows
//! of its removal, its stale-term appends are rejected, and if it never
//! learned of its removal its pre-votes fail on the up-to-date check of the
//! majority that holds the removal entry, or on stickiness.
//!
//! # Persistence
//!
//! The engine keeps the whole un-compacted log in memory. `Ready.entries` are
//! the entries to make durable (replacing a conflicting suffix, driver rule
//! 2), `Ready.committed` the entries to apply, and only entries also handed
//! out for persistence, in this or an earlier `Ready`, are ever handed out to
//! apply. A restarted engine gets everything back through [`Durable`] and
//! re-hands out its committed entries after the snapshot (the driver restores
//! the durable snapshot itself).

/// Whether the deliberately broken variant `Bug::$bug` is selected (always
/// false without the `bugs` feature).
macro_rules! bug {
    ($raft:expr, $bug:ident) => {{
        #[cfg(feature = "bugs")]
        let selected = $raft.options.bug == Some(crate::Bug::$bug);
        #[cfg(not(feature = "bugs"))]
        let selected = false;
        selected
    }};
}

mod election;
mod log;
mod membership;
mod message;
mod read;
mod replication;
mod snapshot;
#[cfg(test)]
mod tests;
mod transfer;
mod wire;

pub use message::{Body, Message};

use bytes::Bytes;

use crate::rng::Rng;
use crate::shared::log::Log;
use crate::shared::progress::LeaderState;
use crate::shared::snapshot::{Chunk, SnapshotReceiver};
use crate::{
    Durable, Engine, Error, HardState, Index, Membership, MembershipChange, NodeId, Options,
    Proposal, ReadState, Ready, Role, Snapshot, Status, Term,
};

/// The votes gathered by a (pre-)candidate.
#[derive(Default)]
struct Votes {
    granted: std::collections::BTreeSet<NodeId>,
    rejected: std::collections::BTreeSet<NodeId>,
}

/// The replica's role and the data only that role has.
enum RoleState {
    Follower,
    PreCandidate(Votes),
    Candidate(Votes),
    Leader(Box<LeaderState>),
}

/// A Raft replica. See the module documentation for the algorithm.
pub struct Raft {
    options: Options,
    rng: Rng,
    term: Term,
    vote: NodeId,
    leader: Option<NodeId>,
    role: RoleState,
    log: Log,
    founding: Membership,
    /// The configuration in force: the latest one in the log.
    membership: Membership,
    /// Index of the entry that set `membership` (the snapshot index or zero
    /// when it comes from the snapshot or the founding configuration).
    membership_index: Index,
    /// The membership in force at the snapshot index.
    snapshot_membership: Option<Membership>,
    /// The latest state-machine image, sent to followers that need it.
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

impl Raft {
    /// `founding`: the membership the group was created with (same value on
    /// every restart; a replica joining a running group passes an empty
    /// membership and learns the configuration from the leader). `durable`:
    /// exactly what was persisted before (the default for a new replica).
    pub fn new(options: Options, founding: Membership, durable: Durable) -> Raft {
        options.validate();
        let Durable { hard_state, snapshot, entries } = durable;
        let log = Log::restore_durable(snapshot.as_ref(), entries, hard_state.commit);
        let mut rng = Rng::new(options.seed);
        let randomized_election_ticks = rng
            .range(u64::from(options.election_ticks), 2 * u64::from(options.election_ticks))
            as u32;
        let mut raft = Raft {
            rng,
            term: hard_state.term,
            vote: hard_state.vote,
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
        raft.recompute_membership();
        raft
    }

    fn id(&self) -> NodeId {
        self.options.id
    }

    fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.commit() }
    }

    fn is_voter(&self) -> bool {
        self.membership.voters.contains(&self.id())
    }

    fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    fn send(&mut self, to: NodeId, body: message::Body) {
        let term = self.term;
        self.send_with_term(to, term, body);
    }

    fn send_with_term(&mut self, to: NodeId, term: Term, body: message::Body) {
        assert_ne!(to, self.id(), "a replica never messages itself");
        self.messages.push(Message { from: self.id(), to, term, body });
    }

    fn apply_eagerly(&self) -> bool {
        bug!(self, ApplyBeforeCommit)
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        let low = u64::from(self.options.election_ticks);
        self.randomized_election_ticks = self.rng.range(low, 2 * low) as u32;
    }

    /// Moves to `term` (if higher) as a follower of `leader`. Abandons any
    /// leader-only work: pending reads abort, a transfer stops.
    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "term never decreases");
        if term > self.term {
            self.term = term;
            self.vote = 0;
        }
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
    /// timeout, so that it should ignore vote requests (§4.2.3 / §9.6).
    fn in_leader_lease(&self) -> bool {
        let heard_leader = self.leader.is_some()
            && (self.is_leader() || self.election_elapsed_ticks < self.options.election_ticks);
        // A restart forgets when the leader was last heard from. With lease
        // reads a leader may count on this replica's silence for an election
        // timeout after its last acknowledgement, so a freshly started
        // replica stays silent that long.
        let restarting =
            self.options.lease_reads && self.ticks < u64::from(self.options.election_ticks);
        self.options.check_quorum && (heard_leader || restarting)
    }

    fn step_message(&mut self, message: Message) {
        if message.to != self.id() || message.from == self.id() || message.from == 0 {
            return;
        }
        let from = message.from;
        if message.term > self.term {
            match &message.body {
                Body::PreVote { .. } | Body::Vote { transfer: false, .. }
                    if self.in_leader_lease() =>
                {
                    return;
                }
                Body::PreVote { .. } | Body::PreVoteResponse { granted: true } => {}
                body => {
                    let leader = body.is_from_leader().then_some(from);
                    self.become_follower(message.term, leader);
                }
            }
        } else if message.term < self.term {
            match message.body {
                Body::Append { .. } | Body::Heartbeat { .. } | Body::InstallSnapshot { .. }
                    if self.options.check_quorum || self.options.pre_vote =>
                {
                    // A deposed leader learns the new term and steps down.
                    self.send(from, Body::HeartbeatResponse { round: 0 });
                }
                Body::PreVote { .. } => {
                    self.send(from, Body::PreVoteResponse { granted: false });
                }
                _ => {}
            }
            return;
        }
        match message.body {
            Body::PreVote { last_index, last_term } => {
                self.handle_vote_request(from, message.term, last_index, last_term, true)
            }
            Body::Vote { last_index, last_term, .. } => {
                self.handle_vote_request(from, message.term, last_index, last_term, false)
            }
            Body::PreVoteResponse { granted } => {
                self.handle_vote_response(from, message.term, granted, true)
            }
            Body::VoteResponse { granted } => {
                self.handle_vote_response(from, message.term, granted, false)
            }
            Body::Append { prev_index, prev_term, entries, commit } => {
                self.follow(from);
                self.handle_append(from, prev_index, prev_term, entries, commit);
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
            Body::AppendResponse { success, index, hint_index, hint_term } => {
                self.handle_append_response(from, success, index, hint_index, hint_term)
            }
            Body::HeartbeatResponse { round } => self.handle_heartbeat_response(from, round),
            Body::SnapshotResponse { index, received_bytes, done } => {
                self.handle_snapshot_response(from, index, received_bytes, done)
            }
        }
    }

    /// A message only the current term's leader sends arrived from `leader`.
    fn follow(&mut self, leader: NodeId) {
        assert!(!self.is_leader(), "two leaders in term {}", self.term);
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(self.term, Some(leader));
        }
        self.leader = Some(leader);
        self.election_elapsed_ticks = 0;
    }
}

impl Engine for Raft {
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
            || self.log.has_applicable(self.apply_eagerly())
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
            assert!(hard_state.term >= self.hard_state_handed.term, "term never decreases");
            assert!(hard_state.commit >= self.hard_state_handed.commit, "commit never decreases");
            self.hard_state_handed = hard_state.clone();
            ready.hard_state = Some(hard_state);
        }
        if let Some(snapshot) = self.pending_snapshot.take() {
            self.log.applied_snapshot(snapshot.index, cfg!(feature = "bugs"));
            ready.snapshot = Some(snapshot);
        }
        ready.entries = self.log.take_unstable();
        ready.messages = std::mem::take(&mut self.messages);
        let eager = self.apply_eagerly();
        ready.committed = self.log.take_applicable(eager);
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
            term: self.term,
            leader: self.leader,
            commit: self.log.commit(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            membership: self.membership.clone(),
        }
    }
}
