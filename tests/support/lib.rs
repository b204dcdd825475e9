//! Test support: start real `meridian` (and `redis-server`) processes on loopback and talk to
//! them through real clients.
//!
//! Servers listen on port 0 and report the port the kernel chose in their log, so tests run in
//! parallel without port races. Every process is killed when its handle drops, and every wait
//! is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use meridian_wan::{LinkModel, Wan};

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `meridian` binary of the profile these tests were built in (`target/<profile>/`).
pub fn meridian_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("TEST_MERIDIAN_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("meridian");
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p meridian`", bin.display());
    bin
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a unique directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("meridian-test-{label}-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process.
pub struct Server {
    child: Child,
    /// The client port.
    pub port: u16,
    log: Arc<Mutex<String>>,
    _dir: Option<TempDir>,
}

impl Server {
    /// Starts `meridian` with a fresh data dir and extra `args`.
    pub fn start(args: &[&str]) -> Server {
        let dir = TempDir::new("node");
        let mut server = Server::start_in(dir.path(), args);
        server._dir = Some(dir);
        server
    }

    /// Starts `meridian` on the data dir `dir`, which outlives it (restarts reuse it), with
    /// extra `args`.
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut all = vec!["--port", "0", "--dir", dir.to_str().unwrap(), "--loglevel", "notice"];
        all.extend_from_slice(args);
        Server::spawn(&meridian_bin(), &all, "listening on 127.0.0.1:")
    }

    /// Starts Debian's `redis-server` for differential tests and benchmarks.
    pub fn start_redis() -> Server {
        let dir = TempDir::new("redis");
        let port = free_port();
        let port_s = port.to_string();
        // One database, as Meridian has.
        let args = ["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "1", "--dir", dir.path().to_str().unwrap()];
        let mut server = Server::spawn(Path::new("redis-server"), &args, "Ready to accept connections");
        server.port = port;
        server._dir = Some(dir);
        server
    }

    /// Spawns `bin args` and waits for a log line containing `ready`; for meridian the port
    /// follows it.
    pub fn spawn(bin: &Path, args: &[&str], ready: &str) -> Server {
        Server::spawn_with_env(bin, args, &[], ready)
    }

    /// [`Server::spawn`] with the environment variables `env` set, and no other `MERIDIAN_*`.
    pub fn spawn_with_env(bin: &Path, args: &[&str], env: &[(&str, &str)], ready: &str) -> Server {
        let mut command = Command::new(bin);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MERIDIAN_")) {
            command.env_remove(key);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let log = log.clone();
            let found_tx = found_tx.clone();
            let ready = ready.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split(&ready).nth(1) {
                        let port = rest.trim().parse::<u16>().unwrap_or(0);
                        let _ = found_tx.send(port);
                    }
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let port = match found_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("{} did not start: {}", bin.display(), log.lock().unwrap());
            }
        };
        Server { child, port, log, _dir: None }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A connection through the `redis` crate (RESP2).
    pub fn client(&self) -> redis::Connection {
        self.client_with("")
    }

    /// A connection with extra URL parameters (e.g. `?protocol=resp3`).
    pub fn client_with(&self, params: &str) -> redis::Connection {
        let url = format!("redis://127.0.0.1:{}/{params}", self.port);
        let client = redis::Client::open(url).expect("client url");
        let con = client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect");
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        con
    }

    /// A raw TCP connection for byte-level protocol tests.
    pub fn raw(&self) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(stream)
    }

    /// Sends a signal and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill");
        self.wait(Duration::from_secs(15)).expect("server did not exit")
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user and system) the process has used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("read /proc/<pid>/stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of meridian nodes on loopback, replicating over QUIC with mutual TLS, with
/// certificates from `meridian certs`; optionally behind a WAN emulator (a UDP proxy per
/// directed link, with delay, jitter, loss and cuts).
pub struct Cluster {
    /// The nodes, in order; `None` while a node is stopped.
    pub nodes: Vec<Option<Server>>,
    /// Each node's geo (UDP) port.
    pub geo_ports: Vec<u16>,
    /// Each node's name.
    pub names: Vec<String>,
    certs: TempDir,
    dirs: Vec<TempDir>,
    topology: String,
    extra: Vec<String>,
    node_extra: Vec<Vec<String>>,
    wan: Option<(tokio::runtime::Runtime, Wan)>,
}

/// How to start a [`Cluster`]: `Cluster::build(3).wan(LinkModel::delay_ms(10)).start()`.
pub struct ClusterBuilder {
    n: usize,
    topology: String,
    extra: Vec<String>,
    node_extra: Vec<Vec<String>>,
    wan: Option<LinkModel>,
}

impl ClusterBuilder {
    /// `mesh` (the default) or `ring`.
    pub fn topology(mut self, topology: &str) -> Self {
        self.topology = topology.to_string();
        self
    }

    /// Flags every node starts with.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.extra.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Flags node `i` alone starts with (after the common ones).
    pub fn node_flags(mut self, i: usize, flags: &[&str]) -> Self {
        self.node_extra[i].extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Puts every link behind the WAN emulator, behaving as `model` each way.
    pub fn wan(mut self, model: LinkModel) -> Self {
        self.wan = Some(model);
        self
    }

    /// Creates certificates, starts the emulator if asked, and starts every node.
    pub fn start(self) -> Cluster {
        let n = self.n;
        let certs = TempDir::new("certs");
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let status = Command::new(meridian_bin()).args(["certs", certs.path().to_str().unwrap(), "--nodes", &names.join(",")]).output().expect("meridian certs");
        assert!(status.status.success(), "meridian certs failed: {}", String::from_utf8_lossy(&status.stderr));
        let geo_ports: Vec<u16> = (0..n).map(|_| free_udp_port()).collect();
        let wan = self.wan.map(|model| {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
            let targets: Vec<SocketAddr> = geo_ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
            let wan = runtime.block_on(Wan::mesh(&targets, |_, _| model, rand::random())).expect("start the WAN emulator");
            (runtime, wan)
        });
        let mut cluster = Cluster {
            nodes: (0..n).map(|_| None).collect(),
            geo_ports,
            names,
            certs,
            dirs: (0..n).map(|i| TempDir::new(&format!("geo{i}"))).collect(),
            topology: self.topology,
            extra: self.extra,
            node_extra: self.node_extra,
            wan,
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }
}

impl Cluster {
    /// Starts `n` nodes in `topology` (`mesh` or `ring`), each with `extra` flags, linked
    /// directly.
    pub fn start(n: usize, topology: &str, extra: &[&str]) -> Cluster {
        Cluster::build(n).topology(topology).flags(extra).start()
    }

    /// A builder for `n` nodes in a mesh, linked directly unless told otherwise.
    pub fn build(n: usize) -> ClusterBuilder {
        ClusterBuilder { n, topology: "mesh".into(), extra: Vec::new(), node_extra: vec![Vec::new(); n], wan: None }
    }

    /// The WAN emulator between the nodes (the cluster must have been built with one).
    pub fn wan(&self) -> &Wan {
        &self.wan.as_ref().expect("this cluster was started without the WAN emulator").1
    }

    /// The flags node `i` starts with.
    pub fn node_args(&self, i: usize) -> Vec<String> {
        let n = self.names.len();
        let certs = self.certs.path();
        let name = &self.names[i];
        let mut args: Vec<String> = [
            "--geo-port",
            &self.geo_ports[i].to_string(),
            "--topology",
            &self.topology,
            "--node-name",
            name,
            "--tls-cert",
            certs.join(format!("{name}.pem")).to_str().unwrap(),
            "--tls-key",
            certs.join(format!("{name}.key")).to_str().unwrap(),
            "--tls-ca",
            certs.join("ca.pem").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Peers in ring order after this node (a mesh dials them all).
        for k in 1..n {
            let j = (i + k) % n;
            let addr = match &self.wan {
                Some((_, wan)) => wan.addr(i, j),
                None => SocketAddr::from(([127, 0, 0, 1], self.geo_ports[j])),
            };
            args.extend(["--peer".to_string(), addr.to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        args.extend(self.node_extra[i].iter().cloned());
        args
    }

    /// (Re)starts node `i` with its data dir.
    pub fn start_node(&mut self, i: usize) {
        self.spawn_node(i, self.node_args(i));
    }

    /// (Re)starts node `i` without its peers: it accepts the others' ops (`accept-peer`, an
    /// explicit join) but sends its own nowhere, so everything it writes stays concurrent with
    /// what they write.
    pub fn start_node_without_peers(&mut self, i: usize) {
        let mut args = Vec::new();
        let mut given = self.node_args(i).into_iter();
        while let Some(arg) = given.next() {
            match arg.as_str() {
                "--peer" => drop(given.next()),
                _ => args.push(arg),
            }
        }
        for (j, name) in self.names.iter().enumerate() {
            if j != i {
                args.extend(["--accept-peer".to_string(), name.clone()]);
            }
        }
        self.spawn_node(i, args);
    }

    fn spawn_node(&mut self, i: usize, args: Vec<String>) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nodes[i] = Some(Server::start_in(self.dirs[i].path(), &args));
    }

    /// Node `i`'s data dir.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dirs[i].path().to_path_buf()
    }

    /// Node `i` (running).
    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.nodes[i].take() {
            server.signal_and_wait("KILL");
        }
    }

    /// Waits (bounded) until `check` holds on every running node's client; panics otherwise
    /// with the last values seen.
    pub fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&mut redis::Connection) -> Result<(), String>) {
        let deadline = Instant::now() + limit;
        let mut clients: Vec<redis::Connection> = self.nodes.iter().flatten().map(Server::client).collect();
        loop {
            let failures: Vec<String> = clients.iter_mut().enumerate().filter_map(|(i, c)| check(c).err().map(|e| format!("node {i}: {e}"))).collect();
            if failures.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("{what} did not happen within {limit:?}: {failures:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A UDP port nothing uses right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port nothing listens on right now (for redis-server, which cannot report one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A raw client connection.
pub struct Raw(pub TcpStream);

impl Raw {
    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("send");
    }

    /// Reads until `expected` bytes have arrived (or the server closes), bounded by the read
    /// timeout.
    pub fn read_exact_len(&mut self, expected: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while got.len() < expected {
            match self.0.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    /// Reads until the bytes received end with `suffix` (bounded by the read timeout).
    pub fn read_until(&mut self, suffix: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(suffix) {
            match self.0.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    /// Sends `request` and expects exactly `reply` back.
    pub fn roundtrip(&mut self, request: &[u8], reply: &[u8]) {
        self.send(request);
        let got = self.read_exact_len(reply.len());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(reply), "reply to {:?}", String::from_utf8_lossy(request));
    }

    /// True once the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    }
}

/// A reply as the tests compare it: the `redis` crate's value, with errors kept as values
/// (`"ERR syntax error"`) so that an expected error is just another expected reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Null (RESP2 nil bulk or array, RESP3 `_`).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// A simple string (`+OK` included).
    Status(String),
    /// An array.
    Array(Vec<Reply>),
    /// A RESP3 map.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set.
    Set(Vec<Reply>),
    /// A RESP3 double.
    Double(f64),
    /// A RESP3 boolean.
    Bool(bool),
    /// A RESP3 verbatim string's text.
    Verbatim(String),
    /// An error reply: code and message.
    Error(String),
    /// Anything else, debug-printed.
    Other(String),
}

impl Reply {
    fn from_value(value: redis::Value) -> Reply {
        use redis::Value as V;
        match value {
            V::Nil => Reply::Nil,
            V::Int(i) => Reply::Int(i),
            V::BulkString(b) => Reply::Bulk(b),
            V::SimpleString(s) => Reply::Status(s),
            V::Okay => Reply::Status("OK".into()),
            V::Array(items) => Reply::Array(items.into_iter().map(Reply::from_value).collect()),
            V::Map(pairs) => Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::from_value(k), Reply::from_value(v))).collect()),
            V::Set(items) => Reply::Set(items.into_iter().map(Reply::from_value).collect()),
            V::Double(d) => Reply::Double(d),
            V::Boolean(b) => Reply::Bool(b),
            V::VerbatimString { text, .. } => Reply::Verbatim(text),
            V::ServerError(e) => Reply::Error(format!("{} {}", e.code(), e.details().unwrap_or_default()).trim().to_string()),
            other => Reply::Other(format!("{other:?}")),
        }
    }

    /// The error message of an error reply, `ERR ...` included.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs a command (string arguments) and returns its reply.
pub fn query(con: &mut redis::Connection, args: &[&str]) -> Reply {
    query_bytes(con, &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())
}

/// Runs a command with binary arguments and returns its reply.
pub fn query_bytes(con: &mut redis::Connection, args: &[&[u8]]) -> Reply {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("command names are text"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(v) => Reply::from_value(v),
        Err(e) if e.code().is_some() => Reply::Error(format!("{} {}", e.code().unwrap_or("ERR"), e.detail().unwrap_or_default()).trim().to_string()),
        Err(e) => panic!("{args:?} failed without a server reply: {e}"),
    }
}

/// The text of a server error reply, e.g. `ERR syntax error`.
pub fn error_text(con: &mut redis::Connection, args: &[&str]) -> String {
    match query(con, args) {
        Reply::Error(e) => e,
        other => panic!("expected an error from {}, got {other:?}", shorten(args)),
    }
}

/// A command line for messages, long arguments cut.
pub fn shorten(args: &[&str]) -> String {
    let cut: Vec<String> = args.iter().map(|a| if a.len() > 40 { format!("{}...({} bytes)", &a[..40], a.len()) } else { a.to_string() }).collect();
    format!("{cut:?}")
}

/// Shorthand for an integer reply.
pub fn int(con: &mut redis::Connection, args: &[&str]) -> i64 {
    match query(con, args) {
        Reply::Int(i) => i,
        other => panic!("expected an integer from {}, got {other:?}", shorten(args)),
    }
}

/// Shorthand for a string reply (bulk, status or verbatim); `None` for nil.
pub fn text(con: &mut redis::Connection, args: &[&str]) -> Option<String> {
    match query(con, args) {
        Reply::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Reply::Status(s) | Reply::Verbatim(s) => Some(s),
        Reply::Nil => None,
        other => panic!("expected a string from {args:?}, got {other:?}"),
    }
}

/// Shorthand for an array of strings (nil elements as `None`).
pub fn strings(con: &mut redis::Connection, args: &[&str]) -> Vec<Option<String>> {
    match query(con, args) {
        Reply::Array(items) | Reply::Set(items) => items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                Reply::Status(s) => Some(s),
                Reply::Nil => None,
                other => panic!("expected strings from {args:?}, got {other:?}"),
            })
            .collect(),
        other => panic!("expected an array from {args:?}, got {other:?}"),
    }
}

/// An INFO field's value.
pub fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info = text(con, &["INFO", section]).unwrap_or_default();
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

/// One key as the convergence checks compare it: name, type, value (strings as read, sets as
/// sorted members `a,b`, hashes as sorted pairs `f=v,g=w`) and absolute
/// expiry in Unix ms (-1: none), the same on every node once they have converged.
pub type KeyDump = (String, String, Option<String>, i64);

/// A node's whole keyspace, sorted by key.
pub fn dump(con: &mut redis::Connection) -> Vec<KeyDump> {
    let mut keys: Vec<String> = strings(con, &["KEYS", "*"]).into_iter().flatten().collect();
    keys.sort();
    keys.into_iter().filter_map(|key| dump_key(con, key)).collect()
}

/// One key's dump (`None`: gone). A replicated write can change the key's type between the
/// TYPE and the read of its value; the value read then fails and the key is read again.
fn dump_key(con: &mut redis::Connection, key: String) -> Option<KeyDump> {
    for _ in 0..100 {
        let kind = text(con, &["TYPE", &key])?;
        let read: Option<Vec<&str>> = match kind.as_str() {
            "none" => return None,
            "string" => Some(vec!["GET", &key]),
            "set" => Some(vec!["SMEMBERS", &key]),
            "hash" => Some(vec!["HGETALL", &key]),
            "list" => Some(vec!["LRANGE", &key, "0", "-1"]),
            "zset" => Some(vec!["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
            _ => None,
        };
        let reply = match &read {
            Some(command) => query(con, command),
            None => Reply::Nil,
        };
        if reply.error().is_some() {
            continue;
        }
        let items = || -> Vec<String> {
            match &reply {
                Reply::Array(items) | Reply::Set(items) => {
                    items.iter().filter_map(|i| if let Reply::Bulk(b) = i { Some(String::from_utf8_lossy(b).into_owned()) } else { None }).collect()
                }
                _ => Vec::new(),
            }
        };
        let value = match (kind.as_str(), &reply) {
            ("string", Reply::Bulk(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            ("set", _) => {
                let mut members = items();
                members.sort();
                Some(members.join(","))
            }
            ("hash", _) => {
                let mut pairs: Vec<String> = items().chunks(2).map(|p| p.join("=")).collect();
                pairs.sort();
                Some(pairs.join(","))
            }
            ("list", _) => Some(items().join(",")),
            ("zset", _) => Some(items().chunks(2).map(|p| p.join("=")).collect::<Vec<_>>().join(",")),
            _ => None,
        };
        let expiry = int(con, &["PEXPIRETIME", &key]);
        return Some((key, kind, value, expiry));
    }
    panic!("{key} kept changing type while it was read");
}

impl Cluster {
    /// Waits (bounded) until every running node holds the same keyspace, and returns it.
    pub fn wait_identical(&self, what: &str, limit: Duration) -> Vec<KeyDump> {
        let deadline = Instant::now() + limit;
        let mut clients: Vec<redis::Connection> = self.nodes.iter().flatten().map(Server::client).collect();
        loop {
            let dumps: Vec<Vec<KeyDump>> = clients.iter_mut().map(dump).collect();
            if dumps.windows(2).all(|w| w[0] == w[1]) {
                return dumps.into_iter().next().unwrap_or_default();
            }
            if Instant::now() > deadline {
                let mut differing: Vec<String> = dumps
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("node {i}: {} keys, not on node 0: {:?}", d.len(), d.iter().filter(|k| !dumps[0].contains(k)).take(5).collect::<Vec<_>>()))
                    .collect();
                // Each node's full state of the keys that differ, to see why.
                let mut keys: Vec<&String> = dumps.iter().flatten().filter(|k| !dumps.iter().all(|d| d.contains(k))).map(|k| &k.0).collect();
                keys.dedup();
                for key in keys.into_iter().take(3) {
                    for (i, c) in clients.iter_mut().enumerate() {
                        differing.push(format!("node {i} CRDT.STATE {key}: {:?}", query(c, &["CRDT.STATE", key])));
                    }
                }
                // The nodes' logs (with --loglevel verbose, every op applied) for a closer look.
                let logs = std::env::temp_dir().join(format!("meridian-divergence-{}-{}", std::process::id(), rand::random::<u32>()));
                if std::fs::create_dir_all(&logs).is_ok() {
                    for (i, node) in self.nodes.iter().flatten().enumerate() {
                        let _ = std::fs::write(logs.join(format!("node{i}.log")), node.log());
                    }
                    differing.push(format!("node logs: {}", logs.display()));
                }
                for (i, c) in clients.iter_mut().enumerate() {
                    differing.push(format!("node {i} INFO replication: {}", text(c, &["INFO", "replication"]).unwrap_or_default().replace("\r\n", " | ")));
                }
                panic!("{what}: nodes did not converge within {limit:?}: {differing:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
