//! Byte layouts of segment headers, log records and snapshot files.
//!
//! All integers are fixed-width little-endian; `usize` never reaches disk.
//! The layouts are drawn in `docs/STORAGE.md`. Decoding is bounded: every
//! count is checked against the bytes that remain before anything is
//! allocated, so a damaged length can never make the decoder allocate
//! without limit.

use bytes::Bytes;
use consensus::{Entry, HardState, Index, Membership, Payload, Term};

use crate::crc32c::{crc32c, Crc32c};
use crate::GroupId;

pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_MAGIC: [u8; 8] = *b"COHORTWL";
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"COHORTSN";
/// magic (8) | version u32 | first sequence u64 | crc32c u32.
pub const SEGMENT_HEADER_BYTES: usize = 24;
/// length u32 | crc32c u32.
pub const RECORD_PREFIX_BYTES: usize = 8;
/// kind u8 | group u64: the least a record's `length` can be.
pub const RECORD_BODY_BYTES_MIN: u32 = 9;

const KIND_ENTRIES: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT_MARKER: u8 = 3;
const KIND_TRUNCATE: u8 = 4;

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

/// Records that a group's log up to `index` is replaced by the snapshot file
/// named after `(group, index, term)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMarker {
    pub index: Index,
    pub term: Term,
    pub membership: Membership,
    /// Whether the entries after `index` are dropped as well. A local
    /// compaction keeps them; a snapshot installed from the leader keeps
    /// them only if the log held the snapshot's last entry (same index and
    /// term), Raft §7. That decision is taken when the marker is written and
    /// recorded here, so replay never depends on entries that compaction may
    /// since have deleted.
    pub replaces_log: bool,
}

/// A decoded log record's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Contiguous entries. If the first index is at or below the group's
    /// last index, they replace the log from there on.
    Entries(Vec<Entry>),
    HardState(HardState),
    SnapshotMarker(SnapshotMarker),
    /// Drops the group's entries from this index on (a replacement that
    /// brings no new entries after the snapshot).
    Truncate(Index),
}

// ---- encoding -------------------------------------------------------------

fn put_u32(buffer: &mut Vec<u8>, value: u32) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(buffer: &mut Vec<u8>, value: u64) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

fn put_count(buffer: &mut Vec<u8>, count: usize) {
    put_u32(buffer, u32::try_from(count).expect("count fits in u32"));
}

fn put_membership(buffer: &mut Vec<u8>, membership: &Membership) {
    put_count(buffer, membership.voters.len());
    membership.voters.iter().for_each(|&node| put_u64(buffer, node));
    put_count(buffer, membership.learners.len());
    membership.learners.iter().for_each(|&node| put_u64(buffer, node));
}

/// Bytes an entry takes inside an Entries record.
pub fn entry_encoded_bytes(entry: &Entry) -> u64 {
    17 + match &entry.payload {
        Payload::Noop => 0,
        Payload::Command(command) => 4 + command.len() as u64,
        Payload::Membership(membership) => {
            8 + 8 * (membership.voters.len() + membership.learners.len()) as u64
        }
    }
}

fn put_entry(buffer: &mut Vec<u8>, entry: &Entry) {
    put_u64(buffer, entry.index);
    put_u64(buffer, entry.term);
    match &entry.payload {
        Payload::Noop => buffer.push(PAYLOAD_NOOP),
        Payload::Command(command) => {
            buffer.push(PAYLOAD_COMMAND);
            put_count(buffer, command.len());
            buffer.extend_from_slice(command);
        }
        Payload::Membership(membership) => {
            buffer.push(PAYLOAD_MEMBERSHIP);
            put_membership(buffer, membership);
        }
    }
}

pub fn encode_segment_header(first_sequence: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    header.extend_from_slice(&SEGMENT_MAGIC);
    put_u32(&mut header, FORMAT_VERSION);
    put_u64(&mut header, first_sequence);
    let crc = crc32c(&header);
    put_u32(&mut header, crc);
    header.try_into().expect("header size")
}

