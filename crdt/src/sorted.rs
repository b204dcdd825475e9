//! Sorted sets: an observed-remove map of members to score states, plus the score order.
//!
//! The replicated state is the [`Members`] map alone (it is what is merged, transferred and
//! compared); the order, by score then member bytes as Redis orders, is derived from it and
//! kept up to date by every change, so range reads walk it instead of sorting.

use crate::causal::{Context, Frontier};
use crate::conflict::Met;
use crate::members::{KeyRemovals, Members};
use crate::node::{NodeId, Stamp};
use crate::op::{Change, Collection, Seen};
use crate::ranked_set::RankedSet;
use crate::score::ScoreState;
use crate::short_bytes::ShortBytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::ops::Range;

/// A score in the order: compared as doubles (never NaN; `-0` equals `0`, as in Redis).
#[derive(Clone, Copy, Debug)]
pub struct Ranked(pub f64);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// One entry of the order.
type Entry = (Ranked, ShortBytes);

/// A sorted set's members and their order.
#[derive(Clone, Debug, Default)]
pub struct SortedMembers {
    members: Members<ScoreState>,
    order: RankedSet<Entry>,
}

impl PartialEq for SortedMembers {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

impl Eq for SortedMembers {}

impl Serialize for SortedMembers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SortedMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut sorted = SortedMembers { members: Members::deserialize(deserializer)?, order: RankedSet::default() };
        sorted.reorder();
        Ok(sorted)
    }
}

impl SortedMembers {
    /// The members and their score states.
    pub fn members(&self) -> &Members<ScoreState> {
        &self.members
    }

