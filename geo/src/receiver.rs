//! The receiving side of a session: applies what the sender streams, and acknowledges.

use crate::message::Message;
use crate::sender::name;
use bytes::Bytes;
use meridian_crdt::{run_entries, KeyState, NodeId, Op, VersionVector};

/// What a receiving session needs from its node.
pub trait Store {
    /// What the node has applied.
    fn applied(&self) -> VersionVector;
    /// Applies a remote op (the next of its origin) through the node's one apply path, logs
    /// it (its `tail` as received), and records it in the node's vector.
    fn apply(&mut self, op: Op, tail: &[u8]);
    /// Merges one key state of a state transfer; `theirs` is what the sender had applied.
    fn merge(&mut self, key: Bytes, state: KeyState, theirs: &VersionVector);
    /// A state transfer is complete. Every key this node holds that was not in the transfer
    /// must be merged with the empty state under `theirs` (the sender had removed and
    /// collected it: what the sender had applied of it is gone); then the node has applied
    /// everything `theirs` covers.
    fn snapshot_complete(&mut self, theirs: &VersionVector);
}

/// Why a receiving session ended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiverError {
    /// The peer is not one to accept.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer broke the protocol; a new session starts over from this node's vector.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// When the sender is owed an ack after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDue {
    /// Nothing changed that the sender waits to hear of.
    No,
    /// Ops were applied: ack them, but a driver may fold the acks of a quick run of batches
    /// into one (an ack carries whole vectors; WAIT and lag figures wait for it).
    Soon,
    /// A state transfer ended: ack at once, the sender's next step depends on it.
    Now,
}

/// The receiving side of one session.
#[derive(Debug)]
pub struct Receiver {
    cluster: String,
    me: NodeId,
    name: String,
    peer: Option<(NodeId, String)>,
    /// A state transfer in progress: what the sender had applied.
    snapshot: Option<VersionVector>,
    /// Ops applied in this session.
    pub ops_applied: u64,
}

impl Receiver {
    /// A session of node `me` (called `name`) in `cluster`.
    pub fn new(cluster: impl Into<String>, me: NodeId, name: impl Into<String>) -> Receiver {
        Receiver { cluster: cluster.into(), me, name: name.into(), peer: None, snapshot: None, ops_applied: 0 }
    }

    /// The sender's id and name, once it has said hello.
    pub fn peer(&self) -> Option<(NodeId, &str)> {
        self.peer.as_ref().map(|(id, name)| (*id, name.as_str()))
    }

    /// Handles the sender's hello; returns this node's hello, which tells the sender where to
    /// start.
    pub fn on_hello(&mut self, message: Message, store: &impl Store) -> Result<Message, ReceiverError> {
        let Message::Hello { cluster, node, name, .. } = message else {
            return Err(ReceiverError::Protocol(format!("expected hello, got {}", name(&message))));
        };
        if cluster != self.cluster {
            return Err(ReceiverError::Refused(format!("peer is in cluster {cluster:?}, this node in {:?}", self.cluster)));
        }
        if node == self.me {
            return Err(ReceiverError::Refused("connected to itself".into()));
        }
        self.peer = Some((node, name));
        Ok(Message::Hello { cluster: self.cluster.clone(), node: self.me, name: self.name.clone(), applied: store.applied() })
    }

    /// Handles ops or a state transfer from the sender, and says when the sender is owed an
    /// ack (see [`AckDue`]).
    pub fn on_message(&mut self, message: Message, store: &mut impl Store) -> Result<AckDue, ReceiverError> {
        match message {
            Message::Ops(runs) => {
                let mut applied = store.applied();
                for run in runs {
                    let mut seq = run.first_seq;
                    for entry in run_entries(run.first_time, &run.entries) {
                        let (time, tail) = entry.map_err(|e| ReceiverError::Protocol(e.to_string()))?;
                        let have = applied.seq(run.origin);
                        if seq > have + 1 {
                            return Err(ReceiverError::Protocol(format!("gap in ops of {}: have {have}, got {seq}", run.origin)));
                        }
                        if seq == have + 1 {
                            let op = Op::decode_tail(run.origin, seq, time, tail).map_err(|e| ReceiverError::Protocol(e.to_string()))?;
                            applied.record(op.origin, op.seq, op.time);
                            store.apply(op, tail);
                            self.ops_applied += 1;
                        }
                        seq += 1;
                    }
                    if seq != run.first_seq + run.count {
                        return Err(ReceiverError::Protocol(format!("run of {} ops of {} held {}", run.count, run.origin, seq - run.first_seq)));
                    }
                }
                Ok(AckDue::Soon)
            }
            Message::SnapshotStart { applied } => {
                self.snapshot = Some(applied);
                Ok(AckDue::No)
            }
            Message::SnapshotChunk(entries) => {
                let theirs = self.snapshot.as_ref().ok_or_else(|| ReceiverError::Protocol("snapshot chunk outside a snapshot".into()))?;
                for (key, state) in entries {
                    store.merge(key, state, theirs);
                }
                Ok(AckDue::No)
            }
            Message::SnapshotEnd => {
                let theirs = self.snapshot.take().ok_or_else(|| ReceiverError::Protocol("snapshot end outside a snapshot".into()))?;
                store.snapshot_complete(&theirs);
                Ok(AckDue::Now)
            }
            Message::Refused(reason) => Err(ReceiverError::Refused(reason)),
            other => Err(ReceiverError::Protocol(format!("unexpected {} from a sender", name(&other)))),
        }
    }

    /// The ack to send: this node's vector, its knowledge of the others', its clock, and
    /// the frame bytes it has read on this session (`received`).
    pub fn ack(&self, store: &impl Store, known: Vec<(NodeId, VersionVector)>, clock: u64, received: u64) -> Message {
        Message::Ack { applied: store.applied(), known, clock, received }
    }
}
