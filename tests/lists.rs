//! Lists through a real client: blocking pops woken by local pushes and by pushes replicated
//! from another region over QUIC, timeouts, a blocked client that goes away, long lists, and
//! lists carried through a full state transfer.

use meridian_tests::{int, query, strings, text, Cluster, Reply, Server};
use std::time::{Duration, Instant};

/// Runs `command` on a new connection of `server` in a thread; returns its reply and how long
/// it took.
fn in_background(server: &Server, command: &'static [&'static str]) -> std::thread::JoinHandle<(Reply, Duration)> {
    let mut con = server.client();
    std::thread::spawn(move || {
        let start = Instant::now();
        let reply = query(&mut con, command);
        (reply, start.elapsed())
    })
}

/// Waits (bounded) until `server` has `n` blocked clients (INFO clients).
fn wait_blocked(server: &Server, n: i64) {
    let mut con = server.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    while meridian_tests::info_field(&mut con, "clients", "blocked_clients").and_then(|v| v.parse::<i64>().ok()) != Some(n) {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

#[test]
fn blocking_pops_wake_on_a_local_push_and_time_out() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let waiter = in_background(&server, &["BLPOP", "empty", "jobs", "0"]);
    wait_blocked(&server, 1);
    assert_eq!(int(&mut con, &["RPUSH", "jobs", "j1", "j2"]), 2);
    let (reply, _) = waiter.join().unwrap();
    assert_eq!(reply, Reply::Array(vec![bulk("jobs"), bulk("j1")]), "the first key with an element, and its head");
    assert_eq!(strings(&mut con, &["LRANGE", "jobs", "0", "-1"]), vec![Some("j2".to_string())]);

    // BLMOVE wakes too, and moves what it pops.
    let mover = in_background(&server, &["BLMOVE", "in", "out", "RIGHT", "LEFT", "5"]);
    wait_blocked(&server, 1);
    int(&mut con, &["LPUSH", "in", "m"]);
    assert_eq!(mover.join().unwrap().0, bulk("m"));
    assert_eq!(text(&mut con, &["LINDEX", "out", "0"]).as_deref(), Some("m"));

    // A timeout answers null after about the timeout; a fractional one is honoured.
    let (reply, took) = in_background(&server, &["BRPOP", "nothing", "0.3"]).join().unwrap();
    assert_eq!(reply, Reply::Nil);
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(3), "took {took:?}");
    let (reply, _) = in_background(&server, &["BRPOPLPUSH", "nothing", "x", "0.05"]).join().unwrap();
    assert_eq!(reply, Reply::Nil);

    // A push to another key, or of another type, leaves a blocked client blocked.
    let waiter = in_background(&server, &["BLPOP", "wanted", "2"]);
    wait_blocked(&server, 1);
    int(&mut con, &["RPUSH", "other", "x"]);
    int(&mut con, &["SADD", "wanted-set", "x"]);
    std::thread::sleep(Duration::from_millis(100));
    int(&mut con, &["RPUSH", "wanted", "w"]);
    assert_eq!(waiter.join().unwrap().0, Reply::Array(vec![bulk("wanted"), bulk("w")]));
    wait_blocked(&server, 0);
}

/// Clients blocked on one list are served in the order they blocked, as in Redis; a key no
/// earlier client waits on is free for a later one.
#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let server = Server::start(&[]);
    let mut con = server.client();
    const FIFO: [&[&str]; 4] = [&["BLPOP", "queue", "10"], &["BRPOP", "elsewhere", "queue", "10"], &["BLPOP", "queue", "10"], &["BLMOVE", "queue", "moved", "LEFT", "LEFT", "10"]];
    let waiters: Vec<_> = FIFO
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let waiter = in_background(&server, command);
            wait_blocked(&server, i as i64 + 1);
            waiter
        })
        .collect();
    // A later client waiting on a key nobody before it waits on is served at once.
    let free = in_background(&server, &["BLPOP", "queue", "side", "10"]);
    wait_blocked(&server, 5);
    int(&mut con, &["RPUSH", "side", "s"]);
    assert_eq!(free.join().unwrap().0, Reply::Array(vec![bulk("side"), bulk("s")]));
    wait_blocked(&server, 4);
    for (i, waiter) in waiters.into_iter().enumerate() {
        int(&mut con, &["RPUSH", "queue", &format!("v{i}")]);
        let (reply, _) = waiter.join().unwrap();
        let expected = format!("v{i}");
        match i {
            3 => assert_eq!(reply, bulk(&expected), "BLMOVE, the last to block, the last served"),
            _ => assert_eq!(reply, Reply::Array(vec![bulk("queue"), bulk(&expected)]), "waiter {i}"),
        }
    }
    assert_eq!(int(&mut con, &["LLEN", "queue"]), 0);

    // The order holds however often the waiters were woken for nothing in between (each
    // wake puts them back in tokio's queue in whatever order they ran).
    for round in 0..30 {
        let first = in_background(&server, &["BLPOP", "line", "10"]);
        wait_blocked(&server, 1);
        let second = in_background(&server, &["BLPOP", "line", "10"]);
        wait_blocked(&server, 2);
        for _ in 0..3 {
            int(&mut con, &["RPUSH", "unrelated", "x"]);
        }
        int(&mut con, &["RPUSH", "line", "a", "b"]);
        assert_eq!(first.join().unwrap().0, Reply::Array(vec![bulk("line"), bulk("a")]), "round {round}");
        assert_eq!(second.join().unwrap().0, Reply::Array(vec![bulk("line"), bulk("b")]), "round {round}");
    }
}

