//! API keys in Google Cloud, once the gateway serves: enable the API's managed service once,
//! create each key restricted to it, write its string into the key's Secret, and delete replaced
//! keys after their overlap. Status remembers what was done, so a reconcile with nothing new
//! makes no API Keys or Service Usage call (it only reads the Secrets).
//!
//! Each mutating call's operation is remembered in status and polled by later reconciles.

use super::error::Error;
use super::keys::{self, Desired};
use crate::api::gateway_config::RetiredApiKey;
use crate::api::{GatewayConfig, GatewayConfigStatus};
use crate::controllers::Context;
use crate::gcp::{ApiKeys, Code, GcpError, KeyApi, Operation};
use crate::runtime::children::{ChildError, apply_over, get_child};
use crate::runtime::skeleton::Reconciler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::{Resource, ResourceExt};
use std::time::Duration;

const API_KEYS_HOST: &str = "//apikeys.googleapis.com/";
const SERVICE_USAGE_HOST: &str = "//serviceusage.googleapis.com/";

/// Where the keys stand after this reconcile's step.
#[derive(Debug, PartialEq)]
pub enum KeysStep {
    /// The spec has no keys (and none wait for deletion).
    None,
    Waiting {
        reason: &'static str,
        message: String,
    },
    /// Every key is in its Secret; `next_change` says when a retired key is due or a key
    /// rotates on its period.
    Ready {
        message: String,
        next_change: Option<Duration>,
    },
}

/// What a step needs: the client as this object's identity, where keys live, and the service.
pub struct Keys<'a> {
    pub client: &'a ApiKeys,
    pub project: &'a str,
    pub gateway_id: &'a str,
    pub managed_service: &'a str,
}

/// One pass over the keys; mutates `status` with what it found and did.
pub async fn advance(
    ctx: &Context,
    gateway: &GatewayConfig,
    keys: &Keys<'_>,
    status: &mut GatewayConfigStatus,
    now: &Time,
) -> Result<KeysStep, Error> {
    if let Some(waiting) = poll(keys.client, status).await? {
        return Ok(waiting);
    }
    let desired = keys::desired(gateway, keys.gateway_id, now)?;
    keys::retire_removed(status, gateway, now);
    if !desired.is_empty()
        && status.api_keys_service.as_deref() != Some(keys.managed_service)
        && let Some(waiting) = enable_service(keys, status).await?
    {
        return Ok(waiting);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &gateway.namespace().unwrap_or_default());
    for key in &desired {
        if let Some(waiting) = ensure(gateway, keys, &secrets, key, status, now).await? {
            return Ok(waiting);
        }
    }
    delete_due(gateway, keys, &secrets, status, now).await?;
    if desired.is_empty() && status.retired_api_keys.is_empty() {
        return Ok(KeysStep::None);
    }
    let ids: Vec<&str> = status.api_keys.iter().map(|k| k.key_id.as_str()).collect();
    let message = match ids.len() {
        0 => "no API keys; retired keys wait for deletion".to_owned(),
        _ => format!("API keys {} are in their Secrets", ids.join(", ")),
    };
    Ok(KeysStep::Ready { message, next_change: keys::next_change(status, &desired, now) })
}

/// Polls the key operation in status: `Some(waiting)` while it runs.
async fn poll(client: &ApiKeys, status: &mut GatewayConfigStatus) -> Result<Option<KeysStep>, Error> {
    let Some(full) = status.pending_key_operation.clone() else { return Ok(None) };
    let (api, name) = match (full.strip_prefix(API_KEYS_HOST), full.strip_prefix(SERVICE_USAGE_HOST)) {
        (Some(name), _) => (KeyApi::ApiKeys, name),
        (_, Some(name)) => (KeyApi::ServiceUsage, name),
        _ => {
            status.pending_key_operation = None;
            return Ok(None);
        }
    };
    let operation = client.get_operation(api, name).await.map_err(Error::ApiKeys)?;
    if !operation.done {
        return Ok(Some(waiting_on(api)));
    }
    status.pending_key_operation = None;
    match operation.error {
        Some(error) => Err(Error::KeyOperationFailed { name: full, message: error.message }),
        None => Ok(None),
    }
}

fn waiting_on(api: KeyApi) -> KeysStep {
    match api {
        KeyApi::ServiceUsage => KeysStep::Waiting {
            reason: crate::api::conditions::reasons::SERVICE_ENABLING,
            message: "enabling the API's managed service for its API keys".into(),
        },
        KeyApi::ApiKeys => KeysStep::Waiting {
            reason: crate::api::conditions::reasons::API_KEY_CREATING,
            message: "creating an API key".into(),
        },
    }
}

/// Remembers a started operation; `Some(waiting)` unless it finished at once.
fn started(status: &mut GatewayConfigStatus, api: KeyApi, operation: Operation) -> Result<Option<KeysStep>, Error> {
    if operation.done {
        return match operation.error {
            Some(error) => Err(Error::KeyOperationFailed { name: operation.name, message: error.message }),
            None => Ok(None),
        };
    }
    let host = if api == KeyApi::ApiKeys { API_KEYS_HOST } else { SERVICE_USAGE_HOST };
    status.pending_key_operation = Some(format!("{host}{}", operation.name));
    Ok(Some(waiting_on(api)))
}

