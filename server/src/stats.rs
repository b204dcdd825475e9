//! Server-wide counters for INFO.
//!
//! Connections count locally and publish per read batch into counters owned by their worker
//! thread, so publishing is a plain load and store on a cache line no other thread writes.
//! INFO sums the threads; RESETSTAT moves a baseline instead of writing other threads' lines.

use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters a connection accumulates between publications; also the shape of the totals.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStats {
    /// Commands executed.
    pub commands: u64,
    /// Key lookups that found the key.
    pub hits: u64,
    /// Key lookups that did not.
    pub misses: u64,
    /// Error replies sent.
    pub errors: u64,
    /// Bytes read from clients.
    pub net_in: u64,
    /// Bytes written to clients.
    pub net_out: u64,
}

impl LocalStats {
    fn fields(&self) -> [u64; 6] {
        [self.commands, self.hits, self.misses, self.errors, self.net_in, self.net_out]
    }

    fn from_fields(f: [u64; 6]) -> Self {
        LocalStats { commands: f[0], hits: f[1], misses: f[2], errors: f[3], net_in: f[4], net_out: f[5] }
    }
}

/// One worker thread's counters; only that thread writes them.
#[derive(Default, Debug)]
struct ThreadCounters([AtomicU64; 6]);

static NEXT_STATS_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's counters, per Stats instance.
    static MINE: RefCell<Vec<(u64, Arc<ThreadCounters>)>> = const { RefCell::new(Vec::new()) };
}

/// Server-wide counters.
#[derive(Debug)]
pub struct Stats {
    id: u64,
    threads: Mutex<Vec<Arc<ThreadCounters>>>,
    baseline: Mutex<LocalStats>,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused (maxclients).
    pub rejected: AtomicU64,
    /// Highest used_memory seen.
    pub peak_memory: AtomicU64,
    /// Operations per second over the last sampling period.
    pub ops_per_sec: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            id: NEXT_STATS_ID.fetch_add(1, Ordering::Relaxed),
            threads: Mutex::default(),
            baseline: Mutex::default(),
            connections: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            peak_memory: AtomicU64::new(0),
            ops_per_sec: AtomicU64::new(0),
        }
    }
}

impl Stats {
    fn mine(&self) -> Arc<ThreadCounters> {
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            if let Some((_, counters)) = mine.iter().find(|(id, _)| *id == self.id) {
                return counters.clone();
            }
            let counters = Arc::new(ThreadCounters::default());
            self.threads.lock().push(counters.clone());
            mine.push((self.id, counters.clone()));
            counters
        })
    }

    /// Adds a connection's local counts to this thread's counters and resets them.
    pub fn publish(&self, local: &mut LocalStats) {
        if *local == LocalStats::default() {
            return;
        }
        let mine = self.mine();
        for (counter, add) in mine.0.iter().zip(local.fields()) {
            counter.store(counter.load(Ordering::Relaxed) + add, Ordering::Relaxed);
        }
        *local = LocalStats::default();
    }

    /// Totals since start (or since the last reset).
    pub fn totals(&self) -> LocalStats {
        let mut sum = [0u64; 6];
        for counters in self.threads.lock().iter() {
            for (total, counter) in sum.iter_mut().zip(counters.0.iter()) {
                *total += counter.load(Ordering::Relaxed);
            }
        }
        let base = self.baseline.lock().fields();
        LocalStats::from_fields(std::array::from_fn(|i| sum[i].saturating_sub(base[i])))
    }

    /// Zeroes the counters CONFIG RESETSTAT resets.
    pub fn reset(&self) {
        let totals = self.totals();
        let mut base = self.baseline.lock();
        *base = LocalStats::from_fields(std::array::from_fn(|i| base.fields()[i] + totals.fields()[i]));
        for c in [&self.connections, &self.rejected] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_publish_and_totals_sum_them() {
        let stats = Arc::new(Stats::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let mut local = LocalStats { commands: 2, hits: 1, ..Default::default() };
                        stats.publish(&mut local);
                        assert_eq!(local, LocalStats::default());
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(stats.totals().commands, 800);
        assert_eq!(stats.totals().hits, 400);
        stats.reset();
        assert_eq!(stats.totals(), LocalStats::default());
        stats.publish(&mut LocalStats { errors: 3, ..Default::default() });
        assert_eq!(stats.totals().errors, 3);
    }
}
