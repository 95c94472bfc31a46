//! Consumer groups: XGROUP (with the cohort SETDEADLETTER extension),
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use std::ops::Bound;

use bytes::Bytes;
use resp::Frame;

use super::basic::{parse_ids, parse_read};
use super::{
    check_dead_letter_target, consumer_pending_after, dead_letter_entry, entry_frame, hash_tag,
    parse_id, parse_interval, stream_at, stream_mut, stream_or_create, write_dead_letters,
    DeadLetter, DeadLetterEntry, Group, IdForm, Pending, Stream, StreamId,
};
use crate::keyspace::Keyspace;
use crate::parse::{integer_argument, is_option, ok, syntax_error};
use crate::reply::{self, bulk, error, Reply};
use crate::store::Blocking;

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_group(key: &[u8], group: &[u8]) -> Frame {
    Frame::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

fn no_group_for_key(key: &[u8], group: &[u8]) -> Frame {
    Frame::Error(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        lossy(group),
        lossy(key)
    ))
}

fn subcommand_syntax(args: &[Bytes]) -> Frame {
    Frame::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        lossy(&args[1][..args[1].len().min(128)])
    ))
}

/// `XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER |
/// SETDEADLETTER …`
pub(crate) fn xgroup(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let arity_ok = match &sub[..] {
        b"create" | b"setid" => args.len() >= 5,
        b"destroy" => args.len() == 4,
        b"createconsumer" | b"delconsumer" | b"setdeadletter" => args.len() >= 5,
        b"help" => true,
        _ => {
            return Err(Frame::Error(format!(
                "ERR unknown subcommand '{}'. Try XGROUP HELP.",
                lossy(&args[1][..args[1].len().min(128)])
            )))
        }
    };
    if !arity_ok {
        return Err(Frame::Error(format!(
            "ERR wrong number of arguments for 'xgroup|{}' command",
            lossy(&sub)
        )));
    }
    if sub == b"help" {
        return Ok(Frame::Array(
            XGROUP_HELP.iter().map(|line| Frame::Simple(line.to_string())).collect(),
        ));
    }
    if sub == b"setdeadletter" {
        return set_dead_letter(db, now, args);
    }
    let (key, name) = (&args[2], &args[3]);
    let mut make_stream = false;
    let mut entries_read: Option<u64> = None;
    let mut index = 5;
    while index < args.len() {
        let create = sub == b"create";
        if create && is_option(&args[index], "MKSTREAM") {
            make_stream = true;
            index += 1;
        } else if (create || sub == b"setid")
            && is_option(&args[index], "ENTRIESREAD")
            && index + 1 < args.len()
        {
            let value = integer_argument(&args[index + 1])?;
            if value < -1 {
                return Err(error("ERR value for ENTRIESREAD must be positive or -1"));
            }
            entries_read = u64::try_from(value).ok();
            index += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    let exists = stream_at(db, key, now)?.is_some();
    if !exists && !make_stream {
        return Err(error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may \
             want to use the MKSTREAM option to create an empty stream automatically.",
        ));
    }
    let has_group = stream_at(db, key, now)?.is_some_and(|s| s.groups.contains_key(&name[..]));
    if !has_group && matches!(&sub[..], b"setid" | b"createconsumer" | b"delconsumer") {
        return Err(no_group_for_key(key, name));
    }
    match &sub[..] {
        b"create" => {
            let stream = stream_at(db, key, now)?;
            let id = if args[4][..] == b"$"[..] {
                stream.map_or(StreamId::MIN, |stream| stream.last_id)
            } else {
                parse_id(&args[4], 0, IdForm::Strict)?
            };
            if has_group {
                return Err(error("BUSYGROUP Consumer Group name already exists"));
            }
            let stream = stream_or_create(db, key, now)?;
            let group = Group { last_id: id, entries_read, ..Group::default() };
            stream.groups.insert(name.as_ref().into(), group);
            db.touch(key);
            ok()
        }
        b"setid" => {
            let stream = stream_at(db, key, now)?.expect("exists");
            let id = if args[4][..] == b"$"[..] {
                stream.last_id
            } else {
                parse_id(&args[4], 0, IdForm::Loose)?
            };
            let stream = stream_mut(db, key, now)?.expect("exists");
            let group = stream.groups.get_mut(&name[..]).expect("exists");
            group.last_id = id;
            group.entries_read = entries_read;
            db.touch(key);
            ok()
        }
        b"destroy" => {
            let stream = stream_mut(db, key, now)?.expect("exists");
            let removed = stream.groups.remove(&name[..]).is_some();
            if removed {
                db.touch(key);
            }
            Ok(Frame::Integer(i64::from(removed)))
        }
        b"createconsumer" => {
            let stream = stream_mut(db, key, now)?.expect("exists");
            let group = stream.groups.get_mut(&name[..]).expect("exists");
            if group.consumers.contains_key(&args[4][..]) {
                return Ok(Frame::Integer(0));
            }
            group.consumer_or_create(&args[4], now);
            db.touch(key);
            Ok(Frame::Integer(1))
        }
        b"delconsumer" => {
            let stream = stream_mut(db, key, now)?.expect("exists");
            let group = stream.groups.get_mut(&name[..]).expect("exists");
            let Some(consumer) = group.consumers.remove(&args[4][..]) else {
                return Ok(Frame::Integer(0));
            };
            for id in &consumer.pending {
                group.pel.remove(id);
            }
            db.touch(key);
            Ok(reply::integer(consumer.pending.len()))
        }
        _ => unreachable!("subcommands checked above"),
    }
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "SETDEADLETTER <key> <groupname> <max_deliveries> [<deadletter_key>]",
    "    Move entries delivered more than max_deliveries times to deadletter_key (0: off).",
    "HELP",
    "    Print this help.",
];

/// `XGROUP SETDEADLETTER key group max_deliveries deadletter_key` and
/// `XGROUP SETDEADLETTER key group 0` (see the module documentation).
fn set_dead_letter(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (key, name) = (&args[2], &args[3]);
    let max_deliveries = crate::parse::count_argument(
        &args[4],
        "ERR max_deliveries must be a non-negative integer",
    )?;
    let target = match (max_deliveries, args.len()) {
        (0, 5) => None,
        (1.., 6) => Some(args[5].clone()),
        _ => return Err(subcommand_syntax(args)),
    };
    if let Some(target) = &target {
        if target == key {
            return Err(error("ERR the dead-letter key must differ from the stream key"));
        }
        if hash_tag(target) != hash_tag(key) {
            return Err(error(
                "ERR the dead-letter key must hash to the stream's slot: give both the same \
                 {hash tag}",
            ));
        }
        stream_at(db, target, now)?;
    }
    let Some(stream) = stream_mut(db, key, now)? else {
        return Err(error("ERR The XGROUP subcommand requires the key to exist."));
    };
    let Some(group) = stream.groups.get_mut(&name[..]) else {
        return Err(no_group_for_key(key, name));
    };
    group.dead_letter =
        target.map(|target| DeadLetter { max_deliveries, key: target.as_ref().into() });
    db.touch(key);
    ok()
}

/// Whether delivering `pending` once more breaks the group's policy.
fn exceeds_policy(group: &Group, pending: &Pending) -> bool {
    group
        .dead_letter
        .as_ref()
        .is_some_and(|policy| pending.delivery_count.saturating_add(1) > policy.max_deliveries)
}

/// Removes `id` from the PEL as a dead letter; `Some` if the entry still
/// exists in the stream (otherwise it is just dropped from the PEL).
fn take_dead_letter(
    stream: &mut Stream,
    key: &[u8],
    group_name: &[u8],
    id: StreamId,
) -> Option<DeadLetterEntry> {
    let group = stream.groups.get_mut(group_name).expect("group exists");
    let pending = group.remove_pending(id).expect("pending");
    let fields = stream.entries.get(&id)?;
    Some(dead_letter_entry(key, group_name, id, fields, pending.delivery_count))
}

fn dead_letter_key(stream: &Stream, group: &[u8]) -> Option<Box<[u8]>> {
    stream.groups.get(group).and_then(|group| group.dead_letter.as_ref().map(|p| p.key.clone()))
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK]
/// STREAMS key [key …] id [id …]`: with `>` only, and nothing new, it would
/// block having changed nothing (no consumer created, no PEL entry).
pub(crate) fn xreadgroup(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Result<Blocking, Frame> {
    let options = parse_read(args, true)?;
    let (group_name, consumer_name) = options.group.clone().expect("checked by parse_read");
    let keys = &args[options.streams_at..options.streams_at + options.stream_count];
    let texts = &args[options.streams_at + options.stream_count..];
    // Validate everything first: errors change nothing.
    let mut starts: Vec<Option<StreamId>> = Vec::with_capacity(keys.len());
    let mut any_served = false;
    for (key, text) in keys.iter().zip(texts) {
        let stream = stream_at(db, key, now)?;
        let Some(group) = stream.and_then(|stream| stream.groups.get(&group_name[..])) else {
            return Err(Frame::Error(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                lossy(key),
                lossy(&group_name)
            )));
        };
        let stream = stream.expect("group implies stream");
        if text[..] == b"$"[..] {
            return Err(error(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                 history of this consumer by specifying a proper ID, or use the > ID to get new \
                 messages. The $ ID would just return an empty result set.",
            ));
        }
        if text[..] == b">"[..] {
            any_served |= stream.last_entry_id().is_some_and(|last| last > group.last_id);
            starts.push(None);
        } else {
            starts.push(Some(parse_id(text, 0, IdForm::Strict)?));
            any_served = true;
        }
        check_dead_letter_target(db, key, &group_name, now)?;
    }
    if !any_served {
        if let Some(timeout_ms) = options.block_ms {
            return Ok(Blocking::WouldBlock { keys: keys.to_vec(), timeout_ms, retry_args: None });
        }
    }
    let limit = if options.count == 0 { usize::MAX } else { options.count as usize };
    let mut served = Vec::new();
    for (key, start) in keys.iter().zip(starts) {
        let stream = stream_mut(db, key, now)?.expect("validated");
        let target = dead_letter_key(stream, &group_name);
        let (frame, letters) = match start {
            None => {
                (read_new(stream, &group_name, &consumer_name, now, limit, options.no_ack), None)
            }
            Some(after) => {
                let (frame, letters) =
                    read_history(stream, key, &group_name, &consumer_name, now, after, limit);
                (Some(frame), Some(letters))
            }
        };
        db.touch(key);
        if let (Some(target), Some(letters)) = (target, letters) {
            write_dead_letters(db, &target, now, letters)?;
        }
        if let Some(entries) = frame {
            served.push(Frame::Array(vec![Frame::Bulk(key.clone()), entries]));
        }
    }
    Ok(Blocking::Served(if served.is_empty() { Frame::NullArray } else { Frame::Array(served) }))
}

/// `>`: entries after the group's last delivered id. `None` if there are
/// none (the key is left out of the reply).
fn read_new(
    stream: &mut Stream,
    group_name: &[u8],
    consumer_name: &[u8],
    now: u64,
    limit: usize,
    no_ack: bool,
) -> Option<Frame> {
    let mut group = stream.groups.remove(group_name).expect("validated");
    group.consumer_or_create(consumer_name, now).seen_time_ms = now;
    let start = group.last_id.next();
    let ids: Vec<StreamId> = match start {
        None => Vec::new(),
        Some(start) => {
            stream.range(start, StreamId::MAX, false).take(limit).map(|e| *e.0).collect()
        }
    };
    let mut frames = Vec::with_capacity(ids.len());
    for id in &ids {
        stream.advance_group(&mut group, *id);
        frames.push(entry_frame(*id, &stream.entries[id]));
        if no_ack {
            continue;
        }
        // An id already pending (after SETID) changes owner and restarts.
        group.remove_pending(*id);
        let pending =
            Pending { consumer: consumer_name.into(), delivery_time_ms: now, delivery_count: 1 };
        group.pel.insert(*id, pending);
        let consumer = group.consumer_or_create(consumer_name, now);
        consumer.pending.insert(*id);
        consumer.active_time_ms = Some(now);
    }
    debug_assert!(group.is_consistent());
    stream.groups.insert(group_name.into(), group);
    if frames.is_empty() {
        None
    } else {
        Some(Frame::Array(frames))
    }
}

/// A history read: the consumer's own pending entries after `after`, each
/// redelivered (count + 1) or dead-lettered; deleted entries come back as
/// `[id, nil]`.
fn read_history(
    stream: &mut Stream,
    key: &[u8],
    group_name: &[u8],
    consumer_name: &[u8],
    now: u64,
    after: StreamId,
    limit: usize,
) -> (Frame, Vec<DeadLetterEntry>) {
    let group = stream.groups.get_mut(group_name).expect("validated");
    group.consumer_or_create(consumer_name, now).seen_time_ms = now;
    let ids = consumer_pending_after(group, consumer_name, after);
    let mut frames = Vec::new();
    let mut letters = Vec::new();
    for id in ids {
        if frames.len() >= limit {
            break;
        }
        let exists = stream.entries.contains_key(&id);
        let group = stream.groups.get_mut(group_name).expect("validated");
        if !exists {
            frames.push(Frame::Array(vec![id.frame(), Frame::NullArray]));
            continue;
        }
        if exceeds_policy(group, &group.pel[&id]) {
            letters.extend(take_dead_letter(stream, key, group_name, id));
            continue;
        }
        let pending = group.pel.get_mut(&id).expect("owned ids are pending");
        pending.delivery_count += 1;
        pending.delivery_time_ms = now;
        frames.push(entry_frame(id, &stream.entries[&id]));
    }
    (Frame::Array(frames), letters)
}

/// `XACK key group id [id …]`
pub(crate) fn xack(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let has_group =
        stream_at(db, &args[1], now)?.is_some_and(|s| s.groups.contains_key(&args[2][..]));
    if !has_group {
        return Ok(Frame::Integer(0));
    }
    let ids = parse_ids(&args[3..])?;
    let stream = stream_mut(db, &args[1], now)?.expect("exists");
    let group = stream.groups.get_mut(&args[2][..]).expect("exists");
    let acknowledged = ids.into_iter().filter(|id| group.remove_pending(*id).is_some()).count();
    if acknowledged > 0 {
        db.touch(&args[1]);
    }
    Ok(reply::integer(acknowledged))
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
pub(crate) fn xpending(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if args.len() != 3 && !(6..=9).contains(&args.len()) {
        return syntax_error();
    }
    let mut extended = None;
    if args.len() >= 6 {
        let mut at = 3;
        let mut min_idle: i64 = 0;
        if is_option(&args[3], "IDLE") {
            min_idle = integer_argument(&args[4])?;
            if args.len() < 8 {
                return syntax_error();
            }
            at = 5;
        }
        let count = integer_argument(&args[at + 2])?.max(0) as u64;
        let start = parse_interval(&args[at], 0, true)?;
        let end = parse_interval(&args[at + 1], u64::MAX, false)?;
        let consumer = args.get(at + 3).cloned();
        if args.len() > at + 4 {
            return syntax_error();
        }
        extended = Some((min_idle, start, end, count, consumer));
    }
    let (key, name) = (&args[1], &args[2]);
    let stream = stream_at(db, key, now)?;
    let Some(group) = stream.and_then(|stream| stream.groups.get(&name[..])) else {
        return Err(no_group(key, name));
    };
    let Some((min_idle, start, end, count, consumer)) = extended else {
        return Ok(pending_summary(group));
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
        None => Box::new(group.pel.keys().copied()),
        Some(name) => match group.consumers.get(&name[..]) {
            None => return Ok(Frame::Array(Vec::new())),
            Some(consumer) => Box::new(consumer.pending.iter().copied()),
        },
    };
    let mut frames = Vec::new();
    for id in ids.skip_while(|id| *id < start).take_while(|id| *id <= end) {
        if frames.len() as u64 >= count {
            break;
        }
        let pending = &group.pel[&id];
        let idle = now.saturating_sub(pending.delivery_time_ms);
        if min_idle > 0 && (idle as i128) < i128::from(min_idle) {
            continue;
        }
        frames.push(Frame::Array(vec![
            id.frame(),
            bulk(&pending.consumer),
            Frame::Integer(idle.min(i64::MAX as u64) as i64),
            Frame::Integer(pending.delivery_count.min(i64::MAX as u64) as i64),
        ]));
    }
    Ok(Frame::Array(frames))
}

fn pending_summary(group: &Group) -> Frame {
    let (Some(first), Some(last)) = (group.pel.keys().next(), group.pel.keys().next_back()) else {
        return Frame::Array(vec![Frame::Integer(0), Frame::Null, Frame::Null, Frame::NullArray]);
    };
    let owners = group
        .consumers
        .iter()
        .filter(|(_, consumer)| !consumer.pending.is_empty())
        .map(|(name, consumer)| {
            Frame::Array(vec![
                bulk(name),
                Frame::Bulk(Bytes::from(consumer.pending.len().to_string())),
            ])
        })
        .collect();
    Frame::Array(vec![
        reply::integer(group.pel.len()),
        first.frame(),
        last.frame(),
        Frame::Array(owners),
    ])
}

/// How a claim sets the delivery time and count.
struct ClaimRule {
    delivery_time_ms: u64,
    retry_count: Option<u64>,
    just_id: bool,
}

/// Claims one pending id for `consumer`; returns the reply element, or a
/// dead letter when the policy stops the redelivery.
fn claim_one(
    stream: &mut Stream,
    key: &[u8],
    group_name: &[u8],
    consumer_name: &[u8],
    id: StreamId,
    rule: &ClaimRule,
    now: u64,
) -> Result<Frame, Option<DeadLetterEntry>> {
    let group = stream.groups.get_mut(group_name).expect("exists");
    let increments = rule.retry_count.is_none() && !rule.just_id;
    if increments && exceeds_policy(group, &group.pel[&id]) {
        return Err(take_dead_letter(stream, key, group_name, id));
    }
    let previous = group.remove_pending(id).expect("pending");
    let delivery_count = match rule.retry_count {
        Some(count) => count,
        None if rule.just_id => previous.delivery_count,
        None => previous.delivery_count.saturating_add(1),
    };
    let pending = Pending {
        consumer: consumer_name.into(),
        delivery_time_ms: rule.delivery_time_ms,
        delivery_count,
    };
    group.pel.insert(id, pending);
    let consumer = group.consumer_or_create(consumer_name, now);
    consumer.pending.insert(id);
    consumer.active_time_ms = Some(now);
    Ok(if rule.just_id { id.frame() } else { entry_frame(id, &stream.entries[&id]) })
}

fn idle_enough(pending: &Pending, now: u64, min_idle: u64) -> bool {
    min_idle == 0 || now.saturating_sub(pending.delivery_time_ms) >= min_idle
}

/// `XCLAIM key group consumer min-idle-time id [id …] [IDLE ms] [TIME
/// unix-time-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]`
pub(crate) fn xclaim(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (key, group_name, consumer_name) = (&args[1], &args[2], &args[3]);
    let stream = stream_at(db, key, now)?;
    if !stream.is_some_and(|stream| stream.groups.contains_key(&group_name[..])) {
        return Err(no_group(key, group_name));
    }
    let min_idle = crate::parse::parse_i64(&args[4])
        .ok_or_else(|| error("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0) as u64;
    let mut ids = Vec::new();
    let mut index = 5;
    while index < args.len() {
        match parse_id(&args[index], 0, IdForm::Strict) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        index += 1;
    }
    let (mut force, mut just_id) = (false, false);
    let mut delivery_time: Option<i64> = None;
    let mut retry_count: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        let value = |what: &str| {
            crate::parse::parse_i64(&args[index + 1]).ok_or_else(|| {
                Frame::Error(format!("ERR Invalid {what} option argument for XCLAIM"))
            })
        };
        if is_option(option, "FORCE") {
            force = true;
        } else if is_option(option, "JUSTID") {
            just_id = true;
        } else if is_option(option, "IDLE") && more > 0 {
            delivery_time = Some((now as i64).saturating_sub(value("IDLE")?));
            index += 1;
        } else if is_option(option, "TIME") && more > 0 {
            delivery_time = Some(value("TIME")?);
            index += 1;
        } else if is_option(option, "RETRYCOUNT") && more > 0 {
            retry_count = Some(value("RETRYCOUNT")?);
            index += 1;
        } else if is_option(option, "LASTID") && more > 0 {
            last_id = parse_id(&args[index + 1], 0, IdForm::Strict)?;
            index += 1;
        } else {
            return Err(Frame::Error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                lossy(option)
            )));
        }
        index += 1;
    }
    check_dead_letter_target(db, key, group_name, now)?;
    let delivery_time_ms = match delivery_time {
        Some(time) if time >= 0 && time as u64 <= now => time as u64,
        _ => now,
    };
    // A negative RETRYCOUNT means "not given" in Redis.
    let retry_count = retry_count.and_then(|count| u64::try_from(count).ok());
    let rule = ClaimRule { delivery_time_ms, retry_count, just_id };
    let stream = stream_mut(db, key, now)?.expect("exists");
    let target = dead_letter_key(stream, group_name);
    let group = stream.groups.get_mut(&group_name[..]).expect("exists");
    if last_id > group.last_id {
        group.last_id = last_id;
    }
    group.consumer_or_create(consumer_name, now).seen_time_ms = now;
    let mut frames = Vec::new();
    let mut letters = Vec::new();
    for id in ids {
        let exists = stream.entries.contains_key(&id);
        let group = stream.groups.get_mut(&group_name[..]).expect("exists");
        if !exists {
            group.remove_pending(id);
            continue;
        }
        match group.pel.get(&id) {
            Some(pending) if !idle_enough(pending, now, min_idle) => continue,
            Some(_) => {}
            None if force => {
                // Created as Redis's FORCE does (count 1, no previous owner,
                // so the idle time does not apply), then claimed below.
                let pending = Pending {
                    consumer: consumer_name.as_ref().into(),
                    delivery_time_ms: now,
                    delivery_count: 1,
                };
                group.pel.insert(id, pending);
                group.consumer_or_create(consumer_name, now).pending.insert(id);
            }
            None => continue,
        }
        match claim_one(stream, key, group_name, consumer_name, id, &rule, now) {
            Ok(frame) => frames.push(frame),
            Err(letter) => letters.extend(letter),
        }
    }
    db.touch(key);
    if let Some(target) = target {
        write_dead_letters(db, &target, now, letters)?;
    }
    Ok(Frame::Array(frames))
}

/// Largest XAUTOCLAIM COUNT (Redis: `LONG_MAX / max(sizeof(streamID), 10)`).
const AUTOCLAIM_COUNT_MAX: i64 = i64::MAX / 16;
/// PEL entries XAUTOCLAIM may examine per entry it may claim.
const AUTOCLAIM_ATTEMPTS_FACTOR: u64 = 10;

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count]
/// [JUSTID]`: `[next cursor, claimed, deleted ids]`.
pub(crate) fn xautoclaim(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (key, group_name, consumer_name) = (&args[1], &args[2], &args[3]);
    let min_idle = crate::parse::parse_i64(&args[4])
        .ok_or_else(|| error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0) as u64;
    let start = parse_interval(&args[5], 0, true)?;
    let mut count: u64 = 100;
    let mut just_id = false;
    let mut index = 6;
    while index < args.len() {
        if is_option(&args[index], "COUNT") && index + 1 < args.len() {
            count = crate::parse::parse_i64(&args[index + 1])
                .filter(|count| (1..=AUTOCLAIM_COUNT_MAX).contains(count))
                .ok_or_else(|| error("ERR COUNT must be > 0"))? as u64;
            index += 2;
        } else if is_option(&args[index], "JUSTID") {
            just_id = true;
            index += 1;
        } else {
            return syntax_error();
        }
    }
    let stream = stream_at(db, key, now)?;
    if !stream.is_some_and(|stream| stream.groups.contains_key(&group_name[..])) {
        return Err(no_group(key, group_name));
    }
    check_dead_letter_target(db, key, group_name, now)?;
    let stream = stream_mut(db, key, now)?.expect("exists");
    let target = dead_letter_key(stream, group_name);
    let group = stream.groups.get_mut(&group_name[..]).expect("exists");
    group.consumer_or_create(consumer_name, now).seen_time_ms = now;
    let rule = ClaimRule { delivery_time_ms: now, retry_count: None, just_id };
    let mut attempts = count.saturating_mul(AUTOCLAIM_ATTEMPTS_FACTOR);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut letters = Vec::new();
    let mut last_examined: Option<StreamId> = None;
    while attempts > 0 && count > 0 {
        let lower = last_examined.map_or(Bound::Included(start), Bound::Excluded);
        let group = stream.groups.get_mut(&group_name[..]).expect("exists");
        let Some((&id, pending)) = group.pel.range((lower, Bound::Unbounded)).next() else {
            break;
        };
        attempts -= 1;
        last_examined = Some(id);
        if !stream.entries.contains_key(&id) {
            group.remove_pending(id);
            deleted.push(id.frame());
            count -= 1;
            continue;
        }
        if !idle_enough(pending, now, min_idle) {
            continue;
        }
        match claim_one(stream, key, group_name, consumer_name, id, &rule, now) {
            Ok(frame) => claimed.push(frame),
            Err(letter) => letters.extend(letter),
        }
        count -= 1;
    }
    let group = &stream.groups[&group_name[..]];
    let cursor = last_examined
        .and_then(|id| group.pel.range((Bound::Excluded(id), Bound::Unbounded)).next())
        .map_or(StreamId::MIN, |(id, _)| *id);
    db.touch(key);
    if let Some(target) = target {
        write_dead_letters(db, &target, now, letters)?;
    }
    Ok(Frame::Array(vec![cursor.frame(), Frame::Array(claimed), Frame::Array(deleted)]))
}
