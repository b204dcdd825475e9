//! Meridian's conflict-free replicated data: pure state and operations, no I/O.
//!
//! Every client write becomes an [`Op`]: the writing node (`origin`), its dense sequence number,
//! its hybrid-logical-clock time, the key, and a [`Body`] describing the *effect*. The same
//! [`KeyState::apply`] runs for local and remote ops, so every node that has applied the same
//! set of ops (each origin's ops in order, any interleaving across origins, duplicates dropped
//! by `(origin, seq)`) holds the same state.
//!
//! Concurrency is decided by causal context, never by wall time alone: every element of a key
//! carries the [`Stamp`] of the write that made it (the stamp doubles as the element's dot),
//! and a removing write names what it had seen as a [`Context`] (per origin, the latest stamp
//! time seen). Only elements the writer had seen are removed; concurrent ones survive. Where two
//! concurrent writes must yield one value (string registers), the larger stamp wins: HLC time,
//! then node id.
//!
//! What this crate must not do: touch sockets, files, threads or the system clock. Time enters
//! as arguments, so the property tests here and the replication simulator can replay any
//! schedule exactly.

mod causal;
mod conflict;
mod counter;
mod dense;
mod expiry;
mod hexfloat;
mod key;
mod list;
mod members;
mod node;
mod number;
mod op;
mod ranked_set;
mod register;
mod score;
mod short_bytes;
mod sorted;
mod string;
mod wire;

pub use causal::{Context, Frontier, VersionVector};
pub use conflict::{Conflict, DataType, Kept, Met, Rule};
pub use counter::{Counter, CounterMark, Increment};
pub use expiry::{Expiry, NO_EXPIRY};
pub use key::{EditOp, KeyState, Kind, Liveness};
pub use list::{Anchor, ElemId, ListEdit, ListRemovals, ListState};
pub use members::{Dots, Element, KeyRemovals, MemberView, Members};
pub use node::{hlc_time_of_ms, ms_of_hlc_time, NodeId, ParseNodeIdError, Stamp};
pub use number::{parse_redis_int, Number, NumberError};
pub use op::{Body, Change, Collection, Edit, FieldMarks, Op, Seen, TtlWrite};
pub use register::Register;
pub use score::{format_score, number_to_f64, parse_score, strtod, ScoreState, ScoreValue};
pub use short_bytes::ShortBytes;
pub use sorted::{Ranked, SortedMembers};
pub use string::{StrState, Written};
pub use wire::{push_run_entry, run_entries, DecodeError};
