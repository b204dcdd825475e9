//! Which cold reads promote their key into RAM: the admission filter of the flash tier.
//!
//! A promotion is a RocksDB read and delete now and, since RAM is full, a spill of another key
//! soon after. It pays only if the promoted key is read again before it is itself the least
//! recently used. Two rules decide, both free of I/O:
//!
//! - **A second read lately promotes.** Keys read cold are marked in a table of bits (1 MiB);
//!   a read that finds its key's bit set promotes it. The table is wiped once as many keys have
//!   been marked as RAM holds: a key read twice in that span is read at least as often as
//!   the least recently used RAM keys, which are the ones it displaces; a key read twice over a
//!   longer span (most of a skewed workload's tail) would be spilled again before its next
//!   read. (With a fixed span of a million marks, a zipfian load over ten times the RAM
//!   promoted twice as many keys for the same number of cold reads: see docs/flash-tier.md.)
//! - **A first read promotes while the keys spilled are ones nothing has used.** After a bulk
//!   load (a restore, a migration, a restart), RAM is full of keys no command has read or
//!   written since they were created; swapping one of those for a key just read can only help,
//!   and waiting for each key's second read would keep the cache cold for minutes. Spills
//!   report how many of their victims had an LFU count no higher than a new key's (never used,
//!   or used so seldom that the count decayed back); while most had, a first read promotes.

use super::{lfu, Entry};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bits in the table of keys read lately: 8 million, 1 MiB.
const BITS: u32 = 23;

/// The largest span, in marks: an eighth of the bits, so a key whose slot another key marked
/// (a promotion on a first read) stays rarer than one in eight.
const MAX_SPAN: u64 = 1 << (BITS - 3);

/// The smallest span, in marks, however few keys RAM holds.
const MIN_SPAN: u64 = 4096;

/// Parts per thousand of recent victims that had never been used, above which a first read
/// promotes.
const UNUSED_MAJORITY: u32 = 500;

/// The admission filter (see the module doc).
pub struct Admission {
    bits: Box<[AtomicU64]>,
    marked: AtomicU64,
    /// Marks between wipes: the keys RAM holds, within [`MIN_SPAN`, `MAX_SPAN`] (the least
    /// until the spilling thread first counts them).
    span: AtomicU64,
    /// A moving average of the share of spilled keys that had never been used, in parts per
    /// thousand; a thousand before the first spill (RAM has room: nothing is displaced).
    unused_victims: AtomicU32,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            bits: (0..1usize << (BITS - 6)).map(|_| AtomicU64::new(0)).collect(),
            marked: AtomicU64::new(0),
            span: AtomicU64::new(MIN_SPAN),
            unused_victims: AtomicU32::new(1000),
        }
    }
}

impl Admission {
    /// A cold read of the key hashed to `hash`: true if it should promote the key.
    pub fn on_cold_read(&self, hash: u64) -> bool {
        let read_lately = self.mark(hash);
        read_lately || self.unused_victims.load(Ordering::Relaxed) > UNUSED_MAJORITY
    }

    /// Marks `hash` as read; true if it already was. Wipes the table once the span is marked.
    fn mark(&self, hash: u64) -> bool {
        let slot = (hash >> (64 - BITS)) as usize;
        let bit = 1u64 << (slot % 64);
        let before = self.bits[slot / 64].fetch_or(bit, Ordering::Relaxed);
        if before & bit != 0 {
            return true;
        }
        if self.marked.fetch_add(1, Ordering::Relaxed) + 1 >= self.span.load(Ordering::Relaxed) {
            self.marked.store(0, Ordering::Relaxed);
            self.bits.iter().for_each(|word| word.store(0, Ordering::Relaxed));
        }
        false
    }

    /// Sets the span between wipes to the number of keys RAM holds (see the module doc).
    pub fn set_ram_keys(&self, keys: usize) {
        self.span.store((keys as u64).clamp(MIN_SPAN, MAX_SPAN), Ordering::Relaxed);
    }

    /// Takes note of the entries of one spill: how many of them were used no more than a new
    /// key (a use takes the LFU count past the initial one unless idle minutes had decayed it).
    pub fn spilled<'a>(&self, victims: impl IntoIterator<Item = &'a Entry>) {
        let (mut unused, mut all) = (0u64, 0u64);
        for entry in victims {
            all += 1;
            unused += u64::from(entry.freq <= lfu::INITIAL);
        }
        if let Some(share) = (unused * 1000).checked_div(all) {
            let average = self.unused_victims.load(Ordering::Relaxed);
            // Each spill weighs an eighth: spills are one shard's victims, a few keys each.
            self.unused_victims.store((average * 7 + share as u32) / 8, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::KeyState;

    fn entry(freq: u8) -> Entry {
        Entry { key: b"k".as_slice().into(), state: KeyState::default(), touched: 0, freq }
    }

    /// Spills enough keys that had been used to outweigh earlier spills.
    fn spill_used_keys(admission: &Admission) {
        for _ in 0..16 {
            admission.spilled(&[entry(lfu::INITIAL + 1), entry(40)]);
        }
    }

    /// Hashes whose slots differ (the slot is the top bits).
    fn hash(i: u64) -> u64 {
        i << (64 - BITS)
    }

    #[test]
    fn first_reads_promote_until_used_keys_are_spilled() {
        let admission = Admission::default();
        assert!(admission.on_cold_read(hash(1)), "nothing spilled yet: RAM has room");
        admission.spilled(&[entry(lfu::INITIAL), entry(lfu::INITIAL)]);
        assert!(admission.on_cold_read(hash(2)), "the victims were keys nothing had used");
        spill_used_keys(&admission);
        assert!(!admission.on_cold_read(hash(3)), "the victims had been used: a first read no longer promotes");
        assert!(admission.on_cold_read(hash(3)), "a second read does");
    }

    #[test]
    fn the_span_of_a_second_read_is_as_many_marks_as_ram_holds_keys() {
        let admission = Admission::default();
        spill_used_keys(&admission);
        admission.set_ram_keys(10);
        assert!(!admission.on_cold_read(hash(0)));
        for i in 1..MIN_SPAN - 1 {
            assert!(!admission.on_cold_read(hash(i)));
        }
        assert!(admission.on_cold_read(hash(0)), "read twice within the span");
        assert!(!admission.on_cold_read(hash(MIN_SPAN)), "the span's last mark wipes the table");
        assert!(!admission.on_cold_read(hash(0)), "forgotten after the wipe");
        admission.set_ram_keys(usize::MAX);
        assert_eq!(admission.span.load(Ordering::Relaxed), MAX_SPAN);
    }
}
