//! Settings, from flags, environment variables and a TOML file, with the
//! same names (flag `--peer-port`, variable `COHORT_PEER_PORT`, TOML key
//! `peer-port`). Flags override the environment, which overrides the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use storage::Fsync;

pub use crate::runtime::Consensus;

#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: u64,
    /// Address to listen on (clients and peers).
    pub bind: String,
    pub port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    /// The founding members: node id → host:peer_port.
    pub initial_cluster: BTreeMap<u64, String>,
    /// A member's peer address to join a running cluster through.
    pub join: Option<String>,
    pub fsync: Fsync,
    /// The consensus engine (fixed when the cluster is created).
    pub consensus: Consensus,
    pub requirepass: Option<String>,
    pub max_clients: usize,
    /// Largest bulk string a client may send (Redis's proto-max-bulk-len).
    pub proto_max_bulk_len: usize,
    /// Largest command a client may send (Redis's client-query-buffer-limit).
    pub client_query_buffer_limit: usize,
    /// Engine tick; elections take 10–20 ticks, heartbeats every 2.
    pub tick_ms: u64,
    /// How long a command waits for a leader before `-CLUSTERDOWN`.
    pub request_timeout_ms: u64,
    /// Applied entries between two state-machine snapshots.
    pub snapshot_entries: u64,
    /// Shards of a new cluster (1: one group replicated on every node).
    pub shards: u64,
    /// Replicas of each shard of a new sharded cluster (default: 3, or
    /// the founding node count if smaller).
    pub replicas: Option<usize>,
    /// Redis Cluster mode: `-MOVED` instead of proxying.
    pub cluster_enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            bind: "127.0.0.1".to_string(),
            port: 6379,
            peer_port: 16379,
            data_dir: PathBuf::from("./data"),
            initial_cluster: BTreeMap::new(),
            join: None,
            fsync: Fsync::Always,
            consensus: Consensus::Raft,
            requirepass: None,
            max_clients: 10_000,
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            tick_ms: 50,
            request_timeout_ms: 5_000,
            snapshot_entries: 10_000,
            shards: 1,
            replicas: None,
            cluster_enabled: false,
        }
    }
}
