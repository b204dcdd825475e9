//! The op log: recent ops, encoded once, for peers to catch up from.
//!
//! Ops leave from the front in two ways: once every member of the cluster has applied them
//! (trimming follows the slowest member, [`OpLog::trim_stable`]), and, whatever the members
//! have applied, when the log exceeds its size bound (`repl-backlog-size`); a peer behind
//! the second kind of trim needs a full state transfer. Ops are stored encoded (their tails,
//! see `meridian_crdt::Op::encode_tail`) back to back in one buffer that slides forward, so the
//! log costs no allocation per op and every op is one contiguous slice that replication copies
//! straight into its frames. Positions count ops ever appended; the log
//! also knows, per origin, from which sequence number it holds that origin's ops without a
//! gap (ops that arrived in a state transfer are never logged), which is what decides between
//! a partial resync and a full state transfer.

use crate::sender::{LoggedOp, OpSource};
use meridian_crdt::{NodeId, Op, VersionVector};
use std::collections::{BTreeMap, VecDeque};

/// Dropped bytes at the front of the buffer are reclaimed (the live ones moved down) once
/// there are at least this many and they outnumber the live ones: amortised O(1) per byte.
const COMPACT_AT: usize = 64 * 1024;

/// Slots kept allocated however few ops the log holds.
const MIN_SLOTS: usize = 1024;

/// Where one op sits in the buffer.
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
    /// Encoded ops; `bytes[..head]` were dropped and await compaction.
    bytes: Vec<u8>,
    head: usize,
    /// Absolute byte offset of `bytes[0]`.
    bytes_start: u64,
    slots: VecDeque<Slot>,
    /// Position of `slots[0]`.
    start: u64,
    max_bytes: usize,
    scratch: Vec<u8>,
    /// Per origin: the lowest sequence from which every op up to `last_logged` is held.
    contiguous_from: BTreeMap<NodeId, u64>,
    last_logged: BTreeMap<NodeId, u64>,
    /// Position after the last op dropped for space: sessions behind it have lost ops.
    lost_before: u64,
    /// Covers every op dropped because every member had applied it.
    stable: VersionVector,
}

