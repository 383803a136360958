//! Pacing of a relist: after the first list (or a relist) every object of a kind is worth a
//! reconcile, and kube-runtime runs reconcile requests in the order they arrive. Handed over all at
//! once, 10,000 of them would make an object created a second later wait behind all 10,000. So a
//! relist is handed over a window at a time — as reconciles of that kind complete — while changes
//! from the watch go through at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// If no reconcile completes for this long, the window is assumed free anyway (a request merged
/// with one already queued completes only once), so a relist never stalls.
const STALL: Duration = Duration::from_millis(50);

/// Relist requests handed over and reconciles completed, for one kind.
pub struct Pace {
    window: u64,
    completed: AtomicU64,
    done: Notify,
}

impl Pace {
    /// At most `window` relist requests waiting or running at a time.
    pub fn new(window: u64) -> Self {
        Self { window: window.max(1), completed: AtomicU64::new(0), done: Notify::new() }
    }

    /// A reconcile of this kind completed.
    pub fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.done.notify_waiters();
    }

    /// Starts handing over a relist.
    pub fn start(&self) -> Handover {
        Handover { handed: self.completed.load(Ordering::Relaxed) }
    }

    /// Waits until one more relist request fits in the window, and counts it.
    pub async fn room(&self, handover: &mut Handover) {
        loop {
            let done = self.done.notified();
            let completed = self.completed.load(Ordering::Relaxed);
            if handover.handed < completed + self.window {
                handover.handed += 1;
                return;
            }
            if tokio::time::timeout(STALL, done).await.is_err() {
                handover.handed = completed;
            }
        }
    }
}

/// The requests of one relist handed over so far (as a position on the completed count).
pub struct Handover {
    handed: u64,
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    #[tokio::test]
    async fn a_window_is_handed_over_then_one_per_completed_reconcile() {
        let pace = Pace::new(2);
        let mut handover = pace.start();
        pace.room(&mut handover).await;
        pace.room(&mut handover).await;
        let third = tokio::time::timeout(Duration::from_millis(10), pace.room(&mut handover)).await;
        assert!(third.is_err(), "the window is full");
        pace.completed();
        tokio::time::timeout(Duration::from_millis(10), pace.room(&mut handover))
            .await
            .unwrap_or_else(|_| panic!("a completed reconcile frees one place"));
    }

    #[tokio::test]
    async fn a_window_that_never_drains_is_freed_after_a_stall() {
        let pace = Pace::new(1);
        let mut handover = pace.start();
        pace.room(&mut handover).await;
        // Nothing completes: the stall timeout frees the window.
        tokio::time::timeout(Duration::from_secs(5), pace.room(&mut handover))
            .await
            .unwrap_or_else(|_| panic!("a relist stalled"));
    }
}
