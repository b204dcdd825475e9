//! Sorted-set algebra: ZUNION, ZINTER, ZDIFF (read or stored) and ZINTERCARD. Inputs may be
//! sorted sets or plain sets (every member scored 1), as in Redis.

use super::sets::positive_count;
use super::values::Scored;
use super::zset_ranges::store_scored;
use super::zsets::reply_scored;
use super::{flags, int_arg, is, CmdError, CmdResult, Ctx, KeySpec, Spec, ALL_KEYS, SYNTAX, WRONGTYPE};
use hashbrown::HashMap;
use meridian_crdt::{parse_score, Kind};

const R: u32 = flags::READONLY;
const STORE: u32 = flags::WRITE | flags::DENYOOM;
const FROM_SECOND: KeySpec = KeySpec { first: 2, last: -1, step: 1 };

pub const COMMANDS: &[Spec] = &[
    Spec { name: "zunion", arity: -3, flags: R, keys: FROM_SECOND, group: "sorted_set", summary: "Returns the union of multiple sorted sets.", run: zunion },
    Spec { name: "zunionstore", arity: -4, flags: STORE, keys: ALL_KEYS, group: "sorted_set", summary: "Stores the union of multiple sorted sets in a key.", run: zunionstore },
    Spec { name: "zinter", arity: -3, flags: R, keys: FROM_SECOND, group: "sorted_set", summary: "Returns the intersect of multiple sorted sets.", run: zinter },
    Spec { name: "zinterstore", arity: -4, flags: STORE, keys: ALL_KEYS, group: "sorted_set", summary: "Stores the intersect of multiple sorted sets in a key.", run: zinterstore },
    Spec {
        name: "zintercard",
        arity: -3,
        flags: R,
        keys: FROM_SECOND,
        group: "sorted_set",
        summary: "Returns the number of members of the intersect of multiple sorted sets.",
        run: zintercard,
    },
    Spec { name: "zdiff", arity: -3, flags: R, keys: FROM_SECOND, group: "sorted_set", summary: "Returns the difference between multiple sorted sets.", run: zdiff },
    Spec { name: "zdiffstore", arity: -4, flags: STORE, keys: ALL_KEYS, group: "sorted_set", summary: "Stores the difference of multiple sorted sets in a key.", run: zdiffstore },
];

/// How several inputs combine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Union,
    Inter,
    Diff,
}

/// How the scores of a member found in several inputs combine (AGGREGATE).
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, into: &mut f64, score: f64) {
        *into = match self {
            // inf + -inf is NaN: Redis makes it 0.
            Aggregate::Sum => Some(*into + score).filter(|s| !s.is_nan()).unwrap_or(0.0),
            Aggregate::Min => into.min(score),
            Aggregate::Max => into.max(score),
        };
    }
}

/// The members of an input with their scores: a sorted set's, a set's (scored 1), or none for
/// a missing key; WRONGTYPE for other types.
fn input(ctx: &mut Ctx, key: &[u8]) -> Result<Scored, CmdError> {
    let Some(entry) = ctx.db.get(key, ctx.now) else { return Ok(Vec::new()) };
    let state = &entry.state;
    match state.kind() {
        Some(Kind::Set) => Ok(state.set().map(|s| s.iter().map(|(m, _)| (m.to_vec(), 1.0)).collect()).unwrap_or_default()),
        Some(Kind::Zset) => Ok(state.zset().map(|z| z.ordered().map(|(s, m)| (m.to_vec(), s)).collect()).unwrap_or_default()),
        None => Ok(Vec::new()),
        Some(_) => Err(WRONGTYPE.into()),
    }
}

/// Where a command's result goes, which decides the options it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// ZUNION, ZINTER, ZDIFF: WITHSCORES.
    Reply,
    /// The STORE variants.
    Store,
    /// ZINTERCARD: LIMIT, and no WEIGHTS or AGGREGATE.
    Count,
}

