//! String commands: GET, SET and its variants, the INCR family, APPEND, ranges, MGET/MSET.
//!
//! Each command checks Redis's preconditions against the local view, then describes its
//! effect as an op (`Body::Set`, `Body::Incr`, ...) through [`Ctx::write`].

use super::values::expiry_of;
use super::{arity_error, check_kind, flags, int_arg, is, CmdError, CmdResult, Ctx, KeySpec, Spec, ALL_KEYS, ONE_KEY, SYNTAX};
use crate::shared::HotConfig;
use meridian_crdt::{Body, Increment, Kind, NodeId, Number, NumberError, StrState, TtlWrite, Written, NO_EXPIRY};
use std::ops::Deref;

const W: u32 = flags::WRITE | flags::DENYOOM;
const PAIRS: KeySpec = KeySpec { first: 1, last: -1, step: 2 };

pub const COMMANDS: &[Spec] = &[
    Spec { name: "get", arity: 2, flags: flags::READONLY | flags::FAST, keys: ONE_KEY, group: "string", summary: "Returns the string value of a key.", run: get },
    Spec {
        name: "set",
        arity: -3,
        flags: W,
        keys: ONE_KEY,
        group: "string",
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        run: set,
    },
    Spec { name: "setnx", arity: 3, flags: W | flags::FAST, keys: ONE_KEY, group: "string", summary: "Set the string value of a key only when the key doesn't exist.", run: setnx },
    Spec { name: "setex", arity: 4, flags: W, keys: ONE_KEY, group: "string", summary: "Sets the string value and expiration time of a key.", run: setex },
    Spec { name: "psetex", arity: 4, flags: W, keys: ONE_KEY, group: "string", summary: "Sets both string value and expiration time in milliseconds of a key.", run: psetex },
    Spec {
        name: "getset",
        arity: 3,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the previous string value of a key after setting it to a new value.",
        run: getset,
    },
    Spec {
        name: "getdel",
        arity: 2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the string value of a key after deleting the key.",
        run: getdel,
    },
    Spec {
        name: "getex",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the string value of a key after setting its expiration time.",
        run: getex,
    },
    Spec {
        name: "mget",
        arity: -2,
        flags: flags::READONLY | flags::FAST,
        keys: ALL_KEYS,
        group: "string",
        summary: "Atomically returns the string values of one or more keys.",
        run: mget,
    },
    Spec { name: "mset", arity: -3, flags: W, keys: PAIRS, group: "string", summary: "Atomically creates or modifies the string values of one or more keys.", run: mset },
    Spec {
        name: "msetnx",
        arity: -3,
        flags: W,
        keys: PAIRS,
        group: "string",
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        run: msetnx,
    },
    Spec {
        name: "incr",
        arity: 2,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        run: incr,
    },
    Spec {
        name: "decr",
        arity: 2,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        run: decr,
    },
    Spec {
        name: "incrby",
        arity: 3,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        run: incrby,
    },
    Spec {
        name: "decrby",
        arity: 3,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        run: decrby,
    },
    Spec {
        name: "incrbyfloat",
        arity: 3,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        run: incrbyfloat,
    },
    Spec {
        name: "append",
        arity: 3,
        flags: W | flags::FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        run: append,
    },
    Spec { name: "strlen", arity: 2, flags: flags::READONLY | flags::FAST, keys: ONE_KEY, group: "string", summary: "Returns the length of a string value.", run: strlen },
    Spec { name: "getrange", arity: 4, flags: flags::READONLY, keys: ONE_KEY, group: "string", summary: "Returns a substring of the string stored at a key.", run: getrange },
    Spec { name: "substr", arity: 4, flags: flags::READONLY, keys: ONE_KEY, group: "string", summary: "Returns a substring from a string value.", run: getrange },
    Spec {
        name: "setrange",
        arity: 4,
        flags: W,
        keys: ONE_KEY,
        group: "string",
        summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        run: setrange,
    },
];

/// The current value of `key` as a reader sees it, copied out; WRONGTYPE if it is not a string.
fn value_of(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match ctx.db.get(key, ctx.now) {
        Some(e) => {
            check_kind(&e.state, Kind::String)?;
            Ok(e.state.string().get().map(|v| v.into_owned()))
        }
        None => Ok(None),
    }
}

