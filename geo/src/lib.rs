//! Meridian's replication protocol, as a sans-IO core.
//!
//! Nothing here opens a socket, spawns a task or reads a clock: sessions are state machines
//! fed with messages (and, where time matters, the current time as an argument), returning
//! messages to send. The quinn/tokio driver in the server only moves their bytes; the seeded
//! simulator in `tests/simulation.rs` drives the very same code through thousands of
//! schedules with delays, disconnections and partitions, deterministically.
//!
//! ## The protocol
//!
//! Every node dials every peer it sends to, and on that connection it is the *sender*; the
//! peer is the *receiver*. (A pair of nodes in a mesh therefore has two connections, one per
//! direction of data; acks flow back on each.)
//!
//! 1. Both sides say [`Message::Hello`]: cluster id, node id, and what they have applied (a
//!    version vector). A peer from another cluster, or a node talking to itself, is refused.
//! 2. The sender compares the receiver's vector with its op log. If the log still holds every
//!    op the receiver lacks (for the origins this sender relays), it streams them from there:
//!    a partial resync. Otherwise it sends a consistent snapshot of its key states
//!    ([`Message::SnapshotStart`] .. [`Message::SnapshotEnd`]), which the receiver merges —
//!    state merge is idempotent and keeps concurrent writes — then streams from the log
//!    position at which the snapshot began. Ops the snapshot already reflects are applied a
//!    second time harmlessly.
//! 3. Live: new ops are sent in batches as they reach the log. The receiver applies each
//!    origin's ops in order, drops duplicates by `(origin, seq)`, and acknowledges with its
//!    vector and what it knows of everyone else's; acks drive lag figures, WAIT, op-log
//!    trimming and the causal-stability frontier that garbage collection waits for.
//!
//! Which ops a sender relays: its own, and, in a ring, everyone's except the receiver's own; in
//! a mesh also the ops of origins that are not live members (an earlier incarnation of a node
//! that restarted without its state), which no one else would send.

mod message;
mod oplog;
mod receiver;
mod sender;
mod stability;

pub use message::{decode_frame, encode_frame, pieces, FrameError, Message, OpRun, MAX_FRAME, MAX_STATE, PIECE};
pub use oplog::OpLog;
pub use receiver::{AckDue, Receiver, ReceiverError, Store};
pub use sender::{LoggedOp, OpSource, Relay, Sender, SenderError, SenderStats, Start, Topology};
pub use stability::Stability;
