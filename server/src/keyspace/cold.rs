//! Cold keys: key states spilled from RAM to the flash tier when used memory passes
//! `maxmemory` (policy `flash`), and promoted back into their shard by the first command,
//! replicated op or merge that names them. A key is in exactly one place: its shard's table
//! or the `cold` column family, never both; the move either way happens under the shard's
//! lock.
//!
//! Cold keys are stored by shard and by a 32-bit order taken from the hash bits SCAN cuts a
//! shard with, bit-reversed, so each SCAN part of a shard is one contiguous range of cold
//! keys. Only keys that are live and have no TTL are spilled: expiry stays a RAM affair.
//!
//! Each stored value is the log position of the spill (8 bytes) then the encoded state, so a
//! recovery knows which logged ops the cold state already holds.

use super::scan::PART_SHIFT;
use crate::durable::Durable;
use meridian_crdt::KeyState;
use meridian_flash::{ColdKey, FlashError, FlashStore};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A cold key read back.
pub struct ColdState {
    /// The durable log position at the spill: the state holds every op logged before it.
    pub position: u64,
    /// The key's state.
    pub state: KeyState,
}

/// What [`ColdTier::read`] found.
pub enum Read {
    /// The key is not cold (it may be in RAM, or nowhere).
    Absent,
    /// The key is cold; here is its state, still in the flash tier.
    Cold(KeyState),
    /// The key may be cold and was read recently: promote it.
    Promote,
}

/// Keys read cold lately, as one bit per hash slot in a fixed table (1 MiB): the admission
/// filter that lets a key's second cold read, not its first, promote it. The table is wiped
/// once an eighth of its bits have been set, so "lately" means within the last million cold
/// reads or so, and a collision (a key promoted on its first read) stays rarer than one in 8.
struct Recent {
    bits: Box<[AtomicU64]>,
    marked: AtomicU64,
}

const RECENT_BITS: u32 = 23;

impl Recent {
    fn new() -> Recent {
        Recent { bits: (0..1usize << (RECENT_BITS - 6)).map(|_| AtomicU64::new(0)).collect(), marked: AtomicU64::new(0) }
    }

    /// Marks `hash` as read; true if it already was.
    fn mark(&self, hash: u64) -> bool {
        let slot = (hash >> (64 - RECENT_BITS)) as usize;
        let bit = 1u64 << (slot % 64);
        let before = self.bits[slot / 64].fetch_or(bit, Ordering::Relaxed);
        if before & bit != 0 {
            return true;
        }
        if self.marked.fetch_add(1, Ordering::Relaxed) + 1 >= 1 << (RECENT_BITS - 3) {
            self.marked.store(0, Ordering::Relaxed);
            self.bits.iter().for_each(|word| word.store(0, Ordering::Relaxed));
        }
        false
    }
}

/// Flash-tier figures for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColdStats {
    /// Keys spilled since start.
    pub spilled: u64,
    /// Keys promoted back since start.
    pub promoted: u64,
    /// Flash reads (lookups of keys that might be cold).
    pub reads: u64,
}

/// The cold half of the keyspace.
pub struct ColdTier {
    store: Arc<FlashStore>,
    /// Where promoted states are logged, with durability on.
    durable: Option<Arc<Durable>>,
    spilled: AtomicU64,
    promoted: AtomicU64,
    reads: AtomicU64,
    recent: Recent,
    failure: Mutex<Option<String>>,
}

/// Where a key's hash puts it among its shard's cold keys (see the module doc).
pub fn order_of(hash: u64) -> u32 {
    ((hash >> PART_SHIFT) as u32).reverse_bits()
}

/// The orders of SCAN part `part` of a shard cut into `2^level` parts.
pub fn orders_of_part(level: u32, part: u64) -> std::ops::RangeInclusive<u32> {
    if level == 0 {
        return 0..=u32::MAX;
    }
    let width = 32 - level;
    let first = ((part as u32).reverse_bits() >> width) << width;
    first..=first | ((1u32 << width) - 1)
}

fn encode(position: u64, state: &KeyState) -> Vec<u8> {
    let mut bytes = position.to_be_bytes().to_vec();
    rmp_serde::encode::write(&mut bytes, state).expect("key states encode");
    bytes
}

fn decode(bytes: &[u8]) -> Result<ColdState, String> {
    let (position, state) = bytes.split_at_checked(8).ok_or("a cold value shorter than its position")?;
    let state = rmp_serde::from_slice(state).map_err(|e| e.to_string())?;
    Ok(ColdState { position: u64::from_be_bytes(position.try_into().expect("8 bytes")), state })
}

impl ColdTier {
    /// The cold tier stored in `store`, logging promotions to `durable` if given.
    pub fn new(store: Arc<FlashStore>, durable: Option<Arc<Durable>>) -> ColdTier {
        ColdTier { store, durable, spilled: AtomicU64::new(0), promoted: AtomicU64::new(0), reads: AtomicU64::new(0), recent: Recent::new(), failure: Mutex::new(None) }
    }

