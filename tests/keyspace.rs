//! Strings, counters, expiry and keyspace commands through a real client, with the values
//! Meridian must return (the differential tests compare the rest against redis-server).

use meridian_tests::{error_text, info_field, int, query, strings, text, Reply, Server};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn strings_and_counters() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(text(&mut con, &["SET", "s", "hello"]).as_deref(), Some("OK"));
    assert_eq!(text(&mut con, &["GET", "s"]).as_deref(), Some("hello"));
    assert_eq!(int(&mut con, &["APPEND", "s", " world"]), 11);
    assert_eq!(text(&mut con, &["GETRANGE", "s", "-5", "-1"]).as_deref(), Some("world"));
    assert_eq!(int(&mut con, &["SETRANGE", "s", "0", "J"]), 11);
    assert_eq!(text(&mut con, &["GET", "s"]).as_deref(), Some("Jello world"));
    assert_eq!(int(&mut con, &["STRLEN", "s"]), 11);
    assert_eq!(int(&mut con, &["INCR", "c"]), 1);
    assert_eq!(int(&mut con, &["INCRBY", "c", "41"]), 42);
    assert_eq!(int(&mut con, &["DECRBY", "c", "2"]), 40);
    assert_eq!(int(&mut con, &["DECR", "c"]), 39);
    assert_eq!(text(&mut con, &["GET", "c"]).as_deref(), Some("39"));
    for _ in 0..10 {
        text(&mut con, &["INCRBYFLOAT", "f", "0.1"]);
    }
    assert_eq!(text(&mut con, &["GET", "f"]).as_deref(), Some("1"), "exact decimal sums");
    assert_eq!(text(&mut con, &["INCRBYFLOAT", "f", "-1.25"]).as_deref(), Some("-0.25"));
    assert_eq!(error_text(&mut con, &["INCR", "f"]), "ERR value is not an integer or out of range");
    assert_eq!(error_text(&mut con, &["INCR", "s"]), "ERR value is not an integer or out of range");
    assert_eq!(error_text(&mut con, &["INCRBYFLOAT", "s", "1"]), "ERR value is not a valid float");
    text(&mut con, &["SET", "max", "9223372036854775807"]);
    assert_eq!(error_text(&mut con, &["INCR", "max"]), "ERR increment or decrement would overflow");
    assert_eq!(text(&mut con, &["SET", "c", "x"]).as_deref(), Some("OK"), "SET overwrites a counter");
    assert_eq!(text(&mut con, &["GET", "c"]).as_deref(), Some("x"));
    assert_eq!(text(&mut con, &["GETSET", "c", "7"]).as_deref(), Some("x"));
    assert_eq!(int(&mut con, &["INCR", "c"]), 8);
    assert_eq!(text(&mut con, &["GETDEL", "c"]).as_deref(), Some("8"));
    assert_eq!(query(&mut con, &["GET", "c"]), Reply::Nil);
    assert_eq!(text(&mut con, &["MSET", "a", "1", "b", "2"]).as_deref(), Some("OK"));
    assert_eq!(strings(&mut con, &["MGET", "a", "nope", "b"]), vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(int(&mut con, &["MSETNX", "a", "9", "z", "9"]), 0);
    assert_eq!(query(&mut con, &["GET", "z"]), Reply::Nil);
    assert_eq!(int(&mut con, &["SETNX", "a", "9"]), 0);
    assert_eq!(error_text(&mut con, &["SET", "a", "1", "NX", "XX"]), "ERR syntax error");
    assert_eq!(error_text(&mut con, &["GET"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(int(&mut con, &["DEL", "a", "b", "nope"]), 2);
    assert_eq!(int(&mut con, &["EXISTS", "a", "s", "s"]), 2);
    assert_eq!(text(&mut con, &["TYPE", "s"]).as_deref(), Some("string"));
    assert_eq!(text(&mut con, &["TYPE", "nope"]).as_deref(), Some("none"));
    let binary = [0u8, 255, 13, 10, 0];
    redis::cmd("SET").arg("bin").arg(&binary[..]).query::<()>(&mut con).unwrap();
    let back: Vec<u8> = redis::cmd("GET").arg("bin").query(&mut con).unwrap();
    assert_eq!(back, binary, "values are binary safe");
}

#[test]
fn ttls_and_lazy_expiry() {
    let server = Server::start(&[]);
    let mut con = server.client();
    text(&mut con, &["SET", "k", "v", "PX", "150"]);
    let pttl = int(&mut con, &["PTTL", "k"]);
    assert!((1..=150).contains(&pttl), "{pttl}");
    assert_eq!(int(&mut con, &["TTL", "k"]), 0);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(query(&mut con, &["GET", "k"]), Reply::Nil, "expired on access");
    assert_eq!(int(&mut con, &["TTL", "k"]), -2);
    text(&mut con, &["SET", "k", "v", "EX", "100"]);
    assert_eq!(int(&mut con, &["TTL", "k"]), 100);
    text(&mut con, &["SET", "k", "w", "KEEPTTL"]);
    assert_eq!(int(&mut con, &["TTL", "k"]), 100, "KEEPTTL keeps it");
    int(&mut con, &["APPEND", "k", "x"]);
    assert_eq!(int(&mut con, &["TTL", "k"]), 100, "APPEND keeps it");
    text(&mut con, &["SET", "k", "v"]);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1, "a plain SET clears it");
    assert_eq!(int(&mut con, &["EXPIRE", "k", "50"]), 1);
    assert_eq!(int(&mut con, &["PERSIST", "k"]), 1);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1000;
    assert_eq!(int(&mut con, &["EXPIREAT", "k", &at.to_string()]), 1);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), at as i64);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "k"]), at as i64 * 1000);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "-1"]), 1, "a past time deletes");
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    text(&mut con, &["SETEX", "k", "100", "v"]);
    assert_eq!(text(&mut con, &["GETEX", "k", "PERSIST"]).as_deref(), Some("v"));
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    assert_eq!(text(&mut con, &["GETEX", "k", "PX", "100000"]).as_deref(), Some("v"));
    assert!(int(&mut con, &["PTTL", "k"]) > 99_000);
    assert_eq!(error_text(&mut con, &["SET", "k", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let server = Server::start(&["--hz", "50"]);
    let mut con = server.client();
    for i in 0..500 {
        text(&mut con, &["SET", &format!("short:{i}"), "v", "PX", "100"]);
    }
    text(&mut con, &["SET", "long", "v", "EX", "1000"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 501);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while int(&mut con, &["DBSIZE"]) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(int(&mut con, &["DBSIZE"]), 1, "only the long-lived key is left");
    let expired: u64 = info_field(&mut con, "stats", "expired_keys").unwrap().parse().unwrap();
    assert_eq!(expired, 500);
    assert_eq!(info_field(&mut con, "keyspace", "db0").as_deref(), Some("keys=1,expires=1,avg_ttl=0"));
}

/// Runs a full SCAN and returns every key it produced, counting duplicates.
fn full_scan(con: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let Reply::Array(parts) = query(con, &args) else { panic!("SCAN replies with an array") };
        let (Reply::Bulk(next), Reply::Array(batch)) = (&parts[0], &parts[1]) else { panic!("SCAN reply shape") };
        for key in batch {
            let Reply::Bulk(k) = key else { panic!("keys are bulk strings") };
            keys.push(String::from_utf8(k.clone()).unwrap());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return keys;
        }
    }
}

#[test]
fn scan_returns_every_key_exactly_once() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("SET").arg(format!("user:{i}")).arg(i).ignore();
    }
    for i in 0..100 {
        pipe.cmd("SET").arg(format!("other:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    for count in ["1", "10", "1000"] {
        let keys = full_scan(&mut con, &["COUNT", count]);
        let unique: HashSet<&String> = keys.iter().collect();
        assert_eq!(keys.len(), 5100, "COUNT {count}: no duplicates");
        assert_eq!(unique.len(), 5100);
    }
    let users = full_scan(&mut con, &["MATCH", "user:1*", "COUNT", "100"]);
    assert_eq!(users.len(), 1111);
    assert!(full_scan(&mut con, &["TYPE", "hash"]).is_empty());
    assert_eq!(full_scan(&mut con, &["TYPE", "string", "MATCH", "other:*"]).len(), 100);
    assert_eq!(error_text(&mut con, &["SCAN", "x"]), "ERR invalid cursor");
}

#[test]
fn scan_keeps_its_promise_while_keys_come_and_go() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let mut writer = server.client();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("stable:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut round = 0;
    loop {
        // Churn between SCAN calls: tables grow and shrink under the cursor.
        for j in 0..50 {
            text(&mut writer, &["SET", &format!("churn:{round}:{j}"), "x"]);
        }
        int(&mut writer, &["DEL", &format!("churn:{}:0", round.max(1) - 1)]);
        round += 1;
        let Reply::Array(parts) = query(&mut con, &["SCAN", &cursor, "COUNT", "20"]) else { panic!() };
        let (Reply::Bulk(next), Reply::Array(batch)) = (&parts[0], &parts[1]) else { panic!() };
        for key in batch {
            let Reply::Bulk(k) = key else { panic!() };
            seen.insert(String::from_utf8(k.clone()).unwrap());
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let missing = (0..3000).filter(|i| !seen.contains(&format!("stable:{i}"))).count();
    assert_eq!(missing, 0, "every key present throughout the scan is returned");
}

#[test]
fn keys_randomkey_rename_dbsize_flush() {
    let server = Server::start(&[]);
    let mut con = server.client();
    assert_eq!(query(&mut con, &["RANDOMKEY"]), Reply::Nil);
    for k in ["one", "two", "three"] {
        text(&mut con, &["SET", k, k]);
    }
    let mut keys = strings(&mut con, &["KEYS", "t*"]);
    keys.sort();
    assert_eq!(keys, vec![Some("three".into()), Some("two".into())]);
    let random = text(&mut con, &["RANDOMKEY"]).unwrap();
    assert!(["one", "two", "three"].contains(&random.as_str()));
    int(&mut con, &["EXPIRE", "one", "100"]);
    assert_eq!(text(&mut con, &["RENAME", "one", "uno"]).as_deref(), Some("OK"));
    assert_eq!(text(&mut con, &["GET", "uno"]).as_deref(), Some("one"));
    assert_eq!(int(&mut con, &["TTL", "uno"]), 100, "RENAME carries the TTL");
    assert_eq!(int(&mut con, &["RENAMENX", "uno", "two"]), 0);
    assert_eq!(error_text(&mut con, &["RENAME", "gone", "x"]), "ERR no such key");
    assert_eq!(int(&mut con, &["DBSIZE"]), 3);
    assert_eq!(text(&mut con, &["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    text(&mut con, &["SET", "x", "1"]);
    assert_eq!(text(&mut con, &["FLUSHDB", "ASYNC"]).as_deref(), Some("OK"));
    assert_eq!(strings(&mut con, &["KEYS", "*"]), Vec::<Option<String>>::new());
}

#[test]
fn every_write_goes_through_the_op_log() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let before: u64 = info_field(&mut con, "replication", "master_repl_offset").unwrap().parse().unwrap();
    text(&mut con, &["SET", "a", "1"]);
    int(&mut con, &["INCR", "a"]);
    int(&mut con, &["EXPIRE", "a", "100"]);
    int(&mut con, &["DEL", "a"]);
    text(&mut con, &["GET", "a"]);
    let after: u64 = info_field(&mut con, "replication", "master_repl_offset").unwrap().parse().unwrap();
    assert_eq!(after - before, 4, "four writes, four ops; reads make none");
    assert_eq!(info_field(&mut con, "replication", "role").as_deref(), Some("active-active"));
}
