//! Convergence of string keys (registers, counters, TTLs) under every valid delivery order.
//!
//! Three replicas make random writes from their own view of the key, exactly as the server
//! builds ops, and receive each other's ops in random order (FIFO per origin, interleaved
//! arbitrarily across origins, with duplicates). Once everything is delivered, every replica
//! must read the same value and TTL.

use bytes::Bytes;
use meridian_crdt::{Body, KeyState, NodeId, Number, Op, VersionVector, NO_EXPIRY};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Write {
    Set { value: u8, keep_ttl: bool, ttl: Option<u64> },
    Incr(i8),
    Del,
    Expire(u64),
    Persist,
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (any::<u8>(), any::<bool>(), proptest::option::of(1u64..100))
            .prop_map(|(value, keep_ttl, ttl)| Write::Set { value, keep_ttl, ttl }),
        any::<i8>().prop_map(Write::Incr),
        Just(Write::Del),
        (1u64..100).prop_map(Write::Expire),
        Just(Write::Persist),
    ]
}

/// A step of the schedule: replica `at` writes, or receives the next op from `from`.
#[derive(Debug, Clone)]
enum Step {
    Write { at: usize, write: Write },
    Deliver { to: usize, from: usize, duplicate: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, write()).prop_map(|(at, write)| Step::Write { at, write }),
        (0..3usize, 0..3usize, any::<bool>())
            .prop_map(|(to, from, duplicate)| Step::Deliver { to, from, duplicate }),
    ]
}

struct Replica {
    id: NodeId,
    clock: u64,
    vv: VersionVector,
    state: KeyState,
    /// Ops made here, in order.
    log: Vec<Op>,
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
            received: [0; 3],
        }
    }

    /// Builds the op the server would build for `write` on this replica's current view.
    fn write(&mut self, write: &Write) {
        let body = match write {
            Write::Set { value, keep_ttl, ttl } => Body::Set {
                seen: self.state.seen(*keep_ttl && ttl.is_none()),
                value: Bytes::from(vec![*value]),
                expire_at: *ttl,
            },
            Write::Incr(delta) => {
                let live = self.state.is_live();
                Body::Incr {
                    seen: if live { Default::default() } else { self.state.seen(false) },
                    inc: self.state.string().next_increment(self.id, Number::from_i64(*delta as i64)),
                }
            }
            Write::Del => Body::Del { seen: self.state.seen(false) },
            Write::Expire(at) => Body::Expire { seen: self.state.seen_ttl(), at: *at },
            Write::Persist => Body::Expire { seen: self.state.seen_ttl(), at: NO_EXPIRY },
        };
        self.clock += 1;
        let op = Op {
            origin: self.id,
            seq: self.log.len() as u64 + 1,
            time: self.clock,
            key: Bytes::from_static(b"k"),
            body,
        };
        self.apply(&op);
        self.log.push(op);
    }

    fn apply(&mut self, op: &Op) {
        if self.vv.contains(op.origin, op.seq) {
            return;
        }
        self.clock = self.clock.max(op.time);
        self.state.apply(op.stamp(), &op.body, &self.vv);
        self.vv.record(op.origin, op.seq, op.time);
    }

    fn observed(&self) -> (Option<Vec<u8>>, Option<u64>) {
        (self.state.string().get().map(|v| v.into_owned()), self.state.expires_at())
    }
}

fn deliver(replicas: &mut [Replica], to: usize, from: usize, duplicate: bool) {
    let next = replicas[to].received[from];
    if duplicate && next > 0 {
        let op = replicas[from].log[next - 1].clone();
        replicas[to].apply(&op);
    } else if let Some(op) = replicas[from].log.get(next).cloned() {
        replicas[to].received[from] += 1;
        replicas[to].apply(&op);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_delivery_order_converges(steps in proptest::collection::vec(step(), 1..60)) {
        let mut replicas: Vec<Replica> = (0..3).map(Replica::new).collect();
        for step in &steps {
            match step {
                Step::Write { at, write } => replicas[*at].write(write),
                Step::Deliver { to, from, duplicate } if to != from => {
                    deliver(&mut replicas, *to, *from, *duplicate)
                }
                Step::Deliver { .. } => {}
            }
        }
        for to in 0..3 {
            for from in 0..3 {
                while to != from && replicas[to].received[from] < replicas[from].log.len() {
                    deliver(&mut replicas, to, from, false);
                }
            }
        }
        let first = replicas[0].observed();
        for r in &replicas[1..] {
            prop_assert_eq!(&r.observed(), &first);
        }
    }
}
