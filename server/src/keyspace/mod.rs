//! The in-memory keyspace: 1024 independently locked shards of key states.
//!
//! Commands lock the shards of the keys they name, in shard order, so multi-key commands never
//! deadlock and both cores serve clients at once. Every change to a key goes through
//! [`Shard::apply`], the single mutation path shared by local writes and (later) replicated ops;
//! it also keeps the per-shard counts DBSIZE and INFO read, and tells WATCHing clients.

mod admission;
mod cold;
mod lfu;
mod scan;

pub use cold::ColdTier;
use cold::{ColdEntry, Read, Settled};
pub use lfu::LfuSettings;
pub use scan::ScanCursor;

use crate::watch::Watchers;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use meridian_crdt::{Body, Conflict, Frontier, KeyState, ListEdit, Liveness, NodeId, ShortBytes, Stamp, VersionVector};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// Number of shards (a power of two).
pub const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_BITS: u32 = 10;

/// One key and its replicated state.
pub struct Entry {
    /// The key, inline when it is short (most are): no allocation of its own, and a lookup
    /// reads the entry and nothing else.
    pub key: ShortBytes,
    /// Its state.
    pub state: KeyState,
    /// When a command last read or wrote it: Unix milliseconds, truncated to 32 bits (compared
    /// by wrapping difference, so ages up to 49 days read right). Spilling and eviction take
    /// the least recently used first.
    pub touched: u32,
    /// How often it is used: Redis's LFU counter (see [`lfu`]). With `touched` it takes one
    /// 8-byte word: an entry is 96 bytes, exactly jemalloc's 96-byte class.
    pub freq: u8,
}

impl Entry {
    /// A key's entry, stamped as used at Unix ms `now`.
    fn new(key: &[u8], state: KeyState, now: u64) -> Entry {
        Entry { key: key.into(), state, touched: now as u32, freq: lfu::INITIAL }
    }

    /// Records a use at Unix ms `now`: the LRU stamp and the LFU count.
    fn use_at(&mut self, now: u64, lfu: &LfuSettings) {
        self.freq = lfu.used(self.freq, self.idle_ms(now));
        self.touched = now as u32;
    }

    /// Milliseconds since a command last used the entry, at Unix ms `now`.
    pub fn idle_ms(&self, now: u64) -> u32 {
        (now as u32).wrapping_sub(self.touched)
    }

    /// True if the entry may move to the flash tier: it has a value and no TTL.
    pub fn is_spillable(&self) -> bool {
        cold::may_be_cold(&self.state)
    }

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
    /// Keys with a value (including expired ones not yet removed, as Redis counts them), in
    /// RAM or in the flash tier.
    pub live: usize,
    /// Of those, keys in the flash tier.
    pub cold: usize,
    /// Of those, keys with a TTL.
    pub volatile: usize,
    /// Keys removed because their TTL passed.
    pub expired: u64,
}

impl ShardCounts {
    /// Keys with a value held in RAM.
    pub fn in_ram(&self) -> usize {
        self.live - self.cold
    }

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

/// How many of `n` keys make `share` of them, rounded up or down at random in proportion
/// (a shard of 4 keys gives up one a quarter of the times a 6% share is asked of it), so that
/// small shards lose what large ones do, on average.
pub fn share_of(n: usize, share: f64) -> usize {
    let exact = n as f64 * share.clamp(0.0, 1.0);
    let whole = exact.floor();
    (whole as usize + usize::from(rand::random::<f64>() < exact - whole)).min(n)
}

/// Which shard a key hash belongs to. The table inside a shard uses the hash's low and top
/// bits; the shard index is taken from a multiplicative remix so the two stay independent.
pub fn shard_of(hash: u64) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

impl Shard {
    /// The entry for `key` if a reader sees it at `now`. An expired key reads as absent; it is
    /// removed by an `Expired` op (the active cycle, or the next write to it), not here.
    pub fn get(&mut self, hash: u64, key: &[u8], now: u64, lfu: &LfuSettings) -> Option<&mut Entry> {
        let entry = self.table.find_mut(hash, |e| &*e.key == key).filter(|e| e.is_visible(now))?;
        entry.use_at(now, lfu);
        Some(&mut **entry)
    }

