//! Recovery at start: the last checkpoint's key states, then every log record after its base,
//! replayed through the journal (which rebuilds the applied vector and the op log peers catch
//! up from) and applied to each key whose shard the checkpoint wrote before the record.
//!
//! A record of an origin whose previous op is missing is skipped with the rest of that
//! origin: that happens only if the node crashed between a state transfer and the checkpoint
//! that follows it (the transfer's keys are not in the log). The vector then stops before the
//! gap, so peers send those ops again.

use super::record::{self, Base};
use super::{DurableError, Recovery, BASE};
use crate::keyspace::{shard_of, SHARDS};
use crate::node::{Accepted, Applied};
use crate::shared::Shared;
use meridian_crdt::KeyState;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Recovers the node's state from its flash tier, if it has one.
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
    store.keep_generation(base.generation)?;
    for item in store.states(base.generation) {
        let (stored_shard, key, bytes) = item?;
        let state: KeyState = rmp_serde::from_slice(&bytes).map_err(|e| record::RecordError::Meta { name: "key state", reason: e.to_string() })?;
        let at = db.at(&key);
        if shard_of(at.hash) != usize::from(stored_shard) {
            return Err(record::RecordError::Meta { name: "key state", reason: format!("key stored in shard {stored_shard} hashes elsewhere") }.into());
        }
        at.shard.restore(hasher, at.hash, &key, state);
        recovery.keys += 1;
    }
    let positions: Vec<Option<u64>> = (0..SHARDS).map(|s| store.shard_position(base.generation, s as u16)).collect::<Result<_, _>>()?;
    let mut next = positions.iter().flatten().copied().max().unwrap_or(0).max(base.position);
    let mut replayed_bytes = 0u64;
    for item in store.log_from(base.position) {
        let (position, bytes) = item?;
        let (op, tail) = record::decode_record(&bytes)?;
        next = next.max(position + 1);
        replayed_bytes += bytes.len() as u64;
        if shared.node.replay(&op, tail) != Accepted::Fresh {
            recovery.skipped += 1;
            continue;
        }
        let shard = shard_of(hasher.hash(&op.key));
        if positions[shard].is_none_or(|covered| position >= covered) {
            db.apply(&op.key, op.stamp(), &op.body, &Applied(&shared.node), &shared.write_stability());
        }
        recovery.ops += 1;
    }
    drop(db);
    durable.written.store(next, Ordering::Release);
    durable.store.sync()?;
    durable.synced.store(next, Ordering::Release);
    durable.log_bytes.store(replayed_bytes, Ordering::Relaxed);
    durable.checkpoint_bytes.store(base.checkpoint_bytes, Ordering::Relaxed);
    durable.generation.store(base.generation, Ordering::Relaxed);
    recovery.duration = started.elapsed();
    durable.history.lock().recovery = recovery;
    Ok(recovery)
}
