//! Configuration: one table of options, read from a redis.conf-style file, then `MERIDIAN_*`
//! environment variables, then `--option value` flags (each overriding the one before), and
//! served to `CONFIG GET` / `CONFIG SET` at runtime. An option unknown to the table is an
//! error wherever it appears.

use crate::glob::glob_match;
use crate::resp::parse::split_args;
use meridian_geo::Topology;
use std::path::PathBuf;

/// Logging verbosity, with Redis's level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, including per-connection events.
    Debug,
    /// Verbose operational detail.
    Verbose,
    /// Startup, shutdown and significant events (the default).
    Notice,
    /// Only problems.
    Warning,
    /// Nothing.
    Nothing,
}

impl LogLevel {
    const NAMES: [(&'static str, LogLevel); 5] =
        [("debug", LogLevel::Debug), ("verbose", LogLevel::Verbose), ("notice", LogLevel::Notice), ("warning", LogLevel::Warning), ("nothing", LogLevel::Nothing)];

    /// The equivalent `tracing` filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "info,meridian=debug",
            LogLevel::Notice => "info",
            LogLevel::Warning => "warn",
            LogLevel::Nothing => "off",
        }
    }
}

/// What happens when `maxmemory` is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    /// Refuse writes that would add data with `-OOM`, as Redis's `noeviction`.
    NoEviction,
    /// Spill the least recently used keys to the flash tier and keep serving them from there
    /// (the default with `appendonly yes`).
    Flash,
    /// Evict the least recently used keys (Redis's `allkeys-lru`).
    AllkeysLru,
    /// Evict the least recently used keys that have a TTL.
    VolatileLru,
    /// Evict keys at random.
    AllkeysRandom,
    /// Evict keys that have a TTL at random.
    VolatileRandom,
    /// Evict the keys nearest their expiry.
    VolatileTtl,
    /// Evict the least frequently used keys (Redis's `allkeys-lfu`; see `lfu-log-factor`).
    AllkeysLfu,
    /// Evict the least frequently used keys that have a TTL.
    VolatileLfu,
}

impl MaxmemoryPolicy {
    const NAMES: [(&'static str, MaxmemoryPolicy); 9] = [
        ("noeviction", MaxmemoryPolicy::NoEviction),
        ("flash", MaxmemoryPolicy::Flash),
        ("allkeys-lru", MaxmemoryPolicy::AllkeysLru),
        ("volatile-lru", MaxmemoryPolicy::VolatileLru),
        ("allkeys-random", MaxmemoryPolicy::AllkeysRandom),
        ("volatile-random", MaxmemoryPolicy::VolatileRandom),
        ("volatile-ttl", MaxmemoryPolicy::VolatileTtl),
        ("allkeys-lfu", MaxmemoryPolicy::AllkeysLfu),
        ("volatile-lfu", MaxmemoryPolicy::VolatileLfu),
    ];

    /// The policy's name, as CONFIG GET and INFO give it.
    pub fn name(self) -> String {
        name_of(self, &Self::NAMES)
    }
}

/// When the durable op log is synced to disk (`appendfsync`, Redis's names). A write is in
/// RocksDB's log, and so survives the process being killed, before its reply under every mode;
/// the mode decides what a power cut or a kernel crash can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendFsync {
    /// Synced before the replies of the writes it holds are sent: nothing acknowledged is lost.
    Always,
    /// Synced once a second: a power cut loses at most about a second of writes.
    Everysec,
    /// Never synced explicitly: the operating system flushes when it likes.
    No,
}

