//! What the playground benchmarks share: a reader ServiceAccount that secrets are granted to,
//! waiting with a limit, percentiles and knobs from the environment.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use secure_api_testbed::dev::playground::Playground;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use serde_json::json;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often a benchmark looks at the cluster while waiting (the resolution of the figures).
pub const LOOK: Duration = Duration::from_millis(2);

/// ServiceAccount `reader` in `namespace`, opted in for SecretRefs, granted every secret of
/// `project` through Workload Identity.
pub async fn reader(playground: &Playground, project: &str, namespace: &str, reader: &str) -> Result<(), BoxError> {
    let number = GcpEmulator::project_number(project);
    let principal = format!(
        "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{project}.svc.id.goog/subject/ns/{namespace}/sa/{reader}"
    );
    playground.gcp.add_iam_binding(&format!("projects/{project}"), "roles/secretmanager.secretAccessor", &principal);
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": { "name": reader, "annotations": { "secureapi.dev/usable-by": "SecretRef" } },
    }))?;
    Api::<ServiceAccount>::namespaced(playground.client(), namespace).create(&PostParams::default(), &account).await?;
    Ok(())
}

/// Polls `check` every [`LOOK`] until it answers, failing after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> Result<(), BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let started = Instant::now();
    loop {
        if check().await.is_some() {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!("nothing after {limit:?}").into());
        }
        tokio::time::sleep(LOOK).await;
    }
}

/// The `q` quantile of `values` (nearest rank).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

/// A number from the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(text) => Ok(text.parse().map_err(|_| format!("{name}={text} is not a number"))?),
        Err(_) => Ok(default),
    }
}