#[test]
fn a_blocked_client_that_disconnects_is_let_go() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n");
    wait_blocked(&server, 1);
    drop(raw);
    wait_blocked(&server, 0);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["RPUSH", "q", "kept"]), 1, "nobody popped it");
    assert_eq!(int(&mut con, &["LLEN", "q"]), 1);
}

#[test]
fn a_push_replicated_from_another_region_wakes_a_blocked_pop() {
    let cluster = Cluster::start(2, "mesh", &[]);
    let waiter = in_background(cluster.node(1), &["BLPOP", "work", "20"]);
    wait_blocked(cluster.node(1), 1);
    let mut c0 = cluster.node(0).client();
    assert_eq!(int(&mut c0, &["RPUSH", "work", "from-region-0"]), 1);
    let (reply, took) = waiter.join().unwrap();
    assert_eq!(reply, Reply::Array(vec![bulk("work"), bulk("from-region-0")]));
    assert!(took < Duration::from_secs(10), "woken by the replicated push, not the timeout: {took:?}");
    // The pop replicates back: region 0's list is empty too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while int(&mut c0, &["LLEN", "work"]) != 0 {
        assert!(Instant::now() < deadline, "the pop never reached region 0");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A long list answers as a model of it does through pushes at both ends, inserts, sets and
/// pops, and popping it empty removes the key.
#[test]
fn long_lists_keep_their_order_and_pop_empty() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut model: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for chunk in 0..20 {
        let values: Vec<String> = (0..500).map(|i| format!("v{chunk}-{i}")).collect();
        let mut command = vec![if chunk % 2 == 0 { "RPUSH" } else { "LPUSH" }, "long"];
        command.extend(values.iter().map(String::as_str));
        int(&mut con, &command);
        for v in values {
            if chunk % 2 == 0 {
                model.push_back(v)
            } else {
                model.push_front(v)
            }
        }
    }
    assert_eq!(int(&mut con, &["LINSERT", "long", "AFTER", "v4-250", "inserted"]), model.len() as i64 + 1);
    let at = model.iter().position(|v| v == "v4-250").unwrap();
    model.insert(at + 1, "inserted".into());
    assert_eq!(query(&mut con, &["LSET", "long", "-3", "set"]), Reply::Status("OK".into()));
    let n = model.len();
    model[n - 3] = "set".into();
    let all: Vec<Option<String>> = model.iter().cloned().map(Some).collect();
    assert_eq!(strings(&mut con, &["LRANGE", "long", "0", "-1"]), all);
    assert_eq!(text(&mut con, &["LINDEX", "long", "5000"]), model.get(5000).cloned());
    let mut popped = 0;
    while int(&mut con, &["EXISTS", "long"]) == 1 {
        let left = strings(&mut con, &["LPOP", "long", "700"]);
        for v in left {
            assert_eq!(v, model.pop_front());
            popped += 1;
        }
        if let Some(v) = text(&mut con, &["RPOP", "long"]) {
            assert_eq!(Some(v), model.pop_back());
            popped += 1;
        }
    }
    assert_eq!((popped, model.len()), (n, 0));
}

/// Lists replicate and come back through a full state transfer to a node restarted empty.
#[test]
fn lists_replicate_and_survive_a_state_transfer() {
    let mut cluster = Cluster::start(2, "mesh", &[]);
    let mut c0 = cluster.node(0).client();
    int(&mut c0, &["RPUSH", "l", "a", "b", "c"]);
    int(&mut c0, &["LPUSH", "l", "z"]);
    int(&mut c0, &["LINSERT", "l", "BEFORE", "b", "ab"]);
    let state = cluster.wait_identical("lists replicated", Duration::from_secs(20));
    assert!(state.iter().any(|k| k.0 == "l" && k.2.as_deref() == Some("z,a,ab,b,c")), "{state:?}");
    cluster.kill(1);
    text(&mut c0, &["LPOP", "l"]);
    query(&mut c0, &["LSET", "l", "0", "A"]);
    int(&mut c0, &["RPUSH", "l", "d"]);
    cluster.start_node(1);
    let state = cluster.wait_identical("after the restarted node's state transfer", Duration::from_secs(30));
    let l = state.iter().find(|k| k.0 == "l").expect("l transferred");
    assert_eq!((l.1.as_str(), l.2.as_deref()), ("list", Some("A,ab,b,c,d")));
    let mut c1 = cluster.node(1).client();
    assert_eq!(int(&mut c1, &["RPUSH", "l", "e"]), 6);
    let state = cluster.wait_identical("a push on the restarted node", Duration::from_secs(20));
    assert_eq!(state.iter().find(|k| k.0 == "l").and_then(|k| k.2.clone()).as_deref(), Some("A,ab,b,c,d,e"));
}
