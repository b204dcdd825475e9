//! List commands. A list is a replicated growable array (see `meridian_crdt::ListState`):
//! each command reads the local view, checks Redis's preconditions, and describes its effect
//! as element edits through [`Ctx::list_edit`]: inserts hung from the head, the tail or an
//! element, removals and value writes of the elements it saw.
//!
//! The blocking pops try once; with nothing to pop they park the connection
//! ([`Block::Pop`]), which retries the same command after every push, local or replicated,
//! until it pops or times out.

use super::sets::positive_count;
use super::zset_ranges::clamp_ranks;
use super::{flags, int_arg, is, Blocking, CmdError, CmdResult, Ctx, KeySpec, Spec, ONE_KEY, SYNTAX};
use crate::session::Block;
use meridian_crdt::{Anchor, ElemId, ListEdit, ListState};
use std::time::{Duration, Instant};

const W: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;
const TWO_KEYS: KeySpec = KeySpec { first: 1, last: 2, step: 1 };
const ALL_BUT_LAST: KeySpec = KeySpec { first: 1, last: -2, step: 1 };

pub const COMMANDS: &[Spec] = &[
    Spec { name: "lpush", arity: -3, flags: W, keys: ONE_KEY, group: "list", summary: "Prepends one or more elements to a list. Creates the key if it doesn't exist.", run: lpush },
    Spec { name: "rpush", arity: -3, flags: W, keys: ONE_KEY, group: "list", summary: "Appends one or more elements to a list. Creates the key if it doesn't exist.", run: rpush },
    Spec { name: "lpushx", arity: -3, flags: W, keys: ONE_KEY, group: "list", summary: "Prepends one or more elements to a list only when the list exists.", run: lpushx },
    Spec { name: "rpushx", arity: -3, flags: W, keys: ONE_KEY, group: "list", summary: "Appends an element to a list only when the list exists.", run: rpushx },
    Spec {
        name: "lpop",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "list",
        summary: "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
        run: lpop,
    },
    Spec {
        name: "rpop",
        arity: -2,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "list",
        summary: "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
        run: rpop,
    },
    Spec { name: "llen", arity: 2, flags: R | flags::FAST, keys: ONE_KEY, group: "list", summary: "Returns the length of a list.", run: llen },
    Spec { name: "lrange", arity: 4, flags: R, keys: ONE_KEY, group: "list", summary: "Returns a range of elements from a list.", run: lrange },
    Spec { name: "lindex", arity: 3, flags: R, keys: ONE_KEY, group: "list", summary: "Returns an element from a list by its index.", run: lindex },
    Spec { name: "lset", arity: 4, flags: flags::WRITE | flags::DENYOOM, keys: ONE_KEY, group: "list", summary: "Sets the value of an element in a list by its index.", run: lset },
    Spec {
        name: "linsert",
        arity: 5,
        flags: flags::WRITE | flags::DENYOOM,
        keys: ONE_KEY,
        group: "list",
        summary: "Inserts an element before or after another element in a list.",
        run: linsert,
    },
    Spec {
        name: "lrem",
        arity: 4,
        flags: flags::WRITE,
        keys: ONE_KEY,
        group: "list",
        summary: "Removes elements from a list. Deletes the list if the last element was removed.",
        run: lrem,
    },
    Spec {
        name: "ltrim",
        arity: 4,
        flags: flags::WRITE,
        keys: ONE_KEY,
        group: "list",
        summary: "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
        run: ltrim,
    },
    Spec { name: "lpos", arity: -3, flags: R, keys: ONE_KEY, group: "list", summary: "Returns the index of matching elements in a list.", run: lpos },
    Spec {
        name: "lmove",
        arity: 5,
        flags: flags::WRITE | flags::DENYOOM,
        keys: TWO_KEYS,
        group: "list",
        summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        run: lmove,
    },
    Spec {
        name: "rpoplpush",
        arity: 3,
        flags: flags::WRITE | flags::DENYOOM,
        keys: TWO_KEYS,
        group: "list",
        summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        run: rpoplpush,
    },
    Spec {
        name: "blpop",
        arity: -3,
        flags: flags::WRITE,
        keys: ALL_BUT_LAST,
        group: "list",
        summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        run: blpop,
    },
    Spec {
        name: "brpop",
        arity: -3,
        flags: flags::WRITE,
        keys: ALL_BUT_LAST,
        group: "list",
        summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        run: brpop,
    },
    Spec {
        name: "blmove",
        arity: 6,
        flags: flags::WRITE | flags::DENYOOM,
        keys: TWO_KEYS,
        group: "list",
        summary:
            "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        run: blmove,
    },
    Spec {
        name: "brpoplpush",
        arity: 4,
        flags: flags::WRITE | flags::DENYOOM,
        keys: TWO_KEYS,
        group: "list",
        summary:
            "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        run: brpoplpush,
    },
];

