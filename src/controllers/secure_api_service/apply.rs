//! The writes of a SecureApiService reconcile, each only when its object changed: immutable
//! snapshots first, then the ServiceAccount, the Deployment and the canary's, the Service, the
//! canary's Service, the tags' Services and the HTTPRoute (in the order that never routes to pods
//! that are not there), the canary's retirement, the HPA and PDB; the rollback of a stalled
//! revision; and pruning the snapshots no retained revision uses.

use super::canary;
use super::desired::{CanaryChange, Desired};
use super::error::Error;
use super::revision;
use super::traffic;
use crate::api::secure_api_service::RevisionRecord;
use crate::api::{SecureApiService, SecureApiServiceStatus};
use crate::controllers::Context;
use crate::runtime::caches::index_key;
use crate::runtime::children::{
    ChildError, apply_if_changed, apply_over, cached_or_read, delete_if_ours, get_child, hash_of, is_child_of,
};
use crate::workload;
use crate::workload::canary::canary_name;
use crate::workload::http_route::HTTPRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

/// The objects as the server holds them after the writes.
pub struct Applied {
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    /// The revision a rollback restored in this reconcile.
    pub restored: Option<String>,
    /// The revision a rollback would have restored, had its record carried the operator's seal.
    pub unsealed: Option<String>,
    /// Our canary Deployment, when one is left after the writes.
    pub canary: Option<Deployment>,
    /// The HTTPRoute applied for `expose.gateway`, by name.
    pub route: Option<String>,
}

fn api<K>(ctx: &Context, service: &SecureApiService) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default())
}

/// Applies what changed of `desired` (only the ServiceAccount while the secrets are unresolved:
/// the current revision stays, and SecretRefs that read as this ServiceAccount can sync).
/// `live` is the Deployment read at the start of the reconcile, `canary` our canary Deployment as
/// the cache has it (only ours is written over or deleted), `current` the status (the HTTPRoute
/// and the tags' Services it records).
pub async fn children(
    ctx: &Context,
    service: &SecureApiService,
    desired: Option<&Desired>,
    live: Option<Deployment>,
    canary: Option<Deployment>,
    current: &SecureApiServiceStatus,
    manager: &str,
) -> Result<Applied, Error> {
    let route = current.http_route.clone();
    let services: Api<Service> = api(ctx, service);
    let namespace = service.namespace().unwrap_or_default();
    let account = workload::service::service_account(service);
    apply_account(ctx, &api::<ServiceAccount>(ctx, service), account, manager).await?;
    let Some(desired) = desired else {
        // Nothing is applied but the ServiceAccount: our Service, if any, is in the cache.
        let cached = ctx.caches.services.get(&namespace, &service.name_any()).map(|s| s.as_ref().clone());
        let canary = canary.filter(|canary| is_child_of(canary, service.uid().as_deref()));
        return Ok(Applied { deployment: live, service: cached, restored: None, unsealed: None, canary, route });
    };
    let live_service = cached_or_read(&ctx.caches.services, &services, &service.name_any()).await?;
    let secrets: Api<Secret> = api(ctx, service);
    for snapshot in &desired.snapshots {
        // Snapshot names carry their content's hash: one missing from the cache is new, applied
        // without reading first.
        let cached = ctx.caches.secrets.get(&namespace, &snapshot.name_any());
        apply_over(&secrets, cached.as_deref(), snapshot.clone(), manager).await?;
    }
    let deployments: Api<Deployment> = api(ctx, service);
    let deployment = match &desired.deployment {
        Some(wanted) => Some(apply_over(&deployments, live.as_ref(), wanted.clone(), manager).await?.object),
        None => live,
    };
    let canary = apply_canary(&deployments, desired, canary, manager).await?;
    let applied_service = apply_over(&services, live_service.as_ref(), desired.service.clone(), manager).await?;
    // The canary's Service before a route sends it anything; the route before it is deleted.
    if let Some(canary_service) = &desired.canary_service {
        let cached = ctx.caches.services.get(&namespace, &canary_service.name_any());
        apply_over(&services, cached.as_deref(), canary_service.clone(), manager).await?;
    }
    for tagged in &desired.tag_services {
        let cached = ctx.caches.services.get(&namespace, &tagged.name_any());
        apply_over(&services, cached.as_deref(), tagged.clone(), manager).await?;
    }
    let route = match &desired.route {
        Some(wanted) => {
            apply_optional::<HTTPRoute>(ctx, service, Some(wanted.clone()), manager).await?;
            Some(wanted.name_any())
        }
        None if route.is_some() => {
            apply_optional::<HTTPRoute>(ctx, service, None, manager).await?;
            None
        }
        None => None,
    };
    let canary_service = canary_name(&service.name_any());
    if desired.canary_service.is_none() && ctx.caches.services.contains(&namespace, &canary_service) {
        delete_if_ours(&services, &canary_service, &service.uid().unwrap_or_default()).await?;
    }
    // The Services of tags the traffic no longer has.
    let tags = current.traffic.iter().filter_map(|share| share.tag.as_deref());
    let untagged = tags.map(|tag| traffic::tag_service_name(&service.name_any(), tag));
    for name in untagged.filter(|name| desired.tag_services.iter().all(|s| s.name_any() != *name)) {
        if ctx.caches.services.contains(&namespace, &name) {
            delete_if_ours(&services, &name, &service.uid().unwrap_or_default()).await?;
        }
    }
    // Last: the Service and the route no longer send it anything.
    let canary = retire_canary(&deployments, service, desired, deployment.as_ref(), canary).await?;
    apply_optional::<HorizontalPodAutoscaler>(ctx, service, desired.autoscaler.clone(), manager).await?;
    apply_optional::<PodDisruptionBudget>(ctx, service, desired.disruption_budget.clone(), manager).await?;
    let service = Some(applied_service.object);
    Ok(Applied { deployment, service, restored: None, unsealed: None, canary, route })
}

