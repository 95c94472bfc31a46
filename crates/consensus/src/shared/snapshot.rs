//! Chunked snapshot transfer, the part both engines share (Raft §5.3,
//! Figure 5.3 rules 2–5; Multi-Paxos catch-up uses the same protocol).
//!
//! The leader sends a snapshot in chunks of `snapshot_chunk_bytes`, one chunk
//! in flight per follower (stop-and-wait, resent on every heartbeat response
//! until acknowledged): [`next_chunk`] cuts the chunk at the transfer's
//! offset. The follower reassembles the chunks in a [`SnapshotReceiver`],
//! which accepts only the chunk that continues what it holds and otherwise
//! says how much it holds, so the leader can resume from there. What to do
//! with a complete snapshot (keep the log or restore from it) touches the
//! engine's log and membership, so the engine decides.

use bytes::Bytes;

use super::progress::SnapshotTransfer;
use crate::{Index, Membership, Snapshot, Term};

/// One InstallSnapshot chunk, sent or received. `term` is the snapshot's last
/// entry's tag (a Multi-Paxos ballot in that engine).
pub(crate) struct Chunk {
    pub(crate) index: Index,
    pub(crate) term: Term,
    pub(crate) membership: Membership,
    pub(crate) offset_bytes: u64,
    pub(crate) data: Bytes,
    pub(crate) done: bool,
}

/// The chunk at `transfer`'s current offset, at most `chunk_bytes` long.
pub(crate) fn next_chunk(transfer: &SnapshotTransfer, chunk_bytes: u64) -> Chunk {
    let snapshot = &transfer.snapshot;
    let length = snapshot.data.len() as u64;
    let offset = transfer.offset_bytes.min(length);
    let end = (offset + chunk_bytes).min(length);
    Chunk {
        index: snapshot.index,
        term: snapshot.term,
        membership: snapshot.membership.clone(),
        offset_bytes: offset,
        data: snapshot.data.slice(offset as usize..end as usize),
        done: end == length,
    }
}

/// What a follower answers a chunk with, or the snapshot it completed.
pub(crate) enum ChunkOutcome {
    /// Reply with `received_bytes` held; `done` when the leader may stop.
    Respond { received_bytes: u64, done: bool },
    /// The last chunk arrived: the whole snapshot, to keep or restore.
    Complete(Snapshot),
}

/// A snapshot being reassembled by a follower.
struct IncomingSnapshot {
    index: Index,
    term: Term,
    data: Vec<u8>,
}

/// The follower's side of a transfer: at most one snapshot in reassembly.
#[derive(Default)]
pub(crate) struct SnapshotReceiver {
    incoming: Option<IncomingSnapshot>,
}

impl SnapshotReceiver {
    /// Takes one chunk; `commit` is the follower's commit index.
    pub(crate) fn receive(&mut self, chunk: Chunk, commit: Index) -> ChunkOutcome {
        if chunk.index <= commit {
            // Everything the snapshot holds is already committed here.
            self.incoming = None;
            return ChunkOutcome::Respond { received_bytes: 0, done: true };
        }
        let continues = self.incoming.as_ref().is_some_and(|incoming| {
            incoming.index == chunk.index
                && incoming.term == chunk.term
                && incoming.data.len() as u64 == chunk.offset_bytes
        });
        if chunk.offset_bytes == 0 {
            self.incoming =
                Some(IncomingSnapshot { index: chunk.index, term: chunk.term, data: Vec::new() });
        } else if !continues {
            // A gap, a duplicate, or another snapshot: say where we are.
            let received_bytes = match &self.incoming {
                Some(incoming) if incoming.index == chunk.index && incoming.term == chunk.term => {
                    incoming.data.len() as u64
                }
                _ => 0,
            };
            return ChunkOutcome::Respond { received_bytes, done: false };
        }
        let incoming = self.incoming.as_mut().expect("set above");
        incoming.data.extend_from_slice(&chunk.data);
        if !chunk.done {
            return ChunkOutcome::Respond {
                received_bytes: incoming.data.len() as u64,
                done: false,
            };
        }
        let incoming = self.incoming.take().expect("set above");
        ChunkOutcome::Complete(Snapshot {
            index: chunk.index,
            term: chunk.term,
            membership: chunk.membership,
            data: Bytes::from(incoming.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(data: &'static [u8]) -> Snapshot {
        Snapshot { index: 9, term: 2, membership: Membership::default(), data: Bytes::from(data) }
    }

    #[test]
    fn chunks_reassemble_and_gaps_report_what_is_held() {
        // Goal: in-order chunks rebuild the snapshot; a gap answers the held length, not done.
        let mut transfer = SnapshotTransfer { snapshot: snapshot(b"abcdefg"), offset_bytes: 0 };
        let mut receiver = SnapshotReceiver::default();
        let first = next_chunk(&transfer, 3);
        assert!(!first.done);
        assert!(matches!(
            receiver.receive(first, 0),
            ChunkOutcome::Respond { received_bytes: 3, done: false }
        ));
        transfer.offset_bytes = 6;
        assert!(matches!(
            receiver.receive(next_chunk(&transfer, 3), 0),
            ChunkOutcome::Respond { received_bytes: 3, done: false }
        ));
        transfer.offset_bytes = 3;
        let _ = receiver.receive(next_chunk(&transfer, 3), 0);
        transfer.offset_bytes = 6;
        let last = next_chunk(&transfer, 3);
        assert!(last.done);
        let ChunkOutcome::Complete(complete) = receiver.receive(last, 0) else {
            panic!("the last chunk completes the snapshot")
        };
        assert!(complete == snapshot(b"abcdefg"), "the reassembled snapshot is the sent one");
    }

    #[test]
    fn a_committed_snapshot_is_acknowledged_at_once() {
        // Goal: a snapshot at or below the commit index needs nothing more and drops reassembly.
        let transfer = SnapshotTransfer { snapshot: snapshot(b"abc"), offset_bytes: 0 };
        let mut receiver = SnapshotReceiver::default();
        assert!(matches!(
            receiver.receive(next_chunk(&transfer, 1), 9),
            ChunkOutcome::Respond { received_bytes: 0, done: true }
        ));
        assert!(receiver.incoming.is_none());
    }
}
