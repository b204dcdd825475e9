//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.

use super::{flags, int_arg, is, release_watches, CmdError, CmdResult, Ctx, Spec, NOT_INTEGER, NO_KEYS, SYNTAX};
use crate::clients::ClientInfo;
use crate::resp::Protocol;
use std::sync::atomic::Ordering;

const CONN: u32 = flags::CONNECTION | flags::FAST;
/// POST and Host: run before AUTH, inside MULTI and while subscribed: wherever an HTTP
/// request lands, the connection closes before its body can run.
const CROSS_PROTOCOL: u32 = CONN | flags::NO_AUTH | flags::TX_CONTROL | flags::SUBSCRIBED;

pub const COMMANDS: &[Spec] = &[
    Spec { name: "ping", arity: -1, flags: CONN | flags::SUBSCRIBED, keys: NO_KEYS, group: "connection", summary: "Returns the server's liveliness response.", run: ping },
    Spec { name: "echo", arity: 2, flags: CONN, keys: NO_KEYS, group: "connection", summary: "Returns the given string.", run: echo },
    Spec { name: "hello", arity: -1, flags: CONN | flags::NO_AUTH, keys: NO_KEYS, group: "connection", summary: "Handshakes with the Redis server.", run: hello },
    Spec { name: "auth", arity: -2, flags: CONN | flags::NO_AUTH, keys: NO_KEYS, group: "connection", summary: "Authenticates the connection.", run: auth },
    Spec { name: "select", arity: 2, flags: CONN, keys: NO_KEYS, group: "connection", summary: "Changes the selected database.", run: select },
    Spec {
        name: "quit",
        arity: -1,
        flags: CONN | flags::NO_AUTH | flags::TX_CONTROL | flags::SUBSCRIBED,
        keys: NO_KEYS,
        group: "connection",
        summary: "Closes the connection.",
        run: quit,
    },
    Spec {
        name: "reset",
        arity: 1,
        flags: CONN | flags::NO_AUTH | flags::TX_CONTROL | flags::SUBSCRIBED,
        keys: NO_KEYS,
        group: "connection",
        summary: "Resets the connection.",
        run: reset,
    },
    Spec {
        name: "post",
        arity: -1,
        flags: CROSS_PROTOCOL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Closes a connection that speaks HTTP (cross-protocol scripting).",
        run: cross_protocol,
    },
    Spec {
        name: "host:",
        arity: -1,
        flags: CROSS_PROTOCOL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Closes a connection that speaks HTTP (cross-protocol scripting).",
        run: cross_protocol,
    },
    Spec { name: "client", arity: -2, flags: flags::CONNECTION, keys: NO_KEYS, group: "connection", summary: "A container for client connection commands.", run: client },
];

fn ping(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        return Err(super::arity_error("ping"));
    }
    // A RESP2 subscriber gets its PONG in the shape of a message, as in Redis.
    if ctx.session.subscriptions.is_some() && ctx.out.protocol == Protocol::Resp2 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).copied().unwrap_or_default());
        return Ok(());
    }
    match args.get(1) {
        None => ctx.out.simple("PONG"),
        Some(message) => ctx.out.bulk(message),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(args[1]);
    Ok(())
}

/// Checks a password for `user` against `requirepass` (the only user is `default`).
fn check_password(ctx: &Ctx, user: &[u8], password: &[u8]) -> CmdResult {
    let required = ctx.shared.config.read().requirepass.clone();
    let accepted = user == b"default" && (required.is_empty() || required.as_bytes() == password);
    if !accepted {
        return Err("WRONGPASS invalid username-password pair or user is disabled.".into());
    }
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut protocol = None;
    if let Some(version) = args.get(1) {
        let version = int_arg(version).map_err(|_| "ERR Protocol version is not an integer or out of range")?;
        protocol = Some(match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err("NOPROTO unsupported protocol version".into()),
        });
    }
    let (mut credentials, mut name) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        match &args[i] {
            opt if is(opt, "auth") && more >= 2 => {
                credentials = Some((&args[i + 1], &args[i + 2]));
                i += 3;
            }
            opt if is(opt, "setname") && more >= 1 => {
                name = Some(valid_name(args[i + 1], "Client names")?);
                i += 2;
            }
            opt => return Err(CmdError::new(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)))),
        }
    }
    if let Some((user, password)) = credentials {
        check_password(ctx, user, password)?;
        ctx.session.authenticated = true;
    }
    if !ctx.session.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        *ctx.session.info.name.lock() = name;
    }
    if let Some(protocol) = protocol {
        ctx.session.protocol = protocol;
        ctx.out.protocol = protocol;
        ctx.session.info.resp.store(protocol.version() as u8, Ordering::Relaxed);
    }
    let out = &mut ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::info::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(ctx.session.protocol.version());
    out.bulk(b"id");
    out.int(ctx.session.info.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (user, password): (&[u8], &[u8]) = match args {
        [_, password] => {
            if ctx.shared.config.read().requirepass.is_empty() {
                return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
            }
            (b"default", password)
        }
        [_, user, password] => (user, password),
        _ => return Err(SYNTAX.into()),
    };
    check_password(ctx, user, password)?;
    ctx.session.authenticated = true;
    ctx.out.ok();
    Ok(())
}

