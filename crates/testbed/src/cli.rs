//! The test bed's command line: `dev` (the playground) and `emulator`. It is run as the root
//! package's example `testbed` (`cargo run --release --example testbed -- dev --demo`), which
//! the integration tests also start as a process.

use clap::{Args, Parser, Subcommand, ValueEnum};
use secure_api_operator::cli::{Logging, exit_code};
use secure_api_operator::telemetry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// secure-api-operator's test bed: the emulators and a playground on this machine (loopback only;
/// nothing is persisted).
#[derive(Parser, Debug)]
#[command(name = "testbed", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub logging: Logging,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the in-memory Kubernetes API and Google Cloud emulators on 127.0.0.1 until interrupted
    /// (a test bed for kubectl, gcloud and the operator; nothing is persisted).
    Emulator(EmulatorArgs),
    /// A playground on this machine: the emulators and the operator in one process, driven with
    /// kubectl and gcloud; `--demo` plays the example end to end and exits.
    Dev(DevArgs),
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Play the example (its secrets, deploy/examples/, a rotation) with a step-by-step report, then exit:
    /// 0 when every step succeeded, 1 naming the step that failed.
    #[arg(long)]
    pub demo: bool,

    /// Address of the Kubernetes API emulator (plain HTTP, loopback only); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub kube_listen: SocketAddr,

    /// Address of the Google Cloud emulators (plain HTTP, loopback only); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub gcp_listen: SocketAddr,

    /// Directory for the playground's kubeconfig and the operator's log.
    /// Default: `secure-api-operator-dev` in the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Google Cloud project of the playground's secrets.
    #[arg(long, value_name = "PROJECT", default_value = "demo-project")]
    pub gcp_project: String,
}

#[derive(Args, Debug)]
pub struct EmulatorArgs {
    /// Address of the Kubernetes API emulator (plain HTTP); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub kube_listen: SocketAddr,

    /// Address of the Google Cloud emulators (Secret Manager, Pub/Sub, API Gateway and identity
    /// REST, plain HTTP); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub gcp_listen: SocketAddr,

    /// Write a kubeconfig for the emulator to this file (for kubectl and `run --kubeconfig`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// Simulated Deployment controller: `off`, `complete` (rollouts finish at once) or `stall`
    /// (rollouts never progress). Unless `off`, LoadBalancer Services also get an address.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = DeploymentMode::Off)]
    pub deployments: DeploymentMode,

    /// Where STS finds the keys that sign ServiceAccount tokens: a cluster's `/openid/v1/jwks`
    /// URL, or a file holding a saved copy. Default: the Kubernetes emulator's own keys.
    #[arg(long, value_name = "URL|FILE")]
    pub trust_jwks: Option<String>,

    /// Publish Secret Manager's event notifications to the Pub/Sub REST API at this URL (e.g.
    /// Google's emulator, `http://127.0.0.1:8681`) instead of the emulator's own Pub/Sub.
    #[arg(long, value_name = "URL")]
    pub pubsub_publish_endpoint: Option<String>,
}

/// Behaviour of the emulator's simulated Deployment controller.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentMode {
    Off,
    Complete,
    Stall,
}

/// Parses the command line and runs it; one line on stderr when it fails.
pub fn main() -> ExitCode {
    exit_code(dispatch(Cli::parse()))
}

fn dispatch(cli: Cli) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    match cli.command {
        Command::Emulator(args) => {
            telemetry::init(cli.logging.log_format, &cli.logging.log_filter)?;
            runtime.block_on(crate::emulator::serve::run(args))
        }
        Command::Dev(args) => runtime.block_on(crate::dev::run(args, cli.logging.log_format, &cli.logging.log_filter)),
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
}
