//! Commands: the table that maps names to handlers, and the dispatcher that checks arity,
//! authentication, MULTI queueing and memory, locks the shards of the declared keys, and runs
//! the handler. Each family lives in its own module; adding a command touches its family's
//! table only.

mod connection;
mod hashes;
mod keys;
mod lists;
mod pubsub;
mod random_pick;
mod replication;
mod scan_options;
mod server;
mod sets;
mod strings;
mod transactions;
mod values;
mod zset_algebra;
mod zset_ranges;
mod zsets;

pub use lists::{retry_without, waited_keys};
pub use pubsub::write_delivery;
pub use transactions::release_watches;

use crate::clock::now_ms;
use crate::keyspace::Locked;
use crate::node::Applied;
use crate::resp::Reply;
use crate::session::{Multi, Session};
use crate::shared::{HotConfig, Shared};
use hashbrown::HashMap;
use meridian_crdt::{hlc_time_of_ms, parse_redis_int, Body, Change, Collection, Context, KeyState, Kind, ListEdit, ListState, Seen};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Command flags (Redis's command flags, the subset Meridian acts on or reports).
pub mod flags {
    /// Changes data.
    pub const WRITE: u32 = 1;
    /// Only reads data.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory: refused with -OOM above maxmemory.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 4;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 5;
    /// Runs at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const TX_CONTROL: u32 = 1 << 6;
    /// Reads or writes the whole keyspace, visiting shards one at a time.
    pub const WHOLE: u32 = 1 << 7;
    /// Connection-level commands.
    pub const CONNECTION: u32 = 1 << 8;
    /// Allowed to a RESP2 connection that has subscriptions.
    pub const SUBSCRIBED: u32 = 1 << 9;

    /// Redis's names for the flags, as COMMAND reports them.
    pub const NAMES: [(u32, &str); 7] =
        [(WRITE, "write"), (READONLY, "readonly"), (DENYOOM, "denyoom"), (ADMIN, "admin"), (NO_AUTH, "no_auth"), (FAST, "fast"), (TX_CONTROL, "no_multi")];
}

/// Where a command's keys are: Redis's (first, last, step); `last` < 0 counts from the end.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// Index of the first key (0: no keys).
    pub first: i32,
    /// Index of the last key.
    pub last: i32,
    /// Distance between keys.
    pub step: i32,
}

/// No keys.
pub const NO_KEYS: KeySpec = KeySpec { first: 0, last: 0, step: 0 };
/// One key, at index 1.
pub const ONE_KEY: KeySpec = KeySpec { first: 1, last: 1, step: 1 };
/// Every argument from index 1 is a key.
pub const ALL_KEYS: KeySpec = KeySpec { first: 1, last: -1, step: 1 };

/// A command's entry in the table.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or, if negative, the minimum.
    pub arity: i32,
    /// [`flags`].
    pub flags: u32,
    /// Key positions.
    pub keys: KeySpec,
    /// Command group for COMMAND DOCS (`string`, `generic`, ...).
    pub group: &'static str,
    /// One-line summary for COMMAND DOCS.
    pub summary: &'static str,
    /// The handler.
    pub run: Handler,
}

/// A command handler: reads its arguments (name first), writes its reply. Arguments borrow
/// the connection's read buffer.
pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

impl Spec {
    fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The key arguments of `args`, by the key spec.
    pub fn key_args<'a>(&self, args: &'a [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let n = args.len() as i32;
        let k = self.keys;
        let last = if k.last < 0 { n + k.last } else { k.last.min(n - 1) };
        let (first, step) = (k.first, k.step.max(1));
        let range = if first == 0 { 0..0 } else { first..last + 1 };
        range.step_by(step as usize).map(move |i| args[i as usize])
    }

    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

/// An error reply, with its code (`ERR`, `WRONGTYPE`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

/// A handler's outcome; on error the dispatcher sends the error reply.
pub type CmdResult = Result<(), CmdError>;

impl CmdError {
    /// An error with a computed message.
    pub fn new(msg: impl Into<String>) -> Self {
        CmdError(Cow::Owned(msg.into()))
    }
}

impl From<&'static str> for CmdError {
    fn from(s: &'static str) -> Self {
        CmdError(Cow::Borrowed(s))
    }
}

/// `ERR syntax error`.
pub const SYNTAX: &str = "ERR syntax error";
/// `ERR value is not an integer or out of range`.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// `WRONGTYPE Operation against a key holding the wrong kind of value`.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// WRONGTYPE unless a visible key reads as `kind`.
pub fn check_kind(state: &KeyState, kind: Kind) -> CmdResult {
    match state.kind() {
        Some(k) if k != kind => Err(WRONGTYPE.into()),
        _ => Ok(()),
    }
}

