//! Google's API Keys API v2 over REST (`/v2/`): keys created, patched, soft-deleted and
//! undeleted through long-running operations (`operations/…`), their strings handed out by
//! `getKeyString` and resolved by `keys:lookupKey`; plus the check a gateway makes on a key.
//!
//! - [`names`]: which method a request calls, its permission and resource;
//! - [`model`]: a key, its restrictions, its JSON and its random string;
//! - [`store`]: keys and operations, pure (the time is passed in);
//! - [`wire`]: request bodies and small answers; [`routes`]: one handler per method.
//!
//! Key strings are secret material: they are in `getKeyString`'s answer and nowhere else (not in
//! a key's JSON, an operation, an error, a counter, a fault match or a log line).

mod model;
mod names;
mod routes;
mod store;
mod wire;

#[cfg(test)]
mod tests;

use super::hooks::lock;
use super::rest::{self, Query};
use super::rpc::{self, RpcError};
use super::{GcpEmulator, Routed, clock, iam};
use serde_json::Value;
use std::time::Duration;

pub use model::ApiTarget;
pub(super) use names::Call;
pub(super) use store::Store;

/// Serves one call. `fail_operation` is an injected fault's message: the operation the call
/// starts completes with `INTERNAL` and that message, and changes nothing.
pub(super) fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    fail_operation: Option<&str>,
    now: clock::Now,
) -> Result<Value, RpcError> {
    store.settle(now);
    routes::handle(store, call, query, body, fail_operation.map(RpcError::internal), now)
}

pub(super) fn set_operation_delay(store: &mut Store, delay: Duration) {
    store.set_delay(delay);
}

/// One API key as tests and the API Gateway emulator see it: never its string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id, the last segment of its name.
    pub id: String,
    /// `projects/P/locations/global/keys/ID`.
    pub name: String,
    pub display_name: Option<String>,
    /// The `apiTargets` restrictions; empty for a key valid for every service.
    pub api_targets: Vec<ApiTarget>,
    /// Soft-deleted (undeletable until purged).
    pub deleted: bool,
}

/// Why a key string is refused for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRejection {
    /// No key has this string (or it was purged).
    Unknown,
    /// The key is deleted.
    Deleted,
    /// The key's `apiTargets` do not name this service.
    ServiceNotAllowed,
    /// They name the service but not this method.
    MethodNotAllowed,
    /// The service is not enabled in the key's project (Service Usage).
    ServiceNotEnabled,
}

impl GcpEmulator {
    /// The API keys of `project` (deleted ones included, purged ones not), by id.
    pub fn api_keys(&self, project: &str) -> Vec<KeyInfo> {
        let mut store = lock(&self.inner.api_keys);
        store.settle(self.inner.clock.now());
        let keys = store.keys(&format!("projects/{project}/locations/global/keys/"));
        keys.into_iter()
            .map(|key| KeyInfo {
                id: key.id().to_owned(),
                name: key.name.clone(),
                display_name: key.display_name.clone(),
                api_targets: key.restrictions.api_targets.clone(),
                deleted: key.delete_time.is_some(),
            })
            .collect()
    }

    /// The string of key `id` of `project`, deleted or not; `None` when there is no such key.
    pub fn key_string(&self, project: &str, id: &str) -> Option<String> {
        let mut store = lock(&self.inner.api_keys);
        store.settle(self.inner.clock.now());
        let key = store.key(&format!("projects/{project}/locations/global/keys/{id}")).ok()?;
        Some(key.key_string.0.clone())
    }

    /// Whether `key_string` may call `method` of `managed_service`, as a gateway checks it: a
    /// key that exists, is not deleted, is restricted to nothing or to this service and method,
    /// and whose project has the service enabled.
    pub fn validate_key(&self, key_string: &str, managed_service: &str, method: &str) -> Result<(), KeyRejection> {
        let project = {
            let mut store = lock(&self.inner.api_keys);
            store.settle(self.inner.clock.now());
            let key = store.find_by_string(key_string).ok_or(KeyRejection::Unknown)?;
            if key.delete_time.is_some() {
                return Err(KeyRejection::Deleted);
            }
            let targets = &key.restrictions.api_targets;
            if !targets.is_empty() && !targets.iter().any(|t| t.is_for(managed_service)) {
                return Err(KeyRejection::ServiceNotAllowed);
            }
            if !targets.is_empty() && !targets.iter().any(|t| t.allows(managed_service, method)) {
                return Err(KeyRejection::MethodNotAllowed);
            }
            key.project()
        };
        let project = project.strip_prefix("projects/").unwrap_or_default().to_owned();
        if self.enabled_services(&project).iter().any(|s| s == managed_service) {
            Ok(())
        } else {
            Err(KeyRejection::ServiceNotEnabled)
        }
    }

    /// A `lookupKey` call names the key it finds, so its permission is checked on the key's
    /// project and counters see the key's name (never the string).
    pub(super) fn resolve(&self, routed: Routed, query: &Query) -> Routed {
        let Routed::ApiKeys(Call::Lookup(None)) = routed else { return routed };
        let mut store = lock(&self.inner.api_keys);
        store.settle(self.inner.clock.now());
        let found = query.get("keyString").and_then(|k| store.find_by_string(k)).map(|key| key.name.clone());
        Routed::ApiKeys(Call::Lookup(found))
    }
}
