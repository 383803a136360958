//! The writes of a SecretRef sync, each made only when something changed: the target Secret, the
//! rollout targets' pod-template annotation, and letting go of a Secret no longer written.

use super::error::Error;
use super::release::{self, Cause, Disposal};
use super::rollout;
use super::status::Synced;
use crate::api::conditions::{find_condition, reasons, types};
use crate::api::{SecretRef, SecretRefStatus};
use crate::controllers::Context;
use crate::runtime::children::get_child;
use crate::runtime::skeleton::Reconciler;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;

/// Applies the target Secret unless the live one (ours, checked by the caller) already holds what
/// we want. Fields are taken over from other managers (`force`) only on a Secret known to be
/// ours; a new one is applied without force, so a Secret someone else created meanwhile conflicts
/// instead of being taken, and is then reported as theirs.
pub async fn write_target(
    secrets: &Api<Secret>,
    secret_ref: &SecretRef,
    live: Option<&Secret>,
    desired: &Secret,
) -> Result<(), Error> {
    if live.is_some_and(|l| super::desired::live_matches(l, desired)) {
        return Ok(());
    }
    let name = desired.name_any();
    let manager = SecretRef::PROFILE.field_manager();
    let params = if live.is_some() { PatchParams::apply(&manager).force() } else { PatchParams::apply(&manager) };
    match secrets.patch(&name, &params, &Patch::Apply(desired)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 && live.is_none() => {
            match get_child(secrets, &name).await? {
                Some(found) if !super::desired::is_ours(&found, secret_ref) => Err(Error::TargetConflict(name)),
                _ => Err(kube::Error::Api(status).into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// Points every rollout target at `version`; returns the targets that do not exist
/// (`Kind/name`), which the status reports.
pub async fn roll_targets(ctx: &Context, secret_ref: &SecretRef, version: &str) -> Result<Vec<String>, Error> {
    let namespace = secret_ref.namespace().unwrap_or_default();
    let name = secret_ref.name_any();
    let mut missing = vec![];
    for target in &secret_ref.spec.rollout_targets {
        let manager = SecretRef::PROFILE.field_manager();
        let outcome = rollout::roll(&ctx.client, &namespace, target, &name, version, &manager).await?;
        if outcome == rollout::Outcome::Missing {
            missing.push(format!("{:?}/{}", target.kind, target.name));
        }
    }
    Ok(missing)
}

/// The Events of a successful sync: Normal when new content was written, Warning when the
/// Ready message names missing rollout targets anew.
pub async fn announce(
    ctx: &Context,
    secret_ref: &SecretRef,
    current: &SecretRefStatus,
    next: &SecretRefStatus,
    synced: &Synced<'_>,
    missing: &[String],
) {
    if current.content_hash.as_deref() != Some(synced.content_hash) {
        let note = format!("Secret {} now holds version {}", synced.target, synced.version);
        ctx.publish(secret_ref, EventType::Normal, "Synced", "Sync", note).await;
    }
    let ready_message =
        |status: &SecretRefStatus| find_condition(&status.conditions, types::READY).map(|c| c.message.clone());
    if !missing.is_empty() && ready_message(current) != ready_message(next) {
        let note = format!("rollout targets not found: {}", missing.join(", "));
        ctx.publish(secret_ref, EventType::Warning, reasons::ROLLOUT_TARGET_NOT_FOUND, "Sync", note).await;
    }
}

/// After a target change: applies the deletion policy to the Secret written before, with a Normal
/// Event. Done once: the status then names the new target, and a released Secret is no longer ours.
pub async fn retire_previous(
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

/// Deletes or releases Secret `name` as the deletion policy says, if it is ours; returns what was
/// done. The write is pinned to the version checked, so a Secret replaced in between is spared.
pub async fn let_go(
    secrets: &Api<Secret>,
    secret_ref: &SecretRef,
    name: &str,
    cause: Cause,
) -> Result<Option<Disposal>, Error> {
    let Some(live) = get_child(secrets, name).await? else { return Ok(None) };
    let Some(disposal) = release::disposal(&live, secret_ref, cause) else { return Ok(None) };
    match &disposal {
        Disposal::Delete => {
            let checked = Preconditions { uid: live.uid(), resource_version: live.resource_version() };
            let params = DeleteParams { preconditions: Some(checked), ..DeleteParams::default() };
            secrets.delete(name, &params).await.map(|_| ()).or_else(ignore_not_found)?;
        }
        Disposal::Release(patch) => {
            let params =
                PatchParams { field_manager: Some(SecretRef::PROFILE.field_manager()), ..PatchParams::default() };
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
