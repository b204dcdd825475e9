//! The state of one key and the single function that changes it.

use crate::causal::{Context, Frontier};
use crate::conflict::{newer, Conflict, DataType, Kept, Met, Rule};
use crate::counter::Counter;
use crate::expiry::{Expiry, NO_EXPIRY};
use crate::list::{ListEdit, ListRemovals, ListState};
use crate::members::{Dots, KeyRemovals, MemberView, Members};
use crate::node::{NodeId, Stamp};
use crate::op::{Body, Change, Collection, Edit, Seen};
use crate::short_bytes::ShortBytes;
use crate::sorted::SortedMembers;
use crate::string::StrState;
use serde::{Deserialize, Serialize};

/// What a key looks like to a reader after an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The key has a value.
    Live,
    /// The key has no value but remembers what late ops will need; keep it, hidden.
    Hidden,
    /// The key has no value and nothing to remember: drop it.
    Gone,
}

/// The Redis type a key reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (or counter).
    String,
    /// A hash.
    Hash,
    /// A set.
    Set,
    /// A sorted set.
    Zset,
    /// A list.
    List,
}

impl Kind {
    /// What a conflict inside a key of this type is about.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::String => DataType::String,
            Kind::Hash => DataType::Hash,
            Kind::Set => DataType::Set,
            Kind::Zset => DataType::Zset,
            Kind::List => DataType::List,
        }
    }

    /// Redis's name for the type (TYPE, SCAN TYPE).
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::List => "list",
        }
    }
}

/// A collection command's op, and the counts Redis's replies are made of.
#[derive(Debug)]
pub struct EditOp<B> {
    /// The op to make; `None` if the command changes nothing (it only removed absent members).
    pub body: Option<Body<B>>,
    /// Distinct members the command named.
    pub named: usize,
    /// Of those, how many were live before it (for an add: not new; for a remove: removed).
    pub were_live: usize,
}

/// For each change, whether it is the last one naming its member (one pass, however many).
fn last_occurrences<B: AsRef<[u8]>>(changes: &[(B, Change<B>)]) -> Vec<bool> {
    if changes.len() == 1 {
        return vec![true];
    }
    let mut seen: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::with_capacity(changes.len());
    let mut last: Vec<bool> = changes.iter().rev().map(|(member, _)| seen.insert(member.as_ref())).collect();
    last.reverse();
    last
}

/// Every type a key's collection parts can hold.
const COLLECTION_KINDS: [Kind; 4] = [Kind::Hash, Kind::Set, Kind::Zset, Kind::List];

impl Collection {
    /// The type a key holding this collection reads as.
    pub fn kind(self) -> Kind {
        match self {
            Collection::Hash => Kind::Hash,
            Collection::Set => Kind::Set,
            Collection::Zset => Kind::Zset,
        }
    }

    /// What a conflict inside this collection is about.
    fn data_type(self) -> DataType {
        self.kind().data_type()
    }
}

/// The full replicated state of one key: its value and, when it has any, its time to live and
/// the removals that are waiting for the ops they named.
///
/// A key holds one part per type. Normally one is live; after a type conflict (SET in one
/// region, SADD to the same key in another, concurrently) several can be, and the key reads as
/// the type of the part holding the newest write ([`KeyState::kind`]). The losing parts stay
/// hidden until a write that saw them (DEL, SET, or the removal of the winner's last member,
/// which removes the whole key) takes them away.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    value: StrState,
    collections: Option<Box<Collections>>,
    meta: Option<Box<Meta>>,
}

/// The collection parts of a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Collections {
    hash: Members<StrState<ShortBytes>>,
    set: Members<Dots>,
    zset: SortedMembers,
    list: ListState,
}

impl Collections {
    fn is_empty(&self) -> bool {
        self.hash.is_empty() && self.set.is_empty() && self.zset.members().is_empty() && self.list.is_empty()
    }

    /// The part holding `collection`, as an edit's builder asks of it.
    fn view(&self, collection: Collection) -> &dyn MemberView {
        match collection {
            Collection::Hash => &self.hash,
            Collection::Set => &self.set,
            Collection::Zset => self.zset.members(),
        }
    }

    /// True if the part holding `kind` has a live member.
    fn is_live(&self, kind: Kind) -> bool {
        match kind {
            Kind::Hash => self.hash.is_live(),
            Kind::Set => self.set.is_live(),
            Kind::Zset => self.zset.members().is_live(),
            Kind::List => self.list.is_live(),
            Kind::String => false,
        }
    }

