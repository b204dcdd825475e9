//! Lists: a replicated growable array (RGA) whose elements are value registers.
//!
//! Every element is named by the op that inserted it and its index among that op's values
//! ([`ElemId`]). Ids grow with causality: a writer's stamp is later than everything it had
//! seen. Each element hangs from a parent ([`Anchor`]), and the list is that tree read in one
//! fixed order, the same on every node whatever order the inserts arrived in:
//!
//! - LPUSH hangs elements from the head: the head's children come first, newest first.
//! - RPUSH hangs them from the tail: the tail's children come last, newest last.
//! - LINSERT hangs an element from a live element: right after it, newest child first.
//!
//! So concurrent pushes all survive, and a push at either end stays at that end. A parent is
//! always an element its writer saw live (LINSERT BEFORE uses the nearest live element to the
//! left, or the head), so an element removed and causally stable is never named by an op still
//! to come.
//!
//! An element's value is a [`Register`]: LSET writes a version (concurrent LSETs: the larger
//! stamp wins), and LPOP, RPOP, LREM, LTRIM and LMOVE remove the versions their writer had
//! seen. An element concurrently set and removed stays with the new value (add wins); two
//! regions popping the same element concurrently both return it.
//!
//! A removed element stays as a tombstone until the ops that removed it are causally stable and
//! no element hangs from it; then it goes (a leaf's absence changes no placement). An insert
//! whose parent has not arrived waits (parked) until it does; edits naming an element that has
//! not arrived are kept (early) and applied when it does.

use crate::causal::{Context, Frontier};
use crate::conflict::{newer, Kept, Met, Rule};
use crate::node::Stamp;
use crate::register::Register;
use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The identity of one list element: the inserting op's stamp and the value's index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ElemId {
    /// The inserting op.
    pub stamp: Stamp,
    /// The value's position among the op's values.
    pub index: u32,
}

/// Where an inserted element hangs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Anchor {
    /// At the head (LPUSH): newest first.
    Head,
    /// At the tail (RPUSH): newest last.
    Tail,
    /// Right after this element (LINSERT): newest first.
    After(ElemId),
}

/// One edit of a list, inside a [`crate::Body::List`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListEdit<B> {
    /// Insert `values`, left to right, hanging from `anchor`. The op's values get ids
    /// `(op stamp, i)`, counting across the op's inserts.
    Insert {
        /// Where they hang.
        anchor: Anchor,
        /// The values, left to right.
        values: Vec<B>,
    },
    /// Remove what the writer had seen of element `id`.
    Remove {
        /// The element.
        id: ElemId,
        /// Its value versions the writer had seen.
        seen: Context,
    },
    /// Replace the value of element `id` (LSET).
    Set {
        /// The element.
        id: ElemId,
        /// Its value versions the writer had seen.
        seen: Context,
        /// The new value.
        value: B,
    },
}

/// A list element, live or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Element {
    id: ElemId,
    parent: Anchor,
    /// True if it is in the head's part of the list (its root is the head).
    head_side: bool,
    /// Elements hanging from it.
    children: u32,
    value: Register<Box<[u8]>>,
    /// For a tombstone: the ops that removed it.
    removed_by: Context,
}

impl Element {
    fn is_live(&self) -> bool {
        !self.value.is_empty()
    }

    /// A tombstone nothing hangs from, whose removal is stable: it may go.
    fn is_collectable(&self, stable: &impl Frontier) -> bool {
        !self.is_live() && self.children == 0 && !self.removed_by.is_empty() && self.removed_by.iter().all(|s| stable.covers(s))
    }
}

/// Edits that arrived before what they name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Early {
    /// Versions written (LSET) to an element not inserted here yet.
    versions: Register<Box<[u8]>>,
    /// Versions removed that are not applied here yet; they arrive removed.
    removed: Context,
    /// The ops that removed them.
    removed_by: Context,
}

/// What the whole key's removals say about an op being applied (see `KeyState`).
#[derive(Clone, Debug, Default)]
pub struct ListRemovals {
    /// A removal ahead of this node already covers the op.
    pub covers_op: bool,
    /// The ops that made such removals.
    pub removers: Context,
    /// Versions stamped before this HLC time belong to an expired generation.
    pub dead_before: u64,
    /// The op that expired it.
    pub expired_by: Option<Stamp>,
}

