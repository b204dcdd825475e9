//! A randomized soak: three real nodes behind the WAN emulator (delay, jitter, loss), random
//! commands on every region, and random faults (cut and healed links, isolated regions,
//! slower links, SIGKILLed and restarted regions). At the end every link heals and every
//! region must hold the same keyspace, and no acknowledged increment may be lost.
//!
//! Without `appendonly`, a killed region loses what only it held. So there a kill comes only
//! after the running regions have converged (links healed meanwhile), and never takes the
//! last running region: then every acknowledged write is still held by a running region, and
//! the counters must come out exact. With `appendonly yes` (the second soak) a region is
//! killed at any moment, since it keeps everything it acknowledged, and the counters must come
//! out exact all the same. A paused region (SIGSTOP for 6 to 9 s, longer than QUIC's idle
//! timeout, then SIGCONT) must catch up like any other.
//!
//! Bounded in time: `MERIDIAN_SOAK_SECS` (20 s by default, as CI runs it; 600 for the long
//! soak). `MERIDIAN_SOAK_SEED` replays a run; the seed is printed either way.
//! `MERIDIAN_SOAK_FAULTS` (e.g. `cut,delay`) narrows the faults to some of `cut`, `isolate`,
//! `delay`, `kill` and `pause` (all by default) when hunting a failure. Runs of up to a minute log every
//! op applied (`loglevel verbose`), which a divergence report saves; longer ones only with
//! `MERIDIAN_SOAK_TRACE=1`, as the logs would grow by gigabytes.

use meridian_tests::{query, Cluster, LinkModel, Reply};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const REGIONS: usize = 3;
/// Keys that take every kind of write.
const KEYS: usize = 40;
/// Keys that only ever take INCRBY, to check that no acknowledged increment is lost.
const COUNTERS: usize = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A random command of the string, counter, TTL, whole-key, set, hash, sorted-set and list families
/// (over the same keys, so types conflict too).
fn random_command(rng: &mut StdRng) -> Vec<String> {
    let key = format!("k{}", rng.gen_range(0..KEYS));
    let other = format!("k{}", rng.gen_range(0..KEYS));
    let value = format!("v{}", rng.gen_range(0..1000));
    let member = format!("m{}", rng.gen_range(0..6));
    let words: Vec<String> = match rng.gen_range(0..29) {
        24 => vec!["RPUSH".into(), key, value],
        25 => vec!["LPUSH".into(), key, member, value],
        26 => vec!["LPOP".into(), key],
        27 => vec!["LSET".into(), key, "0".into(), value],
        28 => vec!["LINSERT".into(), key, "AFTER".into(), member, value],
        20 => vec!["ZADD".into(), key, rng.gen_range(-9..9).to_string(), member],
        21 => vec!["ZINCRBY".into(), key, format!("{}.25", rng.gen_range(-9..9)), member],
        22 => vec!["ZREM".into(), key, member],
        23 => vec!["ZPOPMIN".into(), key],
        14 | 15 => vec!["SADD".into(), key, member, value],
        16 => vec!["SREM".into(), key, member],
        17 => vec!["HSET".into(), key, member, value],
        18 => vec!["HINCRBY".into(), key, member, rng.gen_range(-50..50).to_string()],
        19 => vec!["HDEL".into(), key, member],
        0 | 1 => vec!["SET".into(), key, value],
        2 => vec!["SET".into(), key, value, "EX".into(), rng.gen_range(1..6).to_string()],
        3 => vec!["APPEND".into(), key, value],
        4 | 5 => vec!["INCRBY".into(), key, rng.gen_range(-50..50).to_string()],
        6 => vec!["INCRBYFLOAT".into(), key, format!("{}.5", rng.gen_range(-9..9))],
        7 => vec!["DEL".into(), key],
        8 => vec!["EXPIRE".into(), key, rng.gen_range(1..30).to_string()],
        9 => vec!["PERSIST".into(), key],
        10 => vec!["GETDEL".into(), key],
        11 => vec!["MSET".into(), key, value.clone(), other, value],
        12 => vec!["SETRANGE".into(), key, rng.gen_range(0..8).to_string(), value],
        _ => vec!["SET".into(), key, value, "KEEPTTL".into()],
    };
    words
}

#[test]
fn random_commands_and_faults_converge() {
    soak(&[]);
}