    fn remove_seen(&mut self, seen: &Seen, by: Stamp, frontier: &impl Frontier) {
        self.hash.remove_seen(seen, Collection::Hash, by, frontier);
        self.set.remove_seen(seen, Collection::Set, by, frontier);
        self.zset.remove_seen(seen, by, frontier);
        self.list.remove_seen(&seen.value, by, frontier);
    }

    fn kill_before(&mut self, time: u64, by: Stamp) {
        self.hash.kill_before(time, by);
        self.set.kill_before(time, by);
        self.zset.kill_before(time, by);
        self.list.kill_before(time, by);
    }

    fn settle(&mut self, frontier: &impl Frontier) {
        self.hash.settle(frontier);
        self.set.settle(frontier);
        self.zset.settle(frontier);
        self.list.settle(frontier);
    }

    fn collect(&mut self, stable: &impl Frontier) {
        self.hash.collect(stable);
        self.set.collect(stable);
        self.zset.collect(stable);
        self.list.collect(stable);
    }

    fn merge(&mut self, other: &Collections, mine: &impl Frontier, theirs: &impl Frontier, removed: &Context) {
        self.hash.merge(&other.hash, mine, theirs, removed);
        self.set.merge(&other.set, mine, theirs, removed);
        self.zset.merge(&other.zset, mine, theirs, removed);
        self.list.merge(&other.list, mine, theirs, removed);
    }

    /// What a whole-key remover has seen of every part: versions into `value`, increments
    /// into `fields`.
    fn seen(&self, value: &mut Context, fields: &mut crate::op::FieldMarks) {
        self.hash.join_context(value);
        self.set.join_context(value);
        self.zset.members().join_context(value);
        self.list.join_context(value);
        self.hash.field_marks(Collection::Hash, fields);
        self.zset.members().field_marks(Collection::Zset, fields);
    }

    /// The largest stamp of what reads in the part holding `kind`.
    fn newest(&self, kind: Kind) -> Option<Stamp> {
        match kind {
            Kind::Hash => self.hash.newest(),
            Kind::Set => self.set.newest(),
            Kind::Zset => self.zset.members().newest(),
            Kind::List => self.list.newest(),
            Kind::String => None,
        }
    }
}

/// Rarely present parts of a key, boxed so that a plain string key stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    expiry: Expiry,
    /// Stamps removed by a writer before this node applied them: when they arrive they are
    /// born removed. Entries go once the node has applied everything they name.
    pending_value: Context,
    /// The ops that made the `pending_value` removals (list elements born removed keep them
    /// until they are stable).
    pending_removers: Context,
    pending_expiry: Context,
    /// When the key last expired, and the op that said so: anything stamped (or any
    /// increment run begun) before that time is dead, even if it arrives later. Forgotten once
    /// no such write can still arrive and every node has applied the expiry.
    expired: Option<(u64, Stamp)>,
}

impl Meta {
    fn is_empty(&self) -> bool {
        self.expiry.is_empty() && self.pending_value.is_empty() && self.pending_removers.is_empty() && self.pending_expiry.is_empty() && self.expired.is_none()
    }

    /// Time before which everything is dead (0: the key never expired).
    fn dead_before(&self) -> u64 {
        self.expired.map_or(0, |(before, _)| before)
    }

    fn is_born_removed(&self, stamp: Stamp, ttl: bool) -> bool {
        let pending = if ttl { &self.pending_expiry } else { &self.pending_value };
        stamp.time < self.dead_before() || pending.covers(stamp)
    }
}

impl KeyState {
    /// The string value.
    pub fn string(&self) -> &StrState {
        &self.value
    }

    /// Unix millisecond at which the key expires, if it has a TTL.
    pub fn expires_at(&self) -> Option<u64> {
        self.meta.as_ref().and_then(|m| m.expiry.expires_at())
    }

    /// True if the key has a value (ignoring expiry, which the caller checks against its clock).
    pub fn is_live(&self) -> bool {
        self.value.is_live() || self.collections.as_ref().is_some_and(|c| COLLECTION_KINDS.iter().any(|&k| c.is_live(k)))
    }

