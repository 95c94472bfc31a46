//! Distributed locks with fencing tokens: [`Client::lock`] and [`LockGuard`].
//!
//! A lock is a lease: it is held for `ttl` after the grant or the last refresh. The guard
//! refreshes it every `ttl / 3` in a background task, so a holder that stays connected keeps it;
//! a holder that cannot reach the cluster for a whole `ttl`, or whose refresh is refused, has
//! lost it, and [`LockGuard::lost`] says so. Losing a lease cannot be prevented (a process may be
//! paused past its lease), so writes protected by the lock should go through
//! [`LockGuard::fenced`]: the server runs them only while the token is current (Kleppmann,
//! "How to do distributed locking", 2016).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resp::Frame;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{unexpected, Client};
use crate::commands::{ttl_ms, Args};
use crate::error::{Error, Result};
use crate::value;

/// Builds a lock acquisition; see [`Client::lock`].
#[derive(Debug)]
pub struct LockBuilder {
    client: Client,
    name: Bytes,
    ttl: Duration,
    wait: Option<Duration>,
    owner: Option<Bytes>,
}

impl Client {
    /// A lock named `name` whose lease lasts `ttl` past each refresh.
    pub fn lock(&self, name: impl AsRef<[u8]>, ttl: Duration) -> LockBuilder {
        LockBuilder {
            client: self.clone(),
            name: Bytes::copy_from_slice(name.as_ref()),
            ttl,
            wait: None,
            owner: None,
        }
    }
}

impl LockBuilder {
    /// Queue for the lock for up to `timeout` if it is held (first come, first served).
    pub fn wait(mut self, timeout: Duration) -> LockBuilder {
        self.wait = Some(timeout);
        self
    }

    /// Record `owner` as the holder (shown by `LOCK.INFO`).
    pub fn owner(mut self, owner: impl AsRef<[u8]>) -> LockBuilder {
        self.owner = Some(Bytes::copy_from_slice(owner.as_ref()));
        self
    }

    /// Acquires the lock, or fails with [`Error::LockNotAcquired`] if it is still held when the
    /// wait (if any) ends.
    pub async fn acquire(self) -> Result<LockGuard> {
        let name = self.name.clone();
        self.try_acquire().await?.ok_or(Error::LockNotAcquired(name))
    }

    /// Acquires the lock, or `None` if it is still held when the wait (if any) ends.
    ///
    /// `LOCK.ACQUIRE` queues, so it is not sent inside a session: if the connection is lost after
    /// sending it, the call fails rather than risk queueing twice, and a grant whose reply was
    /// lost simply expires after `ttl`.
    pub async fn try_acquire(self) -> Result<Option<LockGuard>> {
        let mut args = Args::new("LOCK.ACQUIRE").arg(&self.name).number(ttl_ms(self.ttl));
        if let Some(wait) = self.wait {
            args = args.arg("WAIT").number(ttl_ms(wait));
        }
        if let Some(owner) = &self.owner {
            args = args.arg("OWNER").arg(owner);
        }
        let request = args.request().blocking_for(self.wait.unwrap_or_default());
        match self.client.call(request).await? {
            Frame::Null | Frame::NullArray => Ok(None),
            Frame::Integer(token) if token > 0 => Ok(Some(LockGuard::start(
                self.client,
                self.name,
                token as u64,
                self.ttl,
                Release::Lock,
            ))),
            other => Err(unexpected("LOCK.ACQUIRE", &other)),
        }
    }
}

/// How a guard gives its lease back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Release {
    Lock,
    Election,
}

impl Release {
    fn command(self) -> &'static str {
        match self {
            Release::Lock => "LOCK.RELEASE",
            Release::Election => "ELECT.RESIGN",
        }
    }
}

/// A held lock (or won election). Refreshes its lease in the background; dropping it releases
/// the lock in the background (within a tokio runtime; otherwise the lease simply expires).
#[derive(Debug)]
pub struct LockGuard {
    client: Client,
    name: Bytes,
    token: u64,
    release: Release,
    /// Becomes true once the lease is known lost.
    lost: Arc<watch::Sender<bool>>,
    /// Dropping the sender stops the refresher.
    stop: Option<watch::Sender<bool>>,
    released: bool,
}

