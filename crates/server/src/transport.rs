//! The peer transport: moves opaque, already encoded messages (`Bytes`) between
//! the nodes of a cluster over TCP. It knows nothing about consensus; the node
//! task hands it bytes addressed to a node id and receives `(from, bytes)`.
//!
//! # Connections
//!
//! Each node dials every peer in its address book once, so a pair of nodes
//! shares two TCP connections, one per direction; a connection only ever
//! carries frames from the node that dialled it. The dialler writes a
//! handshake, then frames; the acceptor only reads.
//!
//! - **Outbound**: one writer task per peer, fed by a bounded queue of
//!   `queue_messages_max` messages. `send` never blocks: a full queue, an
//!   unknown peer or an oversized payload drops the message and counts it
//!   (consensus tolerates loss; a stalled node does not). While a peer is
//!   unreachable its queue keeps what fits; the newest messages are dropped.
//!   When connected, the writer takes every message available (up to
//!   `batch_bytes_max`) into one buffer and writes it with a single
//!   `write_all`, so a burst costs one write, not one per message. A writer
//!   reconnects with exponential backoff (`backoff_initial_ms` doubling to
//!   `backoff_max_ms`, jittered from a generator seeded by the node ids) for as
//!   long as the peer stays in the address book. It also watches its socket's
//!   read side: the acceptor never writes, so end-of-stream there means the
//!   peer went away and the writer reconnects without waiting for traffic.
//! - **Inbound**: one reader task per accepted connection, at most
//!   `inbound_connections_max` at a time. A peer sending garbage (bad magic,
//!   wrong cluster, bad checksum, oversized frame, no handshake in time) is
//!   disconnected and counted; nothing it says is delivered.
//!
//! # Wire format (little-endian, fixed width)
//!
//! ```text
//! handshake: magic b"COHORT\0\x01" (8) | cluster id u64 (8) | sender node id u64 (8)
//! frame:     payload length u32 (4) | CRC-32C of the payload u32 (4) | payload
//! ```
//!
//! The length is checked against `frame_bytes_max` before any payload byte is
//! read, and the payload buffer grows only as bytes actually arrive, so a peer
//! claiming a huge frame costs nothing until it sends it. The checksum guards
//! against corruption that TCP's 16-bit checksum lets through; it is not
//! authentication (the sender id in the handshake is taken on trust).
//!
//! # Shutdown
//!
//! Every task lives in one `JoinSet`; `shutdown` closes it to new tasks,
//! aborts them all (listener, readers, writers, one-off sends) and waits until
//! each has finished, so the listening port is free when it returns. Dropping
//! the last handle without `shutdown` aborts the tasks without waiting.
//!
//! ```ignore
//! # async fn example() -> std::io::Result<()> {
//! use std::collections::BTreeMap;
//! let (inbound, mut received) = tokio::sync::mpsc::channel(1024);
//! let transport = Transport::start(1, 7, "127.0.0.1:7001".parse().unwrap(), inbound).await?;
//! transport.set_peers(BTreeMap::from([(2, "127.0.0.1:7002".to_string())]));
//! transport.send(2, bytes::Bytes::from_static(b"hello"));
//! let (from, payload) = received.recv().await.unwrap();
//! transport.shutdown().await;
//! # Ok(()) }
//! ```

// Some items (the counters, `start_with`, the wire helpers' public face) have
// no caller in the binary yet, only in the tests below.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use consensus::rng::Rng;
use consensus::NodeId;
use storage::crc32c::crc32c;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{sleep, timeout, Instant};

/// The first bytes on every connection; the last byte is the wire version.
pub const MAGIC: [u8; 8] = *b"COHORT\0\x01";
/// Magic, cluster id and sender node id.
pub const HANDSHAKE_BYTES: usize = 24;
/// Payload length and checksum.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Limits and timings. Every queue, buffer and wait is bounded by one of these.
#[derive(Clone, Copy, Debug)]
pub struct TransportConfig {
    /// Messages waiting for one peer's writer; beyond it `send` drops.
    pub queue_messages_max: usize,
    /// The largest payload sent or accepted. At most `u32::MAX`.
    pub frame_bytes_max: usize,
    /// A writer stops draining its queue into one batch past this size.
    pub batch_bytes_max: usize,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub connect_timeout_ms: u64,
    /// Time an accepted connection has to send its handshake.
    pub handshake_timeout_ms: u64,
    /// Time one batch may take to write; a peer that stops reading is dropped.
    pub write_timeout_ms: u64,
    pub inbound_connections_max: usize,
    /// One-off `send_to_address` deliveries in flight at once.
    pub address_sends_max: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        DEFAULT_CONFIG
    }
}

const DEFAULT_CONFIG: TransportConfig = TransportConfig {
    queue_messages_max: 4096,
    frame_bytes_max: 64 << 20,
    batch_bytes_max: 1 << 20,
    backoff_initial_ms: 20,
    backoff_max_ms: 1000,
    connect_timeout_ms: 1000,
    handshake_timeout_ms: 5000,
    write_timeout_ms: 5000,
    inbound_connections_max: 256,
    address_sends_max: 16,
};

const _: () = assert!(DEFAULT_CONFIG.frame_bytes_max <= u32::MAX as usize);
const _: () = assert!(DEFAULT_CONFIG.batch_bytes_max <= DEFAULT_CONFIG.frame_bytes_max);
const _: () = assert!(DEFAULT_CONFIG.backoff_initial_ms <= DEFAULT_CONFIG.backoff_max_ms);

