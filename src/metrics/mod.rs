//! Prometheus metrics. Every label comes from a fixed set (controller, error category, kind,
//! condition reason) — never an object name or anything read from a payload — so the series
//! count stays bounded. The object census and the pending rotations are computed at scrape time
//! ([`objects`], [`rotations`]).

pub mod objects;
pub mod rotations;

use crate::api::SecretRef;
use kube::runtime::reflector::ObjectRef;
use objects::Watched;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

/// The controllers of the operator; their names are the `controller` label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Controller {
    SecretRef,
    SecureApiService,
    GatewayConfig,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Self::SecretRef, Self::SecureApiService, Self::GatewayConfig];

    /// Label value, also used in field managers (`secure-api-operator/<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretRef => "secretref",
            Self::SecureApiService => "secureapiservice",
            Self::GatewayConfig => "gatewayconfig",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    method: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    event_type: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    ready: &'static str,
    reason: &'static str,
}

#[derive(Clone)]
struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        // 1 ms .. ~16 s: a reconcile that waits on GCP can take seconds, most take milliseconds.
        Histogram::new(exponential_buckets(0.001, 2.0, 15))
    }
}

/// The operator's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram, DurationBuckets>,
    gcp_requests: Family<CallLabels, Counter>,
    gcp_duration: Family<MethodLabels, Histogram, DurationBuckets>,
    leader: Gauge,
    pubsub_messages: Family<MessageLabels, Counter>,
    pubsub_pull_errors: Counter,
    pubsub_delivery_lag: Histogram,
    census: Arc<Census>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("secureapi");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Family::new_with_constructor(DurationBuckets);
        registry.register("reconciles", "Reconciles run, by controller", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and error category",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by controller",
            reconcile_duration.clone(),
        );
        let gcp_requests = Family::<CallLabels, Counter>::default();
        let gcp_duration = Family::new_with_constructor(DurationBuckets);
        registry.register(
            "gcp_requests",
            "HTTP requests to Google Cloud APIs, by service, REST method and outcome (HTTP code, timeout, connect_error)",
            gcp_requests.clone(),
        );
        registry.register(
            "gcp_request_duration_seconds",
            "Duration of one HTTP request to a Google Cloud API, by service and REST method",
            gcp_duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (it holds the leader-election Lease, or leader election is off), 0 while it stands by",
            leader.clone(),
        );
        let pubsub_messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "pubsub_messages",
            "Secret Manager notifications received, by event type and what was done (queued, no_action, ignored, malformed)",
            pubsub_messages.clone(),
        );
        let pubsub_pull_errors = Counter::default();
        registry.register(
            "pubsub_pull_errors",
            "Failed pulls of the notification subscriptions (polling on refreshInterval carries on)",
            pubsub_pull_errors.clone(),
        );
        // 1 ms .. ~33 s: from Pub/Sub's publishTime to the reconcile being queued.
        let pubsub_delivery_lag = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "pubsub_delivery_lag_seconds",
            "Time from a notification's publishTime to its SecretRefs being queued",
            pubsub_delivery_lag.clone(),
        );
        let census = Arc::new(Census::default());
        registry.register_collector(Box::new(census.clone()));
        let metrics = Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            gcp_requests,
            gcp_duration,
            leader,
            pubsub_messages,
            pubsub_pull_errors,
            pubsub_delivery_lag,
            census,
        };
        // Series exist from the start, so dashboards and alerts see zeros rather than gaps.
        for controller in Controller::ALL {
            let labels = ControllerLabels { controller: controller.as_str() };
            let _ = metrics.reconciles.get_or_create(&labels);
            let _ = metrics.reconcile_duration.get_or_create(&labels);
        }
        metrics
    }

    /// Starts timing one reconcile; the returned guard records it when finished.
    pub fn reconcile(&self, controller: Controller) -> ReconcileTimer<'_> {
        ReconcileTimer { metrics: self, controller, started: Instant::now() }
    }

    /// Records a failed reconcile; `category` is the error's fixed category string.
    pub fn reconcile_failed(&self, controller: Controller, category: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller: controller.as_str(), category }).inc();
    }

    /// Whether this replica runs the controllers (`secureapi_leader`).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// One notification handled: its event type and outcome come from fixed sets.
    pub fn pubsub_message(&self, event_type: &'static str, outcome: &'static str) {
        self.pubsub_messages.get_or_create(&MessageLabels { event_type, outcome }).inc();
    }

    pub fn pubsub_pull_failed(&self) {
        self.pubsub_pull_errors.inc();
    }

    pub fn pubsub_delivery_lag(&self, lag: std::time::Duration) {
        self.pubsub_delivery_lag.observe(lag.as_secs_f64());
    }

    /// Counts the objects of `watched` from now on (`secureapi_objects`), and settles pending
    /// rotations against its SecretRefs. Called when the controllers start.
    pub fn count_objects(&self, watched: Watched) {
        *self.census.watched.write().unwrap_or_else(PoisonError::into_inner) = Some(watched);
    }

    /// A read of the store for SecretRef `key` found `version`: a rotation while it is newer than
    /// the synced one, until the status shows it.
    /// What a notification named and the read did not find is no longer waited for.
    pub fn rotation_fetched(&self, key: &str, secret_ref: &SecretRef, version: &str) {
        if let Ok(found) = version.parse() {
            self.census.pending.confirmed(key, found);
        }
        if let Some(version) = rotations::fetched_rotation(secret_ref, version) {
            self.census.pending.notice(key, version, Instant::now());
        }
    }

    /// A notification announced `version` of the secret SecretRef `key` reads.
    pub fn rotation_notified(&self, key: &str, secret_ref: &SecretRef, version: &str) {
        if let Some(version) = rotations::notified_rotation(secret_ref, version) {
            self.census.pending.notice(key, version, Instant::now());
        }
    }

    /// Reconciles `controller` has run so far.
    pub fn reconciles(&self, controller: Controller) -> u64 {
        self.reconciles.get_or_create(&ControllerLabels { controller: controller.as_str() }).get()
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an empty page is the only possible degradation.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl crate::gcp::CallObserver for Metrics {
    fn observe(&self, service: &'static str, method: &'static str, outcome: &str, elapsed: std::time::Duration) {
        // Outcomes are HTTP codes or a few fixed words, so the label set stays bounded.
        let labels = CallLabels { service, method, outcome: outcome.to_owned() };
        self.gcp_requests.get_or_create(&labels).inc();
        self.gcp_duration.get_or_create(&MethodLabels { service, method }).observe(elapsed.as_secs_f64());
    }
}

/// The metrics computed at scrape time from the controllers' caches: `secureapi_objects`,
/// `secureapi_rotations_pending` and `secureapi_rotation_pending_seconds`.
#[derive(Debug, Default)]
struct Census {
    /// `None` until the controllers run (a standby counts nothing).
    watched: RwLock<Option<Watched>>,
    pending: rotations::Pending,
}

impl Collector for Census {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let watched = self.watched.read().unwrap_or_else(PoisonError::into_inner).clone();
        let objects = Family::<ObjectLabels, Gauge>::default();
        let mut summary = rotations::Summary::default();
        if let Some(watched) = &watched {
            for ((kind, ready, reason), count) in watched.tally() {
                objects.get_or_create(&ObjectLabels { kind, ready, reason }).set(count);
            }
            let lookup = |key: &str| {
                let (namespace, name) = key.split_once('/')?;
                watched.secret_refs.get(&ObjectRef::new(name).within(namespace))
            };
            summary = self.pending.settle(lookup, Instant::now());
        }
        let help = "Objects by kind and Ready condition (status True/False/Unknown, reason), of this operator's shard";
        objects.encode(encoder.encode_descriptor("objects", help, None, objects.metric_type())?)?;
        let count = ConstGauge::new(i64::try_from(summary.count).unwrap_or(i64::MAX));
        let help =
            "SecretRefs that know of a newer version of their secret (a notification or a read) than the one synced";
        count.encode(encoder.encode_descriptor("rotations_pending", help, None, count.metric_type())?)?;
        let oldest = ConstGauge::new(summary.oldest.as_secs_f64());
        let help = "How long the oldest pending rotation has waited to be synced (0: none pending)";
        oldest.encode(encoder.encode_descriptor("rotation_pending_seconds", help, None, oldest.metric_type())?)?;
        Ok(())
    }
}

