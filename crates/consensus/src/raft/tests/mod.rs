//! Deterministic tests of the Raft engine over a tiny in-test network: a map
//! of engines, a FIFO of messages delivered in order, durable state kept
//! exactly as `Ready` asks, and an applied log per replica.

#[cfg(feature = "bugs")]
mod bugs;
mod election;
mod membership;
mod random;
mod reads;
mod replication;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::{Message, Raft};
use crate::{
    Durable, Engine, Entry, Index, Membership, NodeId, Options, Proposal, ReadState, Role,
};

/// Decides what happens to a message: `false` drops it.
type Filter = Box<dyn FnMut(&mut Message) -> bool>;

pub(super) struct Network {
    pub(super) nodes: BTreeMap<NodeId, Raft>,
    founding: BTreeMap<NodeId, Membership>,
    options: BTreeMap<NodeId, Options>,
    pub(super) durable: BTreeMap<NodeId, Durable>,
    /// Entries applied since the last snapshot restore, and that restore's index.
    pub(super) applied: BTreeMap<NodeId, Vec<Entry>>,
    pub(super) applied_index: BTreeMap<NodeId, Index>,
    pub(super) restored: BTreeMap<NodeId, Vec<crate::Snapshot>>,
    pub(super) reads: BTreeMap<NodeId, Vec<ReadState>>,
    pub(super) aborted: BTreeMap<NodeId, Vec<u64>>,
    pub(super) queue: VecDeque<Message>,
    /// Replicas cut off from everyone.
    pub(super) isolated: BTreeSet<NodeId>,
    pub(super) filter: Option<Filter>,
    /// Every message delivered, in order.
    pub(super) delivered: Vec<Message>,
    /// Every entry any replica applied, by index: all must agree.
    applied_anywhere: BTreeMap<Index, Entry>,
    /// For each read context, the highest commit index any replica knew when
    /// the read was issued; a confirmed read must not be older.
    pub(super) read_floors: BTreeMap<u64, Index>,
}

pub(super) fn options(id: NodeId) -> Options {
    Options::new(id)
}

impl Network {
    pub(super) fn new(voters: &[NodeId]) -> Network {
        Network::with(Membership::with_voters(voters.iter().copied()), |_| {})
    }

    /// A group founded with `founding`, each replica's options adjusted by `tune`.
    pub(super) fn with(founding: Membership, tune: impl Fn(&mut Options)) -> Network {
        let mut network = Network {
            nodes: BTreeMap::new(),
            founding: BTreeMap::new(),
            options: BTreeMap::new(),
            durable: BTreeMap::new(),
            applied: BTreeMap::new(),
            applied_index: BTreeMap::new(),
            restored: BTreeMap::new(),
            reads: BTreeMap::new(),
            aborted: BTreeMap::new(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            filter: None,
            delivered: Vec::new(),
            applied_anywhere: BTreeMap::new(),
            read_floors: BTreeMap::new(),
        };
        for id in founding.members() {
            let mut options = options(id);
            tune(&mut options);
            network.add(id, options, founding.clone(), Durable::default());
        }
        network
    }

    pub(super) fn add(
        &mut self,
        id: NodeId,
        options: Options,
        founding: Membership,
        durable: Durable,
    ) {
        let applied_index = durable.snapshot.as_ref().map_or(0, |s| s.index);
        self.nodes.insert(id, Raft::new(options.clone(), founding.clone(), durable.clone()));
        self.founding.insert(id, founding);
        self.options.insert(id, options);
        self.durable.insert(id, durable);
        self.applied.insert(id, Vec::new());
        self.applied_index.insert(id, applied_index);
    }

    pub(super) fn node(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("known node")
    }

    pub(super) fn role(&self, id: NodeId) -> Role {
        self.node(id).status().role
    }

    pub(super) fn term(&self, id: NodeId) -> u64 {
        self.node(id).status().term
    }

    pub(super) fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.status().role == Role::Leader)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Drains every `Ready` of `id`, playing a driver that obeys the rules.
    pub(super) fn process(&mut self, id: NodeId) {
        while self.nodes[&id].has_ready() {
            let ready = self.node_mut(id).ready();
            let durable = self.durable.get_mut(&id).expect("known node");
            if let Some(hard_state) = ready.hard_state {
                durable.hard_state = hard_state;
            }
            if let Some(snapshot) = ready.snapshot {
                let keep = durable
                    .entries
                    .iter()
                    .any(|e| e.index == snapshot.index && e.term == snapshot.term);
                if keep {
                    durable.entries.retain(|e| e.index > snapshot.index);
                } else {
                    durable.entries.clear();
                }
                durable.snapshot = Some(snapshot.clone());
                self.applied.insert(id, Vec::new());
                self.applied_index.insert(id, snapshot.index);
                self.restored.entry(id).or_default().push(snapshot);
            }
            if let Some(first) = ready.entries.first() {
                durable.entries.retain(|e| e.index < first.index);
                if let Some(last) = durable.entries.last() {
                    assert_eq!(last.index + 1, first.index, "durable log has a gap");
                }
                durable.entries.extend(ready.entries.iter().cloned());
            }
            for entry in ready.committed {
                let applied_index = self.applied_index.get_mut(&id).expect("known node");
                assert_eq!(entry.index, *applied_index + 1, "committed entries are contiguous");
                assert!(
                    durable.entries.iter().any(|e| e == &entry),
                    "applied entry {entry:?} was never handed out for persistence"
                );
                *applied_index = entry.index;
                let first =
                    self.applied_anywhere.entry(entry.index).or_insert_with(|| entry.clone());
                assert_eq!(*first, entry, "replicas applied different entries at one index");
                self.applied.get_mut(&id).expect("known node").push(entry);
            }
            for read in &ready.reads {
                let floor = self.read_floors.get(&read.context).copied().unwrap_or(0);
                assert!(read.index >= floor, "read {read:?} misses a commit before it ({floor})");
            }
            self.reads.entry(id).or_default().extend(ready.reads);
            self.aborted.entry(id).or_default().extend(ready.aborted_reads);
            for message in ready.messages {
                assert_eq!(message.from, id);
                self.queue.push_back(message);
            }
            self.node_mut(id).advance();
        }
    }

