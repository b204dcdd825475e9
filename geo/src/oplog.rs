//! The op log: recent ops, encoded once, for peers to catch up from.
//!
//! Ops leave from the front in two ways: once every member of the cluster has applied them
//! (trimming follows the slowest member, [`OpLog::trim_stable`]), and, whatever the members
//! have applied, when the log exceeds its size bound (`repl-backlog-size`); a peer behind
//! the second kind of trim needs a full state transfer. Ops
//! are stored MessagePack-encoded in one ring of bytes, so the log costs no allocation per op
//! and replication ships the bytes as they are. Positions count ops ever appended; the log
//! also knows, per origin, from which sequence number it holds that origin's ops without a
//! gap (ops that arrived in a state transfer are never logged), which is what decides between
//! a partial resync and a full state transfer.

use bytes::Bytes;
use meridian_crdt::{NodeId, Op, VersionVector};
use crate::sender::{LoggedOp, OpSource};
use std::collections::{HashMap, VecDeque};

/// Where one op sits in the ring.
#[derive(Clone, Copy, Debug)]
struct Slot {
    origin: NodeId,
    seq: u64,
    time: u64,
    /// Absolute byte offset of the encoding.
    offset: u64,
    len: u32,
}

/// A bounded log of encoded ops, oldest first.
#[derive(Debug)]
pub struct OpLog {
    bytes: VecDeque<u8>,
    /// Absolute byte offset of `bytes[0]`.
    bytes_start: u64,
    slots: VecDeque<Slot>,
    /// Position of `slots[0]`.
    start: u64,
    max_bytes: usize,
    scratch: Vec<u8>,
    /// Per origin: the lowest sequence from which every op up to `last_logged` is held.
    contiguous_from: HashMap<NodeId, u64>,
    last_logged: HashMap<NodeId, u64>,
    /// Position after the last op dropped for space: sessions behind it have lost ops.
    lost_before: u64,
    /// Covers every op dropped because every member had applied it.
    stable: VersionVector,
}

impl OpLog {
    /// An empty log holding at most `max_bytes` of encoded ops.
    pub fn new(max_bytes: usize) -> Self {
        OpLog {
            bytes: VecDeque::new(),
            bytes_start: 0,
            slots: VecDeque::new(),
            start: 0,
            max_bytes,
            scratch: Vec::new(),
            contiguous_from: HashMap::new(),
            last_logged: HashMap::new(),
            lost_before: 0,
            stable: VersionVector::new(),
        }
    }

    /// Appends an op, dropping the oldest ops beyond the size bound. A log bounded to zero
    /// bytes keeps nothing and does not even encode the op.
    pub fn append<B: AsRef<[u8]>>(&mut self, op: &Op<B>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if self.max_bytes > 0 {
            op.encode_tail(&mut scratch);
        }
        self.append_encoded(op.origin, op.seq, op.time, &scratch);
        self.scratch = scratch;
    }

    /// Appends an op whose tail is already encoded (as received from a peer), as
    /// [`OpLog::append`] does.
    pub fn append_encoded(&mut self, origin: NodeId, seq: u64, time: u64, tail: &[u8]) {
        if self.max_bytes == 0 {
            self.start += 1;
            self.lost_before = self.start;
            return;
        }
        let offset = self.bytes_start + self.bytes.len() as u64;
        self.bytes.extend(tail);
        self.slots.push_back(Slot { origin, seq, time, offset, len: tail.len() as u32 });
        if self.last_logged.insert(origin, seq) != Some(seq - 1) {
            self.contiguous_from.insert(origin, seq);
        }
        self.trim();
    }

    /// Changes the size bound (CONFIG SET repl-backlog-size).
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.trim();
        self.bytes.shrink_to(max_bytes);
    }

    fn trim(&mut self) {
        while self.bytes.len() > self.max_bytes && self.drop_oldest(1) {
            self.lost_before = self.start;
        }
    }

    /// Drops the oldest ops every member has applied (`stable`, the causal-stability
    /// frontier): no peer can need them again. A peer that restarts without its state, or one
    /// no longer counted as a member, gets a state transfer either way.
    pub fn trim_stable(&mut self, stable: &VersionVector) {
        let stable_ops = self.slots.iter().take_while(|slot| stable.contains(slot.origin, slot.seq)).count();
        self.drop_oldest(stable_ops);
        self.stable.join(stable);
    }

    /// Drops the `n` oldest ops (fewer if the log holds fewer); false if it held none.
    fn drop_oldest(&mut self, n: usize) -> bool {
        let n = n.min(self.slots.len());
        let mut freed = 0;
        for oldest in self.slots.drain(..n) {
            freed += oldest.len as usize;
            let from = self.contiguous_from.entry(oldest.origin).or_default();
            *from = (*from).max(oldest.seq + 1);
        }
        self.bytes.drain(..freed);
        self.bytes_start += freed as u64;
        self.start += n as u64;
        n > 0
    }

    /// The ring's bytes from absolute offset `from`, `len` of them, copied out in one piece.
    fn copy_out(&self, from: u64, len: usize) -> Bytes {
        let at = (from - self.bytes_start) as usize;
        let mut out = Vec::with_capacity(len);
        let (front, back) = self.bytes.as_slices();
        let end = at + len;
        if at < front.len() {
            out.extend_from_slice(&front[at..end.min(front.len())]);
        }
        if end > front.len() {
            out.extend_from_slice(&back[at.saturating_sub(front.len())..end - front.len()]);
        }
        Bytes::from(out)
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
        self.start + self.slots.len() as u64
    }

    /// The size bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Position of the oldest op held.
    pub fn first_position(&self) -> u64 {
        self.start
    }
}

