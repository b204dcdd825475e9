//! Messages between peers, and their framing on a byte stream.

use bytes::Bytes;
use meridian_crdt::{KeyState, NodeId, VersionVector};
use serde::{Deserialize, Serialize};

/// Largest frame accepted (64 MiB): a corrupt or hostile length prefix cannot make a node
/// allocate more.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First message of both sides of a session.
    Hello {
        /// Cluster id: nodes of different clusters refuse each other.
        cluster: String,
        /// The speaker's node (origin) id.
        node: NodeId,
        /// The speaker's name (stable across restarts, unlike its origin id).
        name: String,
        /// What the speaker has applied.
        applied: VersionVector,
    },
    /// A batch of ops, as runs of one origin's consecutive ops.
    Ops(Vec<OpRun>),
    /// From the receiver: what it has applied, what it knows every node has applied, and its
    /// clock (HLC time) when it said so.
    Ack {
        /// The receiver's vector.
        applied: VersionVector,
        /// The receiver's latest knowledge of each node's vector (for stability).
        known: Vec<(NodeId, VersionVector)>,
        /// The receiver's HLC time, for skew and lag.
        clock: u64,
        /// Frame bytes the receiver has read on this session. What the sender wrote beyond
        /// it still sits in QUIC's buffers: memory that, like Redis's replica output
        /// buffers, `maxmemory` leaves out. (Absent from older peers' acks: read as 0.)
        #[serde(default)]
        received: u64,
    },
    /// A full state transfer begins; the state reflects at least `applied`.
    SnapshotStart {
        /// The sender's vector when the snapshot began.
        applied: VersionVector,
    },
    /// Some key states of the snapshot.
    SnapshotChunk(Vec<(Bytes, KeyState)>),
    /// The snapshot is complete.
    SnapshotEnd,
    /// The session is refused; the reason is logged by both sides.
    Refused(String),
    /// One piece of the state of a key too big for one frame (a list or a collection of
    /// millions of members), in a snapshot: the pieces of one key follow each other, and
    /// together are the key state's encoding (see [`pieces`]).
    SnapshotPiece {
        /// The key.
        key: Bytes,
        /// The next bytes of its encoded state.
        piece: Bytes,
        /// True on the key's last piece.
        last: bool,
    },
}

/// Bytes of encoded state per [`Message::SnapshotPiece`].
pub const PIECE: usize = 4 * 1024 * 1024;

/// The largest key state a snapshot may carry in pieces (1 GiB): a hostile peer cannot make
/// a node buffer more.
pub const MAX_STATE: usize = 1 << 30;

/// `key`'s state as snapshot pieces of [`PIECE`] bytes: how a key whose state could outgrow a
/// frame travels in a state transfer.
pub fn pieces(key: Bytes, state: &KeyState) -> Vec<Message> {
    let encoded = Bytes::from(rmp_serde::to_vec(state).expect("key states encode"));
    let count = encoded.len().div_ceil(PIECE).max(1);
    (0..count).map(|i| Message::SnapshotPiece { key: key.clone(), piece: encoded.slice(i * PIECE..((i + 1) * PIECE).min(encoded.len())), last: i + 1 == count }).collect()
}

/// Consecutive ops of one origin (sequence numbers `first_seq ..= first_seq + count - 1`):
/// their origin, sequence and first time once, then per op its time as a difference from the
/// previous op's and its tail, as `meridian_crdt::push_run_entry` writes them. A SET of a new
/// 16-byte key with a 32-byte value costs 53 to 55 bytes of a run under load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRun {
    /// The ops' origin.
    pub origin: NodeId,
    /// The first op's sequence number.
    pub first_seq: u64,
    /// The first op's HLC time.
    pub first_time: u64,
    /// How many ops.
    pub count: u64,
    /// The ops' times and tails.
    pub entries: Bytes,
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME} byte limit")]
    TooLarge(usize),
    /// The payload is not a message.
    #[error("corrupt frame: {0}")]
    Corrupt(String),
}

/// Appends `message` as a frame: a 4-byte big-endian length, then the MessagePack body.
pub fn encode_frame(message: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write(out, message).expect("messages encode");
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Reads one frame from the front of `buf`: the message and the bytes it used, or `None` if
/// the frame is not complete yet.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    let Some(prefix) = buf.get(..4) else { return Ok(None) };
    let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let Some(body) = buf.get(4..4 + len) else { return Ok(None) };
    let message = rmp_serde::from_slice(body).map_err(|e| FrameError::Corrupt(e.to_string()))?;
    Ok(Some((message, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_garbage() {
        let hello = Message::Hello { cluster: "c".into(), node: NodeId(7), name: "a".into(), applied: VersionVector::new() };
        let mut buf = Vec::new();
        encode_frame(&hello, &mut buf);
        encode_frame(&Message::SnapshotEnd, &mut buf);
        let (first, used) = decode_frame(&buf).unwrap().unwrap();
        assert_eq!(first, hello);
        let (second, rest) = decode_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!((second, used + rest), (Message::SnapshotEnd, buf.len()));
        assert_eq!(decode_frame(&buf[..3]), Ok(None));
        assert_eq!(decode_frame(&buf[..used - 1]), Ok(None));
        assert_eq!(decode_frame(&[0xff, 0xff, 0xff, 0xff]), Err(FrameError::TooLarge(u32::MAX as usize)));
        assert!(matches!(decode_frame(&[0, 0, 0, 2, 0xc1, 0xc1]), Err(FrameError::Corrupt(_))));
    }

    /// The messages as they were before acks carried `received`.
    #[derive(Serialize)]
    enum Before {
        #[allow(dead_code)]
        Hello,
        #[allow(dead_code)]
        Ops,
        Ack {
            applied: VersionVector,
            known: Vec<(NodeId, VersionVector)>,
            clock: u64,
        },
    }

    #[test]
    fn an_ack_from_a_peer_that_does_not_count_bytes_reads_as_zero_received() {
        let mut applied = VersionVector::new();
        applied.record(NodeId(3), 9, 1 << 20);
        let known = vec![(NodeId(4), applied.clone())];
        let old = rmp_serde::to_vec(&Before::Ack { applied: applied.clone(), known: known.clone(), clock: 77 }).unwrap();
        let mut frame = (old.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&old);
        let (message, _) = decode_frame(&frame).unwrap().unwrap();
        assert_eq!(message, Message::Ack { applied: applied.clone(), known: known.clone(), clock: 77, received: 0 });

        let now = Message::Ack { applied, known, clock: 77, received: 1234 };
        let mut buf = Vec::new();
        encode_frame(&now, &mut buf);
        assert_eq!(decode_frame(&buf).unwrap().unwrap().0, now);
    }
}
