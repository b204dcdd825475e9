//! WATCH: which clients must see their transaction aborted when a key changes.

use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set when any key a client WATCHes changes; EXEC then aborts. Shared between the client and
/// the shards holding its watched keys.
#[derive(Debug, Default)]
pub struct WatchFlag(AtomicBool);

impl WatchFlag {
    /// True if a watched key changed.
    pub fn is_dirty(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the transaction as doomed.
    pub fn set_dirty(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The watchers of one shard's keys.
#[derive(Default)]
pub struct Watchers {
    keys: HashMap<Box<[u8]>, SmallVec<[Arc<WatchFlag>; 1]>>,
}

impl Watchers {
    /// A key changed: every client watching it is marked dirty and stops watching it here.
    pub fn touch(&mut self, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(flags) = self.keys.remove(key) {
            flags.iter().for_each(|f| f.set_dirty());
        }
    }

    /// Starts watching `key` with `flag`.
    pub fn add(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let flags = self.keys.entry(key.into()).or_default();
        if !flags.iter().any(|f| Arc::ptr_eq(f, flag)) {
            flags.push(flag.clone());
        }
    }

    /// Stops watching `key` with `flag`.
    pub fn remove(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        if let Some(flags) = self.keys.get_mut(key) {
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            if flags.is_empty() {
                self.keys.remove(key);
            }
        }
    }
}
