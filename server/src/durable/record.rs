//! The bytes the durable state is made of: the op log's records, the checkpoint base, and the
//! numbers kept beside them. Pure: no I/O.
//!
//! A log record is an op (its origin, sequence and time, then its encoded tail), or a key's
//! whole state (origin 0, which no op has), written when a cold key is promoted back to RAM:
//! the state left the flash tier, so the log must hold it until the next checkpoint does.

use meridian_crdt::{KeyState, NodeId, Op, VersionVector};
use serde::{Deserialize, Serialize};

/// Bytes before an op's tail in a log record: origin, sequence and time, 8 bytes each.
pub const HEADER: usize = 24;

/// Why stored bytes could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than a record header.
    #[error("log record of {0} bytes is shorter than its header")]
    Short(usize),
    /// The tail does not decode as an op.
    #[error("log record {origin}/{seq}: {reason}")]
    Op {
        /// The op's origin.
        origin: NodeId,
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A state record does not decode.
    #[error("state record: {0}")]
    State(String),
    /// A metadata value is not what this version writes.
    #[error("metadata '{name}': {reason}")]
    Meta {
        /// The value's name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Writes the header of `op`'s record into `out` (cleared first); the caller appends the tail.
pub fn start_record<B>(op: &Op<B>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&op.origin.0.to_be_bytes());
    out.extend_from_slice(&op.seq.to_be_bytes());
    out.extend_from_slice(&op.time.to_be_bytes());
}

/// The record of `key`'s whole `state`.
pub fn state_record(key: &[u8], state: &KeyState) -> Vec<u8> {
    let mut out = vec![0; HEADER];
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    rmp_serde::encode::write(&mut out, state).expect("key states encode");
    out
}

/// One record read back.
#[derive(Debug)]
pub enum Record<'a> {
    /// An op, and its encoded tail (the op log holds ops encoded).
    Op(Box<Op>, &'a [u8]),
    /// A key's whole state.
    State(&'a [u8], KeyState),
}

impl Record<'_> {
    /// The key the record is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Record::Op(op, _) => &op.key,
            Record::State(key, _) => key,
        }
    }
}

/// Reads one record.
pub fn decode_record(bytes: &[u8]) -> Result<Record<'_>, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Short(bytes.len()));
    }
    let word = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (origin, seq, time, tail) = (NodeId(word(0)), word(1), word(2), &bytes[HEADER..]);
    if origin.0 == 0 {
        let (len, rest) = tail.split_at_checked(4).ok_or_else(|| RecordError::State("no key length".into()))?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (key, state) = rest.split_at_checked(len).ok_or_else(|| RecordError::State("key longer than the record".into()))?;
        let state = rmp_serde::from_slice(state).map_err(|e| RecordError::State(e.to_string()))?;
        return Ok(Record::State(key, state));
    }
    let op = Op::decode_tail(origin, seq, time, tail).map_err(|e| RecordError::Op { origin, seq, reason: e.to_string() })?;
    Ok(Record::Op(Box::new(op), tail))
}

/// What the last completed checkpoint covers: every log record before `position`, which
/// made the node's applied vector `applied`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    /// The checkpoint generation holding the key states.
    pub generation: u32,
    /// The first log record a recovery replays.
    pub position: u64,
    /// The node's applied vector at that position.
    pub applied: VersionVector,
    /// Bytes of key states the checkpoint wrote (the next automatic one waits for the log to
    /// outgrow a share of it).
    pub checkpoint_bytes: u64,
}

impl Base {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("a base encodes")
    }

    /// Reads a stored base.
    pub fn decode(bytes: &[u8]) -> Result<Base, RecordError> {
        rmp_serde::from_slice(bytes).map_err(|e| RecordError::Meta { name: "base", reason: e.to_string() })
    }
}

/// Reads a stored 8-byte number.
pub fn decode_u64(name: &'static str, bytes: &[u8]) -> Result<u64, RecordError> {
    let array = <[u8; 8]>::try_from(bytes).map_err(|_| RecordError::Meta { name, reason: format!("{} bytes, not 8", bytes.len()) })?;
    Ok(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_crdt::Body;

    #[test]
    fn a_record_reads_back_as_the_op_it_holds() {
        let op = Op { origin: NodeId(7), seq: 3, time: 99, key: &b"k"[..], body: Body::Del { seen: Default::default() } };
        let mut record = Vec::new();
        start_record(&op, &mut record);
        op.encode_tail(&mut record);
        let Ok(Record::Op(back, tail)) = decode_record(&record) else { panic!("an op record") };
        assert_eq!((back.origin, back.seq, back.time, &back.key[..]), (NodeId(7), 3, 99, &b"k"[..]));
        assert_eq!(tail, &record[HEADER..]);
        assert_eq!(decode_record(&record[..10]).unwrap_err(), RecordError::Short(10));
        assert!(matches!(decode_record(&record[..HEADER + 1]), Err(RecordError::Op { seq: 3, .. })));
    }

    #[test]
    fn a_state_record_reads_back_as_the_state_it_holds() {
        let mut state = KeyState::default();
        let body: Body<&[u8]> = Body::Set { value: b"v", seen: Default::default(), expire_at: None };
        state.apply(meridian_crdt::Stamp { time: 5, node: NodeId(2) }, &body, &VersionVector::new(), NodeId(2));
        let record = state_record(b"key", &state);
        let Ok(Record::State(key, back)) = decode_record(&record) else { panic!("a state record") };
        assert_eq!((key, back), (&b"key"[..], state));
        assert!(matches!(decode_record(&record[..HEADER + 5]), Err(RecordError::State(_))));
    }

    #[test]
    fn a_base_round_trips_and_garbage_is_refused() {
        let mut applied = VersionVector::new();
        applied.record(NodeId(1), 5, 50);
        let base = Base { generation: 3, position: 12, applied, checkpoint_bytes: 1000 };
        assert_eq!(Base::decode(&base.encode()).unwrap(), base);
        assert!(Base::decode(b"\xc1").is_err());
        assert_eq!(decode_u64("seed", &9u64.to_be_bytes()), Ok(9));
        assert!(decode_u64("seed", b"abc").is_err());
    }
}
