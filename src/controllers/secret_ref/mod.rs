//! The SecretRef controller: Secret Manager → Kubernetes Secret.
//!
//! validate the spec → resolve (the target Secret; the store only when it must be read: pinned
//! versions again only when the spec or the target changed, floating ones every refresh interval)
//! → build (verify CRC32C, map the payload, the desired Secret) → apply (the Secret only if its
//! content changed, the rollout targets, letting go of the previous target) → status and Events.
//! Any failure leaves the last good Secret untouched. Versions Secret Manager refuses, as its
//! answers to checks notifications asked for ([`check`]) and to the read itself say, are
//! recorded in `status.unusableVersions` ([`unusable`]) before the sync goes on.

pub mod apply;
pub mod check;
pub mod desired;
pub mod error;
pub mod mapping;
pub mod memory;
pub mod release;
pub mod resolve;
pub mod rollout;
pub mod sharing;
pub mod status;
pub mod unusable;

pub use memory::Memory;

use super::Context;
use crate::api::conditions::{find_condition, types};
use crate::api::secret_ref::CreationPolicy;
use crate::api::{DeletionPolicy, SecretRef, SecretRefStatus, owner_label_key};
use crate::identity::awaited;
use crate::metrics::Controller as ControllerKind;
use crate::notifications;
use crate::provider::FetchedVersion;
use crate::runtime::caches::Cache;
use crate::runtime::recheck::Recheck;
use crate::runtime::skeleton::{self, Failure, Profile, Reconciler, write_status};
use crate::runtime::timing::jittered;
use crate::runtime::{Runtime, now, object_key};
use crate::secret_data::live_data;
use desired::{secretref_label, target_name};
use error::Error;
use futures::StreamExt;
use futures::future::Either;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use release::Cause;
use resolve::{Known, LastSync, Plan};
use sharing::ReadKey;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use unusable::Answer;

/// SecretRefs a notification may queue before the loop waits for the controller.
const NOTIFICATION_QUEUE: usize = 1024;

/// The controller, and the notification loop when subscriptions are configured, until `shutdown`
/// resolves. Subscribes to the caches at once: call it before they run.
pub fn run(ctx: Arc<Context>, shutdown: CancellationToken) -> impl Future<Output = ()> {
    let controller = skeleton::controller_of::<SecretRef>(&ctx);
    let (queue, queued) = tokio::sync::mpsc::channel(NOTIFICATION_QUEUE);
    let notifications = match &ctx.notifications {
        Some(notifications) => Either::Left(notifications::run(
            ctx.runtime.clone(),
            notifications.clone(),
            controller.store(),
            queue,
            shutdown.clone(),
        )),
        None => Either::Right(std::future::ready(())),
    };
    let queued = futures::stream::unfold(queued, |mut queued| async { queued.recv().await.map(|r| (r, queued)) });
    let echoes = ctx.clone();
    // Only Secrets we labelled — never all Secrets of the cluster — so edits are repaired.
    let controller =
        controller.reconcile_on(queued).watches_shared_stream(ctx.caches.secrets.subscribe(), move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            writer_of(&secret)
                .filter(|name| !is_own_write(&echoes, &namespace, name, &secret))
                .map(|name| ObjectRef::<SecretRef>::new(&name).within(&namespace))
        });
    let deleted = forget_deleted(ctx.clone(), ctx.caches.secret_refs.subscribe(), shutdown.clone());
    async move {
        tokio::join!(skeleton::run(controller, ctx, shutdown), notifications, deleted);
    }
}

/// A SecretRef that is gone (not in the cache any more, or there as another object of the same
/// name) takes what this process remembered of it along. Deletions without the finalizer run no
/// cleanup to say so.
async fn forget_deleted(
    ctx: Arc<Context>,
    seen: impl futures::Stream<Item = Arc<SecretRef>>,
    shutdown: CancellationToken,
) {
    let mut seen = std::pin::pin!(seen.take_until(shutdown.cancelled_owned()));
    while let Some(secret_ref) = seen.next().await {
        let current = ctx.caches.secret_refs.get(&secret_ref.namespace().unwrap_or_default(), &secret_ref.name_any());
        if current.is_none_or(|current| current.uid() != secret_ref.uid()) {
            forget(&ctx, &object_key(secret_ref.as_ref()));
            ctx.memory.forget_finalized(&secret_ref.uid().unwrap_or_default());
        }
    }
}

/// The SecretRef whose target `secret` is, by our label. A service's snapshot names the SecretRef
/// it copies, but is no SecretRef's target: its changes are the service's business.
fn writer_of(secret: &Secret) -> Option<String> {
    let labels = secret.labels();
    let snapshot = labels.contains_key(&owner_label_key("SecureApiService"));
    labels.get(&secretref_label()).filter(|_| !snapshot).cloned()
}

