//! [`Store`]: one group's keyspace, the command dispatch, transactions and
//! blocking commands.

use bytes::Bytes;
use resp::Frame;

use crate::keyspace::Keyspace;
use crate::reply::{self, Reply};
use crate::spec::{self, CommandSpec};
use crate::{hashes, keys, lists, sets, streams, strings};

/// What a log entry brings besides the command: the leader's clock and a
/// random seed. These are the only time and randomness the store ever sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// Milliseconds since the Unix epoch, stamped by the leader.
    pub now_ms: u64,
    /// Seed for commands with random replies.
    pub seed: u64,
}

/// Outcome of a blocking command (see the crate documentation).
#[derive(Clone, Debug, PartialEq)]
pub enum Blocking {
    /// The command ran, like its non-blocking form; this is its reply.
    Served(Frame),
    /// Nothing to pop: the store is unchanged. Retry after a write to one of
    /// `keys`; give up with the null-array reply after `timeout_ms`
    /// (`None`: wait forever). If `retry_args` is `Some`, retries must run
    /// that command line instead of the original (XREAD with `$`, resolved
    /// to the stream's top id when the client first blocked, so that an
    /// entry added meanwhile is not skipped).
    WouldBlock { keys: Vec<Bytes>, timeout_ms: Option<u64>, retry_args: Option<Vec<Bytes>> },
}

/// One consensus group's keyspace (Redis database 0).
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub(crate) keyspace: Keyspace,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Applies a command from the log (read or write). Deterministic.
    pub fn apply(&mut self, context: &Context, args: &[Bytes]) -> Frame {
        match self.apply_blocking(context, args) {
            Blocking::Served(frame) => frame,
            Blocking::WouldBlock { .. } => Frame::NullArray,
        }
    }

    /// Applies a command from the log; a blocking command that finds no data
    /// returns [`Blocking::WouldBlock`] and changes nothing. Any other
    /// command is always [`Blocking::Served`].
    pub fn apply_blocking(&mut self, context: &Context, args: &[Bytes]) -> Blocking {
        let spec = match check(args) {
            Ok(spec) => spec,
            Err(error) => return Blocking::Served(error),
        };
        if spec.is_blocking() {
            let outcome = match spec.name {
                "xread" | "xreadgroup" => {
                    streams::run_blocking(&mut self.keyspace, context, spec.name, args)
                }
                _ => lists::run_blocking(&mut self.keyspace, context, spec.name, args),
            };
            return outcome.unwrap_or_else(Blocking::Served);
        }
        if spec.is_readonly() {
            return Blocking::Served(flatten(run_read(&self.keyspace, context, spec, args)));
        }
        Blocking::Served(flatten(run_write(&mut self.keyspace, context, spec, args)))
    }

    /// Serves a read-only command without mutating (linearizable reads after
    /// ReadIndex, or follower reads). A write command is refused.
    pub fn read(&self, context: &Context, args: &[Bytes]) -> Frame {
        let spec = match check(args) {
            Ok(spec) => spec,
            Err(error) => return error,
        };
        if !spec.is_readonly() {
            return reply::error("ERR write command not allowed on the read path");
        }
        flatten(run_read(&self.keyspace, context, spec, args))
    }

    /// MULTI/EXEC as one log entry. `watched` holds (key, version) pairs read
    /// with [`Store::key_version`] at WATCH time; if any changed, nothing runs
    /// and the reply is the null array (EXEC aborted). If any queued command
    /// is unknown or has the wrong arity, nothing runs and the reply is
    /// EXECABORT (Redis rejects those at queue time). Otherwise every command
    /// runs in order; a command's runtime error is its own reply and does not
    /// stop the others (Redis has no rollback). Blocking commands do not block
    /// here, as in Redis. The reply is the array of replies.
    pub fn apply_transaction(
        &mut self,
        context: &Context,
        watched: &[(Bytes, u64)],
        commands: &[Vec<Bytes>],
    ) -> Frame {
        if watched.iter().any(|(key, version)| self.key_version(key, context.now_ms) != *version) {
            return Frame::NullArray;
        }
        if commands.iter().any(|command| check(command).is_err()) {
            return reply::error("EXECABORT Transaction discarded because of previous errors.");
        }
        let replies = commands.iter().map(|command| self.apply(context, command)).collect();
        Frame::Array(replies)
    }

    /// The key's version for WATCH at time `now_ms`: changes whenever the
    /// key is modified, deleted, created or expires.
    pub fn key_version(&self, key: &[u8], now_ms: u64) -> u64 {
        self.keyspace.version(key, now_ms)
    }

    /// Up to `limit` keys already expired at `now_ms`, soonest first: the
    /// leader proposes their removal with [`Store::purge_expired`].
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.keyspace.expired(now_ms, limit).map(Bytes::copy_from_slice).collect()
    }

    /// Removes those of `keys` that are expired at `now_ms` (a key rewritten
    /// since the leader listed it is left alone). Returns how many went.
    pub fn purge_expired(&mut self, now_ms: u64, keys: &[Bytes]) -> usize {
        keys.iter()
            .filter(|key| {
                let expired = self.keyspace.map_entry(key).is_some_and(|e| e.is_expired(now_ms));
                expired && self.keyspace.remove(key).is_some()
            })
            .count()
    }

    /// Number of stored keys, including expired ones not yet purged (as
    /// Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.keyspace.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keyspace.map.is_empty()
    }

    /// The names of the keys live at `now_ms`, in the keyspace's hash order
    /// (for `CLUSTER GETKEYSINSLOT` and `COUNTKEYSINSLOT`).
    pub fn key_names(&self, now_ms: u64) -> impl Iterator<Item = &[u8]> + '_ {
        self.keyspace
            .map
            .iter()
            .filter(move |(_, entry)| !entry.is_expired(now_ms))
            .map(|(key, _)| key.name())
    }

    /// Digest of the whole state (keys, values, TTLs, versions), independent
    /// of iteration order: two stores with equal digests hold the same data
    /// with overwhelming probability. For tests and replica cross-checks.
    pub fn digest(&self) -> u64 {
        crate::snapshot::digest(&self.keyspace)
    }

    pub fn snapshot(&self) -> Vec<u8> {
        crate::snapshot::write(&self.keyspace)
    }

    pub fn restore(bytes: &[u8]) -> Result<Store, crate::SnapshotError> {
        crate::snapshot::read(bytes).map(|keyspace| Store { keyspace })
    }
}