/// Measures one reconcile from creation to [`ReconcileTimer::finish`] (or drop).
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: Controller,
    started: Instant,
}

impl ReconcileTimer<'_> {
    /// Records the reconcile and, for an error, its category.
    pub fn finish(self, error_category: Option<&'static str>) {
        if let Some(category) = error_category {
            self.metrics.reconcile_failed(self.controller, category);
        }
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let labels = ControllerLabels { controller: self.controller.as_str() };
        self.metrics.reconciles.get_or_create(&labels).inc();
        self.metrics.reconcile_duration.get_or_create(&labels).observe(self.started.elapsed().as_secs_f64());
    }
}

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_is_counted_and_timed() {
        let metrics = Metrics::new();
        metrics.reconcile(Controller::SecretRef).finish(None);
        metrics.reconcile(Controller::SecretRef).finish(Some("permission_denied"));
        let text = metrics.encode();
        assert!(text.contains(r#"secureapi_reconciles_total{controller="secretref"} 2"#), "{text}");
        assert!(
            text.contains(r#"secureapi_reconcile_errors_total{controller="secretref",category="permission_denied"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"secureapi_reconcile_duration_seconds_count{controller="secretref"} 2"#), "{text}");
    }

    #[test]
    fn every_controller_has_series_from_the_start() {
        let text = Metrics::new().encode();
        for controller in Controller::ALL {
            let series = format!(r#"secureapi_reconciles_total{{controller="{}"}} 0"#, controller.as_str());
            assert!(text.contains(&series), "missing {series} in {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    fn secret_ref(name: &str, synced: &str, ready: crate::api::conditions::ConditionStatus, reason: &str) -> SecretRef {
        use crate::api::conditions::{Condition, types};
        let mut object: SecretRef = serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": name, "namespace": "team-a" }, "spec": { "secret": "db" },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        object.status = Some(crate::api::SecretRefStatus {
            synced_version: Some(synced.into()),
            conditions: vec![Condition::new(
                types::READY,
                ready,
                reason,
                "",
                None,
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
            )],
            ..Default::default()
        });
        object
    }

    #[test]
    fn objects_and_pending_rotations_come_from_the_caches_at_scrape_time() {
        use crate::api::conditions::ConditionStatus;
        use kube::runtime::{reflector, watcher};
        let metrics = Metrics::new();
        let text = metrics.encode();
        assert!(!text.contains("secureapi_objects{"), "a standby counts nothing: {text}");
        assert!(text.contains("\nsecureapi_rotations_pending 0\n"), "{text}");
        let (secret_refs, mut writer) = reflector::store();
        let synced = secret_ref("db", "2", ConditionStatus::True, "Synced");
        let failing = secret_ref("keys", "1", ConditionStatus::False, "SecretNotFound");
        writer.apply_watcher_event(&watcher::Event::Apply(synced.clone()));
        writer.apply_watcher_event(&watcher::Event::Apply(failing.clone()));
        let watched = Watched {
            secret_refs,
            secure_api_services: reflector::store().0,
            gateway_configs: reflector::store().0,
            owns: Arc::new(|_| true),
        };
        metrics.count_objects(watched);
        metrics.rotation_fetched("team-a/db", &synced, "3");
        let text = metrics.encode();
        for series in [
            r#"secureapi_objects{kind="SecretRef",ready="True",reason="Synced"} 1"#,
            r#"secureapi_objects{kind="SecretRef",ready="False",reason="SecretNotFound"} 1"#,
            "\nsecureapi_rotations_pending 1\n",
        ] {
            assert!(text.contains(series), "missing {series} in {text}");
        }
        // Version 3 synced, the failing one deleted: both leave the metrics.
        writer.apply_watcher_event(&watcher::Event::Apply(secret_ref("db", "3", ConditionStatus::True, "Synced")));
        writer.apply_watcher_event(&watcher::Event::Delete(failing));
        let text = metrics.encode();
        assert!(!text.contains("SecretNotFound"), "{text}");
        assert!(text.contains("\nsecureapi_rotations_pending 0\n"), "{text}");
        assert!(text.contains("\nsecureapi_rotation_pending_seconds 0.0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_leader_gauge_starts_at_zero_and_follows_leadership() {
        let metrics = Metrics::new();
        assert!(metrics.encode().contains("\nsecureapi_leader 0\n"));
        metrics.set_leader(true);
        assert!(metrics.encode().contains("\nsecureapi_leader 1\n"));
        metrics.set_leader(false);
        assert!(metrics.encode().contains("\nsecureapi_leader 0\n"));
    }
}
