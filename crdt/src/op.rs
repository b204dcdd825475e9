//! Operations: what one write does, as it travels between regions.

use crate::causal::Context;
use crate::counter::{CounterMark, Increment};
use crate::list::ListEdit;
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
/// same way (see `wire.rs`: the log and peers hold an op's tail, its origin, seq and time
/// beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<B = Bytes> {
    /// The node where the client wrote.
    pub origin: NodeId,
    /// The origin's sequence number for this op, starting at 1.
    pub seq: u64,
    /// The origin's HLC time for this op (NTP64).
    pub time: u64,
    /// The key written.
    pub key: B,
    /// The effect.
    pub body: Body<B>,
}

/// What a writer had seen of a key, and so removes: written versions, increments, TTLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Written string versions seen.
    pub value: Context,
    /// Counter increments seen, per origin.
    pub counts: SmallVec<[CounterMark; 1]>,
    /// TTL versions seen (empty when the write keeps the TTL).
    pub expiry: Context,
    /// For a whole-key removal of a hash or sorted set: per field or member with increments,
    /// the increments seen (written versions of every member are covered by `value`).
    pub fields: FieldMarks,
}

/// Per hash field or sorted-set member, the counter marks a whole-key remover had seen.
pub type FieldMarks = Vec<(Collection, Box<[u8]>, SmallVec<[CounterMark; 1]>)>;

/// Which collection an [`Body::Edit`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Collection {
    /// A hash: fields with string values or counters.
    Hash,
    /// A set of members.
    Set,
    /// A sorted set: members with scores.
    Zset,
}

/// What an edit does to one member after removing what its writer had seen of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change<B = Bytes> {
    /// Add the member (SADD, SMOVE's destination).
    Add,
    /// Write the field's value (HSET and friends), or the member's score as the client wrote
    /// it (ZADD).
    Write(B),
    /// Add to the field's counter or the member's score (HINCRBY, HINCRBYFLOAT, ZINCRBY).
    Incr(Increment),
    /// Only remove (SREM, HDEL, SPOP).
    Remove,
}

/// One member's edit inside a [`Body::Edit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit<B = Bytes> {
    /// The set member or hash field.
    pub member: B,
    /// What the writer had seen of the member, and so removes.
    pub seen: Seen,
    /// What it adds.
    pub change: Change<B>,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<B = Bytes> {
    /// Replace the key with a string: remove what was seen, write `value`, and give it a TTL.
    Set {
        /// What the writer removes.
        seen: Seen,
        /// The bytes written.
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
    /// Edits of a collection's members (one command's worth, all stamped by the op).
    Edit {
        /// The collection changed.
        collection: Collection,
        /// The members edited, in command order.
        edits: Vec<Edit<B>>,
    },
    /// Edits of a list (one command's worth, all stamped by the op; see `list.rs`).
    List {
        /// The edits, in command order.
        edits: Vec<ListEdit<B>>,
    },
    /// The key expired at HLC time `before`: everything written before it (values, increment
    /// runs begun before it, TTLs) is gone, including writes still on their way; writes made
    /// after it start a new key. Issued by whichever node notices the expiry; duplicates agree.
    Expired {
        /// HLC time (NTP64) of the expiry.
        before: u64,
    },
}

impl<B: AsRef<[u8]>> Op<B> {
    /// The stamp of everything this op creates.
    pub fn stamp(&self) -> Stamp {
        Stamp::new(self.time, self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_and_owned_ops_encode_alike_and_garbage_is_an_error() {
        let op = Op {
            origin: NodeId(7),
            seq: 3,
            time: 99,
            key: Bytes::from_static(b"k"),
            body: Body::Set { seen: Seen::default(), value: Bytes::from_static(b"v"), expire_at: Some(5) },
        };
        let mut buf = Vec::new();
        op.encode_tail(&mut buf);
        assert_eq!(Op::decode_tail(op.origin, op.seq, op.time, &buf).unwrap(), op);
        let borrowed = Op { origin: op.origin, seq: op.seq, time: op.time, key: &b"k"[..], body: Body::Set { seen: Seen::default(), value: &b"v"[..], expire_at: Some(5) } };
        let mut borrowed_buf = Vec::new();
        borrowed.encode_tail(&mut borrowed_buf);
        assert_eq!(borrowed_buf, buf);
        assert!(Op::decode_tail(op.origin, op.seq, op.time, &buf[..buf.len() - 1]).is_err());
        assert!(Op::decode_tail(op.origin, op.seq, op.time, b"\xff\x00garbage").is_err());
    }
}