    /// Why the flash tier stopped working, if it did: writes are refused from then on.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    fn fail(&self, what: &str, error: impl std::fmt::Display) {
        tracing::error!("flash tier: {what}: {error}; writes are refused until the node is restarted");
        self.failure.lock().get_or_insert_with(|| format!("{what}: {error}"));
    }

    /// Reads `key`'s cold state (a flash read, counted), or None if it is not cold.
    fn fetch(&self, place: &ColdKey) -> Option<KeyState> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes = match self.store.cold_get(place) {
            Ok(found) => found?,
            Err(e) => {
                self.fail("reading a cold key", e);
                return None;
            }
        };
        match decode(&bytes) {
            Ok(cold) => Some(cold.state),
            Err(e) => {
                self.fail("decoding a cold key", e);
                None
            }
        }
    }

    /// Takes `key` out of the flash tier if it is cold there (the caller puts it in RAM).
    pub fn take(&self, shard: usize, hash: u64, key: &[u8]) -> Option<KeyState> {
        let place = ColdKey::new(shard as u16, order_of(hash), key);
        let state = self.fetch(&place)?;
        if let Err(e) = self.store.cold_write([], [place]) {
            self.fail("removing a promoted key", e);
        }
        self.promoted.fetch_add(1, Ordering::Relaxed);
        Some(state)
    }

    /// A read-only command's look at `key`: None if it is not cold; otherwise its state, left
    /// in the flash tier (`Read::Cold`) unless the key was read there a short while ago, in
    /// which case the caller promotes it (`Read::Promote`). A key read once in a long while
    /// (most of a skewed workload's tail) so costs one RocksDB read and no write, and only
    /// keys read again take RAM from others.
    pub fn read(&self, shard: usize, hash: u64, key: &[u8]) -> Read {
        if self.recent.mark(hash) {
            return Read::Promote;
        }
        match self.fetch(&ColdKey::new(shard as u16, order_of(hash), key)) {
            Some(state) => Read::Cold(state),
            None => Read::Absent,
        }
    }

    /// Logs the state of a key just promoted (see `durable::record`).
    pub fn log_promoted(&self, key: &[u8], state: &KeyState) {
        if let Some(durable) = &self.durable {
            durable.append_state(key, state);
        }
    }

    /// Reads `key`'s cold state without promoting it (recovery).
    pub fn peek(&self, shard: usize, hash: u64, key: &[u8]) -> Result<Option<ColdState>, FlashError> {
        let bytes = self.store.cold_get(&ColdKey::new(shard as u16, order_of(hash), key))?;
        Ok(bytes.and_then(|b| decode(&b).map_err(|e| self.fail("decoding a cold key", e)).ok()))
    }

    /// Writes spilled keys `(hash, key, state)` of `shard` in one batch, stamped with the
    /// durable log `position`. On error nothing was written and the caller keeps them in RAM.
    pub fn spill<'a>(&self, shard: usize, position: u64, keys: impl IntoIterator<Item = (u64, &'a [u8], &'a KeyState)>) -> Result<(), FlashError> {
        let encoded: Vec<(ColdKey, Vec<u8>)> = keys.into_iter().map(|(hash, key, state)| (ColdKey::new(shard as u16, order_of(hash), key), encode(position, state))).collect();
        let count = encoded.len() as u64;
        self.store.cold_write(encoded.iter().map(|(k, v)| (k.clone(), &v[..])), []).inspect_err(|e| self.fail("spilling keys", e))?;
        self.spilled.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// The cold keys of `shard` in SCAN part `part` of `2^level`, with their states.
    pub fn part(&self, shard: usize, level: u32, part: u64) -> Vec<(Box<[u8]>, KeyState)> {
        let mut keys = Vec::new();
        for item in self.store.cold_range(shard as u16, orders_of_part(level, part)) {
            match item.map_err(|e| e.to_string()).and_then(|(_, key, bytes)| Ok((key, decode(&bytes)?))) {
                Ok((key, cold)) => keys.push((key, cold.state)),
                Err(e) => {
                    self.fail("listing cold keys", e);
                    break;
                }
            }
        }
        keys
    }

    /// Counts each shard's cold keys (at start).
    pub fn count(&self, shard: usize) -> Result<usize, FlashError> {
        let mut n = 0;
        for item in self.store.cold_range(shard as u16, 0..=u32::MAX) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Forgets every cold key (a start without `appendonly`: the rest of their state is gone).
    pub fn clear(&self) -> Result<(), FlashError> {
        self.store.cold_clear()
    }

    /// RocksDB's size figures.
    pub fn size(&self) -> meridian_flash::FlashSize {
        self.store.size()
    }

    /// The store's directory.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Spill and promotion counts.
    pub fn stats(&self) -> ColdStats {
        ColdStats { spilled: self.spilled.load(Ordering::Relaxed), promoted: self.promoted.load(Ordering::Relaxed), reads: self.reads.load(Ordering::Relaxed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scan_part_is_one_range_of_orders() {
        for level in 0..=6u32 {
            for part in 0..(1u64 << level) {
                let range = orders_of_part(level, part);
                for x in [0u64, 1, 5, 0x3f, 0xffff_ffff, 0x1234_5678, 0x9abc_def0] {
                    let hash = x << PART_SHIFT;
                    let in_part = (hash >> PART_SHIFT) & ((1 << level) - 1) == part;
                    assert_eq!(range.contains(&order_of(hash)), in_part, "level {level} part {part} hash {hash:x}");
                }
            }
        }
    }
}
