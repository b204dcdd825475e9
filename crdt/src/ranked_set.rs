//! An ordered set that also answers by position: how many entries come before a value, and
//! the entries from position `i` on, both in O(log n). Sorted sets need it: ZRANK, ZRANGE by
//! rank, ZCOUNT and ZREMRANGEBYRANK on a set of millions must not walk it from one end, and a
//! B-tree without subtree counts can only walk.
//!
//! The entries sit in sorted chunks of at most `CHUNK` (a chunk is one allocation, so the
//! overhead per entry is about a B-tree's), and a Fenwick tree over the chunk lengths turns a
//! position into (chunk, offset) and back. A chunk that fills splits in two, except at the
//! ends of the set, where a new chunk starts: entries added in order fill their chunks.

use std::ops::Range;

/// An ordered set of distinct `T`s with position queries.
#[derive(Clone, Debug)]
pub struct RankedSet<T, const CHUNK: usize = 512> {
    /// Non-empty, sorted, each after the one before.
    chunks: Vec<Vec<T>>,
    lengths: Fenwick,
}

impl<T, const CHUNK: usize> Default for RankedSet<T, CHUNK> {
    fn default() -> Self {
        RankedSet { chunks: Vec::new(), lengths: Fenwick::default() }
    }
}

impl<T: Ord, const CHUNK: usize> RankedSet<T, CHUNK> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lengths.before(self.chunks.len())
    }

    /// The first chunk whose last entry `before` rejects (`chunks.len()` if none).
    fn first_chunk_not(&self, before: impl Fn(&T) -> bool) -> usize {
        self.chunks.partition_point(|chunk| before(chunk.last().expect("chunks are never empty")))
    }

    /// The chunk `value` belongs in: the first whose last entry is not below it, else the
    /// last one. The set has a chunk.
    fn chunk_for(&self, value: &T) -> usize {
        self.first_chunk_not(|entry| entry < value).min(self.chunks.len() - 1)
    }

    /// How many entries are below `value` (its position, if it is in the set).
    pub fn position(&self, value: &T) -> usize {
        self.partition_point(|entry| entry < value)
    }

    /// How many entries come before the first for which `before` is false, `before` being
    /// true for a prefix of the set and false after it (as for `slice::partition_point`).
    pub fn partition_point(&self, before: impl Fn(&T) -> bool) -> usize {
        let chunk = self.first_chunk_not(&before);
        self.lengths.before(chunk) + self.chunks.get(chunk).map_or(0, |entries| entries.partition_point(before))
    }

    /// Adds `value`; false if it was there.
    pub fn insert(&mut self, value: T) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![value]);
            self.lengths.rebuild(&self.chunks);
            return true;
        }
        let index = self.chunk_for(&value);
        let chunk = &mut self.chunks[index];
        let Err(at) = chunk.binary_search(&value) else { return false };
        if chunk.len() < CHUNK {
            chunk.insert(at, value);
            self.lengths.add(index, 1);
            return true;
        }
        let last = index + 1 == self.chunks.len();
        if at == CHUNK && last {
            self.chunks.push(vec![value]);
        } else if at == 0 && index == 0 {
            self.chunks.insert(0, vec![value]);
        } else {
            let chunk = &mut self.chunks[index];
            let mut tail = chunk.split_off(CHUNK / 2);
            match at.checked_sub(CHUNK / 2) {
                Some(in_tail) => tail.insert(in_tail, value),
                None => chunk.insert(at, value),
            }
            self.chunks.insert(index + 1, tail);
        }
        self.lengths.rebuild(&self.chunks);
        true
    }

    /// Removes `value`; false if it was not there.
    pub fn remove(&mut self, value: &T) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let index = self.chunk_for(value);
        let chunk = &mut self.chunks[index];
        let Ok(at) = chunk.binary_search(value) else { return false };
        chunk.remove(at);
        if chunk.len() >= CHUNK / 4 {
            self.lengths.add(index, -1);
            return true;
        }
        // A chunk a quarter full joins a neighbour it fits in, so removals leave no trail of
        // near-empty allocations behind.
        let fits = |other: &Vec<T>| other.len() + self.chunks[index].len() <= CHUNK;
        if self.chunks.get(index + 1).is_some_and(fits) {
            let next = self.chunks.remove(index + 1);
            self.chunks[index].extend(next);
        } else if index > 0 && fits(&self.chunks[index - 1]) {
            let emptied = self.chunks.remove(index);
            self.chunks[index - 1].extend(emptied);
        } else if self.chunks[index].is_empty() {
            self.chunks.remove(index);
        } else {
            // The chunks stay as they are: only this one's length changes.
            let chunk = &mut self.chunks[index];
            if chunk.len() < chunk.capacity() / 4 {
                chunk.shrink_to(chunk.capacity() / 2);
            }
            self.lengths.add(index, -1);
            return true;
        }
        self.lengths.rebuild(&self.chunks);
        true
    }

    /// The entries at positions `positions` (clamped to the set), in order.
    pub fn range(&self, positions: Range<usize>) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let end = positions.end.min(self.len());
        let (first, first_at) = self.lengths.locate(positions.start.min(end));
        let (last, last_at) = self.lengths.locate(end);
        let chunk_end = if last_at == 0 { last } else { last + 1 };
        (first..chunk_end).flat_map(move |index| {
            let chunk = &self.chunks[index];
            let from = if index == first { first_at } else { 0 };
            let to = if index == last { last_at } else { chunk.len() };
            chunk[from..to].iter()
        })
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }
}

