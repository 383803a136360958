//! Whether a watch has listed its objects once: a latch any number of tasks may wait on.
//!
//! kube-runtime's `Store::wait_until_ready` is not one: it wakes a single waiting task (a oneshot
//! behind a mutex keeps the last waker only), and even a `now_or_never` poll from elsewhere
//! steals that task's wake-up. Reconciles that awaited it could wait forever. So every watch the
//! reconciles read sets a [`Listed`] when its first list is in, the controllers start only once
//! all of them are set, and no reconcile waits for a list.

use std::sync::Arc;
use tokio::sync::watch;

/// Set once, when a watch's first list is in its store; never unset (a relist keeps the store).
#[derive(Clone, Debug)]
pub struct Listed(Arc<watch::Sender<bool>>);

impl Default for Listed {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Listed {
    /// The first list is in.
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    /// Whether the first list is in (without waiting).
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the first list is in. Every waiter wakes.
    pub async fn wait(&self) {
        // The sender lives in `self`, so the only error (sender dropped) cannot happen.
        let _ = self.0.subscribe().wait_for(|listed| *listed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Listed;
    use std::time::Duration;

    #[tokio::test]
    async fn every_waiter_wakes_when_the_list_is_in() {
        let listed = Listed::default();
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let listed = listed.clone();
                tokio::spawn(async move { listed.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(!listed.is_set());
        listed.set();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap_or_else(|_| panic!("a waiter was not woken"))
                .unwrap_or_else(|e| panic!("waiter: {e}"));
        }
        assert!(listed.is_set());
    }

    #[tokio::test]
    async fn a_waiter_after_the_list_returns_at_once() {
        let listed = Listed::default();
        listed.set();
        tokio::time::timeout(Duration::from_secs(5), listed.wait())
            .await
            .unwrap_or_else(|_| panic!("set, yet it waited"));
    }
}
