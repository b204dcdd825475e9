//! The wire protocol through a raw TCP socket: pipelining, split reads, inline commands, RESP3,
//! malformed frames and hard limits, many connections, and shutdown.

use meridian_tests::{int, text, Raw, Server};
use std::time::Duration;

#[test]
fn pipelined_requests_get_replies_in_order() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..500 {
        batch.extend(format!("*3\r\n$3\r\nSET\r\n$4\r\nk{i:03}\r\n$1\r\n{}\r\n", i % 10).bytes());
        batch.extend(format!("*2\r\n$4\r\nINCR\r\n$4\r\nk{i:03}\r\n").bytes());
        expected.extend(b"+OK\r\n");
        expected.extend(format!(":{}\r\n", i % 10 + 1).bytes());
    }
    raw.roundtrip(&batch, &expected);
}

#[test]
fn requests_split_at_every_byte_parse_the_same() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.0.set_nodelay(true).unwrap();
    let request = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$11\r\nhello world\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n";
    for byte in request.iter() {
        raw.send(&[*byte]);
        std::thread::sleep(Duration::from_micros(200));
    }
    let reply = raw.read_exact_len(b"+OK\r\n$11\r\nhello world\r\n".len());
    assert_eq!(reply, b"+OK\r\n$11\r\nhello world\r\n");
}

#[test]
fn inline_commands_work_like_telnet() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.roundtrip(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n\r\n", b"+OK\r\n$11\r\nhello world\r\n+PONG\r\n");
}

#[test]
fn resp3_after_hello_3() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.send(b"CLIENT ID\r\n");
    let id = String::from_utf8(raw.read_until(b"\r\n")).unwrap();
    let id = id.trim().trim_start_matches(':');
    let hello = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    );
    raw.roundtrip(b"HELLO 3\r\n", hello.as_bytes());
    // RESP3 shapes: null, map, verbatim text.
    raw.roundtrip(b"GET nothing\r\n", b"_\r\n");
    raw.roundtrip(b"CONFIG GET maxmemory\r\n", b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    raw.roundtrip(b"INFO keyspace\r\n", b"=16\r\ntxt:# Keyspace\r\n\r\n");
    // And back to RESP2: the same map as a flat array.
    raw.send(b"HELLO 2\r\n");
    assert!(raw.read_until(b"*0\r\n").starts_with(b"*14\r\n"));
    raw.roundtrip(b"GET nothing\r\n", b"$-1\r\n");
}

#[test]
fn resp3_through_a_real_client() {
    let server = Server::start(&[]);
    let mut con = server.client_with("?protocol=resp3");
    assert_eq!(text(&mut con, &["SET", "k", "v"]).as_deref(), Some("OK"));
    assert_eq!(meridian_tests::query(&mut con, &["GET", "missing"]), meridian_tests::Reply::Nil);
    match meridian_tests::query(&mut con, &["CONFIG", "GET", "port"]) {
        meridian_tests::Reply::Map(pairs) => assert_eq!(pairs.len(), 1),
        other => panic!("CONFIG GET in RESP3 is a map, got {other:?}"),
    }
}

/// Sends garbage and expects Redis's protocol error, then the server closing the connection.
fn refused(server: &Server, garbage: &[u8], error: &str) {
    let mut raw: Raw = server.raw();
    raw.send(garbage);
    let expected = format!("-ERR Protocol error: {error}\r\n");
    let got = raw.read_exact_len(expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected, "for {:?}", String::from_utf8_lossy(&garbage[..garbage.len().min(40)]));
    assert!(raw.is_closed(), "connection should close after a protocol error");
}