/// Applies the canary Deployment of a trial. Returns the Deployment of the canary's name as it
/// stands after.
async fn apply_canary(
    deployments: &Api<Deployment>,
    desired: &Desired,
    live: Option<Deployment>,
    manager: &str,
) -> Result<Option<Deployment>, Error> {
    match &desired.canary {
        CanaryChange::Apply(canary) => {
            // None of ours in the cache: whoever's stands under that name is read first, and is
            // not written over unless ours.
            let live = match live {
                Some(live) => Some(live),
                None => get_child(deployments, &canary.name_any()).await?,
            };
            Ok(Some(apply_over(deployments, live.as_ref(), canary.as_ref().clone(), manager).await?.object))
        }
        CanaryChange::RetireOnceStableRuns | CanaryChange::Keep => Ok(live),
    }
}

/// Deletes our canary Deployment once retired: the stable Deployment runs the revision on every
/// replica. Returns our canary as it stands after.
async fn retire_canary(
    deployments: &Api<Deployment>,
    service: &SecureApiService,
    desired: &Desired,
    stable: Option<&Deployment>,
    live: Option<Deployment>,
) -> Result<Option<Deployment>, Error> {
    let ours = live.filter(|live| is_child_of(live, service.uid().as_deref()));
    let Some(canary) = ours else { return Ok(None) };
    if desired.canary != CanaryChange::RetireOnceStableRuns || !canary::retirable(stable, &desired.record.revision) {
        return Ok(Some(canary));
    }
    delete_if_ours(deployments, &canary.name_any(), &service.uid().unwrap_or_default()).await?;
    Ok(None)
}

