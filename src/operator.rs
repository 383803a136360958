//! `secure-api-operator run`: connect, check the cluster, serve health and metrics, run until
//! SIGTERM or SIGINT.
//!
//! Start-up fails fast, with one line that says what is wrong and what to do, when the
//! kubeconfig cannot be loaded, the API server does not answer, or the CRDs are not installed.
//!
//! With `--leader-election` the controllers start only once this replica holds the Lease (see
//! [`crate::leader`]); losing it ends `run` with an error, so the process exits non-zero and
//! Kubernetes restarts it as a fresh standby, as controller-runtime does.

use crate::api::{GROUP, GatewayConfig, SecretRef, SecureApiService, VERSION};
use crate::cli::RunArgs;
use crate::controllers::{Context, GoogleCloud};
use crate::gcp::{
    ApiGateway, ApiKeys, CallObserver, ExchangeEndpoints, GcpConfig, SecretManager, Subscriber, TokenExchange,
};
use crate::hash_key::{self, store::KeyError};
use crate::identity::{Audiences, Identities, OperatorNamespaces, TokenBroker};
use crate::leader::{self, Elector, LostLeadership};
use crate::metrics::Metrics;
use crate::notifications::Notifications;
use crate::provider::{GcpSecretManager, SecretProvider};
use crate::runtime::shard::Shard;
use crate::runtime::{Runtime, Settings, drain_within};
use crate::server::{self, Health};
use crate::shutdown::shutdown_signal;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long one pull may wait for messages (Google's servers hold a pull open until messages
/// arrive or a server-side limit passes).
const PUBSUB_PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the operator could not start. Each variant displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot load the Kubernetes client configuration: {0}")]
    Config(String),
    #[error("cannot reach the Kubernetes API server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Kubernetes API server at {url} refused the operator's credentials: {reason}")]
    Unauthorized { url: String, reason: String },
    #[error(
        "the CustomResourceDefinitions {} are not installed; install them with `secure-api-operator crds | kubectl apply --server-side -f -`",
        .0.join(", ")
    )]
    CrdsMissing(Vec<String>),
    #[error("cannot serve metrics and health on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error(
        "cannot set up Google Cloud access: {0} (use GOOGLE_APPLICATION_CREDENTIALS, GKE Workload Identity or gcloud credentials; --gcp-no-auth for emulators)"
    )]
    Gcp(String),
    #[error("invalid setting: {0}")]
    Setting(String),
    #[error(transparent)]
    HashKey(#[from] KeyError),
}

/// Why `run` failed. Each variant displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    LostLeadership(#[from] LostLeadership),
}

/// Runs the operator until a shutdown signal arrives, or until it loses leadership.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let mut running = start(args).await?;
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown signal received; stopping");
            running.stop().await;
            Ok(())
        }
        lost = running.lost_leadership() => {
            // The controllers are already dropped; exiting stops the rest without waiting.
            running.shutdown.cancel();
            Err(lost.into())
        }
    }
}

/// A started operator: controllers and the health/metrics server run in the background until
/// [`Running::stop`].
pub struct Running {
    metrics_addr: SocketAddr,
    /// From the stop to the end of every task (`--shutdown-grace`).
    grace: Duration,
    health: Arc<Health>,
    shutdown: CancellationToken,
    controllers: JoinHandle<()>,
    http: JoinHandle<()>,
    /// Fires when leadership is lost; never with leader election off.
    lost: oneshot::Receiver<LostLeadership>,
}

impl Running {
    /// Where `/healthz`, `/readyz` and `/metrics` answer (the bound port when 0 was asked for).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Stops the controllers and the server, and waits for them until the grace has passed:
    /// whatever still runs then is dropped (the controllers abandon their reconciles a second
    /// before, see [`drain_within`]).
    pub async fn stop(mut self) {
        let deadline = Instant::now() + self.grace;
        self.health.set_ready(false);
        self.shutdown.cancel();
        if !ended_by(deadline, &mut self.controllers).await {
            tracing::warn!("the controllers did not stop within the shutdown grace; dropped");
        }
        if !ended_by(deadline, &mut self.http).await {
            tracing::warn!("the metrics server did not stop within the shutdown grace; dropped");
        }
        tracing::info!("stopped");
    }

