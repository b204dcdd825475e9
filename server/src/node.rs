//! This node's identity, hybrid logical clock and op log: where local writes become ops.

use crate::durable::{record, Durable};
use meridian_crdt::{ms_of_hlc_time, Body, Frontier, NodeId, Op, Stamp, VersionVector};
use meridian_geo::OpLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// The flash tier could not be opened or read.
    #[error(transparent)]
    Durable(#[from] crate::durable::DurableError),
}

/// What this node has applied, read live from its journal: the frontier every op, local or
/// remote, and every merge is applied against. A local write's own `seen` is applied by
/// construction, but the key may hold removals that an earlier remote op named and this node
/// has not yet received; they must stay until those writes arrive, so local writes need the
/// real frontier too.
pub struct Applied<'a>(pub &'a Node);

impl Frontier for Applied<'_> {
    fn covers(&self, stamp: Stamp) -> bool {
        self.0.with_log(|_, applied| applied.covers(stamp))
    }
}

/// What a write may garbage-collect as it applies. A node without peers is its own stability
/// frontier: everything it applied is stable at once. With peers, nothing is collected on the
/// write path; the housekeeping sweep collects at the frontier the acks establish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStability {
    /// No peers configured.
    Alone,
    /// Peers configured.
    Replicated,
}

impl Frontier for WriteStability {
    fn covers(&self, _: Stamp) -> bool {
        *self == WriteStability::Alone
    }
}

/// What happened to a remote op offered to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Recorded and logged: apply it.
    Fresh,
    /// Already applied (it came another way too): drop it.
    Duplicate,
    /// An earlier op of its origin is missing: the session must resynchronise.
    Gap,
}

/// Clock skew seen in one origin's ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skew {
    /// How far ahead of this node's clock the origin's latest op was, in ms (negative: behind).
    pub last_ms: i64,
    /// Ops that were further ahead than the HLC accepts (applied anyway; the clock was not
    /// moved past its bound).
    pub rejected: u64,
}

/// Sequence numbers, the op log and the version vector, changed together under one lock so
/// that the log holds each origin's ops in sequence order.
struct Journal {
    next_seq: u64,
    log: OpLog,
    applied: VersionVector,
    skew: HashMap<NodeId, Skew>,
    /// The durable record being written: header, then the op's tail (which the op log gets).
    record: Vec<u8>,
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
    /// Bytes allocated (see `OpLog::allocated_bytes`).
    pub allocated: usize,
    /// Size bound.
    pub max_bytes: usize,
    /// Position of the oldest op held.
    pub first_position: u64,
}

/// This node: who it is, its clock, and the log of ops it made or applied.
///
/// Two identities: `node_id` is the node's name for people (persistent in the data dir);
/// `origin` is what its ops carry. Every start is a new *incarnation* with a fresh random
/// origin, so a restarted node can never reuse an `(origin, seq)` its peers have already seen,
/// even if a power cut took ops it had already sent them. With a flash tier the state and the
/// applied vector survive the restart (earlier incarnations' ops included), so peers send it
/// only what it missed.
pub struct Node {
    node_id: NodeId,
    origin: NodeId,
    hlc: uhlc::HLC,
    journal: Mutex<Journal>,
    durable: Option<Arc<Durable>>,
    hash_seed: u64,
}

impl Node {
    /// Opens the node whose identity lives in `dir` (created on first start), as a new
    /// incarnation, writing its ops to `durable` if given.
    pub fn open(dir: &Path, log_bytes: usize, durable: Option<Arc<Durable>>) -> Result<Node, NodeError> {
        let node_id = load_or_create_id(dir)?;
        let mut node = Node::new(node_id, NodeId(rand::random::<u64>().max(1)), log_bytes);
        if let Some(durable) = durable {
            node.hash_seed = durable.hash_seed();
            node.durable = Some(durable);
        }
        Ok(node)
    }

    /// A node with given identities and no flash tier.
    pub fn new(node_id: NodeId, origin: NodeId, log_bytes: usize) -> Node {
        let hlc_id = uhlc::ID::from(NonZeroU64::new(origin.0).expect("origins are never zero"));
        let journal = Journal { next_seq: 1, log: OpLog::new(log_bytes), applied: VersionVector::new(), skew: HashMap::new(), record: Vec::new() };
        let hlc = uhlc::HLCBuilder::new().with_id(hlc_id).with_clock(crate::clock::hlc_now).build();
        Node { node_id, origin, hlc, journal: Mutex::new(journal), durable: None, hash_seed: rand::random() }
    }

