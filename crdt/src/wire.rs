//! The compact encoding of an op, as the op log holds it and peers receive it.
//!
//! An op's origin, sequence number and time are not part of it: the log keeps them beside
//! the bytes, and a frame carries them once per run of one origin's consecutive ops (see
//! `meridian-geo`). What is encoded is the *tail*: the key and the body, with every stamp the
//! body names written relative to the op itself: its origin as one byte when it is the op's
//! own, its time as a signed difference from the op's time (small: a writer names what it saw
//! moments before). Integers are LEB128 varints. A 16-byte key and a 32-byte value written to
//! a new key take 51 bytes, where MessagePack of the whole op took 87 (docs/benchmarks.md).
//!
//! ```text
//! tail     = key body
//! key      = len bytes
//! body     = kind-byte fields           kind-byte: low 3 bits the kind, bit 3 "has seen",
//!                                       bit 4 "has expiry" (Set) / "continues a run" (Incr),
//!                                       bit 5 "has field marks"
//!   Set      [seen [fields]] value [expire_at]
//!   Incr     [seen [fields]] [epoch] delta total
//!   Del      [seen [fields]]
//!   Expire   context at
//!   Expired  before
//!   Edit     collection count edit*               collection: 0 hash, 1 set, 2 sorted set
//!   List     count list-edit*
//! list-edit = tag payload                          tag: low 2 bits Insert/Remove/Set,
//!                                                  bits 2-3 the anchor: head, tail, after
//!   Insert [elem] count value*  |  Remove elem context  |  Set elem context value
//! elem     = stamp index
//! edit     = member change-byte [seen] payload    change: low 2 bits Add/Write/Incr/Remove,
//!                                                 bit 2 "has seen", bit 3 "continues a run"
//!   payload: Write value | Incr [epoch] delta total | nothing
//! fields   = count (collection member marks)*
//! seen     = parts-byte [values] [marks] [context]    parts: bit 0 values, bit 1 marks,
//!                                                       bit 2 TTLs, bits 3-7 how many values
//!                                                       (31: a count follows)
//! values   = [count] stamp*
//! context  = count stamp*
//! marks    = count (stamp-of-epoch time total)*
//! stamp    = (zigzag(op.time - time) << 1 | other-origin) [u64-le origin if other]
//! time     = zigzag(op.time - time)
//! number   = 0 zigzag(integer) | 1 zigzag(raw 17-decimal fixed point)
//! ```

use crate::causal::Context;
use crate::counter::{CounterMark, Increment};
use crate::list::{Anchor, ElemId, ListEdit};
use crate::node::{NodeId, Stamp};
use crate::number::Number;
use crate::op::{Body, Change, Collection, Edit, Op, Seen};
use bytes::Bytes;

/// Why bytes could not be decoded as an op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("undecodable op: truncated")]
    Truncated,
    /// A kind, flag or marker this version does not know.
    #[error("undecodable op: unknown {0} {1}")]
    Unknown(&'static str, u8),
    /// A varint longer than its type.
    #[error("undecodable op: varint overflow")]
    Overflow,
    /// Bytes after the op.
    #[error("undecodable op: {0} trailing bytes")]
    Trailing(usize),
}

const SET: u8 = 0;
const INCR: u8 = 1;
const DEL: u8 = 2;
const EXPIRE: u8 = 3;
const EXPIRED: u8 = 4;
const EDIT: u8 = 5;
const LIST: u8 = 6;
const INSERT: u8 = 0;
const REMOVE_ELEMENT: u8 = 1;
const SET_ELEMENT: u8 = 2;
const AT_HEAD: u8 = 0;
const AT_TAIL: u8 = 1 << 2;
const AFTER: u8 = 2 << 2;
const KIND: u8 = 0b111;
const HAS_SEEN: u8 = 1 << 3;
const HAS_EXTRA: u8 = 1 << 4;
const HAS_FIELDS: u8 = 1 << 5;
const ADD: u8 = 0;
const WRITE: u8 = 1;
const ADD_TO: u8 = 2;
const REMOVE: u8 = 3;
const CHANGE: u8 = 0b11;
const EDIT_HAS_SEEN: u8 = 1 << 2;
const EDIT_CONTINUES: u8 = 1 << 3;
/// A seen-parts byte counts up to this many written versions itself; from it on, a count follows.
const MANY_VALUES: usize = 31;

