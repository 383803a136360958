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
//! With several namespaces (`--namespace a,b`) each kind has a watch per namespace, merged, and a
//! namespace's relist stands for that namespace only ([`relists`]).
//!
//! Cached objects lose what the operator never reads — `managedFields` and kubectl's
//! last-applied annotation — which is most of an object's size. The children (Secrets,
//! Deployments, Services), by far the most objects, are held encoded ([`Encoded`]).

use super::listed::Listed;
use super::pace::Pace;
use super::shard::Shard;
use crate::api::{GatewayConfig, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecureApiService, owner_label_key};
use crate::workload::snapshot::{CONTENT_HASH_ANNOTATION, referenced_secret_refs};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use index::Index;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
pub use relists::{Relists, Step, in_namespace};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
pub use storage::{Encoded, Objects, Storage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod index;
mod relists;
mod shorthand;
mod storage;

/// Secrets per list page (kube-runtime's default is 500).
const SECRET_PAGE: u32 = 50;
/// Objects a subscriber may fall behind by before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The kinds the controllers watch, each watched once.
pub struct Caches {
    pub secret_refs: Cache<SecretRef>,
    /// Only Secrets the operator labelled: never every Secret of the cluster.
    pub secrets: Cache<Secret, Encoded<Secret>>,
    pub secure_api_services: Cache<SecureApiService>,
    pub gateway_configs: Cache<GatewayConfig>,
    /// Only children the operator labelled.
    pub deployments: Cache<Deployment, Encoded<Deployment>>,
    pub services: Cache<Service, Encoded<Service>>,
}

impl Caches {
    /// The caches of `namespaces` (none: all namespaces); nothing is watched before [`Self::run`].
    /// A relist of a reconciled kind is handed over `4 × concurrency` objects at a time.
    /// Only `shard`'s objects are paced: no controller of this process reconciles the others.
    pub fn new(client: &Client, namespaces: &[String], concurrency: u16, shard: Shard) -> Self {
        let ours = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        // Anyone may label a Secret as ours, at up to 1 MiB each: a list page of them is held whole
        // while it is decoded, so pages are small.
        let our_secrets = || ours().page_size(SECRET_PAGE);
        let all = watcher::Config::default;
        let window = Some((4 * usize::from(concurrency), shard));
        Self {
            secret_refs: Cache::new(Watched::new(client, namespaces), all(), window, None),
            secrets: Cache::new(Watched::new(client, namespaces), our_secrets(), None, Some(snapshot_owner))
                .slimmed(slim_secret),
            secure_api_services: Cache::new(Watched::new(client, namespaces), all(), window, Some(secret_refs_used)),
            gateway_configs: Cache::new(Watched::new(client, namespaces), all(), window, Some(backends_used)),
            deployments: Cache::new(Watched::new(client, namespaces), ours(), None, None),
            services: Cache::new(Watched::new(client, namespaces), ours(), None, None),
        }
    }

    /// Waits until every watch has listed once. The controllers start after this: a reconcile
    /// that reads a cache before its first list would take a child that exists for missing.
    pub async fn listed(&self) {
        tokio::join!(
            self.secret_refs.listed.wait(),
            self.secrets.listed.wait(),
            self.secure_api_services.listed.wait(),
            self.gateway_configs.listed.wait(),
            self.deployments.listed.wait(),
            self.services.listed.wait(),
        );
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

/// Where a kind is watched: one watch for all namespaces or one, whose relists stand for
/// everything held; a watch per namespace for several, merged, each relist standing for its own
/// namespace only.
pub struct Watched<K> {
    /// Each watch with its namespace (`None`: the only one).
    watches: Vec<(Option<Arc<str>>, Api<K>)>,
}

/// An event of a watch of [`Watched`], with the watch's namespace (`None`: the only watch).
pub type WatchedEvent<K> = (Option<Arc<str>>, Result<watcher::Event<K>, watcher::Error>);

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    /// The watches of `namespaces`: all namespaces when none is given.
    pub fn new(client: &Client, namespaces: &[String]) -> Self
    where
        K: Resource<Scope = NamespaceResourceScope>,
    {
        // A namespace given twice is watched once: a second watch would never be told apart.
        let mut unique: Vec<&str> = Vec::with_capacity(namespaces.len());
        for namespace in namespaces {
            if !unique.contains(&namespace.as_str()) {
                unique.push(namespace);
            }
        }
        let watches = match unique[..] {
            [] => vec![(None, Api::all(client.clone()))],
            [namespace] => vec![(None, Api::namespaced(client.clone(), namespace))],
            ref several => {
                several.iter().map(|ns| (Some(Arc::from(*ns)), Api::namespaced(client.clone(), ns))).collect()
            }
        };
        Self { watches }
    }

    /// Whether several watches are merged.
    pub fn is_merged(&self) -> bool {
        self.watches.len() > 1
    }

    /// The relist bookkeeping of these watches (see [`Relists`]).
    pub fn relists(&self) -> Relists {
        Relists::new(self.watches.iter().map(|(namespace, _)| namespace.as_deref().map(str::to_owned)))
    }

    /// Every event of the watches, each watch retrying on its own after a failure.
    pub fn events(self, config: watcher::Config) -> BoxStream<'static, WatchedEvent<K>> {
        let watches = self.watches.into_iter().map(|(namespace, api)| {
            let events = watcher(api, config.clone()).default_backoff();
            events.map(move |event| (namespace.clone(), event)).boxed()
        });
        futures::stream::select_all(watches).boxed()
    }
}

/// One kind's objects ([`Storage`]), and the watch that keeps them until it runs.
pub struct Cache<K: Resource<DynamicType = ()> + Clone + 'static, S: Storage<K> = Objects<K>> {
    storage: S,
    /// For a kind a controller reconciles: how fast a relist of the shard's objects is handed over.
    pace: Option<(Pace, Shard)>,
    index: Option<Index<K>>,
    /// Set when the first list is in the storage.
    listed: Listed,
    feed: Mutex<Option<Feed<K, S::Writer>>>,
}

