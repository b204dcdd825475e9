//! A damaged or full disk under a durable node (`appendonly yes`), through real processes on a
//! real RocksDB: a byte flipped in the write-ahead log, `meridian salvage`, and a node in a mesh
//! that rebuilds from its peers what its own log lost.

use meridian_tests::{info_field, int, meridian_bin, Cluster, Server, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 30_000;
const CONVERGE: Duration = Duration::from_secs(60);

/// Writes `KEYS` keys `k0..` through pipelines; every one is acknowledged.
fn write_keys(server: &Server) {
    let mut con = server.client();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("k{i}")).arg(format!("value {i}")).ignore();
        }
        pipe.query::<()>(&mut con).expect("acknowledged");
    }
}

/// Flips one byte in the middle of the largest write-ahead log file in `dir/flash`.
fn flip_a_byte_in_the_log(dir: &Path) -> PathBuf {
    let logs = std::fs::read_dir(dir.join("flash")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "log"));
    let log = logs.max_by_key(|p| std::fs::metadata(p).unwrap().len()).expect("a write-ahead log");
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.len() > 100_000, "the writes are in the log: {} bytes", bytes.len());
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&log, bytes).unwrap();
    log
}

/// Runs meridian with `args`, expecting it to exit with an error within a few seconds (a node
/// that starts anyway is killed and fails the test); returns its standard error.
fn refused_start(args: &[&str]) -> String {
    let mut child = Command::new(meridian_bin()).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the node started on a damaged log");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `meridian salvage` with `args`: its report.
fn salvage(args: &[&str]) -> String {
    let output = Command::new(meridian_bin()).arg("salvage").args(args).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "salvage failed: {}{report}", String::from_utf8_lossy(&output.stderr));
    report
}

