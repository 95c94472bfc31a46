//! Reading typed values out of reply frames.

use bytes::Bytes;
use resp::Frame;

use crate::client::unexpected;
use crate::error::Result;

pub(crate) fn optional_bytes(command: &str, frame: Frame) -> Result<Option<Bytes>> {
    match frame {
        Frame::Null | Frame::NullArray => Ok(None),
        other => bytes(command, other).map(Some),
    }
}

pub(crate) fn bytes(command: &str, frame: Frame) -> Result<Bytes> {
    match frame {
        Frame::Bulk(bytes) => Ok(bytes),
        Frame::Simple(text) => Ok(Bytes::from(text)),
        Frame::Verbatim { text, .. } => Ok(text),
        Frame::Integer(value) => Ok(Bytes::from(value.to_string())),
        other => Err(unexpected(command, &other)),
    }
}

pub(crate) fn integer(command: &str, frame: Frame) -> Result<i64> {
    match frame {
        Frame::Integer(value) => Ok(value),
        Frame::Boolean(value) => Ok(i64::from(value)),
        other => Err(unexpected(command, &other)),
    }
}

pub(crate) fn ok(command: &str, frame: Frame) -> Result<()> {
    match frame {
        Frame::Simple(text) if text == "OK" => Ok(()),
        other => Err(unexpected(command, &other)),
    }
}

/// An array (or RESP3 set/push) as its items; null as empty.
pub(crate) fn items(command: &str, frame: Frame) -> Result<Vec<Frame>> {
    match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => Ok(items),
        Frame::Null | Frame::NullArray => Ok(Vec::new()),
        other => Err(unexpected(command, &other)),
    }
}

pub(crate) fn bytes_list(command: &str, frame: Frame) -> Result<Vec<Bytes>> {
    items(command, frame)?.into_iter().map(|item| bytes(command, item)).collect()
}

/// A flat array of key, value, … or a RESP3 map, as pairs.
pub(crate) fn pairs(command: &str, frame: Frame) -> Result<Vec<(Bytes, Bytes)>> {
    match frame {
        Frame::Map(pairs) => pairs
            .into_iter()
            .map(|(key, value)| Ok((bytes(command, key)?, bytes(command, value)?)))
            .collect(),
        other => {
            let flat = bytes_list(command, other)?;
            if flat.len() % 2 != 0 {
                return Err(crate::Error::UnexpectedReply {
                    command: command.to_string(),
                    reply: format!("{} items, not pairs", flat.len()),
                });
            }
            let mut iter = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(key), Some(value)) = (iter.next(), iter.next()) {
                pairs.push((key, value));
            }
            Ok(pairs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_flat_arrays_and_maps_alike() {
        // Goal: RESP2 flat arrays and RESP3 maps give the same pairs; odd arrays are refused.
        let flat = Frame::Array(vec![Frame::bulk("a"), Frame::bulk("1")]);
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::bulk("1"))]);
        let expected = vec![(Bytes::from("a"), Bytes::from("1"))];
        assert_eq!(pairs("HGETALL", flat).unwrap(), expected);
        assert_eq!(pairs("HGETALL", map).unwrap(), expected);
        assert!(pairs("HGETALL", Frame::Array(vec![Frame::bulk("a")])).is_err());
        assert_eq!(optional_bytes("GET", Frame::Null).unwrap(), None);
        assert!(integer("INCR", Frame::bulk("x")).is_err());
    }
}
