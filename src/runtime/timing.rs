//! Jitter and backoff. (Durations as users write them are `kube::core::Duration`s in the kinds.)

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A random number in [0, 1) (not cryptographic: spreads timers, nothing more).
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `base` moved by up to ±`fraction` of itself, so periodic checks of many objects spread out.
pub fn jittered(base: Duration, fraction: f64) -> Duration {
    let factor = 1.0 + fraction * (2.0 * unit_random() - 1.0);
    base.mul_f64(factor.max(0.0))
}

/// Exponential backoff after `failures` consecutive failures: `initial · 2^(failures-1)`, capped,
/// with full jitter in its upper half (so retries of many objects do not line up).
pub fn backoff(failures: u32, initial: Duration, cap: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = initial.saturating_mul(1 << exponent).min(cap);
    ceiling.mul_f64(0.5 + 0.5 * unit_random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100), 0.1);
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110), "{d:?}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(60);
        assert!(backoff(1, Duration::from_secs(1), cap) <= Duration::from_secs(1));
        assert!(backoff(4, Duration::from_secs(1), cap) >= Duration::from_secs(4));
        assert!(backoff(30, Duration::from_secs(1), cap) <= cap);
    }
}
