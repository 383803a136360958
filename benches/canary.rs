//! Safe rotation, timed on the playground (emulated Kubernetes and Google Cloud, the operator
//! over TCP, Secret Manager's notifications on; the simulated Deployment controller reports
//! pods Ready at once, or never for a bad version): one service of nine replicas and one secret,
//! R rotations per case, each timed from `versions add` to
//!
//! - `RollingUpdate`, good version: the Deployment's template at the new version, rolled out;
//! - `Canary` (10% then 50%, no pauses, replica ratio), good version: 100% on the new revision —
//!   the stable Deployment at it, rolled out, and the canary retired;
//! - `Canary`, bad version (pods never Ready; a 1 s gate): `RolloutAborted` in status.
//!
//! Prints, in ms: when the SecretRef synced the version (p50), when the case ended (p50, p99,
//! max) and how long after the sync (p50). Each rotation comes at least S ms after the previous
//! one was synced: the operator reads a SecretRef again for a notification at most every 2 s
//! (notifications are hints), so rotations closer than that would time that pacing.
//!
//! Then the worse failure, a version whose pods are Ready but whose requests fail (a database
//! credential without grants: `/health` 200, `/api/data` 500), on the example's service of nine
//! replicas behind the API Gateway emulator ([`gateway`]), G rotations per case, under
//! `RollingUpdate` and under `Canary` (10% then 50%, 5 s each, gated every second on the canary
//! revision's 5xx ratio from a real Prometheus that scrapes the stand-in), while a load generator
//! calls `/api/data` through the gateway every I ms from `versions add` for W s. Prints per case:
//! requests sent, failed (any status but 2xx, or no answer), failed %, how the new revision's
//! answers ended (2xx, failed), and from `versions add` to the end (rolled out, or
//! `RolloutAborted`: p50 and max, in ms). Without Prometheus (`prometheus` on the `PATH`) these
//! cases print that they are skipped.
//!
//! Asserts nothing. `cargo bench --bench canary`. Knobs: `BENCH_ROTATIONS` (R, default 20),
//! `BENCH_GATEWAY_ROTATIONS` (G, default 3), `BENCH_LOAD_INTERVAL_MS` (I, default 20),
//! `BENCH_WINDOW_SECS` (W, default 15), `BENCH_SPACING_MS` (S, default 2100),
//! `BENCH_TIMEOUT_SECS` (default 600).

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use secure_api_operator::api::{SecretRef, SecureApiService};
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

// The bench's own modules, beside it (a file directly in benches/ would be a bench of its own).
#[path = "canary/gateway.rs"]
mod gateway;
#[path = "canary/load.rs"]
mod load;
mod support;

use support::{BoxError, env_usize, percentile, wait_until};

const PROJECT: &str = "bench-project";
const NAMESPACE: &str = "default";
const READER: &str = "bench-reader";
const SECRET: &str = "db";
const SERVICE: &str = "api";
const CANARY: &str = "api-canary";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let limit = Duration::from_secs(env_usize("BENCH_TIMEOUT_SECS", 600)? as u64);
    tokio::time::timeout(limit, run()).await.map_err(|_| format!("benchmark took longer than {limit:?}"))?
}

