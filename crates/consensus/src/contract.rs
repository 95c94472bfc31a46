//! The contract every consensus engine implements and every driver obeys.
//!
//! The types here are shared by all engines; nothing outside an engine may
//! depend on anything else the engine defines (its message type is opaque to
//! the driver beyond [`Message::from`] and [`Message::to`]).

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;

/// Identifies a replica. Zero is never a valid node id.
pub type NodeId = u64;

/// A position in the replicated log (Raft index, Paxos slot). The first entry
/// has index 1; index 0 is "before the log".
pub type Index = u64;

/// The engine's epoch number: Raft's term. An engine that orders by a
/// different epoch (Paxos's ballot) maps it onto this number as its module
/// documentation explains. The driver treats it as opaque except to compare a
/// proposal's term with the term of the entry applied at its index.
pub type Term = u64;

/// One entry of the replicated log.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: Index,
    pub term: Term,
    pub payload: Payload,
}

impl fmt::Debug for Entry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}@{}:{:?}", self.index, self.term, self.payload)
    }
}

/// What an entry carries.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// Appended by a new leader to commit entries of earlier terms; the
    /// state machine ignores it.
    Noop,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// The complete configuration that takes effect from this entry on.
    Membership(Membership),
}

impl fmt::Debug for Payload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Noop => write!(formatter, "noop"),
            Payload::Command(bytes) => write!(formatter, "cmd({}B)", bytes.len()),
            Payload::Membership(membership) => write!(formatter, "conf{membership:?}"),
        }
    }
}

/// A group's membership: voters decide, learners only receive the log.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect(), learners: BTreeSet::new() }
    }

    /// Voters and learners, each once, ascending.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.learners.contains(&node)
    }

    /// Votes needed to decide.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The membership after `change`, or why the change cannot be made.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, Error> {
        let mut next = self.clone();
        match *change {
            MembershipChange::AddLearner(node) => {
                if self.contains(node) {
                    return Err(Error::InvalidMembershipChange("node is already a member"));
                }
                next.learners.insert(node);
            }
            MembershipChange::Promote(node) => {
                if !self.learners.contains(&node) {
                    return Err(Error::InvalidMembershipChange("only a learner can be promoted"));
                }
                next.learners.remove(&node);
                next.voters.insert(node);
            }
            MembershipChange::Remove(node) => {
                if !self.contains(node) {
                    return Err(Error::InvalidMembershipChange("node is not a member"));
                }
                next.voters.remove(&node);
                next.learners.remove(&node);
                if next.voters.is_empty() {
                    return Err(Error::InvalidMembershipChange("cannot remove the last voter"));
                }
            }
        }
        Ok(next)
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{{voters {:?}", self.voters)?;
        if !self.learners.is_empty() {
            write!(formatter, " learners {:?}", self.learners)?;
        }
        write!(formatter, "}}")
    }
}

/// One step of a membership change. Engines change voters one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Start replicating to a new, non-voting member.
    AddLearner(NodeId),
    /// Make a learner a voter (add it as a learner first so it catches up).
    Promote(NodeId),
    /// Remove a voter or learner; removing the leader makes it step down
    /// once the change commits.
    Remove(NodeId),
}

/// What an engine must find on disk after a restart, exactly as it asked the
/// driver to persist it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this replica has seen.
    pub term: Term,
    /// Whom this replica voted for in `term` (Raft), or the promised ballot's
    /// proposer (Paxos); zero for nobody.
    pub vote: NodeId,
    /// The highest index known committed. Never decreases.
    pub commit: Index,
}

/// A point-in-time image of the state machine that replaces a log prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last entry the image includes.
    pub index: Index,
    /// That entry's term.
    pub term: Term,
    /// The membership in force at `index`.
    pub membership: Membership,
    /// The state machine's serialized image, opaque to the engine.
    pub data: Bytes,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "snapshot({}@{} {:?} {}B)",
            self.index,
            self.term,
            self.membership,
            self.data.len()
        )
    }
}

/// Everything a replica had made durable, handed back to the engine when it
/// is constructed. A new replica passes the default (all empty).
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, contiguous, in index order.
    pub entries: Vec<Entry>,
}

