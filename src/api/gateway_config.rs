//! `GatewayConfig`: an API surface declared in Kubernetes and provisioned as Google Cloud API
//! Gateway (API, immutable API configs rendered as OpenAPI 2.0, and a regional gateway).

use super::conditions::Condition;
use super::policy::DeletionPolicy;
use super::schema::{
    DNS_SUBDOMAIN_PATTERN, DURATION_PATTERN, GCP_SERVICE_ACCOUNT_PATTERN, PROJECT_ID_PATTERN, SECRET_KEY_PATTERN,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use kube::core::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Annotation whose change (to any new value) rotates every API key of a GatewayConfig.
pub const ROTATE_API_KEYS_ANNOTATION: &str = "secureapi.dev/rotate-api-keys";
/// Annotation on an API key's Secret: the id of the key whose string it holds.
pub const API_KEY_ID_ANNOTATION: &str = "secureapi.dev/api-key-id";
/// Default of `spec.apiKeys[].overlap`.
pub const DEFAULT_KEY_OVERLAP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Default of `spec.location`.
pub const DEFAULT_LOCATION: &str = "us-central1";

/// Ids of APIs, configs and gateways: lowercase letters, digits and hyphens.
const RESOURCE_ID_PATTERN: &str = r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$";
/// Names usable in OpenAPI and service-control identifiers.
const IDENTIFIER_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$";

/// Declares routes, backends, API keys, JWT providers and quotas; the operator renders them as an
/// OpenAPI 2.0 document and keeps a Google Cloud API Gateway serving it.
// Repeated `type_ = ...` keys in separate printcolumn(...) groups are not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secureapi.dev",
    version = "v1alpha1",
    kind = "GatewayConfig",
    namespaced,
    status = "GatewayConfigStatus",
    shortname = "gwc",
    category = "secureapi",
    derive = "PartialEq",
    doc = "GatewayConfig declares an API surface (routes, backends, API keys, JWT, quotas) and provisions Google Cloud API Gateway from it.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether the gateway serves the current config"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Config",
        type_ = "string",
        json_path = ".status.apiConfigId",
        description = "API config the gateway serves"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.gatewayUrl", description = "Gateway URL"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.routes.all(r, !has(r.auth) || !r.auth.startsWith('jwt:') || (has(self.auth) && has(self.auth.jwt) && self.auth.jwt.exists(j, 'jwt:' + j.name == r.auth)))",
        "message": "a route's auth jwt:NAME must name a provider in auth.jwt",
    },
    {
        "rule": "self.routes.all(r, !has(r.quota) || r.quota.all(m, has(self.quotas) && self.quotas.exists(q, q.metric == m)))",
        "message": "a route's quota names a metric that is not declared in quotas",
    },
    {
        "rule": "self.routes.all(a, self.routes.exists_one(b, b.path == a.path && b.methods.exists(m, m in a.methods)))",
        "message": "two routes declare the same method on the same path",
    },
    {
        "rule": "!has(self.apiKeys) || self.apiKeys.all(a, self.apiKeys.exists_one(b, b.secretName == a.secretName))",
        "message": "two API keys write into the same Secret",
    },
]))]
pub struct GatewayConfigSpec {
    /// Google Cloud project of the API and gateway. Defaults to the operator's `--gcp-project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(PROJECT_ID_PATTERN))]
    pub project_id: Option<String>,

    /// Region of the gateway, e.g. `us-central1`.
    #[serde(default = "default_location")]
    #[schemars(pattern(r"^[a-z]+-[a-z]+[0-9]+$"))]
    pub location: String,

