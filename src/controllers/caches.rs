//! One watch and one in-memory copy per kind, shared by every controller that needs the kind.
//!
//! Reconciles read children from these stores instead of GETting them: a steady object costs no
//! request at all. Each watch feeds its store first and then every subscriber, so a reconcile a
//! subscriber triggers always finds the object that triggered it. Deletions are passed on too
//! (kube-runtime's own shared streams drop them), so a deleted child is repaired.
//!
//! A cache may keep an index (keys an object is found under, like client-go's indexers), so that
//! "which services use this SecretRef" is a lookup, not a scan of every service per event.
//!
//! A relist is handed to subscribers a window at a time ([`Pace`]) for the kinds a controller
//! reconciles, so new objects never queue behind thousands of unchanged ones.
//!
//! Cached objects lose what the operator never reads — `managedFields` and kubectl's
//! last-applied annotation — which is most of an object's size.

use super::pace::Pace;
use super::shard::Shard;
use crate::api::{GatewayConfig, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecureApiService, owner_label_key};
use crate::workload::snapshot::referenced_secret_refs;
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Objects a subscriber may fall behind by before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The kinds the controllers watch, each watched once.
pub struct Caches {
    pub secret_refs: Cache<SecretRef>,
    /// Only Secrets the operator labelled: never every Secret of the cluster.
    pub secrets: Cache<Secret>,
    pub secure_api_services: Cache<SecureApiService>,
    pub gateway_configs: Cache<GatewayConfig>,
    /// Only children the operator labelled.
    pub deployments: Cache<Deployment>,
    pub services: Cache<Service>,
}

impl Caches {
    /// The caches of `namespace` (all namespaces: `None`); nothing is watched before [`Self::run`].
    /// A relist of a reconciled kind is handed over `4 × concurrency` objects at a time.
    /// Only `shard`'s objects are paced: no controller of this process reconciles the others.
    pub fn new(client: &Client, namespace: Option<&str>, concurrency: u16, shard: Shard) -> Self {
        let ours = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        let all = watcher::Config::default;
        let window = Some((4 * usize::from(concurrency), shard));
        Self {
            secret_refs: Cache::new(scoped(client, namespace), all(), window, None),
            secrets: Cache::new(scoped(client, namespace), ours(), None, Some(snapshot_owner)),
            secure_api_services: Cache::new(scoped(client, namespace), all(), window, Some(secret_refs_used)),
            gateway_configs: Cache::new(scoped(client, namespace), all(), window, Some(backends_used)),
            deployments: Cache::new(scoped(client, namespace), ours(), None, None),
            services: Cache::new(scoped(client, namespace), ours(), None, None),
        }
    }

    /// Runs every watch until `shutdown`. Subscribe first: later subscribers get nothing.
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::join!(
            self.secret_refs.run(shutdown.clone()),
            self.secrets.run(shutdown.clone()),
            self.secure_api_services.run(shutdown.clone()),
            self.gateway_configs.run(shutdown.clone()),
            self.deployments.run(shutdown.clone()),
            self.services.run(shutdown),
        );
    }
}

/// `namespace/name` of an object's namespace and `name`: the form of every index key.
pub fn index_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// A snapshot Secret is found under the SecureApiService it belongs to.
fn snapshot_owner(secret: &Secret) -> Vec<String> {
    let owner = secret.labels().get(&owner_label_key("SecureApiService"));
    owner.map(|service| index_key(secret.namespace().as_deref(), service)).into_iter().collect()
}

/// A SecureApiService is found under each SecretRef it uses.
fn secret_refs_used(service: &SecureApiService) -> Vec<String> {
    let namespace = service.namespace();
    referenced_secret_refs(&service.spec).iter().map(|name| index_key(namespace.as_deref(), name)).collect()
}

/// A GatewayConfig is found under each SecureApiService its routes send to.
fn backends_used(gateway: &GatewayConfig) -> Vec<String> {
    let namespace = gateway.namespace();
    let services = gateway.spec.routes.iter().filter_map(|r| r.backend.service.as_deref());
    services.map(|service| index_key(namespace.as_deref(), service)).collect()
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// One kind's store, and the watch that keeps it until it runs.
pub struct Cache<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    /// For a kind a controller reconciles: how fast a relist of the shard's objects is handed over.
    pace: Option<(Pace, Shard)>,
    index: Option<Index<K>>,
    feed: Mutex<Option<Feed<K>>>,
}

