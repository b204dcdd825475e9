//! Set commands. A set is an add-wins observed-remove set (see `meridian_crdt::Members`): each
//! command checks Redis's preconditions on the local view and describes its effect as member
//! edits through [`Ctx::edit`].

use super::random_pick::pick_random;
use super::scan_options::{ScanKind, ScanOptions};
use super::values::{replace, Value};
use super::{flags, int_arg, CmdError, CmdResult, Ctx, KeySpec, Spec, ALL_KEYS, NOT_INTEGER, ONE_KEY, SYNTAX};
use hashbrown::HashSet;
use meridian_crdt::{Change, Collection, Kind};

const W: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;
const TWO_KEYS: KeySpec = KeySpec { first: 1, last: 2, step: 1 };
const FROM_SECOND: KeySpec = KeySpec { first: 2, last: -1, step: 1 };

pub const COMMANDS: &[Spec] = &[
    Spec { name: "sadd", arity: -3, flags: W, keys: ONE_KEY, group: "set", summary: "Adds one or more members to a set. Creates the key if it doesn't exist.", run: sadd },
    Spec {
        name: "srem",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "set",
        summary: "Removes one or more members from a set. Deletes the set if the last member was removed.",
        run: srem,
    },
    Spec { name: "smembers", arity: 2, flags: R, keys: ONE_KEY, group: "set", summary: "Returns all members of a set.", run: smembers },
    Spec { name: "sismember", arity: 3, flags: R | flags::FAST, keys: ONE_KEY, group: "set", summary: "Determines whether a member belongs to a set.", run: sismember },
    Spec { name: "smismember", arity: -3, flags: R | flags::FAST, keys: ONE_KEY, group: "set", summary: "Determines whether multiple members belong to a set.", run: smismember },
    Spec { name: "scard", arity: 2, flags: R | flags::FAST, keys: ONE_KEY, group: "set", summary: "Returns the number of members in a set.", run: scard },
    Spec {
        name: "spop",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "set",
        summary: "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
        run: spop,
    },
    Spec { name: "srandmember", arity: -2, flags: R, keys: ONE_KEY, group: "set", summary: "Get one or multiple random members from a set", run: srandmember },
    Spec { name: "smove", arity: 4, flags: W, keys: TWO_KEYS, group: "set", summary: "Moves a member from one set to another.", run: smove },
    Spec { name: "sinter", arity: -2, flags: R, keys: ALL_KEYS, group: "set", summary: "Returns the intersect of multiple sets.", run: sinter },
    Spec { name: "sintercard", arity: -3, flags: R, keys: FROM_SECOND, group: "set", summary: "Returns the number of members of the intersect of multiple sets.", run: sintercard },
    Spec {
        name: "sinterstore",
        arity: -3,
        flags: flags::WRITE | flags::DENYOOM,
        keys: ALL_KEYS,
        group: "set",
        summary: "Stores the intersect of multiple sets in a key.",
        run: sinterstore,
    },
    Spec { name: "sunion", arity: -2, flags: R, keys: ALL_KEYS, group: "set", summary: "Returns the union of multiple sets.", run: sunion },
    Spec {
        name: "sunionstore",
        arity: -3,
        flags: flags::WRITE | flags::DENYOOM,
        keys: ALL_KEYS,
        group: "set",
        summary: "Stores the union of multiple sets in a key.",
        run: sunionstore,
    },
    Spec { name: "sdiff", arity: -2, flags: R, keys: ALL_KEYS, group: "set", summary: "Returns the difference of multiple sets.", run: sdiff },
    Spec {
        name: "sdiffstore",
        arity: -3,
        flags: flags::WRITE | flags::DENYOOM,
        keys: ALL_KEYS,
        group: "set",
        summary: "Stores the difference of multiple sets in a key.",
        run: sdiffstore,
    },
    Spec { name: "sscan", arity: -3, flags: R, keys: ONE_KEY, group: "set", summary: "Iterates over members of a set.", run: sscan },
];

