//! `SecretRef`: one Google Cloud Secret Manager secret, synced into one Kubernetes Secret.

use super::conditions::Condition;
use super::policy::DeletionPolicy;
use super::schema::{DNS_SUBDOMAIN_PATTERN, DURATION_PATTERN, PROJECT_ID_PATTERN, SECRET_KEY_PATTERN};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use kube::core::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default of `spec.version`.
pub const DEFAULT_VERSION: &str = "latest";
/// Default of `spec.refreshInterval`.
pub const DEFAULT_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Secret key used for a `raw` payload when `keys` is empty.
pub const DEFAULT_RAW_KEY: &str = "value";

/// The Secret types a SecretRef may write: those whose meaning is only their data. The others
/// make Kubernetes act (a `kubernetes.io/service-account-token` Secret is filled with a
/// long-lived token of the ServiceAccount its annotation names: any of the namespace's).
pub const SECRET_TYPES: [&str; 5] = [
    "Opaque",
    "kubernetes.io/tls",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
];

/// Most `target.labels` (and `target.annotations`) entries: bounds the CEL cost estimate of the
/// reserved-keys rule, which kube-apiserver otherwise derives from the request size.
pub const MAX_TARGET_METADATA: u32 = 64;

/// CEL rule on `target.labels` and `target.annotations`: no key under `kubernetes.io/` or
/// `k8s.io/` (or a subdomain of them), where Kubernetes acts upon what it finds — but for
/// `app.kubernetes.io/`, the recommended labels every tool sets and nothing acts upon. A valid key has
/// at most one `/`, so `.kubernetes.io/` anywhere in it ends its prefix. `startsWith` and
/// `contains` with constants, over at most [`MAX_TARGET_METADATA`] keys, keep the cost estimate
/// small. [`is_reserved_key`] is the same test for the controller.
pub const RESERVED_KEYS_RULE: &str = "self.all(k, k.startsWith('app.kubernetes.io/') || !(k.startsWith('kubernetes.io/') || k.startsWith('k8s.io/') || k.contains('.kubernetes.io/') || k.contains('.k8s.io/')))";
/// Message of [`RESERVED_KEYS_RULE`].
pub const RESERVED_KEYS_MESSAGE: &str =
    "keys under kubernetes.io/ and k8s.io/ (or a subdomain of them but app.kubernetes.io/) are reserved for Kubernetes";

/// Whether a label or annotation key is under `kubernetes.io/` or `k8s.io/` (or a subdomain of
/// them), as [`RESERVED_KEYS_RULE`] decides it.
pub fn is_reserved_key(key: &str) -> bool {
    !key.starts_with("app.kubernetes.io/")
        && (key.starts_with("kubernetes.io/")
            || key.starts_with("k8s.io/")
            || key.contains(".kubernetes.io/")
            || key.contains(".k8s.io/"))
}

/// CEL rules on the whole SecretRef: its name is the value of a label on its Secret.
pub const OBJECT_RULES: &[super::ObjectRule] = &[super::NAME_FITS_A_LABEL];

/// Syncs one Google Cloud Secret Manager secret into a Kubernetes Secret in the same namespace,
/// keeps it current when the secret rotates, and can roll the workloads that use it.
// Repeated `type_ = ...` keys in separate printcolumn(...) groups are not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secureapi.dev",
    version = "v1alpha1",
    kind = "SecretRef",
    namespaced,
    status = "SecretRefStatus",
    shortname = "sref",
    category = "secureapi",
    derive = "PartialEq",
    doc = "SecretRef syncs one Google Cloud Secret Manager secret into a Kubernetes Secret in the same namespace and keeps it current when the secret rotates.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether the target Secret holds the requested version"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.syncedVersion",
        description = "Secret Manager version number currently synced"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.format != 'raw' || !has(self.keys) || (size(self.keys) <= 1 && self.keys.all(k, !has(k.property)))",
        "message": "format raw maps the whole payload to one key: at most one entry in keys, without property",
    },
    {
        "rule": "!self.secret.startsWith('projects/') || !has(self.projectId) || self.secret.startsWith('projects/' + self.projectId + '/')",
        "message": "projectId disagrees with the project in secret's resource name",
    },
]))]
pub struct SecretRefSpec {
    /// Google Cloud project that holds the secret. Defaults to the operator's `--gcp-project`;
    /// ignored when `secret` is a full resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(PROJECT_ID_PATTERN))]
    pub project_id: Option<String>,

