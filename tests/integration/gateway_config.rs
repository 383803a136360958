//! The GatewayConfig controller against the emulators: the seed's API provisioned once, route
//! changes as new configs, a steady state without mutating calls, failed operations retried,
//! ordered deletion (or none with Retain), and gcloud reading what the operator created.

use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, condition, ready, wait_condition};
use crate::support::gcloud::Gcloud;
use crate::support::operator::{Operator, OperatorOptions, cluster_with_operator, emulator_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use crate::support::{PROJECT, principal};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::{find_condition, types};
use secure_api_operator::api::{GatewayConfig, SecureApiService};
use secure_api_testbed::emulator::gcp::GcpFault;
use serde_json::{Value, json};

/// The seed's routes (SCENARIO.md), all on the `secure-api` service.
fn seed_routes() -> Value {
    let route = |path: &str, id: &str, auth: &str| json!({ "path": path, "methods": ["GET"], "operationId": id, "auth": auth, "backend": { "service": "secure-api" } });
    json!([
        route("/health", "healthCheck", "none"),
        route("/config", "getConfig", "apiKey"),
        route("/database/status", "databaseStatus", "apiKey"),
        route("/api/data", "getSecureData", "apiKey"),
    ])
}

pub(crate) async fn backend_service(cluster: &TestCluster) {
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "secure-api" },
        "spec": { "image": "example.com/secure-api:1.0", "expose": { "externalUrl": "https://secure-api.example.com" } },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
}

