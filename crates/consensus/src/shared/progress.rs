//! What a leader tracks per follower (§3.5 nextIndex/matchIndex, plus flow
//! control in the style of etcd-io/raft) and the rest of its role's state.
//!
//! A follower's progress is in one of three states:
//! - **Probe**: the leader does not know where the logs match; it sends one
//!   append at a time and waits for the answer (`paused` until then, or until
//!   the next heartbeat response, which stands in for a lost message).
//! - **Replicate**: the logs match up to `match_index`; the leader streams
//!   appends optimistically, advancing `next_index` as it sends, with at most
//!   `inflight_appends_max` unacknowledged appends (each remembered by its
//!   last index) — the flow-control window.
//! - **Snapshot**: the follower needs entries the leader has compacted; one
//!   snapshot transfer runs, chunk by chunk, until the follower installs it.

use std::collections::{BTreeMap, VecDeque};

use crate::{Index, Membership, NodeId, Snapshot};

pub(crate) struct Progress {
    pub(crate) match_index: Index,
    pub(crate) next_index: Index,
    pub(crate) state: ProgressState,
    /// Last index of each unacknowledged append, oldest first (Replicate only).
    pub(crate) inflight: VecDeque<Index>,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// The latest heartbeat round the follower acknowledged.
    pub(crate) acked_round: u64,
}

pub(crate) enum ProgressState {
    Probe { paused: bool },
    Replicate,
    Snapshot(SnapshotTransfer),
}

/// What a leader sends a follower that answered a heartbeat.
pub(crate) enum HeartbeatFollowUp {
    Nothing,
    /// Resend the snapshot chunk in flight (it or its answer may be lost).
    SnapshotChunk,
    /// Send the next append (its predecessor or its answer may be lost).
    Append,
}

/// One snapshot being sent, stop-and-wait: one chunk in flight, resent on
/// every heartbeat response until acknowledged.
pub(crate) struct SnapshotTransfer {
    pub(crate) snapshot: Snapshot,
    pub(crate) offset_bytes: u64,
}

