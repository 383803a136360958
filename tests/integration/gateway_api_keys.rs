//! A GatewayConfig's `spec.apiKeys` against the emulators: the managed service enabled once, one
//! key restricted to it with its string in the Secret and its id in status, a steady state
//! without API Keys or Service Usage calls, rotation with an overlap, a crash between creating
//! a key and writing its Secret, deletion with the GatewayConfig, and failures on ApiKeysReady.

use crate::gateway_config::{backend_service, create_gateway, reconciles};
use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{condition, wait_condition};
use crate::support::events::{self, wait_normal};
use crate::support::operator::{Operator, OperatorOptions, cluster_with_operator, emulator_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::GatewayConfig;
use secure_api_operator::api::conditions::{reasons, types};
use secure_api_testbed::emulator::gcp::{GcpEmulator, GcpFault};
use secure_api_testbed::emulator::kube::Fault;
use serde_json::json;

const SECRET: &str = "secure-api-key";

fn key_calls(gcp: &GcpEmulator) -> u64 {
    gcp.counts()
        .iter()
        .filter(|(m, _)| m.starts_with("apikeys.") || m.starts_with("serviceusage."))
        .map(|(_, n)| n)
        .sum()
}

fn key_id(gateway: &GatewayConfig) -> String {
    gateway.status.as_ref().and_then(|s| s.api_keys.first()).map(|k| k.key_id.clone()).unwrap_or_default()
}

/// The key string in the Secret, once the Secret holds key `id`.
async fn secret_string(cluster: &TestCluster, id: &str) -> String {
    let secrets: Api<Secret> = cluster.api();
    wait_for(&format!("Secret {SECRET} holding {id}"), DEADLINE, || async {
        let secret = secrets.get(SECRET).await.ok()?;
        let holds = secret.metadata.annotations.as_ref()?.get("secureapi.dev/api-key-id")? == id;
        let bytes = secret.data?.get("api-key")?.0.clone();
        holds.then(|| String::from_utf8(bytes).ok()).flatten()
    })
    .await
}

async fn patch_gateway(cluster: &TestCluster, patch: serde_json::Value) {
    let api: Api<GatewayConfig> = cluster.api();
    api.patch("secure-api", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn one_api_key_restricted_to_the_gateway_lands_in_its_secret_then_nothing_is_called_until_deletion() {
    let (cluster, operator) = cluster_with_operator("gw-keys").await;
    let api: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [{ "name": "client", "secretName": SECRET }] })).await;
    let ready = wait_condition(&api, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    let status = ready.status.clone().unwrap_or_default();
    let service = status.managed_service.clone().unwrap_or_default();
    assert_eq!(operator.gcp.count("serviceusage.services.enable"), 1, "{:?}", operator.gcp.counts());
    assert_eq!(operator.gcp.count("apikeys.keys.create"), 1);
    let keys = operator.gcp.api_keys(PROJECT);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].id, key_id(&ready));
    assert_eq!(keys[0].api_targets.iter().map(|t| t.service.as_str()).collect::<Vec<_>>(), [service.as_str()]);
    let string = secret_string(&cluster, &keys[0].id).await;
    assert_eq!(Some(string.clone()), operator.gcp.key_string(PROJECT, &keys[0].id));
    assert_eq!(operator.gcp.validate_key(&string, &service, "getConfig"), Ok(()));
    assert_eq!(status.api_keys_service.as_deref(), Some(service.as_str()));

    // Reconciles with nothing new make no API Keys or Service Usage call.
    let calls = key_calls(&operator.gcp);
    let before = reconciles(&operator);
    for round in 0..3 {
        patch_gateway(&cluster, json!({ "metadata": { "annotations": { "example.com/touched": round.to_string() } } }))
            .await;
        wait_for("a reconcile", DEADLINE, || async { (reconciles(&operator) > before + round).then_some(()) }).await;
    }
    assert_eq!(key_calls(&operator.gcp), calls, "{:?}", operator.gcp.counts());
    // One Normal Event per transition, none for the reconciles that found everything in place.
    let config = status.api_config_id.clone().unwrap_or_default();
    let url = status.gateway_url.clone().unwrap_or_default();
    wait_normal(&cluster, "secure-api", reasons::GATEWAY_CREATED, &format!("created; it serves at {url}")).await;
    wait_normal(&cluster, "secure-api", reasons::CONFIG_ACTIVATED, &format!("serves API config {config}")).await;
    wait_normal(&cluster, "secure-api", reasons::API_KEY_CREATED, &format!("({}) created", keys[0].id)).await;
    for reason in [reasons::GATEWAY_CREATED, reasons::CONFIG_ACTIVATED, reasons::API_KEY_CREATED] {
        let announced = events::normal(&cluster, "secure-api", reason).await;
        assert_eq!(announced.len(), 1, "{reason}:\n{}", events::describe(&announced));
    }

    // Deleting the GatewayConfig deletes its key.
    api.delete("secure-api", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the key deleted", DEADLINE, || async {
        operator.gcp.api_keys(PROJECT).iter().all(|k| k.deleted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rotation_makes_one_new_key_and_deletes_the_old_one_after_the_overlap() {
    let (cluster, operator) = cluster_with_operator("gw-keys-rotate").await;
    let api: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    let key = json!({ "name": "client", "secretName": SECRET, "overlap": "8s" });
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [key] })).await;
    let first =
        key_id(&wait_condition(&api, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await);
    let old_string = secret_string(&cluster, &first).await;

    let rotated = json!({ "name": "client", "secretName": SECRET, "overlap": "8s", "rotation": "2" });
    patch_gateway(&cluster, json!({ "spec": { "apiKeys": [rotated] } })).await;
    let second = wait_for("the rotated key in status", DEADLINE, || async {
        let id = key_id(&api.get("secure-api").await.ok()?);
        (id != first).then_some(id)
    })
    .await;
    let new_string = secret_string(&cluster, &second).await;
    let service = operator.gcp.api_keys(PROJECT).first().map(|k| k.api_targets[0].service.clone()).unwrap_or_default();
    // Within the overlap both keys work.
    assert_eq!(operator.gcp.validate_key(&new_string, &service, "getConfig"), Ok(()));
    assert_eq!(operator.gcp.validate_key(&old_string, &service, "getConfig"), Ok(()));
    assert_eq!(operator.gcp.count("apikeys.keys.create"), 2, "one creation per rotation");
    wait_normal(&cluster, "secure-api", reasons::API_KEY_CREATED, &format!("({second}) created")).await;
    wait_normal(&cluster, "secure-api", reasons::API_KEY_RETIRED, &format!("API key {first} retired")).await;

    wait_for("the old key deleted after the overlap", DEADLINE, || async {
        let keys = operator.gcp.api_keys(PROJECT);
        keys.iter().any(|k| k.id == first && k.deleted).then_some(())
    })
    .await;
    assert!(operator.gcp.validate_key(&old_string, &service, "getConfig").is_err());
    assert_eq!(operator.gcp.validate_key(&new_string, &service, "getConfig"), Ok(()));
    let keys = operator.gcp.api_keys(PROJECT);
    assert_eq!(keys.iter().filter(|k| !k.deleted).count(), 1, "{keys:?}");
}

