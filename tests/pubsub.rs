//! Pub/sub on one node: the same subscribe/publish sessions to a real `redis-server` and to
//! `meridian`, compared byte for byte on every connection (RESP2 and RESP3), an unmodified
//! client's pub/sub API, and a subscriber that stops reading being disconnected.

use meridian_tests::{int, Raw, Server};
use std::io::Read;
use std::time::{Duration, Instant};

/// A command as RESP.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Everything that arrives on `raw` until it has been quiet for `quiet`.
fn drain(raw: &mut Raw, quiet: Duration) -> Vec<u8> {
    raw.0.set_read_timeout(Some(quiet)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = raw.0.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    raw.0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    got
}

/// Connections 0-3 of one server: two subscribers, a publisher, a RESP3 subscriber.
fn connections(server: &Server) -> Vec<Raw> {
    (0..4).map(|_| server.raw()).collect()
}

/// Steps of the compared session: (connection, command, compare the replies).
const SESSION: &[(usize, &[&str], bool)] = &[
    (0, &["SUBSCRIBE", "a", "b"], true),
    (0, &["SUBSCRIBE", "a"], true),
    (0, &["GET", "x"], true),
    (0, &["PING"], true),
    (0, &["PING", "hi"], true),
    (0, &["MULTI"], true),
    (2, &["PUBLISH", "a", "hello"], true),
    (1, &["PSUBSCRIBE", "n*", "a*"], true),
    (2, &["PUBLISH", "a", "two"], true),
    (2, &["PUBLISH", "news", "x"], true),
    (2, &["PUBLISH", "nobody", "x"], true),
    (2, &["PUBSUB", "NUMSUB", "a", "b", "c"], true),
    (2, &["PUBSUB", "NUMPAT"], true),
    (2, &["PUBSUB", "CHANNELS", "a"], true),
    (2, &["PUBSUB", "CHANNELS", "z*"], true),
    (2, &["PUBSUB", "BOGUS"], true),
    (2, &["PUBSUB", "NUMPAT", "x"], true),
    (2, &["PUBSUB", "CHANNELS", "a", "b"], true),
    (2, &["PUBLISH", "a"], true),
    (2, &["SUBSCRIBE"], true),
    (2, &["UNSUBSCRIBE", "nothing"], true),
    (2, &["PUNSUBSCRIBE"], true),
    (0, &["UNSUBSCRIBE", "a"], true),
    (2, &["PUBLISH", "a", "only-the-pattern"], true),
    (0, &["UNSUBSCRIBE"], true),
    (0, &["UNSUBSCRIBE"], true),
    (0, &["GET", "x"], true),
    (1, &["PUNSUBSCRIBE", "n*"], true),
    (1, &["PUNSUBSCRIBE"], true),
    (1, &["SUBSCRIBE", "c"], true),
    (1, &["RESET"], true),
    (2, &["PUBSUB", "NUMSUB", "c"], true),
    // RESP3: HELLO's reply names the server and differs; what follows is compared.
    (3, &["HELLO", "3"], false),
    (3, &["SUBSCRIBE", "r"], true),
    (3, &["GET", "x"], true),
    (3, &["PING"], true),
    (2, &["PUBLISH", "r", "pushed"], true),
    (3, &["PSUBSCRIBE", "r*"], true),
    (2, &["PUBLISH", "r", "twice"], true),
    (3, &["UNSUBSCRIBE", "r"], true),
    (3, &["PUNSUBSCRIBE", "r*"], true),
];

#[test]
fn subscribe_publish_sessions_match_redis_byte_for_byte() {
    let (redis, meridian) = (Server::start_redis(), Server::start(&[]));
    let (mut r, mut m) = (connections(&redis), connections(&meridian));
    for (step, (conn, command, compare)) in SESSION.iter().enumerate() {
        r[*conn].send(&resp(command));
        m[*conn].send(&resp(command));
        for c in 0..r.len() {
            let expected = drain(&mut r[c], Duration::from_millis(25));
            let mut got = m[c].read_exact_len(expected.len());
            got.extend(drain(&mut m[c], Duration::from_millis(5)));
            if *compare {
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected), "step {step} {command:?}, connection {c}");
            }
        }
    }
}

/// An unmodified client's pub/sub API receives what another connection publishes, by channel
/// and by pattern.
#[test]
fn an_unmodified_client_subscribes_and_receives() {
    let server = Server::start(&[]);
    let mut subscriber = server.client();
    let mut publisher = server.client();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe("orders").unwrap();
    pubsub.psubscribe("metrics.*").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(int(&mut publisher, &["PUBLISH", "orders", "o-1"]), 1);
    assert_eq!(int(&mut publisher, &["PUBLISH", "metrics.cpu", "93"]), 1);
    let first = pubsub.get_message().unwrap();
    assert_eq!((first.get_channel_name(), first.get_payload::<String>().unwrap()), ("orders", "o-1".to_string()));
    let second = pubsub.get_message().unwrap();
    assert_eq!(second.get_pattern::<String>().unwrap(), "metrics.*");
    assert_eq!((second.get_channel_name(), second.get_payload::<String>().unwrap()), ("metrics.cpu", "93".to_string()));
    pubsub.unsubscribe("orders").unwrap();
    assert_eq!(int(&mut publisher, &["PUBLISH", "orders", "o-2"]), 0);
}

/// A subscriber that never reads is disconnected once its undelivered messages pass the
/// pubsub output limit (32 MB), instead of growing the server without bound; the others keep
/// receiving.
#[test]
fn a_subscriber_that_stops_reading_is_disconnected() {
    let server = Server::start(&[]);
    let mut stalled = server.raw();
    stalled.send(&resp(&["SUBSCRIBE", "firehose"]));
    stalled.read_until(b":1\r\n");
    let mut healthy_con = server.client();
    let mut healthy = healthy_con.as_pubsub();
    healthy.subscribe("firehose").unwrap();
    let mut publisher = server.client();
    let payload = "x".repeat(1 << 20);
    let deadline = Instant::now() + Duration::from_secs(60);
    healthy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut published = 0;
    loop {
        assert!(Instant::now() < deadline, "the stalled subscriber was never disconnected");
        assert!(published < 200, "published {published} MB without a disconnect");
        let receivers = int(&mut publisher, &["PUBLISH", "firehose", &payload]);
        published += 1;
        assert_eq!(healthy.get_message().unwrap().get_payload::<String>().unwrap().len(), payload.len());
        if receivers == 1 {
            break;
        }
    }
    assert!(published > 32, "disconnected after only {published} MB");
    assert!(stalled.is_closed(), "the stalled subscriber's connection is closed");
}
