//! Hash commands. A hash is an observed-remove map of fields, each field a string register
//! plus counter exactly like a string key (see `meridian_crdt::Members`): HSET on a field is
//! SET, HINCRBY is INCRBY, HDEL is DEL.

use super::random_pick::pick_random;
use super::scan_options::{ScanKind, ScanOptions};
use super::strings::{float_arg, next_count, number_error};
use super::values::Pairs;
use super::{arity_error, flags, int_arg, is, CmdError, CmdResult, Ctx, Spec, ONE_KEY, SYNTAX};
use meridian_crdt::{Change, Collection, Kind, Members, Number, NumberError, ShortBytes, StrState};

const W: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "hset", arity: -4, flags: W, keys: ONE_KEY, group: "hash", summary: "Creates or modifies the value of a field in a hash.", run: hset },
    Spec { name: "hmset", arity: -4, flags: W, keys: ONE_KEY, group: "hash", summary: "Sets the values of multiple fields.", run: hmset },
    Spec { name: "hsetnx", arity: 4, flags: W, keys: ONE_KEY, group: "hash", summary: "Sets the value of a field in a hash only when the field doesn't exist.", run: hsetnx },
    Spec { name: "hget", arity: 3, flags: R | flags::FAST, keys: ONE_KEY, group: "hash", summary: "Returns the value of a field in a hash.", run: hget },
    Spec { name: "hmget", arity: -3, flags: R | flags::FAST, keys: ONE_KEY, group: "hash", summary: "Returns the values of all fields in a hash.", run: hmget },
    Spec { name: "hgetall", arity: 2, flags: R, keys: ONE_KEY, group: "hash", summary: "Returns all fields and values in a hash.", run: hgetall },
    Spec {
        name: "hdel",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "hash",
        summary: "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        run: hdel,
    },
    Spec { name: "hexists", arity: 3, flags: R | flags::FAST, keys: ONE_KEY, group: "hash", summary: "Determines whether a field exists in a hash.", run: hexists },
    Spec { name: "hlen", arity: 2, flags: R | flags::FAST, keys: ONE_KEY, group: "hash", summary: "Returns the number of fields in a hash.", run: hlen },
    Spec { name: "hstrlen", arity: 3, flags: R | flags::FAST, keys: ONE_KEY, group: "hash", summary: "Returns the length of the value of a field.", run: hstrlen },
    Spec { name: "hkeys", arity: 2, flags: R, keys: ONE_KEY, group: "hash", summary: "Returns all fields in a hash.", run: hkeys },
    Spec { name: "hvals", arity: 2, flags: R, keys: ONE_KEY, group: "hash", summary: "Returns all values in a hash.", run: hvals },
    Spec {
        name: "hincrby",
        arity: 4,
        flags: W,
        keys: ONE_KEY,
        group: "hash",
        summary: "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        run: hincrby,
    },
    Spec {
        name: "hincrbyfloat",
        arity: 4,
        flags: W,
        keys: ONE_KEY,
        group: "hash",
        summary: "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        run: hincrbyfloat,
    },
    Spec { name: "hrandfield", arity: -2, flags: R, keys: ONE_KEY, group: "hash", summary: "Returns one or more random fields from a hash.", run: hrandfield },
    Spec { name: "hscan", arity: -3, flags: R, keys: ONE_KEY, group: "hash", summary: "Iterates over fields and values of a hash.", run: hscan },
];

/// The fields of a hash, in no particular order.
type Fields = Members<StrState<ShortBytes>>;

/// Runs `f` on the hash at `key` (`None` if absent); WRONGTYPE for another type.
fn with_hash<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Fields>) -> R) -> Result<R, CmdError> {
    let state = ctx.typed(key, Kind::Hash)?;
    Ok(f(state.and_then(|s| s.hash())))
}

/// The value of a live field, copied out.
fn value(field: &StrState<ShortBytes>) -> Vec<u8> {
    field.get().map(|v| v.into_owned()).unwrap_or_default()
}

/// Every field and value, copied out.
fn all_fields(ctx: &mut Ctx, key: &[u8]) -> Result<Pairs, CmdError> {
    with_hash(ctx, key, |hash| hash.map(|h| h.iter().map(|(f, v)| (f.to_vec(), value(v))).collect()).unwrap_or_default())
}

/// Writes the field/value pairs of `pairs`; returns how many fields were new.
fn set_fields(ctx: &mut Ctx, key: &[u8], pairs: &[&[u8]], name: &str) -> Result<usize, CmdError> {
    if !pairs.len().is_multiple_of(2) {
        return Err(arity_error(name));
    }
    Ok(ctx.edit(key, Collection::Hash, pairs.chunks(2).map(|p| (p[0], Change::Write(p[1]))))?.added())
}

fn hset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let new = set_fields(ctx, args[1], &args[2..], "hset")?;
    ctx.out.int(new as i64);
    Ok(())
}

