//! How a cache holds its objects.
//!
//! A kind a controller reconciles is held as kube-runtime's reflector store, the one the
//! controller takes its objects from ([`Objects`]). A child kind — Secrets, Deployments, Services
//! — is only read by name, a few objects per reconcile, but there are many of them: it is held
//! as the JSON of the (slimmed) object, in a [`shorthand`] for the pieces every object repeats,
//! and decoded on each read ([`Encoded`]). A small Secret held as a `k8s-openapi` object costs
//! about 3 KiB (each of its label, annotation and data maps is a B-tree node sized for eleven
//! entries); encoded, a few hundred bytes.

use super::index_key;
use super::shorthand;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};

/// The objects of one kind, kept in step with a watch: each (re)list replaces them once complete.
pub trait Storage<K>: Sized + Send + Sync + 'static {
    /// The half the watch writes through.
    type Writer: Send + 'static;

    fn new() -> (Self, Self::Writer);

    fn follow(writer: &mut Self::Writer, event: &watcher::Event<K>);

    /// Every watch of several merged ones has listed, the storage having followed applies and
    /// deletions only: whatever a relist's end sets, set it without replacing what is held.
    fn listed_through_applies(_writer: &mut Self::Writer) {}

    /// The object `namespace/name`, if held.
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>>;

    /// Whether `namespace/name` is held (no decoding).
    fn contains(&self, namespace: &str, name: &str) -> bool;

    /// `namespace/name` of every object held.
    fn keys(&self) -> Vec<String>;
}

/// Objects as they are, in kube-runtime's store.
pub struct Objects<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Objects<K> {
    /// The store a kube-runtime `Controller` reads its objects from.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }
}

impl<K> Storage<K> for Objects<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    type Writer = Writer<K>;

    fn new() -> (Self, Writer<K>) {
        let writer = Writer::default();
        (Self { store: writer.as_reader() }, writer)
    }

    fn follow(writer: &mut Writer<K>, event: &watcher::Event<K>) {
        writer.apply_watcher_event(event);
    }

    /// A kube-runtime `Controller` starts reconciling once its store has seen a relist's end, so
    /// the store relists what it holds into itself (once, at start-up: every object is cloned).
    fn listed_through_applies(writer: &mut Writer<K>) {
        let held = writer.as_reader().state();
        writer.apply_watcher_event(&watcher::Event::Init);
        for object in held {
            writer.apply_watcher_event(&watcher::Event::InitApply(Arc::unwrap_or_clone(object)));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    fn contains(&self, namespace: &str, name: &str) -> bool {
        self.get(namespace, name).is_some()
    }

    fn keys(&self) -> Vec<String> {
        let state = self.store.state();
        state
            .iter()
            .map(|o| index_key(o.meta().namespace.as_deref(), o.meta().name.as_deref().unwrap_or_default()))
            .collect()
    }
}

type EncodedMap = HashMap<Box<str>, Box<[u8]>>;

/// Objects as their JSON in [`shorthand`], by `namespace/name`.
pub struct Encoded<K> {
    objects: Arc<RwLock<EncodedMap>>,
    kind: PhantomData<fn() -> K>,
}

pub struct EncodedWriter {
    objects: Arc<RwLock<EncodedMap>>,
    /// What a (re)list in progress gathers.
    relisted: Option<EncodedMap>,
}

impl<K> Storage<K> for Encoded<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + 'static,
{
    type Writer = EncodedWriter;

    fn new() -> (Self, EncodedWriter) {
        let objects = Arc::new(RwLock::new(HashMap::new()));
        (Self { objects: objects.clone(), kind: PhantomData }, EncodedWriter { objects, relisted: None })
    }

    fn follow(writer: &mut EncodedWriter, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => {
                let encoded = encode(object);
                let mut objects = write(&writer.objects);
                match encoded {
                    Some(encoded) => objects.insert(key_of(object), encoded),
                    // Not held, and no older copy of it either: a read goes to the API server.
                    None => objects.remove(&key_of(object)),
                };
            }
            watcher::Event::Delete(object) => {
                write(&writer.objects).remove(&key_of(object));
            }
            watcher::Event::Init => writer.relisted = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                if let (Some(relisted), Some(encoded)) = (writer.relisted.as_mut(), encode(object)) {
                    relisted.insert(key_of(object), encoded);
                }
            }
            watcher::Event::InitDone => {
                if let Some(mut relisted) = writer.relisted.take() {
                    relisted.shrink_to_fit();
                    *write(&writer.objects) = relisted;
                }
            }
        }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        let encoded = objects.get(index_key(Some(namespace), name).as_str())?;
        match serde_json::from_slice(&shorthand::expand(encoded)) {
            Ok(object) => Some(Arc::new(object)),
            // Written by `encode` from the same type: only a bug gets here, and a miss is safe
            // (the caller reads the object from the API server instead).
            Err(error) => {
                tracing::debug!(kind = %K::kind(&()), %error, "a cached object does not decode");
                None
            }
        }
    }

    fn contains(&self, namespace: &str, name: &str) -> bool {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.contains_key(index_key(Some(namespace), name).as_str())
    }

    fn keys(&self) -> Vec<String> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.keys().map(|k| k.to_string()).collect()
    }
}

