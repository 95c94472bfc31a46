//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP
//! SRANDMEMBER SMOVE SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE
//! SINTERCARD SSCAN. Members are kept in scan order, so replies listing them
//! are deterministic.

use bytes::Bytes;
use resp::Frame;

use crate::glob;
use crate::keys::{parse_scan, scan_reply, scan_window};
use crate::keyspace::{self, Keyspace, Members, ScanKey, Value};
use crate::parse::{self, integer_argument, is_option, syntax_error};
use crate::random::Rng;
use crate::reply::{self, bulk, error, Reply};
use crate::store::Context;

/// Most elements one SRANDMEMBER or HRANDFIELD call with repetition may draw:
/// a huge count would make every replica allocate the same huge reply.
pub(crate) const SAMPLE_COUNT_MAX: u64 = 1 << 24;

fn set_at<'a>(db: &'a Keyspace, key: &[u8], now: u64) -> Result<Option<&'a Members>, Frame> {
    match db.live(key, now) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Set(members) => Ok(Some(members)),
            _ => Err(reply::wrong_type()),
        },
    }
}

/// The set at `key` for modification, created empty if missing; the caller
/// changes it and calls `touch`.
fn set_for_write<'a>(db: &'a mut Keyspace, key: &[u8], now: u64) -> Result<&'a mut Members, Frame> {
    set_at(db, key, now)?;
    match &mut db.live_or_create(key, now, Value::Set(Box::default())).value {
        Value::Set(members) => Ok(members),
        _ => unreachable!("checked a set"),
    }
}

pub(crate) fn set_frame(members: Vec<Box<[u8]>>) -> Frame {
    Frame::Set(members.iter().map(|member| bulk(member)).collect())
}

/// `SADD key member [member …]`
pub(crate) fn sadd(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let members = set_for_write(db, &args[1], now)?;
    let added = args[2..].iter().filter(|member| members.insert(ScanKey::new(member))).count();
    db.touch(&args[1]);
    Ok(reply::integer(added))
}

/// `SREM key member [member …]`
pub(crate) fn srem(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    if set_at(db, &args[1], now)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let members = set_for_write(db, &args[1], now)?;
    let removed = args[2..].iter().filter(|member| keyspace::set_remove(members, member)).count();
    if removed > 0 {
        db.touch(&args[1]);
    }
    Ok(reply::integer(removed))
}

/// `SMEMBERS key`
pub(crate) fn smembers(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let members = set_at(db, &args[1], now)?;
    Ok(Frame::Set(members.into_iter().flatten().map(|member| bulk(member.name())).collect()))
}

/// `SISMEMBER key member`
pub(crate) fn sismember(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let found =
        set_at(db, &args[1], now)?.is_some_and(|members| keyspace::set_contains(members, &args[2]));
    Ok(Frame::Integer(found.into()))
}

/// `SMISMEMBER key member [member …]`
pub(crate) fn smismember(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let members = set_at(db, &args[1], now)?;
    let flags = args[2..].iter().map(|member| {
        Frame::Integer(members.is_some_and(|set| keyspace::set_contains(set, member)).into())
    });
    Ok(Frame::Array(flags.collect()))
}

/// `SCARD key`
pub(crate) fn scard(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    Ok(reply::integer(set_at(db, &args[1], now)?.map_or(0, Members::len)))
}

/// `count` distinct members chosen uniformly (partial Fisher-Yates, O(n)).
fn sample_distinct(members: &Members, rng: &mut Rng, count: usize) -> Vec<Box<[u8]>> {
    let mut all: Vec<&ScanKey> = members.iter().collect();
    let count = count.min(all.len());
    for index in 0..count {
        let pick = index + rng.below((all.len() - index) as u64) as usize;
        all.swap(index, pick);
    }
    all[..count].iter().map(|member| member.name().into()).collect()
}

/// `SPOP key [count]`
pub(crate) fn spop(db: &mut Keyspace, context: &Context, args: &[Bytes]) -> Reply {
    let now = context.now_ms;
    if args.len() > 3 {
        return syntax_error();
    }
    let count = match args.get(2) {
        None => None,
        Some(text) => Some(parse::count_argument(text, reply::MUST_BE_POSITIVE)?),
    };
    let mut rng = Rng::new(context.seed);
    let Some(members) = set_at(db, &args[1], now)? else {
        return Ok(if count.is_some() { Frame::Set(Vec::new()) } else { Frame::Null });
    };
    let chosen: Vec<Box<[u8]>> = match count {
        None => {
            keyspace::set_pick_one(members, &mut rng).map(|m| m.name().into()).into_iter().collect()
        }
        Some(count) => {
            sample_distinct(members, &mut rng, usize::try_from(count).unwrap_or(usize::MAX))
        }
    };
    let members = set_for_write(db, &args[1], now)?;
    for member in &chosen {
        keyspace::set_remove(members, member);
    }
    if !chosen.is_empty() {
        db.touch(&args[1]);
    }
    Ok(match count {
        None => chosen.first().map_or(Frame::Null, |member| bulk(member)),
        Some(_) => set_frame(chosen),
    })
}

