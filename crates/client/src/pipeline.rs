//! Pipelines: many commands written at once, replies read in order.

use bytes::Bytes;
use resp::Frame;

use crate::client::Client;
use crate::error::Result;
use crate::kind::Request;

/// Commands sent together on one connection with one write; see [`Client::pipeline`].
///
/// Replies come back in order, one frame per command; an error reply is an
/// [`Frame::Error`] in its place, not an `Err` of the whole call.
///
/// Cluster mode: the commands are grouped by the node serving their key's slot (keyless ones
/// go to any node), each group written with one write on a connection to its node, all groups at
/// once; replies are put back in command order. Commands answered `-MOVED` or `-ASK` did not run
/// and are re-sent where the redirection points (with `ASKING` before an asked one), without
/// counting as a failed attempt. A pipeline holding a connection-state command (`MULTI`, `EXEC`,
/// `WATCH`, `READONLY`…) is not split: it goes whole to the node of its first key, and a
/// redirection inside it is left in place as the command's reply. When a group's connection
/// fails, only that group's unanswered commands are retried, under the rules below; the other
/// groups' replies stand.
///
/// Retries: with sessions on, each write of the pipeline is sent inside its own session (up to
/// [`crate::PIPELINE_SESSIONS_MAX`] writes; idle sessions are reused, missing ones opened with one
/// extra round trip), and a failed attempt re-sends only the commands that got no definite reply,
/// with their original sequence numbers. Each re-sent write is then run once or answered with its
/// remembered reply. Past `PIPELINE_SESSIONS_MAX` writes, sessions are shared round the pipeline;
/// the server remembers only a session's last reply, so a re-sent write whose number is below
/// one already applied is answered `ERR sequence number … is older than the last one applied`:
/// it ran on an earlier attempt and its reply is lost, but it never runs twice. (In cluster mode
/// a shared session's writes to different nodes are sequenced by different shards, which keep
/// their own last number, so the same holds per shard.) A
/// `-SESSIONEXPIRED` reply is left in place (the write did not run). A pipeline holding a command
/// that cannot be sequenced (lock waits, `MULTI`…), or sent by a [`Client::raw`] client
/// with writes in it, is re-sent only if nothing reached the server.
#[derive(Debug)]
pub struct Pipeline {
    client: Client,
    requests: Vec<Request>,
}

impl Pipeline {
    pub(crate) fn new(client: Client) -> Pipeline {
        Pipeline { client, requests: Vec::new() }
    }

    /// Adds a command (name first), builder style.
    pub fn cmd(mut self, args: &[&[u8]]) -> Pipeline {
        self.push(args);
        self
    }

    /// Adds a command (name first).
    pub fn push(&mut self, args: &[&[u8]]) {
        assert!(!args.is_empty(), "a command has a name");
        let args = args.iter().map(|arg| Bytes::copy_from_slice(arg)).collect();
        self.requests.push(Request::new(args));
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Sends every command and returns their replies in order.
    pub async fn query(&self) -> Result<Vec<Frame>> {
        self.client.execute_pipeline(&self.requests).await
    }
}

impl Client {
    /// An empty pipeline on this client (with its session setting).
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }
}
