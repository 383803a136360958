//! An index of a cache: the keys each object is found under, like client-go's indexers, so that
//! "which services use this SecretRef" is a lookup, not a scan of every service per event.
//!
//! Objects are held by their `namespace/name` (an index key names an object in the same form),
//! and only objects found under at least one key are held at all: of 20,000 Secrets only the
//! snapshots are indexed.

use super::index_key;
use kube::Resource;
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(super) struct Index<K> {
    keys_of: fn(&K) -> Vec<String>,
    entries: Mutex<Entries>,
    /// What a (re)list in progress builds, put in place when it is done.
    relisted: Mutex<Option<Entries>>,
}

#[derive(Default)]
struct Entries {
    /// Index key → the objects (`namespace/name`) found under it.
    by_key: HashMap<String, Vec<Box<str>>>,
    /// Object (`namespace/name`) → the index keys it is found under; never empty.
    keys: HashMap<Box<str>, Box<[String]>>,
}

impl<K: Resource> Index<K> {
    pub(super) fn new(keys_of: fn(&K) -> Vec<String>) -> Self {
        Self { keys_of, entries: Mutex::default(), relisted: Mutex::default() }
    }

    /// The objects (`namespace/name`) found under `key`.
    pub(super) fn lookup(&self, key: &str) -> Vec<Box<str>> {
        lock(&self.entries).by_key.get(key).cloned().unwrap_or_default()
    }

    /// Follows one watch event, as the store does.
    pub(super) fn follow(&self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => lock(&self.entries).set(object_key(object), (self.keys_of)(object)),
            watcher::Event::Delete(object) => lock(&self.entries).unset(&object_key(object)),
            watcher::Event::Init => *lock(&self.relisted) = Some(Entries::default()),
            watcher::Event::InitApply(object) => {
                if let Some(entries) = lock(&self.relisted).as_mut() {
                    entries.set(object_key(object), (self.keys_of)(object));
                }
            }
            watcher::Event::InitDone => {
                if let Some(entries) = lock(&self.relisted).take() {
                    *lock(&self.entries) = entries;
                }
            }
        }
    }
}

impl Entries {
    fn set(&mut self, object: Box<str>, keys: Vec<String>) {
        self.unset(&object);
        if keys.is_empty() {
            return;
        }
        for key in &keys {
            let objects = self.by_key.entry(key.clone()).or_default();
            if !objects.contains(&object) {
                objects.push(object.clone());
            }
        }
        self.keys.insert(object, keys.into_boxed_slice());
    }

    fn unset(&mut self, object: &str) {
        for key in self.keys.remove(object).into_iter().flatten() {
            if let Some(objects) = self.by_key.get_mut(&key) {
                objects.retain(|o| o.as_ref() != object);
                if objects.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }
}

fn object_key<K: Resource>(object: &K) -> Box<str> {
    let meta = object.meta();
    index_key(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default()).into_boxed_str()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::Index;
    use crate::api::owner_label_key;
    use crate::runtime::caches::snapshot_owner;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    fn snapshot(name: &str, service: Option<&str>) -> Secret {
        let labels = service.map(|s| [(owner_label_key("SecureApiService"), s.to_owned())].into_iter().collect());
        let metadata =
            ObjectMeta { name: Some(name.into()), namespace: Some("team-a".into()), labels, ..ObjectMeta::default() };
        Secret { metadata, ..Secret::default() }
    }

    fn names(index: &Index<Secret>, key: &str) -> Vec<String> {
        let mut names: Vec<String> = index.lookup(key).iter().map(|o| o.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_index_follows_changes_deletions_and_relists() {
        let index = Index::new(snapshot_owner);
        index.follow(&Event::Apply(snapshot("api-1", Some("api"))));
        index.follow(&Event::Apply(snapshot("api-2", Some("api"))));
        index.follow(&Event::Apply(snapshot("target", None)));
        assert_eq!(names(&index, "team-a/api"), ["team-a/api-1", "team-a/api-2"]);
        assert_eq!(super::lock(&index.entries).keys.len(), 2, "objects under no key are not held");
        index.follow(&Event::Apply(snapshot("api-2", Some("other"))));
        assert_eq!(names(&index, "team-a/api"), ["team-a/api-1"]);
        assert_eq!(names(&index, "team-a/other"), ["team-a/api-2"]);
        index.follow(&Event::Delete(snapshot("api-1", Some("api"))));
        assert!(names(&index, "team-a/api").is_empty());
        assert!(!super::lock(&index.entries).by_key.contains_key("team-a/api"), "no empty keys linger");

        // A relist replaces everything once it is complete.
        index.follow(&Event::Init);
        index.follow(&Event::InitApply(snapshot("api-3", Some("api"))));
        assert_eq!(names(&index, "team-a/other"), ["team-a/api-2"], "the old entries serve until the relist is done");
        index.follow(&Event::InitDone);
        assert_eq!(names(&index, "team-a/api"), ["team-a/api-3"]);
        assert!(names(&index, "team-a/other").is_empty());
    }
}