impl<B: AsRef<[u8]>> Op<B> {
    /// Appends the op's tail (key and body; see the module docs) to `out`.
    pub fn encode_tail(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out, origin: self.origin, time: self.time };
        w.bytes(self.key.as_ref());
        let seen_flag = |seen: &Seen| {
            let fields = if seen.fields.is_empty() { 0 } else { HAS_FIELDS };
            if seen.is_empty() {
                0
            } else {
                HAS_SEEN | fields
            }
        };
        match &self.body {
            Body::Set { seen, value, expire_at } => {
                w.byte(SET | seen_flag(seen) | if expire_at.is_some() { HAS_EXTRA } else { 0 });
                w.whole_seen(seen);
                w.bytes(value.as_ref());
                if let Some(at) = expire_at {
                    w.varint(*at);
                }
            }
            Body::Incr { seen, inc } => {
                w.byte(INCR | seen_flag(seen) | if inc.epoch.is_some() { HAS_EXTRA } else { 0 });
                w.whole_seen(seen);
                w.increment(inc);
            }
            Body::Del { seen } => {
                w.byte(DEL | seen_flag(seen));
                w.whole_seen(seen);
            }
            Body::Expire { seen, at } => {
                w.byte(EXPIRE);
                w.context(seen);
                w.varint(*at);
            }
            Body::Expired { before } => {
                w.byte(EXPIRED);
                w.time(*before);
            }
            Body::Edit { collection, edits } => {
                w.byte(EDIT);
                w.byte(collection_byte(*collection));
                w.varint(edits.len() as u64);
                edits.iter().for_each(|edit| w.edit(edit));
            }
            Body::List { edits } => {
                w.byte(LIST);
                w.varint(edits.len() as u64);
                edits.iter().for_each(|edit| w.list_edit(edit));
            }
        }
    }
}

impl Op {
    /// Decodes a tail made by [`Op::encode_tail`] of the op `(origin, seq)` stamped `time`.
    pub fn decode_tail(origin: NodeId, seq: u64, time: u64, tail: &[u8]) -> Result<Op, DecodeError> {
        let mut r = Reader { rest: tail, origin, time };
        let key = r.bytes()?;
        let tag = r.byte()?;
        let (has_seen, extra) = (tag & HAS_SEEN != 0, tag & HAS_EXTRA != 0);
        let has_fields = tag & HAS_FIELDS != 0;
        let mut seen = || if has_seen { r.whole_seen(has_fields) } else { Ok(Seen::default()) };
        let body = match tag & KIND {
            SET => {
                let seen = seen()?;
                let value = r.bytes()?;
                let expire_at = if extra { Some(r.varint()?) } else { None };
                Body::Set { seen, value, expire_at }
            }
            INCR => {
                let seen = seen()?;
                Body::Incr { seen, inc: r.increment(extra)? }
            }
            DEL => Body::Del { seen: seen()? },
            EXPIRE => Body::Expire { seen: r.context()?, at: r.varint()? },
            EXPIRED => Body::Expired { before: r.time()? },
            LIST => {
                let n = r.count()?;
                Body::List { edits: (0..n).map(|_| r.list_edit()).collect::<Result<_, _>>()? }
            }
            EDIT => {
                let collection = r.collection()?;
                let n = r.count()?;
                let edits = (0..n).map(|_| r.edit()).collect::<Result<_, _>>()?;
                Body::Edit { collection, edits }
            }
            other => return Err(DecodeError::Unknown("op kind", other)),
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::Trailing(r.rest.len()));
        }
        Ok(Op { origin, seq, time, key, body })
    }
}

impl Seen {
    /// True if the writer had seen nothing.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty() && self.counts.is_empty() && self.expiry.is_empty() && self.fields.is_empty()
    }
}

