//! `SecureApiService`: a Cloud-Run-like API workload whose pods get secrets from SecretRefs,
//! each revision pinned to exact secret versions.

use super::conditions::Condition;
pub use super::rollout::{
    Analysis, BlueGreen, Canary, CanaryStatus, CanaryStep, PendingRevision, PrometheusAnalysis, RejectedRevision,
    Rollout, RolloutStrategy, RolloutWindow, TrafficSplit, Weekday,
};
use super::schema::{
    DNS_SUBDOMAIN_PATTERN, ENV_NAME_PATTERN, GCP_SERVICE_ACCOUNT_PATTERN, IntOrString, SECRET_KEY_PATTERN,
    int_or_percent, quantity,
};
pub use super::traffic::{TRAFFIC_RULES, TrafficTarget, TrafficTargetStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// CEL rules on the whole SecureApiService: its name labels its objects and names its Service,
/// so it must be an RFC 1035 label. The API server already holds names to an RFC 1123 subdomain,
/// so what is left is no dot and no leading digit. No regex: `metadata.name` has no declared
/// length, and kube-apiserver prices a `matches` on it at the largest request, over its budget.
pub const OBJECT_RULES: &[super::ObjectRule] = &[
    super::NAME_FITS_A_LABEL,
    super::ObjectRule {
        rule: "!self.metadata.name.contains('.') && ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'].all(d, !self.metadata.name.startsWith(d))",
        message: "metadata.name must start with a lowercase letter and hold only lowercase letters, digits and '-': it names the service's Kubernetes Service (RFC 1035)",
    },
];

/// A declared API workload: ServiceAccount, hardened Deployment, Service (and HPA / PDB on
/// request). Secrets reach its pods through immutable snapshots pinned to exact versions.
// Repeated `type_ = ...` keys in separate printcolumn(...) groups are not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secureapi.dev",
    version = "v1alpha1",
    kind = "SecureApiService",
    namespaced,
    status = "SecureApiServiceStatus",
    shortname = "sas",
    category = "secureapi",
    derive = "PartialEq",
    doc = "SecureApiService runs an API workload whose pods get secrets from SecretRefs; every change of a secret version rolls out one new revision pinned to exactly that version.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether every replica runs the current revision"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.revision",
        description = "Current revision of the pod template"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready replicas"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url", description = "In-cluster URL"),
    printcolumn(
        name = "Secrets",
        type_ = "string",
        json_path = ".status.secretVersionsSummary",
        description = "Secret versions of the current revision",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.replicas) && has(self.autoscaling))",
        "message": "set either replicas or autoscaling, not both",
    },
    {
        "rule": "!has(self.env) || !has(self.secretEnv) || self.secretEnv.all(s, !self.env.exists(e, e.name == s.name))",
        "message": "an environment variable is declared in both env and secretEnv",
    },
    {
        "rule": "!has(self.traffic) || self.traffic.size() == 0 || (self.rollout.strategy == 'RollingUpdate' && !has(self.rollout.window) && !has(self.rollout.batchSeconds))",
        "message": "spec.traffic decides which revisions serve: it takes strategy RollingUpdate, without window or batchSeconds",
    },
]))]
pub struct SecureApiServiceSpec {
    /// Container image of the API, e.g. `example.com/secure-api:1.0`.
    #[schemars(length(min = 1, max = 1024), pattern(r"^\S+$"))]
    pub image: String,

    /// Port the container listens on.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Fixed number of replicas (default 1). Mutually exclusive with `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Horizontal autoscaling on CPU; creates a HorizontalPodAutoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// CPU and memory for the API container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,

    /// Plain environment variables (not secret).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVar>,

    /// Environment variables whose values come from a SecretRef's synced data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub secret_env: Vec<SecretEnvVar>,

    /// SecretRefs mounted as files, one file per key, read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["mountPath"]))]
    pub secret_files: Vec<SecretFiles>,

    /// Kubernetes ServiceAccount of the pods, and the Google service account it acts as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSpec>,

