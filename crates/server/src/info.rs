//! What the server says about itself: `INFO`, `CONFIG GET` and `COMMAND`.
//!
//! - `INFO` renders Redis's `# Section` / `field:value` text from the connection registry, the
//!   server counters and the node task's [`Info`]. Sections: server, clients, memory,
//!   persistence, stats, replication, keyspace, and cohort (the consensus view: role, term,
//!   indexes, log size, fsync policy, members). `replication` maps the Raft role onto Redis's
//!   `master`/`slave` for tools that only know those.
//! - `CONFIG GET` is a read-only view of the settings clients ask about, matched with Redis's
//!   case-insensitive glob patterns. The password is never shown.
//! - `COMMAND` describes the data commands of [`commands::table`] plus the connection commands in
//!   [`CONNECTION_COMMANDS`], in Redis 7's reply shapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use commands::CommandSpec;
use consensus::Role;
use resp::Frame;
use storage::Fsync;

use crate::config::Config;
use crate::connection::Shared;
use crate::handle::Info;

/// The Redis version clients are told they speak to (HELLO, INFO): the command set and reply
/// texts follow Redis 7.2.
pub const REDIS_VERSION: &str = "7.2.0";

/// A command handled by the connection rather than the node.
#[derive(Clone, Copy, Debug)]
pub struct LocalSpec {
    /// Lowercase.
    pub name: &'static str,
    /// Redis convention: counts the name, negative means "at least".
    pub arity: i32,
    /// Redis's `COMMAND INFO` flags for it.
    pub flags: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
}

impl LocalSpec {
    pub fn arity_accepts(&self, argument_count: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            argument_count == arity
        } else {
            argument_count >= arity
        }
    }
}

const fn local(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
) -> LocalSpec {
    LocalSpec { name, arity, flags, group, summary }
}

const CONNECTION: &str = "connection";
const SERVER: &str = "server";
const TRANSACTIONS: &str = "transactions";
const CLUSTER: &str = "cluster";
const GENERIC: &str = "generic";

/// The commands a connection answers itself.
pub static CONNECTION_COMMANDS: &[LocalSpec] = &[
    local("ping", -1, &["fast"], CONNECTION, "Returns the server's liveliness response."),
    local("echo", 2, &["fast"], CONNECTION, "Returns the given string."),
    local(
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        CONNECTION,
        "Handshakes with the server: protocol version, authentication, client name.",
    ),
    local(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        CONNECTION,
        "Authenticates the connection.",
    ),
    local("select", 2, &["loading", "stale", "fast"], CONNECTION, "Changes the selected database."),
    local(
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        CONNECTION,
        "Closes the connection.",
    ),
    local(
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        CONNECTION,
        "Resets the connection.",
    ),
    local(
        "client",
        -2,
        &["noscript", "loading", "stale"],
        CONNECTION,
        "A container for client connection commands.",
    ),
    local(
        "command",
        -1,
        &["loading", "stale"],
        SERVER,
        "Returns detailed information about all commands.",
    ),
    local(
        "info",
        -1,
        &["loading", "stale"],
        SERVER,
        "Returns information and statistics about the server.",
    ),
    local("time", 1, &["loading", "stale", "fast"], SERVER, "Returns the server time."),
    local(
        "config",
        -2,
        &["noscript", "loading", "stale"],
        SERVER,
        "A container for server configuration commands (read-only here).",
    ),
    local(
        "readonly",
        1,
        &["loading", "stale", "fast"],
        CLUSTER,
        "Enables read-only queries for a connection.",
    ),
    local(
        "readwrite",
        1,
        &["loading", "stale", "fast"],
        CLUSTER,
        "Enables read-write queries for a connection.",
    ),
    local("cluster", -2, &["loading", "stale"], CLUSTER, "A container for Redis Cluster commands."),
    local(
        "asking",
        1,
        &["fast"],
        CLUSTER,
        "Signals that a cluster client is following a redirect.",
    ),
    local(
        "wait",
        3,
        &["noscript"],
        GENERIC,
        "Returns how many other replicas hold every acknowledged write (a quorum's worth).",
    ),
    local(
        "multi",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        TRANSACTIONS,
        "Starts a transaction.",
    ),
    local(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        TRANSACTIONS,
        "Executes all commands in a transaction as one log entry.",
    ),
    local(
        "discard",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        TRANSACTIONS,
        "Discards a transaction.",
    ),
    local(
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        TRANSACTIONS,
        "Monitors changes to keys to determine the execution of a transaction.",
    ),
    local(
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        TRANSACTIONS,
        "Forgets about watched keys of a transaction.",
    ),
];

