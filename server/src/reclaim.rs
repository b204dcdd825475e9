//! Keeping memory under `maxmemory`, shard by shard, until it is 5% under:
//!
//! - **Spilling** (`maxmemory-policy flash`): the least recently used keys move to the flash
//!   tier. A thread of its own does it, since RocksDB writes block; and, as Redis evicts, a
//!   write that finds memory over the limit spills a few shards itself before it runs, which
//!   holds writers to the pace the flash tier takes. Commands promote what they touch.
//! - **Evicting** (Redis's cache policies: `allkeys-lru`, `allkeys-random`, `volatile-lru`,
//!   `volatile-random`, `volatile-ttl`, `allkeys-lfu`, `volatile-lfu`): a write that finds memory over the limit deletes keys
//!   first, as Redis does. An eviction is a DEL op through the one write path, so it reaches
//!   every region, as Redis Enterprise's Active-Active evictions do.
//!
//! Shards are visited in groups of 16 whose candidates are ranked together (least recently
//! used, least frequently used, nearest their expiry, or at random), and each group gives up the share of its
//! candidates that memory is over the target: keys hash evenly over shards, so this
//! approximates a global order without keeping one.

use crate::alloc::used_memory;
use crate::cold_sweep::ColdSweep;
use crate::config::MaxmemoryPolicy;
use crate::keyspace::{ColdTier, Entry, KeyHasher, LfuSettings, Locked, SHARDS};
use crate::shared::{HotConfig, Shared};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at memory while under the limit.
const IDLE_CHECK: Duration = Duration::from_millis(20);

/// Shards a write spills from before it runs while memory is over the limit (it evicts from
/// as many as it takes).
const SHARDS_PER_WRITE: usize = GROUP;

/// Spill and eviction figures for INFO, and where the next pass starts.
#[derive(Debug, Default)]
pub struct ReclaimStats {
    next_shard: AtomicUsize,
    /// Keys evicted since start (INFO `evicted_keys`).
    pub evicted: AtomicU64,
    /// Promotions per second over the last second.
    pub promotions_per_sec: AtomicU64,
    /// Spills per second over the last second.
    pub spills_per_sec: AtomicU64,
}

/// Starts the spilling thread if the flash tier is open; it stops at shutdown. Between
/// passes it also moves the garbage collection of cold keys on (see [`ColdSweep`]).
pub fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    if shared.keyspace.cold().is_none() {
        return Ok(());
    }
    let shared = shared.clone();
    let mut shutdown = shared.shutdown.subscribe();
    std::thread::Builder::new().name("meridian-spill".into()).spawn(move || {
        let mut last_second = (Instant::now(), shared.keyspace.cold().map(|t| t.stats()).unwrap_or_default());
        let mut sweep = ColdSweep::default();
        while !*shutdown.borrow_and_update() {
            if reclaim(&shared, SHARDS) == 0 {
                std::thread::sleep(IDLE_CHECK);
            }
            sweep.step(&shared);
            if let (Some(tier), true) = (shared.keyspace.cold(), last_second.0.elapsed() >= Duration::from_secs(1)) {
                let (now, before) = (tier.stats(), last_second.1);
                let seconds = last_second.0.elapsed().as_secs_f64();
                shared.reclaim.promotions_per_sec.store(((now.promoted - before.promoted) as f64 / seconds) as u64, Ordering::Relaxed);
                shared.reclaim.spills_per_sec.store(((now.spilled - before.spilled) as f64 / seconds) as u64, Ordering::Relaxed);
                tier.set_ram_keys(shared.keyspace.unlocked().counts().in_ram());
                last_second = (Instant::now(), now);
            }
        }
    })?;
    Ok(())
}

/// Memory counted against `maxmemory`, from the allocator's `used` figure: less what
/// [`not_counted_memory`] leaves out.
pub fn counted_memory(shared: &Shared, used: u64) -> u64 {
    used.saturating_sub(not_counted_memory(shared))
}