fn hmset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_fields(ctx, args[1], &args[2..], "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let exists = with_hash(ctx, args[1], |hash| hash.is_some_and(|h| h.get(args[2]).is_some()))?;
    if !exists {
        ctx.edit(args[1], Collection::Hash, [(args[2], Change::Write(args[3]))])?;
    }
    ctx.out.int(!exists as i64);
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found = with_hash(ctx, args[1], |hash| hash.and_then(|h| h.get(args[2])).map(value))?;
    ctx.out.bulk_or_null(found.as_deref());
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found: Vec<Option<Vec<u8>>> = with_hash(ctx, args[1], |hash| args[2..].iter().map(|f| hash.and_then(|h| h.get(f)).map(value)).collect())?;
    ctx.out.array(found.len());
    found.iter().for_each(|v| ctx.out.bulk_or_null(v.as_deref()));
    Ok(())
}

fn reply_pairs(ctx: &mut Ctx, pairs: &Pairs) {
    ctx.out.map(pairs.len());
    for (f, v) in pairs {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
}

fn hgetall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let pairs = all_fields(ctx, args[1])?;
    reply_pairs(ctx, &pairs);
    Ok(())
}

fn hdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let edited = ctx.edit(args[1], Collection::Hash, args[2..].iter().map(|f| (*f, Change::Remove)))?;
    ctx.out.int(edited.were_live as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found = with_hash(ctx, args[1], |hash| hash.is_some_and(|h| h.get(args[2]).is_some()))?;
    ctx.out.int(found as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = with_hash(ctx, args[1], |hash| hash.map_or(0, |h| h.len()))?;
    ctx.out.int(len as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = with_hash(ctx, args[1], |hash| hash.and_then(|h| h.get(args[2])).map_or(0, |v| value(v).len()))?;
    ctx.out.int(len as i64);
    Ok(())
}

fn hkeys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let pairs = all_fields(ctx, args[1])?;
    ctx.out.array(pairs.len());
    pairs.iter().for_each(|(f, _)| ctx.out.bulk(f));
    Ok(())
}

fn hvals(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let pairs = all_fields(ctx, args[1])?;
    ctx.out.array(pairs.len());
    pairs.iter().for_each(|(_, v)| ctx.out.bulk(v));
    Ok(())
}

/// Adds `delta` to a field's counter; returns the new value.
fn increment_field(ctx: &mut Ctx, key: &[u8], field: &[u8], delta: Number, float: bool) -> Result<Number, CmdError> {
    let origin = ctx.shared.node.id();
    let stored_error: fn(NumberError) -> CmdError = match float {
        true => |_| "ERR hash value is not a float".into(),
        false => |_| "ERR hash value is not an integer".into(),
    };
    let (new, inc) = with_hash(ctx, key, |hash| next_count(hash.and_then(|h| h.get(field)), origin, delta, float, stored_error))??;
    ctx.edit(key, Collection::Hash, [(field, Change::Incr(inc))])?;
    Ok(new)
}

fn hincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let by = int_arg(args[3])?;
    let new = increment_field(ctx, args[1], args[2], Number::from_i64(by), false)?;
    ctx.out.int(new.to_i64().expect("integer increments stay in i64"));
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    // Redis words a non-finite increment differently for hash fields.
    let by = float_arg(args[3]).map_err(|e| if e == number_error(NumberError::NonFinite) { "ERR value is NaN or Infinity".into() } else { e })?;
    let new = increment_field(ctx, args[1], args[2], by, true)?;
    ctx.out.bulk(new.to_string().as_bytes());
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (count, with_values) = match args.len() {
        2 => (None, false),
        3 => (Some(int_arg(args[2])?), false),
        4 if is(args[3], "withvalues") => (Some(int_arg(args[2])?), true),
        _ => return Err(SYNTAX.into()),
    };
    let chosen = with_hash(ctx, args[1], |hash| pick_random(hash, count.unwrap_or(1), |f, v| (f.to_vec(), value(v))))??;
    if count.is_none() {
        ctx.out.bulk_or_null(chosen.first().map(|(f, _)| &f[..]));
        return Ok(());
    }
    if !with_values {
        ctx.out.array(chosen.len());
        chosen.iter().for_each(|(f, _)| ctx.out.bulk(f));
        return Ok(());
    }
    ctx.out.pairs(chosen.len());
    for (f, v) in &chosen {
        ctx.out.pair();
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let options = ScanOptions::parse(&args[2..], ScanKind::Hash)?;
    let hasher = ctx.shared.keyspace.hasher().clone();
    let (cursor, found) = with_hash(ctx, args[1], |hash| match hash {
        Some(h) => options.scan_members(h.len(), h.iter(), &hasher).map(|(c, f)| (c, f.into_iter().map(|(f, v)| (f.to_vec(), value(v))).collect::<Vec<_>>())),
        None => Ok((0, Vec::new())),
    })??;
    ctx.out.array(2);
    ctx.out.bulk(cursor.to_string().as_bytes());
    ctx.out.array(found.len() * if options.novalues { 1 } else { 2 });
    for (f, v) in &found {
        ctx.out.bulk(f);
        if !options.novalues {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}