/// Resolves the command and checks its arity.
fn check(args: &[Bytes]) -> Result<&'static CommandSpec, Frame> {
    let name = args.first().ok_or_else(|| reply::unknown_command(args))?;
    let spec = spec::lookup(name).ok_or_else(|| reply::unknown_command(args))?;
    if !spec.arity_accepts(args.len()) {
        return Err(reply::wrong_arity(spec.name));
    }
    Ok(spec)
}

fn flatten(reply: Reply) -> Frame {
    reply.unwrap_or_else(|error| error)
}

/// Read-only commands: `&Keyspace`, so they cannot change anything.
fn run_read(db: &Keyspace, context: &Context, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let now = context.now_ms;
    match spec.name {
        "get" => strings::get(db, now, args),
        "mget" => strings::mget(db, now, args),
        "strlen" => strings::strlen(db, now, args),
        "getrange" => strings::getrange(db, now, args),
        "exists" => keys::exists(db, now, args),
        "type" => keys::type_of(db, now, args),
        "ttl" => keys::ttl(db, now, args, keys::TimeReply::RemainingSeconds),
        "pttl" => keys::ttl(db, now, args, keys::TimeReply::RemainingMs),
        "expiretime" => keys::ttl(db, now, args, keys::TimeReply::AbsoluteSeconds),
        "pexpiretime" => keys::ttl(db, now, args, keys::TimeReply::AbsoluteMs),
        "keys" => keys::keys(db, now, args),
        "scan" => keys::scan(db, now, args),
        "randomkey" => keys::randomkey(db, context, args),
        "touch" => keys::touch(db, now, args),
        "dbsize" => Ok(reply::integer(db.map.len())),
        "hget" => hashes::hget(db, now, args),
        "hmget" => hashes::hmget(db, now, args),
        "hexists" => hashes::hexists(db, now, args),
        "hlen" => hashes::hlen(db, now, args),
        "hstrlen" => hashes::hstrlen(db, now, args),
        "hgetall" => hashes::hgetall(db, now, args),
        "hkeys" => hashes::hkeys(db, now, args),
        "hvals" => hashes::hvals(db, now, args),
        "hrandfield" => hashes::hrandfield(db, context, args),
        "hscan" => hashes::hscan(db, now, args),
        "llen" => lists::llen(db, now, args),
        "lrange" => lists::lrange(db, now, args),
        "lindex" => lists::lindex(db, now, args),
        "lpos" => lists::lpos(db, now, args),
        "smembers" => sets::smembers(db, now, args),
        "sismember" => sets::sismember(db, now, args),
        "smismember" => sets::smismember(db, now, args),
        "scard" => sets::scard(db, now, args),
        "srandmember" => sets::srandmember(db, context, args),
        "sinter" => sets::combine(db, now, &args[1..], sets::Combine::Inter).map(sets::set_frame),
        "sunion" => sets::combine(db, now, &args[1..], sets::Combine::Union).map(sets::set_frame),
        "sdiff" => sets::combine(db, now, &args[1..], sets::Combine::Diff).map(sets::set_frame),
        "sintercard" => sets::sintercard(db, now, args),
        "sscan" => sets::sscan(db, now, args),
        "xlen" => streams::xlen(db, now, args),
        "xrange" => streams::xrange(db, now, args, false),
        "xrevrange" => streams::xrange(db, now, args, true),
        "xread" => streams::xread(db, now, args),
        "xpending" => streams::xpending(db, now, args),
        "xinfo" => streams::xinfo(db, now, args),
        other => unreachable!("read command {other} missing from dispatch"),
    }
}

