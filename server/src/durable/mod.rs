//! Durability (`appendonly yes`): every op this node applies, local or remote, goes to the
//! flash tier's op log in the order the journal applied it; checkpoints write the key states
//! shard by shard; a start recovers the last checkpoint plus the log after it.
//!
//! - [`record`]: the bytes (pure).
//! - [`checkpoint`]: writing key states and trimming the log.
//! - [`recover`]: reading them back at start.
//!
//! The log append happens under the journal lock (see `node.rs`), with the key's shard held,
//! so a shard checkpointed while its lock is held contains exactly the ops before the
//! position read then. `appendfsync` decides when RocksDB's WAL is synced: before the replies
//! of a pipeline that wrote (`always`), once a second (`everysec`) or never (`no`).

pub mod checkpoint;
pub mod record;
pub mod recover;
pub mod salvage;

use crate::config::{AppendFsync, Config};
use crate::shared::Shared;
use meridian_crdt::KeyState;
use meridian_flash::{ColdWrites, FlashError, FlashStore};
use parking_lot::Mutex;
use record::RecordError;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Opens the flash tier's RocksDB in the configured `dir` if the configuration uses it: for
/// durability (`appendonly yes`) or for spilling (`maxmemory-policy flash`). Cold keys go
/// through RocksDB's write-ahead log only with durability: without it they are dropped at
/// the next start anyway.
pub fn open_store(config: &Config) -> Result<Option<Arc<FlashStore>>, DurableError> {
    if !config.uses_flash() {
        return Ok(None);
    }
    let cold_writes = if config.appendonly { ColdWrites::Logged } else { ColdWrites::Unlogged };
    match FlashStore::open(&config.dir, cold_writes) {
        Ok(store) => Ok(Some(Arc::new(store))),
        Err(FlashError::Damaged { path, source }) => Err(DurableError::Damaged { detail: source.to_string(), path }),
        Err(e) => Err(e.into()),
    }
}

/// Metadata names.
const HASH_SEED: &str = "hash-seed";
const BASE: &str = "base";
/// Log positions below this were examined by `meridian salvage`: the records missing there
/// are known lost and reported, and no longer stop a start.
const SALVAGED_THROUGH: &str = "salvaged-through";

/// Why the durable state could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// RocksDB failed.
    #[error(transparent)]
    Flash(#[from] FlashError),
    /// Stored bytes are not what this version writes.
    #[error("flash tier: {0}")]
    Record(#[from] RecordError),
    /// RocksDB refused to open damaged files (a corrupt write-ahead log, say).
    #[error("the flash tier in {} is damaged ({detail}); {}", path.display(), salvage::remedy(path))]
    Damaged {
        /// The store's directory.
        path: std::path::PathBuf,
        /// RocksDB's description of the damage.
        detail: String,
    },
    /// Records of the op log are missing: acknowledged writes would be lost by starting.
    #[error("the op log in {} is missing {} record(s) at positions {}; {}", path.display(), salvage::count(gaps), salvage::ranges(gaps), salvage::remedy(path))]
    Lost {
        /// The store's directory.
        path: std::path::PathBuf,
        /// The missing positions.
        gaps: Vec<std::ops::Range<u64>>,
    },
}

/// What the last recovery did, for INFO and the startup log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recovery {
    /// Key states read from the checkpoint.
    pub keys: u64,
    /// Log records replayed after it.
    pub ops: u64,
    /// Records skipped: already covered, or after a gap (see [`recover`]).
    pub skipped: u64,
    /// How long it took.
    pub duration: Duration,
}

/// Checkpoint history, for INFO.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// Checkpoints completed since start.
    pub completed: u64,
    /// The last one's error, if it failed.
    pub last_error: Option<String>,
    /// How long the last completed one took.
    pub last_duration: Duration,
    /// What the last recovery did.
    pub recovery: Recovery,
}

