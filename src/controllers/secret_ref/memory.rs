//! What the SecretRef controller remembers between reconciles, until its own writes show in the
//! cache: the last sync of each SecretRef, the Secret a sync in progress just wrote, and payloads
//! held for peers about to read the same version. Keyed by `namespace/name`.

use super::resolve::LastSync;
use super::sharing::SharedReads;
use crate::hash_key::HashKey;
use crate::secret_data::SecretData;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub struct Memory {
    syncs: Mutex<Syncs>,
    /// Payloads held for SecretRefs about to read the same version.
    pub shared_reads: SharedReads,
}

#[derive(Default)]
struct Syncs {
    /// What each SecretRef last synced, until its own status write shows in the cache.
    synced: HashMap<String, LastSync>,
    /// The (target, content hash) each sync in progress just wrote, until the sync is remembered
    /// or fails: the Secret's watch event may come back first.
    written: HashMap<String, (String, String)>,
}

impl Memory {
    fn syncs(&self) -> MutexGuard<'_, Syncs> {
        self.syncs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `key` last synced, as far as this process knows.
    pub fn last_sync(&self, key: &str) -> Option<LastSync> {
        self.syncs().synced.get(key).cloned()
    }

    pub fn remember_sync(&self, key: &str, synced: LastSync) {
        let mut syncs = self.syncs();
        syncs.written.remove(key);
        syncs.synced.insert(key.to_owned(), synced);
    }

    /// The sync of `key` in progress wrote `content_hash` to Secret `target`.
    pub fn remember_written(&self, key: &str, target: &str, content_hash: &str) {
        self.syncs().written.insert(key.to_owned(), (target.to_owned(), content_hash.to_owned()));
    }

    /// Whether this process wrote `data` to Secret `target` for `key` in its last sync,
    /// remembered or still in progress (hashes under `hash_key`).
    pub fn wrote(&self, key: &str, target: &str, data: &SecretData, hash_key: &HashKey) -> bool {
        let syncs = self.syncs();
        let last = syncs.synced.get(key).map(|l| (l.target.as_str(), l.content_hash.as_str()));
        let written = syncs.written.get(key).map(|(t, h)| (t.as_str(), h.as_str()));
        [last, written].into_iter().flatten().any(|(wrote, hash)| wrote == target && hash_key.matches(data, hash))
    }

    /// After a failure: the status, not memory, says what holds.
    pub fn forget_sync(&self, key: &str) {
        let mut syncs = self.syncs();
        syncs.synced.remove(key);
        syncs.written.remove(key);
    }
}