    /// The type the key reads as, if it has a value: the only live part, or after a type
    /// conflict the part holding the newest write (HLC time, then node id), the same on every
    /// node.
    pub fn kind(&self) -> Option<Kind> {
        let collection_live = |k: Kind| self.collections.as_ref().is_some_and(|c| c.is_live(k));
        let live = || {
            let collections = COLLECTION_KINDS.into_iter().filter(move |&k| collection_live(k));
            self.value.is_live().then_some(Kind::String).into_iter().chain(collections)
        };
        let mut parts = live();
        let first = parts.next()?;
        if parts.next().is_none() {
            return Some(first);
        }
        // A type conflict: the newest write decides (O(members), and rare).
        let newest = |kind: Kind| match (kind, &self.collections) {
            (Kind::String, _) => self.value.newest(),
            (k, Some(c)) => c.newest(k),
            (_, None) => None,
        };
        live().max_by_key(|&kind| newest(kind))
    }

    /// The hash part (read it only when [`KeyState::kind`] says the key is a hash).
    pub fn hash(&self) -> Option<&Members<StrState<ShortBytes>>> {
        self.collections.as_ref().map(|c| &c.hash)
    }

    /// The set part (read it only when [`KeyState::kind`] says the key is a set).
    pub fn set(&self) -> Option<&Members<Dots>> {
        self.collections.as_ref().map(|c| &c.set)
    }

    /// Members the key's collections hold (a list's live elements; fields and members,
    /// removed ones included): what the state's size grows with, for a state transfer's
    /// chunking.
    pub fn members(&self) -> usize {
        let list = self.list().map_or(0, |list| list.len());
        let hash = self.hash().map_or(0, |hash| hash.slots());
        let set = self.set().map_or(0, |set| set.slots());
        let zset = self.zset().map_or(0, |zset| zset.members().slots());
        list + hash + set + zset
    }

    /// The sorted-set part (read it only when [`KeyState::kind`] says the key is a zset).
    pub fn zset(&self) -> Option<&SortedMembers> {
        self.collections.as_ref().map(|c| &c.zset)
    }

    /// The list part (read it only when [`KeyState::kind`] says the key is a list).
    pub fn list(&self) -> Option<&ListState> {
        self.collections.as_ref().map(|c| &c.list)
    }

    /// The op a list command makes from `edits`. When they only remove, and remove every live
    /// element, the key is gone in Redis: the op is then a whole-key removal (which also takes
    /// away any hidden part left by a type conflict). `None` if there is nothing to do.
    pub fn list_op<B: AsRef<[u8]>>(&self, edits: Vec<ListEdit<B>>) -> Option<Body<B>> {
        if edits.is_empty() {
            return None;
        }
        let removed = edits.iter().filter(|e| matches!(e, ListEdit::Remove { .. })).count();
        let removes_all = removed == edits.len() && removed >= self.list().map_or(0, ListState::len);
        Some(self.unless_emptied(removes_all, Body::List { edits }))
    }

    /// `body`, or, when it removes every live member of the collection (`removes_all`) of a
    /// live key, a whole-key removal of what this node has seen: Redis deletes an emptied
    /// collection, and the DEL also takes any hidden part a type conflict left.
    fn unless_emptied<B>(&self, removes_all: bool, body: Body<B>) -> Body<B> {
        if removes_all && self.is_live() {
            Body::Del { seen: self.seen(false) }
        } else {
            body
        }
    }

    /// The op a command makes to change members of `collection`, built from this node's view,
    /// and the counts its reply needs. Each change removes what was seen of its member; a
    /// member named twice keeps its last change, as Redis applies them in order; removing a
    /// member that is not there changes nothing and makes no edit. When the changes remove
    /// every live member and add none, the key is gone in Redis: the op is then a whole-key
    /// removal, which also takes away any hidden part left by a type conflict.
    pub fn edit_op<B: AsRef<[u8]>>(&self, collection: Collection, changes: impl IntoIterator<Item = (B, Change<B>)>) -> EditOp<B> {
        let changes: Vec<(B, Change<B>)> = changes.into_iter().collect();
        let last = last_occurrences(&changes);
        let (mut named, mut were_live) = (0, 0);
        let mut edits: Vec<Edit<B>> = Vec::with_capacity(changes.len());
        for ((member, change), last) in changes.into_iter().zip(last) {
            if !last {
                continue;
            }
            let (live, seen) = self.collections.as_ref().map(|c| c.view(collection).probe(member.as_ref())).unwrap_or_default();
            (named, were_live) = (named + 1, were_live + live as usize);
            let seen = match &change {
                Change::Remove if !live => continue,
                Change::Incr(_) if live => Seen::default(),
                _ => seen,
            };
            edits.push(Edit { member, seen, change });
        }
        let removes_all = edits.iter().all(|e| matches!(e.change, Change::Remove)) && were_live == self.len_of(collection);
        let body = (!edits.is_empty()).then(|| self.unless_emptied(removes_all, Body::Edit { collection, edits }));
        EditOp { body, named, were_live }
    }

