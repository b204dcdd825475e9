//! Causal context: what a writer had seen, and what a node has applied.

use crate::node::{NodeId, Stamp};
use crdts::{CmRDT, Dot, VClock};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// What a writer had seen of one part of a key: per origin, the latest stamp time.
///
/// Ops of one origin are applied in order everywhere, so a writer that had seen an origin's
/// stamp `t` had seen every earlier stamp of that origin too. A context therefore names a whole
/// prefix of each origin's writes in one number per origin, however many elements that is.
/// Entries are kept sorted by origin, so equal contexts compare and encode equal.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Context(SmallVec<[(NodeId, u64); 1]>);

impl Context {
    /// The empty context: nothing seen.
    pub fn new() -> Self {
        Context(SmallVec::new())
    }

    /// Records that the writer saw `stamp` (and so everything earlier from its node).
    pub fn observe(&mut self, stamp: Stamp) {
        match self.0.binary_search_by_key(&stamp.node, |(n, _)| *n) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(stamp.time),
            Err(i) => self.0.insert(i, (stamp.node, stamp.time)),
        }
    }

    /// True if the writer had seen `stamp`.
    pub fn covers(&self, stamp: Stamp) -> bool {
        self.time_of(stamp.node).is_some_and(|t| stamp.time <= t)
    }

    /// The latest time seen from `node`, if any.
    pub fn time_of(&self, node: NodeId) -> Option<u64> {
        self.0.binary_search_by_key(&node, |(n, _)| *n).ok().map(|i| self.0[i].1)
    }

    /// Adds everything `other` saw.
    pub fn join(&mut self, other: &Context) {
        for &(node, time) in &other.0 {
            self.observe(Stamp::new(time, node));
        }
    }

    /// True if nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Per origin, the latest time seen.
    pub fn iter(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.0.iter().map(|&(node, time)| Stamp::new(time, node))
    }

    /// Drops the origins for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(Stamp) -> bool) {
        self.0.retain(|(node, time)| keep(Stamp::new(*time, *node)));
    }
}

impl FromIterator<Stamp> for Context {
    fn from_iter<I: IntoIterator<Item = Stamp>>(iter: I) -> Self {
        let mut ctx = Context::new();
        for stamp in iter {
            ctx.observe(stamp);
        }
        ctx
    }
}

/// Answers "has this node already applied the write with this stamp?".
///
/// Removals that name stamps the node has not applied yet are remembered on the key until the
/// stamps arrive, so that a late add cannot resurrect what a remover had already seen.
///
/// The same question asked of the causal-stability frontier ("has every node applied it, and
/// has this node applied everything each node wrote before saying so?") tells what may be
/// garbage-collected: no op still to come can be concurrent with a stable one.
pub trait Frontier {
    /// True if every write of `stamp.node` up to `stamp.time` has been applied here.
    fn covers(&self, stamp: Stamp) -> bool;
}

/// What a node has applied: per origin, the highest contiguous sequence number and its time.
///
/// The sequence part is a `crdts::VClock` (dense per-origin counters, merged by max); the time
/// part maps the same frontier onto HLC stamps so that element dots can be tested against it.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VersionVector {
    seqs: VClock<NodeId>,
    times: Context,
}

impl VersionVector {
    /// The empty vector: nothing applied.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest sequence number of `origin` applied here (0 if none).
    pub fn seq(&self, origin: NodeId) -> u64 {
        self.seqs.get(&origin)
    }

    /// True if the op `(origin, seq)` was already applied (a duplicate).
    pub fn contains(&self, origin: NodeId, seq: u64) -> bool {
        seq <= self.seq(origin)
    }

    /// Per origin: `(origin, seq, time)` of the latest applied op.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64, u64)> + '_ {
        self.seqs.iter().map(|dot| (*dot.actor, dot.counter, self.times.time_of(*dot.actor).unwrap_or(0)))
    }

    /// Per origin, the earlier of the two (what both have applied).
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        let mut out = VersionVector::new();
        for (origin, seq, time) in self.iter() {
            let (their_seq, their_time) = (other.seq(origin), other.times.time_of(origin).unwrap_or(0));
            if their_seq > 0 {
                out.seqs.apply(Dot::new(origin, seq.min(their_seq)));
                out.times.observe(Stamp::new(time.min(their_time), origin));
            }
        }
        out
    }

    /// True if this vector has applied everything `other` has.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.iter().all(|(origin, seq, _)| self.seq(origin) >= seq)
    }

    /// The latest HLC time of any op applied: a clock that has seen this vector is past it.
    pub fn max_time(&self) -> u64 {
        self.times.iter().map(|s| s.time).max().unwrap_or(0)
    }

    /// Joins another vector: per origin, the later of the two.
    pub fn join(&mut self, other: &VersionVector) {
        crdts::CvRDT::merge(&mut self.seqs, other.seqs.clone());
        self.times.join(&other.times);
    }

    /// Records that op `(origin, seq)` with HLC `time` was applied. Ops of one origin must be
    /// recorded in order; a gap or a repeat is a caller bug.
    pub fn record(&mut self, origin: NodeId, seq: u64, time: u64) {
        debug_assert_eq!(seq, self.seq(origin) + 1, "ops of one origin apply in order");
        self.seqs.apply(Dot::new(origin, seq));
        self.times.observe(Stamp::new(time, origin));
    }
}

impl Frontier for VersionVector {
    fn covers(&self, stamp: Stamp) -> bool {
        self.times.covers(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn context_keeps_the_latest_time_per_origin() {
        let ctx: Context = [Stamp::new(5, A), Stamp::new(3, A), Stamp::new(7, B)].into_iter().collect();
        assert!(ctx.covers(Stamp::new(5, A)));
        assert!(!ctx.covers(Stamp::new(6, A)));
        assert!(ctx.covers(Stamp::new(1, B)));
        assert!(!ctx.covers(Stamp::new(1, NodeId(3))));
    }

    #[test]
    fn version_vector_tracks_sequence_and_time() {
        let mut vv = VersionVector::new();
        vv.record(A, 1, 10);
        vv.record(A, 2, 20);
        assert_eq!(vv.seq(A), 2);
        assert!(vv.contains(A, 2));
        assert!(!vv.contains(A, 3));
        assert!(vv.covers(Stamp::new(20, A)));
        assert!(!vv.covers(Stamp::new(21, A)));
        assert!(!vv.covers(Stamp::new(1, B)));
    }
}
