//! A scripted-scenario harness for consensus engines (etcd-io/raft
//! `datadriven` style), written against the `Engine` contract only so the
//! same scripts run against every engine.
//!
//! A script is a sequence of blocks:
//!
//! ```text
//! # a comment
//! command arg key=value
//! ----
//! expected output
//! (blank line)
//! ```
//!
//! The harness runs each command and compares its output with the expected
//! text. With `SCENARIO_REWRITE=1` it rewrites the files with the actual
//! output instead; review the diff before committing it.
//!
//! Commands:
//!
//! - `cluster voters=1,2,3 [learners=4] [append-max=N] [inflight-max=N]
//!   [chunk-bytes=N] [pre-vote=false] [check-quorum=false]`
//! - `tick [nodes=1,2|all] [count=N]` — ticks, printing role changes.
//! - `deliver [from=N] [to=N]` — delivers the messages queued now (one
//!   round); `stabilize` — delivers until nothing is queued.
//! - `drop [from=N] [to=N]` — discards queued messages.
//! - `partition 1 2 | 3 4 5`, `heal`
//! - `crash N`, `restart N` — a crash keeps only what was persisted.
//! - `propose N text`, `read N context`
//! - `transfer-leader N target`, `add-learner N node`, `promote N node`,
//!   `remove N node`
//! - `compact N` — the state machine's image at its applied index.
//! - `status`, `log N`, `state N`

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use consensus::{
    Durable, Engine, Entry, Membership, MembershipChange, Message, NodeId, Options, Payload, Role,
    Snapshot,
};

pub type Build<E> = fn(Options, Membership, Durable) -> E;

struct Replica<E> {
    engine: Option<E>,
    durable: Durable,
    /// The state machine: the commands applied, in order.
    state: Vec<String>,
    applied: u64,
    applied_term: u64,
    applied_membership: Membership,
    role: Option<Role>,
    term: u64,
}

pub struct Harness<E: Engine> {
    build: Build<E>,
    options: Options,
    founding: Membership,
    replicas: BTreeMap<NodeId, Replica<E>>,
    mailbox: Vec<E::Message>,
    blocked: BTreeSet<(NodeId, NodeId)>,
}

impl<E: Engine> Harness<E> {
    pub fn new(build: Build<E>) -> Self {
        Harness {
            build,
            options: Options::new(1),
            founding: Membership::default(),
            replicas: BTreeMap::new(),
            mailbox: Vec::new(),
            blocked: BTreeSet::new(),
        }
    }

    fn options_for(&self, id: NodeId) -> Options {
        let mut options = self.options.clone();
        options.id = id;
        options.seed = id;
        options
    }

    fn start(&mut self, id: NodeId, out: &mut String) {
        let options = self.options_for(id);
        let founding = self.founding.clone();
        let replica = self.replicas.get_mut(&id).expect("replica");
        let engine = (self.build)(options, founding.clone(), replica.durable.clone());
        replica.engine = Some(engine);
        match &replica.durable.snapshot {
            Some(snapshot) => {
                replica.state = decode_state(&snapshot.data);
                replica.applied = snapshot.index;
                replica.applied_term = snapshot.term;
                replica.applied_membership = snapshot.membership.clone();
            }
            None => {
                replica.state.clear();
                replica.applied = 0;
                replica.applied_term = 0;
                replica.applied_membership = founding;
            }
        }
        replica.role = None;
        self.process(id, out);
    }

    /// Handles every `Ready` of `id`: persist, queue messages, apply.
    fn process(&mut self, id: NodeId, out: &mut String) {
        let replica = self.replicas.get_mut(&id).expect("replica");
        let Some(engine) = replica.engine.as_mut() else { return };
        while engine.has_ready() {
            let ready = engine.ready();
            let snapshot = ready.snapshot.clone();
            replica.durable.persist(ready.snapshot, ready.entries, ready.hard_state);
            self.mailbox.extend(ready.messages);
            if let Some(snapshot) = snapshot {
                replica.state = decode_state(&snapshot.data);
                replica.applied = snapshot.index;
                replica.applied_term = snapshot.term;
                replica.applied_membership = snapshot.membership.clone();
                writeln!(out, "n{id} installs snapshot at {}@{}", snapshot.index, snapshot.term)
                    .unwrap();
            }
            for entry in ready.committed {
                assert_eq!(entry.index, replica.applied + 1, "n{id} applies out of order");
                replica.applied = entry.index;
                replica.applied_term = entry.term;
                match &entry.payload {
                    Payload::Command(bytes) => {
                        replica.state.push(String::from_utf8_lossy(bytes).into_owned())
                    }
                    Payload::Membership(membership) => {
                        replica.applied_membership = membership.clone()
                    }
                    Payload::Noop => {}
                }
                writeln!(out, "n{id} applies {}", describe(&entry)).unwrap();
            }
            for read in ready.reads {
                writeln!(out, "n{id} read {} confirmed at index {}", read.context, read.index)
                    .unwrap();
            }
            for context in ready.aborted_reads {
                writeln!(out, "n{id} read {context} aborted").unwrap();
            }
            engine.advance();
        }
        let status = engine.status();
        if replica.role != Some(status.role) || replica.term != status.term {
            writeln!(out, "n{id} is {:?} in term {}", status.role, status.term).unwrap();
            replica.role = Some(status.role);
            replica.term = status.term;
        }
    }