    /// API id. Defaults to `<namespace>-<name>` (shortened with a hash past 50 characters).
    /// Immutable once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        pattern(RESOURCE_ID_PATTERN),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "apiId is immutable"}])
    )]
    pub api_id: Option<String>,

    /// Gateway id. Defaults to `<namespace>-<name>` (shortened with a hash past 50 characters).
    /// Immutable once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        pattern(RESOURCE_ID_PATTERN),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "gatewayId is immutable"}])
    )]
    pub gateway_id: Option<String>,

    /// Kubernetes ServiceAccount of this namespace whose Google identity makes every Google Cloud
    /// call for this object (Workload Identity Federation; with the annotation
    /// `iam.gke.io/gcp-service-account` it acts as that Google service account). Unset: the
    /// operator's own identity, only in namespaces the operator allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub service_account_name: Option<String>,

    /// Google service account the gateway uses to call backends (and to sign backend JWTs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254), pattern(GCP_SERVICE_ACCOUNT_PATTERN))]
    pub gateway_service_account: Option<String>,

    /// Display name of the API and gateway. Defaults to the GatewayConfig's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub display_name: Option<String>,

    /// How callers authenticate: API keys and JWT providers that routes refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GatewayAuth>,

    /// Per-minute quotas (per consumer project) that routes draw from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["metric"]))]
    pub quotas: Vec<Quota>,

    /// API keys restricted to this gateway's API (its managed service), each written into a
    /// Secret of this namespace. Changing a key's `rotation` (or `methods`), or the annotation
    /// `secureapi.dev/rotate-api-keys`, creates a new key; the replaced one stays valid for
    /// `overlap`, then is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub api_keys: Vec<GatewayApiKey>,

    /// The API's operations.
    #[schemars(length(min = 1, max = 100), extend("x-kubernetes-list-type" = "atomic"))]
    pub routes: Vec<Route>,

    /// What deleting the GatewayConfig does in Google Cloud: `Delete` (default) removes the
    /// gateway, its configs and the API; `Retain` leaves them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_location() -> String {
    DEFAULT_LOCATION.to_owned()
}

/// Caller authentication methods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAuth {
    /// Where callers put their API key. When absent, routes with `auth: apiKey` read it from the
    /// query parameter `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuth>,

    /// JWT providers; a route selects one with `auth: jwt:<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub jwt: Vec<JwtProvider>,
}

/// One API key of the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.rotationPeriod) || duration(self.overlap) < duration(self.rotationPeriod)",
    "message": "overlap must be shorter than rotationPeriod: a key is deleted before the next one is replaced",
}]))]
pub struct GatewayApiKey {
    /// Name of the key within this GatewayConfig (part of the key id in Google Cloud).
    #[schemars(length(min = 1, max = 20), pattern(r"^[a-z]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// Secret of this namespace the key string is written into (created and owned by the operator).
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: String,
    /// Key of the Secret's data holding the key string.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub secret_key: String,
    /// Operations (`operationId`s) the key may call; empty: every operation of the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub methods: Vec<String>,
    /// Any value; changing it rotates the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub rotation: Option<String>,
    /// How long a replaced key stays valid after its rotation, e.g. `24h` (default), `90m`.
    #[serde(default = "default_key_overlap")]
    #[schemars(length(max = 32), pattern(DURATION_PATTERN), extend("default" = "24h"))]
    pub overlap: Duration,
    /// Rotates the key on its own every period, e.g. `720h`, counted from the GatewayConfig's
    /// creation; at least `10s`, and longer than `overlap`. None when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        pattern(DURATION_PATTERN),
        extend("x-kubernetes-validations" = [{
            "rule": "duration(self) >= duration('10s')",
            "message": "rotationPeriod must be at least 10s",
        }])
    )]
    pub rotation_period: Option<Duration>,
}

fn default_secret_key() -> String {
    "api-key".to_owned()
}

fn default_key_overlap() -> Duration {
    DEFAULT_KEY_OVERLAP.into()
}

/// Location of the API key in a request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// `query` (default) or `header`.
    #[serde(default, rename = "in")]
    pub in_: ApiKeyLocation,
    /// Query parameter or header name. Defaults to `key` in the query, `x-api-key` in a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_-]+$"))]
    pub name: Option<String>,
}

/// Where an API key travels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyLocation {
    #[default]
    Query,
    Header,
}

/// A JWT issuer the gateway accepts tokens from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtProvider {
    /// Name routes use to select this provider (`auth: jwt:<name>`).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z][a-z0-9_-]*$"))]
    pub name: String,
    /// Expected `iss` claim, e.g. `https://accounts.google.com`.
    #[schemars(length(min = 1, max = 2048))]
    pub issuer: String,
    /// URL of the issuer's JSON Web Key Set.
    #[schemars(length(max = 2048), pattern(r"^https://\S+$"))]
    pub jwks_uri: String,
    /// Accepted `aud` claims. Empty: the gateway's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 2048)))]
    pub audiences: Vec<String>,
}

/// A per-minute limit on a metric.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Metric name that routes charge (`quota: {<metric>: <cost>}`).
    #[schemars(length(min = 1, max = 63), pattern(IDENTIFIER_PATTERN))]
    pub metric: String,
    /// Allowed cost per minute per consumer project.
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub limit_per_minute: i64,
}