fn write(objects: &RwLock<EncodedMap>) -> RwLockWriteGuard<'_, EncodedMap> {
    objects.write().unwrap_or_else(PoisonError::into_inner)
}

fn key_of<K: Resource>(object: &K) -> Box<str> {
    let meta = object.meta();
    index_key(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default()).into_boxed_str()
}

/// The object's JSON in [`shorthand`]; `None` (not held, so read from the API server) should it
/// not encode.
fn encode<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> Option<Box<[u8]>> {
    let json = match serde_json::to_vec(object) {
        Ok(json) => json,
        Err(error) => {
            tracing::debug!(kind = %K::kind(&()), %error, "an object does not encode; not cached");
            return None;
        }
    };
    shorthand::shorten(&json).map(Vec::into_boxed_slice)
}

#[cfg(test)]
mod tests {
    use super::{Encoded, Objects, Storage};
    use futures::FutureExt as _;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    fn secret(name: &str, value: &str) -> Secret {
        let metadata =
            ObjectMeta { name: Some(name.into()), namespace: Some("team-a".into()), ..ObjectMeta::default() };
        let data = Some([("key".to_owned(), ByteString(value.as_bytes().to_vec()))].into_iter().collect());
        Secret { metadata, data, ..Secret::default() }
    }

    #[test]
    fn encoded_objects_read_back_as_written_and_follow_relists() {
        let (storage, mut writer) = <Encoded<Secret> as Storage<Secret>>::new();
        Encoded::follow(&mut writer, &Event::Apply(secret("a", "one")));
        assert_eq!(storage.get("team-a", "a").as_deref(), Some(&secret("a", "one")));
        assert_eq!(storage.get("team-b", "a"), None);
        assert!(storage.contains("team-a", "a") && !storage.contains("team-b", "a"));

        Encoded::follow(&mut writer, &Event::<Secret>::Init);
        Encoded::follow(&mut writer, &Event::InitApply(secret("b", "two")));
        assert!(storage.get("team-a", "a").is_some(), "the old objects serve until the relist is done");
        Encoded::follow(&mut writer, &Event::<Secret>::InitDone);
        assert_eq!(storage.get("team-a", "a"), None);
        assert_eq!(storage.keys(), ["team-a/b"]);

        Encoded::follow(&mut writer, &Event::Delete(secret("b", "two")));
        assert!(storage.keys().is_empty());
    }

    #[tokio::test]
    async fn a_store_listed_through_applies_is_ready_for_a_controller_and_keeps_its_objects() {
        let (storage, mut writer) = <Objects<Secret> as Storage<Secret>>::new();
        Objects::follow(&mut writer, &Event::Apply(secret("a", "one")));
        let store = storage.store();
        assert!(store.wait_until_ready().now_or_never().is_none(), "applies alone never make it ready");
        Objects::listed_through_applies(&mut writer);
        let ready = tokio::time::timeout(std::time::Duration::from_secs(5), store.wait_until_ready()).await;
        assert!(ready.is_ok_and(|ready| ready.is_ok()), "a kube-runtime Controller waits for this");
        assert_eq!(storage.get("team-a", "a").as_deref(), Some(&secret("a", "one")));
        assert_eq!(storage.keys(), ["team-a/a"]);
    }
}
