//! Sets, hashes and sorted sets through a real client: what the differential test cannot compare with
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

    assert_eq!(int(&mut con, &["ZADD", "z", "1", "a", "2.5", "b", "-3", "c"]), 3);
    let member = text(&mut con, &["ZRANDMEMBER", "z"]).expect("a member");
    assert!(["a", "b", "c"].contains(&member.as_str()));
    let distinct: Vec<String> = strings(&mut con, &["ZRANDMEMBER", "z", "2"]).into_iter().flatten().collect();
    assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 2);
    let with_scores: Vec<String> = strings(&mut con, &["ZRANDMEMBER", "z", "-6", "WITHSCORES"]).into_iter().flatten().collect();
    assert_eq!(with_scores.len(), 12, "a negative count repeats: {with_scores:?}");
    for pair in with_scores.chunks(2) {
        assert_eq!(text(&mut con, &["ZSCORE", "z", &pair[0]]).as_deref(), Some(pair[1].as_str()));
    }
    assert_eq!(strings(&mut con, &["ZRANDMEMBER", "z", "10"]).len(), 3);
}

/// Picks draw random slots of the member vector: they must land only on live members, reach
/// every one of them, and stay distinct where they should, also after most members are gone.
#[test]
fn random_picks_from_a_large_thinned_collection_reach_every_live_member() {
    let server = Server::start(&[]);
    let mut con = server.client();
    for key in ["s", "z", "h"] {
        for chunk in 0..3 {
            let names: Vec<String> = (chunk * 1000..(chunk + 1) * 1000).map(|i| format!("m{i}")).collect();
            let mut add: Vec<&str> = vec![
                match key {
                    "s" => "SADD",
                    "z" => "ZADD",
                    _ => "HSET",
                },
                key,
            ];
            for name in &names {
                match key {
                    "s" => add.push(name),
                    "z" => add.extend(["1", name]),
                    _ => add.extend([name, "v"]),
                }
            }
            assert_eq!(int(&mut con, &add), 1000);
        }
        let gone: Vec<String> = (100..3000).map(|i| format!("m{i}")).collect();
        let mut remove = vec![
            match key {
                "s" => "SREM",
                "z" => "ZREM",
                _ => "HDEL",
            },
            key,
        ];
        remove.extend(gone.iter().map(String::as_str));
        assert_eq!(int(&mut con, &remove), 2900);
        let live: HashSet<String> = (0..100).map(|i| format!("m{i}")).collect();
        let random = match key {
            "s" => "SRANDMEMBER",
            "z" => "ZRANDMEMBER",
            _ => "HRANDFIELD",
        };
        let drawn: Vec<String> = strings(&mut con, &[random, key, "-3000"]).into_iter().flatten().collect();
        assert_eq!(drawn.len(), 3000);
        assert_eq!(drawn.iter().cloned().collect::<HashSet<_>>(), live, "{random}: 3,000 draws from 100 members reach each, and only live ones");
        let distinct: Vec<String> = strings(&mut con, &[random, key, "30"]).into_iter().flatten().collect();
        assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 30, "{random} 30: distinct members");
        assert!(distinct.iter().all(|m| live.contains(m)));
    }
    let popped: Vec<String> = strings(&mut con, &["SPOP", "s", "30"]).into_iter().flatten().collect();
    assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 30);
    let left = members(&mut con, "s");
    assert_eq!(left.len(), 70);
    assert!(popped.iter().all(|m| !left.contains(m)));
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
    int(&mut con, &["ZADD", "z", "1.5", "a", "inf", "b"]);
    assert_eq!(query(&mut con, &["ZSCORE", "z", "a"]), Reply::Double(1.5));
    assert_eq!(query(&mut con, &["ZINCRBY", "z", "1", "a"]), Reply::Double(2.5));
    assert_eq!(query(&mut con, &["ZMSCORE", "z", "b", "nope"]), Reply::Array(vec![Reply::Double(f64::INFINITY), Reply::Nil]));
    let pair = |m: &[u8], s: f64| Reply::Array(vec![Reply::Bulk(m.to_vec()), Reply::Double(s)]);
    assert_eq!(query(&mut con, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]), Reply::Array(vec![pair(b"a", 2.5), pair(b"b", f64::INFINITY)]));
    assert_eq!(query(&mut con, &["ZUNION", "1", "z", "WITHSCORES"]), Reply::Array(vec![pair(b"a", 2.5), pair(b"b", f64::INFINITY)]));
    // A single pop is flat; a counted pop is a list of pairs.
    assert_eq!(query(&mut con, &["ZPOPMIN", "z"]), Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Double(2.5)]));
    assert_eq!(query(&mut con, &["ZPOPMAX", "z", "1"]), Reply::Array(vec![pair(b"b", f64::INFINITY)]));
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
        let mut zadd = vec!["ZADD", "bigz"];
        names.iter().for_each(|m| zadd.extend(["7", m.as_str()]));
        int(&mut con, &zadd);
    }
    for (command, key, per_member) in [("SSCAN", "big", 1), ("HSCAN", "bigh", 2), ("ZSCAN", "bigz", 2)] {
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

/// A sorted set of thousands of members answers ranges, ranks and counts as a sorted model
/// of it does, while members move.
#[test]
fn large_sorted_sets_keep_their_order_through_updates() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let n = 3000usize;
    let mut model: Vec<(i64, String)> = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let pairs: Vec<(String, String)> = chunk.iter().map(|i| (((i * 7919) % 1000).to_string(), format!("m{i:05}"))).collect();
        let mut zadd = vec!["ZADD", "z"];
        pairs.iter().for_each(|(s, m)| zadd.extend([s.as_str(), m.as_str()]));
        int(&mut con, &zadd);
        model.extend(pairs.iter().map(|(s, m)| (s.parse().unwrap(), m.clone())));
    }
    // Move every tenth member, by increment and by rewrite.
    for (i, (score, member)) in model.iter_mut().enumerate().step_by(10) {
        if i % 20 == 0 {
            text(&mut con, &["ZINCRBY", "z", "-500", member]);
            *score -= 500;
        } else {
            int(&mut con, &["ZADD", "z", "XX", "2000", member]);
            *score = 2000;
        }
    }
    model.sort();
    let members = |range: &[(i64, String)]| range.iter().map(|(_, m)| Some(m.clone())).collect::<Vec<_>>();
    assert_eq!(strings(&mut con, &["ZRANGE", "z", "0", "-1"]), members(&model));
    assert_eq!(strings(&mut con, &["ZRANGE", "z", "100", "149"]), members(&model[100..150]));
    let reversed: Vec<(i64, String)> = model.iter().rev().take(20).cloned().collect();
    assert_eq!(strings(&mut con, &["ZRANGE", "z", "0", "19", "REV"]), members(&reversed));
    let in_range: Vec<(i64, String)> = model.iter().filter(|(s, _)| (100..=300).contains(s)).cloned().collect();
    assert_eq!(strings(&mut con, &["ZRANGE", "z", "100", "300", "BYSCORE"]), members(&in_range));
    assert_eq!(int(&mut con, &["ZCOUNT", "z", "100", "300"]), in_range.len() as i64);
    let (rank, (_, member)) = model.iter().enumerate().nth(1234).unwrap();
    assert_eq!(int(&mut con, &["ZRANK", "z", member]), rank as i64);
    assert_eq!(int(&mut con, &["ZREVRANK", "z", member]), (n - 1 - rank) as i64);
    assert_eq!(int(&mut con, &["ZREMRANGEBYSCORE", "z", "-inf", "(0"]), model.iter().filter(|(s, _)| *s < 0).count() as i64);
    assert_eq!(int(&mut con, &["ZCARD", "z"]), model.iter().filter(|(s, _)| *s >= 0).count() as i64);
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
    int(&mut c0, &["ZADD", "z", "1", "a", "2", "b"]);
    text(&mut c0, &["ZINCRBY", "z", "5", "a"]);
    let state = cluster.wait_identical("collections replicated", Duration::from_secs(20));
    assert!(state.iter().any(|k| k.0 == "z" && k.2.as_deref() == Some("b=2,a=6")), "{state:?}");
    assert!(state.iter().any(|k| k.0 == "s" && k.2.as_deref() == Some("a,c")), "{state:?}");
    cluster.kill(1);
    int(&mut c0, &["SADD", "s", "d"]);
    int(&mut c0, &["HDEL", "h", "g"]);
    int(&mut c0, &["ZREM", "z", "b"]);
    int(&mut c0, &["ZADD", "z", "0.5", "c"]);
    cluster.start_node(1);
    let state = cluster.wait_identical("after the restarted node's state transfer", Duration::from_secs(30));
    let s = state.iter().find(|k| k.0 == "s").expect("s transferred");
    assert_eq!((s.1.as_str(), s.2.as_deref()), ("set", Some("a,c,d")));
    assert!(s.3 > 0, "the TTL came with it");
    let h = state.iter().find(|k| k.0 == "h").expect("h transferred");
    assert_eq!(h.2.as_deref(), Some("f=42"));
    let z = state.iter().find(|k| k.0 == "z").expect("z transferred");
    assert_eq!((z.1.as_str(), z.2.as_deref()), ("zset", Some("c=0.5,a=6")));
    // The transferred state is live CRDT state: writes on the new node replicate back.
    let mut c1 = cluster.node(1).client();
    assert_eq!(int(&mut c1, &["HINCRBY", "h", "f", "1"]), 43);
    assert_eq!(text(&mut c1, &["ZINCRBY", "z", "1", "a"]).as_deref(), Some("7"));
    let state = cluster.wait_identical("a write on the restarted node", Duration::from_secs(20));
    assert_eq!(state.iter().find(|k| k.0 == "h").and_then(|k| k.2.clone()).as_deref(), Some("f=43"));
}

/// Scores are parsed as Redis parses them (C's strtod), hexadecimal floats included; the
/// replies are what redis-server 7.0.15 gave for the same commands.
#[test]
fn hexadecimal_scores_are_accepted_as_redis_accepts_them() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["ZADD", "z", "0x10", "m", "0x1p3", "n", "0X1.8p1", "o", "0x10.8", "u"]), 4);
    assert_eq!(text(&mut con, &["ZSCORE", "z", "m"]).as_deref(), Some("16"));
    assert_eq!(text(&mut con, &["ZSCORE", "z", "u"]).as_deref(), Some("16.5"));
    assert_eq!(strings(&mut con, &["ZRANGEBYSCORE", "z", "0x2", "0x10"]), [Some("o".to_string()), Some("n".to_string()), Some("m".to_string())]);
    assert_eq!(text(&mut con, &["ZINCRBY", "z", "0x2", "m"]).as_deref(), Some("18"));
    for bad in ["0x", "0x1p", " 0x10"] {
        assert_eq!(meridian_tests::error_text(&mut con, &["ZADD", "z", bad, "q"]), "ERR value is not a valid float", "{bad}");
    }
}
