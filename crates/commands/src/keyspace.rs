//! The keyspace: one ordered map from key to entry, ordered by a fixed 64-bit
//! hash of the key and then the key itself (the *scan order*).
//!
//! Why hash order: SCAN's cursor is simply the hash position where the next
//! call continues, so it means the same thing on every replica and survives a
//! failover; keys present for a whole iteration are returned at least once
//! whatever is added or removed meanwhile (they never move). Random picks
//! (RANDOMKEY, SPOP …) draw a hash position from the entry's seed. Hash
//! fields and set members use the same [`ScanKey`] order, so HSCAN and SSCAN
//! work the same way and every reply's order is deterministic.
//!
//! The hash is FNV-1a 64 followed by the SplitMix64 finalizer (to spread short
//! keys over the whole range). It is part of the snapshot-visible behaviour
//! (cursors) and must never change.
//!
//! Versions (for WATCH): one counter, `clock`, is bumped on every
//! modification and stamped on the entry modified. A missing key's version is
//! the clock value of the latest deletion of any key, so deleting or
//! re-creating a watched key always changes its version (deleting other keys
//! may abort a transaction spuriously, which Redis also allows, e.g. on
//! FLUSHALL). A key that is logically expired but not yet purged reports its
//! version with [`EXPIRED_VERSION_BIT`] set.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroU64;
use std::ops::Bound;

use crate::random::mix64;

/// Set on a version when the key exists but has expired at the time asked.
pub(crate) const EXPIRED_VERSION_BIT: u64 = 1 << 63;

pub(crate) fn scan_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

/// A key (or field, or member) with its scan hash, ordered by (hash, bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScanKey {
    hash: u64,
    name: Box<[u8]>,
}

impl ScanKey {
    pub(crate) fn new(name: &[u8]) -> ScanKey {
        ScanKey { hash: scan_hash(name), name: name.into() }
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }
}

/// The view both [`ScanKey`] and a borrowed [`Probe`] share, so maps keyed by
/// `ScanKey` can be searched without allocating.
pub(crate) trait ScanOrder {
    fn position(&self) -> (u64, &[u8]);
}

impl ScanOrder for ScanKey {
    fn position(&self) -> (u64, &[u8]) {
        (self.hash, &self.name)
    }
}

/// A borrowed search key.
pub(crate) struct Probe<'a> {
    hash: u64,
    name: &'a [u8],
}

impl<'a> Probe<'a> {
    pub(crate) fn new(name: &'a [u8]) -> Probe<'a> {
        Probe { hash: scan_hash(name), name }
    }

    /// The first position at or after `hash`.
    pub(crate) fn start(hash: u64) -> Probe<'static> {
        Probe { hash, name: b"" }
    }
}

impl ScanOrder for Probe<'_> {
    fn position(&self) -> (u64, &[u8]) {
        (self.hash, self.name)
    }
}

impl<'a> Borrow<dyn ScanOrder + 'a> for ScanKey {
    fn borrow(&self) -> &(dyn ScanOrder + 'a) {
        self
    }
}

impl PartialEq for dyn ScanOrder + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.position() == other.position()
    }
}

impl Eq for dyn ScanOrder + '_ {}

impl PartialOrd for dyn ScanOrder + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn ScanOrder + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.position().cmp(&other.position())
    }
}

impl PartialOrd for ScanKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScanKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.position().cmp(&other.position())
    }
}

/// One element at a random hash position: the first at or after it,
/// wrapping around. Not exactly uniform (an element's chance is the hash gap
/// before it, as with Redis's own bucket sampling), but O(log n) and
/// deterministic for a given generator.
pub(crate) fn pick_one<'m, V>(
    map: &'m BTreeMap<ScanKey, V>,
    rng: &mut crate::random::Rng,
) -> Option<(&'m ScanKey, &'m V)> {
    range_from(map, rng.next_u64()).next().or_else(|| map.iter().next())
}

pub(crate) fn set_pick_one<'m>(
    set: &'m BTreeSet<ScanKey>,
    rng: &mut crate::random::Rng,
) -> Option<&'m ScanKey> {
    set_range_from(set, rng.next_u64()).next().or_else(|| set.iter().next())
}

