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
    NotFound,
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
            let accessed = self.client.acting_as(caller.clone()).access(&name, version).await?;
            Ok(FetchedVersion { version: accessed.version, data: accessed.data, crc32c: accessed.data_crc32c })
        })
    }
}