/// The keys each cached object is found under, kept in step with the store.
struct Index<K: Resource<DynamicType = ()> + Clone + 'static> {
    keys_of: fn(&K) -> Vec<String>,
    entries: Mutex<IndexEntries<K>>,
}

struct IndexEntries<K: Resource<DynamicType = ()> + Clone + 'static> {
    by_key: HashMap<String, HashSet<ObjectRef<K>>>,
    keys: HashMap<ObjectRef<K>, Vec<String>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Index<K> {
    fn entries(&self) -> std::sync::MutexGuard<'_, IndexEntries<K>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(entries: &mut IndexEntries<K>, object: ObjectRef<K>, keys: Vec<String>) {
        Self::unset(entries, &object);
        for key in &keys {
            entries.by_key.entry(key.clone()).or_default().insert(object.clone());
        }
        entries.keys.insert(object, keys);
    }

    fn unset(entries: &mut IndexEntries<K>, object: &ObjectRef<K>) {
        for key in entries.keys.remove(object).into_iter().flatten() {
            if let Some(objects) = entries.by_key.get_mut(&key) {
                objects.remove(object);
                if objects.is_empty() {
                    entries.by_key.remove(&key);
                }
            }
        }
    }

    fn applied(&self, object: &K) {
        Self::set(&mut self.entries(), ObjectRef::from_obj(object), (self.keys_of)(object));
    }

    fn deleted(&self, object: &K) {
        Self::unset(&mut self.entries(), &ObjectRef::from_obj(object));
    }

    fn rebuild(&self, objects: &[Arc<K>]) {
        let mut entries = self.entries();
        entries.by_key.clear();
        entries.keys.clear();
        for object in objects {
            Self::set(&mut entries, ObjectRef::from_obj(object.as_ref()), (self.keys_of)(object));
        }
    }
}

struct Feed<K: Resource<DynamicType = ()> + Clone + 'static> {
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    subscribers: Vec<mpsc::Sender<Arc<K>>>,
}

impl<K> Cache<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn new(
        api: Api<K>,
        config: watcher::Config,
        window: Option<(usize, Shard)>,
        keys_of: Option<fn(&K) -> Vec<String>>,
    ) -> Self {
        let writer = Writer::default();
        let store = writer.as_reader();
        let feed = Feed { api, config, writer, subscribers: vec![] };
        let index = keys_of.map(|keys_of| Index {
            keys_of,
            entries: Mutex::new(IndexEntries { by_key: HashMap::new(), keys: HashMap::new() }),
        });
        let pace = window.map(|(window, shard)| (Pace::new(window), shard));
        Self { store, pace, index, feed: Mutex::new(Some(feed)) }
    }

    /// The objects found under index `key` (see [`index_key`]); none for a cache without index.
    pub fn indexed(&self, key: &str) -> Vec<ObjectRef<K>> {
        let Some(index) = &self.index else { return vec![] };
        index.entries().by_key.get(key).map(|objects| objects.iter().cloned().collect()).unwrap_or_default()
    }

    /// A reconcile of `key` (`namespace/name`) completed: room for one more object of a relist.
    pub fn reconciled(&self, key: &str) {
        if let Some((pace, _)) = &self.pace {
            pace.reconciled(key);
        }
    }

    /// The store (ready once the first list arrived).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// The cached object `namespace/name`, if the watch has seen it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// Every object the watch changes or deletes from now on, and all of them after each
    /// (re)list. Empty once the watch runs.
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + use<K> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        if let Some(feed) = self.feed.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            feed.subscribers.push(sender);
        }
        futures::stream::unfold(receiver, |mut receiver| async { receiver.recv().await.map(|o| (o, receiver)) })
    }

    /// Watches until `shutdown` (once: a second call returns at once).
    async fn run(&self, shutdown: CancellationToken) {
        let Some(feed) = self.feed.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        let Feed { api, config, writer, mut subscribers } = feed;
        let mut events = std::pin::pin!(watcher(api, config).default_backoff().modify(slim).reflect(writer));
        // The last relist's objects not handed over yet.
        let mut relist: VecDeque<Arc<K>> = VecDeque::new();
        loop {
            // Only objects a controller here reconciles free their place in the window.
            let paced = |object: &&Arc<K>| self.pace.as_ref().is_some_and(|(_, shard)| shard.owns(object.as_ref()));
            let next = relist.front().filter(paced).map(|o| index_key(o.meta().namespace.as_deref(), &o.name_any()));
            let touched = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    None => return,
                    Some(Ok(watcher::Event::Apply(object))) => {
                        self.index.iter().for_each(|index| index.applied(&object));
                        Arc::new(object)
                    }
                    Some(Ok(watcher::Event::Delete(object))) => {
                        self.index.iter().for_each(|index| index.deleted(&object));
                        Arc::new(object)
                    }
                    // After a (re)list the store holds everything: every object is worth a look.
                    Some(Ok(watcher::Event::InitDone)) => {
                        let objects = self.store.state();
                        self.index.iter().for_each(|index| index.rebuild(&objects));
                        relist = objects.into();
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        tracing::debug!(kind = %K::kind(&()), %error, "watch failed; retrying");
                        continue;
                    }
                },
                () = room(self.pace.as_ref().map(|(pace, _)| pace), next), if !relist.is_empty() => {
                    let Some(object) = relist.pop_front() else { continue };
                    object
                }
            };
            let deliver = async {
                for subscriber in &subscribers {
                    // A subscriber gone (its controller stopped) just stops receiving.
                    let _ = subscriber.send(touched.clone()).await;
                }
            };
            // A controller that stopped reading (shutting down) must not hold the watch.
            tokio::select! {
                () = deliver => {}
                () = shutdown.cancelled() => return,
            }
            subscribers.retain(|s| !s.is_closed());
        }
    }
}