    /// Resolves when the Lease is lost; pends forever otherwise (the sender is gone).
    async fn lost_leadership(&mut self) -> LostLeadership {
        match (&mut self.lost).await {
            Ok(lost) => lost,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Whether `task` ended by `deadline`; aborted if not.
async fn ended_by(deadline: Instant, task: &mut JoinHandle<()>) -> bool {
    match tokio::time::timeout_at(deadline, &mut *task).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "a task stopped abnormally");
            true
        }
        Err(_) => {
            task.abort();
            false
        }
    }
}

/// Checks the cluster, then starts the health/metrics server and the controllers (with
/// `--leader-election`: a task that waits for the Lease, then runs them).
///
/// Readiness: a standby is healthy and ready, as in controller-runtime. `/readyz` says the process
/// started and can take over, not that it reconciles (`secureapi_leader` says that). Otherwise a
/// rolling update would wait forever for new pods that can only lead once the old leader is gone.
pub async fn start(args: RunArgs) -> Result<Running, StartupError> {
    let election = election_config(&args)?;
    let config = load_config(&args).await?;
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| StartupError::Config(one_line(&e)))?;
    let startup_timeout = Duration::from_secs(args.startup_timeout);

    let version = tokio::time::timeout(startup_timeout, client.apiserver_version())
        .await
        .map_err(|_| StartupError::Unreachable {
            url: url.clone(),
            reason: format!("no answer within {}s", args.startup_timeout),
        })?
        .map_err(|error| classify(&url, &error))?;
    let resources = tokio::time::timeout(startup_timeout, client.list_api_group_resources(&group_version()))
        .await
        .map_err(|_| StartupError::Unreachable {
            url: url.clone(),
            reason: format!("discovery did not answer within {}s", args.startup_timeout),
        })?;
    let missing = match resources {
        Ok(list) => missing_crds(&list),
        Err(kube::Error::Api(status)) if status.code == 404 => expected_crds(),
        Err(error) => return Err(classify(&url, &error)),
    };
    if !missing.is_empty() {
        return Err(StartupError::CrdsMissing(missing));
    }

    let listener = server::bind(args.metrics_addr)
        .await
        .map_err(|error| StartupError::Bind { addr: args.metrics_addr.to_string(), reason: error.to_string() })?;
    let metrics_addr = listener.local_addr().unwrap_or(args.metrics_addr);
    let metrics = Arc::new(Metrics::new());
    let assembly = Assembly::from_args(&args, url.clone(), client, metrics.clone());
    let gcp = assembly.gcp_clients().await?;
    let health = Health::new(metrics.clone());
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(server::serve(listener, health.clone(), shutdown.clone()));
    let ctx = assembly.context(gcp, &shutdown).await?;
    let (controllers, lost) = spawn_controllers(ctx, election.clone(), &shutdown);

    tracing::info!(
        server = %url,
        kubernetes = %version.git_version,
        namespace = if args.namespace.is_empty() { "<all>".to_owned() } else { args.namespace.join(",") },
        metrics = %metrics_addr,
        leader_election = if election.is_some() { "on" } else { "off" },
        shard = %args.shard,
        "secure-api-operator started"
    );
    health.set_ready(true);
    let grace = Duration::from_secs(args.shutdown_grace);
    Ok(Running { metrics_addr, grace, health, shutdown, controllers, http, lost })
}

/// Everything the controllers' [`Context`] is assembled from, as data: [`start`] fills it from
/// the command line ([`Assembly::from_args`]); the integration tests fill it directly with what
/// differs there (emulator endpoints, short backoffs, one namespace, a namespace-scoped identity
/// selector, a shard), so both wire the operator with the same code ([`assemble`]).
pub struct Assembly {
    /// The API server's URL, for start-up errors.
    pub server: String,
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// Every Google Cloud client's configuration: endpoints, credentials, timeouts, retries,
    /// limits. Its `default_project` is also the project of secrets named by id alone.
    pub gcp: GcpConfig,
    /// STS and IAM Credentials (`None`: Google's).
    pub token_endpoints: ExchangeEndpoints,
    /// Secret Manager's notifications through Pub/Sub (`None`: polling only).
    pub notifications: Option<PubsubWiring>,
    pub settings: Settings,
    /// The label selector of the namespaces that may use the operator's own identity
    /// (`--operator-identity-namespaces`; empty: none).
    pub operator_identity_namespaces: String,
    pub audiences: Audiences,
    /// Where the hash key Secret lives: the operator's own namespace.
    pub key_namespace: String,
    /// How long listing the namespaces and reading the hash key may take.
    pub startup_timeout: Duration,
}