/// A list end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, CmdError> {
        match arg {
            a if is(a, "left") => Ok(End::Left),
            a if is(a, "right") => Ok(End::Right),
            _ => Err(SYNTAX.into()),
        }
    }

    /// Where a push at this end hangs.
    fn anchor(self) -> Anchor {
        match self {
            End::Left => Anchor::Head,
            End::Right => Anchor::Tail,
        }
    }
}

/// The live elements of `list` from `end`, at most `n` of them, copied out.
fn from_end(list: &ListState, end: End, n: usize) -> Vec<(ElemId, Vec<u8>)> {
    let owned = |(id, v): (ElemId, &[u8])| (id, v.to_vec());
    match end {
        End::Left => list.iter().take(n).map(owned).collect(),
        End::Right => list.iter().rev().take(n).map(owned).collect(),
    }
}

/// The list at `key` as readers see it (`None` if absent); WRONGTYPE for another type.
fn with_list<T>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&ListState>) -> T) -> Result<T, CmdError> {
    let state = ctx.typed(key, meridian_crdt::Kind::List)?;
    Ok(f(state.and_then(|s| s.list())))
}

/// Pushes `values` at `end` of `key` (only if it exists, for the X variants); replies the new
/// length.
fn push(ctx: &mut Ctx, args: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let values = &args[2..];
    let len = ctx.list_edit(args[1], |list| {
        if only_existing && !list.is_live() {
            return (Vec::new(), 0);
        }
        (vec![ListEdit::Insert { anchor: end.anchor(), values: values.to_vec() }], list.len() + values.len())
    })?;
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, true)
}

/// Removes up to `n` elements from `end` of `key`; returns their values (`None`: no key).
fn pop_values(ctx: &mut Ctx, key: &[u8], end: End, n: usize) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    ctx.list_edit(key, |list| {
        if !list.is_live() {
            return (Vec::new(), None);
        }
        let popped = from_end(list, end, n);
        let edits = popped.iter().map(|(id, _)| list.remove(*id)).collect();
        (edits, Some(popped.into_iter().map(|(_, v)| v).collect()))
    })
}

/// LPOP and RPOP: `key [count]`.
fn pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    let name = if end == End::Left { "lpop" } else { "rpop" };
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(args[2])?),
        _ => return Err(super::arity_error(name)),
    };
    let popped = pop_values(ctx, args[1], end, count.unwrap_or(1))?;
    match (count, popped) {
        (None, popped) => ctx.out.bulk_or_null(popped.as_ref().and_then(|p| p.first()).map(Vec::as_slice)),
        (Some(_), None) => ctx.out.null_array(),
        (Some(_), Some(values)) => {
            ctx.out.array(values.len());
            values.iter().for_each(|v| ctx.out.bulk(v));
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Left)
}

fn rpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Right)
}

