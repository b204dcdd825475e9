//! Meridian's flash tier: one RocksDB database per node, in `<dir>/flash`, with three column
//! families.
//!
//! - `log`: the durable op log. Records are opaque bytes keyed by a position that only grows;
//!   the server appends each op it applies, in the order it applied them, and replays the
//!   records after the last checkpoint at start.
//! - `keys`: key states, opaque bytes keyed by `(generation, shard, key)`. Each checkpoint
//!   writes a new generation, shard by shard, each with the log position it covers; the
//!   server switches to it in `meta` once it is complete, so a crash in the middle of a
//!   checkpoint leaves the previous one whole.
//! - `meta`: small named values (the node's origin, the checkpoint base).
//! - `cold`: the keys spilled out of RAM, keyed by `(shard, order, key)`, where `order` is any
//!   32-bit number the server wants cold keys of a shard listed by (SCAN walks them by it).
//!
//! The crate knows nothing of CRDTs: what the bytes mean is the server's business. Writes go
//! to RocksDB's write-ahead log buffer; [`FlashStore::flush_log`] hands it to the operating
//! system (from then on a write survives the process being killed: it is in the page cache),
//! and [`FlashStore::sync`] makes everything written so far durable against a power cut (an
//! `fsync` of the WAL), which is what `appendfsync` schedules.

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, DataBlockIndexType, Direction, ErrorKind, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions, DB,
};
use std::path::{Path, PathBuf};

const LOG: &str = "log";
const KEYS: &str = "keys";
const META: &str = "meta";
const COLD: &str = "cold";

/// Why the flash tier failed.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// RocksDB refused an operation (I/O error, corruption, a lock held by another process).
    #[error("rocksdb at {path}: {source}")]
    Rocks {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// RocksDB found damaged data while opening (a corrupt write-ahead log or table file):
    /// the store is not opened rather than silently losing what follows the damage.
    #[error("rocksdb at {path} is damaged: {source}")]
    Damaged {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The database is closed: a reopen after a failed write did not succeed yet.
    #[error("rocksdb at {path} is closed after a failed write (reopened when the disk allows)")]
    Closed {
        /// The database directory.
        path: PathBuf,
    },
    /// A file of the store could not be copied (salvage keeps a copy of the damaged store).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored record is not what this crate writes.
    #[error("flash tier at {path}: corrupt {what}")]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// Which record.
        what: &'static str,
    },
}

/// Size and activity figures for INFO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashSize {
    /// Bytes of SST files on disk (compressed key states and log records).
    pub sst_bytes: u64,
    /// Bytes in memtables not yet flushed to SST files.
    pub memtable_bytes: u64,
    /// RocksDB's estimate of the number of cold keys.
    pub estimated_keys: u64,
}

/// Where a cold key is stored: shard, order, key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdKey {
    bytes: Vec<u8>,
}

impl ColdKey {
    /// The place of `key` in `shard` at `order`.
    pub fn new(shard: u16, order: u32, key: &[u8]) -> ColdKey {
        let mut bytes = Vec::with_capacity(6 + key.len());
        bytes.extend_from_slice(&shard.to_be_bytes());
        bytes.extend_from_slice(&order.to_be_bytes());
        bytes.extend_from_slice(key);
        ColdKey { bytes }
    }
}

/// One cold key as stored: order, key, value.
pub type StoredCold = (u32, Box<[u8]>, Box<[u8]>);

/// One key state as a checkpoint stored it: shard, key, encoded state.
pub type StoredState = (u16, Box<[u8]>, Box<[u8]>);

/// How an open treats damage in the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Refuse to open ([`FlashError::Damaged`]) unless the only damage is a record torn at the
    /// end of the log.
    Strict,
    /// Skip every damaged record and keep all the others (what `meridian salvage` does, after
    /// a copy of the damaged files is kept).
    Salvage,
}

