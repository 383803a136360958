//! Typed GCP errors that are safe to show anywhere: method, resource name, HTTP code and
//! canonical status — never the server's free-text message, never a payload.

use std::fmt;

use serde::Deserialize;

/// Canonical status (google.rpc.Code), reduced to what the operator distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// NOT_FOUND (HTTP 404).
    NotFound,
    /// PERMISSION_DENIED (HTTP 403).
    PermissionDenied,
    /// UNAUTHENTICATED (HTTP 401), or no usable token.
    Unauthenticated,
    /// FAILED_PRECONDITION (HTTP 400 on Secret Manager: disabled/destroyed version).
    FailedPrecondition,
    /// INVALID_ARGUMENT (HTTP 400).
    InvalidArgument,
    /// RESOURCE_EXHAUSTED (HTTP 429, quota).
    ResourceExhausted,
    /// UNAVAILABLE (HTTP 503, or a connection error).
    Unavailable,
    /// DEADLINE_EXCEEDED (HTTP 504, or the per-attempt timeout).
    DeadlineExceeded,
    /// INTERNAL (HTTP 500).
    Internal,
    /// ABORTED (HTTP 409).
    Aborted,
    /// ALREADY_EXISTS.
    AlreadyExists,
    /// Anything else, including malformed responses.
    Unknown,
}

impl Code {
    /// The google.rpc name, e.g. "NOT_FOUND".
    pub fn as_str(&self) -> &'static str {
        match self {
            Code::NotFound => "NOT_FOUND",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Unavailable => "UNAVAILABLE",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::Internal => "INTERNAL",
            Code::Aborted => "ABORTED",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// Parses a google.rpc status name; `None` when it is not one we distinguish.
    pub fn from_status(status: &str) -> Option<Code> {
        let code = match status {
            "NOT_FOUND" => Code::NotFound,
            "PERMISSION_DENIED" => Code::PermissionDenied,
            "UNAUTHENTICATED" => Code::Unauthenticated,
            "FAILED_PRECONDITION" => Code::FailedPrecondition,
            "INVALID_ARGUMENT" => Code::InvalidArgument,
            "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
            "UNAVAILABLE" => Code::Unavailable,
            "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
            "INTERNAL" => Code::Internal,
            "ABORTED" => Code::Aborted,
            "ALREADY_EXISTS" => Code::AlreadyExists,
            "UNKNOWN" => Code::Unknown,
            _ => return None,
        };
        Some(code)
    }

    /// The usual status for an HTTP code (Google's HTTP ↔ gRPC mapping).
    pub fn from_http(http_code: u16) -> Code {
        match http_code {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::Aborted,
            412 => Code::FailedPrecondition,
            429 => Code::ResourceExhausted,
            500 => Code::Internal,
            503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finer reason than the status, for precise conditions and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detail {
    /// FAILED_PRECONDITION: the version "is in DISABLED state".
    VersionDisabled,
    /// FAILED_PRECONDITION: the version "is in DESTROYED state".
    VersionDestroyed,
    /// NOT_FOUND: "Secret Version [...] not found." — the secret exists, that version does not
    /// (a missing secret says "Secret [...] not found or has no versions.").
    VersionNotFound,
    /// The per-attempt timeout elapsed (client side).
    Timeout,
    /// The connection failed or broke before a full response.
    Connect,
    /// No access token could be obtained.
    Token,
    /// A success answer whose body could not be decoded.
    MalformedResponse,
    /// The request was rejected before sending (e.g. an invalid version string).
    InvalidRequest,
    /// An OAuth error code from a token endpoint (STS): `invalid_grant`, `invalid_target`, ...
    OAuth(&'static str),
}

impl Detail {
    /// Short lower-case text shown in parentheses.
    pub fn as_str(&self) -> &'static str {
        match self {
            Detail::VersionDisabled => "version disabled",
            Detail::VersionDestroyed => "version destroyed",
            Detail::VersionNotFound => "version not found",
            Detail::Timeout => "timeout",
            Detail::Connect => "connection failed",
            Detail::Token => "no access token",
            Detail::MalformedResponse => "malformed response",
            Detail::InvalidRequest => "invalid request",
            Detail::OAuth(code) => code,
        }
    }
}

/// A failed GCP call. `Display` is one line: `<method> <resource>: HTTP <code> <STATUS> (<detail>)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct GcpError {
    /// Method id, e.g. "secretmanager.versions.access".
    pub method: &'static str,
    /// Resource name as requested, e.g. "projects/p/secrets/db/versions/latest".
    pub resource: String,
    /// HTTP status when the server answered; `None` for timeouts, connection and client errors.
    pub http_code: Option<u16>,
    /// Canonical status.
    pub status: Code,
    /// Finer reason, when known.
    pub detail: Option<Detail>,
}

impl fmt::Display for GcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.resource)?;
        if let Some(code) = self.http_code {
            write!(f, "HTTP {code} ")?;
        }
        f.write_str(self.status.as_str())?;
        match self.detail {
            Some(detail) => write!(f, " ({})", detail.as_str()),
            None => Ok(()),
        }
    }
}