    /// Kubernetes ServiceAccount of this namespace whose Google identity makes every Google Cloud
    /// call for this object (Workload Identity Federation; with the annotation
    /// `iam.gke.io/gcp-service-account` it acts as that Google service account). Unset: the
    /// operator's own identity, only in namespaces the operator allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub service_account_name: Option<String>,

    /// The Secret Manager secret: a secret id (`api-config-db`), a resource name
    /// (`projects/P/secrets/S`) or a regional resource name (`projects/P/locations/L/secrets/S`).
    #[schemars(
        length(min = 1, max = 512),
        pattern(r"^([A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{6,30}/secrets/[A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{6,30}/locations/[a-z0-9-]+/secrets/[A-Za-z0-9_-]{1,255})$")
    )]
    pub secret: String,

    /// Version to sync: `latest` (the most recently created version), a version number (`7`,
    /// pinned: never fetched again unless the spec or the target Secret changes) or an alias.
    #[serde(default = "default_version")]
    #[schemars(pattern(r"^(latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62})$"))]
    pub version: String,

    /// How often `latest` and aliases are re-checked, as a duration (`30s`, `5m`, `1h`); a safety
    /// net when Pub/Sub notifications are on. Jitter of up to 10% spreads the checks.
    #[serde(default = "default_refresh_interval")]
    #[schemars(
        pattern(DURATION_PATTERN),
        extend("default" = "1h"),
        extend("x-kubernetes-validations" = [{
            "rule": "duration(self) >= duration('1s') && duration(self) <= duration('168h')",
            "message": "refreshInterval must be between 1s and 168h",
        }])
    )]
    pub refresh_interval: Duration,

    /// The Kubernetes Secret to write.
    #[serde(default)]
    pub target: SecretTarget,

    /// How the payload becomes Secret keys: `raw` (the bytes under one key), `json` (an object's
    /// properties as keys) or `dotenv` (`KEY=value` lines as keys).
    #[serde(default)]
    pub format: PayloadFormat,

    /// Which keys to write, and where each one's value comes from. Empty: `raw` writes key
    /// `value`; `json` writes every top-level property; `dotenv` writes every variable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub keys: Vec<KeyMapping>,

    /// Workloads in this namespace to roll when a new version is synced. Each gets the pod-template
    /// annotation `secureapi.dev/secret-version: <secretref>=<version>`: one change per version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind", "name"]))]
    pub rollout_targets: Vec<RolloutTarget>,
}

fn default_version() -> String {
    DEFAULT_VERSION.to_owned()
}

fn default_refresh_interval() -> Duration {
    DEFAULT_REFRESH_INTERVAL.into()
}

