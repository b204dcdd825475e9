//! Wall-clock time for expiry and the HLC, in Unix time, shifted by the test-only offset.
//!
//! `test-clock-offset-ms` moves this node's idea of "now" by a fixed amount, so tests and the
//! lab can run a region whose clock is tens of seconds off and show that causally later writes
//! still win. Every reading of the wall clock goes through here so the shift is consistent.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Shifts every later reading by `ms` (negative: behind). Set once at startup.
pub fn set_offset_ms(ms: i64) {
    OFFSET_MS.store(ms, Ordering::Relaxed);
}

/// Time since the Unix epoch, shifted.
fn since_epoch() -> Duration {
    let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let offset = OFFSET_MS.load(Ordering::Relaxed);
    let shift = Duration::from_millis(offset.unsigned_abs());
    if offset >= 0 {
        real + shift
    } else {
        real.saturating_sub(shift)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    since_epoch().as_micros() as u64
}

/// The HLC's physical clock (the same shifted time, as uhlc's NTP64).
pub fn hlc_now() -> uhlc::NTP64 {
    uhlc::NTP64::from(since_epoch())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_shifts_every_reading() {
        let before = now_ms();
        set_offset_ms(-60_000);
        let behind = now_ms();
        let hlc_behind = hlc_now().to_duration().as_millis() as u64;
        set_offset_ms(0);
        assert!(before - behind >= 59_000, "{before} vs {behind}");
        assert!(hlc_behind.abs_diff(behind) < 1_000);
    }
}
