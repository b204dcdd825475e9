//! The causal-stability frontier: what every live member has applied, as this node knows it.

use meridian_crdt::{Frontier, NodeId, Stamp, VersionVector};
use std::collections::BTreeMap;

/// Every node's vector as this node last heard it (directly in acks, or relayed in them).
///
/// A stamp is stable here when every live member has applied it *and* this node has applied
/// everything each member had applied when it said so — from any origin, including earlier
/// incarnations of restarted nodes whose ops members still relay. Then no op still to arrive
/// can be concurrent with it, and whatever it settled may be garbage-collected.
#[derive(Debug, Clone, Default)]
pub struct Stability {
    members: Vec<NodeId>,
    views: BTreeMap<NodeId, VersionVector>,
}

impl Stability {
    /// A tracker for the given live members (other than this node).
    pub fn new(members: Vec<NodeId>) -> Stability {
        Stability { members, views: BTreeMap::new() }
    }

    /// Replaces the live members: a peer silent longer than the configured bound stops pinning
    /// garbage, and must resynchronise from a live node when it returns.
    pub fn set_members(&mut self, members: Vec<NodeId>) {
        self.members = members;
    }

    /// The live members.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// Learns that `node` has applied at least `applied`.
    pub fn observe(&mut self, node: NodeId, applied: &VersionVector) {
        self.views.entry(node).or_default().join(applied);
    }

    /// Everything this node knows of others' vectors, to pass on in acks.
    pub fn known(&self) -> Vec<(NodeId, VersionVector)> {
        self.views.iter().map(|(n, v)| (*n, v.clone())).collect()
    }

    /// The frontier, given what this node itself has applied.
    pub fn frontier<'a>(&'a self, own: &'a VersionVector) -> StableFrontier<'a> {
        StableFrontier { tracker: self, own }
    }
}

/// The stability frontier at one moment; see [`Stability`].
pub struct StableFrontier<'a> {
    tracker: &'a Stability,
    own: &'a VersionVector,
}

impl Frontier for StableFrontier<'_> {
    fn covers(&self, stamp: Stamp) -> bool {
        self.own.covers(stamp)
            && self.tracker.members.iter().all(|member| match self.tracker.views.get(member) {
                Some(view) => view.covers(stamp) && self.own.dominates(view),
                None => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn stable_once_every_member_applied_it_and_we_have_what_they_had() {
        let mut own = VersionVector::new();
        own.record(A, 1, 10);
        let mut tracker = Stability::new(vec![B]);
        assert!(!tracker.frontier(&own).covers(Stamp::new(10, A)), "B not heard from");
        let mut b_view = VersionVector::new();
        b_view.record(A, 1, 10);
        b_view.record(B, 1, 20);
        tracker.observe(B, &b_view);
        assert!(!tracker.frontier(&own).covers(Stamp::new(10, A)), "B had made op 1 we lack");
        own.record(B, 1, 20);
        assert!(tracker.frontier(&own).covers(Stamp::new(10, A)));
        assert!(tracker.frontier(&own).covers(Stamp::new(20, B)));
        tracker.set_members(vec![]);
        assert!(tracker.frontier(&own).covers(Stamp::new(10, A)));
    }
}
