//! Redis Streams with consumer groups (Redis 7 semantics), plus two cohort
//! extensions: dead letters per group and idempotent producers.
//!
//! # Representation
//!
//! A [`Stream`] keeps its entries in a `BTreeMap` from [`StreamId`] to the
//! entry's field/value list (flattened: field, value, field, value …), which
//! gives ordered range scans in O(log n) and compact storage. Next to the
//! entries it keeps Redis's stream metadata: `last_id` (the top id ever
//! generated, which never goes down even when entries are deleted),
//! `first_id` (the recorded first entry), `max_deleted_id` (the highest id
//! removed by XDEL, used by the group lag estimate) and `entries_added`.
//!
//! A consumer [`Group`] holds its last delivered id, its read counter, the
//! pending entries list (PEL: id → owner, last delivery time, delivery
//! count) and its consumers, each with the ids it owns. Every map here is a
//! `BTreeMap`, so every reply and the snapshot are in a fixed order on all
//! replicas. Times (idle, delivery, seen) come only from `context.now_ms`.
//!
//! # Auto ids
//!
//! `*` produces `<now_ms>-0`, or `<last.ms>-<last.seq + 1>` when the clock
//! did not move past the last id (also when the leader's clock went
//! backwards): ids stay strictly increasing whatever the entry times do.
//!
//! # Approximate trimming (`~`)
//!
//! Redis trims `~` only by whole radix-tree nodes (100 entries by default).
//! Nodes are an implementation detail that a BTreeMap does not have, so
//! cohort defines it deterministically: with `~`, the number of entries an
//! exact trim would remove is rounded down to a multiple of
//! [`NODE_ENTRIES`], and capped by LIMIT (itself rounded down to whole
//! nodes; default `100 × NODE_ENTRIES`). The stream therefore keeps at least
//! what was asked, as Redis guarantees. XINFO's `radix-tree-keys` and
//! `radix-tree-nodes` report the number of such nodes.
//!
//! # Dead letters (cohort extension)
//!
//! `XGROUP SETDEADLETTER key group max_deliveries deadletter_key` sets a
//! policy on a group; `XGROUP SETDEADLETTER key group 0` removes it. When a
//! redelivery would raise a pending entry's delivery count above
//! `max_deliveries` — an XCLAIM or XAUTOCLAIM that increments the count (not
//! with JUSTID or RETRYCOUNT, which do not), or an XREADGROUP history read —
//! the entry is not delivered: it leaves the group's PEL (as if acknowledged)
//! and is appended, with an auto id at the entry time, to the stream at
//! `deadletter_key` (created if missing) with its fields followed by
//! `dead-letter-of <key>`, `group <group>`, `id <original id>` and
//! `deliveries <count so far>`. Entries already deleted from the stream are
//! not dead-lettered (Redis drops them from the PEL on claim). The dead-letter
//! key must hash to the same cluster slot as the stream — cohort requires the
//! same `{hash tag}` — and differ from it; if it holds another type when a
//! dead letter is due, the command fails with WRONGTYPE and changes nothing.
//! XINFO GROUPS shows `max-deliveries` and `dead-letter-key` (nulls when
//! off).
//!
//! # Idempotent producers (cohort extension)
//!
//! `XADD key IDEMPOTENT producer_id seq [other options] <id | *> field value …`
//! (`IDEMPOTENT` is a keyword among XADD's options, where Redis has none of
//! that name; `seq` is a non-negative integer). The stream remembers, per
//! producer, the last `seq` and the id it produced. A retry with the same
//! producer and `seq` returns the original id and changes nothing (no entry,
//! no trim); a lower `seq` fails with `ERR IDEMPOTENT sequence … is lower than
//! the last one seen for producer …`; a higher one appends normally and is
//! recorded. At most [`PRODUCERS_MAX`] producers are remembered per stream;
//! beyond that, the producer that appended least recently is forgotten
//! (deterministic: a per-stream counter orders them). The table is part of
//! the snapshot.

