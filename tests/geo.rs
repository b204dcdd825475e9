//! Geo replication, black-box: three real `meridian` processes on loopback replicating over
//! QUIC with mutual TLS, driven through real Redis clients.

use meridian_tests::{info_field, int, query, text, Cluster, Reply, Server, TempDir};
use std::process::Command;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);

fn expect_text(key: &'static str, value: &'static str) -> impl Fn(&mut redis::Connection) -> Result<(), String> {
    move |c| match text(c, &["GET", key]) {
        Some(v) if v == value => Ok(()),
        other => Err(format!("{key}={other:?}")),
    }
}

#[test]
fn writes_on_every_node_appear_on_every_other_in_a_mesh() {
    let cluster = Cluster::start(3, "mesh", &[]);
    for i in 0..3 {
        text(&mut cluster.node(i).client(), &["SET", &format!("from{i}"), &format!("v{i}")]);
    }
    cluster.wait_for("every write everywhere", CONVERGE, |c| {
        for i in 0..3 {
            if text(c, &["GET", &format!("from{i}")]) != Some(format!("v{i}")) {
                return Err(format!("from{i} missing"));
            }
        }
        Ok(())
    });
    let mut con = cluster.node(0).client();
    assert_eq!(info_field(&mut con, "replication", "role").as_deref(), Some("active-active"));
    assert_eq!(info_field(&mut con, "replication", "connected_peers").as_deref(), Some("2"));
    let peer = info_field(&mut con, "replication", "peer0").unwrap();
    assert!(peer.contains("name=n1") && peer.contains("state=connected"), "{peer}");
    // Once every node has applied every op, no one needs them from a log any more.
    cluster.wait_for("op logs trimmed to what some member lacks", CONVERGE, |c| match info_field(c, "replication", "oplog_ops").as_deref() {
        Some("0") => Ok(()),
        other => Err(format!("oplog_ops={other:?}")),
    });
}

#[test]
fn concurrent_increments_from_every_region_add_up() {
    let cluster = Cluster::start(3, "mesh", &[]);
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let mut con = cluster.node(i).client();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    int(&mut con, &["INCR", "hits"]);
                    int(&mut con, &["INCRBY", "score", "2"]);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    cluster.wait_for("all increments counted", CONVERGE, |c| match (text(c, &["GET", "hits"]), text(c, &["GET", "score"])) {
        (Some(h), Some(s)) if h == "1500" && s == "3000" => Ok(()),
        other => Err(format!("{other:?}")),
    });
}

