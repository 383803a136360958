//! How a SecureApiService's new revision takes over from the running one: a rolling update of
//! the one Deployment, or a canary beside it whose traffic grows step by step while its pods
//! stay healthy, and which is aborted (all traffic back on the stable revision) when they do not.

use super::schema::{DURATION_PATTERN, IntOrString, int_or_percent};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The gate interval when `analysis.interval` is not set.
pub const DEFAULT_ANALYSIS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Rollout behaviour.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.strategy == 'Canary' || !has(self.canary)",
        "message": "canary applies only to strategy Canary",
    },
    {
        "rule": "self.strategy == 'BlueGreen' || !has(self.blueGreen)",
        "message": "blueGreen applies only to strategy BlueGreen",
    },
    {
        "rule": "self.strategy != 'RollingUpdate' || !has(self.analysis)",
        "message": "analysis applies only to strategies Canary and BlueGreen",
    },
]))]
pub struct Rollout {
    /// `RollingUpdate` (default): the Deployment replaces its pods in place. `Canary`: the new
    /// revision runs beside the stable one and takes traffic step by step while its pods stay
    /// healthy. `BlueGreen`: the new revision comes up in full without traffic, takes all of it
    /// at once when healthy, and the stable one stays for `blueGreen.scaleDownDelay` for an
    /// instant rollback. A failed health gate sends all traffic back to the stable revision.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// The canary's steps (strategy `Canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// How long the old revision stays after the switch (strategy `BlueGreen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
    /// The health gate of each step (strategies `Canary` and `BlueGreen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// When a rotation may roll out: a new secret version waits for the window to open (a spec
    /// change does not). Any time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<RolloutWindow>,
    /// Seconds a rotation waits for others, so that several secrets rotated together make one
    /// revision (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 3600))]
    pub batch_seconds: i32,
    /// Pods created above the desired count during a rollout: a number or a percentage.
    #[serde(default = "default_max_surge")]
    #[schemars(schema_with = "int_or_percent")]
    pub max_surge: IntOrString,
    /// Pods that may be unavailable during a rollout: a number or a percentage.
    #[serde(default = "default_max_unavailable")]
    #[schemars(schema_with = "int_or_percent")]
    pub max_unavailable: IntOrString,
    /// Seconds a rollout may go without progress before it counts as stalled.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 30, max = 3600))]
    pub progress_deadline_seconds: i32,
    /// Restore the previous revision (template and secret snapshots) when a rollout stalls.
    #[serde(default)]
    pub auto_rollback: bool,
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            strategy: RolloutStrategy::default(),
            canary: None,
            blue_green: None,
            analysis: None,
            window: None,
            batch_seconds: 0,
            max_surge: default_max_surge(),
            max_unavailable: default_max_unavailable(),
            progress_deadline_seconds: default_progress_deadline(),
            auto_rollback: false,
        }
    }
}

impl Rollout {
    /// The steps of a trial: a canary's (the spec's, or 10% for 2 minutes then 50% for 5
    /// minutes); for blue/green, the preview (no traffic, held until its pods are Ready) and the
    /// switch (all traffic, held for `scaleDownDelay` while the old revision stays).
    pub fn steps(&self) -> Vec<CanaryStep> {
        match (self.strategy, &self.canary) {
            (RolloutStrategy::BlueGreen, _) => {
                let delay = self.blue_green.as_ref().map_or_else(default_scale_down_delay, |b| b.scale_down_delay);
                vec![CanaryStep { weight: 0, pause: zero() }, CanaryStep { weight: 100, pause: delay }]
            }
            (_, Some(canary)) => canary.steps.clone(),
            (_, None) => default_steps(),
        }
    }

    /// A strategy that tries the new revision beside the stable one.
    pub fn is_progressive(&self) -> bool {
        self.strategy != RolloutStrategy::RollingUpdate
    }

    /// How long a step's new pods have to become Ready, and how often the gate is checked.
    pub fn analysis_interval(&self) -> std::time::Duration {
        self.analysis.as_ref().map_or(DEFAULT_ANALYSIS_INTERVAL, |a| std::time::Duration::from(a.interval))
    }
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

fn default_max_surge() -> IntOrString {
    IntOrString::String("25%".into())
}

fn default_max_unavailable() -> IntOrString {
    IntOrString::Int(0)
}

fn default_progress_deadline() -> i32 {
    600
}

/// When rotations may roll out: from `start` to `end` on the listed days, in `timeZone`. An
/// `end` before `start` runs past midnight into the next day.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutWindow {
    /// Days the window opens (`Mon` … `Sun`); every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM` or `HH:MM:SS`.
    #[schemars(pattern(TIME_OF_DAY_PATTERN))]
    pub start: String,
    /// Closing time, `HH:MM` or `HH:MM:SS`.
    #[schemars(pattern(TIME_OF_DAY_PATTERN))]
    pub end: String,
    /// IANA time zone of the times, e.g. `Europe/Paris`. Default `UTC`.
    #[serde(default = "utc")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
}

/// `HH:MM` or `HH:MM:SS`, 24-hour.
const TIME_OF_DAY_PATTERN: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$";

