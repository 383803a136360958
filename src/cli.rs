//! The command line (a contract: scripts and docs depend on these names). Every flag of `run`
//! also reads an environment variable `SECUREAPI_<FLAG_IN_CAPS>`.

use crate::runtime::shard::Shard;
pub use crate::telemetry::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Kubernetes operator: Google Cloud Secret Manager secrets into workloads, exact-version
/// rollouts on rotation, and Google Cloud API Gateway from declared routes.
#[derive(Parser, Debug)]
#[command(name = "secure-api-operator", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub logging: Logging,
}

/// `--log-format` and `--log-filter`, taken by every subcommand (the test bed's too).
#[derive(Args, Debug, Clone)]
pub struct Logging {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, help_heading = "Logging", value_enum, default_value_t = LogFormat::Text, env = "SECUREAPI_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter in tracing's env-filter syntax, e.g. `info` or `info,secure_api_operator=debug`.
    /// The default silences kube's per-request failure log: the operator reports each failure
    /// itself, with context.
    #[arg(long, global = true, help_heading = "Logging", default_value = DEFAULT_LOG_FILTER, env = "SECUREAPI_LOG_FILTER")]
    pub log_filter: String,
}

/// The exit of a command: success, or one line on stderr that says what is wrong and nothing
/// else.
pub fn exit_code(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Default of `--log-filter`.
pub const DEFAULT_LOG_FILTER: &str = "info,kube_client::client::builder=off";

/// The playground and the emulators are the test bed's (`crates/testbed`), not the product's.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant, reason = "one value per process; the `run` variant dwarfs the rest")]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML (pipe into `kubectl apply --server-side -f -`).
    Crds(CrdsArgs),
    /// Run the operator against the cluster of the current kubeconfig, or in-cluster.
    Run(RunArgs),
    /// Render a GatewayConfig's OpenAPI 2.0 document (what API Gateway receives) on stdout.
    Render(RenderArgs),
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// A YAML file holding a GatewayConfig, perhaps among other documents (a `kubectl apply -f`
    /// file); documents of other kinds are skipped.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,

    /// The GatewayConfig to render when the file holds several (its `metadata.name`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// URL of a backend SecureApiService, as `SERVICE=URL` (repeatable); the cluster would take it
    /// from the service's `status.externalUrl`.
    #[arg(long = "backend", value_name = "SERVICE=URL")]
    pub backends: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (`<plural>.<group>.yaml`) instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Print a Markdown reference of every field (type, default, description) instead of YAML.
    #[arg(long, conflicts_with = "output_dir")]
    pub reference: bool,
}

