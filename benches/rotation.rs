//! Rotation latency: with N SecretRefs and N/10 SecureApiServices present on the playground
//! (emulated Kubernetes and Google Cloud, the operator over TCP), R rotations one after another,
//! each timed from `versions add` to (a) the SecretRef reporting the new version in status (its
//! Secret written) and (b) the SecureApiService's Deployment carrying it in its pod template.
//! Run twice: with Secret Manager's Pub/Sub notifications, and with polling replaced by the
//! refresh annotation set right after the version is added (what a person or CI would do).
//!
//! Prints figures (p50/p99/max in ms, access calls per rotation); asserts nothing.
//! `cargo bench --bench rotation`. Knobs: `BENCH_SECRET_REFS` (N, default 1000),
//! `BENCH_ROTATIONS` (R, default 200), `BENCH_TIMEOUT_SECS` (default 600).

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use secure_api_operator::api::{REFRESH_ANNOTATION, SecretRef, SecureApiService};
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions};
use serde_json::json;
use std::time::{Duration, Instant};

mod support;

use support::{BoxError, env_usize, percentile, wait_until};

const PROJECT: &str = "bench-project";
const NAMESPACE: &str = "default";
const READER: &str = "bench-reader";
const ACCESS: &str = "secretmanager.versions.access";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let limit = Duration::from_secs(env_usize("BENCH_TIMEOUT_SECS", 600)? as u64);
    tokio::time::timeout(limit, run()).await.map_err(|_| format!("benchmark took longer than {limit:?}"))?
}

async fn run() -> Result<(), BoxError> {
    let refs = env_usize("BENCH_SECRET_REFS", 1000)?.max(10);
    let rotations = env_usize("BENCH_ROTATIONS", 200)?.clamp(1, refs);
    println!(
        "rotation latency: {refs} SecretRefs, {} SecureApiServices, {rotations} rotations one after another\n",
        refs / 10
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>14}",
        "mode", "Secret p50", "p99", "max", "template p50", "p99", "max", "access/rotation"
    );
    for notifications in [true, false] {
        let figures = measure(refs, rotations, notifications).await?;
        let mode = if notifications { "Pub/Sub notifications" } else { "refresh annotation" };
        println!(
            "{mode:<28} {:>9.1} {:>9.1} {:>9.1}   {:>12.1} {:>9.1} {:>9.1}   {:>14.2}",
            percentile(&figures.secret, 0.5),
            percentile(&figures.secret, 0.99),
            percentile(&figures.secret, 1.0),
            percentile(&figures.template, 0.5),
            percentile(&figures.template, 0.99),
            percentile(&figures.template, 1.0),
            figures.access_per_rotation,
        );
    }
    Ok(())
}

struct Figures {
    /// Milliseconds from `versions add` to the SecretRef at the new version.
    secret: Vec<f64>,
    /// Milliseconds from `versions add` to the Deployment's pod template at the new version.
    template: Vec<f64>,
    access_per_rotation: f64,
}

async fn measure(refs: usize, rotations: usize, notifications: bool) -> Result<Figures, BoxError> {
    let dir = std::env::temp_dir().join(format!("secure-api-operator-bench-rotation-{}", std::process::id()));
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir,
        gcp_project: PROJECT.into(),
        notifications,
        prometheus_allowed_url_prefixes: Vec::new(),
    };
    let playground = Playground::start(&options).await?;
    let client = playground.client();
    seed(&playground, refs).await?;
    let ready = Instant::now();
    wait_until(Duration::from_secs(300), || async { all_templates_ready(&client, refs).await }).await?;
    eprintln!(
        "  ({} mode: {refs} SecretRefs synced and rolled out in {:.1} s)",
        if notifications { "notifications" } else { "annotation" },
        ready.elapsed().as_secs_f64()
    );

    let secret_refs: Api<SecretRef> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let reads_before = playground.gcp.count(ACCESS);
    let mut figures = Figures { secret: Vec::new(), template: Vec::new(), access_per_rotation: 0.0 };
    for i in 0..rotations {
        let name = format!("s{i}");
        let started = Instant::now();
        let version = playground.gcp.add_version(PROJECT, &name, format!("{{\"value\":\"rotated-{i}\"}}").as_bytes());
        if !notifications {
            let patch = json!({ "metadata": { "annotations": { REFRESH_ANNOTATION: version.to_string() } } });
            secret_refs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        let wanted = version.to_string();
        wait_until(Duration::from_secs(30), || async {
            let object = secret_refs.get(&name).await.ok()?;
            (object.status?.synced_version.as_deref() == Some(wanted.as_str())).then_some(())
        })
        .await?;
        figures.secret.push(started.elapsed().as_secs_f64() * 1000.0);
        let service = format!("api-{}", i / 10);
        let pair = format!("{name}={version}");
        wait_until(Duration::from_secs(30), || async {
            let deployment = deployments.get(&service).await.ok()?;
            template_versions(&deployment)?.split(',').any(|p| p == pair).then_some(())
        })
        .await?;
        figures.template.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    figures.access_per_rotation = (playground.gcp.count(ACCESS) - reads_before) as f64 / rotations as f64;
    playground.stop().await;
    Ok(figures)
}

/// N secrets readable by one ServiceAccount, N SecretRefs (refreshed only by events or the
/// annotation) and N/10 services, each using ten of them.
async fn seed(playground: &Playground, refs: usize) -> Result<(), BoxError> {
    let gcp = &playground.gcp;
    let topic = playground.topic();
    support::reader(playground, PROJECT, NAMESPACE, READER).await?;
    let client = playground.client();
    let secret_refs: Api<SecretRef> = Api::namespaced(client.clone(), NAMESPACE);
    for i in 0..refs {
        let name = format!("s{i}");
        gcp.add_version(PROJECT, &name, b"{\"value\":\"initial\"}");
        gcp.set_secret_topics(PROJECT, &name, &[&topic]).map_err(|e| format!("topics of {name}: {e}"))?;
        let object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
            "spec": { "secret": name, "format": "json", "refreshInterval": "168h", "serviceAccountName": READER },
        }))?;
        secret_refs.create(&PostParams::default(), &object).await?;
    }
    let services: Api<SecureApiService> = Api::namespaced(client, NAMESPACE);
    for s in 0..refs / 10 {
        let env: Vec<_> = (0..10)
            .map(|k| json!({ "name": format!("V{k}"), "secretRef": format!("s{}", s * 10 + k), "key": "value" }))
            .collect();
        let service: SecureApiService = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": format!("api-{s}") },
            "spec": { "image": "example.com/bench:1.0", "secretEnv": env },
        }))?;
        services.create(&PostParams::default(), &service).await?;
    }
    Ok(())
}

async fn all_templates_ready(client: &kube::Client, refs: usize) -> Option<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let list = deployments.list(&Default::default()).await.ok()?;
    (list.items.iter().filter(|d| template_versions(d).is_some()).count() >= refs / 10).then_some(())
}

fn template_versions(deployment: &Deployment) -> Option<&str> {
    let annotations = deployment.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?;
    annotations.get("secureapi.dev/secret-versions").map(String::as_str)
}