/// Where Secret Manager's notifications are pulled from.
pub struct PubsubWiring {
    /// Pub/Sub's endpoint (`None`: Google's).
    pub endpoint: Option<String>,
    /// Subscription ids (in the default project) or full names.
    pub subscriptions: Vec<String>,
    /// How long one pull may wait for messages.
    pub pull_timeout: Duration,
}

/// The Google Cloud clients, connected: [`Assembly::gcp_clients`].
pub struct GcpClients {
    cloud: GoogleCloud,
    exchange: TokenExchange,
}

impl Assembly {
    /// What `run`'s flags say.
    fn from_args(args: &RunArgs, server: String, client: Client, metrics: Arc<Metrics>) -> Self {
        let gcp = GcpConfig {
            default_project: args.gcp_project.clone(),
            secret_manager_endpoint: args.secret_manager_endpoint.clone(),
            api_gateway_endpoint: args.api_gateway_endpoint.clone(),
            api_keys_endpoint: args.api_keys_endpoint.clone(),
            service_usage_endpoint: args.service_usage_endpoint.clone(),
            no_auth: args.gcp_no_auth,
            request_timeout: Duration::from_secs(args.gcp_timeout),
            max_concurrency: args.gcp_max_concurrency as usize,
            requests_per_second: args.gcp_requests_per_second,
            ..GcpConfig::default()
        };
        let notifications = (!args.pubsub_subscription.is_empty()).then(|| PubsubWiring {
            endpoint: args.pubsub_endpoint.clone(),
            subscriptions: args.pubsub_subscription.clone(),
            pull_timeout: PUBSUB_PULL_TIMEOUT,
        });
        Self {
            server,
            client,
            metrics,
            gcp,
            token_endpoints: ExchangeEndpoints {
                sts: args.sts_endpoint.clone(),
                iam_credentials: args.iam_credentials_endpoint.clone(),
            },
            notifications,
            settings: Settings {
                namespaces: args.namespace.clone(),
                gcp_project: args.gcp_project.clone(),
                concurrency: args.concurrency,
                shard: args.shard,
                drain: drain_within(Duration::from_secs(args.shutdown_grace)),
                prometheus_allowed_url_prefixes: args.prometheus_allowed_url_prefixes.clone(),
                ..Settings::default()
            },
            operator_identity_namespaces: args.operator_identity_namespaces.clone(),
            audiences: Audiences {
                sts: args.workload_identity_audience.clone(),
                token: args.service_account_token_audience.clone(),
                project: args.gcp_project.clone(),
            },
            key_namespace: own_namespace(args),
            startup_timeout: Duration::from_secs(args.startup_timeout),
        }
    }

    /// The Google Cloud clients. Nothing is watched or read from the cluster yet: [`start`]
    /// serves health from here on, before [`context`](Self::context) lists anything.
    pub async fn gcp_clients(&self) -> Result<GcpClients, StartupError> {
        let config = &self.gcp;
        if !config.requests_per_second.is_finite() || config.requests_per_second <= 0.0 {
            return Err(StartupError::Setting(format!(
                "--gcp-requests-per-second {} must be above 0",
                config.requests_per_second
            )));
        }
        let observer: Arc<dyn CallObserver> = self.metrics.clone();
        let secrets = SecretManager::new(config.clone(), Some(observer.clone()))
            .await
            .map_err(|e| StartupError::Gcp(e.to_string()))?;
        let exchange = TokenExchange::new(config, &self.token_endpoints, Some(observer.clone()))
            .map_err(|e| StartupError::Gcp(e.to_string()))?;
        let notifications = match &self.notifications {
            None => None,
            Some(pubsub) => Some(notifications(pubsub, config, observer.clone()).await?),
        };
        let api_keys =
            ApiKeys::new(config.clone(), Some(observer.clone())).await.map_err(|e| StartupError::Gcp(e.to_string()))?;
        let api_gateway =
            ApiGateway::new(config.clone(), Some(observer)).await.map_err(|e| StartupError::Gcp(e.to_string()))?;
        let provider: Arc<dyn SecretProvider> =
            Arc::new(GcpSecretManager::new(secrets, config.default_project.clone()));
        let cloud = GoogleCloud { secrets: provider, gateway: Some((api_gateway, api_keys)), notifications };
        Ok(GcpClients { cloud, exchange })
    }

