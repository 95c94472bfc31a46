//! The messages Multi-Paxos replicas exchange.
//!
//! Every message carries a ballot (see [`super::ballot`]). Messages a
//! proposer sends (`Prepare`, `Accept`, `Heartbeat`, `InstallSnapshot`,
//! `TimeoutNow`) carry the sender's own ballot, so their ballot names the
//! sender. Replies carry the replier's promised ballot, which is how a
//! proposer learns of a higher one (the "nack" of Paxos Made Simple §2.5).
//! `PrePrepare` carries the ballot its sender would use without having moved
//! to it, and a granted `PrePrepareResponse` echoes it back.

use bytes::Bytes;

use crate::{Entry, Index, Membership, NodeId, Term};

/// A packed ballot: `round << 16 | node` (see [`super::ballot`]).
pub type Ballot = Term;

/// One Multi-Paxos message, addressed from one replica to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub ballot: Ballot,
    pub body: Body,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Would you promise `ballot` if I prepared it? Changes nothing at the
    /// receiver; refused while the receiver hears a live leader (the
    /// PreVote/CheckQuorum rule) or when it has compacted past `commit`,
    /// the sender's first unchosen slot minus one.
    PrePrepare {
        commit: Index,
    },
    PrePrepareResponse {
        granted: bool,
    },
    /// Phase 1a for every slot after `prev_index`: promise `ballot` and
    /// report what you accepted after `prev_index` (whose entry the proposer
    /// holds with ballot tag `prev_ballot`). `transfer` marks a campaign
    /// ordered by `TimeoutNow`, honoured even while a leader is heard.
    Prepare {
        prev_index: Index,
        prev_ballot: Ballot,
        transfer: bool,
    },
    /// Phase 1b. When `granted` and `log_matches` (the acceptor holds the
    /// proposer's entry at `prev_index`), `entries` are the acceptor's
    /// accepted entries after `prev_index`, at most one batch of them; the
    /// log goes on to `last_index`, whose entry has tag `last_ballot`.
    Promise {
        granted: bool,
        log_matches: bool,
        prev_index: Index,
        last_index: Index,
        last_ballot: Ballot,
        entries: Vec<Entry>,
    },
    /// Phase 2a for the slots of `entries`, which follow the slot
    /// `prev_index` holding tag `prev_ballot` in the leader's log; `commit`
    /// piggybacks the leader's first unchosen slot minus one.
    Accept {
        prev_index: Index,
        prev_ballot: Ballot,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// Phase 2b. On success `index` is the last slot now known to match the
    /// leader. On rejection `index` is the rejected `prev_index` and the hint
    /// says where to retry (as Raft's fast backtracking): `hint_ballot` is
    /// the acceptor's tag at `prev_index` and `hint_index` the first slot
    /// with that tag, or `hint_ballot` is zero and `hint_index` is the
    /// acceptor's last slot.
    Accepted {
        success: bool,
        index: Index,
        hint_index: Index,
        hint_ballot: Ballot,
    },
    /// The failure detector's beat: the commit index the acceptor may adopt
    /// (`min(match, commit)`) and the leader's round, which reads wait on.
    Heartbeat {
        commit: Index,
        round: u64,
    },
    HeartbeatResponse {
        round: u64,
    },
    /// One chunk of the leader's snapshot: `data` belongs at `offset_bytes`;
    /// `done` marks the last chunk.
    InstallSnapshot {
        index: Index,
        term: Ballot,
        membership: Membership,
        offset_bytes: u64,
        data: Bytes,
        done: bool,
    },
    /// How much of the snapshot at `index` the replica holds; `done` means
    /// installed.
    SnapshotResponse {
        index: Index,
        received_bytes: u64,
        done: bool,
    },
    /// Start phase 1 now, skipping PrePrepare (leadership transfer).
    TimeoutNow,
}

impl crate::Message for Message {
    fn from(&self) -> NodeId {
        self.from
    }

    fn to(&self) -> NodeId {
        self.to
    }

    fn kind(&self) -> &'static str {
        match self.body {
            Body::PrePrepare { .. } => "pre-prepare",
            Body::PrePrepareResponse { .. } => "pre-prepare-response",
            Body::Prepare { .. } => "prepare",
            Body::Promise { .. } => "promise",
            Body::Accept { .. } => "accept",
            Body::Accepted { .. } => "accepted",
            Body::Heartbeat { .. } => "heartbeat",
            Body::HeartbeatResponse { .. } => "heartbeat-response",
            Body::InstallSnapshot { .. } => "install-snapshot",
            Body::SnapshotResponse { .. } => "snapshot-response",
            Body::TimeoutNow => "timeout-now",
        }
    }

    fn encode(&self, out: &mut bytes::BytesMut) {
        super::wire::encode(self, out);
    }

    fn decode(bytes: Bytes) -> Result<Self, crate::WireError> {
        super::wire::decode(bytes)
    }
}

impl Body {
    /// Messages only the distinguished proposer of the message's ballot
    /// sends; receiving one names the sender leader.
    pub(super) fn is_from_leader(&self) -> bool {
        matches!(
            self,
            Body::Accept { .. }
                | Body::Heartbeat { .. }
                | Body::InstallSnapshot { .. }
                | Body::TimeoutNow
        )
    }

    /// Messages whose ballot must be the sender's own.
    pub(super) fn carries_own_ballot(&self) -> bool {
        self.is_from_leader() || matches!(self, Body::Prepare { .. })
    }
}
