//! The client: addresses, pools, the router, the session, and the retry loop every call goes
//! through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use resp::Frame;

use crate::error::{error_code, is_retryable_reply, Error, Result};
use crate::kind::{Kind, Request};
use crate::pool::Pool;
use crate::router::{FailoverRouter, Router};

/// Settings of a [`Client`]; [`Options::default`] suits a local cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long opening one TCP connection may take.
    pub connect_timeout: Duration,
    /// How long a reply may take, beyond a blocking command's own wait.
    pub response_timeout: Duration,
    /// Attempts per call, the first included (at least 1).
    pub attempts_max: u32,
    /// Pause before the first retry; doubled before each next one, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Idle connections kept per address.
    pub idle_connections_max: usize,
    /// Wrap writes in `SEQ` so a retried write is applied once (see the crate docs).
    pub exactly_once: bool,
    /// A session's idle timeout on the server (`SESSION.OPEN IDLE`).
    pub session_idle: Duration,
    /// Idle sessions kept; concurrent writes each use their own session.
    pub idle_sessions_max: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(5),
            attempts_max: 8,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            idle_connections_max: 4,
            exactly_once: true,
            session_idle: Duration::from_secs(600),
            idle_sessions_max: PIPELINE_SESSIONS_MAX,
        }
    }
}

/// Sessions one pipeline uses at most; beyond, its writes share them (see [`crate::Pipeline`]).
pub const PIPELINE_SESSIONS_MAX: usize = 64;

/// A client session: one write in flight at a time, numbered by `next_sequence`.
#[derive(Debug)]
struct Session {
    id: u64,
    next_sequence: u64,
}

impl Session {
    fn take_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }
}

#[derive(Debug)]
struct Inner {
    pools: Vec<Pool>,
    router: Box<dyn Router>,
    options: Options,
    /// Idle sessions. The server remembers only the last sequence number of a session and
    /// refuses older ones, so a session carries one write at a time; concurrent writes take
    /// separate sessions.
    sessions: Mutex<Vec<Session>>,
}

/// A handle to a cohort cluster; cheap to clone, all clones share pools and sessions.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
    exactly_once: bool,
}

/// How one exchange on one connection ended.
struct Exchange {
    /// Replies received, in order (possibly fewer than the commands sent).
    replies: Vec<Frame>,
    /// Why it stopped early, and whether the commands may have reached the server.
    failure: Option<(Error, bool)>,
}

impl Client {
    /// Connects to a cluster through any of `addresses` (`host:port`), with default options.
    pub async fn connect(addresses: &[&str]) -> Result<Client> {
        Client::connect_with(addresses, Options::default()).await
    }

    /// Connects with `options`; checks that some address answers `PING`.
    pub async fn connect_with(addresses: &[&str], options: Options) -> Result<Client> {
        if addresses.is_empty() {
            return Err(Error::NoAddresses);
        }
        let router = Box::new(FailoverRouter::new(addresses.len()));
        let client = Client::with_router(addresses, options, router)?;
        let pong = client.execute(Request::new(vec![Bytes::from_static(b"PING")])).await?;
        check(pong, "PING")?;
        Ok(client)
    }

    /// A client over `addresses` routed by `router`; connects lazily.
    pub fn with_router(
        addresses: &[&str],
        options: Options,
        router: Box<dyn Router>,
    ) -> Result<Client> {
        if addresses.is_empty() {
            return Err(Error::NoAddresses);
        }
        assert!(options.attempts_max >= 1, "attempts_max counts the first attempt");
        let pools = addresses
            .iter()
            .map(|address| Pool::new(address.to_string(), options.idle_connections_max))
            .collect();
        let exactly_once = options.exactly_once;
        let inner = Inner { pools, router, options, sessions: Mutex::new(Vec::new()) };
        Ok(Client { inner: Arc::new(inner), exactly_once })
    }

    /// The same client without sessions: writes are sent as they are, and retried only when
    /// they surely were not applied. Shares connections with `self`.
    pub fn raw(&self) -> Client {
        Client { inner: self.inner.clone(), exactly_once: false }
    }

