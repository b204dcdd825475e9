//! The in-memory keyspace: 1024 independently locked shards of key states.
//!
//! Commands lock the shards of the keys they name, in shard order, so multi-key commands never
//! deadlock and both cores serve clients at once. Every change to a key goes through
//! [`Shard::apply`], the single mutation path shared by local writes and (later) replicated ops;
//! it also keeps the per-shard counts DBSIZE and INFO read, and tells WATCHing clients.

mod scan;

pub use scan::{scan_shard, ScanCursor};

use crate::watch::Watchers;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use meridian_crdt::{Body, Conflict, Frontier, KeyState, ListEdit, Liveness, NodeId, Stamp, VersionVector};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// Number of shards (a power of two).
pub const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_BITS: u32 = 10;

/// One key and its replicated state.
pub struct Entry {
    /// The key.
    pub key: Box<[u8]>,
    /// Its state.
    pub state: KeyState,
}

impl Entry {
    /// (has a value, has a TTL): what the shard counts.
    fn shape(&self) -> (bool, bool) {
        (self.state.is_live(), self.state.expires_at().is_some())
    }

    /// True if a reader sees the key at Unix millisecond `now`.
    pub fn is_visible(&self, now: u64) -> bool {
        self.state.is_live() && !self.is_expired(now)
    }

    /// True if the key has a TTL that has passed at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.state.expires_at().is_some_and(|at| at <= now)
    }
}

/// Counts kept per shard for DBSIZE and INFO.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardCounts {
    /// Keys with a value (including expired ones not yet removed, as Redis counts them).
    pub live: usize,
    /// Of those, keys with a TTL.
    pub volatile: usize,
    /// Keys removed because their TTL passed.
    pub expired: u64,
}

impl ShardCounts {
    /// Moves an entry's contribution from shape `before` to `after` (see [`Entry::shape`]).
    fn shift(&mut self, before: (bool, bool), after: (bool, bool)) {
        self.live = self.live + after.0 as usize - before.0 as usize;
        self.volatile = self.volatile + (after.0 && after.1) as usize - (before.0 && before.1) as usize;
    }
}

/// One shard: a hash table of entries plus its counters and watchers.
///
/// The table holds pointers to entries, not entries: a pointer-sized slot keeps the table's
/// empty slots cheap at any load factor (hashbrown runs between 44% and 87% full), which is
/// how Redis's dict keeps its per-key overhead low too. Measured in docs/benchmarks.md.
#[derive(Default)]
pub struct Shard {
    table: HashTable<Box<Entry>>,
    counts: ShardCounts,
    /// Clients WATCHing keys of this shard.
    pub watchers: Watchers,
}

/// Hashes keys for shard choice, table placement and SCAN parts. Seeded per node, at random:
/// a node with a flash tier keeps its seed there, so a key's shard is the same after a
/// restart (checkpoints are written and replayed per shard).
#[derive(Clone)]
pub struct KeyHasher(foldhash::fast::FixedState);

impl KeyHasher {
    /// The hasher with `seed`.
    pub fn with_seed(seed: u64) -> KeyHasher {
        KeyHasher(foldhash::fast::FixedState::with_seed(seed))
    }

    /// The hash of a key.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }
}

/// Which shard a key hash belongs to. The table inside a shard uses the hash's low and top
/// bits; the shard index is taken from a multiplicative remix so the two stay independent.
pub fn shard_of(hash: u64) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

impl Shard {
    /// The entry for `key` if a reader sees it at `now`. An expired key reads as absent; it is
    /// removed by an `Expired` op (the active cycle, or the next write to it), not here.
    pub fn get(&mut self, hash: u64, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.table.find_mut(hash, |e| &*e.key == key).filter(|e| e.is_visible(now)).map(|e| &mut **e)
    }

    /// The entry for `key`, visible or not (hidden entries hold removals waiting for late ops).
    pub fn raw(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.table.find(hash, |e| &*e.key == key).map(|e| &**e)
    }