impl TransportConfig {
    fn check(&self) {
        assert!(self.frame_bytes_max <= u32::MAX as usize, "frames carry a u32 length");
        assert!(self.queue_messages_max > 0 && self.inbound_connections_max > 0);
        assert!(self.address_sends_max > 0 && self.batch_bytes_max > 0);
        assert!(0 < self.backoff_initial_ms && self.backoff_initial_ms <= self.backoff_max_ms);
    }
}

/// Counters since start (and one gauge, `inbound_connections`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Messages written to a peer's socket (not necessarily received).
    pub messages_sent: u64,
    /// Socket writes of batches; `messages_sent / batches_written` is the batching factor.
    pub batches_written: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub dropped_queue_full: u64,
    pub dropped_unknown_peer: u64,
    /// Payloads larger than `frame_bytes_max`.
    pub dropped_oversized: u64,
    /// Messages in a batch whose write failed, or queued for a writer that stopped.
    pub dropped_connection_lost: u64,
    /// `send_to_address` messages not delivered (limit reached, connect or write failed).
    pub dropped_address_sends: u64,
    /// Outbound connections established (handshake written).
    pub connects: u64,
    pub connect_failures: u64,
    pub accepted: u64,
    /// Inbound connections closed at once because `inbound_connections_max` were open.
    pub refused_over_limit: u64,
    /// Inbound connections closed for a bad or missing handshake or a wrong cluster id.
    pub refused_handshakes: u64,
    /// Inbound connections closed for a bad checksum or an oversized frame.
    pub bad_frames: u64,
    /// Inbound connections open now.
    pub inbound_connections: u64,
}

impl TransportStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_unknown_peer
            + self.dropped_oversized
            + self.dropped_connection_lost
            + self.dropped_address_sends
    }
}

#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    batches_written: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_unknown_peer: AtomicU64,
    dropped_oversized: AtomicU64,
    dropped_connection_lost: AtomicU64,
    dropped_address_sends: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    accepted: AtomicU64,
    refused_over_limit: AtomicU64,
    refused_handshakes: AtomicU64,
    bad_frames: AtomicU64,
}

fn bump(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

/// What every task needs; tasks never hold the `Transport` itself, so dropping
/// the last handle drops the task set and aborts them.
struct Shared {
    local: NodeId,
    cluster: u64,
    config: TransportConfig,
    counters: Counters,
    inbound: mpsc::Sender<(NodeId, Bytes)>,
}

/// The task set; closed once `shutdown` starts so nothing new is spawned.
struct Tasks {
    set: JoinSet<()>,
    closed: bool,
}

type SharedTasks = Arc<Mutex<Tasks>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks is an assertion failure elsewhere; the
    // data (a map, a task set) stays usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spawns `future` into the set unless it is closed; reaps finished tasks so
/// the set does not grow with every connection ever accepted.
fn spawn_task<F>(tasks: &Mutex<Tasks>, future: F) -> Option<AbortHandle>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut tasks = lock(tasks);
    if tasks.closed {
        return None;
    }
    while tasks.set.try_join_next().is_some() {}
    Some(tasks.set.spawn(future))
}

struct Peer {
    address: String,
    queue: mpsc::Sender<Bytes>,
    writer: AbortHandle,
}

struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    peers: Mutex<BTreeMap<NodeId, Peer>>,
    tasks: SharedTasks,
    inbound_slots: Arc<Semaphore>,
    address_sends: Arc<Semaphore>,
}

