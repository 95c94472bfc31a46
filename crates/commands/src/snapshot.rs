//! Snapshot format and the state digest.
//!
//! A snapshot is self-describing, versioned and checksummed. All integers are
//! little-endian `u64`; no `usize` reaches the bytes.
//!
//! ```text
//! magic            8 bytes  "COHORTKV"
//! format_version   u64      1
//! clock            u64      version clock (WATCH versions survive restore)
//! deleted_version  u64
//! entry_count      u64
//! entry_count × entry:
//!   key            u64 length, bytes
//!   expires_at_ms  u64      0 = no TTL
//!   version        u64
//!   kind           u64      1 string, 2 hash, 3 list, 4 set
//!   string:        u64 length, bytes
//!   hash:          u64 count, count × (field, value) as length + bytes
//!   list, set:     u64 count, count × element as length + bytes
//! checksum         u64      FNV-1a 64 of every byte before it
//! ```
//!
//! Entries are written in scan order. Restoring checks everything it reads
//! (lengths against the bytes left, no duplicate keys, no empty collections,
//! version bounds) and returns an error rather than trusting the input.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use crate::keyspace::{Entry, Fields, Items, Keyspace, Members, ScanKey, Text, Value};

const MAGIC: &[u8; 8] = b"COHORTKV";
const FORMAT_VERSION: u64 = 1;
const KIND_STRING: u64 = 1;
const KIND_HASH: u64 = 2;
const KIND_LIST: u64 = 3;
const KIND_SET: u64 = 4;

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
    if version != FORMAT_VERSION {
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
        let value = read_value(&mut reader)?;
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

fn read_value(reader: &mut Reader<'_>) -> Result<Value, SnapshotError> {
    match reader.u64()? {
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
        }
        writer.bytes.extend_from_slice(entry.value.type_name().as_bytes());
        total = total.wrapping_add(crate::random::mix64(fnv1a(&writer.bytes)));
    }
    total
}
