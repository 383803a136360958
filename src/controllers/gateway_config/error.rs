//! Why a GatewayConfig reconcile failed, or that it waits for a deletion step to finish.

use crate::api::conditions::reasons;
use crate::controllers::identity::IdentityError;
use crate::controllers::refusal;
use crate::controllers::skeleton::{Failure, FinalizerFailed};
use crate::gcp::{Code, GcpError};
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
            Self::OperationFailed { .. } => "operation_failed",
            Self::Kube(_) | Self::Finalizer(_) => "kubernetes",
            Self::NoClient => "invalid_setting",
            Self::Waiting(_) => "waiting",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) | Self::NoClient => reasons::INVALID_SPEC,
            Self::Identity(e) => e.reason(),
            Self::Gcp(e) if e.status == Code::PermissionDenied => reasons::PERMISSION_DENIED,
            Self::Gcp(e) if e.status == Code::ResourceExhausted => reasons::QUOTA_EXCEEDED,
            Self::Gcp(_) => reasons::GCP_UNAVAILABLE,
            Self::OperationFailed { .. } => reasons::OPERATION_FAILED,
            Self::Kube(e) => refusal::reason(e),
            Self::Finalizer(_) => reasons::KUBERNETES_ERROR,
            Self::Waiting(_) => reasons::RECONCILING,
        }
    }

    /// A GatewayConfig failure is retried with backoff: Google Cloud's state moves on its own
    /// (operations finish, quotas refill), and the retry re-reads it. Only a missing identity
    /// (`IdentityRequired`, a refused exchange) waits for a change, as in the other controllers.
    fn is_transient(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_transient(),
            _ => true,
        }
    }

    fn waiting(&self) -> Option<Duration> {
        matches!(self, Self::Waiting(_)).then_some(POLL)
    }
}
