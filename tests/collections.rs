//! Sets and hashes through a real client: what the differential test cannot compare with
//! Redis (random picks, RESP3 reply types, scans of large collections, replication between
//! real nodes, full state transfer).

use meridian_tests::{int, query, strings, text, Cluster, Reply, Server};
use std::collections::HashSet;
use std::time::Duration;

fn members(con: &mut redis::Connection, key: &str) -> HashSet<String> {
    strings(con, &["SMEMBERS", key]).into_iter().flatten().collect()
}

#[test]
fn random_picks_are_members_and_pops_remove_them() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let all: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(all.iter().map(String::as_str));
    assert_eq!(int(&mut con, &sadd), 20);
    let distinct: Vec<String> = strings(&mut con, &["SRANDMEMBER", "s", "5"]).into_iter().flatten().collect();
    assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 5, "a positive count picks distinct members: {distinct:?}");
    assert!(distinct.iter().all(|m| all.contains(m)));
    let repeated = strings(&mut con, &["SRANDMEMBER", "s", "-50"]);
    assert_eq!(repeated.len(), 50, "a negative count may repeat members");
    assert_eq!(strings(&mut con, &["SRANDMEMBER", "s", "100"]).len(), 20);
    let popped: Vec<String> = strings(&mut con, &["SPOP", "s", "7"]).into_iter().flatten().collect();
    assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 7);
    let left = members(&mut con, "s");
    assert_eq!(left.len(), 13);
    assert!(popped.iter().all(|m| !left.contains(m)), "popped members are gone");
    let one = text(&mut con, &["SPOP", "s"]).expect("a member");
    assert!(left.contains(&one) && !members(&mut con, "s").contains(&one));
    assert_eq!(strings(&mut con, &["SPOP", "s", "100"]).len(), 12);
    assert_eq!(int(&mut con, &["EXISTS", "s"]), 0, "popping the last member removes the key");

    assert_eq!(int(&mut con, &["HSET", "h", "a", "1", "b", "2", "c", "3"]), 3);
    let field = text(&mut con, &["HRANDFIELD", "h"]).expect("a field");
    assert!(["a", "b", "c"].contains(&field.as_str()));
    let with_values: Vec<String> = strings(&mut con, &["HRANDFIELD", "h", "-4", "WITHVALUES"]).into_iter().flatten().collect();
    assert_eq!(with_values.len(), 8);
    for pair in with_values.chunks(2) {
        assert_eq!(text(&mut con, &["HGET", "h", &pair[0]]).as_deref(), Some(pair[1].as_str()));
    }
}

#[test]
fn resp3_replies_use_sets_maps_and_pairs() {
    let server = Server::start(&[]);
    let mut con = server.client_with("?protocol=resp3");
    int(&mut con, &["SADD", "s", "a", "b"]);
    int(&mut con, &["HSET", "h", "f", "v"]);
    assert!(matches!(query(&mut con, &["SMEMBERS", "s"]), Reply::Set(m) if m.len() == 2));
    assert!(matches!(query(&mut con, &["SUNION", "s", "nokey"]), Reply::Set(m) if m.len() == 2));
    assert!(matches!(query(&mut con, &["SPOP", "s", "1"]), Reply::Set(m) if m.len() == 1));
    match query(&mut con, &["HGETALL", "h"]) {
        Reply::Map(pairs) => assert_eq!(pairs, vec![(Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec()))]),
        other => panic!("HGETALL in RESP3 is a map, got {other:?}"),
    }
    match query(&mut con, &["HRANDFIELD", "h", "1", "WITHVALUES"]) {
        Reply::Array(items) => assert_eq!(items, vec![Reply::Array(vec![Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec())])]),
        other => panic!("HRANDFIELD WITHVALUES in RESP3 is an array of pairs, got {other:?}"),
    }
}