impl Progress {
    pub(crate) fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            inflight: VecDeque::new(),
            recent_active: false,
            acked_round: 0,
        }
    }

    /// Whether the leader must hold back appends to this follower.
    pub(crate) fn is_paused(&self, inflight_appends_max: usize) -> bool {
        match self.state {
            ProgressState::Probe { paused } => paused,
            ProgressState::Replicate => self.inflight.len() >= inflight_appends_max,
            ProgressState::Snapshot(_) => true,
        }
    }

    pub(crate) fn become_probe(&mut self, next_index: Index) {
        self.state = ProgressState::Probe { paused: false };
        self.next_index = next_index.max(self.match_index + 1);
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.inflight.clear();
    }

    /// Records that the follower's log matches up to `index`; returns whether
    /// that is news.
    pub(crate) fn update_match(&mut self, index: Index) -> bool {
        let news = index > self.match_index;
        if news {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        news
    }

    /// An append succeeded up to `index`: records the match, moves a probing
    /// follower to Replicate and one that has reached its snapshot's index
    /// back to Probe after it. Returns whether the match is news.
    pub(crate) fn append_succeeded(&mut self, index: Index) -> bool {
        let news = self.update_match(index);
        match self.state {
            ProgressState::Probe { .. } => self.become_replicate(),
            ProgressState::Snapshot(ref transfer) if index >= transfer.snapshot.index => {
                self.become_probe(index + 1);
            }
            _ => {}
        }
        news
    }

    /// Whether a refusal of the append at `index` answers an append older
    /// than the one this progress waits on, so it says nothing new.
    pub(crate) fn is_stale_refusal(&self, index: Index) -> bool {
        match self.state {
            ProgressState::Replicate => index <= self.match_index,
            ProgressState::Probe { .. } => index + 1 != self.next_index,
            ProgressState::Snapshot(_) => true,
        }
    }

    /// The follower acknowledged heartbeat `round` (`latest_round` being the
    /// leader's latest); the leader's log ends at `last_index`. Returns what
    /// to send next: the heartbeat stands in for a lost message, so a probe
    /// is unpaused and a full window frees its oldest slot.
    pub(crate) fn heartbeat_acknowledged(
        &mut self,
        round: u64,
        latest_round: u64,
        last_index: Index,
        inflight_appends_max: usize,
    ) -> HeartbeatFollowUp {
        self.recent_active = true;
        self.acked_round = self.acked_round.max(round.min(latest_round));
        let behind = self.match_index < last_index;
        match &mut self.state {
            ProgressState::Snapshot(_) => return HeartbeatFollowUp::SnapshotChunk,
            ProgressState::Probe { paused } => *paused = false,
            ProgressState::Replicate => {
                // Appends may have been lost: free a slot and send one, which
                // the follower rejects if it has a gap, moving us to Probe.
                if behind && self.inflight.len() >= inflight_appends_max {
                    self.inflight.pop_front();
                }
            }
        }
        if behind {
            HeartbeatFollowUp::Append
        } else {
            HeartbeatFollowUp::Nothing
        }
    }

    /// An append was sent covering entries up to `last_index` (if any).
    pub(crate) fn sent_append(&mut self, last_index: Option<Index>) {
        match &mut self.state {
            ProgressState::Replicate => {
                if let Some(last) = last_index {
                    self.next_index = last + 1;
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Snapshot(_) => unreachable!("appends are not sent during a snapshot"),
        }
    }
}

/// A leadership transfer under way (§3.10).
pub(crate) struct Transfer {
    pub(crate) target: NodeId,
    pub(crate) elapsed_ticks: u32,
}

/// Reads waiting for one heartbeat round to be acknowledged by a quorum.
pub(crate) struct ReadRound {
    pub(crate) round: u64,
    /// The commit index when the latest read joined the round.
    pub(crate) index: Index,
    pub(crate) contexts: Vec<u64>,
}

/// Everything only a leader keeps.
pub(crate) struct LeaderState {
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) heartbeat_elapsed_ticks: u32,
    pub(crate) quorum_elapsed_ticks: u32,
    /// The latest heartbeat round started.
    pub(crate) round: u64,
    /// Whether the latest round's heartbeats are still waiting in the outbox,
    /// so a new read can join it.
    pub(crate) round_open: bool,
    /// When recent rounds were started (tick), for leases.
    pub(crate) round_ticks: VecDeque<(u64, u64)>,
    /// Rounds acknowledged by a quorum up to here.
    pub(crate) confirmed_round: u64,
    /// Lease reads may be served while the engine's tick count is below this.
    pub(crate) lease_until_tick: u64,
    pub(crate) reads: VecDeque<ReadRound>,
    /// Reads that arrived before an entry of this term committed (§6.4 step 1).
    pub(crate) reads_waiting: Vec<u64>,
    /// New entries or a new commit index should go to every follower when
    /// the next `Ready` is built (batching proposals between `Ready`s).
    pub(crate) broadcast_pending: bool,
}

impl LeaderState {
    pub(crate) fn new() -> LeaderState {
        LeaderState {
            progress: BTreeMap::new(),
            transfer: None,
            heartbeat_elapsed_ticks: 0,
            quorum_elapsed_ticks: 0,
            round: 0,
            round_open: false,
            round_ticks: VecDeque::new(),
            confirmed_round: 0,
            lease_until_tick: 0,
            reads: VecDeque::new(),
            reads_waiting: Vec::new(),
            broadcast_pending: false,
        }
    }

    /// Starts a heartbeat round at tick `ticks` and returns its number.
    /// Rounds started during a transfer are not remembered for the lease
    /// (voters may vote for the target at any moment), nor are rounds older
    /// than an election timeout of `election_ticks`.
    pub(crate) fn start_heartbeat_round(&mut self, ticks: u64, election_ticks: u32) -> u64 {
        self.heartbeat_elapsed_ticks = 0;
        self.round += 1;
        self.round_open = true;
        if self.transfer.is_none() {
            self.round_ticks.push_back((self.round, ticks));
        }
        while self.round_ticks.len() > 2 * election_ticks as usize + 2 {
            self.round_ticks.pop_front();
        }
        self.round
    }

    /// The highest index that `quorum` voters of `membership` store, the
    /// leader `id` counting with its own `last_index`.
    pub(crate) fn quorum_match_index(
        &self,
        membership: &Membership,
        id: NodeId,
        last_index: Index,
        quorum: usize,
    ) -> Index {
        let mut matched: Vec<Index> = membership
            .voters
            .iter()
            .map(|&voter| {
                if voter == id {
                    last_index
                } else {
                    self.progress.get(&voter).map_or(0, |p| p.match_index)
                }
            })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[quorum - 1]
    }

    pub(crate) fn pending_read_count(&self) -> usize {
        self.reads_waiting.len() + self.reads.iter().map(|r| r.contexts.len()).sum::<usize>()
    }
}