/// The Kubernetes Secret a SecretRef writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTarget {
    /// Name of the Secret. Defaults to the SecretRef's name. Always in the SecretRef's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: Option<String>,

    /// Secret type: `Opaque` (default), `kubernetes.io/tls`, `kubernetes.io/dockerconfigjson`,
    /// `kubernetes.io/basic-auth` or `kubernetes.io/ssh-auth`. Types that Kubernetes acts upon
    /// (`kubernetes.io/service-account-token` would mint a token for any ServiceAccount of the
    /// namespace) are refused.
    // A string with an enum, not a Rust enum: an object written under an older CRD must still
    // deserialize, so that the controller can report it (see `SECRET_TYPES`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = SECRET_TYPES))]
    pub type_: Option<String>,

    /// Extra labels on the Secret (the operator's own labels always win). Keys under
    /// `kubernetes.io/` and `k8s.io/` (or a subdomain of them) are reserved for Kubernetes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_TARGET_METADATA, "x-kubernetes-validations" = [{"rule": RESERVED_KEYS_RULE, "message": RESERVED_KEYS_MESSAGE}]))]
    pub labels: BTreeMap<String, String>,

    /// Extra annotations on the Secret. Keys under `kubernetes.io/` and `k8s.io/` (or a subdomain
    /// of them) are reserved for Kubernetes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_TARGET_METADATA, "x-kubernetes-validations" = [{"rule": RESERVED_KEYS_RULE, "message": RESERVED_KEYS_MESSAGE}]))]
    pub annotations: BTreeMap<String, String>,

    /// `Owner` (default): the Secret carries an owner reference to the SecretRef, so Kubernetes
    /// garbage-collects it with its SecretRef. `Orphan`: no owner reference.
    #[serde(default)]
    pub creation_policy: CreationPolicy,

    /// What happens to the Secret when the SecretRef is deleted, and to the previous Secret once a
    /// changed `name` is written: `Delete` (default) removes it, `Retain` keeps it (and drops the
    /// owner reference so garbage collection keeps it too).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Whether the target Secret is owned by its SecretRef.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CreationPolicy {
    #[default]
    Owner,
    Orphan,
}

/// How a payload is turned into Secret keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    #[default]
    Raw,
    Json,
    Dotenv,
}

/// One key of the target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyMapping {
    /// Key in the Secret's data (letters, digits, `-`, `_`, `.`).
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub key: String,

    /// Where the value comes from. `json`: a dotted path into the payload (`db.password`, `hosts.0`);
    /// `dotenv`: a variable name. Defaults to `key`. Not allowed with `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub property: Option<String>,
}

/// A workload rolled when the SecretRef syncs a new version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTarget {
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Name of the workload, in the SecretRef's namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// Workload kinds a SecretRef can roll.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// Observed state of a SecretRef.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRefStatus {
    /// Secret Manager version number in the target Secret — always a number, also for `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_version: Option<String>,

    /// HMAC-SHA256 of the rendered Secret data (keys and values) under the operator's own key, so
    /// it reveals nothing of the data; a plain SHA-256 recorded by an earlier version stays until
    /// the content changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,

    /// When the target Secret's content last changed (not when it was last checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub last_sync_time: Option<Time>,

    /// Name of the Secret written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,

    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Value of the `secureapi.dev/refresh` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_refresh: Option<String>,

    /// Conditions, `Ready` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Versions of the secret this SecretRef synced (or could have: numbers up to the synced one)
    /// that Secret Manager now refuses, newest first (at most 10): a workload still running one
    /// of them runs a credential that no longer works.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub unusable_versions: Vec<UnusableVersion>,
}

/// Most entries `status.unusableVersions` holds (the newest).
pub const MAX_UNUSABLE_VERSIONS: usize = 10;

/// A version Secret Manager refuses to serve, as its own answer to an access said.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnusableVersion {
    /// The version number.
    pub version: String,
    /// Why Secret Manager refuses it.
    pub state: UnusableState,
}

/// The state in which Secret Manager refuses a version: `Disabled` (it can be enabled again) or
/// `Destroyed` (its data is gone for good).
// No doc comments on the variants: they would turn the schema's plain enum into a oneOf.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum UnusableState {
    Disabled,
    Destroyed,
}

impl SecretRefStatus {
    /// Whether Secret Manager was last seen refusing `version`, and why.
    pub fn unusable(&self, version: &str) -> Option<UnusableState> {
        self.unusable_versions.iter().find(|u| u.version == version).map(|u| u.state)
    }
}

impl super::conditions::HasConditions for SecretRefStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}
