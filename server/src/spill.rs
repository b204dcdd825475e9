//! Spilling (`maxmemory-policy flash`): while used memory is over `maxmemory`, the least
//! recently used keys move to the flash tier, shard by shard, until it is 5% under. A thread
//! of its own does it, since RocksDB writes block; and, as Redis evicts, a write that finds
//! memory over the limit spills a few shards itself before it runs, which holds writers to the
//! pace the flash tier takes. Commands promote what they touch.
//!
//! Each shard visited gives up the same share of its spillable keys (those least recently
//! used there), the share being how far over the target the node is: keys hash evenly over
//! shards, so this approximates a global LRU without a global order.

use crate::alloc::used_memory;
use crate::config::MaxmemoryPolicy;
use crate::keyspace::SHARDS;
use crate::shared::{HotConfig, Shared};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at memory while under the limit.
const IDLE_CHECK: Duration = Duration::from_millis(20);

/// Shards a write spills before it runs while memory is over the limit.
const SHARDS_PER_WRITE: usize = 8;

/// Shards a pass spills between two readings of used memory.
const MEASURE_EVERY: usize = 8;

/// Spill figures for INFO, and where the next pass starts.
#[derive(Debug, Default)]
pub struct SpillStats {
    next_shard: AtomicUsize,
    /// Promotions per second over the last second.
    pub promotions_per_sec: AtomicU64,
    /// Spills per second over the last second.
    pub spills_per_sec: AtomicU64,
}

/// Starts the spilling thread if the flash tier is open; it stops at shutdown.
pub fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    if shared.keyspace.cold().is_none() {
        return Ok(());
    }
    let shared = shared.clone();
    let mut shutdown = shared.shutdown.subscribe();
    std::thread::Builder::new().name("meridian-spill".into()).spawn(move || {
        let mut last_second = (Instant::now(), shared.keyspace.cold().map(|t| t.stats()).unwrap_or_default());
        while !*shutdown.borrow_and_update() {
            if !spill(&shared, SHARDS) {
                std::thread::sleep(IDLE_CHECK);
            }
            if let (Some(tier), true) = (shared.keyspace.cold(), last_second.0.elapsed() >= Duration::from_secs(1)) {
                let (now, before) = (tier.stats(), last_second.1);
                let seconds = last_second.0.elapsed().as_secs_f64();
                shared.spill.promotions_per_sec.store(((now.promoted - before.promoted) as f64 / seconds) as u64, Ordering::Relaxed);
                shared.spill.spills_per_sec.store(((now.spilled - before.spilled) as f64 / seconds) as u64, Ordering::Relaxed);
                last_second = (Instant::now(), now);
            }
        }
    })?;
    Ok(())
}

/// Memory counted against `maxmemory`, from the allocator's `used` figure: less the op log
/// peers catch up from, as Redis leaves its replication buffers out.
pub fn counted_memory(shared: &Shared, used: u64) -> u64 {
    used.saturating_sub(shared.node.log_stats().bytes as u64)
}

/// Before a write that may add data, with memory over `maxmemory`: spills a few shards.
pub fn before_write(shared: &Shared) {
    spill(shared, SHARDS_PER_WRITE);
}

/// Spills from up to `shards` shards while memory is over the limit; false if nothing was
/// spilled (under the limit, or nothing left that may spill: keys with a TTL stay in RAM).
fn spill(shared: &Shared, shards: usize) -> bool {
    let Some(tier) = shared.keyspace.cold() else { return false };
    let maxmemory = HotConfig::get(&shared.hot.maxmemory);
    if maxmemory == 0 || shared.config.read().policy() != MaxmemoryPolicy::Flash {
        return false;
    }
    let mut used = counted_memory(shared, used_memory());
    if used <= maxmemory {
        return false;
    }
    let target = maxmemory - maxmemory / 20;
    let hasher = shared.keyspace.hasher();
    let mut db = shared.keyspace.unlocked();
    let mut spilled = 0;
    for visited in 1..=shards {
        let share = (used.saturating_sub(target) as f64 / used as f64).clamp(0.01, 1.0);
        let index = shared.spill.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
        spilled += db.with_shard(index, |shard| {
            // Read with the shard held: the cold states hold every op logged before it.
            let position = shared.node.durable().map_or(0, |d| d.next_position());
            shard.spill(tier, hasher, index, position, share)
        });
        // Reading the allocator's figures merges every arena's statistics: not for every shard.
        if visited % MEASURE_EVERY == 0 || visited == shards {
            used = counted_memory(shared, used_memory());
            if used <= target {
                break;
            }
        }
    }
    spilled > 0
}