/// Parses argument `arg` as a Redis integer.
pub fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_redis_int(arg).ok_or(CmdError::from(NOT_INTEGER))
}

/// True if `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn arity_error(name: &str) -> CmdError {
    CmdError::new(format!("ERR wrong number of arguments for '{name}' command"))
}

/// A container command's HELP reply: its lines, as status replies, the way Redis sends them.
pub fn reply_help(ctx: &mut Ctx, lines: &[&str]) {
    ctx.out.array(lines.len());
    lines.iter().for_each(|line| ctx.out.simple(line));
}

/// Redis's reply to a container command (CONFIG, COMMAND, OBJECT) given a subcommand it does
/// not have.
pub fn unknown_subcommand(command: &str, sub: &[u8]) -> CmdError {
    CmdError::new(format!("ERR unknown subcommand '{}'. Try {command} HELP.", String::from_utf8_lossy(&sub[..sub.len().min(128)])))
}

/// What a collection edit found (see [`Ctx::edit`]).
#[derive(Clone, Copy, Debug)]
pub struct Edited {
    /// Distinct members the command named.
    pub named: usize,
    /// Of those, how many were there before (for an add: not new; for a remove: removed).
    pub were_live: usize,
}

impl Edited {
    /// How many of the members named were new.
    pub fn added(self) -> usize {
        self.named - self.were_live
    }
}

/// Everything a handler works with.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Shared,
    /// This connection.
    pub session: &'a mut Session,
    /// Where the reply goes.
    pub out: Reply<'a>,
    /// The locked shards.
    pub db: Locked<'a>,
    /// Unix milliseconds when the command started (one clock reading per command, as Redis).
    pub now: u64,
    /// What a blocking command does when it finds nothing to pop.
    pub blocking: Blocking,
}

/// What a blocking command (BLPOP, ...) does when every key it names is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// Block the connection until a push or the timeout.
    Wait,
    /// Reply null at once (inside MULTI/EXEC, as Redis does).
    Immediate,
    /// A blocked command retried after a push: reply only if it pops something.
    Retry,
}

impl Ctx<'_> {
    /// Makes a local write to `key`: stamps and logs the op, then applies it. Every write of
    /// every command ends here.
    pub fn write(&mut self, key: &[u8], body: Body<&[u8]>) {
        let op = self.shared.node.stamp(key, body);
        self.db.apply(key, op.stamp(), &op.body, &Applied(&self.shared.node), &self.shared.write_stability());
        // Replication hears of it when the replies are flushed (see `net::connection`): one
        // wake-up per pipeline instead of one per write.
        self.session.last_write = op.seq;
    }

    /// What a write replacing `key` removes: all of a visible key's state (its TTL only if
    /// `keep_ttl` is false), and whatever a hidden key still holds. A key whose TTL has passed
    /// is expired first (an `Expired` op), so the write starts a new generation of the key:
    /// writes still on their way from before the expiry cannot revive the old one.
    pub fn seen(&mut self, key: &[u8], keep_ttl: bool) -> Seen {
        self.expire_if_due(key);
        let at = self.db.at(key);
        match at.shard.raw(at.hash, key) {
            Some(entry) => entry.state.seen(keep_ttl),
            None => Seen::default(),
        }
    }

    /// Turns `key` into an expired key everywhere if its TTL has passed: an `Expired` op
    /// through the normal write path. Returns true if it did.
    pub fn expire_if_due(&mut self, key: &[u8]) -> bool {
        let Some(at) = self.db.expired_at(key, self.now) else { return false };
        self.write(key, Body::Expired { before: hlc_time_of_ms(at) });
        self.db.at(key).shard.count_expired();
        true
    }

    /// The TTL versions a write changing only `key`'s TTL removes.
    pub fn seen_ttl(&mut self, key: &[u8]) -> Context {
        let at = self.db.at(key);
        at.shard.raw(at.hash, key).map(|e| e.state.seen_ttl()).unwrap_or_default()
    }

    /// Deletes `key` if a reader sees it; true if it did.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        if self.db.get(key, self.now).is_none() {
            return false;
        }
        let seen = self.seen(key, false);
        self.write(key, Body::Del { seen });
        true
    }

    /// The state of `key` if a reader sees it, WRONGTYPE if it is of another kind than `kind`.
    pub fn typed(&mut self, key: &[u8], kind: Kind) -> Result<Option<&KeyState>, CmdError> {
        match self.db.get(key, self.now) {
            Some(entry) => {
                check_kind(&entry.state, kind)?;
                Ok(Some(&entry.state))
            }
            None => Ok(None),
        }
    }

    /// Changes members of the collection at `key` (see [`KeyState::edit_op`]), WRONGTYPE if
    /// the key holds another type. A key whose TTL has passed is expired first, so the edit
    /// starts a new generation. Returns the counts the command's reply is made of.
    pub fn edit<'b>(&mut self, key: &[u8], collection: Collection, changes: impl IntoIterator<Item = (&'b [u8], Change<&'b [u8]>)>) -> Result<Edited, CmdError> {
        self.expire_if_due(key);
        let at = self.db.at(key);
        let empty = KeyState::default();
        let state = at.shard.raw(at.hash, key).map_or(&empty, |e| &e.state);
        check_kind(state, collection.kind())?;
        let op = state.edit_op(collection, changes);
        if let Some(body) = op.body {
            self.write(key, body);
        }
        Ok(Edited { named: op.named, were_live: op.were_live })
    }

    /// Changes the list at `key` with the edits `plan` makes from its current state (a missing
    /// key is an empty list), WRONGTYPE if the key holds another type. A key whose TTL has
    /// passed is expired first. Returns what `plan` returns beside its edits.
    pub fn list_edit<'b, R>(&mut self, key: &[u8], plan: impl FnOnce(&ListState) -> (Vec<ListEdit<&'b [u8]>>, R)) -> Result<R, CmdError> {
        self.expire_if_due(key);
        let at = self.db.at(key);
        let empty = KeyState::default();
        let state = at.shard.raw(at.hash, key).map_or(&empty, |e| &e.state);
        check_kind(state, Kind::List)?;
        let none = ListState::default();
        let (edits, result) = plan(state.list().filter(|_| state.kind() == Some(Kind::List)).unwrap_or(&none));
        if let Some(body) = state.list_op(edits) {
            self.write(key, body);
        }
        Ok(result)
    }

    /// Counts a key lookup for INFO's keyspace_hits / keyspace_misses.
    pub fn count_lookup(&mut self, hit: bool) {
        if hit {
            self.session.stats.hits += 1;
        } else {
            self.session.stats.misses += 1;
        }
    }
}