/// Applies the service's ServiceAccount unless this process applied or found exactly this one in
/// the last [`UNWATCHED_RECHECK`](crate::controllers::UNWATCHED_RECHECK): a service reconciles once per SecretRef it uses becoming Ready,
/// and ServiceAccounts are not watched. One deleted behind the operator's back is back within
/// that time.
async fn apply_account(
    ctx: &Context,
    accounts: &Api<ServiceAccount>,
    account: ServiceAccount,
    manager: &str,
) -> Result<(), Error> {
    let key = format!("ServiceAccount/{}/{}", account.namespace().unwrap_or_default(), account.name_any());
    let hash = hash_of(&account);
    if ctx.memory.applied_recently(&key, &hash) {
        return Ok(());
    }
    apply_if_changed(accounts, account, manager).await?;
    ctx.memory.remember_applied(&key, hash);
    Ok(())
}

/// Applies an object the spec may or may not ask for; one no longer asked for is deleted if ours.
async fn apply_optional<K>(
    ctx: &Context,
    service: &SecureApiService,
    desired: Option<K>,
    manager: &str,
) -> Result<(), ChildError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let objects: Api<K> = api(ctx, service);
    // Like the ServiceAccount: not watched, so trusted for a while as applied or found missing.
    let key = format!("{}/{}/{}", K::kind(&()), service.namespace().unwrap_or_default(), service.name_any());
    let hash = desired.as_ref().map_or_else(|| "absent".to_owned(), hash_of);
    if ctx.memory.applied_recently(&key, &hash) {
        return Ok(());
    }
    match desired {
        Some(desired) => apply_if_changed(&objects, desired, manager).await.map(drop)?,
        None => delete_if_ours(&objects, &service.name_any(), &service.uid().unwrap_or_default()).await.map(drop)?,
    }
    ctx.memory.remember_applied(&key, hash);
    Ok(())
}

/// Puts the previous pod template back, when the Deployment remembers one sealed by this operator;
/// records the restored revision (or the one refused for its missing seal) in `applied`.
pub async fn roll_back(
    ctx: &Context,
    service: &SecureApiService,
    applied: &mut Applied,
    manager: &str,
) -> Result<(), Error> {
    // Only our Deployment of this service: its annotations are the record a rollback restores.
    let ours = applied.deployment.as_ref().filter(|live| is_child_of(*live, service.uid().as_deref()));
    let Some(live) = ours else { return Ok(()) };
    let (previous, patch) = match revision::rollback(live, &ctx.hash_key) {
        Ok(Some(restorable)) => restorable,
        Ok(None) => return Ok(()),
        Err(revision::Unsealed(previous)) => {
            applied.unsealed = Some(previous);
            return Ok(());
        }
    };
    let name = service.name_any();
    let params = PatchParams { field_manager: Some(manager.to_owned()), ..PatchParams::default() };
    let deployments: Api<Deployment> = api(ctx, service);
    let restored = deployments
        .patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(ChildError::of::<Deployment>("roll back", &name))?;
    applied.deployment = Some(restored);
    applied.restored = Some(previous);
    Ok(())
}

/// Deletes our snapshot Secrets that no retained revision uses — never one that the live
/// Deployment's template, its remembered previous template or the canary still uses.
pub async fn prune_snapshots(
    ctx: &Context,
    service: &SecureApiService,
    history: &[RevisionRecord],
    applied: &Applied,
) -> Result<(), Error> {
    let mut keep: Vec<String> = history.iter().flat_map(|r| r.snapshots.iter().cloned()).collect();
    keep.extend([&applied.deployment, &applied.canary].into_iter().flatten().flat_map(revision::secrets_in_use));
    let secrets: Api<Secret> = api(ctx, service);
    // The cache holds every Secret we labelled; one written a moment ago goes at the next prune.
    let snapshots = ctx.caches.secrets.indexed(&index_key(service.namespace().as_deref(), &service.name_any()));
    let owner = service.uid().unwrap_or_default();
    for name in snapshots.into_iter().map(|secret| secret.name).filter(|name| !keep.contains(name)) {
        delete_if_ours(&secrets, &name, &owner).await?;
    }
    Ok(())
}