impl AppendFsync {
    const NAMES: [(&'static str, AppendFsync); 3] = [("always", AppendFsync::Always), ("everysec", AppendFsync::Everysec), ("no", AppendFsync::No)];

    /// The mode's name, as CONFIG GET and INFO give it.
    pub fn name(self) -> String {
        name_of(self, &Self::NAMES)
    }
}

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP port for clients (`port`).
    pub port: u16,
    /// Addresses to listen on (`bind`); a leading `-` marks an address that may be unavailable.
    pub bind: Vec<String>,
    /// Password of the default user (`requirepass`); empty means no authentication.
    pub requirepass: String,
    /// Data directory (`dir`): node identity, and later the flash tier.
    pub dir: PathBuf,
    /// Memory limit in bytes for the dataset (`maxmemory`); 0 means none.
    pub maxmemory: u64,
    /// What to do at the limit (`maxmemory-policy`), if chosen; see [`Config::policy`].
    pub maxmemory_policy: Option<MaxmemoryPolicy>,
    /// How slowly the LFU counter grows with use (`lfu-log-factor`, Redis's default 10).
    pub lfu_log_factor: u64,
    /// Minutes of idleness that take one off the LFU counter (`lfu-decay-time`; 0: never).
    pub lfu_decay_time: u64,
    /// Keep a durable op log and checkpoints in the flash tier, and recover from them at start
    /// (`appendonly`).
    pub appendonly: bool,
    /// When the durable op log is synced (`appendfsync`).
    pub appendfsync: AppendFsync,
    /// A checkpoint is taken once the durable log has grown by this many bytes since the last
    /// (`auto-aof-rewrite-min-size`) ...
    pub auto_aof_rewrite_min_size: u64,
    /// ... and by at least this percentage of the last checkpoint's size
    /// (`auto-aof-rewrite-percentage`; 0 disables automatic checkpoints).
    pub auto_aof_rewrite_percentage: u64,
    /// Log verbosity (`loglevel`).
    pub loglevel: LogLevel,
    /// Log file (`logfile`); empty means standard output.
    pub logfile: String,
    /// Most simultaneous clients (`maxclients`).
    pub maxclients: u64,
    /// Close clients idle this many seconds (`timeout`); 0 means never.
    pub timeout: u64,
    /// TCP keepalive interval in seconds (`tcp-keepalive`); 0 disables it.
    pub tcp_keepalive: u64,
    /// Listen queue length (`tcp-backlog`), capped by the kernel's somaxconn.
    pub tcp_backlog: u64,
    /// Background task frequency per second: active expiry, stats sampling (`hz`).
    pub hz: u64,
    /// The longest the event loop keeps polling for input before it sleeps, in microseconds
    /// (`busy-poll-us`; 0: never poll). The window adapts below it (net/idle_poll.rs).
    pub busy_poll_us: u64,
    /// Largest bulk string a client may send (`proto-max-bulk-len`).
    pub proto_max_bulk_len: u64,
    /// Largest unparsed input buffered for one client (`client-query-buffer-limit`).
    pub client_query_buffer_limit: u64,
    /// Bytes of recent ops kept in memory for peers to catch up from (`repl-backlog-size`).
    pub repl_backlog_size: u64,
    /// Worker threads serving clients (`threads`); 0 means one less than the cores, at least one.
    pub threads: u64,
    /// UDP port for QUIC replication (`geo-port`); 0 means replication is off.
    pub geo_port: u16,
    /// Peers to replicate to, `host:port` of their geo ports (`peer`, repeatable; in a ring,
    /// in ring order after this node: the successor first).
    pub peers: Vec<String>,
    /// Names of nodes this node accepts sessions from although it does not send to them
    /// (`accept-peer`, repeatable): an explicit join. Otherwise only the nodes at `peer`
    /// addresses are members.
    pub accept_peers: Vec<String>,
    /// How nodes are connected (`topology`).
    pub topology: Topology,
    /// Nodes of different clusters refuse each other (`cluster-id`).
    pub cluster_id: String,
    /// This node's name in logs and INFO (`node-name`); empty means the node id.
    pub node_name: String,
    /// This node's certificate, PEM (`tls-cert`).
    pub tls_cert: String,
    /// Its private key, PEM (`tls-key`).
    pub tls_key: String,
    /// The cluster CA that signs every node's certificate, PEM (`tls-ca`).
    pub tls_ca: String,
    /// Seconds a silent peer may pin garbage (tombstones, causal metadata) before it stops
    /// counting for stability and must resynchronise when it returns (`peer-gc-timeout`).
    pub peer_gc_timeout: u64,
    /// Conflicts kept for CRDT.CONFLICTS, newest first (`conflict-log-max-len`).
    pub conflict_log_max_len: u64,
    /// Shifts this node's wall clock (HLC and expiry) by this many milliseconds, to test and
    /// demonstrate clock skew (`test-clock-offset-ms`); never set it in production.
    pub test_clock_offset_ms: i64,
    /// The config file this was read from, if any.
    pub config_file: Option<PathBuf>,
    /// `MERIDIAN_*` environment variables that name no option (a wrapper script's own, say):
    /// ignored, and warned about once logging starts.
    pub ignored_env: Vec<String>,
}

impl Config {
    /// True if this node replicates (a geo port or peers are configured). A node that does
    /// not keeps no op log: nothing would ever read it.
    pub fn replicates(&self) -> bool {
        self.geo_port > 0 || !self.peers.is_empty()
    }