#[tokio::test]
async fn a_key_with_a_rotation_period_rotates_on_its_own_with_the_overlap() {
    let (cluster, operator) = cluster_with_operator("gw-keys-period").await;
    let api: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    let key = json!({ "name": "client", "secretName": SECRET, "overlap": "8s", "rotationPeriod": "10s" });
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [key] })).await;
    let ready = wait_condition(&api, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    let first = key_id(&ready);
    let next = ready.status.as_ref().and_then(|s| s.api_keys.first()?.next_rotation_time.clone());
    let created = ready.metadata.creation_timestamp.clone().unwrap_or_else(|| panic!("a creation time"));
    let next = next.unwrap_or_else(|| panic!("the next rotation time in status"));
    assert!(next.0 > created.0, "{next:?} after {created:?}");
    let old_string = secret_string(&cluster, &first).await;

    // Nobody touches the spec: the period makes the next key.
    let second = wait_for("the key rotated on its period", DEADLINE, || async {
        let id = key_id(&api.get("secure-api").await.ok()?);
        (id != first).then_some(id)
    })
    .await;
    let new_string = secret_string(&cluster, &second).await;
    let service = operator.gcp.api_keys(PROJECT).first().map(|k| k.api_targets[0].service.clone()).unwrap_or_default();
    assert_eq!(operator.gcp.validate_key(&new_string, &service, "getConfig"), Ok(()));
    assert_eq!(operator.gcp.validate_key(&old_string, &service, "getConfig"), Ok(()), "the overlap");
    wait_for("the old key deleted after the overlap", DEADLINE, || async {
        operator.gcp.api_keys(PROJECT).iter().any(|k| k.id == first && k.deleted).then_some(())
    })
    .await;
    assert!(operator.gcp.validate_key(&old_string, &service, "getConfig").is_err());
    assert_eq!(operator.gcp.validate_key(&new_string, &service, "getConfig"), Ok(()));
}

