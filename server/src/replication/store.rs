//! What a replication session reads and changes on this node: the op log (as an
//! [`OpSource`]) and the keyspace plus journal (as a [`Store`]).

use crate::clock::now_us;
use crate::node::Applied;
use crate::shared::Shared;
use bytes::Bytes;
use meridian_crdt::{KeyState, Op, VersionVector};
use meridian_geo::Store;
use std::collections::HashSet;
use std::sync::Arc;

/// Members above which a transferred key this node lacks is merged outside its shard's lock.
const BIG_MERGE: usize = 4096;

/// The node, as a receiving session sees it. It owns what it holds, so a session can hand it
/// to a blocking thread for the heavy parts of a state transfer.
pub struct NodeStore {
    shared: Arc<Shared>,
    /// Keys received in the state transfer in progress.
    transferred: HashSet<Box<[u8]>>,
    /// Holds checkpoints off while a state transfer merges keys the durable log does not see.
    transfer: Option<crate::durable::TransferGuard>,
    /// Set when an op could not be applied in order (another session is ahead of this one).
    pub gap: bool,
}

impl NodeStore {
    /// The store of `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        NodeStore { shared, transferred: HashSet::new(), transfer: None, gap: false }
    }
}

impl NodeStore {
    /// From the first change a state transfer makes until it completes, checkpoints wait.
    fn hold_checkpoints(&mut self) {
        if self.transfer.is_none() {
            self.transfer = self.shared.node.durable().map(|d| d.begin_transfer());
        }
    }
}

impl Store for NodeStore {
    fn applied(&self) -> VersionVector {
        self.shared.node.applied()
    }

    fn apply(&mut self, op: Op, tail: &[u8]) {
        let shared = &*self.shared;
        let mut db = shared.keyspace.lock_keys(std::iter::once(&op.key[..]));
        match shared.node.accept_remote(&op, tail) {
            crate::node::Accepted::Fresh => {
                let conflict = db.apply(&op.key, op.stamp(), &op.body, &Applied(&shared.node), &shared.write_stability());
                drop(db);
                if let Some(conflict) = conflict {
                    let max_len = shared.config.read().conflict_log_max_len as usize;
                    shared.conflicts.record(&op.key, conflict, now_us() / 1000, max_len);
                }
            }
            crate::node::Accepted::Duplicate => {}
            crate::node::Accepted::Gap => self.gap = true,
        }
    }

    fn merge(&mut self, key: Bytes, state: KeyState, theirs: &VersionVector) {
        self.hold_checkpoints();
        let (shared, lock) = (&*self.shared, || self.shared.keyspace.lock_keys(std::iter::once(&key[..])));
        let mine = Applied(&shared.node);
        // A big key this node lacks (a list of a million elements) is merged into the empty
        // state outside the shard's lock, which the event loop may want meanwhile (a client
        // reading a key of the shard, active expiry); it goes in if nothing was applied here
        // in between, so the merge saw the frontier it would have seen under the lock.
        if state.members() > BIG_MERGE && lock().is_absent(&key) {
            let before = shared.node.applied();
            let mut merged = KeyState::default();
            merged.merge(&state, &mine, theirs);
            let mut db = lock();
            if db.is_absent(&key) && shared.node.applied() == before {
                db.put_absent(&key, merged);
                self.transferred.insert(key.to_vec().into_boxed_slice());
                return;
            }
        }
        lock().merge(&key, &state, &mine, theirs);
        self.transferred.insert(key.to_vec().into_boxed_slice());
    }

    fn snapshot_complete(&mut self, theirs: &VersionVector) {
        self.hold_checkpoints();
        let transferred = std::mem::take(&mut self.transferred);
        let mut db = self.shared.keyspace.unlocked();
        for index in 0..crate::keyspace::SHARDS {
            db.merge_absent(index, |key| transferred.contains(key), &Applied(&self.shared.node), theirs);
        }
        drop(db);
        self.shared.node.join_applied(theirs);
        if let Some(durable) = self.shared.node.durable() {
            self.transfer = None;
            durable.request_checkpoint();
        }
        self.shared.log_grew();
    }
}