/// Whether writes of cold keys go through RocksDB's write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdWrites {
    /// Logged: a cold key survives a crash, as the durable state it is part of must.
    Logged,
    /// Not logged: the server drops its cold keys at start (it keeps no durable state), so
    /// logging them is work for nothing, on the path of every spill and promotion.
    Unlogged,
}

/// One node's RocksDB.
pub struct FlashStore {
    /// The database; `None` while a reopen has not succeeded. Every operation holds the read
    /// lock (iterations for as long as they live); [`FlashStore::reopen`] takes the write lock.
    db: RwLock<Option<DB>>,
    path: PathBuf,
    /// How cold keys are written (see [`ColdWrites`]).
    cold_writes: WriteOptions,
}

/// An iteration over the database that holds the store's read lock while it lives, so a
/// reopen waits for it to end.
struct Locked<'a, I> {
    // Declared before the guard: dropped first, while what it borrows is still locked.
    iter: I,
    _guard: MappedRwLockReadGuard<'a, DB>,
}

impl<I: Iterator> Iterator for Locked<'_, I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.iter.next()
    }
}

impl FlashStore {
    /// Opens (creating if needed) the store in `dir/flash`, writing cold keys as `cold_writes`
    /// says.
    pub fn open(dir: &Path, cold_writes: ColdWrites) -> Result<FlashStore, FlashError> {
        FlashStore::open_with(dir, cold_writes, Recovery::Strict)
    }

    /// Opens the store in `dir/flash`, replaying its write-ahead log as `recovery` says.
    pub fn open_with(dir: &Path, cold_writes: ColdWrites, recovery: Recovery) -> Result<FlashStore, FlashError> {
        let path = dir.join("flash");
        let db = open_db(&path, recovery)?;
        let mut cold_options = WriteOptions::default();
        cold_options.disable_wal(cold_writes == ColdWrites::Unlogged);
        Ok(FlashStore { db: RwLock::new(Some(db)), path, cold_writes: cold_options })
    }

    /// Closes the database and opens it again, as a start would: how the store recovers from
    /// a failed write (a full disk), after which RocksDB refuses every write until it is
    /// reopened. What its write-ahead log held is replayed; what was only in its buffers is
    /// gone, and the caller writes it again. On failure the store stays closed
    /// ([`FlashError::Closed`]) until a later reopen succeeds.
    pub fn reopen(&self) -> Result<(), FlashError> {
        let mut db = self.db.write();
        drop(db.take());
        *db = Some(open_db(&self.path, Recovery::Strict)?);
        Ok(())
    }

