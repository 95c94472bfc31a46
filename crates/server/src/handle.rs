//! The connection side's view of the node task: submit a command, get a
//! receiver for its reply; ask for the status `INFO` reports.

use bytes::Bytes;
use node::{ClusterView, Command, NodeStatus};
use resp::Frame;
use tokio::sync::{mpsc, oneshot};

/// A request to the node task.
pub enum Call {
    /// `readonly`: the connection sent `READONLY` (cluster mode reads from
    /// replicas).
    Command {
        command: Command,
        readonly: bool,
        reply: oneshot::Sender<Frame>,
    },
    Info {
        reply: oneshot::Sender<Info>,
    },
    /// The cluster as the node sees it (`CLUSTER SLOTS`, `NODES` …).
    Cluster {
        reply: oneshot::Sender<ClusterView>,
    },
    /// Up to `count` keys of `slot`, if the node holds its shard.
    KeysInSlot {
        slot: u16,
        count: usize,
        reply: oneshot::Sender<Option<Vec<Bytes>>>,
    },
}

/// What `INFO` and `CONFIG GET` need from the node task.
#[derive(Clone, Debug)]
pub struct Info {
    pub node: NodeStatus,
    /// Bytes in the write-ahead log's segments.
    pub log_bytes: u64,
    /// `always`, `everysec` or `no`.
    pub fsync: &'static str,
    /// `raft` (the engine the cluster runs).
    pub engine: &'static str,
    /// Why the node refuses writes, if its log is poisoned.
    pub poisoned: Option<String>,
    /// Redis Cluster mode (`-MOVED` instead of proxying).
    pub cluster_enabled: bool,
    /// Shards (consensus groups) the keyspace is split into.
    pub shards: usize,
    /// Every group this node holds a replica of (sharded clusters only).
    pub shard_statuses: Vec<ShardInfo>,
    /// Client addresses of the nodes this node knows, itself included.
    pub client_addresses: Vec<(u64, String)>,
}

/// One hosted group, for `INFO cohort` and `cohort cluster status`.
#[derive(Clone, Debug)]
pub struct ShardInfo {
    pub group: u64,
    pub status: NodeStatus,
    pub hibernating: bool,
    /// Slots the group owns.
    pub slots: u32,
}

/// A cheap, cloneable handle to the node task.
#[derive(Clone)]
pub struct NodeHandle {
    calls: mpsc::Sender<Call>,
}

impl NodeHandle {
    pub fn new(calls: mpsc::Sender<Call>) -> NodeHandle {
        NodeHandle { calls }
    }

    /// Queues `command` in submission order and returns where its reply will
    /// arrive. Commands submitted in order by one connection are answered in
    /// that order by awaiting the receivers in order (pipelining).
    pub async fn submit(&self, command: Command) -> oneshot::Receiver<Frame> {
        self.submit_with(command, false).await
    }

    /// As [`NodeHandle::submit`], for a connection that may have sent
    /// `READONLY`.
    pub async fn submit_with(&self, command: Command, readonly: bool) -> oneshot::Receiver<Frame> {
        let (reply, receiver) = oneshot::channel();
        if self.calls.send(Call::Command { command, readonly, reply }).await.is_err() {
            // The node task is gone (shutting down): the receiver reports it.
        }
        receiver
    }

    /// Submits and waits. A node that shut down answers with an error.
    pub async fn execute(&self, command: Command) -> Frame {
        self.submit(command)
            .await
            .await
            .unwrap_or_else(|_| Frame::error("ERR server is shutting down"))
    }

    pub async fn cluster(&self) -> Option<ClusterView> {
        let (reply, receiver) = oneshot::channel();
        self.calls.send(Call::Cluster { reply }).await.ok()?;
        receiver.await.ok()
    }

    /// Keys of `slot` held by this node; `None` if it holds no replica of
    /// the slot's shard (or is shutting down).
    pub async fn keys_in_slot(&self, slot: u16, count: usize) -> Option<Vec<Bytes>> {
        let (reply, receiver) = oneshot::channel();
        self.calls.send(Call::KeysInSlot { slot, count, reply }).await.ok()?;
        receiver.await.ok()?
    }

    pub async fn info(&self) -> Option<Info> {
        let (reply, receiver) = oneshot::channel();
        self.calls.send(Call::Info { reply }).await.ok()?;
        receiver.await.ok()
    }
}