/// Encodes relative to one op's origin and time.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    origin: NodeId,
    time: u64,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    fn varint(&mut self, mut n: u64) {
        // The common case stays in 64-bit arithmetic (most values are one to five bytes).
        while n >= 0x80 {
            self.out.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn varint128(&mut self, mut n: u128) {
        while n >= 0x80 {
            self.out.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn time(&mut self, t: u64) {
        self.varint(zigzag(self.time.wrapping_sub(t) as i64));
    }

    /// A stamp relative to the op: the time difference, its low bit set when the stamp's node
    /// is not the op's origin (whose id then follows).
    fn stamp(&mut self, stamp: Stamp) {
        let other = stamp.node != self.origin;
        self.varint128(u128::from(zigzag(self.time.wrapping_sub(stamp.time) as i64)) << 1 | u128::from(other));
        if other {
            self.out.extend_from_slice(&stamp.node.0.to_le_bytes());
        }
    }

    fn context(&mut self, context: &Context) {
        self.varint(context.iter().count() as u64);
        context.iter().for_each(|stamp| self.stamp(stamp));
    }

    fn number(&mut self, n: Number) {
        match n.integer_part_if_whole() {
            Some(i) => {
                self.byte(0);
                self.varint128(zigzag128(i));
            }
            None => {
                self.byte(1);
                self.varint128(zigzag128(n.raw()));
            }
        }
    }

    fn seen(&mut self, seen: &Seen) {
        if seen.is_empty() {
            return;
        }
        let values = seen.value.iter().count();
        let presence = u8::from(values > 0) | u8::from(!seen.counts.is_empty()) << 1 | u8::from(!seen.expiry.is_empty()) << 2;
        self.byte(presence | (values.min(MANY_VALUES) as u8) << 3);
        if values >= MANY_VALUES {
            self.varint(values as u64);
        }
        seen.value.iter().for_each(|stamp| self.stamp(stamp));
        if !seen.counts.is_empty() {
            self.marks(&seen.counts);
        }
        if !seen.expiry.is_empty() {
            self.context(&seen.expiry);
        }
    }

    /// A whole-key seen: [`Writer::seen`], then the field marks (flagged in the kind byte).
    fn whole_seen(&mut self, seen: &Seen) {
        self.seen(seen);
        if !seen.fields.is_empty() {
            self.varint(seen.fields.len() as u64);
            for (collection, member, marks) in &seen.fields {
                self.byte(collection_byte(*collection));
                self.bytes(member);
                self.marks(marks);
            }
        }
    }

    fn marks(&mut self, marks: &[CounterMark]) {
        self.varint(marks.len() as u64);
        for mark in marks {
            self.stamp(Stamp::new(mark.epoch, mark.origin));
            self.time(mark.time);
            self.number(mark.total);
        }
    }

    fn edit<B: AsRef<[u8]>>(&mut self, edit: &Edit<B>) {
        self.bytes(edit.member.as_ref());
        let seen = if edit.seen.is_empty() { 0 } else { EDIT_HAS_SEEN };
        match &edit.change {
            Change::Add => self.byte(ADD | seen),
            Change::Write(_) => self.byte(WRITE | seen),
            Change::Incr(inc) => self.byte(ADD_TO | seen | if inc.epoch.is_some() { EDIT_CONTINUES } else { 0 }),
            Change::Remove => self.byte(REMOVE | seen),
        }
        self.seen(&edit.seen);
        match &edit.change {
            Change::Write(value) => self.bytes(value.as_ref()),
            Change::Incr(inc) => self.increment(inc),
            Change::Add | Change::Remove => {}
        }
    }

    fn element(&mut self, id: ElemId) {
        self.stamp(id.stamp);
        self.varint(u64::from(id.index));
    }

    fn list_edit<B: AsRef<[u8]>>(&mut self, edit: &ListEdit<B>) {
        match edit {
            ListEdit::Insert { anchor, values } => {
                match anchor {
                    Anchor::Head => self.byte(INSERT | AT_HEAD),
                    Anchor::Tail => self.byte(INSERT | AT_TAIL),
                    Anchor::After(id) => {
                        self.byte(INSERT | AFTER);
                        self.element(*id);
                    }
                }
                self.varint(values.len() as u64);
                values.iter().for_each(|v| self.bytes(v.as_ref()));
            }
            ListEdit::Remove { id, seen } => {
                self.byte(REMOVE_ELEMENT);
                self.element(*id);
                self.context(seen);
            }
            ListEdit::Set { id, seen, value } => {
                self.byte(SET_ELEMENT);
                self.element(*id);
                self.context(seen);
                self.bytes(value.as_ref());
            }
        }
    }

    fn increment(&mut self, inc: &Increment) {
        if let Some(epoch) = inc.epoch {
            self.time(epoch);
        }
        self.number(inc.delta);
        self.number(inc.total);
    }
}

/// Decodes relative to one op's origin and time.
struct Reader<'a> {
    rest: &'a [u8],
    origin: NodeId,
    time: u64,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn varint128(&mut self) -> Result<u128, DecodeError> {
        let mut n: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            n |= u128::from(b & 0x7f).checked_shl(shift).filter(|v| v >> shift == u128::from(b & 0x7f)).ok_or(DecodeError::Overflow)?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::Overflow)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Overflow);
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::Overflow)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Overflow)?;
        if len > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.len()?;
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn time(&mut self) -> Result<u64, DecodeError> {
        Ok(self.time.wrapping_sub(unzigzag(self.varint()?) as u64))
    }

    fn stamp(&mut self) -> Result<Stamp, DecodeError> {
        let v = self.varint128()?;
        let delta = u64::try_from(v >> 1).map_err(|_| DecodeError::Overflow)?;
        let time = self.time.wrapping_sub(unzigzag(delta) as u64);
        let node = if v & 1 == 0 {
            self.origin
        } else {
            let raw = self.rest.get(..8).ok_or(DecodeError::Truncated)?;
            self.rest = &self.rest[8..];
            NodeId(u64::from_le_bytes(raw.try_into().expect("eight bytes")))
        };
        Ok(Stamp { node, time })
    }

    fn count(&mut self) -> Result<usize, DecodeError> {
        // Every entry takes at least one byte: a count beyond that is corrupt, and must not
        // reserve memory.
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Overflow)?;
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn stamps(&mut self, n: usize) -> Result<Context, DecodeError> {
        let stamps = (0..n).map(|_| self.stamp()).collect::<Result<Vec<_>, _>>()?;
        Ok(stamps.into_iter().collect())
    }

    fn context(&mut self) -> Result<Context, DecodeError> {
        let n = self.count()?;
        self.stamps(n)
    }

    fn number(&mut self) -> Result<Number, DecodeError> {
        match self.byte()? {
            0 => Number::from_whole(unzigzag128(self.varint128()?)).ok_or(DecodeError::Overflow),
            1 => Ok(Number::from_raw(unzigzag128(self.varint128()?))),
            other => Err(DecodeError::Unknown("number form", other)),
        }
    }

    fn seen(&mut self) -> Result<Seen, DecodeError> {
        let parts = self.byte()?;
        let mut values = usize::from(parts >> 3);
        if values == MANY_VALUES {
            values = self.count()?;
        }
        if (values > 0) != (parts & 1 != 0) {
            return Err(DecodeError::Unknown("seen parts", parts));
        }
        let mut seen = Seen { value: self.stamps(values)?, ..Seen::default() };
        if parts & 2 != 0 {
            seen.counts = self.marks()?.into();
        }
        if parts & 4 != 0 {
            seen.expiry = self.context()?;
        }
        Ok(seen)
    }

    /// A whole-key seen: [`Reader::seen`], then the field marks if the kind byte says so.
    fn whole_seen(&mut self, has_fields: bool) -> Result<Seen, DecodeError> {
        let mut seen = self.seen()?;
        if has_fields {
            let n = self.count()?;
            for _ in 0..n {
                let collection = self.collection()?;
                let member = self.bytes()?;
                seen.fields.push((collection, member.as_ref().into(), self.marks()?.into()));
            }
        }
        Ok(seen)
    }

    fn marks(&mut self) -> Result<Vec<CounterMark>, DecodeError> {
        let n = self.count()?;
        (0..n)
            .map(|_| {
                let Stamp { node: origin, time: epoch } = self.stamp()?;
                let time = self.time()?;
                Ok(CounterMark { origin, epoch, time, total: self.number()? })
            })
            .collect()
    }

    fn element(&mut self) -> Result<ElemId, DecodeError> {
        let stamp = self.stamp()?;
        let index = u32::try_from(self.varint()?).map_err(|_| DecodeError::Overflow)?;
        Ok(ElemId { stamp, index })
    }

    fn list_edit(&mut self) -> Result<ListEdit<Bytes>, DecodeError> {
        let tag = self.byte()?;
        Ok(match (tag & 0b11, tag >> 2) {
            (INSERT, 0..=2) => {
                let anchor = match tag & 0b1100 {
                    AT_HEAD => Anchor::Head,
                    AT_TAIL => Anchor::Tail,
                    _ => Anchor::After(self.element()?),
                };
                let n = self.count()?;
                ListEdit::Insert { anchor, values: (0..n).map(|_| self.bytes()).collect::<Result<_, _>>()? }
            }
            (REMOVE_ELEMENT, 0) => ListEdit::Remove { id: self.element()?, seen: self.context()? },
            (SET_ELEMENT, 0) => ListEdit::Set { id: self.element()?, seen: self.context()?, value: self.bytes()? },
            _ => return Err(DecodeError::Unknown("list edit", tag)),
        })
    }

    fn collection(&mut self) -> Result<Collection, DecodeError> {
        Ok(match self.byte()? {
            0 => Collection::Hash,
            1 => Collection::Set,
            2 => Collection::Zset,
            other => return Err(DecodeError::Unknown("collection", other)),
        })
    }

    fn increment(&mut self, continues: bool) -> Result<Increment, DecodeError> {
        let epoch = if continues { Some(self.time()?) } else { None };
        Ok(Increment { epoch, delta: self.number()?, total: self.number()? })
    }

    fn edit(&mut self) -> Result<Edit, DecodeError> {
        let member = self.bytes()?;
        let tag = self.byte()?;
        if tag >> 4 != 0 || (tag & EDIT_CONTINUES != 0 && tag & CHANGE != ADD_TO) {
            return Err(DecodeError::Unknown("edit flags", tag));
        }
        let seen = if tag & EDIT_HAS_SEEN != 0 { self.seen()? } else { Seen::default() };
        let change = match tag & CHANGE {
            ADD => Change::Add,
            WRITE => Change::Write(self.bytes()?),
            ADD_TO => Change::Incr(self.increment(tag & EDIT_CONTINUES != 0)?),
            _ => Change::Remove,
        };
        Ok(Edit { member, seen, change })
    }
}

