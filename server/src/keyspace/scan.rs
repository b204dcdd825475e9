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

use super::{Entry, Shard, SHARDS, SHARD_BITS};

const MAX_LEVEL: u32 = 20;
/// Hash bits used to pick a key's part (independent of the table's and the shard's bits).
const PART_SHIFT: u32 = 24;

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
    fn next(self) -> Option<ScanCursor> {
        if self.part + 1 < (1 << self.level) {
            return Some(ScanCursor { part: self.part + 1, ..self });
        }
        (self.shard + 1 < SHARDS).then_some(ScanCursor { shard: self.shard + 1, level: 0, part: 0 })
    }
}

/// Visits the part of `shard` that `cursor` names, calling `visit` for each entry in it, and
/// returns the next cursor (`None`: done). On a shard's first visit the level is chosen so a
/// part holds about `count` entries.
pub fn scan_shard(
    shard: &Shard,
    mut cursor: ScanCursor,
    count: usize,
    hash: impl Fn(&[u8]) -> u64,
    mut visit: impl FnMut(&Entry),
) -> Option<ScanCursor> {
    if cursor.level == 0 && cursor.part == 0 {
        let parts = shard.len().div_ceil(count.max(1)).max(1);
        cursor.level = parts.next_power_of_two().trailing_zeros().min(MAX_LEVEL);
    }
    let mask = (1u64 << cursor.level) - 1;
    for entry in shard.entries() {
        if (hash(&entry.key) >> PART_SHIFT) & mask == cursor.part {
            visit(entry);
        }
    }
    cursor.next()
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
    }
}
