//! Log compaction and snapshot transfer (§5.1–§5.3, Figure 5.3), in chunks
//! of `snapshot_chunk_bytes`, one chunk in flight per follower.

use bytes::Bytes;

use super::{Body, Raft, RoleState};
use crate::shared::progress::{ProgressState, SnapshotTransfer};
use crate::{Index, Membership, NodeId, Snapshot, Term};

/// A snapshot being reassembled by a follower.
pub(super) struct IncomingSnapshot {
    index: Index,
    term: Term,
    data: Vec<u8>,
}

/// One received InstallSnapshot chunk.
pub(super) struct Chunk {
    pub(super) index: Index,
    pub(super) term: Term,
    pub(super) membership: Membership,
    pub(super) offset_bytes: u64,
    pub(super) data: Bytes,
    pub(super) done: bool,
}

impl Raft {
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
        assert_eq!(self.log.term_at(snapshot.index), Some(snapshot.term), "snapshot term");
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
        let snapshot = &transfer.snapshot;
        let length = snapshot.data.len() as u64;
        let offset = transfer.offset_bytes.min(length);
        let end = (offset + chunk_bytes).min(length);
        let body = Body::InstallSnapshot {
            index: snapshot.index,
            term: snapshot.term,
            membership: snapshot.membership.clone(),
            offset_bytes: offset,
            data: snapshot.data.slice(offset as usize..end as usize),
            done: end == length,
        };
        self.send(to, body);
    }

    pub(super) fn handle_snapshot_chunk(&mut self, from: NodeId, chunk: Chunk) {
        let index = chunk.index;
        let respond = |raft: &mut Raft, received_bytes: u64, done: bool| {
            let body = Body::SnapshotResponse { index, received_bytes, done };
            raft.send(from, body);
        };
        if chunk.index <= self.log.commit() {
            // Everything the snapshot holds is already committed here.
            self.incoming_snapshot = None;
            respond(self, 0, true);
            return;
        }
        let continues = self.incoming_snapshot.as_ref().is_some_and(|incoming| {
            incoming.index == chunk.index
                && incoming.term == chunk.term
                && incoming.data.len() as u64 == chunk.offset_bytes
        });
        if chunk.offset_bytes == 0 {
            self.incoming_snapshot =
                Some(IncomingSnapshot { index: chunk.index, term: chunk.term, data: Vec::new() });
        } else if !continues {
            // A gap, a duplicate, or another snapshot: say where we are.
            let received = match &self.incoming_snapshot {
                Some(incoming) if incoming.index == chunk.index && incoming.term == chunk.term => {
                    incoming.data.len() as u64
                }
                _ => 0,
            };
            respond(self, received, false);
            return;
        }
        let incoming = self.incoming_snapshot.as_mut().expect("set above");
        incoming.data.extend_from_slice(&chunk.data);
        let received = incoming.data.len() as u64;
        if !chunk.done {
            respond(self, received, false);
            return;
        }
        let incoming = self.incoming_snapshot.take().expect("set above");
        if self.log.term_at(chunk.index) == Some(chunk.term) {
            // Figure 5.3 rule 6: the log already holds the snapshot's last
            // entry, so it matches the leader's up to there; keep it.
            self.log.commit_to(chunk.index);
        } else {
            // Rule 7: discard the whole log and restore from the snapshot.
            let snapshot = Snapshot {
                index: chunk.index,
                term: chunk.term,
                membership: chunk.membership,
                data: Bytes::from(incoming.data),
            };
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
            self.send_append(from, true);
            return;
        }
        transfer.offset_bytes = received_bytes.min(transfer.snapshot.data.len() as u64);
        self.send_snapshot_chunk(from);
    }
}
