//! The SecretRef controller: Secret Manager → Kubernetes Secret.
//!
//! resolve (spec, target Secret) → decide whether the store must be read (pinned versions are read
//! again only when the spec or the target changed; floating ones every refresh interval) → access →
//! verify CRC32C → map the payload → apply the Secret only if its content changed → roll the
//! rollout targets → let go of the previous target if `target.name` changed → status and Events.
//! Any failure leaves the last good Secret untouched.

pub mod desired;
pub mod error;
pub mod mapping;
pub mod provider;
pub mod release;
pub mod rollout;
pub mod status;

use super::timing::{jittered, parse_duration};
use super::{Context, drive, now, object_key};
use crate::api::conditions::{find_condition, types};
use crate::api::{FINALIZER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, SecretRefStatus, field_manager};
use crate::metrics::Controller as ControllerKind;
use desired::{
    content_hash, desired_secret, has_our_labels, is_ours, live_data, live_matches, secretref_label, target_name,
};
use error::Error;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use release::{Cause, Disposal};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CONTROLLER: &str = "secretref";

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{}", secretref_label());
    let controller = Controller::new(ctx.scoped::<SecretRef>(), watcher::Config::default());
    let store = controller.store();
    let stream = controller
        // Only Secrets we labelled — never all Secrets of the cluster — so edits are repaired.
        .watches(ctx.scoped::<Secret>(), watcher::Config::default().labels(&selector), |secret| {
            let owner = secret.labels().get(&secretref_label()).cloned();
            owner.map(|name| {
                ObjectRef::<SecretRef>::new(&name).within(secret.namespace().as_deref().unwrap_or_default())
            })
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "secretref controller event");
            }
        });
    drive(stream, store, shutdown).await;
}

async fn reconcile(secret_ref: Arc<SecretRef>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile(ControllerKind::SecretRef);
    let namespace = secret_ref.namespace().unwrap_or_default();
    let api: Api<SecretRef> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = object_key(secret_ref.as_ref());
    let result = finalizer(&api, FINALIZER, secret_ref.clone(), |event| async {
        match event {
            Finalized::Apply(secret_ref) => sync(&secret_ref, &ctx).await,
            Finalized::Cleanup(secret_ref) => cleanup(&secret_ref, &ctx).await,
        }
    })
    .await
    .map_err(Error::from);
    match result {
        Ok(action) => {
            ctx.clear_failures(&key);
            timer.finish(None);
            Ok(action)
        }
        Err(error) => {
            timer.finish(Some(error.category()));
            report_failure(&secret_ref, &ctx, &error).await;
            if error.is_transient() {
                Err(error)
            } else {
                Ok(Action::requeue(jittered(ctx.settings.permanent_retry, 0.1)))
            }
        }
    }
}

fn error_policy(secret_ref: Arc<SecretRef>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::debug!(secretref = %object_key(secret_ref.as_ref()), %error, "retrying");
    ctx.retry_after_failure(&object_key(secret_ref.as_ref()))
}

/// The parts of the spec a sync needs, checked (pure).
struct Plan {
    target: String,
    refresh: Duration,
    /// A version number: never read again unless the spec or the target Secret changed.
    pinned: bool,
}

fn plan(secret_ref: &SecretRef) -> Result<Plan, Error> {
    let spec = &secret_ref.spec;
    let refresh = parse_duration(&spec.refresh_interval).map_err(Error::InvalidSpec)?;
    if refresh < Duration::from_secs(1) {
        return Err(Error::InvalidSpec("refreshInterval must be at least 1s".into()));
    }
    if let Some(bad) = spec.keys.iter().find(|k| !mapping::is_valid_key(&k.key)) {
        return Err(Error::InvalidSpec(format!("keys: {:?} is not a valid Secret key", bad.key)));
    }
    Ok(Plan { target: target_name(secret_ref), refresh, pinned: spec.version.chars().all(|c| c.is_ascii_digit()) })
}