#[test]
fn a_ring_forwards_everyone_s_writes() {
    let cluster = Cluster::start(3, "ring", &[]);
    for i in 0..3 {
        text(&mut cluster.node(i).client(), &["SET", &format!("ring{i}"), "x"]);
        int(&mut cluster.node(i).client(), &["INCR", "ringcount"]);
    }
    cluster.wait_for("ring convergence", CONVERGE, |c| {
        let all = (0..3).all(|i| text(c, &["GET", &format!("ring{i}")]).is_some());
        match (all, text(c, &["GET", "ringcount"])) {
            (true, Some(n)) if n == "3" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

#[test]
fn a_ring_with_a_member_down_skips_it_and_heals_when_it_returns() {
    let mut cluster = Cluster::start(3, "ring", &[]);
    cluster.wait_for("ring up", CONVERGE, |c| match text(c, &["SET", "up", "1"]) {
        Some(_) => Ok(()),
        None => Err("no reply".into()),
    });
    cluster.kill(1);
    // Node 0's successor is down: its writes must still reach node 2 (the next live member).
    text(&mut cluster.node(0).client(), &["SET", "while-down", "0"]);
    let mut two = cluster.node(2).client();
    let deadline = std::time::Instant::now() + CONVERGE;
    while text(&mut two, &["GET", "while-down"]).is_none() {
        assert!(std::time::Instant::now() < deadline, "node 2 never got node 0's write around the dead member");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.start_node(1);
    cluster.wait_for("the returning member catches up", CONVERGE, expect_text("while-down", "0"));
}

#[test]
fn a_killed_node_catches_up_after_restart() {
    let mut cluster = Cluster::start(3, "mesh", &[]);
    text(&mut cluster.node(2).client(), &["SET", "before", "1"]);
    cluster.wait_for("first write replicated", CONVERGE, expect_text("before", "1"));
    cluster.kill(2);
    for i in 0..200 {
        text(&mut cluster.node(0).client(), &["SET", &format!("during:{i}"), "x"]);
    }
    int(&mut cluster.node(1).client(), &["INCR", "during-count"]);
    cluster.start_node(2);
    let restarted = std::time::Instant::now();
    cluster.wait_for("restarted node caught up", CONVERGE, |c| match (text(c, &["GET", "during:199"]), text(c, &["GET", "during-count"]), text(c, &["GET", "before"])) {
        (Some(_), Some(n), Some(b)) if n == "1" && b == "1" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    // The peers drop their sessions to the dead incarnation as soon as the new one says
    // hello, instead of waiting out QUIC's 5 s idle timeout.
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(4), "catching up took {took:?}");
    // A restart is a new incarnation: its new writes never reuse the old (origin, seq).
    int(&mut cluster.node(2).client(), &["INCR", "during-count"]);
    cluster.wait_for("new incarnation's write everywhere", CONVERGE, expect_text("during-count", "2"));
}

#[test]
fn a_node_cut_off_past_the_op_log_gets_a_full_state_transfer() {
    let cluster = Cluster::start(3, "mesh", &["--repl-backlog-size", "16kb"]);
    text(&mut cluster.node(0).client(), &["SET", "start", "1"]);
    cluster.wait_for("link up", CONVERGE, expect_text("start", "1"));
    let frozen = cluster.nodes[2].as_ref().unwrap().pid();
    Command::new("kill").args(["-STOP", &frozen.to_string()]).status().unwrap();
    // A frozen peer stops acknowledging; after QUIC's 5 s idle timeout its connection is dead.
    // Writes made after that (far more than 16 KB) are trimmed from the op log before it returns.
    std::thread::sleep(Duration::from_secs(6));
    let mut con = cluster.node(0).client();
    let value = "x".repeat(200);
    for i in 0..400 {
        text(&mut con, &["SET", &format!("big:{i}"), &value]);
    }
    int(&mut con, &["DEL", "start"]);
    Command::new("kill").args(["-CONT", &frozen.to_string()]).status().unwrap();
    cluster.wait_for("frozen node converged", Duration::from_secs(40), |c| match (int(c, &["EXISTS", "big:399", "big:0"]), int(c, &["EXISTS", "start"])) {
        (2, 0) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let info = text(&mut cluster.node(0).client(), &["INFO", "replication"]).unwrap();
    let to_node2 = info.lines().find(|l| l.contains("name=n2")).unwrap_or_default().to_string();
    assert!(!to_node2.contains("transfers=0"), "node 0 sent node 2 a state transfer: {to_node2}");
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let cluster = Cluster::start(2, "mesh", &[]);
    let rogue_certs = TempDir::new("rogue");
    let made = Command::new(meridian_tests::meridian_bin()).args(["certs", rogue_certs.path().to_str().unwrap(), "--nodes", "rogue"]).output().unwrap();
    assert!(made.status.success());
    let cert = |f: &str| rogue_certs.path().join(f).to_str().unwrap().to_string();
    let rogue_port = meridian_tests::free_udp_port().to_string();
    let peer = format!("127.0.0.1:{}", cluster.geo_ports[0]);
    let rogue = Server::start(&[
        "--geo-port",
        &rogue_port,
        "--peer",
        &peer,
        "--node-name",
        "rogue",
        "--tls-cert",
        &cert("rogue.pem"),
        "--tls-key",
        &cert("rogue.key"),
        "--tls-ca",
        &cert("ca.pem"),
    ]);
    text(&mut rogue.client(), &["SET", "rogue-write", "1"]);
    text(&mut cluster.node(0).client(), &["SET", "cluster-write", "1"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(query(&mut cluster.node(0).client(), &["GET", "rogue-write"]), Reply::Nil, "nothing moved in");
    assert_eq!(query(&mut rogue.client(), &["GET", "cluster-write"]), Reply::Nil, "nothing moved out");
    let log = cluster.node(0).log();
    assert!(log.contains("refused replication connection"), "node 0 logs the refusal: {log}");
    let rogue_log = rogue.log();
    assert!(rogue_log.contains("replication link"), "the rogue logs why its link fails: {rogue_log}");
}

#[test]
fn a_peer_of_another_cluster_is_refused_before_any_data_moves() {
    let cluster = Cluster::start(2, "mesh", &[]);
    // n1's certificate (so its name), another cluster id.
    let mut other_args = cluster.node_args(1);
    other_args.extend(["--cluster-id".to_string(), "another".to_string()]);
    other_args[1] = meridian_tests::free_udp_port().to_string();
    let args: Vec<&str> = other_args.iter().map(String::as_str).collect();
    let intruder = Server::start(&args);
    text(&mut intruder.client(), &["SET", "intruder-write", "1"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(query(&mut cluster.node(0).client(), &["GET", "intruder-write"]), Reply::Nil);
    let log = cluster.node(0).log();
    assert!(log.contains("refused replication peer") && log.contains("another"), "{log}");
}

#[test]
fn wait_counts_the_peers_that_applied_the_write() {
    let cluster = Cluster::start(3, "mesh", &[]);
    let mut con = cluster.node(0).client();
    cluster.wait_for("links up", CONVERGE, |c| {
        let peers = info_field(c, "replication", "connected_peers").unwrap_or_default();
        if peers == "2" {
            Ok(())
        } else {
            Err(peers)
        }
    });
    text(&mut con, &["SET", "w", "1"]);
    assert_eq!(int(&mut con, &["WAIT", "2", "5000"]), 2);
    let frozen = cluster.nodes[2].as_ref().unwrap().pid();
    Command::new("kill").args(["-STOP", &frozen.to_string()]).status().unwrap();
    text(&mut con, &["SET", "w", "2"]);
    let started = std::time::Instant::now();
    assert_eq!(int(&mut con, &["WAIT", "2", "500"]), 1, "one peer is frozen");
    assert!(started.elapsed() >= Duration::from_millis(450), "WAIT waited for its timeout");
    assert_eq!(int(&mut con, &["WAIT", "1", "5000"]), 1);
    Command::new("kill").args(["-CONT", &frozen.to_string()]).status().unwrap();
    assert_eq!(int(&mut con, &["WAIT", "2", "10000"]), 2, "the thawed peer catches up");
    let lone = Server::start(&[]);
    assert_eq!(int(&mut lone.client(), &["WAIT", "1", "100"]), 0, "no peers: nothing to wait for");
}

/// Waits (bounded) until `check` holds on one node's client.
fn wait_on(con: &mut redis::Connection, what: &str, check: impl Fn(&mut redis::Connection) -> bool) {
    let deadline = std::time::Instant::now() + CONVERGE;
    while !check(con) {
        assert!(std::time::Instant::now() < deadline, "{what} did not happen within {CONVERGE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fields of one CRDT.CONFLICTS GET entry (RESP2: a flat field/value array).
fn conflict_fields(entry: &Reply) -> std::collections::HashMap<String, String> {
    let Reply::Array(items) = entry else { panic!("entry is not an array: {entry:?}") };
    items
        .chunks(2)
        .map(|pair| {
            let value = match &pair[1] {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                Reply::Int(i) => i.to_string(),
                other => panic!("unexpected field value {other:?}"),
            };
            match &pair[0] {
                Reply::Bulk(name) => (String::from_utf8_lossy(name).into_owned(), value),
                other => panic!("unexpected field name {other:?}"),
            }
        })
        .collect()
}

#[test]
fn conflicts_are_counted_in_info_and_logged_for_crdt_conflicts() {
    // n1 hears n0 but n0 never hears n1: whatever n1 writes is concurrent with n0's writes.
    let mut cluster = Cluster::start(2, "mesh", &[]);
    cluster.kill(1);
    cluster.start_node_without_peers(1);
    let (mut n0, mut n1) = (cluster.node(0).client(), cluster.node(1).client());
    let seen_on_n1 = |n1: &mut redis::Connection, key: &str, value: &str| wait_on(n1, &format!("{key}={value} on n1"), |c| text(c, &["GET", key]).as_deref() == Some(value));

    // SET ‖ SET: n0's later write wins on n1.
    text(&mut n1, &["SET", "s", "from-n1"]);
    std::thread::sleep(Duration::from_millis(5));
    text(&mut n0, &["SET", "s", "from-n0"]);
    seen_on_n1(&mut n1, "s", "from-n0");

    // DEL ‖ SET: n0 deletes the value it saw; n1's concurrent overwrite survives on n1.
    text(&mut n0, &["SET", "d", "v0"]);
    seen_on_n1(&mut n1, "d", "v0");
    text(&mut n1, &["SET", "d", "kept"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(int(&mut n0, &["DEL", "d"]), 1);

    // INCR ‖ SET of a non-number: the string reads, the increment stays recorded.
    assert_eq!(int(&mut n1, &["INCR", "t"]), 1);
    std::thread::sleep(Duration::from_millis(5));
    text(&mut n0, &["SET", "t", "text"]);
    seen_on_n1(&mut n1, "t", "text");

    wait_on(&mut n1, "three conflicts counted", |c| info_field(c, "conflicts", "conflicts_total").as_deref() == Some("3"));
    assert_eq!(text(&mut n1, &["GET", "d"]).as_deref(), Some("kept"));
    for (field, count) in [("string_lww_overwrite", "1"), ("string_add_wins", "1"), ("string_type_conflict", "1"), ("counter_counters_merged", "0")] {
        assert_eq!(info_field(&mut n1, "conflicts", &format!("conflicts_{field}")).as_deref(), Some(count), "{field}");
    }
    assert_eq!(info_field(&mut n0, "conflicts", "conflicts_total").as_deref(), Some("0"));

    let Reply::Array(entries) = query(&mut n1, &["CRDT.CONFLICTS", "GET"]) else { panic!("GET is not an array") };
    let entries: Vec<_> = entries.iter().map(conflict_fields).collect();
    let summary: Vec<(&str, &str, &str)> = entries.iter().map(|e| (e["key"].as_str(), e["rule"].as_str(), e["kept"].as_str())).collect();
    assert_eq!(summary, vec![("t", "type-conflict", "op"), ("d", "add-wins", "other"), ("s", "lww-overwrite", "op")]);
    for entry in &entries {
        assert_eq!((entry["op-node"].as_str(), entry["other-node"].as_str()), ("n0", "n1"), "{entry:?}");
        assert!(entry["op-hlc"].parse::<u64>().unwrap() > entry["other-hlc"].parse::<u64>().unwrap(), "{entry:?}");
    }
    assert!(matches!(query(&mut n1, &["CRDT.CONFLICTS", "GET", "1"]), Reply::Array(one) if one.len() == 1));
    assert_eq!(int(&mut n1, &["CRDT.CONFLICTS", "LEN"]), 3);
    assert_eq!(text(&mut n1, &["CRDT.CONFLICTS", "RESET"]).as_deref(), Some("OK"));
    assert_eq!(int(&mut n1, &["CRDT.CONFLICTS", "LEN"]), 0);
    assert_eq!(info_field(&mut n1, "conflicts", "conflicts_total").as_deref(), Some("3"));
    let error = query(&mut n1, &["CRDT.CONFLICTS", "GET", "-2"]);
    assert_eq!(error.error(), Some("ERR count should be greater than or equal to -1"));
}

/// Conflicts inside collections and between types are counted and logged too: each pair of
/// writes below is concurrent (n0 never hears n1), and n1 applies n0's later-stamped write.
#[test]
fn collection_and_type_conflicts_are_counted_and_logged() {
    let mut cluster = Cluster::start(2, "mesh", &[]);
    cluster.kill(1);
    cluster.start_node_without_peers(1);
    let (mut n0, mut n1) = (cluster.node(0).client(), cluster.node(1).client());
    int(&mut n0, &["SADD", "s", "m"]);
    int(&mut n0, &["RPUSH", "l", "x"]);
    wait_on(&mut n1, "the seed on n1", |c| int(c, &["LLEN", "l"]) == 1 && int(c, &["SCARD", "s"]) == 1);
    let pause = || std::thread::sleep(Duration::from_millis(5));
    // SADD ‖ SREM: the re-add n0's SREM had not seen stays.
    int(&mut n1, &["SADD", "s", "m"]);
    // HSET ‖ HSET and ZADD ‖ ZADD: n0's later write wins.
    int(&mut n1, &["HSET", "h", "f", "from-n1"]);
    int(&mut n1, &["ZADD", "z", "1", "m"]);
    // LSET ‖ LPOP: the value n0's pop had not seen stays.
    query(&mut n1, &["LSET", "l", "0", "kept"]);
    // SADD ‖ SET: n0's later SET decides the type.
    int(&mut n1, &["SADD", "k", "member"]);
    // HINCRBY ‖ HSET: n0's value plus the increment it had not seen.
    int(&mut n1, &["HINCRBY", "hc", "f", "1"]);
    pause();
    int(&mut n0, &["SREM", "s", "m"]);
    int(&mut n0, &["HSET", "h", "f", "from-n0"]);
    int(&mut n0, &["ZADD", "z", "2", "m"]);
    text(&mut n0, &["LPOP", "l"]);
    text(&mut n0, &["SET", "k", "text"]);
    int(&mut n0, &["HSET", "hc", "f", "5"]);
    wait_on(&mut n1, "six conflicts counted", |c| info_field(c, "conflicts", "conflicts_total").as_deref() == Some("6"));
    for field in ["set_add_wins", "hash_lww_overwrite", "zset_lww_overwrite", "list_add_wins", "key_type_conflict", "hash_add_wins"] {
        assert_eq!(info_field(&mut n1, "conflicts", &format!("conflicts_{field}")).as_deref(), Some("1"), "{field}");
    }
    assert_eq!((int(&mut n1, &["SCARD", "s"]), text(&mut n1, &["HGET", "h", "f"])), (1, Some("from-n0".into())));
    assert_eq!(text(&mut n1, &["TYPE", "k"]).as_deref(), Some("string"));
    assert_eq!(text(&mut n1, &["HGET", "hc", "f"]).as_deref(), Some("6"));
    let Reply::Array(entries) = query(&mut n1, &["CRDT.CONFLICTS", "GET"]) else { panic!("GET is not an array") };
    let summary: Vec<(String, String, String)> = entries.iter().map(conflict_fields).map(|e| (e["key"].clone(), e["type"].clone(), e["kept"].clone())).collect();
    assert_eq!(summary[0], ("hc".to_string(), "hash".to_string(), "both".to_string()), "newest first: {summary:?}");
    assert!(summary.contains(&("k".to_string(), "key".to_string(), "op".to_string())), "{summary:?}");
    assert!(summary.contains(&("s".to_string(), "set".to_string(), "other".to_string())), "{summary:?}");
    assert!(summary.contains(&("l".to_string(), "list".to_string(), "other".to_string())), "{summary:?}");
    assert_eq!(text(&mut n1, &["LINDEX", "l", "0"]).as_deref(), Some("kept"));
    assert_eq!(info_field(&mut n0, "conflicts", "conflicts_total").as_deref(), Some("0"));
}

/// A region paused (SIGSTOP) for longer than QUIC's idle timeout while the others keep
/// writing, then resumed (SIGCONT), acknowledges and catches up like any other: every
/// increment made meanwhile reaches it.
#[test]
fn a_paused_region_catches_up_after_it_resumes() {
    let cluster = Cluster::start(3, "mesh", &[]);
    cluster.wait_for("links up", CONVERGE, |c| match info_field(c, "replication", "connected_peers").as_deref() {
        Some("2") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let paused = cluster.node(2).pid().to_string();
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let mut con = cluster.node(i).client();
            std::thread::spawn(move || {
                for n in 0..3000 {
                    int(&mut con, &["INCR", "hits"]);
                    text(&mut con, &["SET", &format!("k{i}:{}", n % 200), "v"]);
                    int(&mut con, &["RPUSH", "queue", &n.to_string()]);
                    std::thread::sleep(Duration::from_millis(4));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill").args(["-STOP", &paused]).status().unwrap();
    std::thread::sleep(Duration::from_secs(10));
    Command::new("kill").args(["-CONT", &paused]).status().unwrap();
    writers.into_iter().for_each(|w| w.join().unwrap());
    cluster.wait_for("every increment and push on every region", Duration::from_secs(30), |c| match (text(c, &["GET", "hits"]).as_deref(), int(c, &["LLEN", "queue"])) {
        (Some("6000"), 6000) => Ok(()),
        other => Err(format!("hits, pushes = {other:?}")),
    });
}