/// The connection command named `name`, case-insensitively.
pub fn lookup_local(name: &[u8]) -> Option<&'static LocalSpec> {
    CONNECTION_COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

// ----- COMMAND -------------------------------------------------------------------------------

/// Either kind of command, for the `COMMAND` replies.
#[derive(Clone, Copy)]
enum AnySpec {
    Data(&'static CommandSpec),
    Local(&'static LocalSpec),
    /// Sessions, locks and elections; the name (an election's, a lock's) is
    /// the key that routes them.
    Coordination(&'static node::coordination::Spec),
}

fn all_commands() -> impl Iterator<Item = AnySpec> {
    commands::table()
        .iter()
        .map(AnySpec::Data)
        .chain(node::coordination::table().iter().map(AnySpec::Coordination))
        .chain(CONNECTION_COMMANDS.iter().map(AnySpec::Local))
}

fn find_command(name: &[u8]) -> Option<AnySpec> {
    commands::lookup(name)
        .map(AnySpec::Data)
        .or_else(|| node::coordination::lookup(name).map(AnySpec::Coordination))
        .or_else(|| lookup_local(name).map(AnySpec::Local))
}

/// Redis-style flags and key positions of a coordination command.
fn coordination_shape(spec: &node::coordination::Spec) -> (Vec<&'static str>, (i32, i32, i32)) {
    let mut flags = vec![if spec.write { "write" } else { "readonly" }];
    if spec.blocking {
        flags.push("blocking");
    }
    let keys = if spec.name.starts_with("session") { (0, 0, 0) } else { (1, 1, 1) };
    let keys = if spec.name == "seq" { (0, 0, 0) } else { keys };
    if spec.name == "seq" {
        flags.push("movablekeys");
    }
    (flags, keys)
}

impl AnySpec {
    fn name(&self) -> &'static str {
        match self {
            AnySpec::Data(spec) => spec.name,
            AnySpec::Local(spec) => spec.name,
            AnySpec::Coordination(spec) => spec.name,
        }
    }

    /// Redis 7's ten-element `COMMAND INFO` entry: name, arity, flags, first key, last key,
    /// step, ACL categories, tips, key specifications, subcommands (the last four empty).
    fn info(&self) -> Frame {
        let (arity, flags, keys) = match self {
            AnySpec::Data(spec) => {
                (spec.arity, spec.flag_names(), (spec.first_key, spec.last_key, spec.step))
            }
            AnySpec::Local(spec) => (spec.arity, spec.flags.to_vec(), (0, 0, 0)),
            AnySpec::Coordination(spec) => {
                let (flags, keys) = coordination_shape(spec);
                (spec.arity, flags, keys)
            }
        };
        Frame::Array(vec![
            Frame::bulk(self.name()),
            Frame::Integer(i64::from(arity)),
            Frame::Set(flags.into_iter().map(|flag| Frame::Simple(flag.to_string())).collect()),
            Frame::Integer(i64::from(keys.0)),
            Frame::Integer(i64::from(keys.1)),
            Frame::Integer(i64::from(keys.2)),
            Frame::Set(Vec::new()),
            Frame::Set(Vec::new()),
            Frame::Array(Vec::new()),
            Frame::Array(Vec::new()),
        ])
    }

    /// A minimal `COMMAND DOCS` entry: summary, since (the cohort version that has it), group.
    fn docs(&self) -> Frame {
        let (summary, group) = match self {
            AnySpec::Data(spec) => (
                format!("Redis's {} command, applied through the replicated log.", spec.name),
                data_group(spec.name),
            ),
            AnySpec::Local(spec) => (spec.summary.to_string(), spec.group),
            AnySpec::Coordination(spec) => (
                format!(
                    "cohort's {} (sessions, locks and elections; see docs/COORDINATION.md).",
                    spec.name
                ),
                "cohort",
            ),
        };
        Frame::Map(vec![
            (Frame::bulk("summary"), Frame::bulk(summary)),
            (Frame::bulk("since"), Frame::bulk(env!("CARGO_PKG_VERSION"))),
            (Frame::bulk("group"), Frame::bulk(group)),
        ])
    }
}

/// Redis's documentation group of a data command.
fn data_group(name: &str) -> &'static str {
    const LISTS: &[&str] = &[
        "lpush",
        "rpush",
        "lpushx",
        "rpushx",
        "lpop",
        "rpop",
        "llen",
        "lrange",
        "lindex",
        "lset",
        "lrem",
        "ltrim",
        "linsert",
        "lpos",
        "lmove",
        "rpoplpush",
        "blpop",
        "brpop",
        "blmove",
        "brpoplpush",
    ];
    const STRINGS: &[&str] = &[
        "get",
        "set",
        "setnx",
        "setex",
        "psetex",
        "getset",
        "getdel",
        "getex",
        "mget",
        "mset",
        "msetnx",
        "append",
        "strlen",
        "incr",
        "decr",
        "incrby",
        "decrby",
        "incrbyfloat",
        "getrange",
        "setrange",
    ];
    const SERVER_COMMANDS: &[&str] = &["dbsize", "flushall", "flushdb"];
    if name.starts_with('h') {
        "hash"
    } else if LISTS.contains(&name) {
        "list"
    } else if STRINGS.contains(&name) {
        "string"
    } else if SERVER_COMMANDS.contains(&name) {
        "server"
    } else if name.starts_with('s') && !matches!(name, "scan") {
        "set"
    } else {
        "generic"
    }
}

/// `COMMAND [subcommand …]`. `args[0]` is `COMMAND`.
pub fn command(args: &[Bytes]) -> Frame {
    let Some(subcommand) = args.get(1) else {
        return Frame::Array(all_commands().map(|spec| spec.info()).collect());
    };
    let subcommand = subcommand.to_ascii_lowercase();
    let rest = &args[2..];
    match subcommand.as_slice() {
        b"count" if rest.is_empty() => Frame::Integer(all_commands().count() as i64),
        b"info" if rest.is_empty() => {
            Frame::Array(all_commands().map(|spec| spec.info()).collect())
        }
        b"info" => Frame::Array(
            rest.iter().map(|name| find_command(name).map_or(Frame::Null, |s| s.info())).collect(),
        ),
        b"docs" if rest.is_empty() => {
            Frame::Map(all_commands().map(|spec| (Frame::bulk(spec.name()), spec.docs())).collect())
        }
        // Redis leaves unknown names out of the DOCS map.
        b"docs" => Frame::Map(
            rest.iter()
                .filter_map(|name| find_command(name))
                .map(|spec| (Frame::bulk(spec.name()), spec.docs()))
                .collect(),
        ),
        b"getkeys" if !rest.is_empty() => command_getkeys(rest),
        b"list" => command_list(rest),
        b"count" | b"getkeys" => wrong_subcommand_arity("command", &subcommand),
        _ => unknown_subcommand("COMMAND", &args[1]),
    }
}

fn command_getkeys(line: &[Bytes]) -> Frame {
    match find_command(&line[0]) {
        None => Frame::error("ERR Invalid command specified"),
        Some(AnySpec::Local(spec)) if !spec.arity_accepts(line.len()) => {
            Frame::error("ERR Invalid number of arguments specified for command")
        }
        Some(AnySpec::Local(_)) => Frame::error("ERR The command has no key arguments"),
        Some(AnySpec::Coordination(spec)) if !spec.arity_accepts(line.len()) => {
            Frame::error("ERR Invalid number of arguments specified for command")
        }
        Some(AnySpec::Coordination(spec)) => match coordination_shape(spec).1 {
            (0, _, _) => Frame::error("ERR The command has no key arguments"),
            _ => Frame::Array(vec![Frame::Bulk(line[1].clone())]),
        },
        Some(AnySpec::Data(spec)) if !spec.arity_accepts(line.len()) => {
            Frame::error("ERR Invalid number of arguments specified for command")
        }
        Some(AnySpec::Data(_)) => match commands::command_keys(line) {
            None => Frame::error("ERR Invalid arguments specified for command"),
            Some(keys) if keys.is_empty() => Frame::error("ERR The command has no key arguments"),
            Some(keys) => Frame::Array(keys.into_iter().map(Frame::Bulk).collect()),
        },
    }
}

/// `COMMAND LIST [FILTERBY PATTERN pattern]` (the ACLCAT and MODULE filters are not supported).
fn command_list(rest: &[Bytes]) -> Frame {
    let pattern = match rest {
        [] => None,
        [filter, kind, pattern]
            if filter.eq_ignore_ascii_case(b"filterby")
                && kind.eq_ignore_ascii_case(b"pattern") =>
        {
            Some(pattern)
        }
        _ => return Frame::error("ERR syntax error"),
    };
    Frame::Array(
        all_commands()
            .filter(|spec| {
                pattern.map_or(true, |pattern| glob_matches(pattern, spec.name().as_bytes()))
            })
            .map(|spec| Frame::bulk(spec.name()))
            .collect(),
    )
}

/// Redis 7's text for an unknown subcommand of a container command.
pub fn unknown_subcommand(container: &str, subcommand: &[u8]) -> Frame {
    Frame::Error(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        printable(&subcommand[..subcommand.len().min(128)])
    ))
}