/// The members of the set at `key`, copied out (none if absent); WRONGTYPE for another type.
fn members(ctx: &mut Ctx, key: &[u8]) -> Result<Vec<Vec<u8>>, CmdError> {
    let state = ctx.typed(key, Kind::Set)?;
    Ok(state.and_then(|s| s.set()).map(|set| set.iter().map(|(m, _)| m.to_vec()).collect()).unwrap_or_default())
}

/// Runs `f` on the set at `key` (`None` if absent); WRONGTYPE for another type.
fn with_set<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&meridian_crdt::Members<meridian_crdt::Dots>>) -> R) -> Result<R, CmdError> {
    let state = ctx.typed(key, Kind::Set)?;
    Ok(f(state.and_then(|s| s.set())))
}

fn reply_members(ctx: &mut Ctx, members: &[Vec<u8>]) {
    ctx.out.set(members.len());
    members.iter().for_each(|m| ctx.out.bulk(m));
}

fn sadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let edited = ctx.edit(args[1], Collection::Set, args[2..].iter().map(|m| (*m, Change::Add)))?;
    ctx.out.int(edited.added() as i64);
    Ok(())
}

/// Removes `members` from the set at `key`; how many were there.
fn remove_members<'a>(ctx: &mut Ctx, key: &[u8], members: impl Iterator<Item = &'a [u8]>) -> Result<usize, CmdError> {
    Ok(ctx.edit(key, Collection::Set, members.map(|m| (m, Change::Remove)))?.were_live)
}

fn srem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let removed = remove_members(ctx, args[1], args[2..].iter().copied())?;
    ctx.out.int(removed as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let members = members(ctx, args[1])?;
    reply_members(ctx, &members);
    Ok(())
}

fn sismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found = with_set(ctx, args[1], |set| set.is_some_and(|s| s.get(args[2]).is_some()))?;
    ctx.out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found: Vec<bool> = with_set(ctx, args[1], |set| args[2..].iter().map(|m| set.is_some_and(|s| s.get(m).is_some())).collect())?;
    ctx.out.array(found.len());
    found.into_iter().for_each(|f| ctx.out.int(f as i64));
    Ok(())
}

fn scard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = with_set(ctx, args[1], |set| set.map_or(0, |s| s.len()))?;
    ctx.out.int(len as i64);
    Ok(())
}

/// A count argument of SPOP, ZPOPMIN and ZPOPMAX: positive (0 allowed). Redis gives one
/// error for a negative count and for one that is not a number.
pub fn positive_count(arg: &[u8]) -> Result<usize, CmdError> {
    int_arg(arg).ok().and_then(|n| usize::try_from(n).ok()).ok_or("ERR value is out of range, must be positive".into())
}

fn spop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(SYNTAX.into()),
    };
    let popped = with_set(ctx, key, |set| pick_random(set, count.unwrap_or(1) as i64, |m, _| m.to_vec()))??;
    if !popped.is_empty() {
        remove_members(ctx, key, popped.iter().map(|m| &m[..]))?;
    }
    match count {
        None => ctx.out.bulk_or_null(popped.first().map(|m| &m[..])),
        Some(_) => reply_members(ctx, &popped),
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(int_arg(args[2])?),
        _ => return Err(SYNTAX.into()),
    };
    let chosen = with_set(ctx, args[1], |set| pick_random(set, count.unwrap_or(1), |m, _| m.to_vec()))??;
    if count.is_none() {
        ctx.out.bulk_or_null(chosen.first().map(|m| &m[..]));
        return Ok(());
    }
    ctx.out.array(chosen.len());
    chosen.iter().for_each(|m| ctx.out.bulk(m));
    Ok(())
}

fn smove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (src, dst, member) = (args[1], args[2], args[3]);
    // As Redis: a missing source answers 0 before the destination's type is checked.
    let Some(present) = with_set(ctx, src, |set| set.map(|s| s.get(member).is_some()))? else {
        ctx.out.int(0);
        return Ok(());
    };
    with_set(ctx, dst, |_| ())?;
    if present && src != dst {
        remove_members(ctx, src, std::iter::once(member))?;
        ctx.edit(dst, Collection::Set, [(member, Change::Add)])?;
    }
    ctx.out.int(present as i64);
    Ok(())
}

