//! Crash tests: random multi-group workloads on the simulated disk, crashed
//! at random points with seeded torn tails. After every crash the recovered
//! state must be exactly what some prefix of the appended records produces
//! (per `consensus::Durable`, the reference), and that prefix must include
//! everything a successful sync acknowledged.

use std::collections::BTreeMap;

use bytes::Bytes;
use consensus::rng::Rng;
use consensus::{Durable, Entry, HardState, Membership, Payload, Snapshot};
use storage::{GroupId, Persist, SimFs, StorageError, Tear, Wal, WalOptions};

const GROUPS: u64 = 4;

/// One record's worth of change, as the reference applies it.
#[derive(Clone, Debug)]
enum Step {
    Install(Snapshot),
    Entries(Vec<Entry>),
    HardState(HardState),
    Compact(Snapshot),
}

fn apply(state: &mut BTreeMap<GroupId, Durable>, group: GroupId, step: &Step) {
    let durable = state.entry(group).or_default();
    match step.clone() {
        Step::Install(snapshot) => durable.persist(Some(snapshot), Vec::new(), None),
        Step::Entries(entries) => durable.persist(None, entries, None),
        Step::HardState(hard_state) => durable.persist(None, Vec::new(), Some(hard_state)),
        Step::Compact(snapshot) => durable.compact(snapshot),
    }
}

fn same_groups(left: &BTreeMap<GroupId, Durable>, right: &BTreeMap<GroupId, Durable>) -> bool {
    (1..=GROUPS).all(|group| {
        let left = left.get(&group).cloned().unwrap_or_default();
        let right = right.get(&group).cloned().unwrap_or_default();
        left.hard_state == right.hard_state
            && left.snapshot == right.snapshot
            && left.entries == right.entries
    })
}

fn last_index(durable: &Durable) -> u64 {
    durable.entries.last().map_or(durable.snapshot_index(), |entry| entry.index)
}

/// A state machine image is a function of the log up to its index, so two
/// snapshots at one index and term hold the same data (the file name relies
/// on that).
fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        index,
        term,
        membership: Membership::with_voters([1, 2, 3]),
        data: Bytes::from(format!("image {index}@{term}")),
    }
}

/// Everything since the last recovery.
struct Model {
    base: BTreeMap<GroupId, Durable>,
    steps: Vec<(GroupId, Step)>,
    acknowledged: usize,
    latest: BTreeMap<GroupId, Durable>,
}

impl Model {
    fn push(&mut self, group: GroupId, step: Step) {
        apply(&mut self.latest, group, &step);
        self.steps.push((group, step));
    }

    /// The prefix length whose state equals `recovered`, if any is allowed.
    fn matching_prefix(&self, recovered: &BTreeMap<GroupId, Durable>) -> Option<usize> {
        let mut state = self.base.clone();
        for (group, step) in &self.steps[..self.acknowledged] {
            apply(&mut state, *group, step);
        }
        let mut matched = None;
        for length in self.acknowledged..=self.steps.len() {
            if length > self.acknowledged {
                let (group, step) = &self.steps[length - 1];
                apply(&mut state, *group, step);
            }
            if same_groups(&state, recovered) {
                matched = Some(length);
            }
        }
        matched
    }
}

