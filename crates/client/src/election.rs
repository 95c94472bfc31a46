//! Leader election on top of the locks (etcd's `concurrency.Election` as the reference):
//! campaigning acquires the lock named by the election with the candidate's value as its owner,
//! and the fencing token is the leadership's revision.

use std::time::Duration;

use bytes::Bytes;
use resp::Frame;

use crate::client::{unexpected, Client};
use crate::commands::{ttl_ms, Args};
use crate::error::Result;
use crate::lock::{LockGuard, Release};
use crate::value;

/// The holder of an election: its value and the revision (fencing token) of its term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    pub value: Bytes,
    pub token: u64,
}

fn leader_from(command: &str, frame: Frame) -> Result<Option<Leader>> {
    match frame {
        Frame::Null | Frame::NullArray => Ok(None),
        Frame::Array(items) if items.len() == 2 => {
            let mut items = items.into_iter();
            let value = value::bytes(command, items.next().expect("two"))?;
            let token = value::integer(command, items.next().expect("two"))?;
            let token =
                u64::try_from(token).map_err(|_| unexpected(command, &Frame::Integer(token)))?;
            Ok(Some(Leader { value, token }))
        }
        other => Err(unexpected(command, &other)),
    }
}

impl Client {
    /// `ELECT.CAMPAIGN election value ttl [WAIT wait]`: becomes the leader, waiting up to `wait`
    /// if another candidate leads. The returned guard keeps the leadership's lease alive and
    /// resigns when released or dropped; its token is the leadership's revision. `None` if
    /// another candidate still leads when the wait ends.
    pub async fn campaign(
        &self,
        election: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<LockGuard>> {
        let name = Bytes::copy_from_slice(election.as_ref());
        let mut args = Args::new("ELECT.CAMPAIGN").arg(&name).arg(value).number(ttl_ms(ttl));
        if let Some(wait) = wait {
            args = args.arg("WAIT").number(ttl_ms(wait));
        }
        let request = args.request().blocking_for(wait.unwrap_or_default());
        match self.call(request).await? {
            Frame::Null | Frame::NullArray => Ok(None),
            Frame::Integer(token) if token > 0 => {
                Ok(Some(LockGuard::start(self.clone(), name, token as u64, ttl, Release::Election)))
            }
            other => Err(unexpected("ELECT.CAMPAIGN", &other)),
        }
    }

    /// `ELECT.LEADER election`: the current leader, if any.
    pub async fn leader(&self, election: impl AsRef<[u8]>) -> Result<Option<Leader>> {
        let reply = self.call(Args::new("ELECT.LEADER").arg(election).request()).await?;
        leader_from("ELECT.LEADER", reply)
    }

    /// `ELECT.RESIGN election token`: true if `token` led and now has resigned.
    pub async fn resign(&self, election: impl AsRef<[u8]>, token: u64) -> Result<bool> {
        let request = Args::new("ELECT.RESIGN").arg(election).number(token).request();
        Ok(value::integer("ELECT.RESIGN", self.call(request).await?)? == 1)
    }

    /// `ELECT.OBSERVE election [after] TIMEOUT timeout`: waits until a leader with a token greater
    /// than `after` (any leader if `None`) holds the election, up to `timeout`.
    pub async fn observe(
        &self,
        election: impl AsRef<[u8]>,
        after: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<Leader>> {
        let mut args = Args::new("ELECT.OBSERVE").arg(election);
        if let Some(after) = after {
            args = args.number(after);
        }
        let args = args.arg("TIMEOUT").number(ttl_ms(timeout));
        let reply = self.call(args.request().blocking_for(timeout)).await?;
        leader_from("ELECT.OBSERVE", reply)
    }
}
