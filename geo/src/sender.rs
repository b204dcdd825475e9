//! The sending side of a session: handshake, catch-up or state transfer, live streaming.

use crate::message::{Message, OpRun};
use bytes::Bytes;
use meridian_crdt::{push_run_entry, NodeId, VersionVector};
use std::collections::BTreeMap;

/// One op as a node's op log holds it: its identity, its time and its encoded tail (key and
/// body, see `meridian_crdt::Op::encode_tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedOp<'a> {
    /// The op's origin.
    pub origin: NodeId,
    /// Its sequence number at the origin.
    pub seq: u64,
    /// Its HLC time.
    pub time: u64,
    /// The encoded tail, where the log holds it.
    pub tail: &'a [u8],
}

/// Read access to a node's op log. Positions count ops ever appended, so they only grow; the
/// oldest ops are trimmed away as the log fills.
pub trait OpSource {
    /// The position after the newest op.
    fn end(&self) -> u64;
    /// The position of the oldest op held.
    fn first(&self) -> u64;
    /// Up to `max` ops from position `from`, oldest first; `None` if `from` was trimmed away.
    fn read(&self, from: u64, max: usize) -> Option<Vec<LoggedOp<'_>>>;
    /// For a session at position `from` before [`OpSource::first`]: a vector covering every
    /// op it missed, if they all went because every member had applied them (it may skip
    /// them); `None` if some went for space.
    fn stable_skip(&self, from: u64) -> Option<&VersionVector>;
    /// The position of op `after + 1` of `origin`, if the log holds every op of that origin
    /// from `after + 1` through `through`; `None` if some are not held (trimmed, or never
    /// logged because they arrived in a state transfer).
    fn position_after(&self, origin: NodeId, after: u64, through: u64) -> Option<u64>;
}

/// How nodes are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Every node sends to every other node.
    Mesh,
    /// Every node sends to its successor only, which forwards.
    Ring,
}

/// Which origins' ops a sender passes to one peer.
#[derive(Clone, Debug)]
pub struct Relay {
    /// The topology.
    pub topology: Topology,
    /// The sending node.
    pub me: NodeId,
    /// The receiving peer.
    pub peer: NodeId,
    /// The cluster's live members (current node ids).
    pub live: Vec<NodeId>,
}

impl Relay {
    /// True if ops of `origin` go to the peer: never its own; in a ring everyone else's; in a
    /// mesh this node's own, and those of origins no live member speaks for (an earlier
    /// incarnation of a restarted node), which no one else would send.
    pub fn sends(&self, origin: NodeId) -> bool {
        origin != self.peer && (self.topology == Topology::Ring || origin == self.me || !self.live.contains(&origin))
    }
}

/// Why a sending session ended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SenderError {
    /// The peer refused the session, or this side refused the peer.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer fell so far behind that the op log no longer holds what it lacks; a new
    /// session will transfer the state.
    #[error("peer fell behind the op log")]
    Lagged,
}

/// Figures for INFO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Ops sent in this session.
    pub ops_sent: u64,
    /// Full state transfers begun.
    pub snapshots: u64,
}

#[derive(Debug)]
enum State {
    AwaitingHello,
    Streaming { cursor: u64 },
}

/// The sending side of one session.
#[derive(Debug)]
pub struct Sender {
    cluster: String,
    me: NodeId,
    name: String,
    peer_name: String,
    topology: Topology,
    state: State,
    relay: Option<Relay>,
    /// What the peer has applied, from its hello and acks.
    peer_applied: VersionVector,
    /// Per origin, the highest sequence the peer has or was sent in this session.
    offered: BTreeMap<NodeId, u64>,
    /// Figures for INFO.
    pub stats: SenderStats,
}

/// How a session starts once the receiver has said hello.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// Stream from the op log: it holds all the peer lacks.
    Stream,
    /// Send a full state transfer first.
    Snapshot,
}

impl Sender {
    /// A session of node `me` (called `name`) in `cluster`.
    pub fn new(cluster: impl Into<String>, me: NodeId, name: impl Into<String>, topology: Topology) -> Sender {
        Sender {
            cluster: cluster.into(),
            me,
            name: name.into(),
            peer_name: String::new(),
            topology,
            state: State::AwaitingHello,
            relay: None,
            peer_applied: VersionVector::new(),
            offered: BTreeMap::new(),
            stats: SenderStats::default(),
        }
    }

    /// The first message to send.
    pub fn hello(&self, applied: VersionVector) -> Message {
        Message::Hello { cluster: self.cluster.clone(), node: self.me, name: self.name.clone(), applied }
    }

    /// The peer's name, once it has said hello.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The peer, once it has said hello.
    pub fn peer(&self) -> Option<NodeId> {
        self.relay.as_ref().map(|r| r.peer)
    }

    /// What the peer has acknowledged applying.
    pub fn peer_applied(&self) -> &VersionVector {
        &self.peer_applied
    }