    /// The entry for `key`, visible or not (hidden entries hold removals waiting for late ops).
    pub fn raw(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.table.find(hash, |e| &*e.key == key).map(|e| &**e)
    }

    /// True if `key` may be in the flash tier: the shard has cold keys and RAM has not it.
    fn may_hold_cold(&self, hash: u64, key: &[u8]) -> bool {
        self.counts.cold > 0 && self.raw(hash, key).is_none()
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
        self.update(&ks.hasher, Some(&ks.lfu), hash, key, |state| {
            conflict = state.apply(stamp, body, frontier, ks.local);
            state.collect_after(body, stable)
        });
        if let Body::List { edits } = body {
            if ks.blocked_pops.any() && edits.iter().any(|e| matches!(e, ListEdit::Insert { .. })) {
                ks.list_pushed.notify_waiters();
            }
        }
        conflict
    }

    /// Merges another node's state of `key` (a full state transfer): `mine` and `theirs` are
    /// what each node had applied.
    fn merge(&mut self, hasher: &KeyHasher, hash: u64, key: &[u8], theirs_state: &KeyState, mine: &impl Frontier, theirs: &VersionVector) {
        self.update(hasher, None, hash, key, |state| state.merge(theirs_state, mine, theirs));
    }

    /// Changes `key`'s state with `change` (creating the entry if needed), keeping the counts
    /// and dropping the entry if nothing is left; WATCHers are told.
    fn update(&mut self, hasher: &KeyHasher, access: Option<&LfuSettings>, hash: u64, key: &[u8], change: impl FnOnce(&mut KeyState) -> Liveness) {
        let now = crate::clock::now_ms();
        let slot = self.table.entry(hash, |e| &*e.key == key, |e| hasher.hash(&e.key));
        let (mut occupied, created) = match slot {
            TableEntry::Occupied(o) => (o, false),
            TableEntry::Vacant(v) => (v.insert(Box::new(Entry::new(key, KeyState::default(), now))), true),
        };
        let entry = occupied.get_mut();
        // An op on a key that exists uses it; a new key starts at the initial count, as in
        // Redis; a merge or a recovery (`access` None) only stamps it.
        match access {
            Some(lfu) if !created => entry.use_at(now, lfu),
            _ => entry.touched = now as u32,
        }
        let before = entry.shape();
        let liveness = change(&mut entry.state);
        self.counts.shift(before, entry.shape());
        if liveness == Liveness::Gone {
            occupied.remove();
        }
        self.watchers.touch(key);
    }

    /// Replaces a key's state by one the flash tier stored (recovery at start: a checkpoint's
    /// state, or a promoted key's state record).
    pub fn restore(&mut self, hasher: &KeyHasher, hash: u64, key: &[u8], restored: KeyState) {
        self.update(hasher, None, hash, key, |state| {
            *state = restored;
            state.liveness()
        });
    }

    /// Brings `key` back from the flash tier if it is cold there, unchanged (no WATCHer is
    /// told: the value is the same), with the use stamps it was spilled with. `shard` is this
    /// shard's index. With durability the promoted state is logged (see `durable::record`):
    /// the flash tier no longer holds it.
    fn promote(&mut self, tier: &ColdTier, hasher: &KeyHasher, shard: usize, hash: u64, key: &[u8]) {
        if !self.may_hold_cold(hash, key) {
            return;
        }
        if let Some(entry) = tier.take(shard, hash, key) {
            self.counts.cold -= 1;
            tier.log_promoted(key, &entry.state);
            self.table.insert_unique(hash, Box::new(entry), |e| hasher.hash(&e.key));
        }
    }

    /// Stores cold keys of shard `shard` changed where they lie (see [`ColdTier::settle`]),
    /// keeping the counts and telling WATCHers. A key that must leave the flash tier comes
    /// into RAM, its state logged as a promoted key's is. On a flash error they are left as
    /// they were (the tier then refuses writes).
    /// Returns how many keys the change did change.
    fn settle_cold(&mut self, tier: &ColdTier, hasher: &KeyHasher, shard: usize, changed: Vec<ColdEntry>) -> usize {
        let Ok(settled) = tier.settle(shard, changed) else { return 0 };
        let count = settled.len();
        let cold_shape = (true, false);
        for (ColdEntry { entry, .. }, fate) in settled {
            self.watchers.touch(&entry.key);
            match fate {
                Settled::Cold => {}
                Settled::Gone => {
                    self.counts.cold -= 1;
                    self.counts.shift(cold_shape, (false, false));
                }
                Settled::Ram => {
                    self.counts.cold -= 1;
                    tier.log_promoted(&entry.key, &entry.state);
                    self.counts.shift(cold_shape, entry.shape());
                    self.table.insert_unique(hasher.hash(&entry.key), Box::new(entry), |e| hasher.hash(&e.key));
                }
            }
        }
        count
    }

