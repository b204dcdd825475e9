//! Random picks from a collection, as SRANDMEMBER, SPOP, HRANDFIELD and ZRANDMEMBER make them.
//!
//! A pick draws a random slot of the collection's member vector and keeps it if the member
//! there is live, so one member costs O(1) and `n` members O(n), whatever the collection's
//! size: a SPOP on a set of millions does not stall the node. Only a distinct pick of more
//! than a third of the members copies them all and shuffles (Redis's own cut-over, in
//! `srandmemberWithCountCommand`).

use super::CmdError;
use hashbrown::HashSet;
use meridian_crdt::{Element, Members};
use rand::rngs::ThreadRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// Random draws before a mostly-removed member vector is listed once instead: below 1 in 64
/// of its slots live, drawing blindly would cost more than the listing.
const DRAWS: usize = 64;

/// The most repeated picks one reply may hold (a negative count beyond it gets Redis's
/// out-of-range error). Redis's own bound is `LONG_MAX / 2`, which no server can answer: it
/// builds the reply until memory runs out. A hundred million picks is already gigabytes of
/// reply; the bound keeps a typo from taking the node's memory (see docs/compatibility.md).
const MAX_REPEATED_PICKS: i64 = 100_000_000;

/// `count` random live members of `members` (none if the key is absent), each made into a
/// `T` by `make`: distinct ones when `count` >= 0 (all of them if fewer), and exactly `-count`
/// when negative, repeats allowed (Redis's rule for all four commands).
pub fn pick_random<V: Element, T>(members: Option<&Members<V>>, count: i64, make: impl Fn(&[u8], &V) -> T) -> Result<Vec<T>, CmdError> {
    // The count is checked before the key is looked at, as in Redis.
    let repeated = match count {
        0.. => None,
        _ => Some(count.checked_neg().filter(|&n| n <= MAX_REPEATED_PICKS).ok_or(CmdError::from("ERR value is out of range"))? as usize),
    };
    let Some(members) = members.filter(|m| m.is_live()) else { return Ok(Vec::new()) };
    let mut rng = rand::thread_rng();
    let live = members.len();
    if let Some(n) = repeated {
        let mut slots = Slots::new(members);
        return Ok((0..n).map(|_| slots.draw(&mut rng)).map(|(m, v)| make(m, v)).collect());
    }
    let n = (count as usize).min(live);
    if n.saturating_mul(3) > live {
        let mut all: Vec<T> = members.iter().map(|(m, v)| make(m, v)).collect();
        all.partial_shuffle(&mut rng, n);
        all.truncate(n);
        return Ok(all);
    }
    let mut slots = Slots::new(members);
    let mut taken = HashSet::with_capacity(n);
    let mut picked = Vec::with_capacity(n);
    while picked.len() < n {
        let (member, value) = slots.draw(&mut rng);
        if taken.insert(member) {
            picked.push(make(member, value));
        }
    }
    Ok(picked)
}

/// Draws random live members of a collection.
struct Slots<'a, V> {
    members: &'a Members<V>,
    /// The live slots, once blind draws have missed [`DRAWS`] times in a row.
    live: Option<Vec<usize>>,
}

impl<'a, V: Element> Slots<'a, V> {
    fn new(members: &'a Members<V>) -> Self {
        Slots { members, live: None }
    }

    /// One live member, uniformly at random (the collection has one).
    fn draw(&mut self, rng: &mut ThreadRng) -> (&'a [u8], &'a V) {
        let members = self.members;
        if self.live.is_none() {
            for _ in 0..DRAWS {
                if let Some(found) = members.slot(rng.gen_range(0..members.slots())) {
                    return found;
                }
            }
        }
        let live = self.live.get_or_insert_with(|| (0..members.slots()).filter(|&s| members.slot(s).is_some()).collect());
        members.slot(live[rng.gen_range(0..live.len())]).expect("a live slot stays live while the collection is borrowed")
    }
}
