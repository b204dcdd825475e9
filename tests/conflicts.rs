//! The conflict-resolution suite: three real nodes behind the WAN emulator, driven by a real
//! Redis client. Each case makes regions write conflicting things concurrently (every link cut
//! while they write, then healed), waits until every region holds the same keyspace, and checks
//! the winner docs/semantics.md documents.

use meridian_tests::{int, text, Cluster, KeyDump, LinkModel};
use std::time::Duration;

/// Long enough for QUIC to notice a healed link and for catch-up over 10 ms links.
const CONVERGE: Duration = Duration::from_secs(30);

/// A 3-region mesh with 10 ms ± 2 ms one-way delay on every link.
fn regions() -> Cluster {
    Cluster::build(3).wan(LinkModel { delay: Duration::from_millis(10), jitter: Duration::from_millis(2), loss: 0.0 }).start()
}

/// Runs `writes` (node, command) with every link cut, so no region sees another's write
/// before making its own, then heals every link.
fn concurrently(cluster: &Cluster, writes: &[(usize, &[&str])]) {
    cluster.wan().cut_all();
    for (node, command) in writes {
        let reply = meridian_tests::query(&mut cluster.node(*node).client(), command);
        assert!(reply.error().is_none(), "{command:?} on node {node}: {reply:?}");
        // Later in real time is later in HLC time on one machine's clock.
        std::thread::sleep(Duration::from_millis(2));
    }
    cluster.wan().heal_all();
}

/// Writes `command` on `node` and waits until every region has `key` = `value`.
fn everywhere(cluster: &Cluster, node: usize, command: &[&str], key: &str, value: &str) {
    everywhere_but(cluster, None, node, command, key, value);
}

/// Writes `command` on `node` and waits until every region but `except` has `key` = `value`.
fn everywhere_but(cluster: &Cluster, except: Option<usize>, node: usize, command: &[&str], key: &str, value: &str) {
    meridian_tests::query(&mut cluster.node(node).client(), command);
    for i in (0..cluster.nodes.len()).filter(|&i| Some(i) != except) {
        poll(&mut cluster.node(i).client(), &format!("{key} reaching region {i}"), |c| text(c, &["GET", key]).as_deref() == Some(value));
    }
}