    /// Spills the spillable entries `chosen` picks to the flash tier, stamped with the durable
    /// log `position`; returns how many went. On a flash error they stay.
    pub fn spill(&mut self, tier: &ColdTier, hasher: &KeyHasher, shard: usize, position: u64, chosen: impl Fn(&Entry) -> bool) -> usize {
        let is_victim = |e: &Entry| e.is_spillable() && chosen(e);
        if !self.table.iter().any(|e| is_victim(e)) {
            return 0;
        }
        // The same walk of the unchanged table below removes exactly these.
        let victims = self.table.iter().filter(|e| is_victim(e)).map(|e| (hasher.hash(&e.key), &**e));
        if tier.spill(shard, position, victims).is_err() {
            return 0;
        }
        let before = self.table.len();
        self.table.retain(|e| !is_victim(e));
        let removed = before - self.table.len();
        self.counts.cold += removed;
        removed
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

    /// Merges the empty state into every entry in RAM that `transferred` rejects (see
    /// [`Locked::merge_absent`]).
    fn merge_absent(&mut self, transferred: impl Fn(&[u8]) -> bool, mine: &impl Frontier, theirs: &VersionVector) {
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
        due.filter_map(|e| Some((e.key[..].into(), e.state.expires_at()?))).collect()
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
    /// Connections blocked in a pop, in the order they are served; pushes tell
    /// [`Keyspace::list_pushed`] only if any are.
    pub blocked_pops: crate::pop_queue::PopQueue,
    /// The flash tier's cold keys, when the flash tier is open.
    cold: Option<ColdTier>,
    /// How the entries' LFU counters move (`lfu-log-factor`, `lfu-decay-time`).
    pub lfu: LfuSettings,
}

/// Shards locked for one command (or one transaction).
pub struct Locked<'a> {
    ks: &'a Keyspace,
    guards: Guards<'a>,
    /// The last cold key a read looked at without promoting it (see [`Locked::get`]).
    peeked: Option<Entry>,
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
    /// An empty keyspace of node `local`, hashing keys with `hash_seed`, with cold keys in
    /// `cold` if given.
    pub fn new(local: NodeId, hash_seed: u64, cold: Option<ColdTier>) -> Keyspace {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Keyspace {
            shards,
            hasher: KeyHasher::with_seed(hash_seed),
            local,
            list_pushed: tokio::sync::Notify::new(),
            blocked_pops: Default::default(),
            cold,
            lfu: LfuSettings::default(),
        }
    }

    /// The cold keys, when the flash tier is open.
    pub fn cold(&self) -> Option<&ColdTier> {
        self.cold.as_ref()
    }

    /// Counts the cold keys already in the flash tier (at start).
    pub fn count_cold(&self) -> Result<usize, meridian_flash::FlashError> {
        let Some(tier) = &self.cold else { return Ok(0) };
        let mut total = 0;
        for (index, shard) in self.shards.iter().enumerate() {
            let n = tier.count(index)?;
            let mut shard = shard.lock();
            shard.counts.cold += n;
            shard.counts.live += n;
            total += n;
        }
        Ok(total)
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
        Locked { ks: self, peeked: None, guards: Guards::Some(guards) }
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Locked<'_> {
        Locked { ks: self, peeked: None, guards: Guards::All(self.shards.iter().map(|s| s.lock()).collect()) }
    }

    /// Holds no lock yet; shards are locked one at a time, never two at once, as a
    /// whole-keyspace command visits them.
    pub fn unlocked(&self) -> Locked<'_> {
        Locked { ks: self, peeked: None, guards: Guards::Free(None) }
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

    /// The locked shard holding `key`, with the key in RAM if it was cold. Keyed commands
    /// only touch the keys they declared, so the shard is always held; anything else is a bug
    /// in the command table.
    pub fn at(&mut self, key: &[u8]) -> KeyAt<'_> {
        let ks = self.ks;
        let hash = ks.hasher.hash(key);
        let index = shard_of(hash);
        let shard = self.shard(index);
        if let Some(tier) = &ks.cold {
            shard.promote(tier, &ks.hasher, index, hash, key);
        }
        KeyAt { shard, hash }
    }