impl Durable {
    /// Applies one `Ready`'s durable parts in the order the driver rules
    /// give: the snapshot (keeping the log suffix after it only if the log
    /// matches at the snapshot's index), then the entries (replacing any
    /// conflicting suffix), then the hard state. Every driver's storage must
    /// end in the state this function computes; the simulator and the tests
    /// use it as the reference.
    pub fn persist(
        &mut self,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    ) {
        if let Some(snapshot) = snapshot {
            let keep_suffix = self
                .entries
                .iter()
                .any(|entry| entry.index == snapshot.index && entry.term == snapshot.term);
            if keep_suffix {
                self.entries.retain(|entry| entry.index > snapshot.index);
            } else {
                self.entries.clear();
            }
            self.snapshot = Some(snapshot);
        }
        if let Some(first) = entries.first() {
            let first_index = first.index;
            self.entries.retain(|entry| entry.index < first_index);
            let snapshot_index = self.snapshot_index();
            let expected = self.entries.last().map_or(snapshot_index + 1, |entry| entry.index + 1);
            let mut entries = entries.into_iter().filter(|entry| entry.index > snapshot_index);
            if let Some(first) = entries.next() {
                assert_eq!(first.index, expected, "a write would leave a gap in the log");
                self.entries.push(first);
                self.entries.extend(entries);
            }
        }
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
    }

    /// The index the snapshot covers, or 0.
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.index)
    }

    /// Replaces the log prefix up to `snapshot.index` with the snapshot
    /// (after the driver took it at an applied index).
    pub fn compact(&mut self, snapshot: Snapshot) {
        self.entries.retain(|entry| entry.index > snapshot.index);
        self.snapshot = Some(snapshot);
    }
}

/// A linearizable read the engine has confirmed: once the state machine has
/// applied `index`, a read issued with `context` may be served locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub context: u64,
    pub index: Index,
}

/// The replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes (Raft §9.6) or running phase 1 without a lead.
    PreCandidate,
    Candidate,
    Leader,
    /// A non-voting member.
    Learner,
}

/// A snapshot of the replica's state for observers (tests, `INFO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit: Index,
    pub applied: Index,
    pub last_index: Index,
    /// Index of the entry just before the first one kept in memory.
    pub snapshot_index: Index,
    pub membership: Membership,
}

/// The result of accepting a proposal: it is committed if and only if the
/// entry applied at `index` has this `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub index: Index,
    pub term: Term,
}

/// What the driver must do next, in the order the rules in the crate
/// documentation give.
#[derive(Clone, Debug)]
pub struct Ready<M> {
    /// Persist if present (before sending `messages`).
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it, drop the log it
    /// covers, and restore the state machine from it before applying
    /// `committed`.
    pub snapshot: Option<Snapshot>,
    /// Entries to make durable. If the first one's index is at or below the
    /// last index on disk, the log from that index on is replaced.
    pub entries: Vec<Entry>,
    /// Messages to send once the above is durable.
    pub messages: Vec<M>,
    /// Committed entries to apply, contiguous, in index order.
    pub committed: Vec<Entry>,
    /// Reads confirmed by a quorum; serve each once `applied >= index`.
    pub reads: Vec<ReadState>,
    /// Reads that will never be confirmed (the replica lost leadership);
    /// fail them so the client can retry elsewhere.
    pub aborted_reads: Vec<u64>,
}

impl<M> Default for Ready<M> {
    fn default() -> Self {
        Ready {
            hard_state: None,
            snapshot: None,
            entries: Vec::new(),
            messages: Vec::new(),
            committed: Vec::new(),
            reads: Vec::new(),
            aborted_reads: Vec::new(),
        }
    }
}

impl<M> Ready<M> {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.reads.is_empty()
            && self.aborted_reads.is_empty()
    }
}

/// The only things the driver may know about an engine's messages.
pub trait Message: Clone + fmt::Debug {
    fn from(&self) -> NodeId;
    fn to(&self) -> NodeId;
    /// A short name of the message kind, for traces and statistics.
    fn kind(&self) -> &'static str;
    /// Appends the message's wire encoding (the engine documents the layout).
    fn encode(&self, out: &mut bytes::BytesMut);
    /// Decodes exactly one message occupying all of `bytes`. Untrusted input:
    /// every malformation is a [`WireError`], never a panic, and a count or
    /// length is acted on only if the remaining bytes could hold it, so memory
    /// stays within a small multiple of `bytes.len()`.
    fn decode(bytes: Bytes) -> Result<Self, WireError>
    where
        Self: Sized;
}

