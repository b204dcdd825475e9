//! The op log: recent ops, encoded once, for peers to catch up from.
//!
//! Bounded by bytes (`repl-backlog-size`): appending past the bound drops the oldest ops. Ops
//! are stored MessagePack-encoded in one ring of bytes, so the log costs no allocation per op
//! and replication can ship the bytes as they are.

use meridian_crdt::{NodeId, Op};
use std::collections::VecDeque;

/// Where one op sits in the ring.
#[derive(Clone, Copy, Debug)]
struct Slot {
    origin: NodeId,
    seq: u64,
    len: u32,
}

/// A bounded log of encoded ops, oldest first.
#[derive(Debug)]
pub struct OpLog {
    bytes: VecDeque<u8>,
    slots: VecDeque<Slot>,
    max_bytes: usize,
    scratch: Vec<u8>,
    /// Ops ever appended.
    appended: u64,
}

impl OpLog {
    /// An empty log holding at most `max_bytes` of encoded ops.
    pub fn new(max_bytes: usize) -> Self {
        OpLog { bytes: VecDeque::new(), slots: VecDeque::new(), max_bytes, scratch: Vec::new(), appended: 0 }
    }

    /// Appends an op, dropping the oldest ops beyond the size bound.
    pub fn append<B: AsRef<[u8]>>(&mut self, op: &Op<B>) {
        self.scratch.clear();
        op.encode_into(&mut self.scratch);
        self.bytes.extend(&self.scratch);
        self.slots.push_back(Slot { origin: op.origin, seq: op.seq, len: self.scratch.len() as u32 });
        self.appended += 1;
        self.trim();
    }

    /// Changes the size bound (CONFIG SET repl-backlog-size).
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.trim();
        self.bytes.shrink_to(max_bytes);
    }

    fn trim(&mut self) {
        while self.bytes.len() > self.max_bytes {
            let Some(oldest) = self.slots.pop_front() else { break };
            self.bytes.drain(..oldest.len as usize);
        }
    }

    /// Bytes of encoded ops held.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Ops held.
    pub fn len_ops(&self) -> usize {
        self.slots.len()
    }

    /// Ops ever appended (the offset INFO reports).
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// The size bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The held ops, oldest first, decoded.
    #[cfg(test)]
    pub fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        let mut start = 0usize;
        self.slots.iter().map(move |slot| {
            let encoded: Vec<u8> = self.bytes.range(start..start + slot.len as usize).copied().collect();
            start += slot.len as usize;
            Op::decode(&encoded).expect("the log holds only ops it encoded")
        })
    }

    /// `(origin, seq)` of the oldest op held.
    pub fn first(&self) -> Option<(NodeId, u64)> {
        self.slots.front().map(|s| (s.origin, s.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use meridian_crdt::Body;

    fn op(seq: u64, value_len: usize) -> Op {
        Op {
            origin: NodeId(1),
            seq,
            time: seq,
            key: Bytes::from_static(b"key"),
            body: Body::Set { seen: Default::default(), value: Bytes::from(vec![b'x'; value_len]), expire_at: None },
        }
    }

    #[test]
    fn keeps_ops_in_order_within_its_bound() {
        let mut log = OpLog::new(1000);
        for seq in 1..=100 {
            log.append(&op(seq, 40));
        }
        assert!(log.len_bytes() <= 1000);
        assert_eq!(log.appended(), 100);
        let seqs: Vec<u64> = log.ops().map(|o| o.seq).collect();
        assert_eq!(*seqs.last().unwrap(), 100);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(log.first().map(|(_, s)| s), seqs.first().copied());
        assert_eq!(log.ops().last().unwrap(), op(100, 40));
        log.set_max_bytes(100);
        assert!(log.len_bytes() <= 100 && log.len_ops() >= 1);
    }
}