/// Elements at or after hash position `cursor`, in scan order.
pub(crate) fn range_from<V>(
    map: &BTreeMap<ScanKey, V>,
    cursor: u64,
) -> impl Iterator<Item = (&ScanKey, &V)> {
    let probe = Probe::start(cursor);
    let start: &dyn ScanOrder = &probe;
    map.range::<dyn ScanOrder, _>((Bound::Included(start), Bound::Unbounded))
}

pub(crate) fn set_range_from(
    set: &BTreeSet<ScanKey>,
    cursor: u64,
) -> impl Iterator<Item = &ScanKey> {
    let probe = Probe::start(cursor);
    let start: &dyn ScanOrder = &probe;
    set.range::<dyn ScanOrder, _>((Bound::Included(start), Bound::Unbounded))
}

pub(crate) fn map_get<'m, V>(map: &'m BTreeMap<ScanKey, V>, name: &[u8]) -> Option<&'m V> {
    let probe = Probe::new(name);
    map.get(&probe as &dyn ScanOrder)
}

pub(crate) fn map_get_mut<'m, V>(
    map: &'m mut BTreeMap<ScanKey, V>,
    name: &[u8],
) -> Option<&'m mut V> {
    let probe = Probe::new(name);
    map.get_mut(&probe as &dyn ScanOrder)
}

pub(crate) fn map_remove<V>(map: &mut BTreeMap<ScanKey, V>, name: &[u8]) -> Option<V> {
    let probe = Probe::new(name);
    map.remove(&probe as &dyn ScanOrder)
}

pub(crate) fn set_contains(set: &BTreeSet<ScanKey>, name: &[u8]) -> bool {
    let probe = Probe::new(name);
    set.contains(&probe as &dyn ScanOrder)
}

pub(crate) fn set_remove(set: &mut BTreeSet<ScanKey>, name: &[u8]) -> bool {
    let probe = Probe::new(name);
    set.remove(&probe as &dyn ScanOrder)
}

/// Longest string value kept inline in the entry, without a heap allocation.
pub(crate) const INLINE_BYTES_MAX: usize = 22;

/// A string value: short ones inline (most keys in practice), long ones on
/// the heap in a growable buffer so APPEND is amortized O(1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    Inline { length: u8, bytes: [u8; INLINE_BYTES_MAX] },
    Heap(Vec<u8>),
}

impl Text {
    pub(crate) fn new(bytes: &[u8]) -> Text {
        if bytes.len() <= INLINE_BYTES_MAX {
            let mut inline = [0u8; INLINE_BYTES_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            Text::Inline { length: bytes.len() as u8, bytes: inline }
        } else {
            Text::Heap(bytes.to_vec())
        }
    }

    pub(crate) fn from_vec(bytes: Vec<u8>) -> Text {
        if bytes.len() <= INLINE_BYTES_MAX {
            Text::new(&bytes)
        } else {
            Text::Heap(bytes)
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { length, bytes } => &bytes[..usize::from(*length)],
            Text::Heap(bytes) => bytes,
        }
    }

    /// The value as a growable buffer, moving it to the heap if inline.
    pub(crate) fn make_mut(&mut self) -> &mut Vec<u8> {
        if let Text::Inline { .. } = self {
            *self = Text::Heap(self.as_bytes().to_vec());
        }
        match self {
            Text::Heap(bytes) => bytes,
            Text::Inline { .. } => unreachable!("converted above"),
        }
    }
}

pub(crate) type Fields = BTreeMap<ScanKey, Box<[u8]>>;
pub(crate) type Items = VecDeque<Box<[u8]>>;
pub(crate) type Members = BTreeSet<ScanKey>;

/// A value. Collections are boxed so the common string entry stays small.
/// Invariant: a stored hash, list or set is never empty (Redis deletes the
/// key when its last element goes); a stream may be empty, as in Redis (it
/// keeps its last id and groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    String(Text),
    Hash(Box<Fields>),
    List(Box<Items>),
    Set(Box<Members>),
    Stream(Box<crate::streams::Stream>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Stream(_) => "stream",
        }
    }

    pub(crate) fn is_empty_collection(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::Hash(fields) => fields.is_empty(),
            Value::List(items) => items.is_empty(),
            Value::Set(members) => members.is_empty(),
            Value::Stream(_) => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    /// Absolute expiry in ms since the epoch (leader time); the key is alive
    /// while `now_ms <= expires_at_ms`, as in Redis's `keyIsExpired`.
    pub(crate) expires_at_ms: Option<NonZeroU64>,
    pub(crate) version: u64,
}

