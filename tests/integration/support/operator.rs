//! The operator's controllers running in-process against the test cluster and the GCP emulator,
//! scoped to the test's namespace.

use super::PROJECT;
use super::cluster::TestCluster;
use super::wait::DEADLINE;
use secure_api_operator::gcp::{ExchangeEndpoints, GcpConfig};
use secure_api_operator::identity::Audiences;
use secure_api_operator::leader;
use secure_api_operator::metrics::Metrics;
use secure_api_operator::operator::{self, Assembly, PubsubWiring};
use secure_api_operator::runtime::Settings;
use secure_api_operator::runtime::shard::Shard;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::emulator::kube::KubeEmulator;
use secure_api_testbed::listener::Listener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A fresh cluster for `test` (see [`TestCluster::start`]) with the CRDs installed and the
/// operator running on it.
pub async fn cluster_with_operator(test: &str) -> (TestCluster, Operator) {
    let cluster = TestCluster::with_crds(test).await;
    let operator = Operator::start(&cluster).await;
    (cluster, operator)
}

/// The same for a test that needs the emulator's hooks: `None` on a real cluster (the caller
/// skips; its name ends in [`super::cluster::PARTLY_SKIPPED`]), else the cluster, its emulator
/// and the operator.
pub async fn emulator_with_operator(test: &str) -> Option<(TestCluster, KubeEmulator, Operator)> {
    let cluster = TestCluster::start(test).await;
    let kube = cluster.hooks().cloned()?;
    cluster.install_crds().await;
    let operator = Operator::start(&cluster).await;
    Some((cluster, kube, operator))
}

/// A running operator with its GCP emulator, stopped when dropped: teardown needs no call.
///
/// Dropping it cancels the controllers without waiting for them (`Drop` cannot await); the test's
/// runtime, which ends with the test, drops whatever is still draining. Declare it after the
/// [`TestCluster`] it runs on, so that it stops before the cluster's guard deletes the
/// namespace. A test that goes on after stopping it (nothing may change now; another operator
/// takes over) calls [`stop`](Self::stop), which waits for the drain; the drop then does nothing
/// more.
pub struct Operator {
    pub gcp: GcpEmulator,
    pub metrics: Arc<Metrics>,
    listener: Listener,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// What differs between test operators.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// Whether the test's namespace may use the operator's own identity (the GCP emulator's
    /// owner): on for tests that are not about identity, so they need no ServiceAccount.
    pub operator_identity: bool,
    /// Secret Manager notifications through Pub/Sub (`None`: polling only).
    pub notifications: Option<NotificationOptions>,
    /// The GCP emulator to use (shared with another operator, or filled before the start);
    /// `None`: a fresh one.
    pub gcp: Option<GcpEmulator>,
    /// The part of the objects this operator reconciles.
    pub shard: Shard,
    /// Timeout of one GCP call attempt (`None`: the client's default).
    pub gcp_request_timeout: Option<Duration>,
    /// Run the controllers only while holding this Lease, as `run --leader-election` does
    /// (`None`: always).
    pub leader_election: Option<leader::Config>,
    /// How long a never-synced object waits for a missing ServiceAccount before a Warning.
    pub service_account_grace: Duration,
    /// Prometheus servers canary gates may query.
    pub prometheus_allowed_url_prefixes: Vec<String>,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        Self {
            operator_identity: true,
            notifications: None,
            gcp: None,
            shard: Shard::ALL,
            gcp_request_timeout: None,
            leader_election: None,
            service_account_grace: Settings::default().service_account_grace,
            prometheus_allowed_url_prefixes: Vec::new(),
        }
    }
}

/// The topic Secret Manager publishes to in tests, and the operator's subscription to it.
pub const TOPIC: &str = "secret-events";
pub const SUBSCRIPTION: &str = "secret-events-operator";

/// How the operator receives notifications in a test.
#[derive(Clone, Debug, Default)]
pub struct NotificationOptions {
    /// Leave the subscription to the test (the operator starts without one).
    pub without_subscription: bool,
    /// Pull from another Pub/Sub (Google's emulator) instead of the GCP emulator's own; the
    /// test creates the topic and subscription there.
    pub endpoint: Option<String>,
}

/// `projects/PROJECT/topics/TOPIC`.
pub fn topic_name() -> String {
    format!("projects/{PROJECT}/topics/{TOPIC}")
}