impl LockGuard {
    pub(crate) fn start(
        client: Client,
        name: Bytes,
        token: u64,
        ttl: Duration,
        release: Release,
    ) -> LockGuard {
        let lost = Arc::new(watch::channel(false).0);
        let (stop, stopped) = watch::channel(false);
        let refresher = Refresher {
            client: client.clone(),
            name: name.clone(),
            token,
            ttl,
            lost: lost.clone(),
        };
        tokio::spawn(refresher.run(stopped));
        LockGuard { client, name, token, release, lost, stop: Some(stop), released: false }
    }

    /// The fencing token: greater than every token granted before it, for any lock.
    pub fn token(&self) -> u64 {
        self.token
    }

    pub fn name(&self) -> &Bytes {
        &self.name
    }

    /// True once the lease is known lost: a refresh was refused, a fenced write was refused, or
    /// no refresh succeeded for a whole `ttl`. Stays true.
    pub fn lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Waits until the lease is lost (returns at once if it already is).
    pub async fn wait_lost(&self) {
        let mut changed = self.lost.subscribe();
        // The guard holds the sender, so the channel cannot close while this waits.
        let _ = changed.wait_for(|lost| *lost).await;
    }

    /// `LOCK.FENCED name token command…`: runs `command` only while this token holds the lock.
    /// A refusal is [`Error::Fenced`] and marks the guard lost.
    ///
    /// On a sharded cluster the command is routed, and run, in the shard of the lock's name, so
    /// its keys should share the name's hash slot: name the lock `{tag}` and its keys
    /// `{tag}…`.
    pub async fn fenced(&self, command: &[&[u8]]) -> Result<Frame> {
        assert!(!command.is_empty(), "a command has a name");
        let args = Args::new("LOCK.FENCED").arg(&self.name).number(self.token).args(command);
        let result = self.client.call(args.request()).await;
        if matches!(result, Err(Error::Fenced(_))) {
            self.lost.send_replace(true);
        }
        result
    }

    /// Releases the lock; true if it was still held by this token.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.stop.take();
        release(&self.client, self.release, &self.name, self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.take();
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, kind, name, token) =
                (self.client.clone(), self.release, self.name.clone(), self.token);
            runtime.spawn(async move {
                let _ = release(&client, kind, &name, token).await;
            });
        }
    }
}

async fn release(client: &Client, kind: Release, name: &Bytes, token: u64) -> Result<bool> {
    let request = Args::new(kind.command()).arg(name).number(token).request();
    Ok(value::integer(kind.command(), client.call(request).await?)? == 1)
}

struct Refresher {
    client: Client,
    name: Bytes,
    token: u64,
    ttl: Duration,
    lost: Arc<watch::Sender<bool>>,
}

impl Refresher {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let period = (self.ttl / 3).max(Duration::from_millis(1));
        // A lease accepted by a refresh lasts `ttl` from some moment after the refresh was sent,
        // so `sent + ttl` is a safe lower bound. The first one counts from the grant's reply,
        // which slightly overestimates it: the server's own expiry is what fenced writes obey.
        let mut held_until = Instant::now() + self.ttl;
        loop {
            tokio::select! {
                // Err: the guard is gone (released or dropped).
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let sent_at = Instant::now();
            let args = Args::new("LOCK.REFRESH")
                .arg(&self.name)
                .number(self.token)
                .number(ttl_ms(self.ttl));
            // A refresh still retrying when the lease runs out cannot save it: stop waiting then.
            let refreshed = tokio::select! {
                _ = stopped.changed() => return,
                reply = tokio::time::timeout_at(held_until, self.client.call(args.request())) => {
                    reply
                }
            };
            match refreshed {
                Ok(Ok(Frame::Integer(1))) => held_until = sent_at + self.ttl,
                Ok(Ok(_)) | Err(_) => return self.mark_lost(),
                Ok(Err(_)) if Instant::now() >= held_until => return self.mark_lost(),
                Ok(Err(_)) => {} // the cluster is unreachable: try again next period
            }
        }
    }

    fn mark_lost(&self) {
        self.lost.send_replace(true);
    }
}
