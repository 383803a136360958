//! The binary against the emulator over TCP: `run`'s CRD check, health and metrics endpoints and
//! graceful stop on SIGTERM, and the `emulator` command itself.

use crate::support::cluster::write_kubeconfig;
use crate::support::http::{free_port, http_get};
use crate::support::process::{self, KilledOnDrop, client_for, exit_within, spawn_emulator, stderr_of, terminate};
use crate::support::wait::wait_for;
use hyper::StatusCode;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use secure_api_testbed::emulator::kube::{Fault, KubeEmulator, Listener};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn spawn_run(kubeconfig: &std::path::Path, metrics: SocketAddr) -> KilledOnDrop {
    let (kubeconfig, metrics) = (kubeconfig.to_string_lossy(), metrics.to_string());
    process::spawn_run(&[
        "--kubeconfig",
        &kubeconfig,
        "--metrics-addr",
        &metrics,
        "--startup-timeout",
        "10",
        "--gcp-no-auth",
        "--secret-manager-endpoint",
        "http://127.0.0.1:1",
    ])
}

async fn exit_of(child: &mut Child) -> ExitStatus {
    exit_within(child, DEADLINE).await
}

/// An emulator on TCP with only the given CRDs installed, and a kubeconfig for it.
async fn emulator_with_crds(plurals: &[&str], dir: &std::path::Path) -> (KubeEmulator, Listener, std::path::PathBuf) {
    let emulator = KubeEmulator::new();
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(emulator.client());
    for crd in
        secure_api_operator::crdgen::all().into_iter().filter(|c| plurals.contains(&c.spec.names.plural.as_str()))
    {
        crds.create(&Default::default(), &crd).await.unwrap_or_else(|e| panic!("installing a CRD: {e}"));
    }
    let listener = emulator.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("listen: {e}"));
    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &listener.url());
    (emulator, listener, kubeconfig)
}

#[tokio::test]
async fn run_without_the_crds_names_them_and_how_to_install_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (_emulator, _listener, kubeconfig) = emulator_with_crds(&["secretrefs"], dir.path()).await;
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();

    let mut child = spawn_run(&kubeconfig, metrics);
    let status = exit_of(&mut child).await;
    let stderr = stderr_of(&mut child);
    assert!(!status.success());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {lines:#?}");
    assert!(
        lines[0].contains("secureapiservices.secureapi.dev, gatewayconfigs.secureapi.dev are not installed"),
        "{}",
        lines[0]
    );
    assert!(!lines[0].contains("secretrefs.secureapi.dev"), "{}", lines[0]);
    assert!(lines[0].contains("secure-api-operator crds | kubectl apply --server-side -f -"), "{}", lines[0]);
}

#[tokio::test]
async fn run_serves_health_and_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (_emulator, _listener, kubeconfig) =
        emulator_with_crds(&["secretrefs", "secureapiservices", "gatewayconfigs"], dir.path()).await;
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();

    let mut child = spawn_run(&kubeconfig, metrics);
    wait_for("/readyz to answer 200", DEADLINE, || async {
        http_get(metrics, "/readyz").await.filter(|(status, _)| *status == StatusCode::OK)
    })
    .await;
    let (status, _) = http_get(metrics, "/healthz").await.unwrap_or_else(|| panic!("/healthz did not answer"));
    assert_eq!(status, StatusCode::OK);
    let (status, body) = http_get(metrics, "/metrics").await.unwrap_or_else(|| panic!("/metrics did not answer"));
    assert_eq!(status, StatusCode::OK);
    for series in [
        r#"secureapi_reconciles_total{controller="secretref"} 0"#,
        r#"secureapi_reconcile_duration_seconds_count{controller="gatewayconfig"} 0"#,
    ] {
        assert!(body.contains(series), "no {series} in:\n{body}");
    }

    terminate(&child);
    let status = exit_of(&mut child).await;
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{stderr}");
    assert!(stderr.contains("shutdown signal received"), "{stderr}");
}

#[tokio::test]
async fn sigterm_before_the_first_list_completes_still_stops_the_operator() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (emulator, _listener, kubeconfig) =
        emulator_with_crds(&["secretrefs", "secureapiservices", "gatewayconfigs"], dir.path()).await;
    // The GatewayConfig controller's first list answers only long after the test's deadline.
    let stalled = Fault {
        verb: Some("list".into()),
        resource: Some("gatewayconfigs".into()),
        delay: Some(Duration::from_secs(600)),
        ..Fault::default()
    };
    emulator.inject_fault(stalled);
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = spawn_run(&kubeconfig, metrics);
    wait_for("/readyz to answer 200", DEADLINE, || async {
        http_get(metrics, "/readyz").await.filter(|(status, _)| *status == StatusCode::OK)
    })
    .await;

    terminate(&child);
    let status = exit_of(&mut child).await;
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{}", stderr_of(&mut child));
}

#[tokio::test]
async fn emulator_command_writes_a_kubeconfig_serves_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let gcp: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = spawn_emulator(&kubeconfig, gcp);
    let client = client_for(&kubeconfig, DEADLINE).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let list = namespaces.list(&Default::default()).await.unwrap_or_else(|e| panic!("list: {e}"));
    assert!(list.items.iter().any(|n| n.metadata.name.as_deref() == Some("default")));
    let (status, body) =
        wait_for("the Secret Manager emulator", DEADLINE, || http_get(gcp, "/v1/projects/demo-project/secrets")).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "{}"));

    terminate(&child);
    let status = exit_of(&mut child).await;
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{}", stderr_of(&mut child));
}