    /// The flash tier's durable log, if `appendonly` is on.
    pub fn durable(&self) -> Option<&Arc<Durable>> {
        self.durable.as_ref()
    }

    /// The seed the keyspace hashes keys with (kept by the flash tier across restarts).
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// The origin this incarnation's ops carry.
    pub fn id(&self) -> NodeId {
        self.origin
    }

    /// The node's persistent id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Turns a local write into an op: the next sequence number, a fresh HLC stamp, logged.
    /// The caller applies it while still holding the key's shard.
    pub fn stamp<'a>(&self, key: &'a [u8], body: Body<&'a [u8]>) -> Op<&'a [u8]> {
        let mut journal = self.journal.lock();
        let seq = journal.next_seq;
        journal.next_seq += 1;
        let time = self.hlc.new_timestamp().get_time().as_u64();
        let op = Op { origin: self.origin, seq, time, key, body };
        match &self.durable {
            None => journal.log.append(&op),
            Some(durable) => {
                let Journal { log, record, .. } = &mut *journal;
                record::start_record(&op, record);
                op.encode_tail(record);
                log.append_encoded(op.origin, seq, time, &record[record::HEADER..]);
                durable.append(record);
            }
        }
        journal.applied.record(self.origin, seq, time);
        op
    }

    /// Offers a remote op to the journal: if it is the next of its origin, records it as
    /// applied, logs it (for relaying and catch-up) and moves the clock past it. The caller
    /// holds the key's shard and applies the op if `Fresh`.
    ///
    /// Clock skew policy: a replication stream cannot drop ops, so an op stamped further ahead
    /// than the HLC accepts is applied anyway, but this node's clock does not jump past its
    /// bound; the event is counted per origin and logged (at most once a minute per origin).
    pub fn accept_remote(&self, op: &Op, tail: &[u8]) -> Accepted {
        let mut journal = self.journal.lock();
        let accepted = self.admit(&mut journal, op, tail);
        if let (Accepted::Fresh, Some(durable)) = (accepted, &self.durable) {
            let record = &mut journal.record;
            record::start_record(op, record);
            record.extend_from_slice(tail);
            durable.append(record);
        }
        accepted
    }

    /// Offers an op read back from the durable log at start, as [`Node::accept_remote`] does
    /// (whatever its origin: earlier incarnations of this node included) but without writing
    /// it to the durable log again.
    pub fn replay(&self, op: &Op, tail: &[u8]) -> Accepted {
        self.admit(&mut self.journal.lock(), op, tail)
    }

    fn admit(&self, journal: &mut Journal, op: &Op, tail: &[u8]) -> Accepted {
        let have = journal.applied.seq(op.origin);
        if op.seq <= have {
            return Accepted::Duplicate;
        }
        if op.seq != have + 1 {
            return Accepted::Gap;
        }
        journal.applied.record(op.origin, op.seq, op.time);
        journal.log.append_encoded(op.origin, op.seq, op.time, tail);
        self.observe_time(journal, op.origin, op.time);
        Accepted::Fresh
    }

    fn observe_time(&self, journal: &mut Journal, origin: NodeId, time: u64) {
        let now = crate::clock::hlc_now().as_u64();
        let skew = journal.skew.entry(origin).or_default();
        skew.last_ms = ms_of_hlc_time(time) as i64 - ms_of_hlc_time(now) as i64;
        let stamp = uhlc::Timestamp::new(uhlc::NTP64(time), uhlc::ID::from(NonZeroU64::new(origin.0.max(1)).expect("nonzero")));
        if self.hlc.update_with_timestamp(&stamp).is_err() {
            skew.rejected += 1;
            if skew.rejected == 1 || skew.rejected.is_multiple_of(10_000) {
                tracing::warn!(origin = %origin, ahead_ms = skew.last_ms, rejected = skew.rejected, "op stamped beyond the clock-skew bound: applied, clock not moved past the bound");
            }
        }
    }

    /// Records that a state transfer brought everything `theirs` covers.
    pub fn join_applied(&self, theirs: &VersionVector) {
        let mut journal = self.journal.lock();
        journal.applied.join(theirs);
        for (origin, _, time) in theirs.iter() {
            self.observe_time(&mut journal, origin, time);
        }
    }

