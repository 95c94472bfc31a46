//! Generic key commands: DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT
//! PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST RENAME RENAMENX KEYS SCAN
//! RANDOMKEY TOUCH DBSIZE FLUSHALL FLUSHDB, plus the cursor logic that SCAN,
//! HSCAN and SSCAN share.
//!
//! Scan cursors are hash positions in scan order (see `keyspace`): a call
//! returns elements from `cursor` on and the next cursor is the hash of the
//! first element it did not return (0 when done). Elements sharing a hash are
//! always returned together, so the cursor always advances.

use std::num::NonZeroU64;

use bytes::Bytes;
use resp::Frame;

use crate::glob;
use crate::keyspace::{self, Keyspace};
use crate::parse::{integer_argument, is_option, ok, syntax_error};
use crate::random::Rng;
use crate::reply::{self, bulk, error, Reply};
use crate::store::Context;

/// `DEL key [key …]`, `UNLINK key [key …]`
pub(crate) fn del(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let deleted = args[1..].iter().filter(|key| db.delete_live(key, now)).count();
    Ok(reply::integer(deleted))
}

/// `EXISTS key [key …]`: repeated keys count each time.
pub(crate) fn exists(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(args[1..].iter().filter(|key| db.live(key, now).is_some()).count()))
}

/// `TOUCH key [key …]`: counts existing keys (no access times are kept).
pub(crate) fn touch(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    exists(db, now, args)
}