    /// True if writes are wrapped in `SEQ` (the default).
    pub fn is_exactly_once(&self) -> bool {
        self.exactly_once
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Sends any command (name first) and returns its reply; an error reply is `Err`
    /// ([`Error::Fenced`] for `-FENCED`, [`Error::Server`] otherwise). Writes go through the
    /// session like the typed calls. The reply to a blocking command (`BLPOP`, `XREADGROUP`,
    /// `LOCK.ACQUIRE`…) sent this way is awaited without a response timeout, since its own
    /// timeout is not parsed here; the typed calls bound it exactly.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Frame> {
        assert!(!args.is_empty(), "a command has a name");
        let request = Request::new(args.iter().map(|arg| Bytes::copy_from_slice(arg)).collect());
        let reply = self.execute(request).await?;
        check(reply, &String::from_utf8_lossy(args[0]))
    }

    /// Sends one request with the retry policy of its kind; error replies come back as frames.
    pub(crate) async fn execute(&self, request: Request) -> Result<Frame> {
        match request.kind {
            Kind::Write if self.exactly_once => self.execute_sequenced(request).await,
            // Without a session a write is retried only when it surely did not run.
            Kind::Write => self.execute_plain(Request { kind: Kind::Unsequenced, ..request }).await,
            Kind::Read | Kind::Unsequenced => self.execute_plain(request).await,
        }
    }