    /// Handles the receiver's hello: checks it, and decides between streaming from the log
    /// and a state transfer. `applied` is what this node has applied, `live` the cluster's
    /// live members.
    pub fn on_hello(&mut self, message: Message, log: &impl OpSource, applied_here: &VersionVector, live: Vec<NodeId>) -> Result<Start, SenderError> {
        let (cluster, node, name, applied) = match message {
            Message::Hello { cluster, node, name, applied } => (cluster, node, name, applied),
            Message::Refused(reason) => return Err(SenderError::Refused(reason)),
            other => return Err(SenderError::Protocol(format!("expected hello, got {}", name(&other)))),
        };
        if cluster != self.cluster {
            return Err(SenderError::Refused(format!("peer is in cluster {cluster:?}, this node in {:?}", self.cluster)));
        }
        if node == self.me {
            return Err(SenderError::Refused("connected to itself".into()));
        }
        self.peer_name = name;
        let relay = Relay { topology: self.topology, me: self.me, peer: node, live };
        let start = match catch_up_from(log, applied_here, &applied, &relay) {
            Some(cursor) => {
                self.state = State::Streaming { cursor };
                Start::Stream
            }
            None => {
                // Ops from here on are streamed after the snapshot; those the snapshot already
                // reflects are applied twice, harmlessly.
                self.state = State::Streaming { cursor: log.end() };
                self.stats.snapshots += 1;
                Start::Snapshot
            }
        };
        self.relay = Some(relay);
        self.offered = applied.iter().map(|(origin, seq, _)| (origin, seq)).collect();
        if start == Start::Snapshot {
            // The snapshot carries everything this node has applied.
            offer(&mut self.offered, applied_here);
        }
        self.peer_applied = applied;
        Ok(start)
    }

    /// The next batch of at most `max` ops the peer lacks, if any. `applied_here` is what this
    /// node has applied.
    ///
    /// `Err(Lagged)` when the log cannot give the peer all it lacks: trimmed past this
    /// session's position, or holding a later op of an origin whose earlier ones this node got
    /// in a state transfer (never logged), or, with the log exhausted, this node having applied
    /// ops the peer lacks that no log will ever hold. The next session transfers the state.
    pub fn next_batch(&mut self, log: &impl OpSource, applied_here: &VersionVector, max: usize) -> Result<Option<Message>, SenderError> {
        let (State::Streaming { cursor }, Some(relay)) = (&mut self.state, &self.relay) else {
            return Ok(None);
        };
        if *cursor < log.first() {
            // Ops every member has applied left the log: the peer has them too.
            offer(&mut self.offered, log.stable_skip(*cursor).ok_or(SenderError::Lagged)?);
            *cursor = log.first();
        }
        let mut batch = Batch::default();
        while batch.runs.is_empty() && *cursor < log.end() {
            let ops = log.read(*cursor, max).ok_or(SenderError::Lagged)?;
            *cursor += ops.len() as u64;
            // Ops come in runs of one origin: its relay rule and offered seq are looked up
            // once per run, not per op.
            let mut current: Option<(NodeId, bool, u64)> = None;
            for op in ops {
                let (origin, sends, offered) = match current {
                    Some(c) if c.0 == op.origin => c,
                    _ => {
                        if let Some((origin, _, seq)) = current {
                            self.offered.insert(origin, seq);
                        }
                        (op.origin, relay.sends(op.origin), self.offered.get(&op.origin).copied().unwrap_or(0))
                    }
                };
                current = Some((origin, sends, offered));
                if !sends || op.seq <= offered {
                    continue;
                }
                if op.seq != offered + 1 {
                    return Err(SenderError::Lagged);
                }
                current = Some((origin, sends, op.seq));
                batch.push(&op);
            }
            if let Some((origin, _, seq)) = current {
                self.offered.insert(origin, seq);
            }
        }
        if batch.runs.is_empty() && *cursor >= log.end() {
            let missing = applied_here.iter().any(|(origin, seq, _)| relay.sends(origin) && seq > self.offered.get(&origin).copied().unwrap_or(0));
            if missing {
                return Err(SenderError::Lagged);
            }
        }
        self.stats.ops_sent += batch.ops;
        Ok((!batch.runs.is_empty()).then(|| Message::Ops(batch.finish())))
    }

    /// Handles a message from the receiver after the hello: an ack (returned, for the
    /// caller's stability and lag bookkeeping) or a refusal.
    pub fn on_message(&mut self, message: Message) -> Result<Message, SenderError> {
        match message {
            Message::Ack { ref applied, .. } => {
                self.peer_applied.join(applied);
                offer(&mut self.offered, applied);
                Ok(message)
            }
            Message::Refused(reason) => Err(SenderError::Refused(reason)),
            other => Err(SenderError::Protocol(format!("unexpected {} from a receiver", name(&other)))),
        }
    }
}

/// Ops being gathered into one frame: runs of one origin's consecutive ops.
#[derive(Default)]
struct Batch {
    runs: Vec<OpRun>,
    /// Entries of the last run, still growing.
    open: Vec<u8>,
    /// Time of the last op added (the next entry's time is relative to it).
    last_time: u64,
    ops: u64,
}

