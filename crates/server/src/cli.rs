//! The command line: `cohort serve`, `cohort cluster up`, and how settings
//! are read from flags, environment variables and a TOML file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use storage::Fsync;

use crate::config::Config;

pub const USAGE: &str = "\
usage:
  cohort serve [options]            run a node (default: one node on 127.0.0.1:6379, data in ./data)
  cohort cluster up [--nodes N] [--port P] [--peer-port P] [--data-dir D] [--shards S]
                    [--cluster-enabled yes|no]
                                    start a local cluster of N processes (default 3) holding
                                    S shards (default 2N) in Redis Cluster mode (default yes)
  cohort cluster status [--host H] [--port P]
                                    nodes, shards, leaders and replica lag, as the nodes
                                    report them (asks the node at H:P, default 127.0.0.1:7001)
  cohort version

serve options (also COHORT_<NAME> environment variables and keys of --config FILE):
  --config FILE                 TOML file with the same names as the flags (peer-port = 16379)
  --node-id N                   this node's id (default 1)
  --bind ADDR                   address to listen on (default 127.0.0.1)
  --port P                      client port (default 6379)
  --peer-port P                 peer port (default 16379)
  --data-dir DIR                data directory (default ./data)
  --initial-cluster 1=host:peer_port,2=...   founding members (default: this node alone)
  --join HOST:PEER_PORT         join a running cluster through one of its members
  --fsync always|everysec|no    when the log is fsynced (default always)
  --consensus raft|paxos        the consensus engine, fixed when the cluster is created (default raft)
  --requirepass PASSWORD        require AUTH
  --max-clients N               (default 10000)
  --proto-max-bulk-len BYTES    largest bulk string (default 536870912)
  --client-query-buffer-limit BYTES   largest command (default 1073741824)
  --tick-ms MS                  consensus tick (default 50; elections take 10-20 ticks)
  --request-timeout-ms MS       how long a command waits for a leader (default 5000)
  --snapshot-entries N          applied entries between snapshots (default 10000)
  --shards N                    shards (consensus groups) the keyspace is split into, fixed when
                                the cluster is created (default 1: one group on every node)
  --replicas N                  replicas of each shard (default: 3, or fewer nodes)
  --cluster-enabled yes|no      Redis Cluster mode: -MOVED to the slot's leader instead of
                                proxying (default no)";

/// The names every source accepts, as flags spell them.
const SETTINGS: &[&str] = &[
    "node-id",
    "bind",
    "port",
    "peer-port",
    "data-dir",
    "initial-cluster",
    "join",
    "fsync",
    "consensus",
    "requirepass",
    "max-clients",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "tick-ms",
    "request-timeout-ms",
    "snapshot-entries",
    "shards",
    "replicas",
    "cluster-enabled",
];

/// Reads the configuration: the TOML file (if `--config` names one), then
/// `COHORT_*` environment variables, then flags, each overriding the last.
pub fn load_config(flags: &[String], environment: &BTreeMap<String, String>) -> Result<Config> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let flag_values = parse_flags(flags)?;
    let file =
        flag_values.get("config").cloned().or_else(|| environment.get("COHORT_CONFIG").cloned());
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let table: toml::Table = text.parse().with_context(|| format!("parsing {path}"))?;
        for (key, value) in table {
            let text = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                other => bail!("{path}: {key} must be a string or a number, not {other:?}"),
            };
            values.insert(key, text);
        }
    }
    for name in SETTINGS {
        let variable = format!("COHORT_{}", name.to_uppercase().replace('-', "_"));
        if let Some(value) = environment.get(&variable) {
            values.insert(name.to_string(), value.clone());
        }
    }
    for (name, value) in flag_values {
        if name != "config" {
            values.insert(name, value);
        }
    }
    let mut config = Config::default();
    for (name, value) in &values {
        apply(&mut config, name, value).with_context(|| format!("setting {name} = {value:?}"))?;
    }
    validate(&config)?;
    Ok(config)
}

fn parse_flags(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut words = flags.iter();
    while let Some(word) = words.next() {
        let Some(name) = word.strip_prefix("--") else { bail!("unexpected argument {word}") };
        let (name, value) = match name.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value = words.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
                (name.to_string(), value.clone())
            }
        };
        if name != "config" && !SETTINGS.contains(&name.as_str()) {
            bail!("unknown option --{name}");
        }
        values.insert(name, value);
    }
    Ok(values)
}