    pub(super) fn process_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.process(id);
        }
    }

    /// Delivers messages (and the messages they cause) until all is quiet.
    pub(super) fn deliver(&mut self) {
        for _ in 0..100_000 {
            self.process_all();
            let Some(message) = self.queue.pop_front() else { return };
            self.deliver_message(message);
        }
        panic!("the network never went quiet");
    }

    /// Hands one message to its addressee unless a partition or the filter
    /// stops it.
    pub(super) fn deliver_message(&mut self, mut message: Message) {
        if self.isolated.contains(&message.from) || self.isolated.contains(&message.to) {
            return;
        }
        if let Some(filter) = &mut self.filter {
            if !filter(&mut message) {
                return;
            }
        }
        let Some(node) = self.nodes.get_mut(&message.to) else { return };
        self.delivered.push(message.clone());
        node.step(message);
    }

    pub(super) fn tick(&mut self, id: NodeId, ticks: u32) {
        for _ in 0..ticks {
            self.node_mut(id).tick();
            self.deliver();
        }
    }

    pub(super) fn tick_all(&mut self, ticks: u32) {
        for _ in 0..ticks {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node_mut(id).tick();
            }
            self.deliver();
        }
    }

    /// Ticks only `id` until it leads (nobody else's timer runs).
    pub(super) fn elect(&mut self, id: NodeId) {
        for _ in 0..100 {
            self.tick(id, 1);
            if self.role(id) == Role::Leader {
                return;
            }
        }
        panic!("node {id} did not become leader");
    }

    pub(super) fn isolate(&mut self, id: NodeId) {
        self.isolated.insert(id);
    }

    pub(super) fn heal(&mut self) {
        self.isolated.clear();
        self.filter = None;
    }

    pub(super) fn propose(&mut self, id: NodeId, command: &str) -> Proposal {
        let proposal =
            self.node_mut(id).propose(Bytes::from(command.to_owned())).expect("accepted");
        self.deliver();
        proposal
    }

    /// Rebuilds `id` from exactly its durable state, losing everything else.
    pub(super) fn restart(&mut self, id: NodeId) {
        let durable = self.durable[&id].clone();
        self.queue.retain(|m| m.from != id && m.to != id);
        let options = self.options[&id].clone();
        let founding = self.founding[&id].clone();
        self.add(id, options, founding, durable);
    }

    /// The commands `id` has applied since its last restore, as text.
    pub(super) fn commands(&self, id: NodeId) -> Vec<String> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.payload {
                crate::Payload::Command(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Durable log of `id` as `index@term` pairs.
    pub(super) fn durable_log(&self, id: NodeId) -> Vec<(Index, u64)> {
        self.durable[&id].entries.iter().map(|e| (e.index, e.term)).collect()
    }

    /// Asserts that no two replicas applied different entries at one index.
    pub(super) fn assert_applied_agree(&self) {
        let mut seen: BTreeMap<Index, &Entry> = BTreeMap::new();
        for entries in self.applied.values() {
            for entry in entries {
                let first = seen.entry(entry.index).or_insert(entry);
                assert_eq!(*first, entry, "replicas applied different entries");
            }
        }
    }

    pub(super) fn count_delivered(&self, matches: impl Fn(&Message) -> bool) -> usize {
        self.delivered.iter().filter(|m| matches(m)).count()
    }
}

/// Builds a log of `(index, term)` pairs with command payloads.
pub(super) fn entries(pairs: &[(Index, u64)]) -> Vec<Entry> {
    pairs
        .iter()
        .map(|&(index, term)| Entry {
            index,
            term,
            payload: crate::Payload::Command(Bytes::from(format!("{index}@{term}"))),
        })
        .collect()
}
