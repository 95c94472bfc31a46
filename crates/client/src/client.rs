//! The client: addresses, pools, routing (the router, or the slot map in cluster mode), the
//! session, and the retry loop every call goes through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use resp::Frame;

use crate::error::{error_code, is_retryable_reply, Error, Result};
use crate::kind::{Kind, Request};
use crate::router::{FailoverRouter, Router};
use crate::slots::{
    command_slot, is_cluster_disabled, parse_cluster_slots, redirect_of, resolve,
    uses_connection_state, Cluster, Mode, Nodes, Redirect, SlotMap, REDIRECTS_MAX,
};

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
    /// Every known node with its pool: the given addresses first, then those learnt in cluster
    /// mode (from `CLUSTER SLOTS` and redirections).
    nodes: Nodes,
    /// Cluster mode: whether it is on, and the slot map.
    cluster: Cluster,
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

/// Where one attempt goes.
#[derive(Clone, Copy, Debug)]
struct Route {
    /// An index into the client's nodes.
    node: usize,
    /// Send `ASKING` first (the target of an `-ASK`).
    asking: bool,
    /// Chosen by the [`Router`] (not cluster mode), which is told of failures.
    by_router: bool,
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

    /// Connects with `options`; checks that some address answers `PING`, then asks it for
    /// `CLUSTER SLOTS` to learn whether the cluster runs in cluster mode (see the crate docs).
    pub async fn connect_with(addresses: &[&str], options: Options) -> Result<Client> {
        if addresses.is_empty() {
            return Err(Error::NoAddresses);
        }
        let router = Box::new(FailoverRouter::new(addresses.len()));
        let client = Client::with_router(addresses, options, router)?;
        let pong = client.execute(Request::new(vec![Bytes::from_static(b"PING")])).await?;
        check(pong, "PING")?;
        client.reload_slots(None).await;
        Ok(client)
    }