/// Polls `check` until it holds; panics naming `what` after CONVERGE.
fn poll(con: &mut redis::Connection, what: &str, check: impl Fn(&mut redis::Connection) -> bool) {
    let deadline = std::time::Instant::now() + CONVERGE;
    while !check(con) {
        assert!(std::time::Instant::now() < deadline, "no {what} within {CONVERGE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn value_of<'a>(state: &'a [KeyDump], key: &str) -> Option<&'a KeyDump> {
    state.iter().find(|k| k.0 == key)
}

fn string_of(state: &[KeyDump], key: &str) -> Option<String> {
    value_of(state, key).and_then(|k| k.2.clone())
}

#[test]
fn set_vs_set_the_larger_stamp_wins_in_every_region() {
    let cluster = regions();
    concurrently(&cluster, &[(0, &["SET", "k", "from-a"]), (1, &["SET", "k", "from-b"]), (2, &["SET", "other", "c"])]);
    let state = cluster.wait_identical("SET || SET", CONVERGE);
    assert_eq!(string_of(&state, "k").as_deref(), Some("from-b"), "B wrote last: {state:?}");
    assert_eq!(string_of(&state, "other").as_deref(), Some("c"));
}

#[test]
fn incr_vs_incr_adds_up_in_every_region() {
    let cluster = regions();
    everywhere(&cluster, 0, &["SET", "hits", "100"], "hits", "100");
    concurrently(
        &cluster,
        &[
            (0, &["INCRBY", "hits", "7"]),
            (1, &["INCRBY", "hits", "3"]),
            (2, &["DECRBY", "hits", "5"]),
            (0, &["INCRBYFLOAT", "price", "0.1"]),
            (1, &["INCRBYFLOAT", "price", "0.2"]),
            (2, &["INCRBYFLOAT", "price", "0.3"]),
        ],
    );
    let state = cluster.wait_identical("INCR || INCR", CONVERGE);
    assert_eq!(string_of(&state, "hits").as_deref(), Some("105"));
    assert_eq!(string_of(&state, "price").as_deref(), Some("0.6"), "decimal increments add up exactly");
}

#[test]
fn incr_vs_set_keeps_the_set_plus_the_increments_it_had_not_seen() {
    let cluster = regions();
    everywhere(&cluster, 0, &["SET", "k", "5"], "k", "5");
    concurrently(&cluster, &[(0, &["SET", "k", "100"]), (1, &["INCR", "k"]), (2, &["INCRBY", "k", "10"])]);
    let state = cluster.wait_identical("SET || INCR", CONVERGE);
    assert_eq!(string_of(&state, "k").as_deref(), Some("111"));
}

#[test]
fn del_vs_write_keeps_what_the_delete_had_not_seen() {
    let cluster = regions();
    everywhere(&cluster, 0, &["MSET", "s", "old", "n", "5"], "n", "5");
    concurrently(&cluster, &[(0, &["DEL", "s", "n"]), (1, &["SET", "s", "new"]), (2, &["INCRBY", "n", "2"])]);
    let state = cluster.wait_identical("DEL || SET, DEL || INCR", CONVERGE);
    assert_eq!(string_of(&state, "s").as_deref(), Some("new"), "the concurrent SET survives the DEL");
    assert_eq!(string_of(&state, "n").as_deref(), Some("2"), "only the unseen increment survives the DEL");
}

#[test]
fn expire_vs_set_and_expire_vs_expire() {
    let cluster = regions();
    everywhere(&cluster, 0, &["MSET", "a", "1", "b", "1"], "b", "1");
    // PERSIST changes only a key with a TTL (on one without, it is a no-op, as in Redis).
    everywhere(&cluster, 0, &["SET", "c", "1", "EX", "500"], "c", "1");
    concurrently(
        &cluster,
        &[
            // SET without KEEPTTL || EXPIRE: the SET removed only the TTL it had seen (none).
            (0, &["EXPIRE", "a", "1000"]),
            (1, &["SET", "a", "2"]),
            // EXPIRE || EXPIRE: the longer TTL wins, whoever wrote last.
            (0, &["EXPIRE", "b", "5000"]),
            (1, &["EXPIRE", "b", "1000"]),
            // PERSIST || EXPIRE: PERSIST wins.
            (0, &["EXPIRE", "c", "100"]),
            (1, &["PERSIST", "c"]),
        ],
    );
    let state = cluster.wait_identical("TTL conflicts", CONVERGE);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let a = value_of(&state, "a").expect("a exists");
    assert_eq!(a.2.as_deref(), Some("2"));
    assert!((990_000..=1_000_000).contains(&(a.3 - now_ms)), "a keeps the EXPIRE's TTL: {a:?}");
    let b = value_of(&state, "b").expect("b exists");
    assert!((4_990_000..=5_000_000).contains(&(b.3 - now_ms)), "the longer TTL wins: {b:?}");
    assert_eq!(value_of(&state, "c").expect("c exists").3, -1, "PERSIST beats EXPIRE");
}

#[test]
fn a_partitioned_region_writes_on_and_converges_when_healed() {
    let cluster = regions();
    let wan = cluster.wan();
    wan.isolate(2);
    let mut expected_total = 0;
    for round in 0..30 {
        for node in 0..3 {
            let mut con = cluster.node(node).client();
            int(&mut con, &["INCRBY", "total", &(node + 1).to_string()]);
            expected_total += node as i64 + 1;
            text(&mut con, &["SET", &format!("r{round}:n{node}"), "x"]);
            text(&mut con, &["SET", "last", &format!("{round}:{node}")]);
            if round % 7 == node {
                int(&mut con, &["DEL", &format!("r{}:n{}", round / 2, (node + 1) % 3)]);
            }
        }
    }
    // The isolated region holds only its own writes meanwhile.
    assert_eq!(text(&mut cluster.node(2).client(), &["GET", "r0:n0"]), None);
    wan.heal_all();
    let state = cluster.wait_identical("after the partition healed", CONVERGE);
    assert_eq!(string_of(&state, "total"), Some(expected_total.to_string()), "no increment lost in the partition");
    // Node 2 wrote "last" last in real time (29:2), so its stamp is the largest.
    assert_eq!(string_of(&state, "last").as_deref(), Some("29:2"));
    assert!(value_of(&state, "r29:n2").is_some() && value_of(&state, "r29:n0").is_some());
}

#[test]
fn a_region_killed_mid_load_restarts_and_converges() {
    let mut cluster = regions();
    let ports: Vec<u16> = cluster.nodes.iter().flatten().map(|s| s.port).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Regions 0 and 1 increment a shared counter and count what was acknowledged.
    let loaders: Vec<_> = (0..2)
        .map(|node| {
            let (port, stop) = (ports[node], stop.clone());
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut con = client.get_connection().unwrap();
                let mut acked = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if redis::cmd("INCR").arg("load").query::<i64>(&mut con).is_ok() {
                        acked += 1;
                    }
                }
                acked
            })
        })
        .collect();
    // Region 2 writes keys and confirms with WAIT which of them its peers hold.
    let mut con = cluster.node(2).client();
    let mut confirmed = None;
    for i in 0..300 {
        text(&mut con, &["SET", &format!("c:{i}"), "v"]);
        if i % 50 == 49 && int(&mut con, &["WAIT", "2", "2000"]) == 2 {
            confirmed = Some(i);
        }
    }
    cluster.kill(2);
    std::thread::sleep(Duration::from_millis(500));
    cluster.start_node(2);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: i64 = loaders.into_iter().map(|t| t.join().unwrap()).sum();
    let state = cluster.wait_identical("after the SIGKILL and restart", CONVERGE);
    assert_eq!(string_of(&state, "load"), Some(acked.to_string()), "every acknowledged increment of the live regions counts");
    let confirmed = confirmed.expect("WAIT confirmed some of region 2's writes");
    for i in 0..=confirmed {
        assert!(value_of(&state, &format!("c:{i}")).is_some(), "c:{i} was acknowledged by both peers before the kill");
    }
}

