//! Why a SecretRef reconcile failed: each error has a fixed metrics category, a condition reason,
//! and whether it is worth a quick retry. Display texts never contain payload data.

use super::mapping::MappingError;
use crate::api::conditions::reasons;
use crate::identity::IdentityError;
use crate::provider::{ProviderError, ProviderErrorKind};
use crate::runtime::children::ChildError;
use crate::runtime::refusal;
use crate::runtime::skeleton::{Failure, FinalizerFailed};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("version {version}: the payload does not match its CRC32C checksum; nothing was written")]
    ChecksumMismatch { version: String },
    #[error("version {version}: {source}")]
    InvalidPayload {
        version: String,
        #[source]
        source: MappingError,
    },
    #[error("Secret {0} exists and is not managed by this SecretRef; it is left untouched")]
    TargetConflict(String),
    #[error("Kubernetes API: {}", refusal::describe(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Child(#[from] ChildError),
    #[error("{0}")]
    Finalizer(#[from] FinalizerFailed),
}

impl Failure for Error {
    /// Fixed label for metrics.
    fn category(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Identity(e) => e.category(),
            Self::Provider(e) => match e.kind {
                ProviderErrorKind::InvalidReference => "invalid_spec",
                ProviderErrorKind::NotFound => "secret_not_found",
                ProviderErrorKind::VersionNotFound => "version_not_found",
                ProviderErrorKind::PermissionDenied => "permission_denied",
                ProviderErrorKind::VersionDisabled => "version_disabled",
                ProviderErrorKind::VersionDestroyed => "version_destroyed",
                ProviderErrorKind::QuotaExceeded => "quota_exceeded",
                ProviderErrorKind::Unavailable => "gcp_unavailable",
                ProviderErrorKind::Other => "gcp_error",
            },
            Self::ChecksumMismatch { .. } => "checksum_mismatch",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::TargetConflict(_) => "target_conflict",
            Self::Kube(_) | Self::Child(_) | Self::Finalizer(_) => "kubernetes",
        }
    }

    /// Reason of the `Ready=False` condition.
    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => reasons::INVALID_SPEC,
            Self::Identity(e) => e.reason(),
            Self::Provider(e) => match e.kind {
                ProviderErrorKind::InvalidReference => reasons::INVALID_SPEC,
                ProviderErrorKind::NotFound => reasons::SECRET_NOT_FOUND,
                ProviderErrorKind::VersionNotFound => reasons::VERSION_NOT_FOUND,
                ProviderErrorKind::PermissionDenied => reasons::PERMISSION_DENIED,
                ProviderErrorKind::VersionDisabled => reasons::VERSION_DISABLED,
                ProviderErrorKind::VersionDestroyed => reasons::VERSION_DESTROYED,
                ProviderErrorKind::QuotaExceeded => reasons::QUOTA_EXCEEDED,
                ProviderErrorKind::Unavailable | ProviderErrorKind::Other => reasons::GCP_UNAVAILABLE,
            },
            Self::ChecksumMismatch { .. } => reasons::CHECKSUM_MISMATCH,
            Self::InvalidPayload { .. } => reasons::INVALID_PAYLOAD,
            Self::TargetConflict(_) => reasons::TARGET_CONFLICT,
            Self::Kube(e) => refusal::reason(e),
            Self::Child(e) => e.reason(),
            Self::Finalizer(_) => reasons::KUBERNETES_ERROR,
        }
    }

    /// Transient failures are retried with exponential backoff; the others wait for a change
    /// (or the slow safety-net retry).
    fn is_transient(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_transient(),
            Self::Provider(e) => e.is_transient(),
            Self::Kube(e) => refusal::is_transient(e),
            Self::Child(e) => e.is_transient(),
            // A corrupted transfer is worth another read.
            Self::ChecksumMismatch { .. } | Self::Finalizer(_) => true,
            Self::InvalidSpec(_) | Self::InvalidPayload { .. } | Self::TargetConflict(_) => false,
        }
    }
}
