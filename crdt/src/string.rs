//! Strings: a last-writer-wins register plus counter increments.

use crate::causal::{Context, Frontier};
use crate::conflict::{Conflict, DataType, Kept, Rule};
use crate::counter::{Counter, CounterMark, Increment};
use crate::node::NodeId;
use crate::node::Stamp;
use crate::number::{Number, NumberError};
use crate::register::Register;
use crate::short_bytes::ShortBytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::ops::Deref;

/// A Redis string as a CRDT: the bytes last written (SET, APPEND, SETRANGE, ...) plus the
/// increments (INCR family) not yet overwritten.
///
/// `GET` returns the written bytes when no increment is pending, byte for byte as written (so
/// `SET k 007` reads back `007`); otherwise the written value parsed as a number plus the
/// pending increments, printed as Redis prints numbers.
///
/// The same register-plus-counter pair holds a sorted-set member's score (`V` is then
/// [`crate::ScoreValue`]): ZADD writes it, ZINCRBY adds to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrState<V = Box<[u8]>> {
    value: Register<V>,
    counter: Option<Box<Counter>>,
}

impl<V> Default for StrState<V> {
    fn default() -> Self {
        StrState { value: Register::default(), counter: None }
    }
}

/// A value the register of a [`StrState`] holds, made from the bytes a write carries.
pub trait Written: Clone + std::fmt::Debug + PartialEq + Eq {
    /// The value written as `bytes`, or `None` if they do not make one (the origin checked
    /// them, so only a corrupt op gets here).
    fn from_written(bytes: &[u8]) -> Option<Self>;
    /// True if the value reads as a number (increments then add to it: no type conflict).
    fn is_number(&self) -> bool;
}

impl Written for Box<[u8]> {
    fn from_written(bytes: &[u8]) -> Option<Self> {
        Some(bytes.into())
    }

    fn is_number(&self) -> bool {
        Number::parse_float(self).is_ok()
    }
}

impl Written for ShortBytes {
    fn from_written(bytes: &[u8]) -> Option<Self> {
        Some(ShortBytes::new(bytes))
    }

    fn is_number(&self) -> bool {
        Number::parse_float(self).is_ok()
    }
}

/// String values: a key's (`Box<[u8]>`) or a hash field's (`ShortBytes`, inline when short).
impl<V: Written + Deref<Target = [u8]>> StrState<V> {
    /// The value a read returns, or `None` if nothing is live.
    pub fn get(&self) -> Option<Cow<'_, [u8]>> {
        let written = self.value.winner().map(|(_, v)| &**v);
        let pending = match &self.counter {
            Some(counter) if counter.is_live() => counter.pending(),
            _ => return written.map(Cow::Borrowed),
        };
        let base = match written {
            None => Number::ZERO,
            Some(bytes) => match Number::parse_float(bytes) {
                Ok(n) => n,
                // A non-numeric write concurrent with increments keeps its bytes; the
                // increments stay recorded and count again once a number is written.
                Err(_) => return Some(Cow::Borrowed(bytes)),
            },
        };
        let sum = base.checked_add(pending).unwrap_or(base);
        Some(Cow::Owned(sum.to_string().into_bytes()))
    }

    /// The value as a number for the INCR family: an `i64` for INCR/INCRBY/DECRBY and a float
    /// for INCRBYFLOAT. Absent values count as zero.
    pub fn number(&self, float: bool) -> Result<Number, NumberError> {
        match self.get() {
            None => Ok(Number::ZERO),
            Some(bytes) if float => Number::parse_float(&bytes).map_err(|e| match e {
                NumberError::OutOfRange => e,
                _ => NumberError::NotFloat,
            }),
            Some(bytes) => Number::parse_int(&bytes),
        }
    }
}