/// SSCAN and HSCAN over collections far past the one-reply size return every member exactly
/// once, also while members are added and removed during the scan.
#[test]
fn scans_of_large_collections_return_each_member_once() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let n = 5000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let names: Vec<String> = chunk.iter().map(|i| format!("m{i}")).collect();
        let mut sadd = vec!["SADD", "big"];
        sadd.extend(names.iter().map(String::as_str));
        int(&mut con, &sadd);
        let mut hset = vec!["HSET", "bigh"];
        names.iter().for_each(|m| hset.extend([m.as_str(), m.as_str()]));
        int(&mut con, &hset);
    }
    for (command, key, per_member) in [("SSCAN", "big", 1), ("HSCAN", "bigh", 2)] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let Reply::Array(parts) = query(&mut con, &[command, key, &cursor, "COUNT", "100"]) else { panic!("{command} reply") };
            let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else { panic!("{command} parts") };
            seen.extend(items.iter().step_by(per_member).map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            }));
            // Churn that must not disturb the scan: members added and removed mid-way.
            int(&mut con, &["SADD", "big", &format!("extra{calls}")]);
            int(&mut con, &["SREM", "big", &format!("extra{calls}")]);
            cursor = String::from_utf8_lossy(next).into_owned();
            calls += 1;
            if cursor == "0" {
                break;
            }
            assert!(calls < 10_000, "{command} never finished");
        }
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (n, n), "{command}: each of {n} members exactly once");
        assert!(calls > 1, "{command} of {n} members took more than one call");
    }
    let Reply::Array(parts) = query(&mut con, &["SSCAN", "big", "0", "MATCH", "m1?", "COUNT", "10000"]) else { panic!() };
    assert!(matches!(&parts[1], Reply::Array(items) if items.len() == 10), "MATCH filters: {parts:?}");
    assert!(query(&mut con, &["SSCAN", "big", "99999999"]).error().is_some(), "a cursor never returned is refused");
}

/// Sets and hashes replicate through real QUIC between real nodes, and a node that restarts
/// empty gets them back by full state transfer, with TTLs.
#[test]
fn collections_replicate_and_survive_a_state_transfer() {
    let mut cluster = Cluster::start(2, "mesh", &[]);
    let mut c0 = cluster.node(0).client();
    int(&mut c0, &["SADD", "s", "a", "b", "c"]);
    int(&mut c0, &["HSET", "h", "f", "1", "g", "x"]);
    int(&mut c0, &["HINCRBY", "h", "f", "41"]);
    int(&mut c0, &["SREM", "s", "b"]);
    int(&mut c0, &["EXPIRE", "s", "1000"]);
    let state = cluster.wait_identical("collections replicated", Duration::from_secs(20));
    assert!(state.iter().any(|k| k.0 == "s" && k.2.as_deref() == Some("a,c")), "{state:?}");
    cluster.kill(1);
    int(&mut c0, &["SADD", "s", "d"]);
    int(&mut c0, &["HDEL", "h", "g"]);
    cluster.start_node(1);
    let state = cluster.wait_identical("after the restarted node's state transfer", Duration::from_secs(30));
    let s = state.iter().find(|k| k.0 == "s").expect("s transferred");
    assert_eq!((s.1.as_str(), s.2.as_deref()), ("set", Some("a,c,d")));
    assert!(s.3 > 0, "the TTL came with it");
    let h = state.iter().find(|k| k.0 == "h").expect("h transferred");
    assert_eq!(h.2.as_deref(), Some("f=42"));
    // The transferred state is live CRDT state: writes on the new node replicate back.
    let mut c1 = cluster.node(1).client();
    assert_eq!(int(&mut c1, &["HINCRBY", "h", "f", "1"]), 43);
    let state = cluster.wait_identical("a write on the restarted node", Duration::from_secs(20));
    assert_eq!(state.iter().find(|k| k.0 == "h").and_then(|k| k.2.clone()).as_deref(), Some("f=43"));
}