fn table() -> &'static HashMap<&'static str, &'static Spec> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        [
            strings::COMMANDS,
            hashes::COMMANDS,
            sets::COMMANDS,
            zsets::COMMANDS,
            zset_ranges::COMMANDS,
            zset_algebra::COMMANDS,
            lists::COMMANDS,
            keys::COMMANDS,
            connection::COMMANDS,
            server::COMMANDS,
            transactions::COMMANDS,
            replication::COMMANDS,
            pubsub::COMMANDS,
        ]
        .into_iter()
        .flatten()
        .map(|spec| (spec.name, spec))
        .collect()
    })
}

/// Every command, sorted by name.
pub fn all_specs() -> Vec<&'static Spec> {
    let mut all: Vec<&Spec> = table().values().copied().collect();
    all.sort_by_key(|s| s.name);
    all
}

/// The command called `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut lower = [0u8; 32];
    let lower = lower.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(std::str::from_utf8(lower).ok()?).copied()
}

fn unknown_command(args: &[&[u8]]) -> CmdError {
    let name = String::from_utf8_lossy(args[0]);
    let mut msg = format!("ERR unknown command '{}', with args beginning with: ", truncate(&name, 128));
    for arg in args.iter().skip(1) {
        if msg.len() >= 128 {
            break;
        }
        msg.push_str(&format!("'{}' ", truncate(&String::from_utf8_lossy(arg), 128)));
    }
    CmdError::new(msg)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Runs one request (`args[0]` is the command name) for `session`, writing the reply to `out`.
pub fn execute(shared: &Shared, session: &mut Session, out: &mut Vec<u8>, args: &[&[u8]]) {
    let protocol = session.protocol;
    let mut reply = Reply::new(out, protocol);
    let outcome = check(shared, session, args);
    let spec = match outcome {
        Ok(spec) => spec,
        Err(err) => {
            if let Some(multi) = &mut session.multi {
                multi.failed = true;
            }
            session.stats.errors += 1;
            reply.error(&err.0);
            return;
        }
    };
    session.stats.commands += 1;
    session.last_command = spec.name;
    if let Some(multi) = session.multi.as_mut().filter(|_| !spec.has(flags::TX_CONTROL)) {
        multi.queued.push(args.iter().map(|a| a.to_vec()).collect());
        session.info.multi.store(multi.queued.len() as i64, std::sync::atomic::Ordering::Relaxed);
        reply.simple("QUEUED");
        return;
    }
    let db = if spec.has(flags::WHOLE) || spec.keys.first == 0 { shared.keyspace.unlocked() } else { shared.keyspace.lock_keys(spec.key_args(args)) };
    let now = now_ms();
    session.last_command_ms = now;
    let mut ctx = Ctx { shared, session, out: reply, db, now, blocking: Blocking::Wait };
    run(&mut ctx, spec, args);
}

/// Retries a blocked command (`args`, as first run) after a push: writes its reply to `out`
/// if it now pops something, and nothing otherwise (an error, such as the key having become
/// another type, keeps it blocked, as in Redis).
pub fn retry_blocked(shared: &Shared, session: &mut Session, out: &mut Vec<u8>, args: &[&[u8]]) {
    let Some(spec) = lookup(args[0]) else { return };
    let start = out.len();
    let reply = Reply::new(out, session.protocol);
    let db = shared.keyspace.lock_keys(spec.key_args(args));
    let mut ctx = Ctx { shared, session, out: reply, db, now: now_ms(), blocking: Blocking::Retry };
    if (spec.run)(&mut ctx, args).is_err() {
        ctx.out.truncate(start);
    }
}

/// The checks before a command runs or is queued: known, arity, authenticated, durable
/// writes possible, memory.
fn check(shared: &Shared, session: &Session, args: &[&[u8]]) -> Result<&'static Spec, CmdError> {
    let spec = lookup(args[0]).ok_or_else(|| unknown_command(args))?;
    if !spec.arity_ok(args.len()) {
        return Err(arity_error(spec.name));
    }
    if !session.authenticated && !spec.has(flags::NO_AUTH) {
        return Err("NOAUTH Authentication required.".into());
    }
    if session.subscriptions.is_some() && session.protocol == crate::resp::Protocol::Resp2 && !spec.has(flags::SUBSCRIBED) {
        return Err(CmdError::new(format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name)));
    }
    if spec.has(flags::WRITE) {
        let failure = shared.node.durable().and_then(|d| d.failure()).or_else(|| shared.keyspace.cold().and_then(|t| t.failure()));
        if let Some(failure) = failure {
            return Err(CmdError::new(format!("MISCONF Errors writing to the AOF file: {failure}")));
        }
    }
    if spec.has(flags::DENYOOM) {
        let maxmemory = HotConfig::get(&shared.hot.maxmemory);
        // Without a limit there is nothing to check, and no allocator statistics to refresh.
        let mut used = if maxmemory > 0 { crate::alloc::used_memory_recent() } else { 0 };
        if maxmemory > 0 && used > maxmemory {
            // Over by the allocator's count: look closer (the op log and QUIC buffers do not
            // count), and only if still over, spill or evict. A node whose op log alone passes
            // the limit so skips the fresh allocator reading a pass starts with.
            used = crate::reclaim::counted_memory(shared, used);
            if used > maxmemory {
                crate::reclaim::before_write(shared);
                // Reclaiming ended with a fresh reading of the allocator, which the cache holds.
                used = crate::reclaim::counted_memory(shared, crate::alloc::used_memory_recent());
            }
        }
        if maxmemory > 0 && used > maxmemory && used > memory_refused_above(shared, maxmemory) {
            return Err("OOM command not allowed when used memory > 'maxmemory'.".into());
        }
    }
    Ok(spec)
}

/// Used memory above which writes that add data are refused. Under `flash` the spilling
/// thread brings memory back under `maxmemory`; writes are refused only if it falls half the
/// limit behind (everything left in RAM has a TTL, or the flash tier is too slow).
fn memory_refused_above(shared: &Shared, maxmemory: u64) -> u64 {
    match shared.keyspace.cold().is_some() && shared.config.read().policy() == crate::config::MaxmemoryPolicy::Flash {
        true => maxmemory + maxmemory / 2,
        false => maxmemory,
    }
}

/// Runs a checked command with shards already locked, writing an error reply on failure.
fn run(ctx: &mut Ctx, spec: &Spec, args: &[&[u8]]) {
    let start = ctx.out.len();
    if let Err(err) = (spec.run)(ctx, args) {
        ctx.out.truncate(start);
        ctx.session.stats.errors += 1;
        ctx.out.error(&err.0);
    }
}

/// Starts a MULTI block for the session.
fn begin_multi(session: &mut Session) {
    session.multi = Some(Multi::default());
    session.info.multi.store(0, std::sync::atomic::Ordering::Relaxed);
}
