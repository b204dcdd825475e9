//! The `meridian` binary's command line: version, help, configuration errors at startup, and
//! configuration from a file, the environment and flags, in that order of precedence.
//!
//! Living in the server package, these tests also make cargo build the binary that the
//! black-box suites in `tests/` start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

fn meridian(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("MERIDIAN_PORT").output().expect("run meridian")
}

fn temp_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meridian-cli-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn version_and_help() {
    let out = meridian(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("meridian "));
    let out = meridian(&["--help"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage: meridian"));
}

/// Startup must fail with `message` on stderr and a non-zero exit, without serving.
fn refuses(args: &[&str], env: &[(&str, &str)], message: &str) {
    let mut command = Command::new(BIN);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run meridian");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: expected {message:?} in {stderr:?}");
}

#[test]
fn bad_configuration_is_a_clear_startup_error() {
    let dir = temp_dir("bad");
    refuses(&["--no-such-option", "1"], &[], "unknown option 'no-such-option'");
    refuses(&["--port", "70000"], &[], "invalid value for 'port': argument must be between 0 and 65535 inclusive");
    refuses(&["--maxmemory", "lots"], &[], "invalid value for 'maxmemory': argument must be a memory value");
    refuses(&["/no/such/meridian.conf"], &[], "cannot read config file '/no/such/meridian.conf'");
    refuses(&["--port", "0", "stray"], &[], "invalid value for 'port': expects exactly one value, got 2");
    refuses(&["--port", "0"], &[("MERIDIAN_MAXCLIENTS", "many")], "invalid value for 'maxclients'");
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "port 0\n# fine\nsave 900 1\n").unwrap();
    refuses(&[conf.to_str().unwrap()], &[], "bad.conf:3: invalid value for 'save'");
    std::fs::write(&conf, "port 0\nbind 127.0.0.1\nmaxclients many\n").unwrap();
    refuses(&[conf.to_str().unwrap()], &[], "bad.conf:3: invalid value for 'maxclients'");
    let file_as_dir = dir.join("a-file");
    std::fs::write(&file_as_dir, "").unwrap();
    refuses(&["--port", "0", "--dir", file_as_dir.to_str().unwrap()], &[], "cannot open data dir");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    refuses(&["--port", &port, "--bind", "127.0.0.1", "--dir", dir.to_str().unwrap()], &[], "cannot listen on 127.0.0.1:");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_then_environment_then_flags() {
    let dir = temp_dir("layers");
    let conf = dir.join("meridian.conf");
    std::fs::write(&conf, format!("port 0\ndir {}\nmaxmemory 1mb\nmaxclients 100\nloglevel notice\n", dir.display())).unwrap();
    let mut child = Command::new(BIN)
        .args([conf.to_str().unwrap(), "--maxclients", "300"])
        .env("MERIDIAN_MAXMEMORY", "2mb")
        .env("MERIDIAN_MAXCLIENTS", "200")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        assert!(Instant::now() < deadline, "no listening line");
        let line = lines.next().expect("log line").unwrap();
        if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
            break rest.trim().parse::<u16>().unwrap();
        }
    };
    let get = |name: &str| -> String {
        let out = Command::new("redis-cli").args(["-p", &port.to_string(), "CONFIG", "GET", name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(get("maxmemory"), "2097152", "the environment overrides the file");
    assert_eq!(get("maxclients"), "300", "flags override the environment");
    assert_eq!(get("port"), port.to_string());
    let id = std::fs::read_to_string(dir.join("node.id")).unwrap();
    assert_eq!(id.trim().len(), 16, "a node id is created in the data dir");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
