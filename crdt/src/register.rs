//! Multi-value register read as last-writer-wins.

use crate::causal::{Context, Frontier};
use crate::node::Stamp;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The concurrent versions of one value, each tagged with the stamp of the write that made it.
///
/// A write removes the versions its writer had seen and adds its own, so after causally ordered
/// writes one version is left; concurrent writes leave one version each until a later write sees
/// them all. Reads see the version with the largest stamp (HLC time, then node id), which is the
/// same on every replica. Keeping the losers (instead of only the winner) is what lets a delete
/// that had seen only the winner leave a concurrent loser standing, as observed-remove requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register<V> {
    versions: SmallVec<[(Stamp, V); 1]>,
}

impl<V> Default for Register<V> {
    fn default() -> Self {
        Register { versions: SmallVec::new() }
    }
}

impl<V> Register<V> {
    /// The version that reads see: the one with the largest stamp.
    pub fn winner(&self) -> Option<(Stamp, &V)> {
        self.versions.iter().max_by_key(|(stamp, _)| *stamp).map(|(s, v)| (*s, v))
    }

    /// What a writer replacing this register has seen: the stamps of all versions.
    pub fn context(&self) -> Context {
        self.versions.iter().map(|(stamp, _)| *stamp).collect()
    }

    /// Removes the versions `seen` covers. Returns the part of `seen` that names stamps not yet
    /// applied here (`frontier`), which the caller must remember so they cannot arrive later.
    pub fn remove(&mut self, seen: &Context, frontier: &impl Frontier) -> Context {
        self.versions.retain(|(stamp, _)| !seen.covers(*stamp));
        seen.iter().filter(|stamp| !frontier.covers(*stamp)).collect()
    }

    /// Adds the version written at `stamp`; a stamp already held is not added twice (an op
    /// can arrive both inside a state transfer and on the op stream).
    pub fn insert(&mut self, stamp: Stamp, value: V) {
        if !self.versions.iter().any(|(s, _)| *s == stamp) {
            self.versions.push((stamp, value));
        }
    }

    /// Removes every version stamped before `time` (expiry of the generation they belong to).
    pub fn remove_before(&mut self, time: u64) {
        self.versions.retain(|(stamp, _)| stamp.time >= time);
    }

    /// Joins `other` into this register. `mine` and `theirs` are what each side had applied:
    /// a version one side lacks although it had applied its write was removed there, and
    /// stays removed; a version one side never saw is kept.
    pub fn merge(&mut self, other: &Register<V>, mine: &impl Frontier, theirs: &impl Frontier)
    where
        V: Clone,
    {
        self.versions.retain(|(stamp, _)| other.has(*stamp) || !theirs.covers(*stamp));
        for (stamp, value) in &other.versions {
            if !self.has(*stamp) && !mine.covers(*stamp) {
                self.versions.push((*stamp, value.clone()));
            }
        }
    }

    fn has(&self, stamp: Stamp) -> bool {
        self.versions.iter().any(|(s, _)| *s == stamp)
    }

    /// The stamp of the newest version written before HLC time `time`.
    pub fn newest_before(&self, time: u64) -> Option<Stamp> {
        self.versions.iter().map(|(stamp, _)| *stamp).filter(|stamp| stamp.time < time).max()
    }

    /// True if no version is left.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// All versions, in no particular order.
    pub fn versions(&self) -> impl Iterator<Item = (Stamp, &V)> {
        self.versions.iter().map(|(s, v)| (*s, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::VersionVector;
    use crate::node::NodeId;

    fn applied_everything() -> impl Frontier {
        struct All;
        impl Frontier for All {
            fn covers(&self, _: Stamp) -> bool {
                true
            }
        }
        All
    }

    #[test]
    fn concurrent_versions_resolve_to_the_largest_stamp() {
        let mut reg = Register::default();
        reg.insert(Stamp::new(10, NodeId(2)), "b");
        reg.insert(Stamp::new(10, NodeId(1)), "a");
        assert_eq!(reg.winner().map(|(_, v)| *v), Some("b"));
        assert_eq!(reg.versions().count(), 2);
    }

    #[test]
    fn remove_keeps_what_the_writer_had_not_seen() {
        let mut reg = Register::default();
        let seen_a = Stamp::new(5, NodeId(1));
        reg.insert(seen_a, "a");
        reg.insert(Stamp::new(4, NodeId(2)), "b");
        let seen: Context = [seen_a].into_iter().collect();
        let pending = reg.remove(&seen, &applied_everything());
        assert!(pending.is_empty());
        assert_eq!(reg.winner().map(|(_, v)| *v), Some("b"));
    }

    #[test]
    fn merge_keeps_unseen_versions_and_drops_removed_ones() {
        let (a, b, c) = (Stamp::new(1, NodeId(1)), Stamp::new(2, NodeId(2)), Stamp::new(3, NodeId(3)));
        // Mine: a and c. Theirs: b only, having applied a (and removed it) but never seen c.
        let mut mine = Register::default();
        mine.insert(a, "a");
        mine.insert(c, "c");
        let mut theirs = Register::default();
        theirs.insert(b, "b");
        let my_vv: Context = [a, c].into_iter().collect();
        let their_vv: Context = [a, b].into_iter().collect();
        let mut left = mine.clone();
        left.merge(&theirs, &ContextFrontier(&my_vv), &ContextFrontier(&their_vv));
        let mut right = theirs.clone();
        right.merge(&mine, &ContextFrontier(&their_vv), &ContextFrontier(&my_vv));
        let stamps = |r: &Register<&str>| {
            let mut v: Vec<Stamp> = r.versions().map(|(s, _)| s).collect();
            v.sort();
            v
        };
        assert_eq!(stamps(&left), vec![b, c]);
        assert_eq!(stamps(&right), vec![b, c]);
    }

    struct ContextFrontier<'a>(&'a Context);
    impl Frontier for ContextFrontier<'_> {
        fn covers(&self, stamp: Stamp) -> bool {
            self.0.covers(stamp)
        }
    }

    #[test]
    fn remove_reports_stamps_not_applied_yet() {
        let mut reg: Register<&str> = Register::default();
        let seen: Context = [Stamp::new(9, NodeId(3))].into_iter().collect();
        let pending = reg.remove(&seen, &VersionVector::new());
        assert!(pending.covers(Stamp::new(9, NodeId(3))));
    }
}