/// [`value_of`] for commands that read the value for the client, counted in INFO's
/// keyspace_hits / keyspace_misses as Redis counts its read lookups.
fn read_value(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    let found = value_of(ctx, key);
    ctx.count_lookup(!matches!(found, Ok(None)));
    found
}

/// Replaces `key` with the string `value` (SET and everything that rewrites a whole string).
fn write_string(ctx: &mut Ctx, key: &[u8], value: &[u8], ttl: TtlWrite) {
    let seen = ctx.seen(key, ttl == TtlWrite::Keep);
    ctx.write(key, Body::Set { seen, value, expire_at: expiry_of(ttl) });
}

/// Checks a string's size against `proto-max-bulk-len`, as Redis does for APPEND/SETRANGE.
fn check_size(ctx: &Ctx, len: u64) -> CmdResult {
    if len > HotConfig::get(&ctx.shared.hot.proto_max_bulk_len) {
        return Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into());
    }
    Ok(())
}

/// `amount` units of `unit_ms` as a Unix ms: from `now`, or from the epoch if `absolute`.
/// `None` if it overflows.
pub fn deadline(now: u64, amount: i64, unit_ms: i64, absolute: bool) -> Option<i64> {
    let ms = amount.checked_mul(unit_ms)?;
    if absolute {
        Some(ms)
    } else {
        ms.checked_add(now as i64)
    }
}

/// "invalid expire time in '<command>' command".
pub fn invalid_expire(command: &str) -> CmdError {
    CmdError::new(format!("ERR invalid expire time in '{command}' command"))
}

/// The expiry of SET-style options: positive amounts only, as Redis requires there.
fn expire_at(now: u64, amount: i64, unit_ms: i64, absolute: bool, command: &str) -> Result<u64, CmdError> {
    let at = deadline(now, amount, unit_ms, absolute).filter(|_| amount > 0);
    at.map(|at| at as u64).ok_or_else(|| invalid_expire(command))
}

/// Parses SET/GETEX expiry options starting at `args[i]`: returns the TTL write and how many
/// arguments it used, or `None` if `args[i]` is not an expiry option.
fn expiry_option(ctx: &Ctx, args: &[&[u8]], i: usize, command: &str) -> Result<Option<(TtlWrite, usize)>, CmdError> {
    let (unit, absolute) = match &args[i] {
        a if is(a, "ex") => (1000, false),
        a if is(a, "px") => (1, false),
        a if is(a, "exat") => (1000, true),
        a if is(a, "pxat") => (1, true),
        _ => return Ok(None),
    };
    let amount = *args.get(i + 1).ok_or(CmdError::from(SYNTAX))?;
    let at = expire_at(ctx.now, int_arg(amount)?, unit, absolute, command)?;
    Ok(Some((TtlWrite::At(at), 2)))
}

fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let value = read_value(ctx, args[1])?;
    ctx.out.bulk_or_null(value.as_deref());
    Ok(())
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms | KEEPTTL]
fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut ttl: Option<TtlWrite> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if let Some((write, used)) = expiry_option(ctx, args, i, "set")? {
            if ttl.is_some() {
                return Err(SYNTAX.into());
            }
            ttl = Some(write);
            i += used;
            continue;
        }
        match a {
            a if is(a, "nx") && !xx => nx = true,
            a if is(a, "xx") && !nx => xx = true,
            a if is(a, "get") => get = true,
            a if is(a, "keepttl") && ttl.is_none() => ttl = Some(TtlWrite::Keep),
            _ => return Err(SYNTAX.into()),
        }
        i += 1;
    }
    let (key, value) = (args[1], args[2]);
    // A plain SET needs no lookup of the old value: its context is all it removes.
    let old = if get { read_value(ctx, key)? } else { None };
    let exists = old.is_some() || ((nx || xx) && ctx.db.get(key, ctx.now).is_some());
    if (nx && exists) || (xx && !exists) {
        match get {
            true => ctx.out.bulk_or_null(old.as_deref()),
            false => ctx.out.null(),
        }
        return Ok(());
    }
    set_or_expire(ctx, key, value, ttl.unwrap_or(TtlWrite::Clear));
    match get {
        true => ctx.out.bulk_or_null(old.as_deref()),
        false => ctx.out.ok(),
    }
    Ok(())
}

