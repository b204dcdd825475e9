//! Recovery at start: the last checkpoint's key states, then every log record after its base,
//! replayed through the journal (which rebuilds the applied vector and the op log peers catch
//! up from) and applied to each key whose stored state does not hold it yet.
//!
//! A key's stored state is its cold state if the flash tier holds it cold (spilled at log
//! position `q`: it holds every record before `q`), else its checkpoint state (written at its
//! shard's position `P`: it holds every record before `P`), else nothing. A record at
//! position `r` is applied if `r` is at or after both.
//!
//! A record of an origin whose previous op is missing is skipped with the rest of that
//! origin: that happens only if the node crashed between a state transfer and the checkpoint
//! that follows it (the transfer's keys are not in the log). The vector then stops before the
//! gap, so peers send those ops again.

use super::record::{self, Base, Record};
use super::{DurableError, Recovery, BASE, SALVAGED_THROUGH};
use crate::keyspace::{shard_of, SHARDS};
use crate::node::{Accepted, Applied};
use crate::shared::Shared;
use meridian_crdt::KeyState;
use meridian_flash::FlashStore;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Brings what the flash tier holds into the keyspace at start. Without durability, cold keys
/// left by an earlier run are dropped: the rest of the state they belonged to is gone.
pub fn start(shared: &Shared) -> Result<(), DurableError> {
    if let Some(tier) = shared.keyspace.cold() {
        match shared.node.durable() {
            None => tier.clear()?,
            Some(_) => {
                shared.keyspace.count_cold()?;
            }
        }
    }
    if let Some(durable) = shared.node.durable() {
        let recovered = recover(shared)?;
        let cold = shared.keyspace.unlocked().counts().cold;
        tracing::info!(keys = recovered.keys, cold, ops = recovered.ops, skipped = recovered.skipped, ms = recovered.duration.as_millis() as u64, dir = %durable.path().display(), "recovered from the flash tier");
    }
    Ok(())
}

/// Recovers the node's state from its flash tier, if it has durability.
pub fn recover(shared: &Shared) -> Result<Recovery, DurableError> {
    let Some(durable) = shared.node.durable() else { return Ok(Recovery::default()) };
    let started = Instant::now();
    let store = &durable.store;
    let base = match store.meta(BASE)? {
        Some(bytes) => Base::decode(&bytes)?,
        None => Base::default(),
    };
    shared.node.join_applied(&base.applied);
    let mut recovery = Recovery::default();
    let mut db = shared.keyspace.unlocked();
    let hasher = shared.keyspace.hasher();
    let any_cold = db.counts().cold > 0;
    // The cold position of a key, if it is cold.
    let cold_position = |shard: usize, hash: u64, key: &[u8]| -> Result<Option<u64>, DurableError> {
        match (any_cold, shared.keyspace.cold()) {
            (true, Some(tier)) => Ok(tier.spilled_at(shard, hash, key)?),
            _ => Ok(None),
        }
    };
    store.keep_generation(base.generation)?;
    for item in store.states(base.generation) {
        let (stored_shard, key, bytes) = item?;
        let hash = hasher.hash(&key);
        if shard_of(hash) != usize::from(stored_shard) {
            return Err(record::RecordError::Meta { name: "key state", reason: format!("key stored in shard {stored_shard} hashes elsewhere") }.into());
        }
        if cold_position(shard_of(hash), hash, &key)?.is_some() {
            continue; // spilled after the checkpoint: the cold state is newer
        }
        let state: KeyState = rmp_serde::from_slice(&bytes).map_err(|e| record::RecordError::Meta { name: "key state", reason: e.to_string() })?;
        let at = db.at(&key);
        at.shard.restore(hasher, at.hash, &key, state);
        recovery.keys += 1;
    }
    let positions: Vec<Option<u64>> = (0..SHARDS).map(|s| store.shard_position(base.generation, s as u16)).collect::<Result<_, _>>()?;
    // New records (promotions during the replay itself, then the node's writes) go after the
    // newest one stored.
    let next = [store.last_log_position()?.map(|p| p + 1), positions.iter().flatten().copied().max(), Some(base.position)].into_iter().flatten().max().unwrap_or(0);
    durable.written.store(next, Ordering::Release);
    check_log_is_whole(store, base.position)?;
    let mut replayed_bytes = 0u64;
    for item in store.log_from(base.position) {
        let (position, bytes) = item?;
        if position >= next {
            break;
        }
        replayed_bytes += bytes.len() as u64;
        let record = record::decode_record(&bytes)?;
        if let Record::Op(op, tail) = &record {
            if shared.node.replay(op, tail) != Accepted::Fresh {
                recovery.skipped += 1;
                continue;
            }
            recovery.ops += 1;
        }
        let hash = hasher.hash(record.key());
        let shard = shard_of(hash);
        let held = positions[shard].into_iter().chain(cold_position(shard, hash, record.key())?).max();
        if held.is_some_and(|held| position < held) {
            continue;
        }
        match record {
            Record::Op(op, _) => {
                db.apply(&op.key, op.stamp(), &op.body, &Applied(&shared.node), &shared.write_stability());
            }
            Record::State(key, state) => {
                let at = db.at(key);
                at.shard.restore(hasher, at.hash, key, state);
            }
        }
    }
    drop(db);
    durable.store.sync()?;
    durable.mark_synced(next);
    durable.log_bytes.store(replayed_bytes, Ordering::Relaxed);
    durable.checkpoint_bytes.store(base.checkpoint_bytes, Ordering::Relaxed);
    durable.generation.store(base.generation, Ordering::Relaxed);
    recovery.duration = started.elapsed();
    durable.history.lock().recovery = recovery;
    Ok(recovery)
}

/// Refuses to recover from a log with records missing after `from` (positions are dense, so a
/// hole is acknowledged writes RocksDB could not read back), except those `meridian salvage`
/// already found and reported.
fn check_log_is_whole(store: &FlashStore, from: u64) -> Result<(), DurableError> {
    let salvaged = match store.meta(SALVAGED_THROUGH)? {
        Some(bytes) => record::decode_u64(SALVAGED_THROUGH, &bytes)?,
        None => 0,
    };
    let gaps: Vec<_> = store.log_gaps(from)?.into_iter().filter(|gap| gap.end > salvaged).collect();
    match gaps.is_empty() {
        true => Ok(()),
        false => Err(DurableError::Lost { path: store.path().to_path_buf(), gaps }),
    }
}
