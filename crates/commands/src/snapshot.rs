//! Snapshot format and the state digest.
//!
//! A snapshot is self-describing, versioned and checksummed. All integers are
//! little-endian `u64`; no `usize` reaches the bytes.
//!
//! ```text
//! magic            8 bytes  "COHORTKV"
//! format_version   u64      2 (version 1, the same without streams, is read)
//! clock            u64      version clock (WATCH versions survive restore)
//! deleted_version  u64
//! entry_count      u64
//! entry_count × entry:
//!   key            u64 length, bytes
//!   expires_at_ms  u64      0 = no TTL
//!   version        u64
//!   kind           u64      1 string, 2 hash, 3 list, 4 set, 5 stream
//!   string:        u64 length, bytes
//!   hash:          u64 count, count × (field, value) as length + bytes
//!   list, set:     u64 count, count × element as length + bytes
//!   stream:        (ids are two u64: ms, seq; blobs are length + bytes)
//!     last_id, first_id, max_deleted_id   ids
//!     entries_added                       u64
//!     entry_count u64, × (id, u64 item count (even, > 0), items as blobs)
//!     group_count u64, × group:
//!       name blob, last_id, entries_read u64 (u64::MAX = unknown)
//!       max_deliveries u64 (0 = no dead-letter policy), then key blob if > 0
//!       consumer_count u64, × (name blob, seen_time_ms u64,
//!                              active_time_ms u64 (u64::MAX = never))
//!       pending_count u64, × (id, consumer name blob, delivery_time_ms u64,
//!                             delivery_count u64)
//!     producer_count u64, × (name blob, last_seq u64, last id, used_at u64)
//!     producer_clock u64
//! checksum         u64      FNV-1a 64 of every byte before it
//! ```
//!
//! Entries are written in scan order. Restoring checks everything it reads
//! (lengths against the bytes left, no duplicate keys, no empty collections,
//! version bounds) and returns an error rather than trusting the input.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use crate::keyspace::{Entry, Fields, Items, Keyspace, Members, ScanKey, Text, Value};
use crate::streams::{Consumer, DeadLetter, Group, Pending, Producer, Stream, StreamId};

const MAGIC: &[u8; 8] = b"COHORTKV";
const FORMAT_VERSION: u64 = 2;
/// The format before streams: identical, minus kind 5.
const FORMAT_VERSION_WITHOUT_STREAMS: u64 = 1;
const KIND_STRING: u64 = 1;
const KIND_HASH: u64 = 2;
const KIND_LIST: u64 = 3;
const KIND_SET: u64 = 4;
const KIND_STREAM: u64 = 5;
/// `entries_read` and `active_time_ms` when absent.
const ABSENT: u64 = u64::MAX;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot is truncated")]
    Truncated,
    #[error("not a cohort keyspace snapshot")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u64),
    #[error("snapshot checksum mismatch")]
    ChecksumMismatch,
    #[error("corrupt snapshot: {0}")]
    Corrupt(&'static str),
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn blob(&mut self, blob: &[u8]) {
        self.u64(blob.len() as u64);
        self.bytes.extend_from_slice(blob);
    }

    fn id(&mut self, id: StreamId) {
        self.u64(id.ms);
        self.u64(id.seq);
    }

    fn stream(&mut self, stream: &Stream) {
        self.id(stream.last_id);
        self.id(stream.first_id);
        self.id(stream.max_deleted_id);
        self.u64(stream.entries_added);
        self.u64(stream.entries.len() as u64);
        for (id, items) in &stream.entries {
            self.id(*id);
            self.u64(items.len() as u64);
            items.iter().for_each(|item| self.blob(item));
        }
        self.u64(stream.groups.len() as u64);
        for (name, group) in &stream.groups {
            self.blob(name);
            self.id(group.last_id);
            self.u64(group.entries_read.unwrap_or(ABSENT));
            match &group.dead_letter {
                None => self.u64(0),
                Some(policy) => {
                    self.u64(policy.max_deliveries);
                    self.blob(&policy.key);
                }
            }
            self.u64(group.consumers.len() as u64);
            for (name, consumer) in &group.consumers {
                self.blob(name);
                self.u64(consumer.seen_time_ms);
                self.u64(consumer.active_time_ms.unwrap_or(ABSENT));
            }
            self.u64(group.pel.len() as u64);
            for (id, pending) in &group.pel {
                self.id(*id);
                self.blob(&pending.consumer);
                self.u64(pending.delivery_time_ms);
                self.u64(pending.delivery_count);
            }
        }
        self.u64(stream.producers.len() as u64);
        for (name, producer) in &stream.producers {
            self.blob(name);
            self.u64(producer.last_seq);
            self.id(producer.last_id);
            self.u64(producer.used_at);
        }
        self.u64(stream.producer_clock);
    }
}

