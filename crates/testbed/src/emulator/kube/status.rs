//! Failures as kube-apiserver reports them: an HTTP code and a `meta/v1` `Status` body.

use serde_json::{Value, json};

/// A failed request, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 for one object: `secrets "db" not found`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found")).with_details(name, group, resource)
    }

    /// 404 for a path that names no resource.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 403 from admission: the request is understood and refused for this object.
    pub fn forbidden(message: String, name: &str, group: &str, resource: &str) -> Self {
        Self::new(403, "Forbidden", message).with_details(name, group, resource)
    }

    /// 405: the resource does not support the verb.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 409 on create: the name is taken.
    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(409, "AlreadyExists", format!("{qualified} \"{name}\" already exists"))
            .with_details(name, group, resource)
    }

    /// 409 on a stale `resourceVersion` (optimistic concurrency).
    pub fn conflict(resource: &str, group: &str, name: &str, why: &str) -> Self {
        let qualified = qualified(resource, group);
        Self::new(409, "Conflict", format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"))
            .with_details(name, group, resource)
    }

    /// 409 from server-side apply: fields owned by other managers.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self { code: 409, reason: "Conflict", message, details: Some(json!({ "causes": causes })) }
    }

    /// 410: the requested resourceVersion is older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415: a body in an encoding (or with content) the server cannot decode.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 422: the object fails validation.
    pub fn invalid(kind: &str, group: &str, name: &str, message: String, causes: Vec<Value>) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message,
            details: Some(json!({ "name": name, "group": group, "kind": kind, "causes": causes })),
        }
    }

    /// 500: a fault the emulator cannot explain better.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// An injected fault: any code, with the reason kube-apiserver gives that code.
    pub fn injected(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, message)
    }

    fn with_details(mut self, name: &str, group: &str, resource: &str) -> Self {
        self.details = Some(json!({ "name": name, "group": group, "kind": resource }));
        self
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `deployments.apps`, or `secrets` for the core group.
fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() { resource.to_owned() } else { format!("{resource}.{group}") }
}

/// A `Status` for a successful deletion that returns no object.
pub fn success_status(resource: &str, group: &str, name: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": { "name": name, "group": group, "kind": resource },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let status = ApiError::not_found("deployments", "apps", "web").to_status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["name"], "web");
    }

    #[test]
    fn conflict_reads_like_the_apiserver() {
        let error = ApiError::conflict("secrets", "", "db", "the object has been modified");
        assert_eq!(error.code, 409);
        assert_eq!(error.message, "Operation cannot be fulfilled on secrets \"db\": the object has been modified");
    }
}