/// A parsed `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] [LIMIT n]`.
struct Request {
    inputs: Vec<Scored>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// Parses the arguments from `numkeys` on (`args[0]` is numkeys) in Redis's order: the key
/// count, then every key's type, then the options `output` allows.
fn parse_request(ctx: &mut Ctx, name: &str, args: &[&[u8]], how: Combine, output: Output) -> Result<Request, CmdError> {
    let numkeys = int_arg(args[0])?;
    if numkeys < 1 {
        return Err(CmdError::new(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 1 {
        return Err(SYNTAX.into());
    }
    let inputs = args[1..=numkeys].iter().map(|k| input(ctx, k)).collect::<Result<Vec<_>, _>>()?;
    let mut request = Request { inputs, weights: vec![1.0; numkeys], aggregate: Aggregate::Sum, with_scores: false, limit: 0 };
    let options = &args[1 + numkeys..];
    let weighs = how != Combine::Diff && output != Output::Count;
    let mut i = 0;
    while i < options.len() {
        let left = options.len() - i;
        let word = options[i];
        if weighs && left > numkeys && is(word, "weights") {
            for (j, weight) in options[i + 1..=i + numkeys].iter().enumerate() {
                request.weights[j] = parse_score(weight).ok_or(CmdError::from("ERR weight value is not a float"))?;
            }
            i += 1 + numkeys;
        } else if weighs && left >= 2 && is(word, "aggregate") {
            request.aggregate = match options[i + 1] {
                a if is(a, "sum") => Aggregate::Sum,
                a if is(a, "min") => Aggregate::Min,
                a if is(a, "max") => Aggregate::Max,
                _ => return Err(SYNTAX.into()),
            };
            i += 2;
        } else if output == Output::Reply && is(word, "withscores") {
            request.with_scores = true;
            i += 1;
        } else if output == Output::Count && left >= 2 && is(word, "limit") {
            request.limit = positive_count(options[i + 1]).map_err(|_| CmdError::from("ERR LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(SYNTAX.into());
        }
    }
    Ok(request)
}

/// Combines the inputs; the result is in sorted-set order.
fn combine(request: &Request, how: Combine) -> Scored {
    // 0 * inf is NaN: Redis makes it 0.
    let weighted = |score: f64, weight: f64| Some(score * weight).filter(|s| !s.is_nan()).unwrap_or(0.0);
    let (first, rest) = request.inputs.split_first().expect("at least one input");
    let mut result: Scored = match how {
        Combine::Union => {
            let mut scores: HashMap<&[u8], f64> = HashMap::new();
            for (input, &weight) in request.inputs.iter().zip(&request.weights) {
                for (m, s) in input {
                    let s = weighted(*s, weight);
                    scores.entry(&m[..]).and_modify(|into| request.aggregate.apply(into, s)).or_insert(s);
                }
            }
            scores.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
        }
        Combine::Inter => {
            let lookups: Vec<HashMap<&[u8], f64>> = rest.iter().map(|input| input.iter().map(|(m, s)| (&m[..], *s)).collect()).collect();
            first
                .iter()
                .filter_map(|(m, s)| {
                    let mut score = weighted(*s, request.weights[0]);
                    for (lookup, &weight) in lookups.iter().zip(&request.weights[1..]) {
                        request.aggregate.apply(&mut score, weighted(*lookup.get(&m[..])?, weight));
                    }
                    Some((m.clone(), score))
                })
                .collect()
        }
        Combine::Diff => {
            let others: Vec<hashbrown::HashSet<&[u8]>> = rest.iter().map(|input| input.iter().map(|(m, _)| &m[..]).collect()).collect();
            first.iter().filter(|(m, _)| !others.iter().any(|o| o.contains(&m[..]))).cloned().collect()
        }
    };
    result.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    result
}

/// ZUNION, ZINTER, ZDIFF: `numkeys key... [options]`.
fn combine_reply(ctx: &mut Ctx, args: &[&[u8]], how: Combine) -> CmdResult {
    let name = args[0].to_ascii_lowercase();
    let request = parse_request(ctx, &String::from_utf8_lossy(&name), &args[1..], how, Output::Reply)?;
    let result = combine(&request, how);
    reply_scored(ctx, &result, request.with_scores);
    Ok(())
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: `dst numkeys key... [options]`.
fn combine_store(ctx: &mut Ctx, args: &[&[u8]], how: Combine) -> CmdResult {
    let name = args[0].to_ascii_lowercase();
    let request = parse_request(ctx, &String::from_utf8_lossy(&name), &args[2..], how, Output::Store)?;
    let result = combine(&request, how);
    store_scored(ctx, args[1], result)
}

fn zunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Union)
}

fn zinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Inter)
}

fn zdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_reply(ctx, args, Combine::Diff)
}

fn zunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Union)
}

fn zinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Inter)
}

fn zdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    combine_store(ctx, args, Combine::Diff)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
fn zintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let request = parse_request(ctx, "zintercard", &args[1..], Combine::Inter, Output::Count)?;
    let len = combine(&request, Combine::Inter).len();
    let limit = request.limit;
    ctx.out.int(if limit > 0 { len.min(limit) } else { len } as i64);
    Ok(())
}