/// Writes `value`, or deletes the key if the requested expiry is already in the past.
fn set_or_expire(ctx: &mut Ctx, key: &[u8], value: &[u8], ttl: TtlWrite) {
    match ttl {
        TtlWrite::At(at) if at <= ctx.now => {
            ctx.delete(key);
        }
        _ => write_string(ctx, key, value, ttl),
    }
}

fn setnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let exists = ctx.db.get(args[1], ctx.now).is_some();
    if !exists {
        write_string(ctx, args[1], args[2], TtlWrite::Clear);
    }
    ctx.out.int(!exists as i64);
    Ok(())
}

fn setex_with(ctx: &mut Ctx, args: &[&[u8]], unit: i64, command: &str) -> CmdResult {
    let at = expire_at(ctx.now, int_arg(args[2])?, unit, false, command)?;
    write_string(ctx, args[1], args[3], TtlWrite::At(at));
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    setex_with(ctx, args, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    setex_with(ctx, args, 1, "psetex")
}

fn getset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let old = read_value(ctx, args[1])?;
    write_string(ctx, args[1], args[2], TtlWrite::Clear);
    ctx.out.bulk_or_null(old.as_deref());
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let old = read_value(ctx, args[1])?;
    if old.is_some() {
        ctx.delete(args[1]);
    }
    ctx.out.bulk_or_null(old.as_deref());
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ms | PERSIST]
fn getex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut change: Option<u64> = None;
    let mut i = 2;
    while i < args.len() {
        if let Some((TtlWrite::At(at), used)) = expiry_option(ctx, args, i, "getex")? {
            if change.is_some() {
                return Err(SYNTAX.into());
            }
            change = Some(at);
            i += used;
        } else if is(args[i], "persist") && change.is_none() {
            change = Some(NO_EXPIRY);
            i += 1;
        } else {
            return Err(SYNTAX.into());
        }
    }
    let key = args[1];
    let value = read_value(ctx, key)?;
    if let (Some(_), Some(at)) = (&value, change) {
        let has_ttl = ctx.db.get(key, ctx.now).is_some_and(|e| e.state.expires_at().is_some());
        if at != NO_EXPIRY && at <= ctx.now {
            ctx.delete(key);
        } else if at != NO_EXPIRY || has_ttl {
            let seen = ctx.seen_ttl(key);
            ctx.write(key, Body::Expire { seen, at });
        }
    }
    ctx.out.bulk_or_null(value.as_deref());
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        // MGET answers nil for a key of another type, as Redis does.
        let value = read_value(ctx, key).unwrap_or(None);
        ctx.out.bulk_or_null(value.as_deref());
    }
    Ok(())
}

fn pairs(args: &[&[u8]], name: &str) -> Result<(), CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(arity_error(name));
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pairs(args, "mset")?;
    for pair in args[1..].chunks(2) {
        write_string(ctx, pair[0], pair[1], TtlWrite::Clear);
    }
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pairs(args, "msetnx")?;
    let now = ctx.now;
    let any_exists = args[1..].chunks(2).any(|pair| ctx.db.get(pair[0], now).is_some());
    if !any_exists {
        for pair in args[1..].chunks(2) {
            write_string(ctx, pair[0], pair[1], TtlWrite::Clear);
        }
    }
    ctx.out.int(!any_exists as i64);
    Ok(())
}

/// Maps a numeric error to Redis's reply.
pub fn number_error(e: NumberError) -> CmdError {
    CmdError::new(format!("ERR {e}"))
}