impl GcpError {
    /// An error without HTTP answer.
    pub fn new(method: &'static str, resource: impl Into<String>, status: Code, detail: Option<Detail>) -> Self {
        Self { method, resource: resource.into(), http_code: None, status, detail }
    }

    /// Classifies an HTTP error answer from its body (`{"error":{"status","message"}}`), falling
    /// back to the HTTP code. The message is only inspected, never kept.
    pub fn from_response(method: &'static str, resource: impl Into<String>, http_code: u16, body: &[u8]) -> Self {
        let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok().map(|envelope| envelope.error);
        if parsed.is_none()
            && let Some(code) = oauth_error(body)
        {
            let status = Code::from_http(http_code);
            return Self { method, resource: resource.into(), http_code: Some(http_code), status, detail: Some(code) };
        }
        let status = parsed
            .as_ref()
            .and_then(|error| error.status.as_deref())
            .and_then(Code::from_status)
            .unwrap_or_else(|| Code::from_http(http_code));
        let message = parsed.as_ref().and_then(|error| error.message.as_deref()).unwrap_or("");
        let detail = match status {
            Code::FailedPrecondition => version_state(message),
            Code::NotFound => missing_version(message),
            _ => None,
        };
        Self { method, resource: resource.into(), http_code: Some(http_code), status, detail }
    }

    /// Whether retrying later may succeed: HTTP 429 and 5xx, timeouts, connection errors, ABORTED.
    pub fn is_transient(&self) -> bool {
        matches!(self.http_code, Some(429 | 500..=599))
            || matches!(self.status, Code::Unavailable | Code::DeadlineExceeded | Code::Aborted)
    }
}

/// OAuth token endpoints (STS) answer `{"error": "invalid_grant", "error_description": ...}`:
/// the code (from RFC 6749's fixed set) is kept, the description never.
fn oauth_error(body: &[u8]) -> Option<Detail> {
    #[derive(Deserialize)]
    struct OAuthEnvelope {
        error: String,
    }
    const CODES: [&str; 8] = [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "access_denied",
    ];
    let envelope: OAuthEnvelope = serde_json::from_slice(body).ok()?;
    let code = CODES.iter().find(|code| **code == envelope.error).copied().unwrap_or("oauth_error");
    Some(Detail::OAuth(code))
}

/// Secret Manager says "Secret Version [...] is in DISABLED state." (or DESTROYED).
fn version_state(message: &str) -> Option<Detail> {
    if message.contains("DISABLED state") {
        Some(Detail::VersionDisabled)
    } else if message.contains("DESTROYED state") {
        Some(Detail::VersionDestroyed)
    } else {
        None
    }
}

