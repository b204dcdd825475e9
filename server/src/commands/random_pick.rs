//! Random picks from a collection, as SRANDMEMBER, SPOP and HRANDFIELD make them.

use super::CmdError;
use rand::seq::SliceRandom;
use rand::Rng;

/// `count` random items of `items`: distinct ones when `count` >= 0 (all of them if fewer),
/// and exactly `-count` when negative, repeats allowed (Redis's rule for both commands).
pub fn pick_random<T: Clone>(mut items: Vec<T>, count: i64) -> Result<Vec<T>, CmdError> {
    let mut rng = rand::thread_rng();
    if count >= 0 {
        let n = (count as usize).min(items.len());
        items.partial_shuffle(&mut rng, n);
        items.truncate(n);
        return Ok(items);
    }
    if items.is_empty() {
        return Ok(items);
    }
    let n = count.checked_neg().filter(|&n| n <= i64::MAX / 2).ok_or(CmdError::from("ERR value is out of range"))? as usize;
    Ok((0..n).map(|_| items[rng.gen_range(0..items.len())].clone()).collect())
}