#[test]
fn malformed_frames_get_an_error_and_a_closed_connection() {
    let server = Server::start(&[]);
    refused(&server, b"*1\r\n+PING\r\n", "expected '$', got '+'");
    refused(&server, b"*abc\r\n", "invalid multibulk length");
    refused(&server, b"*1\r\n$-5\r\n", "invalid bulk length");
    refused(&server, b"*1\r\n$999999999999\r\n", "invalid bulk length");
    refused(&server, b"*9999999999\r\n", "invalid multibulk length");
    refused(&server, b"SET \"unbalanced\r\n", "unbalanced quotes in request");
    refused(&server, &vec![b'x'; 70 * 1024], "too big inline request");
    let mut long_count = b"*".to_vec();
    long_count.extend(vec![b'1'; 70 * 1024]);
    refused(&server, &long_count, "too big mbulk count string");
    // The server is unharmed.
    assert_eq!(int(&mut server.client(), &["DBSIZE"]), 0);
}

#[test]
fn proto_max_bulk_len_is_enforced_and_configurable() {
    let server = Server::start(&["--proto-max-bulk-len", "1mb"]);
    refused(&server, b"*2\r\n$3\r\nGET\r\n$2000000\r\n", "invalid bulk length");
    let mut con = server.client();
    let big = "x".repeat(600 * 1024);
    assert_eq!(text(&mut con, &["SET", "big", &big]).as_deref(), Some("OK"));
    assert_eq!(meridian_tests::error_text(&mut con, &["APPEND", "big", &big]).as_str(), "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

#[test]
fn unauthenticated_clients_cannot_send_big_frames() {
    let server = Server::start(&["--requirepass", "secret"]);
    refused(&server, b"*20\r\n", "unauthenticated multibulk length");
    refused(&server, b"*2\r\n$4\r\nAUTH\r\n$100000\r\n", "unauthenticated bulk length");
}

#[test]
fn random_garbage_never_takes_the_server_down() {
    let server = Server::start(&[]);
    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..200 {
        let mut raw = server.raw();
        let len = (rng_state % 300) as usize + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                (rng_state % 256) as u8
            })
            .collect();
        raw.send(&bytes);
        raw.0.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = raw.is_closed();
    }
    let mut con = server.client();
    assert_eq!(text(&mut con, &["PING"]).as_deref(), Some("PONG"));
}

#[test]
fn thousands_of_connections_at_once() {
    let server = Server::start(&[]);
    let mut connections: Vec<Raw> = (0..2000).map(|_| server.raw()).collect();
    for (i, raw) in connections.iter_mut().enumerate() {
        raw.send(format!("SET c{i} {i}\r\n").as_bytes());
    }
    for raw in connections.iter_mut() {
        assert_eq!(raw.read_exact_len(5), b"+OK\r\n");
    }
    let mut con = server.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 2000);
    let clients: i64 = meridian_tests::info_field(&mut con, "clients", "connected_clients").unwrap().parse().unwrap();
    assert_eq!(clients, 2001);
}

#[test]
fn maxclients_refuses_the_extra_client() {
    let server = Server::start(&["--maxclients", "3"]);
    let _held: Vec<Raw> = (0..3).map(|_| server.raw()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = server.raw();
    let reply = extra.read_exact_len(36);
    assert_eq!(String::from_utf8_lossy(&reply), "-ERR max number of clients reached\r\n");
}

#[test]
fn sigterm_shuts_down_cleanly_after_replying() {
    let mut server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(text(&mut con, &["SET", "k", "v"]).as_deref(), Some("OK"));
    let mut idle = server.raw();
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(idle.is_closed(), "idle clients are disconnected");
    let log = server.log();
    assert!(log.contains("Received SIGTERM"), "{log}");
    assert!(log.contains("ready to exit"), "{log}");
}

#[test]
fn sigint_and_shutdown_command_stop_the_server() {
    let mut by_signal = Server::start(&[]);
    assert!(by_signal.signal_and_wait("INT").success());
    let mut by_command = Server::start(&[]);
    let mut raw = by_command.raw();
    raw.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(raw.is_closed());
    assert!(by_command.wait(Duration::from_secs(15)).expect("exits").success());
}
