//! When each reconciled object is looked at again if nothing it watches changes, kept compactly.
//!
//! kube-runtime's scheduler keeps a requeue as a whole reconcile request (the object reference
//! with its four strings, held twice: in its delay queue and in its map), about 1.2 KiB per
//! object: at 10,000 SecretRefs, each waiting for its refresh, it was the largest part of the
//! operator's heap. The skeleton hands the re-check of a reconcile that ended well to
//! [`Rechecks`] instead (one key and one instant per object) and tells kube to await a change;
//! due keys go back to the controller through its `reconcile_on` stream. Retries after a
//! transient error stay with kube's backoff.

use futures::Stream;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// When a reconciled object is looked at again if nothing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// After this long (a refresh, a poll, a slow retry).
    After(Duration),
    /// Only when something it watches changes.
    OnChange,
}

/// The next re-check of every object of one controller, by `namespace/name`.
#[derive(Default)]
pub struct Rechecks {
    timers: Mutex<Timers>,
    /// Woken when a re-check is set sooner than every other.
    sooner: Notify,
}

#[derive(Default)]
struct Timers {
    due: HashMap<Arc<str>, Instant>,
    /// The same instants, soonest first. An entry whose instant is no longer the key's in `due`
    /// (set again, or cleared) is stale and dropped when it comes up.
    queue: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
}

impl Rechecks {
    /// Replaces the re-check of `key` (`namespace/name`).
    pub fn set(&self, key: &str, recheck: Recheck) {
        self.set_at(key, recheck, Instant::now());
    }

    fn set_at(&self, key: &str, recheck: Recheck, now: Instant) {
        let mut timers = self.timers();
        match recheck {
            Recheck::OnChange => {
                timers.due.remove(key);
            }
            Recheck::After(after) => {
                let at = now + after;
                let key = timers.due.get_key_value(key).map_or_else(|| Arc::from(key), |(key, _)| key.clone());
                let sooner = timers.queue.peek().is_none_or(|Reverse((head, _))| at < *head);
                timers.due.insert(key.clone(), at);
                timers.queue.push(Reverse((at, key)));
                if sooner {
                    self.sooner.notify_one();
                }
            }
        }
        timers.compact();
    }

    /// How many objects have a re-check set.
    pub fn len(&self) -> usize {
        self.timers().due.len()
    }

    /// Whether no object has a re-check set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each object whose re-check comes due, as it does (for the controller's `reconcile_on`).
    pub fn due<K: Resource<DynamicType = ()>>(self: Arc<Self>) -> impl Stream<Item = ObjectRef<K>> + Send + 'static {
        futures::stream::unfold(self, |rechecks| async move {
            loop {
                let head = match rechecks.pop_due(Instant::now()) {
                    Ok(key) => return Some((object_ref(&key), rechecks)),
                    Err(head) => head,
                };
                let notified = rechecks.sooner.notified();
                match head {
                    Some(at) => tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = notified => {}
                    },
                    None => notified.await,
                }
            }
        })
    }

    /// The key due at `now`, or else the instant of the next re-check, if any.
    fn pop_due(&self, now: Instant) -> Result<Arc<str>, Option<Instant>> {
        let mut timers = self.timers();
        while let Some(Reverse((at, key))) = timers.queue.pop() {
            if timers.due.get(&key) != Some(&at) {
                continue;
            }
            if at > now {
                timers.queue.push(Reverse((at, key)));
                return Err(Some(at));
            }
            timers.due.remove(&key);
            return Ok(key);
        }
        Err(None)
    }

    fn timers(&self) -> MutexGuard<'_, Timers> {
        // The timers stay consistent across a panic elsewhere: every change is one call.
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Timers {
    /// Drops stale queue entries once they outnumber the live ones, so an object set again and
    /// again (a poll) does not grow the queue.
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.due.len() + 64 {
            self.queue = self.due.iter().map(|(key, at)| Reverse((*at, key.clone()))).collect();
        }
    }
}

fn object_ref<K: Resource<DynamicType = ()>>(key: &str) -> ObjectRef<K> {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    ObjectRef::new(name).within(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecretRef;
    use futures::{FutureExt, StreamExt};

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn each_object_comes_due_once_at_its_latest_time() {
        let rechecks = Rechecks::default();
        let start = Instant::now();
        rechecks.set_at("ns/a", Recheck::After(secs(30)), start);
        rechecks.set_at("ns/b", Recheck::After(secs(10)), start);
        // Set again: the later time replaces the earlier one.
        rechecks.set_at("ns/b", Recheck::After(secs(60)), start);
        rechecks.set_at("ns/c", Recheck::After(secs(5)), start);
        rechecks.set_at("ns/c", Recheck::OnChange, start);
        assert_eq!(rechecks.len(), 2);
        assert_eq!(rechecks.pop_due(start + secs(29)).err(), Some(Some(start + secs(30))));
        assert_eq!(rechecks.pop_due(start + secs(30)).ok().as_deref(), Some("ns/a"));
        assert_eq!(rechecks.pop_due(start + secs(59)).err(), Some(Some(start + secs(60))));
        assert_eq!(rechecks.pop_due(start + secs(61)).ok().as_deref(), Some("ns/b"));
        assert_eq!(rechecks.pop_due(start + secs(3600)).err(), Some(None));
        assert!(rechecks.is_empty());
    }

    #[test]
    fn only_a_sooner_recheck_wakes_the_stream() {
        let rechecks = Rechecks::default();
        let start = Instant::now();
        rechecks.set_at("ns/late", Recheck::After(secs(3600)), start);
        assert!(rechecks.sooner.notified().now_or_never().is_some(), "the first re-check wakes it");
        rechecks.set_at("ns/later", Recheck::After(secs(7200)), start);
        assert!(rechecks.sooner.notified().now_or_never().is_none(), "a later one does not");
        rechecks.set_at("ns/soon", Recheck::After(secs(2)), start);
        assert!(rechecks.sooner.notified().now_or_never().is_some(), "a sooner one does");
    }

    #[tokio::test]
    async fn a_due_recheck_comes_out_of_the_stream_as_the_object_reference() {
        let rechecks = Arc::new(Rechecks::default());
        rechecks.set("team-a/db", Recheck::After(Duration::ZERO));
        let due = std::pin::pin!(rechecks.clone().due::<SecretRef>()).next().await;
        assert_eq!(due, Some(ObjectRef::new("db").within("team-a")));
        assert!(rechecks.is_empty());
    }

    #[test]
    fn setting_one_object_again_and_again_keeps_the_queue_small() {
        let rechecks = Rechecks::default();
        for i in 0..10_000 {
            rechecks.set("ns/poll", Recheck::After(secs(i % 7)));
        }
        assert!(rechecks.timers().queue.len() <= 66);
        assert_eq!(rechecks.len(), 1);
    }
}
