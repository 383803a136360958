//! What a failed reconcile was, as the world outside the operator sees it.
//!
//! Each kind of failure is one [`Category`], and the category alone fixes what others build on:
//! the `category` label of `secureapi_reconcile_errors_total` (dashboards), the reason of the
//! `Ready=False` condition and of the Warning Event (alerts, `docs/troubleshooting.md`), and
//! whether a quick retry may help. A controller maps each variant of its error enum to a category
//! (a nested error decides where it knows better: a Kubernetes refusal, a Secret Manager answer,
//! an identity failure); no label or reason is written anywhere else.
//!
//! Also here: what fails the same way in every controller ([`KubeFailure`]) and how a controller
//! refuses a spec ([`InvalidField`]).

use super::children::ChildError;
use super::refusal::{self, Refusal};
use crate::api::conditions::reasons;

/// One kind of failure. The values of [`Self::metric_label`] and [`Self::reason`] are a public
/// contract (docs/monitoring.md, docs/troubleshooting.md, the chart's dashboard and alerts): a
/// new category may be added, an existing one keeps its label and reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    // The object's spec, and the operator's own settings.
    /// The spec asks for what the operator refuses and the schema cannot express.
    InvalidSpec,
    /// The operator runs without a client the object needs (API Gateway): its settings lack it,
    /// not the spec. Reported as `InvalidSpec`, whose troubleshooting entry says so for
    /// GatewayConfigs; counted apart.
    InvalidSetting,

    // The object's Google identity.
    IdentityRequired,
    /// Retried soon: a SecureApiService creates the ServiceAccount it names any moment.
    ServiceAccountNotFound,
    ServiceAccountNotOptedIn,
    /// TokenRequest or STS refused or failed; `transient` when that was passing trouble.
    TokenExchangeFailed {
        transient: bool,
    },

    // Google Cloud's answers.
    /// Google denied the object's identity access (IAM), or its ServiceAccount the Google
    /// service account it names.
    PermissionDenied,
    /// Secret Manager's quota (HTTP 429).
    QuotaExceeded,
    /// Passing trouble (HTTP 429 or 5xx, a timeout, no connection); the condition gives what
    /// Google's status says.
    GcpUnavailable(GcpReason),
    /// Any other error answer. Retried with backoff all the same: Google Cloud's state moves on
    /// its own.
    GcpError(GcpReason),

    // Secret Manager's secret, as a SecretRef reads and writes it.
    SecretNotFound,
    VersionNotFound,
    VersionDisabled,
    VersionDestroyed,
    /// A corrupted transfer: worth another read.
    ChecksumMismatch,
    InvalidPayload,
    TargetConflict,

    // API Gateway and API Keys, as a GatewayConfig provisions them.
    OperationFailed,
    ApiKeySecretConflict,
    ApiKeyDeleted,
    /// A Google Cloud resource under the object's ids is not the object's.
    ForeignResource,

    /// The Kubernetes API failed or refused a call; its answer gives the reason and the retry.
    Kubernetes(Refusal),

    /// Not a failure: a deletion step still runs. The skeleton neither counts nor reports it.
    Waiting,
}

/// What the condition says of a Google Cloud error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcpReason {
    PermissionDenied,
    QuotaExceeded,
    Unavailable,
}

