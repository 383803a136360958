//! Token-bucket rate limiter. Callers reserve a token and sleep until it is due, so waiting is
//! fair (first come, first served) and never a busy loop.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lowest accepted rate: keeps computed waits finite.
const MIN_RATE: f64 = 0.001;

/// An async token bucket; `None` inside means unlimited.
pub(super) struct RateLimiter {
    bucket: Option<Mutex<Bucket>>,
}

impl RateLimiter {
    /// `per_second` tokens per second with a burst of the same size (at least 1);
    /// a rate that is not finite or ≤ 0 disables the limit.
    pub(super) fn new(per_second: f64) -> Self {
        let enabled = per_second.is_finite() && per_second > 0.0;
        let bucket = enabled.then(|| Mutex::new(Bucket::new(per_second.max(MIN_RATE), Instant::now())));
        Self { bucket }
    }

    /// Waits until this caller's token is available.
    pub(super) async fn acquire(&self) {
        let wait = match &self.bucket {
            Some(bucket) => lock(bucket).reserve(Instant::now()),
            None => Duration::ZERO,
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

fn lock(bucket: &Mutex<Bucket>) -> std::sync::MutexGuard<'_, Bucket> {
    // The state stays consistent even if a holder panicked (plain arithmetic).
    bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bucket state; `tokens` goes negative while reservations wait for future tokens.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        let burst = rate.max(1.0);
        Self { rate, burst, tokens: burst, last: now }
    }

    /// Takes one token and returns how long to wait until it is actually available.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Bucket, RateLimiter};

    #[test]
    fn burst_is_free_then_tokens_are_spaced() {
        let start = Instant::now();
        let mut bucket = Bucket::new(10.0, start);
        for _ in 0..10 {
            assert_eq!(bucket.reserve(start), Duration::ZERO);
        }
        for expected_ms in [100.0, 200.0, 300.0] {
            let wait_ms = bucket.reserve(start).as_secs_f64() * 1000.0;
            assert!((wait_ms - expected_ms).abs() < 0.01, "{wait_ms} ms instead of {expected_ms} ms");
        }
    }

    #[test]
    fn tokens_refill_over_time_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = Bucket::new(2.0, start);
        bucket.reserve(start);
        bucket.reserve(start);
        assert!(bucket.reserve(start) > Duration::ZERO);
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert!(bucket.reserve(later) > Duration::ZERO, "burst is capped at the rate");
    }

    #[test]
    fn fractional_rates_keep_a_burst_of_one() {
        let start = Instant::now();
        let mut bucket = Bucket::new(0.5, start);
        assert_eq!(bucket.reserve(start), Duration::ZERO);
        assert!((bucket.reserve(start).as_secs_f64() - 2.0).abs() < 1e-6);
    }

    #[tokio::test]
    async fn disabled_limiter_never_waits() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = RateLimiter::new(rate);
            assert!(limiter.bucket.is_none());
            limiter.acquire().await;
        }
    }
}