impl OpSource for OpLog {
    fn end(&self) -> u64 {
        self.appended()
    }

    fn read(&self, from: u64, max: usize) -> Option<Vec<LoggedOp>> {
        let skip = usize::try_from(from.checked_sub(self.start)?).ok()?;
        let slots = self.slots.range(skip.min(self.slots.len())..(skip.saturating_add(max)).min(self.slots.len()));
        let (Some(first), Some(last)) = (slots.clone().next(), slots.clone().next_back()) else { return Some(Vec::new()) };
        // The ops' bytes are contiguous in the ring: one copy, then one shared slice per op.
        let span = self.copy_out(first.offset, (last.offset + u64::from(last.len) - first.offset) as usize);
        let tail = |slot: &Slot| {
            let at = (slot.offset - first.offset) as usize;
            span.slice(at..at + slot.len as usize)
        };
        Some(slots.map(|slot| LoggedOp { origin: slot.origin, seq: slot.seq, time: slot.time, tail: tail(slot) }).collect())
    }

    fn first(&self) -> u64 {
        self.start
    }

    fn stable_skip(&self, from: u64) -> Option<&VersionVector> {
        (from >= self.lost_before).then_some(&self.stable)
    }

    fn position_after(&self, origin: NodeId, after: u64, through: u64) -> Option<u64> {
        let need = after + 1;
        let held = self.contiguous_from.get(&origin).is_some_and(|&c| c <= need)
            && self.last_logged.get(&origin).is_some_and(|&last| last >= through);
        if !held {
            return None;
        }
        let at = self.slots.iter().position(|s| s.origin == origin && s.seq == need)?;
        Some(self.start + at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::Body;

    fn op(origin: u64, seq: u64, value_len: usize) -> Op {
        Op {
            origin: NodeId(origin),
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
            log.append(&op(1, seq, 40));
        }
        assert!(log.len_bytes() <= 1000);
        assert_eq!(log.end(), 100);
        let held = log.read(log.first_position(), usize::MAX).unwrap();
        assert!(held.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(held.last().map(|o| o.seq), Some(100));
        let last = held.last().unwrap();
        assert_eq!(Op::decode_tail(last.origin, last.seq, last.time, &last.tail).unwrap(), op(1, 100, 40));
        assert_eq!(log.read(0, 1), None, "trimmed away");
        log.set_max_bytes(100);
        assert!(log.len_bytes() <= 100 && log.len_ops() >= 1);
    }

    #[test]
    fn trims_what_every_member_applied_and_tells_sessions_they_may_skip_it() {
        let mut log = OpLog::new(1 << 20);
        for seq in 1..=4 {
            log.append(&op(1, seq, 1));
            log.append(&op(2, seq, 1));
        }
        let mut stable = VersionVector::new();
        stable.record(NodeId(1), 1, 1);
        stable.record(NodeId(1), 2, 2);
        stable.record(NodeId(2), 1, 1);
        log.trim_stable(&stable);
        // 1:1, 2:1, 1:2 went; 2:2 (not stable) stops the trim although 1:3 behind it is not.
        assert_eq!((log.first(), log.len_ops()), (3, 5));
        assert_eq!(log.read(0, 1), None);
        assert_eq!(log.stable_skip(0), Some(&stable));
        assert_eq!(log.position_after(NodeId(1), 0, 4), None, "1:1 is gone");
        // Space trims are not skippable.
        log.set_max_bytes(1);
        assert_eq!(log.stable_skip(3), None);
        assert!(log.stable_skip(log.first()).is_some());
    }

    #[test]
    fn knows_what_it_holds_of_each_origin() {
        let mut log = OpLog::new(1 << 20);
        for seq in 1..=5 {
            log.append(&op(1, seq, 1));
        }
        log.append(&op(2, 1, 1));
        assert_eq!(log.position_after(NodeId(1), 2, 5), Some(2));
        // Origin 1's ops 6..=9 arrive in a state transfer; 10 is logged again.
        log.append(&op(1, 10, 1));
        assert_eq!(log.position_after(NodeId(1), 2, 10), None, "6..9 were never logged");
        assert_eq!(log.position_after(NodeId(1), 9, 10), Some(6));
        assert_eq!(log.position_after(NodeId(2), 0, 1), Some(5));
        assert_eq!(log.position_after(NodeId(3), 0, 1), None);
    }
}
