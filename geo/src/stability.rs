//! The causal-stability frontier: what every live member has applied, as this node knows it.

use meridian_crdt::{NodeId, VersionVector};
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

    /// The stability frontier as a vector (per origin, what is stable), or `None` if nothing
    /// new is stable now (this node lacks something a member had). Stability only grows, so
    /// callers keep the join of what this returns over time, and hand that to
    /// `KeyState::collect`.
    pub fn stable_vector(&self, own: &VersionVector) -> Option<VersionVector> {
        let mut stable = own.clone();
        for member in &self.members {
            let view = self.views.get(member)?;
            if !own.dominates(view) {
                return None;
            }
            stable = stable.meet(view);
        }
        Some(stable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::{Frontier, Stamp};

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn stable_once_every_member_applied_it_and_we_have_what_they_had() {
        let mut own = VersionVector::new();
        own.record(A, 1, 10);
        let mut tracker = Stability::new(vec![B]);
        assert!(tracker.stable_vector(&own).is_none(), "B not heard from");
        let mut b_view = VersionVector::new();
        b_view.record(A, 1, 10);
        b_view.record(B, 1, 20);
        tracker.observe(B, &b_view);
        assert!(tracker.stable_vector(&own).is_none(), "B had made op 1 we lack");
        own.record(B, 1, 20);
        let stable = tracker.stable_vector(&own).unwrap();
        assert!(stable.covers(Stamp::new(10, A)) && stable.covers(Stamp::new(20, B)));
        own.record(A, 2, 30);
        let stable = tracker.stable_vector(&own).unwrap();
        assert!(!stable.covers(Stamp::new(30, A)), "B has not applied A's op 2");
        tracker.set_members(vec![]);
        assert!(tracker.stable_vector(&own).unwrap().covers(Stamp::new(30, A)));
    }
}