    fn len_of(&self, collection: Collection) -> usize {
        self.collections.as_ref().map_or(0, |c| c.view(collection).count())
    }

    /// Everything a writer replacing the whole key has seen; with `keep_ttl`, the TTL is not
    /// seen and so survives the write. A key without a value keeps no TTL: whatever TTL
    /// versions are left on it (from an EXPIRE concurrent with a DEL) are seen and removed.
    pub fn seen(&self, keep_ttl: bool) -> Seen {
        let (mut value, counts) = self.value.seen();
        let expiry = match &self.meta {
            Some(meta) if !keep_ttl || !self.is_live() => meta.expiry.context(),
            _ => Context::new(),
        };
        let mut fields = Vec::new();
        if let Some(c) = &self.collections {
            c.seen(&mut value, &mut fields);
        }
        Seen { value, counts, expiry, fields }
    }

    /// The TTL versions a writer changing only the TTL has seen.
    pub fn seen_ttl(&self) -> Context {
        self.meta.as_ref().map(|m| m.expiry.context()).unwrap_or_default()
    }

    /// Applies one op's effect. This is the only place key state changes, for local and remote
    /// ops alike; applying an op twice changes nothing the second time. `frontier` is what this
    /// node (`local`) had applied before the op. Returns the conflict the op met, if it was
    /// concurrent with a write still standing here (see [`Conflict`]).
    pub fn apply<B: AsRef<[u8]>>(&mut self, stamp: Stamp, body: &Body<B>, frontier: &impl Frontier, local: NodeId) -> Option<Conflict> {
        let conflict = match body {
            Body::Set { seen, value, expire_at } => {
                self.clear(seen, stamp, frontier);
                let conflict = (!self.is_born_removed(stamp, false)).then(|| {
                    let conflict = self.value.conflict_of_write(stamp, value.as_ref());
                    self.value.write(stamp, value.as_ref());
                    conflict
                });
                if let Some(at) = expire_at {
                    self.add_ttl(stamp, *at);
                }
                let kept = if self.kind() == Some(Kind::String) { Kept::Op } else { Kept::Other };
                conflict.flatten().or_else(|| self.collection_left(stamp, Rule::TypeConflict, kept))
            }
            Body::Incr { seen, inc } => {
                self.clear(seen, stamp, frontier);
                // A run begun before the key expired belongs to the expired generation.
                let epoch = Counter::epoch_of(stamp, inc);
                if self.meta.as_ref().is_none_or(|m| epoch >= m.dead_before()) {
                    self.value.increment(stamp, inc);
                }
                self.value.conflict_of_increment(stamp, inc, local)
            }
            Body::Del { seen } => {
                self.clear(seen, stamp, frontier);
                self.value.conflict_of_removal(stamp).or_else(|| self.collection_left(stamp, Rule::AddWins, Kept::Other))
            }
            Body::Expire { seen, at } => {
                let pending = self.meta().expiry.remove(seen, frontier);
                self.meta().pending_expiry.join(&pending);
                self.add_ttl(stamp, *at);
                self.ttl_conflict(stamp, *at)
            }
            Body::Edit { collection, edits } => {
                let met = self.edit(stamp, *collection, edits, frontier, local);
                met.map(|(rule, kept, other)| Conflict { data_type: collection.data_type(), rule, op: stamp, other, kept })
            }
            Body::List { edits } => {
                let removals = self.list_removals(stamp);
                let met = self.collections.get_or_insert_with(Default::default).list.apply(edits, stamp, frontier, &removals);
                met.map(|(rule, kept, other)| Conflict { data_type: DataType::List, rule, op: stamp, other, kept })
            }
            Body::Expired { before } => {
                self.expire_before(*before, stamp);
                None
            }
        };
        self.settle(frontier);
        conflict
    }