async fn sync(secret_ref: &SecretRef, ctx: &Context) -> Result<Action, Error> {
    let plan = plan(secret_ref)?;
    let key = object_key(secret_ref);
    let name = secret_ref.name_any();
    let namespace = secret_ref.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let live = secrets.get_opt(&plan.target).await?;
    if let Some(live) = &live
        && !is_ours(live, secret_ref)
    {
        return Err(Error::TargetConflict(plan.target));
    }

    let current = secret_ref.status.clone().unwrap_or_default();
    let intact = live
        .as_ref()
        .is_some_and(|l| has_our_labels(l, &name) && Some(content_hash(&live_data(l))) == current.content_hash);
    let spec_changed = current.observed_generation != secret_ref.metadata.generation;
    let due = !plan.pinned && ctx.next_check(&key).is_none_or(|at| at <= Instant::now());
    let must_read = !intact || spec_changed || due || status::refresh_requested(secret_ref) || !is_ready(&current);
    if !must_read {
        return Ok(next_action(ctx, &key, &plan));
    }

    let fetched = ctx
        .secrets
        .fetch(&secret_ref.spec.secret, secret_ref.spec.project_id.as_deref(), &secret_ref.spec.version)
        .await?;
    if fetched.crc32c.is_some_and(|sum| sum != crc32c::crc32c(fetched.data.expose())) {
        return Err(Error::ChecksumMismatch { version: fetched.version });
    }
    let data = mapping::map_payload(fetched.data.expose(), secret_ref.spec.format, &secret_ref.spec.keys)
        .map_err(|source| Error::InvalidPayload { version: fetched.version.clone(), source })?;
    let hash = content_hash(&data);
    let desired = desired_secret(secret_ref, &data, &fetched.version);
    drop(data);
    if !live.as_ref().is_some_and(|l| live_matches(l, &desired)) {
        let params = PatchParams::apply(&field_manager(CONTROLLER)).force();
        secrets.patch(&plan.target, &params, &Patch::Apply(&desired)).await?;
    }
    for target in &secret_ref.spec.rollout_targets {
        let outcome =
            rollout::roll(&ctx.client, &namespace, target, &name, &fetched.version, &field_manager(CONTROLLER)).await?;
        if outcome == rollout::Outcome::Missing {
            tracing::warn!(secretref = %key, kind = ?target.kind, workload = %target.name, "rollout target not found");
        }
    }
    // Only now that the new target holds the data may the previous one go.
    if let Some(previous) = release::previous_target(secret_ref, &plan.target) {
        retire_previous(ctx, &secrets, secret_ref, &previous, &plan.target).await?;
    }
    if !plan.pinned {
        ctx.schedule_check(&key, Instant::now() + jittered(plan.refresh, 0.1));
    }

    let synced = status::Synced { version: &fetched.version, content_hash: &hash, target: &plan.target };
    let next = status::synced(secret_ref, &synced, now());
    if current.content_hash.as_deref() != Some(hash.as_str()) {
        let note = format!("Secret {} now holds version {}", plan.target, fetched.version);
        ctx.publish(secret_ref, EventType::Normal, "Synced", "Sync", note).await;
    }
    write_status(ctx, secret_ref, &current, next).await?;
    Ok(next_action(ctx, &key, &plan))
}

fn is_ready(status: &SecretRefStatus) -> bool {
    find_condition(&status.conditions, types::READY).is_some_and(|c| c.is_true(types::READY))
}

/// Pinned versions wait for a change; floating ones come back when their next check is due.
fn next_action(ctx: &Context, key: &str, plan: &Plan) -> Action {
    if plan.pinned {
        return Action::await_change();
    }
    let wait = ctx.next_check(key).map_or(plan.refresh, |at| at.saturating_duration_since(Instant::now()));
    Action::requeue(wait.max(Duration::from_millis(100)))
}

