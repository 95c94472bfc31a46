//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET
//! LREM LTRIM LINSERT LPOS LMOVE RPOPLPUSH, and the blocking BLPOP BRPOP
//! BLMOVE BRPOPLPUSH (see the crate documentation for how blocking works).

use bytes::Bytes;
use resp::Frame;

use crate::keyspace::{Items, Keyspace, Value};
use crate::parse::{self, integer_argument, is_option, ok, syntax_error};
use crate::reply::{self, bulk, error, Reply};
use crate::store::{Blocking, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Left,
    Right,
}

fn parse_end(argument: &[u8]) -> Result<End, Frame> {
    if is_option(argument, "LEFT") {
        Ok(End::Left)
    } else if is_option(argument, "RIGHT") {
        Ok(End::Right)
    } else {
        syntax_error()
    }
}

fn list_at<'a>(db: &'a Keyspace, key: &[u8], now: u64) -> Result<Option<&'a Items>, Frame> {
    match db.live(key, now) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::List(items) => Ok(Some(items)),
            _ => Err(reply::wrong_type()),
        },
    }
}

/// The list at `key` for modification, created empty if missing; the caller
/// changes it and calls `touch` (which drops it if it ended empty).
fn list_for_write<'a>(db: &'a mut Keyspace, key: &[u8], now: u64) -> Result<&'a mut Items, Frame> {
    list_at(db, key, now)?;
    match &mut db.live_or_create(key, now, Value::List(Box::default())).value {
        Value::List(items) => Ok(items),
        _ => unreachable!("checked a list"),
    }
}

fn push_one(items: &mut Items, end: End, item: &[u8]) {
    match end {
        End::Left => items.push_front(item.into()),
        End::Right => items.push_back(item.into()),
    }
}

fn pop_one(items: &mut Items, end: End) -> Option<Box<[u8]>> {
    match end {
        End::Left => items.pop_front(),
        End::Right => items.pop_back(),
    }
}

/// `LPUSH key element [element …]` and RPUSH, LPUSHX, RPUSHX (`only_existing`).
pub(crate) fn push(
    db: &mut Keyspace,
    now: u64,
    args: &[Bytes],
    end: End,
    only_existing: bool,
) -> Reply {
    let key = &args[1];
    if only_existing && list_at(db, key, now)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let items = list_for_write(db, key, now)?;
    for item in &args[2..] {
        push_one(items, end, item);
    }
    let length = items.len();
    db.touch(key);
    Ok(reply::integer(length))
}

/// `LPOP key [count]`, `RPOP key [count]`
pub(crate) fn pop(db: &mut Keyspace, now: u64, args: &[Bytes], end: End) -> Reply {
    let name = if end == End::Left { "lpop" } else { "rpop" };
    if args.len() > 3 {
        return Err(reply::wrong_arity(name));
    }
    let count = match args.get(2) {
        None => None,
        Some(text) => Some(parse::count_argument(text, reply::MUST_BE_POSITIVE)?),
    };
    let key = &args[1];
    if list_at(db, key, now)?.is_none() {
        return Ok(if count.is_some() { Frame::NullArray } else { Frame::Null });
    }
    let items = list_for_write(db, key, now)?;
    let reply = match count {
        None => bulk(&pop_one(items, end).expect("stored lists are not empty")),
        Some(count) => {
            let taken = (count as usize).min(items.len());
            Frame::Array(
                (0..taken).filter_map(|_| pop_one(items, end)).map(|item| bulk(&item)).collect(),
            )
        }
    };
    db.touch(key);
    Ok(reply)
}

/// `LLEN key`
pub(crate) fn llen(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(list_at(db, &args[1], now)?.map_or(0, Items::len)))
}

/// Redis's range normalization (LRANGE, LTRIM): `None` for an empty range.
fn normalize_range(start: i64, end: i64, length: usize) -> Option<(usize, usize)> {
    let length = length as i64;
    let start = if start < 0 { (length + start).max(0) } else { start };
    let end = if end < 0 { length + end } else { end };
    if start > end || start >= length {
        return None;
    }
    Some((start as usize, end.min(length - 1) as usize))
}

