//! The order connections blocked in a pop (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH) are served in:
//! first blocked, first served, per key, as Redis serves them. Every push wakes every blocked
//! connection; each retries its command only on the keys no connection blocked before it is
//! waiting on, so of two clients waiting on one list the older gets the element. When a
//! connection stops waiting (it popped, timed out or went away) the others are woken again,
//! since one of them may now be first in line.
//!
//! Pure bookkeeping; the connection (`net::connection`) does the waking.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The blocked connections, by ticket (the order they blocked in), with the keys each waits on.
#[derive(Default)]
pub struct PopQueue {
    inner: Mutex<Waiting>,
    /// How many wait, readable without the lock: every list push asks.
    count: AtomicUsize,
}

#[derive(Default)]
struct Waiting {
    next_ticket: u64,
    keys: BTreeMap<u64, Vec<Vec<u8>>>,
}

impl PopQueue {
    /// Puts a connection waiting on `keys` at the back of the line; returns its ticket.
    pub fn enter(&self, keys: Vec<Vec<u8>>) -> u64 {
        let mut waiting = self.inner.lock();
        let ticket = waiting.next_ticket;
        waiting.next_ticket += 1;
        waiting.keys.insert(ticket, keys);
        self.count.fetch_add(1, Ordering::AcqRel);
        ticket
    }

    /// Takes the connection with `ticket` out of the line.
    pub fn leave(&self, ticket: u64) {
        if self.inner.lock().keys.remove(&ticket).is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// True if any connection is blocked in a pop (a push then wakes them).
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// The keys of `ticket` that a connection blocked before it also waits on: it must leave
    /// them to that one.
    pub fn taken_before(&self, ticket: u64) -> Vec<Vec<u8>> {
        let waiting = self.inner.lock();
        let Some(mine) = waiting.keys.get(&ticket) else { return Vec::new() };
        mine.iter().filter(|key| waiting.keys.range(..ticket).any(|(_, older)| older.contains(key))).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_first_blocked_on_a_key_has_it_until_it_leaves() {
        let queue = PopQueue::default();
        let first = queue.enter(keys(&["a"]));
        let second = queue.enter(keys(&["b", "a"]));
        let third = queue.enter(keys(&["a", "c"]));
        assert!(queue.any());
        assert!(queue.taken_before(first).is_empty());
        assert_eq!(queue.taken_before(second), keys(&["a"]), "b is free, a is the first's");
        assert_eq!(queue.taken_before(third), keys(&["a"]));
        queue.leave(first);
        assert!(queue.taken_before(second).is_empty());
        assert_eq!(queue.taken_before(third), keys(&["a"]), "now the second's");
        queue.leave(second);
        assert!(queue.taken_before(third).is_empty());
        queue.leave(third);
        assert!(queue.taken_before(third).is_empty(), "a ticket that left waits on nothing");
        assert!(!queue.any());
    }
}
