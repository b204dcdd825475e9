//! Per-origin counter contributions (the INCR family).
//!
//! Each origin's increments to a key form *runs*. A run starts with the first increment an
//! origin makes while it holds no uncleared increments of its own for that key, and is named by
//! that increment's stamp time (its epoch). Within a run the origin numbers its increments by a
//! running total, and every replica applies them in the origin's order, so "run `e` of origin
//! `o` up to total `x`" means the same increments everywhere. That is what lets a replica drop a
//! run as soon as everything it holds of it is cleared, and rebuild it exactly if a later
//! increment of the same run arrives: nothing a later op could need is kept.

use crate::causal::Frontier;
use crate::node::{NodeId, Stamp};
use crate::number::Number;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// What a clearing writer (SET, DEL, ...) had seen of one run of increments: its running total
/// up to the increment stamped `time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterMark {
    /// The incrementing node.
    pub origin: NodeId,
    /// Stamp time of the run's first increment.
    pub epoch: u64,
    /// Stamp time of the last increment of the run the writer had seen.
    pub time: u64,
    /// Running total of the run up to and including that increment.
    pub total: Number,
}

/// One increment as it travels: which run, how much, and the run's total after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Increment {
    /// Epoch of the run this increment continues; `None` starts a new run at the op's stamp.
    pub epoch: Option<u64>,
    /// The increment.
    pub delta: Number,
    /// Running total of the run after this increment.
    pub total: Number,
}

/// One run of one origin's increments, and how much of it has been cleared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    origin: NodeId,
    epoch: u64,
    /// Stamp time of the latest increment applied (0: none yet, only a clear waiting for them).
    latest: u64,
    total: Number,
    /// Increments up to this stamp time are cleared (by a clear, or because they were cleared
    /// and collected before the run was rebuilt here).
    cleared_time: u64,
    cleared: Number,
    /// The key expired after this run began: the whole run belongs to the expired generation.
    dead: bool,
    /// The op that last cleared or killed the run: collecting the run must wait until every
    /// node has applied it, not only the increments it names.
    settled_by: Option<Stamp>,
}

impl Run {
    /// Increments applied and not cleared.
    fn pending(&self) -> Number {
        if self.dead || self.latest <= self.cleared_time {
            Number::ZERO
        } else {
            self.total.checked_sub(self.cleared).unwrap_or(Number::ZERO)
        }
    }

    /// Holds uncleared increments.
    fn is_live(&self) -> bool {
        !self.dead && self.latest > self.cleared_time
    }

    /// Contributes nothing and waits for no increment still on its way.
    fn is_settled(&self) -> bool {
        self.dead || self.latest == self.cleared_time
    }

    /// True if `frontier` has applied everything this run knows of: its increments, the
    /// increments its clear names, and the op that cleared or killed it.
    fn is_known_to(&self, frontier: &impl Frontier) -> bool {
        frontier.covers(Stamp::new(self.latest.max(self.cleared_time), self.origin)) && self.settled_by.is_none_or(|by| frontier.covers(by))
    }

    /// Joins what another replica knows of the same run.
    fn merge(&mut self, other: &Run) {
        if other.latest > self.latest {
            self.latest = other.latest;
            self.total = other.total;
        }
        if other.cleared_time > self.cleared_time {
            self.cleared_time = other.cleared_time;
            self.cleared = other.cleared;
        }
        self.dead |= other.dead;
        self.settled_by = self.settled_by.max(other.settled_by);
    }
}

/// Increments of every origin to one key. Concurrent increments add up; a clearing write removes
/// exactly the increments its writer had seen, so increments it had not seen survive it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    runs: SmallVec<[Run; 1]>,
}

impl Counter {
    /// The increment `origin` would make now: continuing its live run, or starting one;
    /// `None` if the run's running total would leave the exact range (see `number.rs`).
    pub fn next_increment(&self, origin: NodeId, delta: Number) -> Option<Increment> {
        match self.runs.iter().find(|r| r.origin == origin && r.is_live()) {
            Some(run) => Some(Increment { epoch: Some(run.epoch), delta, total: run.total.checked_add(delta)? }),
            None => Some(Increment { epoch: None, delta, total: delta }),
        }
    }

    /// The epoch of the run an increment stamped `stamp` belongs to.
    pub fn epoch_of(stamp: Stamp, inc: &Increment) -> u64 {
        inc.epoch.unwrap_or(stamp.time)
    }

    /// Applies an increment stamped `stamp`. Applying one already applied (or older than the
    /// run's latest) changes nothing.
    pub fn add(&mut self, stamp: Stamp, inc: &Increment) {
        let epoch = Counter::epoch_of(stamp, inc);
        match self.runs.iter_mut().find(|r| r.origin == stamp.node && r.epoch == epoch) {
            Some(run) => {
                if stamp.time > run.latest {
                    run.latest = stamp.time;
                    run.total = inc.total;
                }
            }
            // A new run, or one dropped here once everything of it was cleared: what came
            // before this increment in the run (every earlier stamp of the origin) was cleared,
            // so it counts from here.
            None => self.runs.push(Run {
                origin: stamp.node,
                epoch,
                latest: stamp.time,
                total: inc.total,
                cleared_time: stamp.time - 1,
                cleared: inc.total.checked_sub(inc.delta).unwrap_or(Number::ZERO),
                dead: false,
                settled_by: None,
            }),
        }
    }

