//! Garbage collection of cold keys where they lie.
//!
//! RAM keys are collected at the stability frontier by the housekeeping sweep; a key spilled
//! before its garbage was stable (list elements a pop removed, say, while a peer was down)
//! would otherwise keep it in the flash tier until promoted. With peers (alone, writes collect
//! as they apply), the spilling thread therefore visits one shard's cold keys every `1/hz`
//! seconds, a cycle of 1024 shards in about 100 s at the default `hz 10`: each in a few parts,
//! the shard held only while a part is read, collected and written back, and only keys the
//! collection changed are rewritten.

use crate::keyspace::SHARDS;
use crate::shared::Shared;
use std::time::{Duration, Instant};

/// Each shard is swept in `2^PART_LEVEL` parts, so a shard is held for a fraction of its cold
/// keys at a time.
const PART_LEVEL: u32 = 2;

/// Most shards one step sweeps, however long the thread was busy spilling.
const MAX_SHARDS_PER_STEP: usize = 16;

/// Where the sweep is, and when it last moved.
pub struct ColdSweep {
    next_shard: usize,
    last: Instant,
}

impl Default for ColdSweep {
    /// A sweep starting at shard 0.
    fn default() -> ColdSweep {
        ColdSweep { next_shard: 0, last: Instant::now() }
    }
}

impl ColdSweep {
    /// Sweeps a shard for every `1/hz` seconds passed since the last step (at most
    /// [`MAX_SHARDS_PER_STEP`]). Does nothing without replication.
    pub fn step(&mut self, shared: &Shared) {
        let Some(replication) = &shared.replication else { return };
        let period = Duration::from_millis(1000 / shared.config.read().hz.max(1));
        let due = (self.last.elapsed().as_millis() / period.as_millis().max(1)) as usize;
        if due == 0 {
            return;
        }
        self.last = Instant::now();
        let stable = replication.stable();
        for _ in 0..due.min(MAX_SHARDS_PER_STEP) {
            let index = self.next_shard;
            self.next_shard = (index + 1) % SHARDS;
            // A fresh handle per part: the shard is let go between parts.
            for part in 0..1u64 << PART_LEVEL {
                shared.keyspace.unlocked().collect_cold(index, PART_LEVEL, part, &stable);
            }
            if let (0, Some(tier)) = (self.next_shard, shared.keyspace.cold()) {
                tier.count_collect_cycle();
            }
        }
    }
}