struct Feed<K: Resource<DynamicType = ()> + Clone + 'static, W> {
    watched: Watched<K>,
    /// What is dropped from each object before it is held.
    slim: fn(&mut K),
    config: watcher::Config,
    writer: W,
    subscribers: Vec<mpsc::Sender<Arc<K>>>,
}

impl<K, S> Cache<K, S>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    S: Storage<K>,
{
    fn new(
        watched: Watched<K>,
        config: watcher::Config,
        window: Option<(usize, Shard)>,
        keys_of: Option<fn(&K) -> Vec<String>>,
    ) -> Self {
        let (storage, writer) = S::new();
        let feed = Feed { watched, slim: slim::<K>, config, writer, subscribers: vec![] };
        let pace = window.map(|(window, shard)| (Pace::new(window), shard));
        let index = keys_of.map(Index::new);
        Self { storage, pace, index, listed: Listed::default(), feed: Mutex::new(Some(feed)) }
    }

    /// Drops more than [`slim`] from each object before it is held.
    fn slimmed(self, more: fn(&mut K)) -> Self {
        if let Some(feed) = self.feed.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            feed.slim = more;
        }
        self
    }

    /// The objects found under index `key` (see [`index_key`]); none for a cache without index.
    pub fn indexed(&self, key: &str) -> Vec<ObjectRef<K>> {
        let Some(index) = &self.index else { return vec![] };
        let objects = index.lookup(key);
        let refs = objects.iter().filter_map(|object| object.split_once('/'));
        refs.map(|(namespace, name)| ObjectRef::new(name).within(namespace)).collect()
    }

    /// A reconcile of `key` (`namespace/name`) completed: room for one more object of a relist.
    pub fn reconciled(&self, key: &str) {
        if let Some((pace, _)) = &self.pace {
            pace.reconciled(key);
        }
    }

    /// The cached object `namespace/name`, if the watch has seen it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.storage.get(namespace, name)
    }

    /// Whether the watch has seen `namespace/name` (cheaper than [`Self::get`]).
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.storage.contains(namespace, name)
    }

    /// Every object the watch changes or deletes from now on, and all of them after each
    /// (re)list. Empty once the watch runs.
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + use<K, S> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        if let Some(feed) = self.feed.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            feed.subscribers.push(sender);
        }
        futures::stream::unfold(receiver, |mut receiver| async { receiver.recv().await.map(|o| (o, receiver)) })
    }

    /// Whether relisted object `key` (`namespace/name`) waits for room in the window: only objects
    /// a controller here reconciles free their place.
    fn paced(&self, key: &str) -> bool {
        let owned = |shard: &Shard| key.split_once('/').is_some_and(|(ns, name)| shard.owns_key(ns, name));
        self.pace.as_ref().is_some_and(|(_, shard)| owned(shard))
    }

    /// Watches until `shutdown` (once: a second call returns at once).
    async fn run(&self, shutdown: CancellationToken) {
        let Some(feed) = self.feed.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        let Feed { watched, slim, config, mut writer, mut subscribers } = feed;
        // Several namespaces' watches: each relist stands for its own namespace only.
        let mut merged = watched.is_merged().then(|| watched.relists());
        let mut events = watched.events(config);
        // The last relists' objects (`namespace/name`) not handed over yet.
        let mut relist: VecDeque<String> = VecDeque::new();
        loop {
            let next = relist.front().filter(|key| self.paced(key)).cloned();
            let touched: Vec<Arc<K>> = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    None => return,
                    Some((namespace, Ok(event))) => {
                        let event = event.modify(slim);
                        match merged.as_mut() {
                            None => self.follow_single(&mut writer, event, &mut relist).into_iter().collect(),
                            Some(relists) => {
                                self.follow_merged(&mut writer, relists, namespace.as_deref(), event, &mut relist)
                            }
                        }
                    }
                    Some((_, Err(error))) if self.listed.is_set() => {
                        tracing::debug!(kind = %K::kind(&()), %error, "watch failed; retrying");
                        continue;
                    }
                    // The controllers wait for this first list: say why they have not started.
                    Some((namespace, Err(error))) => {
                        let namespace = namespace.as_deref();
                        tracing::warn!(kind = %K::kind(&()), namespace, %error, "cannot list; the controllers start once every watch has listed");
                        continue;
                    }
                },
                () = room(self.pace.as_ref().map(|(pace, _)| pace), next), if !relist.is_empty() => {
                    let Some(key) = relist.pop_front() else { continue };
                    // Deleted since the relist (its deletion was handed over): nothing to reconcile.
                    let Some(object) = self.get_key(&key) else {
                        self.reconciled(&key);
                        continue;
                    };
                    vec![object]
                }
            };
            let deliver = async {
                for object in &touched {
                    for subscriber in &subscribers {
                        // A subscriber gone (its controller stopped) just stops receiving.
                        let _ = subscriber.send(object.clone()).await;
                    }
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

    /// Follows `event` of the single watch, whose relists replace everything held; returns the
    /// changed object, to hand over.
    fn follow_single(
        &self,
        writer: &mut S::Writer,
        event: watcher::Event<K>,
        relist: &mut VecDeque<String>,
    ) -> Option<Arc<K>> {
        let relisted = matches!(event, watcher::Event::InitDone);
        let changed = self.follow(writer, event);
        // After a (re)list the store holds everything: every object is worth a look.
        if relisted {
            self.listed.set();
            *relist = self.storage.keys().into();
        }
        changed
    }

    /// Follows `event` of `namespace`'s watch, one of several, as applies and deletions only (see
    /// [`Relists`]); returns the changed objects, to hand over.
    fn follow_merged(
        &self,
        writer: &mut S::Writer,
        relists: &mut Relists,
        namespace: Option<&str>,
        event: watcher::Event<K>,
        relist: &mut VecDeque<String>,
    ) -> Vec<Arc<K>> {
        let changed = match relists.step(namespace, event, || self.storage.keys()) {
            Step::Applied(object) => self.follow(writer, watcher::Event::Apply(object)).into_iter().collect(),
            Step::Deleted(object) => self.follow(writer, watcher::Event::Delete(object)).into_iter().collect(),
            // Handed over with the rest of its namespace once the relist is done.
            Step::Relisted(object) => {
                self.follow(writer, watcher::Event::Apply(object));
                return vec![];
            }
            Step::RelistStarted => return vec![],
            Step::RelistDone { gone } => {
                // Deleted while the watch was down: handed over as any deletion is.
                let deleted = gone.iter().filter_map(|key| match self.get_key(key) {
                    Some(held) => self.follow(writer, watcher::Event::Delete(Arc::unwrap_or_clone(held))),
                    None => {
                        tracing::debug!(kind = %K::kind(&()), key, "a cached object missing from its relist cannot be read; kept");
                        None
                    }
                });
                let deleted = deleted.collect();
                // The namespace's objects are worth a look, as after a single watch's relist.
                if self.listed.is_set() {
                    relist.retain(|key| !in_namespace(key, namespace));
                    relist.extend(self.storage.keys().into_iter().filter(|key| in_namespace(key, namespace)));
                }
                deleted
            }
        };
        if self.listed.is_set() {
            return changed;
        }
        // Nothing is handed over before every namespace has listed: the subscribers' controllers
        // start only then, and a full subscriber channel would hold up the lists still to come.
        if relists.all_listed() {
            S::listed_through_applies(writer);
            self.listed.set();
            // As after a single watch's first list: every object is worth a look.
            *relist = self.storage.keys().into();
        }
        vec![]
    }

    /// Follows `event` in the store, then the index (a reconcile it triggers finds the object);
    /// returns the object it applied or deleted.
    fn follow(&self, writer: &mut S::Writer, event: watcher::Event<K>) -> Option<Arc<K>> {
        S::follow(writer, &event);
        self.index.iter().for_each(|index| index.follow(&event));
        match event {
            watcher::Event::Apply(object) | watcher::Event::Delete(object) => Some(Arc::new(object)),
            watcher::Event::Init | watcher::Event::InitApply(_) | watcher::Event::InitDone => None,
        }
    }

    /// The cached object of key `namespace/name`.
    fn get_key(&self, key: &str) -> Option<Arc<K>> {
        key.split_once('/').and_then(|(namespace, name)| self.storage.get(namespace, name))
    }
}

impl<K> Cache<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// The store a kube-runtime `Controller` of this kind reads its objects from.
    pub fn store(&self) -> Store<K> {
        self.storage.store()
    }
}