/// Write commands (blocking ones go through `lists::run_blocking` and
/// `streams::run_blocking`).
fn run_write(db: &mut Keyspace, context: &Context, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let now = context.now_ms;
    match spec.name {
        "set" => strings::set(db, now, args),
        "setnx" => strings::setnx(db, now, args),
        "setex" => strings::setex(db, now, args, strings::Unit::Seconds),
        "psetex" => strings::setex(db, now, args, strings::Unit::Milliseconds),
        "getset" => strings::getset(db, now, args),
        "getdel" => strings::getdel(db, now, args),
        "getex" => strings::getex(db, now, args),
        "mset" => strings::mset(db, now, args),
        "msetnx" => strings::msetnx(db, now, args),
        "append" => strings::append(db, now, args),
        "incr" => strings::incr_by(db, now, &args[1], 1),
        "decr" => strings::incr_by(db, now, &args[1], -1),
        "incrby" => strings::incrby(db, now, args, false),
        "decrby" => strings::incrby(db, now, args, true),
        "incrbyfloat" => strings::incrbyfloat(db, now, args),
        "setrange" => strings::setrange(db, now, args),
        "del" | "unlink" => keys::del(db, now, args),
        "expire" => keys::expire(db, now, args, keys::ExpireForm::RelativeSeconds),
        "pexpire" => keys::expire(db, now, args, keys::ExpireForm::RelativeMs),
        "expireat" => keys::expire(db, now, args, keys::ExpireForm::AbsoluteSeconds),
        "pexpireat" => keys::expire(db, now, args, keys::ExpireForm::AbsoluteMs),
        "persist" => keys::persist(db, now, args),
        "rename" => keys::rename(db, now, args, false),
        "renamenx" => keys::rename(db, now, args, true),
        "flushall" | "flushdb" => keys::flush(db, args),
        "hset" => hashes::hset(db, now, args, false),
        "hmset" => hashes::hset(db, now, args, true),
        "hsetnx" => hashes::hsetnx(db, now, args),
        "hdel" => hashes::hdel(db, now, args),
        "hincrby" => hashes::hincrby(db, now, args),
        "hincrbyfloat" => hashes::hincrbyfloat(db, now, args),
        "lpush" => lists::push(db, now, args, lists::End::Left, false),
        "rpush" => lists::push(db, now, args, lists::End::Right, false),
        "lpushx" => lists::push(db, now, args, lists::End::Left, true),
        "rpushx" => lists::push(db, now, args, lists::End::Right, true),
        "lpop" => lists::pop(db, now, args, lists::End::Left),
        "rpop" => lists::pop(db, now, args, lists::End::Right),
        "lset" => lists::lset(db, now, args),
        "lrem" => lists::lrem(db, now, args),
        "ltrim" => lists::ltrim(db, now, args),
        "linsert" => lists::linsert(db, now, args),
        "lmove" => lists::lmove(db, now, args),
        "rpoplpush" => lists::rpoplpush(db, now, args),
        "sadd" => sets::sadd(db, now, args),
        "srem" => sets::srem(db, now, args),
        "spop" => sets::spop(db, context, args),
        "smove" => sets::smove(db, now, args),
        "sinterstore" => sets::store(db, now, args, sets::Combine::Inter),
        "sunionstore" => sets::store(db, now, args, sets::Combine::Union),
        "sdiffstore" => sets::store(db, now, args, sets::Combine::Diff),
        "xadd" => streams::xadd(db, now, args),
        "xdel" => streams::xdel(db, now, args),
        "xtrim" => streams::xtrim(db, now, args),
        "xgroup" => streams::xgroup(db, now, args),
        "xack" => streams::xack(db, now, args),
        "xclaim" => streams::xclaim(db, now, args),
        "xautoclaim" => streams::xautoclaim(db, now, args),
        other => unreachable!("write command {other} missing from dispatch"),
    }
}
