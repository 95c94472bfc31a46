//! XINFO STREAM [FULL [COUNT count]] | GROUPS | CONSUMERS | HELP.

use bytes::Bytes;
use resp::Frame;

use super::{entry_frame, stream_at, Group, Stream, StreamId, NODE_ENTRIES};
use crate::keyspace::Keyspace;
use crate::parse::{integer_argument, is_option};
use crate::reply::{self, bulk, error, Reply};

fn field(name: &str, value: Frame) -> (Frame, Frame) {
    (Frame::Bulk(Bytes::copy_from_slice(name.as_bytes())), value)
}

fn int(value: u64) -> Frame {
    Frame::Integer(value.min(i64::MAX as u64) as i64)
}

fn optional(value: Option<u64>) -> Frame {
    value.map_or(Frame::Null, int)
}

fn syntax(args: &[Bytes]) -> Frame {
    Frame::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
        String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
    ))
}

/// `XINFO STREAM key [FULL [COUNT count]]`, `XINFO GROUPS key`,
/// `XINFO CONSUMERS key group`, `XINFO HELP`.
pub(crate) fn xinfo(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if is_option(&args[1], "HELP") {
        return Ok(Frame::Array(HELP.iter().map(|line| Frame::Simple(line.to_string())).collect()));
    }
    let Some(key) = args.get(2) else { return Err(syntax(args)) };
    let stream = stream_at(db, key, now)?.ok_or_else(|| error(reply::NO_SUCH_KEY))?;
    if is_option(&args[1], "CONSUMERS") && args.len() == 4 {
        let Some(group) = stream.groups.get(&args[3][..]) else {
            return Err(Frame::Error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&args[3]),
                String::from_utf8_lossy(key)
            )));
        };
        Ok(consumers(group, now))
    } else if is_option(&args[1], "GROUPS") && args.len() == 3 {
        Ok(Frame::Array(stream.groups.iter().map(|(name, g)| group(stream, name, g)).collect()))
    } else if is_option(&args[1], "STREAM") {
        stream_info(stream, args)
    } else {
        Err(syntax(args))
    }
}

const HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
];

fn consumers(group: &Group, now: u64) -> Frame {
    Frame::Array(
        group
            .consumers
            .iter()
            .map(|(name, consumer)| {
                let inactive = consumer
                    .active_time_ms
                    .map_or(Frame::Integer(-1), |at| int(now.saturating_sub(at)));
                Frame::Map(vec![
                    field("name", bulk(name)),
                    field("pending", reply::integer(consumer.pending.len())),
                    field("idle", int(now.saturating_sub(consumer.seen_time_ms))),
                    field("inactive", inactive),
                ])
            })
            .collect(),
    )
}

/// One XINFO GROUPS element, with cohort's dead-letter policy at the end.
fn group(stream: &Stream, name: &[u8], group: &Group) -> Frame {
    let policy = group.dead_letter.as_ref();
    Frame::Map(vec![
        field("name", bulk(name)),
        field("consumers", reply::integer(group.consumers.len())),
        field("pending", reply::integer(group.pel.len())),
        field("last-delivered-id", group.last_id.frame()),
        field("entries-read", optional(group.entries_read)),
        field("lag", optional(stream.lag(group))),
        field("max-deliveries", optional(policy.map(|policy| policy.max_deliveries))),
        field("dead-letter-key", policy.map_or(Frame::Null, |policy| bulk(&policy.key))),
    ])
}

fn stream_info(stream: &Stream, args: &[Bytes]) -> Reply {
    let options = &args[3..];
    let full_count = match options.len() {
        0 => None,
        1 if is_option(&options[0], "FULL") => Some(10),
        3 if is_option(&options[0], "FULL") && is_option(&options[1], "COUNT") => {
            let count = integer_argument(&options[2])?;
            Some(if count < 0 { 10 } else { count as u64 })
        }
        _ => return Err(syntax(args)),
    };
    let nodes = (stream.len() as u64).div_ceil(NODE_ENTRIES);
    let mut fields = vec![
        field("length", reply::integer(stream.len())),
        field("radix-tree-keys", int(nodes)),
        field("radix-tree-nodes", int(nodes)),
        field("last-generated-id", stream.last_id.frame()),
        field("max-deleted-entry-id", stream.max_deleted_id.frame()),
        field("entries-added", int(stream.entries_added)),
        field("recorded-first-entry-id", stream.first_id.frame()),
    ];
    let Some(count) = full_count else {
        let edge = |entry: Option<(&StreamId, &super::EntryFields)>| {
            entry.map_or(Frame::Null, |(id, fields)| entry_frame(*id, fields))
        };
        fields.push(field("groups", reply::integer(stream.groups.len())));
        fields.push(field("first-entry", edge(stream.entries.iter().next())));
        fields.push(field("last-entry", edge(stream.entries.iter().next_back())));
        return Ok(Frame::Map(fields));
    };
    let limit = if count == 0 { usize::MAX } else { count as usize };
    let entries = stream.entries.iter().take(limit).map(|(id, f)| entry_frame(*id, f)).collect();
    fields.push(field("entries", Frame::Array(entries)));
    let groups = stream.groups.iter().map(|(name, group)| full_group(stream, name, group, limit));
    fields.push(field("groups", Frame::Array(groups.collect())));
    Ok(Frame::Map(fields))
}

fn full_group(stream: &Stream, name: &[u8], group: &Group, limit: usize) -> Frame {
    let pending = group
        .pel
        .iter()
        .take(limit)
        .map(|(id, pending)| {
            Frame::Array(vec![
                id.frame(),
                bulk(&pending.consumer),
                int(pending.delivery_time_ms),
                int(pending.delivery_count),
            ])
        })
        .collect();
    let consumers = group
        .consumers
        .iter()
        .map(|(name, consumer)| {
            let owned = consumer
                .pending
                .iter()
                .take(limit)
                .map(|id| {
                    let pending = &group.pel[id];
                    Frame::Array(vec![
                        id.frame(),
                        int(pending.delivery_time_ms),
                        int(pending.delivery_count),
                    ])
                })
                .collect();
            Frame::Map(vec![
                field("name", bulk(name)),
                field("seen-time", int(consumer.seen_time_ms)),
                field("active-time", consumer.active_time_ms.map_or(Frame::Integer(-1), int)),
                field("pel-count", reply::integer(consumer.pending.len())),
                field("pending", Frame::Array(owned)),
            ])
        })
        .collect();
    Frame::Map(vec![
        field("name", bulk(name)),
        field("last-delivered-id", group.last_id.frame()),
        field("entries-read", optional(group.entries_read)),
        field("lag", optional(stream.lag(group))),
        field("pel-count", reply::integer(group.pel.len())),
        field("pending", Frame::Array(pending)),
        field("consumers", Frame::Array(consumers)),
    ])
}