/// Redis 7's wrong-arity text for a subcommand: `'client|setname'`.
pub fn wrong_subcommand_arity(container: &str, subcommand: &[u8]) -> Frame {
    Frame::Error(format!(
        "ERR wrong number of arguments for '{container}|{}' command",
        printable(&subcommand.to_ascii_lowercase())
    ))
}

/// Error replies are one line: Redis replaces CR and LF with spaces.
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

// ----- CONFIG GET ----------------------------------------------------------------------------

/// The settings `CONFIG GET` shows, in Redis's names and formats.
fn settings(config: &Config) -> BTreeMap<&'static str, String> {
    let requirepass = match config.requirepass {
        // Shown as set, never shown in full: anyone who can run CONFIG GET could otherwise read
        // the password back.
        Some(_) => "<hidden>".to_string(),
        None => String::new(),
    };
    BTreeMap::from([
        ("maxclients", config.max_clients.to_string()),
        ("proto-max-bulk-len", config.proto_max_bulk_len.to_string()),
        ("client-query-buffer-limit", config.client_query_buffer_limit.to_string()),
        ("appendonly", "yes".to_string()),
        ("appendfsync", fsync_name(config.fsync).to_string()),
        ("save", String::new()),
        ("databases", "1".to_string()),
        ("cluster-enabled", "no".to_string()),
        ("port", config.port.to_string()),
        ("bind", config.bind.clone()),
        ("requirepass", requirepass),
        ("timeout", "0".to_string()),
        ("maxmemory", "0".to_string()),
        ("maxmemory-policy", "noeviction".to_string()),
    ])
}