/// `LRANGE key start stop`
pub(crate) fn lrange(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let start = integer_argument(&args[2])?;
    let end = integer_argument(&args[3])?;
    let Some(items) = list_at(db, &args[1], now)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let frames = match normalize_range(start, end, items.len()) {
        None => Vec::new(),
        Some((start, end)) => items.range(start..=end).map(|item| bulk(item)).collect(),
    };
    Ok(Frame::Array(frames))
}

/// A list index (negative from the end) resolved to a position.
fn resolve_index(index: i64, length: usize) -> Option<usize> {
    let resolved = if index < 0 { length as i64 + index } else { index };
    usize::try_from(resolved).ok().filter(|&position| position < length)
}

/// `LINDEX key index`
pub(crate) fn lindex(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let index = integer_argument(&args[2])?;
    let items = list_at(db, &args[1], now)?;
    let item = items.and_then(|items| resolve_index(index, items.len()).map(|at| &items[at]));
    Ok(item.map_or(Frame::Null, |item| bulk(item)))
}

/// `LSET key index element`
pub(crate) fn lset(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let index = integer_argument(&args[2])?;
    let Some(items) = list_at(db, &args[1], now)? else {
        return Err(error(reply::NO_SUCH_KEY));
    };
    let position =
        resolve_index(index, items.len()).ok_or_else(|| error(reply::INDEX_OUT_OF_RANGE))?;
    list_for_write(db, &args[1], now)?[position] = args[3].as_ref().into();
    db.touch(&args[1]);
    ok()
}

/// `LREM key count element`: from the head if count > 0, the tail if < 0,
/// all if 0.
pub(crate) fn lrem(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let count = integer_argument(&args[2])?;
    let target = &args[3][..];
    if list_at(db, &args[1], now)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let items = list_for_write(db, &args[1], now)?;
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0;
    let mut kept: Items = Items::with_capacity(items.len());
    let mut consider = |item: Box<[u8]>, kept: &mut Items, at_front: bool| {
        if removed < limit && &item[..] == target {
            removed += 1;
        } else if at_front {
            kept.push_front(item);
        } else {
            kept.push_back(item);
        }
    };
    if count >= 0 {
        for item in items.drain(..) {
            consider(item, &mut kept, false);
        }
    } else {
        for item in items.drain(..).rev() {
            consider(item, &mut kept, true);
        }
    }
    *items = kept;
    if removed > 0 {
        db.touch(&args[1]);
    }
    Ok(reply::integer(removed))
}

/// `LTRIM key start stop`
pub(crate) fn ltrim(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let start = integer_argument(&args[2])?;
    let end = integer_argument(&args[3])?;
    let Some(length) = list_at(db, &args[1], now)?.map(Items::len) else {
        return ok();
    };
    let items = list_for_write(db, &args[1], now)?;
    match normalize_range(start, end, length) {
        None => items.clear(),
        Some((start, end)) => {
            items.truncate(end + 1);
            items.drain(..start);
        }
    }
    if items.len() != length {
        db.touch(&args[1]);
    }
    ok()
}

/// `LINSERT key BEFORE | AFTER pivot element`: -1 if the pivot is absent.
pub(crate) fn linsert(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let after = if is_option(&args[2], "AFTER") {
        true
    } else if is_option(&args[2], "BEFORE") {
        false
    } else {
        return syntax_error();
    };
    let Some(items) = list_at(db, &args[1], now)? else {
        return Ok(Frame::Integer(0));
    };
    let Some(position) = items.iter().position(|item| item[..] == args[3][..]) else {
        return Ok(Frame::Integer(-1));
    };
    let items = list_for_write(db, &args[1], now)?;
    items.insert(position + usize::from(after), args[4].as_ref().into());
    let length = items.len();
    db.touch(&args[1]);
    Ok(reply::integer(length))
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
pub(crate) fn lpos(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut index = 3;
    while index < args.len() {
        let Some(value) = args.get(index + 1) else { return syntax_error() };
        let option = &args[index];
        if is_option(option, "RANK") {
            rank = integer_argument(value)?;
            if rank == 0 {
                return Err(error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
            if rank == i64::MIN {
                return Err(error(reply::OUT_OF_RANGE));
            }
        } else if is_option(option, "COUNT") {
            count = Some(parse::count_argument(value, "ERR COUNT can't be negative")?);
        } else if is_option(option, "MAXLEN") {
            maxlen = parse::count_argument(value, "ERR MAXLEN can't be negative")?;
        } else {
            return syntax_error();
        }
        index += 2;
    }
    let Some(items) = list_at(db, &args[1], now)? else {
        return Ok(if count.is_some() { Frame::Array(Vec::new()) } else { Frame::Null });
    };
    let wanted = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(count) => count as usize,
    };
    let scanned = if maxlen == 0 { items.len() } else { (maxlen as usize).min(items.len()) };
    let positions: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..scanned)
    } else {
        Box::new((items.len() - scanned..items.len()).rev())
    };
    let target = &args[2][..];
    let matches: Vec<Frame> = positions
        .filter(|&position| items[position][..] == *target)
        .skip(rank.unsigned_abs() as usize - 1)
        .take(wanted)
        .map(reply::integer)
        .collect();
    Ok(match count {
        Some(_) => Frame::Array(matches),
        None => matches.into_iter().next().unwrap_or(Frame::Null),
    })
}