impl Category {
    /// The `category` label of `secureapi_reconcile_errors_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::InvalidSpec | Self::ApiKeySecretConflict | Self::ApiKeyDeleted | Self::ForeignResource => {
                "invalid_spec"
            }
            Self::InvalidSetting => "invalid_setting",
            Self::IdentityRequired => "identity_required",
            Self::ServiceAccountNotFound => "service_account_not_found",
            Self::ServiceAccountNotOptedIn => "service_account_not_opted_in",
            Self::TokenExchangeFailed { .. } => "token_exchange_failed",
            Self::PermissionDenied => "permission_denied",
            Self::QuotaExceeded => "quota_exceeded",
            Self::GcpUnavailable(_) => "gcp_unavailable",
            Self::GcpError(_) => "gcp_error",
            Self::SecretNotFound => "secret_not_found",
            Self::VersionNotFound => "version_not_found",
            Self::VersionDisabled => "version_disabled",
            Self::VersionDestroyed => "version_destroyed",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::InvalidPayload => "invalid_payload",
            Self::TargetConflict => "target_conflict",
            Self::OperationFailed => "operation_failed",
            Self::Kubernetes(_) => "kubernetes",
            Self::Waiting => "waiting",
        }
    }

    /// The CamelCase reason of the `Ready=False` condition and of the Warning Event.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidSpec | Self::InvalidSetting => reasons::INVALID_SPEC,
            Self::IdentityRequired => reasons::IDENTITY_REQUIRED,
            Self::ServiceAccountNotFound => reasons::SERVICE_ACCOUNT_NOT_FOUND,
            Self::ServiceAccountNotOptedIn => reasons::SERVICE_ACCOUNT_NOT_OPTED_IN,
            Self::TokenExchangeFailed { .. } => reasons::TOKEN_EXCHANGE_FAILED,
            Self::PermissionDenied => reasons::PERMISSION_DENIED,
            Self::QuotaExceeded => reasons::QUOTA_EXCEEDED,
            Self::GcpUnavailable(reason) | Self::GcpError(reason) => reason.reason(),
            Self::SecretNotFound => reasons::SECRET_NOT_FOUND,
            Self::VersionNotFound => reasons::VERSION_NOT_FOUND,
            Self::VersionDisabled => reasons::VERSION_DISABLED,
            Self::VersionDestroyed => reasons::VERSION_DESTROYED,
            Self::ChecksumMismatch => reasons::CHECKSUM_MISMATCH,
            Self::InvalidPayload => reasons::INVALID_PAYLOAD,
            Self::TargetConflict => reasons::TARGET_CONFLICT,
            Self::OperationFailed => reasons::OPERATION_FAILED,
            Self::ApiKeySecretConflict => reasons::API_KEY_SECRET_CONFLICT,
            Self::ApiKeyDeleted => reasons::API_KEY_DELETED,
            Self::ForeignResource => reasons::OWNERSHIP_CONFLICT,
            Self::Kubernetes(refusal) => refusal.reason(),
            Self::Waiting => reasons::RECONCILING,
        }
    }

    /// Worth a quick retry (backoff); otherwise the object waits for a change, or the slow
    /// retry.
    pub fn is_transient(self) -> bool {
        match self {
            Self::ServiceAccountNotFound
            | Self::QuotaExceeded
            | Self::GcpUnavailable(_)
            | Self::GcpError(_)
            | Self::ChecksumMismatch
            | Self::OperationFailed
            | Self::Waiting => true,
            Self::TokenExchangeFailed { transient } => transient,
            Self::Kubernetes(refusal) => refusal.is_transient(),
            Self::InvalidSpec
            | Self::InvalidSetting
            | Self::IdentityRequired
            | Self::ServiceAccountNotOptedIn
            | Self::PermissionDenied
            | Self::SecretNotFound
            | Self::VersionNotFound
            | Self::VersionDisabled
            | Self::VersionDestroyed
            | Self::InvalidPayload
            | Self::TargetConflict
            | Self::ApiKeySecretConflict
            | Self::ApiKeyDeleted
            | Self::ForeignResource => false,
        }
    }
}

impl GcpReason {
    fn reason(self) -> &'static str {
        match self {
            Self::PermissionDenied => reasons::PERMISSION_DENIED,
            Self::QuotaExceeded => reasons::QUOTA_EXCEEDED,
            Self::Unavailable => reasons::GCP_UNAVAILABLE,
        }
    }
}