    /// The conflict an EXPIRE stamped `stamp` (to `at`) meets, asked after it replaced the TTL
    /// versions its writer had seen: a version left standing and stamped before it (see
    /// [`StrState::conflict_of_write`]).
    fn ttl_conflict(&self, stamp: Stamp, at: u64) -> Option<Conflict> {
        let expiry = &self.meta.as_ref()?.expiry;
        let other = expiry.newest_before(stamp.time)?;
        let kept = if expiry.expires_at() == Some(at) || at == NO_EXPIRY { Kept::Op } else { Kept::Other };
        Some(Conflict { data_type: DataType::Ttl, rule: Rule::LongerTtl, op: stamp, other, kept })
    }

    /// Applies a collection edit on node `local`: each member's removal and addition (see
    /// [`Members::edit`]).
    fn edit<B: AsRef<[u8]>>(&mut self, stamp: Stamp, collection: Collection, edits: &[Edit<B>], frontier: &impl Frontier, local: NodeId) -> Option<Met> {
        let removals = KeyRemovals { covers_op: self.is_born_removed(stamp, false), dead_before: self.meta.as_ref().map_or(0, |m| m.dead_before()) };
        let collections = self.collections.get_or_insert_with(Default::default);
        let mut met = None;
        for edit in edits {
            let member = edit.member.as_ref();
            let this = match collection {
                Collection::Hash => collections.hash.edit(member, &edit.seen, &edit.change, stamp, frontier, removals, local),
                Collection::Set => collections.set.edit(member, &edit.seen, &edit.change, stamp, frontier, removals, local),
                Collection::Zset => collections.zset.edit(member, &edit.seen, &edit.change, stamp, frontier, removals, local),
            };
            met = newer(met, this);
        }
        met
    }

    /// What a whole-key write stamped `stamp` (DEL, SET) left of a collection, asked after it
    /// removed everything its writer had seen: a collection part still live holds writes its
    /// writer had not seen, and one stamped before it had not seen the write either (see
    /// [`StrState::conflict_of_write`]). After a DEL the collection's members stay (`rule` add
    /// wins, in the collection's data type); after a SET the key holds two types (`rule` type
    /// conflict). Collection edits carry no whole-key context, so a type conflict is reported
    /// by the SET side of the pair only.
    fn collection_left(&self, stamp: Stamp, rule: Rule, kept: Kept) -> Option<Conflict> {
        let collections = self.collections.as_deref()?;
        let (kind, other) = COLLECTION_KINDS
            .into_iter()
            .filter(|&k| collections.is_live(k))
            .filter_map(|k| Some((k, collections.newest(k)?)))
            .filter(|(_, s)| s.time < stamp.time)
            .max_by_key(|(_, s)| *s)?;
        let data_type = if rule == Rule::TypeConflict { DataType::Key } else { kind.data_type() };
        Some(Conflict { data_type, rule, op: stamp, other, kept })
    }

    /// What the key's removals say about list op `stamp`.
    fn list_removals(&self, stamp: Stamp) -> ListRemovals {
        let Some(meta) = &self.meta else { return ListRemovals::default() };
        ListRemovals {
            covers_op: meta.pending_value.covers(stamp),
            removers: meta.pending_removers.clone(),
            dead_before: meta.dead_before(),
            expired_by: meta.expired.map(|(_, by)| by),
        }
    }

    fn clear(&mut self, seen: &Seen, by: Stamp, frontier: &impl Frontier) {
        // Field marks may name increments still on their way: they need a place to wait.
        if !seen.fields.is_empty() {
            self.collections.get_or_insert_with(Default::default);
        }
        if let Some(collections) = &mut self.collections {
            collections.remove_seen(seen, by, frontier);
        }
        let pending = self.value.clear(&seen.value, &seen.counts, by, frontier);
        if !pending.is_empty() {
            let meta = self.meta();
            meta.pending_value.join(&pending);
            meta.pending_removers.observe(by);
        }
        if !seen.expiry.is_empty() {
            let pending = self.meta().expiry.remove(&seen.expiry, frontier);
            self.meta().pending_expiry.join(&pending);
        }
    }

    fn expire_before(&mut self, before: u64, by: Stamp) {
        let meta = self.meta();
        meta.expired = meta.expired.max(Some((before, by)));
        meta.expiry.remove_before(before);
        self.value.kill_before(before, by);
        if let Some(collections) = &mut self.collections {
            collections.kill_before(before, by);
        }
    }