/// Secret Manager names what is missing: "Secret Version [...] not found." when only the version
/// is, "Secret [...] not found or has no versions." when the secret is (or holds no version).
fn missing_version(message: &str) -> Option<Detail> {
    (message.starts_with("Secret Version [") && message.contains("not found")).then_some(Detail::VersionNotFound)
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{Code, Detail, GcpError};

    const METHOD: &str = "secretmanager.versions.access";
    const RESOURCE: &str = "projects/p/secrets/db/versions/latest";

    fn body(code: u16, status: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message, "status": status}}).to_string().into_bytes()
    }

    #[test]
    fn classifies_from_the_status_string() {
        let error = GcpError::from_response(METHOD, RESOURCE, 404, &body(404, "NOT_FOUND", "Secret [x] not found"));
        assert_eq!((error.status, error.http_code, error.detail), (Code::NotFound, Some(404), None));
        let error = GcpError::from_response(METHOD, RESOURCE, 400, &body(400, "INVALID_ARGUMENT", "bad"));
        assert_eq!(error.status, Code::InvalidArgument);
    }

    #[test]
    fn detects_disabled_and_destroyed_versions() {
        let disabled =
            body(400, "FAILED_PRECONDITION", "Secret Version [projects/1/secrets/db/versions/3] is in DISABLED state.");
        let error = GcpError::from_response(METHOD, RESOURCE, 400, &disabled);
        assert_eq!((error.status, error.detail), (Code::FailedPrecondition, Some(Detail::VersionDisabled)));
        let destroyed = body(400, "FAILED_PRECONDITION", "Secret Version [x] is in DESTROYED state.");
        let error = GcpError::from_response(METHOD, RESOURCE, 400, &destroyed);
        assert_eq!(error.detail, Some(Detail::VersionDestroyed));
        // The state words only count for FAILED_PRECONDITION.
        let other = body(404, "NOT_FOUND", "Secret [DISABLED state] not found");
        assert_eq!(GcpError::from_response(METHOD, RESOURCE, 404, &other).detail, None);
    }

    #[test]
    fn tells_a_missing_version_from_a_missing_secret() {
        let version = body(404, "NOT_FOUND", "Secret Version [projects/1/secrets/db/versions/99] not found.");
        let error = GcpError::from_response(METHOD, RESOURCE, 404, &version);
        assert_eq!((error.status, error.detail), (Code::NotFound, Some(Detail::VersionNotFound)));
        assert!(error.to_string().ends_with("HTTP 404 NOT_FOUND (version not found)"), "{error}");
        let secret = body(404, "NOT_FOUND", "Secret [projects/1/secrets/db] not found or has no versions.");
        assert_eq!(GcpError::from_response(METHOD, RESOURCE, 404, &secret).detail, None);
    }

    #[test]
    fn falls_back_to_the_http_code() {
        let cases = [(429, Code::ResourceExhausted), (503, Code::Unavailable), (403, Code::PermissionDenied)];
        for (http, code) in cases {
            assert_eq!(GcpError::from_response(METHOD, RESOURCE, http, b"<html>oops</html>").status, code);
        }
        let unknown_status = body(500, "SOMETHING_NEW", "x");
        assert_eq!(GcpError::from_response(METHOD, RESOURCE, 500, &unknown_status).status, Code::Internal);
        assert_eq!(GcpError::from_response(METHOD, RESOURCE, 418, b"").status, Code::Unknown);
    }

    #[test]
    fn transient_classification() {
        let from = |http: u16, status: &str| GcpError::from_response(METHOD, RESOURCE, http, &body(http, status, "m"));
        assert!(from(429, "RESOURCE_EXHAUSTED").is_transient());
        assert!(from(503, "UNAVAILABLE").is_transient());
        assert!(from(500, "INTERNAL").is_transient());
        assert!(from(409, "ABORTED").is_transient());
        assert!(!from(404, "NOT_FOUND").is_transient());
        assert!(!from(403, "PERMISSION_DENIED").is_transient());
        assert!(!from(400, "FAILED_PRECONDITION").is_transient());
        assert!(GcpError::new(METHOD, RESOURCE, Code::DeadlineExceeded, Some(Detail::Timeout)).is_transient());
        let oauth =
            GcpError::from_response(METHOD, RESOURCE, 400, br#"{"error":"invalid_grant","error_description":"x"}"#);
        assert_eq!((oauth.status, oauth.detail), (Code::InvalidArgument, Some(Detail::OAuth("invalid_grant"))));
        assert_eq!(oauth.to_string(), format!("{METHOD} {RESOURCE}: HTTP 400 INVALID_ARGUMENT (invalid_grant)"));
        let odd = GcpError::from_response(METHOD, RESOURCE, 400, br#"{"error":"made-up <script>"}"#);
        assert_eq!(odd.detail, Some(Detail::OAuth("oauth_error")));
        assert!(GcpError::new(METHOD, RESOURCE, Code::Unavailable, Some(Detail::Connect)).is_transient());
        assert!(!GcpError::new(METHOD, RESOURCE, Code::Unknown, Some(Detail::MalformedResponse)).is_transient());
    }

    #[test]
    fn display_is_one_line_without_the_server_message() {
        let message = "SENTINEL-secret-value\nsecond line";
        let error = GcpError::from_response(METHOD, RESOURCE, 400, &body(400, "FAILED_PRECONDITION", message));
        let shown = error.to_string();
        assert_eq!(
            shown,
            "secretmanager.versions.access projects/p/secrets/db/versions/latest: HTTP 400 FAILED_PRECONDITION"
        );
        let debug = format!("{error:?}");
        assert!(!shown.contains('\n') && !shown.contains("SENTINEL") && !debug.contains("SENTINEL"));

        let disabled =
            GcpError::from_response(METHOD, RESOURCE, 400, &body(400, "FAILED_PRECONDITION", "is in DISABLED state."));
        assert!(disabled.to_string().ends_with(": HTTP 400 FAILED_PRECONDITION (version disabled)"));
        let timeout = GcpError::new(METHOD, RESOURCE, Code::DeadlineExceeded, Some(Detail::Timeout));
        assert!(timeout.to_string().ends_with("latest: DEADLINE_EXCEEDED (timeout)"));
    }

    #[test]
    fn status_names_round_trip() {
        let all = [
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Aborted,
            Code::AlreadyExists,
            Code::Unknown,
        ];
        for code in all {
            assert_eq!(Code::from_status(code.as_str()), Some(code));
        }
        assert_eq!(Code::from_status("CANCELLED"), None);
    }
}
