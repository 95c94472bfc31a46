//! The connection side's view of the node task: submit a command, get a
//! receiver for its reply; ask for the status `INFO` reports.

use node::{Command, NodeStatus};
use resp::Frame;
use tokio::sync::{mpsc, oneshot};

/// A request to the node task.
pub enum Call {
    Command { command: Command, reply: oneshot::Sender<Frame> },
    Info { reply: oneshot::Sender<Info> },
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
        let (reply, receiver) = oneshot::channel();
        if self.calls.send(Call::Command { command, reply }).await.is_err() {
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

    pub async fn info(&self) -> Option<Info> {
        let (reply, receiver) = oneshot::channel();
        self.calls.send(Call::Info { reply }).await.ok()?;
        receiver.await.ok()
    }
}