    /// HTTP health check used for readiness and liveness probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,

    /// Most the pod's writable `/tmp` (an `emptyDir`) may hold, e.g. `64Mi`; a pod that writes
    /// more is evicted. Default `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity")]
    pub tmp_size_limit: Option<IntOrString>,

    /// How the API is exposed.
    #[serde(default)]
    pub expose: Expose,

    /// How a new revision takes over: a rolling update (the default) or a canary gated on the
    /// new pods' health.
    #[serde(default)]
    pub rollout: Rollout,

    /// Which revisions serve, with what share, as Cloud Run's traffic: at most two entries, each
    /// the latest revision or one of `status.history` by name, their percents adding up to 100.
    /// Absent: all the traffic to the latest revision, rolled out by `rollout`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2), extend("x-kubernetes-validations" = traffic_rules()))]
    pub traffic: Vec<TrafficTarget>,

    /// A PodDisruptionBudget for the pods; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<DisruptionBudget>,

    /// How many previous revisions (and their secret snapshots) are kept for rollback.
    #[serde(default = "default_revision_history_limit")]
    #[schemars(range(min = 0, max = 50))]
    pub revision_history_limit: i32,
}

fn traffic_rules() -> Vec<serde_json::Value> {
    TRAFFIC_RULES.iter().map(|(rule, message)| serde_json::json!({ "rule": rule, "message": message })).collect()
}

fn default_port() -> i32 {
    8080
}

fn default_revision_history_limit() -> i32 {
    3
}

/// Horizontal autoscaling on CPU utilisation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.minReplicas <= self.maxReplicas",
    "message": "minReplicas must not exceed maxReplicas",
}]))]
pub struct Autoscaling {
    /// Lower bound of replicas.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Upper bound of replicas.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of requests) the autoscaler aims for.
    #[serde(default = "default_target_cpu", rename = "targetCPUUtilizationPercentage")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_min_replicas() -> i32 {
    1
}

fn default_target_cpu() -> i32 {
    80
}

/// Resource requests and limits of the API container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Guaranteed resources, used for scheduling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ComputeResources>,
    /// Hard caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ComputeResources>,
}

/// CPU and memory amounts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResources {
    /// CPU, in cores (`1`, `0.5`) or millicores (`500m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity")]
    pub cpu: Option<IntOrString>,
    /// Memory, e.g. `512Mi`, `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity")]
    pub memory: Option<IntOrString>,
}

/// A plain environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name.
    #[schemars(length(min = 1, max = 256), pattern(ENV_NAME_PATTERN))]
    pub name: String,
    /// Variable value.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub value: String,
}

/// An environment variable from a SecretRef's synced data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretEnvVar {
    /// Variable name.
    #[schemars(length(min = 1, max = 256), pattern(ENV_NAME_PATTERN))]
    pub name: String,
    /// Name of a SecretRef in the same namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub secret_ref: String,
    /// Key in that SecretRef's target Secret.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub key: String,
}

/// A SecretRef's keys mounted as files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFiles {
    /// Name of a SecretRef in the same namespace.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub secret_ref: String,
    /// Absolute directory in the container; each key becomes a file in it.
    #[schemars(length(min = 2, max = 1024), pattern(r"^/[^:]*[^/:]$"))]
    pub mount_path: String,
}

/// ServiceAccount settings of the pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// Name of the Kubernetes ServiceAccount to create and use. Defaults to the service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: Option<String>,
    /// Google service account the pods act as through GKE Workload Identity
    /// (annotation `iam.gke.io/gcp-service-account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254), pattern(GCP_SERVICE_ACCOUNT_PATTERN))]
    pub gcp_service_account: Option<String>,
    /// Mount the ServiceAccount's Kubernetes API token in the pods. Off by default: an API that
    /// does not call the Kubernetes API should not hold a credential for it (GKE Workload
    /// Identity needs no token in the pod).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automount_token: bool,
}