/// A handle to the transport; clones share it.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl Transport {
    /// Listens for peers on `listen` with the default limits; frames from peers
    /// arrive on `inbound` as `(from, payload)`.
    pub async fn start(
        local: NodeId,
        cluster: u64,
        listen: SocketAddr,
        inbound: mpsc::Sender<(NodeId, Bytes)>,
    ) -> io::Result<Transport> {
        Transport::start_with(TransportConfig::default(), local, cluster, listen, inbound).await
    }

    /// `start` with explicit limits.
    pub async fn start_with(
        config: TransportConfig,
        local: NodeId,
        cluster: u64,
        listen: SocketAddr,
        inbound: mpsc::Sender<(NodeId, Bytes)>,
    ) -> io::Result<Transport> {
        config.check();
        let socket = if listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // A restarted node must rebind its port while old connections linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(1024)?;
        let local_addr = listener.local_addr()?;
        let shared =
            Arc::new(Shared { local, cluster, config, counters: Counters::default(), inbound });
        let tasks = Arc::new(Mutex::new(Tasks { set: JoinSet::new(), closed: false }));
        let inbound_slots = Arc::new(Semaphore::new(config.inbound_connections_max));
        let listener_task = run_listener(
            listener,
            Arc::downgrade(&tasks),
            Arc::clone(&shared),
            Arc::clone(&inbound_slots),
        );
        spawn_task(&tasks, listener_task).expect("a new task set is open");
        let inner = Inner {
            shared,
            local_addr,
            peers: Mutex::new(BTreeMap::new()),
            tasks,
            inbound_slots,
            address_sends: Arc::new(Semaphore::new(config.address_sends_max)),
        };
        Ok(Transport { inner: Arc::new(inner) })
    }

    /// The bound listening address (useful when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Replaces the address book (node id → `"host:port"`). Writers for removed
    /// ids stop and their connections close; an id whose address changed gets
    /// a new writer (its queued messages are dropped). The local id is ignored:
    /// `send` to it never touches the network.
    pub fn set_peers(&self, peers: BTreeMap<NodeId, String>) {
        let shared = &self.inner.shared;
        let mut book = lock(&self.inner.peers);
        book.retain(|id, peer| {
            let keep = peers.get(id) == Some(&peer.address);
            if !keep {
                peer.writer.abort();
                let queued = shared.config.queue_messages_max - peer.queue.capacity();
                bump(&shared.counters.dropped_connection_lost, queued as u64);
            }
            keep
        });
        for (id, address) in peers {
            if id == shared.local || book.contains_key(&id) {
                continue;
            }
            let (queue, receiver) = mpsc::channel(shared.config.queue_messages_max);
            let writer = run_writer(Arc::clone(shared), id, address.clone(), receiver);
            if let Some(writer) = spawn_task(&self.inner.tasks, writer) {
                book.insert(id, Peer { address, queue, writer });
            }
        }
    }

    /// Queues `payload` for node `to`; never blocks. Dropped and counted if the
    /// peer is unknown, its queue is full or the payload exceeds
    /// `frame_bytes_max`. A message to the local node goes straight to `inbound`
    /// (dropped if that channel is full).
    pub fn send(&self, to: NodeId, payload: Bytes) {
        let shared = &self.inner.shared;
        let counters = &shared.counters;
        if payload.len() > shared.config.frame_bytes_max {
            bump(&counters.dropped_oversized, 1);
            return;
        }
        if to == shared.local {
            match shared.inbound.try_send((to, payload)) {
                Ok(()) => bump(&counters.messages_received, 1),
                Err(_) => bump(&counters.dropped_queue_full, 1),
            }
            return;
        }
        let book = lock(&self.inner.peers);
        let Some(peer) = book.get(&to) else {
            bump(&counters.dropped_unknown_peer, 1);
            return;
        };
        match peer.queue.try_send(payload) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => bump(&counters.dropped_queue_full, 1),
            Err(TrySendError::Closed(_)) => bump(&counters.dropped_connection_lost, 1),
        }
    }

    /// Sends one message to `address`, whose node id is not known yet (a node
    /// joining a cluster contacts a seed). Connects, writes the handshake and
    /// one frame, and closes. At most `address_sends_max` run at once; more
    /// are dropped and counted, as are failures.
    pub fn send_to_address(&self, address: String, payload: Bytes) {
        let shared = &self.inner.shared;
        if payload.len() > shared.config.frame_bytes_max {
            bump(&shared.counters.dropped_oversized, 1);
            return;
        }
        let Ok(permit) = Arc::clone(&self.inner.address_sends).try_acquire_owned() else {
            bump(&shared.counters.dropped_address_sends, 1);
            return;
        };
        let task = send_once(Arc::clone(shared), address, payload, permit);
        if spawn_task(&self.inner.tasks, task).is_none() {
            bump(&shared.counters.dropped_address_sends, 1);
        }
    }

    pub fn stats(&self) -> TransportStats {
        let counters = &self.inner.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let open_slots = self.inner.inbound_slots.available_permits();
        TransportStats {
            messages_sent: read(&counters.messages_sent),
            batches_written: read(&counters.batches_written),
            bytes_sent: read(&counters.bytes_sent),
            messages_received: read(&counters.messages_received),
            bytes_received: read(&counters.bytes_received),
            dropped_queue_full: read(&counters.dropped_queue_full),
            dropped_unknown_peer: read(&counters.dropped_unknown_peer),
            dropped_oversized: read(&counters.dropped_oversized),
            dropped_connection_lost: read(&counters.dropped_connection_lost),
            dropped_address_sends: read(&counters.dropped_address_sends),
            connects: read(&counters.connects),
            connect_failures: read(&counters.connect_failures),
            accepted: read(&counters.accepted),
            refused_over_limit: read(&counters.refused_over_limit),
            refused_handshakes: read(&counters.refused_handshakes),
            bad_frames: read(&counters.bad_frames),
            inbound_connections: (self.inner.shared.config.inbound_connections_max - open_slots)
                as u64,
        }
    }

    /// Stops the listener, readers and writers and returns once every task has
    /// finished. Later calls to `send` count the message as dropped.
    pub async fn shutdown(&self) {
        let mut set = {
            let mut tasks = lock(&self.inner.tasks);
            tasks.closed = true;
            std::mem::take(&mut tasks.set)
        };
        lock(&self.inner.peers).clear();
        set.shutdown().await;
    }
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

pub fn encode_handshake(cluster: u64, local: NodeId) -> [u8; HANDSHAKE_BYTES] {
    let mut bytes = [0u8; HANDSHAKE_BYTES];
    bytes[..8].copy_from_slice(&MAGIC);
    bytes[8..16].copy_from_slice(&cluster.to_le_bytes());
    bytes[16..].copy_from_slice(&local.to_le_bytes());
    bytes
}

/// Why an inbound connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("bad magic bytes {0:02x?}")]
    BadMagic([u8; 8]),
    #[error("peer belongs to cluster {theirs}, this node to {ours}")]
    WrongCluster { ours: u64, theirs: u64 },
    #[error("frame of {length_bytes} bytes exceeds the limit of {limit_bytes}")]
    FrameTooLarge { length_bytes: u64, limit_bytes: u64 },
    #[error("frame checksum {actual:#010x}, header says {expected:#010x}")]
    BadChecksum { expected: u32, actual: u32 },
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

