//! The controllers, one folder per kind, and what they share: the context (clients, metrics,
//! event recorder, settings) and per-object memory (failure counts for backoff, next checks).

pub mod caches;
pub mod children;
pub mod events;
pub mod gateway_config;
pub mod identity;
pub mod listed;
pub mod notifications;
pub mod pace;
pub mod recheck;
pub mod refusal;
pub mod secret_ref;
pub mod secure_api_service;
pub mod shard;
pub mod skeleton;
pub mod timing;

use crate::gcp::{ApiGateway, ApiKeys};
use crate::hash_key::HashKey;
use crate::metrics::Metrics;
use crate::provider::SecretProvider;
use crate::secret_data::SecretData;
use caches::Caches;
use events::{EventWriter, Note};
use identity::Identities;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Client, Resource};
use notifications::Notifications;
use secret_ref::resolve::LastSync;
use secret_ref::sharing::SharedReads;
use shard::Shard;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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
    /// Warning Event (see [`identity::awaited`]).
    pub service_account_grace: Duration,
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
            service_account_grace: identity::awaited::DEFAULT_GRACE,
        }
    }
}

/// What of a shutdown grace the reconciles in flight may use: all but its last second (at most
/// half of it), which releases the Lease and closes the metrics server.
pub fn drain_within(grace: Duration) -> Duration {
    grace.saturating_sub((grace / 2).min(Duration::from_secs(1)))
}

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub events: EventWriter,
    pub settings: Settings,
    pub secrets: Arc<dyn SecretProvider>,
    /// API Gateway, when configured (GatewayConfigs wait with a clear condition otherwise).
    pub api_gateway: Option<ApiGateway>,
    /// API Keys and Service Usage, for GatewayConfigs' `spec.apiKeys` (configured with API Gateway).
    pub api_keys: Option<ApiKeys>,
    /// Whose Google identity each object's calls use, and the tokens for it.
    pub identities: Identities,
    /// Secret Manager's Pub/Sub notifications, when subscriptions are configured.
    pub notifications: Option<Notifications>,
    /// The watched objects, read instead of GET.
    pub caches: Caches,
    /// Payloads held for SecretRefs about to read the same version.
    pub shared_reads: SharedReads,
    /// What notifications asked of each SecretRef, and what reads covered.
    pub hints: notifications::hints::Hints,
    /// The key of every content hash recorded and of the rollback record's seal.
    pub hash_key: HashKey,
    memory: Mutex<Memory>,
}

/// The Google Cloud services the controllers call.
pub struct GoogleCloud {
    pub secrets: Arc<dyn SecretProvider>,
    /// API Gateway with API Keys, when configured.
    pub gateway: Option<(ApiGateway, ApiKeys)>,
    /// Secret Manager's Pub/Sub notifications, when subscriptions are configured.
    pub notifications: Option<Notifications>,
}

/// Per-object memory that must not live in status (no per-reconcile timestamps there).
#[derive(Default)]
struct Memory {
    failures: HashMap<String, u32>,
    next_checks: HashMap<String, Instant>,
    /// The (reason, message) of the last Warning Event published per object.
    warnings: HashMap<String, (String, String)>,
    /// What each SecretRef last synced, until its own status write shows in the cache.
    synced: HashMap<String, LastSync>,
    /// The (target, content hash) each SecretRef's sync in progress just wrote, until the sync is
    /// remembered or fails: the Secret's watch event may come back first.
    written: HashMap<String, (String, String)>,
    /// Objects (by uid) this process added the finalizer to.
    finalized: HashSet<String>,
    /// Children that are not watched, by `Kind/namespace/name`: the hash last applied or found,
    /// and when; and the Normal Events announced lately, by `Event/reason/namespace/name/subject`.
    applied: HashMap<String, (String, Instant)>,
    /// When `applied` last lost what is too old to trust.
    applied_pruned: Option<Instant>,
}