/// One or more operations on one path.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Path template, e.g. `/api/data` or `/items/{id}`.
    #[schemars(length(min = 1, max = 256), pattern(r"^/[A-Za-z0-9._~/{}-]*$"))]
    pub path: String,

    /// HTTP methods served on the path.
    #[serde(default = "default_methods")]
    #[schemars(length(min = 1, max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub methods: Vec<HttpMethod>,

    /// OpenAPI operationId. Generated from method and path when absent; must be unique.
    /// With several methods, the method is appended (`getItem` → `getItemPost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(IDENTIFIER_PATTERN))]
    pub operation_id: Option<String>,

    /// `none` (default, public), `apiKey`, or `jwt:<provider name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 67), pattern(r"^(none|apiKey|jwt:[a-z][a-z0-9_-]*)$"))]
    pub auth: Option<String>,

    /// Where the gateway sends the request.
    pub backend: Backend,

    /// Quota cost per call, by metric declared in `quotas`, e.g. `{read-requests: 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxProperties" = 8,
        "additionalProperties" = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 1_000_000}
    ))]
    pub quota: Option<BTreeMap<String, i64>>,
}

fn default_methods() -> Vec<HttpMethod> {
    vec![HttpMethod::GET]
}

/// HTTP methods.
#[allow(clippy::upper_case_acronyms)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum HttpMethod {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
    OPTIONS,
}

/// A route's backend: a SecureApiService in the same namespace, or an explicit address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.service) != has(self.address)",
    "message": "set exactly one of backend.service and backend.address",
}]))]
pub struct Backend {
    /// Name of a SecureApiService in the same namespace; its `status.externalUrl` is the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub service: Option<String>,

    /// Explicit backend URL, e.g. `https://api.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(r"^https?://[^\s/]+(/\S*)?$"))]
    pub address: Option<String>,

    /// `APPEND_PATH_TO_ADDRESS` (default: the request path is appended to the address) or
    /// `CONSTANT_ADDRESS` (the address is used as is, path parameters become query parameters).
    #[serde(default)]
    pub path_translation: PathTranslation,

    /// Seconds the gateway waits for the backend, above 0 (API Gateway's default is 15).
    // An exclusive minimum of 0, not `minimum: 0.001`: kube-apiserver compares a whole JSON
    // number (`0`, `-0`) with the minimum truncated to an integer, so 0 would pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 3600.0), extend("exclusiveMinimum" = true))]
    pub deadline_seconds: Option<f64>,

    /// Audience of the Google-signed JWT the gateway sends the backend. Defaults to the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub jwt_audience: Option<String>,

    /// Do not send the backend a Google-signed JWT (for backends that are not Google services).
    #[serde(default)]
    pub disable_auth: bool,
}

/// How API Gateway builds the backend URL.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PathTranslation {
    #[default]
    APPEND_PATH_TO_ADDRESS,
    CONSTANT_ADDRESS,
}

/// Observed state of a GatewayConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigStatus {
    /// Id of the API in use, fixed at the first provisioning (`spec.apiId`, or the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// Id of the gateway in use, fixed at the first provisioning (`spec.gatewayId`, or the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    /// API config the gateway serves (`<apiId>-<hash>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_config_id: Option<String>,
    /// API config served before the current one, kept for rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_api_config_id: Option<String>,
    /// `https://` + the gateway's default hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    /// Managed service name of the API (for enabling it and creating API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_service: Option<String>,
    /// Long-running operation in flight (full name), polled on later reconciles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<String>,
    /// The managed service enabled in the project for the API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys_service: Option<String>,
    /// The API keys of `spec.apiKeys`: ids, never key strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub api_keys: Vec<ApiKeyStatus>,
    /// Keys replaced by a rotation or removed from the spec, valid until `deleteAfter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub retired_api_keys: Vec<RetiredApiKey>,
    /// API Keys or Service Usage operation in flight, as `//SERVICE.googleapis.com/operations/ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key_operation: Option<String>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, `Ready` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The key currently written into an API key's Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStatus {
    /// `spec.apiKeys[].name`.
    pub name: String,
    /// Id of the key in Google Cloud (`projects/P/locations/global/keys/ID`).
    pub key_id: String,
    /// The Secret holding its string.
    pub secret_name: String,
    /// With `rotationPeriod`: when the key is next replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub next_rotation_time: Option<Time>,
}

/// A key that no longer is any Secret's current one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetiredApiKey {
    /// Id of the key in Google Cloud.
    pub key_id: String,
    /// When the operator deletes it.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub delete_after: Time,
    /// For a key removed from the spec: its Secret, deleted with the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

impl super::conditions::HasConditions for GatewayConfigStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}