impl Batch {
    fn push(&mut self, op: &LoggedOp<'_>) {
        let continues = self.runs.last().is_some_and(|run| run.origin == op.origin && run.first_seq + run.count == op.seq);
        if !continues {
            self.close_run();
            self.runs.push(OpRun { origin: op.origin, first_seq: op.seq, first_time: op.time, count: 0, entries: Bytes::new() });
            self.last_time = op.time;
        }
        push_run_entry(&mut self.open, self.last_time, op.time, op.tail);
        self.runs.last_mut().expect("a run was just ensured").count += 1;
        self.last_time = op.time;
        self.ops += 1;
    }

    fn close_run(&mut self) {
        if let Some(run) = self.runs.last_mut() {
            run.entries = Bytes::from(std::mem::take(&mut self.open));
        }
    }

    /// The runs, complete.
    fn finish(mut self) -> Vec<OpRun> {
        self.close_run();
        self.runs
    }
}

/// Records that the peer has, or was sent, everything `vv` covers.
fn offer(offered: &mut BTreeMap<NodeId, u64>, vv: &VersionVector) {
    for (origin, seq, _) in vv.iter() {
        let entry = offered.entry(origin).or_default();
        *entry = (*entry).max(seq);
    }
}

/// The log position from which every op the peer lacks (and this node relays to it) can be
/// streamed, or `None` if the log does not hold them all.
fn catch_up_from(log: &impl OpSource, mine: &VersionVector, theirs: &VersionVector, relay: &Relay) -> Option<u64> {
    let mut from = log.end();
    for (origin, seq, _) in mine.iter() {
        let have = theirs.seq(origin);
        if relay.sends(origin) && seq > have {
            from = from.min(log.position_after(origin, have, seq)?);
        }
    }
    Some(from)
}

/// A message's name, for errors.
pub(crate) fn name(message: &Message) -> &'static str {
    match message {
        Message::Hello { .. } => "hello",
        Message::Ops(_) => "ops",
        Message::Ack { .. } => "ack",
        Message::SnapshotStart { .. } => "snapshot start",
        Message::SnapshotChunk(_) => "snapshot chunk",
        Message::SnapshotPiece { .. } => "snapshot piece",
        Message::SnapshotEnd => "snapshot end",
        Message::Refused(_) => "refusal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_rules() {
        let (a, b, c, old) = (NodeId(1), NodeId(2), NodeId(3), NodeId(9));
        let mesh = Relay { topology: Topology::Mesh, me: a, peer: b, live: vec![a, b, c] };
        assert!(mesh.sends(a) && !mesh.sends(b) && !mesh.sends(c) && mesh.sends(old));
        let ring = Relay { topology: Topology::Ring, ..mesh };
        assert!(ring.sends(a) && !ring.sends(b) && ring.sends(c) && ring.sends(old));
    }

    fn op(origin: NodeId, seq: u64) -> meridian_crdt::Op {
        let body = meridian_crdt::Body::Del { seen: Default::default() };
        meridian_crdt::Op { origin, seq, time: seq, key: Bytes::from_static(b"k"), body }
    }

    fn sent(batch: Option<Message>) -> Vec<(NodeId, u64)> {
        let Some(Message::Ops(runs)) = batch else { return Vec::new() };
        runs.iter().flat_map(|run| (0..run.count).map(|i| (run.origin, run.first_seq + i))).collect()
    }

    #[test]
    fn a_session_skips_ops_every_member_applied_but_not_ops_lost_for_space() {
        let (a, b) = (NodeId(1), NodeId(2));
        let mut log = crate::OpLog::new(1 << 20);
        let mut applied = VersionVector::new();
        // A ring session from a to b: it will relay a's ops (b's own it skips).
        let mut sender = Sender::new("c", a, "a", Topology::Ring);
        let hello = Message::Hello { cluster: "c".into(), node: b, name: "b".into(), applied: VersionVector::new() };
        assert_eq!(sender.on_hello(hello, &log, &applied, vec![a, b]), Ok(Start::Stream));
        for seq in 1..=3 {
            log.append(&op(b, seq));
            applied.record(b, seq, seq);
        }
        log.append(&op(a, 1));
        applied.record(a, 1, 1);
        // Before the session reads, b's ops become stable and leave the log.
        let mut stable = VersionVector::new();
        (1..=3).for_each(|seq| stable.record(b, seq, seq));
        log.trim_stable(&stable);
        assert_eq!(sent(sender.next_batch(&log, &applied, 10).unwrap()), vec![(a, 1)]);
        // Ops dropped for space are another matter: the peer lacks them.
        let mut behind = Sender::new("c", a, "a", Topology::Ring);
        let hello = Message::Hello { cluster: "c".into(), node: b, name: "b".into(), applied: VersionVector::new() };
        let mut log = crate::OpLog::new(1 << 20);
        assert_eq!(behind.on_hello(hello, &log, &VersionVector::new(), vec![a, b]), Ok(Start::Stream));
        (1..=3).for_each(|seq| log.append(&op(a, seq)));
        log.set_max_bytes(1);
        assert_eq!(behind.next_batch(&log, &applied, 10), Err(SenderError::Lagged));
    }
}