    fn add_ttl(&mut self, stamp: Stamp, at: u64) {
        if !self.is_born_removed(stamp, true) {
            self.meta().expiry.insert(stamp, at);
        }
    }

    fn is_born_removed(&self, stamp: Stamp, ttl: bool) -> bool {
        self.meta.as_ref().is_some_and(|m| m.is_born_removed(stamp, ttl))
    }

    fn meta(&mut self) -> &mut Meta {
        self.meta.get_or_insert_with(Default::default)
    }

    /// Forgets pending removals this node has caught up with, and empty collections.
    fn settle(&mut self, frontier: &impl Frontier) {
        if let Some(collections) = &mut self.collections {
            collections.settle(frontier);
            if collections.is_empty() {
                self.collections = None;
            }
        }
        if let Some(meta) = &mut self.meta {
            meta.pending_value.retain(|s| !frontier.covers(s));
            if meta.pending_value.is_empty() {
                meta.pending_removers = Context::new();
            }
            meta.pending_expiry.retain(|s| !frontier.covers(s));
            if meta.is_empty() {
                self.meta = None;
            }
        }
    }

    /// What the key looks like to a reader now (a restored key is kept, hidden or dropped by it).
    pub fn liveness(&self) -> Liveness {
        if self.value.is_live() {
            Liveness::Live
        } else if self.meta.is_none() && self.value.is_empty() && self.collections.is_none() {
            Liveness::Gone
        } else {
            Liveness::Hidden
        }
    }

    /// Drops what every node has applied and no later op can need: settled counter runs, and
    /// the expiry floor. `stable` is the causal-stability frontier (see [`Frontier`]).
    pub fn collect(&mut self, stable: &impl Frontier) -> Liveness {
        if let Some(collections) = &mut self.collections {
            collections.collect(stable);
        }
        self.collect_key(stable)
    }

    /// [`KeyState::collect`] after applying `body`: of a collection, only the members the op
    /// edited are visited, so an edit of a large set or hash stays O(edited members).
    pub fn collect_after<B: AsRef<[u8]>>(&mut self, body: &Body<B>, stable: &impl Frontier) -> Liveness {
        match (body, &mut self.collections) {
            (Body::List { edits }, Some(collections)) => {
                let ids = edits.iter().filter_map(|e| match e {
                    ListEdit::Remove { id, .. } | ListEdit::Set { id, .. } => Some(*id),
                    ListEdit::Insert { .. } => None,
                });
                collections.list.collect_ids(ids, stable);
                self.collect_key(stable)
            }
            (Body::Edit { collection, edits }, Some(collections)) => {
                // An add or write that cleared no increments leaves nothing to collect.
                let collectable = |e: &&Edit<B>| !matches!(e.change, Change::Add | Change::Write(_)) || !e.seen.counts.is_empty();
                let members = edits.iter().filter(collectable).map(|e| e.member.as_ref());
                match collection {
                    Collection::Hash => collections.hash.collect_members(members, stable),
                    Collection::Set => collections.set.collect_members(members, stable),
                    Collection::Zset => collections.zset.collect_members(members, stable),
                }
                self.collect_key(stable)
            }
            _ => self.collect(stable),
        }
    }

    fn collect_key(&mut self, stable: &impl Frontier) -> Liveness {
        self.value.collect(stable);
        if self.collections.as_ref().is_some_and(|c| c.is_empty()) {
            self.collections = None;
        }
        if let Some(meta) = &mut self.meta {
            // Once the expiry is stable, every write still to come was made after its writer
            // applied the expiry: it is stamped after it and continues no expired run.
            if meta.expired.is_some_and(|(_, by)| stable.covers(by)) {
                meta.expired = None;
            }
            if meta.is_empty() {
                self.meta = None;
            }
        }
        self.liveness()
    }

