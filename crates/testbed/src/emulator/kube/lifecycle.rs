//! Deletion as kube-apiserver and its garbage collector do it: finalizers hold an object (with a
//! deletionTimestamp) until the last one is removed; owner references cascade deletions
//! (background or foreground) or are stripped (orphan); a namespace or a CRD being deleted
//! takes its contents with it and goes once it is empty.

use super::resources::StorageKey;
use super::status::ApiError;
use super::store::State;
use serde_json::{Value, json};
use std::sync::Arc;

/// `propagationPolicy` of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("Background") => Ok(Self::Background),
            Some("Foreground") => Ok(Self::Foreground),
            Some("Orphan") => Ok(Self::Orphan),
            Some(other) => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

fn namespaces_key() -> StorageKey {
    StorageKey { group: String::new(), plural: "namespaces".into() }
}

fn crds_key() -> StorageKey {
    StorageKey { group: "apiextensions.k8s.io".into(), plural: "customresourcedefinitions".into() }
}

/// Whether the object still has finalizers.
pub fn has_finalizers(object: &Value) -> bool {
    object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
}

/// Whether deletion of the object has been requested.
pub fn is_deleting(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

fn uid_of(object: &Value) -> Option<String> {
    object["metadata"]["uid"].as_str().map(str::to_owned)
}

impl State {
    /// Deletes an object: at once when nothing holds it, otherwise marks it deleting. Returns the
    /// object's state after the call.
    pub fn delete_object(
        &mut self,
        key: &StorageKey,
        namespace: &str,
        name: &str,
        propagation: Propagation,
        now: &str,
    ) -> Option<Arc<Value>> {
        let live = self.get(key, namespace, name)?.clone();
        let uid = uid_of(&live).unwrap_or_default();
        match propagation {
            Propagation::Orphan => self.orphan_dependents(&uid),
            Propagation::Foreground => self.delete_dependents(&uid, now),
            Propagation::Background => {}
        }
        let holds_contents = *key == namespaces_key() || *key == crds_key();
        if !has_finalizers(&live) && !holds_contents {
            return self.remove_and_collect(key, namespace, name, now);
        }
        let current =
            if is_deleting(&live) { Arc::new(live) } else { self.mark_deleting(key, namespace, name, live, now) };
        if *key == namespaces_key() {
            self.delete_namespace_contents(name, now);
        } else if *key == crds_key() {
            self.delete_custom_resources(&current, now);
        }
        self.finish_container(key, namespace, name, now).or(Some(current))
    }

    fn mark_deleting(
        &mut self,
        key: &StorageKey,
        namespace: &str,
        name: &str,
        mut live: Value,
        now: &str,
    ) -> Arc<Value> {
        let metadata = &mut live["metadata"];
        // kube-apiserver bumps the generation when it marks an object that tracks one.
        if let Some(generation) = metadata["generation"].as_i64() {
            metadata["generation"] = json!(generation + 1);
        }
        metadata["deletionTimestamp"] = json!(now);
        metadata["deletionGracePeriodSeconds"] = json!(0);
        if *key == namespaces_key() {
            live["status"]["phase"] = json!("Terminating");
        }
        self.replace(key, namespace, name, live)
    }

    /// After an update: an object marked deleting whose last finalizer is gone is removed.
    pub fn settle_deletion(&mut self, key: &StorageKey, namespace: &str, name: &str, now: &str) -> Option<Arc<Value>> {
        let live = self.get(key, namespace, name)?;
        if is_deleting(live) && !has_finalizers(live) {
            if *key == namespaces_key() || *key == crds_key() {
                return self.finish_container(key, namespace, name, now);
            }
            return self.remove_and_collect(key, namespace, name, now);
        }
        None
    }

    /// Removes an object for good, then collects what depended on it.
    fn remove_and_collect(&mut self, key: &StorageKey, namespace: &str, name: &str, now: &str) -> Option<Arc<Value>> {
        let removed = self.remove(key, namespace, name)?;
        if *key == crds_key()
            && let Some(crd_name) = removed["metadata"]["name"].as_str()
        {
            self.registry.unregister_crd(crd_name);
        }
        if let Some(uid) = uid_of(&removed) {
            self.collect_dependents(&uid, now);
        }
        if !namespace.is_empty() {
            self.finish_container(&namespaces_key(), "", namespace, now);
        }
        if let Some(crd) = self.crd_of(key) {
            self.finish_container(&crds_key(), "", &crd, now);
        }
        Some(removed)
    }

    /// The CRD that defines a stored resource, if any.
    fn crd_of(&self, key: &StorageKey) -> Option<String> {
        let name = format!("{}.{}", key.plural, key.group);
        self.get(&crds_key(), "", &name).map(|_| name)
    }

    /// Removes a deleting namespace or CRD once it holds nothing and has no finalizers.
    fn finish_container(&mut self, key: &StorageKey, namespace: &str, name: &str, now: &str) -> Option<Arc<Value>> {
        let live = self.get(key, namespace, name)?;
        if !is_deleting(live) || has_finalizers(live) {
            return None;
        }
        let empty = if *key == namespaces_key() {
            self.keys().iter().all(|k| self.scan(k, Some(name), None).next().is_none())
        } else {
            let (plural, group) = name.split_once('.').unwrap_or((name, ""));
            self.scan(&StorageKey { group: group.into(), plural: plural.into() }, None, None).next().is_none()
        };
        if empty { self.remove_and_collect(key, namespace, name, now) } else { None }
    }

    fn delete_namespace_contents(&mut self, namespace: &str, now: &str) {
        for key in self.keys() {
            let names: Vec<String> = self
                .list(&key, Some(namespace))
                .iter()
                .filter(|o| !is_deleting(o))
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            for name in names {
                self.delete_object(&key, namespace, &name, Propagation::Background, now);
            }
        }
    }

    fn delete_custom_resources(&mut self, crd: &Value, now: &str) {
        let spec = &crd["spec"];
        let key = StorageKey {
            group: spec["group"].as_str().unwrap_or_default().into(),
            plural: spec["names"]["plural"].as_str().unwrap_or_default().into(),
        };
        let targets: Vec<(String, String)> = self
            .list(&key, None)
            .iter()
            .filter(|o| !is_deleting(o))
            .map(|o| {
                let meta = &o["metadata"];
                (
                    meta["namespace"].as_str().unwrap_or_default().into(),
                    meta["name"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        for (namespace, name) in targets {
            self.delete_object(&key, &namespace, &name, Propagation::Background, now);
        }
    }

    /// Objects whose owner references include `uid`: (key, namespace, name, object).
    fn dependents_of(&self, uid: &str) -> Vec<(StorageKey, String, String, Value)> {
        self.dependents(uid)
            .into_iter()
            .filter_map(|(key, namespace, name)| {
                let object = self.get(&key, &namespace, &name)?.clone();
                Some((key, namespace, name, object))
            })
            .collect()
    }

    /// The garbage collector's pass after an owner is gone: a dependent with another live owner
    /// loses only the dangling reference; one without is deleted (background).
    fn collect_dependents(&mut self, uid: &str, now: &str) {
        let dependents = self.dependents_of(uid);
        if dependents.is_empty() {
            return;
        }
        for (key, namespace, name, object) in dependents {
            let other_owner_alive = object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["uid"].as_str())
                .any(|owner| owner != uid && self.is_live(owner));
            if other_owner_alive {
                self.strip_owner(&key, &namespace, &name, object, uid);
            } else if !is_deleting(&object) {
                self.delete_object(&key, &namespace, &name, Propagation::Background, now);
            }
        }
    }

    /// The garbage collector's view of a written object: when every owner it names is gone (a
    /// writer raced the owner's deletion), it is garbage and is deleted in the background.
    pub fn collect_if_dangling(&mut self, key: &StorageKey, namespace: &str, name: &str, now: &str) {
        let Some(object) = self.get(key, namespace, name) else { return };
        let owners: Vec<String> = object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["uid"].as_str().map(str::to_owned))
            .collect();
        if owners.is_empty() || is_deleting(object) {
            return;
        }
        if owners.iter().all(|owner| !self.is_live(owner)) {
            self.delete_object(key, namespace, name, Propagation::Background, now);
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (key, namespace, name, object) in self.dependents_of(uid) {
            self.strip_owner(&key, &namespace, &name, object, uid);
        }
    }

    fn delete_dependents(&mut self, uid: &str, now: &str) {
        for (key, namespace, name, _) in self.dependents_of(uid) {
            self.delete_object(&key, &namespace, &name, Propagation::Foreground, now);
        }
    }

    fn strip_owner(&mut self, key: &StorageKey, namespace: &str, name: &str, mut object: Value, uid: &str) {
        if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
            refs.retain(|r| r["uid"].as_str() != Some(uid));
            if refs.is_empty()
                && let Some(metadata) = object["metadata"].as_object_mut()
            {
                metadata.remove("ownerReferences");
            }
        }
        self.replace(key, namespace, name, object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kube::store::StoreLimits;

    fn cm() -> StorageKey {
        StorageKey { group: String::new(), plural: "configmaps".into() }
    }

    fn object(name: &str, uid: &str, owners: &[&str], finalizers: &[&str]) -> Value {
        let refs: Vec<Value> =
            owners.iter().map(|o| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": o})).collect();
        json!({"metadata": {"name": name, "namespace": "default", "uid": uid, "ownerReferences": refs, "finalizers": finalizers}})
    }

    const NOW: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn a_finalizer_holds_the_object_with_a_deletion_timestamp() {
        let mut state = State::new(StoreLimits::default());
        state.insert(&cm(), "default", "a", object("a", "a", &[], &["x/y"]));
        let after = state.delete_object(&cm(), "default", "a", Propagation::Background, NOW);
        assert!(after.is_some_and(|o| is_deleting(&o)));
        assert!(state.get(&cm(), "default", "a").is_some());
        let mut released = state.get(&cm(), "default", "a").cloned().unwrap_or_default();
        released["metadata"]["finalizers"] = json!([]);
        state.replace(&cm(), "default", "a", released);
        assert!(state.settle_deletion(&cm(), "default", "a", NOW).is_some());
        assert!(state.get(&cm(), "default", "a").is_none());
    }

    #[test]
    fn background_deletion_collects_dependents_without_other_owners() {
        let mut state = State::new(StoreLimits::default());
        state.insert(&cm(), "default", "owner", object("owner", "owner", &[], &[]));
        state.insert(&cm(), "default", "other", object("other", "other", &[], &[]));
        state.insert(&cm(), "default", "child", object("child", "c1", &["owner"], &[]));
        state.insert(&cm(), "default", "shared", object("shared", "c2", &["owner", "other"], &[]));
        state.delete_object(&cm(), "default", "owner", Propagation::Background, NOW);
        assert!(state.get(&cm(), "default", "child").is_none());
        let shared = state.get(&cm(), "default", "shared").cloned().unwrap_or_default();
        assert_eq!(shared["metadata"]["ownerReferences"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn an_object_whose_owners_are_all_gone_is_collected() {
        let mut state = State::new(StoreLimits::default());
        state.insert(&cm(), "default", "late", object("late", "l1", &["deleted-owner"], &[]));
        state.collect_if_dangling(&cm(), "default", "late", NOW);
        assert!(state.get(&cm(), "default", "late").is_none());
    }

    #[test]
    fn orphan_deletion_strips_the_owner_reference() {
        let mut state = State::new(StoreLimits::default());
        state.insert(&cm(), "default", "owner", object("owner", "owner", &[], &[]));
        state.insert(&cm(), "default", "child", object("child", "c1", &["owner"], &[]));
        state.delete_object(&cm(), "default", "owner", Propagation::Orphan, NOW);
        let child = state.get(&cm(), "default", "child").cloned().unwrap_or_default();
        assert!(child["metadata"].get("ownerReferences").is_none());
    }
}
