//! The options SCAN, SSCAN and HSCAN share, and the cursor over a collection's members.
//!
//! A member cursor cuts a collection into `2^level` parts by bits of each member's hash (as the
//! keyspace cursor cuts a shard), so a member present for the whole scan is returned exactly
//! once however the collection changes in between. Small collections come back whole with
//! cursor 0, as Redis answers for its compact encodings.

use super::{int_arg, is, CmdError, SYNTAX};
use crate::glob::glob_match;
use crate::keyspace::KeyHasher;

/// Collections up to this many members are returned in one reply.
const WHOLE_UP_TO: usize = 128;
/// At most this many parts (the reply size grows with the collection beyond that).
const MAX_LEVEL: u32 = 10;
/// Hash bits used for a member's part.
const PART_SHIFT: u32 = 20;

/// The members one scan step returns, with their states.
pub type Found<'m, V> = Vec<(&'m [u8], V)>;

/// Parsed `cursor [MATCH pattern] [COUNT count] [TYPE type] [NOVALUES]`.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions<'a> {
    /// The client's cursor.
    pub cursor: u64,
    /// MATCH pattern.
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (default 10).
    pub count: usize,
    /// TYPE filter (SCAN only).
    pub type_filter: Option<&'a [u8]>,
    /// NOVALUES (HSCAN only).
    pub novalues: bool,
}

/// Which optional words a scan command accepts.
#[derive(Clone, Copy)]
pub enum ScanKind {
    /// SCAN: TYPE.
    Keys,
    /// SSCAN: neither.
    Set,
    /// HSCAN: NOVALUES.
    Hash,
}

impl<'a> ScanOptions<'a> {
    /// Parses `args`, which start at the cursor.
    pub fn parse(args: &[&'a [u8]], kind: ScanKind) -> Result<ScanOptions<'a>, CmdError> {
        let cursor = std::str::from_utf8(args[0]).ok().and_then(|s| s.parse().ok()).ok_or("ERR invalid cursor")?;
        let mut options = ScanOptions { cursor, pattern: None, count: 10, type_filter: None, novalues: false };
        let mut i = 1;
        while i < args.len() {
            if matches!(kind, ScanKind::Hash) && is(args[i], "novalues") {
                options.novalues = true;
                i += 1;
                continue;
            }
            let value = *args.get(i + 1).ok_or(CmdError::from(SYNTAX))?;
            match args[i] {
                a if is(a, "match") => options.pattern = Some(value),
                a if is(a, "count") => {
                    options.count = usize::try_from(int_arg(value)?).ok().filter(|&c| c >= 1).ok_or(CmdError::from(SYNTAX))?;
                }
                a if is(a, "type") && matches!(kind, ScanKind::Keys) => options.type_filter = Some(value),
                _ => return Err(SYNTAX.into()),
            }
            i += 2;
        }
        Ok(options)
    }

    /// True if `name` passes the MATCH pattern.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, name, false))
    }

    /// One step of a member scan over a collection of `len` live members: the members of the
    /// part the cursor names that pass MATCH, and the next cursor (0: done). A cursor this
    /// scan cannot have returned is an error.
    pub fn scan_members<'m, V>(&self, len: usize, members: impl Iterator<Item = (&'m [u8], V)>, hasher: &KeyHasher) -> Result<(u64, Found<'m, V>), CmdError> {
        let (mut level, part) = ((self.cursor & 0x1f) as u32, self.cursor >> 5);
        if self.cursor == 0 {
            let parts = if len <= WHOLE_UP_TO { 1 } else { len.div_ceil(self.count.max(1)) };
            level = parts.next_power_of_two().trailing_zeros().min(MAX_LEVEL);
        } else if level == 0 || level > MAX_LEVEL || part >= 1 << level {
            return Err("ERR invalid cursor".into());
        }
        let mask = (1u64 << level) - 1;
        let found = members.filter(|(m, _)| (hasher.hash(m) >> PART_SHIFT) & mask == part && self.matches(m)).collect();
        let next = if part + 1 < 1 << level { (part + 1) << 5 | u64::from(level) } else { 0 };
        Ok((next, found))
    }
}
