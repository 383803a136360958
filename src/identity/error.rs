//! Why no Google identity could be had for an object. Texts name the namespace, the
//! ServiceAccount and Google's error code — never a token.

use crate::api::USABLE_BY_ANNOTATION;
use crate::api::conditions::reasons;
use crate::gcp::{Code, GcpError};
use crate::runtime::refusal;

#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "namespace {namespace} may not use the operator's own Google identity: set spec.serviceAccountName to a ServiceAccount of this namespace"
    )]
    Required { namespace: String },
    /// `account` is `namespace/name` in every variant that names a ServiceAccount.
    #[error("ServiceAccount {account} not found")]
    ServiceAccountNotFound { account: String },
    /// The ServiceAccount's `secureapi.dev/usable-by` does not list `kind`: no token was asked for.
    #[error(
        "ServiceAccount {account} is not opted in for {kind}s: whoever administers ServiceAccounts sets the annotation {annotation}: {kind} on it (a comma-separated list of kinds, or *); a change of the ServiceAccount does not wake this {kind}, it is tried again every few minutes or at once when it changes",
        annotation = USABLE_BY_ANNOTATION
    )]
    NotOptedIn { account: String, kind: String },
    #[error("TokenRequest for ServiceAccount {account}: {message}")]
    TokenRequest { account: String, message: String, transient: bool },
    #[error("Workload Identity is not configured: {0}")]
    NotConfigured(String),
    #[error("token exchange for ServiceAccount {account}: {source}")]
    Exchange {
        account: String,
        #[source]
        source: GcpError,
    },
    #[error("ServiceAccount {account} may not act as {service_account}: {source}")]
    Impersonation {
        account: String,
        service_account: String,
        #[source]
        source: GcpError,
    },
}

impl IdentityError {
    /// The TokenRequest call failed: the API server's refusal, with its HTTP status.
    pub fn token_request(account: &str, error: &kube::Error) -> Self {
        Self::TokenRequest {
            account: account.to_owned(),
            message: refusal::describe(error),
            transient: refusal::is_transient(error),
        }
    }

    /// Reason of the `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => reasons::IDENTITY_REQUIRED,
            Self::ServiceAccountNotFound { .. } => reasons::SERVICE_ACCOUNT_NOT_FOUND,
            Self::NotOptedIn { .. } => reasons::SERVICE_ACCOUNT_NOT_OPTED_IN,
            Self::Impersonation { source, .. } if source.status == Code::PermissionDenied => reasons::PERMISSION_DENIED,
            Self::TokenRequest { .. } | Self::NotConfigured(_) | Self::Exchange { .. } | Self::Impersonation { .. } => {
                reasons::TOKEN_EXCHANGE_FAILED
            }
        }
    }

    /// Fixed label for metrics.
    pub fn category(&self) -> &'static str {
        match self.reason() {
            reasons::IDENTITY_REQUIRED => "identity_required",
            reasons::SERVICE_ACCOUNT_NOT_FOUND => "service_account_not_found",
            reasons::SERVICE_ACCOUNT_NOT_OPTED_IN => "service_account_not_opted_in",
            reasons::PERMISSION_DENIED => "permission_denied",
            _ => "token_exchange_failed",
        }
    }

    /// A missing ServiceAccount may appear any moment (a SecureApiService creates it), and
    /// Google's or the API server's passing trouble is retried; refusals wait for a change (or
    /// the slow retry: a ServiceAccount opting in wakes no object, the retry finds it).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ServiceAccountNotFound { .. } => true,
            Self::TokenRequest { transient, .. } => *transient,
            Self::Exchange { source, .. } | Self::Impersonation { source, .. } => source.is_transient(),
            Self::Required { .. } | Self::NotOptedIn { .. } | Self::NotConfigured(_) => false,
        }
    }
}