mod basic;
mod groups;
mod info;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;
use resp::Frame;

use crate::keyspace::{Keyspace, Value};
use crate::reply::{self, bulk, error};

pub(crate) use basic::{run_blocking, xadd, xdel, xlen, xrange, xread, xtrim};
pub(crate) use groups::{xack, xautoclaim, xclaim, xgroup, xpending};
pub(crate) use info::xinfo;

/// Entries per node for `~` trimming and XINFO's node counts (Redis's
/// `stream-node-max-entries` default).
pub(crate) const NODE_ENTRIES: u64 = 100;
/// Idempotent producers remembered per stream.
pub(crate) const PRODUCERS_MAX: usize = 1024;
/// Longest id argument Redis accepts (its parse buffer is 128 bytes).
const ID_BYTES_MAX: usize = 127;

pub(crate) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// `<ms>-<seq>`, ordered by ms then seq.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    pub(crate) const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub(crate) const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub(crate) fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next id, `None` past the maximum.
    pub(crate) fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous id, `None` below 0-0.
    pub(crate) fn previous(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }

    pub(crate) fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    pub(crate) fn text(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    pub(crate) fn frame(self) -> Frame {
        Frame::Bulk(Bytes::from(self.text()))
    }
}

/// Redis's `string2ull` for id parts: decimal digits only, no overflow.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter()
        .try_fold(0u64, |value, digit| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
}

/// How an id argument may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdForm {
    /// `-` and `+` accepted (range bounds).
    Loose,
    /// A concrete id only.
    Strict,
}

/// Redis's `streamGenericParseIDOrReply`: `ms[-seq]`, the missing sequence
/// taken from `missing_seq`; `-`/`+` unless strict.
pub(crate) fn parse_id(text: &[u8], missing_seq: u64, form: IdForm) -> Result<StreamId, Frame> {
    parse_id_parts(text, missing_seq, form).ok_or_else(|| error(INVALID_ID))
}

fn parse_id_parts(text: &[u8], missing_seq: u64, form: IdForm) -> Option<StreamId> {
    if text.len() > ID_BYTES_MAX {
        return None;
    }
    match (text, form) {
        (b"-", IdForm::Loose) => return Some(StreamId::MIN),
        (b"+", IdForm::Loose) => return Some(StreamId::MAX),
        _ => {}
    }
    match text.iter().position(|&byte| byte == b'-') {
        None => Some(StreamId::new(parse_u64(text)?, missing_seq)),
        Some(dash) => Some(StreamId::new(parse_u64(&text[..dash])?, parse_u64(&text[dash + 1..])?)),
    }
}

/// A range bound, with `(` for exclusive (Redis's
/// `streamParseIntervalIDOrReply`), already adjusted to an inclusive id; an
/// exclusive bound past the last (or before the first) id is Redis's
/// "invalid start/end ID for the interval" error.
pub(crate) fn parse_interval(
    text: &[u8],
    missing_seq: u64,
    is_start: bool,
) -> Result<StreamId, Frame> {
    if text.len() > 1 && text[0] == b'(' {
        let id = parse_id(&text[1..], missing_seq, IdForm::Strict)?;
        let adjusted = if is_start { id.next() } else { id.previous() };
        adjusted.ok_or_else(|| {
            error(if is_start {
                "ERR invalid start ID for the interval"
            } else {
                "ERR invalid end ID for the interval"
            })
        })
    } else {
        parse_id(text, missing_seq, IdForm::Loose)
    }
}

/// One pending entry of a group (Redis's `streamNACK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) consumer: Box<[u8]>,
    pub(crate) delivery_time_ms: u64,
    pub(crate) delivery_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Last time the consumer tried anything (read, claim).
    pub(crate) seen_time_ms: u64,
    /// Last successful delivery or claim; `None` never.
    pub(crate) active_time_ms: Option<u64>,
    /// Ids this consumer owns in the group's PEL.
    pub(crate) pending: BTreeSet<StreamId>,
}

