//! What scale costs, counted rather than timed: one access call per SecretRef on a cold sync,
//! one for SecretRefs that share a secret version, no Kubernetes reads for a steady SecretRef,
//! and shards that split the work without overlap. (Timings are in `benches/scale.rs`.)

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::wait::{DEADLINE, wait_for};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::SecretRef;
use secure_api_operator::api::conditions::{find_condition, types};
use secure_api_operator::metrics::Controller as ControllerKind;
use secure_api_operator::runtime::shard::Shard;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use serde_json::json;
use std::time::Duration;

const ACCESS: &str = "secretmanager.versions.access";
/// A cold sync of a few hundred objects on two slow cores takes more than the usual deadline.
const COLD_SYNC: Duration = Duration::from_secs(120);

async fn create_secret_ref(cluster: &TestCluster, name: &str, secret: &str, version: &str) {
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
        "spec": { "secret": secret, "version": version, "refreshInterval": "1h" },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

/// Waits until `count` SecretRefs of the namespace are Ready (one list per look).
async fn wait_all_ready(cluster: &TestCluster, count: usize) {
    let api: Api<SecretRef> = cluster.api();
    wait_for(&format!("{count} SecretRefs Ready"), COLD_SYNC, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| find_condition(&s.conditions, types::READY))
                    .is_some_and(|c| c.is_true(types::READY))
            })
            .count();
        (ready >= count).then_some(())
    })
    .await;
}

/// Access calls an operator made, from its own metrics (any outcome).
fn access_calls(operator: &Operator) -> u64 {
    operator
        .metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with("secureapi_gcp_requests_total{") && line.contains(ACCESS))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_cold_sync_reads_each_secret_ref_exactly_once() {
    let cluster = TestCluster::with_crds("scale-cold").await;
    let gcp = GcpEmulator::new();
    for i in 0..200 {
        gcp.add_version(PROJECT, &format!("cold-{i}"), format!("value-{i}").as_bytes());
    }
    let _operator =
        Operator::start_with(&cluster, OperatorOptions { gcp: Some(gcp.clone()), ..Default::default() }).await;
    for i in 0..200 {
        create_secret_ref(&cluster, &format!("cold-{i}"), &format!("cold-{i}"), "latest").await;
    }
    wait_all_ready(&cluster, 200).await;
    // One more, synced after the others: whatever the cold sync still had queued has run.
    gcp.add_version(PROJECT, "cold-last", b"last");
    create_secret_ref(&cluster, "cold-last", "cold-last", "latest").await;
    wait_all_ready(&cluster, 201).await;
    assert_eq!(gcp.count(ACCESS), 201, "one access call per SecretRef: {:?}", gcp.counts());
}

#[tokio::test]
async fn secret_refs_of_one_secret_version_share_one_access_call() {
    let cluster = TestCluster::with_crds("scale-shared").await;
    let gcp = GcpEmulator::new();
    gcp.add_version(PROJECT, "shared", b"one-value-for-all");
    // All exist before the operator starts, as after a restart or a first install.
    for i in 0..50 {
        create_secret_ref(&cluster, &format!("shared-{i}"), "shared", "latest").await;
    }
    let _operator =
        Operator::start_with(&cluster, OperatorOptions { gcp: Some(gcp.clone()), ..Default::default() }).await;
    wait_all_ready(&cluster, 50).await;
    assert_eq!(gcp.count(ACCESS), 1, "50 SecretRefs of one version: {:?}", gcp.counts());
}

#[tokio::test]
async fn a_reconcile_of_a_synced_secret_ref_reads_nothing_with_emulator_hooks() {
    let cluster = TestCluster::with_crds("scale-steady").await;
    let Some(kube) = cluster.hooks().cloned() else { return };
    let operator = Operator::start(&cluster).await;
    operator.gcp.add_version(PROJECT, "steady", b"steady-value");
    create_secret_ref(&cluster, "steady", "steady", "latest").await;
    wait_all_ready(&cluster, 1).await;
    let reconciles = operator.metrics.reconciles(ControllerKind::SecretRef);
    let gets = |kube: &secure_api_testbed::emulator::kube::KubeEmulator| -> u64 {
        kube.counts().iter().filter(|((verb, _), _)| verb == "get").map(|(_, n)| n).sum()
    };
    let (before, access_before) = (gets(&kube), operator.gcp.count(ACCESS));
    // A label edit changes no generation: a reconcile with nothing due.
    let touch = json!({ "metadata": { "labels": { "example.com/touched": "1" } } });
    let api: Api<SecretRef> = cluster.api();
    api.patch("steady", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("a reconcile of the touched SecretRef", DEADLINE, || async {
        (operator.metrics.reconciles(ControllerKind::SecretRef) > reconciles).then_some(())
    })
    .await;
    assert_eq!(gets(&kube), before, "no GET for a synced SecretRef: {:?}", kube.counts());
    assert_eq!(operator.gcp.count(ACCESS), access_before, "and no access call");
}

#[tokio::test]
async fn two_shards_sync_every_secret_ref_once_each_its_own() {
    let cluster = TestCluster::with_crds("scale-shards").await;
    let gcp = GcpEmulator::new();
    for i in 0..100 {
        gcp.add_version(PROJECT, &format!("shard-{i}"), format!("value-{i}").as_bytes());
    }
    let shards = [Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 }];
    let mut operators = Vec::new();
    for shard in shards {
        let options = OperatorOptions { gcp: Some(gcp.clone()), shard, ..Default::default() };
        operators.push(Operator::start_with(&cluster, options).await);
    }
    for i in 0..100 {
        create_secret_ref(&cluster, &format!("shard-{i}"), &format!("shard-{i}"), "latest").await;
    }
    wait_all_ready(&cluster, 100).await;
    assert_eq!(gcp.count(ACCESS), 100, "every SecretRef read exactly once: {:?}", gcp.counts());
    for (shard, operator) in shards.iter().zip(&operators) {
        let owned = (0..100).filter(|i| shard.owns_key(&cluster.namespace, &format!("shard-{i}"))).count() as u64;
        assert!(owned > 0, "shard {shard} owns some of the 100");
        assert_eq!(access_calls(operator), owned, "shard {shard} read exactly its own SecretRefs");
    }
}
