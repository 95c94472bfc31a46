//! Who is connected: the registry behind `CLIENT LIST`, `CLIENT INFO`, `INFO clients` and the
//! `maxclients` limit, and the server-wide counters behind `INFO stats`.
//!
//! Each connection registers one [`Client`] record when it starts and holds a [`ClientGuard`]
//! that removes the record when the connection ends, however it ends. The limit is checked under
//! the same lock that inserts, so `maxclients` can never be exceeded by connections racing in.
//! A record's changing fields (name, library, last command …) sit behind their own small lock,
//! which only its connection writes and only `CLIENT LIST` / `CLIENT INFO` read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Every connected client, by id.
#[derive(Clone, Default)]
pub struct ClientRegistry {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    /// Last id handed out; ids start at 1 and are never reused (Redis's `CLIENT ID`).
    last_id: u64,
    clients: BTreeMap<u64, Arc<Client>>,
}

/// One connection's record.
pub struct Client {
    pub id: u64,
    /// The peer's `host:port`.
    pub address: String,
    /// Our `host:port` on this connection.
    pub local_address: String,
    pub connected: Instant,
    state: Mutex<ClientState>,
}

/// What a connection changes about itself as it runs.
#[derive(Clone, Debug)]
pub struct ClientState {
    /// `CLIENT SETNAME`; empty when unset. Only printable ASCII without spaces is accepted.
    pub name: String,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`.
    pub library_name: String,
    pub library_version: String,
    /// The last command received, lowercase (`client|list` for subcommands, as Redis prints).
    pub command: String,
    pub last_active: Instant,
    /// 2 or 3.
    pub protocol_version: u8,
    /// Commands queued by MULTI, or `None` outside a transaction.
    pub queued_commands: Option<usize>,
    pub watched_keys: usize,
    pub readonly: bool,
}

/// Removes its client from the registry when dropped.
pub struct ClientGuard {
    registry: ClientRegistry,
    client: Arc<Client>,
}

impl ClientRegistry {
    pub fn new() -> ClientRegistry {
        ClientRegistry::default()
    }

    /// Registers a new client unless `clients_max` are already connected.
    pub fn register(
        &self,
        address: String,
        local_address: String,
        clients_max: usize,
    ) -> Option<ClientGuard> {
        let mut registry = self.lock();
        if registry.clients.len() >= clients_max {
            return None;
        }
        registry.last_id += 1;
        let now = Instant::now();
        let client = Arc::new(Client {
            id: registry.last_id,
            address,
            local_address,
            connected: now,
            state: Mutex::new(ClientState {
                name: String::new(),
                library_name: String::new(),
                library_version: String::new(),
                command: "NULL".to_string(),
                last_active: now,
                protocol_version: 2,
                queued_commands: None,
                watched_keys: 0,
                readonly: false,
            }),
        });
        let previous = registry.clients.insert(client.id, client.clone());
        assert!(previous.is_none(), "client ids are never reused");
        Some(ClientGuard { registry: self.clone(), client })
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Every client, by ascending id.
    pub fn list(&self) -> Vec<Arc<Client>> {
        self.lock().clients.values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding this lock leaves the map consistent (every change is one insert
        // or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::ops::Deref for ClientGuard {
    type Target = Arc<Client>;

    fn deref(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let removed = self.registry.lock().clients.remove(&self.client.id);
        assert!(removed.is_some(), "a registered client is removed exactly once");
    }
}

impl Client {
    /// Reads or changes this client's state.
    pub fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One `CLIENT LIST` line (without its line end), with Redis 7's field names and order.
    /// Fields this server has no notion of (file descriptors, buffer sizes) are reported as
    /// Redis reports an idle client's.
    pub fn describe(&self, now: Instant) -> String {
        let state = self.state().clone();
        let age_seconds = now.saturating_duration_since(self.connected).as_secs();
        let idle_seconds = now.saturating_duration_since(state.last_active).as_secs();
        let mut flags = String::new();
        if state.queued_commands.is_some() {
            flags.push('x');
        }
        if state.readonly {
            flags.push('r');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let multi = state.queued_commands.map_or(-1, |count| count as i64);
        let mut line = String::new();
        write!(
            line,
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 \
             ssub=0 multi={} watch={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 \
             obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.address,
            self.local_address,
            state.name,
            age_seconds,
            idle_seconds,
            flags,
            multi,
            state.watched_keys,
            state.command,
            state.protocol_version,
            state.library_name,
            state.library_version,
        )
        .expect("writing to a String cannot fail");
        line
    }
}

/// Server-wide counters for `INFO stats`.
#[derive(Default)]
pub struct ServerStats {
    connections_received: AtomicU64,
    commands_processed: AtomicU64,
    rejected_connections: AtomicU64,
}

impl ServerStats {
    pub fn new() -> ServerStats {
        ServerStats::default()
    }

    pub fn connection_received(&self) {
        self.connections_received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn command_processed(&self) {
        self.commands_processed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_rejected(&self) {
        self.rejected_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connections_received(&self) -> u64 {
        self.connections_received.load(Ordering::Relaxed)
    }

    pub fn commands_processed(&self) -> u64 {
        self.commands_processed.load(Ordering::Relaxed)
    }

    pub fn rejected_connections(&self) -> u64 {
        self.rejected_connections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_enforces_the_limit_and_forgets_dropped_clients() {
        // Goal: the limit counts live clients only, and ids keep increasing after removals.
        let registry = ClientRegistry::new();
        let first = registry.register("a:1".into(), "b:2".into(), 2).unwrap();
        let second = registry.register("a:3".into(), "b:2".into(), 2).unwrap();
        assert!(registry.register("a:4".into(), "b:2".into(), 2).is_none());
        assert_eq!((first.id, second.id), (1, 2));
        drop(first);
        assert_eq!(registry.len(), 1);
        let third = registry.register("a:5".into(), "b:2".into(), 2).unwrap();
        assert_eq!(third.id, 3);
        let ids: Vec<u64> = registry.list().iter().map(|client| client.id).collect();
        assert_eq!(ids, vec![2, 3]);
        third.state().name = "worker".into();
        let line = third.describe(Instant::now());
        assert!(line.starts_with("id=3 addr=a:5 laddr=b:2 fd=-1 name=worker age=0"), "{line}");
        assert!(line.ends_with("resp=2 lib-name= lib-ver="), "{line}");
    }
}
