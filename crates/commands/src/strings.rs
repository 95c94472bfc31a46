//! String commands: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET
//! MSETNX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE SETRANGE,
//! with Redis 7 semantics.

use std::num::NonZeroU64;

use bytes::Bytes;
use resp::Frame;

use crate::keyspace::{Keyspace, Text, Value};
use crate::parse::{self, float_argument, integer_argument, is_option, ok, syntax_error};
use crate::reply::{self, bulk, error, Reply};

/// Redis's default `proto-max-bulk-len`: the largest string a command may build.
pub(crate) const STRING_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// The live string at `key`: `Ok(None)` if missing, WRONGTYPE if another type.
pub(crate) fn string_at<'a>(
    db: &'a Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a [u8]>, Frame> {
    match db.live(key, now) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::String(text) => Ok(Some(text.as_bytes())),
            _ => Err(reply::wrong_type()),
        },
    }
}

fn store_string(db: &mut Keyspace, key: &[u8], value: &[u8], expires_at_ms: Option<NonZeroU64>) {
    db.put(key, Value::String(Text::new(value)), expires_at_ms);
}

fn optional_bulk(value: Option<&[u8]>) -> Frame {
    value.map(bulk).unwrap_or(Frame::Null)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Seconds,
    Milliseconds,
}

/// Redis's `getExpireMillisecondsOrReply`: a positive amount, converted to an
/// absolute time in ms without overflow, else `invalid expire time`.
fn expire_at(
    raw: &[u8],
    unit: Unit,
    relative: bool,
    now: u64,
    command: &str,
) -> Result<NonZeroU64, Frame> {
    let amount = integer_argument(raw)?;
    if amount <= 0 {
        return Err(reply::invalid_expire(command));
    }
    let ms = match unit {
        Unit::Seconds => amount.checked_mul(1000),
        Unit::Milliseconds => Some(amount),
    };
    let absolute = ms.and_then(|ms| if relative { ms.checked_add(now as i64) } else { Some(ms) });
    absolute
        .and_then(|ms| u64::try_from(ms).ok())
        .and_then(NonZeroU64::new)
        .ok_or_else(|| reply::invalid_expire(command))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    Always,
    IfMissing,
    IfExists,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpiryChange {
    /// Remove any TTL (SET's default, GETEX PERSIST).
    Clear,
    /// Keep the TTL (SET KEEPTTL, GETEX without options).
    Keep,
    At(NonZeroU64),
}

/// Options of SET and GETEX, parsed like Redis's
/// `parseExtendedStringArgumentsOrReply`: each option at most once, NX/XX and
/// the expiry forms mutually exclusive, anything else a syntax error.
struct StringOptions {
    condition: Condition,
    get: bool,
    expiry: ExpiryChange,
}

fn parse_string_options(
    options: &[Bytes],
    now: u64,
    command: &str,
) -> Result<StringOptions, Frame> {
    let for_set = command == "set";
    let mut parsed = StringOptions {
        condition: Condition::Always,
        get: false,
        expiry: if for_set { ExpiryChange::Clear } else { ExpiryChange::Keep },
    };
    let mut expiry_given = false;
    let mut pending: Option<(Unit, bool, &Bytes)> = None;
    let mut index = 0;
    while index < options.len() {
        let option = &options[index];
        let next = options.get(index + 1);
        if for_set && is_option(option, "NX") && parsed.condition == Condition::Always {
            parsed.condition = Condition::IfMissing;
        } else if for_set && is_option(option, "XX") && parsed.condition == Condition::Always {
            parsed.condition = Condition::IfExists;
        } else if for_set && is_option(option, "GET") && !parsed.get {
            parsed.get = true;
        } else if for_set && is_option(option, "KEEPTTL") && !expiry_given {
            expiry_given = true;
            parsed.expiry = ExpiryChange::Keep;
        } else if !for_set && is_option(option, "PERSIST") && !expiry_given {
            expiry_given = true;
            parsed.expiry = ExpiryChange::Clear;
        } else if let (Some(form), Some(amount), false) = (expire_form(option), next, expiry_given)
        {
            expiry_given = true;
            pending = Some((form.0, form.1, amount));
            index += 1;
        } else {
            return syntax_error();
        }
        index += 1;
    }
    if let Some((unit, relative, amount)) = pending {
        parsed.expiry = ExpiryChange::At(expire_at(amount, unit, relative, now, command)?);
    }
    Ok(parsed)
}

/// `EX` → (seconds, relative) and so on.
fn expire_form(option: &[u8]) -> Option<(Unit, bool)> {
    [
        ("EX", Unit::Seconds, true),
        ("PX", Unit::Milliseconds, true),
        ("EXAT", Unit::Seconds, false),
        ("PXAT", Unit::Milliseconds, false),
    ]
    .into_iter()
    .find(|(name, _, _)| is_option(option, name))
    .map(|(_, unit, relative)| (unit, relative))
}

/// `GET key`
pub(crate) fn get(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(optional_bulk(string_at(db, &args[1], now)?))
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]`
pub(crate) fn set(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_string_options(&args[3..], now, "set")?;
    let (key, value) = (&args[1], &args[2]);
    let old = if options.get { string_at(db, key, now)?.map(Bytes::copy_from_slice) } else { None };
    let existing = db.live(key, now);
    let exists = existing.is_some();
    let allowed = match options.condition {
        Condition::Always => true,
        Condition::IfMissing => !exists,
        Condition::IfExists => exists,
    };
    if allowed {
        let expiry = match options.expiry {
            ExpiryChange::Clear => None,
            ExpiryChange::Keep => existing.and_then(|entry| entry.expires_at_ms),
            ExpiryChange::At(at) => Some(at),
        };
        store_string(db, key, value, expiry);
    }
    Ok(match (options.get, allowed) {
        (true, _) => old.map(Frame::Bulk).unwrap_or(Frame::Null),
        (false, true) => Frame::ok(),
        (false, false) => Frame::Null,
    })
}

/// `SETNX key value`
pub(crate) fn setnx(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if db.live(&args[1], now).is_some() {
        return Ok(Frame::Integer(0));
    }
    store_string(db, &args[1], &args[2], None);
    Ok(Frame::Integer(1))
}

/// `SETEX key seconds value`, `PSETEX key milliseconds value`
pub(crate) fn setex(db: &mut Keyspace, now: u64, args: &[Bytes], unit: Unit) -> Reply {
    let command = if unit == Unit::Seconds { "setex" } else { "psetex" };
    let at = expire_at(&args[2], unit, true, now, command)?;
    store_string(db, &args[1], &args[3], Some(at));
    ok()
}

/// `GETSET key value`: SET … GET without options (clears the TTL).
pub(crate) fn getset(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let old = string_at(db, &args[1], now)?.map(Bytes::copy_from_slice);
    store_string(db, &args[1], &args[2], None);
    Ok(old.map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// `GETDEL key`
pub(crate) fn getdel(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let old = string_at(db, &args[1], now)?.map(Bytes::copy_from_slice);
    if old.is_some() {
        db.remove(&args[1]);
    }
    Ok(old.map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// `GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]`
pub(crate) fn getex(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_string_options(&args[2..], now, "getex")?;
    let key = &args[1];
    let Some(value) = string_at(db, key, now)?.map(Bytes::copy_from_slice) else {
        return Ok(Frame::Null);
    };
    match options.expiry {
        ExpiryChange::Keep => {}
        // Redis deletes at once when the new time is already past.
        ExpiryChange::At(at) if at.get() <= now => {
            db.remove(key);
        }
        ExpiryChange::At(at) => {
            db.set_expiry(key, Some(at));
            db.touch(key);
        }
        ExpiryChange::Clear => {
            if db.live(key, now).is_some_and(|entry| entry.expires_at_ms.is_some()) {
                db.set_expiry(key, None);
                db.touch(key);
            }
        }
    }
    Ok(Frame::Bulk(value))
}

/// `MGET key [key …]`: a missing or non-string key reads as null.
pub(crate) fn mget(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let values = args[1..].iter().map(|key| optional_bulk(string_at(db, key, now).ok().flatten()));
    Ok(Frame::Array(values.collect()))
}

/// `MSET key value [key value …]`
pub(crate) fn mset(db: &mut Keyspace, _now: u64, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return Err(reply::wrong_arity("mset"));
    }
    for pair in args[1..].chunks_exact(2) {
        store_string(db, &pair[0], &pair[1], None);
    }
    ok()
}

/// `MSETNX key value [key value …]`: all or nothing.
pub(crate) fn msetnx(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return Err(reply::wrong_arity("msetnx"));
    }
    if args[1..].chunks_exact(2).any(|pair| db.live(&pair[0], now).is_some()) {
        return Ok(Frame::Integer(0));
    }
    for pair in args[1..].chunks_exact(2) {
        store_string(db, &pair[0], &pair[1], None);
    }
    Ok(Frame::Integer(1))
}

fn check_length(length: u64) -> Result<(), Frame> {
    if length > STRING_BYTES_MAX {
        Err(error(reply::STRING_TOO_LONG))
    } else {
        Ok(())
    }
}

/// `APPEND key value`: keeps the TTL.
pub(crate) fn append(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (key, suffix) = (&args[1], &args[2]);
    let Some(current) = string_at(db, key, now)? else {
        store_string(db, key, suffix, None);
        return Ok(reply::integer(suffix.len()));
    };
    check_length(current.len() as u64 + suffix.len() as u64)?;
    let entry = db.live_mut(key, now).expect("checked live");
    let Value::String(text) = &mut entry.value else { unreachable!("checked string") };
    let bytes = text.make_mut();
    bytes.extend_from_slice(suffix);
    let length = bytes.len();
    db.touch(key);
    Ok(reply::integer(length))
}

/// `STRLEN key`
pub(crate) fn strlen(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(string_at(db, &args[1], now)?.map_or(0, <[u8]>::len)))
}

/// Replaces the string value at a live key, keeping its TTL.
fn replace_keeping_ttl(db: &mut Keyspace, key: &[u8], now: u64, value: &[u8]) {
    let expiry = db.live(key, now).and_then(|entry| entry.expires_at_ms);
    store_string(db, key, value, expiry);
}

/// INCR, DECR, INCRBY, DECRBY: keep the TTL.
pub(crate) fn incr_by(db: &mut Keyspace, now: u64, key: &[u8], increment: i64) -> Reply {
    let current = match string_at(db, key, now)? {
        None => 0,
        Some(bytes) => parse::parse_i64(bytes).ok_or_else(|| error(reply::NOT_INTEGER))?,
    };
    let result = current.checked_add(increment).ok_or_else(|| error(reply::OVERFLOW))?;
    replace_keeping_ttl(db, key, now, result.to_string().as_bytes());
    Ok(Frame::Integer(result))
}

/// `INCRBY key increment`, `DECRBY key decrement`
pub(crate) fn incrby(db: &mut Keyspace, now: u64, args: &[Bytes], negate: bool) -> Reply {
    let amount = integer_argument(&args[2])?;
    let increment = if negate {
        amount.checked_neg().ok_or_else(|| error("ERR decrement would overflow"))?
    } else {
        amount
    };
    incr_by(db, now, &args[1], increment)
}

/// `INCRBYFLOAT key increment`: replies the new value as a bulk string.
pub(crate) fn incrbyfloat(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let current = match string_at(db, key, now)? {
        None => 0.0,
        Some(bytes) => parse::parse_f64(bytes).ok_or_else(|| error(reply::NOT_FLOAT))?,
    };
    let increment = float_argument(&args[2])?;
    let result = current + increment;
    if !result.is_finite() {
        return Err(error(reply::NAN_OR_INFINITY));
    }
    let text = parse::format_f64(result);
    replace_keeping_ttl(db, key, now, text.as_bytes());
    Ok(Frame::bulk(text))
}

/// `GETRANGE key start end` (inclusive, negative from the end).
pub(crate) fn getrange(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let start = integer_argument(&args[2])?;
    let end = integer_argument(&args[3])?;
    let value = string_at(db, &args[1], now)?.unwrap_or(b"");
    let length = value.len() as i64;
    if (start < 0 && end < 0 && start > end) || length == 0 {
        return Ok(Frame::bulk(Bytes::new()));
    }
    let start = if start < 0 { (length + start).max(0) } else { start };
    let end = if end < 0 { (length + end).max(0) } else { end.min(length - 1) };
    if start > end {
        return Ok(Frame::bulk(Bytes::new()));
    }
    Ok(bulk(&value[start as usize..=end as usize]))
}

/// `SETRANGE key offset value`: pads with zero bytes; keeps the TTL.
pub(crate) fn setrange(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (key, patch) = (&args[1], &args[3]);
    let offset = integer_argument(&args[2])?;
    let offset = u64::try_from(offset).map_err(|_| error("ERR offset is out of range"))?;
    let current = string_at(db, key, now)?;
    if patch.is_empty() {
        return Ok(reply::integer(current.map_or(0, <[u8]>::len)));
    }
    check_length(offset + patch.len() as u64)?;
    let offset = offset as usize;
    let mut bytes = current.map(<[u8]>::to_vec).unwrap_or_default();
    if bytes.len() < offset + patch.len() {
        bytes.resize(offset + patch.len(), 0);
    }
    bytes[offset..offset + patch.len()].copy_from_slice(patch);
    let length = bytes.len();
    let expiry = db.live(key, now).and_then(|entry| entry.expires_at_ms);
    db.put(key, Value::String(Text::from_vec(bytes)), expiry);
    Ok(reply::integer(length))
}
