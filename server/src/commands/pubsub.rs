//! Pub/sub commands (see `crate::pubsub` for the broker). A RESP2 connection with
//! subscriptions may only run the commands flagged [`flags::SUBSCRIBED`]; a RESP3 one may run
//! anything, its messages arriving as push frames between replies.

use super::{arity_error, flags, CmdError, CmdResult, Ctx, Spec, NO_KEYS};
use crate::pubsub::{Delivery, Kind, Subscriptions};
use crate::resp::Reply;

const SUB: u32 = flags::SUBSCRIBED;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "subscribe", arity: -2, flags: SUB, keys: NO_KEYS, group: "pubsub", summary: "Listens for messages published to channels.", run: subscribe },
    Spec { name: "unsubscribe", arity: -1, flags: SUB, keys: NO_KEYS, group: "pubsub", summary: "Stops listening to messages posted to channels.", run: unsubscribe },
    Spec {
        name: "psubscribe",
        arity: -2,
        flags: SUB,
        keys: NO_KEYS,
        group: "pubsub",
        summary: "Listens for messages published to channels that match one or more patterns.",
        run: psubscribe,
    },
    Spec {
        name: "punsubscribe",
        arity: -1,
        flags: SUB,
        keys: NO_KEYS,
        group: "pubsub",
        summary: "Stops listening to messages published to channels that match one or more patterns.",
        run: punsubscribe,
    },
    Spec { name: "publish", arity: 3, flags: flags::FAST, keys: NO_KEYS, group: "pubsub", summary: "Posts a message to a channel.", run: publish },
    Spec { name: "pubsub", arity: -2, flags: 0, keys: NO_KEYS, group: "pubsub", summary: "A container for Pub/Sub commands.", run: pubsub },
];

/// Writes one delivered message: `message channel payload`, or `pmessage pattern channel
/// payload` for a pattern subscription.
pub fn write_delivery(out: &mut Reply, delivery: &Delivery) {
    match &delivery.pattern {
        None => {
            out.push(3);
            out.bulk(b"message");
        }
        Some(pattern) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(pattern);
        }
    }
    out.bulk(&delivery.channel);
    out.bulk(&delivery.message);
}

/// One subscribe/unsubscribe confirmation: `[verb, name (or null), count]`.
fn confirm(ctx: &mut Ctx, verb: &str, name: Option<&[u8]>, count: usize) {
    ctx.out.push(3);
    ctx.out.bulk(verb.as_bytes());
    ctx.out.bulk_or_null(name);
    ctx.out.int(count as i64);
}

fn add(ctx: &mut Ctx, names: &[&[u8]], kind: Kind, verb: &str) -> CmdResult {
    let info = ctx.session.info.clone();
    let subscriptions = ctx.session.subscriptions.get_or_insert_with(|| Box::new(Subscriptions::new(info)));
    let mut counts = Vec::with_capacity(names.len());
    for name in names {
        subscriptions.subscribe(&ctx.shared.pubsub, kind, name);
        counts.push(subscriptions.count());
    }
    for (name, count) in names.iter().zip(counts) {
        confirm(ctx, verb, Some(name), count);
    }
    Ok(())
}

/// Unsubscribes from `names` (all of `kind` if none are named); a connection left with no
/// subscription leaves the subscribed state.
fn remove(ctx: &mut Ctx, names: &[&[u8]], kind: Kind, verb: &str) -> CmdResult {
    let Some(subscriptions) = ctx.session.subscriptions.as_mut() else {
        if names.is_empty() {
            confirm(ctx, verb, None, 0);
        }
        names.iter().for_each(|name| confirm(ctx, verb, Some(name), 0));
        return Ok(());
    };
    let named: Vec<bytes::Bytes> = if names.is_empty() { subscriptions.all(kind) } else { names.iter().map(|n| bytes::Bytes::copy_from_slice(n)).collect() };
    let mut replies = Vec::with_capacity(named.len());
    for name in &named {
        subscriptions.unsubscribe(&ctx.shared.pubsub, kind, name);
        replies.push(subscriptions.count());
    }
    let remaining = subscriptions.count();
    if remaining == 0 {
        ctx.session.subscriptions = None;
    }
    if named.is_empty() {
        confirm(ctx, verb, None, remaining);
    }
    for (name, count) in named.iter().zip(replies) {
        confirm(ctx, verb, Some(name), count);
    }
    Ok(())
}

fn subscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    add(ctx, &args[1..], Kind::Channel, "subscribe")
}

fn psubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    add(ctx, &args[1..], Kind::Pattern, "psubscribe")
}

fn unsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    remove(ctx, &args[1..], Kind::Channel, "unsubscribe")
}

fn punsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    remove(ctx, &args[1..], Kind::Pattern, "punsubscribe")
}

fn publish(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let receivers = ctx.shared.pubsub.publish(args[1], args[2]);
    ctx.out.int(receivers as i64);
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP
fn pubsub(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match (&sub[..], args.len()) {
        (b"channels", 2 | 3) => {
            let channels = ctx.shared.pubsub.active_channels(args.get(2).copied());
            ctx.out.array(channels.len());
            channels.iter().for_each(|c| ctx.out.bulk(c));
        }
        (b"numsub", _) => {
            ctx.out.array((args.len() - 2) * 2);
            for channel in &args[2..] {
                ctx.out.bulk(channel);
                ctx.out.int(ctx.shared.pubsub.subscribers(channel) as i64);
            }
        }
        (b"numpat", 2) => ctx.out.int(ctx.shared.pubsub.pattern_count() as i64),
        (b"help", 2) => {
            super::reply_help(ctx, PUBSUB_HELP);
        }
        // Redis words CHANNELS's extra arguments as a subcommand syntax error.
        (b"channels", _) => {
            return Err(CmdError::new(format!("ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.", String::from_utf8_lossy(args[1]))));
        }
        (b"numpat" | b"help", _) => return Err(arity_error(&format!("pubsub|{}", String::from_utf8_lossy(&sub)))),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{}'. Try PUBSUB HELP.", String::from_utf8_lossy(args[1])))),
    }
    Ok(())
}
