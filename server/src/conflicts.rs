//! Conflict visibility: per-kind counters for INFO and a bounded log of recent conflicts for
//! CRDT.CONFLICTS, fed by the ops this node applies from its peers.

use meridian_crdt::Conflict;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest key kept in a log entry; longer keys are cut, as SLOWLOG cuts arguments.
const MAX_KEY: usize = 128;

/// One logged conflict.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique, increasing id (as SLOWLOG's).
    pub id: u64,
    /// Unix milliseconds when this node settled it.
    pub unix_ms: u64,
    /// The key (cut to [`MAX_KEY`] bytes, with a note of how much was cut).
    pub key: Box<[u8]>,
    /// What met what, and the rule that settled it.
    pub conflict: Conflict,
}

/// Conflicts settled on this node.
#[derive(Default)]
pub struct Conflicts {
    counts: [AtomicU64; Conflict::KINDS.len()],
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl Conflicts {
    /// Counts a conflict met on `key` and logs it, keeping at most `max_len` entries.
    pub fn record(&self, key: &[u8], conflict: Conflict, unix_ms: u64, max_len: usize) {
        self.counts[conflict.kind_index()].fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock();
        let id = log.next_id;
        log.next_id += 1;
        if max_len == 0 {
            log.entries.clear();
            return;
        }
        log.entries.truncate(max_len - 1);
        log.entries.push_front(Entry { id, unix_ms, key: cut(key), conflict });
    }

    /// Conflicts counted per kind, in [`Conflict::KINDS`] order.
    pub fn counts(&self) -> [u64; Conflict::KINDS.len()] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// The `count` most recent entries, newest first (all of them for `None`).
    pub fn recent(&self, count: Option<usize>) -> Vec<Entry> {
        let log = self.log.lock();
        log.entries.iter().take(count.unwrap_or(usize::MAX)).cloned().collect()
    }

    /// Entries in the log.
    pub fn len(&self) -> usize {
        self.log.lock().entries.len()
    }

    /// Empties the log (the counters keep counting, as Redis's SLOWLOG RESET).
    pub fn reset(&self) {
        self.log.lock().entries.clear();
    }
}

fn cut(key: &[u8]) -> Box<[u8]> {
    if key.len() <= MAX_KEY {
        return key.into();
    }
    let mut cut = key[..MAX_KEY].to_vec();
    cut.extend_from_slice(format!("... ({} more bytes)", key.len() - MAX_KEY).as_bytes());
    cut.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::{DataType, Kept, NodeId, Rule, Stamp};

    fn lww() -> Conflict {
        let (op, other) = (Stamp::new(2, NodeId(1)), Stamp::new(1, NodeId(2)));
        Conflict { data_type: DataType::String, rule: Rule::LwwOverwrite, op, other, kept: Kept::Op }
    }

    #[test]
    fn the_log_keeps_the_newest_entries_and_cuts_long_keys() {
        let conflicts = Conflicts::default();
        for i in 0..5 {
            conflicts.record(format!("k{i}").as_bytes(), lww(), i, 3);
        }
        let recent = conflicts.recent(None);
        assert_eq!(recent.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 3, 2]);
        assert_eq!(conflicts.counts()[0], 5);
        conflicts.record(&[b'x'; 200], lww(), 9, 3);
        let key = &conflicts.recent(Some(1))[0].key;
        assert!(key.ends_with(b"... (72 more bytes)") && key.starts_with(&[b'x'; 128]));
        conflicts.reset();
        assert_eq!((conflicts.len(), conflicts.counts()[0]), (0, 6));
    }
}
