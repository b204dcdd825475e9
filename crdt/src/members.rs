//! Collections: observed-remove maps from members (set members, hash fields, sorted-set
//! members) to element states.
//!
//! A set is a map from member to the dots of the adds that made it (an add-wins OR-set); a hash
//! is a map from field to a string state (register plus counter), so HSET and HINCRBY behave on
//! a field exactly as SET and INCRBY do on a key; a sorted set maps members to score states
//! (the same register plus counter, holding a double; see `score.rs`). All share [`Members`]:
//! what an edit removes
//! is what its writer had seen of that member ([`Seen`]), so a concurrent add or update of the
//! same member survives a remove; a remove naming versions this node has not applied yet is
//! remembered per member until they arrive, so they arrive removed.

use crate::causal::{Context, Frontier};
use crate::conflict::{Conflict, Kept, Met, Rule};
use crate::counter::{CounterMark, Increment};
use crate::dense::DenseMap;
use crate::node::{NodeId, Stamp};
use crate::op::{Change, Collection, FieldMarks, Seen};
use crate::register::Register;
use crate::string::{StrState, Written};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::fmt::Debug;

/// One member's replicated state inside a collection.
pub trait Element: Default + Clone + Debug + PartialEq {
    /// True if a reader sees the member.
    fn is_live(&self) -> bool;
    /// True if nothing is held (the member can be dropped).
    fn is_empty(&self) -> bool;
    /// What a writer replacing or removing this member has seen.
    fn seen(&self) -> Seen;
    /// Removes what `seen` names (the op `by` removes it); returns the version stamps it named
    /// that are not applied here.
    fn clear(&mut self, seen: &Seen, by: Stamp, frontier: &impl Frontier) -> Context;
    /// Removes the versions a whole-key context covers (a DEL or overwrite of the key).
    fn remove_versions(&mut self, seen: &Context, frontier: &impl Frontier);
    /// Applies what `change` adds, stamped `by`. `born_removed` says whether a version with
    /// that stamp was already removed by a writer ahead of this node.
    fn add<B: AsRef<[u8]>>(&mut self, by: Stamp, change: &Change<B>, born_removed: bool, dead_before: u64);
    /// Removes what was written (and increment runs begun) before `time`: the key expired.
    fn kill_before(&mut self, time: u64, by: Stamp);
    /// Drops what the stability frontier says no later op can need.
    fn collect(&mut self, stable: &impl Frontier);
    /// Joins another replica's state of the member (see [`Register::merge`]).
    fn merge(&mut self, other: &Self, mine: &impl Frontier, theirs: &impl Frontier);
    /// The largest stamp of what reads (decides the key's type after a type conflict).
    fn newest(&self) -> Option<Stamp>;
    /// Stamps of the written versions held, live or not.
    fn stamps(&self) -> impl Iterator<Item = Stamp> + '_;
    /// Counter marks of the member's increments (hash fields), for a whole-key removal.
    fn marks(&self) -> SmallVec<[CounterMark; 1]>;
    /// What a write or removal stamped `by` meets, asked after it removed what its writer had
    /// seen (what is left, the writer had not seen) and before it adds anything: the newest
    /// write or increment left stamped before it, and the rule that settles the pair (see
    /// `StrState::conflict_of_write`). None for any other change.
    fn met_by_edit<B: AsRef<[u8]>>(&self, by: Stamp, change: &Change<B>, born_removed: bool) -> Option<Met>;
    /// What an increment stamped `by` meets on node `local`, asked after it was applied (see
    /// `StrState::conflict_of_increment`).
    fn met_by_increment(&self, by: Stamp, inc: &Increment, local: NodeId) -> Option<Met>;
}

/// A conflict as an edit reports it: the collection names the data type.
fn met_of(conflict: Conflict) -> Met {
    (conflict.rule, conflict.kept, conflict.other)
}

/// A set member: the dots of the adds that made it.
pub type Dots = Register<()>;