    /// The open database, read-locked for one operation.
    fn db(&self) -> Result<MappedRwLockReadGuard<'_, DB>, FlashError> {
        // Recursive: an iteration may run other operations on the store while it lives.
        RwLockReadGuard::try_map(self.db.read_recursive(), Option::as_ref).map_err(|_| FlashError::Closed { path: self.path.clone() })
    }

    /// An iteration `make` builds over the open database, holding the read lock while it
    /// lives; a closed store yields its error once.
    fn iterate<'a, T: 'a, I: Iterator<Item = Result<T, FlashError>> + 'a>(&'a self, make: impl FnOnce(&'a DB) -> I) -> Box<dyn Iterator<Item = Result<T, FlashError>> + 'a> {
        let guard = match self.db() {
            Ok(guard) => guard,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        // SAFETY: the DB lives inside the lock, not in the guard, so its address does not
        // change when the guard moves; the guard keeps the write lock (the only way to close
        // or replace it) away for as long as `Locked` lives; and `Locked` drops the iterator
        // before the guard. `make` is this crate's own and keeps no other copy of the borrow.
        let db: &'a DB = unsafe { &*(&*guard as *const DB) };
        Box::new(Locked { iter: make(db), _guard: guard })
    }
}

/// Opens the RocksDB database at `path` with the store's options.
fn open_db(path: &Path, recovery: Recovery) -> Result<DB, FlashError> {
    // Read first, so the options below are set on what it returns: at start, the log is
    // replayed into memory and not flushed into table files, so a node restarts with little
    // disk space left (the next memtable flush writes it, as usual).
    let mut options = Options::default().get_options_from_string("avoid_flush_during_recovery=true").map_err(|source| FlashError::Rocks { path: path.to_path_buf(), source })?;
    options.set_wal_recovery_mode(match recovery {
        // A record torn at the very end is a write the process was killed in the middle
        // of (never acknowledged); damage anywhere else stops the open. RocksDB's default
        // (point in time) would instead drop everything after the damage, then delete it.
        Recovery::Strict => DBRecoveryMode::TolerateCorruptedTailRecords,
        Recovery::Salvage => DBRecoveryMode::SkipAnyCorruptedRecord,
    });
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_max_background_jobs(2);
    // The WAL is written when the server says (`flush_log`), once per batch of replies,
    // instead of a write(2) per op.
    options.set_manual_wal_flush(true);
    // Bloom filters (10 bits per key, ~1% false positives) make a miss on a cold key cheap.
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    options.set_block_based_table_factory(&table);
    // Cold keys are read one at a time, mostly keys that are there: a hash index inside
    // each data block finds the key without a binary search, and a whole-key bloom filter
    // on the memtable spares the skip-list walk for the keys that are not in it (most
    // reads of a cold key, and every check that a new key is not cold).
    let mut cold = options.clone();
    table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    table.set_data_block_hash_ratio(0.75);
    cold.set_block_based_table_factory(&table);
    cold.set_memtable_prefix_bloom_ratio(0.02);
    cold.set_memtable_whole_key_filtering(true);
    // A quarter of RocksDB's default memtable: its RAM is outside `maxmemory`, and a
    // smaller skip list is quicker to search.
    cold.set_write_buffer_size(16 << 20);
    let families = [LOG, KEYS, META].map(|name| ColumnFamilyDescriptor::new(name, options.clone()));
    let families = families.into_iter().chain([ColumnFamilyDescriptor::new(COLD, cold)]);
    DB::open_cf_descriptors(&options, path, families).map_err(|source| match source.kind() {
        ErrorKind::Corruption => FlashError::Damaged { path: path.to_path_buf(), source },
        _ => FlashError::Rocks { path: path.to_path_buf(), source },
    })
}

/// The column family `name` (every one is created at open).
fn family<'d>(db: &'d DB, name: &'static str) -> &'d ColumnFamily {
    db.cf_handle(name).expect("families are created at open")
}

impl FlashStore {
    /// Opens a damaged store in `dir/flash`, keeping every record that can be read, after
    /// copying its files as they are to `backup` (which must not exist): what RocksDB skips is
    /// gone from the store, not from the copy.
    pub fn salvage(dir: &Path, backup: &Path, cold_writes: ColdWrites) -> Result<FlashStore, FlashError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FlashError::Io { path, source }
        };
        std::fs::create_dir(backup).map_err(io(backup))?;
        for entry in std::fs::read_dir(dir.join("flash")).map_err(io(&dir.join("flash")))? {
            let entry = entry.map_err(io(&dir.join("flash")))?;
            std::fs::copy(entry.path(), backup.join(entry.file_name())).map_err(io(&entry.path()))?;
        }
        let store = FlashStore::open_with(dir, cold_writes, Recovery::Salvage)?;
        {
            // What was replayed goes to table files now, so the damaged log is not read again.
            let db = store.db()?;
            store.rocks(db.flush_wal(true))?;
            let families = [LOG, KEYS, META, COLD].map(|name| family(&db, name));
            store.rocks(db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default()))?;
        }
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rocks<T>(&self, result: Result<T, rocksdb::Error>) -> Result<T, FlashError> {
        result.map_err(|source| FlashError::Rocks { path: self.path.clone(), source })
    }

    /// Appends a log record at `position` (positions only grow).
    pub fn append(&self, position: u64, record: &[u8]) -> Result<(), FlashError> {
        let mut options = WriteOptions::default();
        options.set_sync(false);
        let db = self.db()?;
        self.rocks(db.put_cf_opt(family(&db, LOG), position.to_be_bytes(), record, &options))
    }

    /// Hands every write so far to the operating system (a write(2) of RocksDB's WAL buffer):
    /// from then on it survives the process being killed.
    pub fn flush_log(&self) -> Result<(), FlashError> {
        self.rocks(self.db()?.flush_wal(false))
    }

    /// Makes every write so far durable (fsync of RocksDB's write-ahead log).
    pub fn sync(&self) -> Result<(), FlashError> {
        self.rocks(self.db()?.flush_wal(true))
    }

    /// The log records from `position` on, in position order.
    pub fn log_from(&self, position: u64) -> impl Iterator<Item = Result<(u64, Box<[u8]>), FlashError>> + '_ {
        let start = position.to_be_bytes();
        self.iterate(move |db| {
            db.iterator_cf(family(db, LOG), IteratorMode::From(&start, Direction::Forward)).map(move |item| {
                let (key, value) = self.rocks(item)?;
                let position = <[u8; 8]>::try_from(&*key).map_err(|_| self.corrupt("log position"))?;
                Ok((u64::from_be_bytes(position), value))
            })
        })
    }

    /// The positions missing from the log between `from` and its newest record, as ranges:
    /// positions are dense, so each range is records that were lost.
    pub fn log_gaps(&self, from: u64) -> Result<Vec<std::ops::Range<u64>>, FlashError> {
        let mut gaps = Vec::new();
        let mut expected = from;
        for item in self.log_from(from) {
            let (position, _) = item?;
            if position > expected {
                gaps.push(expected..position);
            }
            expected = position + 1;
        }
        Ok(gaps)
    }

    /// The position of the newest log record, if there is one.
    pub fn last_log_position(&self) -> Result<Option<u64>, FlashError> {
        let db = self.db()?;
        let Some(item) = db.iterator_cf(family(&db, LOG), IteratorMode::End).next() else { return Ok(None) };
        let (key, _) = self.rocks(item)?;
        let position = <[u8; 8]>::try_from(&*key).map_err(|_| self.corrupt("log position"))?;
        Ok(Some(u64::from_be_bytes(position)))
    }

    /// Drops the log records before `position` (a checkpoint covers them).
    pub fn trim_log(&self, position: u64) -> Result<(), FlashError> {
        let db = self.db()?;
        self.rocks(db.delete_range_cf(family(&db, LOG), 0u64.to_be_bytes(), position.to_be_bytes()))
    }

    /// Writes `shard`'s key states (key, encoded state) into checkpoint `generation`, with the
    /// log position they cover. A generation is written once, shard by shard, and becomes the
    /// checkpoint only when the server says so in its metadata; [`FlashStore::keep_generation`]
    /// drops the others. Shard numbers are below `u16::MAX`.
    pub fn write_shard<'a>(&self, generation: u32, shard: u16, position: u64, states: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Result<(), FlashError> {
        assert!(shard < POSITIONS, "shard numbers stay below u16::MAX");
        let db = self.db()?;
        let keys = family(&db, KEYS);
        let mut batch = WriteBatch::default();
        let mut key = Vec::new();
        for (name, state) in states {
            key.clear();
            key.extend_from_slice(&generation.to_be_bytes());
            key.extend_from_slice(&shard.to_be_bytes());
            key.extend_from_slice(name);
            batch.put_cf(keys, &key, state);
        }
        batch.put_cf(keys, position_key(generation, shard), position.to_be_bytes());
        self.rocks(db.write(batch))
    }

    /// The log position `shard` was written at in `generation`, if it was.
    pub fn shard_position(&self, generation: u32, shard: u16) -> Result<Option<u64>, FlashError> {
        let db = self.db()?;
        let Some(bytes) = self.rocks(db.get_cf(family(&db, KEYS), position_key(generation, shard)))? else { return Ok(None) };
        let position = <[u8; 8]>::try_from(&*bytes).map_err(|_| self.corrupt("shard position"))?;
        Ok(Some(u64::from_be_bytes(position)))
    }

    /// Every key state of `generation`: `(shard, key, encoded state)`, shard by shard.
    pub fn states(&self, generation: u32) -> impl Iterator<Item = Result<StoredState, FlashError>> + '_ {
        let prefix = generation.to_be_bytes();
        let end = position_key(generation, 0);
        self.iterate(move |db| {
            db.iterator_cf(family(db, KEYS), IteratorMode::From(&prefix, Direction::Forward))
                .map(move |item| self.rocks(item))
                .take_while(move |item| item.as_ref().map_or(true, |(key, _)| **key < end[..]))
                .map(move |item| {
                    let (key, value) = item?;
                    if key.len() < 6 {
                        return Err(self.corrupt("key state name"));
                    }
                    Ok((u16::from_be_bytes([key[4], key[5]]), key[6..].into(), value))
                })
        })
    }

    /// Drops every checkpoint generation but `generation` (older ones, and a newer one a
    /// crash left half written).
    pub fn keep_generation(&self, generation: u32) -> Result<(), FlashError> {
        let db = self.db()?;
        let keys = family(&db, KEYS);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(keys, 0u32.to_be_bytes(), generation.to_be_bytes());
        if let Some(next) = generation.checked_add(1) {
            batch.delete_range_cf(keys, &next.to_be_bytes()[..], &[0xff; 5][..]);
        }
        self.rocks(db.write(batch))
    }

    /// The cold value of `key`, if it is cold.
    pub fn cold_get(&self, cold: &ColdKey) -> Result<Option<Vec<u8>>, FlashError> {
        let db = self.db()?;
        self.rocks(db.get_cf(family(&db, COLD), &cold.bytes))
    }

    /// Writes cold keys (key, value) and removes others, in one atomic batch.
    pub fn cold_write<'a>(&self, put: impl IntoIterator<Item = (ColdKey, &'a [u8])>, delete: impl IntoIterator<Item = ColdKey>) -> Result<(), FlashError> {
        let db = self.db()?;
        let cold = family(&db, COLD);
        let mut batch = WriteBatch::default();
        for (key, value) in put {
            batch.put_cf(cold, &key.bytes, value);
        }
        for key in delete {
            batch.delete_cf(cold, &key.bytes);
        }
        self.rocks(db.write_opt(batch, &self.cold_writes))
    }

    /// The cold keys of `shard` whose order lies in `orders`, as `(order, key, value)`, by order.
    /// A bulk read (SCAN, state transfers, garbage collection): the blocks it reads are not
    /// kept in the block cache, which stays with the blocks point reads of cold keys use.
    pub fn cold_range(&self, shard: u16, orders: std::ops::RangeInclusive<u32>) -> impl Iterator<Item = Result<StoredCold, FlashError>> + '_ {
        let start = [&shard.to_be_bytes()[..], &orders.start().to_be_bytes()].concat();
        let last = (shard, *orders.end());
        let mut bulk = ReadOptions::default();
        bulk.fill_cache(false);
        self.iterate(move |db| {
            db.iterator_cf_opt(family(db, COLD), bulk, IteratorMode::From(&start, Direction::Forward))
                .map(move |item| {
                    let (key, value) = self.rocks(item)?;
                    if key.len() < 6 {
                        return Err(self.corrupt("cold key"));
                    }
                    let (shard, order) = (u16::from_be_bytes([key[0], key[1]]), u32::from_be_bytes([key[2], key[3], key[4], key[5]]));
                    Ok(((shard, order), key[6..].into(), value))
                })
                .take_while(move |item| item.as_ref().map_or(true, |(at, _, _)| *at <= last))
                .map(|item| item.map(|((_, order), key, value)| (order, key, value)))
        })
    }

    /// Removes every cold key (their states are not worth keeping without the rest).
    pub fn cold_clear(&self) -> Result<(), FlashError> {
        let db = self.db()?;
        self.rocks(db.delete_range_cf(family(&db, COLD), &[0u8; 0][..], &[0xff; 7][..]))
    }

    /// A named metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, FlashError> {
        let db = self.db()?;
        self.rocks(db.get_cf(family(&db, META), name))
    }

    /// Stores a named metadata value, synced (metadata is rare and must not be lost).
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), FlashError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        let db = self.db()?;
        self.rocks(db.put_cf_opt(family(&db, META), name, value, &options))
    }

    /// Size figures.
    pub fn size(&self) -> FlashSize {
        let Ok(db) = self.db() else { return FlashSize::default() };
        let property = |name: &str| [LOG, KEYS, META, COLD].iter().map(|cf| db.property_int_value_cf(family(&db, cf), name).ok().flatten().unwrap_or(0)).sum();
        let estimated_keys = db.property_int_value_cf(family(&db, COLD), "rocksdb.estimate-num-keys").ok().flatten().unwrap_or(0);
        FlashSize { sst_bytes: property("rocksdb.total-sst-files-size"), memtable_bytes: property("rocksdb.cur-size-all-mem-tables"), estimated_keys }
    }

    fn corrupt(&self, what: &'static str) -> FlashError {
        FlashError::Corrupt { path: self.path.clone(), what }
    }
}

