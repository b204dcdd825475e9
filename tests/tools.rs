//! Unmodified Redis tools against a meridian node: redis-cli, redis-benchmark and redis-py.
//! `.ci/run` installs them; a missing tool is a failure with a clear message, not a skip.

use meridian_tests::{int, Server};
use std::path::Path;
use std::process::Command;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program} ({e}); install it as .ci/run does"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {text}");
    text
}

#[test]
fn redis_cli_works_unmodified() {
    let server = Server::start(&[]);
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["-p", port.as_str()];
        all.extend_from_slice(args);
        run("redis-cli", &all).trim_end().to_string()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "tour", "hello"]), "OK");
    assert_eq!(cli(&["GET", "tour"]), "hello");
    assert_eq!(cli(&["INCR", "n"]), "1");
    assert_eq!(cli(&["GET", "missing"]), "");
    assert_eq!(cli(&["--no-raw", "GET", "missing"]), "(nil)");
    assert_eq!(cli(&["BOGUS"]), "ERR unknown command 'BOGUS', with args beginning with:");
    assert!(cli(&["INFO", "server"]).contains("redis_version:7.2.4"));
    assert_eq!(cli(&["-3", "GET", "tour"]), "hello", "RESP3 mode");
    let mut keys: Vec<String> = cli(&["--scan"]).lines().map(str::to_string).collect();
    keys.sort();
    assert_eq!(keys, ["n", "tour"]);
    // Interactive startup asks COMMAND DOCS for hints; piped commands exercise that path.
    let piped = Command::new("redis-cli")
        .args(["-p", &port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"SET piped yes\nGET piped\n")?;
            child.wait_with_output()
        })
        .expect("redis-cli with piped input");
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "OK\nyes\n");
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let server = Server::start(&[]);
    let port = server.port.to_string();
    let out = run("redis-benchmark", &["-p", &port, "-t", "set,get,incr,mset", "-n", "20000", "-c", "20", "-P", "4", "-r", "1000", "--csv"]);
    for test in ["SET", "GET", "INCR", "MSET (10 keys)"] {
        let line = out.lines().find(|l| l.starts_with(&format!("\"{test}\""))).unwrap_or_else(|| panic!("no {test} in {out}"));
        let rps: f64 = line.split(',').nth(1).unwrap().trim_matches('"').parse().unwrap();
        assert!(rps > 0.0, "{line}");
    }
    assert!(!out.contains("ERROR") && !out.contains("WARNING"), "{out}");
    let mut con = server.client();
    assert!(int(&mut con, &["DBSIZE"]) > 0);
}

#[test]
fn redis_py_works_unmodified() {
    let server = Server::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/redis_py_smoke.py");
    let out = run("python3", &[script.to_str().unwrap(), &server.port.to_string()]);
    assert!(out.contains("redis-py ok"), "{out}");
}
