//! Hash commands: HSET HMSET HSETNX HGET HMGET HDEL HEXISTS HLEN HSTRLEN
//! HGETALL HKEYS HVALS HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN. Fields are kept
//! in scan order, so every multi-field reply has a deterministic order.

use bytes::Bytes;
use resp::Frame;

use crate::glob;
use crate::keys::{parse_scan, scan_reply, scan_window};
use crate::keyspace::{self, Fields, Keyspace, ScanKey, Value};
use crate::parse::{self, float_argument, integer_argument, is_option, syntax_error};
use crate::random::Rng;
use crate::reply::{self, bulk, error, Reply};
use crate::store::Context;

fn hash_at<'a>(db: &'a Keyspace, key: &[u8], now: u64) -> Result<Option<&'a Fields>, Frame> {
    match db.live(key, now) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Hash(fields) => Ok(Some(fields)),
            _ => Err(reply::wrong_type()),
        },
    }
}

/// The hash at `key` for modification, created empty if missing; the
/// caller adds fields and calls `touch`.
fn hash_for_write<'a>(db: &'a mut Keyspace, key: &[u8], now: u64) -> Result<&'a mut Fields, Frame> {
    hash_at(db, key, now)?;
    match &mut db.live_or_create(key, now, Value::Hash(Box::default())).value {
        Value::Hash(fields) => Ok(fields),
        _ => unreachable!("checked a hash"),
    }
}

fn field_value<'a>(fields: Option<&'a Fields>, field: &[u8]) -> Option<&'a [u8]> {
    fields.and_then(|fields| keyspace::map_get(fields, field)).map(|value| &value[..])
}

/// `HSET key field value [field value …]` (and the deprecated HMSET, which
/// replies OK): replies how many fields were new.
pub(crate) fn hset(db: &mut Keyspace, now: u64, args: &[Bytes], legacy: bool) -> Reply {
    if args.len() % 2 != 0 {
        return Err(reply::wrong_arity(if legacy { "hmset" } else { "hset" }));
    }
    let key = &args[1];
    let fields = hash_for_write(db, key, now)?;
    let mut added = 0;
    for pair in args[2..].chunks_exact(2) {
        match keyspace::map_get_mut(fields, &pair[0]) {
            Some(value) => *value = pair[1].as_ref().into(),
            None => {
                fields.insert(ScanKey::new(&pair[0]), pair[1].as_ref().into());
                added += 1;
            }
        }
    }
    db.touch(key);
    Ok(if legacy { Frame::ok() } else { reply::integer(added) })
}

/// `HSETNX key field value`
pub(crate) fn hsetnx(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if field_value(hash_at(db, &args[1], now)?, &args[2]).is_some() {
        return Ok(Frame::Integer(0));
    }
    let fields = hash_for_write(db, &args[1], now)?;
    fields.insert(ScanKey::new(&args[2]), args[3].as_ref().into());
    db.touch(&args[1]);
    Ok(Frame::Integer(1))
}

/// `HGET key field`
pub(crate) fn hget(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(field_value(hash_at(db, &args[1], now)?, &args[2]).map_or(Frame::Null, bulk))
}

/// `HMGET key field [field …]`
pub(crate) fn hmget(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let fields = hash_at(db, &args[1], now)?;
    let values = args[2..].iter().map(|field| field_value(fields, field).map_or(Frame::Null, bulk));
    Ok(Frame::Array(values.collect()))
}

/// `HDEL key field [field …]`
pub(crate) fn hdel(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if hash_at(db, &args[1], now)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let fields = hash_for_write(db, &args[1], now)?;
    let removed =
        args[2..].iter().filter(|field| keyspace::map_remove(fields, field).is_some()).count();
    if removed > 0 {
        db.touch(&args[1]);
    }
    Ok(reply::integer(removed))
}

/// `HEXISTS key field`
pub(crate) fn hexists(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(Frame::Integer(field_value(hash_at(db, &args[1], now)?, &args[2]).is_some().into()))
}

/// `HLEN key`
pub(crate) fn hlen(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(hash_at(db, &args[1], now)?.map_or(0, Fields::len)))
}

/// `HSTRLEN key field`
pub(crate) fn hstrlen(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(field_value(hash_at(db, &args[1], now)?, &args[2]).map_or(0, <[u8]>::len)))
}

/// `HGETALL key`: a map (flattened to field, value, … on RESP2).
pub(crate) fn hgetall(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let fields = hash_at(db, &args[1], now)?;
    let pairs =
        fields.into_iter().flatten().map(|(field, value)| (bulk(field.name()), bulk(value)));
    Ok(Frame::Map(pairs.collect()))
}

/// `HKEYS key`
pub(crate) fn hkeys(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let fields = hash_at(db, &args[1], now)?;
    Ok(Frame::Array(fields.into_iter().flatten().map(|(field, _)| bulk(field.name())).collect()))
}