/// Waits for room for relisted object `key` (at once for a kind without pacing).
async fn room(pace: Option<&Pace>, key: Option<String>) {
    if let (Some(pace), Some(key)) = (pace, key) {
        pace.room(key).await;
    }
}

/// Drops what no controller reads from a cached object (writes never send these fields back:
/// they are applied from what the controllers build, or patched field by field).
fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.creation_timestamp = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// The most data a Secret the operator writes for a SecretRef holds: Secret Manager payloads are
/// at most 64 KiB, and a mapping only takes from one; the rest is room for key names.
const MAX_HELD_DATA: usize = 80 * 1024;

/// Only a SecretRef's target Secret is held with its data (reconciles compare it with what they
/// synced, and services copy it into snapshots), and only when it looks like one: the SecretRef
/// label, no snapshot's, no controller but that SecretRef, and no more data than a sync writes.
/// Every other Secret with our label is held as metadata: anyone who may create Secrets can set
/// a label, and a Secret held whole for that would let them grow the operator's memory. A
/// reconcile that finds no data in the cache reads the Secret.
///
/// A snapshot's name carries its content's hash and its annotation the hash it was applied with,
/// which is all a service reconcile compares (the content-hash annotation, the same hash in
/// full, is for people).
fn slim_secret(secret: &mut Secret) {
    slim(secret);
    if !is_held_whole(secret) {
        secret.data = None;
        secret.string_data = None;
        if let Some(annotations) = secret.metadata.annotations.as_mut() {
            annotations.remove(CONTENT_HASH_ANNOTATION);
        }
    }
}