impl Consumer {
    fn new(now_ms: u64) -> Consumer {
        Consumer { seen_time_ms: now_ms, active_time_ms: None, pending: BTreeSet::new() }
    }
}

/// A group's dead-letter policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeadLetter {
    pub(crate) max_deliveries: u64,
    pub(crate) key: Box<[u8]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) last_id: StreamId,
    /// Logical read counter; `None` when unknown (Redis's -1).
    pub(crate) entries_read: Option<u64>,
    pub(crate) pel: BTreeMap<StreamId, Pending>,
    pub(crate) consumers: BTreeMap<Box<[u8]>, Consumer>,
    pub(crate) dead_letter: Option<DeadLetter>,
}

impl Group {
    pub(crate) fn consumer_or_create(&mut self, name: &[u8], now_ms: u64) -> &mut Consumer {
        self.consumers.entry(name.into()).or_insert_with(|| Consumer::new(now_ms))
    }

    /// Removes `id` from the PEL and from its owner's list.
    pub(crate) fn remove_pending(&mut self, id: StreamId) -> Option<Pending> {
        let pending = self.pel.remove(&id)?;
        if let Some(owner) = self.consumers.get_mut(&pending.consumer) {
            owner.pending.remove(&id);
        }
        Some(pending)
    }

    /// Checks the PEL against the consumers' lists (tests and restore).
    pub(crate) fn is_consistent(&self) -> bool {
        let owned: usize = self.consumers.values().map(|consumer| consumer.pending.len()).sum();
        owned == self.pel.len()
            && self.pel.iter().all(|(id, pending)| {
                self.consumers.get(&pending.consumer).is_some_and(|c| c.pending.contains(id))
            })
    }
}

/// An idempotent producer's latest append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) last_seq: u64,
    pub(crate) last_id: StreamId,
    /// The stream's `producer_clock` at this producer's latest append.
    pub(crate) used_at: u64,
}

pub(crate) type EntryFields = Box<[Box<[u8]>]>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stream {
    pub(crate) entries: BTreeMap<StreamId, EntryFields>,
    pub(crate) last_id: StreamId,
    pub(crate) first_id: StreamId,
    pub(crate) max_deleted_id: StreamId,
    pub(crate) entries_added: u64,
    pub(crate) groups: BTreeMap<Box<[u8]>, Group>,
    pub(crate) producers: BTreeMap<Box<[u8]>, Producer>,
    pub(crate) producer_clock: u64,
}

/// Why an append failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    NotGreater,
    Exhausted,
}

impl AppendError {
    pub(crate) fn frame(&self) -> Frame {
        match self {
            AppendError::NotGreater => error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
            AppendError::Exhausted => {
                error("ERR The stream has exhausted the last possible ID, unable to add more items")
            }
        }
    }
}

/// The id XADD asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NewId {
    Auto,
    /// `ms-*`
    AutoSequence(u64),
    Explicit(StreamId),
}

impl Stream {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The id the next append would get, or why it cannot.
    pub(crate) fn next_id(&self, wanted: NewId, now_ms: u64) -> Result<StreamId, AppendError> {
        if self.last_id == StreamId::MAX {
            return Err(AppendError::Exhausted);
        }
        let id = match wanted {
            NewId::Auto if self.last_id.ms >= now_ms => {
                self.last_id.next().ok_or(AppendError::Exhausted)?
            }
            NewId::Auto => StreamId::new(now_ms, 0),
            NewId::AutoSequence(ms) if ms == self.last_id.ms => {
                let seq = self.last_id.seq.checked_add(1).ok_or(AppendError::NotGreater)?;
                StreamId::new(ms, seq)
            }
            NewId::AutoSequence(ms) => StreamId::new(ms, 0),
            NewId::Explicit(id) => id,
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        Ok(id)
    }

    /// Appends an entry (fields flattened as field, value, …).
    pub(crate) fn append(
        &mut self,
        wanted: NewId,
        now_ms: u64,
        fields: EntryFields,
    ) -> Result<StreamId, AppendError> {
        assert!(!fields.is_empty() && fields.len() % 2 == 0);
        let id = self.next_id(wanted, now_ms)?;
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        if self.entries.len() == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Removes one entry; true if it existed.
    pub(crate) fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        self.max_deleted_id = self.max_deleted_id.max(id);
        self.refresh_first_id();
        true
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self.entries.keys().next().copied().unwrap_or(StreamId::MIN);
    }

    /// Removes up to `count` entries from the head; returns how many went.
    pub(crate) fn remove_head(&mut self, count: u64) -> u64 {
        let mut removed = 0;
        while removed < count && self.entries.pop_first().is_some() {
            removed += 1;
        }
        if removed > 0 {
            self.refresh_first_id();
        }
        removed
    }

    /// Entries in `[start, end]`, in order or reversed.
    pub(crate) fn range(
        &self,
        start: StreamId,
        end: StreamId,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = (&StreamId, &EntryFields)> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let range = self.entries.range(start..=end);
        if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        }
    }