/// Waits for room for relisted object `key` (at once for a kind without pacing).
async fn room(pace: Option<&Pace>, key: Option<String>) {
    if let (Some(pace), Some(key)) = (pace, key) {
        pace.room(key).await;
    }
}

/// Drops what no controller reads from a cached object.
fn slim<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
}

#[cfg(test)]
mod tests {
    use super::{Index, IndexEntries, slim, snapshot_owner};
    use crate::api::owner_label_key;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::ResourceExt;
    use kube::api::ObjectMeta;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[test]
    fn cached_objects_lose_managed_fields_and_the_last_applied_annotation() {
        let mut secret = Secret {
            metadata: ObjectMeta {
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                annotations: Some(
                    [("kubectl.kubernetes.io/last-applied-configuration", "{}"), ("kept", "yes")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        slim(&mut secret);
        assert!(secret.managed_fields().is_empty());
        assert_eq!(secret.annotations().keys().collect::<Vec<_>>(), ["kept"]);
    }

    fn snapshot(name: &str, service: &str) -> Secret {
        let labels = [(owner_label_key("SecureApiService"), service.to_owned())].into_iter().collect();
        let metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        };
        Secret { metadata, ..Secret::default() }
    }

    #[test]
    fn the_index_follows_changes_and_deletions() {
        let index = Index {
            keys_of: snapshot_owner,
            entries: Mutex::new(IndexEntries { by_key: HashMap::new(), keys: HashMap::new() }),
        };
        let names = |key: &str| -> Vec<String> {
            let mut names: Vec<String> =
                index.entries().by_key.get(key).into_iter().flatten().map(|o| o.name.clone()).collect();
            names.sort();
            names
        };
        index.applied(&snapshot("api-1", "api"));
        index.applied(&snapshot("api-2", "api"));
        assert_eq!(names("team-a/api"), ["api-1", "api-2"]);
        index.applied(&snapshot("api-2", "other"));
        assert_eq!(names("team-a/api"), ["api-1"]);
        assert_eq!(names("team-a/other"), ["api-2"]);
        index.deleted(&snapshot("api-1", "api"));
        assert!(names("team-a/api").is_empty());
        assert!(!index.entries().by_key.contains_key("team-a/api"), "no empty keys linger");
        index.rebuild(&[std::sync::Arc::new(snapshot("api-3", "api"))]);
        assert_eq!(names("team-a/api"), ["api-3"]);
        assert!(names("team-a/other").is_empty());
    }
}
