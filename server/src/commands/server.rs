//! Server commands: INFO, CONFIG, COMMAND, TIME, SHUTDOWN, BGREWRITEAOF.

use super::{all_specs, flags, is, lookup, CmdError, CmdResult, Ctx, Spec, NO_KEYS, SYNTAX};
use crate::clock::now_us;
use crate::config::ConfigError;
use crate::info;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "info", arity: -1, flags: flags::WHOLE, keys: NO_KEYS, group: "server", summary: "Returns information and statistics about the server.", run: info },
    Spec { name: "config", arity: -2, flags: flags::ADMIN, keys: NO_KEYS, group: "server", summary: "A container for server configuration commands.", run: config },
    Spec { name: "command", arity: -1, flags: flags::CONNECTION, keys: NO_KEYS, group: "server", summary: "Returns detailed information about all commands.", run: command },
    Spec { name: "time", arity: 1, flags: flags::FAST, keys: NO_KEYS, group: "server", summary: "Returns the server time.", run: time },
    Spec {
        name: "bgrewriteaof",
        arity: 1,
        flags: flags::ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Asynchronously rewrites the append-only file to disk: here, checkpoints the flash tier.",
        run: bgrewriteaof,
    },
    Spec {
        name: "shutdown",
        arity: -1,
        flags: flags::ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        run: shutdown,
    },
];

fn info(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sections: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let text = info::render(ctx.shared, &mut ctx.db, &sections);
    ctx.out.verbatim(&text);
    Ok(())
}

fn bgrewriteaof(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let durable = ctx.shared.node.durable().ok_or_else(|| CmdError::new("ERR appendonly is no: there is no durable log to checkpoint"))?;
    let running = durable.checkpointing();
    durable.request_checkpoint();
    ctx.out.simple(if running { "Background append only file rewriting scheduled" } else { "Background append only file rewriting started" });
    Ok(())
}

fn config_error(e: ConfigError) -> CmdError {
    match e {
        ConfigError::Unknown(name) => CmdError::new(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")),
        ConfigError::Immutable(name) => CmdError::new(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")),
        ConfigError::Invalid { name, reason } => CmdError::new(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")),
        other => CmdError::new(format!("ERR {other}")),
    }
}

fn config(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("get", n) if n >= 3 => {
            let config = ctx.shared.config.read();
            let mut pairs: Vec<(&str, String)> = Vec::new();
            for pattern in &args[2..] {
                for pair in config.get(pattern) {
                    if !pairs.iter().any(|(n, _)| *n == pair.0) {
                        pairs.push(pair);
                    }
                }
            }
            drop(config);
            ctx.out.map(pairs.len());
            for (name, value) in pairs {
                ctx.out.bulk(name.as_bytes());
                ctx.out.bulk(value.as_bytes());
            }
        }
        ("set", n) if n >= 4 && n % 2 == 0 => {
            // All or nothing, as Redis 7: apply to a copy, then publish it.
            let mut updated = ctx.shared.config.read().clone();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(pair[0]).into_owned();
                let value = String::from_utf8_lossy(pair[1]).into_owned();
                let values = crate::resp::parse::split_args(value.as_bytes()).unwrap_or_default();
                let values: Vec<String> = if values.is_empty() { vec![String::new()] } else { values.into_iter().map(|v| String::from_utf8_lossy(&v).into_owned()).collect() };
                updated.set(&name, &values, true).map_err(config_error)?;
            }
            if updated.policy() == crate::config::MaxmemoryPolicy::Flash && ctx.shared.keyspace.cold().is_none() {
                return Err(config_error(ConfigError::Invalid {
                    name: "maxmemory-policy".into(),
                    reason: "flash needs the flash tier, which opens at startup (appendonly yes or maxmemory-policy flash)".into(),
                }));
            }
            ctx.shared.set_config(updated);
            ctx.out.ok();
        }
        ("resetstat", 2) => {
            ctx.shared.stats.reset();
            ctx.out.ok();
        }
        ("help", 2) => {
            let help = ["CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "GET <pattern>", "SET <directive> <value>", "RESETSTAT", "HELP"];
            super::reply_help(ctx, &help);
        }
        ("get" | "set" | "resetstat" | "help", _) => return Err(super::arity_error(&format!("config|{sub}"))),
        _ => return Err(super::unknown_subcommand("CONFIG", args[1])),
    }
    Ok(())
}

/// One command's COMMAND INFO entry (Redis 7's ten fields).
fn command_info(ctx: &mut Ctx, spec: &Spec) {
    let out = &mut ctx.out;
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.int(spec.arity as i64);
    let names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| spec.flags & f != 0).map(|(_, n)| *n).collect();
    out.set(names.len());
    names.iter().for_each(|n| out.simple(n));
    out.int(spec.keys.first as i64);
    out.int(spec.keys.last as i64);
    out.int(spec.keys.step as i64);
    let category = format!("@{}", spec.group);
    out.set(1);
    out.simple(&category);
    out.set(0);
    out.array(0);
    out.array(0);
}

fn command_docs(ctx: &mut Ctx, spec: &Spec) {
    let out = &mut ctx.out;
    out.bulk(spec.name.as_bytes());
    out.map(3);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(b"1.0.0");
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
}

/// COMMAND [COUNT | LIST | INFO name... | DOCS name...]
fn command(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(sub) = args.get(1) else {
        let specs = all_specs();
        ctx.out.array(specs.len());
        specs.into_iter().for_each(|s| command_info(ctx, s));
        return Ok(());
    };
    let named: Vec<Option<&Spec>> = match &args[2..] {
        [] => all_specs().into_iter().map(Some).collect(),
        names => names.iter().map(|n| lookup(n)).collect(),
    };
    match sub {
        s if is(s, "count") && args.len() == 2 => ctx.out.int(all_specs().len() as i64),
        s if is(s, "list") => {
            let specs = all_specs();
            ctx.out.array(specs.len());
            specs.iter().for_each(|s| ctx.out.bulk(s.name.as_bytes()));
        }
        s if is(s, "info") => {
            ctx.out.array(named.len());
            for spec in named {
                match spec {
                    Some(spec) => command_info(ctx, spec),
                    None => ctx.out.null_array(),
                }
            }
        }
        s if is(s, "docs") => {
            let found: Vec<&Spec> = named.into_iter().flatten().collect();
            ctx.out.map(found.len());
            found.into_iter().for_each(|s| command_docs(ctx, s));
        }
        s => {
            return Err(super::unknown_subcommand("COMMAND", s));
        }
    }
    Ok(())
}

fn time(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let us = now_us();
    ctx.out.array(2);
    ctx.out.bulk((us / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((us % 1_000_000).to_string().as_bytes());
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE]: stops the server gracefully. Like Redis, no reply
/// on success: the connection closes.
fn shutdown(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    for a in &args[1..] {
        if !["nosave", "save", "now", "force"].iter().any(|w| is(a, w)) {
            return Err(SYNTAX.into());
        }
    }
    tracing::warn!("user requested shutdown");
    ctx.shared.request_shutdown();
    ctx.session.close = true;
    Ok(())
}
