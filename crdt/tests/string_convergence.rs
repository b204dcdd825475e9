//! Convergence of string keys (registers, counters, TTLs) under every valid delivery order
//! (see `common` for the simulator): once everything is delivered, every replica must read the
//! same value and TTL.

mod common;

use common::{cases, run, schedule, string_write, Replica};
use proptest::prelude::*;

fn observed(r: &Replica) -> (Option<Vec<u8>>, Option<u64>) {
    (r.state.string().get().map(|v| v.into_owned()), r.state.expires_at())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_delivery_order_converges(steps in schedule(string_write())) {
        let replicas = run(&steps);
        let first = observed(&replicas[0]);
        for r in &replicas[1..] {
            prop_assert_eq!(&observed(r), &first);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Full state transfer is a join: commutative, associative and idempotent.
    #[test]
    fn state_merge_is_commutative_associative_and_idempotent(steps in schedule(string_write())) {
        common::check_merge_laws(&common::play(&steps), observed)?;
    }
}