impl Element for Dots {
    fn is_live(&self) -> bool {
        !Register::is_empty(self)
    }

    fn is_empty(&self) -> bool {
        Register::is_empty(self)
    }

    fn seen(&self) -> Seen {
        Seen { value: self.context(), ..Seen::default() }
    }

    fn clear(&mut self, seen: &Seen, _by: Stamp, frontier: &impl Frontier) -> Context {
        self.remove(&seen.value, frontier)
    }

    fn remove_versions(&mut self, seen: &Context, frontier: &impl Frontier) {
        self.remove(seen, frontier);
    }

    fn add<B: AsRef<[u8]>>(&mut self, by: Stamp, change: &Change<B>, born_removed: bool, _dead_before: u64) {
        if matches!(change, Change::Add) && !born_removed {
            self.insert(by, ());
        }
    }

    fn kill_before(&mut self, time: u64, _by: Stamp) {
        self.remove_before(time);
    }

    fn collect(&mut self, _stable: &impl Frontier) {}

    fn merge(&mut self, other: &Self, mine: &impl Frontier, theirs: &impl Frontier) {
        Register::merge(self, other, mine, theirs);
    }

    fn newest(&self) -> Option<Stamp> {
        self.winner().map(|(stamp, _)| stamp)
    }

    fn stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.versions().map(|(stamp, _)| stamp)
    }

    fn marks(&self) -> SmallVec<[CounterMark; 1]> {
        SmallVec::new()
    }

    fn met_by_edit<B: AsRef<[u8]>>(&self, by: Stamp, change: &Change<B>, born_removed: bool) -> Option<Met> {
        match change {
            Change::Remove => Some((Rule::AddWins, Kept::Other, self.newest_before(by.time)?)),
            Change::Write(_) if !born_removed => Some((Rule::LwwOverwrite, Kept::Op, self.newest_before(by.time)?)),
            _ => None,
        }
    }

    fn met_by_increment(&self, _by: Stamp, _inc: &Increment, _local: NodeId) -> Option<Met> {
        None
    }
}

impl<W: Written> Element for StrState<W> {
    fn is_live(&self) -> bool {
        StrState::is_live(self)
    }

    fn is_empty(&self) -> bool {
        StrState::is_empty(self)
    }

    fn seen(&self) -> Seen {
        let (value, counts) = StrState::seen(self);
        Seen { value, counts, ..Seen::default() }
    }

    fn clear(&mut self, seen: &Seen, by: Stamp, frontier: &impl Frontier) -> Context {
        StrState::clear(self, &seen.value, &seen.counts, by, frontier)
    }

    fn remove_versions(&mut self, seen: &Context, frontier: &impl Frontier) {
        StrState::remove_versions(self, seen, frontier);
    }

    fn add<B: AsRef<[u8]>>(&mut self, by: Stamp, change: &Change<B>, born_removed: bool, dead_before: u64) {
        match change {
            Change::Write(value) if !born_removed => self.write(by, value.as_ref()),
            Change::Incr(inc) if crate::counter::Counter::epoch_of(by, inc) >= dead_before => self.increment(by, inc),
            _ => {}
        }
    }

    fn kill_before(&mut self, time: u64, by: Stamp) {
        StrState::kill_before(self, time, by);
    }

    fn collect(&mut self, stable: &impl Frontier) {
        StrState::collect(self, stable);
    }

    fn merge(&mut self, other: &Self, mine: &impl Frontier, theirs: &impl Frontier) {
        StrState::merge(self, other, mine, theirs);
    }

    fn newest(&self) -> Option<Stamp> {
        StrState::newest(self)
    }