    /// Applies one op's effect to `key`: the only way an op changes key state. `frontier` is
    /// what node `local` had applied before the op; `stable` what may be collected at once.
    /// Returns the conflict the op met, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn apply<B: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        hash: u64,
        key: &[u8],
        stamp: Stamp,
        body: &Body<B>,
        frontier: &impl Frontier,
        stable: &impl Frontier,
    ) -> Option<Conflict> {
        let mut conflict = None;
        self.update(&ks.hasher, hash, key, |state| {
            conflict = state.apply(stamp, body, frontier, ks.local);
            state.collect_after(body, stable)
        });
        if let Body::List { edits } = body {
            let waiting = ks.blocked_pops.load(std::sync::atomic::Ordering::Acquire) > 0;
            if waiting && edits.iter().any(|e| matches!(e, ListEdit::Insert { .. })) {
                ks.list_pushed.notify_waiters();
            }
        }
        conflict
    }

    /// Merges another node's state of `key` (a full state transfer): `mine` and `theirs` are
    /// what each node had applied.
    pub fn merge(&mut self, hasher: &KeyHasher, hash: u64, key: &[u8], theirs_state: &KeyState, mine: &impl Frontier, theirs: &VersionVector) {
        self.update(hasher, hash, key, |state| state.merge(theirs_state, mine, theirs));
    }

    /// Changes `key`'s state with `change` (creating the entry if needed), keeping the counts
    /// and dropping the entry if nothing is left; WATCHers are told.
    fn update(&mut self, hasher: &KeyHasher, hash: u64, key: &[u8], change: impl FnOnce(&mut KeyState) -> Liveness) {
        let slot = self.table.entry(hash, |e| &*e.key == key, |e| hasher.hash(&e.key));
        let mut occupied = match slot {
            TableEntry::Occupied(o) => o,
            TableEntry::Vacant(v) => v.insert(Box::new(Entry { key: key.into(), state: KeyState::default() })),
        };
        let entry = occupied.get_mut();
        let before = entry.shape();
        let liveness = change(&mut entry.state);
        self.counts.shift(before, entry.shape());
        if liveness == Liveness::Gone {
            occupied.remove();
        }
        self.watchers.touch(key);
    }

    /// Puts a key's state as a checkpoint stored it (recovery at start; the shard holds no
    /// entry for the key yet).
    pub fn restore(&mut self, hasher: &KeyHasher, hash: u64, key: &[u8], restored: KeyState) {
        self.update(hasher, hash, key, |state| {
            *state = restored;
            state.liveness()
        });
    }

    /// Garbage-collects every entry at the stability frontier `stable` (the sweep that runs
    /// when peers exist). Returns how many entries it dropped.
    pub fn collect(&mut self, stable: &impl Frontier) -> usize {
        let Shard { table, counts, .. } = self;
        let mut dropped = 0;
        table.retain(|entry| {
            let before = entry.shape();
            let gone = entry.state.collect(stable) == Liveness::Gone;
            counts.shift(before, if gone { (false, false) } else { entry.shape() });
            dropped += gone as usize;
            !gone
        });
        dropped
    }

    /// Merges the empty state into every entry `transferred` rejects: the keys a state
    /// transfer did not carry, which its sender had removed and collected.
    pub fn merge_absent(&mut self, transferred: impl Fn(&[u8]) -> bool, mine: &impl Frontier, theirs: &VersionVector) {
        let Shard { table, counts, watchers } = self;
        let empty = KeyState::default();
        table.retain(|entry| {
            if transferred(&entry.key) {
                return true;
            }
            let before = entry.shape();
            let gone = entry.state.merge(&empty, mine, theirs) == Liveness::Gone;
            counts.shift(before, if gone { (false, false) } else { entry.shape() });
            watchers.touch(&entry.key);
            !gone
        });
    }

    /// The keys whose TTL has passed at `now`, with their expiry time (active expiry turns each
    /// into an `Expired` op).
    pub fn expired(&self, now: u64) -> Vec<(Box<[u8]>, u64)> {
        if self.counts.volatile == 0 {
            return Vec::new();
        }
        let due = self.table.iter().filter(|e| e.state.is_live() && e.is_expired(now));
        due.filter_map(|e| Some((e.key.clone(), e.state.expires_at()?))).collect()
    }

    /// Counts a key this node expired.
    pub fn count_expired(&mut self) {
        self.counts.expired += 1;
    }

    /// The shard's counters.
    pub fn counts(&self) -> ShardCounts {
        self.counts
    }

    /// All entries, visible or not.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter().map(|e| &**e)
    }

    /// Number of entries, visible or not.
    pub fn len(&self) -> usize {
        self.table.len()
    }
}

/// The sharded keyspace.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    /// The node (origin) applying ops here: its own writes tell which increments a remote
    /// one cannot have seen (see [`KeyState::apply`]).
    local: NodeId,
    /// Told whenever an op (local or replicated) pushes onto a list while a pop is blocked:
    /// what blocked pops (BLPOP and friends) wait for.
    pub list_pushed: tokio::sync::Notify,
    /// Connections blocked in a pop; pushes tell [`Keyspace::list_pushed`] only if any are.
    pub blocked_pops: std::sync::atomic::AtomicUsize,
}

/// Shards locked for one command (or one transaction).
pub struct Locked<'a> {
    ks: &'a Keyspace,
    guards: Guards<'a>,
}