/// Writes the status only when it differs (a steady state makes no writes).
async fn write_status(
    ctx: &Context,
    secret_ref: &SecretRef,
    current: &SecretRefStatus,
    next: SecretRefStatus,
) -> Result<(), Error> {
    if *current == next {
        return Ok(());
    }
    let api: Api<SecretRef> = Api::namespaced(ctx.client.clone(), &secret_ref.namespace().unwrap_or_default());
    let patch = super::status_patch(current, &next);
    api.patch_status(&secret_ref.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Ready=False with the error's reason, and a Warning event when the condition changes.
async fn report_failure(secret_ref: &SecretRef, ctx: &Context, error: &Error) {
    let current = secret_ref.status.clone().unwrap_or_default();
    let message = error.to_string();
    let next = status::failed(secret_ref, error.reason(), &message, now());
    let was = find_condition(&current.conditions, types::READY).map(|c| (c.reason.clone(), c.message.clone()));
    if was != Some((error.reason().to_owned(), message.clone())) {
        tracing::warn!(secretref = %object_key(secret_ref), reason = error.reason(), error = %message, "sync failed");
        ctx.publish(secret_ref, EventType::Warning, error.reason(), "Sync", message).await;
    }
    if let Err(write_error) = write_status(ctx, secret_ref, &current, next).await {
        tracing::debug!(secretref = %object_key(secret_ref), error = %write_error, "status not written");
    }
}

/// After a target change: applies the deletion policy to the Secret written before, with a Normal
/// Event. Done once: the status then names the new target, and a released Secret is no longer ours.
async fn retire_previous(
    ctx: &Context,
    secrets: &Api<Secret>,
    secret_ref: &SecretRef,
    previous: &str,
    target: &str,
) -> Result<(), Error> {
    if let Some(done) = let_go(secrets, secret_ref, previous, Cause::Retargeted).await? {
        let note = done.event_note(previous, target);
        ctx.publish(secret_ref, EventType::Normal, done.event_reason(), "Sync", note).await;
    }
    Ok(())
}

/// On deletion: `Delete` removes the target Secret; `Retain` keeps it and drops our owner
/// reference so garbage collection keeps it too. The previous target of a target change that
/// never completed is still ours, and gets the same treatment.
async fn cleanup(secret_ref: &SecretRef, ctx: &Context) -> Result<Action, Error> {
    let target = target_name(secret_ref);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &secret_ref.namespace().unwrap_or_default());
    ctx.forget(&object_key(secret_ref));
    let previous = release::previous_target(secret_ref, &target);
    for name in std::iter::once(target).chain(previous) {
        let_go(&secrets, secret_ref, &name, Cause::Deleted).await?;
    }
    Ok(Action::await_change())
}

/// Deletes or releases Secret `name` as the deletion policy says, if it is ours; returns what was
/// done. The write is pinned to the version checked, so a Secret replaced in between is spared.
async fn let_go(
    secrets: &Api<Secret>,
    secret_ref: &SecretRef,
    name: &str,
    cause: Cause,
) -> Result<Option<Disposal>, Error> {
    let Some(live) = secrets.get_opt(name).await? else { return Ok(None) };
    let Some(disposal) = release::disposal(&live, secret_ref, cause) else { return Ok(None) };
    match &disposal {
        Disposal::Delete => {
            let checked = Preconditions { uid: live.uid(), resource_version: live.resource_version() };
            let params = DeleteParams { preconditions: Some(checked), ..DeleteParams::default() };
            secrets.delete(name, &params).await.map(|_| ()).or_else(ignore_not_found)?;
        }
        Disposal::Release(patch) => {
            let params = PatchParams { field_manager: Some(field_manager(CONTROLLER)), ..PatchParams::default() };
            secrets.patch(name, &params, &Patch::Merge(patch)).await?;
        }
    }
    Ok(Some(disposal))
}

fn ignore_not_found(error: kube::Error) -> Result<(), kube::Error> {
    match error {
        kube::Error::Api(status) if status.code == 404 => Ok(()),
        other => Err(other),
    }
}
