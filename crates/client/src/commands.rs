//! Typed calls for common commands: keys and strings, lists, hashes.

use std::time::Duration;

use bytes::Bytes;
use resp::Frame;

use crate::client::{check, unexpected, Client};
use crate::error::Result;
use crate::kind::Request;
use crate::value;

/// One end of a list, for `BLMOVE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    fn word(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }
}

/// Builds an argument vector from heterogeneous byte-like parts.
pub(crate) struct Args(Vec<Bytes>);

impl Args {
    pub fn new(name: &'static str) -> Args {
        Args(vec![Bytes::from_static(name.as_bytes())])
    }

    pub fn arg(mut self, part: impl AsRef<[u8]>) -> Args {
        self.0.push(Bytes::copy_from_slice(part.as_ref()));
        self
    }

    pub fn args<T: AsRef<[u8]>>(mut self, parts: &[T]) -> Args {
        self.0.extend(parts.iter().map(|part| Bytes::copy_from_slice(part.as_ref())));
        self
    }

    pub fn number(self, value: impl ToString) -> Args {
        let text = value.to_string();
        self.arg(text)
    }

    pub fn request(self) -> Request {
        Request::new(self.0)
    }
}

/// A blocking command's timeout argument in seconds (`0` waits forever), and how long the
/// client should wait for the reply beyond its response timeout.
pub(crate) fn blocking_timeout(timeout: Duration) -> (String, Option<Duration>) {
    if timeout.is_zero() {
        return ("0".to_string(), None);
    }
    // Millisecond precision, never rounded down to the "forever" of 0.
    let millis = timeout.as_millis().max(1);
    (format!("{}.{:03}", millis / 1000, millis % 1000), Some(timeout))
}

impl Client {
    /// Sends `request` and turns an error reply into `Err`.
    pub(crate) async fn call(&self, request: Request) -> Result<Frame> {
        let name = String::from_utf8_lossy(&request.args[0]).to_uppercase();
        check(self.execute(request).await?, &name)
    }

