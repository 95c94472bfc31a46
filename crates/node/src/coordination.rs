//! Coordination commands, replicated with the data: client sessions for
//! exactly-once retries, distributed locks with fencing tokens, and leader
//! election built on the locks.
//!
//! # Sessions (Raft dissertation §6.3)
//!
//! `SESSION.OPEN [IDLE ms]` registers a session; its id is the index of the
//! entry that opened it, unique for the life of the cluster. `SEQ id n cmd …`
//! runs `cmd` at most once per `(id, n)`: the state machine remembers, per
//! session, the last sequence number applied and its reply. A retry of the
//! same `n` (after a timeout, a lost connection or a leader change) is
//! answered with the remembered reply and changes nothing; an older `n` is
//! refused. Sessions expire after `IDLE` milliseconds of log time without a
//! command; the table is bounded and part of every snapshot.
//!
//! # Locks (Kleppmann, "How to do distributed locking", 2016)
//!
//! `LOCK.ACQUIRE name ttl_ms [WAIT timeout_ms] [OWNER id]` grants a lease
//! and returns a **fencing token**: the log index of the entry that granted
//! it. Log indexes only grow and every replica agrees on them, so a token is
//! strictly greater than every token granted before it for any name, across
//! failovers and restarts, with no counter to persist. Waiters queue in the
//! replicated state, first come first served; when the holder releases or
//! its lease expires (by log time: the leader proposes `LOCK.EXPIRE` when it
//! sees an expired lease with waiters), the head of the queue is granted in
//! that same entry. Every replica applies the grant; the replica that holds
//! the waiting client's connection (the waiter's origin node) answers it,
//! so a waiting client survives a change of leader. A waiter whose time runs
//! out is withdrawn by its origin node through `LOCK.CANCEL`, and answered
//! with a null reply only once the withdrawal is applied, so a client is
//! never told "timed out" about a lock it was granted.
//!
//! `LOCK.FENCED name token cmd …` runs `cmd` only if `token` is the current,
//! unexpired holder's token: a holder paused past its lease has its late
//! write refused.
//!
//! # Elections (etcd's `concurrency.Election` as the reference)
//!
//! `ELECT.CAMPAIGN election value ttl_ms [WAIT ms]` is an acquisition of the
//! lock named by the election with `value` as the owner; the token is the
//! leadership's revision. `ELECT.LEADER` reads the current leader,
//! `ELECT.RESIGN election token` releases, and `ELECT.OBSERVE election
//! [after_token] [TIMEOUT ms]` waits until a leader newer than `after_token`
//! holds the election.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use resp::Frame;

use crate::wire;

/// Sessions kept at most; opening one more evicts the one idle longest.
pub const SESSIONS_MAX: usize = 100_000;
/// A session's default idle timeout.
pub const SESSION_IDLE_MS_DEFAULT: u64 = 10 * 60 * 1000;
/// Waiters per lock at most.
pub const LOCK_WAITERS_MAX: usize = 10_000;

/// How a coordination command behaves, for routing and validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub name: &'static str,
    /// Redis convention: negative means "at least".
    pub arity: i32,
    pub write: bool,
    /// May wait for other clients (LOCK.ACQUIRE … WAIT, ELECT.OBSERVE).
    pub blocking: bool,
}

impl Spec {
    pub fn arity_accepts(&self, count: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            count == arity
        } else {
            count >= arity
        }
    }
}

const fn spec(name: &'static str, arity: i32, write: bool, blocking: bool) -> Spec {
    Spec { name, arity, write, blocking }
}

static TABLE: &[Spec] = &[
    spec("session.open", -1, true, false),
    spec("session.close", 2, true, false),
    spec("seq", -4, true, false),
    spec("lock.acquire", -3, true, true),
    spec("lock.release", 3, true, false),
    spec("lock.refresh", 4, true, false),
    spec("lock.info", 2, false, false),
    spec("lock.fenced", -4, true, false),
    spec("elect.campaign", -4, true, true),
    spec("elect.leader", 2, false, false),
    spec("elect.resign", 3, true, false),
    spec("elect.observe", -2, true, true),
];