    /// The durable log position and the applied vector, read together under the journal lock:
    /// what a checkpoint starts from.
    pub fn durable_base(&self) -> Option<(u64, VersionVector)> {
        let durable = self.durable.as_ref()?;
        let journal = self.journal.lock();
        Some((durable.next_position(), journal.applied.clone()))
    }

    /// Runs `f` on the op log and what this node has applied, under the journal lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&OpLog, &VersionVector) -> R) -> R {
        let journal = self.journal.lock();
        f(&journal.log, &journal.applied)
    }

    /// Clock skew seen per origin.
    pub fn skew(&self) -> Vec<(NodeId, Skew)> {
        self.journal.lock().skew.iter().map(|(o, s)| (*o, *s)).collect()
    }

    /// A fresh HLC time (acks carry it).
    pub fn now(&self) -> u64 {
        self.hlc.new_timestamp().get_time().as_u64()
    }

    /// Op log figures.
    pub fn log_stats(&self) -> LogStats {
        let journal = self.journal.lock();
        LogStats {
            appended: journal.log.appended(),
            ops: journal.log.len_ops(),
            bytes: journal.log.len_bytes(),
            allocated: journal.log.allocated_bytes(),
            max_bytes: journal.log.max_bytes(),
            first_position: journal.log.first_position(),
        }
    }

    /// Drops from the op log the ops every member has applied (`stable`).
    pub fn trim_log(&self, stable: &VersionVector) {
        self.journal.lock().log.trim_stable(stable);
    }

    /// Changes the op log's size bound.
    pub fn set_log_size(&self, bytes: usize) {
        self.journal.lock().log.set_max_bytes(bytes);
    }

    /// What this node has applied, per origin.
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
    use meridian_geo::OpSource;

    #[test]
    fn identity_persists_in_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("meridian-node-test-{}", std::process::id()));
        let (first, first_origin) = {
            let node = Node::open(&dir, 1024, None).unwrap();
            (node.node_id(), node.id())
        };
        let again = Node::open(&dir, 1024, None).unwrap();
        assert_eq!(again.node_id(), first);
        assert_ne!(again.id(), first_origin, "every start is a new incarnation");
        std::fs::write(dir.join(ID_FILE), "garbage").unwrap();
        assert!(matches!(Node::open(&dir, 1024, None), Err(NodeError::BadId { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ops_get_dense_sequences_and_increasing_stamps() {
        let node = Node::new(NodeId(1), NodeId(7), 1 << 20);
        let body = || Body::Del { seen: Default::default() };
        let a = node.stamp(b"k", body());
        let b = node.stamp(b"k", body());
        assert_eq!((a.seq, b.seq), (1, 2));
        assert!(b.stamp() > a.stamp());
        let logged: Vec<u64> = node.with_log(|log, _| log.read(0, 10).unwrap().iter().map(|o| o.seq).collect());
        assert_eq!(logged, vec![1, 2]);
        assert_eq!(node.applied().seq(NodeId(7)), 2);
    }

    #[test]
    fn remote_ops_apply_once_and_in_order() {
        let node = Node::new(NodeId(1), NodeId(7), 1 << 20);
        let remote = |seq| Op { origin: NodeId(9), seq, time: seq, key: bytes::Bytes::from_static(b"k"), body: Body::Del { seen: Default::default() } };
        let accept = |seq| {
            let (op, mut tail) = (remote(seq), Vec::new());
            op.encode_tail(&mut tail);
            node.accept_remote(&op, &tail)
        };
        assert_eq!(accept(1), Accepted::Fresh);
        assert_eq!(accept(1), Accepted::Duplicate);
        assert_eq!(accept(3), Accepted::Gap);
        assert_eq!(accept(2), Accepted::Fresh);
        assert_eq!(node.applied().seq(NodeId(9)), 2);
        let logged: Vec<Op> = node.with_log(|log, _| log.read(0, 10).unwrap().iter().map(|o| Op::decode_tail(o.origin, o.seq, o.time, o.tail).unwrap()).collect());
        assert_eq!(logged, vec![remote(1), remote(2)], "logged as received");
        assert!(node.skew()[0].1.last_ms < 0, "stamped in 1970: far behind");
    }
}
