//! The static command table: what the server needs to know about a command
//! before running it — arity checks, COMMAND / COMMAND INFO / GETKEYS,
//! routing (which keys, read or write), blocking behaviour.
//!
//! Conventions are Redis's: `arity` counts the command name; a negative
//! arity `-n` means "at least n". Keys are at positions `first_key`,
//! `first_key + step`, … up to `last_key` (negative counts from the end, `-1`
//! the last argument); `first_key == 0` means no keys. Commands whose key
//! positions depend on their arguments (SINTERCARD, XREAD, XREADGROUP) carry
//! [`flags::MOVABLE_KEYS`]; use [`command_keys`] for them.

use bytes::Bytes;

/// Command flag bits, named like Redis's `COMMAND INFO` flags.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const FAST: u32 = 1 << 3;
    pub const BLOCKING: u32 = 1 << 4;
    pub const MOVABLE_KEYS: u32 = 1 << 5;
    /// Reply depends on the entry's random seed (SPOP, SRANDMEMBER …).
    pub const RANDOM: u32 = 1 << 6;

    /// Flag names as `COMMAND INFO` prints them, in bit order.
    pub const NAMES: [(u32, &str); 7] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (FAST, "fast"),
        (BLOCKING, "blocking"),
        (MOVABLE_KEYS, "movablekeys"),
        (RANDOM, "random"),
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lowercase, as `COMMAND` replies.
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    pub fn is_readonly(&self) -> bool {
        self.flags & flags::READONLY != 0
    }

    pub fn is_blocking(&self) -> bool {
        self.flags & flags::BLOCKING != 0
    }

    /// True if `argument_count` (including the name) satisfies the arity.
    pub fn arity_accepts(&self, argument_count: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            argument_count == arity
        } else {
            argument_count >= arity
        }
    }

    /// The flag names set on this command.
    pub fn flag_names(&self) -> Vec<&'static str> {
        flags::NAMES.iter().filter(|(bit, _)| self.flags & bit != 0).map(|(_, n)| *n).collect()
    }
}

const W: u32 = flags::WRITE;
const R: u32 = flags::READONLY;
const M: u32 = flags::DENYOOM;
const F: u32 = flags::FAST;
const B: u32 = flags::BLOCKING;
const K: u32 = flags::MOVABLE_KEYS;
const X: u32 = flags::RANDOM;

