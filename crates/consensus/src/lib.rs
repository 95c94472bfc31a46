//! Sans-IO consensus engines behind one contract.
//!
//! An engine is a deterministic state machine. It never reads a clock (time
//! arrives as [`Engine::tick`]), never draws OS randomness (it is handed a
//! seed), and never touches a socket or a file: it tells its driver what to
//! persist, send and apply through [`Ready`], in the style of etcd-io/raft.
//!
//! Engines: [`raft::Raft`] (default) and [`paxos::Paxos`] (Multi-Paxos),
//! both implementing the same [`Engine`] trait; nothing outside an engine may
//! depend on its internals. Where the two engines do the same thing (the log,
//! leader progress and flow control, ReadIndex rounds, snapshot transfer,
//! membership bookkeeping) one private `shared` module serves both. The
//! bounded frame [`wire::Reader`] and its writers are public so the node's
//! peer protocol decodes with the same code.
//!
//! # The driver loop
//!
//! ```text
//! loop {
//!     on timer:        engine.tick()
//!     on peer message: engine.step(message)
//!     on client write: engine.propose(command)      -> Proposal { index, term }
//!     on client read:  engine.read_index(context)
//!     while engine.has_ready() {
//!         let ready = engine.ready();
//!         persist(ready.snapshot, ready.entries, ready.hard_state); fsync
//!         send(ready.messages)
//!         restore(ready.snapshot); apply(ready.committed)
//!         serve(ready.reads once applied); fail(ready.aborted_reads)
//!         engine.advance()
//!     }
//! }
//! ```
//!
//! # Driver rules
//!
//! Every driver (the node, the simulator, the scenario runner) obeys these;
//! the engines assert what they can see of them, and the simulator's checkers
//! verify the rest from outside.
//!
//! 1. **Persist before send.** A `Ready`'s `snapshot`, `entries` and
//!    `hard_state` are durable (fsynced) before any of its `messages` leave
//!    the node: a vote or an append acknowledgement promises durable state.
//!    One relaxation: a hard state that differs from the last one persisted
//!    only in `commit` need not be durable first (commit is a fact about a
//!    quorum's durable logs, and a restarted replica learns it again), so a
//!    driver may release a `Ready` whose only durable part is such a hard
//!    state without waiting for its write.
//! 2. **Replace, don't merge.** `entries` whose first index is at or below
//!    the last durable index replace the log from that index on.
//! 3. **Apply only what is committed**, exactly the `committed` entries, in
//!    index order, each once. Applying is deterministic: same entries, same
//!    state, same replies on every replica.
//! 4. **Snapshot first.** A `snapshot` in a `Ready` is persisted first and
//!    replaces the state machine before any of that `Ready`'s `committed`
//!    entries are applied. It also replaces the durable log up to its index:
//!    durable entries after it are kept only if the durable entry at the
//!    snapshot's index has the snapshot's term (log matching makes the suffix
//!    identical to the engine's); otherwise the whole durable log is dropped.
//!    A driver with an asynchronous disk may call `advance()` once a
//!    `Ready`'s write is queued, holding back its messages, applies and reads
//!    until that write is durable, provided writes complete in the order
//!    they were queued: nothing the engine believes durable is visible
//!    outside the node before it is.
//! 5. **One `Ready` at a time.** Call `advance()` after handling a `Ready` in
//!    full, and only then call `ready()` again (asserted).
//! 6. **Reads wait for apply.** Serve a [`ReadState`] only once the applied
//!    index has reached its `index`.
//! 7. **A proposal is decided by its term.** The proposal `{index, term}` is
//!    committed if and only if the entry applied at `index` has `term`; an
//!    entry of another term at that index means it was lost and may be
//!    retried.
//! 8. **Restart from what is durable.** A restarted engine is constructed
//!    from exactly the durable state ([`Durable`]) and the same founding
//!    membership it was first given; nothing else survives a crash.
//! 9. **Compact only what is applied.** [`Engine::compact`] receives an image
//!    of the state machine at an index it has applied.
//! 10. **Address messages honestly.** A message is delivered only to the node
//!     it names in [`Message::to`]; the network may drop, delay, duplicate and
//!     reorder it.

mod contract;
pub mod paxos;
pub mod raft;
pub mod rng;
mod shared;
pub mod wire;

pub use contract::*;

/// Deliberately broken variants of the engines, to prove the simulator's
/// checkers catch real bugs. Compiled only with the `bugs` feature; the
/// product never enables it.
#[cfg(feature = "bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// Count a minority of acknowledgements as a quorum when committing.
    CommitOnMinority,
    /// Grant votes without the log up-to-date check (Raft §5.4.1).
    VoteWithoutLogCheck,
    /// Hand entries to the state machine as soon as they are appended.
    ApplyBeforeCommit,
    /// A new leader appends no no-op entry and serves reads at once.
    SkipElectionNoop,
    /// Answer ReadIndex from the leader's commit index without confirming
    /// leadership with a quorum round.
    ReadWithoutHeartbeat,
    /// Paxos: an acceptor accepts phase-2 messages of a ballot lower than
    /// the one it promised.
    AcceptLowerBallot,
    /// Paxos: phase 1 ignores the values acceptors report having accepted,
    /// so the new leader recovers nothing.
    SkipValueRecovery,
    /// Paxos: a slot counts as chosen one acceptance short of a quorum.
    ChooseWithoutQuorum,
    /// Paxos: chosen values are handed to the state machine out of slot
    /// order.
    ApplyOutOfOrder,
}

#[cfg(feature = "bugs")]
impl Bug {
    pub const ALL: [Bug; 9] = [
        Bug::CommitOnMinority,
        Bug::VoteWithoutLogCheck,
        Bug::ApplyBeforeCommit,
        Bug::SkipElectionNoop,
        Bug::ReadWithoutHeartbeat,
        Bug::AcceptLowerBallot,
        Bug::SkipValueRecovery,
        Bug::ChooseWithoutQuorum,
        Bug::ApplyOutOfOrder,
    ];

    /// The variants that break `engine` ("raft" or "paxos"); empty for an
    /// unknown engine.
    pub fn for_engine(engine: &str) -> &'static [Bug] {
        match engine {
            "raft" => &Bug::ALL[..5],
            "paxos" => &Bug::ALL[5..],
            _ => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitOnMinority => "commit-on-minority",
            Bug::VoteWithoutLogCheck => "vote-without-log-check",
            Bug::ApplyBeforeCommit => "apply-before-commit",
            Bug::SkipElectionNoop => "skip-election-noop",
            Bug::ReadWithoutHeartbeat => "read-without-heartbeat",
            Bug::AcceptLowerBallot => "accept-lower-ballot",
            Bug::SkipValueRecovery => "skip-value-recovery",
            Bug::ChooseWithoutQuorum => "choose-without-quorum",
            Bug::ApplyOutOfOrder => "apply-out-of-order",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|bug| bug.name() == name)
    }
}
