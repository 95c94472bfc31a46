//! The messages Raft replicas exchange (dissertation §3.4–§3.10, §4, §6.4, §9.6).
//!
//! Every message carries the sender's term, except two kinds that carry the
//! term they speak about: a `PreVote` carries the term its sender would
//! campaign in (without having moved to it), and a granted `PreVoteResponse`
//! echoes that term back.

use bytes::Bytes;

use crate::{Entry, Index, Membership, NodeId, Term};

/// One Raft message, addressed from one replica to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: Body,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Would you vote for me in `term` (§9.6)? Changes no state at the receiver.
    PreVote {
        last_index: Index,
        last_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// Vote for me in `term` (§3.4). `transfer` marks a campaign started by
    /// `TimeoutNow`, which voters honour even while they hear a leader (§3.10).
    Vote {
        last_index: Index,
        last_term: Term,
        transfer: bool,
    },
    VoteResponse {
        granted: bool,
    },
    /// AppendEntries (§3.5): `entries` follow the entry at `prev_index`, which
    /// has `prev_term` in the leader's log.
    Append {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// On success `index` is the last index now known to match the leader. On
    /// rejection `index` is the rejected `prev_index` and the hint says where
    /// to retry: `hint_term` is the follower's term at `prev_index` and
    /// `hint_index` the first index of that term in its log, or, when the
    /// follower has no entry there, `hint_term` is zero and `hint_index` is
    /// the follower's last index.
    AppendResponse {
        success: bool,
        index: Index,
        hint_index: Index,
        hint_term: Term,
    },
    /// Keeps followers from campaigning and tells them the commit index they
    /// can safely adopt (`min(match, commit)`). `round` numbers the leader's
    /// heartbeat rounds; ReadIndex waits for a quorum to acknowledge a round.
    Heartbeat {
        commit: Index,
        round: u64,
    },
    HeartbeatResponse {
        round: u64,
    },
    /// One chunk of a snapshot (§5.3, Figure 5.3): `data` belongs at
    /// `offset_bytes` of the image; `done` marks the last chunk.
    InstallSnapshot {
        index: Index,
        term: Term,
        membership: Membership,
        offset_bytes: u64,
        data: Bytes,
        done: bool,
    },
    /// `received_bytes` is how much of the snapshot at `index` the follower
    /// holds (the offset the next chunk must have); `done` means installed.
    SnapshotResponse {
        index: Index,
        received_bytes: u64,
        done: bool,
    },
    /// Campaign now, skipping PreVote (§3.10 leadership transfer).
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
            Body::PreVote { .. } => "pre-vote",
            Body::PreVoteResponse { .. } => "pre-vote-response",
            Body::Vote { .. } => "vote",
            Body::VoteResponse { .. } => "vote-response",
            Body::Append { .. } => "append",
            Body::AppendResponse { .. } => "append-response",
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
    /// Messages only a leader sends; receiving one names the sender leader.
    pub(super) fn is_from_leader(&self) -> bool {
        matches!(
            self,
            Body::Append { .. }
                | Body::Heartbeat { .. }
                | Body::InstallSnapshot { .. }
                | Body::TimeoutNow
        )
    }
}