/// `run --help` headings: the flags grouped by what they set up.
const KUBERNETES: &str = "Kubernetes";
const GOOGLE_CLOUD: &str = "Google Cloud";
const IDENTITY: &str = "Identity (Workload Identity Federation)";
const NOTIFICATIONS: &str = "Notifications (Secret Manager through Pub/Sub)";
const SCALE: &str = "Scale";
const LEADER_ELECTION: &str = "Leader election";
const RUNTIME: &str = "Runtime";
const ROLLOUTS: &str = "Rollouts";

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Kubeconfig file to use. Default: `$KUBECONFIG`, `~/.kube/config`, or the in-cluster
    /// service account when running in a pod.
    #[arg(long, help_heading = KUBERNETES, value_name = "FILE", env = "SECUREAPI_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use. Default: the current context.
    #[arg(long, help_heading = KUBERNETES, value_name = "NAME", env = "SECUREAPI_CONTEXT")]
    pub context: Option<String>,

    /// Watch only this namespace, or these (comma-separated, or the flag repeated): one watch per
    /// kind and namespace, so namespaced RBAC in each is enough. Default: all namespaces (needs
    /// cluster-wide RBAC).
    #[arg(long, help_heading = KUBERNETES, value_name = "NS", value_delimiter = ',', value_parser = namespace_name, env = "SECUREAPI_NAMESPACE")]
    pub namespace: Vec<String>,

    /// Seconds to wait for the Kubernetes API server at start-up before giving up.
    #[arg(long, help_heading = KUBERNETES, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600), env = "SECUREAPI_STARTUP_TIMEOUT")]
    pub startup_timeout: u64,

    /// Google Cloud project of secrets given by id (SecretRef `spec.projectId` overrides it).
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "PROJECT", env = "SECUREAPI_GCP_PROJECT")]
    pub gcp_project: Option<String>,

    /// Secret Manager endpoint override, e.g. `http://127.0.0.1:8085` for an emulator.
    /// Default: `https://secretmanager.googleapis.com` (regional secrets: their regional endpoint).
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "URL", env = "SECUREAPI_SECRET_MANAGER_ENDPOINT")]
    pub secret_manager_endpoint: Option<String>,

    /// API Gateway endpoint override, e.g. `http://127.0.0.1:8085` for an emulator.
    /// Default: `https://apigateway.googleapis.com`.
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "URL", env = "SECUREAPI_API_GATEWAY_ENDPOINT")]
    pub api_gateway_endpoint: Option<String>,

    /// API Keys endpoint override, e.g. `http://127.0.0.1:8085` for an emulator.
    /// Default: `https://apikeys.googleapis.com`.
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "URL", env = "SECUREAPI_API_KEYS_ENDPOINT")]
    pub api_keys_endpoint: Option<String>,

    /// Service Usage endpoint override (enabling a gateway's managed service for its API keys),
    /// e.g. `http://127.0.0.1:8085` for an emulator. Default: `https://serviceusage.googleapis.com`.
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "URL", env = "SECUREAPI_SERVICE_USAGE_ENDPOINT")]
    pub service_usage_endpoint: Option<String>,

    /// Send no credentials to Google Cloud (for emulators). Default: application-default
    /// credentials (GOOGLE_APPLICATION_CREDENTIALS, GKE Workload Identity, gcloud).
    #[arg(long, help_heading = GOOGLE_CLOUD, env = "SECUREAPI_GCP_NO_AUTH")]
    pub gcp_no_auth: bool,

    /// Seconds one Google Cloud request may take before it is retried.
    #[arg(long, help_heading = GOOGLE_CLOUD, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300), env = "SECUREAPI_GCP_TIMEOUT")]
    pub gcp_timeout: u64,

    /// Label selector of the namespaces whose objects may use the operator's own Google identity
    /// when they name no ServiceAccount (e.g. `kubernetes.io/metadata.name in (ops)`). Empty: none
    /// — every SecretRef and GatewayConfig must name a ServiceAccount of its namespace.
    #[arg(long, help_heading = IDENTITY, value_name = "SELECTOR", default_value = "", env = "SECUREAPI_OPERATOR_IDENTITY_NAMESPACES")]
    pub operator_identity_namespaces: String,

    /// STS audience for ServiceAccount tokens outside GKE:
    /// `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`. Default (GKE):
    /// `identitynamespace:PROJECT.svc.id.goog:ISSUER`, from `--gcp-project` and the tokens' issuer.
    #[arg(long, help_heading = IDENTITY, value_name = "AUDIENCE", env = "SECUREAPI_WORKLOAD_IDENTITY_AUDIENCE")]
    pub workload_identity_audience: Option<String>,

    /// Audience of the ServiceAccount tokens the operator requests. Default: `PROJECT.svc.id.goog`
    /// (GKE), or `https:` + the pool provider's audience.
    #[arg(long, help_heading = IDENTITY, value_name = "AUDIENCE", env = "SECUREAPI_SERVICE_ACCOUNT_TOKEN_AUDIENCE")]
    pub service_account_token_audience: Option<String>,

    /// Security Token Service endpoint override (emulators). Default: `https://sts.googleapis.com`.
    #[arg(long, help_heading = IDENTITY, value_name = "URL", env = "SECUREAPI_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,

    /// IAM Credentials endpoint override (emulators). Default: `https://iamcredentials.googleapis.com`.
    #[arg(long, help_heading = IDENTITY, value_name = "URL", env = "SECUREAPI_IAM_CREDENTIALS_ENDPOINT")]
    pub iam_credentials_endpoint: Option<String>,

    /// Pub/Sub subscription of Secret Manager's notifications (`projects/P/subscriptions/S`, or
    /// an id in `--gcp-project`); repeat it (or separate with commas) for one per project. Each
    /// notification queues exactly the SecretRefs it concerns. Default: none (polling only).
    #[arg(long, help_heading = NOTIFICATIONS, value_name = "NAME", value_delimiter = ',', env = "SECUREAPI_PUBSUB_SUBSCRIPTION")]
    pub pubsub_subscription: Vec<String>,

    /// Pub/Sub endpoint override (emulators). Default: `https://pubsub.googleapis.com`.
    #[arg(long, help_heading = NOTIFICATIONS, value_name = "URL", env = "SECUREAPI_PUBSUB_ENDPOINT")]
    pub pubsub_endpoint: Option<String>,

    /// Reconcile only part of the objects: shard N of M (`0/2`, `1/2`). Each of M operator
    /// Deployments owns the objects whose namespace/name hashes to its index, and elects its
    /// leader on a Lease of its own (`--lease-name` + `-shard-N`). Default: every object.
    #[arg(long, help_heading = SCALE, value_name = "N/M", default_value = "0/1", env = "SECUREAPI_SHARD")]
    pub shard: Shard,

    /// Objects each controller reconciles in parallel.
    #[arg(long, help_heading = SCALE, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256), env = "SECUREAPI_CONCURRENCY")]
    pub concurrency: u16,

    /// Google Cloud requests in flight at most.
    #[arg(long, help_heading = SCALE, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024), env = "SECUREAPI_GCP_MAX_CONCURRENCY")]
    pub gcp_max_concurrency: u32,

    /// Google Cloud requests per second at most, per project. The default stays under Secret
    /// Manager's quota of 90,000 access calls per minute per project, with room for other clients.
    #[arg(long, help_heading = SCALE, value_name = "RATE", default_value_t = 1400.0, env = "SECUREAPI_GCP_REQUESTS_PER_SECOND")]
    pub gcp_requests_per_second: f64,

    /// Take part in leader election on a coordination.k8s.io Lease: only the replica holding the
    /// Lease reconciles, the others stand by and take over when it stops. Needed with more than
    /// one replica.
    #[arg(long, help_heading = LEADER_ELECTION, env = "SECUREAPI_LEADER_ELECTION")]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, help_heading = LEADER_ELECTION, value_name = "NAME", default_value = "secure-api-operator", env = "SECUREAPI_LEASE_NAME")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease. Default: the pod's own namespace in a cluster,
    /// else the (first) `--namespace`, else `default`.
    #[arg(long, help_heading = LEADER_ELECTION, value_name = "NS", env = "SECUREAPI_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a Lease stays valid without renewal: how long a standby waits before taking over
    /// from a leader that died without releasing it.
    #[arg(long, help_heading = LEADER_ELECTION, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=300), env = "SECUREAPI_LEASE_DURATION")]
    pub lease_duration: u64,

    /// Seconds between the leader's renewals of the Lease and a standby's attempts to take it.
    #[arg(long, help_heading = LEADER_ELECTION, value_name = "SECONDS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60), env = "SECUREAPI_LEASE_RETRY_PERIOD")]
    pub lease_retry_period: u64,

    /// Identity of this replica in the Lease. Default: the host name (the pod name in a cluster)
    /// with a random suffix.
    #[arg(long, help_heading = LEADER_ELECTION, value_name = "ID", env = "SECUREAPI_LEADER_IDENTITY")]
    pub leader_identity: Option<String>,

    /// Address of the HTTP server for `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, help_heading = RUNTIME, value_name = "ADDR", default_value = "0.0.0.0:8080", env = "SECUREAPI_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,

    /// Seconds from SIGTERM to exit, whatever a reconcile is doing: reconciles in flight may
    /// finish until a second before (the last second releases the Lease), then they are
    /// abandoned and run again at the next start. Keep the pod's terminationGracePeriodSeconds
    /// longer.
    #[arg(long, help_heading = RUNTIME, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300), env = "SECUREAPI_SHUTDOWN_GRACE")]
    pub shutdown_grace: u64,

    /// URL prefixes of the Prometheus servers a canary's health gate may query
    /// (`spec.rollout.analysis.prometheus.address`), comma-separated, e.g.
    /// `http://prometheus.monitoring:9090`. None by default: the address is a tenant's, and the
    /// operator queries only servers it was told it may.
    #[arg(long, help_heading = ROLLOUTS, value_name = "URL", value_delimiter = ',', env = "SECUREAPI_PROMETHEUS_ALLOWED_URL_PREFIXES")]
    pub prometheus_allowed_url_prefixes: Vec<String>,
}