enum Guards<'a> {
    /// Whole-keyspace commands: one shard at a time, the last one used held until the next.
    Free(Option<(usize, MutexGuard<'a, Shard>)>),
    /// The shards of the command's keys, sorted by index.
    Some(SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>),
    /// Every shard (MULTI/EXEC).
    All(Vec<MutexGuard<'a, Shard>>),
}

impl Keyspace {
    /// An empty keyspace of node `local`, hashing keys with `hash_seed`.
    pub fn new(local: NodeId, hash_seed: u64) -> Keyspace {
        Keyspace { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), hasher: KeyHasher::with_seed(hash_seed), local, list_pushed: tokio::sync::Notify::new(), blocked_pops: Default::default() }
    }

    /// The hasher used for all keys.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Locks the shards of `keys`, in shard order.
    pub fn lock_keys<'a, 'k>(&'a self, keys: impl Iterator<Item = &'k [u8]>) -> Locked<'a> {
        let mut idx: SmallVec<[usize; 4]> = keys.map(|k| shard_of(self.hasher.hash(k))).collect();
        idx.sort_unstable();
        idx.dedup();
        let guards = idx.into_iter().map(|i| (i, self.shards[i].lock())).collect();
        Locked { ks: self, guards: Guards::Some(guards) }
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Locked<'_> {
        Locked { ks: self, guards: Guards::All(self.shards.iter().map(|s| s.lock()).collect()) }
    }

    /// Holds no lock yet; shards are locked one at a time, never two at once, as a
    /// whole-keyspace command visits them.
    pub fn unlocked(&self) -> Locked<'_> {
        Locked { ks: self, guards: Guards::Free(None) }
    }
}

/// A key located in a locked shard.
pub struct KeyAt<'s> {
    /// The shard holding the key.
    pub shard: &'s mut Shard,
    /// The key's hash.
    pub hash: u64,
}

impl<'a> Locked<'a> {
    /// The keyspace.
    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// True inside MULTI/EXEC (every shard held).
    pub fn in_transaction(&self) -> bool {
        matches!(self.guards, Guards::All(_))
    }

    /// The locked shard holding `key`. Keyed commands only touch the keys they declared, so
    /// the shard is always held; anything else is a bug in the command table.
    pub fn at(&mut self, key: &[u8]) -> KeyAt<'_> {
        let hash = self.ks.hasher.hash(key);
        let shard = self.shard(shard_of(hash));
        KeyAt { shard, hash }
    }

    fn shard(&mut self, index: usize) -> &mut Shard {
        let ks = self.ks;
        match &mut self.guards {
            Guards::Some(guards) => {
                let found = guards.iter_mut().find(|(i, _)| *i == index);
                &mut found.expect("command touched a key it did not declare").1
            }
            Guards::All(guards) => &mut guards[index],
            Guards::Free(held) => {
                if held.as_ref().is_none_or(|(i, _)| *i != index) {
                    // Release the previous shard before taking the next: never two at once.
                    *held = None;
                    *held = Some((index, ks.shards[index].lock()));
                }
                &mut held.as_mut().expect("just locked").1
            }
        }
    }

    /// The entry for `key` if visible at `now` (expired keys are removed on the way).
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let at = self.at(key);
        at.shard.get(at.hash, key, now)
    }

    /// Applies an op's effect to `key` (see [`Shard::apply`]). At `loglevel debug` every op
    /// applied is logged with the key's state after it, for tracing a divergence.
    pub fn apply<B: AsRef<[u8]> + std::fmt::Debug>(&mut self, key: &[u8], stamp: Stamp, body: &Body<B>, frontier: &impl Frontier, stable: &impl Frontier) -> Option<Conflict> {
        let ks = self.ks;
        let at = self.at(key);
        let conflict = at.shard.apply(ks, at.hash, key, stamp, body, frontier, stable);
        if tracing::enabled!(target: "meridian::apply", tracing::Level::DEBUG) {
            let state = at.shard.raw(at.hash, key).map(|e| format!("{:?}", e.state));
            tracing::debug!(target: "meridian::apply", key = %String::from_utf8_lossy(key), time = stamp.time, node = %stamp.node, ?body, ?state, "op applied");
        }
        conflict
    }

    /// The expiry time of `key` if its TTL has passed at `now` (it reads as absent).
    pub fn expired_at(&mut self, key: &[u8], now: u64) -> Option<u64> {
        let at = self.at(key);
        at.shard.raw(at.hash, key).filter(|e| e.state.is_live() && e.is_expired(now)).and_then(|e| e.state.expires_at())
    }

    /// Runs `f` on shard `index` (whole-keyspace commands and transactions).
    pub fn with_shard<R>(&mut self, index: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(self.shard(index))
    }

    /// Sum of all shards' counters.
    pub fn counts(&mut self) -> ShardCounts {
        (0..SHARDS).fold(ShardCounts::default(), |acc, i| {
            let c = self.with_shard(i, |s| s.counts());
            ShardCounts { live: acc.live + c.live, volatile: acc.volatile + c.volatile, expired: acc.expired + c.expired }
        })
    }
}