#[tokio::test]
async fn a_crash_between_creating_a_key_and_writing_its_secret_still_leaves_exactly_one_key_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = emulator_with_operator("gw-keys-crash").await else { return };
    let gateways: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    // The Secret cannot be written: the key gets created, then every pass fails before recording it.
    kube.inject_fault(Fault { name: Some(SECRET.into()), ..Fault::status("patch", "secrets", 500) });
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [{ "name": "client", "secretName": SECRET }] })).await;
    wait_for("the key created", DEADLINE, || async { (operator.gcp.api_keys(PROJECT).len() == 1).then_some(()) }).await;
    let gcp = operator.gcp.clone();
    operator.crash().await;
    kube.clear_faults();

    let restarted =
        Operator::start_with(&cluster, OperatorOptions { gcp: Some(gcp), ..OperatorOptions::default() }).await;
    let ready =
        wait_condition(&gateways, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    let keys = restarted.gcp.api_keys(PROJECT);
    assert_eq!(keys.len(), 1, "still exactly one key: {keys:?}");
    assert_eq!(keys[0].id, key_id(&ready));
    let string = secret_string(&cluster, &keys[0].id).await;
    assert_eq!(Some(string), restarted.gcp.key_string(PROJECT, &keys[0].id));
}

#[tokio::test]
async fn a_failed_key_operation_and_a_foreign_secret_are_reported_on_api_keys_ready() {
    let (cluster, operator) = cluster_with_operator("gw-keys-fail").await;
    let gateways: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    operator.gcp.inject_fault(GcpFault {
        method: Some("apikeys.keys.create".into()),
        fail_operation: Some("injected: the key could not be created".into()),
        times: Some(1),
        ..GcpFault::default()
    });
    // A Secret of that name that is not the operator's is never written.
    let foreign: Secret = serde_json::from_value(json!({ "metadata": { "name": "taken" }, "data": {} }))
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<Secret>().create(&PostParams::default(), &foreign).await.unwrap_or_else(|e| panic!("{e}"));
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [{ "name": "client", "secretName": SECRET }] })).await;
    // The retry succeeds at once, so the failure is looked for where it stays: its Warning Event
    // (the status said the same in between, ApiKeysReady=False OperationFailed).
    let events: Api<Event> = cluster.api();
    wait_for("a Warning Event for the failed key operation", DEADLINE, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("OperationFailed")
                    && e.note.as_deref().is_some_and(|n| n.contains("the key could not be created"))
            })
            .then_some(())
    })
    .await;
    wait_condition(&gateways, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    assert_eq!(operator.gcp.api_keys(PROJECT).len(), 1);

    let taken = json!({ "spec": { "apiKeys": [{ "name": "client", "secretName": "taken" }] } });
    patch_gateway(&cluster, taken).await;
    wait_condition(&gateways, "secure-api", condition(types::API_KEYS_READY).is("False", "ApiKeySecretConflict")).await;
    let live = cluster.api::<Secret>().get("taken").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(live.data.unwrap_or_default().is_empty(), "the foreign Secret is left alone");
}
