//! Conflicts: what an op met that its writer had not seen, and the rule that settled it.
//!
//! Applying an op reports a [`Conflict`] when the op meets a write it was concurrent with.
//! Nothing here changes state: the rules themselves live where the state does (registers,
//! counters, TTLs); this is only how they become visible to an operator.
//!
//! Detection is exact where the state carries causal context (a string version the writer did
//! not remove, a TTL version it did not replace, a value a DEL left standing) and sound for
//! increments, which carry no context: an increment is known to be concurrent with a write
//! stamped after it that did not clear it (causally later writes carry larger stamps and clear
//! what they saw). Each conflict is therefore reported by at least the node that applies the
//! later-stamped write first, and never reported where there was none.

use crate::node::Stamp;

/// The kind of data a conflict was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// A written string value.
    String,
    /// Counter increments (INCR family).
    Counter,
    /// A time to live.
    Ttl,
    /// A set member.
    Set,
    /// A hash field.
    Hash,
    /// A sorted-set member's score.
    Zset,
    /// A list element.
    List,
    /// The key's type (one region wrote one type, another a different one).
    Key,
}

impl DataType {
    /// The name operators see (INFO fields, CRDT.CONFLICTS).
    pub fn name(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Counter => "counter",
            DataType::Ttl => "ttl",
            DataType::Set => "set",
            DataType::Hash => "hash",
            DataType::Zset => "zset",
            DataType::List => "list",
            DataType::Key => "key",
        }
    }
}

/// The rule that settled a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Concurrent writes of a string: every node reads the one with the larger stamp.
    LwwOverwrite,
    /// A removal (DEL, or an overwrite clearing increments) met a write it had not seen: the
    /// write stays.
    AddWins,
    /// Concurrent increments from different nodes: all of them count.
    CountersMerged,
    /// A non-numeric string concurrent with increments: the string reads, the increments stay
    /// recorded.
    TypeConflict,
    /// Concurrent TTL changes: the longest TTL (PERSIST beating all) holds.
    LongerTtl,
}

impl Rule {
    /// The name operators see (INFO fields, CRDT.CONFLICTS).
    pub fn name(self) -> &'static str {
        match self {
            Rule::LwwOverwrite => "lww-overwrite",
            Rule::AddWins => "add-wins",
            Rule::CountersMerged => "counters-merged",
            Rule::TypeConflict => "type-conflict",
            Rule::LongerTtl => "longer-ttl",
        }
    }
}

/// Which side's effect a reader sees after the rule applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// The op being applied.
    Op,
    /// The concurrent write it met.
    Other,
    /// Both (increments add up; increments survive an overwrite).
    Both,
}

impl Kept {
    /// The name operators see.
    pub fn name(self) -> &'static str {
        match self {
            Kept::Op => "op",
            Kept::Other => "other",
            Kept::Both => "both",
        }
    }
}

/// What an edit of one member met: the rule that settled it, whose effect reads, and the
/// stamp of the concurrent write (see [`Conflict`]).
pub type Met = (Rule, Kept, Stamp);

/// Of two things met, the one with the newer concurrent write (an op reports one conflict).
pub fn newer(a: Option<Met>, b: Option<Met>) -> Option<Met> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.2 > a.2 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// One conflict an op's application settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// What the conflict was about.
    pub data_type: DataType,
    /// How it was settled.
    pub rule: Rule,
    /// The stamp of the op being applied.
    pub op: Stamp,
    /// The stamp of the concurrent write it met (the newest, if several).
    pub other: Stamp,
    /// Whose effect reads now.
    pub kept: Kept,
}

impl Conflict {
    /// Every (data type, rule) pair a conflict can have, in the order INFO lists them.
    pub const KINDS: [(DataType, Rule); 17] = [
        (DataType::String, Rule::LwwOverwrite),
        (DataType::String, Rule::AddWins),
        (DataType::String, Rule::TypeConflict),
        (DataType::Counter, Rule::CountersMerged),
        (DataType::Counter, Rule::AddWins),
        (DataType::Ttl, Rule::LongerTtl),
        (DataType::Set, Rule::AddWins),
        (DataType::Hash, Rule::LwwOverwrite),
        (DataType::Hash, Rule::AddWins),
        (DataType::Hash, Rule::TypeConflict),
        (DataType::Hash, Rule::CountersMerged),
        (DataType::Zset, Rule::LwwOverwrite),
        (DataType::Zset, Rule::AddWins),
        (DataType::Zset, Rule::CountersMerged),
        (DataType::List, Rule::LwwOverwrite),
        (DataType::List, Rule::AddWins),
        (DataType::Key, Rule::TypeConflict),
    ];

    /// This conflict's position in [`Conflict::KINDS`].
    pub fn kind_index(&self) -> usize {
        Conflict::KINDS.iter().position(|&kind| kind == (self.data_type, self.rule)).expect("every conflict the crate reports has a kind")
    }
}