/// Commands only nodes send (never accepted from clients).
static INTERNAL: &[Spec] =
    &[spec("lock.cancel", 4, true, false), spec("lock.expire", 2, true, false)];

/// The coordination command named `name` (case-insensitive), if any.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    TABLE.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Every coordination command clients may send, for `COMMAND`.
pub fn table() -> &'static [Spec] {
    TABLE
}

pub(crate) fn lookup_internal(name: &[u8]) -> Option<&'static Spec> {
    lookup(name).or_else(|| INTERNAL.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name)))
}

/// The client connection a lock waiter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaiterOrigin {
    pub node: u64,
    pub request: u64,
}

#[derive(Clone, Debug, PartialEq)]
struct Session {
    last_sequence: u64,
    last_reply: Option<Frame>,
    idle_ms: u64,
    expires_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    owner: Bytes,
    token: u64,
    expires_at_ms: u64,
    origin: Option<WaiterOrigin>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiter {
    origin: WaiterOrigin,
    owner: Bytes,
    ttl_ms: u64,
    deadline_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lock {
    holder: Option<Holder>,
    waiters: VecDeque<Waiter>,
}

/// What applying a coordination command produced.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Reply to the proposer's client now.
    Reply(Frame),
    /// The client waits (queued for a lock); its origin node answers later.
    Deferred,
    /// Nothing ready: park the client like a blocking pop, retrying after a
    /// change to `keys` (ELECT.OBSERVE).
    WouldBlock { keys: Vec<Bytes>, timeout_ms: Option<u64> },
    /// `SEQ` or `LOCK.FENCED` allowed the wrapped data command: the caller
    /// applies it (and, for `SEQ`, hands the reply back through
    /// [`Coordination::remember`]).
    Run { args: Vec<Bytes>, session: Option<(u64, u64)> },
}

/// The replicated coordination state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Coordination {
    sessions: BTreeMap<u64, Session>,
    session_expiry: BTreeSet<(u64, u64)>,
    locks: BTreeMap<Bytes, Lock>,
    /// (lease end, lock name) of every holder, for the leader's expiry scan.
    lease_expiry: BTreeSet<(u64, Bytes)>,
    /// Waiters granted or withdrawn by the last apply, to be answered by
    /// their origin nodes.
    pub notifications: Vec<(WaiterOrigin, Frame)>,
    /// Lock names whose state changed in the last apply (wakes observers).
    pub touched: Vec<Bytes>,
}

/// The key a lock's observers wait on, apart from the data keyspace.
pub(crate) fn lock_key(name: &[u8]) -> Bytes {
    let mut key = BytesMut::with_capacity(name.len() + 6);
    key.put_slice(b"\0lock:");
    key.put_slice(name);
    key.freeze()
}

fn syntax() -> Frame {
    Frame::error("ERR syntax error")
}

fn not_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn positive(bytes: &[u8]) -> Result<u64, Frame> {
    match parse_u64(bytes) {
        Some(value) if value > 0 => Ok(value),
        _ => Err(not_integer()),
    }
}

impl Coordination {
    /// Applies one coordination command at log `index` and log time `now_ms`.
    /// `origin` is the client connection the entry was proposed for.
    pub fn apply(
        &mut self,
        index: u64,
        now_ms: u64,
        origin: Option<WaiterOrigin>,
        args: &[Bytes],
    ) -> Outcome {
        self.expire_sessions(now_ms);
        let name = args[0].to_ascii_lowercase();
        let result = match name.as_slice() {
            b"session.open" => self.session_open(index, now_ms, &args[1..]),
            b"session.close" => Ok(self.session_close(&args[1])),
            b"seq" => self.seq(now_ms, &args[1..]),
            b"lock.acquire" => self.acquire(index, now_ms, origin, &args[1..], false),
            b"elect.campaign" => self.acquire(index, now_ms, origin, &args[1..], true),
            b"lock.release" | b"elect.resign" => self.release(index, now_ms, &args[1], &args[2]),
            b"lock.refresh" => self.refresh(now_ms, &args[1..]),
            b"lock.fenced" => self.fenced(now_ms, &args[1..]),
            b"lock.info" => Ok(Outcome::Reply(self.info(now_ms, &args[1]))),
            b"elect.leader" => Ok(Outcome::Reply(self.leader(now_ms, &args[1]))),
            b"elect.observe" => self.observe(now_ms, &args[1..]),
            b"lock.cancel" => self.cancel(index, now_ms, &args[1..]),
            b"lock.expire" => Ok(self.expire(index, now_ms, &args[1])),
            _ => Err(Frame::error("ERR unknown coordination command")),
        };
        result.unwrap_or_else(Outcome::Reply)
    }

