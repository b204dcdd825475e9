//! A byte-keyed map that keeps its entries in one dense vector and only 4-byte indexes in the
//! hash table.
//!
//! A hash table runs between 44% and 87% full, so a table holding whole entries (a 16-byte
//! key handle plus a 24-48 byte element state) pays for the empty slots at full size. Here the
//! empty slots are 4-byte indexes and the entries sit packed in a vector (removal moves the
//! last entry into the hole), each with its name inline when short ([`ShortBytes`]): a lookup
//! reads the table, one entry and nothing else. Collections of a million members are where
//! this matters: see docs/benchmarks.md.

use crate::short_bytes::ShortBytes;
use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::hash::BuildHasher;
use std::marker::PhantomData;

/// A map from byte strings to `V`, in no particular order.
#[derive(Clone)]
pub struct DenseMap<V> {
    entries: Vec<(ShortBytes, V)>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap { entries: Vec::new(), table: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl<V> DenseMap<V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&i| &*self.entries[i as usize].0 == key).map(|&i| i as usize)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(key).map(|i| &self.entries[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.entries[i].1)
    }

    /// True if `key` has an entry.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// The value of `key`, inserting `V::default()` first if it has none.
    pub fn get_or_default(&mut self, key: &[u8]) -> &mut V
    where
        V: Default,
    {
        let index = self.index_or_insert(key, V::default);
        &mut self.entries[index].1
    }

    /// Sets `key`'s value.
    pub fn insert(&mut self, key: &[u8], value: V) {
        let mut value = Some(value);
        let index = self.index_or_insert(key, || value.take().expect("taken once"));
        if let Some(value) = value {
            self.entries[index].1 = value;
        }
    }

    /// The index of `key`'s entry, made with `make` if it has none.
    fn index_or_insert(&mut self, key: &[u8], make: impl FnOnce() -> V) -> usize {
        let hash = self.hasher.hash_one(key);
        let (entries, hasher) = (&mut self.entries, &self.hasher);
        let index = match self.table.entry(hash, |&i| &*entries[i as usize].0 == key, |&i| hasher.hash_one(&*entries[i as usize].0)) {
            Entry::Occupied(slot) => *slot.get() as usize,
            Entry::Vacant(slot) => {
                let index = entries.len();
                slot.insert(u32::try_from(index).expect("a collection holds fewer than 2^32 members"));
                entries.push((key.into(), make()));
                index
            }
        };
        index
    }

    /// Removes `key`'s entry; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        let index = match self.table.find_entry(hash, |&i| &*entries[i as usize].0 == key) {
            Ok(slot) => slot.remove().0 as usize,
            Err(_) => return None,
        };
        Some(self.take(index))
    }

    /// Removes the entry at `index` (already out of the table), moving the last one into its
    /// place.
    fn take(&mut self, index: usize) -> V {
        let last = self.entries.len() - 1;
        if index != last {
            let moved_hash = self.hasher.hash_one(&*self.entries[last].0);
            let slot = self.table.find_mut(moved_hash, |&i| i as usize == last).expect("every entry is in the table");
            *slot = index as u32;
        }
        self.entries.swap_remove(index).1
    }

    /// The entry at `index` of the vector (below [`DenseMap::len`]): a random index is a
    /// random entry. Indexes change when entries are removed.
    pub fn get_index(&self, index: usize) -> Option<(&[u8], &V)> {
        self.entries.get(index).map(|(k, v)| (&**k, v))
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// Every entry, values to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&[u8], &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&**k, v))
    }

    /// Every value, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        let mut i = 0;
        while i < self.entries.len() {
            let (key, value) = &mut self.entries[i];
            if keep(key, value) {
                i += 1;
                continue;
            }
            let hash = self.hasher.hash_one(&**key);
            if let Ok(slot) = self.table.find_entry(hash, |&j| j as usize == i) {
                slot.remove();
            }
            self.take(i);
        }
        if self.entries.capacity() > 2 * self.entries.len() + 16 {
            self.entries.shrink_to_fit();
            self.table.shrink_to_fit(|&i| self.hasher.hash_one(&*self.entries[i as usize].0));
        }
    }
}

impl<V: PartialEq> PartialEq for DenseMap<V> {
    /// Equal when they hold the same entries, whatever order they were made in.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<V: Eq> Eq for DenseMap<V> {}

impl<V: std::fmt::Debug> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(k, v)| (String::from_utf8_lossy(k), v))).finish()
    }
}

impl<V: Serialize> Serialize for DenseMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(serde_bytes::Bytes::new(k), v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DenseMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = DenseMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of byte strings to member states")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = DenseMap::default();
                while let Some((key, value)) = access.next_entry::<serde_bytes::ByteBuf, V>()? {
                    map.insert(&key, value);
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Inserts, removes and retains agree with a std HashMap, and the map survives a
        /// round trip through MessagePack.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec((0u8..3, 0u8..40, any::<u16>()), 0..300)) {
            let (mut dense, mut model) = (DenseMap::<u16>::default(), HashMap::<Vec<u8>, u16>::new());
            for (op, key, value) in ops {
                let key = vec![key];
                match op {
                    0 => {
                        *dense.get_or_default(&key) = value;
                        model.insert(key, value);
                    }
                    1 => prop_assert_eq!(dense.remove(&key), model.remove(&key)),
                    _ => {
                        dense.retain(|_, v| *v % 3 != value % 3);
                        model.retain(|_, v| *v % 3 != value % 3);
                    }
                }
                prop_assert_eq!(dense.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(dense.get(k), Some(v));
            }
            let back: DenseMap<u16> = rmp_serde::from_slice(&rmp_serde::to_vec(&dense).unwrap()).unwrap();
            prop_assert!(back == dense);
        }
    }
}