    /// The score of the live member `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.members.get(member).and_then(ScoreState::score)
    }

    /// Live members in Redis's order: by score, then by member bytes.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = (f64, &[u8])> + '_ {
        self.order.iter().map(|(score, member)| (score.0, &**member))
    }

    /// The live members at ranks `ranks` (0 is the lowest), in order; O(log n) to the first.
    pub fn by_rank(&self, ranks: Range<usize>) -> impl DoubleEndedIterator<Item = (f64, &[u8])> + '_ {
        self.order.range(ranks).map(|(score, member)| (score.0, &**member))
    }

    /// The ranks of the live members scored from `min` to `max`, each bound included unless
    /// marked exclusive; O(log n).
    pub fn score_ranks(&self, (min, min_exclusive): (f64, bool), (max, max_exclusive): (f64, bool)) -> Range<usize> {
        let start = if min_exclusive { self.below_or_at(min) } else { self.below(min) };
        let end = if max_exclusive { self.below(max) } else { self.below_or_at(max) };
        start..end.max(start)
    }

    /// How many live members score below `score`.
    fn below(&self, score: f64) -> usize {
        self.order.position(&(Ranked(score), ShortBytes::default()))
    }

    /// How many live members score at most `score`.
    fn below_or_at(&self, score: f64) -> usize {
        if score == f64::INFINITY {
            self.order.len()
        } else {
            self.below(score.next_up())
        }
    }

    /// The ranks of the members from the first `above_min` accepts up to the last
    /// `below_max` accepts, by bisection, when every member has the same score: the order is
    /// then byte order, which a lex range assumes (and the two tests are monotonic in it).
    /// None with mixed scores, where only a walk answers as Redis does.
    pub fn lex_ranks(&self, above_min: impl Fn(&[u8]) -> bool, below_max: impl Fn(&[u8]) -> bool) -> Option<Range<usize>> {
        let (first, last) = (self.order.iter().next()?, self.order.iter().next_back()?);
        if first.0 != last.0 {
            return None;
        }
        let start = self.order.partition_point(|(_, member)| !above_min(member));
        let end = self.order.partition_point(|(_, member)| below_max(member));
        Some(start..end.max(start))
    }

    /// How many live members come before `member` in the order (its rank), if it is live.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.order.position(&(Ranked(score), ShortBytes::new(member))))
    }

    /// Applies one member's edit (see [`Members::edit`]) and moves it in the order.
    pub fn edit<B: AsRef<[u8]>>(
        &mut self,
        member: &[u8],
        seen: &Seen,
        change: &Change<B>,
        by: Stamp,
        frontier: &impl Frontier,
        removals: KeyRemovals,
        local: NodeId,
    ) -> Option<Met> {
        let before = self.score(member);
        let met = self.members.edit(member, seen, change, by, frontier, removals, local);
        let after = self.score(member);
        if before.map(f64::to_bits) != after.map(f64::to_bits) {
            if let Some(score) = before {
                self.order.remove(&(Ranked(score), ShortBytes::new(member)));
            }
            if let Some(score) = after {
                self.order.insert((Ranked(score), ShortBytes::new(member)));
            }
        }
        met
    }

    /// Whole-key removal (see [`Members::remove_seen`]).
    pub fn remove_seen(&mut self, seen: &Seen, by: Stamp, frontier: &impl Frontier) {
        self.members.remove_seen(seen, Collection::Zset, by, frontier);
        self.reorder();
    }

    /// The key expired (see [`Members::kill_before`]).
    pub fn kill_before(&mut self, time: u64, by: Stamp) {
        self.members.kill_before(time, by);
        self.reorder();
    }

    /// See [`Members::settle`].
    pub fn settle(&mut self, frontier: &impl Frontier) {
        self.members.settle(frontier);
    }

    /// See [`Members::collect`]: collecting never changes what reads, so the order stays.
    pub fn collect(&mut self, stable: &impl Frontier) {
        self.members.collect(stable);
    }

    /// See [`Members::collect_members`].
    pub fn collect_members<'m>(&mut self, members: impl Iterator<Item = &'m [u8]>, stable: &impl Frontier) {
        self.members.collect_members(members, stable);
    }

    /// Full state transfer (see [`Members::merge`]).
    pub fn merge(&mut self, other: &SortedMembers, mine: &impl Frontier, theirs: &impl Frontier, removed: &Context) {
        self.members.merge(&other.members, mine, theirs, removed);
        self.reorder();
    }

    /// Rebuilds the order from the members (after a change that can touch any of them).
    fn reorder(&mut self) {
        self.order = self.members.iter().filter_map(|(m, s)| Some((Ranked(s.score()?), ShortBytes::new(m)))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::VersionVector;
    use crate::members::MemberView;
    use crate::node::NodeId;

    fn add(z: &mut SortedMembers, time: u64, member: &str, score: &str) {
        let (_, seen) = z.members().probe(member.as_bytes());
        let removals = KeyRemovals { covers_op: false, dead_before: 0 };
        z.edit(member.as_bytes(), &seen, &Change::Write(score.as_bytes()), Stamp::new(time, NodeId(1)), &VersionVector::new(), removals, NodeId(1));
    }

    #[test]
    fn the_order_follows_scores_then_member_bytes_through_rewrites() {
        let mut z = SortedMembers::default();
        add(&mut z, 1, "b", "2");
        add(&mut z, 2, "a", "2");
        add(&mut z, 3, "c", "-inf");
        add(&mut z, 4, "b", "0.5");
        let order: Vec<(f64, &[u8])> = z.ordered().collect();
        assert_eq!(order, vec![(f64::NEG_INFINITY, &b"c"[..]), (0.5, b"b"), (2.0, b"a")]);
        assert_eq!(z.rank(b"a"), Some(2));
        assert_eq!(z.score_ranks((0.5, true), (f64::INFINITY, false)), 2..3);
        assert_eq!(z.score_ranks((f64::NEG_INFINITY, false), (2.0, false)), 0..3);
        assert_eq!(z.score_ranks((f64::NEG_INFINITY, true), (2.0, true)), 1..2);
        assert_eq!(z.score_ranks((2.0, true), (0.5, false)), 3..3, "an empty range starts where it would");
        assert_eq!(z.by_rank(1..3).rev().map(|(_, m)| m).collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
        let bytes = rmp_serde::to_vec(&z).unwrap();
        let back: SortedMembers = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.ordered().collect::<Vec<_>>(), order);
    }
}
