//! `meridian salvage [config-file] [--option value ...]`: what an operator runs when a node
//! refuses to start because its flash tier is damaged (a corrupt write-ahead log, records
//! missing from the op log). It keeps a copy of the damaged files, opens the store skipping
//! every record RocksDB cannot read, and reports exactly which log positions are lost. The
//! next start recovers the rest; the node's peers then send it what they have of the lost
//! writes (from their op logs, or by a state transfer).

use super::record::{self, Base};
use super::{BASE, SALVAGED_THROUGH};
use crate::config::Config;
use meridian_flash::{ColdWrites, FlashError, FlashStore};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a salvage could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SalvageError {
    /// The configuration could not be read.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The data dir holds no flash tier.
    #[error("{0}: no flash tier here (nothing to salvage)")]
    Missing(PathBuf),
    /// RocksDB could not open the store even skipping damaged records.
    #[error("{0}")]
    Flash(#[from] FlashError),
    /// The store's metadata is unreadable.
    #[error("{0}")]
    Record(#[from] record::RecordError),
}

/// Salvages the flash tier of the node `args` configure; returns the report.
pub fn run(args: &[String]) -> Result<String, SalvageError> {
    let config = Config::from_args(args, std::env::vars())?;
    let dir = config.dir.clone();
    if !dir.join("flash").is_dir() {
        return Err(SalvageError::Missing(dir));
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let backup = dir.join(format!("flash.damaged-{stamp}"));
    let store = FlashStore::salvage(&dir, &backup, ColdWrites::Logged)?;
    let base = match store.meta(BASE)? {
        Some(bytes) => Base::decode(&bytes)?,
        None => Base::default(),
    };
    let gaps = store.log_gaps(base.position)?;
    let replay = Replay::count(&store, &base)?;
    let through = store.last_log_position()?.map_or(base.position, |last| last + 1);
    store.set_meta(SALVAGED_THROUGH, &through.to_be_bytes())?;
    let lost = match gaps.is_empty() {
        true => "no record is missing".to_string(),
        false => format!("lost: {} record(s), at positions {}", count(&gaps), ranges(&gaps)),
    };
    Ok(format!(
        "salvaged {}: the damaged files are kept as they were in {}; from position {} the op log holds {} readable record(s), replayable: {}, after a lost op of the same origin: {} (ops of one origin apply in order, so these wait for the lost ones); {lost}. The node starts from what is replayable; its peers send it what it lacks, the lost writes included if any peer had them.",
        store.path().display(),
        backup.display(),
        base.position,
        replay.readable,
        replay.replayable,
        replay.after_loss,
    ))
}

/// What a recovery from the salvaged log will make of its records.
#[derive(Debug, Default)]
struct Replay {
    /// Records RocksDB could read.
    readable: u64,
    /// Of those, the ones a recovery applies: key states, and ops that follow their
    /// origin's previous op.
    replayable: u64,
    /// Ops whose origin's previous op is lost: a recovery cannot apply them.
    after_loss: u64,
}

impl Replay {
    fn count(store: &FlashStore, base: &Base) -> Result<Replay, SalvageError> {
        let mut replay = Replay::default();
        let mut next = std::collections::HashMap::new();
        for item in store.log_from(base.position) {
            let (_, bytes) = item?;
            replay.readable += 1;
            match record::decode_record(&bytes)? {
                record::Record::Op(op, _) => {
                    let expected = next.entry(op.origin).or_insert_with(|| base.applied.seq(op.origin) + 1);
                    if op.seq == *expected {
                        replay.replayable += 1;
                        *expected += 1;
                    } else if op.seq > *expected {
                        replay.after_loss += 1;
                    }
                }
                record::Record::State(..) => replay.replayable += 1,
            }
        }
        Ok(replay)
    }
}

/// How many positions `gaps` covers.
pub fn count(gaps: &[Range<u64>]) -> u64 {
    gaps.iter().map(|gap| gap.end - gap.start).sum()
}

/// `gaps` as `a-b, c` (inclusive ranges), for reports and errors.
pub fn ranges(gaps: &[Range<u64>]) -> String {
    let shown: Vec<String> = gaps
        .iter()
        .take(8)
        .map(|gap| match gap.end - gap.start {
            1 => gap.start.to_string(),
            _ => format!("{}-{}", gap.start, gap.end - 1),
        })
        .collect();
    match gaps.len() > shown.len() {
        true => format!("{} and {} more range(s)", shown.join(", "), gaps.len() - shown.len()),
        false => shown.join(", "),
    }
}

/// What an operator can do about a damaged store at `path`.
pub fn remedy(path: &Path) -> String {
    format!(
        "the node does not start without acknowledged writes. Run `meridian salvage` with this node's configuration to keep what can be read (it reports what cannot, and keeps a copy of the damaged files), or move {} away to rebuild this node from its peers",
        path.display()
    )
}