/// Redis's `appendfsync` names.
pub fn fsync_name(fsync: Fsync) -> &'static str {
    match fsync {
        Fsync::Always => "always",
        Fsync::EverySecond => "everysec",
        Fsync::Never => "no",
    }
}

/// `CONFIG subcommand …`. `args[0]` is `CONFIG`.
pub fn config(config: &Config, args: &[Bytes]) -> Frame {
    let subcommand = args[1].to_ascii_lowercase();
    match subcommand.as_slice() {
        b"get" if args.len() >= 3 => {
            let patterns = &args[2..];
            Frame::Map(
                settings(config)
                    .into_iter()
                    .filter(|(name, _)| {
                        patterns.iter().any(|pattern| glob_matches(pattern, name.as_bytes()))
                    })
                    .map(|(name, value)| (Frame::bulk(name), Frame::bulk(value)))
                    .collect(),
            )
        }
        b"set" | b"resetstat" | b"rewrite" => Frame::error(format!(
            "ERR CONFIG {} is not supported: settings are read-only at run time; set them by \
             flag, environment variable or configuration file and restart the node",
            String::from_utf8_lossy(&subcommand).to_ascii_uppercase()
        )),
        b"get" => wrong_subcommand_arity("config", &subcommand),
        _ => unknown_subcommand("CONFIG", &args[1]),
    }
}

