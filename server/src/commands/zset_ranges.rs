//! Sorted-set range commands: by rank, by score and by member bytes (lex), forwards and
//! reversed, read, counted, stored or removed. Every one parses its range into a
//! [`RangeQuery`] and selects with [`select`], so ZRANGE's many spellings share one path.

use super::values::{replace, Scored, Value};
use super::zsets::{remove_members, reply_scored, with_zset};
use super::{flags, int_arg, is, CmdError, CmdResult, Ctx, KeySpec, Spec, ONE_KEY, SYNTAX};
use meridian_crdt::SortedMembers;
use std::cmp::Ordering;

const R: u32 = flags::READONLY;
const REMOVE: u32 = flags::WRITE;
const TWO_KEYS: KeySpec = KeySpec { first: 1, last: 2, step: 1 };

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "zrange",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a range of indexes, scores or member bytes.",
        run: zrange,
    },
    Spec {
        name: "zrangestore",
        arity: -5,
        flags: flags::WRITE | flags::DENYOOM,
        keys: TWO_KEYS,
        group: "sorted_set",
        summary: "Stores a range of members from sorted set in a key.",
        run: zrangestore,
    },
    Spec {
        name: "zrevrange",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a range of indexes in reverse order.",
        run: zrevrange,
    },
    Spec {
        name: "zrangebyscore",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a range of scores.",
        run: zrangebyscore,
    },
    Spec {
        name: "zrevrangebyscore",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a range of scores in reverse order.",
        run: zrevrangebyscore,
    },
    Spec {
        name: "zrangebylex",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a lexicographical range.",
        run: zrangebylex,
    },
    Spec {
        name: "zrevrangebylex",
        arity: -4,
        flags: R,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns members in a sorted set within a lexicographical range in reverse order.",
        run: zrevrangebylex,
    },
    Spec {
        name: "zcount",
        arity: 4,
        flags: R | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the count of members in a sorted set that have scores within a range.",
        run: zcount,
    },
    Spec {
        name: "zlexcount",
        arity: 4,
        flags: R | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the number of members in a sorted set within a lexicographical range.",
        run: zlexcount,
    },
    Spec {
        name: "zremrangebyrank",
        arity: 4,
        flags: REMOVE,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
        run: zremrangebyrank,
    },
    Spec {
        name: "zremrangebyscore",
        arity: 4,
        flags: REMOVE,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
        run: zremrangebyscore,
    },
    Spec {
        name: "zremrangebylex",
        arity: 4,
        flags: REMOVE,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
        run: zremrangebylex,
    },
];

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score interval; `(` before a bound makes it exclusive.
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: f64,
    min_exclusive: bool,
    max: f64,
    max_exclusive: bool,
}

/// One bound as `zslParseRange` reads it: `strtod` after an optional `(`, NaN refused.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let text = std::str::from_utf8(text).ok()?.trim_start();
    let value = if text.is_empty() { 0.0 } else { meridian_crdt::strtod(text)? };
    (!value.is_nan()).then_some((value, exclusive))
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let ((min, min_exclusive), (max, max_exclusive)) = score_bound(min).zip(score_bound(max)).ok_or(CmdError::from(NOT_FLOAT_RANGE))?;
        Ok(ScoreRange { min, min_exclusive, max, max_exclusive })
    }

    /// The ranks of `z`'s members in the range.
    fn ranks_in(&self, z: &SortedMembers) -> std::ops::Range<usize> {
        z.score_ranks((self.min, self.min_exclusive), (self.max, self.max_exclusive))
    }
}

/// A bound of a lex range: `-` and `+` (below and above everything), `[x` and `(x`.
#[derive(Clone, Copy, Debug)]
enum LexBound<'a> {
    Lowest,
    Highest,
    Inclusive(&'a [u8]),
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    fn parse(arg: &'a [u8]) -> Option<LexBound<'a>> {
        match arg {
            b"-" => Some(LexBound::Lowest),
            b"+" => Some(LexBound::Highest),
            [b'[', rest @ ..] => Some(LexBound::Inclusive(rest)),
            [b'(', rest @ ..] => Some(LexBound::Exclusive(rest)),
            _ => None,
        }
    }

    /// How `member` compares with the bound's value.
    fn compare(self, member: &[u8]) -> Ordering {
        match self {
            LexBound::Lowest => Ordering::Greater,
            LexBound::Highest => Ordering::Less,
            LexBound::Inclusive(b) | LexBound::Exclusive(b) => member.cmp(b),
        }
    }

    fn is_exclusive(self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }
}

/// A lex interval.
#[derive(Clone, Copy, Debug)]
struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
        let (min, max) = LexBound::parse(min).zip(LexBound::parse(max)).ok_or(CmdError::from(NOT_LEX_RANGE))?;
        Ok(LexRange { min, max })
    }

    fn is_empty(&self) -> bool {
        let order = match (self.min, self.max) {
            (LexBound::Lowest, _) | (_, LexBound::Highest) => Ordering::Less,
            (LexBound::Highest, _) | (_, LexBound::Lowest) => Ordering::Greater,
            (LexBound::Inclusive(a) | LexBound::Exclusive(a), LexBound::Inclusive(b) | LexBound::Exclusive(b)) => a.cmp(b),
        };
        order == Ordering::Greater || (order == Ordering::Equal && (self.min.is_exclusive() || self.max.is_exclusive()))
    }

    fn above_min(&self, member: &[u8]) -> bool {
        match self.min.compare(member) {
            Ordering::Greater => true,
            Ordering::Equal => !self.min.is_exclusive(),
            Ordering::Less => false,
        }
    }

    fn below_max(&self, member: &[u8]) -> bool {
        match self.max.compare(member) {
            Ordering::Less => true,
            Ordering::Equal => !self.max.is_exclusive(),
            Ordering::Greater => false,
        }
    }
}

