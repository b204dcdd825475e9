//! Operations: what one write does, as it travels between regions.

use crate::causal::Context;
use crate::counter::{CounterMark, Increment};
use crate::node::{NodeId, Stamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// One write, as applied locally and shipped to peers.
///
/// `(origin, seq)` identifies it (dense per origin, so duplicates and gaps are visible);
/// `time` is the origin's HLC time when it was made, and with `origin` forms the [`Stamp`] of
/// everything it creates.
///
/// `B` holds the key and value bytes: a local write borrows them from the client's request
/// (`Op<&[u8]>`), so making, logging and applying it copies them only into the key's state and
/// the log; an op decoded from the wire owns them (`Op<Bytes>`, the default). Both encode the
/// same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "B: AsRef<[u8]>", deserialize = "B: Deserialize<'de>"))]
pub struct Op<B = Bytes> {
    /// The node where the client wrote.
    pub origin: NodeId,
    /// The origin's sequence number for this op, starting at 1.
    pub seq: u64,
    /// The origin's HLC time for this op (NTP64).
    pub time: u64,
    /// The key written.
    #[serde(with = "bin")]
    pub key: B,
    /// The effect.
    pub body: Body<B>,
}

/// Byte fields as MessagePack `bin`, whatever holds them.
mod bin {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<B: AsRef<[u8]>, S: Serializer>(bytes: &B, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes.as_ref())
    }

    pub fn deserialize<'de, B: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<B, D::Error> {
        B::deserialize(d)
    }
}

/// What a writer had seen of a key, and so removes: written versions, increments, TTLs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Written string versions seen.
    pub value: Context,
    /// Counter increments seen, per origin.
    pub counts: SmallVec<[CounterMark; 1]>,
    /// TTL versions seen (empty when the write keeps the TTL).
    pub expiry: Context,
}

/// How a write changes a key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlWrite {
    /// Leave the TTL as it is (KEEPTTL, and every write that does not touch the TTL).
    Keep,
    /// Remove the TTL (a plain SET).
    Clear,
    /// Expire at this Unix millisecond.
    At(u64),
}

/// The effect of an op on its key. Preconditions (NX, XX, WRONGTYPE, ...) were checked at the
/// origin; a body only says what to remove and what to add, so it applies anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "B: AsRef<[u8]>", deserialize = "B: Deserialize<'de>"))]
pub enum Body<B = Bytes> {
    /// Replace the key with a string: remove what was seen, write `value`, and give it a TTL.
    Set {
        /// What the writer removes.
        seen: Seen,
        /// The bytes written.
        #[serde(with = "bin")]
        value: B,
        /// Unix millisecond of expiry, if the write sets one.
        expire_at: Option<u64>,
    },
    /// Add to the origin's counter contribution (after removing `seen`, which is non-empty
    /// only when the origin found no live value and so started from zero).
    Incr {
        /// What the writer removes first.
        seen: Seen,
        /// The increment.
        inc: Increment,
    },
    /// Remove what was seen (DEL, UNLINK, GETDEL, FLUSHALL, RENAME's source, ...).
    Del {
        /// What the writer removes.
        seen: Seen,
    },
    /// Replace the TTL versions seen with "expires at `at`" ([`crate::NO_EXPIRY`]: PERSIST).
    Expire {
        /// TTL versions the writer removes.
        seen: Context,
        /// Unix millisecond of expiry.
        at: u64,
    },
    /// The key expired at HLC time `before`: everything written before it (values, increment
    /// runs begun before it, TTLs) is gone, including writes still on their way; writes made
    /// after it start a new key. Issued by whichever node notices the expiry; duplicates agree.
    Expired {
        /// HLC time (NTP64) of the expiry.
        before: u64,
    },
}

/// Why bytes could not be decoded as an [`Op`].
#[derive(Debug, thiserror::Error)]
#[error("undecodable op: {0}")]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

impl<B: AsRef<[u8]>> Op<B> {
    /// The stamp of everything this op creates.
    pub fn stamp(&self) -> Stamp {
        Stamp::new(self.time, self.origin)
    }

    /// MessagePack encoding of the op, appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Writing MessagePack into a Vec cannot fail for these plain types.
        rmp_serde::encode::write(out, self).expect("op encodes");
    }

}

impl Op {
    /// Decodes an op encoded by [`Op::encode_into`].
    pub fn decode(bytes: &[u8]) -> Result<Op, DecodeError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_and_garbage_is_an_error() {
        let op = Op {
            origin: NodeId(7),
            seq: 3,
            time: 99,
            key: Bytes::from_static(b"k"),
            body: Body::Set {
                seen: Seen::default(),
                value: Bytes::from_static(b"v"),
                expire_at: Some(5),
            },
        };
        let mut buf = Vec::new();
        op.encode_into(&mut buf);
        assert_eq!(Op::decode(&buf).unwrap(), op);
        let borrowed = Op {
            origin: op.origin,
            seq: op.seq,
            time: op.time,
            key: &b"k"[..],
            body: Body::Set { seen: Seen::default(), value: &b"v"[..], expire_at: Some(5) },
        };
        let mut borrowed_buf = Vec::new();
        borrowed.encode_into(&mut borrowed_buf);
        assert_eq!(borrowed_buf, buf, "borrowed and owned ops encode alike");
        assert!(Op::decode(&buf[..buf.len() - 1]).is_err());
        assert!(Op::decode(b"\xff\x00garbage").is_err());
    }
}