/// Case-insensitive glob match as Redis's `stringmatchlen(…, nocase=1)`: `*`, `?`, `[abc]`,
/// `[^a-z]`, `\x`. Iterative, remembering only the last `*`, so any pattern costs at most
/// O(pattern × text) steps.
pub fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut p = 0;
    let mut t = 0;
    // Where to resume after the last `*`: (pattern position after it, text position it covers).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            if let Some(next) = match_one(pattern, p, text[t]) {
                p = next;
                t += 1;
                continue;
            }
        }
        match star {
            Some((after_star, covered)) => {
                p = after_star;
                t = covered + 1;
                star = Some((after_star, covered + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// Matches one pattern element at `p` (not `*`) against `byte`; the position after it on success.
fn match_one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    let byte = byte.to_ascii_lowercase();
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => {
            (pattern[p + 1].to_ascii_lowercase() == byte).then_some(p + 2)
        }
        b'[' => {
            let mut q = p + 1;
            let negate = pattern.get(q) == Some(&b'^');
            if negate {
                q += 1;
            }
            let mut matched = false;
            while q < pattern.len() && pattern[q] != b']' {
                if pattern[q] == b'\\' && q + 1 < pattern.len() {
                    matched |= pattern[q + 1].to_ascii_lowercase() == byte;
                    q += 2;
                } else if q + 2 < pattern.len() && pattern[q + 1] == b'-' && pattern[q + 2] != b']'
                {
                    let (mut low, mut high) =
                        (pattern[q].to_ascii_lowercase(), pattern[q + 2].to_ascii_lowercase());
                    if low > high {
                        std::mem::swap(&mut low, &mut high);
                    }
                    matched |= (low..=high).contains(&byte);
                    q += 3;
                } else {
                    matched |= pattern[q].to_ascii_lowercase() == byte;
                    q += 1;
                }
            }
            // An unterminated class ends at the pattern's end, as in Redis.
            (matched != negate).then_some((q + 1).min(pattern.len()))
        }
        other => (other.to_ascii_lowercase() == byte).then_some(p + 1),
    }
}

// ----- INFO ----------------------------------------------------------------------------------

const SECTIONS: [&str; 9] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cluster",
    "keyspace",
    "cohort",
];

/// The sections `INFO` arguments select: none, `default`, `all` or `everything` mean all.
/// Unknown names select nothing, as in Redis.
pub fn selected_sections(arguments: &[Bytes]) -> Vec<&'static str> {
    let everything = arguments.is_empty()
        || arguments.iter().any(|argument| {
            [&b"all"[..], b"default", b"everything"]
                .iter()
                .any(|word| argument.eq_ignore_ascii_case(word))
        });
    SECTIONS
        .into_iter()
        .filter(|section| {
            everything
                || arguments
                    .iter()
                    .any(|argument| argument.eq_ignore_ascii_case(section.as_bytes()))
        })
        .collect()
}

/// The `INFO` text for `sections`, given the node's status (`None`: the node task is gone).
pub fn render(shared: &Shared, node: Option<&Info>, sections: &[&str]) -> String {
    let mut text = String::new();
    for section in sections {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let title = format!("{}{}", section[..1].to_ascii_uppercase(), &section[1..]);
        let _ = write!(text, "# {title}\r\n");
        for (field, value) in section_fields(shared, node, section) {
            let _ = write!(text, "{field}:{value}\r\n");
        }
    }
    text
}

