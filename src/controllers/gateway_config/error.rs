//! Why a GatewayConfig reconcile failed, or that it waits for a deletion step to finish.

use crate::api::conditions::reasons;
use crate::gcp::{Code, GcpError};
use crate::identity::IdentityError;
use crate::runtime::children::ChildError;
use crate::runtime::refusal;
use crate::runtime::skeleton::{Failure, FinalizerFailed};
use std::time::Duration;

/// How often a pending operation is polled.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Gcp(#[from] GcpError),
    #[error("operation {name} failed: {message}")]
    OperationFailed { name: String, message: String },
    /// An API Keys or Service Usage call failed (kept apart from API Gateway's: ApiKeysReady).
    #[error("{0}")]
    ApiKeys(GcpError),
    #[error("API key operation {name} failed: {message}")]
    KeyOperationFailed { name: String, message: String },
    #[error("Secret {0} exists and was not made for this GatewayConfig's API keys; it is left alone")]
    KeySecretConflict(String),
    #[error("API key {0} was deleted: its rotation value was used before; set a new apiKeys[].rotation")]
    KeyDeleted(String),
    /// A Google Cloud resource under this object's ids is not this GatewayConfig's (its labels
    /// say whose it is not; the message names the resource, not the other owner).
    #[error("{0} exists and is not this GatewayConfig's: the operator leaves it alone (choose other ids)")]
    OwnershipConflict(String),
    #[error("{0}")]
    Child(#[from] ChildError),
    #[error("Kubernetes API: {}", refusal::describe(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(#[from] FinalizerFailed),
    #[error("API Gateway is not configured (--api-gateway-endpoint or credentials)")]
    NoClient,
    /// Not a failure: a deletion step is still running.
    #[error("waiting for {0}")]
    Waiting(String),
}

impl Failure for Error {
    fn category(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Identity(e) => e.category(),
            Self::Gcp(e) if e.is_transient() => "gcp_unavailable",
            Self::Gcp(_) => "gcp_error",
            Self::OperationFailed { .. } | Self::KeyOperationFailed { .. } => "operation_failed",
            Self::ApiKeys(e) if e.is_transient() => "gcp_unavailable",
            Self::ApiKeys(_) => "gcp_error",
            Self::KeySecretConflict(_) | Self::KeyDeleted(_) | Self::OwnershipConflict(_) => "invalid_spec",
            Self::Kube(_) | Self::Finalizer(_) | Self::Child(_) => "kubernetes",
            Self::NoClient => "invalid_setting",
            Self::Waiting(_) => "waiting",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) | Self::NoClient => reasons::INVALID_SPEC,
            Self::Identity(e) => e.reason(),
            Self::Gcp(e) | Self::ApiKeys(e) => gcp_reason(e),
            Self::OperationFailed { .. } | Self::KeyOperationFailed { .. } => reasons::OPERATION_FAILED,
            Self::KeySecretConflict(_) => reasons::API_KEY_SECRET_CONFLICT,
            Self::KeyDeleted(_) => reasons::API_KEY_DELETED,
            Self::OwnershipConflict(_) => reasons::OWNERSHIP_CONFLICT,
            Self::Child(e) => e.reason(),
            Self::Kube(e) => refusal::reason(e),
            Self::Finalizer(_) => reasons::KUBERNETES_ERROR,
            Self::Waiting(_) => reasons::RECONCILING,
        }
    }

    /// A GatewayConfig failure is retried with backoff: Google Cloud's state moves on its own
    /// (operations finish, quotas refill), and the retry re-reads it. Only a missing identity
    /// (`IdentityRequired`, a refused exchange) or someone else's resource under our ids waits for
    /// a change, as in the other controllers.
    fn is_transient(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_transient(),
            Self::OwnershipConflict(_) => false,
            _ => true,
        }
    }

    fn waiting(&self) -> Option<Duration> {
        matches!(self, Self::Waiting(_)).then_some(POLL)
    }
}

impl Error {
    /// Whether the failure is about `spec.apiKeys` (reported on ApiKeysReady too).
    pub fn is_api_keys(&self) -> bool {
        matches!(
            self,
            Self::ApiKeys(_) | Self::KeyOperationFailed { .. } | Self::KeySecretConflict(_) | Self::KeyDeleted(_)
        )
    }
}

fn gcp_reason(error: &GcpError) -> &'static str {
    match error.status {
        Code::PermissionDenied => reasons::PERMISSION_DENIED,
        Code::ResourceExhausted => reasons::QUOTA_EXCEEDED,
        _ => reasons::GCP_UNAVAILABLE,
    }
}
