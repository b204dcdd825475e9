//! The schedule simulator the convergence tests share: three replicas of one key make random
//! writes from their own view, exactly as the server builds ops, and receive each other's ops
//! in random order (FIFO per origin, interleaved arbitrarily across origins, with duplicates).
//! At random moments a replica also merges another's whole state (a full state transfer), and
//! replicas garbage-collect what the stability frontier (what all three have applied) allows.
//!
//! The same schedules check conflict reporting: a local write never reports a conflict, and
//! every conflict a replica reports is between two writes truly concurrent (neither writer had
//! applied the other's op), unless the reporting replica was behind the writer of the op it
//! applied (the writer had applied an op the replica had not: a removal on its way can make
//! a write the writer had seen removed look unseen; see docs/semantics.md).

#![allow(dead_code)]

use bytes::Bytes;
use meridian_crdt::{Body, Conflict, Frontier, KeyState, Kind, NodeId, Number, Op, Stamp, VersionVector, NO_EXPIRY};
use proptest::prelude::*;

/// A write a test can make: the op body the server would make for it on `state` at replica
/// `id` whose clock reads `clock`, or `None` if the server would refuse it.
pub trait Write: std::fmt::Debug + Clone {
    /// The op body, if any.
    fn body(&self, state: &KeyState, id: NodeId, clock: u64) -> Option<Body>;
}