fn section_fields(shared: &Shared, node: Option<&Info>, section: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut add = |field: &str, value: String| fields.push((field.to_string(), value));
    let config = &shared.config;
    match section {
        "server" => {
            add("redis_version", REDIS_VERSION.to_string());
            add("cohort_version", env!("CARGO_PKG_VERSION").to_string());
            let cluster = node.is_some_and(|info| info.cluster_enabled);
            add("redis_mode", if cluster { "cluster" } else { "standalone" }.to_string());
            add("os", std::env::consts::OS.to_string());
            add("arch_bits", (usize::BITS).to_string());
            add("process_id", std::process::id().to_string());
            add("run_id", format!("{:040x}", config.node_id));
            add("tcp_port", config.port.to_string());
            let uptime = Instant::now().saturating_duration_since(shared.started);
            add("uptime_in_seconds", uptime.as_secs().to_string());
            add("uptime_in_days", (uptime.as_secs() / 86_400).to_string());
        }
        "clients" => {
            add("connected_clients", shared.clients.len().to_string());
            add("cluster_connections", "0".to_string());
            add("maxclients", config.max_clients.to_string());
            let blocked = node.map_or(0, |info| info.node.blocked_clients);
            add("blocked_clients", blocked.to_string());
        }
        "memory" => {
            // The store does not account its own bytes; the process's resident size is the honest
            // figure available.
            let resident = resident_bytes().unwrap_or(0);
            add("used_memory", resident.to_string());
            add("used_memory_rss", resident.to_string());
            add("maxmemory", "0".to_string());
            add("maxmemory_policy", "noeviction".to_string());
        }
        "persistence" => {
            add("loading", "0".to_string());
            add("aof_enabled", "1".to_string());
            add("aof_rewrite_in_progress", "0".to_string());
            add("rdb_bgsave_in_progress", "0".to_string());
            let fsync = node.map_or(fsync_name(config.fsync), |info| info.fsync);
            add("appendfsync", fsync.to_string());
            let poisoned = node.and_then(|info| info.poisoned.clone());
            add("log_poisoned", if poisoned.is_some() { "1" } else { "0" }.to_string());
            if let Some(reason) = poisoned {
                add("log_error", reason.replace(['\r', '\n'], " "));
            }
        }
        "stats" => {
            add("total_connections_received", shared.stats.connections_received().to_string());
            add("total_commands_processed", shared.stats.commands_processed().to_string());
            add("rejected_connections", shared.stats.rejected_connections().to_string());
        }
        "replication" => {
            if let Some(info) = node {
                replication_fields(info, &mut add);
            }
        }
        "cluster" => {
            let enabled = node.is_some_and(|info| info.cluster_enabled);
            add("cluster_enabled", if enabled { "1" } else { "0" }.to_string());
            if let Some(info) = node {
                add("cohort_shards", info.shards.to_string());
            }
        }
        "keyspace" => {
            // Redis omits an empty database.
            if let Some(info) = node.filter(|info| info.node.keys > 0) {
                add("db0", format!("keys={},expires=0,avg_ttl=0", info.node.keys));
            }
        }
        "cohort" => {
            if let Some(info) = node {
                cohort_fields(info, &mut add);
            }
        }
        other => unreachable!("unknown INFO section {other}"),
    }
    fields
}

fn replication_fields(info: &Info, add: &mut impl FnMut(&str, String)) {
    let status = &info.node;
    if status.role == Role::Leader {
        add("role", "master".to_string());
        let replicas: Vec<_> = status.membership.members().filter(|id| *id != status.id).collect();
        add("connected_slaves", replicas.len().to_string());
        for (index, id) in replicas.into_iter().enumerate() {
            let client = status.addresses.get(&id).map_or("", |(_, client)| client.as_str());
            let (host, port) = client.rsplit_once(':').unwrap_or((client, "0"));
            add(&format!("slave{index}"), format!("ip={host},port={port},state=online"));
        }
    } else {
        add("role", "slave".to_string());
        let leader_address = status
            .leader
            .and_then(|leader| status.addresses.get(&leader))
            .map(|(_, client)| client.as_str())
            .unwrap_or("");
        let (host, port) = leader_address.rsplit_once(':').unwrap_or((leader_address, "0"));
        add("master_host", host.to_string());
        add("master_port", port.to_string());
        let link = if status.leader.is_some() { "up" } else { "down" };
        add("master_link_status", link.to_string());
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::PreCandidate | Role::Candidate => "candidate",
        Role::Learner => "learner",
    }
}

