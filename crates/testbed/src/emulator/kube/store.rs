//! The object store: every object by resource, namespace and name; one monotonic
//! resourceVersion; a bounded history of changes that watches replay; and the open watches.
//!
//! All mutation happens under one lock, so every write is linearizable and watchers see events
//! in resourceVersion order. Objects are kept behind `Arc`s: the map, the change history and every
//! watch share one copy, and a list takes its page under the lock as `Arc`s and encodes it after.

use super::index::{Index, ObjectRef};
use super::resources::{Registry, StorageKey};
use super::status::ApiError;
use bytes::Bytes;
use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use tokio::sync::mpsc;

/// `ADDED`, `MODIFIED` or `DELETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub key: StorageKey,
    pub namespace: String,
    pub type_: EventType,
    /// The object after the change (for DELETED: its last state, at the deletion's version).
    pub object: Arc<Value>,
    /// The object before the change, so selector-filtered watches can tell "stopped matching".
    pub old: Option<Arc<Value>>,
    /// `object` as JSON, served at one apiVersion: encoded by the first watch that sends it and
    /// shared by every other watch of that version, so fan-out does not encode per watch.
    encoded: OnceLock<(String, Bytes)>,
}

impl Event {
    /// `object` encoded as served at `api_version`: the shared encoding when it is of that
    /// version, else a fresh one from `encode`.
    pub fn encoded(&self, api_version: &str, encode: impl FnOnce() -> Bytes) -> Bytes {
        let mut encode = Some(encode);
        let (version, bytes) =
            self.encoded.get_or_init(|| (api_version.to_owned(), encode.take().map(|f| f()).unwrap_or_default()));
        match encode {
            Some(encode) if version != api_version => encode(),
            _ => bytes.clone(),
        }
    }
}

/// Which events a watch receives before its own label/field filtering.
#[derive(Clone, Debug)]
pub struct WatchScope {
    pub key: StorageKey,
    pub namespace: Option<String>,
}

impl WatchScope {
    fn covers(&self, event: &Event) -> bool {
        event.key == self.key && self.namespace.as_ref().is_none_or(|ns| *ns == event.namespace)
    }
}

/// The live events of one watch, in resourceVersion order.
pub type EventFeed = mpsc::Receiver<Arc<Event>>;

struct Watcher {
    scope: WatchScope,
    tx: mpsc::Sender<Arc<Event>>,
}

/// Objects of one resource, ordered by namespace and name (stable list order).
pub type Objects = BTreeMap<(String, String), Arc<Value>>;

/// Everything the store holds.
pub struct State {
    pub registry: Registry,
    rv: u64,
    objects: HashMap<StorageKey, Objects>,
    index: Index,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Highest resourceVersion dropped from `history`; watches from before it get 410 Gone.
    compacted_rv: u64,
    watchers: Vec<Watcher>,
    watch_buffer: usize,
    uid_seed: u64,
    uid_counter: u64,
}

/// Limits of the store.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Changes kept for watches to resume from.
    pub history: usize,
    /// Events buffered per watch; a watch that falls further behind is closed (the client re-lists).
    pub watch_buffer: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self { history: 10_000, watch_buffer: 10_000 }
    }
}

impl State {
    pub fn new(limits: StoreLimits) -> Self {
        let uid_seed = RandomState::new().build_hasher().finish();
        Self {
            registry: Registry::builtin(),
            rv: 0,
            objects: HashMap::new(),
            index: Index::default(),
            history: VecDeque::new(),
            history_limit: limits.history.max(1),
            compacted_rv: 0,
            watchers: vec![],
            watch_buffer: limits.watch_buffer.max(1),
            uid_seed,
            uid_counter: 0,
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A fresh object uid (UUID-shaped, unique within this process).
    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(self.uid_seed ^ self.uid_counter);
        let random = hasher.finish();
        let counter = self.uid_counter;
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (random >> 32) as u32,
            (random >> 16) as u16,
            (random & 0xfff) as u16,
            (counter >> 48) & 0xfff,
            counter & 0xffff_ffff_ffff
        )
    }