/// The increment `origin` makes to add `delta` to the counter `current` (absent: zero), and
/// the value it yields; `float` picks INCRBYFLOAT's rules over INCRBY's. `stored_error` maps a
/// stored value that is not a number to the command's error (strings and hash fields differ).
pub fn next_count<V: Written + Deref<Target = [u8]>>(
    current: Option<&StrState<V>>,
    origin: NodeId,
    delta: Number,
    float: bool,
    stored_error: fn(NumberError) -> CmdError,
) -> Result<(Number, Increment), CmdError> {
    let value = current.map_or(Ok(Number::ZERO), |string| string.number(float).map_err(stored_error))?;
    let inc = current.map_or_else(|| StrState::<V>::default().next_increment(origin, delta), |string| string.next_increment(origin, delta));
    let new = match float {
        true => value.incr_float(delta),
        false => value.incr_int(delta.to_i64().unwrap_or(0)),
    }
    .map_err(number_error)?;
    Ok((new, inc.ok_or(number_error(NumberError::OutOfRange))?))
}

/// Adds `delta` to `key` as a counter increment; returns the new value. `float` picks
/// INCRBYFLOAT's rules over INCRBY's.
fn increment(ctx: &mut Ctx, key: &[u8], delta: Number, float: bool) -> Result<Number, CmdError> {
    let origin = ctx.shared.node.id();
    let current = ctx.typed(key, Kind::String)?.map(|s| s.string());
    let live = current.is_some();
    let (new, inc) = next_count(current, origin, delta, float, number_error)?;
    // An absent key starts from zero: whatever a hidden entry still holds is cleared first.
    let seen = if live { Default::default() } else { ctx.seen(key, false) };
    ctx.write(key, Body::Incr { seen, inc });
    Ok(new)
}

/// Parses an INCRBYFLOAT-style increment argument.
pub fn float_arg(arg: &[u8]) -> Result<Number, CmdError> {
    Number::parse_float(arg).map_err(|e| match e {
        NumberError::NonFinite | NumberError::OutOfRange => number_error(e),
        _ => number_error(NumberError::NotFloat),
    })
}

fn incr_reply(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let new = increment(ctx, key, Number::from_i64(by), false)?;
    ctx.out.int(new.to_i64().expect("integer increments stay in i64"));
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_reply(ctx, args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_reply(ctx, args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_reply(ctx, args[1], int_arg(args[2])?)
}

fn decrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let by = int_arg(args[2])?;
    let negated = by.checked_neg().ok_or("ERR decrement would overflow")?;
    incr_reply(ctx, args[1], negated)
}

fn incrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    // Redis checks the key's type before it parses the increment (INCRBY does the reverse).
    ctx.typed(args[1], Kind::String)?;
    let by = float_arg(args[2])?;
    let new = increment(ctx, args[1], by, true)?;
    ctx.out.bulk(new.to_string().as_bytes());
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut value = value_of(ctx, args[1])?.unwrap_or_default();
    check_size(ctx, (value.len() + args[2].len()) as u64)?;
    value.extend_from_slice(args[2]);
    let len = value.len();
    write_string(ctx, args[1], &value, TtlWrite::Keep);
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = read_value(ctx, args[1])?.map_or(0, |v| v.len());
    ctx.out.int(len as i64);
    Ok(())
}

/// GETRANGE key start end, with Redis's clamping of negative and out-of-range indexes.
fn getrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (start, end) = (int_arg(args[2])?, int_arg(args[3])?);
    let value = read_value(ctx, args[1])?.unwrap_or_default();
    let len = value.len() as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        ctx.out.bulk(b"");
        return Ok(());
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if start > end || start >= len {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&value[start as usize..=end as usize]);
    }
    Ok(())
}

/// SETRANGE key offset value: overwrite from `offset`, padding with zero bytes.
fn setrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = int_arg(args[2])?;
    if offset < 0 {
        return Err("ERR offset is out of range".into());
    }
    let patch = &args[3];
    let current = value_of(ctx, args[1])?;
    if patch.is_empty() {
        ctx.out.int(current.map_or(0, |v| v.len() as i64));
        return Ok(());
    }
    check_size(ctx, offset as u64 + patch.len() as u64)?;
    let mut value = current.unwrap_or_default();
    let end = offset as usize + patch.len();
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset as usize..end].copy_from_slice(patch);
    let len = value.len();
    write_string(ctx, args[1], &value, TtlWrite::Keep);
    ctx.out.int(len as i64);
    Ok(())
}
