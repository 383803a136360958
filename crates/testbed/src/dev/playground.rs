//! The playground: the Kubernetes API emulator (with the simulated Deployment and load-balancer
//! controllers), the Google Cloud emulators and the operator, all in this process and on loopback.
//!
//! The operator talks to the Kubernetes emulator over TCP through the same kubeconfig a person's
//! kubectl uses, so the playground exercises the real client path.
//!
//! No container runs, so the seed's API is played by a [`StandIn`] for the pods of the
//! SecureApiService `default/secure-api`: it answers as their revisions, split by Ready pods, and
//! tells the simulated Deployment controller which pods are Ready (their revision's `/health`).
//! Once that service has an external URL, the GCP emulator routes it to the stand-in, and the
//! seed's gateway answers through it.

use super::standin::StandIn;
use super::standin::route::Router;
use crate::emulator::gcp::GcpEmulator;
use crate::emulator::kube::{DeploymentSimulation, KubeEmulator, Listener};
use clap::{Args, FromArgMatches};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use secure_api_operator::cli::RunArgs;
use secure_api_operator::operator::{self, Running};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The topic the seed's secrets publish their notifications to, and the operator's subscription.
pub const TOPIC: &str = "secret-events";
pub const SUBSCRIPTION: &str = "secret-events-operator";
/// The service the stand-in plays: the seed's, where `deploy/examples/` puts it.
pub const SEED_NAMESPACE: &str = "default";
pub const SEED_SERVICE: &str = "secure-api";

/// Where the playground listens and keeps its files.
#[derive(Clone, Debug)]
pub struct PlaygroundOptions {
    pub kube_listen: SocketAddr,
    pub gcp_listen: SocketAddr,
    /// Holds `kubeconfig` (and `operator.log` when the caller logs there).
    pub dir: PathBuf,
    pub gcp_project: String,
    /// Whether the operator follows Secret Manager's notifications (`dev` always does; the
    /// rotation benchmark compares with polling).
    pub notifications: bool,
    /// The Prometheus servers a canary's gate may query (the operator's
    /// `--prometheus-allowed-url-prefixes`); none in `dev`, where no Prometheus runs.
    pub prometheus_allowed_url_prefixes: Vec<String>,
}

/// Running emulators and operator. Dropping it without [`Playground::stop`] leaves the listeners
/// to the runtime's shutdown.
pub struct Playground {
    pub kube: KubeEmulator,
    pub gcp: GcpEmulator,
    pub gcp_project: String,
    pub kubeconfig: PathBuf,
    kube_listener: Listener,
    gcp_listener: Listener,
    operator: Running,
    standin: StandIn,
    router: Router,
}

impl Playground {
    /// Starts the emulators, installs the CRDs, writes the kubeconfig and starts the operator.
    pub async fn start(options: &PlaygroundOptions) -> Result<Self, String> {
        for (flag, addr) in [("--kube-listen", options.kube_listen), ("--gcp-listen", options.gcp_listen)] {
            if !addr.ip().is_loopback() {
                return Err(format!("{flag} {addr} is not a loopback address; the emulators have no authentication"));
            }
        }
        std::fs::create_dir_all(&options.dir).map_err(|e| format!("cannot create {}: {e}", options.dir.display()))?;

        let kube = KubeEmulator::new();
        kube.set_deployment_simulation(DeploymentSimulation::Complete);
        kube.start_root_ca_publisher();
        kube.start_quota_controller();
        install_crds(&kube).await?;
        let kube_listener = kube
            .listen(options.kube_listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.kube_listen))?;
        let kubeconfig = options.dir.join("kubeconfig");
        std::fs::write(&kubeconfig, KubeEmulator::kubeconfig(&kube_listener.url()))
            .map_err(|e| format!("cannot write {}: {e}", kubeconfig.display()))?;