    /// The sum of uncleared increments, added in (origin, epoch) order so every replica computes
    /// it identically.
    pub fn pending(&self) -> Number {
        let mut runs: SmallVec<[&Run; 4]> = self.runs.iter().collect();
        runs.sort_by_key(|r| (r.origin, r.epoch));
        runs.iter().fold(Number::ZERO, |sum, r| sum.checked_add(r.pending()).unwrap_or(sum))
    }

    /// True if some increments are not cleared.
    pub fn is_live(&self) -> bool {
        self.runs.iter().any(Run::is_live)
    }

    /// Per run still counting, the stamp of its newest increment.
    pub fn live_stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.runs.iter().filter(|r| r.is_live()).map(|r| Stamp::new(r.latest, r.origin))
    }

    /// True if the increment stamped `stamp` is applied here and still counts (no clear or
    /// expiry has removed it).
    pub fn counts(&self, stamp: Stamp, inc: &Increment) -> bool {
        let epoch = Counter::epoch_of(stamp, inc);
        self.runs.iter().any(|r| r.origin == stamp.node && r.epoch == epoch && !r.dead && r.cleared_time < stamp.time && stamp.time <= r.latest)
    }

    /// True if nothing is held: no increments, no clears waiting for increments.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// What a writer clearing this counter has seen.
    pub fn marks(&self) -> SmallVec<[CounterMark; 1]> {
        self.runs.iter().filter(|r| r.latest > 0).map(|r| CounterMark { origin: r.origin, epoch: r.epoch, time: r.latest, total: r.total }).collect()
    }

    /// Removes the increments the marks name; `by` is the clearing op. `frontier` is what
    /// this node has applied: a mark for a run this node no longer holds, whose increments
    /// have all arrived, names a run already cleared and collected.
    pub fn clear(&mut self, marks: &[CounterMark], by: Stamp, frontier: &impl Frontier) {
        for mark in marks {
            let run = self.runs.iter_mut().find(|r| r.origin == mark.origin && r.epoch == mark.epoch);
            match run {
                Some(run) if mark.time > run.cleared_time => {
                    run.cleared_time = mark.time;
                    run.cleared = mark.total;
                    run.settled_by = run.settled_by.max(Some(by));
                }
                Some(_) => {}
                None if frontier.covers(Stamp::new(mark.time, mark.origin)) => {}
                // The increments named are still on their way; they arrive cleared.
                None => self.runs.push(Run {
                    origin: mark.origin,
                    epoch: mark.epoch,
                    latest: 0,
                    total: Number::ZERO,
                    cleared_time: mark.time,
                    cleared: mark.total,
                    dead: false,
                    settled_by: Some(by),
                }),
            }
        }
    }

    /// Kills every run that began before `time`: the key expired at `time`, and those runs
    /// belong to the generation that expired, including any increments still on their way.
    /// `by` is the expiring op.
    pub fn kill_before(&mut self, time: u64, by: Stamp) {
        for run in self.runs.iter_mut().filter(|r| r.epoch < time) {
            run.dead = true;
            run.settled_by = run.settled_by.max(Some(by));
        }
    }

    /// Drops the runs that contribute nothing, once `stable` says every node has applied
    /// everything they know of.
    pub fn collect(&mut self, stable: &impl Frontier) {
        self.runs.retain(|r| !(r.is_settled() && r.is_known_to(stable)));
    }

    /// Joins `other` into this counter. `mine` and `theirs` are what each side had applied: a
    /// run one side lacks although it had applied all of it was collected there, settled and
    /// stable, and is dropped.
    pub fn merge(&mut self, other: &Counter, mine: &impl Frontier, theirs: &impl Frontier) {
        self.runs.retain(|r| other.runs.iter().any(|o| o.origin == r.origin && o.epoch == r.epoch) || !r.is_known_to(theirs));
        for theirs_run in &other.runs {
            match self.runs.iter_mut().find(|r| r.origin == theirs_run.origin && r.epoch == theirs_run.epoch) {
                Some(run) => run.merge(theirs_run),
                None if theirs_run.is_known_to(mine) => {}
                None => self.runs.push(theirs_run.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::VersionVector;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn n(i: i64) -> Number {
        Number::from_i64(i)
    }

    /// A replica's counter and what it has applied.
    #[derive(Default, Clone)]
    struct Replica {
        counter: Counter,
        vv: VersionVector,
        seqs: std::collections::HashMap<NodeId, u64>,
    }

    /// The node whose writes clear counters in these tests.
    const CLEARER: NodeId = NodeId(3);

    impl Replica {
        fn incr(&mut self, origin: NodeId, time: u64, delta: i64) -> Increment {
            let inc = self.counter.next_increment(origin, n(delta)).unwrap();
            self.add(Stamp::new(time, origin), inc);
            inc
        }

        fn add(&mut self, stamp: Stamp, inc: Increment) {
            self.counter.add(stamp, &inc);
            let seq = self.seqs.entry(stamp.node).or_default();
            *seq += 1;
            self.vv.record(stamp.node, *seq, stamp.time);
        }

        /// Applies a clearing op from [`CLEARER`], then collects as a lone replica would
        /// (alone, a replica is its own stability frontier).
        fn clear(&mut self, marks: &[CounterMark]) {
            let seq = self.seqs.entry(CLEARER).or_default();
            *seq += 1;
            let by = Stamp::new(1000 + *seq, CLEARER);
            self.counter.clear(marks, by, &self.vv);
            self.vv.record(CLEARER, *seq, by.time);
            self.counter.collect(&self.vv);
        }
    }

    #[test]
    fn concurrent_increments_add_up() {
        let mut r = Replica::default();
        r.incr(A, 1, 7);
        r.incr(B, 1, 3);
        assert_eq!(r.counter.pending(), n(10));
    }

    #[test]
    fn a_clear_keeps_increments_it_had_not_seen() {
        let mut writer = Replica::default();
        let first = writer.incr(A, 1, 5);
        let marks = writer.counter.marks();

        let mut replica = Replica::default();
        replica.add(Stamp::new(1, A), first);
        let second = replica.counter.next_increment(A, n(2)).unwrap();
        replica.add(Stamp::new(2, A), second);
        replica.incr(B, 3, 4);
        replica.clear(&marks);
        assert_eq!(replica.counter.pending(), n(6));
    }

    #[test]
    fn a_clear_that_arrives_before_the_increments_it_names_still_removes_them() {
        let mut writer = Replica::default();
        let inc = writer.incr(A, 1, 5);
        let marks = writer.counter.marks();

        let mut replica = Replica::default();
        replica.clear(&marks);
        assert!(!replica.counter.is_empty(), "the clear waits for its increment");
        replica.add(Stamp::new(1, A), inc);
        assert_eq!(replica.counter.pending(), Number::ZERO);
        replica.clear(&[]);
        assert!(replica.counter.is_empty());
    }

    #[test]
    fn settled_runs_wait_for_stability() {
        let mut r = Replica::default();
        r.incr(A, 1, 5);
        let marks = r.counter.marks();
        r.counter.clear(&marks, Stamp::new(2, B), &r.vv);
        assert!(!r.counter.is_empty(), "not collected before stability");
        r.counter.collect(&VersionVector::new());
        assert!(!r.counter.is_empty(), "nothing is stable yet");
        r.counter.collect(&r.vv);
        assert!(!r.counter.is_empty(), "the clear itself is not stable yet");
        r.vv.record(B, 1, 2);
        r.counter.collect(&r.vv);
        assert!(r.counter.is_empty());
    }

    #[test]
    fn expiry_kills_runs_that_began_before_it() {
        let mut r = Replica::default();
        r.incr(A, 1, 5);
        r.incr(B, 10, 7);
        r.counter.kill_before(5, Stamp::new(11, B));
        assert_eq!(r.counter.pending(), n(7));
        let late = Increment { epoch: Some(1), delta: n(1), total: n(6) };
        r.add(Stamp::new(20, A), late);
        assert_eq!(r.counter.pending(), n(7), "a late increment of a dead run stays dead");
    }

    #[test]
    fn a_late_clear_of_a_dropped_run_changes_nothing() {
        let mut r = Replica::default();
        r.incr(A, 1, 5);
        let marks = r.counter.marks();
        r.clear(&marks);
        assert!(r.counter.is_empty());
        r.clear(&marks);
        assert!(r.counter.is_empty() && !r.counter.is_live());
    }

    #[test]
    fn a_run_dropped_here_is_rebuilt_by_its_next_increment() {
        // The origin makes +5, a writer clears it, the origin adds +2 in the same run (it had
        // not seen the clear). A replica that saw +5, the clear, and dropped the run counts 2.
        let mut origin = Replica::default();
        let first = origin.incr(A, 1, 5);
        let marks = origin.counter.marks();
        let second = origin.incr(A, 2, 2);
        assert_eq!(second.epoch, Some(1));

        let mut replica = Replica::default();
        replica.add(Stamp::new(1, A), first);
        replica.clear(&marks);
        assert!(replica.counter.is_empty());
        replica.add(Stamp::new(2, A), second);
        assert_eq!(replica.counter.pending(), n(2));

        origin.clear(&marks);
        assert_eq!(origin.counter.pending(), n(2));
    }
}