    async fn execute_plain(&self, request: Request) -> Result<Frame> {
        let mut last_error = None;
        for attempt in 0..self.inner.options.attempts_max {
            self.pause_before(attempt).await;
            let address = self.inner.router.route(&request.args);
            let exchange = self.exchange(address, std::slice::from_ref(&request)).await;
            if let Some(reply) = exchange.replies.into_iter().next() {
                if self.may_retry_reply(request.kind, &reply) {
                    self.inner.router.failed(address);
                    last_error = Some(Error::Server(error_text(&reply)));
                    continue;
                }
                return Ok(reply);
            }
            let (error, sent) = exchange.failure.expect("no reply means a failure");
            let retry = error.is_retryable() && (request.kind != Kind::Unsequenced || !sent);
            if !retry {
                return Err(error);
            }
            self.address_failed(address);
            last_error = Some(error);
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// A write inside the session: `SEQ id n command…`, every attempt with the same `n`.
    async fn execute_sequenced(&self, request: Request) -> Result<Frame> {
        let mut session = self.take_session().await?;
        let mut sequence = session.take_sequence();
        // Whether an earlier attempt of this (session, sequence) may have been applied.
        let mut maybe_applied = false;
        let mut last_error = None;
        // A write refused for an expired session is re-sent in the new one at once: nothing
        // failed that a pause would help.
        let mut pause = true;
        for attempt in 0..self.inner.options.attempts_max {
            if pause {
                self.pause_before(attempt).await;
            }
            pause = true;
            let wrapped = Request {
                args: wrap_in_sequence(session.id, sequence, &request.args),
                ..request.clone()
            };
            let address = self.inner.router.route(&request.args);
            let exchange = self.exchange(address, std::slice::from_ref(&wrapped)).await;
            if let Some(reply) = exchange.replies.into_iter().next() {
                if is_session_expired(&reply) {
                    if maybe_applied {
                        // Nothing on the server remembers the earlier attempt any more.
                        return Err(Error::SessionExpired(error_text(&reply)));
                    }
                    // Refused before running: safe to send again in a fresh session.
                    session = self.open_session().await?;
                    sequence = session.take_sequence();
                    last_error = Some(Error::Server(error_text(&reply)));
                    pause = false;
                    continue;
                }
                if is_retryable_reply_frame(&reply) {
                    // CLUSTERDOWN may come after the entry was proposed; TRYAGAIN never does.
                    maybe_applied |= !is_try_again(&reply);
                    self.inner.router.failed(address);
                    last_error = Some(Error::Server(error_text(&reply)));
                    continue;
                }
                self.put_session(session);
                return Ok(reply);
            }
            let (error, sent) = exchange.failure.expect("no reply means a failure");
            maybe_applied |= sent;
            if !error.is_retryable() {
                self.put_session(session);
                return Err(error);
            }
            self.address_failed(address);
            last_error = Some(error);
        }
        // The sequence number is spent either way: the next write uses a greater one, so a late
        // copy of this one can never run after it.
        self.put_session(session);
        Err(last_error.expect("at least one attempt"))
    }

    /// Sends a pipeline, retrying the commands without a definite reply. Each write takes its own
    /// session (up to [`PIPELINE_SESSIONS_MAX`], then they are shared round the pipeline), so a
    /// re-sent write is answered from its session's memory. See [`crate::Pipeline`].
    pub(crate) async fn execute_pipeline(&self, requests: &[Request]) -> Result<Vec<Frame>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let writes = requests.iter().filter(|request| request.kind == Kind::Write).count();
        let sequenced = self.exactly_once && writes > 0;
        let mut sessions = if sequenced {
            self.take_sessions(writes.min(PIPELINE_SESSIONS_MAX)).await?
        } else {
            Vec::new()
        };
        let mut expired = vec![false; sessions.len()];
        let mut session_of = vec![None; requests.len()];
        let mut wire = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            if sequenced && request.kind == Kind::Write {
                let slot = session_of.iter().flatten().count() % sessions.len();
                session_of[index] = Some(slot);
                let session: &mut Session = &mut sessions[slot];
                let args = wrap_in_sequence(session.id, session.take_sequence(), &request.args);
                wire.push(Request { args, ..request.clone() });
            } else {
                wire.push(request.clone());
            }
        }
        let retryable = requests.iter().all(|request| match request.kind {
            Kind::Read => true,
            Kind::Write => sequenced,
            Kind::Unsequenced => false,
        });
        let mut replies: Vec<Option<Frame>> = vec![None; requests.len()];
        let mut outcome = None;
        for attempt in 0..self.inner.options.attempts_max {
            self.pause_before(attempt).await;
            let pending: Vec<usize> =
                (0..replies.len()).filter(|&i| replies[i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let batch: Vec<Request> = pending.iter().map(|&i| wire[i].clone()).collect();
            let address = self.inner.router.route(&batch[0].args);
            let exchange = self.exchange(address, &batch).await;
            let mut retry_reply = false;
            for (&index, reply) in pending.iter().zip(exchange.replies) {
                if is_session_expired(&reply) {
                    // The session is gone: never hand it to another write.
                    if let Some(slot) = session_of[index] {
                        expired[slot] = true;
                    }
                }
                if retryable && is_retryable_reply_frame(&reply) {
                    retry_reply = true;
                    outcome = Some(Error::Server(error_text(&reply)));
                } else {
                    replies[index] = Some(reply);
                }
            }
            if retry_reply {
                self.inner.router.failed(address);
            }
            if let Some((error, sent)) = exchange.failure {
                let retry = error.is_retryable() && (retryable || !sent);
                if retry {
                    self.address_failed(address);
                }
                outcome = Some(error);
                if !retry {
                    break;
                }
            }
        }
        for (session, expired) in sessions.into_iter().zip(expired) {
            if !expired {
                self.put_session(session);
            }
        }
        if replies.iter().all(Option::is_some) {
            return Ok(replies.into_iter().map(|reply| reply.expect("checked")).collect());
        }
        Err(outcome.expect("an unanswered command means a failed attempt"))
    }

    /// One round trip on one connection: write every request, read their replies in order.
    async fn exchange(&self, address: usize, requests: &[Request]) -> Exchange {
        let pool = &self.inner.pools[address];
        let options = &self.inner.options;
        let mut connection = match pool.get(options.connect_timeout).await {
            Ok(connection) => connection,
            Err(error) => return Exchange { replies: Vec::new(), failure: Some((error, false)) },
        };
        let commands: Vec<Vec<Bytes>> = requests.iter().map(|r| r.args.clone()).collect();
        if let Err(error) = connection.send(&commands).await {
            // Part of the bytes may have left: count them as sent.
            return Exchange { replies: Vec::new(), failure: Some((error, true)) };
        }
        let mut replies = Vec::with_capacity(requests.len());
        for request in requests {
            let timeout = request.blocks_for.map(|wait| options.response_timeout + wait);
            match connection.receive(timeout).await {
                Ok(reply) => replies.push(reply),
                // The connection may still deliver a late reply: it is dropped, not pooled.
                Err(error) => return Exchange { replies, failure: Some((error, true)) },
            }
        }
        pool.put(connection);
        Exchange { replies, failure: None }
    }

    fn may_retry_reply(&self, kind: Kind, reply: &Frame) -> bool {
        match kind {
            Kind::Unsequenced => is_try_again(reply),
            Kind::Read | Kind::Write => is_retryable_reply_frame(reply),
        }
    }

    fn address_failed(&self, address: usize) {
        self.inner.pools[address].clear();
        self.inner.router.failed(address);
    }

    async fn pause_before(&self, attempt: u32) {
        if attempt == 0 {
            return;
        }
        let options = &self.inner.options;
        let factor = 1u32 << (attempt - 1).min(16);
        let pause = options.backoff_initial.saturating_mul(factor).min(options.backoff_max);
        tokio::time::sleep(pause).await;
    }

    async fn take_session(&self) -> Result<Session> {
        Ok(self.take_sessions(1).await?.pop().expect("one session"))
    }

    async fn open_session(&self) -> Result<Session> {
        Ok(self.open_sessions(1).await?.pop().expect("one session"))
    }

    /// `count` sessions: idle ones first, the rest opened with one pipelined round trip.
    async fn take_sessions(&self, count: usize) -> Result<Vec<Session>> {
        let mut sessions = {
            let mut idle = self.inner.sessions.lock().expect("sessions lock");
            let keep = idle.len().saturating_sub(count);
            idle.split_off(keep)
        };
        if sessions.len() < count {
            sessions.extend(self.open_sessions(count - sessions.len()).await?);
        }
        Ok(sessions)
    }

    /// Opens `count` sessions (`SESSION.OPEN IDLE ms`, pipelined). An open whose reply is lost is
    /// simply sent again: the orphan session expires unused.
    async fn open_sessions(&self, count: usize) -> Result<Vec<Session>> {
        let idle_ms = self.inner.options.session_idle.as_millis().max(1).to_string();
        let open = Request::new(vec![
            Bytes::from_static(b"SESSION.OPEN"),
            Bytes::from_static(b"IDLE"),
            Bytes::from(idle_ms),
        ]);
        let mut sessions = Vec::with_capacity(count);
        let mut last_error = None;
        for attempt in 0..self.inner.options.attempts_max {
            self.pause_before(attempt).await;
            let batch = vec![open.clone(); count - sessions.len()];
            let address = self.inner.router.route(&open.args);
            let exchange = self.exchange(address, &batch).await;
            for reply in exchange.replies {
                match reply {
                    Frame::Integer(id) if id > 0 => {
                        sessions.push(Session { id: id as u64, next_sequence: 1 })
                    }
                    Frame::Error(text) if is_retryable_reply(&text) => {
                        last_error = Some(Error::Server(text))
                    }
                    Frame::Error(text) => return Err(Error::Server(text)),
                    other => return Err(unexpected("SESSION.OPEN", &other)),
                }
            }
            if sessions.len() == count {
                return Ok(sessions);
            }
            match exchange.failure {
                Some((error, _)) if !error.is_retryable() => return Err(error),
                Some((error, _)) => {
                    self.address_failed(address);
                    last_error = Some(error);
                }
                None => self.inner.router.failed(address),
            }
        }
        Err(last_error.expect("an unopened session means a failed attempt"))
    }

    fn put_session(&self, session: Session) {
        let mut idle = self.inner.sessions.lock().expect("sessions lock");
        if idle.len() < self.inner.options.idle_sessions_max {
            idle.push(session);
        }
    }
}

fn wrap_in_sequence(session: u64, sequence: u64, args: &[Bytes]) -> Vec<Bytes> {
    let mut wrapped = Vec::with_capacity(args.len() + 3);
    wrapped.push(Bytes::from_static(b"SEQ"));
    wrapped.push(Bytes::from(session.to_string()));
    wrapped.push(Bytes::from(sequence.to_string()));
    wrapped.extend_from_slice(args);
    wrapped
}

fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

fn is_retryable_reply_frame(frame: &Frame) -> bool {
    matches!(frame, Frame::Error(text) if is_retryable_reply(text))
}

fn is_try_again(frame: &Frame) -> bool {
    matches!(frame, Frame::Error(text) if error_code(text) == "TRYAGAIN")
}

fn is_session_expired(frame: &Frame) -> bool {
    matches!(frame, Frame::Error(text) if error_code(text) == "SESSIONEXPIRED")
}

/// An error reply as an `Err`; any other reply as it is.
pub(crate) fn check(frame: Frame, _command: &str) -> Result<Frame> {
    match frame {
        Frame::Error(text) if error_code(&text) == "FENCED" => Err(Error::Fenced(text)),
        Frame::Error(text) => Err(Error::Server(text)),
        other => Ok(other),
    }
}

pub(crate) fn unexpected(command: &str, reply: &Frame) -> Error {
    Error::UnexpectedReply { command: command.to_string(), reply: format!("{reply:?}") }
}