    /// A client over `addresses` routed by `router`; connects lazily. It does not ask for
    /// `CLUSTER SLOTS` up front: the first `-MOVED` it is answered switches it to cluster mode.
    pub fn with_router(
        addresses: &[&str],
        options: Options,
        router: Box<dyn Router>,
    ) -> Result<Client> {
        if addresses.is_empty() {
            return Err(Error::NoAddresses);
        }
        assert!(options.attempts_max >= 1, "attempts_max counts the first attempt");
        let nodes = Nodes::new(addresses, options.idle_connections_max);
        let exactly_once = options.exactly_once;
        let inner = Inner {
            nodes,
            cluster: Cluster::default(),
            router,
            options,
            sessions: Mutex::new(Vec::new()),
        };
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

    /// True once the client knows the servers run in cluster mode (`CLUSTER SLOTS` answered, or
    /// a `-MOVED` arrived): commands then go to the node serving their key's slot.
    pub fn is_cluster_mode(&self) -> bool {
        self.inner.cluster.is_cluster()
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
        let mut retry = Retry::default();
        let last_error = loop {
            let route = self.next_route(&mut retry, &request.args).await;
            let exchange = self.exchange_routed(route, std::slice::from_ref(&request)).await;
            if let Some(reply) = exchange.replies.into_iter().next() {
                // A redirection means the command did not run: following it is always safe.
                if let Some(redirect) = redirect_of(&reply) {
                    if retry.redirects < REDIRECTS_MAX {
                        retry.redirects += 1;
                        retry.ask = self.follow(&redirect, route.node);
                        continue;
                    }
                    return Ok(reply);
                }
                if self.may_retry_reply(request.kind, &reply) {
                    self.reply_failed(route, &reply);
                    if !retry.failed(&self.inner.options, None) {
                        break Error::Server(error_text(&reply));
                    }
                    continue;
                }
                return Ok(reply);
            }
            let (error, sent) = exchange.failure.expect("no reply means a failure");
            let retryable = error.is_retryable() && (request.kind != Kind::Unsequenced || !sent);
            if !retryable {
                return Err(error);
            }
            self.node_failed(route);
            if !retry.failed(&self.inner.options, Some(route.node)) {
                break error;
            }
        };
        Err(last_error)
    }

    /// A write inside the session: `SEQ id n command…`, every attempt with the same `n`.
    async fn execute_sequenced(&self, request: Request) -> Result<Frame> {
        let mut session = self.take_session().await?;
        let mut sequence = session.take_sequence();
        // Whether an earlier attempt of this (session, sequence) may have been applied.
        let mut maybe_applied = false;
        let mut retry = Retry::default();
        let last_error = loop {
            let wrapped = Request {
                args: wrap_in_sequence(session.id, sequence, &request.args),
                ..request.clone()
            };
            let route = self.next_route(&mut retry, &request.args).await;
            let exchange = self.exchange_routed(route, std::slice::from_ref(&wrapped)).await;
            if let Some(reply) = exchange.replies.into_iter().next() {
                if let Some(redirect) = redirect_of(&reply) {
                    // Not run here; the node it names runs it, or answers from the session.
                    if retry.redirects < REDIRECTS_MAX {
                        retry.redirects += 1;
                        retry.ask = self.follow(&redirect, route.node);
                        continue;
                    }
                    self.put_session(session);
                    return Ok(reply);
                }
                if is_session_expired(&reply) {
                    if maybe_applied {
                        // Nothing on the server remembers the earlier attempt any more.
                        return Err(Error::SessionExpired(error_text(&reply)));
                    }
                    // Refused before running: safe to send again in a fresh session, at once:
                    // nothing failed that a pause would help.
                    session = self.open_session().await?;
                    sequence = session.take_sequence();
                    if !retry.failed(&self.inner.options, None) {
                        break Error::Server(error_text(&reply));
                    }
                    retry.pause = false;
                    continue;
                }
                if is_retryable_reply_frame(&reply) {
                    // CLUSTERDOWN may come after the entry was proposed; TRYAGAIN never does.
                    maybe_applied |= !is_try_again(&reply);
                    self.reply_failed(route, &reply);
                    if !retry.failed(&self.inner.options, None) {
                        break Error::Server(error_text(&reply));
                    }
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
            self.node_failed(route);
            if !retry.failed(&self.inner.options, Some(route.node)) {
                break error;
            }
        };
        // The sequence number is spent either way: the next write uses a greater one, so a late
        // copy of this one can never run after it.
        self.put_session(session);
        Err(last_error)
    }

    /// Sends a pipeline, retrying the commands without a definite reply. Each write takes its own
    /// session (up to [`PIPELINE_SESSIONS_MAX`], then they are shared round the pipeline), so a
    /// re-sent write is answered from its session's memory. In cluster mode the commands are
    /// grouped by the node serving their slot, one exchange per node, all at once. See
    /// [`crate::Pipeline`].
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
        // A transaction or other connection state must stay on one connection.
        let whole = requests.iter().any(|request| uses_connection_state(&request.args));
        let mut replies: Vec<Option<Frame>> = vec![None; requests.len()];
        let mut asks: Vec<Option<Route>> = vec![None; requests.len()];
        let mut outcome = None;
        let mut retry = Retry::default();
        loop {
            let pending: Vec<usize> =
                (0..replies.len()).filter(|&i| replies[i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            if retry.pause {
                self.pause_before(retry.failures).await;
                self.reload_if_stale(retry.failed_node).await;
                retry.pause = false;
            }
            let groups = self.group(requests, &pending, &mut asks, whole);
            let exchanges = self.exchange_groups(&groups, &wire).await;
            let mut redirected = false;
            let mut failed_node = None;
            let mut failed = false;
            let mut fatal = false;
            for ((route, members), exchange) in groups.iter().zip(exchanges) {
                let mut retry_reply = None;
                for (member, reply) in members.iter().zip(exchange.replies) {
                    // `None` members are the `ASKING` before an asked command.
                    let Some(index) = *member else { continue };
                    if is_session_expired(&reply) {
                        // The session is gone: never hand it to another write.
                        if let Some(slot) = session_of[index] {
                            expired[slot] = true;
                        }
                    }
                    if let Some(redirect) = redirect_of(&reply) {
                        let ask = self.follow(&redirect, route.node);
                        if !whole && retry.redirects < REDIRECTS_MAX {
                            // Not run: always safe to send again where it points.
                            asks[index] = ask;
                            redirected = true;
                            continue;
                        }
                    }
                    if retryable && is_retryable_reply_frame(&reply) {
                        outcome = Some(Error::Server(error_text(&reply)));
                        retry_reply = Some(reply);
                    } else {
                        replies[index] = Some(reply);
                    }
                }
                if let Some(reply) = retry_reply {
                    self.reply_failed(*route, &reply);
                    failed = true;
                }
                if let Some((error, sent)) = exchange.failure {
                    let again = error.is_retryable() && (retryable || !sent);
                    if again {
                        self.node_failed(*route);
                        failed_node = Some(route.node);
                        failed = true;
                    } else {
                        fatal = true;
                    }
                    outcome = Some(error);
                }
            }
            if fatal {
                break;
            }
            if redirected {
                retry.redirects += 1;
            }
            if failed && !retry.failed(&self.inner.options, failed_node) {
                break;
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

    /// The pending commands of a pipeline by node, each group in pipeline order: outside cluster
    /// mode (or for a pipeline that must stay on one connection) one group; in cluster mode one
    /// per node serving their slots. A `None` member is an `ASKING` sent before the next one.
    fn group(
        &self,
        requests: &[Request],
        pending: &[usize],
        asks: &mut [Option<Route>],
        whole: bool,
    ) -> Vec<(Route, Vec<Option<usize>>)> {
        if !self.inner.cluster.is_cluster() || whole {
            // The first command with a key picks the node (any node serves keyless ones).
            let leader = pending
                .iter()
                .copied()
                .find(|&index| command_slot(&requests[index].args).is_some())
                .unwrap_or(pending[0]);
            let route = self.route(&requests[leader].args);
            return vec![(route, pending.iter().map(|&index| Some(index)).collect())];
        }
        let mut groups: Vec<(Route, Vec<Option<usize>>)> = Vec::new();
        for &index in pending {
            let (route, asking) = match asks[index].take() {
                Some(route) => (Route { asking: false, ..route }, true),
                None => (self.route(&requests[index].args), false),
            };
            let position = match groups.iter().position(|(known, _)| known.node == route.node) {
                Some(position) => position,
                None => {
                    groups.push((route, Vec::new()));
                    groups.len() - 1
                }
            };
            if asking {
                groups[position].1.push(None);
            }
            groups[position].1.push(Some(index));
        }
        groups
    }

    /// Runs each group's exchange, concurrently when there are several; results in group order.
    async fn exchange_groups(
        &self,
        groups: &[(Route, Vec<Option<usize>>)],
        wire: &[Request],
    ) -> Vec<Exchange> {
        let batch = |members: &[Option<usize>]| -> Vec<Request> {
            members
                .iter()
                .map(|member| match member {
                    Some(index) => wire[*index].clone(),
                    None => asking(),
                })
                .collect()
        };
        if let [(route, members)] = groups {
            return vec![self.exchange(route.node, &batch(members)).await];
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (position, (route, members)) in groups.iter().enumerate() {
            let (client, node, batch) = (self.clone(), route.node, batch(members));
            tasks.spawn(async move { (position, client.exchange(node, &batch).await) });
        }
        let mut exchanges: Vec<Option<Exchange>> = groups.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (position, exchange) = joined.expect("an exchange task panicked");
            exchanges[position] = Some(exchange);
        }
        exchanges.into_iter().map(|exchange| exchange.expect("every group ran")).collect()
    }

    /// Where the next attempt of a call goes: after a failure, first the backoff pause and, in
    /// cluster mode, a fresh slot map; then the `-ASK` target if one is pending, else the route.
    async fn next_route(&self, retry: &mut Retry, args: &[Bytes]) -> Route {
        if retry.pause {
            self.pause_before(retry.failures).await;
            self.reload_if_stale(retry.failed_node).await;
            retry.pause = false;
        }
        retry.ask.take().unwrap_or_else(|| self.route(args))
    }

    /// The node for a command: in cluster mode the one serving its key's slot (any node for a
    /// keyless command or a slot not in the map), otherwise the router's choice.
    fn route(&self, args: &[Bytes]) -> Route {
        let cluster = &self.inner.cluster;
        if cluster.is_cluster() {
            let owner = command_slot(args).and_then(|slot| cluster.owner(slot));
            let node = owner.unwrap_or_else(|| cluster.any(self.inner.nodes.len()));
            return Route { node, asking: false, by_router: false };
        }
        Route { node: self.inner.router.route(args), asking: false, by_router: true }
    }

    /// Applies a redirection: a `-MOVED` updates its slot at once and reloads the whole map in
    /// the background (a leader change usually moves many slots); an `-ASK` gives the route of
    /// the one next attempt.
    fn follow(&self, redirect: &Redirect, from: usize) -> Option<Route> {
        let nodes = &self.inner.nodes;
        let node = nodes.index_of(&resolve(redirect.address(), &nodes.address(from)));
        match *redirect {
            Redirect::Moved { slot, .. } => {
                self.inner.cluster.moved(slot, node);
                self.reload_in_background();
                None
            }
            Redirect::Ask { .. } => Some(Route { node, asking: true, by_router: false }),
        }
    }

    fn reload_in_background(&self) {
        let cluster = &self.inner.cluster;
        if cluster.background.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            cluster.background.store(false, std::sync::atomic::Ordering::Release);
            cluster.mark_stale();
            return;
        };
        let client = self.clone();
        runtime.spawn(async move {
            client.reload_slots(None).await;
            client.inner.cluster.background.store(false, std::sync::atomic::Ordering::Release);
        });
    }

    async fn reload_if_stale(&self, failed: Option<usize>) {
        let cluster = &self.inner.cluster;
        if cluster.is_cluster() && cluster.is_stale() {
            self.reload_slots(failed).await;
        }
    }

    /// Loads the slot map with `CLUSTER SLOTS` from the first node that answers one (`avoid`
    /// last), and with it the mode: a map means cluster mode, "cluster support disabled" means
    /// not. A reload finished while this one waited for its turn stands for it.
    async fn reload_slots(&self, avoid: Option<usize>) {
        let cluster = &self.inner.cluster;
        let seen = cluster.reloads();
        let _turn = cluster.reloading.lock().await;
        if cluster.reloads() != seen {
            return;
        }
        let count = self.inner.nodes.len();
        let first = match cluster.mode() {
            Mode::Cluster => cluster.any(count),
            Mode::Plain | Mode::Unknown => self.inner.router.route(&[]).min(count - 1),
        };
        let mut order: Vec<usize> = (0..count)
            .map(|offset| (first + offset) % count)
            .filter(|&n| Some(n) != avoid)
            .collect();
        order.extend(avoid.filter(|&node| node < count));
        let request =
            Request::new(vec![Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"SLOTS")]);
        for node in order {
            let exchange = self.exchange(node, std::slice::from_ref(&request)).await;
            let Some(reply) = exchange.replies.into_iter().next() else {
                self.inner.nodes.pool(node).clear();
                continue;
            };
            if is_cluster_disabled(&reply) {
                cluster.set_mode(Mode::Plain);
                return;
            }
            // An empty map: that node knows no leader's address yet; ask another.
            let Some(ranges) = parse_cluster_slots(&reply).filter(|ranges| !ranges.is_empty())
            else {
                continue;
            };
            let ranges: Vec<(u16, u16, usize)> = ranges
                .iter()
                .map(|(start, end, address)| (*start, *end, self.inner.nodes.index_of(address)))
                .collect();
            cluster.install(SlotMap::from_ranges(&ranges));
            cluster.set_mode(Mode::Cluster);
            return;
        }
    }

    /// One exchange on `route`, with `ASKING` first when the route asks for it.
    async fn exchange_routed(&self, route: Route, requests: &[Request]) -> Exchange {
        if !route.asking {
            return self.exchange(route.node, requests).await;
        }
        let mut batch = Vec::with_capacity(requests.len() + 1);
        batch.push(asking());
        batch.extend_from_slice(requests);
        let mut exchange = self.exchange(route.node, &batch).await;
        if !exchange.replies.is_empty() {
            exchange.replies.remove(0);
        }
        exchange
    }

    /// One round trip on one connection: write every request, read their replies in order.
    async fn exchange(&self, node: usize, requests: &[Request]) -> Exchange {
        let pool = self.inner.nodes.pool(node);
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

    /// The attempt on `route` was answered `-CLUSTERDOWN` or `-TRYAGAIN`.
    fn reply_failed(&self, route: Route, reply: &Frame) {
        if route.by_router {
            self.inner.router.failed(route.node);
            return;
        }
        if !is_try_again(reply) {
            // No leader where the map points: it may have moved.
            self.inner.cluster.mark_stale();
            self.inner.cluster.any_failed(route.node, self.inner.nodes.len());
        }
    }

    /// The attempt on `route` lost its connection or timed out.
    fn node_failed(&self, route: Route) {
        self.inner.nodes.pool(route.node).clear();
        if route.by_router {
            self.inner.router.failed(route.node);
        } else {
            self.inner.cluster.any_failed(route.node, self.inner.nodes.len());
            self.inner.cluster.mark_stale();
        }
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

    /// Opens `count` sessions (`SESSION.OPEN IDLE ms`, pipelined; on a sharded cluster any node
    /// opens a session in every shard). An open whose reply is lost is simply sent again: the
    /// orphan session expires unused.
    async fn open_sessions(&self, count: usize) -> Result<Vec<Session>> {
        let idle_ms = self.inner.options.session_idle.as_millis().max(1).to_string();
        let open = Request::new(vec![
            Bytes::from_static(b"SESSION.OPEN"),
            Bytes::from_static(b"IDLE"),
            Bytes::from(idle_ms),
        ]);
        let mut sessions = Vec::with_capacity(count);
        let mut last_error = None;
        let mut retry = Retry::default();
        loop {
            let route = self.next_route(&mut retry, &open.args).await;
            let batch = vec![open.clone(); count - sessions.len()];
            let exchange = self.exchange(route.node, &batch).await;
            let mut retry_reply = None;
            for reply in exchange.replies {
                match reply {
                    Frame::Integer(id) if id > 0 => {
                        sessions.push(Session { id: id as u64, next_sequence: 1 })
                    }
                    Frame::Error(text) if is_retryable_reply(&text) => {
                        last_error = Some(Error::Server(text.clone()));
                        retry_reply = Some(Frame::Error(text));
                    }
                    Frame::Error(text) => return Err(Error::Server(text)),
                    other => return Err(unexpected("SESSION.OPEN", &other)),
                }
            }
            if sessions.len() == count {
                return Ok(sessions);
            }
            let failed_node = match exchange.failure {
                Some((error, _)) if !error.is_retryable() => return Err(error),
                Some((error, _)) => {
                    self.node_failed(route);
                    last_error = Some(error);
                    Some(route.node)
                }
                None => {
                    let reply = retry_reply.expect("a missing session means a refused open");
                    self.reply_failed(route, &reply);
                    None
                }
            };
            if !retry.failed(&self.inner.options, failed_node) {
                break;
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

/// The retry state of one call.
#[derive(Debug, Default)]
struct Retry {
    /// Failed attempts so far (lost connections, timeouts, retryable replies).
    failures: u32,
    /// Redirections followed so far; they do not count as failures.
    redirects: u32,
    /// Pause (and reload a stale slot map) before the next attempt.
    pause: bool,
    /// The node of the last failed attempt: asked last for the slot map.
    failed_node: Option<usize>,
    /// The route of the next attempt, from an `-ASK`.
    ask: Option<Route>,
}

impl Retry {
    /// Counts a failed attempt; false if no attempt is left.
    fn failed(&mut self, options: &Options, node: Option<usize>) -> bool {
        self.failures += 1;
        self.pause = true;
        if node.is_some() {
            self.failed_node = node;
        }
        self.failures < options.attempts_max
    }
}

fn asking() -> Request {
    Request::new(vec![Bytes::from_static(b"ASKING")])
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