/// What one case rolls out, and how it ends.
#[derive(Clone, Copy)]
enum Case {
    RollingUpdate,
    CanaryPromoted,
    CanaryAborted,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Self::RollingUpdate => "RollingUpdate, good version",
            Self::CanaryPromoted => "Canary, good version",
            Self::CanaryAborted => "Canary, bad version",
        }
    }

    fn ends_at(self) -> &'static str {
        match self {
            Self::RollingUpdate => "rolled out",
            Self::CanaryPromoted => "100% on the new revision",
            Self::CanaryAborted => "RolloutAborted",
        }
    }

    fn rollout(self) -> Value {
        match self {
            Self::RollingUpdate => json!({ "strategy": "RollingUpdate", "canary": null, "analysis": null }),
            Self::CanaryPromoted | Self::CanaryAborted => json!({
                "strategy": "Canary",
                "canary": { "steps": [{ "weight": 10, "pause": "0s" }, { "weight": 50, "pause": "0s" }] },
                "analysis": { "interval": "1s" },
            }),
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let rotations = env_usize("BENCH_ROTATIONS", 20)?.max(1);
    let spacing = Duration::from_millis(env_usize("BENCH_SPACING_MS", 2100)? as u64);
    let knobs = gateway::Knobs {
        rotations: env_usize("BENCH_GATEWAY_ROTATIONS", 3)?.max(1),
        every: Duration::from_millis(env_usize("BENCH_LOAD_INTERVAL_MS", 20)?.max(1) as u64),
        window: Duration::from_secs(env_usize("BENCH_WINDOW_SECS", 15)?.max(1) as u64),
    };
    println!("safe rotation: one service of 9 replicas, {rotations} rotations per case\n");
    let dir = std::env::temp_dir().join(format!("secure-api-operator-bench-canary-{}", std::process::id()));
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir,
        gcp_project: PROJECT.into(),
        notifications: true,
        prometheus_allowed_url_prefixes: Vec::new(),
    };
    let playground = Playground::start(&options).await?;
    // Pods of a version in `bad` are never Ready.
    let bad: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let unready = bad.clone();
    playground.kube.set_pod_readiness(Some(Arc::new(move |deployment: &Value| {
        let versions = &deployment["spec"]["template"]["metadata"]["annotations"]["secureapi.dev/secret-versions"];
        let version = versions.as_str().and_then(|v| v.strip_prefix("db=")).and_then(|v| v.parse().ok());
        !version.is_some_and(|v| unready.lock().unwrap_or_else(PoisonError::into_inner).contains(&v))
    })));
    seed(&playground).await?;
    let client = playground.client();
    let services: Api<SecureApiService> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let first = wait_until(Duration::from_secs(60), || async { rolled_out(&deployments, &services, 1).await }).await;
    if let Err(error) = first {
        let status = services.get(SERVICE).await.map(|s| s.status);
        let secret_ref = Api::<SecretRef>::namespaced(client.clone(), NAMESPACE).get(SECRET).await.map(|s| s.status);
        return Err(format!("the first revision: {error}; service {status:?}; SecretRef {secret_ref:?}").into());
    }

    println!(
        "{:<30} {:<26} {:>14} {:>9} {:>9} {:>9} {:>17}",
        "case", "until", "synced p50 ms", "p50 ms", "p99", "max", "after sync p50"
    );
    let secret_refs: Api<SecretRef> = Api::namespaced(client.clone(), NAMESPACE);
    let mut version = 1;
    // When the last version was synced (the first one just was): the operator's last read for a
    // notification.
    let mut last_rotation = Some(Instant::now());
    for case in [Case::RollingUpdate, Case::CanaryPromoted, Case::CanaryAborted] {
        let patch = json!({ "spec": { "rollout": case.rollout() } });
        services.patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let (mut synced, mut times) = (Vec::with_capacity(rotations), Vec::with_capacity(rotations));
        for i in 0..rotations {
            version += 1;
            if let Case::CanaryAborted = case {
                bad.lock().unwrap_or_else(PoisonError::into_inner).insert(version);
            }
            // Pacing, not synchronisation: each rotation comes after a quiet spell, as real ones do.
            if let Some(last) = last_rotation {
                tokio::time::sleep_until((last + spacing).into()).await;
            }
            let started = Instant::now();
            let added = playground.gcp.add_version(PROJECT, SECRET, format!("{{\"password\":\"p-{i}\"}}").as_bytes());
            let wanted = added.to_string();
            wait_until(Duration::from_secs(60), || async {
                let status = secret_refs.get(SECRET).await.ok()?.status?;
                (status.synced_version.as_deref() == Some(wanted.as_str())).then_some(())
            })
            .await?;
            synced.push(started.elapsed().as_secs_f64() * 1000.0);
            last_rotation = Some(Instant::now());
            wait_until(Duration::from_secs(60), || async {
                match case {
                    Case::CanaryAborted => aborted(&services, added).await,
                    _ => rolled_out(&deployments, &services, added).await,
                }
            })
            .await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let after_sync: Vec<f64> = times.iter().zip(&synced).map(|(end, sync)| end - sync).collect();
        println!(
            "{:<30} {:<26} {:>14.0} {:>9.0} {:>9.0} {:>9.0} {:>17.0}",
            case.name(),
            case.ends_at(),
            percentile(&synced, 0.5),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            percentile(&after_sync, 0.5)
        );
        // The next case starts from a good version that runs everywhere.
        if let Case::CanaryAborted = case {
            version += 1;
            let added = playground.gcp.add_version(PROJECT, SECRET, b"{\"password\":\"good\"}");
            wait_until(Duration::from_secs(60), || async { rolled_out(&deployments, &services, added).await }).await?;
        }
    }
    playground.stop().await;
    gateway::run(&knobs).await
}

/// The secret, readable by one ServiceAccount, its SecretRef, and the service.
async fn seed(playground: &Playground) -> Result<(), BoxError> {
    let gcp = &playground.gcp;
    support::reader(playground, PROJECT, NAMESPACE, READER).await?;
    gcp.add_version(PROJECT, SECRET, b"{\"password\":\"initial\"}");
    gcp.set_secret_topics(PROJECT, SECRET, &[&playground.topic()]).map_err(|e| format!("topics: {e}"))?;
    let client = playground.client();
    let secret_ref: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": SECRET },
        "spec": { "secret": SECRET, "format": "json", "refreshInterval": "168h", "serviceAccountName": READER },
    }))?;
    Api::<SecretRef>::namespaced(client.clone(), NAMESPACE).create(&PostParams::default(), &secret_ref).await?;
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": SERVICE },
        "spec": {
            "image": "example.com/bench:1.0", "replicas": 9,
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": SECRET, "key": "password" }],
        },
    }))?;
    Api::<SecureApiService>::namespaced(client, NAMESPACE).create(&PostParams::default(), &service).await?;
    Ok(())
}

/// The stable Deployment runs `version` on every replica, the service says so, and no canary is
/// left.
async fn rolled_out(deployments: &Api<Deployment>, services: &Api<SecureApiService>, version: u64) -> Option<()> {
    let stable = deployments.get(SERVICE).await.ok()?;
    let annotations = stable.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?;
    if annotations.get("secureapi.dev/secret-versions")? != &format!("db={version}") {
        return None;
    }
    let status = services.get(SERVICE).await.ok()?.status?;
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "RolloutComplete");
    let wanted = Some(format!("db={version}"));
    (ready && status.secret_versions_summary == wanted && deployments.get_opt(CANARY).await.ok()?.is_none())
        .then_some(())
}

/// The service reports the revision of `version` aborted.
async fn aborted(services: &Api<SecureApiService>, version: u64) -> Option<()> {
    let status = services.get(SERVICE).await.ok()?.status?;
    let rejected = status.rejected_revisions.first()?;
    let reason = status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.as_str());
    (rejected.secret_versions.get(SECRET) == Some(&version.to_string()) && reason == Some("RolloutAborted"))
        .then_some(())
}