/// Regions 1 and 2 run with clocks 30 s behind and ahead. A write made after seeing another
/// replaces it, whatever the stamps say: the HLC refuses to jump 30 s, so the later write's
/// stamp can be the smaller one, and causal context, not time, decides.
#[test]
fn causally_later_writes_win_across_skewed_clocks() {
    let cluster = Cluster::build(3).wan(LinkModel::delay_ms(5)).node_flags(1, &["--test-clock-offset-ms", "-30000"]).node_flags(2, &["--test-clock-offset-ms", "30000"]).start();
    // Ahead writes first, then a region that has seen it overwrites it.
    everywhere(&cluster, 2, &["SET", "k", "from-the-future"], "k", "from-the-future");
    everywhere(&cluster, 0, &["SET", "k", "seen-and-replaced"], "k", "seen-and-replaced");
    // A normal region writes, the region behind sees it and overwrites it.
    everywhere(&cluster, 0, &["SET", "j", "first"], "j", "first");
    everywhere(&cluster, 1, &["SET", "j", "from-the-past"], "j", "from-the-past");
    // And a DEL from the region behind removes what it had seen.
    everywhere(&cluster, 2, &["SET", "gone", "x"], "gone", "x");
    int(&mut cluster.node(1).client(), &["DEL", "gone"]);
    let state = cluster.wait_identical("writes across skewed clocks", CONVERGE);
    assert_eq!(string_of(&state, "k").as_deref(), Some("seen-and-replaced"));
    assert_eq!(string_of(&state, "j").as_deref(), Some("from-the-past"));
    assert!(value_of(&state, "gone").is_none(), "{state:?}");
    // The skew is visible per peer.
    let info = text(&mut cluster.node(0).client(), &["INFO", "replication"]).unwrap();
    let ahead = info.lines().find(|l| l.contains("name=n2")).expect("peer n2 listed");
    let skew: i64 = ahead.split("skew_ms=").nth(1).and_then(|v| v.split(',').next()).and_then(|v| v.parse().ok()).expect("skew_ms");
    assert!((25_000..35_000).contains(&skew), "n2 is 30 s ahead: {ahead}");
}