const fn spec(name: &'static str, arity: i32, flags: u32, keys: (i32, i32, i32)) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2 }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);
const PAIRS: (i32, i32, i32) = (1, -1, 2);
const TWO: (i32, i32, i32) = (1, 2, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);
const ALL_BUT_LAST: (i32, i32, i32) = (1, -2, 1);

static TABLE: &[CommandSpec] = &[
    // strings
    spec("get", 2, R | F, ONE),
    spec("set", -3, W | M, ONE),
    spec("setnx", 3, W | M | F, ONE),
    spec("setex", 4, W | M, ONE),
    spec("psetex", 4, W | M, ONE),
    spec("getset", 3, W | M | F, ONE),
    spec("getdel", 2, W | F, ONE),
    spec("getex", -2, W | F, ONE),
    spec("mget", -2, R | F, ALL),
    spec("mset", -3, W | M, PAIRS),
    spec("msetnx", -3, W | M, PAIRS),
    spec("append", 3, W | M | F, ONE),
    spec("strlen", 2, R | F, ONE),
    spec("incr", 2, W | M | F, ONE),
    spec("decr", 2, W | M | F, ONE),
    spec("incrby", 3, W | M | F, ONE),
    spec("decrby", 3, W | M | F, ONE),
    spec("incrbyfloat", 3, W | M | F, ONE),
    spec("getrange", 4, R, ONE),
    spec("setrange", 4, W | M, ONE),
    // keys
    spec("del", -2, W, ALL),
    spec("unlink", -2, W | F, ALL),
    spec("exists", -2, R | F, ALL),
    spec("type", 2, R | F, ONE),
    spec("expire", -3, W | F, ONE),
    spec("pexpire", -3, W | F, ONE),
    spec("expireat", -3, W | F, ONE),
    spec("pexpireat", -3, W | F, ONE),
    spec("ttl", 2, R | F, ONE),
    spec("pttl", 2, R | F, ONE),
    spec("expiretime", 2, R | F, ONE),
    spec("pexpiretime", 2, R | F, ONE),
    spec("persist", 2, W | F, ONE),
    spec("rename", 3, W, TWO),
    spec("renamenx", 3, W | F, TWO),
    spec("keys", 2, R, NONE),
    spec("scan", -2, R, NONE),
    spec("randomkey", 1, R | X, NONE),
    spec("touch", -2, R | F, ALL),
    spec("dbsize", 1, R | F, NONE),
    spec("flushall", -1, W, NONE),
    spec("flushdb", -1, W, NONE),
    // hashes
    spec("hset", -4, W | M | F, ONE),
    spec("hmset", -4, W | M | F, ONE),
    spec("hsetnx", 4, W | M | F, ONE),
    spec("hget", 3, R | F, ONE),
    spec("hmget", -3, R | F, ONE),
    spec("hdel", -3, W | F, ONE),
    spec("hexists", 3, R | F, ONE),
    spec("hlen", 2, R | F, ONE),
    spec("hstrlen", 3, R | F, ONE),
    spec("hgetall", 2, R, ONE),
    spec("hkeys", 2, R, ONE),
    spec("hvals", 2, R, ONE),
    spec("hincrby", 4, W | M | F, ONE),
    spec("hincrbyfloat", 4, W | M | F, ONE),
    spec("hrandfield", -2, R | X, ONE),
    spec("hscan", -3, R, ONE),
    // lists
    spec("lpush", -3, W | M | F, ONE),
    spec("rpush", -3, W | M | F, ONE),
    spec("lpushx", -3, W | M | F, ONE),
    spec("rpushx", -3, W | M | F, ONE),
    spec("lpop", -2, W | F, ONE),
    spec("rpop", -2, W | F, ONE),
    spec("llen", 2, R | F, ONE),
    spec("lrange", 4, R, ONE),
    spec("lindex", 3, R, ONE),
    spec("lset", 4, W | M, ONE),
    spec("lrem", 4, W, ONE),
    spec("ltrim", 4, W, ONE),
    spec("linsert", 5, W | M, ONE),
    spec("lpos", -3, R, ONE),
    spec("lmove", 5, W | M, TWO),
    spec("rpoplpush", 3, W | M, TWO),
    spec("blpop", -3, W | B, ALL_BUT_LAST),
    spec("brpop", -3, W | B, ALL_BUT_LAST),
    spec("blmove", 6, W | M | B, TWO),
    spec("brpoplpush", 4, W | M | B, TWO),
    // sets
    spec("sadd", -3, W | M | F, ONE),
    spec("srem", -3, W | F, ONE),
    spec("smembers", 2, R, ONE),
    spec("sismember", 3, R | F, ONE),
    spec("smismember", -3, R | F, ONE),
    spec("scard", 2, R | F, ONE),
    spec("spop", -2, W | F | X, ONE),
    spec("srandmember", -2, R | X, ONE),
    spec("smove", 4, W | F, TWO),
    spec("sinter", -2, R, ALL),
    spec("sunion", -2, R, ALL),
    spec("sdiff", -2, R, ALL),
    spec("sinterstore", -3, W | M, ALL),
    spec("sunionstore", -3, W | M, ALL),
    spec("sdiffstore", -3, W | M, ALL),
    spec("sintercard", -3, R | K, ONE),
    spec("sscan", -3, R, ONE),
    // streams
    spec("xadd", -5, W | M | F, ONE),
    spec("xlen", 2, R | F, ONE),
    spec("xrange", -4, R, ONE),
    spec("xrevrange", -4, R, ONE),
    spec("xread", -4, R | B | K, NONE),
    spec("xreadgroup", -7, W | B | K, NONE),
    spec("xdel", -3, W | F, ONE),
    spec("xtrim", -4, W, ONE),
    spec("xgroup", -2, W | M, (2, 2, 1)),
    spec("xack", -4, W | F, ONE),
    spec("xpending", -3, R, ONE),
    spec("xclaim", -6, W | F, ONE),
    spec("xautoclaim", -6, W | F, ONE),
    spec("xinfo", -2, R, (2, 2, 1)),
];

/// Every command this state machine implements.
pub fn table() -> &'static [CommandSpec] {
    TABLE
}