/// Pops from `source` and pushes to `target`: LMOVE's core. `Ok(None)` if the
/// source is missing. Both keys are type-checked first.
fn move_item(
    db: &mut Keyspace,
    now: u64,
    source: &[u8],
    target: &[u8],
    from: End,
    to: End,
) -> Result<Option<Frame>, Frame> {
    if list_at(db, source, now)?.is_none() {
        return Ok(None);
    }
    list_at(db, target, now)?;
    let item = pop_one(list_for_write(db, source, now)?, from).expect("stored lists are not empty");
    db.touch(source);
    push_one(list_for_write(db, target, now)?, to, &item);
    db.touch(target);
    Ok(Some(bulk(&item)))
}

/// `LMOVE source destination LEFT | RIGHT LEFT | RIGHT`
pub(crate) fn lmove(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    Ok(move_item(db, now, &args[1], &args[2], from, to)?.unwrap_or(Frame::Null))
}

/// `RPOPLPUSH source destination`
pub(crate) fn rpoplpush(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(move_item(db, now, &args[1], &args[2], End::Right, End::Left)?.unwrap_or(Frame::Null))
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: `None` waits forever.
fn parse_timeout(text: &[u8]) -> Result<Option<u64>, Frame> {
    let seconds = parse::parse_f64(text)
        .ok_or_else(|| error("ERR timeout is not a float or out of range"))?;
    if seconds < 0.0 {
        return Err(error("ERR timeout is negative"));
    }
    let ms = (seconds * 1000.0).ceil();
    if ms >= i64::MAX as f64 {
        return Err(error("ERR timeout is out of range"));
    }
    Ok(if ms == 0.0 { None } else { Some(ms as u64) })
}

/// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH.
pub(crate) fn run_blocking(
    db: &mut Keyspace,
    context: &Context,
    name: &str,
    args: &[Bytes],
) -> Result<Blocking, Frame> {
    let now = context.now_ms;
    let last = args.len() - 1;
    match name {
        "blpop" | "brpop" => {
            let timeout_ms = parse_timeout(&args[last])?;
            let end = if name == "blpop" { End::Left } else { End::Right };
            for key in &args[1..last] {
                if list_at(db, key, now)?.is_some() {
                    let item = pop_one(list_for_write(db, key, now)?, end).expect("not empty");
                    db.touch(key);
                    return Ok(Blocking::Served(Frame::Array(vec![
                        Frame::Bulk(key.clone()),
                        bulk(&item),
                    ])));
                }
            }
            Ok(Blocking::WouldBlock { keys: args[1..last].to_vec(), timeout_ms, retry_args: None })
        }
        "blmove" | "brpoplpush" => {
            let (from, to) = if name == "blmove" {
                (parse_end(&args[3])?, parse_end(&args[4])?)
            } else {
                (End::Right, End::Left)
            };
            let timeout_ms = parse_timeout(&args[last])?;
            match move_item(db, now, &args[1], &args[2], from, to)? {
                Some(frame) => Ok(Blocking::Served(frame)),
                None => Ok(Blocking::WouldBlock {
                    keys: vec![args[1].clone()],
                    timeout_ms,
                    retry_args: None,
                }),
            }
        }
        other => unreachable!("{other} is not a blocking command"),
    }
}
