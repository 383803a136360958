//! The reconcile skeleton every controller runs on. A controller supplies its kind's pipeline
//! (`apply`, and `cleanup` behind the finalizer) and a pure failed-status builder; the skeleton
//! owns the boring parts, the same for all three:
//!
//! - the metrics timer and the error category,
//! - the finalizer,
//! - failure reporting: `Ready=False` with the error's fixed reason and a message free of secret
//!   values, and one Warning Event per distinct failure,
//! - retries: exponential backoff with jitter for transient errors, a slow jittered retry for
//!   permanent ones,
//! - status writes only when the status differs.

use super::caches::Cache;
use super::error::{Category, FinalizerFailed, KubeFailure};
use super::recheck::{Recheck, Rechecks};
use super::timing::jittered;
use super::{Runtime, now, object_key};
use crate::api::conditions::{ConditionStatus, HasConditions, find_condition, types};
use crate::api::{FINALIZER, field_manager};
use crate::metrics::Controller as ControllerKind;
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Error as FinalizerError, Event as Finalized, finalizer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `failure` shows the world: its metric label, its condition reason, and whether it is
/// retried soon (for tests that pin a failure's outcome).
pub fn outcome(failure: &impl Failure) -> (&'static str, &'static str, bool) {
    (failure.category().metric_label(), failure.reason(), failure.is_transient())
}

/// What the skeleton needs to know of a controller's error enum: its [`Category`], from which
/// the metric label, the condition reason and the retry follow.
pub trait Failure: std::error::Error + From<KubeFailure> + Send + Sync + 'static {
    fn category(&self) -> Category;
    /// Fixed CamelCase reason of the `Ready=False` condition and the Warning Event.
    fn reason(&self) -> &'static str {
        self.category().reason()
    }
    /// Worth a quick retry (backoff); otherwise wait for a change or the slow retry. A
    /// controller may retry more than its categories say (GatewayConfig does), never less.
    fn is_transient(&self) -> bool {
        self.category().is_transient()
    }
    /// Not a failure: work in progress that must keep the finalizer (a deletion step running).
    /// The skeleton requeues after this delay and reports nothing.
    fn waiting(&self) -> Option<Duration> {
        None
    }
}

/// How the skeleton runs one kind.
pub struct Profile {
    pub controller: ControllerKind,
    /// The `action` of the controller's Events (`Sync`, `Rollout`, `Provision`).
    pub event_action: &'static str,
    /// Whether deletion may wait for [`Reconciler::cleanup`] behind the operator's finalizer
    /// (for the objects that [`Reconciler::needs_finalizer`]).
    pub finalized: bool,
    /// How long a trigger waits for more of the same object's triggers to join it (kube's
    /// debounce): a burst makes one reconcile.
    pub debounce: Duration,
}

impl Profile {
    /// A kind reconciled without a finalizer and without debounce.
    pub const fn new(controller: ControllerKind, event_action: &'static str) -> Self {
        Self { controller, event_action, finalized: false, debounce: Duration::ZERO }
    }

    /// The same, whose deletion waits for [`Reconciler::cleanup`] behind the finalizer.
    pub const fn finalized(self) -> Self {
        Self { finalized: true, ..self }
    }

    /// The same, gathering a burst of triggers of one object within `debounce` into one reconcile.
    pub const fn debounced(self, debounce: Duration) -> Self {
        Self { debounce, ..self }
    }

    /// The field manager of the controller's writes, `secure-api-operator/<controller>`: it is
    /// persisted in managedFields, so it follows the controller's one name and never changes.
    pub fn field_manager(&self) -> String {
        field_manager(self.controller.as_str())
    }
}

/// A kind one controller reconciles.
pub trait Reconciler:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + HasStatus<Status: Clone + PartialEq + Default + Serialize + HasConditions + Send + Sync>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    type Error: Failure;
    /// What the reconciles of this kind read: the [`Runtime`] and whatever the kind adds.
    type Context: Deref<Target = Runtime> + Send + Sync + 'static;

    const PROFILE: Profile;

    /// The cache of this kind (its relist is paced by completed reconciles).
    fn cache(runtime: &Runtime) -> &Cache<Self>;

    /// The status after `error` (pure): `Ready=False` with `reason` and `message`, and whatever
    /// else that failure changes; everything last synced is kept.
    fn failed(&self, error: &Self::Error, message: &str, now: Time) -> Self::Status;

    /// Brings the world in line with the object.
    fn apply(&self, ctx: &Self::Context) -> impl Future<Output = Result<Recheck, Self::Error>> + Send;

    /// When `error` is something this object still waits for rather than a failure (a
    /// ServiceAccount about to be created, `crate::identity::awaited`): the status message that
    /// says so. It is reported in status, without a Warning Event.
    fn awaited(&self, _error: &Self::Error, _grace: Duration, _now: &Time) -> Option<String> {
        None
    }

    /// After a failed reconcile: what the kind remembered of `key` may not hold any more (the
    /// status says what does).
    fn forget_after_failure(_ctx: &Self::Context, _key: &str) {}

    /// Whether this object's deletion needs [`Self::cleanup`], i.e. the finalizer (only asked
    /// when `PROFILE.finalized`). An object that carries the finalizer is cleaned up either way.
    fn needs_finalizer(&self) -> bool {
        true
    }

    /// Lets go of what the object created, once it is being deleted (only behind the finalizer).
    fn cleanup(&self, _ctx: &Self::Context) -> impl Future<Output = Result<Recheck, Self::Error>> + Send {
        std::future::ready(Ok(Recheck::OnChange))
    }
}