/// What a range selects.
#[derive(Clone, Copy, Debug)]
enum RangeBy<'a> {
    /// Indexes, negative from the end.
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// Which kind of range a command reads, before its options are parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
#[derive(Clone, Copy, Debug)]
struct RangeQuery<'a> {
    by: RangeBy<'a>,
    reverse: bool,
    /// LIMIT offset count (count < 0: all).
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

/// How a command spells its range: `by` and `reverse` are fixed by the older commands and
/// chosen by options (BYSCORE, BYLEX, REV) in ZRANGE and ZRANGESTORE.
#[derive(Clone, Copy)]
struct Form {
    by: Option<By>,
    reverse: Option<bool>,
    store: bool,
}

impl<'a> RangeQuery<'a> {
    /// Parses `first second [options...]` as Redis's `zrangeGenericCommand` does, in its order
    /// of checks.
    fn parse(first: &'a [u8], second: &'a [u8], options: &[&'a [u8]], form: Form) -> Result<RangeQuery<'a>, CmdError> {
        let (mut by, mut reverse, mut limit, mut with_scores) = (form.by, form.reverse, None, false);
        let mut i = 0;
        while i < options.len() {
            let word = options[i];
            let left = options.len() - i - 1;
            if !form.store && is(word, "withscores") {
                with_scores = true;
            } else if is(word, "limit") && left >= 2 {
                limit = Some((int_arg(options[i + 1])?, int_arg(options[i + 2])?));
                i += 2;
            } else if reverse.is_none() && is(word, "rev") {
                reverse = Some(true);
            } else if by.is_none() && is(word, "bylex") {
                by = Some(By::Lex);
            } else if by.is_none() && is(word, "byscore") {
                by = Some(By::Score);
            } else {
                return Err(SYNTAX.into());
            }
            i += 1;
        }
        let (by, reverse) = (by.unwrap_or(By::Rank), reverse.unwrap_or(false));
        if limit.is_some() && by == By::Rank {
            return Err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX".into());
        }
        if with_scores && by == By::Lex {
            return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX".into());
        }
        // A reversed score or lex range is given as max, min.
        let (min, max) = if reverse && by != By::Rank { (second, first) } else { (first, second) };
        let by = match by {
            By::Rank => RangeBy::Rank(int_arg(min)?, int_arg(max)?),
            By::Score => RangeBy::Score(ScoreRange::parse(min, max)?),
            By::Lex => RangeBy::Lex(LexRange::parse(min, max)?),
        };
        Ok(RangeQuery { by, reverse, limit, with_scores })
    }
}

/// The indexes `start..=end` (negative from the end) clamped to a collection of `len`, as
/// Redis clamps them; `None` if the range is empty.
pub fn clamp_ranks(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// The ranks of a lex range, found by bisection where the scores allow it (see
/// [`SortedMembers::lex_ranks`]); None where only a walk can answer.
fn lex_ranks(z: &SortedMembers, range: LexRange) -> Option<std::ops::Range<usize>> {
    if range.is_empty() {
        return Some(0..0);
    }
    z.lex_ranks(|m| range.above_min(m), |m| range.below_max(m))
}

/// The members in a lex range, in order or reversed. Lex ranges assume equal scores, and
/// then the range is found by bisection (O(log n), as Redis's skiplist finds it); with mixed
/// scores this walks the score order exactly as Redis does (nothing if the last member is
/// below the range or the first above it; otherwise from the first member past one bound for
/// as long as the other holds), so both answer alike.
fn lex_selection<'z>(z: &'z SortedMembers, range: LexRange<'z>, reverse: bool) -> Box<dyn Iterator<Item = (f64, &'z [u8])> + 'z> {
    if let Some(ranks) = lex_ranks(z, range) {
        return if reverse { Box::new(z.by_rank(ranks).rev()) } else { Box::new(z.by_rank(ranks)) };
    }
    let (first, last) = (z.ordered().next(), z.ordered().next_back());
    let reachable = first.zip(last).is_some_and(|((_, first), (_, last))| range.above_min(last) && range.below_max(first));
    if !reachable {
        return Box::new(std::iter::empty());
    }
    if reverse {
        Box::new(z.ordered().rev().skip_while(move |(_, m)| !range.below_max(m)).take_while(move |(_, m)| range.above_min(m)))
    } else {
        Box::new(z.ordered().skip_while(move |(_, m)| !range.above_min(m)).take_while(move |(_, m)| range.below_max(m)))
    }
}

/// The members a query selects, in reply order.
fn select(z: &SortedMembers, query: &RangeQuery) -> Scored {
    let owned = |(s, m): (f64, &[u8])| (m.to_vec(), s);
    let chosen: Box<dyn Iterator<Item = (f64, &[u8])>> = match (query.by, query.reverse) {
        (RangeBy::Rank(start, end), reverse) => {
            let Some((start, end)) = clamp_ranks(start, end, z.members().len()) else { return Vec::new() };
            let len = z.members().len();
            if reverse {
                Box::new(z.by_rank(len - 1 - end..len - start).rev())
            } else {
                Box::new(z.by_rank(start..end + 1))
            }
        }
        (RangeBy::Score(range), false) => Box::new(z.by_rank(range.ranks_in(z))),
        (RangeBy::Score(range), true) => Box::new(z.by_rank(range.ranks_in(z)).rev()),
        (RangeBy::Lex(range), reverse) => lex_selection(z, range, reverse),
    };
    match query.limit {
        // A negative offset skips everything, as in Redis.
        Some((offset, _)) if offset < 0 => Vec::new(),
        Some((offset, count)) => {
            let chosen = chosen.skip(offset as usize);
            if count < 0 {
                chosen.map(owned).collect()
            } else {
                chosen.take(count as usize).map(owned).collect()
            }
        }
        None => chosen.map(owned).collect(),
    }
}

/// Runs a range read of `args[1]` with the range in `args[2..4]` and options after it.
fn range_reply(ctx: &mut Ctx, args: &[&[u8]], form: Form) -> CmdResult {
    let query = RangeQuery::parse(args[2], args[3], &args[4..], form)?;
    let found = with_zset(ctx, args[1], |zset| zset.map(|z| select(z, &query)).unwrap_or_default())?;
    reply_scored(ctx, &found, query.with_scores);
    Ok(())
}

fn zrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: None, reverse: None, store: false })
}