impl<V: Written> StrState<V> {
    /// The conflict a write of `bytes` stamped `stamp` meets, asked after the write cleared
    /// what its writer had seen and before its bytes are added. What is left, the write had
    /// not seen; what is stamped before it had not seen the write (causally later writes carry
    /// larger stamps). Both together make a conflict, reported by every node that applies the
    /// two writes in stamp order (at least the node that made the earlier one).
    pub fn conflict_of_write(&self, stamp: Stamp, bytes: &[u8]) -> Option<Conflict> {
        if let Some(other) = self.newest_version_before(stamp) {
            return Some(Conflict { data_type: DataType::String, rule: Rule::LwwOverwrite, op: stamp, other, kept: Kept::Op });
        }
        let other = self.newest_increment_before(stamp)?;
        Some(match Number::parse_float(bytes) {
            Ok(_) => Conflict { data_type: DataType::Counter, rule: Rule::AddWins, op: stamp, other, kept: Kept::Both },
            Err(_) => Conflict { data_type: DataType::String, rule: Rule::TypeConflict, op: stamp, other, kept: Kept::Op },
        })
    }

    /// The conflict a removal stamped `stamp` meets, asked after it cleared what its writer had
    /// seen: what still reads and is stamped before it (see [`StrState::conflict_of_write`]).
    pub fn conflict_of_removal(&self, stamp: Stamp) -> Option<Conflict> {
        let (data_type, other) = match self.newest_version_before(stamp) {
            Some(other) => (DataType::String, other),
            None => (DataType::Counter, self.newest_increment_before(stamp)?),
        };
        Some(Conflict { data_type, rule: Rule::AddWins, op: stamp, other, kept: Kept::Other })
    }

    fn newest_version_before(&self, stamp: Stamp) -> Option<Stamp> {
        self.value.newest_before(stamp.time)
    }

    fn newest_increment_before(&self, stamp: Stamp) -> Option<Stamp> {
        self.counter.as_ref()?.live_stamps().filter(|s| s.time < stamp.time).max()
    }

    /// The conflict an increment stamped `stamp` meets on node `local`, asked after it was
    /// applied. A write stamped after it that did not clear it had not seen it (a writer that
    /// had would have cleared it), and the increment had not seen the write (causally later
    /// writes carry larger stamps). Increments carry no context, so among increments only
    /// `local`'s own are known not to have seen it (this node made them before applying it),
    /// and only those stamped after it are known not to have been seen by it: each concurrent
    /// pair is reported by the node that made the later one.
    pub fn conflict_of_increment(&self, stamp: Stamp, inc: &Increment, local: NodeId) -> Option<Conflict> {
        let counter = self.counter.as_ref().filter(|c| c.counts(stamp, inc))?;
        if let Some((other, value)) = self.value.winner().filter(|(other, _)| other.time > stamp.time) {
            return Some(if value.is_number() {
                Conflict { data_type: DataType::Counter, rule: Rule::AddWins, op: stamp, other, kept: Kept::Both }
            } else {
                Conflict { data_type: DataType::String, rule: Rule::TypeConflict, op: stamp, other, kept: Kept::Other }
            });
        }
        let other = counter.live_stamps().filter(|s| s.node == local && s.node != stamp.node && s.time > stamp.time).max()?;
        Some(Conflict { data_type: DataType::Counter, rule: Rule::CountersMerged, op: stamp, other, kept: Kept::Both })
    }

    /// True if a read would return a value.
    pub fn is_live(&self) -> bool {
        !self.value.is_empty() || self.counter.as_ref().is_some_and(|c| c.is_live())
    }

