//! Zipfian key choice, the same as `bench/flash.py` draws for its pipelined mix: rank `r`
//! (0-based) of `keys` has weight `1 / (r + 1)^s`, and rank `r` names key id
//! `r * 2654435761 mod keys`, so the hot keys are scattered over the loaded ones instead of
//! being the first written.

/// A sampler of key ids.
pub struct Zipf {
    /// Cumulative weights by rank.
    cumulative: Vec<f64>,
}

impl Zipf {
    /// Ranks `0..keys` with exponent `s`.
    pub fn new(keys: u64, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=keys)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// The key id a uniform `u` in [0, 1) draws.
    pub fn key_id(&self, u: f64) -> u64 {
        let total = *self.cumulative.last().expect("at least one key");
        let rank = self.cumulative.partition_point(|&c| c < u * total) as u64;
        let keys = self.cumulative.len() as u64;
        (rank * 2_654_435_761) % keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_draws_hit_the_top_rank_and_ids_stay_in_range() {
        let zipf = Zipf::new(1000, 0.99);
        assert_eq!(zipf.key_id(0.0), 0);
        let top_share = (0..10_000).filter(|i| zipf.key_id(*i as f64 / 10_000.0) == 0).count();
        // Rank 1 of 1000 at s = 0.99 carries about 13% of the weight.
        assert!((1200..1450).contains(&top_share), "{top_share}");
        assert!((0..10_000).all(|i| zipf.key_id(i as f64 / 10_000.0) < 1000));
        assert_eq!(zipf.key_id(0.999_999), (999 * 2_654_435_761) % 1000);
    }
}
