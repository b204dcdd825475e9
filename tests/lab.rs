//! `meridian lab` as a new user runs it: three regions behind the WAN emulator, a console on
//! standard input, Ctrl-C to stop.

use meridian_tests::{meridian_bin, text};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn client(port: u16) -> redis::Connection {
    let con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection_with_timeout(Duration::from_secs(5)).unwrap();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    con
}

/// Polls `port` until GET `key` is `value`; returns how long it took, or `None` past `limit`.
fn time_until(port: u16, key: &str, value: &str, limit: Duration) -> Option<Duration> {
    let mut con = client(port);
    let start = Instant::now();
    while start.elapsed() < limit {
        if text(&mut con, &["GET", key]).as_deref() == Some(value) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// The lab process; if the test fails half-way, it still stops the lab (and so its regions).
struct LabProcess(std::process::Child);

impl Drop for LabProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_lab_runs_three_regions_behind_the_emulator_and_stops_on_ctrl_c() {
    let mut lab = LabProcess(
        Command::new(meridian_bin())
            .args(["lab", "--port", "0", "--rtt-ms", "60,80,100"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start meridian lab"),
    );
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = lab.0.stdout.take().unwrap();
    std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(|l| drop(lines_tx.send(l))));
    let next_line = |what: &str| lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("the lab printed no {what}"));
    let line_with = |text: &str| while !next_line(text).contains(text) {};

    // The banner: the data dir, then each region's address and a redis-cli line.
    let mut ports = Vec::new();
    let mut data_dir = None;
    while ports.len() < 3 {
        let line = next_line("region addresses");
        if let Some(dir) = line.trim().strip_prefix("data and logs: ") {
            data_dir = Some(dir.split(" (").next().unwrap().to_string());
        }
        if let Some(rest) = line.trim().strip_prefix(&format!("region {}: 127.0.0.1:", ["a", "b", "c"][ports.len()])) {
            let port: u16 = rest.split_whitespace().next().unwrap().parse().unwrap();
            assert!(line.ends_with(&format!("redis-cli -p {port}")), "{line}");
            ports.push(port);
        }
    }
    let data_dir = data_dir.expect("the banner names the data dir");
    assert!(std::path::Path::new(&data_dir).join("a").exists());

    // Writes in two regions add up in the third.
    meridian_tests::int(&mut client(ports[0]), &["INCRBY", "hits", "5"]);
    meridian_tests::int(&mut client(ports[2]), &["INCRBY", "hits", "7"]);
    assert!(time_until(ports[1], "hits", "12", Duration::from_secs(20)).is_some(), "hits reached 12 on region b");

    // A write on a reaches b no sooner than the link's one-way delay (30 ms).
    text(&mut client(ports[0]), &["SET", "probe", "1"]);
    let took = time_until(ports[1], "probe", "1", Duration::from_secs(10)).expect("probe replicated");
    assert!(took >= Duration::from_millis(25), "a-b is 60 ms round trip, the probe took {took:?}");

    // The console cuts region a off; its writes wait until the links heal.
    let mut console = lab.0.stdin.take().unwrap();
    writeln!(console, "isolate a").unwrap();
    line_with("region a cut off from the others");
    text(&mut client(ports[0]), &["SET", "while-cut", "1"]);
    assert_eq!(time_until(ports[1], "while-cut", "1", Duration::from_millis(1500)), None, "a cut region's write must not arrive");
    writeln!(console, "heal").unwrap();
    line_with("every link healed");
    assert!(time_until(ports[1], "while-cut", "1", Duration::from_secs(20)).is_some(), "the write arrives once healed");

    // Ctrl-C stops the regions and removes the temporary data dir.
    Command::new("kill").args(["-INT", &lab.0.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = lab.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the lab did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!std::path::Path::new(&data_dir).exists(), "the temporary data dir is removed");
    for port in ports {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "region on {port} stopped");
    }
}

#[test]
fn bad_lab_arguments_are_refused_with_the_reason() {
    let out = Command::new(meridian_bin()).args(["lab", "--rtt-ms", "40,80"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--rtt-ms takes three values") && stderr.contains("usage: meridian lab"), "{stderr}");
}
