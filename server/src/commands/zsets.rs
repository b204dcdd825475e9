//! Sorted-set commands that add, remove, score and pick members. A sorted set is an
//! observed-remove map of members to scores (see `meridian_crdt::SortedMembers`): ZADD writes a
//! score (concurrent ZADDs: last writer wins), ZINCRBY adds to it (concurrent ZINCRBYs add up).
//! Range reads are in `zset_ranges.rs`, the set algebra in `zset_algebra.rs`.

use super::random_pick::pick_random;
use super::scan_options::{ScanKind, ScanOptions};
use super::sets::positive_count;
use super::values::Scored;
use super::{flags, int_arg, is, CmdError, CmdResult, Ctx, Spec, ONE_KEY, SYNTAX};
use hashbrown::HashMap;
use meridian_crdt::{format_score, number_to_f64, parse_score, Change, Collection, Kind, Number, ScoreState, SortedMembers};

const W: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "zadd",
        arity: -4,
        flags: W,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
        run: zadd,
    },
    Spec { name: "zincrby", arity: 4, flags: W, keys: ONE_KEY, group: "sorted_set", summary: "Increments the score of a member in a sorted set.", run: zincrby },
    Spec {
        name: "zrem",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
        run: zrem,
    },
    Spec { name: "zscore", arity: 3, flags: R | flags::FAST, keys: ONE_KEY, group: "sorted_set", summary: "Returns the score of a member in a sorted set.", run: zscore },
    Spec {
        name: "zmscore",
        arity: -3,
        flags: R | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the score of one or more members in a sorted set.",
        run: zmscore,
    },
    Spec { name: "zcard", arity: 2, flags: R | flags::FAST, keys: ONE_KEY, group: "sorted_set", summary: "Returns the number of members in a sorted set.", run: zcard },
    Spec {
        name: "zrank",
        arity: 3,
        flags: R | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the index of a member in a sorted set ordered by ascending scores.",
        run: zrank,
    },
    Spec {
        name: "zrevrank",
        arity: 3,
        flags: R | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the index of a member in a sorted set ordered by descending scores.",
        run: zrevrank,
    },
    Spec {
        name: "zpopmin",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        run: zpopmin,
    },
    Spec {
        name: "zpopmax",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "sorted_set",
        summary: "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        run: zpopmax,
    },
    Spec { name: "zrandmember", arity: -2, flags: R, keys: ONE_KEY, group: "sorted_set", summary: "Returns one or more random members from a sorted set.", run: zrandmember },
    Spec { name: "zscan", arity: -3, flags: R, keys: ONE_KEY, group: "sorted_set", summary: "Iterates over members and scores of a sorted set.", run: zscan },
];

/// `ERR value is not a valid float`.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";

/// Runs `f` on the sorted set at `key` (`None` if absent); WRONGTYPE for another type.
pub fn with_zset<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&SortedMembers>) -> R) -> Result<R, CmdError> {
    let state = ctx.typed(key, Kind::Zset)?;
    Ok(f(state.and_then(|s| s.zset())))
}

/// Removes `members` from the sorted set at `key`; how many were there.
pub fn remove_members<'a>(ctx: &mut Ctx, key: &[u8], members: impl Iterator<Item = &'a [u8]>) -> Result<usize, CmdError> {
    Ok(ctx.edit(key, Collection::Zset, members.map(|m| (m, Change::Remove)))?.were_live)
}

/// Members with scores as a reply: members only, or (`with_scores`) pairs of member and score.
pub fn reply_scored(ctx: &mut Ctx, items: &Scored, with_scores: bool) {
    if !with_scores {
        ctx.out.array(items.len());
        items.iter().for_each(|(m, _)| ctx.out.bulk(m));
        return;
    }
    ctx.out.pairs(items.len());
    for (m, s) in items {
        ctx.out.pair();
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
}

/// A score argument.
pub fn score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_score(arg).ok_or(CmdError::from(NOT_FLOAT))
}

/// ZADD's conditions on an update.
#[derive(Clone, Copy, Default)]
struct Conditions {
    /// NX: only add new members.
    nx: bool,
    /// XX: only update existing members.
    xx: bool,
    /// GT: only update to a greater score.
    gt: bool,
    /// LT: only update to a lesser score.
    lt: bool,
}

