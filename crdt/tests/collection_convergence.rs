//! Convergence of hashes, sets, sorted sets and lists, and of keys whose type changes under conflict, under every
//! valid delivery order (see `common` for the simulator). Writes to one key mix set, hash,
//! sorted-set, list and string commands, each refused where Redis would answer WRONGTYPE, so concurrent writes of
//! different types meet. Once everything is delivered, every replica must read the same type,
//! members, field values and TTL.

mod common;

use bytes::Bytes;
use common::{cases, run, schedule, string_write, Replica, StringWrite, Write};
use meridian_crdt::{Anchor, Body, Change, Collection, ElemId, KeyState, Kind, ListEdit, ListState, NodeId, Number};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum CollectionWrite {
    SAdd(Vec<u8>),
    SRem(Vec<u8>),
    HSet(Vec<(u8, u8)>),
    HIncrBy(u8, i8),
    HDel(Vec<u8>),
    /// Members and scores in quarters, so scores are exact and sums order-free.
    ZAdd(Vec<(u8, i8)>),
    ZIncrBy(u8, i8),
    ZRem(Vec<u8>),
    LPush(Vec<u8>),
    RPush(Vec<u8>),
    /// Pop this many from the left (or, `false`, the right).
    Pop(bool, u8),
    LSet(i8, u8),
    LRem(i8, u8),
    /// Insert before (or after) the first element equal to the pivot.
    LInsert(bool, u8, u8),
    LTrim(i8, i8),
    Other(StringWrite),
}

/// Members and fields come from a small alphabet so writes collide.
fn names() -> impl Strategy<Value = Vec<u8>> + Clone {
    proptest::collection::vec(0u8..4, 1..3)
}

fn collection_write() -> impl Strategy<Value = CollectionWrite> + Clone {
    prop_oneof![
        3 => names().prop_map(CollectionWrite::SAdd),
        2 => names().prop_map(CollectionWrite::SRem),
        3 => proptest::collection::vec((0u8..4, any::<u8>()), 1..3).prop_map(CollectionWrite::HSet),
        2 => (0u8..4, any::<i8>()).prop_map(|(f, d)| CollectionWrite::HIncrBy(f, d)),
        2 => names().prop_map(CollectionWrite::HDel),
        3 => proptest::collection::vec((0u8..4, any::<i8>()), 1..3).prop_map(CollectionWrite::ZAdd),
        2 => (0u8..4, any::<i8>()).prop_map(|(m, d)| CollectionWrite::ZIncrBy(m, d)),
        2 => names().prop_map(CollectionWrite::ZRem),
        3 => names().prop_map(CollectionWrite::LPush),
        3 => names().prop_map(CollectionWrite::RPush),
        2 => (any::<bool>(), 1u8..3).prop_map(|(left, n)| CollectionWrite::Pop(left, n)),
        1 => (-3i8..3, 0u8..4).prop_map(|(i, v)| CollectionWrite::LSet(i, v)),
        1 => (-2i8..2, 0u8..4).prop_map(|(c, v)| CollectionWrite::LRem(c, v)),
        2 => (any::<bool>(), 0u8..4, 0u8..4).prop_map(|(b, p, v)| CollectionWrite::LInsert(b, p, v)),
        1 => (-3i8..3, -3i8..3).prop_map(|(a, b)| CollectionWrite::LTrim(a, b)),
        2 => string_write().prop_map(CollectionWrite::Other),
    ]
}

/// `q` quarters.
fn quarters(q: i8) -> f64 {
    f64::from(q) / 4.0
}

fn name(n: u8) -> Bytes {
    Bytes::from(vec![b'a' + n])
}

/// True if a command on `kind` may run on this key (absent keys take any type).
fn fits(state: &KeyState, kind: Kind) -> bool {
    state.kind().is_none_or(|k| k == kind)
}

