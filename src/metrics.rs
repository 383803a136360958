//! Prometheus metrics. Every label comes from a fixed set (controller, error category) — never an
//! object name or anything read from a payload — so the series count stays bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
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