impl<T: Ord, const CHUNK: usize> FromIterator<T> for RankedSet<T, CHUNK> {
    /// The set of the entries of `items`, in full chunks.
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut sorted: Vec<T> = items.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut chunks = Vec::with_capacity(sorted.len().div_ceil(CHUNK));
        let mut entries = sorted.into_iter().peekable();
        while entries.peek().is_some() {
            chunks.push(entries.by_ref().take(CHUNK).collect::<Vec<T>>());
        }
        let mut lengths = Fenwick::default();
        lengths.rebuild(&chunks);
        RankedSet { chunks, lengths }
    }
}

/// A Fenwick (binary indexed) tree of chunk lengths: prefix sums and their inverse in
/// O(log chunks), one length changed in O(log chunks).
#[derive(Clone, Debug, Default)]
struct Fenwick {
    /// 1-based: `tree[i]` sums the lengths of chunks `i - lowbit(i) .. i`.
    tree: Vec<usize>,
}

impl Fenwick {
    fn chunks(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    /// Rebuilds the tree for `chunks` (O(chunks)).
    fn rebuild<T>(&mut self, chunks: &[Vec<T>]) {
        self.tree.clear();
        self.tree.push(0);
        self.tree.extend(chunks.iter().map(Vec::len));
        let n = self.chunks();
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                self.tree[parent] += self.tree[i];
            }
        }
    }

    /// Adds `delta` to chunk `chunk`'s length.
    fn add(&mut self, chunk: usize, delta: isize) {
        let mut i = chunk + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// The total length of the chunks before `chunk`.
    fn before(&self, chunk: usize) -> usize {
        let (mut i, mut sum) = (chunk, 0);
        while i > 0 {
            sum += self.tree[i];
            i &= i - 1;
        }
        sum
    }

    /// Where position `position` falls: (chunk, offset in it); `(chunks, 0)` at the end.
    fn locate(&self, mut position: usize) -> (usize, usize) {
        let n = self.chunks();
        let (mut chunk, mut step) = (0, if n == 0 { 0 } else { 1 << n.ilog2() });
        while step > 0 {
            if chunk + step <= n && self.tree[chunk + step] <= position {
                chunk += step;
                position -= self.tree[chunk];
            }
            step >>= 1;
        }
        (chunk, position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Chunks of 8, so a few hundred entries split and merge chunks many times over.
    type Small = RankedSet<u16, 8>;

    fn agrees(set: &Small, model: &BTreeSet<u16>) -> Result<(), TestCaseError> {
        prop_assert_eq!(set.len(), model.len());
        prop_assert!(set.iter().eq(model.iter()));
        prop_assert!(set.iter().rev().eq(model.iter().rev()));
        for probe in [0u16, 1, 50, 199, 200, 400, u16::MAX] {
            prop_assert_eq!(set.position(&probe), model.range(..probe).count(), "position of {}", probe);
            prop_assert_eq!(set.partition_point(|&e| e / 3 <= probe / 3), model.iter().filter(|&&e| e / 3 <= probe / 3).count());
        }
        let all: Vec<u16> = model.iter().copied().collect();
        for (start, end) in [(0, all.len()), (3, 17), (all.len() / 2, all.len() + 5), (7, 7), (9, 4)] {
            let expected = all.get(start.min(end.min(all.len()))..end.min(all.len())).unwrap_or(&[]);
            prop_assert!(set.range(start..end).eq(expected.iter()), "range {}..{}", start, end);
            prop_assert!(set.range(start..end).rev().eq(expected.iter().rev()), "reversed range {}..{}", start, end);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn inserts_and_removes_agree_with_a_btreeset(ops in prop::collection::vec((any::<bool>(), 0u16..300), 0..1500), seed in prop::collection::vec(0u16..300, 0..100)) {
            let mut set: Small = seed.iter().copied().collect();
            let mut model: BTreeSet<u16> = seed.iter().copied().collect();
            agrees(&set, &model)?;
            for (i, (add, value)) in ops.into_iter().enumerate() {
                if add {
                    prop_assert_eq!(set.insert(value), model.insert(value));
                } else {
                    prop_assert_eq!(set.remove(&value), model.remove(&value));
                }
                if i % 50 == 0 {
                    agrees(&set, &model)?;
                }
            }
            agrees(&set, &model)?;
        }
    }

    #[test]
    fn entries_added_in_order_fill_whole_chunks() {
        let mut set = RankedSet::<u32, 8>::default();
        (0..80).for_each(|i| assert!(set.insert(i)));
        assert!(set.chunks.iter().all(|c| c.len() == 8), "{:?}", set.chunks);
        (0..80).rev().for_each(|i| assert!(set.insert(1000 - i)));
        assert_eq!(set.chunks.len(), 20);
        assert_eq!(set.position(&1000), 159);
        assert_eq!(set.range(79..82).copied().collect::<Vec<_>>(), [79, 921, 922]);
    }
}