/// How long a child that is not watched (ServiceAccount, HorizontalPodAutoscaler,
/// PodDisruptionBudget) is trusted to be as this process applied or found it: one deleted behind
/// the operator's back is back within this time.
pub const UNWATCHED_RECHECK: Duration = Duration::from_secs(300);

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        google: GoogleCloud,
        identities: Identities,
        hash_key: HashKey,
    ) -> Arc<Self> {
        let GoogleCloud { secrets, gateway: gateway_clients, notifications } = google;
        let events = EventWriter::new(client.clone(), crate::api::MANAGED_BY_VALUE, std::env::var("POD_NAME").ok());
        let caches = Caches::new(&client, &settings.namespaces, settings.concurrency, settings.shard);
        Arc::new(Self {
            client,
            metrics,
            events,
            settings,
            secrets,
            api_gateway: gateway_clients.as_ref().map(|(gateway, _)| gateway.clone()),
            api_keys: gateway_clients.map(|(_, keys)| keys),
            identities,
            notifications,
            caches,
            shared_reads: SharedReads::default(),
            hints: notifications::hints::Hints::default(),
            hash_key,
            memory: Mutex::default(),
        })
    }

    /// Waits until every watch the reconciles read has listed once: the caches, and the
    /// namespaces that may use the operator's identity.
    pub async fn listed(&self) {
        tokio::join!(self.caches.listed(), self.identities.operator_namespaces.listed());
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more consecutive failure of `key` and returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut memory = self.memory();
        let count = memory.failures.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }

    pub fn clear_failures(&self, key: &str) {
        self.memory().failures.remove(key);
    }

    /// When `key` is next due for a check, if one is scheduled.
    pub fn next_check(&self, key: &str) -> Option<Instant> {
        self.memory().next_checks.get(key).copied()
    }

    pub fn schedule_check(&self, key: &str, at: Instant) {
        self.memory().next_checks.insert(key.to_owned(), at);
    }

    pub fn forget(&self, key: &str) {
        self.hints.forget(key);
        let mut memory = self.memory();
        memory.failures.remove(key);
        memory.next_checks.remove(key);
        memory.warnings.remove(key);
        memory.synced.remove(key);
        memory.written.remove(key);
    }

    /// What `key` last synced, as far as this process knows.
    pub fn last_sync(&self, key: &str) -> Option<LastSync> {
        self.memory().synced.get(key).cloned()
    }

    pub fn remember_sync(&self, key: &str, synced: LastSync) {
        let mut memory = self.memory();
        memory.written.remove(key);
        memory.synced.insert(key.to_owned(), synced);
    }

    /// The sync of `key` in progress wrote `content_hash` to Secret `target`.
    pub fn remember_written(&self, key: &str, target: &str, content_hash: &str) {
        self.memory().written.insert(key.to_owned(), (target.to_owned(), content_hash.to_owned()));
    }

    /// Whether this process wrote `data` to Secret `target` for `key` in its last sync,
    /// remembered or still in progress.
    pub fn wrote(&self, key: &str, target: &str, data: &SecretData) -> bool {
        let memory = self.memory();
        let last = memory.synced.get(key).map(|l| (l.target.as_str(), l.content_hash.as_str()));
        let written = memory.written.get(key).map(|(t, h)| (t.as_str(), h.as_str()));
        [last, written].into_iter().flatten().any(|(wrote, hash)| wrote == target && self.hash_key.matches(data, hash))
    }

    /// Whether this process added the finalizer to the object with `uid`.
    pub fn finalized(&self, uid: &str) -> bool {
        self.memory().finalized.contains(uid)
    }

    pub fn remember_finalized(&self, uid: &str) {
        self.memory().finalized.insert(uid.to_owned());
    }

    pub fn forget_finalized(&self, uid: &str) {
        self.memory().finalized.remove(uid);
    }

    /// Whether this process applied or found `hash` at `key` less than [`UNWATCHED_RECHECK`] ago.
    pub fn applied_recently(&self, key: &str, hash: &str) -> bool {
        self.memory().applied.get(key).is_some_and(|(applied, at)| applied == hash && at.elapsed() < UNWATCHED_RECHECK)
    }

    /// Remembers `hash` at `key`. Now and then what is too old to trust goes, so children of
    /// deleted services are not remembered for ever.
    pub fn remember_applied(&self, key: &str, hash: String) {
        let mut memory = self.memory();
        if memory.applied_pruned.is_none_or(|at| at.elapsed() >= UNWATCHED_RECHECK) {
            memory.applied.retain(|_, (_, at)| at.elapsed() < UNWATCHED_RECHECK);
            memory.applied_pruned = Some(Instant::now());
        }
        memory.applied.insert(key.to_owned(), (hash, Instant::now()));
    }

    /// After a failure: the status, not memory, says what holds.
    pub fn forget_sync(&self, key: &str) {
        let mut memory = self.memory();
        memory.synced.remove(key);
        memory.written.remove(key);
    }

    /// Whether a notification asked the reconcile of `key` starting now to read the store (and
    /// takes the request; see [`notifications::hints`]).
    pub fn take_forced_read(&self, key: &str) -> bool {
        self.hints.take(key, Instant::now())
    }

    /// The (reason, message) of the last Warning Event published about `key`.
    pub fn last_warning(&self, key: &str) -> Option<(String, String)> {
        self.memory().warnings.get(key).cloned()
    }

    pub fn remember_warning(&self, key: &str, warning: (String, String)) {
        self.memory().warnings.insert(key.to_owned(), warning);
    }

    pub fn forget_warning(&self, key: &str) {
        self.memory().warnings.remove(key);
    }

    /// After one more consecutive failure of `key`: when to retry (exponential backoff, jitter).
    pub fn retry_after_failure(&self, key: &str) -> Action {
        let failures = self.record_failure(key);
        Action::requeue(timing::backoff(failures, self.settings.initial_backoff, self.settings.max_backoff))
    }

    /// A Normal Event about a transition the caller saw (a new revision, a key created), once:
    /// the same `reason` and `subject` (a revision, a key id) about the same object within
    /// [`UNWATCHED_RECHECK`] is that transition seen again through a cache that lags behind the
    /// operator's own writes.
    pub async fn announce<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        subject: &str,
        action: &str,
        note: String,
    ) {
        let key = format!("Event/{reason}/{}/{subject}", object_key(object));
        if self.applied_recently(&key, "") {
            return;
        }
        self.remember_applied(&key, String::new());
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

/// Runs the three controllers and the watches they share until `shutdown` fires and they have
/// drained, or [`Settings::drain`] has passed since (then the reconciles still in flight are
/// dropped: each is safe to redo, and the next start or leader does).
///
/// The controllers start only once every watch the reconciles read has listed
/// ([`Context::listed`]); no reconcile ever waits for a list.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    // `secureapi_objects` counts what the caches hold, from the moment they fill.
    ctx.metrics.count_objects(crate::metrics::objects::Watched {
        secret_refs: ctx.caches.secret_refs.store(),
        secure_api_services: ctx.caches.secure_api_services.store(),
        gateway_configs: ctx.caches.gateway_configs.store(),
        shard: ctx.settings.shard,
    });
    // Every controller subscribes to the caches before the watches start.
    let secret_refs = secret_ref::run(ctx.clone(), shutdown.clone());
    let services = secure_api_service::run(ctx.clone(), shutdown.clone());
    let gateways = gateway_config::run(ctx.clone(), shutdown.clone());
    let controllers = async {
        tokio::select! {
            // Stopped before the lists were in: nothing was reconciled, nothing to drain.
            () = shutdown.cancelled() => return,
            () = ctx.listed() => tracing::info!("every watch has listed; the controllers start"),
        }
        tokio::join!(secret_refs, services, gateways);
    };
    let abandoned = async {
        shutdown.cancelled().await;
        tokio::time::sleep(ctx.settings.drain).await;
    };
    let bounded = async {
        tokio::select! {
            () = controllers => {}
            () = abandoned => tracing::warn!(
                drain_seconds = ctx.settings.drain.as_secs_f64(),
                "reconciles still in flight after the shutdown grace are abandoned; they run again at the next start"
            ),
        }
    };
    // The ServiceAccount watch drops cached tokens whose ServiceAccount changed (opt-in withdrawn).
    let accounts = ctx.identities.tokens.watch_accounts(&ctx.settings.namespaces, shutdown.clone());
    tokio::join!(bounded, ctx.caches.run(shutdown.clone()), accounts);
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
