//! SecureApiService failures reach its status and Events: a Deployment write the API server
//! refuses shows as `Ready=False` with the server's reason, one Warning Event per distinct
//! failure, and Ready again once the refusal is gone (the condition flips once).

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::operator::Operator;
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::types;
use secure_api_operator::api::{SecretRef, SecureApiService};
use secure_api_operator::metrics::Controller as ControllerKind;
use secure_api_testbed::emulator::kube::{DeploymentSimulation, Fault};
use serde_json::json;

const SERVICE: &str = "refused-api";

/// One SecretRef and a service that reads one key of it.
async fn create_service(cluster: &TestCluster, operator: &Operator) {
    operator.gcp.add_version(PROJECT, "refused-db", br#"{"password":"pw-1"}"#);
    let secret_ref: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": "refused-db", "format": "json", "refreshInterval": "1h" },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecretRef>().create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("{e}"));
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": SERVICE },
        "spec": {
            "image": "example.com/secure-api:1.0", "port": 8080, "replicas": 1,
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Warning Events about the service with `reason`.
async fn warnings(cluster: &TestCluster, reason: &str) -> usize {
    let events: Api<Event> = cluster.api();
    let selector = format!("involvedObject.name={SERVICE},reason={reason},type=Warning");
    events.list(&ListParams::default().fields(&selector)).await.map(|l| l.items.len()).unwrap_or(0)
}

#[tokio::test]
async fn a_refused_deployment_write_shows_in_status_with_one_warning_per_failure_with_emulator_hooks() {
    let cluster = TestCluster::start("sas-refused").await;
    let Some(kube) = cluster.hooks().cloned() else { return };
    cluster.install_crds().await;
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    let operator = Operator::start(&cluster).await;
    let services: Api<SecureApiService> = cluster.api();
    let refuse = |code| {
        kube.clear_faults();
        for verb in ["create", "patch"] {
            kube.inject_fault(Fault::status(verb, "deployments", code));
        }
    };

    let mut transition = None;
    refuse(403);
    create_service(&cluster, &operator).await;
    for (code, reason) in [(403, "Forbidden"), (422, "Invalid")] {
        refuse(code);
        let refused = wait_condition(&services, SERVICE, ready().is("False", reason)).await;
        let (message, time) =
            (refused.message(types::READY), refused.condition(types::READY).last_transition_time.clone());
        assert!(message.contains(&format!("HTTP {code}")) && message.contains("Deployment"), "{message}");
        assert_eq!(*transition.get_or_insert(time.clone()), time, "Ready stays False through both failures");
        // Two more refused writes (the slow retry) must not add a second Warning.
        let attempts = kube.count("patch", "deployments");
        wait_for("two more refused writes", DEADLINE, || async {
            (kube.count("patch", "deployments") >= attempts + 2).then_some(())
        })
        .await;
        wait_for(&format!("a {reason} Warning Event"), DEADLINE, || async {
            (warnings(&cluster, reason).await >= 1).then_some(())
        })
        .await;
        assert_eq!(warnings(&cluster, reason).await, 1, "exactly one {reason} Warning Event");
    }

    kube.clear_faults();
    let recovered = wait_condition(&services, SERVICE, ready().is("True", "RolloutComplete")).await;
    let ready_since = recovered.condition(types::READY).last_transition_time.clone();
    assert_ne!(Some(ready_since.clone()), transition, "Ready's lastTransitionTime moves when it turns True");
    // A later reconcile (an annotation touches the service) keeps Ready where it is: the
    // transition happened once.
    let patches = kube.count("patch", "secureapiservices/status");
    let reconciles = operator.metrics.reconciles(ControllerKind::SecureApiService);
    let touch = json!({ "metadata": { "annotations": { "example.com/touched": "1" } } });
    services.patch(SERVICE, &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("one more reconcile", DEADLINE, || async {
        (operator.metrics.reconciles(ControllerKind::SecureApiService) > reconciles).then_some(())
    })
    .await;
    let now = services.get(SERVICE).await.unwrap_or_else(|e| panic!("{SERVICE}: {e}"));
    let still = now.condition(types::READY).last_transition_time.clone();
    assert_eq!(still, ready_since);
    assert!(kube.count("patch", "secureapiservices/status") <= patches + 1, "{:?}", kube.counts());
    for reason in ["Forbidden", "Invalid"] {
        assert_eq!(warnings(&cluster, reason).await, 1, "still one {reason} Warning Event");
    }
}

/// A ResourceQuota that allows no Deployments is named in the status. The quota is enforced once
/// the quota controller has filled in its `status.hard` (kube-apiserver admits everything before),
/// so the operator starts only then.
#[tokio::test]
async fn a_resource_quota_that_allows_no_deployments_is_named_in_status() {
    let cluster = TestCluster::start("sas-quota").await;
    let services: Api<SecureApiService> = cluster.api();
    cluster.install_crds().await;
    cluster.enforced_quota("no-deployments", json!({ "count/deployments.apps": "0" })).await;
    let operator = Operator::start(&cluster).await;
    create_service(&cluster, &operator).await;
    let message = wait_condition(&services, SERVICE, ready().is("False", "QuotaExceeded")).await.message(types::READY);
    assert!(message.contains("no-deployments"), "{message}");
    assert_eq!(warnings(&cluster, "QuotaExceeded").await, 1);
}