impl Conditions {
    /// True if a member scored `current` (`None`: absent) may take `new`.
    fn allow(self, current: Option<f64>, new: f64) -> bool {
        match current {
            None => !self.xx,
            Some(cur) => !(self.nx || (self.gt && new <= cur) || (self.lt && new >= cur)),
        }
    }
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
fn zadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let (mut when, mut ch, mut incr) = (Conditions::default(), false, false);
    let mut first = 2;
    while let Some(word) = args.get(first) {
        match () {
            _ if is(word, "nx") => when.nx = true,
            _ if is(word, "xx") => when.xx = true,
            _ if is(word, "gt") => when.gt = true,
            _ if is(word, "lt") => when.lt = true,
            _ if is(word, "ch") => ch = true,
            _ if is(word, "incr") => incr = true,
            _ => break,
        }
        first += 1;
    }
    let pairs = &args[first..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(SYNTAX.into());
    }
    if when.nx && when.xx {
        return Err("ERR XX and NX options at the same time are not compatible".into());
    }
    if (when.gt || when.lt) && when.nx || when.gt && when.lt {
        return Err("ERR GT, LT, and/or NX options at the same time are not compatible".into());
    }
    if incr && pairs.len() > 2 {
        return Err("ERR INCR option supports a single increment-element pair".into());
    }
    let scores = pairs.chunks(2).map(|p| score_arg(p[0])).collect::<Result<Vec<_>, _>>()?;
    if incr {
        let new = increment_member(ctx, key, pairs[1], scores[0], pairs[0], when)?;
        ctx.out.double_or_null(new);
        return Ok(());
    }
    let (added, updated) = write_scores(ctx, key, pairs, &scores, when)?;
    ctx.out.int((added + if ch { updated } else { 0 }) as i64);
    Ok(())
}

/// Applies ZADD's score-member pairs in order, as Redis does (a member named twice takes its
/// last allowed score); returns how many members were added and how many changed score.
fn write_scores(ctx: &mut Ctx, key: &[u8], pairs: &[&[u8]], scores: &[f64], when: Conditions) -> Result<(usize, usize), CmdError> {
    let (mut added, mut updated) = (0, 0);
    // Per member named: its score so far, and the pair that last changed it.
    let mut planned: HashMap<&[u8], (Option<f64>, Option<usize>)> = HashMap::new();
    with_zset(ctx, key, |zset| {
        for (i, (pair, &score)) in pairs.chunks(2).zip(scores).enumerate() {
            let member = pair[1];
            let entry = planned.entry(member).or_insert_with(|| (zset.and_then(|z| z.score(member)), None));
            if !when.allow(entry.0, score) {
                continue;
            }
            match entry.0 {
                None => added += 1,
                Some(cur) if cur != score => updated += 1,
                Some(_) => continue,
            }
            *entry = (Some(score), Some(i));
        }
    })?;
    let changes = planned.into_iter().filter_map(|(member, (_, pair))| Some((member, Change::Write(pairs[2 * pair?])))).collect::<Vec<_>>();
    if !changes.is_empty() {
        ctx.edit(key, Collection::Zset, changes)?;
    }
    Ok((added, updated))
}

/// The exact decimal of an increment typed as `text`, if it is one and converts back to the
/// same double: such increments add up under concurrency. Others (infinite, beyond the exact
/// range, finer than 17 decimals) are written as the new score instead.
fn exact_increment(text: &[u8], delta: f64) -> Option<Number> {
    Number::parse_float(text).ok().filter(|n| number_to_f64(*n).to_bits() == delta.to_bits())
}

/// Adds `delta` (typed as `delta_text`) to `member`'s score under ZADD's conditions; returns
/// the new score, or `None` if a condition refused the change.
fn increment_member(ctx: &mut Ctx, key: &[u8], member: &[u8], delta: f64, delta_text: &[u8], when: Conditions) -> Result<Option<f64>, CmdError> {
    let origin = ctx.shared.node.id();
    let exact = exact_increment(delta_text, delta);
    let (current, increment) = with_zset(ctx, key, |zset| {
        let state = zset.and_then(|z| z.members().get(member));
        let increment = exact.and_then(|n| state.map_or_else(|| ScoreState::default().next_increment(origin, n), |s| s.next_increment(origin, n)));
        (state.and_then(ScoreState::score), increment)
    })?;
    let new = current.unwrap_or(0.0) + delta;
    if new.is_nan() {
        return Err("ERR resulting score is not a number (NaN)".into());
    }
    if !when.allow(current, new) {
        return Ok(None);
    }
    let written = format_score(new);
    let change = match increment {
        Some(inc) => Change::Incr(inc),
        None => Change::Write(written.as_bytes()),
    };
    ctx.edit(key, Collection::Zset, [(member, change)])?;
    with_zset(ctx, key, |zset| zset.and_then(|z| z.score(member)))
}

