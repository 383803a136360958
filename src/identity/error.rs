//! Why no Google identity could be had for an object. Texts name the namespace, the
//! ServiceAccount and Google's error code — never a token.

use crate::api::USABLE_BY_ANNOTATION;
use crate::gcp::{Code, GcpError};
use crate::runtime::error::Category;
use crate::runtime::refusal::{self, Refusal};

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
            transient: Refusal::of(error).is_transient(),
        }
    }

    /// The category: the condition reason, the metric label and the retry follow from it. A
    /// missing ServiceAccount may appear any moment (a SecureApiService creates it), and Google's
    /// or the API server's passing trouble is retried; refusals wait for a change (or the slow
    /// retry: a ServiceAccount opting in wakes no object, the retry finds it).
    pub fn category(&self) -> Category {
        match self {
            Self::Required { .. } => Category::IdentityRequired,
            Self::ServiceAccountNotFound { .. } => Category::ServiceAccountNotFound,
            Self::NotOptedIn { .. } => Category::ServiceAccountNotOptedIn,
            Self::Impersonation { source, .. } if source.status == Code::PermissionDenied => Category::PermissionDenied,
            Self::TokenRequest { transient, .. } => Category::TokenExchangeFailed { transient: *transient },
            Self::NotConfigured(_) => Category::TokenExchangeFailed { transient: false },
            Self::Exchange { source, .. } | Self::Impersonation { source, .. } => {
                Category::TokenExchangeFailed { transient: source.is_transient() }
            }
        }
    }

    /// Whether a retry soon may succeed (see [`Self::category`]).
    pub fn is_transient(&self) -> bool {
        self.category().is_transient()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::Detail;

    fn gcp(status: Code, http_code: Option<u16>) -> GcpError {
        GcpError { http_code, ..GcpError::new("iamcredentials.generateAccessToken", "sa", status, None) }
    }

    fn account() -> String {
        "team-a/reader".into()
    }

    #[test]
    fn a_denied_impersonation_is_permission_denied_and_any_other_exchange_failure_is_not() {
        let denied = IdentityError::Impersonation {
            account: account(),
            service_account: "reader@p.iam.gserviceaccount.com".into(),
            source: gcp(Code::PermissionDenied, Some(403)),
        };
        assert_eq!(denied.category(), Category::PermissionDenied);
        assert!(!denied.is_transient());
        let busy = IdentityError::Impersonation {
            account: account(),
            service_account: "reader@p.iam.gserviceaccount.com".into(),
            source: gcp(Code::Unavailable, Some(503)),
        };
        assert_eq!(busy.category(), Category::TokenExchangeFailed { transient: true });
        let refused = IdentityError::Exchange {
            account: account(),
            source: GcpError::new("sts.token", "", Code::InvalidArgument, Some(Detail::OAuth("invalid_grant"))),
        };
        assert_eq!(refused.category(), Category::TokenExchangeFailed { transient: false });
    }

    #[test]
    fn a_missing_service_account_is_retried_soon_and_refusals_wait() {
        let missing = IdentityError::ServiceAccountNotFound { account: account() };
        assert_eq!((missing.category().metric_label(), missing.is_transient()), ("service_account_not_found", true));
        let required = IdentityError::Required { namespace: "team-a".into() };
        assert_eq!((required.category().reason(), required.is_transient()), ("IdentityRequired", false));
        let opted_out = IdentityError::NotOptedIn { account: account(), kind: "SecretRef".into() };
        assert_eq!(opted_out.category(), Category::ServiceAccountNotOptedIn);
        assert!(!IdentityError::NotConfigured("no pool".into()).is_transient());
    }

    #[test]
    fn a_token_request_keeps_what_the_api_server_said() {
        let status = kube::core::Status::failure("serviceaccounts \"reader\" is forbidden", "Forbidden").with_code(403);
        let forbidden = IdentityError::token_request("team-a/reader", &kube::Error::Api(Box::new(status)));
        assert_eq!(forbidden.category(), Category::TokenExchangeFailed { transient: false });
        assert!(forbidden.to_string().contains("Forbidden (HTTP 403)"), "{forbidden}");
        let busy = kube::core::Status::failure("etcdserver: request timed out", "InternalError").with_code(500);
        let busy = IdentityError::token_request("team-a/reader", &kube::Error::Api(Box::new(busy)));
        assert_eq!(busy.category(), Category::TokenExchangeFailed { transient: true });
    }
}
