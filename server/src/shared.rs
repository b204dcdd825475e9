//! State shared by every connection and background task.

use crate::clients::Clients;
use crate::config::{Config, LogLevel};
use crate::keyspace::Keyspace;
use crate::node::Node;
use crate::stats::Stats;
use parking_lot::RwLock;
use std::time::Instant;
use tokio::sync::watch;

/// Changes the log level at runtime (CONFIG SET loglevel).
pub type LogControl = Box<dyn Fn(LogLevel) + Send + Sync>;

/// Everything a command may read or change beyond its own connection.
pub struct Shared {
    /// The data.
    pub keyspace: Keyspace,
    /// Identity, clock and op log.
    pub node: Node,
    /// Current configuration.
    pub config: RwLock<Config>,
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
}

impl Shared {
    /// Shared state for a server with this configuration and node.
    pub fn new(config: Config, node: Node, log_control: LogControl) -> Shared {
        let run_id = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
        Shared {
            keyspace: Keyspace::default(),
            node,
            config: RwLock::new(config),
            clients: Clients::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id,
            shutdown: watch::channel(false).0,
            log_control,
        }
    }

    /// Asks every task to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
