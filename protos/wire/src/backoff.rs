//! Capped exponential backoff with jitter, driven by an injected generator.

use std::time::Duration;

use drover_time::SplitMix64;

/// Exponential backoff: the n-th delay is drawn uniformly from
/// `[base/2, base]` where `base = min(initial * 2^n, max)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and never exceeding `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max: max.max(initial), attempt: 0 }
    }

    /// The next delay; each call doubles the base until it reaches the cap.
    pub fn next_delay(&mut self, rng: &mut SplitMix64) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        half + half.mul_f64(rng.next_f64())
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_jittered_and_stay_under_the_cap() {
        let mut rng = SplitMix64::new(1);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay(&mut rng)).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_secs(1u64 << i.min(5)).min(Duration::from_secs(30));
            assert!(
                *d >= base / 2 && *d <= base,
                "attempt {i}: {d:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
        assert!(delays[9] >= Duration::from_secs(15));
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn different_seeds_give_different_jitter() {
        let mut b1 = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let mut b2 = b1.clone();
        let d1 = b1.next_delay(&mut SplitMix64::new(1));
        let d2 = b2.next_delay(&mut SplitMix64::new(2));
        assert_ne!(d1, d2);
    }
}
