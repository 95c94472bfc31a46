//! The simulated network between replicas: per-message delay (and so
//! reordering), loss, duplication, and partitions of every shape.
//!
//! A partition is a set of blocked directed links. A message is dropped if
//! its link is blocked when it is sent or when it would be delivered, so a
//! partition that starts while a message is in flight also cuts it.

use std::collections::BTreeSet;

use consensus::rng::Rng;
use consensus::NodeId;

/// Loss, duplication and delay, each drawn per message.
#[derive(Clone, Debug)]
pub struct Conditions {
    pub drop_probability: f64,
    pub duplicate_probability: f64,
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    /// A small share of messages is held much longer, so late, stale
    /// messages arrive after newer ones.
    pub long_delay_probability: f64,
    pub long_delay_ms_max: u64,
}

impl Conditions {
    pub fn calm() -> Conditions {
        Conditions {
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            delay_ms_min: 1,
            delay_ms_max: 5,
            long_delay_probability: 0.0,
            long_delay_ms_max: 0,
        }
    }
}

/// The shapes of partition the fault injector chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The leader alone on one side.
    IsolateLeader,
    /// A random minority cut off from the majority.
    MajorityMinority,
    /// Random links blocked in one direction only.
    OneWay,
    /// Two majorities that overlap in one bridge node: the bridge reaches
    /// everyone, the two sides do not reach each other.
    Bridge,
    /// Every node alone.
    Scatter,
}

impl Shape {
    pub const ALL: [Shape; 5] = [
        Shape::IsolateLeader,
        Shape::MajorityMinority,
        Shape::OneWay,
        Shape::Bridge,
        Shape::Scatter,
    ];
}

#[derive(Clone, Debug, Default)]
pub struct Network {
    blocked: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Cuts every link between the two groups, both ways.
    fn separate(&mut self, left: &[NodeId], right: &[NodeId]) {
        for &a in left {
            for &b in right {
                if a != b {
                    self.blocked.insert((a, b));
                    self.blocked.insert((b, a));
                }
            }
        }
    }

    /// Installs a partition of `shape` over `nodes`.
    pub fn partition(
        &mut self,
        shape: Shape,
        nodes: &[NodeId],
        leader: Option<NodeId>,
        rng: &mut Rng,
    ) -> String {
        self.heal();
        let mut shuffled = nodes.to_vec();
        rng.shuffle(&mut shuffled);
        match shape {
            Shape::IsolateLeader => {
                let isolated = leader.unwrap_or(shuffled[0]);
                let rest: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != isolated).collect();
                self.separate(&[isolated], &rest);
                format!("isolate {isolated}")
            }
            Shape::MajorityMinority => {
                let minority_size = rng.range(1, nodes.len() as u64 / 2 + 1) as usize;
                let minority_size = minority_size.min(nodes.len() - 1);
                let (minority, majority) = shuffled.split_at(minority_size);
                self.separate(minority, majority);
                format!("split {minority:?} | {majority:?}")
            }
            Shape::OneWay => {
                let links = rng.range(1, nodes.len() as u64 + 1);
                for _ in 0..links {
                    let from = *rng.choose(nodes).expect("nodes");
                    let to = *rng.choose(nodes).expect("nodes");
                    if from != to {
                        self.blocked.insert((from, to));
                    }
                }
                format!("one-way {:?}", self.blocked)
            }
            Shape::Bridge => {
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let (left, right) = rest.split_at(rest.len() / 2);
                self.separate(left, right);
                format!("bridge {bridge}: {left:?} | {right:?}")
            }
            Shape::Scatter => {
                for &a in nodes {
                    for &b in nodes {
                        if a != b {
                            self.blocked.insert((a, b));
                        }
                    }
                }
                "scatter".to_string()
            }
        }
    }
}
