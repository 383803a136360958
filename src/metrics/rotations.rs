//! Rotations not reflected yet: SecretRefs that know of a newer version of their secret than the
//! one their target Secret holds, and since when. Two things tell: a Pub/Sub notification of a
//! new version for a SecretRef that follows `latest`, and a read of the store that found a newer
//! version than the synced one (a refresh whose sync then failed keeps the rotation pending).
//!
//! A rotation counts as reflected once the cached status shows a `syncedVersion` at least as new,
//! or the SecretRef is pinned or gone; that is settled at scrape time from the cache, so a
//! reconcile path needs no hook for success. Objects are only keys in memory here, never labels:
//! the metrics are one count and one age.

use crate::api::SecretRef;
use crate::api::secret_ref::DEFAULT_VERSION;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Pending rotations remembered at most (more only if nobody scrapes while SecretRefs churn).
const MAX_PENDING: usize = 100_000;

/// The version number `secret_ref` has synced, if any.
fn synced(secret_ref: &SecretRef) -> Option<u64> {
    secret_ref.status.as_ref()?.synced_version.as_deref()?.parse().ok()
}

fn pinned(secret_ref: &SecretRef) -> bool {
    secret_ref.spec.version.bytes().all(|b| b.is_ascii_digit())
}

/// `version`, read from the store for `secret_ref`, when it is a rotation: newer than the synced
/// one of a floating SecretRef (the first sync is no rotation) (pure).
pub fn fetched_rotation(secret_ref: &SecretRef, version: &str) -> Option<u64> {
    let version: u64 = version.parse().ok()?;
    (!pinned(secret_ref) && synced(secret_ref)? < version).then_some(version)
}

/// `version`, announced as added to the secret `secret_ref` reads, when it is a rotation for it:
/// only a SecretRef following `latest` moves to a new version (an alias may not) (pure).
pub fn notified_rotation(secret_ref: &SecretRef, version: &str) -> Option<u64> {
    (secret_ref.spec.version == DEFAULT_VERSION).then(|| fetched_rotation(secret_ref, version)).flatten()
}

/// Whether `secret_ref` (the cached object) still has not synced `version` (pure).
pub fn still_pending(secret_ref: &SecretRef, version: u64) -> bool {
    !pinned(secret_ref) && synced(secret_ref).is_none_or(|synced| synced < version)
}

#[derive(Clone, Copy, Debug)]
struct Noticed {
    version: u64,
    since: Instant,
}

/// What the scrape reports: SecretRefs with a pending rotation, and the oldest one's age.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub oldest: Duration,
}

/// The pending rotations by SecretRef key (`namespace/name`).
#[derive(Debug, Default)]
pub struct Pending {
    entries: Mutex<HashMap<String, Noticed>>,
}

impl Pending {
    /// `key` knows of `version` now. A newer version keeps the time the first one was noticed:
    /// what is measured is how long the SecretRef has been behind.
    pub fn notice(&self, key: &str, version: u64, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(noticed) = entries.get_mut(key) {
            noticed.version = noticed.version.max(version);
        } else if entries.len() < MAX_PENDING {
            entries.insert(key.to_owned(), Noticed { version, since: now });
        }
    }

    /// A read of the store for `key` found `found`: a newer version only a notification named
    /// was not confirmed (a made-up id, or one deleted since), and is no longer waited for.
    pub fn confirmed(&self, key: &str, found: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(noticed) = entries.get_mut(key) {
            noticed.version = noticed.version.min(found);
        }
    }

    /// Forgets the rotations that are reflected (by the cached object `lookup` finds for a key,
    /// `None`: deleted), and sums up the rest.
    pub fn settle(&self, lookup: impl Fn(&str) -> Option<Arc<SecretRef>>, now: Instant) -> Summary {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|key, noticed| lookup(key).is_some_and(|r| still_pending(&r, noticed.version)));
        let oldest = entries.values().map(|n| now.saturating_duration_since(n.since)).max().unwrap_or_default();
        Summary { count: entries.len(), oldest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_ref(version: &str, synced: Option<&str>) -> Arc<SecretRef> {
        let mut object: SecretRef = serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "namespace": "team-a" }, "spec": { "secret": "db", "version": version },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        object.status =
            synced.map(|v| crate::api::SecretRefStatus { synced_version: Some(v.into()), ..Default::default() });
        Arc::new(object)
    }

    #[test]
    fn only_a_newer_version_of_a_floating_secret_ref_is_a_rotation() {
        assert_eq!(fetched_rotation(&secret_ref("latest", Some("2")), "3"), Some(3));
        assert_eq!(fetched_rotation(&secret_ref("prod", Some("2")), "3"), Some(3), "an alias that moved");
        assert_eq!(fetched_rotation(&secret_ref("latest", Some("3")), "3"), None, "already synced");
        assert_eq!(fetched_rotation(&secret_ref("latest", Some("3")), "2"), None, "older");
        assert_eq!(fetched_rotation(&secret_ref("latest", None), "1"), None, "the first sync");
        assert_eq!(fetched_rotation(&secret_ref("2", Some("2")), "3"), None, "pinned");
        assert_eq!(notified_rotation(&secret_ref("latest", Some("2")), "3"), Some(3));
        assert_eq!(notified_rotation(&secret_ref("prod", Some("2")), "3"), None, "an alias need not move");
    }

    #[test]
    fn a_notified_version_a_read_does_not_confirm_is_not_waited_for() {
        let pending = Pending::default();
        let start = Instant::now();
        pending.notice("team-a/db", 99, start);
        pending.confirmed("team-a/db", 3);
        let lookup = |_: &str| Some(secret_ref("latest", Some("3")));
        assert_eq!(pending.settle(lookup, start).count, 0, "the read found 3, which is synced");
        pending.notice("team-a/db", 4, start);
        pending.confirmed("team-a/db", 4);
        assert_eq!(pending.settle(lookup, start).count, 1, "4 exists and is not synced yet");
    }

    #[test]
    fn a_rotation_is_pending_until_the_cached_status_shows_it() {
        let pending = Pending::default();
        let start = Instant::now();
        pending.notice("team-a/db", 3, start);
        pending.notice("team-a/db", 4, start + Duration::from_secs(30));
        let behind = secret_ref("latest", Some("2"));
        let later = start + Duration::from_secs(90);
        let summary = pending.settle(|_| Some(behind.clone()), later);
        assert_eq!(summary, Summary { count: 1, oldest: Duration::from_secs(90) }, "measured from the first notice");
        // Version 3 synced, but 4 was noticed too: still behind.
        let partly = secret_ref("latest", Some("3"));
        assert_eq!(pending.settle(|_| Some(partly.clone()), later).count, 1);
        let caught_up = secret_ref("latest", Some("4"));
        assert_eq!(pending.settle(|_| Some(caught_up.clone()), later), Summary::default());
    }

    #[test]
    fn a_deleted_or_pinned_secret_ref_leaves_no_pending_rotation() {
        let pending = Pending::default();
        pending.notice("team-a/gone", 3, Instant::now());
        assert_eq!(pending.settle(|_| None, Instant::now()).count, 0);
        pending.notice("team-a/db", 3, Instant::now());
        let pinned = secret_ref("2", Some("2"));
        assert_eq!(pending.settle(|_| Some(pinned.clone()), Instant::now()).count, 0);
    }
}