/// `TYPE key`
pub(crate) fn type_of(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let name = db.live(&args[1], now).map_or("none", |entry| entry.value.type_name());
    Ok(Frame::Simple(name.to_string()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpireForm {
    RelativeSeconds,
    RelativeMs,
    AbsoluteSeconds,
    AbsoluteMs,
}

impl ExpireForm {
    fn command(self) -> &'static str {
        match self {
            ExpireForm::RelativeSeconds => "expire",
            ExpireForm::RelativeMs => "pexpire",
            ExpireForm::AbsoluteSeconds => "expireat",
            ExpireForm::AbsoluteMs => "pexpireat",
        }
    }
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(options: &[Bytes]) -> Result<ExpireFlags, Frame> {
    let mut flags = ExpireFlags::default();
    for option in options {
        if is_option(option, "NX") {
            flags.nx = true;
        } else if is_option(option, "XX") {
            flags.xx = true;
        } else if is_option(option, "GT") {
            flags.gt = true;
        } else if is_option(option, "LT") {
            flags.lt = true;
        } else {
            return Err(Frame::Error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(error("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if flags.gt && flags.lt {
        return Err(error("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(flags)
}

/// `EXPIRE key seconds [NX | XX | GT | LT]` and the PEXPIRE, EXPIREAT,
/// PEXPIREAT forms. A time already past deletes the key (reply 1). A key
/// without TTL counts as an infinite TTL for GT and LT.
pub(crate) fn expire(db: &mut Keyspace, now: u64, args: &[Bytes], form: ExpireForm) -> Reply {
    let flags = parse_expire_flags(&args[3..])?;
    let amount = integer_argument(&args[2])?;
    let invalid = || reply::invalid_expire(form.command());
    let ms = match form {
        ExpireForm::RelativeSeconds | ExpireForm::AbsoluteSeconds => {
            amount.checked_mul(1000).ok_or_else(invalid)?
        }
        ExpireForm::RelativeMs | ExpireForm::AbsoluteMs => amount,
    };
    let when = match form {
        ExpireForm::RelativeSeconds | ExpireForm::RelativeMs => {
            ms.checked_add(i64::try_from(now).map_err(|_| invalid())?).ok_or_else(invalid)?
        }
        _ => ms,
    };
    let key = &args[1];
    let Some(entry) = db.live_mut(key, now) else {
        return Ok(Frame::Integer(0));
    };
    let current = entry.expires_at_ms.map(|at| at.get() as i64);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.map_or(true, |current| when <= current))
        || (flags.lt && current.is_some_and(|current| when >= current));
    if refused {
        return Ok(Frame::Integer(0));
    }
    if when <= now as i64 {
        db.remove(key);
    } else {
        db.set_expiry(key, NonZeroU64::new(when as u64));
        db.touch(key);
    }
    Ok(Frame::Integer(1))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeReply {
    RemainingSeconds,
    RemainingMs,
    AbsoluteSeconds,
    AbsoluteMs,
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 missing, -1 no TTL. TTL rounds to
/// the nearest second, as Redis does.
pub(crate) fn ttl(db: &Keyspace, now: u64, args: &[Bytes], form: TimeReply) -> Reply {
    let Some(entry) = db.live(&args[1], now) else {
        return Ok(Frame::Integer(-2));
    };
    let Some(at) = entry.expires_at_ms.map(NonZeroU64::get) else {
        return Ok(Frame::Integer(-1));
    };
    let value = match form {
        TimeReply::RemainingSeconds => (at - now).saturating_add(500) / 1000,
        TimeReply::RemainingMs => at - now,
        TimeReply::AbsoluteSeconds => at / 1000,
        TimeReply::AbsoluteMs => at,
    };
    Ok(Frame::Integer(value as i64))
}

/// `PERSIST key`
pub(crate) fn persist(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if db.live(key, now).map_or(true, |entry| entry.expires_at_ms.is_none()) {
        return Ok(Frame::Integer(0));
    }
    db.set_expiry(key, None);
    db.touch(key);
    Ok(Frame::Integer(1))
}

/// `RENAME key newkey`, `RENAMENX key newkey`: the value keeps its TTL.
pub(crate) fn rename(db: &mut Keyspace, now: u64, args: &[Bytes], only_if_new: bool) -> Reply {
    let (source, target) = (&args[1], &args[2]);
    if db.live_mut(source, now).is_none() {
        return Err(error(reply::NO_SUCH_KEY));
    }
    let reply_done = if only_if_new { Frame::Integer(1) } else { Frame::ok() };
    if source == target {
        return Ok(if only_if_new { Frame::Integer(0) } else { Frame::ok() });
    }
    if only_if_new && db.live(target, now).is_some() {
        return Ok(Frame::Integer(0));
    }
    let entry = db.remove(source).expect("checked live");
    db.remove(target);
    db.put(target, entry.value, entry.expires_at_ms);
    Ok(reply_done)
}

/// `KEYS pattern`, in scan order.
pub(crate) fn keys(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let names = db
        .map
        .iter()
        .filter(|(key, entry)| {
            !entry.is_expired(now) && (all || glob::matches(pattern, key.name()))
        })
        .map(|(key, _)| bulk(key.name()));
    Ok(Frame::Array(names.collect()))
}

/// Parsed `cursor [MATCH pattern] [COUNT count] [TYPE type] [NOVALUES]`.
pub(crate) struct ScanOptions<'a> {
    pub(crate) cursor: u64,
    pub(crate) pattern: Option<&'a [u8]>,
    pub(crate) count: usize,
    pub(crate) type_name: Option<&'a [u8]>,
    pub(crate) no_values: bool,
}

const SCAN_COUNT_DEFAULT: usize = 10;

/// Parses from the cursor on. `TYPE` is accepted only for SCAN, `NOVALUES`
/// only for HSCAN.
pub(crate) fn parse_scan<'a>(
    args: &'a [Bytes],
    allow_type: bool,
    allow_no_values: bool,
) -> Result<ScanOptions<'a>, Frame> {
    let cursor_text = std::str::from_utf8(&args[0]).ok();
    let cursor = cursor_text
        .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| error(reply::INVALID_CURSOR))?;
    let mut options = ScanOptions {
        cursor,
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
        type_name: None,
        no_values: false,
    };
    let mut index = 1;
    while index < args.len() {
        let option = &args[index];
        let value = args.get(index + 1);
        match value {
            // Redis skips matching for the lone `*` (which as a pattern would
            // not match the empty key).
            Some(value) if is_option(option, "MATCH") => {
                options.pattern = if value.as_ref() == b"*" { None } else { Some(value) };
            }
            Some(value) if is_option(option, "COUNT") => {
                let count = integer_argument(value)?;
                if count < 1 {
                    return syntax_error();
                }
                options.count = usize::try_from(count).unwrap_or(usize::MAX);
            }
            Some(value) if allow_type && is_option(option, "TYPE") => {
                options.type_name = Some(value)
            }
            _ if allow_no_values && is_option(option, "NOVALUES") => {
                options.no_values = true;
                index += 1;
                continue;
            }
            _ => return syntax_error(),
        }
        index += 2;
    }
    Ok(options)
}

/// Takes `count` elements from an iterator over scan order (already started
/// at the cursor), plus any that share the last one's hash. Returns them and
/// the next cursor (0 when the iteration is complete).
pub(crate) fn scan_window<T>(
    mut elements: impl Iterator<Item = (u64, T)>,
    count: usize,
) -> (Vec<T>, u64) {
    let mut taken = Vec::new();
    let mut last_hash = None;
    for (hash, element) in elements.by_ref() {
        if taken.len() >= count && last_hash != Some(hash) {
            // Ascending order and a differing hash: the cursor moved forward.
            assert!(hash > 0);
            return (taken, hash);
        }
        last_hash = Some(hash);
        taken.push(element);
    }
    (taken, 0)
}

/// The SCAN-family reply: `[cursor, [elements…]]`.
pub(crate) fn scan_reply(cursor: u64, elements: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::bulk(cursor.to_string()), Frame::Array(elements)])
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`. COUNT is how many
/// keys are visited (expired and filtered ones included), as in Redis.
pub(crate) fn scan(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_scan(&args[1..], true, false)?;
    let window = keyspace::range_from(&db.map, options.cursor)
        .map(|(key, entry)| (key.hash(), (key, entry)));
    let (visited, next) = scan_window(window, options.count);
    let names = visited
        .into_iter()
        .filter(|(key, entry)| {
            !entry.is_expired(now)
                && options.pattern.map_or(true, |pattern| glob::matches(pattern, key.name()))
                && options.type_name.map_or(true, |name| {
                    name.eq_ignore_ascii_case(entry.value.type_name().as_bytes())
                })
        })
        .map(|(key, _)| bulk(key.name()));
    Ok(scan_reply(next, names.collect()))
}

/// How many stored keys RANDOMKEY steps over looking for a live one before
/// giving up (Redis also bounds its attempts when most keys are expired).
const RANDOM_KEY_STEPS_MAX: usize = 100;

/// `RANDOMKEY`: the first live key at or after a random hash position.
pub(crate) fn randomkey(db: &Keyspace, context: &Context, _args: &[Bytes]) -> Reply {
    if db.map.is_empty() {
        return Ok(Frame::Null);
    }
    let start = Rng::new(context.seed).next_u64();
    let mut candidates = keyspace::range_from(&db.map, start).chain(db.map.iter());
    let found = candidates
        .by_ref()
        .take(RANDOM_KEY_STEPS_MAX)
        .find(|(_, entry)| !entry.is_expired(context.now_ms));
    Ok(found.map_or(Frame::Null, |(key, _)| bulk(key.name())))
}

/// `FLUSHALL [ASYNC | SYNC]`, `FLUSHDB [ASYNC | SYNC]`
pub(crate) fn flush(db: &mut Keyspace, args: &[Bytes]) -> Reply {
    match &args[1..] {
        [] => {}
        [mode] if is_option(mode, "ASYNC") || is_option(mode, "SYNC") => {}
        _ => return syntax_error(),
    }
    db.clear();
    ok()
}
