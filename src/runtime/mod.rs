//! What every controller runs on: the watches and their caches, the reconcile skeleton, failure
//! categories, per-object memory, pacing, re-checks, sharding, children, Events, timing. Nothing
//! here knows a kind's pipeline: the controllers (`crate::controllers`) build on it.

pub mod caches;
pub mod children;
pub mod error;
pub mod events;
pub mod listed;
pub mod memory;
pub mod pace;
pub mod recheck;
pub mod refusal;
pub mod shard;
pub mod skeleton;
pub mod timing;

use crate::hash_key::HashKey;
use crate::metrics::Metrics;
use caches::Caches;
use events::{EventWriter, Note};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource};
use memory::Memory;
use shard::Shard;
use std::sync::Arc;
use std::time::Duration;

/// How long a never-synced object waits for its missing ServiceAccount before a Warning Event
/// (see `crate::identity::awaited`).
pub const SERVICE_ACCOUNT_GRACE: Duration = Duration::from_secs(120);

/// Settings that shape every controller.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch only these namespaces (none: all namespaces).
    pub namespaces: Vec<String>,
    /// Google Cloud project of objects that name none.
    pub gcp_project: Option<String>,
    /// Objects reconciled in parallel, per controller.
    pub concurrency: u16,
    /// First retry delay after a transient failure; doubles per failure up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Retry delay after a permanent failure (the safety net when no change arrives).
    pub permanent_retry: Duration,
    /// The objects this operator reconciles (`--shard`): all of them unless split.
    pub shard: Shard,
    /// How long reconciles in flight may go on after shutdown before they are abandoned.
    pub drain: Duration,
    /// How long an object that never synced waits for its missing ServiceAccount before a
    /// Warning Event.
    pub service_account_grace: Duration,
    /// URL prefixes of the Prometheus servers a canary's `analysis.prometheus` may query (none:
    /// no query is made).
    pub prometheus_allowed_url_prefixes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            gcp_project: None,
            concurrency: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            permanent_retry: Duration::from_secs(300),
            shard: Shard::ALL,
            drain: drain_within(Duration::from_secs(10)),
            service_account_grace: SERVICE_ACCOUNT_GRACE,
            prometheus_allowed_url_prefixes: Vec::new(),
        }
    }
}

/// What of a shutdown grace the reconciles in flight may use: all but its last second (at most
/// half of it), which releases the Lease and closes the metrics server.
pub fn drain_within(grace: Duration) -> Duration {
    grace.saturating_sub((grace / 2).min(Duration::from_secs(1)))
}

/// What every reconcile shares, whatever its kind.
pub struct Runtime {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub events: EventWriter,
    pub settings: Settings,
    /// The watched objects, read instead of GET.
    pub caches: Caches,
    /// The key of every content hash recorded and of the rollback record's seal.
    pub hash_key: HashKey,
    /// Per-object memory that must not live in status.
    pub memory: Memory,
}

impl Runtime {
    pub fn new(client: Client, metrics: Arc<Metrics>, settings: Settings, hash_key: HashKey) -> Self {
        let events = EventWriter::new(client.clone(), crate::api::MANAGED_BY_VALUE, std::env::var("POD_NAME").ok());
        let caches = Caches::new(&client, &settings.namespaces, settings.concurrency, settings.shard);
        Self { client, metrics, events, settings, caches, hash_key, memory: Memory::default() }
    }

    /// After one more consecutive failure of `key`: when to retry (exponential backoff, jitter).
    pub fn retry_after_failure(&self, key: &str) -> Action {
        let failures = self.memory.record_failure(key);
        Action::requeue(timing::backoff(failures, self.settings.initial_backoff, self.settings.max_backoff))
    }

    /// A Normal Event about a transition the caller saw (a new revision, a key created), once:
    /// the same `reason` and `subject` (a revision, a key id) about the same object within
    /// [`memory::UNWATCHED_RECHECK`] is that transition seen again through a cache that lags
    /// behind the operator's own writes.
    pub async fn announce<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        subject: &str,
        action: &str,
        note: String,
    ) {
        let key = format!("Event/{reason}/{}/{subject}", object_key(object));
        if self.memory.applied_recently(&key, "") {
            return;
        }
        self.memory.remember_applied(&key, String::new());
        self.publish(object, EventType::Normal, reason, action, note).await;
    }

    /// Records an Event about `object` (best effort: a lost Event never fails a reconcile).
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let note = Note { type_, reason, action, note };
        if let Err(error) = self.events.write(object.object_ref(&()), note).await {
            tracing::debug!(%error, "event not recorded");
        }
    }
}

/// The time for status fields that record a change (never a per-reconcile tick).
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// `namespace/name` of an object, the key of per-object memory.
pub fn object_key<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}