/// The command named `name`, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    TABLE.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The key arguments of a full command line (`args[0]` is the name), for
/// routing and `COMMAND GETKEYS`. `None` if the command is unknown, has the
/// wrong arity, or its key count argument is invalid.
pub fn command_keys(args: &[Bytes]) -> Option<Vec<Bytes>> {
    let spec = lookup(args.first()?)?;
    if !spec.arity_accepts(args.len()) {
        return None;
    }
    if spec.name == "sintercard" {
        let count = usize::try_from(crate::parse::parse_i64(&args[1])?).ok()?;
        if count == 0 || count > args.len() - 2 {
            return None;
        }
        return Some(args[2..2 + count].to_vec());
    }
    if spec.name == "xread" || spec.name == "xreadgroup" {
        return crate::streams::read_keys(args);
    }
    if spec.first_key == 0 {
        return Some(Vec::new());
    }
    let length = args.len() as i64;
    let first = i64::from(spec.first_key);
    let last = if spec.last_key < 0 {
        length + i64::from(spec.last_key)
    } else {
        i64::from(spec.last_key)
    };
    let step = i64::from(spec.step);
    assert!(step > 0);
    let mut keys = Vec::new();
    let mut position = first;
    while position <= last && position < length {
        keys.push(args[position as usize].clone());
        position += step;
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        // Goal: every entry is unique, lowercase, and exactly one of read or write.
        for (index, spec) in TABLE.iter().enumerate() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(spec.is_write() != spec.is_readonly(), "{}", spec.name);
            assert!(TABLE[index + 1..].iter().all(|other| other.name != spec.name));
            assert!(spec.arity != 0);
        }
        assert_eq!(lookup(b"GeT").map(|spec| spec.name), Some("get"));
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn keys_follow_first_last_step() {
        // Goal: key extraction covers single, pairs, all-but-last and movable forms.
        let line = |words: &[&str]| -> Vec<Bytes> {
            words.iter().map(|word| Bytes::copy_from_slice(word.as_bytes())).collect()
        };
        let keys = |words: &[&str]| command_keys(&line(words)).unwrap();
        assert_eq!(keys(&["MSET", "a", "1", "b", "2"]), line(&["a", "b"]));
        assert_eq!(keys(&["BLPOP", "a", "b", "0"]), line(&["a", "b"]));
        assert_eq!(keys(&["SINTERCARD", "2", "x", "y", "LIMIT", "1"]), line(&["x", "y"]));
        assert_eq!(keys(&["KEYS", "*"]), line(&[]));
        assert!(command_keys(&line(&["SINTERCARD", "3", "x"])).is_none());
        assert_eq!(
            keys(&["XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "$"]),
            line(&["a", "b"])
        );
        assert_eq!(
            keys(&["XREADGROUP", "GROUP", "STREAMS", "c", "BLOCK", "0", "STREAMS", "s", ">"]),
            line(&["s"])
        );
        assert_eq!(keys(&["XGROUP", "CREATE", "s", "g", "$"]), line(&["s"]));
        assert!(command_keys(&line(&["XREAD", "STREAMS", "a", "b", "c"])).is_none());
        assert!(command_keys(&line(&["GET"])).is_none());
    }
}