/// Memory that `maxmemory` leaves out, as Redis leaves out its replication backlog and
/// replica output buffers: the op log peers catch up from, and what QUIC may still buffer
/// for peers (INFO's `mem_not_counted_for_evict`).
pub fn not_counted_memory(shared: &Shared) -> u64 {
    let buffered = shared.replication.as_ref().map_or(0, |r| r.buffered());
    shared.node.log_stats().allocated as u64 + buffered
}

/// Before a write that may add data, with memory over `maxmemory`: spills a few shards, or
/// evicts until memory is back under the limit.
pub fn before_write(shared: &Shared) {
    let shards = match shared.config.read().policy() {
        MaxmemoryPolicy::Flash => SHARDS_PER_WRITE,
        _ => 2 * SHARDS,
    };
    reclaim(shared, shards);
}

/// Spills or evicts from up to `shards` shards while memory is over the limit, as the policy
/// says; returns how many keys went (0: under the limit, or nothing left that the policy may
/// take: keys with a TTL never spill, and `volatile-*` evicts only keys with one).
///
/// Shards go in groups of [`GROUP`]: the candidates of the whole group are ranked together
/// (idle time, use count, nearness of expiry, or a random draw), and the top share of them goes, from
/// whichever shards of the group hold them, as Redis's eviction pool ranks samples from the
/// whole keyspace.
fn reclaim(shared: &Shared, shards: usize) -> usize {
    let maxmemory = HotConfig::get(&shared.hot.maxmemory);
    let policy = shared.config.read().policy();
    let take = match (Victims::of(policy), shared.keyspace.cold()) {
        (Some(victims), _) => Take::Evict(victims),
        (None, Some(tier)) if policy == MaxmemoryPolicy::Flash => Take::Spill(tier),
        _ => return 0,
    };
    if maxmemory == 0 {
        return 0;
    }
    let mut used = counted_memory(shared, used_memory());
    if used <= maxmemory {
        return 0;
    }
    let target = maxmemory - maxmemory / 20;
    let mut db = shared.keyspace.unlocked();
    let mut reclaimed = 0;
    for _ in 0..shards.div_ceil(GROUP) {
        let share = (used.saturating_sub(target) as f64 / used as f64).clamp(0.01, 1.0);
        // A shard may come round twice in one pass; that is harmless.
        let group: Vec<usize> = (0..GROUP).map(|_| shared.reclaim.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS).collect();
        let rank = Rank { take, now: crate::clock::now_ms(), salt: rand::random(), hasher: shared.keyspace.hasher(), lfu: &shared.keyspace.lfu };
        let mut scores: Vec<u64> = Vec::new();
        for &index in &group {
            db.with_shard(index, |shard| scores.extend(shard.entries().filter_map(|e| rank.score(e))));
        }
        let wanted = crate::keyspace::share_of(scores.len(), share);
        let before = reclaimed;
        if wanted > 0 {
            let cutoff = *scores.select_nth_unstable_by(wanted - 1, |a, b| b.cmp(a)).1;
            let chosen = |e: &Entry| rank.score(e).is_some_and(|score| score >= cutoff);
            for &index in &group {
                reclaimed += match take {
                    Take::Evict(_) => evict(shared, &mut db, index, chosen),
                    Take::Spill(tier) => db.with_shard(index, |shard| {
                        // Read with the shard held: the cold states hold every op logged before it.
                        let position = shared.node.durable().map_or(0, |d| d.next_position());
                        shard.spill(tier, rank.hasher, index, position, chosen)
                    }),
                };
            }
        }
        // Reading the allocator's figures merges every arena's statistics: once per group
        // that freed something. (A write at the limit with nothing to evict, say deleted
        // entries waiting for peers to see the delete, so costs one walk of the entries.)
        if reclaimed == before {
            continue;
        }
        used = counted_memory(shared, used_memory());
        if used <= target {
            break;
        }
    }
    reclaimed
}

/// Shards ranked together in one step of a pass.
const GROUP: usize = 16;