    fn engine(&mut self, id: NodeId) -> Result<&mut E, String> {
        self.replicas
            .get_mut(&id)
            .ok_or(format!("no node {id}"))?
            .engine
            .as_mut()
            .ok_or(format!("n{id} is down"))
    }

    pub fn run_command(&mut self, line: &str) -> Result<String, String> {
        let mut words = line.split_whitespace();
        let command = words.next().ok_or("empty command")?;
        let mut positional = Vec::new();
        let mut named = BTreeMap::new();
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => {
                    named.insert(key.to_string(), value.to_string());
                }
                None => positional.push(word.to_string()),
            }
        }
        let node = |index: usize| -> Result<NodeId, String> {
            positional
                .get(index)
                .ok_or(format!("{command}: missing argument {}", index + 1))?
                .parse()
                .map_err(|e| format!("{command}: {e}"))
        };
        let mut out = String::new();
        match command {
            "cluster" => self.cluster(&named, &mut out)?,
            "tick" => {
                let count: u32 = named.get("count").map_or(Ok(1), |c| c.parse()).map_err(err)?;
                let nodes = self.select(named.get("nodes"))?;
                for _ in 0..count {
                    for &id in &nodes {
                        if let Ok(engine) = self.engine(id) {
                            engine.tick();
                            self.process(id, &mut out);
                        }
                    }
                }
            }
            "deliver" => {
                self.deliver_round(&named, &mut out)?;
            }
            "stabilize" => {
                let mut rounds = 0;
                while !self.mailbox.is_empty() {
                    rounds += 1;
                    if rounds > 1000 {
                        return Err("stabilize: messages still flowing after 1000 rounds".into());
                    }
                    self.deliver_round(&named, &mut out)?;
                }
            }
            "drop" => {
                let from = parse_opt(named.get("from"))?;
                let to = parse_opt(named.get("to"))?;
                let before = self.mailbox.len();
                self.mailbox.retain(|m| !(matches(from, m.from()) && matches(to, m.to())));
                writeln!(out, "dropped {}", before - self.mailbox.len()).unwrap();
            }
            "partition" => {
                let text = positional.join(" ");
                let groups: Vec<Vec<NodeId>> = text
                    .split('|')
                    .map(|group| group.split_whitespace().map(|n| n.parse().map_err(err)).collect())
                    .collect::<Result<_, _>>()?;
                self.blocked.clear();
                for (i, left) in groups.iter().enumerate() {
                    for right in &groups[i + 1..] {
                        for &a in left {
                            for &b in right {
                                self.blocked.insert((a, b));
                                self.blocked.insert((b, a));
                            }
                        }
                    }
                }
            }
            "heal" => self.blocked.clear(),
            "crash" => {
                let id = node(0)?;
                let replica = self.replicas.get_mut(&id).ok_or("no such node")?;
                replica.engine = None;
                replica.role = None;
                writeln!(out, "n{id} crashed").unwrap();
            }
            "restart" => {
                let id = node(0)?;
                self.start(id, &mut out);
            }
            "propose" => {
                let id = node(0)?;
                let text = positional.get(1).ok_or("propose: missing command")?.clone();
                let result = self.engine(id)?.propose(Bytes::from(text));
                match result {
                    Ok(proposal) => {
                        writeln!(out, "n{id} proposed {}@{}", proposal.index, proposal.term)
                    }
                    Err(error) => writeln!(out, "n{id} refused: {error}"),
                }
                .unwrap();
                self.process(id, &mut out);
            }
            "read" => {
                let id = node(0)?;
                let context: u64 =
                    positional.get(1).ok_or("read: missing context")?.parse().map_err(err)?;
                let result = self.engine(id)?.read_index(context);
                if let Err(error) = result {
                    writeln!(out, "n{id} refused read: {error}").unwrap();
                }
                self.process(id, &mut out);
            }
            "transfer-leader" | "add-learner" | "promote" | "remove" => {
                let id = node(0)?;
                let target = node(1)?;
                let engine = self.engine(id)?;
                let result = match command {
                    "transfer-leader" => engine.transfer_leadership(target).map(|()| String::new()),
                    "add-learner" => engine
                        .propose_membership(MembershipChange::AddLearner(target))
                        .map(|p| format!(" at {}@{}", p.index, p.term)),
                    "promote" => engine
                        .propose_membership(MembershipChange::Promote(target))
                        .map(|p| format!(" at {}@{}", p.index, p.term)),
                    _ => engine
                        .propose_membership(MembershipChange::Remove(target))
                        .map(|p| format!(" at {}@{}", p.index, p.term)),
                };
                match result {
                    Ok(detail) => writeln!(out, "n{id} {command} {target}: ok{detail}"),
                    Err(error) => writeln!(out, "n{id} {command} {target}: {error}"),
                }
                .unwrap();
                if command == "add-learner" {
                    self.ensure_replica(target);
                }
                self.process(id, &mut out);
            }
            "compact" => {
                let id = node(0)?;
                let replica = self.replicas.get_mut(&id).ok_or("no such node")?;
                let snapshot = Snapshot {
                    index: replica.applied,
                    term: replica.applied_term,
                    membership: replica.applied_membership.clone(),
                    data: Bytes::from(replica.state.join(",")),
                };
                replica.durable.compact(snapshot.clone());
                writeln!(out, "n{id} compacted to {}@{}", snapshot.index, snapshot.term).unwrap();
                self.engine(id)?.compact(snapshot);
                self.process(id, &mut out);
            }
            "status" => {
                for (id, replica) in &self.replicas {
                    match &replica.engine {
                        None => writeln!(out, "n{id} down").unwrap(),
                        Some(engine) => {
                            let s = engine.status();
                            writeln!(
                                out,
                                "n{id} {:?} term {} leader {} commit {} applied {} last {} {:?}",
                                s.role,
                                s.term,
                                s.leader.map_or("-".to_string(), |l| l.to_string()),
                                s.commit,
                                s.applied,
                                s.last_index,
                                s.membership
                            )
                            .unwrap();
                        }
                    }
                }
            }
            "log" => {
                let id = node(0)?;
                let durable = &self.replicas.get(&id).ok_or("no such node")?.durable;
                if let Some(snapshot) = &durable.snapshot {
                    writeln!(out, "snapshot {}@{}", snapshot.index, snapshot.term).unwrap();
                }
                for entry in &durable.entries {
                    writeln!(out, "{}", describe(entry)).unwrap();
                }
                writeln!(
                    out,
                    "hard state term {} vote {} commit {}",
                    durable.hard_state.term, durable.hard_state.vote, durable.hard_state.commit
                )
                .unwrap();
            }
            "state" => {
                let id = node(0)?;
                let replica = self.replicas.get(&id).ok_or("no such node")?;
                writeln!(out, "applied {}: [{}]", replica.applied, replica.state.join(", "))
                    .unwrap();
            }
            other => return Err(format!("unknown command {other}")),
        }
        Ok(out)
    }

    fn ensure_replica(&mut self, id: NodeId) {
        if self.replicas.contains_key(&id) {
            return;
        }
        let replica = Replica {
            engine: None,
            durable: Durable::default(),
            state: Vec::new(),
            applied: 0,
            applied_term: 0,
            applied_membership: Membership::default(),
            role: None,
            term: 0,
        };
        self.replicas.insert(id, replica);
        // A joining node starts empty and learns the membership from the leader.
        let options = self.options_for(id);
        let engine = (self.build)(options, Membership::default(), Durable::default());
        self.replicas.get_mut(&id).expect("replica").engine = Some(engine);
    }

    fn cluster(
        &mut self,
        named: &BTreeMap<String, String>,
        out: &mut String,
    ) -> Result<(), String> {
        let voters = parse_list(named.get("voters").ok_or("cluster: voters=… is required")?)?;
        let learners = named.get("learners").map_or(Ok(Vec::new()), |l| parse_list(l))?;
        let mut options = Options::new(1);
        for (key, value) in named {
            match key.as_str() {
                "voters" | "learners" => {}
                "append-max" => options.append_entries_max = value.parse().map_err(err)?,
                "inflight-max" => options.inflight_appends_max = value.parse().map_err(err)?,
                "chunk-bytes" => options.snapshot_chunk_bytes = value.parse().map_err(err)?,
                "pre-vote" => options.pre_vote = value.parse().map_err(err)?,
                "check-quorum" => options.check_quorum = value.parse().map_err(err)?,
                other => return Err(format!("cluster: unknown option {other}")),
            }
        }
        self.options = options;
        self.founding = Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
        };
        for &id in voters.iter().chain(&learners) {
            self.replicas.insert(
                id,
                Replica {
                    engine: None,
                    durable: Durable::default(),
                    state: Vec::new(),
                    applied: 0,
                    applied_term: 0,
                    applied_membership: self.founding.clone(),
                    role: None,
                    term: 0,
                },
            );
            self.start(id, out);
        }
        Ok(())
    }

    fn select(&self, nodes: Option<&String>) -> Result<Vec<NodeId>, String> {
        match nodes.map(String::as_str) {
            None | Some("all") => Ok(self.replicas.keys().copied().collect()),
            Some(list) => parse_list(list),
        }
    }

    fn deliver_round(
        &mut self,
        named: &BTreeMap<String, String>,
        out: &mut String,
    ) -> Result<(), String> {
        let from = parse_opt(named.get("from"))?;
        let to = parse_opt(named.get("to"))?;
        let (selected, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.mailbox)
            .into_iter()
            .partition(|m| matches(from, m.from()) && matches(to, m.to()));
        self.mailbox = kept;
        for message in selected {
            let (source, target) = (message.from(), message.to());
            if self.blocked.contains(&(source, target)) {
                writeln!(out, "{source}->{target} {} dropped by partition", message.kind())
                    .unwrap();
                continue;
            }
            let Some(replica) = self.replicas.get_mut(&target) else { continue };
            let Some(engine) = replica.engine.as_mut() else {
                writeln!(out, "{source}->{target} {} lost: n{target} is down", message.kind())
                    .unwrap();
                continue;
            };
            writeln!(out, "{source}->{target} {}", message.kind()).unwrap();
            engine.step(message);
            self.process(target, out);
        }
        Ok(())
    }
}