    /// Serves a read-only coordination command (after a ReadIndex round).
    pub fn read(&self, now_ms: u64, args: &[Bytes]) -> Frame {
        match args[0].to_ascii_lowercase().as_slice() {
            b"lock.info" => self.info(now_ms, &args[1]),
            b"elect.leader" => self.leader(now_ms, &args[1]),
            _ => Frame::error("ERR not a read-only command"),
        }
    }

    // ----- sessions ---------------------------------------------------------

    fn session_open(&mut self, index: u64, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        let mut idle_ms = SESSION_IDLE_MS_DEFAULT;
        let mut id = index;
        for pair in args.chunks(2) {
            match pair {
                [option, value] if option.eq_ignore_ascii_case(b"idle") => {
                    idle_ms = positive(value)?
                }
                // A sharded cluster opens the session in every shard under
                // one id the node chose (far above any log index).
                [option, value] if option.eq_ignore_ascii_case(b"id") => {
                    id = parse_u64(value)
                        .filter(|&id| id > i64::MAX as u64 / 2)
                        .ok_or_else(|| Frame::error("ERR a session ID must be above 2^62"))?;
                    if self.sessions.contains_key(&id) {
                        return Err(Frame::error("ERR the session ID is in use"));
                    }
                }
                _ => return Err(syntax()),
            }
        }
        if self.sessions.len() >= SESSIONS_MAX {
            // Evict the session closest to expiring: it was idle longest
            // relative to its own timeout.
            if let Some(&(expires, id)) = self.session_expiry.iter().next() {
                self.session_expiry.remove(&(expires, id));
                self.sessions.remove(&id);
            }
        }
        let expires_at_ms = now_ms.saturating_add(idle_ms);
        let session = Session { last_sequence: 0, last_reply: None, idle_ms, expires_at_ms };
        self.sessions.insert(id, session);
        self.session_expiry.insert((expires_at_ms, id));
        Ok(Outcome::Reply(Frame::Integer(id as i64)))
    }

    fn session_close(&mut self, id: &[u8]) -> Outcome {
        let removed = parse_u64(id).and_then(|id| self.sessions.remove(&id).map(|s| (id, s)));
        let reply = match removed {
            Some((id, session)) => {
                self.session_expiry.remove(&(session.expires_at_ms, id));
                1
            }
            None => 0,
        };
        Outcome::Reply(Frame::Integer(reply))
    }

    fn expire_sessions(&mut self, now_ms: u64) {
        while let Some(&(expires, id)) = self.session_expiry.iter().next() {
            if expires > now_ms {
                break;
            }
            self.session_expiry.remove(&(expires, id));
            self.sessions.remove(&id);
        }
    }