/// Appends one framed record to `buffer`; returns its size in bytes.
pub fn encode_record(buffer: &mut Vec<u8>, group: GroupId, record: &Record) -> u64 {
    let start = buffer.len();
    buffer.extend_from_slice(&[0u8; RECORD_PREFIX_BYTES]);
    match record {
        Record::Entries(entries) => {
            assert!(!entries.is_empty(), "an Entries record holds at least one entry");
            assert!(
                entries.windows(2).all(|pair| pair[1].index == pair[0].index + 1),
                "entries of a record must be contiguous"
            );
            buffer.push(KIND_ENTRIES);
            put_u64(buffer, group);
            put_count(buffer, entries.len());
            entries.iter().for_each(|entry| put_entry(buffer, entry));
        }
        Record::HardState(hard_state) => {
            buffer.push(KIND_HARD_STATE);
            put_u64(buffer, group);
            put_u64(buffer, hard_state.term);
            put_u64(buffer, hard_state.vote);
            put_u64(buffer, hard_state.commit);
        }
        Record::SnapshotMarker(marker) => {
            buffer.push(KIND_SNAPSHOT_MARKER);
            put_u64(buffer, group);
            put_u64(buffer, marker.index);
            put_u64(buffer, marker.term);
            buffer.push(u8::from(marker.replaces_log));
            put_membership(buffer, &marker.membership);
        }
        Record::Truncate(index) => {
            buffer.push(KIND_TRUNCATE);
            put_u64(buffer, group);
            put_u64(buffer, *index);
        }
    }
    let body_bytes = buffer.len() - start - RECORD_PREFIX_BYTES;
    let length = u32::try_from(body_bytes).expect("record length fits in u32");
    buffer[start..start + 4].copy_from_slice(&length.to_le_bytes());
    let mut crc = Crc32c::new();
    crc.update(&buffer[start..start + 4]);
    crc.update(&buffer[start + RECORD_PREFIX_BYTES..]);
    let crc = crc.finish();
    buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    (buffer.len() - start) as u64
}

// ---- decoding -------------------------------------------------------------

/// A bounded cursor over untrusted bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if count > self.remaining() {
            return Err(format!("needs {count} bytes, {} remain", self.remaining()));
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A count of items each at least `item_bytes_min` long, checked against
    /// what remains.
    fn count(&mut self, item_bytes_min: usize) -> Result<usize, String> {
        let count = self.u32()? as usize;
        if count.saturating_mul(item_bytes_min) > self.remaining() {
            return Err(format!("count {count} exceeds the remaining {} bytes", self.remaining()));
        }
        Ok(count)
    }

    fn membership(&mut self) -> Result<Membership, String> {
        let mut membership = Membership::default();
        for _ in 0..self.count(8)? {
            membership.voters.insert(self.u64()?);
        }
        for _ in 0..self.count(8)? {
            membership.learners.insert(self.u64()?);
        }
        Ok(membership)
    }

    pub fn finish(&self) -> Result<(), String> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(format!("{extra} unexpected trailing bytes")),
        }
    }
}

/// Decodes a segment header, returning its first sequence number.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err(format!("segment header needs {SEGMENT_HEADER_BYTES} bytes"));
    }
    let mut reader = Reader::new(&bytes[..SEGMENT_HEADER_BYTES]);
    if reader.take(8)? != SEGMENT_MAGIC {
        return Err("bad segment magic".to_string());
    }
    let version = reader.u32()?;
    let first_sequence = reader.u64()?;
    let crc = reader.u32()?;
    if crc != crc32c(&bytes[..SEGMENT_HEADER_BYTES - 4]) {
        return Err("segment header checksum mismatch".to_string());
    }
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    Ok(first_sequence)
}