/// How several sets combine.
#[derive(Clone, Copy)]
enum Combine {
    Inter,
    Union,
    Diff,
}

/// Combines the sets at `keys` (missing keys are empty sets); WRONGTYPE if any key holds
/// another type. Members keep the order of the first set they appear in.
fn combine(ctx: &mut Ctx, keys: &[&[u8]], how: Combine) -> Result<Vec<Vec<u8>>, CmdError> {
    let sets = keys.iter().map(|k| members(ctx, k)).collect::<Result<Vec<_>, _>>()?;
    let (first, rest) = sets.split_first().expect("arity guarantees a key");
    let lookup: Vec<HashSet<&[u8]>> = rest.iter().map(|s| s.iter().map(|m| &m[..]).collect()).collect();
    Ok(match how {
        Combine::Inter => first.iter().filter(|m| lookup.iter().all(|s| s.contains(&m[..]))).cloned().collect(),
        Combine::Diff => first.iter().filter(|m| !lookup.iter().any(|s| s.contains(&m[..]))).cloned().collect(),
        Combine::Union => {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            sets.iter().flatten().filter(|m| seen.insert(&m[..])).cloned().collect()
        }
    })
}

fn combine_reply(ctx: &mut Ctx, args: &[&[u8]], how: Combine) -> CmdResult {
    let result = combine(ctx, &args[1..], how)?;
    reply_members(ctx, &result);
    Ok(())
}

fn combine_store(ctx: &mut Ctx, args: &[&[u8]], how: Combine) -> CmdResult {
    let result = combine(ctx, &args[2..], how)?;
    let len = result.len();
    if len == 0 {
        ctx.delete(args[1]);
    } else {
        replace(ctx, args[1], &Value::Set(result), None)?;
    }
    ctx.out.int(len as i64);
    Ok(())
}

fn sinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Inter)
}

fn sunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Union)
}

fn sdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Diff)
}

fn sinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Inter)
}

fn sunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Union)
}

fn sdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Diff)
}

/// The keys and limit of `SINTERCARD numkeys key [key ...] [LIMIT limit]` (limit 0: none).
fn intercard_args<'a>(args: &'a [&'a [u8]]) -> Result<(&'a [&'a [u8]], usize), CmdError> {
    let numkeys = int_arg(args[1]).map_err(|_| CmdError::from("ERR numkeys should be greater than 0"))?;
    if numkeys <= 0 {
        return Err("ERR numkeys should be greater than 0".into());
    }
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 2 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let mut limit = 0usize;
    let rest = &args[2 + numkeys..];
    match rest {
        [] => {}
        [word, value] if super::is(word, "limit") => {
            let n = int_arg(value).map_err(|_| CmdError::from(NOT_INTEGER))?;
            limit = usize::try_from(n).map_err(|_| CmdError::from("ERR LIMIT can't be negative"))?;
        }
        _ => return Err(SYNTAX.into()),
    }
    Ok((&args[2..2 + numkeys], limit))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, limit) = intercard_args(args)?;
    let result = combine(ctx, keys, Combine::Inter)?;
    let len = if limit > 0 { result.len().min(limit) } else { result.len() };
    ctx.out.int(len as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let options = ScanOptions::parse(&args[2..], ScanKind::Set)?;
    let hasher = ctx.shared.keyspace.hasher().clone();
    let (cursor, found) = with_set(ctx, args[1], |set| match set {
        Some(s) => options.scan_members(s.len(), s.iter(), &hasher).map(|(c, f)| (c, f.into_iter().map(|(m, _)| m.to_vec()).collect::<Vec<_>>())),
        None => Ok((0, Vec::new())),
    })??;
    ctx.out.array(2);
    ctx.out.bulk(cursor.to_string().as_bytes());
    ctx.out.array(found.len());
    found.iter().for_each(|m| ctx.out.bulk(m));
    Ok(())
}