    /// Every key of shard `index` in SCAN part `part` of `2^level` (level 0: the whole shard),
    /// in RAM and in the flash tier, without promoting any. Cold keys are always live and
    /// without TTL.
    pub fn visit(&mut self, index: usize, level: u32, part: u64, mut visit: impl FnMut(&Entry)) {
        let ks = self.ks;
        let shard = self.shard(index);
        let mask = (1u64 << level) - 1;
        let hasher = &ks.hasher;
        let in_part = |e: &Entry| level == 0 || (hasher.hash(&e.key) >> scan::PART_SHIFT) & mask == part;
        shard.entries().filter(|e| in_part(e)).for_each(&mut visit);
        if let (Some(tier), true) = (&ks.cold, shard.counts.cold > 0) {
            for cold in tier.part(index, level, part) {
                visit(&cold.entry);
            }
        }
    }

    /// Merges another node's state of `key` (a full state transfer; `mine` and `theirs` are
    /// what each node had applied) where the key lies: a cold key is merged in the flash tier
    /// and stays there, so a transfer into a node whose data is mostly cold does not pull it
    /// all into RAM.
    pub fn merge(&mut self, key: &[u8], theirs_state: &KeyState, mine: &impl Frontier, theirs: &VersionVector) {
        let ks = self.ks;
        let hash = ks.hasher.hash(key);
        let index = shard_of(hash);
        let shard = self.shard(index);
        if let (Some(tier), true) = (&ks.cold, shard.may_hold_cold(hash, key)) {
            if let Some(mut cold) = tier.entry(index, hash, key) {
                cold.entry.state.merge(theirs_state, mine, theirs);
                shard.settle_cold(tier, &ks.hasher, index, vec![cold]);
                return;
            }
        }
        shard.merge(&ks.hasher, hash, key, theirs_state, mine, theirs);
    }

    /// True if this node holds nothing at `key`, in RAM or in the flash tier (a state
    /// transfer then merges the key's state outside any lock: see `replication::store`).
    pub fn is_absent(&mut self, key: &[u8]) -> bool {
        let hash = self.ks.hasher.hash(key);
        let shard = self.shard(shard_of(hash));
        shard.raw(hash, key).is_none() && shard.counts.cold == 0
    }

    /// Puts `state` at `key`, which [`Locked::is_absent`] found absent, as a merge into the
    /// empty state would.
    pub fn put_absent(&mut self, key: &[u8], state: KeyState) {
        let hash = self.ks.hasher.hash(key);
        let hasher = &self.ks.hasher;
        self.shard(shard_of(hash)).restore(hasher, hash, key, state);
    }

    /// Merges the empty state into every key of shard `index` that `transferred` rejects, in
    /// RAM and in the flash tier: the keys a completed state transfer did not carry, which its
    /// sender had removed and collected. Cold keys stay cold unless the merge removed them.
    pub fn merge_absent(&mut self, index: usize, transferred: impl Fn(&[u8]) -> bool, mine: &impl Frontier, theirs: &VersionVector) {
        self.shard(index).merge_absent(&transferred, mine, theirs);
        let empty = KeyState::default();
        self.change_cold(index, 0, 0, |state, key| {
            let absent = !transferred(key);
            if absent {
                state.merge(&empty, mine, theirs);
            }
            absent
        });
    }

    /// Garbage-collects, at the stability frontier `stable`, the cold keys of part `part` of
    /// shard `index` cut into `2^level` parts, where they lie: the sweep [`Shard::collect`]
    /// gives RAM keys. The keys it changed count in INFO's `flash_collected_keys`.
    pub fn collect_cold(&mut self, index: usize, level: u32, part: u64, stable: &impl Frontier) {
        let changed = self.change_cold(index, level, part, |state, _| {
            state.collect(stable);
            true
        });
        if let Some(tier) = &self.ks.cold {
            tier.count_collected(changed);
        }
    }