/// A list: its elements in order (tombstones included), inserts waiting for their parent,
/// and edits waiting for their element.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState {
    elements: VecDeque<Element>,
    live: usize,
    parked: Vec<Element>,
    early: HashMap<ElemId, Early>,
    /// Per origin, the latest insert applied (or brought by a state transfer).
    inserted: Context,
}

impl ListState {
    /// Number of live elements.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if an element is live.
    pub fn is_live(&self) -> bool {
        self.live > 0
    }

    /// True if nothing is held: no element, tombstone or waiting edit. (What inserts were
    /// applied is forgotten with the list: a list emptied and collected starts afresh.)
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.parked.is_empty() && self.early.is_empty()
    }

    /// Live elements left to right: id and value.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (ElemId, &[u8])> + '_ {
        self.elements.iter().filter_map(|e| e.value.winner().map(|(_, v)| (e.id, &**v)))
    }

    /// The live element at `index` (negative: from the end), as LINDEX counts.
    pub fn nth(&self, index: i64) -> Option<(ElemId, &[u8])> {
        if index < 0 {
            self.iter().rev().nth(usize::try_from(-(index + 1)).ok()?)
        } else {
            self.iter().nth(usize::try_from(index).ok()?)
        }
    }

    /// The edit removing element `id` as this node sees it.
    pub fn remove<B>(&self, id: ElemId) -> ListEdit<B> {
        ListEdit::Remove { id, seen: self.seen(id) }
    }

    /// The edit replacing element `id`'s value with `value` (LSET).
    pub fn set<B>(&self, id: ElemId, value: B) -> ListEdit<B> {
        ListEdit::Set { id, seen: self.seen(id), value }
    }

    /// The edit inserting `value` right before (`before`) or after live element `id`
    /// (LINSERT). Before hangs it from the nearest live element to the left, or the head.
    pub fn insert_next_to<B>(&self, id: ElemId, before: bool, value: B) -> ListEdit<B> {
        let anchor = match self.position(id) {
            Some(_) if !before => Anchor::After(id),
            Some(i) => self.elements.range(..i).rev().find(|e| e.is_live()).map_or(Anchor::Head, |e| Anchor::After(e.id)),
            None => Anchor::Head,
        };
        ListEdit::Insert { anchor, values: vec![value] }
    }

    fn seen(&self, id: ElemId) -> Context {
        self.position(id).map(|i| self.elements[i].value.context()).unwrap_or_default()
    }

    /// Stamps of every version held (what a whole-key remover has seen).
    pub fn join_context(&self, into: &mut Context) {
        for e in self.elements.iter().chain(&self.parked) {
            e.value.versions().for_each(|(s, _)| into.observe(s));
        }
        self.early.values().for_each(|early| early.versions.versions().for_each(|(s, _)| into.observe(s)));
    }

    /// The largest stamp of a live version (decides the key's type after a type conflict).
    pub fn newest(&self) -> Option<Stamp> {
        self.elements.iter().filter_map(|e| e.value.winner().map(|(s, _)| s)).max()
    }

    /// Applies one op's list edits, all stamped `by`; returns the newest concurrent write an
    /// edit met (see [`ListState::edit_element`]).
    pub fn apply<B: AsRef<[u8]>>(&mut self, edits: &[ListEdit<B>], by: Stamp, frontier: &impl Frontier, removals: &ListRemovals) -> Option<Met> {
        // Inserts already applied (an op can arrive inside a state transfer and again on the
        // op stream) are not made twice; each origin's ops arrive in order.
        let inserted_already = self.inserted.covers(by);
        if edits.iter().any(|e| matches!(e, ListEdit::Insert { .. })) {
            self.inserted.observe(by);
        }
        let mut index = 0u32;
        let mut met: Option<Met> = None;
        for edit in edits {
            match edit {
                ListEdit::Insert { .. } if inserted_already => {}
                ListEdit::Insert { anchor, values } => {
                    for value in values {
                        let id = ElemId { stamp: by, index };
                        index += 1;
                        let mut element = Element { id, parent: *anchor, head_side: true, children: 0, value: Register::default(), removed_by: Context::new() };
                        add_version(&mut element, self.early.get(&id), by, value.as_ref(), removals);
                        self.place(element);
                    }
                }
                ListEdit::Remove { id, seen } => met = newer(met, self.edit_element(*id, seen, by, frontier, None, removals)),
                ListEdit::Set { id, seen, value } => met = newer(met, self.edit_element(*id, seen, by, frontier, Some(value.as_ref()), removals)),
            }
        }
        met
    }

    /// Removes what `seen` names of element `id`, then (LSET) writes `value`. Returns what it
    /// met: a version it had not seen, still standing after a removal (add wins) or losing to
    /// the LSET (the larger stamp wins). Two removals of one element are not reported: a
    /// removal leaves nothing to tell whether the other remover had seen it.
    fn edit_element(&mut self, id: ElemId, seen: &Context, by: Stamp, frontier: &impl Frontier, value: Option<&[u8]>, removals: &ListRemovals) -> Option<Met> {
        let placed = self.position(id);
        let element = match placed {
            Some(i) => self.elements.get_mut(i),
            None => self.parked.iter_mut().find(|e| e.id == id),
        };
        let Some(element) = element else {
            // The element has not arrived: keep the edit for it.
            let early = self.early.entry(id).or_default();
            early.versions.remove(seen, frontier);
            early.removed.join(seen);
            early.removed_by.observe(by);
            if let Some(v) = value.filter(|_| !removals.covers_op && by.time >= removals.dead_before) {
                early.versions.insert(by, v.into());
            }
            return None;
        };
        let was_live = element.is_live();
        let unapplied = element.value.remove(seen, frontier);
        let met = element.value.newest_before(by.time).map(|other| match value {
            None => (Rule::AddWins, Kept::Other, other),
            Some(_) => (Rule::LwwOverwrite, Kept::Op, other),
        });
        if let Some(v) = value {
            add_version(element, self.early.get(&id), by, v, removals);
        }
        if !element.is_live() {
            element.removed_by.observe(by);
        }
        if placed.is_some() {
            self.live = self.live + element.is_live() as usize - was_live as usize;
        }
        if !unapplied.is_empty() {
            let early = self.early.entry(id).or_default();
            early.removed.join(&unapplied);
            early.removed_by.observe(by);
        }
        met
    }

    /// Where element `id` is, checking the ends first (pushes and pops work there).
    fn position(&self, id: ElemId) -> Option<usize> {
        let n = self.elements.len();
        if self.elements.front().is_some_and(|e| e.id == id) {
            return Some(0);
        }
        if n > 0 && self.elements[n - 1].id == id {
            return Some(n - 1);
        }
        self.elements.iter().position(|e| e.id == id)
    }

    /// Where a new element hanging from `parent` goes, or `None` if its parent has not
    /// arrived.
    fn slot(&self, id: ElemId, parent: Anchor) -> Option<(usize, bool)> {
        match parent {
            Anchor::Tail => {
                // The tail's children come last, oldest first, each followed by its subtree:
                // walk back over the subtrees of tail children newer than this one.
                let mut at = self.elements.len();
                for (i, e) in self.elements.iter().enumerate().rev() {
                    if e.head_side {
                        break;
                    }
                    if e.parent == Anchor::Tail {
                        if e.id < id {
                            break;
                        }
                        at = i;
                    }
                }
                Some((at, false))
            }
            Anchor::Head => Some((self.after_subtree_of_newer(0, parent, id), true)),
            Anchor::After(p) => {
                let i = self.position(p)?;
                Some((self.after_subtree_of_newer(i + 1, parent, id), self.elements[i].head_side))
            }
        }
    }

    /// From `start`, skips the children of `parent` newer than `id` with their subtrees.
    fn after_subtree_of_newer(&self, start: usize, parent: Anchor, id: ElemId) -> usize {
        let mut inside: HashSet<ElemId> = HashSet::new();
        let mut at = start;
        while let Some(e) = self.elements.get(at) {
            let in_subtree = match e.parent {
                Anchor::After(p) => inside.contains(&p),
                _ => false,
            };
            if e.parent == parent {
                if e.id < id {
                    break;
                }
            } else if !in_subtree {
                break;
            }
            inside.insert(e.id);
            at += 1;
        }
        at
    }

    /// Places a new element (or parks it until its parent arrives), then the parked elements
    /// that were waiting for it. Callers make sure the element is not here yet (a scan for it
    /// would make every push O(length)).
    fn place(&mut self, mut element: Element) {
        let Some((at, head_side)) = self.slot(element.id, element.parent) else {
            if self.parked.iter().all(|p| p.id != element.id) {
                self.parked.push(element);
            }
            return;
        };
        element.head_side = head_side;
        if let Some(early) = self.early.get_mut(&element.id) {
            apply_early(&mut element, early);
        }
        if let Anchor::After(p) = element.parent {
            if let Some(i) = self.position(p) {
                self.elements[i].children += 1;
            }
        }
        let id = element.id;
        self.live += element.is_live() as usize;
        self.elements.insert(at, element);
        if self.parked.iter().any(|p| p.parent == Anchor::After(id)) {
            let (ready, rest): (Vec<Element>, Vec<Element>) = std::mem::take(&mut self.parked).into_iter().partition(|p| p.parent == Anchor::After(id));
            self.parked = rest;
            ready.into_iter().for_each(|p| self.place(p));
        }
    }

    /// Whole-key removal: removes every version `seen` covers (the op `by`).
    pub fn remove_seen(&mut self, seen: &Context, by: Stamp, frontier: &impl Frontier) {
        for e in self.elements.iter_mut().chain(self.parked.iter_mut()) {
            if e.is_live() {
                e.value.remove(seen, frontier);
                if !e.is_live() {
                    e.removed_by.observe(by);
                }
            }
        }
        for early in self.early.values_mut() {
            early.versions.remove(seen, frontier);
        }
        self.recount();
    }

    /// Removes every version written before `time` (the key expired; the op `by` says so).
    pub fn kill_before(&mut self, time: u64, by: Stamp) {
        for e in self.elements.iter_mut().chain(self.parked.iter_mut()) {
            let was_live = e.is_live();
            e.value.remove_before(time);
            if was_live && !e.is_live() {
                e.removed_by.observe(by);
            }
        }
        for early in self.early.values_mut() {
            early.versions.remove_before(time);
        }
        self.recount();
    }

    /// Forgets early removals this node has caught up with.
    pub fn settle(&mut self, frontier: &impl Frontier) {
        if !self.early.is_empty() {
            self.early.retain(|_, early| {
                early.removed.retain(|s| !frontier.covers(s));
                !early.removed.is_empty() || !early.versions.is_empty()
            });
        }
    }

    /// Drops tombstones that nothing hangs from and whose removal is stable: no op still to
    /// come can name them, and a leaf's absence changes where no insert goes. Children come
    /// after their parents, so one pass from the back frees whole removed chains.
    pub fn collect(&mut self, stable: &impl Frontier) {
        if self.elements.len() == self.live {
            return;
        }
        let mut i = self.elements.len();
        while i > 0 {
            i -= 1;
            if self.elements[i].is_collectable(stable) {
                let parent = self.elements[i].parent;
                self.elements.remove(i);
                if let Anchor::After(p) = parent {
                    if let Some(j) = self.elements.range(..i).rposition(|x| x.id == p) {
                        self.elements[j].children -= 1;
                    }
                }
            }
        }
    }

    /// [`ListState::collect`] for the elements `ids` only (those an op edited), and the
    /// parents they free: O(edited) when they are near the ends, where pops work.
    pub fn collect_ids(&mut self, ids: impl Iterator<Item = ElemId>, stable: &impl Frontier) {
        for id in ids {
            let mut next = Some(id);
            while let Some(id) = next.take() {
                let Some(i) = self.position(id) else { break };
                if !self.elements[i].is_collectable(stable) {
                    break;
                }
                if let Anchor::After(p) = self.elements[i].parent {
                    if let Some(j) = self.position(p) {
                        self.elements[j].children -= 1;
                        next = Some(p);
                    }
                }
                self.elements.remove(i);
            }
        }
    }

    /// Joins another replica's list (full state transfer). `mine` and `theirs` are what each
    /// side had applied; `removed` the whole-key removals either side knew of. Elements this
    /// side lacks are placed by the same rule as inserts; a version one side lacks although it
    /// had applied its write was removed there and stays removed.
    pub fn merge(&mut self, other: &ListState, mine: &impl Frontier, theirs: &impl Frontier, removed: &Context) {
        // Where every element is on each side, found once: the loop visits every element, and
        // a scan per element would make the transfer of a long list quadratic. No element is
        // placed until the loop is done, so the places stay true throughout it.
        let (here, there) = (Places::of(self), Places::of(other));
        // An element's versions on a side: its register, or the early versions it holds for
        // an element it has not seen yet.
        let versions_of = |list: &ListState, places: &Places, id: ElemId| -> Option<Register<Box<[u8]>>> {
            places.find(list, id).map(|e| e.value.clone()).or_else(|| list.early.get(&id).map(|x| x.versions.clone()))
        };
        let mut ids: Vec<ElemId> = self.elements.iter().chain(&self.parked).map(|e| e.id).collect();
        ids.extend(self.early.keys().copied());
        ids.extend(other.elements.iter().chain(&other.parked).map(|e| e.id));
        ids.extend(other.early.keys().copied());
        let mut unique = HashSet::new();
        ids.retain(|id| unique.insert(*id));
        self.inserted.join(&other.inserted);
        let mut arriving = Vec::new();
        for id in ids {
            let mut value = versions_of(self, &here, id).unwrap_or_default();
            value.merge(&versions_of(other, &there, id).unwrap_or_default(), mine, theirs);
            if let Some(their_early) = other.early.get(&id) {
                let entry = self.early.entry(id).or_default();
                entry.removed.join(&their_early.removed);
                entry.removed_by.join(&their_early.removed_by);
            }
            match (here.find_mut(self, id), there.find(other, id)) {
                (Some(e), theirs_element) => {
                    let was_live = e.is_live();
                    e.value = value;
                    if let Some(t) = theirs_element {
                        e.removed_by.join(&t.removed_by);
                    }
                    // Collected there, so its removal was stable there: stable everywhere.
                    if was_live && !e.is_live() && e.removed_by.is_empty() {
                        e.removed_by.observe(id.stamp);
                    }
                }
                (None, Some(t)) if !mine.covers(id.stamp) => {
                    if let Some(entry) = self.early.get_mut(&id) {
                        entry.versions = Register::default();
                    }
                    arriving.push(Element { value, ..t.clone() });
                }
                (None, _) => {
                    if !value.is_empty() || self.early.contains_key(&id) {
                        self.early.entry(id).or_default().versions = value;
                    }
                }
            }
        }
        for element in arriving {
            self.place(Element { children: 0, ..element });
        }
        for e in self.elements.iter_mut().chain(self.parked.iter_mut()) {
            let was_live = e.is_live();
            if let Some(early) = self.early.get_mut(&e.id) {
                apply_early(e, early);
            }
            if !removed.is_empty() {
                e.value.remove(removed, mine);
            }
            if was_live && !e.is_live() && e.removed_by.is_empty() {
                e.removed_by.observe(e.id.stamp);
            }
        }
        self.recount();
    }

    fn recount(&mut self) {
        self.live = self.elements.iter().filter(|e| e.is_live()).count();
    }
}