impl Write for CollectionWrite {
    fn body(&self, state: &KeyState, id: NodeId, clock: u64) -> Option<Body> {
        let edit = |collection, changes: Vec<(Bytes, Change)>| state.edit_op(collection, changes).body;
        match self {
            CollectionWrite::Other(write) => write.body(state, id, clock),
            CollectionWrite::SAdd(m) if fits(state, Kind::Set) => edit(Collection::Set, m.iter().map(|&n| (name(n), Change::Add)).collect()),
            CollectionWrite::SRem(m) if fits(state, Kind::Set) && state.is_live() => edit(Collection::Set, m.iter().map(|&n| (name(n), Change::Remove)).collect()),
            CollectionWrite::HSet(pairs) if fits(state, Kind::Hash) => edit(Collection::Hash, pairs.iter().map(|&(f, v)| (name(f), Change::Write(Bytes::from(vec![v])))).collect()),
            CollectionWrite::HIncrBy(f, delta) if fits(state, Kind::Hash) => {
                let field = state.hash().and_then(|h| h.get(&name(*f)));
                let current = field.map_or(Ok(Number::ZERO), |v| v.number(false));
                current.ok()?.incr_int(*delta as i64).ok()?;
                let inc = field.cloned().unwrap_or_default().next_increment(id, Number::from_i64(*delta as i64))?;
                edit(Collection::Hash, vec![(name(*f), Change::Incr(inc))])
            }
            CollectionWrite::ZAdd(pairs) if fits(state, Kind::Zset) => {
                edit(Collection::Zset, pairs.iter().map(|&(m, s)| (name(m), Change::Write(Bytes::from(quarters(s).to_string())))).collect())
            }
            CollectionWrite::ZIncrBy(m, delta) if fits(state, Kind::Zset) => {
                let member = state.zset().and_then(|z| z.members().get(&name(*m)));
                let delta = Number::parse_float(quarters(*delta).to_string().as_bytes()).unwrap();
                let inc = member.cloned().unwrap_or_default().next_increment(id, delta)?;
                edit(Collection::Zset, vec![(name(*m), Change::Incr(inc))])
            }
            CollectionWrite::ZRem(m) if fits(state, Kind::Zset) && state.is_live() => edit(Collection::Zset, m.iter().map(|&n| (name(n), Change::Remove)).collect()),
            CollectionWrite::HDel(f) if fits(state, Kind::Hash) && state.is_live() => edit(Collection::Hash, f.iter().map(|&n| (name(n), Change::Remove)).collect()),
            CollectionWrite::LPush(v) if fits(state, Kind::List) => state.list_op(vec![ListEdit::Insert { anchor: Anchor::Head, values: v.iter().map(|&n| name(n)).collect() }]),
            CollectionWrite::RPush(v) if fits(state, Kind::List) => state.list_op(vec![ListEdit::Insert { anchor: Anchor::Tail, values: v.iter().map(|&n| name(n)).collect() }]),
            write if fits(state, Kind::List) && state.kind() == Some(Kind::List) => list_write(state.list()?, write).and_then(|edits| state.list_op(edits)),
            _ => None,
        }
    }
}

/// The edits of a list command that reads the list (pops, LSET, LREM, LINSERT, LTRIM).
fn list_write(list: &ListState, write: &CollectionWrite) -> Option<Vec<ListEdit<Bytes>>> {
    let live: Vec<(ElemId, Vec<u8>)> = list.iter().map(|(id, v)| (id, v.to_vec())).collect();
    let removals = |ids: &mut dyn Iterator<Item = &(ElemId, Vec<u8>)>| ids.map(|(id, _)| list.remove(*id)).collect::<Vec<_>>();
    Some(match write {
        CollectionWrite::Pop(true, n) => removals(&mut live.iter().take(*n as usize)),
        CollectionWrite::Pop(false, n) => removals(&mut live.iter().rev().take(*n as usize)),
        CollectionWrite::LSet(i, v) => vec![list.set(list.nth(*i as i64)?.0, name(*v))],
        CollectionWrite::LRem(count, v) => {
            let matching = |e: &&(ElemId, Vec<u8>)| e.1 == name(*v).to_vec();
            match count {
                0 => removals(&mut live.iter().filter(matching)),
                c if *c > 0 => removals(&mut live.iter().filter(matching).take(*c as usize)),
                c => removals(&mut live.iter().rev().filter(matching).take(c.unsigned_abs() as usize)),
            }
        }
        CollectionWrite::LInsert(before, pivot, v) => {
            let (id, _) = live.iter().find(|(_, value)| *value == name(*pivot).to_vec())?;
            vec![list.insert_next_to(*id, *before, name(*v))]
        }
        CollectionWrite::LTrim(start, stop) => {
            let len = live.len() as i64;
            let (s, e) = (if *start < 0 { (len + *start as i64).max(0) } else { *start as i64 }, if *stop < 0 { len + *stop as i64 } else { (*stop as i64).min(len - 1) });
            removals(&mut live.iter().enumerate().filter(|(i, _)| (*i as i64) < s || (*i as i64) > e || s > e).map(|(_, x)| x))
        }
        _ => return None,
    })
}

