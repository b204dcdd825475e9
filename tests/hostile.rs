//! A hostile client's requests, through a real socket: what a command that fails on absurd
//! input leaves behind, an HTTP request sent to the client port, one huge request per
//! connection, and a stray environment variable at start.

use meridian_tests::{error_text, info_field, int, meridian_bin, query, Reply, Server, TempDir};
use std::time::{Duration, Instant};

/// Counts no server can answer are refused, and whatever a request does to its connection,
/// the connection's slot is released: with `maxclients 5`, twenty such requests (each on its
/// own connection, closed after) leave room for new clients.
#[test]
fn absurd_random_counts_are_refused_and_leave_no_client_behind() {
    let server = Server::start(&["--maxclients", "5"]);
    let mut setup = server.client();
    query(&mut setup, &["HSET", "h", "f", "v"]);
    query(&mut setup, &["SADD", "s", "m"]);
    query(&mut setup, &["ZADD", "z", "1", "m"]);
    drop(setup);
    let huge = "-4611686018427387903";
    for round in 0..20 {
        let mut con = server.client();
        for request in [["HRANDFIELD", "h", huge], ["SRANDMEMBER", "s", huge], ["ZRANDMEMBER", "z", huge]] {
            assert_eq!(error_text(&mut con, &request), "ERR value is out of range", "round {round}: {request:?}");
        }
        assert_eq!(int(&mut con, &["HSTRLEN", "h", "f"]), 1, "the connection still serves");
    }
    // The last connections' slots are released as their tasks see the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut con = server.client();
        let clients = info_field(&mut con, "clients", "connected_clients").unwrap();
        if clients == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "{clients} clients still registered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP request to the client port (what a web page can make a browser send) runs
/// nothing: the connection closes at `POST` or at `Host:`, without a reply, and the attempt
/// is logged, as in Redis.
#[test]
fn http_requests_are_closed_before_their_body_runs() {
    let server = Server::start(&[]);
    let requests: [&[u8]; 2] = [
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\nSET xproto pwned\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nSET xproto pwned\r\nFLUSHALL\r\n",
    ];
    let mut con = server.client();
    query(&mut con, &["SET", "kept", "1"]);
    for request in requests {
        let mut raw = server.raw();
        raw.send(request);
        let got = raw.read_exact_len(usize::MAX);
        let got = String::from_utf8_lossy(&got);
        assert!(!got.contains("+OK"), "nothing after the HTTP line runs, got {got:?}");
        assert!(raw.is_closed(), "the connection is closed");
    }
    assert_eq!(query(&mut con, &["GET", "xproto"]), Reply::Nil);
    assert_eq!(query(&mut con, &["EXISTS", "kept"]), Reply::Int(1));
    assert!(server.log().contains("SECURITY ATTACK"), "logged: {}", server.log());
}

/// A request with a million arguments is served, and the connection then gives back what it
/// needed to hold it: eight idle connections that each sent one keep a few megabytes in all,
/// not the hundreds they held at their peak.
#[test]
fn idle_connections_give_back_the_memory_of_a_huge_request() {
    const ARGS: usize = 1_000_000;
    let server = Server::start(&[]);
    let mut con = server.client();
    let used = |con: &mut redis::Connection| info_field(con, "memory", "used_memory").unwrap().parse::<i64>().unwrap();
    let before = used(&mut con);
    let mut request = format!("*{}\r\n$6\r\nEXISTS\r\n", ARGS + 1).into_bytes();
    for _ in 0..ARGS {
        request.extend_from_slice(b"$1\r\na\r\n");
    }
    let idle: Vec<_> = (0..8)
        .map(|_| {
            let mut raw = server.raw();
            raw.roundtrip(&request, b":0\r\n");
            raw
        })
        .collect();
    let held = used(&mut con) - before;
    assert!(held < 8 << 20, "8 idle connections hold {} MB after one huge request each", held >> 20);
    drop(idle);
}

/// The environment is shared with other programs: a `MERIDIAN_` variable that names no option
/// is warned about, not a reason to refuse to start.
#[test]
fn a_stray_environment_variable_is_a_warning() {
    let dir = TempDir::new("env");
    let args = ["--port", "0", "--dir", dir.path().to_str().unwrap()];
    let server = Server::spawn_with_env(&meridian_bin(), &args, &[("MERIDIAN_WRAPPER_HOME", "/opt/wrapper"), ("MERIDIAN_MAXCLIENTS", "7")], "listening on 127.0.0.1:");
    let mut con = server.client();
    assert_eq!(meridian_tests::strings(&mut con, &["CONFIG", "GET", "maxclients"]), [Some("maxclients".into()), Some("7".into())]);
    assert!(server.log().contains("MERIDIAN_WRAPPER_HOME names no option"), "warned: {}", server.log());
}