    fn seq(&mut self, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        let id = parse_u64(&args[0]).ok_or_else(not_integer)?;
        let sequence = positive(&args[1])?;
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(Frame::error(format!(
                "SESSIONEXPIRED session {id} does not exist or expired; open a new one"
            )));
        };
        self.session_expiry.remove(&(session.expires_at_ms, id));
        session.expires_at_ms = now_ms.saturating_add(session.idle_ms);
        self.session_expiry.insert((session.expires_at_ms, id));
        if sequence == session.last_sequence {
            let reply = session.last_reply.clone().unwrap_or(Frame::Null);
            return Ok(Outcome::Reply(reply));
        }
        if sequence < session.last_sequence {
            return Err(Frame::error(format!(
                "ERR sequence number {sequence} of session {id} is older than the last one \
                 applied ({})",
                session.last_sequence
            )));
        }
        let inner = &args[2];
        // Blocking data commands are fine: a retry that finds the pop already
        // served gets the element it popped. Waiting in a lock queue is not:
        // that reply comes from the queue, not from this entry.
        let refused =
            lookup(inner).is_some_and(|spec| spec.blocking) || inner.eq_ignore_ascii_case(b"seq");
        if refused {
            return Err(Frame::error("ERR SEQ cannot wrap lock waits, observers or another SEQ"));
        }
        Ok(Outcome::Run { args: args[2..].to_vec(), session: Some((id, sequence)) })
    }

    /// Records the reply of the command a `SEQ` ran.
    pub fn remember(&mut self, session: (u64, u64), reply: &Frame) {
        if let Some(state) = self.sessions.get_mut(&session.0) {
            state.last_sequence = session.1;
            state.last_reply = Some(reply.clone());
        }
    }

    // ----- locks ------------------------------------------------------------

    fn acquire(
        &mut self,
        index: u64,
        now_ms: u64,
        origin: Option<WaiterOrigin>,
        args: &[Bytes],
        election: bool,
    ) -> Result<Outcome, Frame> {
        // LOCK.ACQUIRE name ttl [WAIT ms] [OWNER id]
        // ELECT.CAMPAIGN election value ttl [WAIT ms]
        let (name, owner, ttl, options) = if election {
            (&args[0], args[1].clone(), &args[2], &args[3..])
        } else {
            (&args[0], Bytes::new(), &args[1], &args[2..])
        };
        let ttl_ms = positive(ttl)?;
        let mut owner = owner;
        let mut wait_ms = None;
        let mut options = options.iter();
        while let Some(option) = options.next() {
            let value = options.next().ok_or_else(syntax)?;
            if option.eq_ignore_ascii_case(b"wait") {
                wait_ms = Some(positive(value)?);
            } else if option.eq_ignore_ascii_case(b"owner") && !election {
                owner = value.clone();
            } else {
                return Err(syntax());
            }
        }
        if owner.is_empty() {
            let origin = origin.unwrap_or(WaiterOrigin { node: 0, request: index });
            owner = Bytes::from(format!("{}:{}", origin.node, origin.request));
        }
        self.release_if_expired(index, now_ms, name);
        let lock = self.locks.entry(name.clone()).or_default();
        if lock.holder.is_none() && lock.waiters.is_empty() {
            self.grant(index, now_ms, name, owner, ttl_ms, origin);
            return Ok(Outcome::Reply(Frame::Integer(index as i64)));
        }
        let Some(wait_ms) = wait_ms else {
            return Ok(Outcome::Reply(Frame::Null));
        };
        let Some(origin) = origin else {
            return Err(Frame::error("ERR WAIT needs a client connection"));
        };
        if lock.waiters.len() >= LOCK_WAITERS_MAX {
            return Err(Frame::error("ERR too many waiters for this lock"));
        }
        let deadline_ms = now_ms.saturating_add(wait_ms);
        lock.waiters.push_back(Waiter { origin, owner, ttl_ms, deadline_ms });
        Ok(Outcome::Deferred)
    }

    fn grant(
        &mut self,
        index: u64,
        now_ms: u64,
        name: &Bytes,
        owner: Bytes,
        ttl_ms: u64,
        origin: Option<WaiterOrigin>,
    ) {
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let lock = self.locks.entry(name.clone()).or_default();
        debug_assert!(lock.holder.is_none());
        lock.holder = Some(Holder { owner, token: index, expires_at_ms, origin });
        self.lease_expiry.insert((expires_at_ms, name.clone()));
        self.touched.push(lock_key(name));
    }

    /// Drops the holder of `name` and hands the lock to the first waiter
    /// still waiting (by log time), answering it through its origin.
    fn pass_on(&mut self, index: u64, now_ms: u64, name: &Bytes) {
        let Some(lock) = self.locks.get_mut(name) else { return };
        if let Some(holder) = lock.holder.take() {
            self.lease_expiry.remove(&(holder.expires_at_ms, name.clone()));
        }
        self.touched.push(lock_key(name));
        while let Some(waiter) = lock.waiters.pop_front() {
            if waiter.deadline_ms <= now_ms {
                // Its origin withdraws it too; answering now is the same.
                self.notifications.push((waiter.origin, Frame::Null));
                continue;
            }
            self.notifications.push((waiter.origin, Frame::Integer(index as i64)));
            let Waiter { origin, owner, ttl_ms, .. } = waiter;
            self.grant(index, now_ms, name, owner, ttl_ms, Some(origin));
            return;
        }
        self.locks.remove(name);
    }

    fn release_if_expired(&mut self, index: u64, now_ms: u64, name: &Bytes) {
        let expired = self
            .locks
            .get(name)
            .and_then(|lock| lock.holder.as_ref())
            .is_some_and(|holder| holder.expires_at_ms <= now_ms);
        if expired {
            self.pass_on(index, now_ms, name);
        }
    }

    fn current_token(&self, now_ms: u64, name: &[u8]) -> Option<&Holder> {
        self.locks
            .get(name)
            .and_then(|lock| lock.holder.as_ref())
            .filter(|holder| holder.expires_at_ms > now_ms)
    }

    fn release(
        &mut self,
        index: u64,
        now_ms: u64,
        name: &Bytes,
        token: &[u8],
    ) -> Result<Outcome, Frame> {
        let token = parse_u64(token).ok_or_else(not_integer)?;
        let holds = self.current_token(now_ms, name).is_some_and(|holder| holder.token == token);
        if holds {
            self.pass_on(index, now_ms, name);
        } else {
            self.release_if_expired(index, now_ms, name);
        }
        Ok(Outcome::Reply(Frame::Integer(i64::from(holds))))
    }

    fn refresh(&mut self, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        let name = &args[0];
        let token = parse_u64(&args[1]).ok_or_else(not_integer)?;
        let ttl_ms = positive(&args[2])?;
        let Some(lock) = self.locks.get_mut(name) else {
            return Ok(Outcome::Reply(Frame::Integer(0)));
        };
        let Some(holder) =
            lock.holder.as_mut().filter(|h| h.token == token && h.expires_at_ms > now_ms)
        else {
            return Ok(Outcome::Reply(Frame::Integer(0)));
        };
        self.lease_expiry.remove(&(holder.expires_at_ms, name.clone()));
        holder.expires_at_ms = now_ms.saturating_add(ttl_ms);
        self.lease_expiry.insert((holder.expires_at_ms, name.clone()));
        Ok(Outcome::Reply(Frame::Integer(1)))
    }

    fn fenced(&mut self, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        let name = &args[0];
        let token = parse_u64(&args[1]).ok_or_else(not_integer)?;
        let current = self.current_token(now_ms, name).map(|holder| holder.token);
        if current != Some(token) {
            let holder = current.map_or("no one".to_string(), |t| format!("token {t}"));
            return Err(Frame::error(format!(
                "FENCED token {token} does not hold lock '{}' (held by {holder})",
                String::from_utf8_lossy(name)
            )));
        }
        let inner = &args[2];
        if lookup(inner).is_some() || commands::lookup(inner).is_some_and(|spec| spec.is_blocking())
        {
            return Err(Frame::error("ERR LOCK.FENCED wraps data commands only"));
        }
        Ok(Outcome::Run { args: args[2..].to_vec(), session: None })
    }

    fn info(&self, now_ms: u64, name: &[u8]) -> Frame {
        let Some(lock) = self.locks.get(name) else { return Frame::Null };
        let holder = lock.holder.as_ref().filter(|holder| holder.expires_at_ms > now_ms);
        let field = |text: &str| Frame::bulk(Bytes::copy_from_slice(text.as_bytes()));
        Frame::Map(vec![
            (field("owner"), holder.map_or(Frame::Null, |h| Frame::Bulk(h.owner.clone()))),
            (field("token"), holder.map_or(Frame::Null, |h| Frame::Integer(h.token as i64))),
            (
                field("ttl_ms"),
                holder.map_or(Frame::Integer(-2), |h| {
                    Frame::Integer(h.expires_at_ms.saturating_sub(now_ms) as i64)
                }),
            ),
            (field("waiters"), Frame::Integer(lock.waiters.len() as i64)),
        ])
    }

    fn leader(&self, now_ms: u64, election: &[u8]) -> Frame {
        match self.current_token(now_ms, election) {
            Some(holder) => Frame::Array(vec![
                Frame::Bulk(holder.owner.clone()),
                Frame::Integer(holder.token as i64),
            ]),
            None => Frame::Null,
        }
    }

    fn observe(&mut self, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        // ELECT.OBSERVE election [after_token] [TIMEOUT ms]
        let election = &args[0];
        let mut after = 0;
        let mut timeout_ms = None;
        let mut rest = args[1..].iter();
        while let Some(word) = rest.next() {
            if word.eq_ignore_ascii_case(b"timeout") {
                timeout_ms = Some(positive(rest.next().ok_or_else(syntax)?)?);
            } else {
                after = parse_u64(word).ok_or_else(not_integer)?;
            }
        }
        match self.current_token(now_ms, election) {
            Some(holder) if holder.token > after => {
                Ok(Outcome::Reply(self.leader(now_ms, election)))
            }
            _ => Ok(Outcome::WouldBlock { keys: vec![lock_key(election)], timeout_ms }),
        }
    }

    fn cancel(&mut self, index: u64, now_ms: u64, args: &[Bytes]) -> Result<Outcome, Frame> {
        // LOCK.CANCEL name origin_node origin_request (internal)
        let name = &args[0];
        let origin = WaiterOrigin {
            node: parse_u64(&args[1]).ok_or_else(not_integer)?,
            request: parse_u64(&args[2]).ok_or_else(not_integer)?,
        };
        self.release_if_expired(index, now_ms, name);
        let Some(lock) = self.locks.get_mut(name) else {
            return Ok(Outcome::Reply(Frame::Null));
        };
        if let Some(holder) = lock.holder.as_ref().filter(|holder| holder.origin == Some(origin)) {
            // Granted before the withdrawal: the grant stands.
            return Ok(Outcome::Reply(Frame::Integer(holder.token as i64)));
        }
        lock.waiters.retain(|waiter| waiter.origin != origin);
        Ok(Outcome::Reply(Frame::Null))
    }

    fn expire(&mut self, index: u64, now_ms: u64, name: &Bytes) -> Outcome {
        self.release_if_expired(index, now_ms, name);
        Outcome::Reply(Frame::ok())
    }

    /// The first lock whose lease ended by `now_ms` and that has waiters:
    /// the leader proposes `LOCK.EXPIRE` for it.
    pub fn expired_lease(&self, now_ms: u64) -> Option<Bytes> {
        self.lease_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now_ms)
            .find(|(_, name)| self.locks.get(name).is_some_and(|lock| !lock.waiters.is_empty()))
            .map(|(_, name)| name.clone())
    }

    // ----- snapshots --------------------------------------------------------

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.sessions.len() as u32);
        for (id, session) in &self.sessions {
            out.put_u64_le(*id);
            out.put_u64_le(session.last_sequence);
            out.put_u64_le(session.idle_ms);
            out.put_u64_le(session.expires_at_ms);
            match &session.last_reply {
                None => out.put_u8(0),
                Some(frame) => {
                    out.put_u8(1);
                    put_bytes(out, &wire::encode_frame(frame));
                }
            }
        }
        out.put_u32_le(self.locks.len() as u32);
        for (name, lock) in &self.locks {
            put_bytes(out, name);
            match &lock.holder {
                None => out.put_u8(0),
                Some(holder) => {
                    out.put_u8(1);
                    put_bytes(out, &holder.owner);
                    out.put_u64_le(holder.token);
                    out.put_u64_le(holder.expires_at_ms);
                    match holder.origin {
                        None => out.put_u8(0),
                        Some(origin) => {
                            out.put_u8(1);
                            out.put_u64_le(origin.node);
                            out.put_u64_le(origin.request);
                        }
                    }
                }
            }
            out.put_u32_le(lock.waiters.len() as u32);
            for waiter in &lock.waiters {
                out.put_u64_le(waiter.origin.node);
                out.put_u64_le(waiter.origin.request);
                put_bytes(out, &waiter.owner);
                out.put_u64_le(waiter.ttl_ms);
                out.put_u64_le(waiter.deadline_ms);
            }
        }
    }

    /// Reads what [`Coordination::encode`] wrote. Snapshots are checked
    /// before they are trusted, so a malformed one is a bug: it panics.
    pub fn decode(data: &mut Bytes) -> Coordination {
        let mut state = Coordination::default();
        for _ in 0..data.get_u32_le() {
            let id = data.get_u64_le();
            let last_sequence = data.get_u64_le();
            let idle_ms = data.get_u64_le();
            let expires_at_ms = data.get_u64_le();
            let last_reply = match data.get_u8() {
                0 => None,
                _ => Some(wire::decode_frame(get_bytes(data)).expect("a cached reply decodes")),
            };
            state
                .sessions
                .insert(id, Session { last_sequence, last_reply, idle_ms, expires_at_ms });
            state.session_expiry.insert((expires_at_ms, id));
        }
        for _ in 0..data.get_u32_le() {
            let name = get_bytes(data);
            let holder = match data.get_u8() {
                0 => None,
                _ => {
                    let owner = get_bytes(data);
                    let token = data.get_u64_le();
                    let expires_at_ms = data.get_u64_le();
                    let origin = match data.get_u8() {
                        0 => None,
                        _ => Some(WaiterOrigin {
                            node: data.get_u64_le(),
                            request: data.get_u64_le(),
                        }),
                    };
                    state.lease_expiry.insert((expires_at_ms, name.clone()));
                    Some(Holder { owner, token, expires_at_ms, origin })
                }
            };
            let mut waiters = VecDeque::new();
            for _ in 0..data.get_u32_le() {
                let origin = WaiterOrigin { node: data.get_u64_le(), request: data.get_u64_le() };
                let owner = get_bytes(data);
                let ttl_ms = data.get_u64_le();
                let deadline_ms = data.get_u64_le();
                waiters.push_back(Waiter { origin, owner, ttl_ms, deadline_ms });
            }
            state.locks.insert(name, Lock { holder, waiters });
        }
        state
    }
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

