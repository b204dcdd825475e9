//! Keyspace commands: DEL, EXISTS, TYPE, OBJECT, the EXPIRE family, TTLs, KEYS, SCAN,
//! RANDOMKEY, RENAME, DBSIZE, FLUSHDB/FLUSHALL.

use super::scan_options::{ScanKind, ScanOptions};
use super::strings::{deadline, invalid_expire};
use super::values::{replace, Value};
use super::{flags, int_arg, is, CmdError, CmdResult, Ctx, Spec, ALL_KEYS, NO_KEYS, ONE_KEY, SYNTAX};
use crate::config::MaxmemoryPolicy;
use crate::glob::glob_match;
use crate::keyspace::{Entry, ScanCursor, SHARDS};
use meridian_crdt::{parse_redis_int, Body, KeyState, Kind, NO_EXPIRY};
use rand::Rng;

const TWO_KEYS: super::KeySpec = super::KeySpec { first: 1, last: 2, step: 1 };
/// OBJECT's key, after its subcommand.
const SECOND_ARG: super::KeySpec = super::KeySpec { first: 2, last: 2, step: 1 };
const WHOLE_W: u32 = flags::WRITE | flags::WHOLE;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "del", arity: -2, flags: flags::WRITE, keys: ALL_KEYS, group: "generic", summary: "Deletes one or more keys.", run: del },
    Spec { name: "unlink", arity: -2, flags: flags::WRITE | flags::FAST, keys: ALL_KEYS, group: "generic", summary: "Asynchronously deletes one or more keys.", run: del },
    Spec { name: "exists", arity: -2, flags: flags::READONLY | flags::FAST, keys: ALL_KEYS, group: "generic", summary: "Determines whether one or more keys exist.", run: exists },
    Spec {
        name: "touch",
        arity: -2,
        flags: flags::READONLY | flags::FAST,
        keys: ALL_KEYS,
        group: "generic",
        summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        run: exists,
    },
    Spec { name: "type", arity: 2, flags: flags::READONLY | flags::FAST, keys: ONE_KEY, group: "generic", summary: "Determines the type of value stored at a key.", run: type_of },
    Spec { name: "object", arity: -2, flags: flags::READONLY, keys: SECOND_ARG, group: "generic", summary: "A container for object introspection commands.", run: object },
    Spec { name: "expire", arity: -3, flags: flags::WRITE | flags::FAST, keys: ONE_KEY, group: "generic", summary: "Sets the expiration time of a key in seconds.", run: expire },
    Spec {
        name: "pexpire",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets the expiration time of a key in milliseconds.",
        run: pexpire,
    },
    Spec {
        name: "expireat",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets the expiration time of a key to a Unix timestamp.",
        run: expireat,
    },
    Spec {
        name: "pexpireat",
        arity: -3,
        flags: flags::WRITE | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        run: pexpireat,
    },
    Spec {
        name: "expiretime",
        arity: 2,
        flags: flags::READONLY | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the expiration time of a key as a Unix timestamp.",
        run: expiretime,
    },
    Spec {
        name: "pexpiretime",
        arity: 2,
        flags: flags::READONLY | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        run: pexpiretime,
    },
    Spec { name: "ttl", arity: 2, flags: flags::READONLY | flags::FAST, keys: ONE_KEY, group: "generic", summary: "Returns the expiration time in seconds of a key.", run: ttl },
    Spec {
        name: "pttl",
        arity: 2,
        flags: flags::READONLY | flags::FAST,
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the expiration time in milliseconds of a key.",
        run: pttl,
    },
    Spec { name: "persist", arity: 2, flags: flags::WRITE | flags::FAST, keys: ONE_KEY, group: "generic", summary: "Removes the expiration time of a key.", run: persist },
    Spec { name: "keys", arity: 2, flags: flags::READONLY | flags::WHOLE, keys: NO_KEYS, group: "generic", summary: "Returns all key names that match a pattern.", run: keys },
    Spec { name: "scan", arity: -2, flags: flags::READONLY | flags::WHOLE, keys: NO_KEYS, group: "generic", summary: "Iterates over the key names in the database.", run: scan },
    Spec {
        name: "randomkey",
        arity: 1,
        flags: flags::READONLY | flags::WHOLE,
        keys: NO_KEYS,
        group: "generic",
        summary: "Returns a random key name from the database.",
        run: randomkey,
    },
    Spec { name: "rename", arity: 3, flags: flags::WRITE, keys: TWO_KEYS, group: "generic", summary: "Renames a key and overwrites the destination.", run: rename },
    Spec {
        name: "renamenx",
        arity: 3,
        flags: flags::WRITE | flags::FAST,
        keys: TWO_KEYS,
        group: "generic",
        summary: "Renames a key only when the target key name doesn't exist.",
        run: renamenx,
    },
    Spec {
        name: "dbsize",
        arity: 1,
        flags: flags::READONLY | flags::FAST | flags::WHOLE,
        keys: NO_KEYS,
        group: "server",
        summary: "Returns the number of keys in the database.",
        run: dbsize,
    },
    Spec { name: "flushdb", arity: -1, flags: WHOLE_W, keys: NO_KEYS, group: "server", summary: "Removes all keys from the current database.", run: flush },
    Spec { name: "flushall", arity: -1, flags: WHOLE_W, keys: NO_KEYS, group: "server", summary: "Removes all keys from all databases.", run: flush },
];