pub(crate) fn write(keyspace: &Keyspace) -> Vec<u8> {
    let mut writer = Writer { bytes: Vec::new() };
    writer.bytes.extend_from_slice(MAGIC);
    writer.u64(FORMAT_VERSION);
    writer.u64(keyspace.clock);
    writer.u64(keyspace.deleted_version);
    writer.u64(keyspace.map.len() as u64);
    for (key, entry) in &keyspace.map {
        writer.blob(key.name());
        writer.u64(entry.expires_at_ms.map_or(0, NonZeroU64::get));
        writer.u64(entry.version);
        match &entry.value {
            Value::String(text) => {
                writer.u64(KIND_STRING);
                writer.blob(text.as_bytes());
            }
            Value::Hash(fields) => {
                writer.u64(KIND_HASH);
                writer.u64(fields.len() as u64);
                for (field, value) in fields.iter() {
                    writer.blob(field.name());
                    writer.blob(value);
                }
            }
            Value::List(items) => {
                writer.u64(KIND_LIST);
                writer.u64(items.len() as u64);
                items.iter().for_each(|item| writer.blob(item));
            }
            Value::Set(members) => {
                writer.u64(KIND_SET);
                writer.u64(members.len() as u64);
                members.iter().for_each(|member| writer.blob(member.name()));
            }
            Value::Stream(stream) => {
                writer.u64(KIND_STREAM);
                writer.stream(stream);
            }
        }
    }
    let checksum = fnv1a(&writer.bytes);
    writer.u64(checksum);
    writer.bytes
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: u64) -> Result<&'a [u8], SnapshotError> {
        if length > self.bytes.len() as u64 {
            return Err(SnapshotError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(length as usize);
        self.bytes = rest;
        Ok(taken)
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
    }

    fn blob(&mut self) -> Result<&'a [u8], SnapshotError> {
        let length = self.u64()?;
        self.take(length)
    }

    /// An element count, bounded by the bytes left (each element takes at
    /// least `element_bytes_min`), so corrupt counts cannot allocate.
    fn count(&mut self, element_bytes_min: u64) -> Result<u64, SnapshotError> {
        let count = self.u64()?;
        if count.saturating_mul(element_bytes_min) > self.bytes.len() as u64 {
            return Err(SnapshotError::Truncated);
        }
        Ok(count)
    }
}