/// Why bytes received from a peer are not a valid message. The frame is
/// dropped; the sender is either buggy, of another version, or hostile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("wire version {0} is not supported")]
    UnknownVersion(u8),
    #[error("unknown {kind} tag {tag}")]
    UnknownTag { kind: &'static str, tag: u8 },
    /// A field, or the elements a count announces, need more bytes than remain.
    #[error("{field} needs {needed_bytes} bytes but only {remaining_bytes} remain")]
    Truncated { field: &'static str, needed_bytes: u64, remaining_bytes: u64 },
    #[error("{0} bytes left over after the message")]
    TrailingBytes(u64),
    /// The bytes are well formed but not a value this encoding produces.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
}

/// Why an engine refused a request. Each variant is an operating condition,
/// never a bug: bugs are assertions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("a membership change is still in progress")]
    MembershipChangePending,
    #[error("invalid membership change: {0}")]
    InvalidMembershipChange(&'static str),
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    #[error("node {0} cannot take leadership")]
    InvalidTransferTarget(NodeId),
    #[error("too many proposals in flight")]
    Busy,
}

/// Tuning shared by every engine. Defaults suit a 100 ms tick.
#[derive(Clone, Debug)]
pub struct Options {
    pub id: NodeId,
    /// A follower that hears nothing for a random time in
    /// `[election_ticks, 2 * election_ticks)` starts an election.
    pub election_ticks: u32,
    /// A leader sends heartbeats this often. Must be well below
    /// `election_ticks`.
    pub heartbeat_ticks: u32,
    /// Ask for pre-votes before disrupting a term (Raft §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout
    /// steps down; followers ignore vote requests while they hear a leader.
    pub check_quorum: bool,
    /// Serve reads from a leader lease without a quorum round. Depends on
    /// bounded clock drift between replicas; off by default.
    pub lease_reads: bool,
    /// Append messages in flight to one follower before waiting for acks.
    pub inflight_appends_max: usize,
    /// Entries per append message.
    pub append_entries_max: usize,
    /// Payload bytes per append message (at least one entry is always sent).
    pub append_bytes_max: usize,
    /// Snapshot bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Proposals accepted but not yet committed, across the group.
    pub uncommitted_entries_max: usize,
    /// Seeds the engine's own random generator (election timeouts).
    pub seed: u64,
    /// A deliberately broken variant, for proving the checkers work.
    #[cfg(feature = "bugs")]
    pub bug: Option<crate::Bug>,
}

impl Options {
    pub fn new(id: NodeId) -> Self {
        Options {
            id,
            election_ticks: 10,
            heartbeat_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            inflight_appends_max: 64,
            append_entries_max: 256,
            append_bytes_max: 1 << 20,
            snapshot_chunk_bytes: 64 << 10,
            uncommitted_entries_max: 16_384,
            seed: id,
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }

    /// Asserts the relations between limits that the engines rely on.
    pub fn validate(&self) {
        assert!(self.id != 0, "node id 0 is reserved");
        assert!(self.heartbeat_ticks >= 1);
        assert!(self.election_ticks > self.heartbeat_ticks * 2);
        assert!(self.inflight_appends_max >= 1);
        assert!(self.append_entries_max >= 1);
        assert!(self.snapshot_chunk_bytes >= 1);
    }
}

/// A consensus engine: a deterministic, sans-IO state machine.
pub trait Engine {
    type Message: Message;

    fn id(&self) -> NodeId;

    /// Advances logical time by one tick.
    fn tick(&mut self);

    /// Feeds a message received from a peer. Messages addressed to another
    /// node, from non-members, or stale are ignored.
    fn step(&mut self, message: Self::Message);

    /// Appends a command to the log if this replica leads.
    fn propose(&mut self, command: Bytes) -> Result<Proposal, Error>;

    /// Starts a linearizable read; it completes through [`Ready::reads`] or
    /// [`Ready::aborted_reads`] with the same `context`.
    fn read_index(&mut self, context: u64) -> Result<(), Error>;

    /// Proposes one membership step. Refused while another is uncommitted or
    /// before the leader has committed an entry of its own term.
    fn propose_membership(&mut self, change: MembershipChange) -> Result<Proposal, Error>;

    /// Hands leadership to `target` once it has caught up.
    fn transfer_leadership(&mut self, target: NodeId) -> Result<(), Error>;

    /// Tells the engine the state machine's image at an applied index, so it
    /// can drop the log up to there and send the image to laggards.
    fn compact(&mut self, snapshot: Snapshot);

    /// Whether [`Engine::ready`] would return anything.
    fn has_ready(&self) -> bool;

    /// Takes the next batch of work. Call [`Engine::advance`] once it is done
    /// before calling this again.
    fn ready(&mut self) -> Ready<Self::Message>;

    /// Reports that the last `Ready` was handled in full.
    fn advance(&mut self);

    /// The replica's role, without building a whole [`Status`].
    fn role(&self) -> Role;

    /// The leader this replica knows of, if any.
    fn leader(&self) -> Option<NodeId>;

    fn status(&self) -> Status;
}