fn llen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let len = with_list(ctx, args[1], |list| list.map_or(0, ListState::len))?;
    ctx.out.int(len as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (start, stop) = (int_arg(args[2])?, int_arg(args[3])?);
    let values: Vec<Vec<u8>> = with_list(ctx, args[1], |list| {
        let Some(list) = list else { return Vec::new() };
        match clamp_ranks(start, stop, list.len()) {
            Some((from, to)) => list.iter().skip(from).take(to - from + 1).map(|(_, v)| v.to_vec()).collect(),
            None => Vec::new(),
        }
    })?;
    ctx.out.array(values.len());
    values.iter().for_each(|v| ctx.out.bulk(v));
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let index = int_arg(args[2])?;
    let value = with_list(ctx, args[1], |list| list.and_then(|l| l.nth(index)).map(|(_, v)| v.to_vec()))?;
    ctx.out.bulk_or_null(value.as_deref());
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let index = int_arg(args[2])?;
    let value = args[3];
    let done = ctx.list_edit(args[1], |list| {
        if !list.is_live() {
            return (Vec::new(), Err("ERR no such key"));
        }
        match list.nth(index) {
            Some((id, _)) => (vec![list.set(id, value)], Ok(())),
            None => (Vec::new(), Err("ERR index out of range")),
        }
    })?;
    done?;
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element
fn linsert(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let before = match args[2] {
        a if is(a, "before") => true,
        a if is(a, "after") => false,
        _ => return Err(SYNTAX.into()),
    };
    let (pivot, value) = (args[3], args[4]);
    let reply = ctx.list_edit(args[1], |list| {
        if !list.is_live() {
            return (Vec::new(), 0);
        }
        match list.iter().find(|(_, v)| *v == pivot) {
            Some((id, _)) => (vec![list.insert_next_to(id, before, value)], list.len() as i64 + 1),
            None => (Vec::new(), -1),
        }
    })?;
    ctx.out.int(reply);
    Ok(())
}

/// LREM key count element: the first `count` matches from the head (negative: from the tail;
/// 0: all).
fn lrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let count = int_arg(args[2])?;
    let value = args[3];
    let removed = ctx.list_edit(args[1], |list| {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
        let matching = |(_, v): &(ElemId, &[u8])| *v == value;
        let ids: Vec<ElemId> = match count {
            c if c < 0 => list.iter().rev().filter(matching).take(limit).map(|(id, _)| id).collect(),
            _ => list.iter().filter(matching).take(limit).map(|(id, _)| id).collect(),
        };
        let n = ids.len();
        (ids.into_iter().map(|id| list.remove(id)).collect(), n)
    })?;
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (start, stop) = (int_arg(args[2])?, int_arg(args[3])?);
    ctx.list_edit(args[1], |list| {
        let keep = clamp_ranks(start, stop, list.len());
        let outside = |i: usize| keep.is_none_or(|(from, to)| i < from || i > to);
        let edits = list.iter().enumerate().filter(|(i, _)| outside(*i)).map(|(_, (id, _))| list.remove(id)).collect();
        (edits, ())
    })?;
    ctx.out.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < args.len() {
        let value = *args.get(i + 1).ok_or(CmdError::from(SYNTAX))?;
        match args[i] {
            a if is(a, "rank") => {
                rank = int_arg(value)?;
                if rank == 0 {
                    return Err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list".into());
                }
                if rank == i64::MIN {
                    return Err("ERR value is out of range".into());
                }
            }
            a if is(a, "count") => count = Some(usize::try_from(int_arg(value)?).map_err(|_| CmdError::from("ERR COUNT can't be negative"))?),
            a if is(a, "maxlen") => maxlen = usize::try_from(int_arg(value)?).map_err(|_| CmdError::from("ERR MAXLEN can't be negative"))?,
            _ => return Err(SYNTAX.into()),
        }
        i += 2;
    }
    let element = args[2];
    let found: Vec<i64> = with_list(ctx, args[1], |list| {
        let Some(list) = list else { return Vec::new() };
        let len = list.len();
        let scan = if maxlen == 0 { len } else { maxlen.min(len) };
        let wanted = match count {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 1,
        };
        let skip = rank.unsigned_abs() as usize - 1;
        let matches = |(i, (_, v)): (usize, (ElemId, &[u8]))| (v == element).then_some(i);
        if rank > 0 {
            list.iter().take(scan).enumerate().filter_map(matches).skip(skip).take(wanted).map(|i| i as i64).collect()
        } else {
            list.iter().rev().take(scan).enumerate().filter_map(matches).skip(skip).take(wanted).map(|i| (len - 1 - i) as i64).collect()
        }
    })?;
    match count {
        None => match found.first() {
            Some(i) => ctx.out.int(*i),
            None => ctx.out.null(),
        },
        Some(_) => {
            ctx.out.array(found.len());
            found.iter().for_each(|i| ctx.out.int(*i));
        }
    }
    Ok(())
}