/// A controller of the objects of `K` in its cache that this operator's shard owns.
pub fn controller_of<K: Reconciler>(runtime: &Runtime) -> Controller<K> {
    let shard = runtime.settings.shard;
    let cache = K::cache(runtime);
    let owned = cache.subscribe().filter(move |object| std::future::ready(shard.owns(object.as_ref())));
    Controller::for_shared_stream(owned, cache.store())
}

/// Runs `controller` with the shared reconcile and error policy until `shutdown`.
pub async fn run<K: Reconciler>(controller: Controller<K>, ctx: Arc<K::Context>, shutdown: CancellationToken) {
    let rechecks = Arc::new(Rechecks::default());
    let stream = controller
        .reconcile_on(rechecks.clone().due())
        .with_config(Config::default().concurrency(ctx.settings.concurrency).debounce(K::PROFILE.debounce))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(move |object, ctx| reconcile::<K>(object, ctx, rechecks.clone()), error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(controller = K::PROFILE.controller.as_str(), %error, "controller event");
            }
        });
    stream.await;
}

/// One reconcile: timed, behind the finalizer when the kind has one, failures reported. Its
/// re-check goes to `rechecks`, not to kube's scheduler (see [`super::recheck`]); a transient
/// failure is retried with kube's backoff instead.
pub async fn reconcile<K: Reconciler>(
    object: Arc<K>,
    ctx: Arc<K::Context>,
    rechecks: Arc<Rechecks>,
) -> Result<Action, K::Error> {
    let key = object_key(object.as_ref());
    let result = reconcile_owned(object, &ctx).await;
    K::cache(&ctx).reconciled(&key);
    rechecks.set(&key, *result.as_ref().unwrap_or(&Recheck::OnChange));
    result.map(|_| Action::await_change())
}

async fn reconcile_owned<K: Reconciler>(object: Arc<K>, ctx: &K::Context) -> Result<Recheck, K::Error> {
    if !ctx.settings.shard.owns(object.as_ref()) {
        // Another shard's object, asked for by a watch of some other kind: not ours to touch.
        return Ok(Recheck::OnChange);
    }
    let timer = ctx.metrics.reconcile(K::PROFILE.controller);
    let finalized = object.finalizers().iter().any(|f| f == FINALIZER);
    let result = if K::PROFILE.finalized && (finalized || object.needs_finalizer()) {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
        // The helper speaks kube's Action, which does not tell its requeue: the step's own
        // answer is kept aside (the helper's own steps, adding or removing the finalizer, wait
        // for the change they make).
        let recheck = std::sync::Mutex::new(Recheck::OnChange);
        match with_finalizer(ctx, &api, object.clone()).await {
            Ok(object) => finalizer(&api, FINALIZER, object, |event| async {
                let next = match event {
                    Finalized::Apply(object) => object.apply(ctx).await?,
                    Finalized::Cleanup(object) => object.cleanup(ctx).await?,
                };
                *recheck.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                Ok(Action::await_change())
            })
            .await
            .map_err(flatten_finalizer)
            .map(|_| recheck.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)),
            Err(error) => Err(KubeFailure::from(error).into()),
        }
    } else {
        object.apply(ctx).await
    };
    let error = match result {
        Ok(action) => {
            ctx.memory.clear_failures(&object_key(object.as_ref()));
            return Ok(action);
        }
        Err(error) => error,
    };
    // What the failed reconcile remembered may not hold any more: the status says what does.
    K::forget_after_failure(ctx, &object_key(object.as_ref()));
    if let Some(after) = error.waiting() {
        return Ok(Recheck::After(after));
    }
    timer.finish(Some(error.category().metric_label()));
    report_failure(object.as_ref(), ctx, &error).await;
    if error.is_transient() { Err(error) } else { Ok(Recheck::After(jittered(ctx.settings.permanent_retry, 0.1))) }
}