/// HTTP health check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Path answered with 2xx when the API is healthy, e.g. `/health`.
    #[schemars(length(min = 1, max = 1024), pattern(r"^/\S*$"))]
    pub path: String,
    /// Seconds between checks.
    #[serde(default = "default_period_seconds")]
    #[schemars(range(min = 1, max = 300))]
    pub period_seconds: i32,
    /// Seconds before the first liveness check.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: i32,
}

fn default_period_seconds() -> i32 {
    10
}

/// How the API is exposed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// Service type: `ClusterIP` (default) or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ExposeType,
    /// Port of the Service (defaults to 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Public URL of the API when it is reached through something the operator does not manage
    /// (an Ingress, a Cloud Run domain). Overrides the LoadBalancer address in `status.externalUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(r"^https?://[^\s/]+(/\S*)?$"))]
    pub external_url: Option<String>,
    /// With `type: LoadBalancer`: the client CIDRs the load balancer admits (e.g.
    /// `203.0.113.0/24`); every client when empty. Ignored for `ClusterIP`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 3, max = 64), pattern(r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")))]
    pub load_balancer_source_ranges: Vec<String>,
    /// A Gateway API Gateway to route to the service through an HTTPRoute named after it. When
    /// the cluster serves HTTPRoutes, a canary's share of the traffic is exactly its step's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayParent>,
}

/// The Gateway (Gateway API) an HTTPRoute attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParent {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Its namespace; the service's when absent. The Gateway must allow routes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// The Gateway's listener to attach to; every listener that allows it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub section_name: Option<String>,
}

/// Kubernetes Service types the operator creates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExposeType {
    #[default]
    ClusterIP,
    LoadBalancer,
}

/// PodDisruptionBudget: exactly one of the two fields.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.minAvailable) != has(self.maxUnavailable)",
    "message": "set exactly one of minAvailable and maxUnavailable",
}]))]
pub struct DisruptionBudget {
    /// Pods that must stay available during voluntary disruptions: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_percent")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be down during voluntary disruptions: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_percent")]
    pub max_unavailable: Option<IntOrString>,
}

/// Observed state of a SecureApiService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecureApiServiceStatus {
    /// In-cluster URL, `http://<name>.<namespace>.svc:<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Public URL: `expose.externalUrl`, or the LoadBalancer's ingress address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Name of the current revision: the service name and a short hash of its pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Secret version of each referenced SecretRef in the current revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, String>,
    /// The same versions in one line, `db=7,keys=3` (the pod-template annotation's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_versions_summary: Option<String>,
    /// Desired replicas seen on the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Replicas that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Replicas that run the current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// A revision whose rollout stalled and was rolled back; it is not applied again until the
    /// spec or a secret version changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_revision: Option<String>,
    /// The HTTPRoute the operator applied for `expose.gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<String>,
    /// A rotation's revision waiting for `rollout.batchSeconds` or `rollout.window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_revision: Option<PendingRevision>,
    /// With `spec.traffic`: the latest revision, the one the spec and the current secret versions
    /// make (it serves only where the traffic gives it a share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<String>,
    /// The traffic as `spec.traffic` has it served: each share's revision, and its tag's URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub traffic: Vec<TrafficTargetStatus>,
    /// The canary in progress: its revision, step and traffic weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// Revisions whose canary failed its health gate, newest first (at most 10): the same secret
    /// versions are not tried again until a new version or a spec change arrives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub rejected_revisions: Vec<RejectedRevision>,
    /// Revisions applied, newest first, at most `revisionHistoryLimit` + 1 (and the serving one
    /// while a canary is tried, and those `spec.traffic` names or runs): their secret versions
    /// and the snapshot Secrets they use (kept while a revision is in this list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 55))]
    pub history: Vec<RevisionRecord>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, `Ready` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One applied revision of a SecureApiService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRecord {
    /// Revision name: the service name and a short hash of its pod template.
    pub revision: String,
    /// Secret version of each referenced SecretRef in this revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, String>,
    /// Snapshot Secrets this revision mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
}

impl super::conditions::HasConditions for SecureApiServiceStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}
