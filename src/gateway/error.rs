//! Why a GatewayConfig spec cannot be rendered.

/// Why a spec cannot be rendered. Each message names the route (by path) and the fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    /// A route's `backend.service` has no resolved URL (absent or empty in `backends`).
    #[error(
        "route {route}: backend.service {service:?} has no URL yet; wait until that SecureApiService reports status.externalUrl"
    )]
    MissingBackend { route: String, service: String },
    /// Two operations would share an operationId.
    #[error("operationId {0:?} is used by two operations; give the routes distinct operationIds")]
    DuplicateOperationId(String),
    /// `auth: jwt:NAME` names no provider in `auth.jwt`.
    #[error("route {route}: auth jwt:{provider} names no provider in auth.jwt; declare it or fix the name")]
    UnknownJwtProvider { route: String, provider: String },
    /// A route charges a metric not declared in `quotas`.
    #[error("route {route}: quota metric {metric:?} is not declared in quotas; add it there")]
    UnknownQuotaMetric { route: String, metric: String },
    /// Two routes (or one route twice) declare the same method on the same path.
    #[error("{method} {path} is declared twice; keep one route per method and path")]
    DuplicateRoute { path: String, method: String },
    /// `auth` is not `none`, `apiKey` or `jwt:<provider>`.
    #[error("route {route}: auth {auth:?} is not one of none, apiKey, jwt:<provider>")]
    InvalidAuth { route: String, auth: String },
    /// The backend is malformed (both or neither of service and address, non-finite deadline).
    #[error("route {route}: {reason}")]
    InvalidBackend { route: String, reason: String },
    /// A JWT provider is named like the API-key security definition while both are in use.
    #[error("auth.jwt provider {0:?} clashes with the API-key security definition; rename the provider")]
    JwtProviderNameClash(String),
    /// The YAML serializer failed (not expected for a JSON value).
    #[error("cannot write the document as YAML: {0}")]
    Yaml(String),
}