/// A removal can reach a region before the write it removed (A's SET reaches C only after
/// B's DEL of it). The region remembers what the DEL named until the SET arrives, and a local
/// write to the key in between must not make it forget.
#[test]
fn a_delete_that_overtakes_its_write_holds_through_local_writes() {
    let cluster = regions();
    cluster.wan().cut(0, 2);
    everywhere_but(&cluster, Some(2), 0, &["SET", "k", "a"], "k", "a");
    meridian_tests::int(&mut cluster.node(1).client(), &["DEL", "k"]);
    // Region 2 holds the DEL's trace (a hidden entry) once it has applied it.
    let mut c2 = cluster.node(2).client();
    poll(&mut c2, "DEL applied on region 2", |c| meridian_tests::query(c, &["CRDT.STATE", "k"]) != meridian_tests::Reply::Nil);
    assert_eq!(int(&mut c2, &["INCR", "k"]), 1);
    cluster.wan().heal_all();
    let state = cluster.wait_identical("after the SET reached region 2", CONVERGE);
    assert_eq!(string_of(&state, "k").as_deref(), Some("1"), "the SET was deleted before region 2's INCR: {state:?}");
}

/// Writes `commands` on region 0 and waits until every region holds the same keyspace.
fn seeded(cluster: &Cluster, commands: &[&[&str]]) {
    let mut c0 = cluster.node(0).client();
    for command in commands {
        meridian_tests::query(&mut c0, command);
    }
    let state = cluster.wait_identical("seed", CONVERGE);
    assert!(!state.is_empty(), "the seed reached every region");
}

/// Redis Enterprise's example: `SREM a` then `SREM c` ‖ `SADD c` ends as {b, c}; and an add
/// concurrent with a DEL of the whole set survives it (observed remove, add wins).
#[test]
fn sadd_vs_srem_and_del_the_add_wins() {
    let cluster = regions();
    seeded(&cluster, &[&["SADD", "s", "a", "b", "c"], &["SADD", "t", "x"]]);
    concurrently(&cluster, &[(0, &["SREM", "s", "a", "c"]), (1, &["SADD", "s", "c"]), (2, &["DEL", "t"]), (1, &["SADD", "t", "y"])]);
    let state = cluster.wait_identical("SREM || SADD", CONVERGE);
    assert_eq!(string_of(&state, "s").as_deref(), Some("b,c"), "{state:?}");
    assert_eq!(string_of(&state, "t").as_deref(), Some("y"), "{state:?}");
}

/// Hash fields merge one by one: concurrent HINCRBYs add up, an HSET concurrent with an HDEL
/// of its field keeps the field, and an HSET concurrent with an HINCRBY keeps the written
/// value plus the increment it had not seen.
#[test]
fn hash_fields_merge_field_by_field() {
    let cluster = regions();
    seeded(&cluster, &[&["HSET", "h", "hits", "100", "name", "x", "score", "1"]]);
    concurrently(
        &cluster,
        &[
            (0, &["HINCRBY", "h", "hits", "7"]),
            (1, &["HINCRBY", "h", "hits", "3"]),
            (2, &["HDEL", "h", "name"]),
            (0, &["HSET", "h", "name", "y"]),
            (1, &["HSET", "h", "score", "10"]),
            (2, &["HINCRBY", "h", "score", "5"]),
        ],
    );
    let state = cluster.wait_identical("hash field conflicts", CONVERGE);
    assert_eq!(string_of(&state, "h").as_deref(), Some("hits=110,name=y,score=15"), "{state:?}");
}

