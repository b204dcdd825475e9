//! A checkpoint: every shard's key states written to the flash tier as a new generation, then
//! the base that makes it current and says where replay starts, then the previous
//! generation and the log before the base dropped.
//!
//! The base (log position and applied vector) is read first, under the journal lock. Each
//! shard is then encoded under its own lock, together with the log position at that moment:
//! the shard holds exactly the ops before it, since every op is logged and applied with its
//! key's shard held. Recovery replays from the base and skips, per shard, what the shard
//! already holds. A crash in the middle leaves the previous generation and base in place.

use super::record::Base;
use super::{Durable, DurableError, BASE};
use crate::keyspace::SHARDS;
use crate::shared::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Why a checkpoint did not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// `appendonly` is off.
    #[error("appendonly is no: there is nothing to checkpoint")]
    Off,
    /// One is running already.
    #[error("a checkpoint is already in progress")]
    Running,
    /// A state transfer ran while the checkpoint was written (see `Durable::begin_transfer`).
    #[error("a state transfer overlapped the checkpoint; it was discarded and will be retried")]
    Overlapped,
}

/// Starts a checkpoint on its own thread.
pub fn start(shared: &Arc<Shared>) -> Result<(), CheckpointError> {
    let durable = shared.node.durable().ok_or(CheckpointError::Off)?;
    if durable.running.swap(true, Ordering::AcqRel) {
        return Err(CheckpointError::Running);
    }
    let shared = shared.clone();
    let spawned = std::thread::Builder::new().name("meridian-checkpoint".into()).spawn(move || {
        let durable = shared.node.durable().expect("checked above");
        let started = Instant::now();
        let outcome = write(&shared, durable);
        let mut history = durable.history.lock();
        match outcome {
            Ok(bytes) => {
                history.completed += 1;
                history.last_error = None;
                history.last_duration = started.elapsed();
                tracing::info!(bytes, ms = started.elapsed().as_millis() as u64, "checkpoint written to the flash tier");
            }
            Err(WriteError::Overlapped) => {
                tracing::info!("{}", CheckpointError::Overlapped);
                durable.request_checkpoint();
            }
            Err(WriteError::Durable(e)) => {
                tracing::error!("checkpoint failed: {e}");
                history.last_error = Some(e.to_string());
            }
        }
        durable.running.store(false, Ordering::Release);
    });
    if let Err(e) = spawned {
        durable.running.store(false, Ordering::Release);
        tracing::error!("cannot start a checkpoint thread: {e}");
    }
    Ok(())
}

/// Why [`write`] did not complete.
enum WriteError {
    Durable(DurableError),
    Overlapped,
}

impl<E: Into<DurableError>> From<E> for WriteError {
    fn from(e: E) -> Self {
        WriteError::Durable(e.into())
    }
}

/// Writes the checkpoint; returns the bytes of key states written.
fn write(shared: &Shared, durable: &Durable) -> Result<u64, WriteError> {
    let epoch = durable.transfer_epoch.load(Ordering::Acquire);
    if durable.transfers.load(Ordering::Acquire) > 0 {
        return Err(WriteError::Overlapped);
    }
    let (position, applied) = shared.node.durable_base().expect("the node has this flash tier");
    let log_bytes_at_base = durable.log_bytes.load(Ordering::Relaxed);
    let current = durable.generation.load(Ordering::Relaxed);
    let generation = current.wrapping_add(1);
    let mut total = 0u64;
    let mut states: Vec<(Box<[u8]>, Vec<u8>)> = Vec::new();
    for index in 0..SHARDS {
        states.clear();
        let mut db = shared.keyspace.unlocked();
        let shard_position = db.with_shard(index, |shard| {
            states.extend(shard.entries().map(|e| (e.key[..].into(), rmp_serde::to_vec(&e.state).expect("key states encode"))));
            durable.next_position()
        });
        drop(db);
        total += states.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>();
        durable.store.write_shard(generation, index as u16, shard_position, states.iter().map(|(k, v)| (&k[..], &v[..])))?;
    }
    if durable.transfer_epoch.load(Ordering::Acquire) != epoch {
        durable.store.keep_generation(current)?;
        return Err(WriteError::Overlapped);
    }
    durable.store.set_meta(BASE, &Base { generation, position, applied, checkpoint_bytes: total }.encode())?;
    durable.generation.store(generation, Ordering::Relaxed);
    durable.store.keep_generation(generation)?;
    durable.store.trim_log(position)?;
    durable.checkpoint_bytes.store(total, Ordering::Relaxed);
    durable.log_bytes.fetch_sub(log_bytes_at_base, Ordering::Relaxed);
    Ok(total)
}