/// The cached Secret is exactly what this process last wrote for `name`: its own write coming
/// back through the watch, which needs no reconcile (a deleted Secret is no longer cached).
fn is_own_write(ctx: &Context, namespace: &str, name: &str, secret: &Secret) -> bool {
    let target = secret.name_any();
    ctx.caches.secrets.contains(namespace, &target)
        && ctx.secret_refs.wrote(&format!("{namespace}/{name}"), &target, &live_data(secret), &ctx.hash_key)
}

/// Everything this process remembered of the SecretRef `key`.
fn forget(ctx: &Context, key: &str) {
    ctx.memory.forget(key);
    ctx.secret_refs.forget_sync(key);
    if let Some(notifications) = &ctx.notifications {
        notifications.hints.forget(key);
    }
}

/// Whether a notification asked the reconcile of `key` starting now to read the store (and
/// takes the request; see [`notifications::hints`]).
fn take_forced_read(ctx: &Context, key: &str) -> bool {
    ctx.notifications.as_ref().is_some_and(|notifications| notifications.hints.take(key, Instant::now()))
}

/// The versions notifications asked the reconcile of `key` starting now to check, newest first
/// (taken; see [`notifications::hints`]).
fn take_checks(ctx: &Context, key: &str) -> Vec<u64> {
    let notifications = ctx.notifications.as_ref();
    notifications.map(|notifications| notifications.hints.take_checks(key, Instant::now())).unwrap_or_default()
}

impl Reconciler for SecretRef {
    type Error = Error;
    type Context = Context;
    const PROFILE: Profile = Profile::new(ControllerKind::SecretRef, "Sync").finalized();

    fn cache(runtime: &Runtime) -> &Cache<Self> {
        &runtime.caches.secret_refs
    }

    /// Owned Secrets that deletion removes go with the SecretRef through their owner reference,
    /// as a service's children do; `Retain`, and `Delete` of an orphan Secret, need the cleanup.
    fn needs_finalizer(&self) -> bool {
        let target = &self.spec.target;
        !(target.deletion_policy == DeletionPolicy::Delete && target.creation_policy == CreationPolicy::Owner)
    }

    fn failed(&self, error: &Error, message: &str, now: Time) -> SecretRefStatus {
        status::failed(self, error.reason(), message, now)
    }

    /// A ServiceAccount missing at the first sync (its SecureApiService creates it any moment).
    fn awaited(&self, error: &Error, grace: Duration, now: &Time) -> Option<String> {
        let (conditions, synced) =
            self.status.as_ref().map_or((&[][..], false), |s| (&s.conditions[..], s.synced_version.is_some()));
        awaited::awaited_message(error, error.reason(), conditions, synced, grace, now)
    }

    fn forget_after_failure(ctx: &Context, key: &str) {
        ctx.secret_refs.forget_sync(key);
    }

    async fn apply(&self, ctx: &Context) -> Result<Recheck, Error> {
        // --- validate (pure)
        let plan = resolve::plan(self)?;
        let key = object_key(self);
        let namespace = self.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        // --- resolve: the target Secret, and the store only when it must be read
        let known = Known::settled(ctx, self, &plan, &key);
        let live = resolve::target(ctx, &secrets, self, &plan, &known).await?;
        let forced = take_forced_read(ctx, &key);
        let next_check = ctx.memory.next_check(&key);
        let reading = resolve::must_read(self, &plan, &known, live.as_ref(), next_check, forced, &ctx.hash_key);
        // --- check the versions notifications named, then read: Secret Manager's answers
        let wanted = check::wanted(take_checks(ctx, &key), self, &plan, reading);
        let mut answers = check::versions(ctx, self, &wanted.versions).await;
        let read = match reading {
            true => Some(read(ctx, self, forced || wanted.fresh_read || status::refresh_requested(self)).await),
            false => None,
        };
        answers.extend(read.as_ref().and_then(|read| answer_of(&self.spec.version, read)));
        // Recorded before anything else can fail: a failed sync must not lose what was learned.
        let current = self.status.clone().unwrap_or_default();
        let checked = status::checked(self, &answers);
        write_status(ctx, self, &current, &checked).await?;
        let Some(read) = read else { return Ok(next_recheck(ctx, &key, &plan)) };
        let fetched = read?;
        ctx.metrics.rotation_fetched(&key, self, &fetched.version);
        // --- build (pure)
        let built = desired::build(self, &fetched, &ctx.hash_key)?;
        // --- apply: only what changed; the previous target goes once the new one holds the data
        apply::write_target(&secrets, self, live.as_ref(), &built.secret).await?;
        ctx.secret_refs.remember_written(&key, &plan.target, &built.hash);
        let missing = apply::roll_targets(ctx, self, &fetched.version).await?;
        if let Some(previous) = release::previous_target(self, &plan.target) {
            apply::retire_previous(ctx, &secrets, self, &previous, &plan.target).await?;
        }
        if !plan.pinned {
            ctx.memory.schedule_check(&key, Instant::now() + jittered(plan.refresh, 0.1));
        }
        // --- status
        let synced = status::Synced { version: &fetched.version, content_hash: &built.hash, target: &plan.target };
        let mut next = status::synced(self, &synced, &missing, now());
        next.unusable_versions.clone_from(&checked.unusable_versions);
        apply::announce(ctx, self, &checked, &next, &synced, &missing).await;
        write_status(ctx, self, &checked, &next).await?;
        ctx.secret_refs.remember_sync(&key, last_sync(self, &plan, &built.hash, &next));
        Ok(next_recheck(ctx, &key, &plan))
    }