/// What fails the same way in every controller, all on the Kubernetes side: an API call, a
/// child object, the finalizer helper. Each controller's error enum holds it once, as
/// `#[error(transparent)] Kube(#[from] KubeFailure)`, and lets `?` lift its parts into it
/// ([`lift_kube_failures`]).
#[derive(Debug, thiserror::Error)]
pub enum KubeFailure {
    #[error("Kubernetes API: {}", refusal::describe(.0))]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Child(#[from] ChildError),
    #[error(transparent)]
    Finalizer(#[from] FinalizerFailed),
}

impl KubeFailure {
    pub fn category(&self) -> Category {
        Category::Kubernetes(match self {
            Self::Api(error) => Refusal::of(error),
            Self::Child(error) => error.refusal(),
            Self::Finalizer(_) => Refusal::Failed,
        })
    }
}

/// The finalizer helper's own failures that carry no Kubernetes error (an object without a name).
#[derive(Debug, thiserror::Error)]
#[error("finalizer: {0}")]
pub struct FinalizerFailed(pub String);

/// `From` a Kubernetes API error and a child's for a controller's error enum whose `Kube`
/// variant holds a [`KubeFailure`], so that `?` lifts either into it.
macro_rules! lift_kube_failures {
    ($error:ty) => {
        impl From<kube::Error> for $error {
            fn from(error: kube::Error) -> Self {
                Self::Kube(error.into())
            }
        }

        impl From<$crate::runtime::children::ChildError> for $error {
            fn from(error: $crate::runtime::children::ChildError) -> Self {
                Self::Kube(error.into())
            }
        }
    };
}
pub(crate) use lift_kube_failures;

/// A spec the operator refuses where the schema cannot (an object written under an older CRD, a
/// rule no schema expresses): the field, by its path (`spec.target.type`), and what is wrong with
/// it. The text is the condition message and never carries secret data: a field of the spec is
/// not secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {field}: {problem}")]
pub struct InvalidField {
    pub field: String,
    pub problem: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every category with its label, reason and retry: the public contract, written out once
    /// more so that a change to any of them is a change to this table.
    #[test]
    fn every_category_keeps_its_label_reason_and_retry() {
        use Category::*;
        let kube = |refusal| Kubernetes(refusal);
        let table: &[(Category, &str, &str, bool)] = &[
            (InvalidSpec, "invalid_spec", "InvalidSpec", false),
            (InvalidSetting, "invalid_setting", "InvalidSpec", false),
            (IdentityRequired, "identity_required", "IdentityRequired", false),
            (ServiceAccountNotFound, "service_account_not_found", "ServiceAccountNotFound", true),
            (ServiceAccountNotOptedIn, "service_account_not_opted_in", "ServiceAccountNotOptedIn", false),
            (TokenExchangeFailed { transient: true }, "token_exchange_failed", "TokenExchangeFailed", true),
            (TokenExchangeFailed { transient: false }, "token_exchange_failed", "TokenExchangeFailed", false),
            (PermissionDenied, "permission_denied", "PermissionDenied", false),
            (QuotaExceeded, "quota_exceeded", "QuotaExceeded", true),
            (GcpUnavailable(GcpReason::Unavailable), "gcp_unavailable", "GcpUnavailable", true),
            (GcpUnavailable(GcpReason::QuotaExceeded), "gcp_unavailable", "QuotaExceeded", true),
            (GcpUnavailable(GcpReason::PermissionDenied), "gcp_unavailable", "PermissionDenied", true),
            (GcpError(GcpReason::Unavailable), "gcp_error", "GcpUnavailable", true),
            (GcpError(GcpReason::QuotaExceeded), "gcp_error", "QuotaExceeded", true),
            (GcpError(GcpReason::PermissionDenied), "gcp_error", "PermissionDenied", true),
            (SecretNotFound, "secret_not_found", "SecretNotFound", false),
            (VersionNotFound, "version_not_found", "VersionNotFound", false),
            (VersionDisabled, "version_disabled", "VersionDisabled", false),
            (VersionDestroyed, "version_destroyed", "VersionDestroyed", false),
            (ChecksumMismatch, "checksum_mismatch", "ChecksumMismatch", true),
            (InvalidPayload, "invalid_payload", "InvalidPayload", false),
            (TargetConflict, "target_conflict", "TargetConflict", false),
            (OperationFailed, "operation_failed", "OperationFailed", true),
            (ApiKeySecretConflict, "invalid_spec", "ApiKeySecretConflict", false),
            (ApiKeyDeleted, "invalid_spec", "ApiKeyDeleted", false),
            (ForeignResource, "invalid_spec", "OwnershipConflict", false),
            (kube(Refusal::Failed), "kubernetes", "KubernetesError", true),
            (kube(Refusal::QuotaExceeded), "kubernetes", "QuotaExceeded", false),
            (kube(Refusal::Forbidden), "kubernetes", "Forbidden", false),
            (kube(Refusal::Invalid), "kubernetes", "Invalid", false),
            (kube(Refusal::Rejected), "kubernetes", "Rejected", false),
            (kube(Refusal::Conflict), "kubernetes", "Conflict", true),
            (kube(Refusal::NotOurs), "kubernetes", "OwnershipConflict", false),
            (Waiting, "waiting", "Reconciling", true),
        ];
        for (category, label, reason, transient) in table {
            assert_eq!(
                (category.metric_label(), category.reason(), category.is_transient()),
                (*label, *reason, *transient),
                "{category:?}"
            );
        }
    }

    #[test]
    fn the_shared_failures_are_kubernetes_failures_and_keep_their_text() {
        let status = kube::core::Status::failure("secrets \"db\" is forbidden", "Forbidden").with_code(403);
        let forbidden = KubeFailure::from(kube::Error::Api(Box::new(status)));
        assert_eq!(forbidden.category(), Category::Kubernetes(Refusal::Forbidden));
        assert_eq!(forbidden.to_string(), "Kubernetes API: Forbidden (HTTP 403): secrets \"db\" is forbidden");
        let finalizer = KubeFailure::from(FinalizerFailed("object has no name".into()));
        assert_eq!(finalizer.category(), Category::Kubernetes(Refusal::Failed));
        assert_eq!(finalizer.to_string(), "finalizer: object has no name");
        let not_ours = KubeFailure::from(ChildError::NotOurs { kind: "Service".into(), name: "api".into() });
        assert_eq!(not_ours.category().reason(), "OwnershipConflict");
        assert!(not_ours.to_string().starts_with("Service api exists and is not this object's"), "{not_ours}");
    }

    #[test]
    fn an_invalid_field_names_the_field_then_the_problem() {
        let invalid = InvalidField::new("spec.refreshInterval", "must be at least 1s");
        assert_eq!(invalid.to_string(), "invalid spec: spec.refreshInterval: must be at least 1s");
    }
}
