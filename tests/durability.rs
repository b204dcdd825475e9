//! Durability (`appendonly yes`): real nodes on a real RocksDB data dir, killed with SIGKILL
//! and restarted on the same dir, through real clients.

use meridian_tests::{dump, error_text, info_field, int, query, text, Cluster, Server, TempDir};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(20);

/// What one writer had acknowledged when the node died: for each of its keys, the last value
/// the node confirmed, plus its INCR count and list pushes.
#[derive(Default)]
struct Acked {
    strings: BTreeMap<String, String>,
    /// The SET in flight when the node died: it may have landed without its reply.
    in_flight: Option<(String, String)>,
    increments: i64,
    pushes: usize,
    members: Vec<String>,
}

/// Writes from `writers` threads until `stop`, each recording what the node acknowledged.
/// Every write is a different command family: a plain SET, an INCR, an RPUSH, an SADD.
fn write_until_stopped(port: u16, writers: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Acked>> {
    (0..writers)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Acked::default();
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(5)) else { return acked };
                con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}:k{}", i % 500);
                    let value = format!("v{i}");
                    let step = match i % 4 {
                        0 => {
                            acked.in_flight = Some((key.clone(), value.clone()));
                            redis::cmd("SET").arg(&key).arg(&value).query::<String>(&mut con).map(|_| acked.strings.insert(key, value)).map(drop)
                        }
                        1 => redis::cmd("INCR").arg(format!("w{w}:count")).query::<i64>(&mut con).map(|n| acked.increments = n),
                        2 => redis::cmd("RPUSH").arg(format!("w{w}:list")).arg(&value).query::<usize>(&mut con).map(|n| acked.pushes = n),
                        _ => redis::cmd("SADD").arg(format!("w{w}:set")).arg(&value).query::<i64>(&mut con).map(|_| acked.members.push(value)),
                    };
                    if step.is_err() {
                        break; // the node died: nothing after this was acknowledged
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

/// Runs a write load against a node with `fsync`, kills it with SIGKILL in the middle, restarts
/// it on the same dir, and checks that every acknowledged write is there.
fn kill_during_writes_and_check(fsync: &str) {
    let dir = TempDir::new("durable");
    let args = ["--appendonly", "yes", "--appendfsync", fsync];
    let mut node = Server::start_in(dir.path(), &args);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_until_stopped(node.port, 2, stop.clone());
    std::thread::sleep(Duration::from_millis(1500));
    node.signal_and_wait("KILL");
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acked.iter().map(|a| a.strings.len()).sum::<usize>() > 100, "the load wrote too little to mean anything");

    let node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    for (w, acked) in acked.iter().enumerate() {
        for (key, value) in &acked.strings {
            let found = text(&mut con, &["GET", key]);
            let landed_in_flight = acked.in_flight.as_ref().is_some_and(|(k, v)| k == key && found.as_ref() == Some(v));
            assert!(found.as_ref() == Some(value) || landed_in_flight, "{fsync}: acknowledged SET {key} = {value} lost: found {found:?}");
        }
        // The write in flight when the node died may or may not have landed; none before it may be missing.
        let count = text(&mut con, &["GET", &format!("w{w}:count")]).map_or(0, |n| n.parse::<i64>().unwrap());
        assert!((acked.increments..=acked.increments + 1).contains(&count), "{fsync}: INCR count {count}, acknowledged {}", acked.increments);
        let length = int(&mut con, &["LLEN", &format!("w{w}:list")]) as usize;
        assert!((acked.pushes..=acked.pushes + 1).contains(&length), "{fsync}: list of {length}, acknowledged {}", acked.pushes);
        for member in &acked.members {
            assert_eq!(int(&mut con, &["SISMEMBER", &format!("w{w}:set"), member]), 1, "{fsync}: acknowledged SADD {member} lost");
        }
    }
    let recovered: u64 = info_field(&mut con, "persistence", "recovered_ops").unwrap().parse().unwrap();
    assert!(recovered > 100, "the state came back through the log: {recovered} ops");
}

#[test]
fn sigkill_under_appendfsync_always_loses_no_acknowledged_write() {
    kill_during_writes_and_check("always");
}

/// A process kill leaves RocksDB's unsynced log writes in the page cache, so `everysec`
/// (whose window is a power cut's, about a second) loses nothing to SIGKILL either.
#[test]
fn sigkill_under_appendfsync_everysec_loses_no_acknowledged_write() {
    kill_during_writes_and_check("everysec");
}

