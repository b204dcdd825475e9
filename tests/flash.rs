//! The flash tier's spilling (`maxmemory-policy flash`): real nodes whose data outgrows
//! `maxmemory`, on a real RocksDB, read and written through real clients and by replication.

use meridian_tests::{dump, info_field, int, query, strings, text, Cluster, KeyDump, Server, TempDir};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(30);

/// `maxmemory` for these tests: an empty node uses under 1 MB.
const MAXMEMORY: &str = "4mb";

fn info_number(con: &mut redis::Connection, section: &str, field: &str) -> u64 {
    info_field(con, section, field).unwrap_or_else(|| panic!("INFO {section} has no {field}")).parse().unwrap()
}

/// Writes `keys` keys of every type (a fifth each: strings, hashes, sets, sorted sets, lists)
/// with a `filler`-byte element each, pipelined.
fn load_every_type(con: &mut redis::Connection, keys: usize, prefix: &str, filler: usize) {
    let filler = "f".repeat(filler);
    for chunk in (0..keys).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let key = format!("{prefix}{i:06}");
            match i % 5 {
                0 => pipe.cmd("SET").arg(&key).arg(format!("{filler}{i}")),
                1 => pipe.cmd("HSET").arg(&key).arg("a").arg(&filler).arg("n").arg(i),
                2 => pipe.cmd("SADD").arg(&key).arg(&filler).arg(i),
                3 => pipe.cmd("ZADD").arg(&key).arg(i).arg(&filler).arg(-1).arg("low"),
                _ => pipe.cmd("RPUSH").arg(&key).arg(&filler).arg(i),
            };
        }
        if let Err(e) = pipe.query::<()>(con) {
            panic!("{e}: {:?} {:?}", text(con, &["INFO", "memory"]), text(con, &["INFO", "flash"]));
        }
    }
}

