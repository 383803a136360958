//! SecretRefs that read the same secret version with the same identity share one access call.
//!
//! Identical reads that overlap in time are already joined by the client. This covers the
//! SecretRefs that come just after: when a read completes, the SecretRefs of the same namespace,
//! ServiceAccount, secret and version that still wait for their first sync (or a spec change) are
//! counted, and the payload is held for exactly that many of them — and at most [`HOLD`] — then
//! dropped, which zeroizes it. A read a notification or the refresh annotation asked for never
//! uses a held payload.
//!
//! The count comes from an index of the cache rebuilt at most every [`INDEX_AGE`]: scanning 10,000
//! SecretRefs after each of 10,000 reads would cost more than the reads. An index a little old
//! can only count a peer that has synced since, which holds a payload longer, never past `HOLD`.

use crate::api::SecretRef;
use crate::api::conditions::{find_condition, types};
use crate::provider::FetchedVersion;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest a payload is held for SecretRefs that have not come for it.
const HOLD: Duration = Duration::from_secs(30);
/// How old the index of waiting SecretRefs may get before it is rebuilt.
const INDEX_AGE: Duration = Duration::from_secs(1);

/// Everything that decides what a read returns: who reads, and what.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadKey {
    namespace: String,
    service_account: Option<String>,
    project: Option<String>,
    secret: String,
    version: String,
}

impl ReadKey {
    /// What `secret_ref` reads; `default_project` fills in a missing `projectId`.
    pub fn of(secret_ref: &SecretRef, default_project: Option<&str>) -> Self {
        let spec = &secret_ref.spec;
        Self {
            namespace: secret_ref.namespace().unwrap_or_default(),
            service_account: spec.service_account_name.clone(),
            project: spec.project_id.clone().or_else(|| default_project.map(str::to_owned)),
            secret: spec.secret.clone(),
            version: spec.version.clone(),
        }
    }
}

struct Held {
    fetched: FetchedVersion,
    waiting: usize,
    until: Instant,
}

/// Payloads held for the SecretRefs that are about to need them.
#[derive(Default)]
pub struct SharedReads {
    held: Mutex<HashMap<ReadKey, Held>>,
    waiting: Mutex<Option<WaitingIndex>>,
}

/// SecretRefs not synced for their current spec (by name), by what they read.
struct WaitingIndex {
    built: Instant,
    waiting: HashMap<ReadKey, HashSet<String>>,
}

impl SharedReads {
    /// A payload held for `key`, if any (counts this SecretRef as served).
    pub fn take(&self, key: &ReadKey) -> Option<FetchedVersion> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = held.get_mut(key)?;
        if entry.until <= Instant::now() {
            held.remove(key);
            return None;
        }
        entry.waiting -= 1;
        let fetched = entry.fetched.clone();
        if entry.waiting == 0 {
            held.remove(key);
        }
        Some(fetched)
    }

    /// Holds `fetched` for the other SecretRefs of `store` that read `key` and wait for a sync
    /// (none: nothing is held).
    pub fn hold_for_peers(
        &self,
        key: ReadKey,
        fetched: &FetchedVersion,
        store: &Store<SecretRef>,
        me: &SecretRef,
        default_project: Option<&str>,
    ) {
        let waiting = self.waiting_peers(store, me, &key, default_project);
        self.hold(key, fetched, waiting);
    }

    /// Holds `fetched` for `waiting` more SecretRefs (none: nothing is held).
    fn hold(&self, key: ReadKey, fetched: &FetchedVersion, waiting: usize) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        held.retain(|_, entry| entry.until > now);
        if waiting > 0 {
            held.insert(key, Held { fetched: fetched.clone(), waiting, until: now + HOLD });
        }
    }

    /// The other SecretRefs that read `key` and have not synced their current spec.
    fn waiting_peers(&self, store: &Store<SecretRef>, me: &SecretRef, key: &ReadKey, project: Option<&str>) -> usize {
        let mut index = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if index.as_ref().is_none_or(|i| i.built.elapsed() >= INDEX_AGE) {
            let mut waiting: HashMap<ReadKey, HashSet<String>> = HashMap::new();
            for secret_ref in store.state().iter().filter(|r| !is_synced(r)) {
                waiting.entry(ReadKey::of(secret_ref, project)).or_default().insert(secret_ref.name_any());
            }
            *index = Some(WaitingIndex { built: Instant::now(), waiting });
        }
        let Some(names) = index.as_ref().and_then(|i| i.waiting.get(key)) else { return 0 };
        names.len() - usize::from(names.contains(&me.name_any()))
    }

    /// Drops what is held for `key`: a fresh read supersedes it, whatever that read finds.
    pub fn forget(&self, key: &ReadKey) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Whether no payload is held (for the unit tests).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// Ready for its current generation.
fn is_synced(secret_ref: &SecretRef) -> bool {
    let Some(status) = &secret_ref.status else { return false };
    status.observed_generation == secret_ref.metadata.generation
        && find_condition(&status.conditions, types::READY).is_some_and(|c| c.is_true(types::READY))
}

#[cfg(test)]
mod tests {
    use super::{ReadKey, SharedReads};
    use crate::api::SecretRef;
    use crate::gcp::SecretBytes;
    use crate::provider::FetchedVersion;
    use serde_json::json;
    use std::sync::Arc;

    fn secret_ref(namespace: &str, secret: &str) -> SecretRef {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "a", "namespace": namespace },
            "spec": { "secret": secret }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn fetched() -> FetchedVersion {
        FetchedVersion { version: "3".into(), data: Arc::new(SecretBytes::from(b"v".to_vec())), crc32c: None }
    }

    #[test]
    fn a_payload_is_held_for_as_many_reads_as_were_waiting() {
        let reads = SharedReads::default();
        let key = ReadKey::of(&secret_ref("team-a", "db"), Some("p"));
        reads.hold(key.clone(), &fetched(), 2);
        assert_eq!(reads.take(&key).map(|f| f.version), Some("3".into()));
        assert!(reads.take(&key).is_some());
        assert!(reads.take(&key).is_none());
        assert!(reads.is_empty(), "dropped once served");
    }

    #[test]
    fn a_fresh_read_drops_what_is_held() {
        let reads = SharedReads::default();
        let key = ReadKey::of(&secret_ref("team-a", "db"), Some("p"));
        reads.hold(key.clone(), &fetched(), 3);
        reads.forget(&key);
        assert!(reads.take(&key).is_none());
    }

    #[test]
    fn nothing_is_held_without_waiting_peers_nor_shared_across_namespaces() {
        let reads = SharedReads::default();
        let key = ReadKey::of(&secret_ref("team-a", "db"), Some("p"));
        reads.hold(key.clone(), &fetched(), 0);
        assert!(reads.is_empty());
        reads.hold(key, &fetched(), 1);
        assert!(reads.take(&ReadKey::of(&secret_ref("team-b", "db"), Some("p"))).is_none());
    }
}
