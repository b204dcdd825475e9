//! What a link does to one packet: pure, seeded, no I/O.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// The behaviour of one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    /// One-way delay every packet takes.
    pub delay: Duration,
    /// Each packet's delay varies uniformly within `delay ± jitter` (never below zero).
    pub jitter: Duration,
    /// Share of packets dropped, 0.0 to 1.0.
    pub loss: f64,
}

impl LinkModel {
    /// A link with this one-way delay and no jitter or loss.
    pub fn delay_ms(ms: u64) -> LinkModel {
        LinkModel { delay: Duration::from_millis(ms), jitter: Duration::ZERO, loss: 0.0 }
    }
}

/// The decisions of one direction of a link, from a seed: the same seed and the same packets
/// give the same fates.
pub struct Fates {
    rng: StdRng,
}

impl Fates {
    /// Fates drawn from `seed`.
    pub fn new(seed: u64) -> Fates {
        Fates { rng: StdRng::seed_from_u64(seed) }
    }

    /// The delay a packet takes on `model`, or `None` if it is lost.
    pub fn decide(&mut self, model: &LinkModel) -> Option<Duration> {
        if model.loss > 0.0 && self.rng.gen_bool(model.loss.min(1.0)) {
            return None;
        }
        if model.jitter.is_zero() {
            return Some(model.delay);
        }
        let jitter = model.jitter.as_micros() as i64;
        let shift = self.rng.gen_range(-jitter..=jitter);
        let micros = (model.delay.as_micros() as i64 + shift).max(0);
        Some(Duration::from_micros(micros as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_jitter_and_losses_match_the_rate() {
        let model = LinkModel { delay: Duration::from_millis(20), jitter: Duration::from_millis(5), loss: 0.1 };
        let mut fates = Fates::new(7);
        let outcomes: Vec<Option<Duration>> = (0..10_000).map(|_| fates.decide(&model)).collect();
        let lost = outcomes.iter().filter(|o| o.is_none()).count();
        assert!((800..1200).contains(&lost), "lost {lost} of 10000 at 10%");
        for d in outcomes.iter().flatten() {
            assert!(*d >= Duration::from_millis(15) && *d <= Duration::from_millis(25), "{d:?}");
        }
        let spread = outcomes.iter().flatten().collect::<std::collections::BTreeSet<_>>().len();
        assert!(spread > 100, "jitter varies delays: {spread} distinct");
    }

    #[test]
    fn the_same_seed_decides_the_same() {
        let model = LinkModel { delay: Duration::from_millis(10), jitter: Duration::from_millis(10), loss: 0.3 };
        let run = |seed| {
            let mut fates = Fates::new(seed);
            (0..100).map(|_| fates.decide(&model)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn a_clean_link_only_delays() {
        let mut fates = Fates::new(0);
        assert!((0..1000).all(|_| fates.decide(&LinkModel::delay_ms(40)) == Some(Duration::from_millis(40))));
    }
}
