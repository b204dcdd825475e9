//! Memory: jemalloc as the allocator (what Redis links too), its statistics for INFO's
//! `used_memory`, and the process RSS from /proc.
//!
//! jemalloc keeps its own per-thread counts, so accounting costs nothing per allocation.
//! Reading them needs a stats refresh (an `epoch` advance), so the write path's memory check
//! reads a value refreshed every few hundred calls instead.

use std::sync::atomic::{AtomicU64, Ordering};

/// The global allocator, installed in `main`.
pub type Allocator = tikv_jemallocator::Jemalloc;

/// The allocator's name for INFO (`mem_allocator`).
pub const ALLOCATOR_NAME: &str = "jemalloc-5.3.0";

/// Bytes currently allocated by the process, freshly read from jemalloc.
pub fn used_memory() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let used = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
    CACHED.store(used, Ordering::Relaxed);
    used
}

static CACHED: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);
/// How many fast reads share one refresh.
const REFRESH_EVERY: u64 = 256;

/// Bytes allocated, refreshed every [`REFRESH_EVERY`] calls: for checks on the write path.
pub fn used_memory_recent() -> u64 {
    if CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(REFRESH_EVERY) {
        return used_memory();
    }
    CACHED.load(Ordering::Relaxed)
}

/// Resident set size of the process, from /proc.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}