    fn stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.version_stamps()
    }

    fn marks(&self) -> SmallVec<[CounterMark; 1]> {
        StrState::seen(self).1
    }

    fn met_by_edit<B: AsRef<[u8]>>(&self, by: Stamp, change: &Change<B>, born_removed: bool) -> Option<Met> {
        match change {
            Change::Remove => self.conflict_of_removal(by).map(met_of),
            Change::Write(value) if !born_removed => self.conflict_of_write(by, value.as_ref()).map(met_of),
            _ => None,
        }
    }

    fn met_by_increment(&self, by: Stamp, inc: &Increment, local: NodeId) -> Option<Met> {
        self.conflict_of_increment(by, inc, local).map(met_of)
    }
}

/// What a command building an edit asks of a collection, whatever its element type.
pub trait MemberView {
    /// Whether `member` is live, and what a writer replacing or removing it has seen (one
    /// lookup for both).
    fn probe(&self, member: &[u8]) -> (bool, Seen);
    /// Number of live members.
    fn count(&self) -> usize;
}

impl<V: Element> MemberView for Members<V> {
    fn probe(&self, member: &[u8]) -> (bool, Seen) {
        self.items.get(member).map_or((false, Seen::default()), |item| (item.is_live(), item.seen()))
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// What the whole key's removals say about an edit being applied.
#[derive(Clone, Copy, Debug)]
pub struct KeyRemovals {
    /// A DEL ahead of this node, or an expiry, already removed what the edit writes.
    pub covers_op: bool,
    /// Increment runs begun before this HLC time belong to an expired generation.
    pub dead_before: u64,
}

/// An observed-remove map of members to element states, with the count of live members kept
/// so that SCARD/HLEN are O(1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members<V> {
    items: DenseMap<V>,
    live: usize,
    /// Per member, the stamps removed by writers ahead of this node: they arrive removed.
    pending: HashMap<Box<[u8]>, Context>,
}

impl<V: Element> Members<V> {
    /// Number of live members.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if no member is live.
    pub fn is_live(&self) -> bool {
        self.live > 0
    }

    /// True if nothing is held, live or waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.pending.is_empty()
    }

    /// The live member `member`, if any.
    pub fn get(&self, member: &[u8]) -> Option<&V> {
        self.items.get(member).filter(|v| v.is_live())
    }

    /// How many members are held, live or removed but not yet collected: the slots
    /// [`Members::slot`] numbers.
    pub fn slots(&self) -> usize {
        self.items.len()
    }

    /// The member in slot `slot` (below [`Members::slots`]) if it is live. A random slot is
    /// a random member in O(1), which SPOP and the RAND commands use; slots change with edits.
    pub fn slot(&self, slot: usize) -> Option<(&[u8], &V)> {
        self.items.get_index(slot).filter(|(_, v)| v.is_live())
    }

