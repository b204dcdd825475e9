//! SCAN cursors over the sharded keyspace.
//!
//! A cursor names a shard and a part of it. A shard is cut into `2^level` parts by bits of the
//! key hash, with the level chosen on the first visit so a part holds about COUNT keys, and the
//! level travels in the cursor so every part of that shard is cut the same way. Each key has
//! exactly one part, so a key present for the whole scan is returned exactly once, however the
//! tables grow or shrink in between (Redis promises at least once).
//!
//! Layout of the 64-bit cursor: bits 0-9 shard, 10-15 level, 16-47 part. Cursor 0 starts at
//! shard 0, and a returned 0 means the scan is complete.

use super::{SHARDS, SHARD_BITS};

const MAX_LEVEL: u32 = 20;
/// Hash bits used to pick a key's part (independent of the table's and the shard's bits).
/// [`super::Locked::visit`] walks a part's keys.
pub const PART_SHIFT: u32 = 24;

/// A decoded SCAN cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanCursor {
    /// Shard to visit.
    pub shard: usize,
    /// log2 of the number of parts the shard is cut into; 0 on the first visit.
    pub level: u32,
    /// Part of the shard to visit.
    pub part: u64,
}

impl ScanCursor {
    /// Decodes a client's cursor; `None` if no cursor Meridian returned has this shape.
    pub fn decode(raw: u64) -> Option<ScanCursor> {
        let shard = (raw & (SHARDS as u64 - 1)) as usize;
        let level = ((raw >> SHARD_BITS) & 0x3f) as u32;
        let part = raw >> 16;
        (level <= MAX_LEVEL && part < (1 << level)).then_some(ScanCursor { shard, level, part })
    }

    /// Encodes the cursor for the client.
    pub fn encode(self) -> u64 {
        self.shard as u64 | (self.level as u64) << SHARD_BITS | self.part << 16
    }

    /// The cursor after this one, or `None` when the scan is complete.
    pub fn next(self) -> Option<ScanCursor> {
        if self.part + 1 < (1 << self.level) {
            return Some(ScanCursor { part: self.part + 1, ..self });
        }
        (self.shard + 1 < SHARDS).then_some(ScanCursor { shard: self.shard + 1, level: 0, part: 0 })
    }
}

impl ScanCursor {
    /// The cursor with its level chosen, on a shard's first visit, so a part of a shard of
    /// `len` keys holds about `count` of them.
    pub fn leveled(mut self, len: usize, count: usize) -> ScanCursor {
        if self.level == 0 && self.part == 0 {
            let parts = len.div_ceil(count.max(1)).max(1);
            self.level = parts.next_power_of_two().trailing_zeros().min(MAX_LEVEL);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_foreign_shapes() {
        let c = ScanCursor { shard: 1023, level: 3, part: 7 };
        assert_eq!(ScanCursor::decode(c.encode()), Some(c));
        assert_eq!(ScanCursor::decode(0), Some(ScanCursor { shard: 0, level: 0, part: 0 }));
        assert_eq!(ScanCursor::decode(1 << 16), None, "part 1 of a one-part shard");
        let last = ScanCursor { shard: SHARDS - 1, level: 0, part: 0 };
        assert_eq!(last.next(), None);
        let first = ScanCursor::decode(0).unwrap();
        assert_eq!(first.leveled(1000, 10).level, 7, "128 parts of about 8 keys");
        assert_eq!(ScanCursor { shard: 3, level: 2, part: 1 }.leveled(1000, 10).level, 2, "a level in the cursor stays");
    }
}