/// Sorted-set members merge one by one: concurrent ZINCRBYs add up, a ZADD concurrent with a
/// ZINCRBY keeps the written score plus the increment it had not seen, concurrent ZADDs keep
/// the later score, and a ZREM concurrent with a ZINCRBY leaves the member with only the
/// increment the remover had not seen (Redis Enterprise's rule).
#[test]
fn zadd_vs_zincrby_and_zrem_vs_zincrby() {
    let cluster = regions();
    seeded(&cluster, &[&["ZADD", "z", "100", "hits", "1", "score", "5", "gone", "1", "lww"]]);
    concurrently(
        &cluster,
        &[
            (0, &["ZINCRBY", "z", "7", "hits"]),
            (1, &["ZINCRBY", "z", "3", "hits"]),
            (2, &["ZADD", "z", "10", "score"]),
            (0, &["ZINCRBY", "z", "5", "score"]),
            (1, &["ZREM", "z", "gone"]),
            (2, &["ZINCRBY", "z", "2", "gone"]),
            (0, &["ZADD", "z", "20", "lww"]),
            (1, &["ZADD", "z", "30", "lww"]),
        ],
    );
    let state = cluster.wait_identical("sorted-set conflicts", CONVERGE);
    assert_eq!(string_of(&state, "z").as_deref(), Some("gone=2,score=15,lww=30,hits=110"), "{state:?}");
}

/// Lists: concurrent pushes at both ends all survive, in stamp order at the tail and newest
/// first at the head; two regions popping the same element both get it and it goes once; an
/// LSET concurrent with an LREM of the same element keeps the new value (add wins).
#[test]
fn lpush_vs_lpush_and_pops_of_the_same_element() {
    let cluster = regions();
    seeded(&cluster, &[&["RPUSH", "l", "a", "b"], &["RPUSH", "k", "p", "q"]]);
    concurrently(
        &cluster,
        &[
            (0, &["RPUSH", "l", "x"]),
            (1, &["RPUSH", "l", "y"]),
            (2, &["LPUSH", "l", "z"]),
            (0, &["LPOP", "l"]),
            (1, &["LPOP", "l"]),
            (2, &["LSET", "k", "0", "P"]),
            (0, &["LREM", "k", "0", "p"]),
        ],
    );
    let state = cluster.wait_identical("list conflicts", CONVERGE);
    assert_eq!(string_of(&state, "l").as_deref(), Some("z,b,x,y"), "{state:?}");
    assert_eq!(string_of(&state, "k").as_deref(), Some("P,q"), "{state:?}");
}

/// SET on one region and SADD on the same key in another, concurrently: every region reads the
/// type of the later write (HLC time, then node id), with its contents.
#[test]
fn a_type_conflict_resolves_to_the_later_write_everywhere() {
    let cluster = regions();
    concurrently(&cluster, &[(0, &["SET", "k", "text"]), (1, &["SADD", "k", "m"]), (2, &["SADD", "j", "m"]), (0, &["HSET", "j", "f", "v"])]);
    let state = cluster.wait_identical("SET || SADD", CONVERGE);
    let k = value_of(&state, "k").expect("k exists");
    assert_eq!((k.1.as_str(), k.2.as_deref()), ("set", Some("m")), "{state:?}");
    let j = value_of(&state, "j").expect("j exists");
    assert_eq!((j.1.as_str(), j.2.as_deref()), ("hash", Some("f=v")), "{state:?}");
    // The losing string stays hidden: a write that saw the whole key takes it away with it.
    let mut c2 = cluster.node(2).client();
    assert_eq!(int(&mut c2, &["SREM", "k", "m"]), 1);
    let state = cluster.wait_identical("after the last member went", CONVERGE);
    assert!(value_of(&state, "k").is_none(), "removing the last member removes the key: {state:?}");
}