fn wait_for_cold(con: &mut redis::Connection, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_number(con, "flash", "flash_cold_keys") < at_least {
        assert!(Instant::now() < deadline, "fewer than {at_least} keys spilled: {:?}", text(con, &["INFO", "flash"]));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_type_spills_and_reads_back_through_every_command() {
    let node = Server::start(&["--maxmemory", MAXMEMORY, "--maxmemory-policy", "flash"]);
    let mut con = node.client();
    load_every_type(&mut con, 20_000, "k", 150);
    wait_for_cold(&mut con, 10_000);
    // Memory stays near the limit although the data is several times larger.
    let used = info_number(&mut con, "memory", "used_memory");
    assert!(used < 6 * 1024 * 1024, "used_memory {used}");
    assert_eq!(int(&mut con, &["DBSIZE"]), 20_000, "DBSIZE counts both tiers");
    assert_eq!(info_field(&mut con, "keyspace", "db0").as_deref(), Some("keys=20000,expires=0,avg_ttl=0"));

    // SCAN returns every key once, cold ones included, without promoting them.
    let promoted_before = info_number(&mut con, "flash", "flash_promoted_keys");
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = query(&mut con, &["SCAN", &cursor, "COUNT", "100"]);
        let meridian_tests::Reply::Array(parts) = reply else { panic!("{reply:?}") };
        let (meridian_tests::Reply::Bulk(next), meridian_tests::Reply::Array(keys)) = (&parts[0], &parts[1]) else { panic!() };
        for key in keys {
            let meridian_tests::Reply::Bulk(key) = key else { panic!() };
            assert!(seen.insert(String::from_utf8_lossy(key).into_owned()), "SCAN returned a key twice");
        }
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 20_000);
    assert_eq!(strings(&mut con, &["KEYS", "k*"]).len(), 20_000);
    let sets = query(&mut con, &["SCAN", "0", "COUNT", "100000", "TYPE", "set"]);
    let meridian_tests::Reply::Array(parts) = sets else { panic!("SCAN TYPE set") };
    assert!(matches!(&parts[1], meridian_tests::Reply::Array(keys) if keys.len() == 4_000), "SCAN TYPE finds the cold sets too");
    assert_eq!(info_number(&mut con, "flash", "flash_promoted_keys"), promoted_before, "listing promotes nothing");

    // Right after a bulk load, the keys spilled are ones nothing has used: a cold key's first
    // read promotes it.
    let filler = "f".repeat(150);
    let read_cold = |con: &mut redis::Connection, i: usize| {
        let (reads, promoted) = (info_number(con, "flash", "flash_reads"), info_number(con, "flash", "flash_promoted_keys"));
        assert_eq!(text(con, &["GET", &format!("k{i:06}")]), Some(format!("{filler}{i}")));
        let was_cold = info_number(con, "flash", "flash_reads") > reads;
        (was_cold, info_number(con, "flash", "flash_promoted_keys") - promoted)
    };
    let first = (0..20_000).step_by(5).map(|i| read_cold(&mut con, i)).find(|(was_cold, _)| *was_cold);
    assert_eq!(first, Some((true, 1)), "after a bulk load, a cold key's first read promotes it");

    // Once every key has been used (TOUCH), the keys spilled are used ones: a cold key's first
    // read is served from the flash tier and leaves it there; a second read soon after
    // promotes it. (A key whose first read here promotes was read in the TOUCH pass lately.)
    for chunk in (0..20_000).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        chunk.iter().for_each(|i| _ = pipe.cmd("TOUCH").arg(format!("k{i:06}")));
        let touched: Vec<i64> = pipe.query(&mut con).unwrap();
        assert!(touched.iter().all(|&n| n == 1), "TOUCH counts the keys that exist");
    }
    let cold_string = (0..20_000).step_by(5).find(|&i| read_cold(&mut con, i) == (true, 0));
    let i = cold_string.expect("some cold string key's first read leaves it cold");
    let promoted_before = info_number(&mut con, "flash", "flash_promoted_keys");
    // OBJECT looks without using: the idle time is the one the key was spilled with (the cold
    // read did not refresh it), and the look neither reads the key as a use nor promotes it.
    std::thread::sleep(Duration::from_secs(2));
    let cold_key = format!("k{i:06}");
    assert!(int(&mut con, &["OBJECT", "IDLETIME", &cold_key]) >= 2, "a cold key keeps its idle time");
    assert_eq!(text(&mut con, &["OBJECT", "ENCODING", &cold_key]).as_deref(), Some("raw"));
    assert_eq!(info_number(&mut con, "flash", "flash_promoted_keys"), promoted_before, "OBJECT promotes nothing");
    assert_eq!(int(&mut con, &["STRLEN", &format!("k{i:06}")]), format!("{filler}{i}").len() as i64);
    assert_eq!(info_number(&mut con, "flash", "flash_promoted_keys"), promoted_before + 1, "the second read promoted the key");
    assert_eq!(int(&mut con, &["OBJECT", "IDLETIME", &cold_key]), 0, "the read that promoted it was a use");

    // Every key reads back right through its own type's commands.
    for i in (0..20_000).step_by(7) {
        let key = format!("k{i:06}");
        match i % 5 {
            0 => assert_eq!(text(&mut con, &["GET", &key]), Some(format!("{filler}{i}"))),
            1 => assert_eq!(text(&mut con, &["HGET", &key, "n"]), Some(i.to_string())),
            2 => assert_eq!(int(&mut con, &["SISMEMBER", &key, &i.to_string()]), 1),
            3 => assert_eq!(strings(&mut con, &["ZRANGE", &key, "0", "0"]), [Some("low".to_string())]),
            _ => assert_eq!(int(&mut con, &["LLEN", &key]), 2),
        }
        assert_eq!(int(&mut con, &["TTL", &key]), -1);
    }
    // Writes promote too, and WRONGTYPE still holds for cold keys.
    assert_eq!(int(&mut con, &["INCR", "counter"]), 1);
    assert!(query(&mut con, &["LPUSH", "k000000", "x"]).error().unwrap().starts_with("WRONGTYPE"));
    assert_eq!(int(&mut con, &["HINCRBY", "k000001", "n", "10"]), 11);
    assert_eq!(int(&mut con, &["DEL", "k000002", "k000003"]), 2);
    assert_eq!(int(&mut con, &["DBSIZE"]), 19_999);
    assert!(info_number(&mut con, "flash", "flash_promoted_keys") > promoted_before);
    assert!(text(&mut con, &["RANDOMKEY"]).is_some());
    assert_eq!(text(&mut con, &["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    assert_eq!(info_number(&mut con, "flash", "flash_cold_keys"), 0);
}

/// A node whose keys spilled sends them, cold ones included, in a state transfer to a node
/// that joins; ops that node then makes apply to the cold keys, which read back right on both.
#[test]
fn cold_keys_go_out_in_state_transfers_and_take_replicated_ops() {
    // A small op log on node 0, so that node 2 can only catch up by state transfer.
    let flash = ["--maxmemory", "8mb", "--maxmemory-policy", "flash", "--repl-backlog-size", "1mb"];
    let mut cluster = Cluster::build(3).node_flags(0, &flash).start();
    cluster.kill(1);
    cluster.kill(2);
    let mut zero = cluster.node(0).client();
    load_every_type(&mut zero, 20_000, "r", 1000);
    wait_for_cold(&mut zero, 10_000);
    cluster.start_node(2);
    let transferred = cluster.wait_identical("state transfer with cold keys", CONVERGE);
    assert_eq!(transferred.len(), 20_000);
    let info = text(&mut zero, &["INFO", "replication"]).unwrap();
    let to_two = info.lines().find(|l| l.contains("name=n2")).unwrap_or_default().to_string();
    assert!(!to_two.contains("transfers=0"), "node 0 sent node 2 a state transfer: {to_two}");

    let spilled = info_number(&mut zero, "flash", "flash_cold_keys");
    let promoted = info_number(&mut zero, "flash", "flash_promoted_keys");
    let mut two = cluster.node(2).client();
    for i in (0..20_000).step_by(13) {
        let key = format!("r{i:06}");
        let command: Vec<String> = match i % 5 {
            0 => vec!["APPEND".into(), key, "+".into()],
            1 => vec!["HINCRBY".into(), key, "n".into(), "1000".into()],
            2 => vec!["SADD".into(), key, "extra".into()],
            3 => vec!["ZINCRBY".into(), key, "0.5".into(), "low".into()],
            _ => vec!["LPUSH".into(), key, "head".into()],
        };
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(query(&mut two, &args).error().is_none(), "{args:?}");
    }
    let converged: Vec<KeyDump> = cluster.wait_identical("remote ops on cold keys", CONVERGE);
    assert_eq!(converged.len(), 20_000);
    assert_eq!(text(&mut zero, &["GET", "r000000"]).map(|v| v.ends_with('+')), Some(true));
    assert!(spilled > 0 && info_number(&mut zero, "flash", "flash_promoted_keys") > promoted, "the remote ops promoted cold keys");
}

/// A write load on a flash node streaming to a live peer: the op log's buffer (at its
/// allocated size, up to twice the ops it holds) and what QUIC buffers for the peer do not
/// count against `maxmemory`, as Redis leaves its backlog and replica output buffers out, so
/// the node spills and keeps taking writes instead of answering -OOM with every key cold.
/// (Counting either one, at 8 MB, failed this test.)
#[test]
fn a_flash_node_takes_a_write_load_while_buffering_for_a_peer() {
    let flash = ["--maxmemory", "8mb", "--maxmemory-policy", "flash", "--appendonly", "yes"];
    let cluster = Cluster::build(2).node_flags(0, &flash).start();
    let keys = 20_000;
    let mut zero = cluster.node(0).client();
    load_every_type(&mut zero, keys, "b", 1000);
    wait_for_cold(&mut zero, 10_000);
    let converged = cluster.wait_identical("the peer has the load", CONVERGE);
    assert_eq!(converged.len(), keys);
    // Once the peer has read everything, nothing is left out of the count but the op log.
    cluster.wait_for("the peer read every byte", CONVERGE, |c| {
        let (left_out, log) = (info_number(c, "memory", "mem_not_counted_for_evict"), info_number(c, "memory", "mem_oplog"));
        if left_out == log {
            Ok(())
        } else {
            Err(format!("not counted {left_out}, op log {log}"))
        }
    });
}

/// A node whose data is mostly cold comes back after its peer's op log let go of what it
/// missed, so the peer sends it a full state transfer. The transfer merges into the cold keys
/// where they lie: the deletes, updates and TTLs made meanwhile land, and the other cold keys
/// stay cold instead of all coming into RAM.
#[test]
fn a_state_transfer_merges_into_cold_keys_without_promoting_them() {
    let flash = ["--maxmemory", "8mb", "--maxmemory-policy", "flash", "--appendonly", "yes"];
    let mut cluster = Cluster::build(2).node_flags(0, &flash).node_flags(1, &["--repl-backlog-size", "1mb"]).start();
    let keys = 20_000;
    // Loaded through node 1, so node 0's keys arrive as replicated ops and spill.
    load_every_type(&mut cluster.node(1).client(), keys, "t", 1000);
    let dbsize_is = |expected: usize| {
        move |c: &mut redis::Connection| match int(c, &["DBSIZE"]) {
            n if n == expected as i64 => Ok(()),
            n => Err(format!("DBSIZE {n}")),
        }
    };
    cluster.wait_for("node 1 has every key", CONVERGE, dbsize_is(keys));
    wait_for_cold(&mut cluster.node(0).client(), 10_000);
    cluster.kill(0);

    // While node 0 is down, node 1 deletes, changes and sets TTLs on keys, then writes more
    // than its 1 MB op log keeps.
    let mut one = cluster.node(1).client();
    let (deleted, changed, expiring): (Vec<usize>, Vec<usize>, Vec<usize>) = {
        let deleted: Vec<usize> = (0..keys).step_by(11).collect();
        let changed: Vec<usize> = (0..keys).step_by(13).filter(|i| i % 11 != 0).collect();
        let expiring: Vec<usize> = (0..keys).step_by(17).filter(|i| i % 11 != 0 && i % 13 != 0).collect();
        (deleted, changed, expiring)
    };
    let key = |i: usize| format!("t{i:06}");
    let mut pipe = redis::pipe();
    for &i in &deleted {
        pipe.cmd("DEL").arg(key(i));
    }
    for &i in &changed {
        match i % 5 {
            0 => pipe.cmd("APPEND").arg(key(i)).arg("+"),
            1 => pipe.cmd("HINCRBY").arg(key(i)).arg("n").arg(1000),
            2 => pipe.cmd("SREM").arg(key(i)).arg(i),
            3 => pipe.cmd("ZADD").arg(key(i)).arg(5).arg("low"),
            _ => pipe.cmd("RPOP").arg(key(i)),
        };
    }
    for &i in &expiring {
        pipe.cmd("EXPIRE").arg(key(i)).arg(1000);
    }
    let pad = "p".repeat(1000);
    for i in 0..3_000 {
        pipe.cmd("SET").arg(format!("pad{i}")).arg(&pad);
    }
    pipe.query::<()>(&mut one).unwrap();

    cluster.start_node(0);
    let expected = keys - deleted.len() + 3_000;
    cluster.wait_for("the transfer landed", CONVERGE, dbsize_is(expected));
    cluster.wait_for("node 0 acknowledged everything", CONVERGE, |c| {
        let info = text(c, &["INFO", "replication"]).unwrap_or_default();
        match info.lines().find(|l| l.contains("name=n0")) {
            Some(line) if !line.contains("state=connected") || !line.contains("ops_behind=0") => Err(line.to_string()),
            _ => Ok(()),
        }
    });
    let info = text(&mut one, &["INFO", "replication"]).unwrap();
    let to_zero = info.lines().find(|l| l.contains("name=n0")).unwrap_or_default().to_string();
    assert!(!to_zero.contains("transfers=0"), "node 1 sent node 0 a state transfer: {to_zero}");

    // Only keys that may not stay cold left the flash tier: removed ones (their removal's
    // context lives in RAM until it is collected) and ones that got a TTL.
    let mut zero = cluster.node(0).client();
    let promoted = info_number(&mut zero, "flash", "flash_promoted_keys");
    let cold = info_number(&mut zero, "flash", "flash_cold_keys");
    let may_leave = (deleted.len() + expiring.len()) as u64;
    assert!(promoted <= may_leave, "the transfer promoted {promoted} keys; at most {may_leave} had to leave the flash tier");
    assert!(cold >= 10_000 - may_leave, "{cold} keys still cold");

    // And what it merged reads back right.
    assert_eq!(int(&mut zero, &["EXISTS", &key(deleted[7])]), 0);
    let filler = "f".repeat(1000);
    for &i in changed.iter().step_by(3) {
        let k = key(i);
        match i % 5 {
            0 => assert_eq!(text(&mut zero, &["GET", &k]), Some(format!("{filler}{i}+"))),
            1 => assert_eq!(text(&mut zero, &["HGET", &k, "n"]), Some((i + 1000).to_string())),
            2 => assert_eq!(int(&mut zero, &["SISMEMBER", &k, &i.to_string()]), 0),
            3 => assert_eq!(text(&mut zero, &["ZSCORE", &k, "low"]).as_deref(), Some("5")),
            _ => assert_eq!(int(&mut zero, &["LLEN", &k]), 1),
        }
    }
    for &i in expiring.iter().step_by(5) {
        assert!((1..=1000).contains(&int(&mut zero, &["TTL", &key(i)])), "t{i:06} has its TTL");
    }
    let merged = cluster.wait_identical("after the transfer", CONVERGE);
    assert_eq!(merged.len(), expected);
}

/// Garbage a key carried into the flash tier (list elements that pops removed while the peer
/// was down, so not yet stable) is collected where the key lies once it is stable: the cold
/// key is rewritten without its tombstones and without being promoted.
#[test]
fn cold_keys_lose_their_garbage_once_it_is_stable() {
    // hz 500: the sweep of cold keys visits every shard in about 2 s instead of 100 s.
    let flash = ["--maxmemory", MAXMEMORY, "--maxmemory-policy", "flash", "--hz", "500"];
    let mut cluster = Cluster::build(2).node_flags(0, &flash).start();
    cluster.kill(1);
    let mut zero = cluster.node(0).client();
    let lists = 2_000;
    let key = |i: usize| format!("l{i:05}");
    let elements: Vec<String> = (0..20).map(|e| format!("element-{e:02}")).collect();
    let mut pipe = redis::pipe();
    for i in 0..lists {
        pipe.cmd("RPUSH").arg(key(i)).arg(&elements).ignore();
        pipe.cmd("LPOP").arg(key(i)).arg(15).ignore();
    }
    pipe.query::<()>(&mut zero).unwrap();
    // Newer keys push the lists, least recently used, out to the flash tier.
    load_every_type(&mut zero, 20_000, "pad", 200);
    wait_for_cold(&mut zero, 10_000);
    let tombstone = "removed_by: Context([(";
    let garbage = text(&mut zero, &["CRDT.STATE", &key(0)]).unwrap();
    assert!(garbage.contains(tombstone), "with the peer down the pops are not stable yet: {garbage}");
    let promoted = info_number(&mut zero, "flash", "flash_promoted_keys");

    cluster.start_node(1);
    // (Waited for without reading keys: a second read of a cold key promotes it.)
    let deadline = Instant::now() + CONVERGE;
    loop {
        let info = text(&mut zero, &["INFO", "replication"]).unwrap();
        if info.lines().any(|l| l.contains("name=n1") && l.contains("state=connected") && l.contains("ops_behind=0")) {
            break;
        }
        assert!(Instant::now() < deadline, "the peer did not catch up: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two cycles of the sweep from now: one whole cycle after stability at the latest.
    let cycles = info_number(&mut zero, "flash", "flash_collect_cycles");
    let deadline = Instant::now() + CONVERGE;
    while info_number(&mut zero, "flash", "flash_collect_cycles") < cycles + 2 {
        assert!(Instant::now() < deadline, "the sweep did not come round: {:?}", text(&mut zero, &["INFO", "flash"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    let collected = info_number(&mut zero, "flash", "flash_collected_keys");
    assert!(collected >= (lists / 2) as u64, "{collected} cold keys collected");
    assert_eq!(info_number(&mut zero, "flash", "flash_promoted_keys"), promoted, "the sweep promoted nothing");
    for i in (1..lists).step_by(97) {
        let state = text(&mut zero, &["CRDT.STATE", &key(i)]).unwrap();
        assert!(!state.contains(tombstone), "{} kept its removed elements: {state}", key(i));
        assert_eq!(strings(&mut zero, &["LRANGE", &key(i), "0", "-1"]), elements[15..].iter().map(|e| Some(e.clone())).collect::<Vec<_>>());
    }
}

/// Durability and spilling together: keys spilled, checkpointed, promoted, changed and
/// spilled again all come back after SIGKILL.
#[test]
fn spilled_promoted_and_checkpointed_keys_survive_a_kill() {
    let dir = TempDir::new("flashkill");
    let args = ["--appendonly", "yes", "--maxmemory", MAXMEMORY];
    let mut node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    assert_eq!(info_field(&mut con, "memory", "maxmemory_policy").as_deref(), Some("flash"), "the default with appendonly");
    load_every_type(&mut con, 10_000, "d", 150);
    wait_for_cold(&mut con, 4_000);
    assert_eq!(text(&mut con, &["BGREWRITEAOF"]).as_deref(), Some("Background append only file rewriting started"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut con, "persistence", "aof_rewrites").as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Promote and change cold keys, write more (which spills others), delete some.
    for i in (0..10_000).step_by(3) {
        let key = format!("d{i:06}");
        let command: Vec<String> = match i % 5 {
            0 => vec!["SET".into(), key, format!("new{i}")],
            1 => vec!["HSET".into(), key, "b".into(), "2".into()],
            2 => vec!["SREM".into(), key, i.to_string()],
            3 => vec!["ZADD".into(), key, "7".into(), "seven".into()],
            _ => vec!["DEL".into(), key],
        };
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(query(&mut con, &args).error().is_none(), "{args:?}");
    }
    load_every_type(&mut con, 5_000, "e", 150);
    let expected = dump(&mut con);
    let promoted = info_number(&mut con, "flash", "flash_promoted_keys");
    assert!(promoted > 1_000, "the dump and the changes promoted cold keys: {promoted}");
    node.signal_and_wait("KILL");

    let node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    assert!(info_number(&mut con, "flash", "flash_cold_keys") > 0, "cold keys stay cold across the restart");
    assert_eq!(int(&mut con, &["DBSIZE"]) as usize, expected.len());
    assert_eq!(dump(&mut con), expected);
}

#[test]
fn without_appendonly_a_restart_forgets_cold_keys_and_policies_are_checked() {
    let dir = TempDir::new("flashplain");
    let args = ["--maxmemory", MAXMEMORY, "--maxmemory-policy", "flash"];
    let node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    load_every_type(&mut con, 5_000, "p", 150);
    wait_for_cold(&mut con, 1_000);
    drop(node);
    let node = Server::start_in(dir.path(), &args);
    let mut con = node.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 0, "no durability: nothing of the old state, cold keys included");
    assert_eq!(info_number(&mut con, "flash", "flash_cold_keys"), 0);

    let plain = Server::start(&[]);
    let mut con = plain.client();
    assert_eq!(info_field(&mut con, "memory", "maxmemory_policy").as_deref(), Some("noeviction"));
    let refused = meridian_tests::error_text(&mut con, &["CONFIG", "SET", "maxmemory-policy", "flash"]);
    assert!(refused.contains("flash needs the flash tier"), "{refused}");
}

/// Redis's cache policies: a write over the limit deletes keys first, by the policy's order.
#[test]
fn eviction_policies_take_the_keys_they_name() {
    // allkeys-lru: a key read all along survives, an early key never read again goes.
    let node = Server::start(&["--maxmemory", MAXMEMORY, "--maxmemory-policy", "allkeys-lru"]);
    let mut con = node.client();
    text(&mut con, &["SET", "hot", "1"]);
    for round in 0..40 {
        load_every_type(&mut con, 1_000, &format!("l{round}:"), 150);
        assert_eq!(text(&mut con, &["GET", "hot"]).as_deref(), Some("1"), "round {round}");
    }
    let evicted = info_number(&mut con, "stats", "evicted_keys");
    assert!(evicted > 10_000, "evicted {evicted}");
    assert_eq!(int(&mut con, &["DBSIZE"]) as u64, 40_001 - evicted);
    assert_eq!(int(&mut con, &["EXISTS", "l0:000000"]), 0, "the oldest keys went first");
    assert!(info_number(&mut con, "memory", "used_memory") < 5 * 1024 * 1024);

    // volatile-ttl: only keys with a TTL go, nearest expiry first; then writes get OOM.
    let node = Server::start(&["--maxmemory", MAXMEMORY, "--maxmemory-policy", "volatile-ttl"]);
    let mut con = node.client();
    let value = "v".repeat(200);
    for i in 0..5_000 {
        text(&mut con, &["SET", &format!("keep:{i}"), &value]);
    }
    for i in 0..20_000 {
        let reply = query(&mut con, &["SET", &format!("ttl:{i}"), &value, "EX", &(100_000 + i).to_string()]);
        if let Some(e) = reply.error() {
            assert!(e.starts_with("OOM"), "{e}");
        }
    }
    assert_eq!(strings(&mut con, &["KEYS", "keep:*"]).len(), 5_000, "keys without a TTL are never evicted");
    assert!(info_number(&mut con, "stats", "evicted_keys") > 0);
    assert_eq!(int(&mut con, &["EXISTS", "ttl:0"]), 0, "the nearest expiry went first");
    let mut refused = false;
    for i in 0..20_000 {
        if query(&mut con, &["SET", &format!("more:{i}"), &value]).error().is_some_and(|e| e.starts_with("OOM")) {
            refused = true;
            break;
        }
    }
    assert!(refused, "with nothing left to evict, writes get -OOM as in Redis");

    // allkeys-lfu: a key used often early on outlives the keys written once since; LRU, the
    // control, takes it first, as the oldest.
    for (policy, hot_stays) in [("allkeys-lfu", 1), ("allkeys-lru", 0)] {
        let node = Server::start(&["--maxmemory", MAXMEMORY, "--maxmemory-policy", policy]);
        let mut con = node.client();
        text(&mut con, &["SET", "hot", "1"]);
        for _ in 0..300 {
            assert_eq!(text(&mut con, &["GET", "hot"]).as_deref(), Some("1"));
        }
        for round in 0..40 {
            load_every_type(&mut con, 1_000, &format!("l{round}:"), 150);
        }
        assert!(info_number(&mut con, "stats", "evicted_keys") > 10_000, "{policy}");
        assert_eq!(int(&mut con, &["EXISTS", "hot"]), hot_stays, "{policy}");
    }

    // The LFU settings keep Redis's names, defaults and bounds.
    assert_eq!(strings(&mut con, &["CONFIG", "GET", "lfu-*"]), [Some("lfu-log-factor".into()), Some("10".into()), Some("lfu-decay-time".into()), Some("1".into())]);
    assert_eq!(text(&mut con, &["CONFIG", "SET", "lfu-decay-time", "0"]).as_deref(), Some("OK"));
    let error = meridian_tests::error_text(&mut con, &["CONFIG", "SET", "lfu-log-factor", "-1"]);
    assert_eq!(error, "ERR CONFIG SET failed (possibly related to argument 'lfu-log-factor') - argument must be between 0 and 2147483647 inclusive");
}

/// An eviction is a DEL op: it reaches every region. (A replicating node frees less per
/// eviction, since a deleted key's entry stays until every peer has seen the delete, and its
/// QUIC send buffers count against maxmemory: some writes get -OOM here, as in Redis
/// Enterprise, which starts evicting at 80% of the limit for this reason.)
#[test]
fn evictions_replicate() {
    let mut cluster = Cluster::build(2).node_flags(0, &["--maxmemory", "24mb", "--maxmemory-policy", "allkeys-random"]).start();
    let mut zero = cluster.node(0).client();
    let value = "v".repeat(500);
    let mut written = 0;
    for i in 0..60_000 {
        match query(&mut zero, &["SET", &format!("x{i}"), &value]).error() {
            None => written += 1,
            Some(e) => assert!(e.starts_with("OOM"), "{e}"),
        }
    }
    assert!(written > 30_000, "{written} writes accepted");
    assert!(info_number(&mut zero, "stats", "evicted_keys") > 0);
    let remaining = int(&mut zero, &["DBSIZE"]);
    assert!(remaining < written);
    cluster.wait_for("evictions replicated", CONVERGE, |c| match int(c, &["DBSIZE"]) {
        n if n == remaining => Ok(()),
        n => Err(format!("{n} keys, node 0 has {remaining}")),
    });
    cluster.kill(0);
}