fn cohort_fields(info: &Info, add: &mut impl FnMut(&str, String)) {
    let status = &info.node;
    let role = role_name(status.role);
    let list = |ids: &mut dyn Iterator<Item = u64>| {
        ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    };
    add("node_id", status.id.to_string());
    add("role", role.to_string());
    add("leader_id", status.leader.map_or("none".to_string(), |id| id.to_string()));
    add("term", status.term.to_string());
    add("commit_index", status.commit.to_string());
    add("applied_index", status.applied.to_string());
    add("last_index", status.last_index.to_string());
    add("snapshot_index", status.snapshot_index.to_string());
    add("log_bytes", info.log_bytes.to_string());
    add("fsync", info.fsync.to_string());
    add("engine", info.engine.to_string());
    add("members", list(&mut status.membership.members()));
    add("voters", list(&mut status.membership.voters.iter().copied()));
    add("learners", list(&mut status.membership.learners.iter().copied()));
    add("keys", status.keys.to_string());
    add("pending_requests", status.pending_requests.to_string());
    add("blocked_clients", status.blocked_clients.to_string());
    add("state_digest", format!("{:016x}", status.state_digest));
    let nodes: Vec<String> =
        info.client_addresses.iter().map(|(node, address)| format!("{node}={address}")).collect();
    add("cluster_nodes", nodes.join(","));
    // A sharded cluster: one line per group held here (the fields above
    // describe the first of them).
    for shard in &info.shard_statuses {
        let status = &shard.status;
        let role = role_name(status.role);
        add(
            &format!("shard_{}", shard.group),
            format!(
                "role={role},leader={},term={},commit={},applied={},last={},keys={},slots={},\
                 replicas={},hibernating={}",
                status.leader.map_or("none".to_string(), |id| id.to_string()),
                status.term,
                status.commit,
                status.applied,
                status.last_index,
                status.keys,
                shard.slots,
                list(&mut status.membership.members()).replace(',', "/"),
                u8::from(shard.hibernating),
            ),
        );
    }
}

/// The process's resident set size, from `/proc/self/statm` where it exists.
fn resident_bytes() -> Option<u64> {
    const PAGE_BYTES: u64 = 4096;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_follows_redis_rules() {
        // Goal: the CONFIG GET matcher handles stars, classes, escapes and case like Redis.
        assert!(glob_matches(b"*max*", b"maxclients"));
        assert!(glob_matches(b"*MAX*", b"proto-max-bulk-len"));
        assert!(!glob_matches(b"*max*", b"port"));
        assert!(glob_matches(b"p?rt", b"port"));
        assert!(glob_matches(b"[a-p]ort", b"port"));
        assert!(!glob_matches(b"[^p]ort", b"port"));
        assert!(glob_matches(b"a\\*b", b"a*b"));
        assert!(!glob_matches(b"a\\*b", b"axb"));
        assert!(glob_matches(b"*", b""));
        assert!(!glob_matches(b"?", b""));
        assert!(glob_matches(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn sections_select_like_redis() {
        // Goal: INFO's argument handling: all by default, named sections only, unknown ignored.
        let words = |list: &[&str]| -> Vec<Bytes> {
            list.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
        };
        assert_eq!(selected_sections(&[]).len(), SECTIONS.len());
        assert_eq!(selected_sections(&words(&["ALL"])).len(), SECTIONS.len());
        assert_eq!(selected_sections(&words(&["Cohort", "server"])), vec!["server", "cohort"]);
        assert!(selected_sections(&words(&["nope"])).is_empty());
    }

    #[test]
    fn local_commands_do_not_shadow_data_commands() {
        // Goal: a name is either a data command or a connection command, never both.
        for spec in CONNECTION_COMMANDS {
            assert!(commands::lookup(spec.name.as_bytes()).is_none(), "{}", spec.name);
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
        }
    }
}