fn select(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match int_arg(args[1])? {
        0 => ctx.out.ok(),
        _ => return Err("ERR DB index is out of range".into()),
    }
    Ok(())
}

fn quit(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.session.close = true;
    ctx.out.ok();
    Ok(())
}

/// `POST` or `Host:` as a command: an HTTP request sent to the client port, most likely by a
/// web page a local user opened (cross-protocol scripting). As Redis does, the connection
/// closes without a reply and without running anything after it, and the attempt is logged
/// (at most once a minute).
fn cross_protocol(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    static LOGGED_AT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let last = LOGGED_AT_MS.load(Ordering::Relaxed);
    if last == 0 || ctx.now.saturating_sub(last) >= 60_000 {
        LOGGED_AT_MS.store(ctx.now.max(1), Ordering::Relaxed);
        tracing::warn!(addr = %ctx.session.info.addr, "possible SECURITY ATTACK detected: a client sent POST or Host: (an HTTP request, likely cross-protocol scripting from a web page); connection aborted");
    }
    ctx.session.close = true;
    Ok(())
}

/// RESET: back to a fresh connection's state (RESP2, no MULTI, no WATCH, no name, and not
/// authenticated if a password is required).
fn reset(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.session.multi = None;
    ctx.session.info.multi.store(-1, Ordering::Relaxed);
    release_watches(&mut ctx.db, ctx.session);
    if let Some(mut subscriptions) = ctx.session.subscriptions.take() {
        subscriptions.leave(&ctx.shared.pubsub);
    }
    ctx.session.protocol = Protocol::Resp2;
    ctx.out.protocol = Protocol::Resp2;
    ctx.session.info.resp.store(2, Ordering::Relaxed);
    ctx.session.info.name.lock().clear();
    ctx.session.authenticated = ctx.shared.config.read().requirepass.is_empty();
    ctx.out.simple("RESET");
    Ok(())
}