impl OpLog {
    /// An empty log holding at most `max_bytes` of encoded ops.
    pub fn new(max_bytes: usize) -> Self {
        OpLog {
            bytes: Vec::new(),
            head: 0,
            bytes_start: 0,
            slots: VecDeque::new(),
            start: 0,
            max_bytes,
            scratch: Vec::new(),
            contiguous_from: BTreeMap::new(),
            last_logged: BTreeMap::new(),
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
        self.bytes.extend_from_slice(tail);
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
        self.compact(0);
        self.bytes.shrink_to(max_bytes);
    }

    fn trim(&mut self) {
        while self.len_bytes() > self.max_bytes && self.drop_oldest(1) {
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
        self.head += freed;
        self.start += n as u64;
        self.compact(COMPACT_AT);
        shrink_if_oversized(self.slots.capacity(), self.slots.len(), MIN_SLOTS, |to| self.slots.shrink_to(to));
        n > 0
    }

    /// Reclaims the dropped front of the buffer if it is at least `min` bytes and no smaller
    /// than what is live; and gives memory back once a burst the buffer grew for has drained.
    fn compact(&mut self, min: usize) {
        if self.head >= min && self.head >= self.bytes.len() - self.head {
            self.bytes.drain(..self.head);
            self.bytes_start += self.head as u64;
            self.head = 0;
            shrink_if_oversized(self.bytes.capacity(), self.bytes.len(), COMPACT_AT, |to| self.bytes.shrink_to(to));
        }
    }

    /// Bytes the log has allocated (its buffer and slots at capacity): its memory, which INFO
    /// reports as `mem_oplog` and `maxmemory` leaves out.
    pub fn allocated_bytes(&self) -> usize {
        self.bytes.capacity() + self.scratch.capacity() + self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// The encoded tail of the op in `slot`.
    fn tail(&self, slot: &Slot) -> &[u8] {
        let at = (slot.offset - self.bytes_start) as usize;
        &self.bytes[at..at + slot.len as usize]
    }

    /// Bytes of encoded ops held.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len() - self.head
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

/// Shrinks (through `shrink_to`) a buffer of `capacity` holding `len` items to twice what it
/// holds (at least `floor`) once it has four times that: memory goes back after a burst,
/// and a log that holds steady is never reallocated.
fn shrink_if_oversized(capacity: usize, len: usize, floor: usize, shrink_to: impl FnOnce(usize)) {
    let keep = 2 * len.max(floor);
    if capacity > 2 * keep {
        shrink_to(keep);
    }
}

impl OpSource for OpLog {
    fn end(&self) -> u64 {
        self.appended()
    }

    fn read(&self, from: u64, max: usize) -> Option<Vec<LoggedOp<'_>>> {
        let skip = usize::try_from(from.checked_sub(self.start)?).ok()?;
        let slots = self.slots.range(skip.min(self.slots.len())..skip.saturating_add(max).min(self.slots.len()));
        Some(slots.map(|slot| LoggedOp { origin: slot.origin, seq: slot.seq, time: slot.time, tail: self.tail(slot) }).collect())
    }

    fn first(&self) -> u64 {
        self.start
    }

    fn stable_skip(&self, from: u64) -> Option<&VersionVector> {
        (from >= self.lost_before).then_some(&self.stable)
    }

    fn position_after(&self, origin: NodeId, after: u64, through: u64) -> Option<u64> {
        let need = after + 1;
        let held = self.contiguous_from.get(&origin).is_some_and(|&c| c <= need) && self.last_logged.get(&origin).is_some_and(|&last| last >= through);
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
    use bytes::Bytes;
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
        assert_eq!(Op::decode_tail(last.origin, last.seq, last.time, last.tail).unwrap(), op(1, 100, 40));
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
    fn the_buffer_slides_forward_without_losing_or_moving_ops() {
        let mut log = OpLog::new(1 << 20);
        let mut stable = VersionVector::new();
        for seq in 1..=20_000 {
            log.append(&op(1, seq, 10));
            if seq % 1000 == 0 {
                (stable.seq(NodeId(1)) + 1..=seq - 10).for_each(|s| stable.record(NodeId(1), s, s));
                log.trim_stable(&stable);
            }
        }
        assert_eq!((log.len_ops(), log.first()), (10, 19_990));
        assert!(log.bytes.len() < 2 * COMPACT_AT, "dropped bytes were reclaimed: {}", log.bytes.len());
        assert!(log.allocated_bytes() >= log.len_bytes());
        let held = log.read(log.first(), usize::MAX).unwrap();
        let decoded: Vec<Op> = held.iter().map(|o| Op::decode_tail(o.origin, o.seq, o.time, o.tail).unwrap()).collect();
        assert_eq!(decoded, (19_991..=20_000).map(|seq| op(1, seq, 10)).collect::<Vec<_>>());
    }

    #[test]
    fn memory_goes_back_once_a_burst_is_trimmed() {
        let mut log = OpLog::new(64 << 20);
        for seq in 1..=200_000 {
            log.append(&op(1, seq, 100));
        }
        let burst = log.allocated_bytes();
        assert!(burst >= log.len_bytes() && log.len_bytes() > 20 << 20, "{burst} allocated for {} bytes", log.len_bytes());
        let mut stable = VersionVector::new();
        (1..=199_990).for_each(|s| stable.record(NodeId(1), s, s));
        log.trim_stable(&stable);
        assert_eq!(log.len_ops(), 10);
        let after = log.allocated_bytes();
        assert!(after <= 2 * COMPACT_AT + 2 * MIN_SLOTS * std::mem::size_of::<Slot>() + 1024, "{after} bytes still allocated after the trim (burst: {burst})");
        // What is left still reads back.
        let held = log.read(log.first(), usize::MAX).unwrap();
        assert_eq!(held.iter().map(|o| o.seq).collect::<Vec<_>>(), (199_991..=200_000).collect::<Vec<_>>());
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
