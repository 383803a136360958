//! `testbed emulator`: the emulators as a standalone process for kubectl, gcloud and
//! a locally run operator.

use super::gcp::GcpEmulator;
use super::kube::{DeploymentSimulation, KubeEmulator};
use crate::cli::{DeploymentMode, EmulatorArgs};
use secure_api_operator::shutdown::shutdown_signal;
use std::io::Write;

impl From<DeploymentMode> for DeploymentSimulation {
    fn from(mode: DeploymentMode) -> Self {
        match mode {
            DeploymentMode::Off => Self::Off,
            DeploymentMode::Complete => Self::Complete,
            DeploymentMode::Stall => Self::Stall,
        }
    }
}

/// Serves the emulators until SIGTERM or SIGINT.
pub async fn run(args: EmulatorArgs) -> Result<(), String> {
    if !args.kube_listen.ip().is_loopback() {
        return Err(format!(
            "--kube-listen {} is not a loopback address; the emulator has no authentication",
            args.kube_listen
        ));
    }
    let kube = KubeEmulator::new();
    kube.set_deployment_simulation(args.deployments.into());
    kube.start_root_ca_publisher();
    kube.start_quota_controller();
    let listener =
        kube.listen(args.kube_listen).await.map_err(|e| format!("cannot listen on {}: {e}", args.kube_listen))?;
    let gcp = GcpEmulator::new();
    match &args.trust_jwks {
        Some(source) => gcp.trust_jwks_source(source).map_err(|e| format!("--trust-jwks {source}: {e}"))?,
        None => gcp.trust_jwks(kube.service_account_jwks()),
    }
    if let Some(endpoint) = &args.pubsub_publish_endpoint {
        gcp.publish_to(endpoint.clone());
    }
    let gcp_listener =
        gcp.listen(args.gcp_listen).await.map_err(|e| format!("cannot listen on {}: {e}", args.gcp_listen))?;
    let gcp_url = gcp_listener.url();
    let mut out = format!("Kubernetes API emulator: {}\n", listener.url());
    out.push_str(&format!(
        "Google Cloud emulators (Secret Manager, Pub/Sub, API Gateway, STS, IAM): {gcp_url}\n  gcloud: CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER={gcp_url}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB={gcp_url}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_APIGATEWAY={gcp_url}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM={gcp_url}/ CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER={gcp_url}/ CLOUDSDK_AUTH_ACCESS_TOKEN=emulator\n  operator: run --secret-manager-endpoint {gcp_url} --api-gateway-endpoint {gcp_url} --sts-endpoint {gcp_url} --iam-credentials-endpoint {gcp_url} --gcp-no-auth\n"
    ));
    let notifications = args.pubsub_publish_endpoint.as_deref().unwrap_or("the emulator's own Pub/Sub");
    out.push_str(&format!("  Secret Manager notifications: published to {notifications}\n"));
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, KubeEmulator::kubeconfig(&listener.url()))
            .map_err(|e| format!("cannot write the kubeconfig to {}: {e}", path.display()))?;
        out.push_str(&format!("kubeconfig: {}\n  export KUBECONFIG={}\n", path.display(), path.display()));
    }
    out.push_str("Stop with Ctrl-C.\n");
    let mut stdout = std::io::stdout();
    // The first lines are the contract scripts read: flush them before serving.
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    shutdown_signal().await;
    listener.shutdown().await;
    gcp_listener.shutdown().await;
    Ok(())
}
