//! `run --namespace a,b`: a watch per kind and namespace, as with Roles in each namespace and no
//! cluster-wide RBAC. SecretRefs in both namespaces sync; one in a third namespace is never seen.
//! After a gap in the watches, each namespace's relist keeps the other's objects and drops what
//! was deleted meanwhile. On the emulator and a real cluster alike (`SECUREAPI_E2E_KUBECONFIG`),
//! but for the gap, which needs the emulator's hooks.

use crate::support::PROJECT;
use crate::support::cluster::{ProcessKubeconfig, TestCluster};
use crate::support::conditions::{ready, wait_condition};
use crate::support::http::{free_port, http_get};
use crate::support::process::{self, KilledOnDrop};
use crate::support::wait::{DEADLINE, wait_for};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::SecretRef;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use secure_api_testbed::emulator::kube::Fault;
use secure_api_testbed::listener::Listener;
use serde_json::json;
use std::net::SocketAddr;

/// Three namespaces of one cluster, and `run` watching the first two.
struct TwoOfThree {
    /// First, so that it is killed before the namespaces go (fields drop in order).
    _operator: KilledOnDrop,
    a: TestCluster,
    b: TestCluster,
    /// Not watched.
    c: TestCluster,
    gcp: GcpEmulator,
    metrics: SocketAddr,
    _gcp_listener: Listener,
    _kubeconfig: ProcessKubeconfig,
    _dir: tempfile::TempDir,
}