/// Everything a reader can see of the key.
#[derive(Debug, PartialEq)]
struct Observed {
    kind: Option<Kind>,
    string: Option<Vec<u8>>,
    members: Vec<Vec<u8>>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Sorted-set members in score order, with their scores.
    scored: Vec<(Vec<u8>, f64)>,
    /// List values, left to right.
    list: Vec<Vec<u8>>,
    expires_at: Option<u64>,
}

fn observed(r: &Replica) -> Observed {
    let state = &r.state;
    let kind = state.kind();
    let mut members: Vec<Vec<u8>> = match kind {
        Some(Kind::Set) => state.set().into_iter().flat_map(|s| s.iter().map(|(m, _)| m.to_vec())).collect(),
        _ => Vec::new(),
    };
    members.sort();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = match kind {
        Some(Kind::Hash) => state.hash().into_iter().flat_map(|h| h.iter().map(|(f, v)| (f.to_vec(), v.get().unwrap().into_owned()))).collect(),
        _ => Vec::new(),
    };
    fields.sort();
    let scored = match kind {
        Some(Kind::Zset) => state.zset().into_iter().flat_map(|z| z.ordered().map(|(s, m)| (m.to_vec(), s))).collect(),
        _ => Vec::new(),
    };
    let list = match kind {
        Some(Kind::List) => state.list().into_iter().flat_map(|l| l.iter().map(|(_, v)| v.to_vec())).collect(),
        _ => Vec::new(),
    };
    let string = (kind == Some(Kind::String)).then(|| state.string().get().map(|v| v.into_owned())).flatten();
    Observed { kind, string, members, fields, scored, list, expires_at: state.expires_at() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_delivery_order_converges(steps in schedule(collection_write())) {
        let replicas = run(&steps);
        let first = observed(&replicas[0]);
        for r in &replicas[1..] {
            prop_assert_eq!(&observed(r), &first);
        }
        // A key that reads as a collection has members; the live count matches them.
        if let Some(set) = replicas[0].state.set() {
            prop_assert_eq!(set.len(), set.iter().count());
        }
        if let Some(hash) = replicas[0].state.hash() {
            prop_assert_eq!(hash.len(), hash.iter().count());
        }
        // The score order holds exactly the live members, sorted by (score, member).
        for r in &replicas {
            if let Some(zset) = r.state.zset() {
                let mut expected: Vec<(f64, Vec<u8>)> = zset.members().iter().map(|(m, s)| (s.score().unwrap(), m.to_vec())).collect();
                expected.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                let order: Vec<(f64, Vec<u8>)> = zset.ordered().map(|(s, m)| (s, m.to_vec())).collect();
                prop_assert_eq!(order, expected);
            }
        }
    }
}

/// Concurrent writes (both made before either arrives at the other) on two replicas, then
/// exchanged: what each replica reads afterwards.
fn concurrent(setup: &[CollectionWrite], a: CollectionWrite, b: CollectionWrite) -> Observed {
    use common::Step;
    let mut steps: Vec<Step<CollectionWrite>> = Vec::new();
    for w in setup {
        steps.push(Step::Write { at: 0, write: w.clone() });
    }
    for to in [1, 2] {
        steps.extend(std::iter::repeat_n(Step::Deliver { to, from: 0, duplicate: false }, setup.len()));
    }
    steps.push(Step::Write { at: 0, write: a });
    steps.push(Step::Write { at: 1, write: b });
    let replicas = run(&steps);
    let first = observed(&replicas[0]);
    assert_eq!(observed(&replicas[1]), first);
    first
}

#[test]
fn add_wins_over_a_concurrent_remove_and_delete() {
    use CollectionWrite::*;
    let seeded = [SAdd(vec![0, 1, 2])];
    // Redis Enterprise's example: SREM a then SREM c ‖ SADD c ends as {b, c}.
    let out = concurrent(&seeded, SRem(vec![0, 2]), SAdd(vec![2]));
    assert_eq!(out.members, vec![b"b".to_vec(), b"c".to_vec()]);
    let out = concurrent(&seeded, Other(StringWrite::Del), SAdd(vec![3]));
    assert_eq!(out.members, vec![b"d".to_vec()]);
}

#[test]
fn hash_fields_merge_per_field_and_counters_add_up() {
    use CollectionWrite::*;
    let seeded = [HSet(vec![(0, b'1'), (1, b'x')])];
    let out = concurrent(&seeded, HIncrBy(0, 5), HIncrBy(0, 3));
    assert_eq!(out.fields[0], (b"a".to_vec(), b"9".to_vec()));
    let out = concurrent(&seeded, HDel(vec![1]), HSet(vec![(1, b'y')]));
    assert_eq!(out.fields[1], (b"b".to_vec(), b"y".to_vec()));
    // HSET ‖ HINCRBY on one field: the written value plus the increment it had not seen.
    let out = concurrent(&seeded, HSet(vec![(0, b'7')]), HIncrBy(0, 2));
    assert_eq!(out.fields[0], (b"a".to_vec(), b"9".to_vec()));
}

#[test]
fn sorted_set_scores_are_lww_and_increments_add_up() {
    use CollectionWrite::*;
    let seeded = [ZAdd(vec![(0, 4), (1, 8)])];
    // ZINCRBY ‖ ZINCRBY: both count.
    let out = concurrent(&seeded, ZIncrBy(0, 2), ZIncrBy(0, 6));
    assert_eq!(out.scored[1], (b"a".to_vec(), 3.0));
    // ZADD ‖ ZADD: the later write's score.
    let out = concurrent(&seeded, ZAdd(vec![(0, 40)]), ZAdd(vec![(0, 20)]));
    assert_eq!(out.scored, vec![(b"b".to_vec(), 2.0), (b"a".to_vec(), 5.0)]);
    // ZREM ‖ ZINCRBY (Redis Enterprise's example): the member stays with only the increment
    // the remover had not seen.
    let out = concurrent(&seeded, ZRem(vec![0]), ZIncrBy(0, 4));
    assert_eq!(out.scored, vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.0)]);
    // ZADD ‖ ZINCRBY: the written score plus the unseen increment.
    let out = concurrent(&seeded, ZAdd(vec![(0, 40)]), ZIncrBy(0, 4));
    assert_eq!(out.scored[1], (b"a".to_vec(), 11.0));
}

