//! Choosing the server address for each request outside cluster mode.
//!
//! Every request asks the client's [`Router`] which address to use and tells it how the attempt
//! went. [`FailoverRouter`] (the default) sends everything to one address and moves to the next
//! when it fails: any cohort node accepts any command and forwards it to the leader. In cluster
//! mode the client routes by the slot map instead (`slots`: `CLUSTER SLOTS`, `-MOVED`, `-ASK`),
//! over every node it has learnt of; the router is not consulted then.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

/// Picks the address (an index into the client's address list) for a command.
pub trait Router: Send + Sync + std::fmt::Debug + 'static {
    /// The address for `command` (its arguments, name first; the first command of a pipeline).
    fn route(&self, command: &[Bytes]) -> usize;
    /// The attempt on `address` failed with a connection loss, timeout or retryable reply.
    fn failed(&self, address: usize);
}

/// Uses one address until it fails, then the next, round the list.
#[derive(Debug)]
pub struct FailoverRouter {
    current: AtomicUsize,
    count: usize,
}

impl FailoverRouter {
    /// A router over `count` addresses, starting with the first.
    pub fn new(count: usize) -> FailoverRouter {
        assert!(count > 0, "a router needs at least one address");
        FailoverRouter { current: AtomicUsize::new(0), count }
    }
}

impl Router for FailoverRouter {
    fn route(&self, _command: &[Bytes]) -> usize {
        self.current.load(Ordering::Relaxed) % self.count
    }

    fn failed(&self, address: usize) {
        // Only the first of several concurrent failures on one address moves the choice on.
        let next = (address + 1) % self.count;
        let _ = self.current.compare_exchange(address, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_moves_on_once_per_failure_and_wraps() {
        // Goal: a failure moves to the next address; a stale failure report does not skip one.
        let router = FailoverRouter::new(3);
        assert_eq!(router.route(&[]), 0);
        router.failed(0);
        assert_eq!(router.route(&[]), 1);
        router.failed(0); // a second, concurrent failure of the old address
        assert_eq!(router.route(&[]), 1);
        router.failed(1);
        router.failed(2);
        assert_eq!(router.route(&[]), 0);
    }
}
