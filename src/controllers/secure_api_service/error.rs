//! Why a SecureApiService reconcile failed. A refused write keeps the API server's reason
//! (`Forbidden`, `Invalid`, `QuotaExceeded`, …) and message, which names what refused it.

use crate::api::conditions::reasons;
use crate::runtime::children::ChildError;
use crate::runtime::refusal;
use crate::runtime::skeleton::{Failure, FinalizerFailed};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Child(#[from] ChildError),
    #[error("Kubernetes API: {}", refusal::describe(.0))]
    Kube(#[from] kube::Error),
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    Finalizer(#[from] FinalizerFailed),
}

impl Failure for Error {
    fn category(&self) -> &'static str {
        match self {
            Self::Child(_) | Self::Kube(_) | Self::Finalizer(_) => "kubernetes",
            Self::InvalidSpec(_) => "invalid_spec",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Child(e) => e.reason(),
            Self::Kube(e) => refusal::reason(e),
            Self::InvalidSpec(_) => reasons::INVALID_SPEC,
            Self::Finalizer(_) => reasons::KUBERNETES_ERROR,
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            Self::Child(e) => e.is_transient(),
            Self::Kube(e) => refusal::is_transient(e),
            Self::InvalidSpec(_) => false,
            Self::Finalizer(_) => true,
        }
    }
}
