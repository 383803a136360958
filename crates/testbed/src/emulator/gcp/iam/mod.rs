//! Identity for the GCP emulators: Workload Identity Federation and the IAM checks of every call.
//!
//! - [`sts`]: STS `v1/token`, a Kubernetes ServiceAccount JWT for a federated token;
//! - [`jwt`]: RS256 verification of that JWT; [`trust`]: the JWKS it is checked against;
//! - [`credentials`]: IAM Credentials `generateAccessToken`, a service account's token;
//! - [`accounts`]: IAM service accounts; [`policy`], [`roles`], [`principals`]: IAM policies,
//!   what roles grant and which members name a caller;
//! - [`tokens`]: issued tokens and the caller behind a bearer token;
//! - [`names`], [`routes`], [`store`]: the REST methods, their handlers and their state.
//!
//! A request whose bearer token the emulator did not issue (or that has none) is the owner of
//! every project: an emulator where nobody exchanged tokens behaves as it did before IAM.
//! Tokens and subject tokens are never logged nor written into an error.

mod accounts;
mod credentials;
pub(super) mod jwt;
mod names;
mod policy;
mod principals;
mod roles;
mod routes;
mod store;
mod sts;
mod tokens;
mod trust;

use super::hooks::{self, lock};
use super::rest;
use super::rpc::{self, RpcError};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub(super) use accounts::unique_id;
pub(super) use names::{Api, Call};
pub(super) use policy::Policy;
pub(super) use principals::project_number;
pub(super) use store::Store;
pub(super) use sts::OAuthError;
pub(super) use tokens::Caller;
pub(super) use trust::Trust;

/// A call refused for want of a permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The caller: `principal://…`, `serviceAccount:EMAIL`, or `projectOwner:P` for the owner
    /// asking for a service account that does not exist.
    pub principal: String,
    /// The permission it lacked, e.g. `secretmanager.versions.access`.
    pub permission: String,
    /// The resource it was refused on, e.g. `projects/P/secrets/S/versions/V`.
    pub resource: String,
}

/// How a refusal reads: each API words it its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wording {
    /// Secret Manager, API Gateway: `Permission 'P' denied for resource 'R' (or it may not exist).`
    Resource,
    /// IAM and IAM Credentials: `Permission 'P' denied on resource (or it may not exist).`
    Iam,
    /// Resource Manager: `The caller does not have permission`.
    Caller,
}

/// What a call needs: a permission on a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Requirement {
    pub permission: &'static str,
    /// The resource the permission is checked on (its ancestors' policies count too).
    pub resource: String,
    pub wording: Wording,
    /// Refused for every caller when the resource does not exist (IAM Credentials).
    pub existing: bool,
}

impl Requirement {
    /// A permission on the resource the call names (`projects/P` for a collection under it).
    pub fn on(permission: &'static str, resource: String) -> Self {
        let resource = ancestors(&resource).into_iter().next().unwrap_or(resource);
        Self { permission, resource, wording: Wording::Resource, existing: false }
    }

    pub fn iam(permission: &'static str, resource: String) -> Self {
        Self { permission, resource, wording: Wording::Iam, existing: false }
    }

    pub fn project(permission: &'static str, resource: String) -> Self {
        Self { permission, resource, wording: Wording::Caller, existing: false }
    }

    pub fn of_existing(self) -> Self {
        Self { existing: true, ..self }
    }

    /// Google's message for the refusal.
    pub fn message(&self) -> String {
        let permission = self.permission;
        match self.wording {
            Wording::Resource => {
                format!("Permission '{permission}' denied for resource '{}' (or it may not exist).", self.resource)
            }
            Wording::Iam => format!("Permission '{permission}' denied on resource (or it may not exist)."),
            Wording::Caller => "The caller does not have permission".to_owned(),
        }
    }

    /// The 403 answer.
    pub fn denied(&self) -> RpcError {
        RpcError::new(rpc::Code::PermissionDenied, self.message())
    }
}

/// The names whose policies apply to `resource`, nearest first: itself and each parent
/// (`projects/P/secrets/S/versions/V` → the version, the secret, the project). A trailing
/// collection (`projects/P/secrets`) is not a resource and is skipped.
pub(super) fn ancestors(resource: &str) -> Vec<String> {
    let segments: Vec<&str> = resource.split('/').collect();
    (1..=segments.len() / 2).rev().map(|pairs| segments[..pairs * 2].join("/")).collect()
}

/// Serves one call other than `sts.token`.
pub(super) fn handle(store: &mut Store, call: &Call, body: &[u8]) -> Result<Value, RpcError> {
    routes::handle(store, call, body, SystemTime::now())
}

/// STS `v1/token`: checks the request and its subject token (signature against the trusted
/// keys, times, audience) and mints a federated token for the principal it stands for.
pub(super) async fn exchange(store: &Mutex<Store>, trust: &Trust, body: &[u8]) -> Result<Value, OAuthError> {
    let request = sts::parse_request(body)?;
    let token = jwt::decode(&request.subject_token).map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
    let keys = trust.keys(token.kid()).await.map_err(OAuthError::invalid_grant)?;
    if keys.is_empty() {
        return Err(OAuthError::invalid_grant("No JWKS is trusted: the emulator cannot verify subject tokens."));
    }
    let now = SystemTime::now();
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let claims = token.verify(&keys, seconds).map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
    request.audience.check(&claims)?;
    let principal = request.audience.principal(&claims)?;
    let mut store = lock(store);
    let lifetime = store.tokens.lifetime();
    let minted = store.tokens.mint(tokens::Kind::Federated, &principal, lifetime, now);
    let token = minted.map_err(|e| OAuthError { error: "server_error", description: e.message })?;
    tracing::info!(%principal, "GCP emulator: STS issued a federated token");
    Ok(sts::answer(&token, lifetime.as_secs()))
}

/// How long tokens issued from now on live.
pub(super) fn set_token_lifetime(store: &mut Store, lifetime: Duration) {
    store.tokens.set_lifetime(lifetime);
}

/// Creates service account `id` of `project` when missing (no checks) and returns its email.
pub(super) fn create_service_account(store: &mut Store, project: &str, id: &str) -> String {
    store.accounts.seed(project, &accounts::email(project, id)).email.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_run_from_the_resource_to_its_project() {
        assert_eq!(
            ancestors("projects/p/secrets/s/versions/1"),
            ["projects/p/secrets/s/versions/1", "projects/p/secrets/s", "projects/p"]
        );
        assert_eq!(ancestors("projects/p/secrets"), ["projects/p"]);
        assert_eq!(ancestors("projects/p"), ["projects/p"]);
        assert!(ancestors("token").is_empty());
    }

    #[test]
    fn refusals_are_worded_as_each_api_words_them() {
        let access = Requirement::on("secretmanager.versions.access", "projects/p/secrets/s/versions/2".into());
        assert_eq!(
            access.denied().to_json()["error"],
            serde_json::json!({"code": 403, "status": "PERMISSION_DENIED",
                "message": "Permission 'secretmanager.versions.access' denied for resource 'projects/p/secrets/s/versions/2' (or it may not exist)."})
        );
        let list = Requirement::on("secretmanager.secrets.list", "projects/p/secrets".into());
        assert_eq!(list.resource, "projects/p");
        let token = Requirement::iam("iam.serviceAccounts.getAccessToken", "projects/-/serviceAccounts/a".into());
        assert_eq!(
            token.message(),
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
        );
    }
}
