//! One client connection: decode requests, answer the connection's own commands, send the data
//! commands to the node task, and write every reply back in order.
//!
//! # How a connection runs
//!
//! Two tasks share the socket: the *reader* (this module's `Connection`) owns the read half and
//! the connection's state (protocol, authentication, MULTI queue, watched keys); the *writer*
//! owns the write half. Between them runs a bounded FIFO of [`Outgoing`] replies:
//!
//! 1. The reader decodes every complete command in its buffer with [`resp::RequestDecoder`].
//! 2. For each command it either computes the reply at once (`Ready`), or submits it to the node
//!    and queues the node's reply receiver (`Pending`), without waiting for it: a pipeline of N
//!    commands is in the node's hands all together. Each entry carries the protocol in force
//!    when its command was read, so `HELLO 3` changes the encoding of later replies only.
//! 3. The writer takes entries in order, waits for each pending reply in turn, encodes, and
//!    writes whatever is ready as one batch: it writes only when the next reply is not ready yet,
//!    the batch has grown large, or the queue is empty.
//! 4. The FIFO holds at most [`REPLIES_IN_FLIGHT_MAX`] entries. When it is full the reader stops
//!    reading, so a client that pipelines without reading its replies is slowed by TCP flow
//!    control instead of growing our memory.
//!
//! A protocol error queues `-ERR Protocol error: …` and then `Close`; the writer flushes and
//! shuts the socket down. `QUIT` does the same with `+OK`. When the client closes its side, the
//! replies already owed are still written (a client may half-close after its last request), for
//! at most `request_timeout_ms` plus a second, after which the writer is abandoned (a blocked
//! `BLPOP 0` would otherwise hold the connection forever).
//!
//! # Commands handled here
//!
//! Connection and server commands never reach the node (see [`info::CONNECTION_COMMANDS`]):
//! PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, COMMAND, INFO, TIME, CONFIG, READONLY,
//! READWRITE, ASKING, WAIT, and the transaction commands. Every name is checked before anything
//! runs, in Redis 7's order (`processCommand`): unknown command, then arity, then authentication.
//!
//! - **WAIT** replies at once with the number of *other* replicas guaranteed to hold every write
//!   acknowledged so far: a write is acknowledged only once a quorum stores it, so that is
//!   `quorum - 1` (for 3 voters, 1). It never waits, since no acknowledged write is less
//!   replicated than that.
//! - **MULTI** queues data commands after the name, arity and authentication checks; a failed
//!   check makes the transaction dirty, and EXEC then answers EXECABORT. PING and ECHO inside
//!   MULTI are answered locally and their replies spliced into EXEC's array at their positions;
//!   other connection commands are refused inside MULTI (`ERR Command not allowed inside a
//!   transaction`) and make the transaction dirty. EXEC sends the queue and the watched versions
//!   as one [`Command::Transaction`]: the node applies it as one log entry.
//! - **WATCH** first waits until every earlier reply of the pipeline has been handed to the writer
//!   (so the writes they acknowledge have applied), then reads the keys' versions through the
//!   node ([`Command::KeyVersions`], a linearizable read). A key watched twice keeps its first
//!   version, as in Redis.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use commands::CommandSpec;
use node::Command;
use resp::{encode, Frame, Limits, Protocol, RequestDecoder, UnauthenticatedLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clients::{Client, ClientRegistry, ServerStats};
use crate::cluster_protocol;
use crate::config::Config;
use crate::handle::NodeHandle;
use crate::info::{self, LocalSpec};

/// Replies a connection may owe at once (ready or awaited); reading pauses beyond it.
pub const REPLIES_IN_FLIGHT_MAX: usize = 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// The writer flushes once this many encoded bytes are waiting, even if more replies are ready.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Commands one MULTI may queue. Their bytes are bounded too, by `client-query-buffer-limit`.
const QUEUED_COMMANDS_MAX: usize = 100_000;
/// Keys one connection may watch.
const WATCHED_KEYS_MAX: usize = 100_000;
/// Longest subcommand name kept in the client record's `cmd` field.
const SUBCOMMAND_RECORDED_BYTES_MAX: usize = 32;

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const AUTH_WITHOUT_PASSWORD: &str = "ERR AUTH <password> called without any password configured \
     for the default user. Are you sure your configuration is correct?";
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, \
     otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client \
     and select the RESP protocol version at the same time";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SHUTTING_DOWN: &str = "ERR server is shutting down";
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// What every connection shares: settings, the way to the node, the client registry, counters.
pub struct Shared {
    pub config: Arc<Config>,
    pub handle: NodeHandle,
    pub clients: ClientRegistry,
    pub stats: ServerStats,
    pub started: Instant,
}

impl Shared {
    pub fn new(config: Arc<Config>, handle: NodeHandle) -> Shared {
        Shared {
            config,
            handle,
            clients: ClientRegistry::new(),
            stats: ServerStats::new(),
            started: Instant::now(),
        }
    }
}

/// Accepts clients until `shutdown` turns true (or its sender is dropped), serving each on its
/// own task. A client beyond `max_clients` gets Redis's `-ERR max number of clients reached` and
/// is closed. Connections already accepted are not closed by shutdown; they end with the runtime.
pub async fn serve_clients(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    tokio::spawn(serve_connection(shared.clone(), socket));
                }
                // Typically out of file descriptors: pause rather than spin on the error.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Serves one accepted connection until it closes.
pub async fn serve_connection(shared: Arc<Shared>, mut socket: TcpStream) {
    // Replies are batched by the writer already; Nagle would only add latency.
    let _ = socket.set_nodelay(true);
    let address = socket.peer_addr().map(|address| address.to_string()).unwrap_or_default();
    let local_address = socket.local_addr().map(|address| address.to_string()).unwrap_or_default();
    let registered = shared.clients.register(address, local_address, shared.config.max_clients);
    let Some(client) = registered else {
        shared.stats.connection_rejected();
        // A few bytes into a fresh socket's send buffer: this does not wait on the client.
        let _ = socket.write_all(MAX_CLIENTS_REPLY).await;
        let _ = socket.shutdown().await;
        return;
    };
    // Counted once admitted, as Redis counts `total_connections_received`.
    shared.stats.connection_received();
    let (reader, writer) = socket.into_split();
    let (replies, queue) = mpsc::channel(REPLIES_IN_FLIGHT_MAX);
    let mut writer_task = tokio::spawn(write_replies(writer, queue));
    let mut connection = Connection::new(shared.clone(), client.clone(), replies);
    connection.read_commands(reader).await;
    // Dropping the reader's end lets the writer finish what is queued, then stop.
    drop(connection);
    let drain_limit = Duration::from_millis(shared.config.request_timeout_ms.saturating_add(1_000));
    if tokio::time::timeout(drain_limit, &mut writer_task).await.is_err() {
        writer_task.abort();
    }
}

/// One entry of the reply FIFO.
enum Outgoing {
    /// A reply known when its command was read.
    Ready { frame: Frame, protocol: Protocol },
    /// A reply still to come. `splice` holds replies computed locally inside MULTI, to insert
    /// into the EXEC array at their positions (ascending); `reshape` adapts the node's reply to
    /// the connection's protocol where Redis replies differently per protocol.
    Pending {
        reply: oneshot::Receiver<Frame>,
        protocol: Protocol,
        splice: Vec<(usize, Frame)>,
        reshape: Option<fn(Frame) -> Frame>,
    },
    /// Signalled once every earlier entry has been encoded (their replies have all arrived).
    Barrier(oneshot::Sender<()>),
    /// Flush and close the connection.
    Close,
}

/// The writer task: replies in FIFO order, written in batches.
async fn write_replies(mut socket: OwnedWriteHalf, mut queue: mpsc::Receiver<Outgoing>) {
    let mut output = BytesMut::with_capacity(WRITE_BATCH_BYTES);
    loop {
        let next = if output.is_empty() {
            queue.recv().await
        } else {
            match queue.try_recv() {
                Ok(entry) => Some(entry),
                Err(mpsc::error::TryRecvError::Empty) => {
                    if flush(&mut socket, &mut output).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        };
        match next {
            None => {
                let _ = flush(&mut socket, &mut output).await;
                return;
            }
            Some(Outgoing::Ready { frame, protocol }) => encode(&frame, protocol, &mut output),
            Some(Outgoing::Pending { mut reply, protocol, splice, reshape }) => {
                let frame = match reply.try_recv() {
                    Ok(frame) => frame,
                    Err(oneshot::error::TryRecvError::Empty) => {
                        // Send what is ready before waiting, so that a slow reply does not delay
                        // the replies before it.
                        if flush(&mut socket, &mut output).await.is_err() {
                            return;
                        }
                        reply.await.unwrap_or_else(|_| Frame::error(SHUTTING_DOWN))
                    }
                    Err(oneshot::error::TryRecvError::Closed) => Frame::error(SHUTTING_DOWN),
                };
                let frame = splice_replies(frame, splice);
                let frame = match reshape {
                    Some(reshape) => reshape(frame),
                    None => frame,
                };
                encode(&frame, protocol, &mut output);
            }
            Some(Outgoing::Barrier(done)) => {
                let _ = done.send(());
            }
            Some(Outgoing::Close) => {
                if flush(&mut socket, &mut output).await.is_ok() {
                    let _ = socket.shutdown().await;
                }
                return;
            }
        }
        if output.len() >= WRITE_BATCH_BYTES && flush(&mut socket, &mut output).await.is_err() {
            return;
        }
    }
}

async fn flush(socket: &mut OwnedWriteHalf, output: &mut BytesMut) -> std::io::Result<()> {
    if !output.is_empty() {
        socket.write_all(output).await?;
        output.clear();
    }
    Ok(())
}

/// Inserts locally answered MULTI replies into EXEC's reply array. An aborted EXEC (null array)
/// or an error reply is passed through unchanged.
fn splice_replies(frame: Frame, splice: Vec<(usize, Frame)>) -> Frame {
    match frame {
        Frame::Array(mut replies) if !splice.is_empty() => {
            for (position, reply) in splice {
                assert!(position <= replies.len(), "spliced reply beyond EXEC's array");
                replies.insert(position, reply);
            }
            Frame::Array(replies)
        }
        other => other,
    }
}

/// Redis 7 replies XREAD and XREADGROUP with an array of `[stream, entries]` pairs in RESP2 but
/// a map of stream → entries in RESP3 (`xreadCommand`), and RESP3 clients (redis-py's default
/// since version 8) parse it as a map. The state machine's replies do not depend on the
/// connection, so it builds the RESP2 form and a RESP3 connection reshapes it here. Anything
/// else (nil, an error) passes through unchanged.
fn stream_read_as_map(frame: Frame) -> Frame {
    let is_pairs = |streams: &[Frame]| {
        streams.iter().all(|stream| matches!(stream, Frame::Array(pair) if pair.len() == 2))
    };
    match frame {
        Frame::Array(streams) if is_pairs(&streams) => Frame::Map(
            streams
                .into_iter()
                .filter_map(|stream| match stream {
                    Frame::Array(pair) => {
                        let mut pair = pair.into_iter();
                        pair.next().zip(pair.next())
                    }
                    _ => None,
                })
                .collect(),
        ),
        other => other,
    }
}

/// How a RESP3 connection reshapes the reply of the data command `name`, if at all.
fn resp3_reshape(name: &str) -> Option<fn(Frame) -> Frame> {
    match name {
        "xread" | "xreadgroup" => Some(stream_read_as_map),
        _ => None,
    }
}

/// The decoder limits from the settings (before any pre-authentication tightening).
fn decoder_limits(config: &Config) -> Limits {
    let defaults = Limits::default();
    let query_buffer_max = config.client_query_buffer_limit.max(resp::INLINE_LEN_MAX_MIN);
    Limits {
        bulk_len_max: config.proto_max_bulk_len.max(1),
        inline_len_max: defaults.inline_len_max.min(query_buffer_max),
        query_buffer_max,
        ..defaults
    }
}

/// `limits` with Redis's pre-authentication bounds added.
fn unauthenticated_limits(limits: Limits) -> Limits {
    Limits {
        unauthenticated: Some(UnauthenticatedLimits {
            bulk_len_max: resp::UNAUTHENTICATED_BULK_LEN_MAX.min(limits.bulk_len_max),
            array_len_max: resp::UNAUTHENTICATED_ARRAY_LEN_MAX.min(limits.array_len_max),
        }),
        ..limits
    }
}

const CLUSTER_HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot> held by this node.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by this node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings.",
    "HELP",
    "    Print this help.",
];

/// A slot number as `CLUSTER COUNTKEYSINSLOT` takes it.
fn parse_slot(text: &[u8]) -> Option<u16> {
    parse_i64(text)
        .and_then(|slot| u16::try_from(slot).ok())
        .filter(|&slot| slot < placement::SLOTS)
}

/// What a command name resolves to.
#[derive(Clone, Copy)]
enum Kind {
    Data(&'static CommandSpec),
    Local(&'static LocalSpec),
    /// Sessions, locks and elections: replicated like data, answered by the node.
    Coordination(&'static node::coordination::Spec),
    Unknown,
}

fn classify(name: &[u8]) -> Kind {
    if let Some(spec) = commands::lookup(name) {
        Kind::Data(spec)
    } else if let Some(spec) = node::coordination::lookup(name) {
        Kind::Coordination(spec)
    } else if let Some(spec) = info::lookup_local(name) {
        Kind::Local(spec)
    } else {
        Kind::Unknown
    }
}

/// Whether the reader goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// A MULTI in progress.
#[derive(Default)]
struct Transaction {
    commands: Vec<Vec<Bytes>>,
    /// Replies answered locally (PING, ECHO), by their position in EXEC's array.
    local_replies: Vec<(usize, Frame)>,
    /// Wire-size estimate of `commands`, bounded by `client-query-buffer-limit`.
    queued_bytes: usize,
    /// A command was refused while queuing: EXEC must abort.
    dirty: bool,
}

/// The reader side of one connection and everything it remembers.
struct Connection {
    shared: Arc<Shared>,
    client: Arc<Client>,
    replies: mpsc::Sender<Outgoing>,
    decoder: RequestDecoder,
    protocol: Protocol,
    authenticated: bool,
    transaction: Option<Transaction>,
    watched: BTreeMap<Bytes, u64>,
}

impl Connection {
    fn new(shared: Arc<Shared>, client: Arc<Client>, replies: mpsc::Sender<Outgoing>) -> Self {
        let authenticated = shared.config.requirepass.is_none();
        let limits = decoder_limits(&shared.config);
        let limits = if authenticated { limits } else { unauthenticated_limits(limits) };
        Connection {
            shared,
            client,
            replies,
            decoder: RequestDecoder::new(limits),
            protocol: Protocol::Resp2,
            authenticated,
            transaction: None,
            watched: BTreeMap::new(),
        }
    }

    /// Reads and handles commands until the client closes, errs, or quits.
    async fn read_commands(&mut self, mut reader: OwnedReadHalf) {
        let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
        loop {
            loop {
                match self.decoder.decode(&mut input) {
                    Ok(Some(args)) => {
                        if self.handle(args).await == Flow::Close {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.reply(Frame::Error(format!("ERR {error}"))).await;
                        let _ = self.replies.send(Outgoing::Close).await;
                        return;
                    }
                }
            }
            input.reserve(READ_CHUNK_BYTES);
            match reader.read_buf(&mut input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    async fn send(&self, entry: Outgoing) -> Flow {
        match self.replies.send(entry).await {
            Ok(()) => Flow::Continue,
            // The writer stopped: the client is gone.
            Err(_) => Flow::Close,
        }
    }

    async fn reply(&self, frame: Frame) -> Flow {
        self.send(Outgoing::Ready { frame, protocol: self.protocol }).await
    }

    /// Queues a reply computed by `work` on its own task, so the pipeline goes on meanwhile.
    async fn reply_later<F>(&self, work: F) -> Flow
    where
        F: std::future::Future<Output = Frame> + Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        tokio::spawn(async move {
            let _ = sender.send(work.await);
        });
        self.send(Outgoing::Pending {
            reply: receiver,
            protocol: self.protocol,
            splice: Vec::new(),
            reshape: None,
        })
        .await
    }

    async fn submit(&self, command: Command, splice: Vec<(usize, Frame)>) -> Flow {
        self.submit_reshaped(command, splice, None).await
    }

    async fn submit_reshaped(
        &self,
        command: Command,
        splice: Vec<(usize, Frame)>,
        reshape: Option<fn(Frame) -> Frame>,
    ) -> Flow {
        let readonly = self.client.state().readonly;
        let reply = self.shared.handle.submit_with(command, readonly).await;
        self.send(Outgoing::Pending { reply, protocol: self.protocol, splice, reshape }).await
    }

    async fn handle(&mut self, args: Vec<Bytes>) -> Flow {
        assert!(!args.is_empty(), "the decoder skips empty commands");
        self.shared.stats.command_processed();
        let kind = classify(&args[0]);
        self.record_command(&args, kind);
        if let Err(error) = self.check(&args, kind) {
            if let Some(transaction) = &mut self.transaction {
                transaction.dirty = true;
            }
            return self.reply(error).await;
        }
        let controls_transaction = matches!(
            kind,
            Kind::Local(LocalSpec {
                name: "multi" | "exec" | "discard" | "watch" | "quit" | "reset",
                ..
            })
        );
        if self.transaction.is_some() && !controls_transaction {
            let frame = self.queue(args, kind);
            return self.reply(frame).await;
        }
        match kind {
            Kind::Data(spec) => {
                let reshape = match self.protocol {
                    Protocol::Resp3 => resp3_reshape(spec.name),
                    Protocol::Resp2 => None,
                };
                self.submit_reshaped(Command::Execute(args), Vec::new(), reshape).await
            }
            Kind::Coordination(_) => self.submit(Command::Execute(args), Vec::new()).await,
            Kind::Local(spec) => self.local(spec.name, args).await,
            Kind::Unknown => unreachable!("checked above"),
        }
    }

    /// Name, arity, then authentication, in Redis 7's order.
    fn check(&self, args: &[Bytes], kind: Kind) -> Result<(), Frame> {
        let (name, arity_accepted) = match kind {
            Kind::Unknown => return Err(unknown_command(args)),
            Kind::Data(spec) => (spec.name, spec.arity_accepts(args.len())),
            Kind::Local(spec) => (spec.name, spec.arity_accepts(args.len())),
            Kind::Coordination(spec) => (spec.name, spec.arity_accepts(args.len())),
        };
        if !arity_accepted {
            return Err(wrong_arity(name));
        }
        let allowed_before_auth = matches!(name, "auth" | "hello" | "quit" | "reset");
        if !self.authenticated && !allowed_before_auth {
            return Err(Frame::error(NOAUTH));
        }
        Ok(())
    }

    fn record_command(&self, args: &[Bytes], kind: Kind) {
        let name = match kind {
            Kind::Data(spec) => spec.name.to_string(),
            Kind::Coordination(spec) => spec.name.to_string(),
            Kind::Local(spec) => match args.get(1) {
                Some(sub) if matches!(spec.name, "client" | "config" | "command") => {
                    let sub = &sub[..sub.len().min(SUBCOMMAND_RECORDED_BYTES_MAX)];
                    format!("{}|{}", spec.name, printable_word(sub))
                }
                _ => spec.name.to_string(),
            },
            Kind::Unknown => "NULL".to_string(),
        };
        let mut state = self.client.state();
        state.command = name;
        state.last_active = Instant::now();
    }

    /// Queues a command inside MULTI and returns `+QUEUED` or the refusal.
    fn queue(&mut self, args: Vec<Bytes>, kind: Kind) -> Frame {
        let bytes_max = self.shared.config.client_query_buffer_limit;
        let transaction = self.transaction.as_mut().expect("queue is called inside MULTI");
        let position = transaction.commands.len() + transaction.local_replies.len();
        let refusal = match kind {
            Kind::Data(_) => {
                let size: usize = args.iter().map(|argument| argument.len() + 16).sum();
                if position >= QUEUED_COMMANDS_MAX
                    || transaction.queued_bytes.saturating_add(size) > bytes_max
                {
                    "ERR too many commands queued in this transaction"
                } else {
                    transaction.queued_bytes += size;
                    transaction.commands.push(args);
                    ""
                }
            }
            Kind::Local(LocalSpec { name: "ping", .. }) => {
                transaction.local_replies.push((position, ping(&args)));
                ""
            }
            Kind::Local(LocalSpec { name: "echo", .. }) => {
                transaction.local_replies.push((position, Frame::Bulk(args[1].clone())));
                ""
            }
            Kind::Coordination(_) => {
                "ERR sessions, locks and elections cannot be queued in MULTI; use SEQ or \
                 LOCK.FENCED"
            }
            _ => "ERR Command not allowed inside a transaction",
        };
        if !refusal.is_empty() {
            transaction.dirty = true;
            return Frame::error(refusal);
        }
        let queued = transaction.commands.len() + transaction.local_replies.len();
        self.client.state().queued_commands = Some(queued);
        Frame::Simple("QUEUED".to_string())
    }

    async fn local(&mut self, name: &'static str, args: Vec<Bytes>) -> Flow {
        let frame = match name {
            "ping" => ping(&args),
            "echo" => Frame::Bulk(args[1].clone()),
            "hello" => self.hello(&args),
            "auth" => self.auth(&args),
            "select" => select(&args[1]),
            "quit" => {
                self.reply(Frame::ok()).await;
                let _ = self.send(Outgoing::Close).await;
                return Flow::Close;
            }
            "reset" => self.reset(),
            "client" => self.client_command(&args),
            "command" => info::command(&args),
            "info" => {
                let shared = self.shared.clone();
                let sections = info::selected_sections(&args[1..]);
                return self
                    .reply_later(async move {
                        let node = shared.handle.info().await;
                        let text = info::render(&shared, node.as_ref(), &sections);
                        verbatim(text)
                    })
                    .await;
            }
            "time" => time(),
            "config" => info::config(&self.shared.config, &args),
            "readonly" | "readwrite" => {
                self.client.state().readonly = name == "readonly";
                Frame::ok()
            }
            "asking" => Frame::ok(),
            "cluster" => return self.cluster(args).await,
            "wait" => return self.wait(&args).await,
            "multi" => self.multi(),
            "exec" => return self.exec().await,
            "discard" => self.discard(),
            "watch" => return self.watch(&args[1..]).await,
            "unwatch" => {
                self.unwatch();
                Frame::ok()
            }
            other => unreachable!("connection command {other} has no handler"),
        };
        self.reply(frame).await
    }

    // ----- authentication and handshake --------------------------------------------------

    /// Checks a username and password against the one user, `default`. Without `requirepass`
    /// the default user takes any password, as Redis's `nopass` user does.
    fn credentials_valid(&self, user: &[u8], password: &[u8]) -> bool {
        if user != b"default" {
            return false;
        }
        match &self.shared.config.requirepass {
            None => true,
            Some(expected) => constant_time_equal(expected.as_bytes(), password),
        }
    }

    fn authenticate(&mut self, user: &[u8], password: &[u8]) -> Result<(), Frame> {
        if !self.credentials_valid(user, password) {
            return Err(Frame::error(WRONGPASS));
        }
        self.authenticated = true;
        let limits = self.decoder.limits().authenticated();
        self.decoder.set_limits(limits);
        Ok(())
    }

    /// `AUTH [username] password`.
    fn auth(&mut self, args: &[Bytes]) -> Frame {
        let (user, password) = match args {
            [_, password] => {
                if self.shared.config.requirepass.is_none() {
                    return Frame::error(AUTH_WITHOUT_PASSWORD);
                }
                (&b"default"[..], password)
            }
            [_, user, password] => (&user[..], password),
            _ => return Frame::error("ERR syntax error"),
        };
        match self.authenticate(user, password) {
            Ok(()) => Frame::ok(),
            Err(error) => error,
        }
    }

    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, as Redis 7's
    /// `helloCommand`: options are checked first, then credentials, then the name.
    fn hello(&mut self, args: &[Bytes]) -> Frame {
        let mut protocol = None;
        if let Some(version) = args.get(1) {
            match parse_i64(version) {
                None => {
                    return Frame::error("ERR Protocol version is not an integer or out of range")
                }
                Some(2) => protocol = Some(Protocol::Resp2),
                Some(3) => protocol = Some(Protocol::Resp3),
                Some(_) => return Frame::error("NOPROTO unsupported protocol version"),
            }
        }
        let mut credentials = None;
        let mut name = None;
        let mut index = 2;
        while index < args.len() {
            let option = &args[index];
            let remaining = args.len() - 1 - index;
            if option.eq_ignore_ascii_case(b"auth") && remaining >= 2 {
                credentials = Some((&args[index + 1], &args[index + 2]));
                index += 3;
            } else if option.eq_ignore_ascii_case(b"setname") && remaining >= 1 {
                name = Some(&args[index + 1]);
                index += 2;
            } else {
                return Frame::Error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    info::printable(option)
                ));
            }
        }
        if let Some((user, password)) = credentials {
            if let Err(error) = self.authenticate(user, password) {
                return error;
            }
        }
        if !self.authenticated {
            return Frame::error(HELLO_NOAUTH);
        }
        if let Some(name) = name {
            if !valid_name(name) {
                return Frame::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            self.client.state().name = String::from_utf8_lossy(name).into_owned();
        }
        if let Some(protocol) = protocol {
            self.set_protocol(protocol);
        }
        let version = if self.protocol == Protocol::Resp3 { 3 } else { 2 };
        Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(info::REDIS_VERSION)),
            (Frame::bulk("proto"), Frame::Integer(version)),
            (Frame::bulk("id"), Frame::Integer(self.client.id as i64)),
            (Frame::bulk("mode"), Frame::bulk("standalone")),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(Vec::new())),
        ])
    }

    fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        self.client.state().protocol_version = if protocol == Protocol::Resp3 { 3 } else { 2 };
    }

    /// `RESET`: leave MULTI, forget watches, back to RESP2, no name, read-write, and
    /// unauthenticated again when a password is required.
    fn reset(&mut self) -> Frame {
        self.transaction = None;
        self.unwatch();
        self.set_protocol(Protocol::Resp2);
        {
            let mut state = self.client.state();
            state.name.clear();
            state.readonly = false;
            state.queued_commands = None;
        }
        if self.shared.config.requirepass.is_some() {
            self.authenticated = false;
            let limits = unauthenticated_limits(decoder_limits(&self.shared.config));
            self.decoder.set_limits(limits);
        }
        Frame::Simple("RESET".to_string())
    }

    // ----- CLIENT ----------------------------------------------------------------------------

    fn client_command(&mut self, args: &[Bytes]) -> Frame {
        let subcommand = args[1].to_ascii_lowercase();
        let arity_ok = match subcommand.as_slice() {
            b"id" | b"getname" | b"info" | b"help" => args.len() == 2,
            b"setname" | b"no-evict" | b"no-touch" | b"reply" => args.len() == 3,
            b"setinfo" => args.len() == 4,
            b"list" => true,
            _ => return info::unknown_subcommand("CLIENT", &args[1]),
        };
        if !arity_ok {
            return info::wrong_subcommand_arity("client", &subcommand);
        }
        match subcommand.as_slice() {
            b"id" => Frame::Integer(self.client.id as i64),
            b"getname" => {
                let name = self.client.state().name.clone();
                if name.is_empty() {
                    Frame::Null
                } else {
                    Frame::bulk(name)
                }
            }
            b"setname" => {
                if !valid_name(&args[2]) {
                    return Frame::error(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                self.client.state().name = String::from_utf8_lossy(&args[2]).into_owned();
                Frame::ok()
            }
            b"setinfo" => self.client_setinfo(&args[2], &args[3]),
            b"info" => verbatim(format!("{}\n", self.client.describe(Instant::now()))),
            b"list" => client_list(&self.shared.clients, &args[2..]),
            b"no-evict" | b"no-touch" => {
                if args[2].eq_ignore_ascii_case(b"on") || args[2].eq_ignore_ascii_case(b"off") {
                    Frame::ok()
                } else {
                    Frame::error("ERR syntax error")
                }
            }
            b"reply" if args[2].eq_ignore_ascii_case(b"on") => Frame::ok(),
            b"reply"
                if args[2].eq_ignore_ascii_case(b"off")
                    || args[2].eq_ignore_ascii_case(b"skip") =>
            {
                Frame::error("ERR CLIENT REPLY OFF and SKIP are not supported")
            }
            b"reply" => Frame::error("ERR syntax error"),
            b"help" => Frame::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "ID",
                    "GETNAME",
                    "SETNAME <name>",
                    "SETINFO <LIB-NAME|LIB-VER> <value>",
                    "INFO",
                    "LIST [TYPE normal] [ID <id> ...]",
                    "NO-EVICT (ON|OFF)",
                    "NO-TOUCH (ON|OFF)",
                    "REPLY ON",
                ]
                .into_iter()
                .map(|line| Frame::Simple(line.to_string()))
                .collect(),
            ),
            _ => unreachable!("subcommands are checked above"),
        }
    }

    fn client_setinfo(&mut self, attribute: &Bytes, value: &Bytes) -> Frame {
        let is_name = attribute.eq_ignore_ascii_case(b"lib-name");
        if !is_name && !attribute.eq_ignore_ascii_case(b"lib-ver") {
            return Frame::Error(format!(
                "ERR Unrecognized option '{}'",
                info::printable(attribute)
            ));
        }
        if !valid_name(value) {
            let attribute = if is_name { "lib-name" } else { "lib-ver" };
            return Frame::Error(format!(
                "ERR {attribute} cannot contain spaces, newlines or special characters."
            ));
        }
        let value = String::from_utf8_lossy(value).into_owned();
        let mut state = self.client.state();
        if is_name {
            state.library_name = value;
        } else {
            state.library_version = value;
        }
        Frame::ok()
    }

    // ----- WAIT --------------------------------------------------------------------------

    /// `CLUSTER subcommand …`, answered from the node's view of the
    /// cluster (see `cluster_protocol`). As Redis, every subcommand fails
    /// on a node not in cluster mode.
    async fn cluster(&mut self, args: Vec<Bytes>) -> Flow {
        let handle = self.shared.handle.clone();
        self.reply_later(async move {
            let Some(view) = handle.cluster().await else {
                return Frame::error("ERR server is shutting down");
            };
            if !view.enabled {
                return Frame::error("ERR This instance has cluster support disabled");
            }
            let subcommand = args[1].to_ascii_lowercase();
            let arity = |count: usize| args.len() == count;
            match subcommand.as_slice() {
                b"slots" if arity(2) => cluster_protocol::slots(&view),
                b"shards" if arity(2) => cluster_protocol::shards(&view),
                b"nodes" if arity(2) => cluster_protocol::nodes(&view),
                b"info" if arity(2) => cluster_protocol::info(&view),
                b"myid" if arity(2) => cluster_protocol::myid(&view),
                b"keyslot" if arity(3) => Frame::Integer(i64::from(placement::key_slot(&args[2]))),
                b"countkeysinslot" if arity(3) => match parse_slot(&args[2]) {
                    Some(slot) => {
                        let keys = handle.keys_in_slot(slot, usize::MAX).await;
                        Frame::Integer(keys.map_or(0, |keys| keys.len() as i64))
                    }
                    None => Frame::error("ERR Invalid slot"),
                },
                b"getkeysinslot" if arity(4) => {
                    let Some(slot) = parse_slot(&args[2]) else {
                        return Frame::error("ERR Invalid slot");
                    };
                    let Some(count) = parse_i64(&args[3]).and_then(|n| usize::try_from(n).ok())
                    else {
                        return Frame::error("ERR Invalid number of keys");
                    };
                    let keys = handle.keys_in_slot(slot, count).await.unwrap_or_default();
                    Frame::Array(keys.into_iter().map(Frame::Bulk).collect())
                }
                b"help" if arity(2) => Frame::Array(
                    CLUSTER_HELP.iter().map(|line| Frame::Simple(line.to_string())).collect(),
                ),
                b"slots" | b"shards" | b"nodes" | b"info" | b"myid" | b"keyslot"
                | b"countkeysinslot" | b"getkeysinslot" | b"help" => Frame::error(format!(
                    "ERR wrong number of arguments for 'cluster|{}' command",
                    String::from_utf8_lossy(&subcommand)
                )),
                _ => Frame::error(format!(
                    "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
                    String::from_utf8_lossy(&args[1])
                )),
            }
        })
        .await
    }

    async fn wait(&self, args: &[Bytes]) -> Flow {
        let (Some(_), Some(timeout)) = (parse_i64(&args[1]), parse_i64(&args[2])) else {
            return self.reply(Frame::error(NOT_INTEGER)).await;
        };
        if timeout < 0 {
            return self.reply(Frame::error("ERR timeout is negative")).await;
        }
        let shared = self.shared.clone();
        self.reply_later(async move {
            match shared.handle.info().await {
                Some(info) => {
                    let quorum = info.node.membership.quorum();
                    Frame::Integer(quorum.saturating_sub(1) as i64)
                }
                None => Frame::error(SHUTTING_DOWN),
            }
        })
        .await
    }

    // ----- MULTI / EXEC / WATCH ----------------------------------------------------------

    fn multi(&mut self) -> Frame {
        if self.transaction.is_some() {
            return Frame::error("ERR MULTI calls can not be nested");
        }
        self.transaction = Some(Transaction::default());
        self.client.state().queued_commands = Some(0);
        Frame::ok()
    }

    fn discard(&mut self) -> Frame {
        if self.transaction.take().is_none() {
            return Frame::error("ERR DISCARD without MULTI");
        }
        self.client.state().queued_commands = None;
        self.unwatch();
        Frame::ok()
    }

    async fn exec(&mut self) -> Flow {
        let Some(transaction) = self.transaction.take() else {
            return self.reply(Frame::error("ERR EXEC without MULTI")).await;
        };
        self.client.state().queued_commands = None;
        let watched: Vec<(Bytes, u64)> = std::mem::take(&mut self.watched).into_iter().collect();
        self.client.state().watched_keys = 0;
        if transaction.dirty {
            return self
                .reply(Frame::error("EXECABORT Transaction discarded because of previous errors."))
                .await;
        }
        if transaction.commands.is_empty() && watched.is_empty() {
            let replies = splice_replies(Frame::Array(Vec::new()), transaction.local_replies);
            return self.reply(replies).await;
        }
        let command = Command::Transaction { watched, commands: transaction.commands };
        self.submit(command, transaction.local_replies).await
    }

    async fn watch(&mut self, keys: &[Bytes]) -> Flow {
        if self.transaction.is_some() {
            return self.reply(Frame::error("ERR WATCH inside MULTI is not allowed")).await;
        }
        if self.watched.len().saturating_add(keys.len()) > WATCHED_KEYS_MAX {
            return self.reply(Frame::error("ERR too many watched keys")).await;
        }
        // Wait until the replies to earlier commands have arrived: their writes have applied,
        // so the versions read next are not older than the client's own writes.
        let (done, barrier) = oneshot::channel();
        if self.send(Outgoing::Barrier(done)).await == Flow::Close || barrier.await.is_err() {
            return Flow::Close;
        }
        let frame = self.shared.handle.execute(Command::KeyVersions(keys.to_vec())).await;
        let versions = match frame {
            Frame::Array(versions) if versions.len() == keys.len() => versions,
            error @ Frame::Error(_) => return self.reply(error).await,
            other => {
                unreachable!("the node answers KeyVersions with one version per key: {other:?}")
            }
        };
        for (key, version) in keys.iter().zip(versions) {
            let Frame::Integer(version) = version else {
                unreachable!("key versions are integers");
            };
            self.watched.entry(key.clone()).or_insert(version as u64);
        }
        self.client.state().watched_keys = self.watched.len();
        self.reply(Frame::ok()).await
    }

    fn unwatch(&mut self) {
        self.watched.clear();
        self.client.state().watched_keys = 0;
    }
}

// ----- small commands and helpers --------------------------------------------------------------

fn ping(args: &[Bytes]) -> Frame {
    match args {
        [_] => Frame::Simple("PONG".to_string()),
        [_, message] => Frame::Bulk(message.clone()),
        _ => wrong_arity("ping"),
    }
}

fn select(index: &[u8]) -> Frame {
    match parse_i64(index) {
        None => Frame::error(NOT_INTEGER),
        Some(0) => Frame::ok(),
        Some(_) => Frame::error("ERR DB index is out of range"),
    }
}

/// `TIME`: seconds and microseconds since the Unix epoch, from the wall clock (the shell is
/// allowed to read it; the state machine never does).
fn time() -> Frame {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Frame::Array(vec![
        Frame::bulk(since_epoch.as_secs().to_string()),
        Frame::bulk(since_epoch.subsec_micros().to_string()),
    ])
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id …]`.
fn client_list(registry: &ClientRegistry, options: &[Bytes]) -> Frame {
    let mut ids: Option<Vec<u64>> = None;
    let mut include = true;
    match options {
        [] => {}
        [option, kind] if option.eq_ignore_ascii_case(b"type") => {
            let kind = kind.to_ascii_lowercase();
            match kind.as_slice() {
                b"normal" => {}
                b"master" | b"replica" | b"slave" | b"pubsub" => include = false,
                _ => {
                    return Frame::Error(format!(
                        "ERR Unknown client type '{}'",
                        info::printable(&kind)
                    ))
                }
            }
        }
        [option, listed @ ..] if option.eq_ignore_ascii_case(b"id") && !listed.is_empty() => {
            let mut parsed = Vec::with_capacity(listed.len().min(1024));
            for id in listed {
                match parse_i64(id) {
                    Some(id) if id > 0 => parsed.push(id as u64),
                    _ => return Frame::error("ERR Invalid client ID"),
                }
            }
            ids = Some(parsed);
        }
        _ => return Frame::error("ERR syntax error"),
    }
    let now = Instant::now();
    let mut text = String::new();
    for client in registry.list() {
        let listed = ids.as_ref().map_or(true, |ids| ids.contains(&client.id));
        if include && listed {
            text.push_str(&client.describe(now));
            text.push('\n');
        }
    }
    verbatim(text)
}

/// A text reply: RESP3 verbatim `txt`, a bulk string in RESP2 (as Redis sends INFO and CLIENT
/// LIST).
fn verbatim(text: String) -> Frame {
    Frame::Verbatim { format: *b"txt", text: Bytes::from(text) }
}

fn wrong_arity(name: &str) -> Frame {
    Frame::Error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' ` exactly as Redis 7 formats
/// it: the name cut at 128 bytes, arguments appended while the list is shorter than 128 bytes,
/// each cut to what remains of 128.
fn unknown_command(args: &[Bytes]) -> Frame {
    const TEXT_BYTES_MAX: usize = 128;
    let name = &args[0][..args[0].len().min(TEXT_BYTES_MAX)];
    let mut listed: Vec<u8> = Vec::new();
    for argument in &args[1..] {
        if listed.len() >= TEXT_BYTES_MAX {
            break;
        }
        let room = TEXT_BYTES_MAX - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&argument[..argument.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    Frame::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        info::printable(name),
        info::printable(&listed)
    ))
}

/// Redis's rule for client names and library attributes: printable ASCII, no spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|byte| (b'!'..=b'~').contains(byte))
}

/// A lowercase word for the client record, made of what `valid_name` allows.
fn printable_word(word: &[u8]) -> String {
    word.iter()
        .map(|byte| if valid_name(&[*byte]) { char::from(byte.to_ascii_lowercase()) } else { '?' })
        .collect()
}

/// A strict decimal `i64` as Redis's `string2ll`: optional minus, digits, no spaces or plus.
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// Compares without an early exit, so the time taken does not reveal how much of a guessed
/// password was right (the length is not hidden).
fn constant_time_equal(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    expected.iter().zip(given).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{Call, Info};
    use commands::{Context, Store};
    use consensus::{Membership, Role};
    use node::NodeStatus;
    use std::net::SocketAddr;

    const TEST_TIMEOUT: Duration = Duration::from_secs(5);

    /// A node task for tests: executes commands against a local store, in arrival order.
    fn spawn_test_node() -> NodeHandle {
        let (calls, mut receiver) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut store = Store::new();
            let mut now_ms = 1_000_000;
            while let Some(call) = receiver.recv().await {
                now_ms += 1;
                let context = Context { now_ms, seed: now_ms };
                match call {
                    Call::Command { command, reply, .. } => {
                        let frame = match command {
                            Command::Execute(args) => store.apply(&context, &args),
                            Command::Transaction { watched, commands } => {
                                store.apply_transaction(&context, &watched, &commands)
                            }
                            Command::KeyVersions(keys) => Frame::Array(
                                keys.iter()
                                    .map(
                                        |key| Frame::Integer(store.key_version(key, now_ms) as i64),
                                    )
                                    .collect(),
                            ),
                            Command::ReadIndex => Frame::Integer(0),
                        };
                        let _ = reply.send(frame);
                    }
                    Call::Info { reply } => {
                        let _ = reply.send(test_info(store.len()));
                    }
                    Call::Cluster { .. } | Call::KeysInSlot { .. } => {}
                }
            }
        });
        NodeHandle::new(calls)
    }

    fn test_info(keys: usize) -> Info {
        Info {
            node: NodeStatus {
                id: 1,
                role: Role::Leader,
                term: 7,
                leader: Some(1),
                commit: 42,
                applied: 41,
                last_index: 43,
                snapshot_index: 10,
                membership: Membership::with_voters([1, 2, 3]),
                keys,
                pending_requests: 0,
                blocked_clients: 0,
                state_digest: 0,
                addresses: BTreeMap::new(),
            },
            log_bytes: 4096,
            fsync: "always",
            engine: "raft",
            poisoned: None,
            cluster_enabled: false,
            shards: 1,
            shard_statuses: Vec::new(),
            client_addresses: vec![(1, "127.0.0.1:6379".to_string())],
        }
    }

    /// A server on an ephemeral port; dropping it stops the accept loop.
    struct TestServer {
        address: SocketAddr,
        _stop: watch::Sender<bool>,
    }

    async fn start(config: Config) -> TestServer {
        start_with_node(config, spawn_test_node()).await
    }

    async fn start_with_node(config: Config, handle: NodeHandle) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::new(Arc::new(config), handle));
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(serve_clients(shared, listener, shutdown));
        TestServer { address, _stop: stop }
    }

    struct TestClient {
        stream: TcpStream,
        input: BytesMut,
    }

    impl TestClient {
        async fn connect(server: &TestServer) -> TestClient {
            let stream = TcpStream::connect(server.address).await.unwrap();
            TestClient { stream, input: BytesMut::new() }
        }

        async fn send_raw(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.unwrap();
        }

        async fn send(&mut self, words: &[&str]) {
            let bytes = multibulk(words);
            self.send_raw(&bytes).await;
        }

        async fn read_frame(&mut self) -> Frame {
            loop {
                if let Some(frame) =
                    resp::decode_frame(&mut self.input, &Limits::default()).unwrap()
                {
                    return frame;
                }
                let read =
                    tokio::time::timeout(TEST_TIMEOUT, self.stream.read_buf(&mut self.input));
                let count = read.await.expect("reply in time").unwrap();
                assert!(count > 0, "connection closed while a reply was expected");
            }
        }

        async fn command(&mut self, words: &[&str]) -> Frame {
            self.send(words).await;
            self.read_frame().await
        }

        /// Reads exactly `expected.len()` bytes and compares them, byte for byte.
        async fn expect_raw(&mut self, expected: &[u8]) {
            while self.input.len() < expected.len() {
                let read =
                    tokio::time::timeout(TEST_TIMEOUT, self.stream.read_buf(&mut self.input));
                assert!(read.await.expect("reply in time").unwrap() > 0, "closed early");
            }
            let got = self.input.split_to(expected.len());
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
        }

        async fn expect_closed(&mut self) {
            let read = tokio::time::timeout(TEST_TIMEOUT, self.stream.read_buf(&mut self.input));
            let count = read.await.expect("close in time").unwrap_or(0);
            assert_eq!(count, 0, "expected the server to close, got {:?}", self.input);
        }
    }

    fn multibulk(words: &[&str]) -> Vec<u8> {
        let mut bytes = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            bytes.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
        }
        bytes
    }

    fn simple(text: &str) -> Frame {
        Frame::Simple(text.to_string())
    }

    fn error(text: &str) -> Frame {
        Frame::Error(text.to_string())
    }

    fn text_of(frame: &Frame) -> String {
        match frame {
            Frame::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn with_password() -> Config {
        Config { requirepass: Some("secret".to_string()), ..Config::default() }
    }

    #[tokio::test]
    async fn connection_ping_and_echo_in_both_forms() {
        // Goal: PING without and with a message, inline and multibulk, and ECHO.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        client.send_raw(b"PING\r\n").await;
        client.expect_raw(b"+PONG\r\n").await;
        assert_eq!(client.command(&["ping", "hi"]).await, Frame::bulk("hi"));
        assert_eq!(client.command(&["ECHO", "x y"]).await, Frame::bulk("x y"));
        assert_eq!(
            client.command(&["PING", "a", "b"]).await,
            error("ERR wrong number of arguments for 'ping' command")
        );
    }

    #[tokio::test]
    async fn connection_hello_3_switches_to_resp3_map() {
        // Goal: HELLO 3 replies a RESP3 map with Redis's keys, and later replies are RESP3.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        client.send(&["HELLO", "3"]).await;
        client.expect_raw(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n").await;
        // The remaining six pairs of the map, read as a map of six.
        client.input = [&b"%6\r\n"[..], &client.input[..]].concat()[..].into();
        let Frame::Map(rest) = client.read_frame().await else {
            panic!("not a map");
        };
        let keys: Vec<String> = rest.iter().map(|(key, _)| text_of(key)).collect();
        assert_eq!(keys, ["version", "proto", "id", "mode", "role", "modules"]);
        assert_eq!(rest[1].1, Frame::Integer(3));
        client.send(&["GET", "missing"]).await;
        client.expect_raw(b"_\r\n").await;
        assert_eq!(
            client.command(&["HELLO", "4"]).await,
            error("NOPROTO unsupported protocol version")
        );
        client.send(&["HELLO", "2"]).await;
        let _ = client.read_frame().await;
        client.send(&["GET", "missing"]).await;
        client.expect_raw(b"$-1\r\n").await;
    }

    #[tokio::test]
    async fn connection_xread_replies_pairs_in_resp2_and_a_map_in_resp3() {
        // Goal: XREAD and XREADGROUP reply [[stream, entries]] in RESP2 and {stream: entries}
        // in RESP3, as Redis 7 does; nil stays nil.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        assert_eq!(client.command(&["XADD", "s", "1-0", "f", "v"]).await, Frame::bulk("1-0"));
        assert!(client.command(&["XGROUP", "CREATE", "s", "g", "0"]).await == Frame::ok());
        let entries = b"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
        client.send(&["XREAD", "STREAMS", "s", "0"]).await;
        client.expect_raw(&[&b"*1\r\n*2\r\n$1\r\ns\r\n"[..], entries].concat()).await;
        client.send(&["HELLO", "3"]).await;
        let _ = client.read_frame().await;
        client.send(&["XREAD", "STREAMS", "s", "0"]).await;
        client.expect_raw(&[&b"%1\r\n$1\r\ns\r\n"[..], entries].concat()).await;
        client.send(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]).await;
        client.expect_raw(&[&b"%1\r\n$1\r\ns\r\n"[..], entries].concat()).await;
        client.send(&["XREAD", "STREAMS", "s", "1-0"]).await;
        client.expect_raw(b"_\r\n").await;
    }

    #[tokio::test]
    async fn connection_requirepass_gates_commands_until_auth() {
        // Goal: NOAUTH before AUTH, WRONGPASS on a bad password, access after AUTH and HELLO AUTH.
        let server = start(with_password()).await;
        let mut client = TestClient::connect(&server).await;
        client.send(&["GET", "k"]).await;
        client.expect_raw(b"-NOAUTH Authentication required.\r\n").await;
        assert_eq!(
            client.command(&["AUTH", "wrong"]).await,
            error("WRONGPASS invalid username-password pair or user is disabled.")
        );
        assert!(
            matches!(client.command(&["HELLO", "3"]).await, Frame::Error(text) if text.starts_with("NOAUTH HELLO must be called"))
        );
        assert_eq!(client.command(&["AUTH", "secret"]).await, Frame::ok());
        assert_eq!(client.command(&["SET", "k", "v"]).await, Frame::ok());
        assert_eq!(client.command(&["GET", "k"]).await, Frame::bulk("v"));

        let mut second = TestClient::connect(&server).await;
        let reply = second.command(&["HELLO", "3", "AUTH", "default", "secret"]).await;
        assert!(matches!(reply, Frame::Map(_)), "{reply:?}");
        assert_eq!(second.command(&["GET", "k"]).await, Frame::bulk("v"));

        // Without a password configured, AUTH <password> gets Redis's explanation.
        let open = start(Config::default()).await;
        let mut third = TestClient::connect(&open).await;
        third.send(&["AUTH", "x"]).await;
        third
            .expect_raw(
                b"-ERR AUTH <password> called without any password configured for the default \
                  user. Are you sure your configuration is correct?\r\n",
            )
            .await;
    }

    #[tokio::test]
    async fn connection_unauthenticated_limits_apply_before_auth() {
        // Goal: before AUTH a command may hold only 10 arguments; the connection then closes.
        let server = start(with_password()).await;
        let mut client = TestClient::connect(&server).await;
        client.send(&["DEL", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]).await;
        client.expect_raw(b"-ERR Protocol error: unauthenticated multibulk length\r\n").await;
        client.expect_closed().await;
    }

    #[tokio::test]
    async fn connection_unknown_command_and_wrong_arity_texts() {
        // Goal: Redis 7's exact texts, trailing space included.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        client.send(&["foo", "a", "b"]).await;
        client
            .expect_raw(b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n")
            .await;
        client.send(&["GET"]).await;
        client.expect_raw(b"-ERR wrong number of arguments for 'get' command\r\n").await;
        client.send(&["CLIENT", "SETNAME"]).await;
        client.expect_raw(b"-ERR wrong number of arguments for 'client|setname' command\r\n").await;
        client.send(&["CLIENT", "bogus"]).await;
        client.expect_raw(b"-ERR unknown subcommand 'bogus'. Try CLIENT HELP.\r\n").await;
    }

    #[tokio::test]
    async fn connection_pipelined_sets_then_gets_answer_in_order() {
        // Goal: 100 SETs and 100 GETs sent in one write are all answered, in order.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        let mut pipeline = Vec::new();
        for index in 0..100 {
            pipeline.extend(multibulk(&["SET", &format!("key{index}"), &format!("value{index}")]));
        }
        for index in 0..100 {
            pipeline.extend(multibulk(&["GET", &format!("key{index}")]));
        }
        client.send_raw(&pipeline).await;
        for _ in 0..100 {
            assert_eq!(client.read_frame().await, Frame::ok());
        }
        for index in 0..100 {
            assert_eq!(client.read_frame().await, Frame::bulk(format!("value{index}")));
        }
    }

    #[tokio::test]
    async fn connection_pipeline_submits_without_waiting_for_replies() {
        // Goal: a node that answers nothing until it holds three commands still gets all three
        // of one pipeline (a connection awaiting each reply first would stall), and the replies,
        // produced last-first, are written first-first.
        let (calls, mut receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(call) = receiver.recv().await {
                if let Call::Command { command: Command::Execute(args), reply, .. } = call {
                    held.push((args, reply));
                }
                if held.len() == 3 {
                    for (args, reply) in held.drain(..).rev() {
                        let _ = reply.send(Frame::Bulk(args[1].clone()));
                    }
                }
            }
        });
        let server = start_with_node(Config::default(), NodeHandle::new(calls)).await;
        let mut client = TestClient::connect(&server).await;
        let pipeline = [
            multibulk(&["GET", "one"]),
            multibulk(&["GET", "two"]),
            multibulk(&["PING"]),
            multibulk(&["GET", "three"]),
        ];
        client.send_raw(&pipeline.concat()).await;
        assert_eq!(client.read_frame().await, Frame::bulk("one"));
        assert_eq!(client.read_frame().await, Frame::bulk("two"));
        assert_eq!(client.read_frame().await, simple("PONG"));
        assert_eq!(client.read_frame().await, Frame::bulk("three"));
    }

    #[tokio::test]
    async fn connection_pipeline_larger_than_the_fifo_completes() {
        // Goal: more commands than REPLIES_IN_FLIGHT_MAX in one burst neither deadlock nor reorder.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        let count = REPLIES_IN_FLIGHT_MAX * 3;
        let mut pipeline = Vec::new();
        for index in 0..count {
            pipeline.extend(multibulk(&["ECHO", &index.to_string()]));
        }
        let (mut reader, mut writer) = client.stream.into_split();
        let sender = tokio::spawn(async move {
            writer.write_all(&pipeline).await.unwrap();
            writer
        });
        let mut input = BytesMut::new();
        for index in 0..count {
            let frame = loop {
                if let Some(frame) = resp::decode_frame(&mut input, &Limits::default()).unwrap() {
                    break frame;
                }
                let read = tokio::time::timeout(TEST_TIMEOUT, reader.read_buf(&mut input));
                assert!(read.await.unwrap().unwrap() > 0);
            };
            assert_eq!(frame, Frame::bulk(index.to_string()));
        }
        let _writer = sender.await.unwrap();
        client.input = input;
    }

    #[tokio::test]
    async fn connection_multi_exec_discard_and_errors() {
        // Goal: queued commands run as one transaction; PING inside is spliced; errors abort.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        assert_eq!(client.command(&["EXEC"]).await, error("ERR EXEC without MULTI"));
        assert_eq!(client.command(&["DISCARD"]).await, error("ERR DISCARD without MULTI"));
        assert_eq!(client.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(client.command(&["MULTI"]).await, error("ERR MULTI calls can not be nested"));
        assert_eq!(client.command(&["SET", "a", "1"]).await, simple("QUEUED"));
        assert_eq!(client.command(&["PING"]).await, simple("QUEUED"));
        assert_eq!(client.command(&["INCR", "a"]).await, simple("QUEUED"));
        assert_eq!(
            client.command(&["EXEC"]).await,
            Frame::Array(vec![Frame::ok(), simple("PONG"), Frame::Integer(2)])
        );

        assert_eq!(client.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(client.command(&["SET", "a", "9"]).await, simple("QUEUED"));
        assert_eq!(client.command(&["DISCARD"]).await, Frame::ok());
        assert_eq!(client.command(&["GET", "a"]).await, Frame::bulk("2"));

        assert_eq!(client.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(client.command(&["SET", "a", "9"]).await, simple("QUEUED"));
        assert!(matches!(client.command(&["NOPE"]).await, Frame::Error(_)));
        assert_eq!(
            client.command(&["EXEC"]).await,
            error("EXECABORT Transaction discarded because of previous errors.")
        );
        assert_eq!(client.command(&["GET", "a"]).await, Frame::bulk("2"));

        assert_eq!(client.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(
            client.command(&["WATCH", "a"]).await,
            error("ERR WATCH inside MULTI is not allowed")
        );
        assert_eq!(
            client.command(&["CLIENT", "ID"]).await,
            error("ERR Command not allowed inside a transaction")
        );
        assert_eq!(
            client.command(&["EXEC"]).await,
            error("EXECABORT Transaction discarded because of previous errors.")
        );
    }

    #[tokio::test]
    async fn connection_watch_aborts_when_another_client_writes() {
        // Goal: EXEC replies a null array if a watched key changed, and runs if none did.
        let server = start(Config::default()).await;
        let mut first = TestClient::connect(&server).await;
        let mut second = TestClient::connect(&server).await;
        assert_eq!(first.command(&["SET", "w", "0"]).await, Frame::ok());
        assert_eq!(first.command(&["WATCH", "w"]).await, Frame::ok());
        assert_eq!(second.command(&["SET", "w", "changed"]).await, Frame::ok());
        assert_eq!(first.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(first.command(&["SET", "w", "mine"]).await, simple("QUEUED"));
        first.send(&["EXEC"]).await;
        first.expect_raw(b"*-1\r\n").await;
        assert_eq!(first.command(&["GET", "w"]).await, Frame::bulk("changed"));

        // Watches are forgotten after EXEC; an unchanged watched key lets EXEC run. The SET in
        // the same pipeline as the WATCH is seen by it (the WATCH waits for earlier replies).
        first.send_raw(&[multibulk(&["SET", "w", "1"]), multibulk(&["WATCH", "w"])].concat()).await;
        assert_eq!(first.read_frame().await, Frame::ok());
        assert_eq!(first.read_frame().await, Frame::ok());
        assert_eq!(first.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(first.command(&["INCR", "w"]).await, simple("QUEUED"));
        assert_eq!(first.command(&["EXEC"]).await, Frame::Array(vec![Frame::Integer(2)]));
    }

    #[tokio::test]
    async fn connection_protocol_error_closes_with_the_exact_text() {
        // Goal: a malformed bulk length gets Redis's text and then the connection closes.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        client.send_raw(b"PING\r\n*1\r\n$abc\r\n").await;
        client.expect_raw(b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n").await;
        client.expect_closed().await;
    }

    #[tokio::test]
    async fn connection_max_clients_is_enforced() {
        // Goal: a client beyond maxclients gets Redis's error and is closed; a slot frees on close.
        let server = start(Config { max_clients: 1, ..Config::default() }).await;
        let mut first = TestClient::connect(&server).await;
        assert_eq!(first.command(&["PING"]).await, simple("PONG"));
        let mut second = TestClient::connect(&server).await;
        second.expect_raw(b"-ERR max number of clients reached\r\n").await;
        second.expect_closed().await;
        drop(first);
        // The first client's record goes once the server sees the close.
        let deadline = Instant::now() + TEST_TIMEOUT;
        loop {
            let mut third = TestClient::connect(&server).await;
            third.send(&["PING"]).await;
            if third.read_frame().await == simple("PONG") {
                break;
            }
            assert!(Instant::now() < deadline, "the slot was never freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn connection_quit_replies_ok_then_closes() {
        // Goal: QUIT answers +OK after earlier pipelined replies, then the server closes.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        client.send_raw(&[multibulk(&["SET", "q", "1"]), multibulk(&["QUIT"])].concat()).await;
        client.expect_raw(b"+OK\r\n+OK\r\n").await;
        client.expect_closed().await;
    }

    #[tokio::test]
    async fn connection_reset_restores_the_initial_state() {
        // Goal: RESET replies +RESET, returns to RESP2, leaves MULTI and deauthenticates.
        let server = start(with_password()).await;
        let mut client = TestClient::connect(&server).await;
        let reply =
            client.command(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "me"]).await;
        assert!(matches!(reply, Frame::Map(_)));
        assert_eq!(client.command(&["CLIENT", "GETNAME"]).await, Frame::bulk("me"));
        assert_eq!(client.command(&["MULTI"]).await, Frame::ok());
        client.send(&["RESET"]).await;
        client.expect_raw(b"+RESET\r\n").await;
        client.send(&["GET", "k"]).await;
        client.expect_raw(b"-NOAUTH Authentication required.\r\n").await;
        assert_eq!(client.command(&["AUTH", "default", "secret"]).await, Frame::ok());
        client.send(&["GET", "k"]).await;
        client.expect_raw(b"$-1\r\n").await;
        assert_eq!(client.command(&["CLIENT", "GETNAME"]).await, Frame::Null);
        assert_eq!(client.command(&["EXEC"]).await, error("ERR EXEC without MULTI"));
    }

    #[tokio::test]
    async fn connection_command_table_and_getkeys() {
        // Goal: COMMAND COUNT covers data and connection commands; INFO, GETKEYS and DOCS work.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        let Frame::Integer(count) = client.command(&["COMMAND", "COUNT"]).await else {
            panic!("COMMAND COUNT is an integer");
        };
        assert!(count > 100, "{count}");
        let coordination = node::coordination::table().len();
        let expected = commands::table().len() + coordination + info::CONNECTION_COMMANDS.len();
        assert_eq!(count as usize, expected);
        let getkeys = client.command(&["COMMAND", "GETKEYS", "LOCK.RELEASE", "l", "7"]).await;
        assert_eq!(getkeys, Frame::Array(vec![Frame::bulk("l")]));
        let Frame::Array(all) = client.command(&["COMMAND"]).await else { panic!() };
        assert_eq!(all.len(), count as usize);
        let Frame::Array(entries) = client.command(&["COMMAND", "INFO", "get", "nope"]).await
        else {
            panic!()
        };
        assert_eq!(entries[1], Frame::Null);
        let Frame::Array(get) = &entries[0] else { panic!() };
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], Frame::bulk("get"));
        assert_eq!(get[1], Frame::Integer(2));
        assert_eq!(
            client.command(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).await,
            Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")])
        );
        assert_eq!(
            client.command(&["COMMAND", "GETKEYS", "PING"]).await,
            error("ERR The command has no key arguments")
        );
        let Frame::Array(docs) = client.command(&["COMMAND", "DOCS", "set"]).await else {
            panic!()
        };
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0], Frame::bulk("set"));
    }

    #[tokio::test]
    async fn connection_info_has_the_cohort_section() {
        // Goal: INFO reports the consensus view and the key count; sections can be selected.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        assert_eq!(client.command(&["SET", "k", "v"]).await, Frame::ok());
        let text = text_of(&client.command(&["INFO"]).await);
        for expected in [
            "# Server\r\n",
            "# Cohort\r\n",
            "role:leader\r\n",
            "term:7\r\n",
            "commit_index:42\r\n",
            "members:1,2,3\r\n",
            "engine:raft\r\n",
            "fsync:always\r\n",
            "role:master\r\n",
            "db0:keys=1,expires=0,avg_ttl=0\r\n",
            "connected_clients:1\r\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        let text = text_of(&client.command(&["INFO", "cohort"]).await);
        assert!(text.starts_with("# Cohort\r\n") && !text.contains("# Server"), "{text}");
        // WAIT answers the replicas a quorum guarantees: 3 voters, quorum 2, one other.
        assert_eq!(client.command(&["WAIT", "2", "0"]).await, Frame::Integer(1));
    }

    #[tokio::test]
    async fn connection_half_closed_client_still_gets_its_replies() {
        // Goal: a client that shuts down its sending side after a pipeline receives every reply.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        let pipeline =
            [multibulk(&["SET", "h", "1"]), multibulk(&["GET", "h"]), multibulk(&["PING"])];
        client.send_raw(&pipeline.concat()).await;
        client.stream.shutdown().await.unwrap();
        client.expect_raw(b"+OK\r\n$1\r\n1\r\n+PONG\r\n").await;
        client.expect_closed().await;
    }

    #[tokio::test]
    async fn connection_spliced_replies_vanish_when_watch_aborts() {
        // Goal: an aborted EXEC is a null array even with locally answered PING/ECHO queued, and
        // a MULTI of only local commands needs no node round trip to answer them in order.
        let server = start(Config::default()).await;
        let mut first = TestClient::connect(&server).await;
        let mut second = TestClient::connect(&server).await;
        assert_eq!(first.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(first.command(&["ECHO", "a"]).await, simple("QUEUED"));
        assert_eq!(first.command(&["PING", "b"]).await, simple("QUEUED"));
        assert_eq!(
            first.command(&["EXEC"]).await,
            Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")])
        );
        assert_eq!(first.command(&["WATCH", "s", "t"]).await, Frame::ok());
        assert_eq!(second.command(&["SET", "t", "x"]).await, Frame::ok());
        assert_eq!(first.command(&["MULTI"]).await, Frame::ok());
        assert_eq!(first.command(&["PING"]).await, simple("QUEUED"));
        assert_eq!(first.command(&["SET", "s", "1"]).await, simple("QUEUED"));
        assert_eq!(first.command(&["EXEC"]).await, Frame::NullArray);
        assert_eq!(first.command(&["EXISTS", "s"]).await, Frame::Integer(0));
    }

    #[tokio::test]
    async fn connection_client_list_filters_and_getkeys_errors() {
        // Goal: CLIENT LIST shows every client and filters by id and type; GETKEYS refuses
        // unknown commands and bad arities with Redis's texts.
        let server = start(Config::default()).await;
        let mut first = TestClient::connect(&server).await;
        let mut second = TestClient::connect(&server).await;
        let Frame::Integer(second_id) = second.command(&["CLIENT", "ID"]).await else { panic!() };
        let all = text_of(&first.command(&["CLIENT", "LIST"]).await);
        assert_eq!(all.lines().count(), 2, "{all}");
        let only = text_of(&first.command(&["CLIENT", "LIST", "ID", &second_id.to_string()]).await);
        assert_eq!(only.lines().count(), 1);
        assert!(only.starts_with(&format!("id={second_id} ")), "{only}");
        assert_eq!(text_of(&first.command(&["CLIENT", "LIST", "TYPE", "pubsub"]).await), "");
        assert_eq!(
            first.command(&["CLIENT", "LIST", "ID", "x"]).await,
            error("ERR Invalid client ID")
        );
        assert_eq!(
            first.command(&["COMMAND", "GETKEYS", "NOPE", "a"]).await,
            error("ERR Invalid command specified")
        );
        assert_eq!(
            first.command(&["COMMAND", "GETKEYS", "GET"]).await,
            error("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(
            first.command(&["COMMAND", "GETKEYS", "SINTERCARD", "5", "a"]).await,
            error("ERR Invalid arguments specified for command")
        );
    }

    #[tokio::test]
    async fn connection_client_config_select_and_time() {
        // Goal: the CLIENT subcommands, CONFIG GET/SET, SELECT and TIME answer like Redis.
        let server = start(Config::default()).await;
        let mut client = TestClient::connect(&server).await;
        let Frame::Integer(id) = client.command(&["CLIENT", "ID"]).await else { panic!() };
        assert!(id > 0);
        assert_eq!(client.command(&["CLIENT", "SETNAME", "worker"]).await, Frame::ok());
        assert_eq!(
            client.command(&["CLIENT", "SETNAME", "two words"]).await,
            error("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(
            client.command(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]).await,
            Frame::ok()
        );
        let line = text_of(&client.command(&["CLIENT", "INFO"]).await);
        assert!(line.starts_with(&format!("id={id} ")), "{line}");
        assert!(line.contains(" name=worker ") && line.contains("lib-name=redis-py"), "{line}");
        assert!(line.contains(" cmd=client|info "), "{line}");
        let list = text_of(&client.command(&["CLIENT", "LIST"]).await);
        assert_eq!(list.lines().count(), 1);
        assert_eq!(client.command(&["CLIENT", "NO-EVICT", "on"]).await, Frame::ok());

        let Frame::Array(pairs) = client.command(&["CONFIG", "GET", "*max*"]).await else {
            panic!()
        };
        let names: Vec<String> = pairs.iter().step_by(2).map(text_of).collect();
        assert_eq!(names, ["maxclients", "maxmemory", "maxmemory-policy", "proto-max-bulk-len"]);
        assert_eq!(
            client.command(&["CONFIG", "GET", "appendfsync"]).await,
            Frame::Array(vec![Frame::bulk("appendfsync"), Frame::bulk("always")])
        );
        assert!(
            matches!(client.command(&["CONFIG", "SET", "maxclients", "1"]).await, Frame::Error(text) if text.contains("read-only"))
        );

        assert_eq!(client.command(&["SELECT", "0"]).await, Frame::ok());
        assert_eq!(client.command(&["SELECT", "1"]).await, error("ERR DB index is out of range"));
        assert_eq!(
            client.command(&["SELECT", "x"]).await,
            error("ERR value is not an integer or out of range")
        );
        let Frame::Array(time) = client.command(&["TIME"]).await else { panic!() };
        let seconds: u64 = text_of(&time[0]).parse().unwrap();
        assert!(seconds > 1_600_000_000);
        assert_eq!(client.command(&["READONLY"]).await, Frame::ok());
        assert_eq!(client.command(&["DBSIZE"]).await, Frame::Integer(0));
    }
}