        let gcp = GcpEmulator::new();
        // STS verifies the ServiceAccount tokens of the emulated cluster.
        gcp.trust_jwks(kube.service_account_jwks());
        // Secret Manager's notifications reach the operator through this topic and subscription.
        gcp.create_topic(&options.gcp_project, TOPIC);
        gcp.create_subscription(&options.gcp_project, SUBSCRIPTION, TOPIC, Duration::from_secs(10));
        let gcp_listener = gcp
            .listen(options.gcp_listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.gcp_listen))?;

        let mut args = run_args(&kubeconfig, &gcp_listener.url(), &options.gcp_project)?;
        if !options.notifications {
            args.pubsub_subscription.clear();
        }
        args.prometheus_allowed_url_prefixes.clone_from(&options.prometheus_allowed_url_prefixes);
        let standin = StandIn::start(&kube, SEED_NAMESPACE, SEED_SERVICE).await?;
        let operator = operator::start(args).await.map_err(|e| format!("the operator did not start: {e}"))?;
        let router = Router::start(kube.client(), gcp.clone(), SEED_NAMESPACE, SEED_SERVICE, standin.addr());
        Ok(Self {
            kube,
            gcp,
            gcp_project: options.gcp_project.clone(),
            kubeconfig,
            kube_listener,
            gcp_listener,
            operator,
            standin,
            router,
        })
    }

    /// The topic secrets publish their notifications to: `projects/P/topics/secret-events`.
    pub fn topic(&self) -> String {
        format!("projects/{}/topics/{TOPIC}", self.gcp_project)
    }

    pub fn kube_url(&self) -> String {
        self.kube_listener.url()
    }

    pub fn gcp_url(&self) -> String {
        self.gcp_listener.url()
    }

    /// The GCP emulator's listener, where the gateways' hostnames answer too.
    pub fn gcp_addr(&self) -> SocketAddr {
        self.gcp_listener.addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.operator.metrics_addr()
    }

    /// A client of the Kubernetes emulator (in process: the playground's own checks need no TCP).
    pub fn client(&self) -> kube::Client {
        self.kube.client()
    }

    /// The stand-in for the seed's API: which revisions serve, and what they answered.
    pub fn standin(&self) -> &StandIn {
        &self.standin
    }

    /// Waits up to `deadline` until the seed service's `status.externalUrl` is routed to the
    /// stand-in (its gateway's backends then answer), and returns that URL. A URL that changes
    /// later is routed again as it appears.
    pub async fn backend_routed(&self, deadline: Duration) -> Result<String, String> {
        self.router.routed(deadline).await
    }

    /// Stops the operator, then the stand-in, then the emulators.
    pub async fn stop(self) {
        self.operator.stop().await;
        self.router.stop().await;
        self.standin.stop().await;
        self.kube_listener.shutdown().await;
        self.gcp_listener.shutdown().await;
    }
}

async fn install_crds(kube: &KubeEmulator) -> Result<(), String> {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.client());
    for crd in secure_api_operator::crdgen::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.create(&PostParams::default(), &crd).await.map_err(|e| format!("cannot install the CRD {name}: {e}"))?;
    }
    Ok(())
}

/// `run`'s arguments for the playground: the defaults of `run` itself (not its environment
/// variables: a `SECUREAPI_*` setting meant for a real cluster must not leak in), pointed at the
/// emulators.
fn run_args(kubeconfig: &Path, gcp_url: &str, project: &str) -> Result<RunArgs, String> {
    let command = RunArgs::augment_args(clap::Command::new("run")).mut_args(|arg| arg.env(None));
    let kubeconfig = kubeconfig.to_string_lossy();
    let subscription = format!("projects/{project}/subscriptions/{SUBSCRIPTION}");
    let flags = [
        "run",
        "--kubeconfig",
        &kubeconfig,
        "--metrics-addr",
        "127.0.0.1:0",
        "--gcp-project",
        project,
        "--secret-manager-endpoint",
        gcp_url,
        "--api-gateway-endpoint",
        gcp_url,
        "--api-keys-endpoint",
        gcp_url,
        "--service-usage-endpoint",
        gcp_url,
        "--sts-endpoint",
        gcp_url,
        "--iam-credentials-endpoint",
        gcp_url,
        "--pubsub-endpoint",
        gcp_url,
        "--pubsub-subscription",
        &subscription,
        "--gcp-no-auth",
        "--startup-timeout",
        "10",
    ];
    let matches = command.try_get_matches_from(flags).map_err(|e| e.to_string())?;
    RunArgs::from_arg_matches(&matches).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_runs_against_the_emulators_with_the_defaults_of_run() {
        let args =
            run_args(Path::new("/tmp/k"), "http://127.0.0.1:9", "demo-project").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.kubeconfig.as_deref(), Some(Path::new("/tmp/k")));
        assert_eq!(args.secret_manager_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(args.api_gateway_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(args.sts_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(args.pubsub_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(args.pubsub_subscription, ["projects/demo-project/subscriptions/secret-events-operator"]);
        assert_eq!(args.iam_credentials_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            args.operator_identity_namespaces, "",
            "the product's default: no namespace uses the operator's identity"
        );
        assert!(args.gcp_no_auth);
        assert!(!args.leader_election);
        assert_eq!(args.concurrency, 8);
    }
}
