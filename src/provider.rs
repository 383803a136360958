//! The secret store behind SecretRefs, seen through a small trait so that tests and later
//! providers plug in without touching the reconcile logic. Google Cloud Secret Manager is the
//! provider today.

use crate::gcp::{Caller, Code, Detail, GcpError, SecretBytes, SecretManager, SecretName};
use futures::future::BoxFuture;
use std::sync::Arc;

/// One version read from the store.
#[derive(Clone, Debug)]
pub struct FetchedVersion {
    /// The resolved version (a number, also when `latest` or an alias was asked for).
    pub version: String,
    pub data: Arc<SecretBytes>,
    /// The checksum the store sent with the data, to verify before anything is written.
    pub crc32c: Option<u32>,
}

/// What went wrong, classified for conditions and retries. Never carries payload data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// `spec.secret`/`projectId` do not name a secret.
    InvalidReference,
    /// The secret does not exist, or holds no version (for `latest`).
    NotFound,
    /// The secret exists; the version asked for does not.
    VersionNotFound,
    PermissionDenied,
    VersionDisabled,
    VersionDestroyed,
    QuotaExceeded,
    Unavailable,
    Other,
}

/// A failed read: its kind and a one-line summary (method, resource, code — no payload).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{summary}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub summary: String,
}

impl ProviderError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::QuotaExceeded | ProviderErrorKind::Unavailable | ProviderErrorKind::Other
        )
    }
}

/// Reads secret versions.
pub trait SecretProvider: Send + Sync {
    /// Reads `version` (`latest`, a number, or an alias) of `secret` (an id, or a full resource
    /// name), in `project` when the name does not carry one, as `caller`.
    fn fetch<'a>(
        &'a self,
        secret: &'a str,
        project: Option<&'a str>,
        version: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<FetchedVersion, ProviderError>>;
}

impl From<GcpError> for ProviderError {
    fn from(error: GcpError) -> Self {
        let kind = match (&error.status, &error.detail) {
            (_, Some(Detail::VersionDisabled)) => ProviderErrorKind::VersionDisabled,
            (_, Some(Detail::VersionDestroyed)) => ProviderErrorKind::VersionDestroyed,
            (_, Some(Detail::VersionNotFound)) => ProviderErrorKind::VersionNotFound,
            (Code::NotFound, _) => ProviderErrorKind::NotFound,
            (Code::PermissionDenied | Code::Unauthenticated, _) => ProviderErrorKind::PermissionDenied,
            (Code::ResourceExhausted, _) => ProviderErrorKind::QuotaExceeded,
            (Code::Unavailable | Code::DeadlineExceeded | Code::Internal | Code::Aborted, _) => {
                ProviderErrorKind::Unavailable
            }
            (Code::InvalidArgument, _) => ProviderErrorKind::InvalidReference,
            _ => ProviderErrorKind::Other,
        };
        Self { kind, summary: error.to_string() }
    }
}

/// A failed access as a message one can act on: what is missing, or whom to grant what. The
/// call's one-line summary follows in parentheses; Google's own text never appears.
fn explained(error: GcpError, secret: &str, version: &str, caller: &Caller) -> ProviderError {
    let denied = error.status == Code::PermissionDenied;
    let mut explained = ProviderError::from(error);
    let summary = &explained.summary;
    let message = match explained.kind {
        ProviderErrorKind::NotFound => format!("secret {secret} does not exist or has no versions ({summary})"),
        ProviderErrorKind::VersionNotFound => format!(
            "version {version} of secret {secret} does not exist: set spec.version to an existing version, or latest ({summary})"
        ),
        // Secret Manager answers 403, not 404, for a missing secret to a caller who may not list it.
        ProviderErrorKind::PermissionDenied if denied => {
            let principal = caller.principal();
            format!(
                "Secret Manager refused {principal} access to {secret}: the secret may not exist, or {principal} lacks roles/secretmanager.secretAccessor on it ({summary})"
            )
        }
        _ => return explained,
    };
    explained.summary = message;
    explained
}

/// Google Cloud Secret Manager as a provider.
pub struct GcpSecretManager {
    client: SecretManager,
    default_project: Option<String>,
}

impl GcpSecretManager {
    pub fn new(client: SecretManager, default_project: Option<String>) -> Self {
        Self { client, default_project }
    }
}

impl SecretProvider for GcpSecretManager {
    fn fetch<'a>(
        &'a self,
        secret: &'a str,
        project: Option<&'a str>,
        version: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<FetchedVersion, ProviderError>> {
        Box::pin(async move {
            let project = project.or(self.default_project.as_deref());
            let name = SecretName::parse(secret, project)
                .map_err(|summary| ProviderError { kind: ProviderErrorKind::InvalidReference, summary })?;
            let accessed = self
                .client
                .acting_as(caller.clone())
                .access(&name, version)
                .await
                .map_err(|error| explained(error, &name.to_string(), version, caller))?;
            Ok(FetchedVersion { version: accessed.version, data: accessed.data, crc32c: accessed.data_crc32c })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHOD: &str = "secretmanager.versions.access";
    const SECRET: &str = "projects/p/secrets/db";

    fn answer(http: u16, status: &str, message: &str) -> GcpError {
        let body = serde_json::json!({"error": {"code": http, "status": status, "message": message}});
        GcpError::from_response(METHOD, format!("{SECRET}/versions/99"), http, body.to_string().as_bytes())
    }

    #[test]
    fn a_missing_version_names_the_version_and_the_secret() {
        let error = answer(404, "NOT_FOUND", "Secret Version [projects/1/secrets/db/versions/99] not found.");
        let found = explained(error, SECRET, "99", &Caller::Operator);
        assert_eq!(found.kind, ProviderErrorKind::VersionNotFound);
        assert!(found.summary.starts_with("version 99 of secret projects/p/secrets/db does not exist"), "{found}");
        let error = answer(404, "NOT_FOUND", "Secret [projects/1/secrets/db] not found or has no versions.");
        let found = explained(error, SECRET, "latest", &Caller::Operator);
        assert_eq!(found.kind, ProviderErrorKind::NotFound);
        assert!(found.summary.starts_with("secret projects/p/secrets/db does not exist"), "{found}");
    }

    #[test]
    fn a_refusal_names_the_principal_and_the_role_and_never_the_token() {
        let caller = Caller::delegated("team-b/app", "principal://x/subject/ns/team-b/sa/app", "ya29.SENTINEL".into());
        let error = answer(403, "PERMISSION_DENIED", "Permission denied (or it may not exist).");
        let found = explained(error, SECRET, "latest", &caller);
        assert_eq!(found.kind, ProviderErrorKind::PermissionDenied);
        let message = found.summary;
        assert!(message.contains("may not exist"), "{message}");
        assert!(message.contains("principal://x/subject/ns/team-b/sa/app lacks roles/secretmanager.secretAccessor"));
        assert!(message.ends_with("HTTP 403 PERMISSION_DENIED)"), "{message}");
        assert!(!message.contains("SENTINEL"), "{message}");
        let operator = explained_for_operator();
        assert!(operator.contains("the operator's own Google identity"), "{operator}");
    }

    fn explained_for_operator() -> String {
        explained(answer(403, "PERMISSION_DENIED", "x"), SECRET, "1", &Caller::Operator).summary
    }
}