fn err<T: std::fmt::Display>(error: T) -> String {
    error.to_string()
}

fn matches(filter: Option<NodeId>, node: NodeId) -> bool {
    filter.map_or(true, |wanted| wanted == node)
}

fn parse_opt(value: Option<&String>) -> Result<Option<NodeId>, String> {
    value.map(|v| v.parse().map_err(err)).transpose()
}

fn parse_list(list: &str) -> Result<Vec<NodeId>, String> {
    list.split(',').map(|n| n.trim().parse().map_err(err)).collect()
}

fn decode_state(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    if text.is_empty() {
        Vec::new()
    } else {
        text.split(',').map(str::to_string).collect()
    }
}

fn describe(entry: &Entry) -> String {
    match &entry.payload {
        Payload::Noop => format!("{}@{} noop", entry.index, entry.term),
        Payload::Command(bytes) => {
            format!("{}@{} {}", entry.index, entry.term, String::from_utf8_lossy(bytes))
        }
        Payload::Membership(membership) => {
            format!("{}@{} membership {membership:?}", entry.index, entry.term)
        }
    }
}

/// Runs every script under `directory` whose name is `*.txt` or
/// `*.<engine>.txt`, comparing (or, with `SCENARIO_REWRITE=1`, rewriting) the
/// expected output. Returns the number of scripts run.
pub fn run_directory<E: Engine>(directory: &Path, engine: &str, build: Build<E>) -> usize {
    let rewrite = std::env::var_os("SCENARIO_REWRITE").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(directory)
        .expect("scenario directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".txt") else { return false };
            match stem.rsplit_once('.') {
                Some((_, suffix)) => suffix == engine,
                None => true,
            }
        })
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("scenario file");
        let (actual, mismatches) = run_script::<E>(&text, build);
        if rewrite {
            std::fs::write(path, &actual).expect("rewrite scenario");
        } else if !mismatches.is_empty() {
            failures.push(format!("{}:\n{}", path.display(), mismatches.join("\n")));
        }
    }
    assert!(failures.is_empty(), "scenario mismatches:\n{}", failures.join("\n\n"));
    paths.len()
}

/// Runs one script; returns the script with actual outputs, and a
/// description of each block whose output differed.
pub fn run_script<E: Engine>(text: &str, build: Build<E>) -> (String, Vec<String>) {
    let mut harness = Harness::new(build);
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            i += 1;
            continue;
        }
        let command_line = i + 1;
        let command = line;
        i += 1;
        assert!(
            i < lines.len() && lines[i] == "----",
            "line {command_line}: a command must be followed by ----"
        );
        i += 1;
        let mut expected = String::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push_str(lines[i]);
            expected.push('\n');
            i += 1;
        }
        let actual = match harness.run_command(command) {
            Ok(output) if output.is_empty() => "ok\n".to_string(),
            Ok(output) => output,
            Err(error) => format!("error: {error}\n"),
        };
        if actual != expected {
            mismatches.push(format!(
                "line {command_line}: {command}\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
        rewritten.push_str(command);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&actual);
        rewritten.push('\n');
        // Skip the blank separator line.
        if i < lines.len() && lines[i].is_empty() {
            i += 1;
        }
    }
    (rewritten, mismatches)
}
