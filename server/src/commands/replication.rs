//! Replication commands: WAIT (a write waits for peers, as Redis's WAIT waits for replicas),
//! CRDT.CONFLICTS (the conflicts this node settled) and CRDT.STATE (a key's replicated state,
//! for diagnosing a divergence).

use super::{arity_error, flags, int_arg, is, CmdError, CmdResult, Ctx, Spec, NO_KEYS, ONE_KEY};
use crate::conflicts::Entry;
use crate::session::Block;
use meridian_crdt::NodeId;
use std::time::{Duration, Instant};

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "wait",
        arity: 3,
        flags: flags::CONNECTION,
        keys: NO_KEYS,
        group: "generic",
        summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
        run: wait,
    },
    Spec {
        name: "crdt.conflicts",
        arity: -2,
        flags: flags::ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Returns, counts or clears the log of conflicts between concurrent writes this node settled.",
        run: conflicts,
    },
    Spec {
        name: "crdt.state",
        arity: 2,
        flags: flags::ADMIN | flags::READONLY,
        keys: ONE_KEY,
        group: "server",
        summary: "Returns the full replicated state of a key (versions, stamps, TTLs, removals), visible or not.",
        run: state,
    },
];

/// CRDT.STATE key: the key's whole CRDT state as text (every version with its stamp, counter
/// runs, TTL versions, pending removals, expiry floor), or nil if this node holds nothing for
/// it. Like DEBUG OBJECT, for people comparing nodes; the format is not an interface.
fn state(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let at = ctx.db.at(args[1]);
    let text = at.shard.raw(at.hash, args[1]).map(|entry| format!("{:?}", entry.state));
    ctx.out.bulk_or_null(text.as_deref().map(str::as_bytes));
    Ok(())
}

/// Entries CRDT.CONFLICTS GET returns without a count (SLOWLOG GET's default).
const DEFAULT_COUNT: usize = 10;

/// WAIT numpeers timeout: how many peers have applied this connection's last write, waiting
/// up to `timeout` ms (0: forever) for `numpeers` of them. Inside MULTI it answers at once.
fn wait(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let needed = int_arg(args[1])?;
    let timeout = int_arg(args[2]).map_err(|_| CmdError::from("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err("ERR timeout is negative".into());
    }
    let Some(replication) = &ctx.shared.replication else {
        ctx.out.int(0);
        return Ok(());
    };
    let (origin, seq) = (ctx.shared.node.id(), ctx.session.last_write);
    let acked = replication.acked_count(origin, seq);
    if acked as i64 >= needed || ctx.session.multi.is_some() || ctx.db.in_transaction() {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    ctx.session.blocked = Some(Block::Wait { origin, seq, peers: needed.max(0) as usize, deadline });
    Ok(())
}

/// CRDT.CONFLICTS GET [count] | LEN | RESET | HELP, shaped like SLOWLOG: GET returns the most
/// recent conflicts, newest first (count -1: all), each as a map of its fields.
fn conflicts(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let log = &ctx.shared.conflicts;
    match args[1] {
        sub if is(sub, "get") && args.len() <= 3 => {
            let count = match args.get(2) {
                None => Some(DEFAULT_COUNT),
                Some(arg) => match int_arg(arg) {
                    Ok(-1) => None,
                    Ok(n) if n >= 0 => Some(n as usize),
                    _ => return Err("ERR count should be greater than or equal to -1".into()),
                },
            };
            let entries = log.recent(count);
            ctx.out.array(entries.len());
            for entry in &entries {
                entry_reply(ctx, entry);
            }
        }
        sub if is(sub, "len") && args.len() == 2 => ctx.out.int(log.len() as i64),
        sub if is(sub, "reset") && args.len() == 2 => {
            log.reset();
            ctx.out.ok();
        }
        sub if is(sub, "help") && args.len() == 2 => {
            let help = [
                "CRDT.CONFLICTS <subcommand> [<arg> ...]. Subcommands are:",
                "GET [<count>]",
                "    Return the most recent conflicts settled on this node (default 10, -1: all).",
                "LEN",
                "    Return the number of entries in the conflict log.",
                "RESET",
                "    Empty the conflict log (INFO's conflict counters keep counting).",
                "HELP",
                "    Print this help.",
            ];
            super::reply_help(ctx, &help);
        }
        sub if ["get", "len", "reset", "help"].iter().any(|w| is(sub, w)) => {
            let name = format!("crdt.conflicts|{}", String::from_utf8_lossy(sub).to_ascii_lowercase());
            return Err(arity_error(&name));
        }
        sub => {
            return Err(CmdError::new(format!("ERR unknown subcommand '{}'. Try CRDT.CONFLICTS HELP.", String::from_utf8_lossy(sub))));
        }
    }
    Ok(())
}

/// One log entry: id, time (Unix ms), key, type, rule, kept (op, other or both), and for the
/// op applied and the write it met, the node (its name, or its id if unknown) and HLC time.
fn entry_reply(ctx: &mut Ctx, entry: &Entry) {
    let c = &entry.conflict;
    let (op_node, other_node) = (node_name(ctx, c.op.node), node_name(ctx, c.other.node));
    let out = &mut ctx.out;
    out.map(10);
    let fields: [(&str, &[u8]); 4] = [("key", &entry.key), ("type", c.data_type.name().as_bytes()), ("rule", c.rule.name().as_bytes()), ("kept", c.kept.name().as_bytes())];
    out.bulk(b"id");
    out.int(entry.id as i64);
    out.bulk(b"time");
    out.int(entry.unix_ms as i64);
    for (name, value) in fields {
        out.bulk(name.as_bytes());
        out.bulk(value);
    }
    for (side, node, stamp) in [("op", op_node, c.op), ("other", other_node, c.other)] {
        out.bulk(format!("{side}-node").as_bytes());
        out.bulk(node.as_bytes());
        out.bulk(format!("{side}-hlc").as_bytes());
        out.int(stamp.time as i64);
    }
}

/// The name of the node whose incarnation is `origin`, or the id itself if none is known.
fn node_name(ctx: &Ctx, origin: NodeId) -> String {
    let replication = ctx.shared.replication.as_ref();
    let own = replication.filter(|_| origin == ctx.shared.node.id()).map(|r| r.name.clone());
    own.or_else(|| replication.and_then(|r| r.name_of(origin))).unwrap_or_else(|| origin.to_string())
}