/// Where each element of a list is, by id: in its sequence or among its parked inserts.
struct Places(HashMap<ElemId, (bool, usize)>);

impl Places {
    fn of(list: &ListState) -> Places {
        let placed = list.elements.iter().enumerate().map(|(i, e)| (e.id, (false, i)));
        let parked = list.parked.iter().enumerate().map(|(i, e)| (e.id, (true, i)));
        Places(placed.chain(parked).collect())
    }

    fn find<'a>(&self, list: &'a ListState, id: ElemId) -> Option<&'a Element> {
        self.0.get(&id).map(|&(parked, i)| if parked { &list.parked[i] } else { &list.elements[i] })
    }

    fn find_mut<'a>(&self, list: &'a mut ListState, id: ElemId) -> Option<&'a mut Element> {
        self.0.get(&id).map(|&(parked, i)| if parked { &mut list.parked[i] } else { &mut list.elements[i] })
    }
}

/// Adds version `(by, value)` to `element` unless a removal ahead of this node covers it, in
/// which case the element records who removed it.
fn add_version(element: &mut Element, early: Option<&Early>, by: Stamp, value: &[u8], removals: &ListRemovals) {
    if removals.covers_op || early.is_some_and(|e| e.removed.covers(by)) {
        element.removed_by.join(&removals.removers);
        if let Some(early) = early {
            element.removed_by.join(&early.removed_by);
        }
    } else if by.time < removals.dead_before {
        if let Some(expired_by) = removals.expired_by {
            element.removed_by.observe(expired_by);
        }
    } else {
        element.value.insert(by, value.into());
    }
}

/// Applies to a newly placed element what early edits did to it.
fn apply_early(element: &mut Element, early: &mut Early) {
    element.value.remove(&early.removed, &NothingApplied);
    for (stamp, v) in early.versions.versions() {
        if !early.removed.covers(stamp) {
            element.value.insert(stamp, v.clone());
        }
    }
    early.versions = Register::default();
    if !element.is_live() {
        element.removed_by.join(&early.removed_by);
    }
}

/// A frontier that has applied nothing: every named version counts as still to come.
struct NothingApplied;

impl Frontier for NothingApplied {
    fn covers(&self, _: Stamp) -> bool {
        false
    }
}
