//! Log compaction and snapshot transfer (§5.1–§5.3, Figure 5.3), in chunks
//! of `snapshot_chunk_bytes`, one chunk in flight per follower.

use super::{Body, Paxos, RoleState};
use crate::shared::progress::{ProgressState, SnapshotTransfer};
use crate::shared::snapshot::{next_chunk, Chunk, ChunkOutcome};
use crate::{Index, NodeId, Snapshot};

impl Paxos {
    /// Drops the log up to `snapshot.index`, which the driver has applied,
    /// and keeps the image to send to followers that need it.
    pub(super) fn compact_to(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.index <= self.log.applied(),
            "compacting at {} beyond applied {}",
            snapshot.index,
            self.log.applied()
        );
        if snapshot.index <= self.log.snapshot_index() {
            return;
        }
        assert_eq!(self.log.ballot_at(snapshot.index), Some(snapshot.term), "snapshot term");
        assert_eq!(
            snapshot.membership,
            self.membership_at(snapshot.index),
            "snapshot membership differs from the log's at {}",
            snapshot.index
        );
        self.log.compact(snapshot.index);
        self.snapshot_membership = Some(snapshot.membership.clone());
        self.snapshot = Some(snapshot);
    }

    pub(super) fn start_snapshot_transfer(&mut self, to: NodeId) {
        let snapshot = self.snapshot.clone().expect("a compacted log has a snapshot");
        let RoleState::Leader(state) = &mut self.role else { return };
        let Some(progress) = state.progress.get_mut(&to) else { return };
        progress.inflight.clear();
        progress.state = ProgressState::Snapshot(SnapshotTransfer { snapshot, offset_bytes: 0 });
        self.send_snapshot_chunk(to);
    }

    /// Sends the chunk at the transfer's current offset.
    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let chunk_bytes = self.options.snapshot_chunk_bytes as u64;
        let RoleState::Leader(state) = &self.role else { return };
        let Some(progress) = state.progress.get(&to) else { return };
        let ProgressState::Snapshot(transfer) = &progress.state else { return };
        let chunk = next_chunk(transfer, chunk_bytes);
        let body = Body::InstallSnapshot {
            index: chunk.index,
            term: chunk.term,
            membership: chunk.membership,
            offset_bytes: chunk.offset_bytes,
            data: chunk.data,
            done: chunk.done,
        };
        self.send(to, body);
    }

    pub(super) fn handle_snapshot_chunk(&mut self, from: NodeId, chunk: Chunk) {
        let index = chunk.index;
        let respond = |paxos: &mut Paxos, received_bytes: u64, done: bool| {
            let body = Body::SnapshotResponse { index, received_bytes, done };
            paxos.send(from, body);
        };
        let snapshot = match self.incoming_snapshot.receive(chunk, self.log.commit()) {
            ChunkOutcome::Respond { received_bytes, done } => {
                respond(self, received_bytes, done);
                return;
            }
            ChunkOutcome::Complete(snapshot) => snapshot,
        };
        let received = snapshot.data.len() as u64;
        if self.log.ballot_at(snapshot.index) == Some(snapshot.term) {
            // Figure 5.3 rule 6: the log already holds the snapshot's last
            // entry, so it matches the leader's up to there; keep it.
            self.log.commit_to(snapshot.index);
        } else {
            // Rule 7: discard the whole log and restore from the snapshot.
            self.log.restore(snapshot.index, snapshot.term);
            self.snapshot_membership = Some(snapshot.membership.clone());
            self.snapshot = Some(snapshot.clone());
            self.pending_snapshot = Some(snapshot);
            self.recompute_membership();
        }
        respond(self, received, true);
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: Index,
        received_bytes: u64,
        done: bool,
    ) {
        let RoleState::Leader(state) = &mut self.role else { return };
        let Some(progress) = state.progress.get_mut(&from) else { return };
        progress.recent_active = true;
        let ProgressState::Snapshot(transfer) = &mut progress.state else { return };
        if transfer.snapshot.index != index {
            return;
        }
        if done {
            progress.update_match(index);
            progress.become_probe(index + 1);
            self.maybe_commit();
            self.send_accept(from, true);
            return;
        }
        transfer.offset_bytes = received_bytes.min(transfer.snapshot.data.len() as u64);
        self.send_snapshot_chunk(from);
    }
}