/// Shard number under which a generation keeps its shards' log positions, after its states.
const POSITIONS: u16 = u16::MAX;

fn position_key(generation: u32, shard: u16) -> [u8; 8] {
    let mut key = [0; 8];
    key[..4].copy_from_slice(&generation.to_be_bytes());
    key[4..6].copy_from_slice(&POSITIONS.to_be_bytes());
    key[6..].copy_from_slice(&shard.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_survive_reopening_and_trim_from_the_front() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FlashStore::open(dir.path(), ColdWrites::Logged).unwrap();
            for position in 1..=5u64 {
                store.append(position, format!("op {position}").as_bytes()).unwrap();
            }
            store.sync().unwrap();
        }
        let store = FlashStore::open(dir.path(), ColdWrites::Logged).unwrap();
        let read = |from| store.log_from(from).map(|r| r.unwrap().0).collect::<Vec<_>>();
        assert_eq!(read(0), [1, 2, 3, 4, 5]);
        assert_eq!(read(4), [4, 5]);
        assert_eq!(store.last_log_position().unwrap(), Some(5));
        store.trim_log(3).unwrap();
        assert_eq!(read(0), [3, 4, 5]);
        assert_eq!(&*store.log_from(5).next().unwrap().unwrap().1, b"op 5");
    }

    #[test]
    fn generations_are_written_apart_and_all_but_one_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = FlashStore::open(dir.path(), ColdWrites::Logged).unwrap();
        let read = |generation| store.states(generation).map(|r| r.unwrap()).map(|(s, k, v)| (s, k.into(), v.into())).collect::<Vec<(u16, Vec<u8>, Vec<u8>)>>();
        store.write_shard(1, 2, 10, [(&b"b"[..], &b"B"[..])]).unwrap();
        store.write_shard(1, 1, 11, [(&b"a"[..], &b"A"[..]), (b"", b"empty key")]).unwrap();
        store.write_shard(2, 1, 20, [(&b"a"[..], &b"A2"[..])]).unwrap();
        store.write_shard(3, 1023, 30, [(&b"z"[..], &b"Z"[..])]).unwrap();
        assert_eq!(read(1), [(1, b"".to_vec(), b"empty key".to_vec()), (1, b"a".to_vec(), b"A".to_vec()), (2, b"b".to_vec(), b"B".to_vec())]);
        assert_eq!(read(2), [(1, b"a".to_vec(), b"A2".to_vec())]);
        assert_eq!((store.shard_position(1, 2).unwrap(), store.shard_position(2, 2).unwrap()), (Some(10), None));
        store.keep_generation(2).unwrap();
        assert!(read(1).is_empty() && read(3).is_empty());
        assert_eq!(read(2).len(), 1);
        assert_eq!(store.shard_position(1, 1).unwrap(), None, "positions go with their generation");
        assert_eq!(store.shard_position(2, 1).unwrap(), Some(20));
    }

    #[test]
    fn cold_keys_are_found_listed_by_order_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = FlashStore::open(dir.path(), ColdWrites::Logged).unwrap();
        let put = [(ColdKey::new(3, 7, b"b"), &b"B"[..]), (ColdKey::new(3, 2, b"a"), b"A"), (ColdKey::new(4, 0, b"c"), b"C"), (ColdKey::new(3, u32::MAX, b"z"), b"Z")];
        store.cold_write(put, []).unwrap();
        assert_eq!(store.cold_get(&ColdKey::new(3, 2, b"a")).unwrap().as_deref(), Some(&b"A"[..]));
        assert_eq!(store.cold_get(&ColdKey::new(3, 3, b"a")).unwrap(), None, "the order is part of the place");
        let listed = |shard, orders| store.cold_range(shard, orders).map(|r| r.unwrap()).map(|(o, k, _)| (o, k.to_vec())).collect::<Vec<_>>();
        assert_eq!(listed(3, 0..=u32::MAX), [(2, b"a".to_vec()), (7, b"b".to_vec()), (u32::MAX, b"z".to_vec())]);
        assert_eq!(listed(3, 3..=7), [(7, b"b".to_vec())]);
        assert_eq!(listed(4, 0..=u32::MAX), [(0, b"c".to_vec())]);
        store.cold_write([], [ColdKey::new(3, 7, b"b")]).unwrap();
        assert_eq!(listed(3, 0..=u32::MAX).len(), 2);
        store.cold_clear().unwrap();
        assert!(listed(3, 0..=u32::MAX).is_empty() && listed(4, 0..=u32::MAX).is_empty());
    }

    /// Without durability the server drops cold keys at start, so their writes skip the WAL:
    /// RocksDB's write-ahead log files stay empty, and the keys still read back.
    #[test]
    fn unlogged_cold_writes_leave_the_write_ahead_log_empty() {
        let wal_bytes = |dir: &Path| -> u64 {
            std::fs::read_dir(dir.join("flash"))
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| e.metadata().unwrap().len())
                .sum()
        };
        for (mode, logged) in [(ColdWrites::Logged, true), (ColdWrites::Unlogged, false)] {
            let dir = tempfile::tempdir().unwrap();
            let store = FlashStore::open(dir.path(), mode).unwrap();
            let value = [7u8; 100];
            store.cold_write((0..100u32).map(|i| (ColdKey::new(1, i, b"k"), &value[..])), []).unwrap();
            store.cold_write([], [ColdKey::new(1, 0, b"k")]).unwrap();
            store.flush_log().unwrap();
            assert_eq!(wal_bytes(dir.path()) > 0, logged, "{mode:?}");
            assert_eq!(store.cold_get(&ColdKey::new(1, 5, b"k")).unwrap().as_deref(), Some(&value[..]));
            assert_eq!(store.cold_get(&ColdKey::new(1, 0, b"k")).unwrap(), None);
        }
    }

    #[test]
    fn metadata_round_trips_and_a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FlashStore::open(dir.path(), ColdWrites::Logged).unwrap();
        store.set_meta("origin", b"42").unwrap();
        assert_eq!(store.meta("origin").unwrap().as_deref(), Some(&b"42"[..]));
        assert_eq!(store.meta("absent").unwrap(), None);
        let second = FlashStore::open(dir.path(), ColdWrites::Logged);
        assert!(matches!(second, Err(FlashError::Rocks { .. })), "RocksDB's LOCK file keeps a second process out");
    }
}
