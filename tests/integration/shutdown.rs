//! Graceful shutdown under load: `emulator`, `run` and `dev` stop on SIGTERM within a bounded
//! time while clients hold watches open and keep requests coming. A watch is a response that
//! never ends on its own; the servers end it (cleanly) rather than wait for the client.

use crate::support::http::free_port;
use crate::support::process::{self, client_for, exit_within, spawn_emulator, stderr_of, terminate};
use crate::support::wait::wait_for;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams, WatchParams};
use secure_api_operator::api::{SecretRef, conditions};
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::emulator::kube::KubeEmulator;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Setup and exit: generous, as on a loaded two-core machine.
const DEADLINE: Duration = Duration::from_secs(30);
/// Watches held open through the signal, each asking for the longest kube-rs's watcher asks.
const WATCHES: usize = 20;
const LOAD_TASKS: usize = 8;
/// Requests answered before the signal, so that it lands in the middle of a stream of them.
const ANSWERED_BEFORE: usize = 1_000;

/// `WATCHES` watches of ConfigMaps, each drained in a task that reports how it ended.
async fn open_watches(api: &Api<ConfigMap>) -> Vec<tokio::task::JoinHandle<Result<usize, String>>> {
    let mut watches = Vec::new();
    for _ in 0..WATCHES {
        let stream = api.watch(&WatchParams::default().timeout(290), "0").await.unwrap_or_else(|e| panic!("{e}"));
        watches.push(tokio::spawn(async move {
            let events: Vec<_> = stream.map_err(|e| e.to_string()).try_collect().await?;
            Ok(events.len())
        }));
    }
    watches
}

/// Tasks creating ConfigMaps until the server goes away; the count of answers they got.
fn keep_creating(api: &Api<ConfigMap>) -> (Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<()>>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks = (0..LOAD_TASKS)
        .map(|task| {
            let (api, answered) = (api.clone(), answered.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let object: ConfigMap =
                        serde_json::from_value(json!({ "metadata": { "name": format!("load-{task}-{i}") } }))
                            .unwrap_or_else(|e| panic!("{e}"));
                    if api.create(&PostParams::default(), &object).await.is_err() {
                        return;
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (answered, tasks)
}

async fn answered_at_least(answered: &AtomicUsize, count: usize) {
    wait_for("requests answered", DEADLINE, || async { (answered.load(Ordering::Relaxed) >= count).then_some(()) })
        .await;
}

/// Every watch ended cleanly (the server closed it as a finished response, not cut mid-stream).
async fn ended_cleanly(watches: Vec<tokio::task::JoinHandle<Result<usize, String>>>) {
    for watch in watches {
        let ended = wait_for("a watch to end", DEADLINE, || {
            let finished = watch.is_finished();
            async move { finished.then_some(()) }
        });
        ended.await;
        let outcome = watch.await.unwrap_or_else(|e| panic!("watch task: {e}"));
        assert!(outcome.is_ok(), "a watch was cut instead of ended: {outcome:?}");
    }
}

#[tokio::test]
async fn the_emulator_command_stops_on_sigterm_while_serving_watches_and_requests() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let gcp: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = spawn_emulator(&kubeconfig, gcp);
    let maps: Api<ConfigMap> = Api::namespaced(client_for(&kubeconfig, DEADLINE).await, "default");
    let watches = open_watches(&maps).await;
    let (answered, load) = keep_creating(&maps);
    answered_at_least(&answered, ANSWERED_BEFORE).await;

    terminate(&child);
    let status = exit_within(&mut child, DEADLINE).await;
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{}", stderr_of(&mut child));
    ended_cleanly(watches).await;
    for task in load {
        task.await.unwrap_or_else(|e| panic!("load task: {e}"));
    }
}

#[tokio::test]
async fn run_stops_on_sigterm_in_the_middle_of_a_cold_sync() {
    const REFS: usize = 500;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kube = KubeEmulator::new();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(kube.client());
    for crd in secure_api_operator::crdgen::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap_or_else(|e| panic!("installing a CRD: {e}"));
    }
    let kube_listener = kube.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("listen: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    crate::support::cluster::write_kubeconfig(&kubeconfig, &kube_listener.url());
    let gcp = GcpEmulator::new();
    let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("listen: {e}"));
    let refs: Api<SecretRef> = Api::namespaced(kube.client(), "default");
    for i in 0..REFS {
        gcp.add_version("shutdown-project", &format!("s{i}"), b"value");
        let object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": format!("s{i}") }, "spec": { "secret": format!("s{i}") },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        refs.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (kubeconfig, metrics, gcp_url) = (kubeconfig.to_string_lossy(), metrics.to_string(), gcp_listener.url());
    let mut child = process::spawn_run(&[
        "--kubeconfig",
        &kubeconfig,
        "--metrics-addr",
        &metrics,
        "--gcp-no-auth",
        "--gcp-project",
        "shutdown-project",
        "--secret-manager-endpoint",
        &gcp_url,
        "--operator-identity-namespaces",
        "kubernetes.io/metadata.name=default",
    ]);
    // The signal comes once the first SecretRefs are synced and most are still to do.
    wait_for("the first SecretRefs synced", DEADLINE, || async {
        let secrets: Api<Secret> = Api::namespaced(kube.client(), "default");
        let synced = secrets.list(&Default::default()).await.ok()?.items.len();
        (synced >= 10).then_some(())
    })
    .await;

    terminate(&child);
    let status = exit_within(&mut child, DEADLINE).await;
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{stderr}");
    // What it synced before it stopped is whole: each synced SecretRef's Secret holds its data.
    let listed = refs.list(&Default::default()).await.unwrap_or_else(|e| panic!("{e}")).items;
    let synced: Vec<_> = listed
        .iter()
        .filter(|r| {
            let ready =
                r.status.as_ref().and_then(|s| conditions::find_condition(&s.conditions, conditions::types::READY));
            ready.is_some_and(|c| c.is_true(conditions::types::READY))
        })
        .collect();
    assert!(synced.len() < REFS, "the signal came after the cold sync: the test proves nothing");
    let secrets: Api<Secret> = Api::namespaced(kube.client(), "default");
    for secret_ref in synced {
        let target = secret_ref.status.as_ref().and_then(|s| s.target_name.clone()).unwrap_or_default();
        let secret = secrets.get(&target).await.unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(secret.data.is_some_and(|d| !d.is_empty()), "{target} is empty");
    }
}