/// Moves one element from `from` of `src` to `to` of `dst`; returns it, or `None` if `src`
/// is empty. Types are checked as Redis does: the source first, the destination only if there
/// is something to move.
fn move_one(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Option<Vec<u8>>, CmdError> {
    if with_list(ctx, src, |list| list.is_none_or(|l| !l.is_live()))? {
        return Ok(None);
    }
    with_list(ctx, dst, |_| ())?;
    let Some(value) = pop_values(ctx, src, from, 1)?.and_then(|mut v| v.pop()) else { return Ok(None) };
    ctx.list_edit(dst, |_| (vec![ListEdit::Insert { anchor: to.anchor(), values: vec![&value[..]] }], ()))?;
    Ok(Some(value))
}

fn lmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (from, to) = (End::parse(args[3])?, End::parse(args[4])?);
    let moved = move_one(ctx, args[1], args[2], from, to)?;
    ctx.out.bulk_or_null(moved.as_deref());
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let moved = move_one(ctx, args[1], args[2], End::Right, End::Left)?;
    ctx.out.bulk_or_null(moved.as_deref());
    Ok(())
}

/// A blocking command's timeout in seconds (fractions allowed; 0: forever), as a deadline.
fn deadline(arg: &[u8], now: Instant) -> Result<Option<Instant>, CmdError> {
    let seconds: f64 =
        std::str::from_utf8(arg).ok().and_then(|s| s.parse().ok()).filter(|s: &f64| !s.is_nan()).ok_or(CmdError::from("ERR timeout is not a float or out of range"))?;
    if seconds < 0.0 {
        return Err("ERR timeout is negative".into());
    }
    if seconds > 1e12 {
        return Err("ERR timeout is out of range".into());
    }
    Ok((seconds > 0.0).then(|| now + Duration::from_secs_f64(seconds)))
}

/// With nothing to pop: blocks the connection (see [`Block::Pop`]), replies null inside a
/// transaction, or (a retry) replies nothing and stays blocked.
fn nothing_to_pop(ctx: &mut Ctx, args: &[&[u8]], deadline: Option<Instant>, null_array: bool) {
    match ctx.blocking {
        Blocking::Wait => ctx.session.blocked = Some(Block::Pop { args: args.iter().map(|a| a.to_vec()).collect(), deadline, null_array }),
        Blocking::Immediate if null_array => ctx.out.null_array(),
        Blocking::Immediate => ctx.out.null(),
        Blocking::Retry => {}
    }
}

/// Where in a blocked pop's `args` the keys it waits on are: every key of BLPOP and BRPOP, the
/// source of BLMOVE and BRPOPLPUSH.
pub fn waited_keys(args: &[&[u8]]) -> std::ops::Range<usize> {
    if args[0].eq_ignore_ascii_case(b"blpop") || args[0].eq_ignore_ascii_case(b"brpop") {
        1..args.len() - 1
    } else {
        1..2
    }
}

/// The blocked pop `args` retried without the waited keys in `taken` (a connection blocked
/// earlier waits on them: see `pop_queue`), or None if that leaves nothing to pop from.
pub fn retry_without<'a>(args: &[&'a [u8]], taken: &[Vec<u8>]) -> Option<Vec<&'a [u8]>> {
    let free = |key: &[u8]| !taken.iter().any(|t| t.as_slice() == key);
    let waited = waited_keys(args);
    args[waited.clone()].iter().any(|k| free(k)).then(|| args.iter().enumerate().filter(|(i, k)| !waited.contains(i) || free(k)).map(|(_, k)| *k).collect())
}

/// BLPOP and BRPOP: `key [key ...] timeout`; pops from the first non-empty key.
fn blocking_pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    let deadline = deadline(args[args.len() - 1], Instant::now())?;
    for key in &args[1..args.len() - 1] {
        if let Some(value) = pop_values(ctx, key, end, 1)?.and_then(|mut v| v.pop()) {
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.bulk(&value);
            return Ok(());
        }
    }
    nothing_to_pop(ctx, args, deadline, true);
    Ok(())
}

fn blpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Right)
}

/// BLMOVE and BRPOPLPUSH.
fn blocking_move(ctx: &mut Ctx, args: &[&[u8]], from: End, to: End, timeout: &[u8]) -> CmdResult {
    let deadline = deadline(timeout, Instant::now())?;
    match move_one(ctx, args[1], args[2], from, to)? {
        Some(value) => ctx.out.bulk(&value),
        None => nothing_to_pop(ctx, args, deadline, false),
    }
    Ok(())
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
fn blmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (from, to) = (End::parse(args[3])?, End::parse(args[4])?);
    blocking_move(ctx, args, from, to, args[5])
}

fn brpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_move(ctx, args, End::Right, End::Left, args[3])
}