    /// On deletion: `Delete` removes the target Secret; `Retain` keeps it and drops our owner
    /// reference so garbage collection keeps it too. The previous target of a target change that
    /// never completed is still ours, and gets the same treatment.
    async fn cleanup(&self, ctx: &Context) -> Result<Recheck, Error> {
        let target = target_name(self);
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &self.namespace().unwrap_or_default());
        forget(ctx, &object_key(self));
        let previous = release::previous_target(self, &target);
        for name in std::iter::once(target).chain(previous) {
            apply::let_go(&secrets, self, &name, Cause::Deleted).await?;
        }
        Ok(Recheck::OnChange)
    }
}

/// What the SecretRef's own read of `version` said of the version it reached (see
/// [`Answer::of_read`]).
fn answer_of(version: &str, read: &Result<FetchedVersion, Error>) -> Option<Answer> {
    match read {
        Ok(fetched) => Answer::of_read(version, Ok(&fetched.version)),
        Err(Error::Provider(error)) => Answer::of_read(version, Err(error)),
        Err(_) => None,
    }
}

/// Reads the version from the store as the SecretRef's identity, or takes the payload a read of
/// the same version just fetched for it (never when a fresh read was asked for: `fresh`).
async fn read(ctx: &Context, secret_ref: &SecretRef, fresh: bool) -> Result<FetchedVersion, Error> {
    let spec = &secret_ref.spec;
    let namespace = secret_ref.namespace().unwrap_or_default();
    let caller = ctx
        .identities
        .caller(&<SecretRef as kube::Resource>::kind(&()), &namespace, spec.service_account_name.as_deref())
        .await?;
    let default_project = ctx.settings.gcp_project.as_deref();
    let key = ReadKey::of(secret_ref, default_project);
    if !fresh && let Some(held) = ctx.secret_refs.shared_reads.take(&key) {
        return Ok(held);
    }
    // Whatever this read finds (a new version, or none any more) replaces what was held.
    ctx.secret_refs.shared_reads.forget(&key);
    let fetched = ctx.secrets.fetch(&spec.secret, spec.project_id.as_deref(), &spec.version, &caller).await?;
    let store = ctx.caches.secret_refs.store();
    ctx.secret_refs.shared_reads.hold_for_peers(key, &fetched, &store, secret_ref, default_project);
    Ok(fetched)
}

/// What a sync that wrote `next` leaves known.
fn last_sync(secret_ref: &SecretRef, plan: &Plan, content_hash: &str, next: &SecretRefStatus) -> LastSync {
    LastSync {
        generation: secret_ref.metadata.generation,
        target: plan.target.clone(),
        content_hash: content_hash.to_owned(),
        observed_refresh: next.observed_refresh.clone(),
        ready: find_condition(&next.conditions, types::READY).is_some_and(|c| c.is_true(types::READY)),
    }
}

/// Pinned versions wait for a change; floating ones come back when their next check is due.
fn next_recheck(ctx: &Context, key: &str, plan: &Plan) -> Recheck {
    if plan.pinned {
        return Recheck::OnChange;
    }
    let wait = ctx.memory.next_check(key).map_or(plan.refresh, |at| at.saturating_duration_since(Instant::now()));
    Recheck::After(wait.max(Duration::from_millis(100)))
}

#[cfg(test)]
mod tests {
    use super::writer_of;
    use crate::api::owner_label_key;
    use crate::workload::snapshot::secretref_label;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;

    fn labelled(labels: &[(String, &str)]) -> Secret {
        let labels = labels.iter().map(|(k, v)| (k.clone(), (*v).to_owned())).collect();
        Secret { metadata: ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }, ..Secret::default() }
    }

    #[test]
    fn a_target_triggers_its_secret_ref_and_a_snapshot_does_not() {
        assert_eq!(writer_of(&labelled(&[(secretref_label(), "db")])).as_deref(), Some("db"));
        let snapshot = labelled(&[(secretref_label(), "db"), (owner_label_key("SecureApiService"), "api")]);
        assert_eq!(writer_of(&snapshot), None);
        assert_eq!(writer_of(&labelled(&[])), None);
    }
}