/// Checks the frame at the start of `bytes`; returns its total size and the
/// body (kind, group, payload) if its length and checksum are good. An error
/// means the frame is cut short or damaged, which is what a torn write
/// leaves behind (whether it is one depends on what follows).
pub fn check_frame(bytes: &[u8], body_bytes_max: u32) -> Result<(usize, &[u8]), String> {
    if bytes.len() < RECORD_PREFIX_BYTES {
        return Err("incomplete record header".to_string());
    }
    let length = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if !(RECORD_BODY_BYTES_MIN..=body_bytes_max).contains(&length) {
        return Err(format!("implausible record length {length}"));
    }
    let total = RECORD_PREFIX_BYTES + length as usize;
    if total > bytes.len() {
        return Err(format!(
            "record of {total} bytes runs past the end ({} bytes remain)",
            bytes.len()
        ));
    }
    let stored_crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let body = &bytes[RECORD_PREFIX_BYTES..total];
    let mut crc = Crc32c::new();
    crc.update(&bytes[0..4]);
    crc.update(body);
    if crc.finish() != stored_crc {
        return Err("record checksum mismatch".to_string());
    }
    Ok((total, body))
}

/// Decodes a record body whose checksum was verified.
pub fn decode_body(body: &[u8]) -> Result<(GroupId, Record), String> {
    let mut reader = Reader::new(body);
    let kind = reader.u8()?;
    let group = reader.u64()?;
    let record = match kind {
        KIND_ENTRIES => {
            let count = reader.count(17)?;
            if count == 0 {
                return Err("empty Entries record".to_string());
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(decode_entry(&mut reader)?);
            }
            if !entries.windows(2).all(|pair| pair[1].index == pair[0].index.wrapping_add(1)) {
                return Err("entries of a record are not contiguous".to_string());
            }
            Record::Entries(entries)
        }
        KIND_HARD_STATE => Record::HardState(HardState {
            term: reader.u64()?,
            vote: reader.u64()?,
            commit: reader.u64()?,
        }),
        KIND_SNAPSHOT_MARKER => {
            let index = reader.u64()?;
            let term = reader.u64()?;
            let replaces_log = match reader.u8()? {
                0 => false,
                1 => true,
                other => return Err(format!("bad snapshot marker flag {other}")),
            };
            let membership = reader.membership()?;
            Record::SnapshotMarker(SnapshotMarker { index, term, membership, replaces_log })
        }
        KIND_TRUNCATE => Record::Truncate(reader.u64()?),
        other => return Err(format!("unknown record kind {other}")),
    };
    reader.finish()?;
    Ok((group, record))
}

fn decode_entry(reader: &mut Reader<'_>) -> Result<Entry, String> {
    let index = reader.u64()?;
    let term = reader.u64()?;
    let payload = match reader.u8()? {
        PAYLOAD_NOOP => Payload::Noop,
        PAYLOAD_COMMAND => {
            let len = reader.count(1)?;
            Payload::Command(Bytes::copy_from_slice(reader.take(len)?))
        }
        PAYLOAD_MEMBERSHIP => Payload::Membership(reader.membership()?),
        other => return Err(format!("unknown entry payload kind {other}")),
    };
    if index == 0 {
        return Err("entry index 0".to_string());
    }
    Ok(Entry { index, term, payload })
}

// ---- snapshot files -------------------------------------------------------

/// magic (8) | version u32 | group u64 | index u64 | term u64 | membership |
/// data length u64 | data | crc32c u32 over everything before it.
pub fn encode_snapshot_file(group: GroupId, snapshot: &consensus::Snapshot) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(snapshot.data.len() + 64);
    buffer.extend_from_slice(&SNAPSHOT_MAGIC);
    put_u32(&mut buffer, FORMAT_VERSION);
    put_u64(&mut buffer, group);
    put_u64(&mut buffer, snapshot.index);
    put_u64(&mut buffer, snapshot.term);
    put_membership(&mut buffer, &snapshot.membership);
    put_u64(&mut buffer, snapshot.data.len() as u64);
    buffer.extend_from_slice(&snapshot.data);
    let crc = crc32c(&buffer);
    put_u32(&mut buffer, crc);
    buffer
}