    /// The context, with the `gcp` clients: watches the namespaces that may use the operator's identity
    /// (until `shutdown`), reads (or creates) the hash key, and builds the runtime.
    pub async fn context(self, gcp: GcpClients, shutdown: &CancellationToken) -> Result<Arc<Context>, StartupError> {
        let Self {
            server,
            client,
            metrics,
            settings,
            operator_identity_namespaces,
            audiences,
            key_namespace,
            startup_timeout,
            ..
        } = self;
        let seconds = startup_timeout.as_secs();
        let selector = &operator_identity_namespaces;
        let namespaces = OperatorNamespaces::watch(client.clone(), selector, shutdown.clone());
        let operator_namespaces = match tokio::time::timeout(startup_timeout, namespaces).await {
            Ok(Ok(namespaces)) => namespaces,
            Ok(Err(error)) => {
                return Err(StartupError::Setting(format!(
                    "--operator-identity-namespaces {selector:?}: {}",
                    one_line(&error)
                )));
            }
            Err(_) => {
                return Err(StartupError::Unreachable {
                    url: server,
                    reason: format!("listing namespaces did not answer within {seconds}s"),
                });
            }
        };
        let tokens = TokenBroker::new(client.clone(), gcp.exchange, audiences);
        let identities = Identities { operator_namespaces, tokens };
        // Every replica and shard records the same hashes: the key is read (or created) before any
        // controller runs.
        let key = hash_key::store::load_or_create(client.clone(), &key_namespace);
        let hash_key = tokio::time::timeout(startup_timeout, key).await.map_err(|_| StartupError::Unreachable {
            url: server,
            reason: format!("reading the hash key Secret did not answer within {seconds}s"),
        })??;
        let runtime = Runtime::new(client, metrics, settings, hash_key);
        Ok(Context::new(runtime, gcp.cloud, identities))
    }
}

/// The controllers' context from `assembly`: [`Assembly::gcp_clients`], then
/// [`Assembly::context`]. What [`start`] does between the two is serve health.
pub async fn assemble(assembly: Assembly, shutdown: &CancellationToken) -> Result<Arc<Context>, StartupError> {
    let gcp = assembly.gcp_clients().await?;
    assembly.context(gcp, shutdown).await
}

/// Runs the controllers in the background until `shutdown`: at once, or with `election` only
/// while this replica holds the Lease (see [`lead`]). The receiver fires if the Lease is lost;
/// never without leader election.
pub fn spawn_controllers(
    ctx: Arc<Context>,
    election: Option<leader::Config>,
    shutdown: &CancellationToken,
) -> (JoinHandle<()>, oneshot::Receiver<LostLeadership>) {
    let (lost_tx, lost) = oneshot::channel();
    let controllers = match election {
        None => {
            ctx.metrics.set_leader(true);
            tokio::spawn(run_controllers(ctx, shutdown.clone()))
        }
        Some(config) => {
            let elector = Elector::new(ctx.client.clone(), config);
            let stop = shutdown.clone();
            tokio::spawn(async move {
                if let Err(error) = lead(elector, ctx, stop).await {
                    let _ = lost_tx.send(error);
                }
            })
        }
    };
    (controllers, lost)
}

/// The three controllers, until `shutdown` fires and they have drained.
async fn run_controllers(ctx: Arc<Context>, shutdown: CancellationToken) {
    crate::controllers::run(ctx, shutdown).await;
}

/// Waits for the Lease, then runs the controllers while renewing it; releases it after they
/// drained on shutdown. On a lost Lease the controllers are dropped mid-flight.
pub async fn lead(mut elector: Elector, ctx: Arc<Context>, shutdown: CancellationToken) -> Result<(), LostLeadership> {
    if !elector.acquire(&shutdown).await {
        return Ok(());
    }
    ctx.metrics.set_leader(true);
    let result = elector.hold(run_controllers(ctx.clone(), shutdown)).await;
    ctx.metrics.set_leader(false);
    result
}

