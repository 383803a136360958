//! Errors as Google's REST APIs answer them: a `google.rpc.Status` inside `{"error": ...}`, with
//! the HTTP status that the canonical code maps to.

use serde_json::{Value, json};
use std::fmt;

/// A canonical error code (`google.rpc.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The caller cancelled (HTTP 499).
    Cancelled,
    /// An error with no better code (HTTP 500).
    Unknown,
    /// A bad request, whatever the state (HTTP 400).
    InvalidArgument,
    /// The deadline passed (HTTP 504).
    DeadlineExceeded,
    /// The resource does not exist (HTTP 404).
    NotFound,
    /// The resource to create exists (HTTP 409).
    AlreadyExists,
    /// The caller may not do this (HTTP 403).
    PermissionDenied,
    /// A quota or rate limit is used up (HTTP 429).
    ResourceExhausted,
    /// The resource is not in a state that allows this (HTTP 400).
    FailedPrecondition,
    /// A concurrency conflict, e.g. a stale etag (HTTP 409).
    Aborted,
    /// Past the valid range (HTTP 400).
    OutOfRange,
    /// The method is not served (HTTP 501).
    Unimplemented,
    /// A server bug (HTTP 500).
    Internal,
    /// Transient: try again (HTTP 503).
    Unavailable,
    /// Unrecoverable data loss (HTTP 500).
    DataLoss,
    /// No valid credentials (HTTP 401).
    Unauthenticated,
}

impl Code {
    /// The name written in the `status` field, e.g. `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The number of the code in `google.rpc.Code` (what an operation's `error.code` holds).
    pub fn number(self) -> i32 {
        match self {
            Self::Cancelled => 1,
            Self::Unknown => 2,
            Self::InvalidArgument => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::AlreadyExists => 6,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::OutOfRange => 11,
            Self::Unimplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::DataLoss => 15,
            Self::Unauthenticated => 16,
        }
    }

    /// The HTTP status Google's front ends answer for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition | Self::OutOfRange => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::AlreadyExists | Self::Aborted => 409,
            Self::ResourceExhausted => 429,
            Self::Cancelled => 499,
            Self::Unknown | Self::Internal | Self::DataLoss => 500,
            Self::Unimplemented => 501,
            Self::Unavailable => 503,
            Self::DeadlineExceeded => 504,
        }
    }

    /// The code a client infers from an HTTP status (the inverse of [`Code::http_status`]; 409
    /// reads as `ABORTED`, any other unmapped status as `UNKNOWN`).
    pub fn from_http_status(status: u16) -> Self {
        match status {
            400 => Self::InvalidArgument,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            409 => Self::Aborted,
            412 => Self::FailedPrecondition,
            416 => Self::OutOfRange,
            429 => Self::ResourceExhausted,
            499 => Self::Cancelled,
            500 => Self::Internal,
            501 => Self::Unimplemented,
            503 => Self::Unavailable,
            504 => Self::DeadlineExceeded,
            _ => Self::Unknown,
        }
    }
}

/// One failed call: the canonical code, the HTTP status it is answered with, and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// The canonical code, written as `status`.
    pub code: Code,
    /// The HTTP status of the answer, also written as `code`.
    pub http_status: u16,
    /// What went wrong, for people.
    pub message: String,
}