/// Whether `secret` looks like a SecretRef's target that a sync wrote (see [`slim_secret`]).
fn is_held_whole(secret: &Secret) -> bool {
    let labels = secret.labels();
    let Some(secret_ref) = labels.get(&owner_label_key("SecretRef")) else { return false };
    let controller = secret.owner_references().iter().find(|r| r.controller == Some(true));
    let controlled_by_it = controller.is_none_or(|r| r.kind == "SecretRef" && r.name == *secret_ref);
    let size: usize = secret.data.iter().flatten().map(|(key, value)| key.len() + value.0.len()).sum();
    snapshot_owner(secret).is_empty() && secret.string_data.is_none() && controlled_by_it && size <= MAX_HELD_DATA
}

#[cfg(test)]
mod tests {
    use super::{slim, slim_secret};
    use crate::api::owner_label_key;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::ResourceExt;
    use kube::api::ObjectMeta;

    #[test]
    fn cached_objects_lose_managed_fields_creation_time_and_the_last_applied_annotation() {
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
        secret.metadata.creation_timestamp = Some(crate::runtime::now());
        slim(&mut secret);
        assert!(secret.managed_fields().is_empty());
        assert_eq!(secret.metadata.creation_timestamp, None);
        assert_eq!(secret.annotations().keys().collect::<Vec<_>>(), ["kept"]);
    }