/// Decodes a snapshot file, returning its group and snapshot.
pub fn decode_snapshot_file(bytes: &[u8]) -> Result<(GroupId, consensus::Snapshot), String> {
    if bytes.len() < 4 {
        return Err("snapshot file too short".to_string());
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c(content) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("snapshot checksum mismatch".to_string());
    }
    let mut reader = Reader::new(content);
    if reader.take(8)? != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic".to_string());
    }
    let version = reader.u32()?;
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    let group = reader.u64()?;
    let index = reader.u64()?;
    let term = reader.u64()?;
    let membership = reader.membership()?;
    let data_len = reader.u64()?;
    let data_len = usize::try_from(data_len).map_err(|_| "data length overflows".to_string())?;
    let data = Bytes::copy_from_slice(reader.take(data_len)?);
    reader.finish()?;
    Ok((group, consensus::Snapshot { index, term, membership, data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_records() -> Vec<Record> {
        vec![
            Record::Entries(vec![
                Entry { index: 7, term: 2, payload: Payload::Noop },
                Entry { index: 8, term: 2, payload: Payload::Command(Bytes::from_static(b"set")) },
                Entry {
                    index: 9,
                    term: 3,
                    payload: Payload::Membership(Membership::with_voters([1, 2, 3])),
                },
            ]),
            Record::HardState(HardState { term: 3, vote: 2, commit: 8 }),
            Record::SnapshotMarker(SnapshotMarker {
                index: 6,
                term: 2,
                membership: Membership {
                    voters: [1, 2].into_iter().collect(),
                    learners: [4].into_iter().collect(),
                },
                replaces_log: true,
            }),
            Record::Truncate(5),
        ]
    }

    /// Every record kind decodes to what was encoded, and its size is exact.
    #[test]
    fn records_round_trip() {
        for record in sample_records() {
            let mut buffer = Vec::new();
            let size = encode_record(&mut buffer, 42, &record);
            assert_eq!(size as usize, buffer.len());
            let (total, body) = check_frame(&buffer, 1 << 20).unwrap();
            assert_eq!(total, buffer.len());
            assert_eq!(decode_body(body).unwrap(), (42, record));
        }
    }

    /// The declared entry size matches the encoding (used to split batches).
    #[test]
    fn entry_size_is_exact() {
        let Record::Entries(entries) = &sample_records()[0] else { unreachable!() };
        for entry in entries {
            let mut buffer = Vec::new();
            put_entry(&mut buffer, entry);
            assert_eq!(buffer.len() as u64, entry_encoded_bytes(entry));
        }
    }

    /// Any single flipped byte or any truncation is detected as damage.
    #[test]
    fn damage_is_detected() {
        let mut buffer = Vec::new();
        encode_record(&mut buffer, 1, &sample_records()[0]);
        for offset in 0..buffer.len() {
            let mut damaged = buffer.clone();
            damaged[offset] ^= 0x01;
            assert!(check_frame(&damaged, 1 << 20).is_err(), "flip at {offset} undetected");
        }
        for cut in 0..buffer.len() {
            assert!(check_frame(&buffer[..cut], 1 << 20).is_err());
        }
    }

    /// A checksummed body with a huge count is refused without allocating.
    #[test]
    fn counts_are_bounded() {
        let mut body = vec![KIND_ENTRIES];
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_body(&body).is_err());
    }

    /// Snapshot files round trip and detect damage.
    #[test]
    fn snapshot_file_round_trip() {
        let snapshot = consensus::Snapshot {
            index: 10,
            term: 4,
            membership: Membership::with_voters([1, 2, 3]),
            data: Bytes::from_static(b"image"),
        };
        let mut bytes = encode_snapshot_file(5, &snapshot);
        assert_eq!(decode_snapshot_file(&bytes).unwrap(), (5, snapshot));
        bytes[20] ^= 1;
        assert!(decode_snapshot_file(&bytes).is_err());
    }

    /// Segment headers round trip; a damaged one is refused.
    #[test]
    fn segment_header_round_trip() {
        let mut header = encode_segment_header(123);
        assert_eq!(decode_segment_header(&header).unwrap(), 123);
        header[10] ^= 1;
        assert!(decode_segment_header(&header).is_err());
    }
}
