//! One replica of a consensus group: the engine, the state machine, and the
//! bookkeeping between them (proposals in flight, reads waiting for their
//! index, blocked clients, and outputs held until their write is durable).

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use commands::{Blocking, Context, Store};
use consensus::{
    Durable, Engine, Entry, HardState, Index, Membership, NodeId, Payload, ReadState, Snapshot,
    Term,
};
use resp::Frame;

use crate::coordination::{self, Coordination, Outcome, WaiterOrigin};
use crate::entry::{self, Action};
use crate::GroupId;

/// One write for the disk, in the order the node produced it.
#[derive(Clone, Debug)]
pub struct Write {
    /// Increases by one per write; report durability with `Node::persisted`.
    pub id: u64,
    pub group: GroupId,
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

/// What the disk must do, in order.
#[derive(Clone, Debug)]
pub enum DiskTask {
    Write(Write),
    /// The state machine's image at an applied index; the log before it may
    /// be dropped.
    SaveSnapshot {
        group: GroupId,
        snapshot: Snapshot,
    },
}

/// Outputs of one `Ready`, held until its write (or the write before it, if
/// it had nothing to write) is durable.
pub(crate) struct Held<M> {
    pub write_id: u64,
    pub messages: Vec<M>,
    pub snapshot: Option<Snapshot>,
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadState>,
    pub aborted_reads: Vec<u64>,
}

/// The result of applying one entry, for the node to route.
pub(crate) enum Applied {
    /// Nothing to report (no-op, membership, purge).
    Nothing,
    /// A command's reply.
    Reply(Frame),
    /// A blocking command found nothing: park it. Retries run `retry_args`
    /// when given (see [`commands::Blocking::WouldBlock`]).
    WouldBlock { keys: Vec<Bytes>, timeout_ms: Option<u64>, retry_args: Option<Vec<Bytes>> },
    /// The client waits in the replicated state (a lock queue); its origin
    /// node answers it when the state machine grants or withdraws it.
    Deferred,
}

/// The state machine plus what the snapshot must carry besides the keys.
pub(crate) struct StateMachine {
    pub store: Store,
    /// The latest entry time applied: entry times never go backwards, even
    /// across leaders whose clocks disagree.
    pub time_ms: u64,
    pub addresses: BTreeMap<NodeId, (String, String)>,
    pub coordination: Coordination,
    pub applied: Index,
    pub applied_term: Term,
    pub membership: Membership,
    /// Keys written by the entries applied since the node last looked, for
    /// waking blocked clients.
    pub touched: Vec<Bytes>,
}

/// Version 2 added the coordination state (sessions, locks).
const ENVELOPE_VERSION: u8 = 2;

impl StateMachine {
    pub fn new(membership: Membership) -> StateMachine {
        StateMachine {
            store: Store::new(),
            time_ms: 0,
            addresses: BTreeMap::new(),
            coordination: Coordination::default(),
            applied: 0,
            applied_term: 0,
            membership,
            touched: Vec::new(),
        }
    }