/// The operator's own namespace, where its Lease and its hash key live: `--lease-namespace`, else
/// the pod's, else the first watched namespace, else `default`.
fn own_namespace(args: &RunArgs) -> String {
    leader::lease_namespace(args.lease_namespace.as_deref(), args.namespace.first().map(String::as_str))
}

/// Each shard elects its own leader: `NAME-shard-N` when the objects are split.
fn lease_name(name: &str, shard: Shard) -> String {
    if shard.is_split() { format!("{name}-shard-{}", shard.index) } else { name.to_owned() }
}

/// The leader-election settings, or `None` with `--leader-election` off.
fn election_config(args: &RunArgs) -> Result<Option<leader::Config>, StartupError> {
    if !args.leader_election {
        return Ok(None);
    }
    let config = leader::Config {
        namespace: own_namespace(args),
        name: lease_name(&args.lease_name, args.shard),
        identity: args.leader_identity.clone().unwrap_or_else(leader::default_identity),
        lease_duration: Duration::from_secs(args.lease_duration),
        retry_period: Duration::from_secs(args.lease_retry_period),
    };
    config.validate().map_err(StartupError::Setting)?;
    Ok(Some(config))
}

/// The Pub/Sub subscriber and its subscriptions. Its calls are not retried by the client: the
/// notification loop backs off by itself, and a long pull is not an error.
async fn notifications(
    pubsub: &PubsubWiring,
    config: &GcpConfig,
    observer: Arc<dyn CallObserver>,
) -> Result<Notifications, StartupError> {
    let config = GcpConfig { max_attempts: 1, request_timeout: pubsub.pull_timeout, ..config.clone() };
    let subscriber = Subscriber::new(config, pubsub.endpoint.as_deref(), Some(observer))
        .await
        .map_err(|e| StartupError::Gcp(e.to_string()))?;
    let subscriptions = pubsub
        .subscriptions
        .iter()
        .map(|name| subscriber.subscription_name(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartupError::Setting(format!("--pubsub-subscription {}: not a subscription name", e.resource)))?;
    Ok(Notifications::new(subscriber, subscriptions))
}

async fn load_config(args: &RunArgs) -> Result<Config, StartupError> {
    let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
    let loaded = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| StartupError::Config(format!("{}: {}", path.display(), one_line(&e))))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None if args.context.is_some() => Config::from_kubeconfig(&options).await,
        None => {
            return Config::infer().await.map_err(|e| {
                StartupError::Config(format!("{} (set --kubeconfig or KUBECONFIG, or run in a pod)", one_line(&e)))
            });
        }
    };
    loaded.map_err(|e| StartupError::Config(one_line(&e)))
}

fn classify(url: &str, error: &kube::Error) -> StartupError {
    match error {
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            StartupError::Unauthorized { url: url.to_owned(), reason: status.message.clone() }
        }
        _ => StartupError::Unreachable { url: url.to_owned(), reason: one_line(error) },
    }
}

/// The error and its sources on one line: `client error (Connect): tcp connect error: ...`.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace(['\n', '\r'], " ")
}

fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// `<plural>.<group>` of every CRD the operator needs.
fn expected_crds() -> Vec<String> {
    [SecretRef::plural(&()), SecureApiService::plural(&()), GatewayConfig::plural(&())]
        .into_iter()
        .map(|plural| format!("{plural}.{GROUP}"))
        .collect()
}

/// The expected CRDs that the API server's discovery document does not list.
fn missing_crds(list: &APIResourceList) -> Vec<String> {
    expected_crds()
        .into_iter()
        .filter(|crd| {
            let plural = crd.split('.').next().unwrap_or_default();
            !list.resources.iter().any(|resource| resource.name == plural)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn resource(name: &str) -> APIResource {
        APIResource { name: name.into(), ..Default::default() }
    }

    #[test]
    fn discovery_without_our_kinds_reports_each_missing_crd() {
        let list = APIResourceList {
            group_version: group_version(),
            resources: vec![resource("secretrefs"), resource("secretrefs/status")],
        };
        assert_eq!(missing_crds(&list), ["secureapiservices.secureapi.dev", "gatewayconfigs.secureapi.dev"]);
    }

    #[test]
    fn startup_errors_are_one_line() {
        let error = StartupError::CrdsMissing(expected_crds());
        let text = error.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("secretrefs.secureapi.dev"));
        assert!(text.contains("kubectl apply --server-side"));
    }
}