    /// Changes cold keys of one part of a shard where they lie: `change` edits each key's
    /// state and says whether it may have changed it; those are settled (see
    /// [`Shard::settle_cold`]). Returns how many keys changed.
    fn change_cold(&mut self, index: usize, level: u32, part: u64, mut change: impl FnMut(&mut KeyState, &[u8]) -> bool) -> usize {
        let ks = self.ks;
        let shard = self.shard(index);
        let Some(tier) = ks.cold.as_ref().filter(|_| shard.counts.cold > 0) else { return 0 };
        let mut entries = tier.part(index, level, part);
        entries.retain_mut(|cold| change(&mut cold.entry.state, &cold.entry.key));
        shard.settle_cold(tier, &ks.hasher, index, entries)
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

    /// The entry for `key` if visible at `now`, for reading. A cold key is read from the
    /// flash tier and left there the first time (see [`ColdTier::read`]): the entry returned
    /// is a copy, valid until the next lookup. Writes go through [`Locked::at`], which always
    /// promotes.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let ks = self.ks;
        let hash = ks.hasher.hash(key);
        let index = shard_of(hash);
        let shard = self.shard(index);
        if let (Some(tier), true) = (&ks.cold, shard.may_hold_cold(hash, key)) {
            match tier.read(index, hash, key) {
                Read::Absent => return None,
                Read::Cold(entry) => return Some(self.peeked.insert(entry)),
                Read::Promote => shard.promote(tier, &ks.hasher, index, hash, key),
            }
        }
        self.shard(index).get(hash, key, now, &ks.lfu).map(|e| &*e)
    }

    /// The entry for `key` if visible at `now`, without counting a use (OBJECT reads a key's
    /// idle time and use count and must not change them). A cold key's entry is a copy read
    /// from the flash tier and left there, valid until the next lookup.
    pub fn look(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let ks = self.ks;
        let hash = ks.hasher.hash(key);
        let index = shard_of(hash);
        let shard = self.shard(index);
        if let (Some(tier), true) = (&ks.cold, shard.may_hold_cold(hash, key)) {
            if let Some(entry) = tier.peek(index, hash, key) {
                return Some(self.peeked.insert(entry));
            }
        }
        self.shard(index).raw(hash, key).filter(|e| e.is_visible(now))
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
            ShardCounts { live: acc.live + c.live, cold: acc.cold + c.cold, volatile: acc.volatile + c.volatile, expired: acc.expired + c.expired }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::{Seen, VersionVector};

    /// A key a write creates starts at Redis's initial LFU count (5), so LFU does not evict it
    /// before it had a chance to be used again; as in Redis, the creating write is not a use
    /// (redis-server 7.0.15: SET, then OBJECT FREQ, gives 5), and the next write is.
    #[test]
    fn a_new_key_starts_at_the_initial_lfu_count() {
        let ks = Keyspace::new(NodeId(1), 7, None);
        let mut db = ks.lock_keys([&b"k"[..]].into_iter());
        let body: Body<&[u8]> = Body::Set { seen: Seen::default(), value: b"v", expire_at: None };
        let freq = |db: &mut Locked| {
            let at = db.at(b"k");
            at.shard.raw(at.hash, b"k").map(|e| e.freq)
        };
        db.apply(b"k", Stamp::new(1, NodeId(1)), &body, &VersionVector::default(), &VersionVector::default());
        assert_eq!(freq(&mut db), Some(lfu::INITIAL));
        db.apply(b"k", Stamp::new(2, NodeId(1)), &body, &VersionVector::default(), &VersionVector::default());
        assert_eq!(freq(&mut db), Some(lfu::INITIAL + 1), "at the initial count a use always counts");
    }

    /// The LRU stamp and the LFU counter share one word, and a short key sits inline: an
    /// entry is one allocation of exactly jemalloc's 96-byte class (docs/flash-tier.md counts
    /// it), where it used to be 88 bytes plus a 16- or 32-byte allocation for the key.
    #[test]
    fn an_entry_is_one_96_byte_allocation_with_its_key_inline() {
        assert_eq!(std::mem::size_of::<super::Entry>(), 96);
        let entry = super::Entry::new(b"key:000000123456", KeyState::default(), 0);
        assert!(matches!(entry.key, ShortBytes::Inline { .. }), "a 16-byte key needs no allocation of its own");
    }
}
