//! Polling before sleeping: once the event loop runs out of work, it keeps asking the kernel
//! for ready sockets (`epoll_wait` with a zero timeout) for a short, adaptive window before it
//! blocks.
//!
//! Why: a client's request that finds the event loop asleep has to wake its thread, which on a
//! virtual machine means an inter-processor interrupt and a halted vCPU coming back, several
//! microseconds paid by the client's `write` and by the server. Under request/response traffic
//! the next request usually arrives within tens of microseconds, so polling that long catches
//! it awake. This is the rule of KVM's `haltpoll` idle governor, applied to the event loop: the
//! window grows while a poll would have caught the wake-up and shrinks while sleeps are longer
//! than the largest window, so sparse traffic costs (almost) nothing. `busy-poll-us` bounds the
//! window; 0 turns polling off. Only a single-threaded event loop runs the poller (see
//! `listener::run`). docs/benchmarks.md has the measurements.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The first window after an idle time that polling would have caught, in microseconds.
const GROW_START_US: u64 = 10;

/// How long to poll before the next sleep, adapted to how long the sleeps turn out to be.
/// Pure: fed with durations, so its rule is tested without a clock.
#[derive(Debug, Default)]
pub struct PollWindow {
    window_us: u64,
}

impl PollWindow {
    /// How long to poll now, within `max_us`.
    pub fn current(&self, max_us: u64) -> Duration {
        Duration::from_micros(self.window_us.min(max_us))
    }

    /// The loop polled its whole window, found nothing, and slept: `idle` passed from the
    /// last input to the next, polling included. An idle time within `max_us` is one a longer
    /// window would have caught, so the window grows (doubling from [`GROW_START_US`], up to
    /// `max_us`); a longer one halves it, down to zero.
    pub fn after_idle(&mut self, idle: Duration, max_us: u64) {
        let idle_us = idle.as_micros().min(u64::MAX as u128) as u64;
        if idle_us > max_us {
            self.window_us /= 2;
            if self.window_us < GROW_START_US {
                self.window_us = 0;
            }
        } else {
            self.window_us = (self.window_us * 2).max(GROW_START_US).min(max_us);
        }
    }
}

/// The shared side of idle polling: connections report that input arrived, and a polling
/// task turns that into "keep polling" or "wake up".
#[derive(Default)]
pub struct IdlePoll {
    /// Reads that brought input, ever; a change means the loop had work.
    reads: AtomicU64,
    /// The polling task is blocked waiting for input.
    asleep: AtomicBool,
    /// Wakes the polling task.
    wake: Notify,
    /// The current window, in microseconds (INFO).
    window_us: AtomicU64,
    /// Microseconds spent polling windows that ended without input (INFO): CPU time the
    /// polling cost beyond the work it served.
    idle_polled_us: AtomicU64,
}

impl IdlePoll {
    /// The current polling window.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.window_us.load(Ordering::Relaxed))
    }

    /// Time spent polling without finding input, ever.
    pub fn idle_polled(&self) -> Duration {
        Duration::from_micros(self.idle_polled_us.load(Ordering::Relaxed))
    }

    /// Called by a connection each time a read brings input.
    pub fn input_arrived(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.asleep.load(Ordering::Relaxed) {
            self.asleep.store(false, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Runs forever on the event loop: polls while input keeps arriving within the window,
    /// then sleeps until it arrives again. `max_us` is read before every window, so
    /// `CONFIG SET busy-poll-us` takes effect at once.
    pub async fn run(&self, max_us: &AtomicU64) {
        let mut window = PollWindow::default();
        loop {
            let max = max_us.load(Ordering::Relaxed);
            let span = window.current(max);
            self.window_us.store(span.as_micros() as u64, Ordering::Relaxed);
            let last_input = self.poll_while_busy(span).await;
            self.asleep.store(true, Ordering::Relaxed);
            self.wake.notified().await;
            window.after_idle(last_input.elapsed(), max);
        }
    }

    /// Yields to the scheduler, which polls the sockets without blocking before running this
    /// task again, until `window` passes with no input. Returns when input last came (as far
    /// as this task saw).
    async fn poll_while_busy(&self, window: Duration) -> Instant {
        let mut seen = self.reads.load(Ordering::Relaxed);
        let mut quiet_since = Instant::now();
        if window.is_zero() {
            return quiet_since;
        }
        loop {
            tokio::task::yield_now().await;
            let reads = self.reads.load(Ordering::Relaxed);
            if reads != seen {
                seen = reads;
                quiet_since = Instant::now();
                continue;
            }
            let quiet = quiet_since.elapsed();
            if quiet >= window {
                self.idle_polled_us.fetch_add(quiet.as_micros() as u64, Ordering::Relaxed);
                return quiet_since;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn short_idle_times_grow_the_window_up_to_the_bound() {
        let mut w = PollWindow::default();
        assert_eq!(w.current(100), Duration::ZERO, "no polling before any idle time was seen");
        w.after_idle(us(90), 100);
        assert_eq!(w.current(100), us(10));
        w.after_idle(us(90), 100);
        assert_eq!(w.current(100), us(20));
        w.after_idle(us(90), 100);
        w.after_idle(us(90), 100);
        assert_eq!(w.current(100), us(80));
        w.after_idle(us(90), 100);
        assert_eq!(w.current(100), us(100), "capped at the bound");
    }

    #[test]
    fn idle_times_longer_than_the_bound_shrink_it_to_nothing() {
        let mut w = PollWindow::default();
        for _ in 0..5 {
            w.after_idle(us(99), 100);
        }
        assert_eq!(w.current(100), us(100));
        w.after_idle(Duration::from_millis(5), 100);
        assert_eq!(w.current(100), us(50));
        w.after_idle(Duration::from_secs(3600), 100);
        w.after_idle(Duration::from_secs(3600), 100);
        assert_eq!(w.current(100), us(12));
        w.after_idle(Duration::from_secs(3600), 100);
        assert_eq!(w.current(100), Duration::ZERO, "below the first window it stops polling");
    }

    #[test]
    fn a_bound_of_zero_turns_polling_off() {
        let mut w = PollWindow::default();
        w.after_idle(us(5), 0);
        w.after_idle(us(0), 0);
        assert_eq!(w.current(0), Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn input_wakes_the_sleeping_poller_which_sleeps_again_when_input_stops() {
        let poll = std::sync::Arc::new(IdlePoll::default());
        let max = std::sync::Arc::new(AtomicU64::new(1_000_000));
        let task = tokio::spawn({
            let (poll, max) = (poll.clone(), max.clone());
            async move { poll.run(&max).await }
        });
        tokio::task::yield_now().await;
        assert!(poll.asleep.load(Ordering::Relaxed), "with no window yet, the poller sleeps at once");
        poll.input_arrived();
        assert!(!poll.asleep.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(poll.asleep.load(Ordering::Relaxed), "asleep again once the window passed without input");
        assert_eq!(poll.window(), us(GROW_START_US), "the quick wake-up opened the first window");
        assert!(poll.idle_polled() >= us(GROW_START_US), "it polled that window before sleeping: {:?}", poll.idle_polled());
        task.abort();
    }
}
