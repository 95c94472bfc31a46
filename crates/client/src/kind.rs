//! How the client treats each command when it sends and retries it.

use std::time::Duration;

/// The retry class of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Changes nothing: sent as is and retried freely.
    Read,
    /// A write `SEQ` can wrap: sent inside the client session and retried with the same sequence
    /// number, so it is applied once.
    Write,
    /// A write `SEQ` cannot wrap (lock and election waits, whose reply comes from a queue rather
    /// than from the entry; sessions; transactions; connection state): sent as is, and retried only when it surely was not
    /// applied (the connection could not be opened, or the server answered `TRYAGAIN`).
    Unsequenced,
}

/// Read-only commands of cohort's command table.
const READS: &[&str] = &[
    "get",
    "mget",
    "strlen",
    "getrange",
    "exists",
    "type",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "keys",
    "scan",
    "randomkey",
    "touch",
    "dbsize",
    "hget",
    "hmget",
    "hexists",
    "hlen",
    "hstrlen",
    "hgetall",
    "hkeys",
    "hvals",
    "hrandfield",
    "hscan",
    "llen",
    "lrange",
    "lindex",
    "lpos",
    "smembers",
    "sismember",
    "smismember",
    "scard",
    "srandmember",
    "sinter",
    "sunion",
    "sdiff",
    "sintercard",
    "sscan",
    "xlen",
    "xrange",
    "xrevrange",
    "xread",
    "xpending",
    "xinfo",
    "ping",
    "echo",
    "info",
    "time",
    "command",
    "cluster",
    "lock.info",
    "elect.leader",
];

/// Writes that `SEQ` refuses or that must not be wrapped.
const UNSEQUENCED: &[&str] = &[
    "lock.acquire",
    "elect.campaign",
    "elect.observe",
    "session.open",
    "session.close",
    "seq",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "hello",
    "auth",
    "select",
    "client",
    "readonly",
    "readwrite",
    "asking",
    "reset",
    "quit",
    "wait",
    "subscribe",
    "psubscribe",
    "config",
];

/// Commands whose reply may wait for other clients.
const BLOCKING: &[&str] = &[
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    "xread",
    "xreadgroup",
    "lock.acquire",
    "elect.campaign",
    "elect.observe",
    "wait",
];

pub(crate) fn classify(name: &[u8]) -> Kind {
    let is = |list: &[&str]| list.iter().any(|entry| entry.as_bytes().eq_ignore_ascii_case(name));
    if is(READS) {
        Kind::Read
    } else if is(UNSEQUENCED) {
        Kind::Unsequenced
    } else {
        Kind::Write
    }
}

/// One command and how to send it.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub args: Vec<bytes::Bytes>,
    pub kind: Kind,
    /// How long the server may legitimately hold the reply back (a blocking command's own
    /// timeout), added to the response timeout. `None` for a blocking command with no bound
    /// (e.g. `BLPOP key 0`): the reply is awaited as long as it takes.
    pub blocks_for: Option<Duration>,
}

impl Request {
    pub fn new(args: Vec<bytes::Bytes>) -> Request {
        assert!(!args.is_empty(), "a command has a name");
        let kind = classify(&args[0]);
        let blocks = BLOCKING.iter().any(|name| name.as_bytes().eq_ignore_ascii_case(&args[0]));
        // A raw blocking command's own timeout is not parsed here: its reply is awaited without a
        // bound. The typed helpers state the bound exactly with `blocking_for`.
        let blocks_for = if blocks { None } else { Some(Duration::ZERO) };
        Request { args, kind, blocks_for }
    }

    /// States that the server may hold the reply back for up to `wait`.
    pub fn blocking_for(mut self, wait: Duration) -> Request {
        self.blocks_for = Some(wait);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_wraps_only_plain_writes() {
        // Goal: reads stay unwrapped, blocking and queueing commands are never put inside SEQ.
        assert_eq!(classify(b"GET"), Kind::Read);
        assert_eq!(classify(b"lock.info"), Kind::Read);
        assert_eq!(classify(b"INCR"), Kind::Write);
        assert_eq!(classify(b"LOCK.FENCED"), Kind::Write);
        assert_eq!(classify(b"Lock.Refresh"), Kind::Write);
        // A retried pop that was already served replays the element it popped.
        assert_eq!(classify(b"BLPOP"), Kind::Write);
        assert_eq!(classify(b"XREADGROUP"), Kind::Write);
        assert_eq!(classify(b"LOCK.ACQUIRE"), Kind::Unsequenced);
        assert_eq!(classify(b"MULTI"), Kind::Unsequenced);
    }
}