/// `HVALS key`
pub(crate) fn hvals(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let fields = hash_at(db, &args[1], now)?;
    Ok(Frame::Array(fields.into_iter().flatten().map(|(_, value)| bulk(value)).collect()))
}

/// Stores `value` in `field`, creating the hash if needed.
fn put_field(
    db: &mut Keyspace,
    key: &[u8],
    now: u64,
    field: &[u8],
    value: &[u8],
) -> Result<(), Frame> {
    let fields = hash_for_write(db, key, now)?;
    match keyspace::map_get_mut(fields, field) {
        Some(existing) => *existing = value.into(),
        None => {
            fields.insert(ScanKey::new(field), value.into());
        }
    }
    db.touch(key);
    Ok(())
}

/// `HINCRBY key field increment`
pub(crate) fn hincrby(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let increment = integer_argument(&args[3])?;
    let current = match field_value(hash_at(db, &args[1], now)?, &args[2]) {
        None => 0,
        Some(text) => {
            parse::parse_i64(text).ok_or_else(|| error("ERR hash value is not an integer"))?
        }
    };
    let result = current.checked_add(increment).ok_or_else(|| error(reply::OVERFLOW))?;
    put_field(db, &args[1], now, &args[2], result.to_string().as_bytes())?;
    Ok(Frame::Integer(result))
}

/// `HINCRBYFLOAT key field increment`: replies the new value as a bulk string.
pub(crate) fn hincrbyfloat(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let increment = float_argument(&args[3])?;
    let current = match field_value(hash_at(db, &args[1], now)?, &args[2]) {
        None => 0.0,
        Some(text) => {
            parse::parse_f64(text).ok_or_else(|| error("ERR hash value is not a float"))?
        }
    };
    let result = current + increment;
    if !result.is_finite() {
        return Err(error(reply::NAN_OR_INFINITY));
    }
    let text = parse::format_f64(result);
    put_field(db, &args[1], now, &args[2], text.as_bytes())?;
    Ok(Frame::bulk(text))
}

/// Picks `count` distinct elements of a scan-ordered map uniformly (partial
/// Fisher-Yates over all elements: O(n)), or `count` independent draws with
/// repetition when `repeat` (O(count · log n), see `keyspace::pick_one`).
pub(crate) fn sample<'m, V>(
    map: &'m std::collections::BTreeMap<ScanKey, V>,
    rng: &mut Rng,
    count: usize,
    repeat: bool,
) -> Vec<(&'m ScanKey, &'m V)> {
    if map.is_empty() {
        return Vec::new();
    }
    if repeat {
        return (0..count).filter_map(|_| keyspace::pick_one(map, rng)).collect();
    }
    let mut all: Vec<_> = map.iter().collect();
    if count >= all.len() {
        return all;
    }
    for index in 0..count {
        let pick = index + rng.below((all.len() - index) as u64) as usize;
        all.swap(index, pick);
    }
    all.truncate(count);
    all
}

/// `HRANDFIELD key [count [WITHVALUES]]`. With a count, values follow their
/// fields in one flat array (the RESP2 shape). A negative count allows
/// repeats.
pub(crate) fn hrandfield(db: &Keyspace, context: &Context, args: &[Bytes]) -> Reply {
    let fields = hash_at(db, &args[1], context.now_ms)?;
    let mut rng = Rng::new(context.seed);
    let Some(count_text) = args.get(2) else {
        let picked = fields.and_then(|fields| keyspace::pick_one(fields, &mut rng));
        return Ok(picked.map_or(Frame::Null, |(field, _)| bulk(field.name())));
    };
    let count = integer_argument(count_text)?;
    let with_values = match &args[3..] {
        [] => false,
        [option] if is_option(option, "WITHVALUES") => true,
        _ => return syntax_error(),
    };
    if count < 0 && count.unsigned_abs() > crate::sets::SAMPLE_COUNT_MAX {
        return Err(error(reply::OUT_OF_RANGE));
    }
    let Some(fields) = fields else {
        return Ok(Frame::Array(Vec::new()));
    };
    let picked = sample(fields, &mut rng, count.unsigned_abs() as usize, count < 0);
    let mut frames = Vec::with_capacity(picked.len() * if with_values { 2 } else { 1 });
    for (field, value) in picked {
        frames.push(bulk(field.name()));
        if with_values {
            frames.push(bulk(value));
        }
    }
    Ok(Frame::Array(frames))
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`
pub(crate) fn hscan(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_scan(&args[2..], false, true)?;
    let Some(fields) = hash_at(db, &args[1], now)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let window = keyspace::range_from(fields, options.cursor)
        .map(|(field, value)| (field.hash(), (field, value)));
    let (visited, next) = scan_window(window, options.count);
    let mut frames = Vec::new();
    for (field, value) in visited {
        if options.pattern.map_or(true, |pattern| glob::matches(pattern, field.name())) {
            frames.push(bulk(field.name()));
            if !options.no_values {
                frames.push(bulk(value));
            }
        }
    }
    Ok(scan_reply(next, frames))
}
