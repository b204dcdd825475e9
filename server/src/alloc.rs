//! Memory accounting: a global allocator that counts the bytes it hands out, so `INFO memory`
//! reports `used_memory` as Redis does (allocator-usable bytes, not requested bytes).
//!
//! Each thread batches its count and publishes it in 64 KiB steps, so the hot path touches no
//! shared cache line.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The counting allocator; installed in `main`.
pub struct CountingAllocator;

static PUBLISHED: AtomicIsize = AtomicIsize::new(0);
const BATCH: isize = 64 * 1024;

thread_local! {
    static UNPUBLISHED: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let published = UNPUBLISHED.try_with(|cell| {
        let pending = cell.get() + delta;
        if pending.abs() >= BATCH {
            PUBLISHED.fetch_add(pending, Ordering::Relaxed);
            cell.set(0);
        } else {
            cell.set(pending);
        }
    });
    if published.is_err() {
        PUBLISHED.fetch_add(delta, Ordering::Relaxed);
    }
}

fn usable(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` was returned by the system allocator and not yet freed.
    unsafe { libc::malloc_usable_size(ptr.cast()) as isize }
}

// SAFETY: every call is forwarded to `System`; the bookkeeping never touches the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            account(usable(ptr));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            account(usable(ptr));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-usable(ptr));
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = usable(ptr);
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            account(usable(new) - before);
        }
        new
    }
}

/// Bytes currently allocated by the process (within a few batches per thread).
pub fn used_memory() -> u64 {
    PUBLISHED.load(Ordering::Relaxed).max(0) as u64
}

/// Resident set size of the process, from /proc.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}