impl WireError {
    /// Errors that mean the peer is broken or hostile, as opposed to gone.
    fn is_bad_frame(&self) -> bool {
        matches!(self, WireError::FrameTooLarge { .. } | WireError::BadChecksum { .. })
    }
}

/// Checks a handshake and returns the sender's node id.
pub fn decode_handshake(bytes: &[u8; HANDSHAKE_BYTES], cluster: u64) -> Result<NodeId, WireError> {
    let magic: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    let theirs = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if theirs != cluster {
        return Err(WireError::WrongCluster { ours: cluster, theirs });
    }
    Ok(u64::from_le_bytes(bytes[16..].try_into().expect("8 bytes")))
}

/// Appends one frame (header and payload) to `buffer`.
pub fn encode_frame(buffer: &mut BytesMut, payload: &[u8]) {
    let length = u32::try_from(payload.len()).expect("payload length checked by send");
    buffer.reserve(FRAME_HEADER_BYTES + payload.len());
    buffer.put_u32_le(length);
    buffer.put_u32_le(crc32c(payload));
    buffer.put_slice(payload);
}

/// Reads one frame's payload; `Ok(None)` at a clean end of stream between
/// frames. The length is checked before any payload is read, and the buffer
/// grows only as payload bytes arrive.
pub async fn read_frame<R>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<Option<Bytes>, WireError>
where
    R: AsyncBufRead + Unpin,
{
    if reader.fill_buf().await?.is_empty() {
        return Ok(None);
    }
    let mut header = [0u8; FRAME_HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    let length_bytes = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let expected = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if length_bytes as usize > frame_bytes_max {
        return Err(WireError::FrameTooLarge {
            length_bytes: u64::from(length_bytes),
            limit_bytes: frame_bytes_max as u64,
        });
    }
    const INITIAL_BYTES_MAX: usize = 64 << 10;
    let mut payload = Vec::with_capacity((length_bytes as usize).min(INITIAL_BYTES_MAX));
    let read_bytes = (&mut *reader).take(u64::from(length_bytes)).read_to_end(&mut payload).await?;
    if read_bytes != length_bytes as usize {
        return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    let actual = crc32c(&payload);
    if actual != expected {
        return Err(WireError::BadChecksum { expected, actual });
    }
    Ok(Some(Bytes::from(payload)))
}

// ---------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------

async fn run_listener(
    listener: TcpListener,
    tasks: Weak<Mutex<Tasks>>,
    shared: Arc<Shared>,
    inbound_slots: Arc<Semaphore>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or a connection reset before accept:
                // pause rather than spin, then keep serving.
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        bump(&shared.counters.accepted, 1);
        let Ok(permit) = Arc::clone(&inbound_slots).try_acquire_owned() else {
            bump(&shared.counters.refused_over_limit, 1);
            continue;
        };
        let Some(tasks) = tasks.upgrade() else { return };
        let _ = spawn_task(&tasks, run_reader(Arc::clone(&shared), stream, permit));
    }
}

async fn run_reader(shared: Arc<Shared>, stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let counters = &shared.counters;
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let handshake_timeout = Duration::from_millis(shared.config.handshake_timeout_ms);
    let mut handshake = [0u8; HANDSHAKE_BYTES];
    let from = match timeout(handshake_timeout, reader.read_exact(&mut handshake)).await {
        Ok(Ok(_)) => match decode_handshake(&handshake, shared.cluster) {
            Ok(from) => from,
            Err(_) => {
                bump(&counters.refused_handshakes, 1);
                return;
            }
        },
        Ok(Err(_)) | Err(_) => {
            bump(&counters.refused_handshakes, 1);
            return;
        }
    };
    loop {
        match read_frame(&mut reader, shared.config.frame_bytes_max).await {
            Ok(Some(payload)) => {
                bump(&counters.messages_received, 1);
                bump(&counters.bytes_received, payload.len() as u64);
                // Waiting here when the node is behind pushes back on the
                // sender through TCP instead of buffering without bound.
                if shared.inbound.send((from, payload)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                if error.is_bad_frame() {
                    bump(&counters.bad_frames, 1);
                }
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------

/// Connects to `address`, sets TCP_NODELAY and writes the handshake.
async fn connect(shared: &Shared, address: &str) -> io::Result<TcpStream> {
    let connect_timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    let attempt = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&encode_handshake(shared.cluster, shared.local)).await?;
        Ok(stream)
    };
    timeout(connect_timeout, attempt).await.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Exponential backoff with jitter: each delay is drawn from `[base/2, base]`
/// and the base doubles up to the maximum. The jitter keeps peers that lost a
/// node at the same moment from redialling in lockstep.
struct Backoff {
    base_ms: u64,
    initial_ms: u64,
    max_ms: u64,
    rng: Rng,
}

impl Backoff {
    fn new(config: &TransportConfig, seed: u64) -> Backoff {
        Backoff {
            base_ms: config.backoff_initial_ms,
            initial_ms: config.backoff_initial_ms,
            max_ms: config.backoff_max_ms,
            rng: Rng::new(seed),
        }
    }

    fn next_delay(&mut self) -> Duration {
        let half_ms = self.base_ms / 2;
        let delay_ms = half_ms + self.rng.range(0, self.base_ms - half_ms + 1);
        assert!(delay_ms <= self.max_ms);
        self.base_ms = (self.base_ms * 2).min(self.max_ms);
        Duration::from_millis(delay_ms)
    }

    fn reset(&mut self) {
        self.base_ms = self.initial_ms;
    }
}

enum Ended {
    /// The queue's sender is gone: the peer left the address book.
    QueueClosed,
    /// The connection failed or the peer closed it.
    ConnectionLost,
}

async fn run_writer(
    shared: Arc<Shared>,
    peer: NodeId,
    address: String,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let seed = shared.local.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ peer;
    let mut backoff = Backoff::new(&shared.config, seed);
    let steady = Duration::from_millis(shared.config.backoff_max_ms);
    loop {
        match connect(&shared, &address).await {
            Ok(stream) => {
                bump(&shared.counters.connects, 1);
                let connected_at = Instant::now();
                match pump(&shared, stream, &mut queue).await {
                    Ended::QueueClosed => return,
                    Ended::ConnectionLost => {}
                }
                // A connection that lasted resets the backoff; one closed at
                // once (say, a peer refusing our cluster id) keeps growing it.
                if connected_at.elapsed() >= steady {
                    backoff.reset();
                }
            }
            Err(_) => bump(&shared.counters.connect_failures, 1),
        }
        sleep(backoff.next_delay()).await;
    }
}

/// Writes batches from `queue` to `stream` until either ends.
async fn pump(shared: &Shared, stream: TcpStream, queue: &mut mpsc::Receiver<Bytes>) -> Ended {
    let counters = &shared.counters;
    let config = &shared.config;
    let write_timeout = Duration::from_millis(config.write_timeout_ms);
    let (mut read_half, mut write_half) = stream.into_split();
    let mut probe = [0u8; 16];
    let mut batch = BytesMut::new();
    loop {
        let first = tokio::select! {
            message = queue.recv() => match message {
                Some(message) => message,
                None => return Ended::QueueClosed,
            },
            // The acceptor never writes: end of stream, an error or stray
            // bytes all mean this connection is finished.
            _ = read_half.read(&mut probe) => return Ended::ConnectionLost,
        };
        if batch.capacity() > 2 * config.batch_bytes_max {
            // Do not keep a buffer sized for one huge frame forever.
            batch = BytesMut::new();
        }
        batch.clear();
        encode_frame(&mut batch, &first);
        let mut messages = 1u64;
        while batch.len() < config.batch_bytes_max {
            let Ok(message) = queue.try_recv() else { break };
            encode_frame(&mut batch, &message);
            messages += 1;
        }
        let write = async {
            write_half.write_all(&batch).await?;
            write_half.flush().await
        };
        match timeout(write_timeout, write).await {
            Ok(Ok(())) => {
                bump(&counters.messages_sent, messages);
                bump(&counters.batches_written, 1);
                bump(&counters.bytes_sent, batch.len() as u64);
            }
            Ok(Err(_)) | Err(_) => {
                bump(&counters.dropped_connection_lost, messages);
                return Ended::ConnectionLost;
            }
        }
    }
}

async fn send_once(
    shared: Arc<Shared>,
    address: String,
    payload: Bytes,
    _permit: OwnedSemaphorePermit,
) {
    let write_timeout = Duration::from_millis(shared.config.write_timeout_ms);
    let delivered = async {
        let mut stream = connect(&shared, &address).await?;
        let mut frame = BytesMut::new();
        encode_frame(&mut frame, &payload);
        timeout(write_timeout, async {
            stream.write_all(&frame).await?;
            stream.shutdown().await
        })
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    };
    match delivered.await {
        Ok(()) => {
            bump(&shared.counters.connects, 1);
            bump(&shared.counters.messages_sent, 1);
            bump(&shared.counters.batches_written, 1);
            bump(&shared.counters.bytes_sent, (FRAME_HEADER_BYTES + payload.len()) as u64);
        }
        Err(_) => bump(&shared.counters.dropped_address_sends, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    const WAIT: Duration = Duration::from_secs(3);

    type Inbound = mpsc::Receiver<(NodeId, Bytes)>;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn test_config() -> TransportConfig {
        TransportConfig { backoff_max_ms: 100, ..TransportConfig::default() }
    }

    async fn start_at(
        config: TransportConfig,
        id: NodeId,
        listen: SocketAddr,
    ) -> (Transport, Inbound) {
        let (sender, receiver) = mpsc::channel(10_000);
        let transport = Transport::start_with(config, id, 7, listen, sender).await.unwrap();
        (transport, receiver)
    }

    async fn start(id: NodeId) -> (Transport, Inbound) {
        start_at(test_config(), id, loopback()).await
    }

    async fn receive(inbound: &mut Inbound) -> (NodeId, Bytes) {
        timeout(WAIT, inbound.recv()).await.expect("message within the deadline").unwrap()
    }

    async fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            sleep(Duration::from_millis(5)).await;
        }
    }

    fn book(entries: &[(NodeId, &Transport)]) -> BTreeMap<NodeId, String> {
        entries.iter().map(|(id, transport)| (*id, transport.local_addr().to_string())).collect()
    }

    fn numbered(sender: NodeId, sequence: u64) -> Bytes {
        let mut bytes = BytesMut::new();
        bytes.put_u64_le(sender);
        bytes.put_u64_le(sequence);
        bytes.freeze()
    }

    /// Reads until the server closes the connection; panics if it stays open.
    async fn assert_closed_by_peer(stream: &mut TcpStream) {
        let mut sink = [0u8; 64];
        loop {
            match timeout(WAIT, stream.read(&mut sink)).await.expect("peer closes in time") {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Frames round-trip, and corruption, truncation and oversize are each told apart.
    #[tokio::test]
    async fn frames_round_trip_and_corruption_is_detected() {
        let mut buffer = BytesMut::new();
        for payload in [&b"one"[..], b"", &[7u8; 300]] {
            encode_frame(&mut buffer, payload);
        }
        let mut reader = &buffer[..];
        assert_eq!(read_frame(&mut reader, 1024).await.unwrap().unwrap(), &b"one"[..]);
        assert_eq!(read_frame(&mut reader, 1024).await.unwrap().unwrap(), &b""[..]);
        assert_eq!(read_frame(&mut reader, 1024).await.unwrap().unwrap(), &[7u8; 300][..]);
        assert!(read_frame(&mut reader, 1024).await.unwrap().is_none());

        let mut corrupt = buffer.clone();
        corrupt[FRAME_HEADER_BYTES + 1] ^= 0x40;
        let error = read_frame(&mut &corrupt[..], 1024).await.unwrap_err();
        assert!(matches!(error, WireError::BadChecksum { .. }), "{error}");

        let truncated = &buffer[..FRAME_HEADER_BYTES + 2];
        let error = read_frame(&mut &truncated[..], 1024).await.unwrap_err();
        assert!(matches!(error, WireError::Io(_)), "{error}");

        // 300 bytes against a 299-byte limit: refused from the header alone.
        let third = &buffer[2 * FRAME_HEADER_BYTES + 3..];
        let error = read_frame(&mut &third[..], 299).await.unwrap_err();
        assert!(matches!(error, WireError::FrameTooLarge { length_bytes: 300, .. }), "{error}");
    }

    /// A header claiming 4 GiB is refused before any payload is read or allocated:
    /// only the header exists, so a reader that tried to read on would hit EOF.
    #[tokio::test]
    async fn huge_length_is_refused_from_the_header() {
        let mut header = Vec::new();
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let error = read_frame(&mut &header[..], 64 << 20).await.unwrap_err();
        assert!(matches!(error, WireError::FrameTooLarge { .. }), "{error}");
    }

    /// The handshake accepts its own encoding and refuses bad magic and other clusters.
    #[test]
    fn handshake_checks_magic_and_cluster() {
        let handshake = encode_handshake(7, 42);
        assert_eq!(decode_handshake(&handshake, 7).unwrap(), 42);
        assert!(matches!(
            decode_handshake(&handshake, 8),
            Err(WireError::WrongCluster { ours: 8, theirs: 7 })
        ));
        let mut bad = handshake;
        bad[0] = b'X';
        assert!(matches!(decode_handshake(&bad, 7), Err(WireError::BadMagic(_))));
    }

    /// Backoff delays stay within [base/2, base], double up to the cap, and reset.
    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = TransportConfig::default();
        let mut backoff = Backoff::new(&config, 3);
        let mut base_ms = config.backoff_initial_ms;
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let delay_ms = backoff.next_delay().as_millis() as u64;
            assert!(base_ms / 2 <= delay_ms && delay_ms <= base_ms, "{delay_ms} vs {base_ms}");
            distinct.insert(delay_ms);
            base_ms = (base_ms * 2).min(config.backoff_max_ms);
        }
        assert!(distinct.len() > 10, "jitter varies the delay: {distinct:?}");
        backoff.reset();
        assert!(backoff.next_delay().as_millis() as u64 <= config.backoff_initial_ms);
    }

    /// Three nodes in a full mesh: every message arrives, in send order per pair
    /// (on the multi-threaded runtime the binary uses).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_deliver_in_order_per_pair() {
        const MESSAGES: u64 = 500;
        let (one, inbound_one) = start(1).await;
        let (two, inbound_two) = start(2).await;
        let (three, inbound_three) = start(3).await;
        let everyone = book(&[(1, &one), (2, &two), (3, &three)]);
        let nodes = [(1, one), (2, two), (3, three)];
        for (_, node) in &nodes {
            node.set_peers(everyone.clone());
        }
        for sequence in 0..MESSAGES {
            for (id, node) in &nodes {
                for (target, _) in &nodes {
                    if target != id {
                        node.send(*target, numbered(*id, sequence));
                    }
                }
            }
        }
        for (id, mut inbound) in [(1, inbound_one), (2, inbound_two), (3, inbound_three)] {
            let mut next: BTreeMap<NodeId, u64> = BTreeMap::new();
            for _ in 0..2 * MESSAGES {
                let (from, payload) = receive(&mut inbound).await;
                let sender = u64::from_le_bytes(payload[..8].try_into().unwrap());
                let sequence = u64::from_le_bytes(payload[8..].try_into().unwrap());
                assert_eq!(from, sender, "the handshake names the sender");
                assert_ne!(from, id);
                let expected = next.entry(from).or_insert(0);
                assert_eq!(sequence, *expected, "node {id} got {from}'s messages out of order");
                *expected += 1;
            }
        }
        for (_, node) in &nodes {
            assert_eq!(node.stats().dropped(), 0);
            node.shutdown().await;
        }
    }

    /// A burst queued while connected goes out in far fewer writes than messages.
    #[tokio::test]
    async fn bursts_are_batched_into_few_writes() {
        const BURST: u64 = 2000;
        let (sender, _) = start(1).await;
        let (receiver, mut inbound) = start(2).await;
        sender.set_peers(book(&[(2, &receiver)]));
        sender.send(2, Bytes::from_static(b"warm up"));
        receive(&mut inbound).await;
        let before = sender.stats();
        for sequence in 0..BURST {
            sender.send(2, numbered(1, sequence));
        }
        for sequence in 0..BURST {
            assert_eq!(receive(&mut inbound).await.1, numbered(1, sequence));
        }
        let after = sender.stats();
        assert_eq!(after.messages_sent - before.messages_sent, BURST);
        let writes = after.batches_written - before.batches_written;
        assert!(writes * 10 <= BURST, "{writes} writes for {BURST} messages");
        assert_eq!(receiver.stats().messages_received, BURST + 1);
        sender.shutdown().await;
        receiver.shutdown().await;
    }

    /// A peer that stops and starts again on the same port is redialled and gets messages again.
    #[tokio::test]
    async fn reconnects_after_a_peer_restart() {
        let (sender, _) = start(1).await;
        let (receiver, mut inbound) = start(2).await;
        let address = receiver.local_addr();
        sender.set_peers(book(&[(2, &receiver)]));
        sender.send(2, Bytes::from_static(b"before"));
        assert_eq!(receive(&mut inbound).await.1, &b"before"[..]);
        receiver.shutdown().await;
        drop(receiver);

        let (restarted, mut inbound) = start_at(test_config(), 2, address).await;
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "delivery did not resume");
            sender.send(2, Bytes::from_static(b"after"));
            if let Ok(Some((from, payload))) =
                timeout(Duration::from_millis(20), inbound.recv()).await
            {
                assert_eq!((from, &payload[..]), (1, &b"after"[..]));
                break;
            }
        }
        assert!(sender.stats().connects >= 2);
        sender.shutdown().await;
        restarted.shutdown().await;
    }

    /// Messages queued while a peer is down are kept up to the queue limit, the
    /// newest beyond it dropped, and the kept ones delivered once it is up.
    #[tokio::test]
    async fn queue_keeps_what_fits_while_the_peer_is_down() {
        let config = TransportConfig { queue_messages_max: 4, ..test_config() };
        let (absent, _) = start(2).await;
        let address = absent.local_addr();
        absent.shutdown().await;
        drop(absent);

        let (sender, _) = start_at(config, 1, loopback()).await;
        sender.set_peers(BTreeMap::from([(2, address.to_string())]));
        for sequence in 0..10 {
            sender.send(2, numbered(1, sequence));
        }
        assert_eq!(sender.stats().dropped_queue_full, 6);
        wait_until("a redial fails", || sender.stats().connect_failures >= 1).await;

        let (receiver, mut inbound) = start_at(test_config(), 2, address).await;
        for sequence in 0..4 {
            assert_eq!(receive(&mut inbound).await.1, numbered(1, sequence));
        }
        sender.shutdown().await;
        receiver.shutdown().await;
    }

    /// Garbage (bad magic, bad checksum, oversized length) is disconnected and
    /// counted, and the transport keeps serving well-behaved peers.
    #[tokio::test]
    async fn garbage_peers_are_disconnected_and_counted() {
        let config = TransportConfig { frame_bytes_max: 1024, ..test_config() };
        let (node, mut inbound) = start_at(config, 1, loopback()).await;
        let address = node.local_addr();

        let mut raw = TcpStream::connect(address).await.unwrap();
        raw.write_all(b"GET / HTTP/1.1\r\nHost: cohort\r\n\r\n").await.unwrap();
        assert_closed_by_peer(&mut raw).await;

        let mut raw = TcpStream::connect(address).await.unwrap();
        raw.write_all(&encode_handshake(7, 9)).await.unwrap();
        let mut frame = BytesMut::new();
        encode_frame(&mut frame, b"tampered");
        frame[FRAME_HEADER_BYTES] ^= 1;
        raw.write_all(&frame).await.unwrap();
        assert_closed_by_peer(&mut raw).await;

        let mut raw = TcpStream::connect(address).await.unwrap();
        raw.write_all(&encode_handshake(7, 9)).await.unwrap();
        raw.write_all(&1025u32.to_le_bytes()).await.unwrap();
        raw.write_all(&0u32.to_le_bytes()).await.unwrap();
        assert_closed_by_peer(&mut raw).await;

        wait_until("all three are counted", || {
            let stats = node.stats();
            stats.refused_handshakes == 1 && stats.bad_frames == 2
        })
        .await;
        assert_eq!(node.stats().messages_received, 0);

        let (peer, _) = start(2).await;
        peer.set_peers(book(&[(1, &node)]));
        peer.send(1, Bytes::from_static(b"still here"));
        assert_eq!(receive(&mut inbound).await, (2, Bytes::from_static(b"still here")));
        assert!(inbound.try_recv().is_err(), "nothing from the garbage connections");
        node.shutdown().await;
        peer.shutdown().await;
    }

    /// Connections beyond `inbound_connections_max` are closed at once, and a
    /// connection that never sends its handshake is closed after the timeout.
    #[tokio::test]
    async fn excess_and_silent_connections_are_closed() {
        let config = TransportConfig {
            inbound_connections_max: 2,
            handshake_timeout_ms: 100,
            ..test_config()
        };
        let (node, _inbound) = start_at(config, 1, loopback()).await;
        let address = node.local_addr();
        let mut first = TcpStream::connect(address).await.unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        wait_until("both are being read", || node.stats().inbound_connections == 2).await;
        let mut third = TcpStream::connect(address).await.unwrap();
        assert_closed_by_peer(&mut third).await;
        assert_eq!(node.stats().refused_over_limit, 1);
        let started = Instant::now();
        assert_closed_by_peer(&mut first).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        wait_until("both silent ones are refused", || node.stats().refused_handshakes == 2).await;
        assert_eq!(node.stats().inbound_connections, 0);
        node.shutdown().await;
    }

    /// A node of another cluster is refused at the handshake and nothing it sends arrives.
    #[tokio::test]
    async fn wrong_cluster_is_refused() {
        let (node, mut inbound) = start(1).await;
        let (sender, _unused) = mpsc::channel(16);
        let stranger =
            Transport::start_with(test_config(), 2, 8, loopback(), sender).await.unwrap();
        stranger.set_peers(book(&[(1, &node)]));
        stranger.send(1, Bytes::from_static(b"let me in"));
        wait_until("the stranger is refused twice", || node.stats().refused_handshakes >= 2).await;
        stranger.send(1, Bytes::from_static(b"let me in"));
        sleep(Duration::from_millis(50)).await;
        assert!(inbound.try_recv().is_err());
        assert_eq!(node.stats().messages_received, 0);
        stranger.shutdown().await;

        let mut raw = TcpStream::connect(node.local_addr()).await.unwrap();
        raw.write_all(&encode_handshake(8, 2)).await.unwrap();
        assert_closed_by_peer(&mut raw).await;
        node.shutdown().await;
    }

    /// Sends that cannot be delivered are dropped and counted, never blocking:
    /// unknown node, oversized payload; a send to oneself loops back.
    #[tokio::test]
    async fn undeliverable_sends_are_dropped_and_counted() {
        let config = TransportConfig { frame_bytes_max: 16, ..test_config() };
        let (node, mut inbound) = start_at(config, 1, loopback()).await;
        node.send(99, Bytes::from_static(b"who?"));
        node.send(99, Bytes::from_static(b"who?"));
        node.send(1, Bytes::from_static(&[0u8; 17]));
        node.send_to_address("127.0.0.1:1".to_string(), Bytes::from_static(&[0u8; 17]));
        let stats = node.stats();
        assert_eq!((stats.dropped_unknown_peer, stats.dropped_oversized), (2, 2));
        assert_eq!(stats.dropped(), 4);
        node.send(1, Bytes::from_static(b"self"));
        assert_eq!(receive(&mut inbound).await, (1, Bytes::from_static(b"self")));
        node.shutdown().await;
    }

    /// Removing a peer from the address book closes its connection; later sends
    /// to it count as unknown.
    #[tokio::test]
    async fn removed_peers_are_disconnected() {
        let (sender, _) = start(1).await;
        let (receiver, mut inbound) = start(2).await;
        sender.set_peers(book(&[(2, &receiver)]));
        sender.send(2, Bytes::from_static(b"hello"));
        receive(&mut inbound).await;
        assert_eq!(receiver.stats().inbound_connections, 1);
        sender.set_peers(BTreeMap::new());
        wait_until("the connection closes", || receiver.stats().inbound_connections == 0).await;
        sender.send(2, Bytes::from_static(b"gone"));
        assert_eq!(sender.stats().dropped_unknown_peer, 1);
        sender.shutdown().await;
        receiver.shutdown().await;
    }

    /// A message to an address with no known node id arrives, tagged with the sender's id.
    #[tokio::test]
    async fn send_to_address_reaches_an_unknown_node() {
        let (joiner, _) = start(5).await;
        let (seed, mut inbound) = start(1).await;
        joiner.send_to_address(seed.local_addr().to_string(), Bytes::from_static(b"join"));
        assert_eq!(receive(&mut inbound).await, (5, Bytes::from_static(b"join")));
        joiner.send_to_address("127.0.0.1:1".to_string(), Bytes::from_static(b"nobody"));
        wait_until("the failed send is counted", || joiner.stats().dropped_address_sends == 1)
            .await;
        joiner.shutdown().await;
        seed.shutdown().await;
    }

    /// Shutdown frees the port and later sends are dropped, not queued forever.
    #[tokio::test]
    async fn shutdown_stops_everything() {
        let (inbound, _received) = mpsc::channel(16);
        let node = Transport::start(1, 7, loopback(), inbound).await.unwrap();
        let (peer, _) = start(2).await;
        node.set_peers(book(&[(2, &peer)]));
        let address = node.local_addr();
        node.shutdown().await;
        std::net::TcpListener::bind(address).expect("the port is free after shutdown");
        node.send(2, Bytes::from_static(b"late"));
        node.set_peers(book(&[(2, &peer)]));
        node.send(2, Bytes::from_static(b"late"));
        assert_eq!(node.stats().dropped_unknown_peer, 2);
        peer.shutdown().await;
    }
}