fn del(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let deleted = args[1..].iter().filter(|key| ctx.delete(key)).count();
    ctx.out.int(deleted as i64);
    Ok(())
}

/// EXISTS and TOUCH key [key ...]: how many of the keys exist (a key named twice counts
/// twice). Each lookup is a use of the key (its LRU stamp and LFU count), which is all TOUCH
/// is for.
fn exists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut found = 0;
    for key in &args[1..] {
        let hit = ctx.db.get(key, ctx.now).is_some();
        ctx.count_lookup(hit);
        found += hit as i64;
    }
    ctx.out.int(found);
    Ok(())
}

/// Redis's type name of a visible entry.
fn type_name(entry: &Entry) -> &'static str {
    entry.state.kind().map_or("none", Kind::name)
}

fn type_of(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let name = ctx.db.get(args[1], ctx.now).map(|e| type_name(e));
    ctx.count_lookup(name.is_some());
    ctx.out.simple(name.unwrap_or("none"));
    Ok(())
}

/// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT key, and OBJECT HELP: a key's introspection,
/// looked up without counting as a use. ENCODING names the encoding Redis 7.0 would pick for
/// the value as it stands (Meridian's own representation is one per type); FREQ and IDLETIME
/// are refused under the policies that do not rank by them, with Redis's words.
fn object(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("help", 2) => {
            let help = [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ];
            super::reply_help(ctx, &help);
            Ok(())
        }
        ("encoding" | "freq" | "idletime" | "refcount", 3) => {
            let lfu_policy = matches!(ctx.shared.config.read().policy(), MaxmemoryPolicy::AllkeysLfu | MaxmemoryPolicy::VolatileLfu);
            let now = ctx.now;
            let lfu = &ctx.shared.keyspace.lfu;
            let found = ctx.db.look(args[2], now).map(|entry| match sub.as_str() {
                "encoding" => Ok(Introspection::Name(encoding_of(&entry.state))),
                "refcount" => Ok(Introspection::Number(refcount_of(&entry.state))),
                "freq" if lfu_policy => Ok(Introspection::Number(lfu.decayed(entry.freq, entry.idle_ms(now)).into())),
                "freq" => Err(CmdError::from("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
                _ if lfu_policy => Err(CmdError::from("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
                _ => Ok(Introspection::Number((entry.idle_ms(now) / 1000).into())),
            });
            ctx.count_lookup(found.is_some());
            match found.transpose()? {
                None => ctx.out.null(),
                Some(Introspection::Name(name)) => ctx.out.bulk(name.as_bytes()),
                Some(Introspection::Number(n)) => ctx.out.int(n),
            }
            Ok(())
        }
        ("help" | "encoding" | "freq" | "idletime" | "refcount", _) => Err(super::arity_error(&format!("object|{sub}"))),
        _ => Err(super::unknown_subcommand("OBJECT", args[1])),
    }
}

/// What an OBJECT subcommand answers.
enum Introspection {
    Name(&'static str),
    Number(i64),
}

/// The encoding Redis 7.0 gives a value like `state`'s, at its default thresholds
/// (`*-max-listpack-entries` 128, `*-max-listpack-value` 64, `set-max-intset-entries` 512).
/// Redis keeps a converted encoding when the value shrinks again, and gives `raw` to a short
/// string APPEND or SETRANGE made; this looks at the value as it stands.
fn encoding_of(state: &KeyState) -> &'static str {
    const LISTPACK_ENTRIES: usize = 128;
    const LISTPACK_VALUE: usize = 64;
    const INTSET_ENTRIES: usize = 512;
    const EMBSTR_LEN: usize = 44;
    let short = |bytes: &[u8]| bytes.len() <= LISTPACK_VALUE;
    match state.kind() {
        Some(Kind::String) => match state.string().get() {
            Some(value) if parse_redis_int(&value).is_some() => "int",
            Some(value) if value.len() <= EMBSTR_LEN => "embstr",
            _ => "raw",
        },
        Some(Kind::List) => "quicklist",
        Some(Kind::Set) => match state.set() {
            Some(set) if set.len() <= INTSET_ENTRIES && set.iter().all(|(m, _)| parse_redis_int(m).is_some()) => "intset",
            _ => "hashtable",
        },
        Some(Kind::Hash) => match state.hash() {
            Some(hash) if hash.len() <= LISTPACK_ENTRIES && hash.iter().all(|(f, v)| short(f) && v.get().is_some_and(|v| short(&v))) => "listpack",
            _ => "hashtable",
        },
        Some(Kind::Zset) => match state.zset() {
            Some(zset) if zset.members().len() <= LISTPACK_ENTRIES && zset.ordered().all(|(_, m)| short(m)) => "listpack",
            _ => "skiplist",
        },
        None => "raw",
    }
}

/// The reference count Redis reports: its shared integers 0..9999 are never freed
/// (`OBJ_SHARED_REFCOUNT`); every other value has one owner.
fn refcount_of(state: &KeyState) -> i64 {
    const SHARED_INTEGERS: i64 = 10_000;
    let shared = state.kind() == Some(Kind::String) && state.string().get().and_then(|v| parse_redis_int(&v)).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
    if shared {
        i32::MAX.into()
    } else {
        1
    }
}

/// The EXPIRE family: `amount` in `unit_ms`, relative to now unless `absolute`, with
/// Redis 7's NX / XX / GT / LT conditions.
fn expire_generic(ctx: &mut Ctx, args: &[&[u8]], unit_ms: i64, absolute: bool, name: &str) -> CmdResult {
    let amount = int_arg(args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        match opt {
            o if is(o, "nx") => nx = true,
            o if is(o, "xx") => xx = true,
            o if is(o, "gt") => gt = true,
            o if is(o, "lt") => lt = true,
            o => return Err(CmdError::new(format!("ERR Unsupported option {}", String::from_utf8_lossy(o)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    let when = deadline(ctx.now, amount, unit_ms, absolute).ok_or_else(|| invalid_expire(name))?;
    let key = args[1];
    let Some(entry) = ctx.db.get(key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let current = entry.state.expires_at().map(|at| at as i64);
    let refused = (nx && current.is_some()) || (xx && current.is_none()) || (gt && current.is_none_or(|c| when <= c)) || (lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= ctx.now as i64 {
        ctx.delete(key);
    } else {
        let seen = ctx.seen_ttl(key);
        ctx.write(key, Body::Expire { seen, at: when as u64 });
    }
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// TTL-style replies: -2 without the key, -1 without a TTL, else `f(expires_at)`.
fn ttl_reply(ctx: &mut Ctx, key: &[u8], f: impl Fn(u64, u64) -> i64) -> CmdResult {
    let now = ctx.now;
    let reply = match ctx.db.get(key, now) {
        None => -2,
        Some(entry) => entry.state.expires_at().map_or(-1, |at| f(at, now)),
    };
    ctx.count_lookup(reply != -2);
    ctx.out.int(reply);
    Ok(())
}

fn expiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_reply(ctx, args[1], |at, _| (at / 1000) as i64)
}

fn pexpiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_reply(ctx, args[1], |at, _| at as i64)
}

fn ttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_reply(ctx, args[1], |at, now| ((at - now + 500) / 1000) as i64)
}

fn pttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_reply(ctx, args[1], |at, now| (at - now) as i64)
}

fn persist(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let key = args[1];
    let has_ttl = ctx.db.get(key, ctx.now).is_some_and(|e| e.state.expires_at().is_some());
    if has_ttl {
        let seen = ctx.seen_ttl(key);
        ctx.write(key, Body::Expire { seen, at: NO_EXPIRY });
    }
    ctx.out.int(has_ttl as i64);
    Ok(())
}

fn keys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (pattern, now) = (args[1], ctx.now);
    let mut found: Vec<Box<[u8]>> = Vec::new();
    for i in 0..SHARDS {
        ctx.db.visit(i, 0, 0, |e| {
            if e.is_visible(now) && glob_match(pattern, &e.key, false) {
                found.push(e.key[..].into());
            }
        });
    }
    ctx.out.array(found.len());
    found.iter().for_each(|k| ctx.out.bulk(k));
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let options = ScanOptions::parse(&args[1..], ScanKind::Keys)?;
    let (count, now) = (options.count, ctx.now);
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let mut cursor = ScanCursor::decode(options.cursor);
    while let Some(at) = cursor {
        let at = at.leveled(ctx.db.with_shard(at.shard, |shard| shard.len() + shard.counts().cold), count);
        ctx.db.visit(at.shard, at.level, at.part, |entry| {
            let wanted = entry.is_visible(now) && options.matches(&entry.key) && options.type_filter.is_none_or(|t| t.eq_ignore_ascii_case(type_name(entry).as_bytes()));
            if wanted {
                found.push(entry.key[..].into());
            }
        });
        cursor = at.next();
        if found.len() >= count {
            break;
        }
    }
    ctx.out.array(2);
    ctx.out.bulk(cursor.map_or(0, |c| c.encode()).to_string().as_bytes());
    ctx.out.array(found.len());
    found.iter().for_each(|k| ctx.out.bulk(k));
    Ok(())
}

fn randomkey(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let mut rng = rand::thread_rng();
    let start = rng.gen_range(0..SHARDS);
    // Start at a random shard and take a random visible key of the first shard that has one.
    let mut chosen = None;
    for step in 0..SHARDS {
        let index = (start + step) % SHARDS;
        let mut visible: Vec<Box<[u8]>> = Vec::new();
        ctx.db.visit(index, 0, 0, |e| {
            if e.is_visible(now) {
                visible.push(e.key[..].into());
            }
        });
        chosen = (!visible.is_empty()).then(|| visible.swap_remove(rng.gen_range(0..visible.len())));
        if chosen.is_some() {
            break;
        }
    }
    ctx.out.bulk_or_null(chosen.as_deref());
    Ok(())
}

/// Moves `src` to `dst` (value of any type, and TTL); false if `nx` and `dst` exists.
fn rename_generic(ctx: &mut Ctx, args: &[&[u8]], nx: bool) -> Result<bool, CmdError> {
    let (src, dst) = (args[1], args[2]);
    let now = ctx.now;
    let (value, ttl) = match ctx.db.get(src, now) {
        Some(entry) => (Value::of(&entry.state), entry.state.expires_at()),
        None => return Err("ERR no such key".into()),
    };
    if src == dst {
        return Ok(!nx);
    }
    if nx && ctx.db.get(dst, now).is_some() {
        return Ok(false);
    }
    replace(ctx, dst, &value.unwrap_or(Value::String(Vec::new())), ttl)?;
    ctx.delete(src);
    Ok(true)
}

fn rename(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

fn renamenx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let renamed = rename_generic(ctx, args, true)?;
    ctx.out.int(renamed as i64);
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let live = ctx.db.counts().live;
    ctx.out.int(live as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL [ASYNC | SYNC]: deletes every key this node sees. Each deletion is an
/// observed-remove op, so keys written concurrently elsewhere survive (see docs/semantics.md).
fn flush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match &args[1..] {
        [] => {}
        [mode] if is(mode, "async") || is(mode, "sync") => {}
        _ => return Err(SYNTAX.into()),
    }
    for i in 0..SHARDS {
        let mut keys: Vec<Box<[u8]>> = Vec::new();
        ctx.db.visit(i, 0, 0, |e| {
            if e.state.is_live() {
                keys.push(e.key[..].into());
            }
        });
        // The shard stays locked from listing to deleting: its keys go atomically.
        for key in keys {
            ctx.delete(&key);
        }
    }
    ctx.out.ok();
    Ok(())
}