impl Entry {
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expires_at_ms, Some(at) if now_ms > at.get())
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Keyspace {
    pub(crate) map: BTreeMap<ScanKey, Entry>,
    /// Bumped on every modification; see the module documentation.
    pub(crate) clock: u64,
    /// `clock` at the latest deletion: the version of every missing key.
    pub(crate) deleted_version: u64,
    /// Every key with a TTL, by expiry time: lets the leader find expired
    /// keys without walking the keyspace. Kept in step with the entries'
    /// `expires_at_ms` by the methods below, the only writers of it.
    pub(crate) expiries: BTreeSet<(u64, ScanKey)>,
}

impl Keyspace {
    fn tick(&mut self) -> u64 {
        assert!(self.clock < EXPIRED_VERSION_BIT - 1, "version clock exhausted");
        self.clock += 1;
        self.clock
    }

    /// The stored entry, expired or not.
    pub(crate) fn map_entry(&self, key: &[u8]) -> Option<&Entry> {
        map_get(&self.map, key)
    }

    /// The entry if it exists and has not expired at `now_ms`.
    pub(crate) fn live(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        map_get(&self.map, key).filter(|entry| !entry.is_expired(now_ms))
    }

    /// The live entry for modification. An expired entry is purged first (a
    /// deterministic deletion: every replica applies it at the same log
    /// time). Callers that change the entry call [`Keyspace::touch`].
    pub(crate) fn live_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        if map_get(&self.map, key).is_some_and(|entry| entry.is_expired(now_ms)) {
            self.remove(key);
        }
        map_get_mut(&mut self.map, key)
    }

    /// Stores `value` under `key`, replacing any previous entry.
    pub(crate) fn put(&mut self, key: &[u8], value: Value, expires_at_ms: Option<NonZeroU64>) {
        assert!(!value.is_empty_collection());
        let version = self.tick();
        let entry = Entry { value, expires_at_ms: None, version };
        match map_get_mut(&mut self.map, key) {
            Some(existing) => {
                let old_expiry = existing.expires_at_ms;
                *existing = entry;
                if let Some(at) = old_expiry {
                    self.expiries.remove(&(at.get(), ScanKey::new(key)));
                }
            }
            None => {
                self.map.insert(ScanKey::new(key), entry);
            }
        }
        self.set_expiry(key, expires_at_ms);
    }

    /// Changes the TTL of an existing key (keeping its value and version;
    /// callers that change the TTL also call [`Keyspace::touch`]).
    pub(crate) fn set_expiry(&mut self, key: &[u8], expires_at_ms: Option<NonZeroU64>) {
        let entry = map_get_mut(&mut self.map, key).expect("key exists");
        let old = std::mem::replace(&mut entry.expires_at_ms, expires_at_ms);
        if old == expires_at_ms {
            return;
        }
        if let Some(at) = old {
            let removed = self.expiries.remove(&(at.get(), ScanKey::new(key)));
            assert!(removed, "expiry index out of step");
        }
        if let Some(at) = expires_at_ms {
            self.expiries.insert((at.get(), ScanKey::new(key)));
        }
    }

    /// Keys expired at `now_ms`, soonest first, at most `limit`.
    pub(crate) fn expired(&self, now_ms: u64, limit: usize) -> impl Iterator<Item = &[u8]> {
        self.expiries
            .iter()
            .take_while(move |(at, _)| now_ms > *at)
            .take(limit)
            .map(|(_, k)| k.name())
    }

    /// Checks the expiry index against the entries (tests and restore).
    pub(crate) fn expiry_index_consistent(&self) -> bool {
        let volatile = self.map.values().filter(|entry| entry.expires_at_ms.is_some()).count();
        volatile == self.expiries.len()
            && self.expiries.iter().all(|(at, key)| {
                map_get(&self.map, key.name()).and_then(|entry| entry.expires_at_ms)
                    == NonZeroU64::new(*at)
            })
    }

    /// The live entry for modification, created with `empty` (an empty
    /// collection, no TTL) if missing. The caller must fill it and then call
    /// [`Keyspace::touch`], which drops it again if it stayed empty.
    pub(crate) fn live_or_create(&mut self, key: &[u8], now_ms: u64, empty: Value) -> &mut Entry {
        if self.live_mut(key, now_ms).is_none() {
            assert!(empty.is_empty_collection());
            let version = self.tick();
            let entry = Entry { value: empty, expires_at_ms: None, version };
            self.map.insert(ScanKey::new(key), entry);
        }
        map_get_mut(&mut self.map, key).expect("present")
    }

    /// Removes the entry, expired or not.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let removed = map_remove(&mut self.map, key);
        if let Some(entry) = &removed {
            if let Some(at) = entry.expires_at_ms {
                self.expiries.remove(&(at.get(), ScanKey::new(key)));
            }
            self.deleted_version = self.tick();
        }
        removed
    }

    /// Removes the entry if live; true if it was.
    pub(crate) fn delete_live(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.live_mut(key, now_ms).is_some() && self.remove(key).is_some()
    }

    /// Records an in-place modification of `key`: a new version, or the
    /// key's deletion if a collection became empty.
    pub(crate) fn touch(&mut self, key: &[u8]) {
        let version = self.tick();
        let entry = map_get_mut(&mut self.map, key).expect("touched key exists");
        if entry.value.is_empty_collection() {
            self.remove(key);
        } else {
            entry.version = version;
        }
    }

    pub(crate) fn clear(&mut self) {
        if !self.map.is_empty() {
            self.map.clear();
            self.expiries.clear();
            self.deleted_version = self.tick();
        }
    }

    pub(crate) fn version(&self, key: &[u8], now_ms: u64) -> u64 {
        match map_get(&self.map, key) {
            None => self.deleted_version,
            Some(entry) if entry.is_expired(now_ms) => entry.version | EXPIRED_VERSION_BIT,
            Some(entry) => entry.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        // Goal: the per-key footprint stays lean (1M small keys well under 2x Redis).
        assert!(std::mem::size_of::<Text>() <= 32, "{}", std::mem::size_of::<Text>());
        assert!(std::mem::size_of::<Entry>() <= 48, "{}", std::mem::size_of::<Entry>());
        assert!(std::mem::size_of::<ScanKey>() <= 24);
    }

    #[test]
    fn probe_lookup_matches_owned_key() {
        // Goal: borrowed probes find exactly the owned keys and range scans start at a hash.
        let mut map = BTreeMap::new();
        for name in [&b"a"[..], b"b", b"c"] {
            map.insert(ScanKey::new(name), name.to_vec());
        }
        assert_eq!(map_get(&map, b"b"), Some(&b"b".to_vec()));
        assert_eq!(map_get(&map, b"d"), None);
        assert_eq!(range_from(&map, 0).count(), 3);
        let last = map.keys().last().unwrap().hash();
        assert_eq!(range_from(&map, last).count(), 1);
    }

    #[test]
    fn versions_change_on_every_modification() {
        // Goal: put, touch, delete and expiry each change the version WATCH sees.
        let mut keyspace = Keyspace::default();
        let missing = keyspace.version(b"k", 0);
        keyspace.put(b"k", Value::String(Text::new(b"v")), NonZeroU64::new(100));
        let created = keyspace.version(b"k", 0);
        assert_ne!(missing, created);
        keyspace.touch(b"k");
        let touched = keyspace.version(b"k", 0);
        assert_ne!(created, touched);
        assert_ne!(touched, keyspace.version(b"k", 101));
        assert!(keyspace.live_mut(b"k", 101).is_none());
        let deleted = keyspace.version(b"k", 101);
        assert_ne!(deleted, missing);
        assert_ne!(deleted, touched);
    }
}