#[test]
fn a_type_conflict_reads_as_the_newer_write_everywhere() {
    use CollectionWrite::*;
    // The second write (replica 1's) is stamped later: its type wins.
    let out = concurrent(&[], Other(StringWrite::Set { value: b'v', keep_ttl: false, ttl: None }), SAdd(vec![0]));
    assert_eq!((out.kind, out.members), (Some(Kind::Set), vec![b"a".to_vec()]));
    let out = concurrent(&[], SAdd(vec![0]), HSet(vec![(0, b'1')]));
    assert_eq!(out.kind, Some(Kind::Hash));
}

#[test]
fn concurrent_list_pushes_all_survive_at_their_end_in_one_order() {
    use CollectionWrite::*;
    let list = |out: Observed| out.list.into_iter().map(|v| String::from_utf8(v).unwrap()).collect::<Vec<_>>().join("");
    let seeded = [RPush(vec![0, 1])];
    // The second write (replica 1's) is stamped later: last at the tail, first at the head.
    assert_eq!(list(concurrent(&seeded, RPush(vec![2]), RPush(vec![3]))), "abcd");
    assert_eq!(list(concurrent(&seeded, LPush(vec![2]), LPush(vec![3]))), "dcab");
    assert_eq!(list(concurrent(&seeded, LPush(vec![2]), RPush(vec![3]))), "cabd");
    // Both regions pop the same element: it goes once; the rest stays.
    assert_eq!(list(concurrent(&seeded, Pop(true, 1), Pop(true, 1))), "b");
    // LSET concurrent with a pop of the same element: the new value survives (add wins).
    assert_eq!(list(concurrent(&seeded, Pop(true, 1), LSet(0, 3))), "db");
    // LINSERT next to an element another region pops: the insert stays where it was put.
    assert_eq!(list(concurrent(&seeded, LInsert(false, 0, 2), Pop(true, 1))), "cb");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Full state transfer is a join: merging is commutative, associative and idempotent, on
    /// replicas left apart by any schedule (every type, type conflicts and GC included).
    #[test]
    fn state_merge_is_commutative_associative_and_idempotent(steps in schedule(collection_write())) {
        common::check_merge_laws(&common::play(&steps), observed)?;
    }
}
