//! Per-object memory of this process that must not live in status (no per-reconcile timestamps
//! there): failure counts for backoff, next checks, the last Warning, finalizers added, and what
//! was applied to children that are not watched. A kind's own memory lives with its controller.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a child that is not watched (ServiceAccount, HorizontalPodAutoscaler,
/// PodDisruptionBudget) is trusted to be as this process applied or found it: one deleted behind
/// the operator's back is back within this time.
pub const UNWATCHED_RECHECK: Duration = Duration::from_secs(300);

/// Keyed by `namespace/name` (see [`super::object_key`]) unless said otherwise.
#[derive(Default)]
pub struct Memory(Mutex<Remembered>);

#[derive(Default)]
struct Remembered {
    failures: HashMap<String, u32>,
    next_checks: HashMap<String, Instant>,
    /// The (reason, message) of the last Warning Event published per object.
    warnings: HashMap<String, (String, String)>,
    /// Objects (by uid) this process added the finalizer to.
    finalized: HashSet<String>,
    /// Children that are not watched, by `Kind/namespace/name`: the hash last applied or found,
    /// and when; and the Normal Events announced lately, by `Event/reason/namespace/name/subject`.
    applied: HashMap<String, (String, Instant)>,
    /// When `applied` last lost what is too old to trust.
    applied_pruned: Option<Instant>,
}

impl Memory {
    fn lock(&self) -> MutexGuard<'_, Remembered> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more consecutive failure of `key` and returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut memory = self.lock();
        let count = memory.failures.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }

    pub fn clear_failures(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// When `key` is next due for a check, if one is scheduled.
    pub fn next_check(&self, key: &str) -> Option<Instant> {
        self.lock().next_checks.get(key).copied()
    }

    pub fn schedule_check(&self, key: &str, at: Instant) {
        self.lock().next_checks.insert(key.to_owned(), at);
    }

    /// Everything about `key`, once its object is gone.
    pub fn forget(&self, key: &str) {
        let mut memory = self.lock();
        memory.failures.remove(key);
        memory.next_checks.remove(key);
        memory.warnings.remove(key);
    }

    /// Whether this process added the finalizer to the object with `uid`.
    pub fn finalized(&self, uid: &str) -> bool {
        self.lock().finalized.contains(uid)
    }

    pub fn remember_finalized(&self, uid: &str) {
        self.lock().finalized.insert(uid.to_owned());
    }

    pub fn forget_finalized(&self, uid: &str) {
        self.lock().finalized.remove(uid);
    }

    /// Whether this process applied or found `hash` at `key` less than [`UNWATCHED_RECHECK`] ago.
    pub fn applied_recently(&self, key: &str, hash: &str) -> bool {
        self.lock().applied.get(key).is_some_and(|(applied, at)| applied == hash && at.elapsed() < UNWATCHED_RECHECK)
    }

    /// Remembers `hash` at `key`. Now and then what is too old to trust goes, so children of
    /// deleted services are not remembered for ever.
    pub fn remember_applied(&self, key: &str, hash: String) {
        let mut memory = self.lock();
        if memory.applied_pruned.is_none_or(|at| at.elapsed() >= UNWATCHED_RECHECK) {
            memory.applied.retain(|_, (_, at)| at.elapsed() < UNWATCHED_RECHECK);
            memory.applied_pruned = Some(Instant::now());
        }
        memory.applied.insert(key.to_owned(), (hash, Instant::now()));
    }

    /// The (reason, message) of the last Warning Event published about `key`.
    pub fn last_warning(&self, key: &str) -> Option<(String, String)> {
        self.lock().warnings.get(key).cloned()
    }

    pub fn remember_warning(&self, key: &str, warning: (String, String)) {
        self.lock().warnings.insert(key.to_owned(), warning);
    }

    pub fn forget_warning(&self, key: &str) {
        self.lock().warnings.remove(key);
    }
}
