//! State shared by every connection and background task.

use crate::clients::Clients;
use crate::config::{Config, LogLevel};
use crate::conflicts::Conflicts;
use crate::keyspace::Keyspace;
use crate::node::{Node, WriteStability};
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::stats::Stats;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::watch;

/// Changes the log level at runtime (CONFIG SET loglevel).
pub type LogControl = Box<dyn Fn(LogLevel) + Send + Sync>;

/// Settings read on every request, kept as atomics beside the configuration so the request
/// path takes no lock.
#[derive(Debug, Default)]
pub struct HotConfig {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: AtomicU64,
    /// `timeout` in seconds.
    pub timeout: AtomicU64,
    /// `maxmemory` in bytes.
    pub maxmemory: AtomicU64,
    /// `busy-poll-us`: the longest the event loop polls before it sleeps.
    pub busy_poll_us: AtomicU64,
}

impl HotConfig {
    fn load_from(&self, config: &Config) {
        self.proto_max_bulk_len.store(config.proto_max_bulk_len, Ordering::Relaxed);
        self.client_query_buffer_limit.store(config.client_query_buffer_limit, Ordering::Relaxed);
        self.timeout.store(config.timeout, Ordering::Relaxed);
        self.maxmemory.store(config.maxmemory, Ordering::Relaxed);
        self.busy_poll_us.store(config.busy_poll_us, Ordering::Relaxed);
    }

    /// Reads one of the settings.
    pub fn get(value: &AtomicU64) -> u64 {
        value.load(Ordering::Relaxed)
    }
}

/// Everything a command may read or change beyond its own connection.
pub struct Shared {
    /// The data.
    pub keyspace: Keyspace,
    /// Identity, clock and op log.
    pub node: Node,
    /// Current configuration; change it with [`Shared::set_config`].
    pub config: RwLock<Config>,
    /// The settings of `config` read on every request.
    pub hot: HotConfig,
    /// Connected clients.
    pub clients: Clients,
    /// Counters for INFO.
    pub stats: Stats,
    /// When the server started.
    pub started: Instant,
    /// Random id of this process run (INFO run_id).
    pub run_id: String,
    /// Becomes true when the server should shut down.
    pub shutdown: watch::Sender<bool>,
    /// Applies a new log level.
    pub log_control: LogControl,
    /// Geo replication, when peers or a geo port are configured.
    pub replication: Option<Replication>,
    /// Conflicts settled applying peers' ops.
    pub conflicts: Conflicts,
    /// Pub/sub subscriptions.
    pub pubsub: PubSub,
    /// Spill, promotion and eviction figures.
    pub reclaim: crate::reclaim::ReclaimStats,
    /// Keeps the event loop polling for a moment before it sleeps.
    pub idle_poll: crate::net::IdlePoll,
}

impl Shared {
    /// Shared state for a server with this configuration and node, with cold keys in `cold`
    /// if the flash tier is open.
    pub fn new(config: Config, node: Node, cold: Option<crate::keyspace::ColdTier>, log_control: LogControl) -> Shared {
        let run_id = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
        let hot = HotConfig::default();
        hot.load_from(&config);
        let replication = config.replicates().then(|| {
            // A node's name is the one its certificate proves; `node-name` must agree with it
            // (checked when replication starts) and may be left out.
            let certified = crate::replication::tls::certified_name_in(&config.tls_cert);
            let name = match (config.node_name.is_empty(), certified) {
                (true, Some(certified)) => certified,
                (true, None) => node.node_id().to_string(),
                (false, _) => config.node_name.clone(),
            };
            let gc_timeout = std::time::Duration::from_secs(config.peer_gc_timeout);
            Replication::new(config.cluster_id.clone(), name, config.topology, &config.peers, config.accept_peers.clone(), gc_timeout)
        });
        let keyspace = Keyspace::new(node.id(), node.hash_seed(), cold);
        keyspace.lfu.set(config.lfu_log_factor, config.lfu_decay_time);
        Shared {
            keyspace,
            node,
            config: RwLock::new(config),
            hot,
            clients: Clients::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id,
            shutdown: watch::channel(false).0,
            log_control,
            replication,
            conflicts: Conflicts::default(),
            pubsub: PubSub::default(),
            reclaim: Default::default(),
            idle_poll: Default::default(),
        }
    }

    /// What writes may collect as they apply (see [`WriteStability`]).
    pub fn write_stability(&self) -> WriteStability {
        if self.replication.is_some() {
            WriteStability::Replicated
        } else {
            WriteStability::Alone
        }
    }

    /// Tells replication that the op log grew.
    pub fn log_grew(&self) {
        if let Some(replication) = &self.replication {
            replication.log_grew.notify_waiters();
        }
    }

    /// Replaces the configuration at runtime and applies what changed (CONFIG SET).
    pub fn set_config(&self, config: Config) {
        (self.log_control)(config.loglevel);
        self.node.set_log_size(config.op_log_bytes());
        if let Some(durable) = self.node.durable() {
            durable.set_fsync(config.appendfsync);
        }
        if let Some(replication) = &self.replication {
            replication.set_gc_timeout(std::time::Duration::from_secs(config.peer_gc_timeout));
        }
        self.hot.load_from(&config);
        self.keyspace.lfu.set(config.lfu_log_factor, config.lfu_decay_time);
        *self.config.write() = config;
    }

    /// Asks every task to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
