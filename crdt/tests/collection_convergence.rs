//! Convergence of hashes and sets, and of keys whose type changes under conflict, under every
//! valid delivery order (see `common` for the simulator). Writes to one key mix set, hash and
//! string commands, each refused where Redis would answer WRONGTYPE, so concurrent writes of
//! different types meet. Once everything is delivered, every replica must read the same type,
//! members, field values and TTL.

mod common;

use bytes::Bytes;
use common::{cases, run, schedule, string_write, Replica, StringWrite, Write};
use meridian_crdt::{Body, Change, Collection, KeyState, Kind, NodeId, Number};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum CollectionWrite {
    SAdd(Vec<u8>),
    SRem(Vec<u8>),
    HSet(Vec<(u8, u8)>),
    HIncrBy(u8, i8),
    HDel(Vec<u8>),
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
        2 => string_write().prop_map(CollectionWrite::Other),
    ]
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
            CollectionWrite::SRem(m) if fits(state, Kind::Set) && state.is_live() => {
                edit(Collection::Set, m.iter().map(|&n| (name(n), Change::Remove)).collect())
            }
            CollectionWrite::HSet(pairs) if fits(state, Kind::Hash) => {
                edit(Collection::Hash, pairs.iter().map(|&(f, v)| (name(f), Change::Write(Bytes::from(vec![v])))).collect())
            }
            CollectionWrite::HIncrBy(f, delta) if fits(state, Kind::Hash) => {
                let field = state.hash().and_then(|h| h.get(&name(*f)));
                let current = field.map_or(Ok(Number::ZERO), |v| v.number(false));
                current.ok()?.incr_int(*delta as i64).ok()?;
                let inc = match field {
                    Some(v) => v.next_increment(id, Number::from_i64(*delta as i64)),
                    None => meridian_crdt::StrState::default().next_increment(id, Number::from_i64(*delta as i64)),
                };
                edit(Collection::Hash, vec![(name(*f), Change::Incr(inc))])
            }
            CollectionWrite::HDel(f) if fits(state, Kind::Hash) && state.is_live() => {
                edit(Collection::Hash, f.iter().map(|&n| (name(n), Change::Remove)).collect())
            }
            _ => None,
        }
    }
}

/// Everything a reader can see of the key.
#[derive(Debug, PartialEq)]
struct Observed {
    kind: Option<Kind>,
    string: Option<Vec<u8>>,
    members: Vec<Vec<u8>>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
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
    let string = (kind == Some(Kind::String)).then(|| state.string().get().map(|v| v.into_owned())).flatten();
    Observed { kind, string, members, fields, expires_at: state.expires_at() }
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
fn a_type_conflict_reads_as_the_newer_write_everywhere() {
    use CollectionWrite::*;
    // The second write (replica 1's) is stamped later: its type wins.
    let out = concurrent(&[], Other(StringWrite::Set { value: b'v', keep_ttl: false, ttl: None }), SAdd(vec![0]));
    assert_eq!((out.kind, out.members), (Some(Kind::Set), vec![b"a".to_vec()]));
    let out = concurrent(&[], SAdd(vec![0]), HSet(vec![(0, b'1')]));
    assert_eq!(out.kind, Some(Kind::Hash));
}

