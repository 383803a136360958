//! Retry delays: exponential backoff with full jitter, or the server's `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Backoff settings of one executor.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    pub(super) initial: Duration,
    pub(super) max: Duration,
}

impl Backoff {
    /// Upper bound of the delay before retry number `retry` (0 for the first retry):
    /// `min(max, initial · 2^retry)`.
    pub(super) fn ceiling(&self, retry: u32) -> Duration {
        self.initial.saturating_mul(1u32 << retry.min(31)).min(self.max)
    }

    /// The delay before retry number `retry`: `Retry-After` when the server sent one (capped at
    /// `max`), else a uniformly random duration in `[0, ceiling(retry)]`.
    pub(super) fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut XorShift) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max),
            None => rng.up_to(self.ceiling(retry)),
        }
    }
}

/// `Retry-After` in delta-seconds; HTTP dates are ignored (Google sends seconds).
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Tiny xorshift64* generator: jitter only needs to de-synchronise clients, not be secure.
#[derive(Debug)]
pub(super) struct XorShift(u64);

impl XorShift {
    /// Seeded from the process's random hasher keys and the clock.
    pub(super) fn seeded() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        hasher.write_u128(nanos);
        Self::from_seed(hasher.finish())
    }

    /// A generator from a fixed seed (0 is replaced: xorshift must not start at 0).
    pub(super) fn from_seed(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random duration in `[0, max]` (nanosecond resolution).
    pub(super) fn up_to(&mut self, max: Duration) -> Duration {
        let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        match max_nanos.checked_add(1) {
            Some(span) => Duration::from_nanos(self.next_u64() % span),
            None => Duration::from_nanos(self.next_u64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Backoff, XorShift, parse_retry_after};

    const BACKOFF: Backoff = Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(10) };

    #[test]
    fn ceiling_doubles_and_is_capped() {
        let ceilings: Vec<u128> = (0..8).map(|retry| BACKOFF.ceiling(retry).as_millis()).collect();
        assert_eq!(ceilings, vec![200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jittered_delays_stay_within_bounds_and_vary() {
        let mut rng = XorShift::seeded();
        for retry in 0..10 {
            let delays: Vec<Duration> = (0..200).map(|_| BACKOFF.delay(retry, None, &mut rng)).collect();
            assert!(delays.iter().all(|delay| *delay <= BACKOFF.ceiling(retry)));
            assert!(delays.iter().any(|delay| *delay != delays[0]), "full jitter must vary");
        }
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut rng = XorShift::from_seed(7);
        assert_eq!(BACKOFF.delay(0, Some(Duration::from_secs(3)), &mut rng), Duration::from_secs(3));
        assert_eq!(BACKOFF.delay(0, Some(Duration::from_secs(3600)), &mut rng), Duration::from_secs(10));
    }

    #[test]
    fn parses_retry_after_seconds_only() {
        assert_eq!(parse_retry_after(" 5 "), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn zero_seed_and_extreme_bounds_are_safe() {
        let mut rng = XorShift::from_seed(0);
        assert_ne!(rng.next_u64(), 0);
        assert_eq!(rng.up_to(Duration::ZERO), Duration::ZERO);
        let _ = rng.up_to(Duration::MAX);
    }
}
