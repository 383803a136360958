//! What a SecureApiService reconcile reads: the SecretRefs it uses, in its own namespace only
//! (each must exist, be Ready, and its Secret must hold exactly the content its status reports),
//! and its live Deployment — read once; every later step works from this copy or from what the
//! API server answered to a write.

use super::error::Error;
use crate::api::conditions::{find_condition, reasons, types};
use crate::api::secure_api_service::RevisionRecord;
use crate::api::{SecretRef, SecureApiService};
use crate::controllers::Context;
use crate::identity::awaited;
use crate::runtime::children::{cached_or_read, get_child};
use crate::runtime::now;
use crate::secret_data::{SecretData, live_data};
use crate::workload::ResolvedSecret;
use crate::workload::canary::canary_name;
use crate::workload::snapshot::referenced_secret_refs;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// Why the secrets cannot be used yet (the current revision stays as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Condition reason: the SecretRef's own reason when it is not Ready.
    pub reason: String,
    pub message: String,
    /// Only SecretRefs still in their first sync (or awaiting their ServiceAccount, see
    /// [`awaited`]): progress, not a failure (no Warning Event).
    pub first_sync: bool,
}

/// What the cluster holds for one SecureApiService.
pub struct World {
    /// Every SecretRef resolved, by name, or why not.
    pub secrets: Result<BTreeMap<String, ResolvedSecret>, Unresolved>,
    pub deployment: Option<Deployment>,
    /// Our canary Deployment, as the cache has it.
    pub canary: Option<Deployment>,
}

/// Reads the SecretRefs (and their Secrets) and the Deployment; API failures are errors.
pub async fn resolve(ctx: &Context, service: &SecureApiService) -> Result<World, Error> {
    let secrets = secret_refs(ctx, service).await?;
    let namespace = service.namespace().unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let cached = |name: &str| ctx.caches.deployments.get(&namespace, name).map(|d| d.as_ref().clone());
    let deployment = match &secrets {
        // Nothing will be applied over it: our Deployment, if any, is in the cache.
        Err(_) => cached(&service.name_any()),
        Ok(_) => cached_or_read(&ctx.caches.deployments, &deployments, &service.name_any()).await?,
    };
    // Ours is in the cache; someone else's of that name is read only before a canary is written
    // over it (`apply::children`), not at every reconcile.
    let canary = cached(&canary_name(&service.name_any()));
    Ok(World { secrets, deployment, canary })
}

/// Every SecretRef resolved, or why not; Kubernetes API failures are errors.
/// SecretRefs come from the cache (a SecretRef appearing or changing triggers this reconcile, so
/// the cache holds at least that); their Secrets too, read again when the cache lags behind.
async fn secret_refs(
    ctx: &Context,
    service: &SecureApiService,
) -> Result<Result<BTreeMap<String, ResolvedSecret>, Unresolved>, Error> {
    let namespace = service.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut resolved = BTreeMap::new();
    for name in referenced_secret_refs(&service.spec) {
        let Some(secret_ref) = ctx.caches.secret_refs.get(&namespace, &name) else {
            return Ok(Err(Unresolved {
                reason: reasons::SECRET_REF_NOT_FOUND.into(),
                message: format!("SecretRef {name} does not exist in namespace {namespace}"),
                first_sync: false,
            }));
        };
        let status = secret_ref.status.clone().unwrap_or_default();
        let ready = find_condition(&status.conditions, types::READY);
        let (Some(version), Some(hash), Some(target), Some(true)) = (
            status.synced_version.clone(),
            status.content_hash.clone(),
            status.target_name.clone(),
            ready.map(|c| c.is_true(types::READY)),
        ) else {
            // Still in its first sync, or waiting for the ServiceAccount this service creates: the
            // same message whichever SecretRef it is (one status write, not one per SecretRef as
            // they become Ready).
            let synced_before = status.synced_version.is_some();
            let grace = ctx.settings.service_account_grace;
            let first_sync = ready
                .is_none_or(|ready| awaited::service_account(&ready.reason, Some(ready), synced_before, grace, &now()));
            let Some(ready) = ready.filter(|_| !first_sync) else {
                let message = "waiting for the first sync of its SecretRefs".to_owned();
                return Ok(Err(Unresolved { reason: reasons::SECRET_REF_NOT_READY.into(), message, first_sync: true }));
            };
            let message = format!("SecretRef {name} is not Ready: {}", ready.message);
            return Ok(Err(Unresolved { reason: ready.reason.clone(), message, first_sync: false }));
        };
        let cached = ctx.caches.secrets.get(&namespace, &target).map(|s| live_data(&s));
        let holds_synced = |data: &SecretData| ctx.hash_key.matches(data, &hash);
        let data = match cached.filter(holds_synced) {
            Some(data) => Some(data),
            None => get_child(&secrets, &target).await?.map(|s| live_data(&s)),
        };
        let Some(data) = data.filter(holds_synced) else {
            return Ok(Err(Unresolved {
                reason: reasons::SECRET_REF_NOT_READY.into(),
                message: format!("SecretRef {name}'s Secret {target} does not hold version {version} yet"),
                first_sync: false,
            }));
        };
        resolved.insert(name, ResolvedSecret { version, content_hash: hash, data });
    }
    if let Some(missing) = missing_key(service, &resolved) {
        return Ok(Err(missing));
    }
    Ok(Ok(resolved))
}