    /// A Secret labelled as ours, with `extra` labels and `size` bytes of data.
    fn labelled(extra: &[(&str, &str)], size: usize) -> Secret {
        let mut labels: std::collections::BTreeMap<String, String> =
            [("app.kubernetes.io/managed-by".to_owned(), "secure-api-operator".to_owned())].into();
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let data = [("key".to_owned(), k8s_openapi::ByteString(vec![b'x'; size]))].into_iter().collect();
        Secret {
            metadata: ObjectMeta { labels: Some(labels), ..ObjectMeta::default() },
            data: Some(data),
            ..Secret::default()
        }
    }

    fn controlled_by(mut secret: Secret, kind: &str, name: &str) -> Secret {
        let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            kind: kind.into(),
            name: name.into(),
            controller: Some(true),
            ..Default::default()
        };
        secret.metadata.owner_references = Some(vec![owner]);
        secret
    }

    #[test]
    fn only_a_secret_refs_target_of_a_sync_size_is_held_with_its_data() {
        let held = |mut secret: Secret| {
            slim_secret(&mut secret);
            secret.data.is_some()
        };
        let target = || labelled(&[("secureapi.dev/secretref", "db")], 1024);
        assert!(held(target()), "a synced Secret keeps its data: reconciles and services read it");
        assert!(held(controlled_by(target(), "SecretRef", "db")));
        assert!(!held(controlled_by(target(), "SecretRef", "other")), "another SecretRef's controller");
        assert!(!held(controlled_by(target(), "Deployment", "db")));
        assert!(!held(labelled(&[], 10)), "our label alone: metadata only");
        assert!(!held(labelled(&[("secureapi.dev/gatewayconfig", "gw")], 10)), "an API key's Secret is read by name");
        assert!(!held(labelled(&[("secureapi.dev/secretref", "db")], 900 * 1024)), "more than a sync writes");
    }

    #[test]
    fn snapshot_secrets_are_held_without_their_data() {
        let data = || Some([("key".to_owned(), k8s_openapi::ByteString(b"value".to_vec()))].into_iter().collect());
        let labels = [(owner_label_key("SecureApiService"), "api".to_owned())].into_iter().collect();
        let annotations = [("secureapi.dev/content-hash", "ab12"), ("secureapi.dev/applied-hash", "cd34")];
        let annotations = annotations.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let metadata = ObjectMeta {
            name: Some("api-db-1234".into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        };
        let mut snapshot = Secret { metadata, data: data(), ..Secret::default() };
        slim_secret(&mut snapshot);
        assert_eq!(snapshot.data, None);
        assert_eq!(snapshot.annotations().keys().collect::<Vec<_>>(), ["secureapi.dev/applied-hash"]);
    }
}