fn apply(config: &mut Config, name: &str, value: &str) -> Result<()> {
    fn number<T: std::str::FromStr>(value: &str) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        Ok(value.trim().parse::<T>()?)
    }
    match name {
        "node-id" => config.node_id = number(value)?,
        "bind" => config.bind = value.to_string(),
        "port" => config.port = number(value)?,
        "peer-port" => config.peer_port = number(value)?,
        "data-dir" => config.data_dir = PathBuf::from(value),
        "initial-cluster" => config.initial_cluster = parse_cluster(value)?,
        "join" => config.join = Some(value.to_string()),
        "fsync" => {
            config.fsync = Fsync::from_name(value)
                .ok_or_else(|| anyhow!("fsync must be always, everysec or no"))?
        }
        "consensus" => {
            config.consensus = crate::config::Consensus::from_name(value)
                .ok_or_else(|| anyhow!("consensus must be raft or paxos"))?
        }
        "requirepass" => config.requirepass = Some(value.to_string()).filter(|p| !p.is_empty()),
        "max-clients" => config.max_clients = number(value)?,
        "proto-max-bulk-len" => config.proto_max_bulk_len = number(value)?,
        "client-query-buffer-limit" => config.client_query_buffer_limit = number(value)?,
        "tick-ms" => config.tick_ms = number(value)?,
        "request-timeout-ms" => config.request_timeout_ms = number(value)?,
        "snapshot-entries" => config.snapshot_entries = number(value)?,
        "shards" => config.shards = number(value)?,
        "replicas" => config.replicas = Some(number(value)?),
        "cluster-enabled" => {
            config.cluster_enabled = match value.trim().to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" => true,
                "no" | "false" | "0" => false,
                _ => bail!("cluster-enabled must be yes or no"),
            }
        }
        other => bail!("unknown setting {other}"),
    }
    Ok(())
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_cluster(text: &str) -> Result<BTreeMap<u64, String>> {
    let mut members = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let (id, address) =
            part.split_once('=').ok_or_else(|| anyhow!("expected id=host:port, got {part}"))?;
        let id: u64 = id.trim().parse().with_context(|| format!("node id in {part}"))?;
        if id == 0 {
            bail!("node ids start at 1");
        }
        if members.insert(id, address.trim().to_string()).is_some() {
            bail!("node {id} listed twice");
        }
    }
    Ok(members)
}

fn validate(config: &Config) -> Result<()> {
    if config.node_id == 0 {
        bail!("--node-id must be at least 1");
    }
    if !config.initial_cluster.is_empty() && !config.initial_cluster.contains_key(&config.node_id) {
        bail!("--initial-cluster does not list this node ({})", config.node_id);
    }
    if config.join.is_some() && !config.initial_cluster.is_empty() {
        bail!("--join and --initial-cluster exclude each other");
    }
    if config.tick_ms == 0 || config.tick_ms > 10_000 {
        bail!("--tick-ms must be between 1 and 10000");
    }
    if config.proto_max_bulk_len < 1024 || config.proto_max_bulk_len > 512 << 20 {
        bail!("--proto-max-bulk-len must be between 1 KiB and 512 MiB");
    }
    if config.client_query_buffer_limit < config.proto_max_bulk_len {
        bail!("--client-query-buffer-limit must be at least --proto-max-bulk-len");
    }
    if config.snapshot_entries == 0 {
        bail!("--snapshot-entries must be at least 1");
    }
    if config.shards == 0 || config.shards > 16384 {
        bail!("--shards must be between 1 and 16384");
    }
    let nodes = config.initial_cluster.len().max(1);
    if let Some(replicas) = config.replicas {
        if replicas == 0 || replicas > nodes {
            bail!("--replicas must be between 1 and the number of founding nodes ({nodes})");
        }
    }
    if config.join.is_some() && config.shards > 1 {
        bail!(
            "--join cannot add a node to a sharded cluster yet: moving shard replicas to a new \
             node needs the placement controller"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        let directory = std::env::temp_dir().join(format!("cohort-cli-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("cohort.toml");
        std::fs::write(&file, "port = 7000\npeer-port = 17000\nfsync = \"no\"\n").unwrap();
        let environment: BTreeMap<String, String> =
            [("COHORT_PEER_PORT".to_string(), "18000".to_string())].into();
        let flags = strings(&["--config", file.to_str().unwrap(), "--fsync", "everysec"]);
        let config = load_config(&flags, &environment).unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.peer_port, 18000);
        assert_eq!(config.fsync, Fsync::EverySecond);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let environment = BTreeMap::new();
        for flags in [
            vec!["--port", "seventy"],
            vec!["--fsync", "sometimes"],
            vec!["--nonsense", "1"],
            vec!["--node-id", "3", "--initial-cluster", "1=a:1,2=b:2"],
            vec!["--initial-cluster", "1=a:1,1=b:2"],
            vec!["--port"],
        ] {
            assert!(load_config(&strings(&flags), &environment).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn the_initial_cluster_is_parsed() {
        let members = parse_cluster("1=127.0.0.1:7001, 2=127.0.0.1:7002").unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[&2], "127.0.0.1:7002");
    }
}
