//! Cold keys: key states spilled from RAM to the flash tier when used memory passes
//! `maxmemory` (policy `flash`), and promoted back into their shard by the first write,
//! replicated op or merge that names them, or by a read the admission filter lets through
//! (see [`Admission`]). A key is in exactly one place: its shard's table
//! or the `cold` column family, never both; the move either way happens under the shard's
//! lock.
//!
//! Cold keys are stored by shard and by a 32-bit order taken from the hash bits SCAN cuts a
//! shard with, bit-reversed, so each SCAN part of a shard is one contiguous range of cold
//! keys. Only keys that are live and have no TTL are spilled: expiry stays a RAM affair.
//!
//! Each stored value is the log position of the spill (8 bytes), so a recovery knows which
//! logged ops the cold state already holds, then the entry's use stamps (its LRU time, 4
//! bytes, and LFU count, 1 byte), so a key's idle time and use count survive its spill, then
//! the encoded state. Values written before the use stamps were kept have none (the
//! position's top bit is clear) and read as used at time 0 with a new key's count.

use super::admission::Admission;
use super::scan::PART_SHIFT;
use super::{lfu, Entry};
use crate::durable::Durable;
use meridian_crdt::{KeyState, Liveness};
use meridian_flash::{ColdKey, FlashError, FlashStore};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What [`ColdTier::read`] found.
pub enum Read {
    /// The key is not cold (it may be in RAM, or nowhere).
    Absent,
    /// The key is cold; here is a copy of its entry, still in the flash tier.
    Cold(Entry),
    /// The key may be cold and the admission filter lets it into RAM: promote it.
    Promote,
}

/// A cold key read out, to list it or to change it where it lies (a state transfer's merge:
/// the change is made to `entry.state`, then [`ColdTier::settle`] stores the key where it
/// now belongs).
pub struct ColdEntry {
    /// The key's entry.
    pub entry: Entry,
    /// Its stored encoding, to tell a change that changed nothing.
    stored: Box<[u8]>,
    /// Its order among its shard's cold keys (see [`order_of`]).
    order: u32,
}

impl ColdEntry {
    /// Where it is stored, in `shard`.
    fn place(&self, shard: usize) -> ColdKey {
        ColdKey::new(shard as u16, self.order, &self.entry.key)
    }
}

/// Where [`ColdTier::settle`] put a changed cold key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Still cold, rewritten.
    Cold,
    /// Removed: nothing is left of it.
    Gone,
    /// Out of the flash tier: it now has a TTL or only a removal's context, which live in RAM.
    Ram,
}

/// True if a key with `state` may live in the flash tier: it has a value and no TTL (expiry
/// stays a RAM affair, and so do the contexts of removed keys).
pub fn may_be_cold(state: &KeyState) -> bool {
    state.is_live() && state.expires_at().is_none()
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
    /// Cold keys rewritten by garbage collection where they lie.
    pub collected: u64,
    /// Sweeps of every shard's cold keys completed.
    pub collect_cycles: u64,
}

/// The cold half of the keyspace.
pub struct ColdTier {
    store: Arc<FlashStore>,
    /// Where promoted states are logged, with durability on.
    durable: Option<Arc<Durable>>,
    spilled: AtomicU64,
    promoted: AtomicU64,
    reads: AtomicU64,
    collected: AtomicU64,
    collect_cycles: AtomicU64,
    admission: Admission,
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

/// Where `key` of `shard`, hashed to `hash`, is stored cold.
fn place(shard: usize, hash: u64, key: &[u8]) -> ColdKey {
    ColdKey::new(shard as u16, order_of(hash), key)
}

/// Set in a stored position when the use stamps follow it (see the module doc).
const WITH_USE: u64 = 1 << 63;

/// The stored value of `entry`, spilled at log `position`.
fn encode(position: u64, entry: &Entry) -> Vec<u8> {
    let mut bytes = (position | WITH_USE).to_be_bytes().to_vec();
    bytes.extend(entry.touched.to_be_bytes());
    bytes.push(entry.freq);
    rmp_serde::encode::write(&mut bytes, &entry.state).expect("key states encode");
    bytes
}

/// A stored value, split.
struct Stored<'a> {
    /// The log position of the spill.
    position: u64,
    /// The entry's LRU stamp.
    touched: u32,
    /// The entry's LFU count.
    freq: u8,
    /// The encoded state.
    state: &'a [u8],
}

/// Splits a stored value (see the module doc).
fn split(bytes: &[u8]) -> Result<Stored<'_>, String> {
    let (position, rest) = bytes.split_first_chunk::<8>().ok_or("a cold value shorter than its position")?;
    let position = u64::from_be_bytes(*position);
    if position & WITH_USE == 0 {
        return Ok(Stored { position, touched: 0, freq: lfu::INITIAL, state: rest });
    }
    let (touched, rest) = rest.split_first_chunk::<4>().ok_or("a cold value shorter than its use stamps")?;
    let (freq, state) = rest.split_first().ok_or("a cold value shorter than its use stamps")?;
    Ok(Stored { position: position & !WITH_USE, touched: u32::from_be_bytes(*touched), freq: *freq, state })
}

