//! The store's secondary indexes: which uids are live and which objects name each owner. The
//! garbage collector asks both on every write of an owned object and on every removal; scanning
//! every stored object for the answer made those writes O(N).

use super::resources::StorageKey;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Where a stored object lives: resource, namespace, name.
pub type ObjectRef = (StorageKey, String, String);

#[derive(Default)]
pub struct Index {
    /// Stored objects per uid (a count, so a uid shared by mistake is not forgotten early).
    uids: HashMap<String, usize>,
    /// Objects per owner uid they name in `ownerReferences`.
    dependents: HashMap<String, BTreeSet<ObjectRef>>,
}

fn uid_of(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(|r| r["uid"].as_str())
}

impl Index {
    /// Records a newly stored object (or the new state of a replaced one).
    pub fn add(&mut self, key: &StorageKey, namespace: &str, name: &str, object: &Value) {
        if let Some(uid) = uid_of(object) {
            *self.uids.entry(uid.to_owned()).or_default() += 1;
        }
        for owner in owner_uids(object) {
            let at = (key.clone(), namespace.to_owned(), name.to_owned());
            self.dependents.entry(owner.to_owned()).or_default().insert(at);
        }
    }

    /// Forgets a state that is no longer stored (removed, or replaced by a new one).
    pub fn remove(&mut self, key: &StorageKey, namespace: &str, name: &str, object: &Value) {
        if let Some(uid) = uid_of(object)
            && let Some(count) = self.uids.get_mut(uid)
        {
            *count -= 1;
            if *count == 0 {
                self.uids.remove(uid);
            }
        }
        for owner in owner_uids(object) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(&(key.clone(), namespace.to_owned(), name.to_owned()));
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }

    /// Whether an object with this uid is stored.
    pub fn is_live(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Objects whose owner references name `uid`, in (resource, namespace, name) order.
    pub fn dependents(&self, uid: &str) -> Vec<ObjectRef> {
        self.dependents.get(uid).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> StorageKey {
        StorageKey { group: String::new(), plural: "configmaps".into() }
    }

    #[test]
    fn a_replaced_state_moves_its_owner_entries() {
        let mut index = Index::default();
        let first = json!({"metadata": {"uid": "c", "ownerReferences": [{"uid": "a"}]}});
        let second = json!({"metadata": {"uid": "c", "ownerReferences": [{"uid": "b"}]}});
        index.add(&key(), "ns", "child", &first);
        index.remove(&key(), "ns", "child", &first);
        index.add(&key(), "ns", "child", &second);
        assert!(index.dependents("a").is_empty());
        assert_eq!(index.dependents("b"), [(key(), "ns".to_owned(), "child".to_owned())]);
        assert!(index.is_live("c"));
        index.remove(&key(), "ns", "child", &second);
        assert!(!index.is_live("c"));
        assert!(index.dependents("b").is_empty());
    }
}
