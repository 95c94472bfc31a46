//! Deterministic tests of the Multi-Paxos engine over a tiny in-test
//! network: engines, a FIFO of messages, durable state kept exactly as
//! `Ready` asks, and the entries each replica applied.

mod engine;
mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::{Message, Paxos};
use crate::{Durable, Engine, Entry, Membership, NodeId, Options, Payload, ReadState};

pub(super) struct Network {
    pub(super) nodes: BTreeMap<NodeId, Paxos>,
    founding: Membership,
    tune: fn(&mut Options),
    pub(super) durable: BTreeMap<NodeId, Durable>,
    pub(super) applied: BTreeMap<NodeId, Vec<Entry>>,
    pub(super) reads: BTreeMap<NodeId, Vec<ReadState>>,
    pub(super) aborted: BTreeMap<NodeId, Vec<u64>>,
    pub(super) queue: VecDeque<Message>,
    /// Replicas cut off from everyone.
    pub(super) isolated: BTreeSet<NodeId>,
    /// Every message kind delivered, in order.
    pub(super) delivered: Vec<&'static str>,
}

impl Network {
    pub(super) fn new(voters: &[NodeId]) -> Network {
        Network::with(Membership::with_voters(voters.iter().copied()), |_| {})
    }

    pub(super) fn with(founding: Membership, tune: fn(&mut Options)) -> Network {
        let mut network = Network {
            nodes: BTreeMap::new(),
            founding: founding.clone(),
            tune,
            durable: BTreeMap::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            aborted: BTreeMap::new(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            delivered: Vec::new(),
        };
        for id in founding.members() {
            network.start(id, founding.clone());
        }
        network
    }

    /// Starts (or restarts) `id` from what it made durable.
    pub(super) fn start(&mut self, id: NodeId, founding: Membership) {
        let mut options = Options::new(id);
        (self.tune)(&mut options);
        let durable = self.durable.entry(id).or_default().clone();
        self.nodes.insert(id, Paxos::new(options, founding, durable));
        self.applied.entry(id).or_default();
    }

    pub(super) fn restart(&mut self, id: NodeId) {
        self.applied.insert(id, Vec::new());
        let founding = self.founding.clone();
        self.start(id, founding);
    }

    pub(super) fn node(&mut self, id: NodeId) -> &mut Paxos {
        self.nodes.get_mut(&id).expect("node")
    }

    /// Handles every pending `Ready` of every replica, in the rules' order.
    pub(super) fn drive(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            loop {
                let node = self.nodes.get_mut(&id).expect("node");
                if !node.has_ready() {
                    break;
                }
                let ready = node.ready();
                node.advance();
                let durable = self.durable.entry(id).or_default();
                durable.persist(ready.snapshot.clone(), ready.entries, ready.hard_state);
                self.queue.extend(ready.messages);
                let applied = self.applied.entry(id).or_default();
                if let Some(snapshot) = ready.snapshot {
                    applied.clear();
                    applied.push(Entry {
                        index: snapshot.index,
                        term: snapshot.term,
                        payload: Payload::Noop,
                    });
                }
                applied.extend(ready.committed);
                self.reads.entry(id).or_default().extend(ready.reads);
                self.aborted.entry(id).or_default().extend(ready.aborted_reads);
            }
        }
    }

    /// Delivers messages until none is left, dropping those `keep` refuses.
    pub(super) fn stabilize_with(&mut self, mut keep: impl FnMut(&Message) -> bool) {
        self.drive();
        let mut steps = 0;
        while let Some(message) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "the network never quiets down");
            let (from, to) = (message.from, message.to);
            if self.isolated.contains(&from) || self.isolated.contains(&to) || !keep(&message) {
                continue;
            }
            let Some(node) = self.nodes.get_mut(&to) else { continue };
            self.delivered.push(crate::Message::kind(&message));
            node.step(message);
            self.drive();
        }
    }

    pub(super) fn stabilize(&mut self) {
        self.stabilize_with(|_| true);
    }

    /// Ticks every running replica `count` times, delivering in between.
    pub(super) fn tick(&mut self, count: usize) {
        for _ in 0..count {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.stabilize();
        }
    }

    /// Makes `id` run phase 1 now, as a transfer would (overriding the
    /// acceptors' stickiness to a live leader), and delivers until quiet.
    pub(super) fn campaign(&mut self, id: NodeId) {
        self.node(id).campaign(true);
        self.stabilize();
    }

    pub(super) fn propose(&mut self, id: NodeId, text: &'static str) -> crate::Proposal {
        self.node(id).propose(Bytes::from_static(text.as_bytes())).expect("proposal accepted")
    }

    /// The commands `id` applied, in order.
    pub(super) fn commands(&self, id: NodeId) -> Vec<String> {
        self.applied[&id]
            .iter()
            .filter_map(|entry| match &entry.payload {
                Payload::Command(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn leader_of(&self, id: NodeId) -> Option<NodeId> {
        self.nodes[&id].leader()
    }
}