impl RpcError {
    /// An error with the HTTP status that `code` maps to.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, http_status: code.http_status(), message: message.into() }
    }

    /// An error answered with exactly `http_status` (an injected fault), its code inferred.
    pub fn with_http_status(http_status: u16, message: impl Into<String>) -> Self {
        Self { code: Code::from_http_status(http_status), http_status, message: message.into() }
    }

    /// 400 `INVALID_ARGUMENT`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// 400 `FAILED_PRECONDITION`.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// 409 `ALREADY_EXISTS`.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    /// 409 `ABORTED`, as answered for a stale etag.
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Code::Aborted, message)
    }

    /// 500 `INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// 404 for a path that names no method, as Google's front ends answer it.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::not_found(format!("Method {method} {path} is not served by this emulator."))
    }

    /// The response body: `{"error":{"code":404,"message":"...","status":"NOT_FOUND"}}`.
    pub fn to_json(&self) -> Value {
        json!({ "error": { "code": self.http_status, "message": self.message, "status": self.code.name() } })
    }

    /// The bare `google.rpc.Status` with the numeric code, as a failed long-running operation
    /// carries it in `error`: `{"code":3,"message":"..."}`.
    pub fn to_status(&self) -> Value {
        json!({ "code": self.code.number(), "message": self.message })
    }
}

/// A `google.longrunning.Operation` as every emulated service answers it: `name`, `metadata`
/// when the service has some, `done`, and `response` or `error` once done.
pub fn operation_json(name: &str, metadata: Option<Value>, result: Option<&Result<Value, RpcError>>) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("name".into(), json!(name));
    if let Some(metadata) = metadata {
        object.insert("metadata".into(), metadata);
    }
    object.insert("done".into(), json!(result.is_some()));
    match result {
        Some(Ok(response)) => object.insert("response".into(), response.clone()),
        Some(Err(error)) => object.insert("error".into(), error.to_status()),
        None => None,
    };
    Value::Object(object)
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.http_status, self.code.name(), self.message)
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_a_google_rpc_status_with_the_http_code() {
        let error = RpcError::not_found("Secret [projects/p/secrets/s] not found.");
        assert_eq!(
            error.to_json(),
            json!({"error": {"code": 404, "message": "Secret [projects/p/secrets/s] not found.", "status": "NOT_FOUND"}})
        );
    }

    #[test]
    fn failed_precondition_is_answered_as_400() {
        let error = RpcError::failed_precondition("is in DISABLED state.");
        assert_eq!(error.http_status, 400);
        assert_eq!(error.to_json()["error"]["status"], "FAILED_PRECONDITION");
    }

    #[test]
    fn stale_etag_is_409_aborted_and_duplicate_is_409_already_exists() {
        assert_eq!((RpcError::aborted("etag mismatch").http_status, Code::Aborted.name()), (409, "ABORTED"));
        assert_eq!(RpcError::already_exists("x").to_json()["error"]["status"], "ALREADY_EXISTS");
    }

    #[test]
    fn injected_http_statuses_map_to_canonical_codes() {
        let cases = [
            (429, "RESOURCE_EXHAUSTED"),
            (503, "UNAVAILABLE"),
            (500, "INTERNAL"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (401, "UNAUTHENTICATED"),
            (504, "DEADLINE_EXCEEDED"),
        ];
        for (status, name) in cases {
            let error = RpcError::with_http_status(status, "injected");
            assert_eq!((error.http_status, error.code.name()), (status, name));
        }
    }

    #[test]
    fn an_operation_error_carries_the_numeric_code() {
        assert_eq!(RpcError::invalid_argument("bad").to_status(), json!({"code": 3, "message": "bad"}));
        assert_eq!(RpcError::internal("x").to_status()["code"], 13);
        assert_eq!((Code::FailedPrecondition.number(), Code::Unauthenticated.number()), (9, 16));
    }

    #[test]
    fn an_unmapped_http_status_keeps_its_number_and_reads_unknown() {
        let error = RpcError::with_http_status(502, "bad gateway");
        assert_eq!(error.to_json()["error"], json!({"code": 502, "message": "bad gateway", "status": "UNKNOWN"}));
    }

    #[test]
    fn every_code_maps_back_from_its_http_status_except_shared_ones() {
        for code in [Code::NotFound, Code::PermissionDenied, Code::ResourceExhausted, Code::Unavailable, Code::Internal]
        {
            assert_eq!(Code::from_http_status(code.http_status()), code);
        }
    }
}