impl TwoOfThree {
    /// The namespaces, SecretRef `outside` in the third one, then `run --namespace a,b`, allowed
    /// the operator's identity in all three (so only the watch scope keeps `outside` unsynced).
    async fn start(test: &str) -> Self {
        let a = TestCluster::with_crds(test).await;
        let b = a.another_namespace(test).await;
        let c = a.another_namespace(test).await;
        let gcp = GcpEmulator::new();
        create_secret_ref(&c.api(), &gcp, "outside").await;
        let gcp_listener = gcp.listen(([127, 0, 0, 1], 0).into()).await.unwrap_or_else(|e| panic!("gcp listen: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kubeconfig = a.kubeconfig_in(dir.path()).await;
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let (path, metrics_addr, gcp_url) =
            (kubeconfig.path.to_string_lossy(), metrics.to_string(), gcp_listener.url());
        let watched = format!("{},{}", a.namespace, b.namespace);
        let selector = format!("kubernetes.io/metadata.name in ({}, {}, {})", a.namespace, b.namespace, c.namespace);
        let mut args = vec!["--kubeconfig", &path, "--metrics-addr", &metrics_addr, "--namespace", &watched];
        args.extend(["--gcp-project", PROJECT, "--gcp-no-auth", "--secret-manager-endpoint", &gcp_url]);
        args.extend(["--api-gateway-endpoint", &gcp_url, "--operator-identity-namespaces", &selector]);
        let operator = process::spawn_run(&args);
        Self {
            a,
            b,
            c,
            gcp,
            metrics,
            _operator: operator,
            _gcp_listener: gcp_listener,
            _kubeconfig: kubeconfig,
            _dir: dir,
        }
    }

    /// The SecretRefs the operator holds, by the `secureapi_objects` it reports from its cache.
    async fn secret_refs_held(&self) -> Option<u64> {
        let (_, text) = http_get(self.metrics, "/metrics").await?;
        let counts = text.lines().filter(|line| line.starts_with(r#"secureapi_objects{kind="SecretRef","#));
        counts.map(|line| line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok())).sum()
    }

    async fn wait_held(&self, count: u64, why: &str) {
        wait_for(&format!("{count} SecretRefs held ({why})"), DEADLINE, || async {
            (self.secret_refs_held().await? == count).then_some(())
        })
        .await;
    }
}

/// SecretRef `name` for a secret of the same name, with a version.
async fn create_secret_ref(api: &Api<SecretRef>, gcp: &GcpEmulator, name: &str) {
    gcp.add_version(PROJECT, name, b"s3cr3t");
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
        "metadata": { "name": name }, "spec": { "secret": name },
    }))
    .unwrap_or_else(|e| panic!("secretref {name}: {e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

async fn has_status(cluster: &TestCluster, name: &str) -> bool {
    let api: Api<SecretRef> = cluster.api();
    let object = api.get(name).await.unwrap_or_else(|e| panic!("{}/{name}: {e}", cluster.namespace));
    object.status.is_some()
}

#[tokio::test]
async fn run_with_two_namespaces_syncs_both_and_never_sees_a_third() {
    let setup = TwoOfThree::start("two-namespaces").await;
    create_secret_ref(&setup.a.api(), &setup.gcp, "in-a").await;
    create_secret_ref(&setup.b.api(), &setup.gcp, "in-b").await;
    wait_condition(&setup.a.api::<SecretRef>(), "in-a", ready().status("True")).await;
    wait_condition(&setup.b.api::<SecretRef>(), "in-b", ready().status("True")).await;
    // `outside` existed before the start: watched, it would have been in the first list.
    setup.wait_held(2, "in-a and in-b, not outside").await;
    assert!(!has_status(&setup.c, "outside").await, "a namespace not listed is never reconciled");

    // Changes after the first lists arrive from both watches alike.
    create_secret_ref(&setup.b.api(), &setup.gcp, "later-in-b").await;
    create_secret_ref(&setup.c.api(), &setup.gcp, "later-outside").await;
    wait_condition(&setup.b.api::<SecretRef>(), "later-in-b", ready().status("True")).await;
    setup.wait_held(3, "later-in-b too").await;
    assert!(!has_status(&setup.c, "outside").await && !has_status(&setup.c, "later-outside").await);
}

/// Every watch is cut and its history forgotten, so each namespace relists; meanwhile a SecretRef
/// of namespace a is deleted outright. After the relists the cache holds b's SecretRef still (a
/// relist of a does not stand for b) and no longer a's deleted one.
#[tokio::test]
async fn a_relist_of_one_namespace_keeps_the_others_objects_and_drops_its_deleted_ones_with_emulator_hooks() {
    let setup = TwoOfThree::start("two-namespaces-relist").await;
    let Some(emulator) = setup.a.hooks().cloned() else { return };
    create_secret_ref(&setup.a.api(), &setup.gcp, "kept").await;
    create_secret_ref(&setup.a.api(), &setup.gcp, "deleted").await;
    create_secret_ref(&setup.b.api(), &setup.gcp, "other").await;
    for (cluster, name) in [(&setup.a, "kept"), (&setup.a, "deleted"), (&setup.b, "other")] {
        wait_condition(&cluster.api::<SecretRef>(), name, ready().status("True")).await;
    }
    setup.wait_held(3, "before the gap").await;

    // The watches can neither resume nor relist until the deletion is done, and then can only
    // relist: the history that held the deletion is gone.
    emulator.inject_fault(Fault::status("watch", "secretrefs", 500));
    emulator.inject_fault(Fault::status("list", "secretrefs", 500));
    emulator.drop_watches();
    let api: Api<SecretRef> = setup.a.api();
    let no_finalizer = Patch::Merge(json!({ "metadata": { "finalizers": null } }));
    api.patch("deleted", &PatchParams::default(), &no_finalizer).await.unwrap_or_else(|e| panic!("patch: {e}"));
    api.delete("deleted", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("delete: {e}"));
    emulator.compact_history();
    emulator.clear_faults();

    setup.wait_held(2, "kept and other after both relists").await;
    // The cache still serves both namespaces: a change in each is reconciled.
    create_secret_ref(&setup.a.api(), &setup.gcp, "after-a").await;
    create_secret_ref(&setup.b.api(), &setup.gcp, "after-b").await;
    wait_condition(&setup.a.api::<SecretRef>(), "after-a", ready().status("True")).await;
    wait_condition(&setup.b.api::<SecretRef>(), "after-b", ready().status("True")).await;
    setup.wait_held(4, "kept, other, after-a, after-b").await;
}
