//! Token-bucket rate limiter, one bucket per Google Cloud project: quotas are per project, so
//! one busy project never slows the calls of another. Callers reserve a token and sleep until it
//! is due, so waiting is fair (first come, first served) and never a busy loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lowest accepted rate: keeps computed waits finite.
const MIN_RATE: f64 = 0.001;

/// An async token bucket per project; `None` inside means unlimited.
pub(super) struct RateLimiter {
    rate: Option<f64>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_second` tokens per second and project, with a burst of the same size (at least 1);
    /// a rate that is not finite or ≤ 0 disables the limit.
    pub(super) fn new(per_second: f64) -> Self {
        let enabled = per_second.is_finite() && per_second > 0.0;
        Self { rate: enabled.then(|| per_second.max(MIN_RATE)), buckets: Mutex::default() }
    }

    /// Waits until this caller's token for a call on `resource` is available. Resources name
    /// their project (`projects/P/...`); calls on anything else share one bucket.
    pub(super) async fn acquire(&self, resource: &str) {
        let Some(rate) = self.rate else { return };
        let now = Instant::now();
        let wait = {
            let mut buckets = lock(&self.buckets);
            buckets.entry(project_of(resource).to_owned()).or_insert_with(|| Bucket::new(rate, now)).reserve(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// `P` of `projects/P/...`, or `""`.
fn project_of(resource: &str) -> &str {
    resource.strip_prefix("projects/").and_then(|rest| rest.split('/').next()).unwrap_or_default()
}

fn lock(buckets: &Mutex<HashMap<String, Bucket>>) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
    // The state stays consistent even if a holder panicked (plain arithmetic).
    buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    use super::{Bucket, RateLimiter, project_of};

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
            assert!(limiter.rate.is_none());
            limiter.acquire("projects/p/secrets/s").await;
        }
    }

    #[tokio::test]
    async fn each_project_has_a_bucket_of_its_own() {
        let limiter = RateLimiter::new(1.0);
        limiter.acquire("projects/a/secrets/s/versions/1").await;
        // Project a's only token is spent; b's is untouched, so this returns at once.
        tokio::time::timeout(Duration::from_millis(500), limiter.acquire("projects/b/secrets/s"))
            .await
            .unwrap_or_else(|_| panic!("project b waited for project a's bucket"));
        assert_eq!(super::lock(&limiter.buckets).len(), 2);
    }

    #[test]
    fn the_project_comes_from_the_resource_name() {
        assert_eq!(project_of("projects/p-1/secrets/db/versions/3"), "p-1");
        assert_eq!(project_of("projects/p-1"), "p-1");
        assert_eq!(project_of("https://sts.googleapis.com/v1/token"), "");
    }
}