    pub fn get(&self, key: &StorageKey, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(key)?.get(&(namespace.to_owned(), name.to_owned())).map(|o| &**o)
    }

    /// Objects of a resource, optionally of one namespace, in (namespace, name) order.
    pub fn list(&self, key: &StorageKey, namespace: Option<&str>) -> Vec<&Value> {
        self.scan(key, namespace, None).map(|(_, object)| &**object).collect()
    }

    /// Objects of a resource (optionally of one namespace) after the (namespace, name) `after`, in
    /// that order. It starts at `after` rather than filtering up to it, so paging is O(page).
    pub fn scan<'a, 'n>(
        &'a self,
        key: &StorageKey,
        namespace: Option<&'n str>,
        after: Option<&(String, String)>,
    ) -> impl Iterator<Item = (&'a (String, String), &'a Arc<Value>)> + use<'a, 'n> {
        let start = match (namespace, after) {
            (Some(ns), Some(after)) if after.0.as_str() >= ns => Bound::Excluded(after.clone()),
            (Some(ns), _) => Bound::Included((ns.to_owned(), String::new())),
            (None, Some(after)) => Bound::Excluded(after.clone()),
            (None, None) => Bound::Unbounded,
        };
        self.objects
            .get(key)
            .into_iter()
            .flat_map(move |objects| objects.range((start.clone(), Bound::Unbounded)))
            .take_while(move |((object_ns, _), _)| namespace.is_none_or(|ns| ns == object_ns))
    }

    /// Whether an object with this uid is stored.
    pub fn is_live(&self, uid: &str) -> bool {
        self.index.is_live(uid)
    }

    /// Objects whose owner references name `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<ObjectRef> {
        self.index.dependents(uid)
    }

    /// Every stored resource key (for owner and namespace sweeps).
    pub fn keys(&self) -> Vec<StorageKey> {
        self.objects.keys().cloned().collect()
    }

    /// Stores a new object, stamping it with the next resourceVersion; emits ADDED.
    pub fn insert(&mut self, key: &StorageKey, namespace: &str, name: &str, object: Value) -> Arc<Value> {
        self.store(key, namespace, name, object, EventType::Added)
    }

    /// Replaces a stored object, stamping the next resourceVersion; emits MODIFIED.
    pub fn replace(&mut self, key: &StorageKey, namespace: &str, name: &str, object: Value) -> Arc<Value> {
        self.store(key, namespace, name, object, EventType::Modified)
    }

    fn store(
        &mut self,
        key: &StorageKey,
        namespace: &str,
        name: &str,
        mut object: Value,
        type_: EventType,
    ) -> Arc<Value> {
        let rv = self.next_rv(&mut object);
        let object = Arc::new(object);
        let old = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert((namespace.to_owned(), name.to_owned()), object.clone());
        // The old state leaves the index before the new one enters: both may name the same owner.
        if let Some(old) = &old {
            self.index.remove(key, namespace, name, old);
        }
        self.index.add(key, namespace, name, &object);
        self.publish(rv, key, namespace, type_, object.clone(), old);
        object
    }

    /// Removes a stored object for good; emits DELETED with its last state.
    pub fn remove(&mut self, key: &StorageKey, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let stored = self.objects.get_mut(key)?.remove(&(namespace.to_owned(), name.to_owned()))?;
        self.index.remove(key, namespace, name, &stored);
        // The history may share this state; the DELETED one carries a version of its own.
        let mut object = Arc::unwrap_or_clone(stored);
        let rv = self.next_rv(&mut object);
        let object = Arc::new(object);
        self.publish(rv, key, namespace, EventType::Deleted, object.clone(), None);
        Some(object)
    }

    fn next_rv(&mut self, object: &mut Value) -> u64 {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.rv
    }

    fn publish(
        &mut self,
        rv: u64,
        key: &StorageKey,
        namespace: &str,
        type_: EventType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let namespace = namespace.to_owned();
        let event = Arc::new(Event { rv, key: key.clone(), namespace, type_, object, old, encoded: OnceLock::new() });
        // A watcher whose buffer is full or whose stream is gone is dropped: its client re-lists.
        self.watchers.retain(|w| !w.scope.covers(&event) || w.tx.try_send(event.clone()).is_ok());
        self.history.push_back(event);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
    }

    /// Opens a watch. From `since` (exclusive) the kept history is replayed first; a version older
    /// than the history is 410 Gone. Without `since` the watch starts at the current version.
    pub fn watch(&mut self, scope: WatchScope, since: Option<u64>) -> Result<(Vec<Arc<Event>>, EventFeed), ApiError> {
        let replay = match since {
            Some(rv) if rv < self.compacted_rv => {
                return Err(ApiError::gone(format!("too old resource version: {rv} ({})", self.compacted_rv + 1)));
            }
            Some(rv) => {
                // The history is in resourceVersion order: skip to the first change after `rv`.
                let first = self.history.partition_point(|e| e.rv <= rv);
                self.history.range(first..).filter(|e| scope.covers(e)).cloned().collect()
            }
            None => vec![],
        };
        let (tx, rx) = mpsc::channel(self.watch_buffer);
        self.watchers.push(Watcher { scope, tx });
        Ok((replay, rx))
    }

    /// Closes every open watch (a test hook: clients must resume from their last version).
    pub fn drop_watches(&mut self) {
        self.watchers.clear();
    }

    /// Forgets the change history, so resuming any earlier watch gets 410 Gone (a test hook).
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    /// Number of open watches.
    pub fn open_watches(&mut self) -> usize {
        self.watchers.retain(|w| !w.tx.is_closed());
        self.watchers.len()
    }
}