/// The same with `appendonly yes`: kills come at any moment, and no acknowledged write is lost.
#[test]
fn random_commands_and_faults_converge_with_appendonly() {
    soak(&["--appendonly", "yes"]);
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain kill(2) to a child process of this test.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

fn soak(flags: &[&str]) {
    let durable = flags.contains(&"appendonly");
    let seed = env_u64("MERIDIAN_SOAK_SEED").unwrap_or_else(rand::random);
    let secs = env_u64("MERIDIAN_SOAK_SECS").unwrap_or(20);
    println!("soak {flags:?} seed {seed} for {secs} s (replay with MERIDIAN_SOAK_SEED={seed})");
    let allowed = std::env::var("MERIDIAN_SOAK_FAULTS").unwrap_or_else(|_| "cut,isolate,delay,kill,pause".into());
    let allows = |fault: &str| allowed.split(',').any(|f| f.trim() == fault);
    let mut rng = StdRng::seed_from_u64(seed);
    let base = LinkModel { delay: Duration::from_millis(5), jitter: Duration::from_millis(3), loss: 0.01 };
    let trace = secs <= 60 || std::env::var("MERIDIAN_SOAK_TRACE").is_ok_and(|v| v == "1");
    let level = if trace { "verbose" } else { "notice" };
    let mut cluster = Cluster::build(REGIONS).wan(base).flags(&["--loglevel", level]).flags(flags).start();
    // A paused region and when it resumes.
    let mut paused: Option<(usize, Instant)> = None;
    let mut clients: Vec<Option<redis::Connection>> = (0..REGIONS).map(|i| Some(cluster.node(i).client())).collect();
    let mut acknowledged = [0i64; COUNTERS];
    let (mut commands, mut faults) = (0u64, Vec::new());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut next_fault = Instant::now() + Duration::from_millis(rng.gen_range(200..1000));
    while Instant::now() < end {
        if let Some((region, until)) = paused.filter(|(_, until)| Instant::now() >= *until) {
            signal(cluster.node(region).pid(), libc::SIGCONT);
            faults.push(format!("resume {region} ({:?} late)", until.elapsed()));
            paused = None;
        }
        let region = rng.gen_range(0..REGIONS);
        if let Some(con) = clients[region].as_mut().filter(|_| paused.is_none_or(|(p, _)| p != region)) {
            if rng.gen_bool(0.2) {
                let (counter, by) = (rng.gen_range(0..COUNTERS), rng.gen_range(1..100));
                match query(con, &["INCRBY", &format!("ctr{counter}"), &by.to_string()]) {
                    Reply::Int(_) => acknowledged[counter] += by,
                    other => panic!("INCRBY on region {region}: {other:?} (seed {seed})"),
                }
            } else {
                let command = random_command(&mut rng);
                let args: Vec<&str> = command.iter().map(String::as_str).collect();
                // Errors (INCR on a word, ...) are replies like any other; the server must answer.
                let _ = query(con, &args);
            }
            commands += 1;
        }
        if Instant::now() >= next_fault {
            next_fault = Instant::now() + Duration::from_millis(rng.gen_range(200..1500));
            let wan = cluster.wan();
            let (a, b) = (rng.gen_range(0..REGIONS), rng.gen_range(1..REGIONS));
            let b = (a + b) % REGIONS;
            match rng.gen_range(0..8) {
                0 if allows("cut") => {
                    wan.cut(a, b);
                    faults.push(format!("cut {a}-{b}"));
                }
                1 | 2 => {
                    wan.heal_all();
                    faults.push("heal".into());
                }
                3 if allows("isolate") => {
                    wan.isolate(a);
                    faults.push(format!("isolate {a}"));
                }
                4 if allows("delay") => {
                    let slow = LinkModel { delay: Duration::from_millis(rng.gen_range(1..60)), ..base };
                    wan.set_model(a, b, slow);
                    faults.push(format!("delay {a}-{b} {:?}", slow.delay));
                }
                5 if allows("kill") && clients[a].is_some() && clients.iter().flatten().count() > 1 && paused.is_none() => {
                    if durable {
                        faults.push(format!("kill {a}"));
                    } else {
                        wan.heal_all();
                        cluster.wait_identical(&format!("running regions before killing {a} (seed {seed})"), Duration::from_secs(60));
                        faults.push(format!("heal, converge, kill {a}"));
                    }
                    clients[a] = None;
                    cluster.kill(a);
                }
                7 if allows("pause") && clients[a].is_some() && paused.is_none() => {
                    let pause = Duration::from_millis(rng.gen_range(6000..9000));
                    signal(cluster.node(a).pid(), libc::SIGSTOP);
                    paused = Some((a, Instant::now() + pause));
                    faults.push(format!("pause {a} for {pause:?}"));
                }
                6 => {
                    if let Some(down) = (0..REGIONS).find(|&i| clients[i].is_none()) {
                        cluster.start_node(down);
                        clients[down] = Some(cluster.node(down).client());
                        faults.push(format!("restart {down}"));
                    }
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some((region, _)) = paused {
        signal(cluster.node(region).pid(), libc::SIGCONT);
    }
    cluster.wan().heal_all();
    for (i, client) in clients.iter().enumerate() {
        if client.is_none() {
            cluster.start_node(i);
        }
    }
    println!("{commands} commands, faults: {faults:?}");
    let state = cluster.wait_identical(&format!("soak seed {seed}"), Duration::from_secs(90));
    for (c, expected) in acknowledged.iter().enumerate() {
        let key = format!("ctr{c}");
        let value: i64 = state.iter().find(|k| k.0 == key).and_then(|k| k.2.as_deref()).map_or(0, |v| v.parse().expect("a counter"));
        assert_eq!(value, *expected, "{key}: every acknowledged increment counts, once (seed {seed})");
    }
    assert!(commands >= secs * 20, "the soak ran only {commands} commands (seed {seed})");
}
