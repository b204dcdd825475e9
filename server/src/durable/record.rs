//! The bytes the durable state is made of: one op log record per op, the checkpoint base, and
//! the node identity kept beside them. Pure: no I/O.

use meridian_crdt::{NodeId, Op, VersionVector};
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

/// One record read back: the op, and its encoded tail (the op log holds ops encoded).
pub fn decode_record(bytes: &[u8]) -> Result<(Op, &[u8]), RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Short(bytes.len()));
    }
    let word = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (origin, seq, time, tail) = (NodeId(word(0)), word(1), word(2), &bytes[HEADER..]);
    let op = Op::decode_tail(origin, seq, time, tail).map_err(|e| RecordError::Op { origin, seq, reason: e.to_string() })?;
    Ok((op, tail))
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
        let (back, tail) = decode_record(&record).unwrap();
        assert_eq!((back.origin, back.seq, back.time, &back.key[..]), (NodeId(7), 3, 99, &b"k"[..]));
        assert_eq!(tail, &record[HEADER..]);
        assert_eq!(decode_record(&record[..10]).unwrap_err(), RecordError::Short(10));
        assert!(matches!(decode_record(&record[..HEADER + 1]), Err(RecordError::Op { seq: 3, .. })));
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