fn zrevrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: Some(By::Rank), reverse: Some(true), store: false })
}

fn zrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: Some(By::Score), reverse: Some(false), store: false })
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: Some(By::Score), reverse: Some(true), store: false })
}

fn zrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: Some(By::Lex), reverse: Some(false), store: false })
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(ctx, args, Form { by: Some(By::Lex), reverse: Some(true), store: false })
}

/// Stores `found` as the sorted set `dst` (deleting it if `found` is empty); replies its size.
pub fn store_scored(ctx: &mut Ctx, dst: &[u8], found: Scored) -> CmdResult {
    let len = found.len();
    if len == 0 {
        ctx.delete(dst);
    } else {
        replace(ctx, dst, &Value::Zset(found), None)?;
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
fn zrangestore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let query = RangeQuery::parse(args[3], args[4], &args[5..], Form { by: None, reverse: None, store: true })?;
    let found = with_zset(ctx, args[2], |zset| zset.map(|z| select(z, &query)).unwrap_or_default())?;
    store_scored(ctx, args[1], found)
}

fn zcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(args[2], args[3])?;
    let count = with_zset(ctx, args[1], |zset| match zset {
        Some(z) => range.ranks_in(z).len(),
        None => 0,
    })?;
    ctx.out.int(count as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(args[2], args[3])?;
    let count = with_zset(ctx, args[1], |zset| zset.map_or(0, |z| lex_ranks(z, range).map_or_else(|| lex_selection(z, range, false).count(), |ranks| ranks.len())))?;
    ctx.out.int(count as i64);
    Ok(())
}

/// Removes the members `query` selects from `key`; replies how many.
fn remove_range(ctx: &mut Ctx, key: &[u8], query: RangeQuery) -> CmdResult {
    let found = with_zset(ctx, key, |zset| zset.map(|z| select(z, &query)).unwrap_or_default())?;
    let removed = if found.is_empty() { 0 } else { remove_members(ctx, key, found.iter().map(|(m, _)| &m[..]))? };
    ctx.out.int(removed as i64);
    Ok(())
}

fn removal(by: RangeBy) -> RangeQuery {
    RangeQuery { by, reverse: false, limit: None, with_scores: false }
}

fn zremrangebyrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let by = RangeBy::Rank(int_arg(args[2])?, int_arg(args[3])?);
    remove_range(ctx, args[1], removal(by))
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(args[2], args[3])?;
    remove_range(ctx, args[1], removal(RangeBy::Score(range)))
}

fn zremrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(args[2], args[3])?;
    remove_range(ctx, args[1], removal(RangeBy::Lex(range)))
}