    /// The last entry's id (not `last_id`, which survives deletions).
    pub(crate) fn last_entry_id(&self) -> Option<StreamId> {
        self.entries.keys().next_back().copied()
    }

    /// Redis's `streamRangeHasTombstones(start, +)`.
    pub(crate) fn has_tombstones_from(&self, start: StreamId) -> bool {
        !self.entries.is_empty() && !self.max_deleted_id.is_zero() && start <= self.max_deleted_id
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical read
    /// counter of `id`, when it can be known.
    pub(crate) fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        if !id.is_zero() && id < self.max_deleted_id {
            return None;
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let length = self.entries.len() as u64;
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - length);
            }
            if id == self.first_id {
                return Some(self.entries_added - length + 1);
            }
        }
        None
    }

    /// Redis's `streamReplyWithCGLag`.
    pub(crate) fn lag(&self, group: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.has_tombstones_from(group.last_id) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_entries_read(group.last_id)
            .map(|read| self.entries_added.saturating_sub(read))
    }

    /// Advances a group past `id` on a new delivery, keeping its read
    /// counter as Redis's `streamReplyWithRange` does.
    pub(crate) fn advance_group(&self, group: &mut Group, id: StreamId) {
        if id <= group.last_id {
            return;
        }
        match group.entries_read {
            Some(read)
                if group.last_id >= self.first_id && !self.has_tombstones_from(group.last_id) =>
            {
                group.entries_read = Some(read + 1);
            }
            _ if self.entries_added > 0 => group.entries_read = self.estimate_entries_read(id),
            _ => {}
        }
        group.last_id = id;
    }

    /// Records an idempotent producer's append, forgetting the least
    /// recently used producer beyond [`PRODUCERS_MAX`].
    pub(crate) fn remember_producer(&mut self, producer: &[u8], seq: u64, id: StreamId) {
        self.producer_clock += 1;
        let used_at = self.producer_clock;
        self.producers.insert(producer.into(), Producer { last_seq: seq, last_id: id, used_at });
        if self.producers.len() > PRODUCERS_MAX {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, producer)| producer.used_at)
                .map(|(name, _)| name.clone())
                .expect("not empty");
            self.producers.remove(&oldest);
        }
        assert!(self.producers.len() <= PRODUCERS_MAX);
    }
}

/// `[id, [field, value, …]]`
pub(crate) fn entry_frame(id: StreamId, fields: &EntryFields) -> Frame {
    Frame::Array(vec![id.frame(), Frame::Array(fields.iter().map(|item| bulk(item)).collect())])
}

pub(crate) fn stream_at<'a>(
    db: &'a Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a Stream>, Frame> {
    match db.live(key, now) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Stream(stream) => Ok(Some(stream)),
            _ => Err(reply::wrong_type()),
        },
    }
}

