//! Transactions, connection state and server commands through a real client.

use meridian_tests::{error_text, info_field, int, query, strings, text, Reply, Server};
use std::time::Duration;

#[test]
fn multi_exec_runs_queued_commands_atomically() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let (set, incr): (String, i64) = redis::pipe().atomic().cmd("SET").arg("n").arg(10).cmd("INCR").arg("n").query(&mut con).unwrap();
    assert_eq!((set.as_str(), incr), ("OK", 11));
    assert_eq!(text(&mut con, &["MULTI"]).as_deref(), Some("OK"));
    assert_eq!(text(&mut con, &["INCR", "n"]).as_deref(), Some("QUEUED"));
    assert_eq!(error_text(&mut con, &["MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(error_text(&mut con, &["WATCH", "n"]), "ERR WATCH inside MULTI is not allowed");
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Array(vec![Reply::Int(12)]));
    // A queued command with a wrong arity aborts the whole transaction.
    text(&mut con, &["MULTI"]);
    text(&mut con, &["INCR", "n"]);
    assert_eq!(error_text(&mut con, &["INCR"]), "ERR wrong number of arguments for 'incr' command");
    assert_eq!(error_text(&mut con, &["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(text(&mut con, &["GET", "n"]).as_deref(), Some("12"));
    // A runtime error fails only its own command (raw, to see the error inside EXEC's array).
    let mut raw = server.raw();
    raw.roundtrip(
        b"MULTI\r\nSET s x\r\nINCR s\r\nINCR n\r\nEXEC\r\n",
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n:13\r\n",
    );
    text(&mut con, &["MULTI"]);
    text(&mut con, &["SET", "n", "0"]);
    assert_eq!(text(&mut con, &["DISCARD"]).as_deref(), Some("OK"));
    assert_eq!(text(&mut con, &["GET", "n"]).as_deref(), Some("13"));
    assert_eq!(error_text(&mut con, &["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(error_text(&mut con, &["DISCARD"]), "ERR DISCARD without MULTI");
}

#[test]
fn transactions_do_not_interleave_with_other_clients() {
    let server = Server::start(&[]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    // Read-modify-write inside MULTI: another client's INCR between the two
                    // commands would break the pairing checked below.
                    let (a, b): (i64, i64) = redis::pipe().atomic().cmd("INCR").arg("pair").cmd("INCR").arg("pair").query(&mut con).unwrap();
                    assert_eq!(b, a + 1, "a transaction's commands run back to back");
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(text(&mut server.client(), &["GET", "pair"]).as_deref(), Some("1600"));
}

#[test]
fn watch_aborts_exec_when_a_key_changes_or_expires() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut other = server.client();
    text(&mut con, &["SET", "w", "1"]);
    text(&mut con, &["WATCH", "w"]);
    text(&mut other, &["SET", "w", "2"]);
    text(&mut con, &["MULTI"]);
    text(&mut con, &["SET", "w", "3"]);
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Nil, "aborted: w changed");
    assert_eq!(text(&mut con, &["GET", "w"]).as_deref(), Some("2"));
    // Untouched watched keys let EXEC run, and EXEC forgets the watches.
    text(&mut con, &["WATCH", "w"]);
    text(&mut con, &["MULTI"]);
    text(&mut con, &["SET", "w", "3"]);
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Array(vec![Reply::Status("OK".into())]));
    text(&mut con, &["WATCH", "w"]);
    assert_eq!(text(&mut con, &["UNWATCH"]).as_deref(), Some("OK"));
    text(&mut other, &["SET", "w", "4"]);
    text(&mut con, &["MULTI"]);
    text(&mut con, &["GET", "w"]);
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Array(vec![Reply::Bulk(b"4".to_vec())]));
    // Expiry counts as a change.
    text(&mut con, &["SET", "e", "1", "PX", "100"]);
    text(&mut con, &["WATCH", "e"]);
    std::thread::sleep(Duration::from_millis(200));
    text(&mut con, &["MULTI"]);
    text(&mut con, &["SET", "e", "2"]);
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Nil, "aborted: e expired");
    // FLUSHALL from another client counts too.
    text(&mut con, &["SET", "f", "1"]);
    text(&mut con, &["WATCH", "f"]);
    text(&mut other, &["FLUSHALL"]);
    text(&mut con, &["MULTI"]);
    text(&mut con, &["SET", "f", "2"]);
    assert_eq!(query(&mut con, &["EXEC"]), Reply::Nil);
}

#[test]
fn authentication_with_requirepass() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut con = server.client();
    assert_eq!(error_text(&mut con, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(error_text(&mut con, &["AUTH", "wrong"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert!(error_text(&mut con, &["HELLO", "3"]).starts_with("NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(text(&mut con, &["AUTH", "s3cret"]).as_deref(), Some("OK"));
    assert_eq!(text(&mut con, &["SET", "k", "v"]).as_deref(), Some("OK"));
    let mut fresh = server.client();
    let Reply::Array(hello) = query(&mut fresh, &["HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "named"]) else { panic!("HELLO 2 replies with an array") };
    assert_eq!(hello[0], Reply::Bulk(b"server".to_vec()));
    assert_eq!(text(&mut fresh, &["CLIENT", "GETNAME"]).as_deref(), Some("named"));
    assert_eq!(text(&mut fresh, &["RESET"]).as_deref(), Some("RESET"));
    assert_eq!(error_text(&mut fresh, &["GET", "k"]), "NOAUTH Authentication required.", "RESET deauthenticates");
    // The password comes from the URL for a normal client.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", server.port);
    let mut by_url = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(text(&mut by_url, &["GET", "k"]).as_deref(), Some("v"));
    let open_server = Server::start(&[]);
    let mut open = open_server.client();
    assert_eq!(
        error_text(&mut open, &["AUTH", "pw"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[test]
fn connection_commands() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(text(&mut con, &["PING"]).as_deref(), Some("PONG"));
    assert_eq!(text(&mut con, &["PING", "hi"]).as_deref(), Some("hi"));
    assert_eq!(text(&mut con, &["ECHO", "echo"]).as_deref(), Some("echo"));
    assert_eq!(text(&mut con, &["SELECT", "0"]).as_deref(), Some("OK"));
    assert_eq!(error_text(&mut con, &["SELECT", "1"]), "ERR DB index is out of range");
    let id = int(&mut con, &["CLIENT", "ID"]);
    assert_eq!(query(&mut con, &["CLIENT", "GETNAME"]), Reply::Nil);
    text(&mut con, &["CLIENT", "SETNAME", "tester"]);
    text(&mut con, &["CLIENT", "SETINFO", "LIB-NAME", "meridian-tests"]);
    let info = text(&mut con, &["CLIENT", "INFO"]).unwrap();
    assert!(info.starts_with(&format!("id={id} addr=127.0.0.1:")), "{info}");
    assert!(info.contains(" name=tester ") && info.contains("lib-name=meridian-tests") && info.contains("cmd=client|info"), "{info}");
    let mut other = server.client();
    let other_id = int(&mut other, &["CLIENT", "ID"]);
    let list = text(&mut con, &["CLIENT", "LIST"]).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let only = text(&mut con, &["CLIENT", "LIST", "ID", &other_id.to_string()]).unwrap();
    assert!(only.starts_with(&format!("id={other_id} ")) && only.lines().count() == 1, "{only}");
    assert_eq!(int(&mut con, &["CLIENT", "KILL", "ID", &other_id.to_string()]), 1);
    assert!(redis::cmd("PING").query::<String>(&mut other).is_err(), "a killed client is disconnected");
    assert_eq!(int(&mut con, &["CLIENT", "KILL", "ID", &id.to_string()]), 0, "SKIPME defaults to yes");
    assert_eq!(error_text(&mut con, &["CLIENT", "KILL", "127.0.0.1:1"]), "ERR No such client");
    assert_eq!(error_text(&mut con, &["CLIENT", "BOGUS"]), "ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.");
    let mut raw = server.raw();
    raw.roundtrip(b"QUIT\r\n", b"+OK\r\n");
    assert!(raw.is_closed(), "QUIT closes the connection");
}

#[test]
fn info_config_command_and_time() {
    let server = Server::start(&[]);
    let mut con = server.client();
    text(&mut con, &["SET", "k", "v"]);
    text(&mut con, &["GET", "k"]);
    text(&mut con, &["GET", "missing"]);
    let info = text(&mut con, &["INFO"]).unwrap();
    for section in ["# Server", "# Clients", "# Memory", "# Stats", "# Replication", "# CPU", "# Keyspace"] {
        assert!(info.contains(section), "INFO lacks {section}");
    }
    for line in info.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.contains(':'), "INFO lines are field:value, got {line:?}");
    }
    assert_eq!(info_field(&mut con, "server", "redis_version").as_deref(), Some("7.2.4"));
    assert_eq!(info_field(&mut con, "server", "tcp_port"), Some(server.port.to_string()));
    assert_eq!(info_field(&mut con, "keyspace", "db0").as_deref(), Some("keys=1,expires=0,avg_ttl=0"));
    let used: u64 = info_field(&mut con, "memory", "used_memory").unwrap().parse().unwrap();
    let rss: u64 = info_field(&mut con, "memory", "used_memory_rss").unwrap().parse().unwrap();
    assert!(used > 100_000 && rss > used / 2, "used {used} rss {rss}");
    assert_eq!(info_field(&mut con, "stats", "keyspace_hits").as_deref(), Some("1"));
    assert_eq!(info_field(&mut con, "stats", "keyspace_misses").as_deref(), Some("1"));
    assert!(text(&mut con, &["INFO", "bogus"]).unwrap().is_empty());
    // CONFIG
    assert_eq!(strings(&mut con, &["CONFIG", "GET", "maxmemory*"]), ["maxmemory", "0", "maxmemory-policy", "noeviction"].map(|s| Some(s.to_string())));
    assert_eq!(text(&mut con, &["CONFIG", "SET", "maxmemory", "1", "loglevel", "warning"]).as_deref(), Some("OK"));
    assert_eq!(error_text(&mut con, &["SET", "k2", "v"]), "OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(text(&mut con, &["GET", "k"]).as_deref(), Some("v"), "reads still work");
    assert_eq!(int(&mut con, &["DEL", "k"]), 1, "deletes still work");
    text(&mut con, &["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(text(&mut con, &["SET", "k2", "v"]).as_deref(), Some("OK"));
    assert_eq!(error_text(&mut con, &["CONFIG", "SET", "port", "1"]), "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
    assert_eq!(error_text(&mut con, &["CONFIG", "SET", "maxmemory", "1", "bogus", "1"]), "ERR Unknown option or number of arguments for CONFIG SET - 'bogus'");
    assert_eq!(strings(&mut con, &["CONFIG", "GET", "loglevel"])[1].as_deref(), Some("warning"));
    assert_eq!(text(&mut con, &["CONFIG", "RESETSTAT"]).as_deref(), Some("OK"));
    assert_eq!(info_field(&mut con, "stats", "keyspace_hits").as_deref(), Some("0"));
    // COMMAND
    let count = int(&mut con, &["COMMAND", "COUNT"]);
    assert!(count >= 60, "{count}");
    let Reply::Array(infos) = query(&mut con, &["COMMAND", "INFO", "get", "nosuch"]) else { panic!() };
    let Reply::Array(get) = &infos[0] else { panic!("COMMAND INFO get") };
    assert_eq!((&get[0], &get[1], &get[3], &get[4], &get[5]), (&Reply::Bulk(b"get".to_vec()), &Reply::Int(2), &Reply::Int(1), &Reply::Int(1), &Reply::Int(1)));
    assert_eq!(infos[1], Reply::Nil);
    let Reply::Array(docs) = query(&mut con, &["COMMAND", "DOCS", "set"]) else { panic!() };
    assert_eq!(docs[0], Reply::Bulk(b"set".to_vec()));
    let Reply::Array(all) = query(&mut con, &["COMMAND"]) else { panic!() };
    assert_eq!(all.len() as i64, count);
    // TIME
    let time = strings(&mut con, &["TIME"]);
    let secs: u64 = time[0].as_ref().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(secs.abs_diff(now) <= 2);
    assert!(time[1].as_ref().unwrap().parse::<u32>().unwrap() < 1_000_000);
}

#[test]
fn idle_clients_time_out() {
    let server = Server::start(&["--timeout", "1"]);
    let mut raw = server.raw();
    raw.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let start = std::time::Instant::now();
    assert!(raw.is_closed());
    assert!(start.elapsed() >= Duration::from_millis(800), "closed after the idle timeout, not before");
}

/// The event loop polls for input a moment before it sleeps (`busy-poll-us`), and only while
/// requests keep coming: after a burst of request/response traffic, an idle server uses no CPU.
#[test]
fn the_event_loop_stops_polling_when_requests_stop() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(strings(&mut con, &["CONFIG", "GET", "busy-poll-us"]), [Some("busy-poll-us".to_string()), Some("100".to_string())]);
    let burst: Vec<_> = (0..4)
        .map(|t| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    assert_eq!(int(&mut con, &["SADD", &format!("s{t}"), &i.to_string()]), 1);
                }
            })
        })
        .collect();
    burst.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(int(&mut con, &["SCARD", "s3"]), 2_000);
    let before = server.cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let idle = server.cpu_time() - before;
    assert!(idle < Duration::from_millis(100), "an idle second cost {idle:?} of CPU: still polling");
    let cpu_field = |con: &mut redis::Connection, name: &str| -> f64 { info_field(con, "cpu", name).unwrap().parse().unwrap() };
    let polled = cpu_field(&mut con, "used_cpu_busy_poll");
    let used = cpu_field(&mut con, "used_cpu_user") + cpu_field(&mut con, "used_cpu_sys");
    assert!(polled <= used + 0.01, "polling without input ({polled} s) is part of the CPU used ({used} s)");
    assert!(cpu_field(&mut con, "busy_poll_window_us") <= 100.0);
    assert_eq!(text(&mut con, &["CONFIG", "SET", "busy-poll-us", "0"]).as_deref(), Some("OK"));
    assert_eq!(int(&mut con, &["SADD", "s0", "x"]), 1, "serves requests with polling off");
    assert_eq!(
        error_text(&mut con, &["CONFIG", "SET", "busy-poll-us", "10001"]),
        "ERR CONFIG SET failed (possibly related to argument 'busy-poll-us') - argument must be between 0 and 10000 inclusive"
    );
}