/// The byte naming a collection (see the module docs).
fn collection_byte(collection: Collection) -> u8 {
    match collection {
        Collection::Hash => 0,
        Collection::Set => 1,
        Collection::Zset => 2,
    }
}

/// Appends one op of a run of one origin's consecutive ops: its time, as the difference from
/// the previous op's (`previous`; the run's first time for the first op), then its tail.
pub fn push_run_entry(out: &mut Vec<u8>, previous: u64, time: u64, tail: &[u8]) {
    let mut w = Writer { out, origin: NodeId(0), time: previous };
    w.time(time);
    w.bytes(tail);
}

/// The entries of a run made with [`push_run_entry`], whose first op is stamped `first_time`:
/// each op's time and tail, in order.
pub fn run_entries(first_time: u64, mut bytes: &[u8]) -> impl Iterator<Item = Result<(u64, &[u8]), DecodeError>> {
    let mut previous = first_time;
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let mut r = Reader { rest: bytes, origin: NodeId(0), time: previous };
        let entry = r.time().and_then(|time| {
            let len = r.len()?;
            let (tail, rest) = r.rest.split_at(len);
            Ok((time, tail, rest))
        });
        Some(match entry {
            Ok((time, tail, rest)) => {
                (previous, bytes) = (time, rest);
                Ok((time, tail))
            }
            Err(e) => {
                bytes = &[];
                Err(e)
            }
        })
    })
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    (n >> 1) as i64 ^ -((n & 1) as i64)
}

