//! Redis's LFU access counter, kept in one byte per entry: a logarithmic count of how often
//! a key is used that decays while the key is idle. It ranks keys for `allkeys-lfu` and
//! `volatile-lfu`, with Redis's arithmetic and its two settings, so a tuned redis.conf means
//! the same here:
//!
//! - each use increments the counter with probability `1 / ((counter - 5) * lfu-log-factor + 1)`
//!   (always below 5, never past 255), so with the default factor 10 a key needs about a
//!   million uses to saturate;
//! - each `lfu-decay-time` minutes a key goes unused take 1 off (0: no decay);
//! - a new key starts at 5, so it is not evicted before it had a chance to be used again.
//!
//! The idle time is the entry's `touched` stamp, as Redis measures decay from the last use.

use std::sync::atomic::{AtomicU32, Ordering};

/// The counter a new key starts with (Redis's `LFU_INIT_VAL`).
pub const INITIAL: u8 = 5;

/// `lfu-log-factor` and `lfu-decay-time`, changeable at runtime (CONFIG SET).
#[derive(Debug)]
pub struct LfuSettings {
    log_factor: AtomicU32,
    decay_minutes: AtomicU32,
}

impl Default for LfuSettings {
    /// Redis's defaults: factor 10, one minute.
    fn default() -> LfuSettings {
        LfuSettings { log_factor: AtomicU32::new(10), decay_minutes: AtomicU32::new(1) }
    }
}

impl LfuSettings {
    /// Sets both (values past `u32::MAX` saturate; Redis caps them at `INT_MAX`).
    pub fn set(&self, log_factor: u64, decay_minutes: u64) {
        self.log_factor.store(log_factor.min(u32::MAX.into()) as u32, Ordering::Relaxed);
        self.decay_minutes.store(decay_minutes.min(u32::MAX.into()) as u32, Ordering::Relaxed);
    }

    /// The counter of an entry used now, `idle_ms` after its last use.
    pub fn used(&self, counter: u8, idle_ms: u32) -> u8 {
        let counter = self.decayed(counter, idle_ms);
        incremented(counter, self.log_factor.load(Ordering::Relaxed), rand::random::<f64>)
    }

    /// The counter of an entry unused for `idle_ms`, as eviction ranks it.
    pub fn decayed(&self, counter: u8, idle_ms: u32) -> u8 {
        decayed(counter, idle_ms, self.decay_minutes.load(Ordering::Relaxed))
    }
}

/// `counter` after `idle_ms` without use, at one off per `decay_minutes`.
fn decayed(counter: u8, idle_ms: u32, decay_minutes: u32) -> u8 {
    if decay_minutes == 0 {
        return counter;
    }
    let periods = idle_ms / 60_000 / decay_minutes;
    counter.saturating_sub(periods.min(255) as u8)
}

/// `counter` after one use, `draw` giving a uniform number in [0, 1) when one is needed.
fn incremented(counter: u8, log_factor: u32, draw: impl FnOnce() -> f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(INITIAL));
    let chance = 1.0 / (base * f64::from(log_factor) + 1.0);
    if base == 0.0 || draw() < chance {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_grows_logarithmically_as_in_redis() {
        // Redis's table (redis.conf) for factor 10: about 10 after 100 hits, 18 after 1,000,
        // 142 after 100,000 and 255 after a million.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let mut draw = || rand::Rng::gen::<f64>(&mut rng);
        let mut counter = INITIAL;
        let mut after = Vec::new();
        for hits in 1..=1_000_000u32 {
            counter = incremented(counter, 10, &mut draw);
            if [100, 1_000, 100_000, 1_000_000].contains(&hits) {
                after.push(counter);
            }
        }
        assert!((8..=12).contains(&after[0]), "{after:?}");
        assert!((15..=21).contains(&after[1]), "{after:?}");
        assert!((120..=160).contains(&after[2]), "{after:?}");
        assert_eq!(after[3], 255, "{after:?}");
        // Below the initial value every use counts; factor 0 counts every use.
        assert_eq!(incremented(2, 10, || 0.99), 3);
        assert_eq!(incremented(40, 0, || 0.99), 41);
        assert_eq!(incremented(255, 0, || 0.0), 255);
    }

    #[test]
    fn idle_minutes_take_the_count_down() {
        assert_eq!(decayed(20, 59_999, 1), 20);
        assert_eq!(decayed(20, 3 * 60_000, 1), 17);
        assert_eq!(decayed(20, 3 * 60_000, 2), 19);
        assert_eq!(decayed(20, u32::MAX, 1), 0);
        assert_eq!(decayed(20, u32::MAX, 0), 20, "decay time 0: never");
    }
}