/// The live stream at `key` for modification (callers `touch` the key after
/// changing it).
pub(crate) fn stream_mut<'a>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut Stream>, Frame> {
    stream_at(db, key, now)?;
    Ok(db.live_mut(key, now).map(|entry| match &mut entry.value {
        Value::Stream(stream) => &mut **stream,
        _ => unreachable!("checked a stream"),
    }))
}

/// The stream at `key`, created empty if missing (streams may be empty).
pub(crate) fn stream_or_create<'a>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<&'a mut Stream, Frame> {
    if stream_at(db, key, now)?.is_none() {
        db.put(key, Value::Stream(Box::default()), None);
    }
    Ok(stream_mut(db, key, now)?.expect("just created"))
}

/// Redis's `timeout` argument in milliseconds (BLOCK): `None` waits forever.
pub(crate) fn parse_block_ms(text: &[u8]) -> Result<Option<u64>, Frame> {
    let value = crate::parse::parse_i64(text)
        .ok_or_else(|| error("ERR timeout is not an integer or out of range"))?;
    if value < 0 {
        return Err(error("ERR timeout is negative"));
    }
    Ok(if value == 0 { None } else { Some(value as u64) })
}

/// The key arguments of XREAD / XREADGROUP: the first half of what follows
/// STREAMS, skipping the options before it. `None` if malformed.
pub(crate) fn read_keys(args: &[Bytes]) -> Option<Vec<Bytes>> {
    let mut index = 1;
    while index < args.len() {
        let word = &args[index];
        let skip = if word.eq_ignore_ascii_case(b"STREAMS") {
            let rest = &args[index + 1..];
            if rest.is_empty() || rest.len() % 2 != 0 {
                return None;
            }
            return Some(rest[..rest.len() / 2].to_vec());
        } else if word.eq_ignore_ascii_case(b"BLOCK") || word.eq_ignore_ascii_case(b"COUNT") {
            2
        } else if word.eq_ignore_ascii_case(b"GROUP") {
            3
        } else {
            1
        };
        index += skip;
    }
    None
}

/// Ids strictly after `after` owned by `consumer` in `group`, in order.
pub(crate) fn consumer_pending_after(
    group: &Group,
    consumer: &[u8],
    after: StreamId,
) -> Vec<StreamId> {
    match group.consumers.get(consumer) {
        None => Vec::new(),
        Some(consumer) => {
            consumer.pending.range((Bound::Excluded(after), Bound::Unbounded)).copied().collect()
        }
    }
}

/// A dead letter to append once the source stream is released.
pub(crate) struct DeadLetterEntry {
    pub(crate) fields: EntryFields,
}

/// Builds the dead-letter entry for `id` of `key`/`group`.
pub(crate) fn dead_letter_entry(
    key: &[u8],
    group: &[u8],
    id: StreamId,
    fields: &EntryFields,
    deliveries: u64,
) -> DeadLetterEntry {
    let mut all: Vec<Box<[u8]>> = fields.to_vec();
    let extra: [(&[u8], Vec<u8>); 4] = [
        (b"dead-letter-of", key.to_vec()),
        (b"group", group.to_vec()),
        (b"id", id.text().into_bytes()),
        (b"deliveries", deliveries.to_string().into_bytes()),
    ];
    for (field, value) in extra {
        all.push(field.into());
        all.push(value.into_boxed_slice());
    }
    DeadLetterEntry { fields: all.into_boxed_slice() }
}

/// Checks that dead letters for `group` of the stream at `key` could be
/// written now: the dead-letter key holds a stream that can still grow, or
/// nothing. Called before a command changes anything.
pub(crate) fn check_dead_letter_target(
    db: &Keyspace,
    key: &[u8],
    group: &[u8],
    now: u64,
) -> Result<(), Frame> {
    let policy = stream_at(db, key, now)?
        .and_then(|stream| stream.groups.get(group))
        .and_then(|group| group.dead_letter.clone());
    if let Some(policy) = policy {
        if let Some(target) = stream_at(db, &policy.key, now)? {
            if target.last_id == StreamId::MAX {
                return Err(AppendError::Exhausted.frame());
            }
        }
    }
    Ok(())
}