    /// Rebuilds the state machine from a snapshot's image.
    pub fn restore(snapshot: &Snapshot) -> StateMachine {
        let mut data = snapshot.data.clone();
        // A snapshot that does not decode was written by a different version
        // or corrupted past its checksum: stop rather than serve wrong data.
        assert!(data.remaining() >= 13, "snapshot envelope truncated");
        let version = data.get_u8();
        assert!(version == 1 || version == ENVELOPE_VERSION, "unknown snapshot envelope {version}");
        let time_ms = data.get_u64_le();
        let count = data.get_u32_le();
        let mut addresses = BTreeMap::new();
        for _ in 0..count {
            let node = data.get_u64_le();
            let peer = get_string(&mut data);
            let client = get_string(&mut data);
            addresses.insert(node, (peer, client));
        }
        let coordination =
            if version >= 2 { Coordination::decode(&mut data) } else { Coordination::default() };
        let store = Store::restore(&data).expect("the snapshot's state machine image is valid");
        StateMachine {
            store,
            time_ms,
            addresses,
            coordination,
            applied: snapshot.index,
            applied_term: snapshot.term,
            membership: snapshot.membership.clone(),
            touched: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut data = BytesMut::new();
        data.put_u8(ENVELOPE_VERSION);
        data.put_u64_le(self.time_ms);
        data.put_u32_le(self.addresses.len() as u32);
        for (node, (peer, client)) in &self.addresses {
            data.put_u64_le(*node);
            put_string(&mut data, peer);
            put_string(&mut data, client);
        }
        self.coordination.encode(&mut data);
        data.put_slice(&self.store.snapshot());
        Snapshot {
            index: self.applied,
            term: self.applied_term,
            membership: self.membership.clone(),
            data: data.freeze(),
        }
    }

    /// Applies one committed entry.
    pub fn apply(&mut self, entry: &Entry) -> Applied {
        assert_eq!(entry.index, self.applied + 1, "entries apply in order");
        self.applied = entry.index;
        self.applied_term = entry.term;
        let bytes = match &entry.payload {
            Payload::Noop => return Applied::Nothing,
            Payload::Membership(membership) => {
                self.membership = membership.clone();
                return Applied::Nothing;
            }
            Payload::Command(bytes) => bytes,
        };
        // Every replica applies the same bytes; one that cannot decode them
        // must stop, never skip, or replicas would diverge.
        let payload = entry::Payload::decode(bytes).expect("committed entries decode");
        self.time_ms = self.time_ms.max(payload.time_ms);
        let context = Context { now_ms: self.time_ms, seed: payload.seed };
        match payload.action {
            Action::Execute(args) => match self.store.apply_blocking(&context, &args) {
                Blocking::Served(frame) => {
                    // Only writes can make a parked client's keys ready; a
                    // blocked command that changed nothing wakes nobody.
                    if let Some(keys) = commands::command_keys(&args) {
                        self.touched.extend(keys);
                    }
                    Applied::Reply(frame)
                }
                Blocking::WouldBlock { keys, timeout_ms, retry_args } => {
                    Applied::WouldBlock { keys, timeout_ms, retry_args }
                }
            },
            Action::Transaction { watched, commands } => {
                for args in &commands {
                    if let Some(keys) = commands::command_keys(args) {
                        self.touched.extend(keys);
                    }
                }
                Applied::Reply(self.store.apply_transaction(&context, &watched, &commands))
            }
            Action::Purge(keys) => {
                self.store.purge_expired(self.time_ms, &keys);
                Applied::Nothing
            }
            Action::Address { node, peer, client } => {
                self.addresses.insert(node, (peer, client));
                Applied::Nothing
            }
            Action::Coordinate { origin_node, origin_request, args } => {
                let origin = (origin_node != 0)
                    .then_some(WaiterOrigin { node: origin_node, request: origin_request });
                self.coordinate(entry.index, &context, origin, &args)
            }
        }
    }

    /// Applies a coordination command, and the data command it wraps if
    /// it allows one (`SEQ`, `LOCK.FENCED`).
    fn coordinate(
        &mut self,
        index: Index,
        context: &Context,
        origin: Option<WaiterOrigin>,
        args: &[Bytes],
    ) -> Applied {
        let mut outcome = self.coordination.apply(index, context.now_ms, origin, args);
        let mut sessions = Vec::new();
        let mut retry_args = None;
        // A SEQ may wrap LOCK.FENCED, which wraps a data command: at most
        // two levels, since neither may wrap itself.
        for _ in 0..3 {
            let Outcome::Run { args: inner, session } = outcome else { break };
            sessions.extend(session);
            outcome = if coordination::lookup(&inner[0]).is_some() {
                self.coordination.apply(index, context.now_ms, origin, &inner)
            } else {
                match self.store.apply_blocking(context, &inner) {
                    Blocking::Served(frame) => {
                        if !matches!(frame, Frame::Error(_)) {
                            if let Some(keys) = commands::command_keys(&inner) {
                                self.touched.extend(keys);
                            }
                        }
                        Outcome::Reply(frame)
                    }
                    Blocking::WouldBlock { keys, timeout_ms, retry_args: inner_retry } => {
                        // Retries keep the wrapper (and its sequence number).
                        retry_args = inner_retry.map(|inner_retry| {
                            let wrapper = args.len() - inner.len();
                            let mut wrapped = args[..wrapper].to_vec();
                            wrapped.extend(inner_retry);
                            wrapped
                        });
                        Outcome::WouldBlock { keys, timeout_ms }
                    }
                }
            };
        }
        self.touched.append(&mut self.coordination.touched);
        match outcome {
            Outcome::Reply(frame) => {
                for session in sessions {
                    self.coordination.remember(session, &frame);
                }
                Applied::Reply(frame)
            }
            Outcome::Deferred => Applied::Deferred,
            Outcome::WouldBlock { keys, timeout_ms } => {
                Applied::WouldBlock { keys, timeout_ms, retry_args }
            }
            Outcome::Run { .. } => Applied::Reply(Frame::error("ERR commands nested too deeply")),
        }
    }

    /// The time reads are served at: never before the last applied entry.
    pub fn read_context(&self, now_ms: u64) -> Context {
        Context { now_ms: now_ms.max(self.time_ms), seed: 0 }
    }
}

fn put_string(out: &mut BytesMut, text: &str) {
    out.put_u32_le(text.len() as u32);
    out.put_slice(text.as_bytes());
}

fn get_string(data: &mut Bytes) -> String {
    let length = data.get_u32_le() as usize;
    assert!(data.remaining() >= length, "snapshot envelope truncated");
    String::from_utf8(data.split_to(length).to_vec()).expect("addresses are UTF-8")
}

/// An engine with its state machine and held outputs.
pub(crate) struct Replica<E: Engine> {
    pub group: GroupId,
    pub engine: E,
    pub machine: StateMachine,
    pub held: VecDeque<Held<E::Message>>,
    pub snapshot_index: Index,
}

impl<E: Engine> Replica<E> {
    pub fn new(group: GroupId, engine: E, founding: Membership, durable: &Durable) -> Self {
        let machine = match &durable.snapshot {
            Some(snapshot) => StateMachine::restore(snapshot),
            None => StateMachine::new(founding),
        };
        Replica {
            group,
            engine,
            snapshot_index: durable.snapshot_index(),
            machine,
            held: VecDeque::new(),
        }
    }
}