/// The state, even after a panic elsewhere: a test thread must not wedge the simulated
/// controllers for the others.
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A watch of every object of `key`, for a simulated controller; `None` once the emulator is gone.
pub fn subscribe(state: &Weak<Mutex<State>>, key: StorageKey) -> Option<mpsc::Receiver<Arc<Event>>> {
    let strong = state.upgrade()?;
    let mut guard = lock(&strong);
    guard.watch(WatchScope { key, namespace: None }, None).ok().map(|(_, rx)| rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> StorageKey {
        StorageKey { group: String::new(), plural: "configmaps".into() }
    }

    #[test]
    fn every_write_takes_the_next_resource_version() {
        let mut state = State::new(StoreLimits::default());
        let a = state.insert(&key(), "default", "a", json!({"metadata": {"name": "a"}}));
        let b = state.replace(&key(), "default", "a", json!({"metadata": {"name": "a"}, "data": {"x": "1"}}));
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(state.resource_version(), 2);
    }

    #[test]
    fn list_of_a_namespace_excludes_other_namespaces() {
        let mut state = State::new(StoreLimits::default());
        state.insert(&key(), "a", "x", json!({"metadata": {}}));
        state.insert(&key(), "ab", "y", json!({"metadata": {}}));
        state.insert(&key(), "b", "z", json!({"metadata": {}}));
        assert_eq!(state.list(&key(), Some("a")).len(), 1);
        assert_eq!(state.list(&key(), None).len(), 3);
    }

    #[test]
    fn a_watch_from_a_compacted_version_is_gone() {
        let mut state = State::new(StoreLimits { history: 2, watch_buffer: 10 });
        for name in ["a", "b", "c", "d"] {
            state.insert(&key(), "default", name, json!({"metadata": {}}));
        }
        let scope = WatchScope { key: key(), namespace: None };
        assert!(state.watch(scope.clone(), Some(1)).is_err_and(|e| e.code == 410));
        let replayed = state.watch(scope, Some(2)).map(|(replay, _)| replay.len());
        assert_eq!(replayed.ok(), Some(2));
    }

    #[test]
    fn uids_are_unique() {
        let mut state = State::new(StoreLimits::default());
        let a = state.new_uid();
        let b = state.new_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
