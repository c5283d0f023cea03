//! Reconnect delays: exponential from a minimum to a cap, with jitter so that nodes restarted
//! together do not reconnect in lockstep.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is uniformly drawn from
/// `[d/2, d]` where `d` doubles from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff between `min` and `max`; `seed` varies the jitter (e.g. node and peer ids).
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { min, max: max.max(min), current: min, rng: seed | 1 }
    }

    /// Back to the minimum delay (after a successful connection).
    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d / 2;
        let span = u64::try_from((d - half).as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(self.next_random() % (span + 1))
    }

    /// splitmix64: plenty for jitter, no dependency, no global state.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        let mut b = Backoff::new(min, max, 7);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= min / 2 && delays[0] <= min);
        assert!(delays.iter().all(|d| *d <= max));
        assert!(delays[11] >= max / 2);
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
