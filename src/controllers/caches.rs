//! One watch and one in-memory copy per kind, shared by every controller that needs the kind.
//!
//! Reconciles read children from these stores instead of GETting them: a steady object costs no
//! request at all. Each watch feeds its store first and then every subscriber, so a reconcile a
//! subscriber triggers always finds the object that triggered it. Deletions are passed on too
//! (kube-runtime's own shared streams drop them), so a deleted child is repaired.
//!
//! A relist is handed to subscribers a window at a time ([`Pace`]) for the kinds a controller
//! reconciles, so new objects never queue behind thousands of unchanged ones.
//!
//! Cached objects lose what the operator never reads — `managedFields` and kubectl's
//! last-applied annotation — which is most of an object's size.

use super::pace::{Handover, Pace};
use crate::api::{GatewayConfig, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecureApiService};
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
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
    pub fn new(client: &Client, namespace: Option<&str>, concurrency: u16) -> Self {
        let ours = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        let all = watcher::Config::default;
        let window = Some(4 * u64::from(concurrency));
        Self {
            secret_refs: Cache::new(scoped(client, namespace), all(), window),
            secrets: Cache::new(scoped(client, namespace), ours(), None),
            secure_api_services: Cache::new(scoped(client, namespace), all(), window),
            gateway_configs: Cache::new(scoped(client, namespace), all(), window),
            deployments: Cache::new(scoped(client, namespace), ours(), None),
            services: Cache::new(scoped(client, namespace), ours(), None),
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
    /// For a kind a controller reconciles: how fast a relist is handed over.
    pace: Option<Pace>,
    feed: Mutex<Option<Feed<K>>>,
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
    fn new(api: Api<K>, config: watcher::Config, window: Option<u64>) -> Self {
        let writer = Writer::default();
        let store = writer.as_reader();
        let feed = Feed { api, config, writer, subscribers: vec![] };
        Self { store, pace: window.map(Pace::new), feed: Mutex::new(Some(feed)) }
    }

    /// A reconcile of this kind completed: room for one more object of a relist.
    pub fn reconciled(&self) {
        if let Some(pace) = &self.pace {
            pace.completed();
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
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
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
        // The last relist's objects not handed over yet, and how far the handover got.
        let mut relist: VecDeque<Arc<K>> = VecDeque::new();
        let mut handover: Option<Handover> = None;
        loop {
            let touched = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    None => return,
                    Some(Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object))) => Arc::new(object),
                    // After a (re)list the store holds everything: every object is worth a look.
                    Some(Ok(watcher::Event::InitDone)) => {
                        relist = self.store.state().into();
                        handover = self.pace.as_ref().map(Pace::start);
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        tracing::debug!(kind = %K::kind(&()), %error, "watch failed; retrying");
                        continue;
                    }
                },
                () = room(self.pace.as_ref(), handover.as_mut()), if !relist.is_empty() => {
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

/// Waits for room for one more relisted object (at once for a kind without pacing).
async fn room(pace: Option<&Pace>, handover: Option<&mut Handover>) {
    if let (Some(pace), Some(handover)) = (pace, handover) {
        pace.room(handover).await;
    }
}

/// Drops what no controller reads from a cached object.
fn slim<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
}

#[cfg(test)]
mod tests {
    use super::slim;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::ResourceExt;
    use kube::api::ObjectMeta;

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
}
