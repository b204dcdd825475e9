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
    cluster.wait_for("restarted node caught up", CONVERGE, |c| {
        match (text(c, &["GET", "during:199"]), text(c, &["GET", "during-count"]), text(c, &["GET", "before"])) {
            (Some(_), Some(n), Some(b)) if n == "1" && b == "1" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
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
    cluster.wait_for("frozen node converged", Duration::from_secs(40), |c| {
        match (int(c, &["EXISTS", "big:399", "big:0"]), int(c, &["EXISTS", "start"])) {
            (2, 0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let info = text(&mut cluster.node(0).client(), &["INFO", "replication"]).unwrap();
    let to_node2 = info.lines().find(|l| l.contains("name=n2")).unwrap_or_default().to_string();
    assert!(!to_node2.contains("transfers=0"), "node 0 sent node 2 a state transfer: {to_node2}");
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let cluster = Cluster::start(2, "mesh", &[]);
    let rogue_certs = TempDir::new("rogue");
    let made = Command::new(meridian_tests::meridian_bin())
        .args(["certs", rogue_certs.path().to_str().unwrap(), "--nodes", "rogue"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let cert = |f: &str| rogue_certs.path().join(f).to_str().unwrap().to_string();
    let rogue_port = meridian_tests::free_udp_port().to_string();
    let peer = format!("127.0.0.1:{}", cluster.geo_ports[0]);
    let rogue = Server::start(&[
        "--geo-port", &rogue_port, "--peer", &peer, "--node-name", "rogue",
        "--tls-cert", &cert("rogue.pem"), "--tls-key", &cert("rogue.key"), "--tls-ca", &cert("ca.pem"),
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
    let mut other_args = cluster.node_args(1);
    let id = other_args.iter().position(|a| a == "--node-name").unwrap();
    other_args[id + 1] = "intruder".into();
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
        if peers == "2" { Ok(()) } else { Err(peers) }
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