    /// Every live member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.items.iter().filter(|(_, v)| v.is_live())
    }

    /// Applies one edit stamped `by`: removes what its writer had seen of the member, then adds
    /// what it adds, unless the whole key's removals already cover it. Returns what it met: a
    /// write it had not seen, still standing after a remove (add wins) or losing to a write
    /// (the larger stamp wins).
    pub fn edit<B: AsRef<[u8]>>(
        &mut self,
        member: &[u8],
        seen: &Seen,
        change: &Change<B>,
        by: Stamp,
        frontier: &impl Frontier,
        removals: KeyRemovals,
        local: NodeId,
    ) -> Option<Met> {
        let item = self.items.get_or_default(member);
        let was_live = item.is_live();
        let unapplied = item.clear(seen, by, frontier);
        let born_removed = removals.covers_op || self.pending.get(member).is_some_and(|p| p.covers(by));
        let met = item.met_by_edit(by, change, born_removed);
        item.add(by, change, born_removed, removals.dead_before);
        let met = match change {
            Change::Incr(inc) => item.met_by_increment(by, inc, local),
            _ => met,
        };
        let (now_live, empty) = (item.is_live(), item.is_empty());
        self.live = self.live + now_live as usize - was_live as usize;
        if empty {
            self.items.remove(member);
        }
        if !unapplied.is_empty() {
            self.pending.entry_ref(member).or_default().join(&unapplied);
        }
        met
    }

    /// Whole-key removal: removes every version `seen` covers and the increments it marks for
    /// members of `collection` (this map).
    pub fn remove_seen(&mut self, seen: &Seen, collection: Collection, by: Stamp, frontier: &impl Frontier) {
        for (_, member, marks) in seen.fields.iter().filter(|(c, _, _)| *c == collection) {
            let counts = Seen { counts: marks.clone(), ..Seen::default() };
            self.items.get_or_default(member).clear(&counts, by, frontier);
        }
        if !seen.value.is_empty() {
            self.items.values_mut().for_each(|item| item.remove_versions(&seen.value, frontier));
        }
        self.tidy();
    }

    /// Removes everything written before `time` (the key expired).
    pub fn kill_before(&mut self, time: u64, by: Stamp) {
        self.items.values_mut().for_each(|item| item.kill_before(time, by));
        self.tidy();
    }

    /// Forgets per-member removals this node has caught up with.
    pub fn settle(&mut self, frontier: &impl Frontier) {
        if !self.pending.is_empty() {
            self.pending.retain(|_, ctx| {
                ctx.retain(|s| !frontier.covers(s));
                !ctx.is_empty()
            });
        }
    }

    /// Drops what the stability frontier allows.
    pub fn collect(&mut self, stable: &impl Frontier) {
        self.items.values_mut().for_each(|item| item.collect(stable));
        self.tidy();
    }

    /// [`Members::collect`] for the named members only.
    pub fn collect_members<'m>(&mut self, members: impl Iterator<Item = &'m [u8]>, stable: &impl Frontier) {
        for member in members {
            if let Some(item) = self.items.get_mut(member) {
                let was_live = item.is_live();
                item.collect(stable);
                self.live = self.live + item.is_live() as usize - was_live as usize;
                if item.is_empty() {
                    self.items.remove(member);
                }
            }
        }
    }

    /// Joins another replica's members (full state transfer). `removed` is the whole-key
    /// removals either side knew of; they apply to what the other side brought.
    pub fn merge(&mut self, other: &Members<V>, mine: &impl Frontier, theirs: &impl Frontier, removed: &Context) {
        for (member, theirs_item) in other.items.iter() {
            self.items.get_or_default(member).merge(theirs_item, mine, theirs);
        }
        let empty = V::default();
        for (member, item) in self.items.iter_mut() {
            if !other.items.contains_key(member) {
                item.merge(&empty, mine, theirs);
            }
        }
        for (member, ctx) in &other.pending {
            self.pending.entry_ref(&**member).or_default().join(ctx);
        }
        for (member, item) in self.items.iter_mut() {
            if let Some(ctx) = self.pending.get(member) {
                item.remove_versions(ctx, mine);
            }
            if !removed.is_empty() {
                item.remove_versions(removed, mine);
            }
        }
        self.pending.retain(|_, ctx| {
            ctx.retain(|s| !mine.covers(s) && !theirs.covers(s));
            !ctx.is_empty()
        });
        self.tidy();
    }

    /// Per origin, the latest stamp of any version held: what a whole-key remover has seen.
    pub fn join_context(&self, into: &mut Context) {
        for item in self.items.values() {
            item.stamps().for_each(|s| into.observe(s));
        }
    }

    /// The counter marks of members with increments, for a whole-key remover; this map is
    /// `collection`.
    pub fn field_marks(&self, collection: Collection, into: &mut FieldMarks) {
        for (member, item) in self.items.iter() {
            let marks = item.marks();
            if !marks.is_empty() {
                into.push((collection, member.into(), marks));
            }
        }
    }

    /// The largest stamp of anything that reads.
    pub fn newest(&self) -> Option<Stamp> {
        self.items.values().filter_map(Element::newest).max()
    }

    /// Drops empty members and recounts the live ones.
    fn tidy(&mut self) {
        self.items.retain(|_, item| !item.is_empty());
        self.live = self.items.values().filter(|item| item.is_live()).count();
    }
}