/// The durable op log and checkpoints of one node.
pub struct Durable {
    store: Arc<FlashStore>,
    hash_seed: u64,
    fsync: AtomicU8,
    /// The position the next record gets (records ever appended). Written under
    /// `unflushed`'s lock; op records are appended under the journal lock too, so their order is
    /// the order the vector records them in.
    written: AtomicU64,
    /// Every record before this position is in the operating system's hands.
    flushed: AtomicU64,
    /// Every record before this position is synced.
    synced: AtomicU64,
    /// Syncs since start (INFO `aof_fsyncs`).
    fsyncs: AtomicU64,
    /// Record bytes appended since the checkpoint base.
    log_bytes: AtomicU64,
    /// Bytes of key states the last checkpoint wrote.
    checkpoint_bytes: AtomicU64,
    /// The generation of the last completed checkpoint.
    generation: AtomicU32,
    running: AtomicBool,
    /// A checkpoint was asked for (after a state transfer); the next tick starts it.
    requested: AtomicBool,
    /// Bumped when a state transfer starts: a checkpoint that overlapped one is discarded,
    /// since its base predates keys the transfer merged (merges are not logged).
    transfer_epoch: AtomicU64,
    transfers: AtomicUsize,
    /// Why the last durable write failed; writes are refused (MISCONF) while it is set.
    failure: Mutex<Option<String>>,
    /// The records appended since the last flush that reached the operating system: what a
    /// failed write (a full disk) can lose from RocksDB's buffers, kept to be written again,
    /// so the log has no hole whatever the node applied meanwhile (replicated ops, expiries).
    /// Its lock also orders appends: positions are taken and records stored under it.
    unflushed: Mutex<Unflushed>,
    history: Mutex<Checkpoints>,
}

impl Durable {
    /// Durability in the flash tier `store`, with the sync policy `fsync`.
    pub fn new(store: Arc<FlashStore>, fsync: AppendFsync) -> Result<Durable, DurableError> {
        let hash_seed = match store.meta(HASH_SEED)? {
            Some(bytes) => record::decode_u64(HASH_SEED, &bytes)?,
            None => {
                let seed = rand::random::<u64>();
                store.set_meta(HASH_SEED, &seed.to_be_bytes())?;
                seed
            }
        };
        let durable = Durable {
            store,
            hash_seed,
            fsync: AtomicU8::new(fsync as u8),
            written: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            log_bytes: AtomicU64::new(0),
            checkpoint_bytes: AtomicU64::new(0),
            generation: AtomicU32::new(0),
            running: AtomicBool::new(false),
            requested: AtomicBool::new(false),
            transfer_epoch: AtomicU64::new(0),
            transfers: AtomicUsize::new(0),
            failure: Mutex::new(None),
            unflushed: Mutex::new(Unflushed::default()),
            history: Mutex::new(Checkpoints::default()),
        };
        Ok(durable)
    }

