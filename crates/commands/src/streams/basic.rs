//! XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD, and the blocking entry point
//! for XREAD / XREADGROUP.

use bytes::Bytes;
use resp::Frame;

use super::{
    entry_frame, parse_block_ms, parse_id, parse_interval, stream_at, stream_mut, stream_or_create,
    IdForm, NewId, Stream, StreamId, NODE_ENTRIES,
};
use crate::keyspace::Keyspace;
use crate::parse::{integer_argument, is_option, syntax_error};
use crate::reply::{self, error, Reply};
use crate::store::{Blocking, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    None,
    MaxLength(u64),
    MinId(StreamId),
}

/// XADD / XTRIM options (Redis's `streamAddTrimArgs`).
struct TrimOptions {
    strategy: Strategy,
    approximate: bool,
    /// Entries removed at most; 0 means no limit.
    limit: u64,
}

/// XADD's own options besides trimming.
#[derive(Default)]
struct AddOptions {
    no_create: bool,
    idempotent: Option<(Bytes, u64)>,
}

/// Parses options from `args[2]`; for XADD stops at the id and returns its
/// position.
fn parse_trim(args: &[Bytes], add: Option<&mut AddOptions>) -> Result<(TrimOptions, usize), Frame> {
    let mut options = TrimOptions { strategy: Strategy::None, approximate: false, limit: 0 };
    let mut add = add;
    let mut limit_given = false;
    let mut index = 2;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        if add.is_some() && option[..] == b"*"[..] {
            break;
        } else if (is_option(option, "MAXLEN") || is_option(option, "MINID")) && more > 0 {
            if options.strategy != Strategy::None {
                return Err(error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not \
                     compatible",
                ));
            }
            options.approximate = false;
            let next = &args[index + 1];
            if more >= 2 && (next[..] == b"~"[..] || next[..] == b"="[..]) {
                options.approximate = next[..] == b"~"[..];
                index += 1;
            }
            let value = &args[index + 1];
            options.strategy = if is_option(option, "MAXLEN") {
                let length = integer_argument(value)?;
                if length < 0 {
                    return Err(error("ERR The MAXLEN argument must be >= 0."));
                }
                Strategy::MaxLength(length as u64)
            } else {
                Strategy::MinId(parse_id(value, 0, IdForm::Strict)?)
            };
            index += 2;
        } else if is_option(option, "LIMIT") && more > 0 {
            let limit = integer_argument(&args[index + 1])?;
            if limit < 0 {
                return Err(error("ERR The LIMIT argument must be >= 0."));
            }
            options.limit = limit as u64;
            limit_given = true;
            index += 2;
        } else if let Some(add) = add.as_deref_mut() {
            if is_option(option, "NOMKSTREAM") {
                add.no_create = true;
                index += 1;
            } else if is_option(option, "IDEMPOTENT") && more >= 2 {
                let seq = crate::parse::count_argument(
                    &args[index + 2],
                    "ERR IDEMPOTENT sequence must be a non-negative integer",
                )?;
                add.idempotent = Some((args[index + 1].clone(), seq));
                index += 3;
            } else {
                // The id: validated by the caller.
                break;
            }
        } else {
            return syntax_error();
        }
    }
    if options.limit > 0 && options.strategy == Strategy::None {
        return Err(error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if add.is_none() && options.strategy == Strategy::None {
        return Err(error("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if options.approximate {
        if !limit_given {
            options.limit = 100 * NODE_ENTRIES;
        }
    } else if limit_given {
        return Err(error("ERR syntax error, LIMIT cannot be used without the special ~ option"));
    }
    Ok((options, index))
}

/// Trims the stream; returns how many entries went (see the module docs for
/// `~`).
fn trim(stream: &mut Stream, options: &TrimOptions) -> u64 {
    let length = stream.len() as u64;
    let mut excess = match options.strategy {
        Strategy::None => return 0,
        Strategy::MaxLength(maximum) => length.saturating_sub(maximum),
        Strategy::MinId(minimum) => stream.entries.range(..minimum).count() as u64,
    };
    if options.approximate {
        let mut cap = excess;
        if options.limit > 0 {
            cap = cap.min(options.limit);
        }
        excess = cap - cap % NODE_ENTRIES;
    } else if options.limit > 0 {
        excess = excess.min(options.limit);
    }
    stream.remove_head(excess)
}

/// `XADD key [NOMKSTREAM] [IDEMPOTENT producer seq] [MAXLEN|MINID [=|~]
/// threshold [LIMIT count]] <* | id> field value [field value …]`
pub(crate) fn xadd(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let mut add = AddOptions::default();
    let (options, id_at) = parse_trim(args, Some(&mut add))?;
    let Some(id_text) = args.get(id_at) else { return Err(reply::wrong_arity("xadd")) };
    let wanted = parse_new_id(id_text)?;
    let field_count = args.len() - id_at - 1;
    if field_count < 2 || field_count % 2 == 1 {
        return Err(reply::wrong_arity("xadd"));
    }
    if wanted == NewId::Explicit(StreamId::MIN) {
        return Err(error("ERR The ID specified in XADD must be greater than 0-0"));
    }
    let key = &args[1];
    if stream_at(db, key, now)?.is_none() && add.no_create {
        return Ok(Frame::Null);
    }
    if let (Some((producer, seq)), Some(stream)) = (&add.idempotent, stream_at(db, key, now)?) {
        if let Some(known) = stream.producers.get(&producer[..]) {
            if *seq == known.last_seq {
                return Ok(known.last_id.frame());
            }
            if *seq < known.last_seq {
                return Err(Frame::Error(format!(
                    "ERR IDEMPOTENT sequence {seq} is lower than the last one seen for producer \
                     '{}' ({})",
                    String::from_utf8_lossy(producer),
                    known.last_seq
                )));
            }
        }
    }
    // Check before creating the key, so a failed XADD leaves no empty stream.
    if let Some(stream) = stream_at(db, key, now)? {
        stream.next_id(wanted, now).map_err(|error| error.frame())?;
    }
    let stream = stream_or_create(db, key, now)?;
    let fields = args[id_at + 1..].iter().map(|item| item.as_ref().into()).collect();
    let id = stream.append(wanted, now, fields).expect("checked above");
    if let Some((producer, seq)) = &add.idempotent {
        stream.remember_producer(producer, *seq, id);
    }
    trim(stream, &options);
    db.touch(key);
    Ok(id.frame())
}

fn parse_new_id(text: &[u8]) -> Result<NewId, Frame> {
    if text == b"*" {
        return Ok(NewId::Auto);
    }
    if let Some(ms_text) = text.strip_suffix(b"-*") {
        let id = parse_id(ms_text, 0, IdForm::Strict)?;
        if !ms_text.contains(&b'-') {
            return Ok(NewId::AutoSequence(id.ms));
        }
    }
    parse_id(text, 0, IdForm::Strict).map(NewId::Explicit)
}

/// `XLEN key`
pub(crate) fn xlen(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(stream_at(db, &args[1], now)?.map_or(0, Stream::len)))
}

/// `XRANGE key start end [COUNT count]` and XREVRANGE (`end start`).
pub(crate) fn xrange(db: &Keyspace, now: u64, args: &[Bytes], reverse: bool) -> Reply {
    let (start_text, end_text) = if reverse { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let start = parse_interval(start_text, 0, true)?;
    let end = parse_interval(end_text, u64::MAX, false)?;
    let mut count: Option<u64> = None;
    let mut index = 4;
    while index < args.len() {
        if is_option(&args[index], "COUNT") && index + 1 < args.len() {
            count = Some(integer_argument(&args[index + 1])?.max(0) as u64);
            index += 2;
        } else {
            return syntax_error();
        }
    }
    let Some(stream) = stream_at(db, &args[1], now)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Frame::NullArray);
    }
    let limit = count.map_or(usize::MAX, |count| usize::try_from(count).unwrap_or(usize::MAX));
    let entries = stream.range(start, end, reverse).take(limit);
    Ok(Frame::Array(entries.map(|(id, fields)| entry_frame(*id, fields)).collect()))
}

/// Parses every id argument strictly (all or nothing, as Redis does).
pub(crate) fn parse_ids(texts: &[Bytes]) -> Result<Vec<StreamId>, Frame> {
    texts.iter().map(|text| parse_id(text, 0, IdForm::Strict)).collect()
}

/// `XDEL key id [id …]`
pub(crate) fn xdel(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let ids = parse_ids(&args[2..])?;
    let Some(stream) = stream_mut(db, &args[1], now)? else { return Ok(Frame::Integer(0)) };
    let deleted = ids.into_iter().filter(|id| stream.delete(*id)).count();
    if deleted > 0 {
        db.touch(&args[1]);
    }
    Ok(reply::integer(deleted))
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
pub(crate) fn xtrim(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (options, end) = parse_trim(args, None)?;
    assert_eq!(end, args.len());
    let Some(stream) = stream_mut(db, &args[1], now)? else { return Ok(Frame::Integer(0)) };
    let removed = trim(stream, &options);
    if removed > 0 {
        db.touch(&args[1]);
    }
    Ok(Frame::Integer(removed as i64))
}

/// XREAD / XREADGROUP options.
pub(crate) struct ReadOptions {
    pub(crate) block_ms: Option<Option<u64>>,
    /// 0: no limit.
    pub(crate) count: u64,
    pub(crate) group: Option<(Bytes, Bytes)>,
    pub(crate) no_ack: bool,
    /// Position of the first key.
    pub(crate) streams_at: usize,
    pub(crate) stream_count: usize,
}

/// Parses XREAD / XREADGROUP up to STREAMS (Redis's `xreadCommand`).
pub(crate) fn parse_read(args: &[Bytes], is_group: bool) -> Result<ReadOptions, Frame> {
    let name = if is_group { "xreadgroup" } else { "xread" };
    let mut options = ReadOptions {
        block_ms: None,
        count: 0,
        group: None,
        no_ack: false,
        streams_at: 0,
        stream_count: 0,
    };
    let mut index = 1;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        if is_option(option, "BLOCK") && more > 0 {
            options.block_ms = Some(parse_block_ms(&args[index + 1])?);
            index += 2;
        } else if is_option(option, "COUNT") && more > 0 {
            options.count = integer_argument(&args[index + 1])?.max(0) as u64;
            index += 2;
        } else if is_option(option, "STREAMS") && more > 0 {
            options.streams_at = index + 1;
            if more % 2 != 0 {
                let symbol = if is_group { '>' } else { '$' };
                return Err(Frame::Error(format!(
                    "ERR Unbalanced '{name}' list of streams: for each stream key an ID or \
                     '{symbol}' must be specified."
                )));
            }
            options.stream_count = more / 2;
            break;
        } else if is_option(option, "GROUP") && more >= 2 {
            if !is_group {
                return Err(error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            }
            options.group = Some((args[index + 1].clone(), args[index + 2].clone()));
            index += 3;
        } else if is_option(option, "NOACK") {
            if !is_group {
                return Err(error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            }
            options.no_ack = true;
            index += 1;
        } else {
            return syntax_error();
        }
    }
    if options.streams_at == 0 {
        return syntax_error();
    }
    if is_group && options.group.is_none() {
        return Err(error("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(options)
}

/// XREAD's ids, `$` resolved to each stream's current top id.
fn resolve_read_ids(
    db: &Keyspace,
    now: u64,
    args: &[Bytes],
    options: &ReadOptions,
) -> Result<Vec<StreamId>, Frame> {
    let keys = &args[options.streams_at..options.streams_at + options.stream_count];
    let texts = &args[options.streams_at + options.stream_count..];
    let mut ids = Vec::with_capacity(keys.len());
    for (key, text) in keys.iter().zip(texts) {
        let stream = stream_at(db, key, now)?;
        if text[..] == b"$"[..] {
            ids.push(stream.map_or(StreamId::MIN, |stream| stream.last_id));
        } else if text[..] == b">"[..] {
            return Err(error(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP \
                 <group> <consumer> option.",
            ));
        } else {
            ids.push(parse_id(text, 0, IdForm::Strict)?);
        }
    }
    Ok(ids)
}

/// What XREAD serves for `ids`: `None` if no stream has anything newer.
fn serve_read(
    db: &Keyspace,
    now: u64,
    args: &[Bytes],
    options: &ReadOptions,
    ids: &[StreamId],
) -> Result<Option<Frame>, Frame> {
    let keys = &args[options.streams_at..options.streams_at + options.stream_count];
    let limit = if options.count == 0 { usize::MAX } else { options.count as usize };
    let mut served = Vec::new();
    for (key, after) in keys.iter().zip(ids) {
        let Some(stream) = stream_at(db, key, now)? else { continue };
        let Some(start) = after.next() else { continue };
        let entries: Vec<Frame> = stream
            .range(start, StreamId::MAX, false)
            .take(limit)
            .map(|(id, fields)| entry_frame(*id, fields))
            .collect();
        if !entries.is_empty() {
            served.push(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(entries)]));
        }
    }
    Ok(if served.is_empty() { None } else { Some(Frame::Array(served)) })
}

/// `XREAD [COUNT count] [BLOCK ms] STREAMS key [key …] id [id …]` without
/// blocking (the read path, and inside MULTI).
pub(crate) fn xread(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_read(args, false)?;
    let ids = resolve_read_ids(db, now, args, &options)?;
    Ok(serve_read(db, now, args, &options, &ids)?.unwrap_or(Frame::NullArray))
}

fn xread_blocking(db: &Keyspace, now: u64, args: &[Bytes]) -> Result<Blocking, Frame> {
    let options = parse_read(args, false)?;
    let ids = resolve_read_ids(db, now, args, &options)?;
    if let Some(frame) = serve_read(db, now, args, &options, &ids)? {
        return Ok(Blocking::Served(frame));
    }
    let Some(timeout_ms) = options.block_ms else {
        return Ok(Blocking::Served(Frame::NullArray));
    };
    let keys = args[options.streams_at..options.streams_at + options.stream_count].to_vec();
    // `$` means "newer than the top now": pin it, or every retry would wait
    // for an entry newer than the one that woke it.
    let first_id_at = options.streams_at + options.stream_count;
    let retry_args = args[first_id_at..].iter().any(|text| text[..] == b"$"[..]).then(|| {
        let mut resolved = args.to_vec();
        for (offset, id) in ids.iter().enumerate() {
            if resolved[first_id_at + offset][..] == b"$"[..] {
                resolved[first_id_at + offset] = Bytes::from(id.text());
            }
        }
        resolved
    });
    Ok(Blocking::WouldBlock { keys, timeout_ms, retry_args })
}

/// XREAD and XREADGROUP through the log: served, or would block having
/// changed nothing.
pub(crate) fn run_blocking(
    db: &mut Keyspace,
    context: &Context,
    name: &str,
    args: &[Bytes],
) -> Result<Blocking, Frame> {
    match name {
        "xread" => xread_blocking(db, context.now_ms, args),
        "xreadgroup" => super::groups::xreadgroup(db, context.now_ms, args),
        other => unreachable!("{other} is not a blocking stream command"),
    }
}