pub(crate) async fn create_gateway(cluster: &TestCluster, name: &str, extra: Value) {
    let mut spec = json!({
        "projectId": PROJECT, "location": "us-central1",
        "auth": { "apiKey": { "in": "query", "name": "key" } },
        "routes": seed_routes(),
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let object: GatewayConfig = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig", "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<GatewayConfig>().create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
}

/// GatewayConfig reconciles so far, from the operator's metrics.
pub(crate) fn reconciles(operator: &Operator) -> u64 {
    let text = operator.metrics.encode();
    text.lines()
        .find(|l| l.starts_with(r#"secureapi_reconciles_total{controller="gatewayconfig"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

fn mutating_calls(operator: &Operator) -> u64 {
    operator
        .gcp
        .counts()
        .iter()
        .filter(|(m, _)| m.starts_with("apigateway.") && !m.ends_with(".get") && !m.ends_with(".list"))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn the_seed_api_is_provisioned_with_one_create_each_and_reports_its_url() {
    let (cluster, operator) = cluster_with_operator("gw-seed").await;
    let gateways: Api<GatewayConfig> = cluster.api();
    create_gateway(&cluster, "secure-api", json!({})).await;
    wait_condition(&gateways, "secure-api", condition(types::BACKENDS_RESOLVED).is("False", "BackendNotReady")).await;
    backend_service(&cluster).await;
    let ready = wait_condition(&gateways, "secure-api", ready().is("True", "GatewayActive")).await;
    let status = ready.status.unwrap_or_default();
    // The default ids carry the namespace: two namespaces never reach for the same resources.
    let id = format!("{}-secure-api", cluster.namespace);
    assert_eq!((status.api_id.as_deref(), status.gateway_id.as_deref()), (Some(id.as_str()), Some(id.as_str())));
    assert!(status.gateway_url.as_deref().is_some_and(|u| u.starts_with(&format!("https://{id}-"))), "{status:?}");
    assert!(status.api_config_id.as_deref().is_some_and(|c| c.starts_with(&format!("{id}-"))));
    assert!(status.managed_service.is_some());
    for method in ["apigateway.apis.create", "apigateway.apiConfigs.create", "apigateway.gateways.create"] {
        assert_eq!(operator.gcp.count(method), 1, "{method}: {:?}", operator.gcp.counts());
    }

    // The real gcloud reads what the operator created.
    let gcloud = Gcloud::new(&operator.gcp_url()).unwrap_or_else(|e| panic!("{e}"));
    let config_id = status.api_config_id.clone().unwrap_or_default();
    let apis = gcloud.run(&["api-gateway", "apis", "list", "--format=json"]).await.and_then(|r| r.success()?.json());
    let apis = apis.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        apis.as_array().is_some_and(|a| a
            .iter()
            .any(|api| api["name"] == format!("projects/demo-project/locations/global/apis/{id}"))),
        "{apis}"
    );
    let described = gcloud
        .run(&["api-gateway", "api-configs", "describe", &config_id, &format!("--api={id}"), "--format=json"])
        .await
        .and_then(|r| r.success()?.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(described["state"], "ACTIVE", "{described}");
    let gateway = gcloud
        .run(&["api-gateway", "gateways", "describe", &id, "--location=us-central1", "--format=json"])
        .await
        .and_then(|r| r.success()?.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gateway["apiConfig"].as_str().is_some_and(|c| c.ends_with(&config_id)), "{gateway}");
    assert_eq!(status.gateway_url, gateway["defaultHostname"].as_str().map(|h| format!("https://{h}")));
}

async fn change_route(cluster: &TestCluster, name: &str, path: &str) {
    let mut routes = seed_routes();
    routes[0]["path"] = json!(path);
    cluster
        .api::<GatewayConfig>()
        .patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "routes": routes } })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn wait_config(cluster: &TestCluster, name: &str, not: &str) -> String {
    let api: Api<GatewayConfig> = cluster.api();
    wait_for("a new config on a Ready gateway", DEADLINE, || async {
        let status = api.get(name).await.ok()?.status?;
        let ready = find_condition(&status.conditions, types::READY)?.is_true(types::READY);
        let config = status.api_config_id?;
        (ready && config != not).then_some(config)
    })
    .await
}

#[tokio::test]
async fn a_route_change_makes_a_new_config_moves_the_gateway_and_drops_the_config_before_the_previous() {
    let (cluster, operator) = cluster_with_operator("gw-change").await;
    let gateways: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    create_gateway(&cluster, "secure-api", json!({})).await;
    let first = wait_condition(&gateways, "secure-api", ready().is("True", "GatewayActive"))
        .await
        .status
        .and_then(|s| s.api_config_id)
        .unwrap_or_default();
    change_route(&cluster, "secure-api", "/healthz").await;
    let second = wait_config(&cluster, "secure-api", &first).await;
    assert_eq!(operator.gcp.count("apigateway.gateways.patch"), 1);
    change_route(&cluster, "secure-api", "/ping").await;
    let third = wait_config(&cluster, "secure-api", &second).await;
    wait_for("only the current and the previous config to remain", DEADLINE, || async {
        let api_id = format!("{}-secure-api", cluster.namespace);
        let ids: Vec<String> = operator.gcp.configs(PROJECT, &api_id).into_iter().map(|(id, _)| id).collect();
        (ids.len() == 2 && ids.contains(&second) && ids.contains(&third) && !ids.contains(&first)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unchanged_gatewayconfig_makes_no_mutating_calls_and_no_status_writes_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = emulator_with_operator("gw-steady").await else { return };
    let gateways: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    create_gateway(&cluster, "secure-api", json!({})).await;
    wait_condition(&gateways, "secure-api", ready().is("True", "GatewayActive")).await;
    let mutating = mutating_calls(&operator);
    kube.reset_counts();
    let reconciles = || reconciles(&operator);
    let before = reconciles();
    // Touching an annotation makes the controller reconcile without changing what it provisions.
    for round in 0..3 {
        let touch = json!({ "metadata": { "annotations": { "example.com/touched": round.to_string() } } });
        cluster
            .api::<GatewayConfig>()
            .patch("secure-api", &PatchParams::default(), &Patch::Merge(touch))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("a reconcile", DEADLINE, || async { (reconciles() > before + round).then_some(()) }).await;
    }
    assert_eq!(mutating_calls(&operator), mutating, "no mutating API Gateway calls: {:?}", operator.gcp.counts());
    assert_eq!(kube.writes("gatewayconfigs/status"), 0, "no status writes: {:?}", kube.counts());
}

#[tokio::test]
async fn a_failed_operation_is_reported_with_its_message_then_retried_to_success() {
    let (cluster, operator) = cluster_with_operator("gw-failed").await;
    let gateways: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    operator.gcp.inject_fault(GcpFault {
        method: Some("apigateway.apiConfigs.create".into()),
        fail_operation: Some("injected: the service config could not be rolled out".into()),
        times: Some(1),
        ..GcpFault::default()
    });
    create_gateway(&cluster, "secure-api", json!({})).await;
    let failed =
        wait_condition(&gateways, "secure-api", condition(types::CONFIG_ACTIVE).is("False", "OperationFailed")).await;
    let message = failed.message(types::CONFIG_ACTIVE);
    assert!(message.contains("the service config could not be rolled out"), "{message}");
    wait_condition(&gateways, "secure-api", ready().is("True", "GatewayActive")).await;
}

#[tokio::test]
async fn deletion_removes_the_gateway_then_configs_then_the_api_unless_retained() {
    let (cluster, operator) = cluster_with_operator("gw-delete").await;
    let api: Api<GatewayConfig> = cluster.api();
    backend_service(&cluster).await;
    create_gateway(&cluster, "gone", json!({})).await;
    create_gateway(&cluster, "kept", json!({ "deletionPolicy": "Retain" })).await;
    wait_condition(&api, "gone", ready().is("True", "GatewayActive")).await;
    wait_condition(&api, "kept", ready().is("True", "GatewayActive")).await;
    for name in ["gone", "kept"] {
        api.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for("both GatewayConfigs to go", DEADLINE, || async {
        (api.list(&Default::default()).await.ok()?.items.is_empty()).then_some(())
    })
    .await;
    let deletions = operator.gcp.deletions();
    let position = |needle: &str| deletions.iter().position(|d| d.contains(needle));
    let (gone, kept) = (format!("{}-gone", cluster.namespace), format!("{}-kept", cluster.namespace));
    let gateway = position(&format!("/gateways/{gone}"));
    let config = position(&format!("/apis/{gone}/configs/"));
    let api_deleted = deletions.iter().position(|d| d.ends_with(&format!("/apis/{gone}")));
    assert!(gateway.is_some() && config.is_some() && api_deleted.is_some(), "{deletions:?}");
    assert!(gateway < config && config < api_deleted, "gateway, configs, API in that order: {deletions:?}");
    assert!(!deletions.iter().any(|d| d.contains(&kept)), "Retain leaves everything: {deletions:?}");
    assert!(operator.gcp.gateway(PROJECT, "us-central1", &kept).is_some());
}

#[tokio::test]
async fn api_gateway_is_called_as_the_service_account_the_gateway_config_names() {
    let cluster = TestCluster::with_crds("gc-identity").await;
    let gateways: Api<GatewayConfig> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    backend_service(&cluster).await;
    let account: ServiceAccount = serde_json::from_value(
        json!({ "metadata": { "name": "gw-admin", "annotations": { "secureapi.dev/usable-by": "GatewayConfig" } } }),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<ServiceAccount>().create(&PostParams::default(), &account).await.unwrap_or_else(|e| panic!("{e}"));
    create_gateway(&cluster, "as-admin", json!({ "serviceAccountName": "gw-admin" })).await;
    let refused = wait_condition(&gateways, "as-admin", ready().is("False", "PermissionDenied")).await;
    assert_eq!(mutating_calls(&operator), 0, "nothing was created without apigateway.admin");
    assert!(refused.status.and_then(|s| s.gateway_url).is_none());
    let admin = principal(&cluster.namespace, "gw-admin");
    operator.gcp.add_iam_binding(&format!("projects/{PROJECT}"), "roles/apigateway.admin", &admin);
    wait_condition(&gateways, "as-admin", ready().is("True", "GatewayActive")).await;
    assert!(operator.gcp.denials().iter().all(|d| d.principal == admin), "{:?}", operator.gcp.denials());
}