/// Redis accepts names made of printable ASCII without spaces.
fn valid_name(name: &[u8], what: &str) -> Result<String, CmdError> {
    if name.iter().all(|c| (b'!'..=b'~').contains(c)) {
        Ok(String::from_utf8_lossy(name).into_owned())
    } else {
        Err(CmdError::new(format!("ERR {what} cannot contain spaces, newlines or special characters.")))
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
    "    TYPE normal, USER default, SKIPME (YES|NO), MAXAGE <seconds>.",
    "LIST [options ...]",
    "    Return information about client connections. Options: TYPE normal, ID <id> ...",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "HELP",
    "    Print this help.",
];

fn client(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    let arity_ok = match sub.as_str() {
        "id" | "getname" | "info" | "help" => args.len() == 2,
        "setname" => args.len() == 3,
        "setinfo" => args.len() == 4,
        "list" | "kill" => args.len() >= 2,
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(args[1])))),
    };
    if !arity_ok {
        return Err(super::arity_error(&format!("client|{sub}")));
    }
    match sub.as_str() {
        "id" => ctx.out.int(ctx.session.info.id as i64),
        "getname" => {
            let name = ctx.session.info.name.lock().clone();
            ctx.out.bulk_or_null((!name.is_empty()).then_some(name.as_bytes()));
        }
        "setname" => {
            *ctx.session.info.name.lock() = valid_name(args[2], "Client names")?;
            ctx.out.ok();
        }
        "setinfo" => {
            let value = &args[3];
            let mut lib = ctx.session.info.lib.lock();
            match &args[2] {
                a if is(a, "lib-name") => lib.0 = valid_name(value, "LIB-NAME")?,
                a if is(a, "lib-ver") => lib.1 = valid_name(value, "LIB-VER")?,
                a => return Err(CmdError::new(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(a)))),
            }
            drop(lib);
            ctx.out.ok();
        }
        "info" => {
            *ctx.session.info.last_cmd.lock() = "client|info";
            let line = ctx.session.info.describe() + "\n";
            ctx.out.verbatim(&line);
        }
        "list" => {
            *ctx.session.info.last_cmd.lock() = "client|list";
            client_list(ctx, &args[2..])?
        }
        "kill" => client_kill(ctx, &args[2..])?,
        _ => {
            super::reply_help(ctx, CLIENT_HELP);
        }
    }
    Ok(())
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]
fn client_list(ctx: &mut Ctx, opts: &[&[u8]]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut only_normal = true;
    let mut i = 0;
    while i < opts.len() {
        match &opts[i] {
            o if is(o, "type") && i + 1 < opts.len() => {
                let t = &opts[i + 1];
                only_normal = match t {
                    t if is(t, "normal") => true,
                    t if is(t, "master") || is(t, "replica") || is(t, "slave") || is(t, "pubsub") => false,
                    t => return Err(CmdError::new(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(t)))),
                };
                i += 2;
            }
            o if is(o, "id") && i + 1 < opts.len() => {
                let list = opts[i + 1..].iter().map(|a| int_arg(a).ok().filter(|&id| id > 0).map(|id| id as u64));
                ids = Some(list.collect::<Option<Vec<_>>>().ok_or("ERR Invalid client ID")?);
                i = opts.len();
            }
            _ => return Err(SYNTAX.into()),
        }
    }
    let text: String = ctx.shared.clients.all().iter().filter(|c| only_normal && ids.as_ref().is_none_or(|ids| ids.contains(&c.id))).map(|c| c.describe() + "\n").collect();
    ctx.out.verbatim(&text);
    Ok(())
}

/// One CLIENT KILL filter: true for the clients it selects.
type ClientFilter = Box<dyn Fn(&ClientInfo) -> bool>;

/// CLIENT KILL ip:port | CLIENT KILL <filter> <value> ...
fn client_kill(ctx: &mut Ctx, opts: &[&[u8]]) -> CmdResult {
    if let [addr] = opts {
        let addr = String::from_utf8_lossy(addr);
        let target = ctx.shared.clients.all().into_iter().find(|c| c.addr.to_string() == addr).ok_or("ERR No such client")?;
        target.kill();
        ctx.out.ok();
        return Ok(());
    }
    if opts.is_empty() || !opts.len().is_multiple_of(2) {
        return Err(SYNTAX.into());
    }
    let mut filters: Vec<ClientFilter> = Vec::new();
    let mut skip_me = true;
    for pair in opts.chunks(2) {
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        match &pair[0] {
            o if is(o, "id") => {
                let id = int_arg(pair[1]).ok().filter(|&id| id > 0).ok_or("ERR client-id should be greater than 0")?;
                filters.push(Box::new(move |c| c.id == id as u64));
            }
            o if is(o, "addr") => filters.push(Box::new(move |c| c.addr.to_string() == value)),
            o if is(o, "laddr") => filters.push(Box::new(move |c| c.laddr.to_string() == value)),
            o if is(o, "user") => filters.push(Box::new(move |_| value == "default")),
            o if is(o, "type") => {
                let normal = match &pair[1] {
                    t if is(t, "normal") => true,
                    t if is(t, "master") || is(t, "replica") || is(t, "slave") || is(t, "pubsub") => false,
                    _ => return Err(CmdError::new(format!("ERR Unknown client type '{value}'"))),
                };
                filters.push(Box::new(move |_| normal));
            }
            o if is(o, "maxage") => {
                let age = int_arg(pair[1]).map_err(|_| NOT_INTEGER)?;
                let now = ctx.now;
                filters.push(Box::new(move |c| (now.saturating_sub(c.created_ms) / 1000) as i64 >= age));
            }
            o if is(o, "skipme") => {
                skip_me = match &pair[1] {
                    v if is(v, "yes") => true,
                    v if is(v, "no") => false,
                    _ => return Err(SYNTAX.into()),
                };
            }
            _ => return Err(SYNTAX.into()),
        }
    }
    let me = ctx.session.info.id;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        if (skip_me && c.id == me) || !filters.iter().all(|f| f(&c)) {
            continue;
        }
        c.kill();
        killed += 1;
    }
    ctx.out.int(killed);
    Ok(())
}
