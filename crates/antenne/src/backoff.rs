//! The one reconnection backoff of antenne: every thing that reconnects on
//! its own (destinations, the OBS connection) waits with it.
//!
//! Exponential from `min`, doubling per failure, capped at `max`, each delay
//! scaled by a random factor in `1 ± jitter` (default ±20 %) so that many
//! destinations that failed together do not retry in step. A delay never
//! exceeds `max`, jitter included. The counter starts over with
//! [`Backoff::reset`] (after a connection that held).

use std::time::Duration;

use rand::Rng;

/// Jitter of [`Backoff::new`]: ±20 %.
pub const DEFAULT_JITTER: f64 = 0.2;

/// A backoff policy and the count of failures since the last reset.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    failures: u32,
}

impl Backoff {
    /// From `min` (first retry) to `max`, with [`DEFAULT_JITTER`].
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            jitter: DEFAULT_JITTER,
            failures: 0,
        }
    }

    /// The same policy with another jitter fraction (0 = none; clamped to
    /// 0..=0.9).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.9)
        } else {
            0.0
        };
        self
    }

    /// The delay before retry number `attempt` (1-based: 1 is the first
    /// retry), without touching the counter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .min
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max);
        if self.jitter == 0.0 {
            return base;
        }
        let factor = rand::thread_rng().gen_range(1.0 - self.jitter..=1.0 + self.jitter);
        base.mul_f64(factor).min(self.max)
    }

    /// Counts one more failure and returns the delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.delay(self.failures)
    }

    /// Failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over from `min` (the connection held).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn within(d: Duration, lo_ms: u64, hi_ms: u64) -> bool {
        d >= Duration::from_millis(lo_ms) && d <= Duration::from_millis(hi_ms)
    }

    #[test]
    fn doubles_from_min_with_twenty_percent_jitter() {
        let b = Backoff::new(MIN, MAX);
        for _ in 0..200 {
            assert!(within(b.delay(1), 800, 1200));
            assert!(within(b.delay(2), 1600, 2400));
            assert!(within(b.delay(3), 3200, 4800));
        }
    }

    #[test]
    fn never_exceeds_max_even_with_jitter() {
        let b = Backoff::new(MIN, MAX);
        for _ in 0..200 {
            assert!(within(b.delay(10), 24_000, 30_000));
            assert!(b.delay(u32::MAX) <= MAX);
        }
    }

    #[test]
    fn jitter_spreads_retries_that_failed_together() {
        let b = Backoff::new(MIN, MAX);
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| b.delay(3)).collect();
        assert!(delays.len() > 1, "20 delays, all equal: {delays:?}");
    }

    #[test]
    fn without_jitter_is_exact() {
        let b = Backoff::new(MIN, MAX).with_jitter(0.0);
        let got: Vec<u64> = (1..=7).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn counts_failures_and_starts_over_after_a_reset() {
        let mut b = Backoff::new(MIN, MAX).with_jitter(0.0);
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(2));
        assert_eq!(b.next_delay(), Duration::from_secs(4));
        assert_eq!(b.failures(), 3);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn a_nonsense_jitter_means_none() {
        let b = Backoff::new(MIN, MAX).with_jitter(f64::NAN);
        assert_eq!(b.delay(2), Duration::from_secs(2));
    }
}