/// What a pass takes.
#[derive(Clone, Copy)]
enum Take<'a> {
    /// Keys to delete, in this order.
    Evict(Victims),
    /// Keys to move to this flash tier, least recently used first.
    Spill(&'a ColdTier),
}

/// Which keys an eviction policy takes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victims {
    /// The least recently used, of all keys (`allkeys-lru`) or of those with a TTL.
    Oldest { volatile_only: bool },
    /// Any, at random.
    Random { volatile_only: bool },
    /// Those nearest their expiry (`volatile-ttl`).
    NearestExpiry,
    /// The least frequently used (decayed LFU counter, then idle time), of all keys
    /// (`allkeys-lfu`) or of those with a TTL.
    Rarest { volatile_only: bool },
}

impl Victims {
    fn of(policy: MaxmemoryPolicy) -> Option<Victims> {
        Some(match policy {
            MaxmemoryPolicy::AllkeysLru => Victims::Oldest { volatile_only: false },
            MaxmemoryPolicy::VolatileLru => Victims::Oldest { volatile_only: true },
            MaxmemoryPolicy::AllkeysRandom => Victims::Random { volatile_only: false },
            MaxmemoryPolicy::VolatileRandom => Victims::Random { volatile_only: true },
            MaxmemoryPolicy::VolatileTtl => Victims::NearestExpiry,
            MaxmemoryPolicy::AllkeysLfu => Victims::Rarest { volatile_only: false },
            MaxmemoryPolicy::VolatileLfu => Victims::Rarest { volatile_only: true },
            MaxmemoryPolicy::NoEviction | MaxmemoryPolicy::Flash => return None,
        })
    }
}

/// How one step ranks entries: a higher score goes first; `None`: not a candidate. The same
/// entry gets the same score for the whole step (the random draw is a salted hash).
struct Rank<'a> {
    take: Take<'a>,
    now: u64,
    salt: u64,
    hasher: &'a KeyHasher,
    lfu: &'a LfuSettings,
}

impl Rank<'_> {
    fn score(&self, e: &Entry) -> Option<u64> {
        let expires = e.state.expires_at();
        let volatile = expires.is_some();
        match self.take {
            Take::Spill(_) => e.is_spillable().then(|| u64::from(e.idle_ms(self.now))),
            Take::Evict(_) if !e.is_visible(self.now) => None,
            Take::Evict(Victims::Oldest { volatile_only }) => (!volatile_only || volatile).then(|| u64::from(e.idle_ms(self.now))),
            Take::Evict(Victims::Random { volatile_only }) => (!volatile_only || volatile).then(|| (self.hasher.hash(&e.key) ^ self.salt).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            Take::Evict(Victims::NearestExpiry) => expires.map(|at| u64::MAX - at),
            Take::Evict(Victims::Rarest { volatile_only }) => (!volatile_only || volatile).then(|| {
                let idle = e.idle_ms(self.now);
                u64::from(u8::MAX - self.lfu.decayed(e.freq, idle)) << 32 | u64::from(idle)
            }),
        }
    }
}

/// Evicts the entries of shard `index` that `chosen` picks; each eviction is a DEL op, made and
/// applied with the shard held, as active expiry makes its ops.
fn evict(shared: &Shared, db: &mut Locked, index: usize, chosen: impl Fn(&Entry) -> bool) -> usize {
    let now = crate::clock::now_ms();
    let keys: Vec<Box<[u8]>> = db.with_shard(index, |shard| shard.entries().filter(|e| chosen(e)).map(|e| e.key[..].into()).collect());
    for key in &keys {
        let Some(seen) = db.get(key, now).map(|e| e.state.seen(false)) else { continue };
        let op = shared.node.stamp(key, meridian_crdt::Body::Del { seen });
        db.apply(key, op.stamp(), &op.body, &crate::node::Applied(&shared.node), &shared.write_stability());
    }
    if !keys.is_empty() {
        shared.reclaim.evicted.fetch_add(keys.len() as u64, Ordering::Relaxed);
        shared.log_grew();
    }
    keys.len()
}