/// A namespace of `--namespace`, spaces around it dropped (`a, b`): a DNS label, as Kubernetes
/// names namespaces, so a typo fails at start rather than as a watch that is refused forever.
fn namespace_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    let label = name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    match label {
        true => Ok(name.to_owned()),
        false => Err(format!("{name:?} is no namespace name (lowercase letters, digits and '-', at most 63)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn subcommands() -> Vec<String> {
        let mut names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|cmd| cmd.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_product_has_only_run_crds_and_render() {
        assert_eq!(subcommands(), ["crds", "render", "run"]);
    }

    fn namespaces(args: &[&str]) -> Result<Vec<String>, String> {
        let parsed =
            Cli::try_parse_from(["secure-api-operator", "run"].iter().chain(args)).map_err(|e| e.to_string())?;
        match parsed.command {
            Command::Run(run) => Ok(run.namespace),
            other => Err(format!("not run: {other:?}")),
        }
    }

    #[test]
    fn namespace_takes_one_namespace_or_a_comma_separated_list() {
        assert_eq!(namespaces(&[]), Ok(vec![]), "all namespaces");
        assert_eq!(namespaces(&["--namespace", "team-a"]), Ok(vec!["team-a".to_owned()]));
        let both = Ok(vec!["team-a".to_owned(), "team-b".to_owned()]);
        assert_eq!(namespaces(&["--namespace", "team-a,team-b"]), both);
        assert_eq!(namespaces(&["--namespace", "team-a, team-b"]), both, "spaces after commas");
        assert_eq!(namespaces(&["--namespace", "team-a", "--namespace", "team-b"]), both);
        for wrong in ["Team-A", "team-a,", "a-", "a_b"] {
            let refused = namespaces(&["--namespace", wrong]);
            assert!(refused.as_ref().is_err_and(|e| e.contains("no namespace name")), "{wrong}: {refused:?}");
        }
    }

    /// `run` has some 30 flags: each is under a heading, so `run --help` reads by topic.
    #[test]
    fn every_run_flag_has_a_heading() {
        let command = Cli::command();
        let run = command.find_subcommand("run").unwrap_or_else(|| panic!("no run subcommand"));
        for arg in run.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            assert!(arg.get_help_heading().is_some(), "flag --{} of `run` has no help_heading", arg.get_id());
        }
    }

    /// User-facing text calls the reference scenario "the example"; "seed" is our jargon.
    #[test]
    fn no_help_text_says_seed() {
        let mut stack = vec![Cli::command()];
        while let Some(mut cmd) = stack.pop() {
            let help = cmd.render_long_help().to_string();
            assert!(!help.to_lowercase().contains("seed"), "`{} --help` says seed:\n{help}", cmd.get_name());
            stack.extend(cmd.get_subcommands().cloned());
        }
    }

    #[test]
    fn every_flag_is_described_and_run_flags_read_the_environment() {
        let command = Cli::command();
        let mut stack = vec![command];
        while let Some(cmd) = stack.pop() {
            assert!(cmd.get_about().is_some(), "subcommand {} has no description", cmd.get_name());
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let described = arg.get_help().map(|h| h.to_string().len() > 10).unwrap_or(false);
                assert!(described, "flag --{id} of `{}` has no description", cmd.get_name());
                if cmd.get_name() == "run" && !arg.is_global_set() {
                    let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                    assert_eq!(
                        env,
                        Some(format!("SECUREAPI_{}", id.to_ascii_uppercase())),
                        "flag --{id} of `run` must read SECUREAPI_<FLAG>"
                    );
                }
            }
            stack.extend(cmd.get_subcommands().cloned());
        }
    }
}
