//! The receiving side of a session: applies what the sender streams, and acknowledges.

use crate::message::{Message, MAX_STATE};
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
    /// The key whose state is arriving in pieces, and its bytes so far.
    partial: Option<(Bytes, Vec<u8>)>,
    /// Ops applied in this session.
    pub ops_applied: u64,
}

impl Receiver {
    /// A session of node `me` (called `name`) in `cluster`.
    pub fn new(cluster: impl Into<String>, me: NodeId, name: impl Into<String>) -> Receiver {
        Receiver { cluster: cluster.into(), me, name: name.into(), peer: None, snapshot: None, partial: None, ops_applied: 0 }
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
                    // Every number a peer sends is untrusted: the run's bounds are checked
                    // before any arithmetic on them (sequence numbers start at 1).
                    let end = run.first_seq.checked_add(run.count).filter(|_| run.first_seq > 0);
                    let end = end.ok_or_else(|| ReceiverError::Protocol(format!("run of {} ops of {} from seq {} is out of range", run.count, run.origin, run.first_seq)))?;
                    let mut seq = run.first_seq;
                    for entry in run_entries(run.first_time, &run.entries) {
                        if seq == end {
                            return Err(ReceiverError::Protocol(format!("run of {} ops of {} holds more", run.count, run.origin)));
                        }
                        let (time, tail) = entry.map_err(|e| ReceiverError::Protocol(e.to_string()))?;
                        // `seq - 1` is the op before this one: no overflow at either end.
                        let have = applied.seq(run.origin);
                        if seq - 1 > have {
                            return Err(ReceiverError::Protocol(format!("gap in ops of {}: have {have}, got {seq}", run.origin)));
                        }
                        if seq - 1 == have {
                            let op = Op::decode_tail(run.origin, seq, time, tail).map_err(|e| ReceiverError::Protocol(e.to_string()))?;
                            applied.record(op.origin, op.seq, op.time);
                            store.apply(op, tail);
                            self.ops_applied += 1;
                        }
                        seq += 1;
                    }
                    if seq != end {
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
            Message::SnapshotPiece { key, piece, last } => {
                let theirs = self.snapshot.as_ref().ok_or_else(|| ReceiverError::Protocol("snapshot piece outside a snapshot".into()))?;
                let (held, bytes) = self.partial.get_or_insert_with(|| (key.clone(), Vec::new()));
                if *held != key {
                    return Err(ReceiverError::Protocol("snapshot pieces of two keys interleave".into()));
                }
                if bytes.len() + piece.len() > MAX_STATE {
                    return Err(ReceiverError::Protocol(format!("a key state of more than {MAX_STATE} bytes")));
                }
                bytes.extend_from_slice(&piece);
                if last {
                    let (key, bytes) = self.partial.take().expect("a key is arriving");
                    let state = rmp_serde::from_slice(&bytes).map_err(|e| ReceiverError::Protocol(format!("snapshot piece: {e}")))?;
                    store.merge(key, state, theirs);
                }
                Ok(AckDue::No)
            }
            Message::SnapshotEnd => {
                if self.partial.is_some() {
                    return Err(ReceiverError::Protocol("snapshot ended inside a key's pieces".into()));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::OpRun;
    use meridian_crdt::{push_run_entry, Body, Seen};

    /// A node that only counts what it is given.
    #[derive(Default)]
    struct Counting {
        applied: VersionVector,
        ops: u64,
    }

    impl Store for Counting {
        fn applied(&self) -> VersionVector {
            self.applied.clone()
        }
        fn apply(&mut self, op: Op, _: &[u8]) {
            self.applied.record(op.origin, op.seq, op.time);
            self.ops += 1;
        }
        fn merge(&mut self, _: Bytes, _: KeyState, _: &VersionVector) {}
        fn snapshot_complete(&mut self, _: &VersionVector) {}
    }

    /// A run of `tails` ops of node 7 from `first_seq`, claiming `count`.
    fn run(first_seq: u64, count: u64, tails: usize) -> Message {
        let op =
            Op { origin: NodeId(7), seq: 0, time: 100, key: Bytes::from_static(b"k"), body: Body::Set { seen: Seen::default(), value: Bytes::from_static(b"v"), expire_at: None } };
        let (mut tail, mut entries) = (Vec::new(), Vec::new());
        op.encode_tail(&mut tail);
        for _ in 0..tails {
            push_run_entry(&mut entries, 100, 100, &tail);
        }
        Message::Ops(vec![OpRun { origin: NodeId(7), first_seq, first_time: 100, count, entries: entries.into() }])
    }

    /// Counts and sequence numbers are the peer's word: a run whose bounds overflow, start at
    /// 0 or hold more or fewer ops than it claims ends the session with a protocol error
    /// instead of panicking the node, and applies nothing it should not.
    #[test]
    fn runs_with_absurd_numbers_are_protocol_errors() {
        // (first seq, count claimed, ops held, ops applied before the error)
        for (first_seq, count, tails, applied) in [(1, u64::MAX, 1, 0), (u64::MAX, 1, 1, 0), (u64::MAX, 2, 2, 0), (0, 1, 1, 0), (1, 1, 2, 1), (1, 3, 2, 2)] {
            let mut store = Counting::default();
            let mut receiver = Receiver::new("c", NodeId(1), "a");
            let outcome = receiver.on_message(run(first_seq, count, tails), &mut store);
            assert!(matches!(outcome, Err(ReceiverError::Protocol(_))), "run from {first_seq} of {count} holding {tails}: {outcome:?}");
            assert_eq!(store.ops, applied, "run from {first_seq} of {count} holding {tails}: only well-formed ops are applied");
        }
        let mut store = Counting::default();
        let mut receiver = Receiver::new("c", NodeId(1), "a");
        assert_eq!(receiver.on_message(run(1, 2, 2), &mut store), Ok(AckDue::Soon));
        assert_eq!(store.ops, 2);
    }
}