pub(crate) fn read(bytes: &[u8]) -> Result<Keyspace, SnapshotError> {
    if bytes.len() < MAGIC.len() + 8 {
        return Err(SnapshotError::Truncated);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 8);
    if fnv1a(body) != u64::from_le_bytes(checksum.try_into().expect("eight bytes")) {
        return Err(SnapshotError::ChecksumMismatch);
    }
    let mut reader = Reader { bytes: &body[MAGIC.len()..] };
    let version = reader.u64()?;
    if version != FORMAT_VERSION && version != FORMAT_VERSION_WITHOUT_STREAMS {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let mut keyspace =
        Keyspace { clock: reader.u64()?, deleted_version: reader.u64()?, ..Keyspace::default() };
    if keyspace.deleted_version > keyspace.clock
        || keyspace.clock >= crate::keyspace::EXPIRED_VERSION_BIT
    {
        return Err(SnapshotError::Corrupt("version clock"));
    }
    let entry_count = reader.count(40)?;
    let mut map = BTreeMap::new();
    for _ in 0..entry_count {
        let key = ScanKey::new(reader.blob()?);
        let expires_at_ms = NonZeroU64::new(reader.u64()?);
        let version = reader.u64()?;
        if version > keyspace.clock {
            return Err(SnapshotError::Corrupt("entry version above the clock"));
        }
        let value = read_value(&mut reader, version)?;
        if value.is_empty_collection() {
            return Err(SnapshotError::Corrupt("empty collection"));
        }
        if let Some(at) = expires_at_ms {
            keyspace.expiries.insert((at.get(), key.clone()));
        }
        if map.insert(key, Entry { value, expires_at_ms, version }).is_some() {
            return Err(SnapshotError::Corrupt("duplicate key"));
        }
    }
    if !reader.bytes.is_empty() {
        return Err(SnapshotError::Corrupt("trailing bytes"));
    }
    keyspace.map = map;
    assert!(keyspace.expiry_index_consistent());
    Ok(keyspace)
}

fn read_value(reader: &mut Reader<'_>, version: u64) -> Result<Value, SnapshotError> {
    match reader.u64()? {
        KIND_STREAM if version >= FORMAT_VERSION => {
            Ok(Value::Stream(Box::new(read_stream(reader)?)))
        }
        KIND_STRING => Ok(Value::String(Text::new(reader.blob()?))),
        KIND_HASH => {
            let count = reader.count(16)?;
            let mut fields = Fields::new();
            for _ in 0..count {
                let field = ScanKey::new(reader.blob()?);
                if fields.insert(field, reader.blob()?.into()).is_some() {
                    return Err(SnapshotError::Corrupt("duplicate hash field"));
                }
            }
            Ok(Value::Hash(Box::new(fields)))
        }
        KIND_LIST => {
            let count = reader.count(8)?;
            let mut items = Items::with_capacity(count as usize);
            for _ in 0..count {
                items.push_back(reader.blob()?.into());
            }
            Ok(Value::List(Box::new(items)))
        }
        KIND_SET => {
            let count = reader.count(8)?;
            let mut members = Members::new();
            for _ in 0..count {
                if !members.insert(ScanKey::new(reader.blob()?)) {
                    return Err(SnapshotError::Corrupt("duplicate set member"));
                }
            }
            Ok(Value::Set(Box::new(members)))
        }
        _ => Err(SnapshotError::Corrupt("unknown value kind")),
    }
}

impl Reader<'_> {
    fn id(&mut self) -> Result<StreamId, SnapshotError> {
        Ok(StreamId::new(self.u64()?, self.u64()?))
    }

    fn boxed(&mut self) -> Result<Box<[u8]>, SnapshotError> {
        Ok(self.blob()?.into())
    }
}

fn corrupt<T>(what: &'static str) -> Result<T, SnapshotError> {
    Err(SnapshotError::Corrupt(what))
}