/// Every type, TTLs and removals, through a checkpoint and the log written after it.
#[test]
fn every_type_survives_a_checkpoint_plus_log_and_a_kill() {
    let dir = TempDir::new("checkpoint");
    let args = ["--appendonly", "yes"];
    let mut node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    let setup: &[&[&str]] = &[
        &["SET", "s", "before"],
        &["SET", "gone", "x"],
        &["SET", "ttl", "t", "PX", "600000"],
        &["INCRBY", "counter", "40"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HINCRBY", "h", "n", "5"],
        &["SADD", "set", "x", "y", "z"],
        &["ZADD", "z", "1", "one", "2", "two"],
        &["RPUSH", "list", "a", "b", "c"],
    ];
    for command in setup {
        assert!(query(&mut con, command).error().is_none(), "{command:?}");
    }
    assert_eq!(int(&mut con, &["DBSIZE"]), 8);
    assert_eq!(text(&mut con, &["BGREWRITEAOF"]).as_deref(), Some("Background append only file rewriting started"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "persistence", "aof_rewrites").as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "no checkpoint within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after_checkpoint: &[&[&str]] = &[
        &["SET", "s", "after"],
        &["DEL", "gone"],
        &["INCRBY", "counter", "2"],
        &["HDEL", "h", "a"],
        &["HINCRBY", "h", "n", "1"],
        &["SREM", "set", "y"],
        &["ZINCRBY", "z", "10", "one"],
        &["LPOP", "list"],
        &["RPUSH", "list", "d"],
        &["SADD", "new", "m"],
    ];
    for command in after_checkpoint {
        assert!(query(&mut con, command).error().is_none(), "{command:?}");
    }
    let expected = dump(&mut con);
    assert_eq!(expected.len(), 8, "{expected:?}");
    node.signal_and_wait("KILL");

    let node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    assert_eq!(dump(&mut con), expected, "the same keyspace, TTLs included, after the restart");
    assert_eq!(info_field(&mut con, "persistence", "recovered_keys").as_deref(), Some("8"), "eight keys from the checkpoint");
    assert_eq!(info_field(&mut con, "persistence", "recovered_ops").as_deref(), Some("10"), "ten ops from the log after it");
    assert!(int(&mut con, &["PTTL", "ttl"]) > 500_000);
    assert_eq!(int(&mut con, &["INCR", "counter"]), 43, "the counter goes on from its recovered runs");
}

/// A restarted node keeps its vector, so its peers send it only what it missed: no state
/// transfer. The same restart without `appendonly` needs one (the control).
#[test]
fn a_restarted_node_catches_up_by_partial_resync() {
    let transfers_to_restarted = |durable: bool| -> Vec<String> {
        let flags: &[&str] = if durable { &["--appendonly", "yes"] } else { &[] };
        let mut cluster = Cluster::start(3, "mesh", flags);
        for i in 0..300 {
            text(&mut cluster.node(i % 3).client(), &["SET", &format!("before:{i}"), "x"]);
        }
        cluster.wait_identical("before the kill", CONVERGE);
        // Every member applied those ops, so the peers' op logs let go of them: only the
        // restarted node's own vector can say it has them.
        cluster.wait_for("op logs trimmed at the stability frontier", CONVERGE, |c| match info_field(c, "replication", "oplog_ops").as_deref() {
            Some("0") => Ok(()),
            other => Err(format!("oplog_ops {other:?}")),
        });
        cluster.kill(2);
        for i in 0..100 {
            text(&mut cluster.node(i % 2).client(), &["SET", &format!("during:{i}"), "y"]);
        }
        cluster.start_node(2);
        let keys = cluster.wait_identical("after the restart", CONVERGE);
        assert_eq!(keys.len(), 400);
        (0..2)
            .map(|i| {
                let info = text(&mut cluster.node(i).client(), &["INFO", "replication"]).unwrap();
                let line = info.lines().find(|l| l.contains("name=n2")).unwrap_or_default();
                line.split(',').find(|f| f.starts_with("transfers=")).unwrap_or_default().to_string()
            })
            .collect()
    };
    assert_eq!(transfers_to_restarted(true), ["transfers=0", "transfers=0"], "with appendonly: partial resync from both peers");
    assert_ne!(transfers_to_restarted(false), ["transfers=0", "transfers=0"], "control: without appendonly the restart needs a state transfer");
}

/// Starts meridian with `appendonly` on `dir`, expecting it to refuse: returns its stderr.
fn refused_start(dir: &std::path::Path) -> String {
    let output = std::process::Command::new(meridian_tests::meridian_bin()).args(["--port", "0", "--dir", dir.to_str().unwrap(), "--appendonly", "yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn a_flash_dir_that_cannot_be_opened_stops_startup_with_a_clear_error() {
    let dir = TempDir::new("badflash");
    std::fs::write(dir.path().join("flash"), "not a directory").unwrap();
    let stderr = refused_start(dir.path());
    assert!(stderr.contains("cannot open data dir") && stderr.contains("flash"), "{stderr}");

    // A second process on a live data dir is refused (RocksDB's lock), and the first runs on.
    let live = TempDir::new("liveflash");
    let first = Server::start_in(live.path(), &["--appendonly", "yes"]);
    let stderr = refused_start(live.path());
    assert!(stderr.contains("lock"), "{stderr}");
    assert_eq!(text(&mut first.client(), &["PING"]).as_deref(), Some("PONG"));
}

/// Under `appendfsync always` a reply waits for an fsync of its write, and one fsync serves
/// a whole pipeline; under `everysec` replies wait for none (INFO's `aof_fsyncs` counts them).
#[test]
fn replies_wait_for_an_fsync_under_always_and_a_pipeline_shares_one() {
    let fsyncs = |con: &mut redis::Connection| -> u64 { info_field(con, "persistence", "aof_fsyncs").unwrap().parse().unwrap() };
    let dir = TempDir::new("fsyncs");
    let node = Server::start_in(dir.path(), &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = node.client();
    let before = fsyncs(&mut con);
    for i in 0..50 {
        text(&mut con, &["SET", &format!("k{i}"), "v"]);
    }
    assert!(fsyncs(&mut con) >= before + 50, "each of 50 sequential writes was synced before its reply");

    let before = fsyncs(&mut con);
    let mut pipe = redis::pipe();
    (0..200).for_each(|i| _ = pipe.cmd("INCR").arg(format!("n{}", i % 7)));
    let counts: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(counts.len(), 200);
    let synced = fsyncs(&mut con) - before;
    assert!((1..=10).contains(&synced), "200 pipelined writes took {synced} fsyncs");

    assert_eq!(text(&mut con, &["CONFIG", "SET", "appendfsync", "everysec"]).as_deref(), Some("OK"));
    let before = fsyncs(&mut con);
    for i in 0..50 {
        text(&mut con, &["SET", &format!("k{i}"), "w"]);
    }
    assert!(fsyncs(&mut con) - before <= 2, "everysec syncs once a second, not per reply");
}

#[test]
fn persistence_settings_and_info() {
    let dir = TempDir::new("settings");
    let node = Server::start_in(dir.path(), &["--appendonly", "yes", "--appendfsync", "no"]);
    let mut con = node.client();
    let get = |con: &mut redis::Connection, name: &str| meridian_tests::strings(con, &["CONFIG", "GET", name]);
    assert_eq!(get(&mut con, "appendonly"), [Some("appendonly".into()), Some("yes".into())]);
    assert_eq!(get(&mut con, "appendfsync"), [Some("appendfsync".into()), Some("no".into())]);
    assert_eq!(text(&mut con, &["CONFIG", "SET", "appendfsync", "always"]).as_deref(), Some("OK"));
    assert_eq!(info_field(&mut con, "persistence", "appendfsync").as_deref(), Some("always"));
    assert!(error_text(&mut con, &["CONFIG", "SET", "appendfsync", "sometimes"]).contains("argument(s) must be one of the following: always, everysec, no"));
    assert!(error_text(&mut con, &["CONFIG", "SET", "appendonly", "no"]).contains("can't set immutable config"));
    assert_eq!(info_field(&mut con, "persistence", "aof_enabled").as_deref(), Some("1"));
    assert_eq!(info_field(&mut con, "flash", "flash_enabled").as_deref(), Some("1"));
    text(&mut con, &["SET", "k", "v"]);
    let size: u64 = info_field(&mut con, "persistence", "aof_current_size").unwrap().parse().unwrap();
    assert!(size > 0);

    let plain = Server::start(&[]);
    let mut con = plain.client();
    assert_eq!(info_field(&mut con, "persistence", "aof_enabled").as_deref(), Some("0"));
    assert!(error_text(&mut con, &["BGREWRITEAOF"]).starts_with("ERR appendonly is no"));
}
