//! Stream consumer groups as work queues: `XADD` produces, `XREADGROUP` hands each entry to one
//! consumer of a group, `XACK` marks it done, and `XAUTOCLAIM` takes over entries a crashed
//! consumer left pending. List queues use [`Client::lpush`], [`Client::brpop`] and
//! [`Client::blmove`] (the reliable-queue pattern: move to a processing list, remove when done).

use std::time::Duration;

use bytes::Bytes;
use resp::Frame;

use crate::client::{unexpected, Client};
use crate::commands::{ttl_ms, Args};
use crate::error::Result;
use crate::value;

/// One stream entry. `fields` is empty for an entry deleted while pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: Bytes,
    pub fields: Vec<(Bytes, Bytes)>,
}

/// What `XAUTOCLAIM` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoClaim {
    /// Where the next scan should start (`0-0` when the scan is complete).
    pub next: Bytes,
    /// The entries now owned by the claiming consumer.
    pub entries: Vec<StreamEntry>,
    /// Pending ids whose entries no longer exist (removed from the pending list).
    pub deleted: Vec<Bytes>,
}

fn entry(command: &str, frame: Frame) -> Result<StreamEntry> {
    let items = value::items(command, frame)?;
    let [id, fields]: [Frame; 2] =
        items.try_into().map_err(|items: Vec<Frame>| unexpected(command, &Frame::Array(items)))?;
    Ok(StreamEntry { id: value::bytes(command, id)?, fields: value::pairs(command, fields)? })
}

fn entries(command: &str, frame: Frame) -> Result<Vec<StreamEntry>> {
    value::items(command, frame)?.into_iter().map(|item| entry(command, item)).collect()
}

/// `XREAD`/`XREADGROUP` replies: per stream, its entries (RESP2 arrays or a RESP3 map).
fn streams(command: &str, frame: Frame) -> Result<Vec<(Bytes, Vec<StreamEntry>)>> {
    let pairs: Vec<(Frame, Frame)> = match frame {
        Frame::Map(pairs) => pairs,
        other => {
            let mut pairs = Vec::new();
            for stream in value::items(command, other)? {
                let items = value::items(command, stream)?;
                let [key, list]: [Frame; 2] = items
                    .try_into()
                    .map_err(|items: Vec<Frame>| unexpected(command, &Frame::Array(items)))?;
                pairs.push((key, list));
            }
            pairs
        }
    };
    pairs
        .into_iter()
        .map(|(key, list)| Ok((value::bytes(command, key)?, entries(command, list)?)))
        .collect()
}

impl Client {
    /// `XADD key id field value …` (`id` is usually `*`): the new entry's id. Inside a session,
    /// a retried `XADD *` returns the id of the one entry added.
    pub async fn xadd<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        id: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> Result<Bytes> {
        let mut args = Args::new("XADD").arg(key).arg(id);
        for (field, value) in fields {
            args = args.arg(field).arg(value);
        }
        value::bytes("XADD", self.call(args.request()).await?)
    }

    /// `XGROUP CREATE key group start [MKSTREAM]`. `start` is `$` for new entries only, `0` for
    /// the whole stream.
    pub async fn xgroup_create(
        &self,
        key: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        start: impl AsRef<[u8]>,
        make_stream: bool,
    ) -> Result<()> {
        let mut args = Args::new("XGROUP").arg("CREATE").arg(key).arg(group).arg(start);
        if make_stream {
            args = args.arg("MKSTREAM");
        }
        value::ok("XGROUP", self.call(args.request()).await?)
    }

    /// `XREADGROUP GROUP group consumer COUNT count [BLOCK ms] STREAMS key id`.
    ///
    /// `id` `>` reads entries never delivered to the group; `0` re-reads this consumer's own
    /// pending entries. `block` of `None` returns at once; `Some(Duration::ZERO)` waits forever.
    /// Inside a session like any write, so a read whose reply is lost is retried and returns the
    /// same entries. (Without a session, entries delivered on a lost connection stay pending and
    /// are recovered by [`Client::xautoclaim`].)
    pub async fn xreadgroup(
        &self,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
        id: impl AsRef<[u8]>,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<StreamEntry>> {
        let mut args = Args::new("XREADGROUP").arg("GROUP").arg(group).arg(consumer);
        args = args.arg("COUNT").number(count.max(1));
        let mut blocks_for = Some(Duration::ZERO);
        if let Some(block) = block {
            let block_ms = if block.is_zero() { 0 } else { ttl_ms(block) };
            args = args.arg("BLOCK").number(block_ms);
            blocks_for = if block.is_zero() { None } else { Some(block) };
        }
        let mut request = args.arg("STREAMS").arg(key).arg(id).request();
        request.blocks_for = blocks_for;
        let reply = self.call(request).await?;
        Ok(streams("XREADGROUP", reply)?.into_iter().flat_map(|(_, entries)| entries).collect())
    }

    /// `XACK key group id…`: how many entries were pending and are now acknowledged.
    pub async fn xack<I: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        ids: &[I],
    ) -> Result<i64> {
        let request = Args::new("XACK").arg(key).arg(group).args(ids).request();
        value::integer("XACK", self.call(request).await?)
    }

    /// `XAUTOCLAIM key group consumer min_idle start COUNT count`: takes over entries pending
    /// for longer than `min_idle`.
    pub async fn xautoclaim(
        &self,
        key: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
        min_idle: Duration,
        start: impl AsRef<[u8]>,
        count: usize,
    ) -> Result<AutoClaim> {
        let args = Args::new("XAUTOCLAIM").arg(key).arg(group).arg(consumer);
        let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let args = args.number(min_idle_ms).arg(start).arg("COUNT").number(count.max(1));
        let reply = self.call(args.request()).await?;
        let mut items = value::items("XAUTOCLAIM", reply.clone())?.into_iter();
        let (Some(next), Some(claimed)) = (items.next(), items.next()) else {
            return Err(unexpected("XAUTOCLAIM", &reply));
        };
        let deleted = match items.next() {
            Some(deleted) => value::bytes_list("XAUTOCLAIM", deleted)?,
            None => Vec::new(),
        };
        Ok(AutoClaim {
            next: value::bytes("XAUTOCLAIM", next)?,
            entries: entries("XAUTOCLAIM", claimed)?,
            deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_replies_parse_in_resp2_and_resp3_shapes() {
        // Goal: XREADGROUP replies parse whether the server sent arrays or a map.
        let entry = Frame::Array(vec![
            Frame::bulk("1-0"),
            Frame::Array(vec![Frame::bulk("job"), Frame::bulk("a")]),
        ]);
        let resp2 = Frame::Array(vec![Frame::Array(vec![
            Frame::bulk("queue"),
            Frame::Array(vec![entry.clone()]),
        ])]);
        let resp3 = Frame::Map(vec![(Frame::bulk("queue"), Frame::Array(vec![entry]))]);
        for reply in [resp2, resp3] {
            let parsed = streams("XREADGROUP", reply).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].1[0].id, Bytes::from("1-0"));
            assert_eq!(parsed[0].1[0].fields, vec![(Bytes::from("job"), Bytes::from("a"))]);
        }
        assert!(streams("XREADGROUP", Frame::NullArray).unwrap().is_empty());
        assert!(streams("XREADGROUP", Frame::Array(vec![Frame::bulk("x")])).is_err());
    }
}