/// Property-test cases per test (`CONVERGENCE_CASES`, default 2000).
pub fn cases() -> u32 {
    std::env::var("CONVERGENCE_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000)
}

/// A write to a string key (or to any key, for SET and the generic commands).
#[derive(Debug, Clone)]
pub enum StringWrite {
    Set {
        value: u8,
        keep_ttl: bool,
        ttl: Option<u64>,
    },
    Incr(i8),
    Del,
    Expire(u64),
    Persist,
    /// The key expired this many ticks ago (0: now).
    Expired(u64),
}

pub fn string_write() -> impl Strategy<Value = StringWrite> + Clone {
    prop_oneof![
        (any::<u8>(), any::<bool>(), proptest::option::of(1u64..100)).prop_map(|(value, keep_ttl, ttl)| StringWrite::Set { value, keep_ttl, ttl }),
        any::<i8>().prop_map(StringWrite::Incr),
        Just(StringWrite::Del),
        (1u64..100).prop_map(StringWrite::Expire),
        Just(StringWrite::Persist),
        (0u64..5).prop_map(StringWrite::Expired),
    ]
}

impl Write for StringWrite {
    fn body(&self, state: &KeyState, id: NodeId, clock: u64) -> Option<Body> {
        Some(match self {
            StringWrite::Set { value, keep_ttl, ttl } => Body::Set { seen: state.seen(*keep_ttl && ttl.is_none()), value: Bytes::from(vec![*value]), expire_at: *ttl },
            StringWrite::Incr(delta) => {
                if state.kind().is_some_and(|k| k != Kind::String) {
                    return None;
                }
                Body::Incr { seen: if state.is_live() { Default::default() } else { state.seen(false) }, inc: state.string().next_increment(id, Number::from_i64(*delta as i64))? }
            }
            StringWrite::Del => Body::Del { seen: state.seen(false) },
            StringWrite::Expire(at) => Body::Expire { seen: state.seen_ttl(), at: *at },
            StringWrite::Persist => Body::Expire { seen: state.seen_ttl(), at: NO_EXPIRY },
            StringWrite::Expired(ago) => Body::Expired { before: (clock + 1).saturating_sub(*ago) },
        })
    }
}

/// A step of the schedule: replica `at` writes, receives the next op from `from`, merges
/// `from`'s whole state, or collects garbage.
#[derive(Debug, Clone)]
pub enum Step<W> {
    Write { at: usize, write: W },
    Deliver { to: usize, from: usize, duplicate: bool },
    Transfer { to: usize, from: usize },
    Collect { at: usize },
}

/// A random schedule of up to 60 steps whose writes come from `write`.
pub fn schedule<W: Clone + std::fmt::Debug>(write: impl Strategy<Value = W> + Clone) -> impl Strategy<Value = Vec<Step<W>>> {
    proptest::collection::vec(step(write), 1..60)
}

fn step<W: Clone + std::fmt::Debug>(write: impl Strategy<Value = W>) -> impl Strategy<Value = Step<W>> {
    prop_oneof![
        4 => (0..3usize, write).prop_map(|(at, write)| Step::Write { at, write }),
        4 => (0..3usize, 0..3usize, any::<bool>())
            .prop_map(|(to, from, duplicate)| Step::Deliver { to, from, duplicate }),
        1 => (0..3usize, 0..3usize).prop_map(|(to, from)| Step::Transfer { to, from }),
        1 => (0..3usize).prop_map(|at| Step::Collect { at }),
    ]
}

/// The causal-stability frontier as replica `at` knows it: a stamp is stable when every
/// replica has applied it and `at` has applied every op each replica made before that. (The
/// simulator reads the other replicas' vectors directly; the replication protocol learns them
/// from acknowledgements.)
struct Stable {
    vvs: Vec<VersionVector>,
    at: usize,
}

impl Stable {
    fn of(replicas: &[Replica], at: usize) -> Stable {
        Stable { vvs: replicas.iter().map(|r| r.vv.clone()).collect(), at }
    }
}

impl Frontier for Stable {
    fn covers(&self, stamp: Stamp) -> bool {
        self.vvs.iter().enumerate().all(|(j, vv)| {
            let origin = NodeId(j as u64 + 1);
            vv.covers(stamp) && self.vvs[self.at].seq(origin) >= vv.seq(origin)
        })
    }
}

/// One replica of the key.
pub struct Replica {
    id: NodeId,
    clock: u64,
    vv: VersionVector,
    pub state: KeyState,
    /// Ops made here, in order.
    log: Vec<Op>,
    /// For each op of `log`, what its writer had applied when it wrote it.
    seen: Vec<VersionVector>,
    /// Conflicts reported while applying others' ops, with what this replica had applied
    /// before the op.
    conflicts: Vec<(Conflict, VersionVector)>,
    /// Per origin, how many of its ops were delivered here.
    received: [usize; 3],
}

impl Replica {
    fn new(i: usize) -> Self {
        Replica {
            id: NodeId(i as u64 + 1),
            clock: 0,
            vv: VersionVector::new(),
            state: KeyState::default(),
            log: Vec::new(),
            seen: Vec::new(),
            conflicts: Vec::new(),
            received: [0; 3],
        }
    }

    /// Builds the op the server would build for `write` on this replica's current view, and
    /// applies it (a write the server would refuse, WRONGTYPE say, makes no op).
    fn write(&mut self, write: &impl Write) {
        let Some(body) = write.body(&self.state, self.id, self.clock) else { return };
        self.clock += 1;
        let op = Op { origin: self.id, seq: self.log.len() as u64 + 1, time: self.clock, key: Bytes::from_static(b"k"), body };
        self.seen.push(self.vv.clone());
        let conflict = self.apply(&op);
        assert_eq!(conflict, None, "a local write met a conflict: {op:?}");
        self.log.push(op);
    }

    fn apply(&mut self, op: &Op) -> Option<Conflict> {
        if self.vv.contains(op.origin, op.seq) {
            return None;
        }
        self.clock = self.clock.max(op.time);
        let conflict = self.state.apply(op.stamp(), &op.body, &self.vv, self.id);
        self.vv.record(op.origin, op.seq, op.time);
        conflict
    }

    /// What the writer of the op stamped `stamp` had applied when it wrote it.
    fn seen_by_writer_of(&self, stamp: Stamp) -> &VersionVector {
        let i = self.log.iter().position(|op| op.time == stamp.time).expect("a conflict names a write that was made");
        &self.seen[i]
    }

    /// Merges another replica's whole state, as a full state transfer does.
    fn merge_from(&mut self, other: &Replica) {
        self.state.merge(&other.state, &self.vv, &other.vv);
        self.vv.join(&other.vv);
        self.clock = self.clock.max(other.clock);
    }

    /// A copy of the replica's state and frontier, as a state transfer ships it.
    fn snapshot(&self) -> Replica {
        Replica { id: self.id, clock: self.clock, vv: self.vv.clone(), state: self.state.clone(), log: Vec::new(), seen: Vec::new(), conflicts: Vec::new(), received: [0; 3] }
    }
}

fn deliver(replicas: &mut [Replica], to: usize, from: usize, duplicate: bool) {
    let next = replicas[to].received[from];
    let op = if duplicate && next > 0 {
        replicas[from].log[next - 1].clone()
    } else if let Some(op) = replicas[from].log.get(next).cloned() {
        replicas[to].received[from] += 1;
        op
    } else {
        return;
    };
    let before = replicas[to].vv.clone();
    if let Some(conflict) = replicas[to].apply(&op) {
        replicas[to].conflicts.push((conflict, before));
    }
}

/// Panics unless the two writes a conflict names were concurrent, or the reporting replica
/// (which had applied `before`) was behind the op's writer.
fn check_concurrent(replicas: &[Replica], conflict: &Conflict, before: &VersionVector) {
    let writer = |stamp: Stamp| &replicas[stamp.node.0 as usize - 1];
    let (op, other) = (conflict.op, conflict.other);
    let op_writer_saw = writer(op).seen_by_writer_of(op);
    let concurrent = !op_writer_saw.covers(other) && !writer(other).seen_by_writer_of(other).covers(op);
    assert!(concurrent || !before.dominates(op_writer_saw), "reported conflict between causally ordered writes: {conflict:?}");
}

/// What merging `b`'s whole state into a copy of `a` gives, as a full state transfer does.
fn merged(a: &Replica, b: &Replica) -> Replica {
    let mut copy = a.snapshot();
    copy.merge_from(b);
    copy
}

/// Checks that merging the replicas' whole states is idempotent, commutative and associative
/// as readers see it (`observed`).
pub fn check_merge_laws<T: PartialEq + std::fmt::Debug>(replicas: &[Replica], observed: impl Fn(&Replica) -> T) -> Result<(), proptest::test_runner::TestCaseError> {
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
    proptest::prop_assert_eq!(observed(&merged(a, a)), observed(a));
    proptest::prop_assert_eq!(observed(&merged(a, b)), observed(&merged(b, a)));
    proptest::prop_assert_eq!(observed(&merged(&merged(a, b), c)), observed(&merged(a, &merged(b, c))));
    Ok(())
}

/// Runs a schedule, then delivers everything still on its way and checks every conflict
/// reported; returns the replicas, which must now agree.
pub fn run<W: Write>(steps: &[Step<W>]) -> Vec<Replica> {
    catch_up(play(steps))
}

/// Runs a schedule and nothing more: the replicas may differ (each has what reached it).
pub fn play<W: Write>(steps: &[Step<W>]) -> Vec<Replica> {
    let mut replicas: Vec<Replica> = (0..3).map(Replica::new).collect();
    for step in steps {
        match step {
            Step::Write { at, write } => replicas[*at].write(write),
            Step::Deliver { to, from, duplicate } if to != from => deliver(&mut replicas, *to, *from, *duplicate),
            Step::Transfer { to, from } if to != from => {
                let source = replicas[*from].snapshot();
                replicas[*to].merge_from(&source);
            }
            Step::Collect { at } => {
                let stable = Stable::of(&replicas, *at);
                replicas[*at].state.collect(&stable);
            }
            Step::Deliver { .. } | Step::Transfer { .. } => {}
        }
    }
    replicas
}

/// Delivers to every replica what is still on its way, and checks every conflict reported.
fn catch_up(mut replicas: Vec<Replica>) -> Vec<Replica> {
    for to in 0..3 {
        for from in 0..3 {
            while to != from && replicas[to].received[from] < replicas[from].log.len() {
                deliver(&mut replicas, to, from, false);
            }
        }
    }
    for r in &replicas {
        r.conflicts.iter().for_each(|(c, before)| check_concurrent(&replicas, c, before));
    }
    replicas
}
