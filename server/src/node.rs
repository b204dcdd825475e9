//! This node's identity, hybrid logical clock and op log: where local writes become ops.

use crate::oplog::OpLog;
use meridian_crdt::{Body, Frontier, NodeId, Op, Stamp, VersionVector};
use parking_lot::Mutex;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// File in the data dir holding the node id.
const ID_FILE: &str = "node.id";

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data dir or the id file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The id file exists but does not hold an id.
    #[error("{path}: {source}")]
    BadId {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        source: meridian_crdt::ParseNodeIdError,
    },
}

/// What a local write has seen is, by construction, applied here.
pub struct SeenLocally;

impl Frontier for SeenLocally {
    fn covers(&self, _: Stamp) -> bool {
        true
    }
}

/// Sequence numbers, the op log and the version vector, changed together under one lock so
/// that the log holds each origin's ops in sequence order.
struct Journal {
    next_seq: u64,
    log: OpLog,
    applied: VersionVector,
}

/// Op log figures for INFO.
#[derive(Debug, Clone, Copy)]
pub struct LogStats {
    /// Ops ever appended.
    pub appended: u64,
    /// Ops held.
    pub ops: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Size bound.
    pub max_bytes: usize,
    /// Sequence number of the oldest op held.
    pub first_seq: u64,
}

/// This node: who it is, its clock, and the log of ops it made or applied.
pub struct Node {
    id: NodeId,
    hlc: uhlc::HLC,
    journal: Mutex<Journal>,
}

impl Node {
    /// Opens the node whose identity lives in `dir` (created on first start).
    pub fn open(dir: &Path, log_bytes: usize) -> Result<Node, NodeError> {
        let id = load_or_create_id(dir)?;
        Ok(Node::with_id(id, log_bytes))
    }

    /// A node with a given identity (tests and tools).
    pub fn with_id(id: NodeId, log_bytes: usize) -> Node {
        let hlc_id = uhlc::ID::from(NonZeroU64::new(id.0).expect("node ids are never zero"));
        Node {
            id,
            hlc: uhlc::HLCBuilder::new().with_id(hlc_id).build(),
            journal: Mutex::new(Journal { next_seq: 1, log: OpLog::new(log_bytes), applied: VersionVector::new() }),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Turns a local write into an op: the next sequence number, a fresh HLC stamp, logged.
    /// The caller applies it while still holding the key's shard.
    pub fn stamp<'a>(&self, key: &'a [u8], body: Body<&'a [u8]>) -> Op<&'a [u8]> {
        let mut journal = self.journal.lock();
        let seq = journal.next_seq;
        journal.next_seq += 1;
        let time = self.hlc.new_timestamp().get_time().as_u64();
        let op = Op { origin: self.id, seq, time, key, body };
        journal.log.append(&op);
        journal.applied.record(self.id, seq, time);
        op
    }

    /// Op log figures.
    pub fn log_stats(&self) -> LogStats {
        let journal = self.journal.lock();
        LogStats {
            appended: journal.log.appended(),
            ops: journal.log.len_ops(),
            bytes: journal.log.len_bytes(),
            max_bytes: journal.log.max_bytes(),
            first_seq: journal.log.first().map_or(0, |(_, seq)| seq),
        }
    }

    /// Changes the op log's size bound.
    pub fn set_log_size(&self, bytes: usize) {
        self.journal.lock().log.set_max_bytes(bytes);
    }

    /// The ops held in the log, oldest first (what a peer catching up would receive).
    #[cfg(test)]
    pub fn logged_ops(&self) -> Vec<Op> {
        self.journal.lock().log.ops().collect()
    }

    /// What this node has applied, per origin.
    #[cfg(test)]
    pub fn applied(&self) -> VersionVector {
        self.journal.lock().applied.clone()
    }
}

fn load_or_create_id(dir: &Path) -> Result<NodeId, NodeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NodeError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.parse().map_err(|source| NodeError::BadId { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId(rand::random::<u64>().max(1));
            let tmp = dir.join(format!("{ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n")).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(id)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists_in_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("meridian-node-test-{}", std::process::id()));
        let first = Node::open(&dir, 1024).unwrap().id();
        assert_eq!(Node::open(&dir, 1024).unwrap().id(), first);
        std::fs::write(dir.join(ID_FILE), "garbage").unwrap();
        assert!(matches!(Node::open(&dir, 1024), Err(NodeError::BadId { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ops_get_dense_sequences_and_increasing_stamps() {
        let node = Node::with_id(NodeId(7), 1 << 20);
        let body = || Body::Del { seen: Default::default() };
        let a = node.stamp(b"k", body());
        let b = node.stamp(b"k", body());
        assert_eq!((a.seq, b.seq), (1, 2));
        assert!(b.stamp() > a.stamp());
        let logged: Vec<(u64, u64)> = node.logged_ops().iter().map(|o| (o.seq, o.time)).collect();
        assert_eq!(logged, vec![(a.seq, a.time), (b.seq, b.time)]);
        assert_eq!(node.applied().seq(NodeId(7)), 2);
    }
}
