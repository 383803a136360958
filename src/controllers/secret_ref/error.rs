//! Why a SecretRef reconcile failed: each variant has its [`Category`] (the metric label, the
//! condition reason and the retry follow from it). Display texts never contain payload data.

use super::mapping::MappingError;
use crate::identity::IdentityError;
use crate::provider::{ProviderError, ProviderErrorKind};
use crate::runtime::error::{Category, GcpReason, InvalidField, KubeFailure, lift_kube_failures};
use crate::runtime::skeleton::Failure;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidSpec(#[from] InvalidField),
    #[error("version {version}: the payload does not match its CRC32C checksum; nothing was written")]
    ChecksumMismatch { version: String },
    #[error("version {version}: {source}")]
    InvalidPayload {
        version: String,
        #[source]
        source: MappingError,
    },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("Secret {0} exists and is not managed by this SecretRef; it is left untouched")]
    TargetConflict(String),
    #[error(transparent)]
    Kube(#[from] KubeFailure),
}

lift_kube_failures!(Error);

impl Failure for Error {
    fn category(&self) -> Category {
        match self {
            Self::InvalidSpec(_) => Category::InvalidSpec,
            Self::Identity(error) => error.category(),
            Self::Provider(error) => read_failure(&error.kind),
            Self::ChecksumMismatch { .. } => Category::ChecksumMismatch,
            Self::InvalidPayload { .. } => Category::InvalidPayload,
            Self::TargetConflict(_) => Category::TargetConflict,
            Self::Kube(error) => error.category(),
        }
    }
}

/// What Secret Manager's answer to a read means for a SecretRef.
fn read_failure(kind: &ProviderErrorKind) -> Category {
    match kind {
        ProviderErrorKind::InvalidReference => Category::InvalidSpec,
        ProviderErrorKind::NotFound => Category::SecretNotFound,
        ProviderErrorKind::VersionNotFound => Category::VersionNotFound,
        ProviderErrorKind::PermissionDenied => Category::PermissionDenied,
        ProviderErrorKind::VersionDisabled => Category::VersionDisabled,
        ProviderErrorKind::VersionDestroyed => Category::VersionDestroyed,
        ProviderErrorKind::QuotaExceeded => Category::QuotaExceeded,
        ProviderErrorKind::Unavailable => Category::GcpUnavailable(GcpReason::Unavailable),
        ProviderErrorKind::Other => Category::GcpError(GcpReason::Unavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderErrorKind) -> Error {
        Error::Provider(ProviderError { kind, summary: "secretmanager.versions.access db: HTTP 404".into() })
    }

    /// Secret Manager's answers keep the labels, reasons and retries they had: a read the store
    /// refuses waits for a change, passing trouble is retried, as the provider says.
    #[test]
    fn each_answer_of_the_store_keeps_its_label_reason_and_retry() {
        use ProviderErrorKind::*;
        let expected = [
            (InvalidReference, "invalid_spec", "InvalidSpec"),
            (NotFound, "secret_not_found", "SecretNotFound"),
            (VersionNotFound, "version_not_found", "VersionNotFound"),
            (PermissionDenied, "permission_denied", "PermissionDenied"),
            (VersionDisabled, "version_disabled", "VersionDisabled"),
            (VersionDestroyed, "version_destroyed", "VersionDestroyed"),
            (QuotaExceeded, "quota_exceeded", "QuotaExceeded"),
            (Unavailable, "gcp_unavailable", "GcpUnavailable"),
            (Other, "gcp_error", "GcpUnavailable"),
        ];
        for (kind, label, reason) in expected {
            let transient = ProviderError { kind: kind.clone(), summary: String::new() }.is_transient();
            let error = provider(kind);
            assert_eq!((error.category().metric_label(), error.reason()), (label, reason), "{error:?}");
            assert_eq!(error.is_transient(), transient, "{error:?}");
        }
    }

    #[test]
    fn a_bad_payload_waits_for_a_change_and_a_corrupted_one_is_read_again() {
        let mapping = Error::InvalidPayload { version: "7".into(), source: MappingError::NotAnObject };
        assert_eq!((mapping.reason(), mapping.is_transient()), ("InvalidPayload", false));
        assert_eq!(mapping.to_string(), "version 7: the JSON payload is not an object");
        let corrupted = Error::ChecksumMismatch { version: "7".into() };
        assert_eq!((corrupted.category().metric_label(), corrupted.is_transient()), ("checksum_mismatch", true));
        let conflict = Error::TargetConflict("db".into());
        assert_eq!((conflict.reason(), conflict.is_transient()), ("TargetConflict", false));
    }

    #[test]
    fn kubernetes_failures_are_lifted_with_the_answer_of_the_api_server() {
        let status = kube::core::Status::failure("exceeded quota: secrets", "Forbidden").with_code(403);
        let error = Error::from(kube::Error::Api(Box::new(status)));
        assert_eq!((error.category().metric_label(), error.reason()), ("kubernetes", "QuotaExceeded"));
        assert!(!error.is_transient());
        assert!(error.to_string().starts_with("Kubernetes API: Forbidden (HTTP 403)"), "{error}");
    }
}