/// Enables the managed service unless it already is; records it once enabled.
async fn enable_service(keys: &Keys<'_>, status: &mut GatewayConfigStatus) -> Result<Option<KeysStep>, Error> {
    let enabled = keys.client.service_enabled(keys.project, keys.managed_service).await.map_err(Error::ApiKeys)?;
    if !enabled {
        let operation = keys.client.enable_service(keys.project, keys.managed_service).await.map_err(Error::ApiKeys)?;
        if let Some(waiting) = started(status, KeyApi::ServiceUsage, operation)? {
            return Ok(Some(waiting));
        }
    }
    status.api_keys_service = Some(keys.managed_service.to_owned());
    Ok(None)
}

/// Makes `key`'s Secret hold its current key: nothing when it does; else creates the key (once:
/// its id is deterministic) and writes its string.
async fn ensure(
    gateway: &GatewayConfig,
    keys: &Keys<'_>,
    secrets: &Api<Secret>,
    key: &Desired<'_>,
    status: &mut GatewayConfigStatus,
    now: &Time,
) -> Result<Option<KeysStep>, Error> {
    let live = get_child(secrets, &key.spec.secret_name).await?;
    if let Some(live) = &live {
        if !keys::is_ours(live, gateway) {
            return Err(Error::KeySecretConflict(key.spec.secret_name.clone()));
        }
        let recorded = status.api_keys.iter().any(|k| k.name == key.spec.name && k.key_id == key.key_id);
        if recorded && keys::holds(live, &key.key_id) {
            return Ok(None);
        }
    }
    match keys.client.get_key(keys.project, &key.key_id).await.map_err(Error::ApiKeys)? {
        Some(found) if !keys::key_is_ours(&found.annotations, gateway, keys::recorded(status, &key.key_id)) => {
            return Err(Error::OwnershipConflict(format!("API key {}", found.name)));
        }
        Some(found) if found.delete_time.is_some() => return Err(Error::KeyDeleted(key.key_id.clone())),
        Some(_) => {}
        None => {
            let target = (keys.managed_service, key.spec.methods.as_slice());
            let owner = keys::owner_annotations(gateway);
            let created = keys.client.create_key(keys.project, &key.key_id, &key.display_name, target, &owner);
            match created.await {
                Ok(operation) => {
                    if let Some(waiting) = started(status, KeyApi::ApiKeys, operation)? {
                        return Ok(Some(waiting));
                    }
                }
                // Created by an earlier pass whose answer was lost: the key is there.
                Err(error) if error.status == Code::AlreadyExists => {}
                Err(error) => return Err(Error::ApiKeys(error)),
            }
        }
    }
    let key_string = keys.client.key_string(keys.project, &key.key_id).await.map_err(Error::ApiKeys)?;
    let desired = keys::secret(gateway, key, &key_string);
    apply_over(secrets, live.as_ref(), desired, &GatewayConfig::PROFILE.field_manager()).await?;
    keys::record(status, key, now);
    Ok(None)
}

/// Deletes the retired keys that are due (a key already gone counts as deleted), with the Secret
/// of a key removed from the spec when it still holds that key.
async fn delete_due(
    gateway: &GatewayConfig,
    keys: &Keys<'_>,
    secrets: &Api<Secret>,
    status: &mut GatewayConfigStatus,
    now: &Time,
) -> Result<(), Error> {
    let due: Vec<RetiredApiKey> = keys::due(status, now).into_iter().cloned().collect();
    for retired in due {
        delete_key(keys.client, keys.project, &retired.key_id, gateway).await?;
        if let Some(name) = &retired.secret_name {
            delete_secret_holding(secrets, name, &retired.key_id).await?;
        }
        status.retired_api_keys.retain(|k| k.key_id != retired.key_id);
    }
    Ok(())
}

/// Deletes a key of `gateway`'s status unless it is gone or deleted already, or not `gateway`'s
/// (its annotations name another owner: the status that named it was not ours to trust); does
/// not wait for the operation.
pub async fn delete_key(client: &ApiKeys, project: &str, key_id: &str, gateway: &GatewayConfig) -> Result<(), Error> {
    match client.get_key(project, key_id).await.map_err(Error::ApiKeys)? {
        Some(key) if !keys::key_is_ours(&key.annotations, gateway, true) => {
            tracing::warn!(key = %key.name, "an API key named in status is not this GatewayConfig's; left alone");
            Ok(())
        }
        Some(key) if key.delete_time.is_none() => match client.delete_key(project, key_id).await {
            Ok(_) => Ok(()),
            Err(error) if is_gone(&error) => Ok(()),
            Err(error) => Err(Error::ApiKeys(error)),
        },
        _ => Ok(()),
    }
}

fn is_gone(error: &GcpError) -> bool {
    matches!(error.status, Code::NotFound | Code::FailedPrecondition)
}

/// Deletes Secret `name` if it is ours and still holds `key_id` (by uid, so a Secret recreated
/// in between is left alone).
async fn delete_secret_holding(secrets: &Api<Secret>, name: &str, key_id: &str) -> Result<(), Error> {
    let Some(live) = get_child(secrets, name).await? else { return Ok(()) };
    if !keys::holds(&live, key_id) {
        return Ok(());
    }
    let preconditions = Preconditions { uid: live.meta().uid.clone(), resource_version: None };
    let params = DeleteParams { preconditions: Some(preconditions), ..DeleteParams::default() };
    match secrets.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(ChildError::of::<Secret>("delete", name)(error).into()),
    }
}