    /// The `maxmemory-policy` in force: the one chosen, else `flash` with `appendonly yes`
    /// (the flash tier is open anyway) and `noeviction` without.
    pub fn policy(&self) -> MaxmemoryPolicy {
        let default = if self.appendonly { MaxmemoryPolicy::Flash } else { MaxmemoryPolicy::NoEviction };
        self.maxmemory_policy.unwrap_or(default)
    }

    /// True if the flash tier's RocksDB is opened at start: for durability or for spilling.
    pub fn uses_flash(&self) -> bool {
        self.appendonly || self.policy() == MaxmemoryPolicy::Flash
    }

    /// Bytes of op log to keep: `repl-backlog-size`, or none for a node that does not
    /// replicate.
    pub fn op_log_bytes(&self) -> usize {
        if self.replicates() {
            self.repl_backlog_size as usize
        } else {
            0
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            requirepass: String::new(),
            dir: PathBuf::from("."),
            maxmemory: 0,
            maxmemory_policy: None,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            appendonly: false,
            appendfsync: AppendFsync::Everysec,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            auto_aof_rewrite_percentage: 100,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            maxclients: 10_000,
            timeout: 0,
            tcp_keepalive: 300,
            tcp_backlog: 511,
            hz: 10,
            busy_poll_us: 100,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            repl_backlog_size: 16 * 1024 * 1024,
            threads: 0,
            geo_port: 0,
            peers: Vec::new(),
            topology: Topology::Mesh,
            cluster_id: "meridian".into(),
            node_name: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            peer_gc_timeout: 3600,
            conflict_log_max_len: 128,
            test_clock_offset_ms: 0,
            config_file: None,
            accept_peers: Vec::new(),
            ignored_env: Vec::new(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The option is not one Meridian knows.
    #[error("unknown option '{0}'")]
    Unknown(String),
    /// The value is not valid for the option.
    #[error("invalid value for '{name}': {reason}")]
    Invalid {
        /// The option.
        name: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// The option can only be set at startup.
    #[error("'{0}' can only be set at startup")]
    Immutable(String),
    /// A config file line could not be read.
    #[error("{file}:{line}: {source}")]
    File {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What went wrong there.
        source: Box<ConfigError>,
    },
    /// The config file could not be opened.
    #[error("cannot read config file '{file}': {reason}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// A command-line argument is not `--option value...`.
    #[error("unexpected argument '{0}' (options are written --name value)")]
    Argument(String),
}

/// One configurable option.
struct OptionSpec {
    name: &'static str,
    /// Can `CONFIG SET` change it while running?
    mutable: bool,
    set: fn(&mut Config, &[String]) -> Result<(), String>,
    get: fn(&Config) -> String,
}

fn one(values: &[String]) -> Result<&str, String> {
    match values {
        [v] => Ok(v),
        _ => Err(format!("expects exactly one value, got {}", values.len())),
    }
}

// Reasons are worded as Redis words them, since CONFIG SET replies carry them.

fn integer(values: &[String], min: u64, max: u64) -> Result<u64, String> {
    let n = one(values)?.parse::<i128>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    match u64::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("argument must be between {min} and {max} inclusive")),
    }
}

fn yes_no(values: &[String]) -> Result<bool, String> {
    match one(values)?.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn choice<T: Copy>(values: &[String], names: &[(&str, T)]) -> Result<T, String> {
    let v = one(values)?.to_ascii_lowercase();
    names.iter().find(|(n, _)| *n == v).map(|(_, t)| *t).ok_or_else(|| {
        let all: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
        format!("argument(s) must be one of the following: {}", all.join(", "))
    })
}

fn name_of<T: PartialEq>(value: T, names: &[(&'static str, T)]) -> String {
    names.iter().find(|(_, t)| *t == value).map(|(n, _)| n.to_string()).unwrap_or_default()
}

/// Parses a memory amount the way Redis's `memtoll` does: `1024`, `100k` (1000), `100kb`
/// (1024), `m`/`mb`, `g`/`gb`, case-insensitive.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn memory(values: &[String]) -> Result<u64, String> {
    let v = one(values)?;
    parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())
}

/// A memory amount of at least `min` bytes (`min_text` says it in Redis's units).
fn memory_at_least(values: &[String], min: u64, min_text: &str) -> Result<u64, String> {
    let n = memory(values)?;
    if n < min {
        return Err(format!("must be at least {min_text}"));
    }
    Ok(n)
}

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "port",
        mutable: false,
        set: |c, v| {
            c.port = integer(v, 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.port.to_string(),
    },
    OptionSpec {
        name: "bind",
        mutable: false,
        set: |c, v| {
            if v.is_empty() {
                return Err("expects at least one address".into());
            }
            c.bind = v.to_vec();
            Ok(())
        },
        get: |c| c.bind.join(" "),
    },
    OptionSpec {
        name: "requirepass",
        mutable: true,
        set: |c, v| {
            c.requirepass = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.requirepass.clone(),
    },
    OptionSpec {
        name: "dir",
        mutable: false,
        set: |c, v| {
            c.dir = PathBuf::from(one(v)?);
            Ok(())
        },
        get: |c| c.dir.display().to_string(),
    },
    OptionSpec {
        name: "maxmemory",
        mutable: true,
        set: |c, v| {
            c.maxmemory = memory(v)?;
            Ok(())
        },
        get: |c| c.maxmemory.to_string(),
    },
    OptionSpec {
        name: "maxmemory-policy",
        mutable: true,
        set: |c, v| {
            c.maxmemory_policy = Some(choice(v, &MaxmemoryPolicy::NAMES)?);
            Ok(())
        },
        get: |c| c.policy().name(),
    },
    OptionSpec {
        name: "lfu-log-factor",
        mutable: true,
        set: |c, v| {
            c.lfu_log_factor = integer(v, 0, i32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.lfu_log_factor.to_string(),
    },
    OptionSpec {
        name: "lfu-decay-time",
        mutable: true,
        set: |c, v| {
            c.lfu_decay_time = integer(v, 0, i32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.lfu_decay_time.to_string(),
    },
    OptionSpec {
        name: "appendonly",
        mutable: false,
        set: |c, v| {
            c.appendonly = yes_no(v)?;
            Ok(())
        },
        get: |c| if c.appendonly { "yes".into() } else { "no".into() },
    },
    OptionSpec {
        name: "appendfsync",
        mutable: true,
        set: |c, v| {
            c.appendfsync = choice(v, &AppendFsync::NAMES)?;
            Ok(())
        },
        get: |c| c.appendfsync.name(),
    },
    OptionSpec {
        name: "auto-aof-rewrite-min-size",
        mutable: true,
        set: |c, v| {
            c.auto_aof_rewrite_min_size = memory(v)?;
            Ok(())
        },
        get: |c| c.auto_aof_rewrite_min_size.to_string(),
    },
    OptionSpec {
        name: "auto-aof-rewrite-percentage",
        mutable: true,
        set: |c, v| {
            c.auto_aof_rewrite_percentage = integer(v, 0, i32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.auto_aof_rewrite_percentage.to_string(),
    },
    OptionSpec {
        name: "loglevel",
        mutable: true,
        set: |c, v| {
            c.loglevel = choice(v, &LogLevel::NAMES)?;
            Ok(())
        },
        get: |c| name_of(c.loglevel, &LogLevel::NAMES),
    },
    OptionSpec {
        name: "logfile",
        mutable: false,
        set: |c, v| {
            c.logfile = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.logfile.clone(),
    },
    OptionSpec {
        name: "maxclients",
        mutable: true,
        set: |c, v| {
            c.maxclients = integer(v, 1, 1_000_000)?;
            Ok(())
        },
        get: |c| c.maxclients.to_string(),
    },
    OptionSpec {
        name: "timeout",
        mutable: true,
        set: |c, v| {
            c.timeout = integer(v, 0, i32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.timeout.to_string(),
    },
    OptionSpec {
        name: "tcp-keepalive",
        mutable: true,
        set: |c, v| {
            c.tcp_keepalive = integer(v, 0, i32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.tcp_keepalive.to_string(),
    },
    OptionSpec {
        name: "tcp-backlog",
        mutable: false,
        set: |c, v| {
            c.tcp_backlog = integer(v, 1, 65535)?;
            Ok(())
        },
        get: |c| c.tcp_backlog.to_string(),
    },
    OptionSpec {
        name: "hz",
        mutable: true,
        set: |c, v| {
            c.hz = integer(v, 1, 500)?;
            Ok(())
        },
        get: |c| c.hz.to_string(),
    },
    OptionSpec {
        name: "busy-poll-us",
        mutable: true,
        set: |c, v| {
            c.busy_poll_us = integer(v, 0, 10_000)?;
            Ok(())
        },
        get: |c| c.busy_poll_us.to_string(),
    },
    OptionSpec {
        name: "proto-max-bulk-len",
        mutable: true,
        set: |c, v| {
            c.proto_max_bulk_len = memory_at_least(v, 1024 * 1024, "1mb")?;
            Ok(())
        },
        get: |c| c.proto_max_bulk_len.to_string(),
    },
    OptionSpec {
        name: "client-query-buffer-limit",
        mutable: true,
        set: |c, v| {
            c.client_query_buffer_limit = memory_at_least(v, 1024 * 1024, "1mb")?;
            Ok(())
        },
        get: |c| c.client_query_buffer_limit.to_string(),
    },
    OptionSpec {
        name: "repl-backlog-size",
        mutable: true,
        set: |c, v| {
            c.repl_backlog_size = memory_at_least(v, 16 * 1024, "16kb")?;
            Ok(())
        },
        get: |c| c.repl_backlog_size.to_string(),
    },
    OptionSpec {
        name: "threads",
        mutable: false,
        set: |c, v| {
            c.threads = integer(v, 0, 256)?;
            Ok(())
        },
        get: |c| c.threads.to_string(),
    },
    OptionSpec {
        name: "geo-port",
        mutable: false,
        set: |c, v| {
            c.geo_port = integer(v, 0, 65535)? as u16;
            Ok(())
        },
        get: |c| c.geo_port.to_string(),
    },
    // Repeatable: every occurrence (in the file, the environment and flags) adds peers.
    OptionSpec {
        name: "peer",
        mutable: false,
        set: |c, v| {
            for peer in v {
                let (host, port) = peer.rsplit_once(':').ok_or_else(|| format!("'{peer}' is not host:port"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(format!("'{peer}' is not host:port"));
                }
                c.peers.push(peer.clone());
            }
            Ok(())
        },
        get: |c| c.peers.join(" "),
    },
    // Repeatable, as `peer`.
    OptionSpec {
        name: "accept-peer",
        mutable: false,
        set: |c, v| {
            c.accept_peers.extend(v.iter().filter(|name| !name.is_empty()).cloned());
            Ok(())
        },
        get: |c| c.accept_peers.join(" "),
    },
    OptionSpec {
        name: "topology",
        mutable: false,
        set: |c, v| {
            c.topology = choice(v, &[("mesh", Topology::Mesh), ("ring", Topology::Ring)])?;
            Ok(())
        },
        get: |c| match c.topology {
            Topology::Mesh => "mesh".into(),
            Topology::Ring => "ring".into(),
        },
    },
    OptionSpec {
        name: "cluster-id",
        mutable: false,
        set: |c, v| {
            c.cluster_id = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.cluster_id.clone(),
    },
    OptionSpec {
        name: "node-name",
        mutable: false,
        set: |c, v| {
            c.node_name = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.node_name.clone(),
    },
    OptionSpec {
        name: "tls-cert",
        mutable: false,
        set: |c, v| {
            c.tls_cert = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls_cert.clone(),
    },
    OptionSpec {
        name: "tls-key",
        mutable: false,
        set: |c, v| {
            c.tls_key = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls_key.clone(),
    },
    OptionSpec {
        name: "tls-ca",
        mutable: false,
        set: |c, v| {
            c.tls_ca = one(v)?.to_string();
            Ok(())
        },
        get: |c| c.tls_ca.clone(),
    },
    OptionSpec {
        name: "peer-gc-timeout",
        mutable: true,
        set: |c, v| {
            c.peer_gc_timeout = integer(v, 1, u32::MAX as u64)?;
            Ok(())
        },
        get: |c| c.peer_gc_timeout.to_string(),
    },
    OptionSpec {
        name: "conflict-log-max-len",
        mutable: true,
        set: |c, v| {
            c.conflict_log_max_len = integer(v, 0, 1_000_000)?;
            Ok(())
        },
        get: |c| c.conflict_log_max_len.to_string(),
    },
    OptionSpec {
        name: "test-clock-offset-ms",
        mutable: false,
        set: |c, v| {
            let ms = one(v)?.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if ms.unsigned_abs() > 365 * 24 * 3600 * 1000 {
                return Err("argument must be within a year (31536000000 ms) either way".into());
            }
            c.test_clock_offset_ms = ms;
            Ok(())
        },
        get: |c| c.test_clock_offset_ms.to_string(),
    },
    // Redis's RDB option. Meridian writes no RDB files (its durability is the flash tier's op
    // log and checkpoints, under `appendonly`), so only the value meaning "off" is accepted;
    // tools such as redis-benchmark read it with CONFIG GET.
    OptionSpec {
        name: "save",
        mutable: true,
        set: |_, v| match v.iter().all(|s| s.is_empty()) {
            true => Ok(()),
            false => Err("Meridian writes no RDB snapshots; only save \"\" is accepted".into()),
        },
        get: |_| String::new(),
    },
    OptionSpec { name: "databases", mutable: false, set: |_, v| integer(v, 1, 1).map(|_| ()).map_err(|_| "Meridian has one database, db 0".into()), get: |_| "1".into() },
];

fn spec(name: &str) -> Result<&'static OptionSpec, ConfigError> {
    let lower = name.to_ascii_lowercase();
    OPTIONS.iter().find(|o| o.name == lower).ok_or(ConfigError::Unknown(name.to_string()))
}

impl Config {
    /// Sets an option by name, at startup (any option) or at runtime (`runtime`: only mutable
    /// ones).
    pub fn set(&mut self, name: &str, values: &[String], runtime: bool) -> Result<(), ConfigError> {
        let spec = spec(name)?;
        if runtime && !spec.mutable {
            return Err(ConfigError::Immutable(spec.name.to_string()));
        }
        (spec.set)(self, values).map_err(|reason| ConfigError::Invalid { name: spec.name.to_string(), reason })
    }

    /// `(name, value)` of every option whose name matches the glob `pattern`, as CONFIG GET.
    pub fn get(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        OPTIONS.iter().filter(|o| glob_match(pattern, o.name.as_bytes(), true)).map(|o| (o.name, (o.get)(self))).collect()
    }

    /// Applies a redis.conf-style text: `name value...` per line, `#` comments.
    pub fn apply_file_text(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let at = |source| ConfigError::File { file: file.to_string(), line: i + 1, source: Box::new(source) };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let words = split_args(trimmed.as_bytes()).ok_or_else(|| at(ConfigError::Invalid { name: trimmed.to_string(), reason: "unbalanced quotes".into() }))?;
            let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            self.set(&words[0], &words[1..], false).map_err(at)?;
        }
        Ok(())
    }

    /// Applies `MERIDIAN_<OPTION>` variables (`MERIDIAN_MAXMEMORY=1gb`, dashes as underscores).
    /// A variable that names no option is not an error: the environment is shared with other
    /// programs, so it is kept in [`Config::ignored_env`] for a warning.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("MERIDIAN_") else { continue };
            let name = name.to_ascii_lowercase().replace('_', "-");
            if spec(&name).is_err() {
                self.ignored_env.push(key);
                continue;
            }
            let values = split_args(value.as_bytes()).ok_or_else(|| ConfigError::Invalid { name: name.clone(), reason: "unbalanced quotes".into() })?;
            let values: Vec<String> = values.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            let values = if values.is_empty() { vec![String::new()] } else { values };
            self.set(&name, &values, false)?;
        }
        Ok(())
    }

    /// Applies `--name value...` flags; each option takes the words up to the next `--`.
    pub fn apply_flags(&mut self, args: &[String]) -> Result<(), ConfigError> {
        let mut i = 0;
        while i < args.len() {
            let Some(name) = args[i].strip_prefix("--") else {
                return Err(ConfigError::Argument(args[i].clone()));
            };
            let end = args[i + 1..].iter().position(|a| a.starts_with("--")).map_or(args.len(), |p| i + 1 + p);
            let values = &args[i + 1..end];
            let values = if values.is_empty() { vec![String::new()] } else { values.to_vec() };
            self.set(name, &values, false)?;
            i = end;
        }
        Ok(())
    }

    /// Builds the startup configuration from `meridian [config-file] [--name value ...]` and
    /// the environment.
    pub fn from_args(args: &[String], env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut flags = args;
        if let Some(first) = args.first().filter(|a| !a.starts_with("--")) {
            let text = std::fs::read_to_string(first).map_err(|e| ConfigError::Io { file: first.clone(), reason: e.to_string() })?;
            config.apply_file_text(&text, first)?;
            config.config_file = Some(PathBuf::from(first));
            flags = &args[1..];
        }
        config.apply_env(env)?;
        config.apply_flags(flags)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn file_then_env_then_flags() {
        let mut c = Config::default();
        c.apply_file_text("# comment\nport 7000\nmaxmemory 100mb\nbind 0.0.0.0 \"::1\"\n", "x.conf").unwrap();
        assert_eq!((c.port, c.maxmemory), (7000, 100 * 1024 * 1024));
        assert_eq!(c.bind, strings(&["0.0.0.0", "::1"]));
        c.apply_env([("MERIDIAN_PORT".to_string(), "7001".to_string()), ("HOME".into(), "/".into())]).unwrap();
        assert_eq!(c.port, 7001);
        c.apply_flags(&strings(&["--port", "7002", "--requirepass", "s3cret"])).unwrap();
        assert_eq!((c.port, c.requirepass.as_str()), (7002, "s3cret"));
    }

    #[test]
    fn bad_configuration_is_a_clear_error() {
        let mut c = Config::default();
        let err = c.apply_file_text("port 7000\nbogus 1\n", "x.conf").unwrap_err();
        assert_eq!(err.to_string(), "x.conf:2: unknown option 'bogus'");
        let err = c.apply_flags(&strings(&["--port", "99999"])).unwrap_err();
        assert_eq!(err.to_string(), "invalid value for 'port': argument must be between 0 and 65535 inclusive");
        assert!(c.apply_flags(&strings(&["port", "1"])).is_err());
        assert!(c.apply_env([("MERIDIAN_PORT".to_string(), "x".to_string())]).is_err(), "a known option's bad value is an error");
        c.apply_env([("MERIDIAN_WRAPPER_HOME".to_string(), "/opt".to_string())]).unwrap();
        assert_eq!(c.ignored_env, ["MERIDIAN_WRAPPER_HOME"], "a variable naming no option is kept for a warning");
        assert!(c.set("maxmemory", &strings(&["lots"]), false).is_err());
        assert_eq!(c.set("port", &strings(&["1"]), true), Err(ConfigError::Immutable("port".into())));
    }

    #[test]
    fn peers_accumulate_and_are_checked() {
        let mut c = Config::default();
        c.apply_file_text("peer a:7000\n", "x.conf").unwrap();
        c.apply_flags(&strings(&["--peer", "b:7000", "c:7001", "--peer", "[::1]:7002", "--topology", "ring"])).unwrap();
        assert_eq!(c.peers, strings(&["a:7000", "b:7000", "c:7001", "[::1]:7002"]));
        assert_eq!(c.topology, Topology::Ring);
        assert!(c.apply_flags(&strings(&["--peer", "nohost"])).is_err());
        assert!(c.apply_flags(&strings(&["--peer", "h:notaport"])).is_err());
        assert!(c.apply_flags(&strings(&["--topology", "star"])).is_err());
    }

    #[test]
    fn memory_units_follow_redis() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn config_get_matches_globs() {
        let c = Config::default();
        let names: Vec<&str> = c.get(b"max*").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["maxmemory", "maxmemory-policy", "maxclients"]);
        assert_eq!(c.get(b"save"), vec![("save", String::new())]);
    }
}