/// `SRANDMEMBER key [count]`: a negative count allows repeats.
pub(crate) fn srandmember(db: &Keyspace, context: &Context, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return syntax_error();
    }
    let members = set_at(db, &args[1], context.now_ms)?;
    let mut rng = Rng::new(context.seed);
    let Some(count_text) = args.get(2) else {
        let picked = members.and_then(|members| keyspace::set_pick_one(members, &mut rng));
        return Ok(picked.map_or(Frame::Null, |member| bulk(member.name())));
    };
    let count = integer_argument(count_text)?;
    if count < 0 && count.unsigned_abs() > SAMPLE_COUNT_MAX {
        return Err(error(reply::OUT_OF_RANGE));
    }
    let Some(members) = members else {
        return Ok(Frame::Array(Vec::new()));
    };
    let frames = if count >= 0 {
        sample_distinct(members, &mut rng, count as usize)
            .iter()
            .map(|member| bulk(member))
            .collect()
    } else {
        (0..count.unsigned_abs())
            .filter_map(|_| keyspace::set_pick_one(members, &mut rng))
            .map(|member| bulk(member.name()))
            .collect()
    };
    Ok(Frame::Array(frames))
}

/// `SMOVE source destination member`
pub(crate) fn smove(db: &mut Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let (source, target, member) = (&args[1], &args[2], &args[3]);
    let Some(members) = set_at(db, source, now)? else {
        set_at(db, target, now)?;
        return Ok(Frame::Integer(0));
    };
    let present = keyspace::set_contains(members, member);
    set_at(db, target, now)?;
    if !present {
        return Ok(Frame::Integer(0));
    }
    if source == target {
        return Ok(Frame::Integer(1));
    }
    keyspace::set_remove(set_for_write(db, source, now)?, member);
    db.touch(source);
    set_for_write(db, target, now)?.insert(ScanKey::new(member));
    db.touch(target);
    Ok(Frame::Integer(1))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Combine {
    Inter,
    Union,
    Diff,
}

/// SINTER, SUNION, SDIFF over `keys`, in the first set's (or scan) order.
/// Every key must be a set or missing (a missing key is the empty set).
pub(crate) fn combine(
    db: &Keyspace,
    now: u64,
    keys: &[Bytes],
    how: Combine,
) -> Result<Vec<Box<[u8]>>, Frame> {
    let sets: Vec<Option<&Members>> =
        keys.iter().map(|key| set_at(db, key, now)).collect::<Result<_, _>>()?;
    let empty = Members::new();
    let first = sets[0].unwrap_or(&empty);
    let rest = || sets[1..].iter().map(|set| set.unwrap_or(&empty));
    let members: Vec<Box<[u8]>> = match how {
        Combine::Inter => first
            .iter()
            .filter(|member| rest().all(|set| set.contains(*member)))
            .map(|member| member.name().into())
            .collect(),
        Combine::Diff => first
            .iter()
            .filter(|member| !rest().any(|set| set.contains(*member)))
            .map(|member| member.name().into())
            .collect(),
        Combine::Union => {
            let mut union = first.clone();
            for set in rest() {
                union.extend(set.iter().cloned());
            }
            union.into_iter().map(|member| member.name().into()).collect()
        }
    };
    Ok(members)
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: an empty result deletes the target.
pub(crate) fn store(db: &mut Keyspace, now: u64, args: &[Bytes], how: Combine) -> Reply {
    let members = combine(db, now, &args[2..], how)?;
    let target = &args[1];
    let count = members.len();
    db.remove(target);
    if count > 0 {
        let set: Members = members.iter().map(|member| ScanKey::new(member)).collect();
        db.put(target, Value::Set(Box::new(set)), None);
    }
    Ok(reply::integer(count))
}

/// `SINTERCARD numkeys key [key …] [LIMIT limit]`
pub(crate) fn sintercard(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let count = integer_argument(&args[1])?;
    if count <= 0 {
        return Err(error("ERR numkeys should be greater than 0"));
    }
    let count = count as u64;
    if count > (args.len() - 2) as u64 {
        return Err(error("ERR Number of keys can't be greater than number of args"));
    }
    let keys = &args[2..2 + count as usize];
    let mut limit = 0u64;
    let mut index = 2 + count as usize;
    while index < args.len() {
        match args.get(index + 1) {
            Some(value) if is_option(&args[index], "LIMIT") => {
                limit = parse::count_argument(value, "ERR LIMIT can't be negative")?;
            }
            _ => return syntax_error(),
        }
        index += 2;
    }
    let members = combine(db, now, keys, Combine::Inter)?;
    let cardinality = if limit == 0 { members.len() } else { members.len().min(limit as usize) };
    Ok(reply::integer(cardinality))
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
pub(crate) fn sscan(db: &Keyspace, now: u64, args: &[Bytes]) -> Reply {
    let options = parse_scan(&args[2..], false, false)?;
    let Some(members) = set_at(db, &args[1], now)? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let window =
        keyspace::set_range_from(members, options.cursor).map(|member| (member.hash(), member));
    let (visited, next) = scan_window(window, options.count);
    let frames = visited
        .into_iter()
        .filter(|member| {
            options.pattern.map_or(true, |pattern| glob::matches(pattern, member.name()))
        })
        .map(|member| bulk(member.name()));
    Ok(scan_reply(next, frames.collect()))
}
