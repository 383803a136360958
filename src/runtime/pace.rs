//! Pacing of a relist: after the first list (or a relist) every object of a kind is worth a
//! reconcile, and kube-runtime runs reconcile requests in the order they arrive. Handed over all at
//! once, 10,000 of them would make an object created a second later wait behind all 10,000. So a
//! relist is handed over a window at a time — the next object when one handed over has been
//! reconciled — while changes from the watch go through at once.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// If no object of the window is reconciled for this long, the window is assumed free anyway (an
/// object deleted meanwhile is never reconciled), so a relist never stalls.
const STALL: Duration = Duration::from_millis(200);

/// The relisted objects (`namespace/name`) handed over and not reconciled yet, for one kind.
pub struct Pace {
    window: usize,
    handed: Mutex<HashSet<String>>,
    done: Notify,
}

impl Pace {
    /// At most `window` relisted objects waiting or running at a time.
    pub fn new(window: usize) -> Self {
        Self { window: window.max(1), handed: Mutex::default(), done: Notify::new() }
    }

    fn handed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.handed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A reconcile of `key` completed (whatever triggered it).
    pub fn reconciled(&self, key: &str) {
        if self.handed().remove(key) {
            self.done.notify_waiters();
        }
    }

    /// Waits until `key` fits in the window, and counts it as handed over.
    pub async fn room(&self, key: String) {
        loop {
            let done = self.done.notified();
            {
                let mut handed = self.handed();
                if handed.len() < self.window {
                    handed.insert(key);
                    return;
                }
            }
            if tokio::time::timeout(STALL, done).await.is_err() {
                self.handed().clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    #[tokio::test]
    async fn a_window_is_handed_over_then_one_per_reconciled_object() {
        let pace = Pace::new(2);
        pace.room("ns/a".into()).await;
        pace.room("ns/b".into()).await;
        let third = tokio::time::timeout(Duration::from_millis(20), pace.room("ns/c".into())).await;
        assert!(third.is_err(), "the window is full");
        pace.reconciled("ns/other");
        let still = tokio::time::timeout(Duration::from_millis(20), pace.room("ns/c".into())).await;
        assert!(still.is_err(), "a reconcile of an object not handed over frees nothing");
        pace.reconciled("ns/a");
        tokio::time::timeout(Duration::from_millis(20), pace.room("ns/c".into()))
            .await
            .unwrap_or_else(|_| panic!("a reconciled object frees its place"));
    }

    #[tokio::test]
    async fn a_window_that_never_drains_is_freed_after_a_stall() {
        let pace = Pace::new(1);
        pace.room("ns/a".into()).await;
        // Nothing is reconciled: the stall timeout frees the window.
        tokio::time::timeout(Duration::from_secs(5), pace.room("ns/b".into()))
            .await
            .unwrap_or_else(|_| panic!("a relist stalled"));
    }
}