    /// The keyspace's hash seed, the same on every start.
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// The position the next record gets.
    pub fn next_position(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Appends one record at the next position (an op record under the journal lock). A
    /// record RocksDB refuses is kept to be written again (see [`Durable::retry`]), and from
    /// then on writes are refused (see [`Durable::failure`]); the replies that wait for it are
    /// never sent (see [`Durable::synced_for_reply`]).
    pub fn append(&self, bytes: &[u8]) {
        let mut unflushed = self.unflushed.lock();
        let position = self.written.load(Ordering::Relaxed);
        unflushed.push(position, bytes);
        if let Err(e) = self.store.append(position, bytes) {
            self.fail(format!("writing the op log: {e}"));
        }
        self.log_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.written.store(position + 1, Ordering::Release);
    }

    fn fail(&self, reason: String) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            tracing::error!("flash tier: {reason}; writes are refused until the log can be written again (retried every second)");
            *failure = Some(reason);
        }
    }

    /// After a failed write (a full disk): RocksDB refuses every write from then on, so the
    /// store is reopened, the records its buffers lost are written again, and the log is
    /// synced. Once all of that succeeds, writes are accepted again. Called once a second.
    fn retry(&self) {
        if self.failure.lock().is_none() {
            return;
        }
        let mut unflushed = self.unflushed.lock();
        let target = self.next_position();
        let rewritten = self.store.reopen().and_then(|()| {
            unflushed.records().try_for_each(|(position, bytes)| self.store.append(position, bytes))?;
            self.store.sync()
        });
        if let Err(e) = rewritten {
            tracing::debug!("flash tier still failing: {e}");
            return;
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        unflushed.release_before(target);
        drop(unflushed);
        self.flushed.fetch_max(target, Ordering::AcqRel);
        self.synced.fetch_max(target, Ordering::AcqRel);
        if let Some(reason) = self.failure.lock().take() {
            tracing::warn!("flash tier writable again after: {reason}; writes are accepted");
        }
    }

    /// Logs `key`'s whole state (a cold key promoted to RAM: see [`record`]). Called with
    /// the key's shard held.
    pub fn append_state(&self, key: &[u8], state: &KeyState) {
        self.append(&record::state_record(key, state));
    }

    /// Why writes are refused, if a durable write failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// The sync policy.
    pub fn fsync(&self) -> AppendFsync {
        match self.fsync.load(Ordering::Relaxed) {
            x if x == AppendFsync::Always as u8 => AppendFsync::Always,
            x if x == AppendFsync::Everysec as u8 => AppendFsync::Everysec,
            _ => AppendFsync::No,
        }
    }

    /// Changes the sync policy (CONFIG SET appendfsync).
    pub fn set_fsync(&self, fsync: AppendFsync) {
        self.fsync.store(fsync as u8, Ordering::Relaxed);
    }

    /// Syncs everything appended so far, if anything is not yet synced.
    pub fn sync(&self) -> Result<(), FlashError> {
        let target = self.next_position();
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        self.store.sync()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.flushed_through(target, true);
        Ok(())
    }

    /// Records that every record before `target` reached the operating system (and the disk,
    /// if `synced`), unless a write failed: then only [`Durable::retry`] says what is on disk,
    /// since RocksDB may have dropped records from its buffers.
    fn flushed_through(&self, target: u64, synced: bool) {
        if self.failure.lock().is_some() {
            return;
        }
        self.unflushed.lock().release_before(target);
        self.flushed.fetch_max(target, Ordering::AcqRel);
        if synced {
            self.synced.fetch_max(target, Ordering::AcqRel);
        }
    }

    /// Syncs of the log since start: under `always`, about one per turn of the event loop
    /// that had writes.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Marks every record before `position` as already on disk (recovery read them from it).
    fn mark_synced(&self, position: u64) {
        self.unflushed.lock().release_before(position);
        self.flushed.store(position, Ordering::Release);
        self.synced.store(position, Ordering::Release);
    }

    /// Hands the log written so far to the operating system, if some is not yet (before
    /// replies go out, under every policy: a reply's writes must survive a process kill).
    pub fn flush(&self) {
        let target = self.next_position();
        if self.flushed.load(Ordering::Acquire) >= target {
            return;
        }
        match self.store.flush_log() {
            Ok(()) => self.flushed_through(target, false),
            Err(e) => self.fail(format!("writing the op log: {e}")),
        }
    }

    /// Before the replies that follow writes go out: hands them to the operating system, and
    /// under `appendfsync always` syncs them. `Err` if they could not be (a full disk): those
    /// replies must not be sent, since the writes they acknowledge would not survive a crash.
    /// One flush or sync serves every connection that
    /// wrote in the same turn of the event loop (group commit, as Redis writes and, under
    /// `always`, syncs its AOF once per turn of its loop): a connection first yields, so that
    /// the others ready to run append their writes, then flushes or syncs unless one of them
    /// already has. The sync blocks the worker thread, as Redis's blocks its event loop; a
    /// failed one ends the process, as it does Redis: the writes cannot be acknowledged, and
    /// their replies are already computed.
    pub async fn synced_for_reply(&self) -> Result<(), NotDurable> {
        let always = self.fsync() == AppendFsync::Always;
        let target = self.next_position();
        let done = || if always { &self.synced } else { &self.flushed }.load(Ordering::Acquire) >= target;
        if done() {
            return Ok(());
        }
        tokio::task::yield_now().await;
        if done() {
            return Ok(());
        }
        if !always {
            self.flush();
        } else if let Err(e) = self.sync() {
            tracing::error!("flash tier: cannot sync the op log under appendfsync always: {e}; exiting");
            std::process::exit(1);
        }
        match done() {
            true => Ok(()),
            false => Err(NotDurable),
        }
    }

    /// The once-a-second sync of `everysec` (and a last one at shutdown for every policy).
    pub fn sync_in_background(&self) {
        if let Err(e) = self.sync() {
            self.fail(format!("syncing the op log: {e}"));
        }
    }

    /// True if the log has grown enough since the last checkpoint for an automatic one
    /// (`auto-aof-rewrite-min-size` and `-percentage`, as Redis's AOF rewrite).
    pub fn checkpoint_due(&self, min_size: u64, percentage: u64) -> bool {
        let grown = self.log_bytes.load(Ordering::Relaxed);
        let share = self.checkpoint_bytes.load(Ordering::Relaxed).saturating_mul(percentage) / 100;
        percentage > 0 && grown >= min_size.max(share)
    }

    /// Marks a state transfer into this node as running until the guard drops. Its merged
    /// keys are not in the log, so no checkpoint that overlaps it may stand.
    pub fn begin_transfer(self: &Arc<Self>) -> TransferGuard {
        self.transfers.fetch_add(1, Ordering::AcqRel);
        self.transfer_epoch.fetch_add(1, Ordering::AcqRel);
        TransferGuard(self.clone())
    }

    /// Asks for a checkpoint at the next tick (a state transfer just completed).
    pub fn request_checkpoint(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// Checkpoint history and the last recovery.
    pub fn history(&self) -> Checkpoints {
        self.history.lock().clone()
    }

    /// True while a checkpoint runs.
    pub fn checkpointing(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Bytes of key states the last checkpoint wrote.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.checkpoint_bytes.load(Ordering::Relaxed)
    }

    /// Record bytes appended since the last checkpoint.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}

/// Starts the flash tier's housekeeping thread (once a second, `everysec`'s sync, and a
/// checkpoint when one is due or was asked for). It stops when the server shuts down.
pub fn start(shared: &Arc<Shared>) -> std::io::Result<()> {
    if shared.node.durable().is_none() {
        return Ok(());
    }
    let shared = shared.clone();
    let mut shutdown = shared.shutdown.subscribe();
    std::thread::Builder::new().name("meridian-durable".into()).spawn(move || {
        while !*shutdown.borrow_and_update() {
            std::thread::sleep(Duration::from_secs(1));
            tick(&shared);
        }
    })?;
    Ok(())
}

fn tick(shared: &Arc<Shared>) {
    let Some(durable) = shared.node.durable() else { return };
    durable.retry();
    // What no reply flushed (replicated ops, spills, promotions) is flushed at least once a
    // second.
    match durable.fsync() {
        AppendFsync::Everysec => durable.sync_in_background(),
        _ => durable.flush(),
    }
    let (min_size, percentage) = {
        let config = shared.config.read();
        (config.auto_aof_rewrite_min_size, config.auto_aof_rewrite_percentage)
    };
    let requested = durable.requested.swap(false, Ordering::AcqRel);
    if !requested && !durable.checkpoint_due(min_size, percentage) {
        return;
    }
    // A request that finds one running is kept for the next tick.
    if checkpoint::start(shared).is_err() && requested {
        durable.request_checkpoint();
    }
}

/// Records appended but not yet known to have reached the operating system, in position
/// order, in one buffer (cleared at every flush, so it stays small and allocates rarely).
#[derive(Default)]
struct Unflushed {
    /// The first record's position.
    first: u64,
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl Unflushed {
    fn push(&mut self, position: u64, record: &[u8]) {
        if self.ends.is_empty() {
            self.first = position;
        }
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len());
    }

    /// `(position, record)` of every record held.
    fn records(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).enumerate().map(|(i, (start, &end))| (self.first + i as u64, &self.bytes[start..end]))
    }

    /// Forgets the records before `position` (they reached the operating system).
    fn release_before(&mut self, position: u64) {
        let released = (position.saturating_sub(self.first) as usize).min(self.ends.len());
        if released == self.ends.len() {
            self.bytes.clear();
            self.ends.clear();
        } else if released > 0 {
            let cut = self.ends[released - 1];
            self.bytes.drain(..cut);
            self.ends.drain(..released);
            self.ends.iter_mut().for_each(|end| *end -= cut);
        }
        self.first += released as u64;
        // A burst's buffer is not kept for ever.
        if self.bytes.capacity() > 16 << 20 && self.bytes.len() < 1 << 20 {
            self.bytes.shrink_to(1 << 20);
        }
    }
}

/// Writes could not be made durable as the sync policy promises (see
/// [`Durable::synced_for_reply`]).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the op log could not be written: the replies to these writes are withheld")]
pub struct NotDurable;

/// A state transfer in progress (see [`Durable::begin_transfer`]).
pub struct TransferGuard(Arc<Durable>);

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.0.transfers.fetch_sub(1, Ordering::AcqRel);
    }
}