    /// True if nothing is live and nothing waits for a late op.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty() && self.counter.is_none()
    }

    /// What a writer replacing this string has seen: written versions and increments.
    pub fn seen(&self) -> (Context, SmallVec<[CounterMark; 1]>) {
        let marks = self.counter.as_ref().map(|c| c.marks()).unwrap_or_default();
        (self.value.context(), marks)
    }

    /// Removes what a writer (the op `by`) had seen; returns the stamps it named that are not
    /// applied here.
    pub fn clear(&mut self, seen: &Context, marks: &[CounterMark], by: Stamp, frontier: &impl Frontier) -> Context {
        if !marks.is_empty() {
            self.counter.get_or_insert_with(Default::default).clear(marks, by, frontier);
        }
        self.value.remove(seen, frontier)
    }

    /// Removes what was written, and the increment runs begun, before `time`: the key expired
    /// (the op `by` says so).
    pub fn kill_before(&mut self, time: u64, by: Stamp) {
        self.value.remove_before(time);
        if let Some(counter) = &mut self.counter {
            counter.kill_before(time, by);
        }
    }

    /// Removes the written versions a context covers (see [`Register::remove`]).
    pub fn remove_versions(&mut self, seen: &Context, frontier: &impl Frontier) {
        self.value.remove(seen, frontier);
    }

    /// Collects counter runs that are settled and stable.
    pub fn collect(&mut self, stable: &impl Frontier) {
        if let Some(counter) = &mut self.counter {
            counter.collect(stable);
            if counter.is_empty() {
                self.counter = None;
            }
        }
    }

    /// Joins another replica's state of the same string (see [`Register::merge`],
    /// [`Counter::merge`]).
    pub fn merge(&mut self, other: &StrState<V>, mine: &impl Frontier, theirs: &impl Frontier) {
        self.value.merge(&other.value, mine, theirs);
        match (&mut self.counter, &other.counter) {
            (Some(counter), Some(theirs_counter)) => counter.merge(theirs_counter, mine, theirs),
            (Some(counter), None) => counter.merge(&Counter::default(), mine, theirs),
            (None, Some(theirs_counter)) => {
                let mut counter = Counter::default();
                counter.merge(theirs_counter, mine, theirs);
                self.counter = Some(Box::new(counter));
            }
            (None, None) => {}
        }
        if self.counter.as_ref().is_some_and(|c| c.is_empty()) {
            self.counter = None;
        }
    }

    /// The largest stamp of what reads: the newest written version or live increment.
    pub fn newest(&self) -> Option<Stamp> {
        let counted = self.counter.as_ref().and_then(|c| c.live_stamps().max());
        self.value.winner().map(|(stamp, _)| stamp).max(counted)
    }

    /// Stamps of the written versions held.
    pub fn version_stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.value.versions().map(|(stamp, _)| stamp)
    }

    /// Adds the value written as `bytes` at `stamp`.
    pub fn write(&mut self, stamp: Stamp, bytes: &[u8]) {
        if let Some(value) = V::from_written(bytes) {
            self.value.insert(stamp, value);
        }
    }

    /// The value written last, if any version is left.
    pub fn written(&self) -> Option<&V> {
        self.value.winner().map(|(_, v)| v)
    }

    /// The increments applied and not cleared, if any.
    pub fn pending_increments(&self) -> Option<Number> {
        self.counter.as_ref().filter(|c| c.is_live()).map(|c| c.pending())
    }

    /// The increment `origin` would make now (see [`Counter::next_increment`]).
    pub fn next_increment(&self, origin: NodeId, delta: Number) -> Option<Increment> {
        match &self.counter {
            Some(counter) => counter.next_increment(origin, delta),
            None => Some(Increment { epoch: None, delta, total: delta }),
        }
    }

    /// Adds an increment made at `stamp`.
    pub fn increment(&mut self, stamp: Stamp, inc: &Increment) {
        self.counter.get_or_insert_with(Default::default).add(stamp, inc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct All;
    impl Frontier for All {
        fn covers(&self, _: Stamp) -> bool {
            true
        }
    }

    fn s(t: u64) -> Stamp {
        Stamp::new(t, NodeId(1))
    }

    #[test]
    fn written_bytes_read_back_exactly_until_incremented() {
        let mut st = StrState::<Box<[u8]>>::default();
        st.write(s(1), b"007");
        assert_eq!(st.get().as_deref(), Some(&b"007"[..]));
        assert_eq!(st.number(false), Err(NumberError::NotInteger));
        assert_eq!(st.number(true).unwrap().to_string(), "7");
        st.increment(s(2), &st.next_increment(NodeId(1), Number::from_i64(1)).unwrap());
        assert_eq!(st.get().as_deref(), Some(&b"8"[..]));
    }

    #[test]
    fn an_overwrite_clears_the_increments_it_saw() {
        let mut st = StrState::<Box<[u8]>>::default();
        st.increment(s(1), &st.next_increment(NodeId(1), Number::from_i64(5)).unwrap());
        let (ctx, marks) = st.seen();
        st.clear(&ctx, &marks, s(2), &All);
        st.write(s(2), b"x");
        assert_eq!(st.get().as_deref(), Some(&b"x"[..]));
        st.collect(&All);
        assert!(st.counter.is_none());
    }
}