fn zincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = score_arg(args[2])?;
    let new = increment_member(ctx, args[1], args[3], delta, args[2], Conditions::default())?;
    ctx.out.double_or_null(new);
    Ok(())
}

fn zrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let removed = remove_members(ctx, args[1], args[2..].iter().copied())?;
    ctx.out.int(removed as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let score = with_zset(ctx, args[1], |zset| zset.and_then(|z| z.score(args[2])))?;
    ctx.out.double_or_null(score);
    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let scores: Vec<Option<f64>> = with_zset(ctx, args[1], |zset| args[2..].iter().map(|m| zset.and_then(|z| z.score(m))).collect())?;
    ctx.out.array(scores.len());
    scores.into_iter().for_each(|score| ctx.out.double_or_null(score));
    Ok(())
}

fn zcard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = with_zset(ctx, args[1], |zset| zset.map_or(0, |z| z.members().len()))?;
    ctx.out.int(len as i64);
    Ok(())
}

/// ZRANK and ZREVRANK.
fn rank(ctx: &mut Ctx, args: &[&[u8]], reverse: bool) -> CmdResult {
    let rank = with_zset(ctx, args[1], |zset| {
        let z = zset?;
        let rank = z.rank(args[2])?;
        Some(if reverse { z.members().len() - 1 - rank } else { rank })
    })?;
    match rank {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rank(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rank(ctx, args, true)
}

/// ZPOPMIN and ZPOPMAX: `key [count]`.
fn pop(ctx: &mut Ctx, args: &[&[u8]], highest: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(SYNTAX.into()),
    };
    let n = count.unwrap_or(1);
    let popped: Scored = with_zset(ctx, args[1], |zset| {
        let Some(z) = zset else { return Vec::new() };
        let take = |it: &mut dyn Iterator<Item = (f64, &[u8])>| it.take(n).map(|(s, m)| (m.to_vec(), s)).collect();
        if highest {
            take(&mut z.ordered().rev())
        } else {
            take(&mut z.ordered())
        }
    })?;
    if !popped.is_empty() {
        remove_members(ctx, args[1], popped.iter().map(|(m, _)| &m[..]))?;
    }
    // One pop is a flat [member, score] in both protocols; a counted pop is a list of pairs.
    if count.is_none() {
        ctx.out.array(popped.len() * 2);
        for (m, s) in &popped {
            ctx.out.bulk(m);
            ctx.out.double(*s);
        }
    } else {
        reply_scored(ctx, &popped, true);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, true)
}

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (count, with_scores) = match args.len() {
        2 => (None, false),
        3 => (Some(int_arg(args[2])?), false),
        4 if is(args[3], "withscores") => (Some(int_arg(args[2])?), true),
        _ => return Err(SYNTAX.into()),
    };
    let chosen: Scored =
        with_zset(ctx, args[1], |zset| pick_random(zset.map(SortedMembers::members), count.unwrap_or(1), |m, s| (m.to_vec(), s.score().expect("a live member has a score"))))??;
    match count {
        None => ctx.out.bulk_or_null(chosen.first().map(|(m, _)| &m[..])),
        Some(_) => reply_scored(ctx, &chosen, with_scores),
    }
    Ok(())
}

fn zscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let options = ScanOptions::parse(&args[2..], ScanKind::Set)?;
    let hasher = ctx.shared.keyspace.hasher().clone();
    let (cursor, found) = with_zset(ctx, args[1], |zset| match zset {
        Some(z) => {
            let members = z.members();
            options
                .scan_members(members.len(), members.iter(), &hasher)
                .map(|(c, f)| (c, f.into_iter().map(|(m, s)| (m.to_vec(), s.score().unwrap_or_default())).collect::<Scored>()))
        }
        None => Ok((0, Vec::new())),
    })??;
    ctx.out.array(2);
    ctx.out.bulk(cursor.to_string().as_bytes());
    ctx.out.array(found.len() * 2);
    for (m, s) in &found {
        ctx.out.bulk(m);
        ctx.out.bulk(format_score(*s).as_bytes());
    }
    Ok(())
}
