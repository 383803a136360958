//! The emulator's clock for what waits on time: Pub/Sub ack deadlines and delayed deliveries,
//! and Secret Manager's rotation schedule. It runs with real time, and tests may move it forward
//! ([`super::GcpEmulator::advance_clock`]) instead of sleeping.

use super::hooks::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One reading of the clock: a monotonic instant for deadlines and the wall time for timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub wall: jiff::Timestamp,
}

impl Now {
    /// Real time moved forward by `offset` (saturating: a reading never fails).
    pub fn with_offset(offset: Duration) -> Self {
        let instant = Instant::now();
        let instant = instant.checked_add(offset).unwrap_or(instant);
        let wall = jiff::Timestamp::now();
        let wall = jiff::SignedDuration::try_from(offset).ok().and_then(|d| wall.checked_add(d).ok()).unwrap_or(wall);
        Self { instant, wall }
    }
}

#[derive(Debug, Default)]
pub struct Clock {
    /// How far the clock is ahead of real time.
    offset: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> Now {
        Now::with_offset(*lock(&self.offset))
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = lock(&self.offset);
        *offset = offset.saturating_add(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_both_readings_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after.instant >= before.instant + Duration::from_secs(3600));
        let gap = after.wall.duration_since(before.wall);
        assert!(gap >= jiff::SignedDuration::from_secs(3600), "{gap:?}");
    }
}