/// The cluster's service-account JWKS, as STS would fetch it (`/openid/v1/jwks`), so the GCP
/// emulator verifies the tokens this cluster issues — the emulator's or a real one's.
pub async fn cluster_jwks(cluster: &TestCluster) -> serde_json::Value {
    let request = hyper::Request::get("/openid/v1/jwks").body(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let text = cluster.client.request_text(request).await.unwrap_or_else(|e| panic!("GET /openid/v1/jwks: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("JWKS: {e}"))
}

impl Operator {
    /// Starts the controllers for `cluster`'s namespace against a fresh GCP emulator,
    /// with short backoffs so retries happen within a test's patience.
    pub async fn start(cluster: &TestCluster) -> Self {
        Self::start_with(cluster, OperatorOptions::default()).await
    }

    /// The same with `options`: the operator's own wiring ([`operator::assemble`]) with the
    /// test's differences as data.
    pub async fn start_with(cluster: &TestCluster, options: OperatorOptions) -> Self {
        let gcp = options.gcp.clone().unwrap_or_default();
        gcp.trust_jwks(cluster_jwks(cluster).await);
        let listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("gcp listen: {e}"));
        let metrics = Arc::new(Metrics::new());
        let config = GcpConfig {
            default_project: Some(PROJECT.into()),
            secret_manager_endpoint: Some(listener.url()),
            api_gateway_endpoint: Some(listener.url()),
            api_keys_endpoint: Some(listener.url()),
            service_usage_endpoint: Some(listener.url()),
            no_auth: true,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..GcpConfig::default()
        };
        let config =
            GcpConfig { request_timeout: options.gcp_request_timeout.unwrap_or(config.request_timeout), ..config };
        let notifications =
            options.notifications.as_ref().map(|wanted| notifications(&gcp, &listener, &config, wanted));
        let assembly = Assembly {
            server: "the test cluster".into(),
            client: cluster.client.clone(),
            metrics: metrics.clone(),
            token_endpoints: ExchangeEndpoints { sts: Some(listener.url()), iam_credentials: Some(listener.url()) },
            gcp: config,
            notifications,
            settings: Settings {
                namespaces: vec![cluster.namespace.clone()],
                gcp_project: Some(PROJECT.into()),
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                permanent_retry: Duration::from_secs(2),
                shard: options.shard,
                service_account_grace: options.service_account_grace,
                prometheus_allowed_url_prefixes: options.prometheus_allowed_url_prefixes.clone(),
                ..Settings::default()
            },
            operator_identity_namespaces: match options.operator_identity {
                true => format!("kubernetes.io/metadata.name={}", cluster.namespace),
                false => String::new(),
            },
            audiences: Audiences { project: Some(PROJECT.into()), ..Audiences::default() },
            key_namespace: cluster.namespace.clone(),
            startup_timeout: DEADLINE,
        };
        let shutdown = CancellationToken::new();
        let ctx =
            operator::assemble(assembly, &shutdown).await.unwrap_or_else(|e| panic!("assembling the operator: {e}"));
        let (task, _lost) = operator::spawn_controllers(ctx, options.leader_election, &shutdown);
        Self { gcp, metrics, listener, shutdown, task: Some(task) }
    }

    /// URL of the GCP emulators (for gcloud).
    pub fn gcp_url(&self) -> String {
        self.listener.url()
    }

    /// Whether its task ended on its own (with leader election: the Lease was lost), as a
    /// process that exited.
    pub fn exited(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Crashes the operator: its task is aborted where it stands (requests in flight are dropped,
    /// nothing is drained or released), as a killed process would be.
    pub async fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops the controllers and waits for them to drain, for a test that goes on after the stop.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The topic and subscription in the GCP emulator (unless the test wants none yet, or another
/// Pub/Sub), and where the operator pulls from.
fn notifications(
    gcp: &GcpEmulator,
    listener: &Listener,
    config: &GcpConfig,
    wanted: &NotificationOptions,
) -> PubsubWiring {
    if wanted.endpoint.is_none() {
        gcp.create_topic(PROJECT, TOPIC);
        if !wanted.without_subscription {
            gcp.create_subscription(PROJECT, SUBSCRIPTION, TOPIC, Duration::from_secs(10));
        }
    }
    PubsubWiring {
        endpoint: Some(wanted.endpoint.clone().unwrap_or_else(|| listener.url())),
        subscriptions: vec![format!("projects/{PROJECT}/subscriptions/{SUBSCRIPTION}")],
        pull_timeout: config.request_timeout,
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