fn zigzag128(n: i128) -> u128 {
    ((n << 1) ^ (n >> 127)) as u128
}

fn unzigzag128(n: u128) -> i128 {
    (n >> 1) as i128 ^ -((n & 1) as i128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp() -> impl Strategy<Value = Stamp> {
        (prop_oneof![Just(7u64), any::<u64>()], prop_oneof![1_000u64..2_000, any::<u64>()]).prop_map(|(n, t)| Stamp::new(t, NodeId(n)))
    }

    fn context() -> impl Strategy<Value = Context> {
        prop_oneof![4 => proptest::collection::vec(stamp(), 0..4), 1 => proptest::collection::vec(stamp(), 28..40)].prop_map(|s| s.into_iter().collect())
    }

    fn number() -> impl Strategy<Value = Number> {
        prop_oneof![(-1000i64..1000).prop_map(Number::from_i64), any::<i64>().prop_map(|r| Number::from_raw(r.into()))]
    }

    fn seen() -> impl Strategy<Value = Seen> {
        (context(), proptest::collection::vec(mark(), 0..3), context()).prop_map(|(value, counts, expiry)| Seen { value, counts: counts.into(), expiry, fields: Vec::new() })
    }

    fn mark() -> impl Strategy<Value = CounterMark> {
        (stamp(), any::<u64>(), number()).prop_map(|(s, epoch, total)| CounterMark { origin: s.node, epoch, time: s.time, total })
    }

    /// A whole-key seen, with field marks as a DEL of a hash of counters has them.
    fn whole_seen() -> impl Strategy<Value = Seen> {
        let field = (collection(), proptest::collection::vec(any::<u8>(), 0..8), proptest::collection::vec(mark(), 1..3));
        (seen(), proptest::collection::vec(field, 0..3)).prop_map(|(mut seen, fields)| {
            seen.fields = fields.into_iter().map(|(c, m, marks)| (c, m.into(), marks.into())).collect();
            seen
        })
    }

    fn list_edit() -> impl Strategy<Value = ListEdit<Bytes>> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from);
        let element = || (stamp(), any::<u32>()).prop_map(|(stamp, index)| ElemId { stamp, index });
        let anchor = prop_oneof![Just(Anchor::Head), Just(Anchor::Tail), element().prop_map(Anchor::After)];
        prop_oneof![
            (anchor, proptest::collection::vec(bytes(), 0..4)).prop_map(|(anchor, values)| ListEdit::Insert { anchor, values }),
            (element(), context()).prop_map(|(id, seen)| ListEdit::Remove { id, seen }),
            (element(), context(), bytes()).prop_map(|(id, seen, value)| ListEdit::Set { id, seen, value }),
        ]
    }

    fn collection() -> impl Strategy<Value = Collection> {
        prop_oneof![Just(Collection::Hash), Just(Collection::Set), Just(Collection::Zset)]
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from);
        let change = prop_oneof![
            Just(Change::Add),
            bytes().prop_map(Change::Write),
            (proptest::option::of(any::<u64>()), number(), number()).prop_map(|(epoch, delta, total)| Change::Incr(Increment { epoch, delta, total })),
            Just(Change::Remove),
        ];
        (bytes(), seen(), change).prop_map(|(member, seen, change)| Edit { member, seen, change })
    }

    fn body() -> impl Strategy<Value = Body> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
        prop_oneof![
            (whole_seen(), bytes(), proptest::option::of(any::<u64>())).prop_map(|(seen, value, expire_at)| Body::Set { seen, value, expire_at }),
            (whole_seen(), proptest::option::of(any::<u64>()), number(), number())
                .prop_map(|(seen, epoch, delta, total)| Body::Incr { seen, inc: Increment { epoch, delta, total } }),
            whole_seen().prop_map(|seen| Body::Del { seen }),
            (collection(), proptest::collection::vec(edit(), 0..4)).prop_map(|(collection, edits)| Body::Edit { collection, edits }),
            proptest::collection::vec(list_edit(), 0..4).prop_map(|edits| Body::List { edits }),
            (context(), any::<u64>()).prop_map(|(seen, at)| Body::Expire { seen, at }),
            any::<u64>().prop_map(|before| Body::Expired { before }),
        ]
    }

    proptest! {
        #[test]
        fn tails_round_trip(key in proptest::collection::vec(any::<u8>(), 0..20), body in body(), time in prop_oneof![1_500u64..1_600, any::<u64>()], seq in 1u64..) {
            let op = Op { origin: NodeId(7), seq, time, key: Bytes::from(key), body };
            let mut tail = Vec::new();
            op.encode_tail(&mut tail);
            prop_assert_eq!(Op::decode_tail(op.origin, seq, time, &tail), Ok(op.clone()));
            for cut in 0..tail.len() {
                prop_assert!(Op::decode_tail(op.origin, seq, time, &tail[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Op::decode_tail(NodeId(1), 1, 1, &bytes);
        }
    }

    #[test]
    fn runs_carry_times_as_differences_and_tails_as_given() {
        let entries: [(u64, &[u8]); 3] = [(1_000, b"a"), (1_004, b""), (990, b"ccc")];
        let mut run = Vec::new();
        let mut previous = 1_000;
        for (time, tail) in entries {
            push_run_entry(&mut run, previous, time, tail);
            previous = time;
        }
        assert_eq!(run.len(), 3 * 2 + 4);
        let decoded: Vec<(u64, &[u8])> = run_entries(1_000, &run).collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, entries.to_vec());
        let mut truncated = run_entries(1_000, &run[..run.len() - 1]);
        assert!(truncated.nth(2).unwrap().is_err() && truncated.next().is_none());
    }

    #[test]
    fn a_set_of_a_new_key_costs_three_bytes_beyond_its_key_and_value() {
        let op = Op {
            origin: NodeId(7),
            seq: 1,
            time: 1 << 40,
            key: Bytes::from(vec![b'k'; 16]),
            body: Body::Set { seen: Seen::default(), value: Bytes::from(vec![b'v'; 32]), expire_at: None },
        };
        let mut tail = Vec::new();
        op.encode_tail(&mut tail);
        assert_eq!(tail.len(), 16 + 32 + 3);
    }
}