/// The object with the operator's finalizer, added first when it lacks it (and is not being
/// deleted). The finalizer helper would add it and wait for the change to come back before the
/// first sync; adding it here lets that sync run in the same reconcile. The merge patch names the
/// resourceVersion it was made from, so a concurrent change fails it (409) instead of being lost.
/// Until the cache shows the finalizer, this process remembers having added it (by uid: a new
/// object of the same name is another object), so a reconcile on the older copy does not patch
/// again and conflict.
async fn with_finalizer<K: Reconciler>(ctx: &Runtime, api: &Api<K>, object: Arc<K>) -> Result<Arc<K>, kube::Error> {
    let uid = object.uid().unwrap_or_default();
    if object.meta().deletion_timestamp.is_some() {
        ctx.memory.forget_finalized(&uid);
        return Ok(object);
    }
    if object.finalizers().iter().any(|f| f == FINALIZER) {
        // The cache shows it: memory is no longer needed (and a finalizer someone removes later
        // is added again).
        ctx.memory.forget_finalized(&uid);
        return Ok(object);
    }
    if ctx.memory.finalized(&uid) {
        let mut known = object.as_ref().clone();
        known.finalizers_mut().push(FINALIZER.to_owned());
        return Ok(Arc::new(known));
    }
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    let patch = serde_json::json!({
        "metadata": { "finalizers": finalizers, "resourceVersion": object.resource_version() }
    });
    let added = api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    ctx.memory.remember_finalized(&uid);
    Ok(Arc::new(added))
}

/// After a transient failure: exponential backoff with jitter, per object.
pub fn error_policy<K: Reconciler>(object: Arc<K>, error: &K::Error, ctx: Arc<K::Context>) -> Action {
    tracing::debug!(object = %object_key(object.as_ref()), %error, "retrying");
    ctx.retry_after_failure(&object_key(object.as_ref()))
}

/// `Ready=False` with the error's reason and message, and a Warning Event when that changes —
/// unless the object still awaits what is missing: then the message says so, and no Warning.
async fn report_failure<K: Reconciler>(object: &K, ctx: &Runtime, error: &K::Error) {
    let now = now();
    let grace = ctx.settings.service_account_grace;
    let awaited = object.awaited(error, grace, &now);
    let message = awaited.clone().unwrap_or_else(|| error.to_string());
    let current = object.status().cloned().unwrap_or_default();
    let next = object.failed(error, &message, now);
    if awaited.is_some() {
        let key = object_key(object);
        tracing::debug!(controller = K::PROFILE.controller.as_str(), object = %key, reason = error.reason(), %message, "waiting");
    } else {
        warn_once(ctx, object, error.reason(), &message).await;
    }
    if let Err(write_error) = write_status(ctx, object, &current, &next).await {
        tracing::debug!(object = %object_key(object), error = %write_error, "status not written");
    }
}

/// A Warning Event (and a log line) for a failure, unless this very failure — same reason, same
/// message — was the last one reported for the object. Controllers call it too for failures
/// they report through status without an error (a SecretRef not Ready, a stalled rollout).
pub async fn warn_once<K: Reconciler>(ctx: &Runtime, object: &K, reason: &str, message: &str) {
    let key = object_key(object);
    let failure = (reason.to_owned(), message.to_owned());
    // Memory first: the object in hand may predate the status the last report wrote.
    let last = ctx.memory.last_warning(&key).or_else(|| {
        let ready = find_condition(object.status()?.conditions(), types::READY)?;
        (ready.status == ConditionStatus::False).then(|| (ready.reason.clone(), ready.message.clone()))
    });
    if last.as_ref() == Some(&failure) {
        return;
    }
    tracing::warn!(controller = K::PROFILE.controller.as_str(), object = %key, reason, error = %message, "sync failed");
    ctx.publish(object, EventType::Warning, reason, K::PROFILE.event_action, message.to_owned()).await;
    ctx.memory.remember_warning(&key, failure);
}

/// Writes `next` when it differs from `current` (a steady state makes no writes). A `Ready=True`
/// status closes the failure episode: the next failure is reported again.
pub async fn write_status<K: Reconciler>(
    ctx: &Runtime,
    object: &K,
    current: &K::Status,
    next: &K::Status,
) -> Result<(), kube::Error> {
    if find_condition(next.conditions(), types::READY).is_some_and(|c| c.is_true(types::READY)) {
        ctx.memory.forget_warning(&object_key(object));
    }
    if current == next {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = status_patch(current, next);
    api.patch_status(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// A merge patch from status `current` to `next` holding only the top-level fields that
/// changed; a field `next` no longer has is set to null (a merge patch leaves out-of-patch fields
/// alone, so a cleared field must be named). Unchanged fields stay out of the patch, so a status
/// written from an object older than the last write cannot undo what that write changed.
pub fn status_patch<T: Serialize>(current: &T, next: &T) -> serde_json::Value {
    let as_map = |value: &T| match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (current, next) = (as_map(current), as_map(next));
    let mut changed = serde_json::Map::new();
    for (key, value) in &next {
        if current.get(key) != Some(value) {
            changed.insert(key.clone(), value.clone());
        }
    }
    for key in current.keys().filter(|key| !next.contains_key(*key)) {
        changed.insert(key.clone(), serde_json::Value::Null);
    }
    serde_json::json!({ "status": changed })
}

/// The reconcile error inside a finalizer error, or the finalizer's own failure.
fn flatten_finalizer<E: Failure>(error: FinalizerError<E>) -> E {
    match error {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        FinalizerError::AddFinalizer(e) | FinalizerError::RemoveFinalizer(e) => KubeFailure::from(e).into(),
        other => KubeFailure::from(FinalizerFailed(other.to_string())).into(),
    }
}

#[cfg(test)]
mod tests;
