//! Start and stop as a real cluster shows them: the first lists take time (on the emulator, its
//! latency fault delays the lists of namespaces), yet every object that exists at start gets a
//! status; and SIGTERM ends `run` within `--shutdown-grace`, whatever a reconcile waits for.
//! Against a real cluster too (`SECUREAPI_E2E_KUBECONFIG`), where the lists are slow by nature.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{ready, wait_condition};
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::process::{self, KilledOnDrop, exit_within, stderr_of, terminate};
use crate::support::wait::{DEADLINE, wait_for};
use kube::api::{Api, PostParams};
use secure_api_operator::api::SecretRef;
use secure_api_testbed::emulator::gcp::{GcpEmulator, GcpFault};
use secure_api_testbed::emulator::kube::Fault;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// How long each list of namespaces takes while the fault lasts (the operator's check of its
/// selector, then its watch's first list).
const SLOW_LIST: Duration = Duration::from_millis(300);
/// `--shutdown-grace` of the processes here.
const GRACE: Duration = Duration::from_secs(2);
/// What a stopped process may take beyond its grace to be seen gone (scheduling on a loaded
/// machine, the test's polling).
const EXIT_MARGIN: Duration = Duration::from_secs(8);

/// `count` new SecretRefs `PREFIX-N`, each with a secret of its own; their names.
async fn create_secret_refs(api: &Api<SecretRef>, gcp: &GcpEmulator, prefix: &str, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for n in 0..count {
        let name = format!("{prefix}-{n}");
        gcp.add_version(PROJECT, &name, b"s3cr3t");
        let object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": name }, "spec": { "secret": name },
        }))
        .unwrap_or_else(|e| panic!("secretref {name}: {e}"));
        api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
        names.push(name);
    }
    names
}

/// Makes the next two lists of namespaces slow (emulator only; a real cluster's are slow enough).
fn slow_namespace_lists(cluster: &TestCluster) {
    if let Some(emulator) = cluster.emulator() {
        let fault = Fault { verb: Some("list".into()), resource: Some("namespaces".into()), ..Fault::default() };
        emulator.inject_fault(Fault { delay: Some(SLOW_LIST), ..fault }.times(2));
    }
}

/// `run` for `cluster`'s namespace, allowed the operator's identity there (the SecretRefs name no
/// ServiceAccount), with `extra` flags; stderr piped; killed if the test fails first.
fn spawn_run(kubeconfig: &Path, cluster: &TestCluster, gcp: &str, extra: &[&str]) -> KilledOnDrop {
    let namespace = cluster.namespace.as_str();
    let (kubeconfig, selector, grace) =
        (kubeconfig.to_string_lossy(), format!("kubernetes.io/metadata.name={namespace}"), GRACE.as_secs().to_string());
    let mut args = vec!["--kubeconfig", &kubeconfig, "--metrics-addr", "127.0.0.1:0", "--namespace", namespace];
    args.extend(["--gcp-project", PROJECT, "--gcp-no-auth", "--secret-manager-endpoint", gcp]);
    args.extend(["--api-gateway-endpoint", gcp, "--operator-identity-namespaces", &selector]);
    args.extend(["--shutdown-grace", &grace]);
    args.extend(extra);
    process::spawn_run(&args)
}

/// The regression of a start-up race: reconciles that started before the first list of the
/// namespaces allowed the operator's identity waited for it, and all but one never woke.
#[tokio::test]
async fn every_secret_ref_gets_a_status_at_each_start_while_the_namespace_list_is_slow() {
    const STARTS: usize = 20;
    const REFS: usize = 20;
    let cluster = TestCluster::with_crds("startup-slow-list").await;
    let gcp = GcpEmulator::new();
    let api: Api<SecretRef> = cluster.api();
    for start in 0..STARTS {
        let names = create_secret_refs(&api, &gcp, &format!("s{start}"), REFS).await;
        slow_namespace_lists(&cluster);
        let options = OperatorOptions { gcp: Some(gcp.clone()), ..OperatorOptions::default() };
        let operator = Operator::start_with(&cluster, options).await;
        for name in &names {
            wait_condition(&api, name, ready()).await;
        }
        operator.stop().await;
    }
}

/// The binary, started 30 times: both new SecretRefs get a status at every start, and every
/// SIGTERM ends the process within the grace.
#[tokio::test]
async fn run_gives_every_secret_ref_a_status_at_each_of_30_starts_and_exits_within_the_grace() {
    const STARTS: usize = 30;
    let cluster = TestCluster::with_crds("startup-run").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = cluster.kubeconfig_in(dir.path()).await;
    let gcp = GcpEmulator::new();
    let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("gcp listen: {e}"));
    let api: Api<SecretRef> = cluster.api();
    for start in 0..STARTS {
        let names = create_secret_refs(&api, &gcp, &format!("r{start}"), 2).await;
        slow_namespace_lists(&cluster);
        let mut child = spawn_run(&kubeconfig.path, &cluster, &gcp_listener.url(), &[]);
        for name in &names {
            wait_condition(&api, name, ready()).await;
        }
        terminate(&child);
        let status = exit_within(&mut child, GRACE + EXIT_MARGIN).await;
        assert!(status.success(), "start {start}: exit after SIGTERM: {status:?}\n{}", stderr_of(&mut child));
    }
}

/// A reconcile blocked on a Google Cloud call that does not answer (for ten minutes, and the
/// client would wait five) does not hold the process after SIGTERM: it is abandoned at the grace.
#[tokio::test]
async fn sigterm_ends_run_within_the_grace_while_a_reconcile_waits_on_a_slow_gcp_call() {
    const ACCESS: &str = "secretmanager.versions.access";
    let cluster = TestCluster::with_crds("startup-sigterm-blocked").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = cluster.kubeconfig_in(dir.path()).await;
    let gcp = GcpEmulator::new();
    gcp.inject_fault(GcpFault::delay(ACCESS, Duration::from_secs(600)));
    let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("gcp listen: {e}"));
    let api: Api<SecretRef> = cluster.api();
    create_secret_refs(&api, &gcp, "blocked", 1).await;
    let mut child = spawn_run(&kubeconfig.path, &cluster, &gcp_listener.url(), &["--gcp-timeout", "300"]);
    wait_for("the reconcile's access call to be in flight", DEADLINE, || async {
        (gcp.count(ACCESS) > 0).then_some(())
    })
    .await;

    terminate(&child);
    let status = exit_within(&mut child, GRACE + EXIT_MARGIN).await;
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "exit after SIGTERM: {status:?}\n{stderr}");
    assert!(stderr.contains("abandoned"), "the abandoned reconcile is said:\n{stderr}");
}