fn get_bytes(data: &mut Bytes) -> Bytes {
    let length = data.get_u32_le() as usize;
    assert!(data.remaining() >= length, "snapshot truncated");
    data.split_to(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
    }

    fn origin(request: u64) -> Option<WaiterOrigin> {
        Some(WaiterOrigin { node: 1, request })
    }

    fn reply(outcome: Outcome) -> Frame {
        match outcome {
            Outcome::Reply(frame) => frame,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn tokens_are_log_indexes_and_grow_across_holders() {
        let mut state = Coordination::default();
        let first = reply(state.apply(10, 0, origin(1), &args(&["LOCK.ACQUIRE", "l", "1000"])));
        assert_eq!(first, Frame::Integer(10));
        let held = reply(state.apply(11, 1, origin(2), &args(&["LOCK.ACQUIRE", "l", "1000"])));
        assert_eq!(held, Frame::Null, "held and no WAIT: refused at once");
        assert_eq!(
            reply(state.apply(12, 2, None, &args(&["LOCK.RELEASE", "l", "10"]))),
            Frame::Integer(1)
        );
        let second = reply(state.apply(13, 3, origin(3), &args(&["LOCK.ACQUIRE", "l", "1000"])));
        assert_eq!(second, Frame::Integer(13));
    }

    #[test]
    fn waiters_are_granted_in_arrival_order_and_answered_through_their_origin() {
        let mut state = Coordination::default();
        state.apply(1, 0, origin(1), &args(&["LOCK.ACQUIRE", "l", "1000"]));
        let wait = args(&["LOCK.ACQUIRE", "l", "1000", "WAIT", "5000"]);
        assert_eq!(state.apply(2, 1, origin(2), &wait), Outcome::Deferred);
        assert_eq!(state.apply(3, 2, origin(3), &wait), Outcome::Deferred);
        state.notifications.clear();
        state.apply(4, 3, None, &args(&["LOCK.RELEASE", "l", "1"]));
        assert_eq!(state.notifications, vec![(origin(2).unwrap(), Frame::Integer(4))]);
        state.notifications.clear();
        // The lease of the second holder expires (log time): the leader
        // proposes LOCK.EXPIRE and the next waiter gets the lock.
        assert_eq!(state.expired_lease(1_004), Some(Bytes::from_static(b"l")));
        state.apply(5, 1_004, None, &args(&["LOCK.EXPIRE", "l"]));
        assert_eq!(state.notifications, vec![(origin(3).unwrap(), Frame::Integer(5))]);
    }

    #[test]
    fn a_withdrawn_waiter_is_told_null_unless_it_was_granted_first() {
        let mut state = Coordination::default();
        state.apply(1, 0, origin(1), &args(&["LOCK.ACQUIRE", "l", "1000"]));
        let wait = args(&["LOCK.ACQUIRE", "l", "1000", "WAIT", "100"]);
        state.apply(2, 1, origin(2), &wait);
        state.apply(3, 1, origin(3), &wait);
        assert_eq!(
            reply(state.apply(4, 101, None, &args(&["LOCK.CANCEL", "l", "1", "2"]))),
            Frame::Null
        );
        state.apply(5, 102, None, &args(&["LOCK.RELEASE", "l", "1"]));
        // Waiter 3's deadline passed too, so it was answered null, not granted.
        assert_eq!(state.notifications.last(), Some(&(origin(3).unwrap(), Frame::Null)));
        state.apply(6, 103, origin(7), &wait);
        state.apply(7, 104, origin(8), &wait);
        state.apply(8, 105, None, &args(&["LOCK.RELEASE", "l", "6"]));
        let granted = reply(state.apply(9, 106, None, &args(&["LOCK.CANCEL", "l", "1", "8"])));
        assert_eq!(granted, Frame::Integer(8), "granted before the withdrawal applied");
    }

    #[test]
    fn a_paused_holder_past_its_lease_has_its_fenced_write_refused() {
        let mut state = Coordination::default();
        state.apply(1, 0, origin(1), &args(&["LOCK.ACQUIRE", "l", "100"]));
        let write = args(&["LOCK.FENCED", "l", "1", "SET", "k", "v"]);
        assert!(matches!(state.apply(2, 50, None, &write), Outcome::Run { .. }));
        // The holder pauses; its lease ends and another client takes the lock.
        state.apply(3, 200, origin(2), &args(&["LOCK.ACQUIRE", "l", "100"]));
        let Outcome::Reply(Frame::Error(text)) = state.apply(4, 210, None, &write) else {
            panic!("a stale token must be refused");
        };
        assert!(text.starts_with("FENCED"), "{text}");
    }

    #[test]
    fn seq_runs_a_command_once_and_replays_its_reply() {
        let mut state = Coordination::default();
        assert_eq!(reply(state.apply(7, 0, None, &args(&["SESSION.OPEN"]))), Frame::Integer(7));
        let incr = args(&["SEQ", "7", "1", "INCR", "n"]);
        let Outcome::Run { session, .. } = state.apply(8, 1, None, &incr) else { panic!("run") };
        state.remember(session.unwrap(), &Frame::Integer(1));
        assert_eq!(reply(state.apply(9, 2, None, &incr)), Frame::Integer(1), "a retry replays");
        let old = args(&["SEQ", "7", "0", "INCR", "n"]);
        assert!(matches!(reply(state.apply(10, 3, None, &old)), Frame::Error(_)));
        let idle = args(&["SEQ", "7", "2", "INCR", "n"]);
        let expired = reply(state.apply(11, 3 + SESSION_IDLE_MS_DEFAULT, None, &idle));
        assert!(matches!(expired, Frame::Error(text) if text.starts_with("SESSIONEXPIRED")));
    }

    #[test]
    fn the_state_round_trips_through_a_snapshot() {
        let mut state = Coordination::default();
        state.apply(1, 0, None, &args(&["SESSION.OPEN", "IDLE", "5000"]));
        state.remember((1, 3), &Frame::NullArray);
        state.apply(2, 0, origin(1), &args(&["LOCK.ACQUIRE", "l", "1000", "OWNER", "me"]));
        state.apply(3, 0, origin(2), &args(&["LOCK.ACQUIRE", "l", "1000", "WAIT", "9"]));
        state.notifications.clear();
        state.touched.clear();
        let mut out = BytesMut::new();
        state.encode(&mut out);
        let restored = Coordination::decode(&mut out.freeze());
        assert_eq!(restored, state);
    }
}