/// Appends dead letters to the group's dead-letter stream.
pub(crate) fn write_dead_letters(
    db: &mut Keyspace,
    target: &[u8],
    now: u64,
    letters: Vec<DeadLetterEntry>,
) -> Result<(), Frame> {
    if letters.is_empty() {
        return Ok(());
    }
    let stream = stream_or_create(db, target, now)?;
    for letter in letters {
        stream.append(NewId::Auto, now, letter.fields).map_err(|error| error.frame())?;
    }
    db.touch(target);
    Ok(())
}

/// The part of a key Redis Cluster hashes: the first non-empty `{tag}`, or
/// the whole key.
pub(crate) fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&byte| byte == b'{') {
        if let Some(length) = key[open + 1..].iter().position(|&byte| byte == b'}') {
            if length > 0 {
                return &key[open + 1..open + 1 + length];
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        // Goal: id parsing accepts ms, ms-seq, -/+ (loose only) and rejects junk.
        assert_eq!(parse_id(b"5", 7, IdForm::Strict).unwrap(), StreamId::new(5, 7));
        assert_eq!(parse_id(b"5-3", 0, IdForm::Strict).unwrap(), StreamId::new(5, 3));
        assert_eq!(parse_id(b"-", 0, IdForm::Loose).unwrap(), StreamId::MIN);
        assert_eq!(parse_id(b"+", 0, IdForm::Loose).unwrap(), StreamId::MAX);
        for bad in [&b"-"[..], b"+", b"", b"a", b"1-", b"-1", b"1-2-3", b"18446744073709551616"] {
            assert!(parse_id(bad, 0, IdForm::Strict).is_err(), "{bad:?}");
        }
        assert_eq!(parse_interval(b"(1-1", 0, true).unwrap(), StreamId::new(1, 2));
        assert_eq!(parse_interval(b"(1-0", 0, false).unwrap(), StreamId::new(0, u64::MAX));
        assert!(parse_interval(b"(0-0", 0, false).is_err());
        assert!(parse_interval(b"(-", 0, true).is_err());
    }

    #[test]
    fn auto_ids_stay_monotonic() {
        // Goal: auto ids increase even when the entry time goes backwards.
        let mut stream = Stream::default();
        let fields: EntryFields = vec![b"f".to_vec().into(), b"v".to_vec().into()].into();
        let first = stream.append(NewId::Auto, 100, fields.clone()).unwrap();
        let second = stream.append(NewId::Auto, 50, fields.clone()).unwrap();
        let third = stream.append(NewId::Auto, 100, fields.clone()).unwrap();
        assert_eq!(first, StreamId::new(100, 0));
        assert_eq!(second, StreamId::new(100, 1));
        assert_eq!(third, StreamId::new(100, 2));
        assert_eq!(stream.append(NewId::AutoSequence(100), 0, fields.clone()).unwrap().seq, 3);
        assert_eq!(
            stream.append(NewId::Explicit(StreamId::new(1, 1)), 0, fields),
            Err(AppendError::NotGreater)
        );
    }

    #[test]
    fn producers_table_is_bounded() {
        // Goal: the idempotent producer table never exceeds its limit and evicts the oldest.
        let mut stream = Stream::default();
        for index in 0..PRODUCERS_MAX + 5 {
            stream.remember_producer(index.to_string().as_bytes(), 1, StreamId::new(1, 1));
        }
        assert_eq!(stream.producers.len(), PRODUCERS_MAX);
        assert!(!stream.producers.contains_key(&b"0"[..]));
        assert!(stream.producers.contains_key(&b"5"[..]));
    }

    #[test]
    fn hash_tags_follow_redis_cluster() {
        // Goal: the hashed part of a key is its first non-empty tag.
        assert_eq!(hash_tag(b"{user1}.a"), b"user1");
        assert_eq!(hash_tag(b"a{}b"), b"a{}b");
        assert_eq!(hash_tag(b"plain"), b"plain");
    }
}