/// The entry of `key` stored as `bytes`.
fn decode(key: &[u8], bytes: &[u8]) -> Result<Entry, String> {
    let stored = split(bytes)?;
    let state = rmp_serde::from_slice(stored.state).map_err(|e| e.to_string())?;
    Ok(Entry { key: key.into(), state, touched: stored.touched, freq: stored.freq })
}

/// The encoded state of a stored value (what a change in place compares).
fn stored_state(bytes: &[u8]) -> &[u8] {
    split(bytes).map_or(&[], |stored| stored.state)
}

impl ColdTier {
    /// The cold tier stored in `store`, logging promotions to `durable` if given.
    pub fn new(store: Arc<FlashStore>, durable: Option<Arc<Durable>>) -> ColdTier {
        ColdTier {
            store,
            durable,
            spilled: AtomicU64::new(0),
            promoted: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            collected: AtomicU64::new(0),
            collect_cycles: AtomicU64::new(0),
            admission: Admission::default(),
            failure: Mutex::new(None),
        }
    }

    /// Why the flash tier stopped working, if it did: writes are refused from then on.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    fn fail(&self, what: &str, error: impl std::fmt::Display) {
        tracing::error!("flash tier: {what}: {error}; writes are refused until the node is restarted");
        self.failure.lock().get_or_insert_with(|| format!("{what}: {error}"));
    }

    /// Reads `key`'s cold value (a flash read, counted) with its decoded entry, or None if it
    /// is not cold.
    fn fetch_stored(&self, key: &[u8], place: &ColdKey) -> Option<(Vec<u8>, Entry)> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let bytes = match self.store.cold_get(place) {
            Ok(found) => found?,
            Err(e) => {
                self.fail("reading a cold key", e);
                return None;
            }
        };
        match decode(key, &bytes) {
            Ok(entry) => Some((bytes, entry)),
            Err(e) => {
                self.fail("decoding a cold key", e);
                None
            }
        }
    }

    /// Reads `key`'s cold entry (a flash read, counted), or None if it is not cold.
    fn fetch(&self, key: &[u8], place: &ColdKey) -> Option<Entry> {
        self.fetch_stored(key, place).map(|(_, entry)| entry)
    }

    /// Takes `key` out of the flash tier if it is cold there (the caller puts it in RAM).
    pub fn take(&self, shard: usize, hash: u64, key: &[u8]) -> Option<Entry> {
        let at = place(shard, hash, key);
        let entry = self.fetch(key, &at)?;
        if let Err(e) = self.store.cold_write([], [at]) {
            self.fail("removing a promoted key", e);
        }
        self.promoted.fetch_add(1, Ordering::Relaxed);
        Some(entry)
    }

    /// A read-only command's look at `key`: None if it is not cold; otherwise its entry, left
    /// in the flash tier (`Read::Cold`) unless the admission filter says to promote it
    /// (`Read::Promote`, see [`Admission`]). A key read once in a long while (most of a skewed
    /// workload's tail) so costs one RocksDB read and no write, and only keys read again take
    /// RAM from others.
    pub fn read(&self, shard: usize, hash: u64, key: &[u8]) -> Read {
        if self.admission.on_cold_read(hash) {
            return Read::Promote;
        }
        match self.fetch(key, &place(shard, hash, key)) {
            Some(entry) => Read::Cold(entry),
            None => Read::Absent,
        }
    }

    /// `key` read out of the flash tier to be changed where it lies, or None if it is not
    /// cold. It stays cold until [`ColdTier::settle`] says otherwise.
    pub fn entry(&self, shard: usize, hash: u64, key: &[u8]) -> Option<ColdEntry> {
        let (stored, entry) = self.fetch_stored(key, &place(shard, hash, key))?;
        Some(ColdEntry { entry, stored: stored.into_boxed_slice(), order: order_of(hash) })
    }

    /// Stores cold keys read by [`ColdTier::entry`] or [`ColdTier::part`] and since changed,
    /// in one batch: a key that [`may_be_cold`] is rewritten (stamped with the durable log
    /// position: the caller holds the shard, so the state holds every op logged before it),
    /// any other is removed from the flash tier. Returns the keys the change did change, with
    /// where each went; a `Ram` key's state is the caller's to put in RAM (it is counted as
    /// promoted). On a flash error nothing was written and nothing is returned.
    pub fn settle(&self, shard: usize, changed: Vec<ColdEntry>) -> Result<Vec<(ColdEntry, Settled)>, FlashError> {
        let position = self.durable.as_ref().map_or(0, |d| d.next_position());
        let mut puts = Vec::new();
        let mut settled = Vec::new();
        for cold in changed {
            let fate = if may_be_cold(&cold.entry.state) {
                let bytes = encode(position, &cold.entry);
                if stored_state(&bytes) == stored_state(&cold.stored) {
                    continue;
                }
                puts.push((cold.place(shard), bytes));
                Settled::Cold
            } else if cold.entry.state.liveness() == Liveness::Gone {
                Settled::Gone
            } else {
                Settled::Ram
            };
            settled.push((cold, fate));
        }
        let deletes = settled.iter().filter(|(_, fate)| *fate != Settled::Cold).map(|(cold, _)| cold.place(shard));
        self.store.cold_write(puts.iter().map(|(place, bytes)| (place.clone(), &bytes[..])), deletes).inspect_err(|e| self.fail("changing cold keys", e))?;
        let promoted = settled.iter().filter(|(_, fate)| *fate == Settled::Ram).count();
        self.promoted.fetch_add(promoted as u64, Ordering::Relaxed);
        Ok(settled)
    }

    /// Logs the state of a key just promoted (see `durable::record`).
    pub fn log_promoted(&self, key: &[u8], state: &KeyState) {
        if let Some(durable) = &self.durable {
            durable.append_state(key, state);
        }
    }

    /// The durable log position at which `key` was spilled, if it is cold: its cold state
    /// holds every op logged before it (recovery).
    pub fn spilled_at(&self, shard: usize, hash: u64, key: &[u8]) -> Result<Option<u64>, FlashError> {
        let bytes = self.store.cold_get(&place(shard, hash, key))?;
        Ok(bytes.and_then(|b| split(&b).map(|stored| stored.position).map_err(|e| self.fail("decoding a cold key", e)).ok()))
    }

    /// A copy of `key`'s cold entry, if it is cold, read without counting or marking it (a
    /// look that must not change what it looks at).
    pub fn peek(&self, shard: usize, hash: u64, key: &[u8]) -> Option<Entry> {
        let bytes = self.store.cold_get(&place(shard, hash, key)).map_err(|e| self.fail("reading a cold key", e)).ok()??;
        decode(key, &bytes).map_err(|e| self.fail("decoding a cold key", e)).ok()
    }

    /// Writes spilled entries `(hash, entry)` of `shard` in one batch, stamped with the
    /// durable log `position`. On error nothing was written and the caller keeps them in RAM.
    pub fn spill<'a>(&self, shard: usize, position: u64, entries: impl IntoIterator<Item = (u64, &'a Entry)>) -> Result<(), FlashError> {
        let entries: Vec<(u64, &Entry)> = entries.into_iter().collect();
        let encoded: Vec<(ColdKey, Vec<u8>)> = entries.iter().map(|&(hash, entry)| (place(shard, hash, &entry.key), encode(position, entry))).collect();
        self.store.cold_write(encoded.iter().map(|(k, v)| (k.clone(), &v[..])), []).inspect_err(|e| self.fail("spilling keys", e))?;
        self.admission.spilled(entries.iter().map(|&(_, entry)| entry));
        self.spilled.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The cold keys of `shard` in SCAN part `part` of `2^level` (level 0: all of them), read
    /// out for a listing or to be changed where they lie.
    pub fn part(&self, shard: usize, level: u32, part: u64) -> Vec<ColdEntry> {
        let mut entries = Vec::new();
        for item in self.store.cold_range(shard as u16, orders_of_part(level, part)) {
            match item.map_err(|e| e.to_string()).and_then(|(order, key, stored)| Ok(ColdEntry { entry: decode(&key, &stored)?, stored, order })) {
                Ok(cold) => entries.push(cold),
                Err(e) => {
                    self.fail("listing cold keys", e);
                    break;
                }
            }
        }
        entries
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

    /// Spill, promotion, read and garbage-collection counts.
    pub fn stats(&self) -> ColdStats {
        ColdStats {
            spilled: self.spilled.load(Ordering::Relaxed),
            promoted: self.promoted.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            collected: self.collected.load(Ordering::Relaxed),
            collect_cycles: self.collect_cycles.load(Ordering::Relaxed),
        }
    }

    /// Tells the admission filter how many keys RAM holds (see [`Admission::set_ram_keys`]).
    pub fn set_ram_keys(&self, keys: usize) {
        self.admission.set_ram_keys(keys);
    }

    /// Counts a completed sweep of every shard's cold keys.
    pub fn count_collect_cycle(&self) {
        self.collect_cycles.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts cold keys that garbage collection rewrote.
    pub fn count_collected(&self, keys: usize) {
        self.collected.fetch_add(keys as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored value keeps the position and the use stamps; one written before the stamps
    /// were kept reads as used at time 0 with a new key's count.
    #[test]
    fn stored_values_keep_the_use_stamps_and_old_ones_still_read() {
        let entry = Entry { key: b"k".as_slice().into(), state: KeyState::default(), touched: 123_456, freq: 77 };
        let bytes = encode(42, &entry);
        let stored = split(&bytes).unwrap();
        assert_eq!((stored.position, stored.touched, stored.freq), (42, 123_456, 77));
        let back = decode(b"k", &bytes).unwrap();
        assert_eq!((back.touched, back.freq), (123_456, 77));

        let mut old = 42u64.to_be_bytes().to_vec();
        rmp_serde::encode::write(&mut old, &entry.state).unwrap();
        let stored = split(&old).unwrap();
        assert_eq!((stored.position, stored.touched, stored.freq), (42, 0, lfu::INITIAL));
        assert_eq!(stored.state, stored_state(&bytes));
        assert!(split(&bytes[..10]).is_err(), "a value cut inside its stamps is refused");
    }

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