fn utc() -> String {
    "UTC".to_owned()
}

/// A day of the week.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A rotation's revision waiting for its batch or for the rollout window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRevision {
    /// The revision that will roll out.
    pub revision: String,
    /// Its secret versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, String>,
    /// When the first rotation it gathers was seen.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub since: Time,
    /// When it will start rolling out.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub starts_at: Time,
}

/// How a new revision takes over.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RolloutStrategy {
    #[default]
    RollingUpdate,
    Canary,
    BlueGreen,
}

/// Blue/green: how long the old revision stays, with all its pods, once the new one took all the
/// traffic — the time an abort is an instant rollback.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreen {
    /// Default `30s`.
    #[serde(default = "default_scale_down_delay")]
    #[schemars(pattern(DURATION_PATTERN), extend("default" = "30s"))]
    pub scale_down_delay: Duration,
}

fn default_scale_down_delay() -> Duration {
    std::time::Duration::from_secs(30).into()
}

/// The steps of a canary. After the last step the revision is promoted: the stable Deployment
/// rolls to it, and the canary is removed once that rollout completes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    /// Traffic weights in increasing order, each held for its pause while the gate passes.
    #[serde(default = "default_steps")]
    #[schemars(length(min = 1, max = 10))]
    pub steps: Vec<CanaryStep>,
}

fn default_steps() -> Vec<CanaryStep> {
    let step = |weight, seconds| CanaryStep { weight, pause: std::time::Duration::from_secs(seconds).into() };
    vec![step(10, 120), step(50, 300)]
}

/// One canary step: a share of the traffic for the new revision, held for a while.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Percent of the traffic the new revision gets (1–99).
    #[schemars(range(min = 1, max = 99))]
    pub weight: i32,
    /// How long the step lasts from its start (`0s`, `2m`); it ends only once its pods are all
    /// Ready and while the gate passes.
    #[serde(default = "zero")]
    #[schemars(pattern(DURATION_PATTERN), extend("default" = "0s"))]
    pub pause: Duration,
}

fn zero() -> Duration {
    std::time::Duration::ZERO.into()
}

/// The health gate of each step: the new pods must all be Ready within `interval` and stay
/// Ready (a restarting container makes its pod unready), and a Prometheus query, when given,
/// must stay at or under its `max`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// How long a step's new pods have to become Ready; after that, one unready pod aborts the
    /// canary. Default `1m`.
    #[serde(default = "default_interval")]
    #[schemars(
        pattern(DURATION_PATTERN),
        extend("default" = "1m"),
        extend("x-kubernetes-validations" = [{
            "rule": "duration(self) >= duration('1s') && duration(self) <= duration('1h')",
            "message": "analysis.interval must be between 1s and 1h",
        }])
    )]
    pub interval: Duration,
    /// A Prometheus query checked every `interval` during each step: a result above `max`
    /// aborts the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusAnalysis>,
}

/// A Prometheus instant query for the canary revision, and the most its result may be.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAnalysis {
    /// Base URL of the Prometheus server, e.g. `http://prometheus.monitoring:9090`; the operator
    /// must be started with it allowed (`--prometheus-allowed-url-prefixes`).
    #[schemars(length(min = 8, max = 2048), pattern(r"^https?://[^\s/]+(/\S*)?$"))]
    pub address: String,
    /// PromQL instant query. `$revision`, `$service` and `$namespace` are replaced by the canary
    /// revision's name, the service's name and its namespace; the canary's pods are named
    /// `<service>-canary-…` and labelled `secureapi.dev/track=canary`. The largest sample of the
    /// result counts; an empty result passes.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// The most the result may be.
    pub max: f64,
}

impl PrometheusAnalysis {
    /// The query for the canary `revision` of `service` in `namespace`.
    pub fn query_for(&self, revision: &str, service: &str, namespace: &str) -> String {
        self.query.replace("$revision", revision).replace("$service", service).replace("$namespace", namespace)
    }
}

fn default_interval() -> Duration {
    DEFAULT_ANALYSIS_INTERVAL.into()
}

/// How the traffic is split between the stable and the canary revision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TrafficSplit {
    /// Both revisions' pods stand behind the one Service: the weight is the canary's share of
    /// the pods.
    #[default]
    ReplicaRatio,
    /// The service's HTTPRoute (Gateway API) sends the step's weight to the canary's Service.
    HTTPRoute,
}

/// The canary in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The revision on trial.
    pub revision: String,
    /// Its secret versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, String>,
    /// The step it is on, from 1.
    pub step: i32,
    /// How many steps there are before promotion.
    pub steps: i32,
    /// The step's declared weight, in percent.
    pub weight: i32,
    /// The share of the traffic the canary gets as the split stands, in percent.
    pub effective_weight: i32,
    /// How the traffic is split.
    pub traffic_split: TrafficSplit,
    /// When the step began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub step_started_at: Option<Time>,
}

/// A revision whose canary failed its health gate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRevision {
    /// The revision.
    pub revision: String,
    /// The secret versions it was made of.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, String>,
    /// Why the gate failed.
    pub message: String,
}
