//! Full state transfers of big states between real nodes: a list of a million elements and a
//! million keys of every type, into a node restarted without its data. Each completes in one
//! transfer; the slowest PING the receiving node answered meanwhile is printed (issue 21's goal
//! is 100 ms; measured 19-122 ms on a 2-core machine, so not yet asserted). The lists are
//! built by RPUSH: one built by LPUSH still merges in quadratic time (docs/replication.md).

use meridian_tests::{info_field, int, Cluster};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TRANSFER: Duration = Duration::from_secs(300);

/// Sends `PING` to `port` every 10 ms until `stop`; returns the slowest reply.
fn worst_ping(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        let (mut worst, start) = (Duration::ZERO, Instant::now());
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            redis::cmd("PING").query::<String>(&mut con).unwrap();
            if sent.elapsed() > Duration::from_millis(50) {
                eprintln!("PING took {:?}, {:?} after the restart", sent.elapsed(), sent - start);
            }
            worst = worst.max(sent.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        worst
    })
}

/// Restarts node 1 of `cluster` without its data (a node without `appendonly`), so node 0
/// sends it everything by a state transfer, and waits until `done` holds on it while pinging
/// it: returns the transfer's time and the slowest PING.
fn transfer_into_restarted(cluster: &mut Cluster, done: impl Fn(&mut redis::Connection) -> bool) -> (Duration, Duration) {
    cluster.kill(1);
    std::fs::remove_dir_all(cluster.node_dir(1)).unwrap();
    std::fs::create_dir(cluster.node_dir(1)).unwrap();
    let started = Instant::now();
    cluster.start_node(1);
    let stop = Arc::new(AtomicBool::new(false));
    let pings = worst_ping(cluster.node(1).port, stop.clone());
    let mut con = cluster.node(1).client();
    while !done(&mut con) {
        assert!(started.elapsed() < TRANSFER, "the state transfer did not complete within {TRANSFER:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    (took, pings.join().unwrap())
}

/// The number of state transfers node 0 sent node 1.
fn transfers(cluster: &Cluster) -> u64 {
    let line = info_field(&mut cluster.node(0).client(), "replication", "peer0").unwrap();
    line.split(',').find_map(|f| f.strip_prefix("transfers=")).unwrap().parse().unwrap()
}

/// A list of a million elements, more than one frame can hold, arrives whole, in one transfer.
#[test]
fn a_list_of_a_million_elements_transfers_while_the_node_answers() {
    // A small op log, so the restarted node cannot catch up from it: a state transfer.
    let mut cluster = Cluster::start(2, "mesh", &["--repl-backlog-size", "1mb"]);
    let mut con = cluster.node(0).client();
    for batch in 0..1000 {
        let mut push = redis::cmd("RPUSH");
        push.arg("queue");
        for i in 0..1000 {
            push.arg(format!("job-{batch}-{i}"));
        }
        push.query::<i64>(&mut con).unwrap();
    }
    assert_eq!(int(&mut con, &["LLEN", "queue"]), 1_000_000);
    let (took, worst) = transfer_into_restarted(&mut cluster, |c| int(c, &["LLEN", "queue"]) == 1_000_000);
    eprintln!("1,000,000-element list: transferred in {took:?}, slowest PING {worst:?}");
    let mut con = cluster.node(1).client();
    assert_eq!(meridian_tests::strings(&mut con, &["LRANGE", "queue", "0", "1"]), [Some("job-0-0".into()), Some("job-0-1".into())]);
    assert_eq!(meridian_tests::text(&mut con, &["LINDEX", "queue", "-1"]).as_deref(), Some("job-999-999"));
    assert_transferred_once(&cluster);
}

/// A million keys of every type arrive in one transfer.
#[test]
fn a_million_keys_of_every_type_transfer_while_the_node_answers() {
    let mut cluster = Cluster::start(2, "mesh", &["--repl-backlog-size", "1mb"]);
    let mut con = cluster.node(0).client();
    for batch in 0..250 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            let n = batch * 1000 + i;
            pipe.cmd("SET").arg(format!("s{n}")).arg(n).ignore();
            pipe.cmd("HSET").arg(format!("h{n}")).arg("f").arg(n).ignore();
            pipe.cmd("SADD").arg(format!("t{n}")).arg(n).ignore();
            pipe.cmd("RPUSH").arg(format!("l{n}")).arg(n).ignore();
        }
        pipe.query::<()>(&mut con).unwrap();
    }
    assert_eq!(int(&mut con, &["DBSIZE"]), 1_000_000);
    let (took, worst) = transfer_into_restarted(&mut cluster, |c| int(c, &["DBSIZE"]) == 1_000_000);
    eprintln!("1,000,000 keys: transferred in {took:?}, slowest PING {worst:?}");
    assert_transferred_once(&cluster);
}

/// The transfer was not started over and over (as it was when a big merge stalled the
/// receiver past QUIC's idle timeout). A session that began one may still be cut once by the
/// restart itself (the old incarnation's link going down while the new one comes up).
fn assert_transferred_once(cluster: &Cluster) {
    let transfers = transfers(cluster);
    assert!((1..=2).contains(&transfers), "{transfers} transfers");
}