fn read_stream(reader: &mut Reader<'_>) -> Result<Stream, SnapshotError> {
    let mut stream = Stream {
        last_id: reader.id()?,
        first_id: reader.id()?,
        max_deleted_id: reader.id()?,
        entries_added: reader.u64()?,
        ..Stream::default()
    };
    let entry_count = reader.count(24)?;
    for _ in 0..entry_count {
        let id = reader.id()?;
        let item_count = reader.count(8)?;
        if item_count == 0 || item_count % 2 != 0 {
            return corrupt("stream entry field count");
        }
        let items = (0..item_count).map(|_| reader.boxed()).collect::<Result<_, _>>()?;
        if id > stream.last_id || stream.entries.insert(id, items).is_some() {
            return corrupt("stream entry id");
        }
    }
    if stream.entries.len() as u64 > stream.entries_added {
        return corrupt("stream entries added");
    }
    let group_count = reader.count(48)?;
    for _ in 0..group_count {
        let name = reader.boxed()?;
        let group = read_group(reader)?;
        if stream.groups.insert(name, group).is_some() {
            return corrupt("duplicate stream group");
        }
    }
    let producer_count = reader.count(40)?;
    for _ in 0..producer_count {
        let name = reader.boxed()?;
        let producer =
            Producer { last_seq: reader.u64()?, last_id: reader.id()?, used_at: reader.u64()? };
        if stream.producers.insert(name, producer).is_some() {
            return corrupt("duplicate stream producer");
        }
    }
    stream.producer_clock = reader.u64()?;
    if stream.producers.len() > crate::streams::PRODUCERS_MAX
        || stream.producers.values().any(|producer| producer.used_at > stream.producer_clock)
    {
        return corrupt("stream producers");
    }
    Ok(stream)
}

fn read_group(reader: &mut Reader<'_>) -> Result<Group, SnapshotError> {
    let last_id = reader.id()?;
    let entries_read = Some(reader.u64()?).filter(|read| *read != ABSENT);
    let max_deliveries = reader.u64()?;
    let dead_letter = match max_deliveries {
        0 => None,
        _ => Some(DeadLetter { max_deliveries, key: reader.boxed()? }),
    };
    let mut group = Group { last_id, entries_read, dead_letter, ..Group::default() };
    let consumer_count = reader.count(24)?;
    for _ in 0..consumer_count {
        let name = reader.boxed()?;
        let seen_time_ms = reader.u64()?;
        let active_time_ms = Some(reader.u64()?).filter(|at| *at != ABSENT);
        let consumer = Consumer { seen_time_ms, active_time_ms, ..Consumer::default() };
        if group.consumers.insert(name, consumer).is_some() {
            return corrupt("duplicate stream consumer");
        }
    }
    let pending_count = reader.count(40)?;
    for _ in 0..pending_count {
        let id = reader.id()?;
        let consumer = reader.boxed()?;
        let pending =
            Pending { delivery_time_ms: reader.u64()?, delivery_count: reader.u64()?, consumer };
        let Some(owner) = group.consumers.get_mut(&pending.consumer) else {
            return corrupt("pending entry without its consumer");
        };
        owner.pending.insert(id);
        if group.pel.insert(id, pending).is_some() {
            return corrupt("duplicate pending entry");
        }
    }
    assert!(group.is_consistent());
    Ok(group)
}

/// Order-independent digest: a wrapping sum of one hash per entry, each over
/// the entry's bytes as the snapshot encodes them.
pub(crate) fn digest(keyspace: &Keyspace) -> u64 {
    let mut total = crate::random::mix64(keyspace.clock ^ keyspace.deleted_version.rotate_left(32));
    for (key, entry) in &keyspace.map {
        let mut writer = Writer { bytes: Vec::new() };
        writer.blob(key.name());
        writer.u64(entry.expires_at_ms.map_or(0, NonZeroU64::get));
        writer.u64(entry.version);
        match &entry.value {
            Value::String(text) => writer.blob(text.as_bytes()),
            Value::Hash(fields) => fields.iter().for_each(|(field, value)| {
                writer.blob(field.name());
                writer.blob(value);
            }),
            Value::List(items) => items.iter().for_each(|item| writer.blob(item)),
            Value::Set(members) => members.iter().for_each(|member| writer.blob(member.name())),
            Value::Stream(stream) => writer.stream(stream),
        }
        writer.bytes.extend_from_slice(entry.value.type_name().as_bytes());
        total = total.wrapping_add(crate::random::mix64(fnv1a(&writer.bytes)));
    }
    total
}
