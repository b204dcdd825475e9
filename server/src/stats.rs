//! Server-wide counters for INFO. Connections count locally and publish per read batch, so the
//! per-command path touches no shared cache line.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters a connection accumulates between publications.
#[derive(Default, Debug, Clone, Copy)]
pub struct LocalStats {
    /// Commands executed.
    pub commands: u64,
    /// Key lookups that found the key.
    pub hits: u64,
    /// Key lookups that did not.
    pub misses: u64,
    /// Error replies sent.
    pub errors: u64,
    /// Bytes read from the client.
    pub net_in: u64,
    /// Bytes written to the client.
    pub net_out: u64,
}

/// Server-wide counters.
#[derive(Default, Debug)]
pub struct Stats {
    /// Commands executed.
    pub commands: AtomicU64,
    /// Lookups that found the key.
    pub hits: AtomicU64,
    /// Lookups that did not.
    pub misses: AtomicU64,
    /// Error replies.
    pub errors: AtomicU64,
    /// Bytes read from clients.
    pub net_in: AtomicU64,
    /// Bytes written to clients.
    pub net_out: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused (maxclients).
    pub rejected: AtomicU64,
    /// Highest used_memory seen.
    pub peak_memory: AtomicU64,
    /// Operations per second over the last sampling period.
    pub ops_per_sec: AtomicU64,
}

impl Stats {
    /// Adds a connection's local counts and resets them.
    pub fn publish(&self, local: &mut LocalStats) {
        let add = |counter: &AtomicU64, v: u64| {
            if v != 0 {
                counter.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.commands, local.commands);
        add(&self.hits, local.hits);
        add(&self.misses, local.misses);
        add(&self.errors, local.errors);
        add(&self.net_in, local.net_in);
        add(&self.net_out, local.net_out);
        *local = LocalStats::default();
    }

    /// Zeroes the counters CONFIG RESETSTAT resets.
    pub fn reset(&self) {
        for c in [&self.commands, &self.hits, &self.misses, &self.errors, &self.net_in, &self.net_out, &self.connections, &self.rejected] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
