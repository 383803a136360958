//! Why a GatewayConfig reconcile failed, or that it waits for a deletion step to finish. Each
//! variant has its [`Category`]; the retry is this controller's own (see [`Error::is_transient`]).

use crate::gateway::RenderError;
use crate::gcp::{Code, GcpError};
use crate::identity::IdentityError;
use crate::runtime::error::{Category, GcpReason, InvalidField, KubeFailure, lift_kube_failures};
use crate::runtime::skeleton::Failure;
use std::time::Duration;

/// How often a pending operation is polled.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidSpec(#[from] InvalidField),
    /// The routes cannot be rendered into an API document (the text names the route and the fix).
    #[error("invalid spec: {0}")]
    Routes(#[from] RenderError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// An API Gateway call failed.
    #[error(transparent)]
    Gcp(#[from] GcpError),
    #[error("operation {name} failed: {message}")]
    OperationFailed { name: String, message: String },
    /// An API Keys or Service Usage call failed (kept apart from API Gateway's: ApiKeysReady).
    #[error(transparent)]
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
    #[error(transparent)]
    Kube(#[from] KubeFailure),
    /// The operator runs without API Gateway clients: a setting of the operator, which the spec
    /// cannot fix.
    #[error("API Gateway is not configured (--api-gateway-endpoint or credentials)")]
    NoClient,
    /// Not a failure: a deletion step is still running.
    #[error("waiting for {0}")]
    Waiting(String),
}

lift_kube_failures!(Error);

impl Failure for Error {
    fn category(&self) -> Category {
        match self {
            Self::InvalidSpec(_) | Self::Routes(_) => Category::InvalidSpec,
            Self::Identity(error) => error.category(),
            Self::Gcp(error) | Self::ApiKeys(error) => call_failure(error),
            Self::OperationFailed { .. } | Self::KeyOperationFailed { .. } => Category::OperationFailed,
            Self::KeySecretConflict(_) => Category::ApiKeySecretConflict,
            Self::KeyDeleted(_) => Category::ApiKeyDeleted,
            Self::OwnershipConflict(_) => Category::ForeignResource,
            Self::Kube(error) => error.category(),
            Self::NoClient => Category::InvalidSetting,
            Self::Waiting(_) => Category::Waiting,
        }
    }

    /// A GatewayConfig failure is retried with backoff, whatever its category: Google Cloud's
    /// state moves on its own (operations finish, quotas refill), and the retry re-reads it. Only
    /// a missing identity (`IdentityRequired`, a refused exchange) or someone else's resource
    /// under our ids waits for a change, as in the other controllers.
    fn is_transient(&self) -> bool {
        match self {
            Self::Identity(_) | Self::OwnershipConflict(_) => self.category().is_transient(),
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

/// A failed API Gateway or API Keys call: counted by whether it was passing trouble, reported by
/// what Google's status says.
fn call_failure(error: &GcpError) -> Category {
    let reason = match error.status {
        Code::PermissionDenied => GcpReason::PermissionDenied,
        Code::ResourceExhausted => GcpReason::QuotaExceeded,
        _ => GcpReason::Unavailable,
    };
    if error.is_transient() { Category::GcpUnavailable(reason) } else { Category::GcpError(reason) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::Detail;
    use crate::runtime::skeleton::outcome;

    fn call(status: Code, http_code: Option<u16>) -> GcpError {
        GcpError {
            http_code,
            ..GcpError::new("apigateway.apis.create", "projects/p/locations/global/apis/a", status, None)
        }
    }

    /// API Gateway's and API Keys' answers are counted by whether they were passing trouble and
    /// reported by what Google said, as before.
    #[test]
    fn a_failed_call_is_counted_by_passing_trouble_and_reported_by_googles_status() {
        let cases = [
            (call(Code::PermissionDenied, Some(403)), "gcp_error", "PermissionDenied"),
            (call(Code::ResourceExhausted, Some(429)), "gcp_unavailable", "QuotaExceeded"),
            (call(Code::Unavailable, Some(503)), "gcp_unavailable", "GcpUnavailable"),
            (call(Code::InvalidArgument, Some(400)), "gcp_error", "GcpUnavailable"),
            (
                GcpError::new("apigateway.apis.get", "a", Code::Unavailable, Some(Detail::Timeout)),
                "gcp_unavailable",
                "GcpUnavailable",
            ),
        ];
        for (answer, label, reason) in cases {
            for error in [Error::Gcp(answer.clone()), Error::ApiKeys(answer.clone())] {
                assert_eq!((error.category().metric_label(), error.reason()), (label, reason), "{error}");
                assert!(error.is_transient(), "{error}: Google Cloud's state moves on its own");
            }
        }
    }

    #[test]
    fn only_a_missing_identity_or_someone_elses_resource_waits_for_a_change() {
        let foreign = Error::OwnershipConflict("API projects/p/locations/global/apis/a".into());
        assert_eq!(outcome(&foreign), ("invalid_spec", "OwnershipConflict", false));
        let required = Error::Identity(IdentityError::Required { namespace: "team-a".into() });
        assert!(!required.is_transient());
        let missing = Error::Identity(IdentityError::ServiceAccountNotFound { account: "team-a/gw".into() });
        assert!(missing.is_transient());
        let invalid = Error::from(InvalidField::new("spec.projectId", "not set"));
        assert_eq!(
            (invalid.reason(), invalid.is_transient()),
            ("InvalidSpec", true),
            "retried with backoff, as before"
        );
        let status = kube::core::Status::failure("forbidden", "Forbidden").with_code(403);
        let refused = Error::from(kube::Error::Api(Box::new(status)));
        assert_eq!((refused.reason(), refused.is_transient()), ("Forbidden", true));
        let conflict = Error::KeySecretConflict("client-key".into());
        assert_eq!(outcome(&conflict), ("invalid_spec", "ApiKeySecretConflict", true));
    }

    #[test]
    fn no_api_gateway_client_is_an_operator_setting_reported_as_invalid_spec() {
        let error = Error::NoClient;
        assert_eq!((error.category().metric_label(), error.reason()), ("invalid_setting", "InvalidSpec"));
        assert!(error.is_transient());
        assert_eq!(error.waiting(), None);
    }

    #[test]
    fn a_deletion_step_in_progress_is_waited_for_not_reported() {
        let waiting = Error::Waiting("a deletion operation".into());
        assert_eq!(waiting.waiting(), Some(POLL));
        assert_eq!(waiting.category(), Category::Waiting);
        assert!(!waiting.is_api_keys());
        assert!(
            Error::KeyDeleted("k".into()).is_api_keys()
                && Error::ApiKeys(call(Code::Internal, Some(500))).is_api_keys()
        );
        assert!(!Error::Gcp(call(Code::Internal, Some(500))).is_api_keys());
    }
}