    /// `GET key`.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        value::optional_bytes("GET", self.call(Args::new("GET").arg(key).request()).await?)
    }

    /// `SET key value`.
    pub async fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        value::ok("SET", self.call(Args::new("SET").arg(key).arg(value).request()).await?)
    }

    /// `SET key value PX ttl`: the key expires after `ttl`.
    pub async fn set_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let request = Args::new("SET").arg(key).arg(value).arg("PX").number(ttl_ms(ttl)).request();
        value::ok("SET", self.call(request).await?)
    }

    /// `SET key value NX`: true if the key did not exist and was set.
    pub async fn set_if_absent(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool> {
        let reply = self.call(Args::new("SET").arg(key).arg(value).arg("NX").request()).await?;
        match reply {
            Frame::Null | Frame::NullArray => Ok(false),
            other => value::ok("SET", other).map(|()| true),
        }
    }

    /// `INCR key`.
    pub async fn incr(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        value::integer("INCR", self.call(Args::new("INCR").arg(key).request()).await?)
    }

    /// `INCRBY key delta`.
    pub async fn incr_by(&self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
        let request = Args::new("INCRBY").arg(key).number(delta).request();
        value::integer("INCRBY", self.call(request).await?)
    }

    /// `DEL key…`: how many keys existed.
    pub async fn del<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<i64> {
        value::integer("DEL", self.call(Args::new("DEL").args(keys).request()).await?)
    }

    /// `EXISTS key`.
    pub async fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let reply = self.call(Args::new("EXISTS").arg(key).request()).await?;
        Ok(value::integer("EXISTS", reply)? > 0)
    }

    /// `PEXPIRE key ttl`: true if the key exists and now expires after `ttl`.
    pub async fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let request = Args::new("PEXPIRE").arg(key).number(ttl_ms(ttl)).request();
        Ok(value::integer("PEXPIRE", self.call(request).await?)? == 1)
    }

    /// `PTTL key`: the remaining time to live; `None` if the key does not exist or has no TTL.
    pub async fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>> {
        let remaining_ms =
            value::integer("PTTL", self.call(Args::new("PTTL").arg(key).request()).await?)?;
        Ok(u64::try_from(remaining_ms).ok().map(Duration::from_millis))
    }

    /// `LPUSH key value…`: the list's length after.
    pub async fn lpush<V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, values: &[V]) -> Result<i64> {
        value::integer(
            "LPUSH",
            self.call(Args::new("LPUSH").arg(key).args(values).request()).await?,
        )
    }

    /// `RPUSH key value…`: the list's length after.
    pub async fn rpush<V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, values: &[V]) -> Result<i64> {
        value::integer(
            "RPUSH",
            self.call(Args::new("RPUSH").arg(key).args(values).request()).await?,
        )
    }

    /// `LPOP key`.
    pub async fn lpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        value::optional_bytes("LPOP", self.call(Args::new("LPOP").arg(key).request()).await?)
    }

    /// `RPOP key`.
    pub async fn rpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        value::optional_bytes("RPOP", self.call(Args::new("RPOP").arg(key).request()).await?)
    }

    /// `LLEN key`.
    pub async fn llen(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        value::integer("LLEN", self.call(Args::new("LLEN").arg(key).request()).await?)
    }

    /// `LRANGE key start stop`.
    pub async fn lrange(&self, key: impl AsRef<[u8]>, start: i64, stop: i64) -> Result<Vec<Bytes>> {
        let request = Args::new("LRANGE").arg(key).number(start).number(stop).request();
        value::bytes_list("LRANGE", self.call(request).await?)
    }

    /// `BLPOP key… timeout`: `(key, value)` popped from the first non-empty list, or `None` when
    /// `timeout` passes (zero waits forever). Inside a session like any write: a pop whose reply
    /// is lost with the connection is retried, and the retry returns the element popped, once.
    pub async fn blpop<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        timeout: Duration,
    ) -> Result<Option<(Bytes, Bytes)>> {
        self.blocking_pop("BLPOP", keys, timeout).await
    }

    /// `BRPOP key… timeout`, like [`Client::blpop`] from the tail.
    pub async fn brpop<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        timeout: Duration,
    ) -> Result<Option<(Bytes, Bytes)>> {
        self.blocking_pop("BRPOP", keys, timeout).await
    }

    async fn blocking_pop<K: AsRef<[u8]>>(
        &self,
        name: &'static str,
        keys: &[K],
        timeout: Duration,
    ) -> Result<Option<(Bytes, Bytes)>> {
        let (seconds, wait) = blocking_timeout(timeout);
        let mut request = Args::new(name).args(keys).arg(seconds).request();
        request.blocks_for = wait;
        let reply = self.call(request).await?;
        let mut items = value::items(name, reply.clone())?;
        match items.len() {
            0 => Ok(None),
            2 => {
                let item = value::bytes(name, items.pop().expect("two"))?;
                let key = value::bytes(name, items.pop().expect("two"))?;
                Ok(Some((key, item)))
            }
            _ => Err(unexpected(name, &reply)),
        }
    }

    /// `BLMOVE source destination from to timeout`: the element moved, or `None` on timeout.
    pub async fn blmove(
        &self,
        source: impl AsRef<[u8]>,
        destination: impl AsRef<[u8]>,
        from: End,
        to: End,
        timeout: Duration,
    ) -> Result<Option<Bytes>> {
        let (seconds, wait) = blocking_timeout(timeout);
        let args = Args::new("BLMOVE").arg(source).arg(destination).arg(from.word()).arg(to.word());
        let mut request = args.arg(seconds).request();
        request.blocks_for = wait;
        value::optional_bytes("BLMOVE", self.call(request).await?)
    }

    /// `HSET key field value …`: how many fields were added.
    pub async fn hset<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> Result<i64> {
        let mut args = Args::new("HSET").arg(key);
        for (field, value) in fields {
            args = args.arg(field).arg(value);
        }
        value::integer("HSET", self.call(args.request()).await?)
    }

    /// `HGET key field`.
    pub async fn hget(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>> {
        value::optional_bytes(
            "HGET",
            self.call(Args::new("HGET").arg(key).arg(field).request()).await?,
        )
    }

    /// `HGETALL key` as (field, value) pairs.
    pub async fn hgetall(&self, key: impl AsRef<[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        value::pairs("HGETALL", self.call(Args::new("HGETALL").arg(key).request()).await?)
    }

    /// `HDEL key field…`: how many fields existed.
    pub async fn hdel<F: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, fields: &[F]) -> Result<i64> {
        value::integer("HDEL", self.call(Args::new("HDEL").arg(key).args(fields).request()).await?)
    }
}

/// Whole milliseconds, at least 1 (the server refuses a zero TTL).
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_timeouts_keep_millisecond_precision_and_never_become_forever() {
        // Goal: a short timeout is not rounded to 0, which the server reads as "wait forever".
        assert_eq!(blocking_timeout(Duration::ZERO), ("0".to_string(), None));
        assert_eq!(blocking_timeout(Duration::from_micros(10)).0, "0.001");
        assert_eq!(blocking_timeout(Duration::from_millis(2500)).0, "2.500");
        assert_eq!(ttl_ms(Duration::ZERO), 1);
    }
}
