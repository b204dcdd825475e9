//! MULTI / EXEC / DISCARD / WATCH / UNWATCH, with Redis's semantics on one node: queued
//! commands run back to back with every shard locked, so no other client's command interleaves,
//! and EXEC aborts if a WATCHed key changed (or expired) since WATCH.

use super::{begin_multi, flags, lookup, run, CmdResult, Ctx, Spec, ALL_KEYS, NO_KEYS};
use crate::keyspace::{shard_of, Locked};
use crate::session::{Session, Watching};
use crate::watch::WatchFlag;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "multi", arity: 1, flags: flags::TX_CONTROL | flags::FAST, keys: NO_KEYS, group: "transactions", summary: "Starts a transaction.", run: multi },
    Spec { name: "exec", arity: 1, flags: flags::TX_CONTROL, keys: NO_KEYS, group: "transactions", summary: "Executes all commands in a transaction.", run: exec },
    Spec { name: "discard", arity: 1, flags: flags::TX_CONTROL | flags::FAST, keys: NO_KEYS, group: "transactions", summary: "Discards a transaction.", run: discard },
    Spec {
        name: "watch",
        arity: -2,
        flags: flags::TX_CONTROL | flags::FAST,
        keys: ALL_KEYS,
        group: "transactions",
        summary: "Monitors changes to keys to determine the execution of a transaction.",
        run: watch,
    },
    Spec { name: "unwatch", arity: 1, flags: flags::FAST, keys: NO_KEYS, group: "transactions", summary: "Forgets about watched keys of a transaction.", run: unwatch },
];

fn multi(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err("ERR MULTI calls can not be nested".into());
    }
    begin_multi(ctx.session);
    ctx.out.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let multi = ctx.session.multi.take().ok_or("ERR EXEC without MULTI")?;
    ctx.session.info.multi.store(-1, Ordering::Relaxed);
    if multi.failed {
        release_watches(&mut ctx.db, ctx.session);
        return Err("EXECABORT Transaction discarded because of previous errors.".into());
    }
    ctx.db = ctx.shared.keyspace.lock_all();
    let watched_changed = match &ctx.session.watching {
        // A watched key that expired since WATCH counts as changed.
        Some(watching) => watching.flag.is_dirty() || watching.keys.iter().any(|(key, expired_then)| !expired_then && ctx.db.expired_at(key, ctx.now).is_some()),
        None => false,
    };
    release_watches(&mut ctx.db, ctx.session);
    if watched_changed {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(multi.queued.len());
    // Blocking commands inside a transaction answer at once, as in Redis.
    ctx.blocking = super::Blocking::Immediate;
    for queued in &multi.queued {
        let args: Vec<&[u8]> = queued.iter().map(Vec::as_slice).collect();
        let spec = lookup(args[0]).expect("queued commands were looked up when queued");
        ctx.session.stats.commands += 1;
        run(ctx, spec, &args);
    }
    Ok(())
}

fn discard(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.session.multi.take().ok_or("ERR DISCARD without MULTI")?;
    ctx.session.info.multi.store(-1, Ordering::Relaxed);
    release_watches(&mut ctx.db, ctx.session);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err("ERR WATCH inside MULTI is not allowed".into());
    }
    let watching = ctx.session.watching.get_or_insert_with(|| Watching { flag: Arc::new(WatchFlag::default()), keys: Vec::new() });
    for &key in &args[1..] {
        let expired_then = ctx.db.expired_at(key, ctx.now).is_some();
        ctx.db.at(key).shard.watchers.add(key, &watching.flag);
        watching.keys.push((key.into(), expired_then));
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    release_watches(&mut ctx.db, ctx.session);
    ctx.out.ok();
    Ok(())
}

/// Stops watching every key the session watches (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub fn release_watches(db: &mut Locked, session: &mut Session) {
    let Some(watching) = session.watching.take() else { return };
    let hasher = db.keyspace().hasher().clone();
    for (key, _) in &watching.keys {
        db.with_shard(shard_of(hasher.hash(key)), |shard| shard.watchers.remove(key, &watching.flag));
    }
}