    /// Joins another replica's state of this key (full state transfer). `mine` and `theirs` are
    /// what each side had applied; the result is what this node would hold had it applied
    /// everything either side had.
    pub fn merge(&mut self, other: &KeyState, mine: &impl Frontier, theirs: &impl Frontier) -> Liveness {
        self.value.merge(&other.value, mine, theirs);
        if let Some(their_meta) = &other.meta {
            let meta = self.meta();
            meta.expiry.merge(&their_meta.expiry, mine, theirs);
            meta.pending_value.join(&their_meta.pending_value);
            meta.pending_removers.join(&their_meta.pending_removers);
            meta.pending_expiry.join(&their_meta.pending_expiry);
            meta.expired = meta.expired.max(their_meta.expired);
        } else if let Some(meta) = &mut self.meta {
            meta.expiry.merge(&Expiry::default(), mine, theirs);
        }
        if self.collections.is_some() || other.collections.is_some() {
            let removed = self.meta.as_ref().map(|m| m.pending_value.clone()).unwrap_or_default();
            let empty = Collections::default();
            let collections = self.collections.get_or_insert_with(Default::default);
            collections.merge(other.collections.as_deref().unwrap_or(&empty), mine, theirs, &removed);
            if collections.is_empty() {
                self.collections = None;
            }
        }
        if let Some(meta) = self.meta.as_deref_mut() {
            // Removals either side knew of apply to what the other side brought.
            let (pending_value, pending_expiry, expired) = (meta.pending_value.clone(), meta.pending_expiry.clone(), meta.expired);
            meta.expiry.remove(&pending_expiry, mine);
            self.value.remove_versions(&pending_value, mine);
            if let Some((before, by)) = expired {
                self.expire_before(before, by);
            }
            let applied = |s: Stamp| mine.covers(s) || theirs.covers(s);
            if let Some(meta) = self.meta.as_deref_mut() {
                meta.pending_value.retain(|s| !applied(s));
                meta.pending_expiry.retain(|s| !applied(s));
                if meta.is_empty() {
                    self.meta = None;
                }
            }
        }
        self.liveness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::VersionVector;
    use crate::number::Number;
    use bytes::Bytes;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    /// One node's copy of a key, applying ops as the server does.
    struct Node {
        id: NodeId,
        seq: u64,
        clock: u64,
        applied: VersionVector,
        key: KeyState,
    }

    impl Node {
        fn new(id: NodeId) -> Node {
            Node { id, seq: 0, clock: 0, applied: VersionVector::new(), key: KeyState::default() }
        }

        /// Makes a write from this node's view (`body` gets the key state) at HLC time `time`.
        fn write(&mut self, time: u64, body: impl FnOnce(&KeyState) -> Body) -> (Stamp, u64, Body) {
            let body = body(&self.key);
            self.seq += 1;
            let op = (Stamp::new(time.max(self.clock + 1), self.id), self.seq, body);
            assert_eq!(self.apply(&op), None, "a local write never conflicts");
            op
        }

        fn apply(&mut self, (stamp, seq, body): &(Stamp, u64, Body)) -> Option<Conflict> {
            self.clock = self.clock.max(stamp.time);
            let conflict = self.key.apply(*stamp, body, &self.applied, self.id);
            self.applied.record(stamp.node, *seq, stamp.time);
            conflict
        }
    }

    /// A write, built from the writer's view of the key.
    type Write = Box<dyn FnOnce(&KeyState) -> Body>;

    fn set(value: &'static str) -> Write {
        Box::new(move |k| Body::Set { seen: k.seen(false), value: Bytes::from_static(value.as_bytes()), expire_at: None })
    }

    fn incr(id: NodeId, by: i64) -> Write {
        Box::new(move |k| Body::Incr { seen: Seen::default(), inc: k.string().next_increment(id, Number::from_i64(by)).unwrap() })
    }

    fn expire(at: u64) -> Write {
        Box::new(move |k| Body::Expire { seen: k.seen_ttl(), at })
    }

    fn del() -> Write {
        Box::new(|k| Body::Del { seen: k.seen(false) })
    }

    /// A and B write concurrently (A at time 1, B at time 2); returns what each reports when
    /// the other's op arrives.
    fn concurrent(setup: Vec<(NodeId, Write)>, a: Write, b: Write) -> (Option<Conflict>, Option<Conflict>) {
        let (mut na, mut nb) = (Node::new(A), Node::new(B));
        let base = setup.len() as u64 * 10;
        for (t, (writer, body)) in setup.into_iter().enumerate() {
            let (from, to) = if writer == A { (&mut na, &mut nb) } else { (&mut nb, &mut na) };
            let op = from.write(t as u64 + 1, body);
            assert_eq!(to.apply(&op), None, "setup writes are causally ordered");
        }
        let op_a = na.write(base + 1, a);
        let op_b = nb.write(base + 2, b);
        (na.apply(&op_b), nb.apply(&op_a))
    }

    fn kind(c: Option<Conflict>) -> Option<(DataType, Rule, Kept)> {
        c.map(|c| (c.data_type, c.rule, c.kept))
    }

    #[test]
    fn concurrent_sets_report_lww_where_they_apply_in_stamp_order() {
        let (at_a, at_b) = concurrent(vec![], set("a"), set("b"));
        assert_eq!(kind(at_a), Some((DataType::String, Rule::LwwOverwrite, Kept::Op)));
        assert_eq!(at_a.unwrap().other, Stamp::new(1, A));
        // B applies the earlier write second: it cannot tell it from one B's write had seen.
        assert_eq!(at_b, None);
    }

    #[test]
    fn a_delete_that_leaves_an_earlier_concurrent_write_reports_add_wins() {
        let (at_a, _) = concurrent(vec![(A, set("x"))], set("a"), del());
        assert_eq!(kind(at_a), Some((DataType::String, Rule::AddWins, Kept::Other)));
    }

    #[test]
    fn increments_concurrent_with_writes_and_increments() {
        let (at_a, _) = concurrent(vec![], incr(A, 1), set("5"));
        assert_eq!(kind(at_a), Some((DataType::Counter, Rule::AddWins, Kept::Both)));
        let (at_a, _) = concurrent(vec![], incr(A, 1), set("text"));
        assert_eq!(kind(at_a), Some((DataType::String, Rule::TypeConflict, Kept::Op)));
        let (at_a, at_b) = concurrent(vec![], incr(A, 1), incr(B, 2));
        assert_eq!(at_a, None);
        assert_eq!(kind(at_b), Some((DataType::Counter, Rule::CountersMerged, Kept::Both)));
        // Increments made after seeing each other merge without a conflict (`concurrent`
        // asserts that of its setup), and an overwrite that saw them meets none.
        let (at_a, at_b) = concurrent(vec![(A, incr(A, 1)), (B, incr(B, 1))], set("1"), expire(9));
        assert_eq!((at_a, at_b), (None, None));
    }

    fn hset(value: &'static str) -> Write {
        Box::new(move |k| k.edit_op(Collection::Hash, [(Bytes::from_static(b"f"), Change::Write(Bytes::from_static(value.as_bytes())))]).body.unwrap())
    }

    fn hincrby(id: NodeId, by: i64) -> Write {
        Box::new(move |k| {
            let none = StrState::default();
            let field = k.hash().and_then(|h| h.get(b"f")).unwrap_or(&none);
            let inc = field.next_increment(id, Number::from_i64(by)).unwrap();
            k.edit_op(Collection::Hash, [(Bytes::from_static(b"f"), Change::Incr(inc))]).body.unwrap()
        })
    }

    #[test]
    fn field_increments_concurrent_with_writes_and_increments() {
        let (at_a, at_b) = concurrent(vec![], hincrby(A, 1), hincrby(B, 2));
        assert_eq!(at_a, None);
        assert_eq!(kind(at_b), Some((DataType::Hash, Rule::CountersMerged, Kept::Both)));
        let (at_a, at_b) = concurrent(vec![], hincrby(A, 1), hset("5"));
        assert_eq!(kind(at_a), Some((DataType::Hash, Rule::AddWins, Kept::Both)));
        assert_eq!(kind(at_b), Some((DataType::Hash, Rule::AddWins, Kept::Both)));
        let (at_a, _) = concurrent(vec![], hincrby(A, 1), hset("text"));
        assert_eq!(kind(at_a), Some((DataType::Hash, Rule::TypeConflict, Kept::Op)));
        let (at_a, at_b) = concurrent(vec![], hset("1"), hset("2"));
        assert_eq!((kind(at_a), at_b), (Some((DataType::Hash, Rule::LwwOverwrite, Kept::Op)), None));
        // Increments that saw each other merge without a conflict (`concurrent` asserts that
        // of its setup), and an overwrite that saw them meets none.
        let (at_a, at_b) = concurrent(vec![(A, hincrby(A, 1)), (B, hincrby(B, 1))], hset("1"), expire(9));
        assert_eq!((at_a, at_b), (None, None));
    }

    #[test]
    fn concurrent_expires_report_the_longer_ttl() {
        let (at_a, _) = concurrent(vec![(A, set("x"))], expire(500), expire(100));
        assert_eq!(kind(at_a), Some((DataType::Ttl, Rule::LongerTtl, Kept::Other)));
    }
}