/// The number after `label` in `text`.
fn number_after(text: &str, label: &str) -> u64 {
    let rest = text.split(label).nth(1).unwrap_or_else(|| panic!("no {label:?} in {text}"));
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// A byte flipped in the middle of the write-ahead log: the node refuses to start and says
/// what to do, instead of starting without half of its acknowledged writes. `meridian salvage`
/// keeps a copy of the damaged files, reports what it cannot read, and the node then starts
/// with exactly what the report says it kept.
#[test]
fn a_corrupt_log_stops_the_start_and_salvage_reports_what_it_keeps() {
    let dir = TempDir::new("corrupt");
    let dir_arg = dir.path().to_str().unwrap();
    let args = ["--port", "0", "--dir", dir_arg, "--appendonly", "yes", "--appendfsync", "always"];
    let mut node = Server::start_in(dir.path(), &args[4..]);
    write_keys(&node);
    node.signal_and_wait("KILL");
    flip_a_byte_in_the_log(dir.path());

    let refused = refused_start(&args);
    assert!(refused.contains("damaged") && refused.contains("meridian salvage"), "a clear error with the way out: {refused}");
    assert!(refused_start(&args).contains("damaged"), "and again: nothing was dropped by the first try");

    let report = salvage(&args[2..]);
    let backup = report.split("kept as they were in ").nth(1).and_then(|r| r.split(';').next()).expect("the backup's path");
    assert!(Path::new(backup).join("CURRENT").exists(), "the damaged files are kept: {report}");
    let replayable = number_after(&report, "replayable:");
    assert!(replayable > 0 && (replayable as usize) < KEYS, "{report}");

    let node = Server::start_in(dir.path(), &args[4..]);
    let mut con = node.client();
    assert_eq!(int(&mut con, &["DBSIZE"]) as u64, replayable, "the node holds what the report says it kept: {report}");
}

/// A node whose log was damaged, salvaged, then started in its mesh gets back from its peers
/// every write its own log lost.
#[test]
fn a_salvaged_node_in_a_mesh_gets_what_it_lost_from_its_peers() {
    let mut cluster = Cluster::build(2).node_flags(0, &["--appendonly", "yes", "--appendfsync", "always"]).start();
    write_keys(cluster.node(0));
    cluster.wait_for("every key replicated", CONVERGE, |c| match int(c, &["DBSIZE"]) as usize {
        KEYS => Ok(()),
        n => Err(format!("{n} keys")),
    });
    cluster.kill(0);
    let dir = cluster.node_dir(0);
    flip_a_byte_in_the_log(&dir);
    salvage(&["--dir", dir.to_str().unwrap(), "--appendonly", "yes"]);
    cluster.start_node(0);
    cluster.wait_for("the lost writes back from the peer", CONVERGE, |c| match int(c, &["DBSIZE"]) as usize {
        KEYS => Ok(()),
        n => Err(format!("{n} keys")),
    });
    let mut con = cluster.node(0).client();
    assert_eq!(meridian_tests::text(&mut con, &["GET", &format!("k{}", KEYS - 1)]).as_deref(), Some(format!("value {}", KEYS - 1).as_str()));
    assert!(info_field(&mut con, "persistence", "recovered_ops").is_some());
}

/// A tmpfs of `mb` megabytes mounted for the life of the value (the tests run as root in CI;
/// elsewhere the disk-full test says it cannot run).
struct SmallDisk(TempDir);

impl SmallDisk {
    fn mount(mb: u64) -> Option<SmallDisk> {
        let dir = TempDir::new("smalldisk");
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs", dir.path().to_str().unwrap()]).status().ok()?;
        status.success().then_some(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Fills the disk with a ballast file until `leave` bytes are free (or as near as it gets).
    fn fill(&self, name: &str, leave: u64) {
        let free = self.free();
        let size = free.saturating_sub(leave);
        let file = std::fs::File::create(self.path().join(name)).unwrap();
        let chunk = vec![0x5a_u8; 1 << 20];
        let mut written = 0;
        let mut writer = std::io::BufWriter::new(file);
        while written < size {
            let n = chunk.len().min((size - written) as usize);
            if std::io::Write::write_all(&mut writer, &chunk[..n]).is_err() {
                break;
            }
            written += n as u64;
        }
        let _ = std::io::Write::flush(&mut writer);
    }

    fn free(&self) -> u64 {
        let path = std::ffi::CString::new(self.path().to_str().unwrap()).unwrap();
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid path and a zeroed out-parameter.
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail as u64 * stat.f_frsize as u64
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A disk that fills under a write load (`appendfsync everysec`): no write the node
/// acknowledged is lost, writes are refused (MISCONF) or their connection closed while the
/// disk is full, they resume by themselves once space is freed, and the node restarts on a
/// nearly full disk with every acknowledged write.
#[test]
fn a_full_disk_loses_no_acknowledged_write_and_writes_resume_by_themselves() {
    let Some(disk) = SmallDisk::mount(64) else {
        assert!(std::env::var("CI").is_err(), "CI runs as root and must be able to mount a tmpfs");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = disk.path().join("node");
    std::fs::create_dir(&data).unwrap();
    let args = ["--appendonly", "yes", "--appendfsync", "everysec"];
    let mut node = Server::start_in(&data, &args);
    // Leave the node some 12 MB; the ballast comes out later to free space.
    disk.fill("ballast", 12 << 20);
    let mut acked = Vec::new();
    let value = "x".repeat(1000);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let (mut refused, mut i) = (0, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused < 200 && Instant::now() < deadline {
        let key = format!("k{i}");
        i += 1;
        match redis::cmd("SET").arg(&key).arg(&value).query::<String>(&mut con) {
            Ok(_) => acked.push(key),
            Err(e) => {
                refused += 1;
                let text = e.to_string();
                assert!(text.contains("MISCONF") || e.is_io_error() || e.is_connection_dropped(), "a full disk refuses writes, got {text}");
                if e.is_io_error() || e.is_connection_dropped() {
                    con = client.get_connection().unwrap();
                }
            }
        }
    }
    assert!(refused >= 200, "the disk filled: {} writes acknowledged, {refused} refused", acked.len());
    assert!(acked.len() > 1000, "the node wrote before the disk filled: {}", acked.len());
    let status = info_field(&mut con, "persistence", "aof_last_write_status");
    assert_eq!(status.as_deref(), Some("err"));

    std::fs::remove_file(disk.path().join("ballast")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match redis::cmd("SET").arg("after").arg("freed").query::<String>(&mut con) {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "writes did not resume after space was freed: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(info_field(&mut con, "persistence", "aof_last_write_status").as_deref(), Some("ok"));
    acked.push("after".into());

    // A restart on a disk with a few megabytes left.
    node.signal_and_wait("KILL");
    disk.fill("ballast", 4 << 20);
    let node = Server::start_in(&data, &args);
    let mut con = node.client();
    let missing: Vec<&String> = acked.iter().filter(|key| int(&mut con, &["EXISTS", key]) == 0).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged writes lost, first {:?}", missing.len(), acked.len(), missing.first());
}