/// A `secretEnv` key that the SecretRef's data does not have.
fn missing_key(service: &SecureApiService, resolved: &BTreeMap<String, ResolvedSecret>) -> Option<Unresolved> {
    service.spec.secret_env.iter().find_map(|env| {
        let has_key = resolved.get(&env.secret_ref).is_some_and(|s| s.data.contains_key(&env.key));
        (!has_key).then(|| Unresolved {
            reason: reasons::SECRET_KEY_NOT_FOUND.into(),
            message: format!("SecretRef {} has no key {:?} (used by {})", env.secret_ref, env.key, env.name),
            first_sync: false,
        })
    })
}

/// The secret versions of `record` that Secret Manager now refuses, as their SecretRefs' status
/// says (`db=1 (Disabled)`): the revision runs a credential that no longer works.
pub fn unusable_versions(ctx: &Context, service: &SecureApiService, record: &RevisionRecord) -> Vec<String> {
    let namespace = service.namespace().unwrap_or_default();
    record
        .secret_versions
        .iter()
        .filter_map(|(name, version)| {
            let secret_ref = ctx.caches.secret_refs.get(&namespace, name)?;
            let state = secret_ref.status.as_ref()?.unusable(version)?;
            Some(format!("{name}={version} ({state:?})"))
        })
        .collect()
}

/// The SecretRef changes that can change what [`resolve`] finds: its sync (version, hash, target,
/// Ready), the versions Secret Manager now refuses, or its deletion. Everything else about a
/// SecretRef is of no interest to a service.
pub fn changes_services_see(ctx: Arc<Context>) -> impl Stream<Item = Arc<SecretRef>> + Send + 'static {
    let seen: Mutex<HashMap<String, u64>> = Mutex::default();
    let secret_refs = ctx.caches.secret_refs.subscribe();
    secret_refs.filter(move |secret_ref| {
        let namespace = secret_ref.namespace().unwrap_or_default();
        let name = secret_ref.name_any();
        let key = format!("{namespace}/{name}");
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = if ctx.caches.secret_refs.get(&namespace, &name).is_none() {
            // Deleted: the services that used it must notice.
            seen.remove(&key);
            true
        } else {
            let fingerprint = what_services_see(secret_ref);
            seen.insert(key, fingerprint) != Some(fingerprint)
        };
        std::future::ready(changed)
    })
}

/// A fingerprint of what a service reads from a SecretRef.
fn what_services_see(secret_ref: &SecretRef) -> u64 {
    let status = secret_ref.status.as_ref();
    let ready = status.and_then(|s| find_condition(&s.conditions, types::READY));
    let mut hasher = std::hash::DefaultHasher::new();
    (
        status.map(|s| (&s.synced_version, &s.content_hash, &s.target_name, &s.unusable_versions)),
        ready.map(|c| (c.is_true(types::READY), &c.reason, &c.message)),
    )
        .hash(&mut hasher);
    hasher.finish()
}