/// Runs one random operation; returns false once the log is poisoned.
fn operate(
    rng: &mut Rng,
    fs: &SimFs,
    wal: &mut Wal<SimFs>,
    model: &mut Model,
    terms: &mut BTreeMap<GroupId, u64>,
) -> bool {
    let group = rng.range(1, GROUPS + 1);
    let current = model.latest.get(&group).cloned().unwrap_or_default();
    let term = terms.entry(group).or_insert(1);
    if rng.chance(1, 8) {
        *term += 1;
    }
    let term = *term;
    let commit = current.hard_state.commit;
    let snapshot_index = current.snapshot_index();
    let last = last_index(&current);
    let choice = rng.range(0, 100);
    let result = if choice < 40 {
        let start = rng.range(commit.max(snapshot_index) + 1, last + 2);
        let count = rng.range(1, 5);
        let entries: Vec<Entry> = (start..start + count)
            .map(|index| Entry {
                index,
                term,
                payload: Payload::Command(Bytes::from(vec![
                    index as u8;
                    rng.range(0, 40) as usize
                ])),
            })
            .collect();
        let result = wal.append(group, Persist { entries: &entries, ..Persist::default() });
        model.push(group, Step::Entries(entries));
        result
    } else if choice < 58 {
        let hard_state =
            HardState { term, vote: rng.range(0, 4), commit: rng.range(commit, last + 1) };
        let result =
            wal.append(group, Persist { hard_state: Some(&hard_state), ..Persist::default() });
        model.push(group, Step::HardState(hard_state));
        result
    } else if choice < 66 {
        if commit <= snapshot_index {
            return true;
        }
        let index = rng.range(snapshot_index + 1, commit + 1);
        let entry_term = current.entries.iter().find(|entry| entry.index == index).unwrap().term;
        let taken = snapshot(index, entry_term);
        let result = wal.save_snapshot(group, &taken);
        model.push(group, Step::Compact(taken));
        result
    } else if choice < 72 {
        let index = rng.range(commit.max(snapshot_index), last + 4);
        let matching = current.entries.iter().find(|entry| entry.index == index);
        let snapshot_term = match matching {
            Some(entry) if rng.chance(1, 2) => entry.term,
            _ => term,
        };
        let installed = snapshot(index, snapshot_term);
        let hard_state = HardState { term, vote: 0, commit: commit.max(index) };
        let result = wal.append(
            group,
            Persist { hard_state: Some(&hard_state), snapshot: Some(&installed), entries: &[] },
        );
        model.push(group, Step::Install(installed));
        model.push(group, Step::HardState(hard_state));
        result
    } else if choice < 90 {
        let fsync = rng.chance(9, 10);
        let result = wal.flush(fsync);
        if result.is_ok() && fsync {
            model.acknowledged = model.steps.len();
        }
        result
    } else if choice < 95 {
        let result = wal.compact();
        if result.is_ok() {
            model.acknowledged = model.steps.len();
        }
        result.map(|_| ())
    } else if choice < 97 {
        fs.fail_syncs(true);
        Ok(())
    } else if choice < 98 {
        fs.set_capacity_bytes(Some(wal.size_bytes() + rng.range(0, 200)));
        Ok(())
    } else {
        Ok(())
    };
    match result {
        Ok(()) => true,
        Err(StorageError::Poisoned(_)) => false,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let options = WalOptions { segment_bytes_max: rng.range(300, 3000), record_bytes_max: 1 << 16 };
    let mut fs = SimFs::new();
    let (mut wal, _) = Wal::open(fs.clone(), options.clone()).unwrap();
    let mut model = Model {
        base: BTreeMap::new(),
        steps: Vec::new(),
        acknowledged: 0,
        latest: BTreeMap::new(),
    };
    let mut terms = BTreeMap::new();
    for _crash in 0..4 {
        let operations = rng.range(10, 120);
        for _ in 0..operations {
            if !operate(&mut rng, &fs, &mut wal, &mut model, &mut terms) {
                break;
            }
        }
        let tear = if rng.chance(3, 4) { Tear::Seeded(rng.next_u64()) } else { Tear::None };
        let crashed = fs.crash(tear);
        let (reopened, recovered) = Wal::open(crashed.clone(), options.clone())
            .unwrap_or_else(|error| panic!("seed {seed}: recovery failed: {error}"));
        if let Some(torn) = &recovered.torn_tail {
            assert_eq!(Some(&torn.file), reopened.segment_names().last(), "seed {seed}");
        }
        let matched = model.matching_prefix(&recovered.groups);
        assert!(
            matched.is_some(),
            "seed {seed}: recovered state is no allowed prefix (acknowledged {} of {} steps)\n\
             recovered {:?}\nlatest {:?}",
            model.acknowledged,
            model.steps.len(),
            recovered.groups,
            model.latest
        );
        model = Model {
            base: recovered.groups.clone(),
            steps: Vec::new(),
            acknowledged: 0,
            latest: recovered.groups,
        };
        fs = crashed;
        wal = reopened;
    }
}

/// Many seeded workloads with crashes, torn tails and injected faults.
#[test]
fn crashes_keep_exactly_a_synced_prefix() {
    for seed in 0..1000 {
        run(seed);
    }
}

/// The checker can fail: a state missing an acknowledged step matches no
/// allowed prefix.
#[test]
fn checker_rejects_lost_acknowledged_write() {
    let entries = vec![Entry { index: 1, term: 1, payload: Payload::Noop }];
    let mut model = Model {
        base: BTreeMap::new(),
        steps: vec![(1, Step::Entries(entries))],
        acknowledged: 1,
        latest: BTreeMap::new(),
    };
    assert_eq!(model.matching_prefix(&BTreeMap::new()), None);
    model.acknowledged = 0;
    assert_eq!(model.matching_prefix(&BTreeMap::new()), Some(0));
}
