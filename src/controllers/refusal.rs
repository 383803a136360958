//! Kubernetes API failures as conditions report them: the API server's answer mapped to a fixed
//! reason, and a message with the HTTP status and the server's own words, which name what refused
//! the write (a ResourceQuota, an admission webhook, Pod Security admission, RBAC).

use crate::api::conditions::reasons;

/// The condition reason for a failed Kubernetes API call.
pub fn reason(error: &kube::Error) -> &'static str {
    let kube::Error::Api(status) = error else { return reasons::KUBERNETES_ERROR };
    match status.code {
        // A ResourceQuota refusal is a 403 whose message starts "exceeded quota: <name>".
        403 if status.message.contains("exceeded quota") => reasons::QUOTA_EXCEEDED,
        403 => reasons::FORBIDDEN,
        422 => reasons::INVALID,
        400 => reasons::REJECTED,
        409 => reasons::CONFLICT,
        _ => reasons::KUBERNETES_ERROR,
    }
}

/// Whether a retry soon may succeed: the server was busy, unreachable or raced us. A refusal
/// (forbidden, invalid, rejected, over quota) stands until someone changes something.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => !matches!(status.code, 400 | 403 | 422),
        _ => true,
    }
}

/// `Forbidden (HTTP 403): <the API server's message>`, or the client's error.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() { "Failure" } else { status.reason.as_str() };
            format!("{reason} (HTTP {}): {}", status.code, status.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn refusals_get_the_reason_the_api_server_gave() {
        let quota = api_error(
            403,
            "Forbidden",
            "deployments.apps \"api\" is forbidden: exceeded quota: none, requested: count/deployments.apps=1",
        );
        assert_eq!(reason(&quota), reasons::QUOTA_EXCEEDED);
        assert_eq!(reason(&api_error(403, "Forbidden", "denied by policy")), reasons::FORBIDDEN);
        assert_eq!(reason(&api_error(422, "Invalid", "spec.replicas: Invalid value")), reasons::INVALID);
        assert_eq!(reason(&api_error(400, "BadRequest", "admission webhook denied the request")), reasons::REJECTED);
        assert_eq!(reason(&api_error(409, "Conflict", "the object has been modified")), reasons::CONFLICT);
        assert_eq!(reason(&api_error(503, "ServiceUnavailable", "")), reasons::KUBERNETES_ERROR);
    }

    #[test]
    fn refusals_wait_and_server_trouble_retries() {
        assert!(!is_transient(&api_error(403, "Forbidden", "")));
        assert!(!is_transient(&api_error(422, "Invalid", "")));
        assert!(is_transient(&api_error(409, "Conflict", "")));
        assert!(is_transient(&api_error(500, "InternalError", "")));
    }

    #[test]
    fn the_description_carries_the_status_and_the_server_message() {
        let text = describe(&api_error(403, "Forbidden", "exceeded quota: none"));
        assert_eq!(text, "Forbidden (HTTP 403): exceeded quota: none");
    }
}
