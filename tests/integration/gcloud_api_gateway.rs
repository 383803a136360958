//! The real `gcloud` CLI against the API Gateway emulator: it lists and describes an API, a
//! config and a gateway seeded over HTTP; it creates, rolls out and deletes them itself, polling
//! the emulator's long-running operations; and it reports a failed operation and a refused
//! delete. Everything talks to 127.0.0.1 and every command is killed after 60 s. `GCLOUD` may
//! name the binary.

use crate::support::PROJECT;
use crate::support::gcloud::start;
use crate::support::wait::wait_for;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use secure_api_testbed::emulator::gcp::{GcpEmulator, GcpFault};
use serde_json::{Value, json};

use std::time::Duration;

const API: &str = "projects/demo-project/locations/global/apis/orders";
const GATEWAY: &str = "projects/demo-project/locations/us-central1/gateways/edge";
const SERVICE_ACCOUNT: &str = "gateway@demo-project.iam.gserviceaccount.com";

/// A small valid Swagger 2.0 document: one operation with its backend.
const OPENAPI: &str = r#"swagger: "2.0"
info:
  title: orders
  version: "1.0.0"
paths:
  /orders:
    get:
      operationId: listOrders
      x-google-backend:
        address: https://orders-abc123-uc.a.run.app
      responses:
        "200":
          description: OK
"#;

/// One request to the emulator (in-process, as the operator's client would send it over HTTP);
/// anything but 200 is an error.
async fn request(emulator: &GcpEmulator, method: Method, path: &str, body: &Value) -> Result<Value, String> {
    let uri: Uri = format!("/v1/{path}").parse().map_err(|e| format!("uri {path}: {e}"))?;
    let body = Bytes::from(body.to_string());
    let response = emulator.respond(&method, &uri, &HeaderMap::new(), body).await;
    let status = response.status();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
    if status == StatusCode::OK { Ok(value) } else { Err(format!("{method} {path}: {status} {value}")) }
}

/// Starts an operation and polls it until it is done; its error, if any, fails the seeding.
async fn run_operation(emulator: &GcpEmulator, method: Method, path: &str, body: Value) -> Result<Value, String> {
    let operation = request(emulator, method, path, &body).await?;
    let name = operation["name"].as_str().ok_or_else(|| format!("no operation: {operation}"))?.to_owned();
    let done = wait_for(&format!("operation {name}"), Duration::from_secs(10), || async {
        request(emulator, Method::GET, &name, &json!({})).await.ok().filter(|op| op["done"] == true)
    })
    .await;
    match done.get("error") {
        Some(error) => Err(format!("operation {name} failed: {error}")),
        None => Ok(done),
    }
}

/// An ACTIVE API `orders`, its ACTIVE config `v1` and the gateway `edge` in us-central1 serving it.
async fn seed(emulator: &GcpEmulator) -> Result<(), String> {
    let api = json!({ "displayName": "Orders API", "labels": { "team": "payments" } });
    run_operation(emulator, Method::POST, "projects/demo-project/locations/global/apis?apiId=orders", api).await?;
    let config = json!({
        "displayName": "Orders v1",
        "gatewayServiceAccount": SERVICE_ACCOUNT,
        "openapiDocuments": [{ "document": { "path": "openapi.yaml", "contents": STANDARD.encode(OPENAPI) } }],
    });
    run_operation(emulator, Method::POST, &format!("{API}/configs?apiConfigId=v1"), config).await?;
    let gateway = json!({ "apiConfig": format!("{API}/configs/v1"), "displayName": "Edge" });
    let path = "projects/demo-project/locations/us-central1/gateways?gatewayId=edge";
    run_operation(emulator, Method::POST, path, gateway).await.map(drop)
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_lists_and_describes_a_seeded_api_config_and_gateway() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    seed(&emulator).await?;

    let listed = gcloud.run(&["api-gateway", "apis", "list", "--format=json"]).await?.success()?.json()?;
    let apis = listed.as_array().ok_or_else(|| format!("not a list: {listed}"))?;
    assert_eq!(apis.len(), 1, "{listed}");
    assert_eq!(apis[0]["name"], API);
    assert_eq!((apis[0]["displayName"].as_str(), apis[0]["state"].as_str()), (Some("Orders API"), Some("ACTIVE")));
    assert_eq!(apis[0]["labels"], json!({ "team": "payments" }));
    let service = apis[0]["managedService"].as_str().unwrap_or_default();
    assert!(service.starts_with("orders-") && service.ends_with(".apigateway.demo-project.cloud.goog"), "{service}");

    let args = ["api-gateway", "api-configs", "describe", "v1", "--api=orders", "--format=json"];
    let config = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(config["name"], format!("{API}/configs/v1").as_str());
    assert_eq!((config["state"].as_str(), config["serviceConfigId"].as_str()), (Some("ACTIVE"), Some("v1-0")));
    assert_eq!(config["gatewayServiceAccount"], SERVICE_ACCOUNT);
    // gcloud asks for the BASIC view by default: no documents.
    assert!(config.get("openapiDocuments").is_none(), "{config}");
    let args = ["api-gateway", "api-configs", "describe", "v1", "--api=orders", "--view=FULL", "--format=json"];
    let full = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(full["openapiDocuments"][0]["document"]["contents"], STANDARD.encode(OPENAPI).as_str());

    let args = ["api-gateway", "gateways", "describe", "edge", "--location=us-central1", "--format=json"];
    let gateway = gcloud.run(&args).await?.success()?.json()?;
    let Some((api_config, state, hostname)) = emulator.gateway(PROJECT, "us-central1", "edge") else {
        return Err("the emulator lost the gateway".into());
    };
    assert_eq!(gateway["name"], GATEWAY);
    assert_eq!(gateway["apiConfig"], api_config.as_str());
    assert_eq!((gateway["state"].as_str(), state.as_str()), (Some("ACTIVE"), "ACTIVE"));
    assert_eq!(gateway["defaultHostname"], hostname.as_str());
    assert!(hostname.starts_with("edge-") && hostname.ends_with(".uc.gateway.dev"), "{hostname}");
    assert_eq!(gateway["displayName"], "Edge");

    let counts =
        ["apigateway.apis.list", "apigateway.apiConfigs.get", "apigateway.gateways.get"].map(|m| emulator.count(m));
    assert_eq!(counts, [1, 2, 1]);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_creates_rolls_out_and_deletes_through_operations() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    let spec = format!("--openapi-spec={}", gcloud.file("openapi.yaml", OPENAPI)?);
    // `api-configs create` makes the missing API first, and waits for both operations.
    let args = ["api-gateway", "api-configs", "create", "v1", "--api=orders", spec.as_str(), "--format=json"];
    let created = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(
        (created["name"].as_str(), created["state"].as_str()),
        (Some(&*format!("{API}/configs/v1")), Some("ACTIVE"))
    );
    assert_eq!(emulator.apis(PROJECT), ["orders"]);

    let gateway_args = ["--api=orders", "--location=us-central1", "--format=json"];
    let args = [&["api-gateway", "gateways", "create", "edge", "--api-config=v1"], &gateway_args[..]].concat();
    let gateway = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(gateway["state"], "ACTIVE");

    let args = ["api-gateway", "api-configs", "create", "v2", "--api=orders", spec.as_str(), "--format=json"];
    gcloud.run(&args).await?.success()?;
    // `gateways update` reads the gateway and PATCHes it back whole with `updateMask=apiConfig`.
    let args = [&["api-gateway", "gateways", "update", "edge", "--api-config=v2"], &gateway_args[..]].concat();
    let updated = gcloud.run(&args).await?.success()?.json()?;
    assert_eq!(updated["apiConfig"], format!("{API}/configs/v2").as_str());
    let configs: Vec<(String, String)> = ["v1", "v2"].map(|id| (id.to_owned(), "ACTIVE".to_owned())).into();
    assert_eq!(emulator.configs(PROJECT, "orders"), configs);

    for args in [
        &["api-gateway", "gateways", "delete", "edge", "--location=us-central1"][..],
        &["api-gateway", "api-configs", "delete", "v1", "--api=orders"],
        &["api-gateway", "api-configs", "delete", "v2", "--api=orders"],
        &["api-gateway", "apis", "delete", "orders"],
    ] {
        gcloud.run(args).await?.success()?;
    }
    let deleted = [GATEWAY.to_owned(), format!("{API}/configs/v1"), format!("{API}/configs/v2"), API.to_owned()];
    assert_eq!(emulator.deletions(), deleted);
    assert!(emulator.apis(PROJECT).is_empty());
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_reports_failed_operations_and_a_refused_delete() -> Result<(), String> {
    let (emulator, listener, gcloud) = start().await?;
    seed(&emulator).await?;
    let no_backend =
        OPENAPI.replace("      x-google-backend:\n        address: https://orders-abc123-uc.a.run.app\n", "");
    let spec = format!("--openapi-spec={}", gcloud.file("openapi.yaml", &no_backend)?);
    let invalid = gcloud.run(&["api-gateway", "api-configs", "create", "bad", "--api=orders", &spec]).await?;
    assert!(!invalid.status.success(), "an invalid document was accepted");
    assert!(invalid.stderr.contains("Operation 'get' in path '/orders' has no backend"), "{}", invalid.stderr);
    assert_eq!(emulator.configs(PROJECT, "orders")[0], ("bad".to_owned(), "FAILED".to_owned()));

    emulator
        .inject_fault(GcpFault::fail_operation("apigateway.gateways.create", "Quota exceeded for gateways.").times(1));
    let args = ["api-gateway", "gateways", "create", "other", "--api=orders", "--api-config=v1", "--location=us-east1"];
    let failed = gcloud.run(&args).await?;
    assert!(!failed.status.success(), "the failed operation was reported as a success");
    assert!(failed.stderr.contains("Quota exceeded for gateways."), "{}", failed.stderr);
    let state = emulator.gateway(PROJECT, "us-east1", "other").map(|(_, state, _)| state);
    assert_eq!(state.as_deref(), Some("FAILED"));

    let refused = gcloud.run(&["api-gateway", "api-configs", "delete", "v1", "--api=orders"]).await?;
    assert!(!refused.status.success(), "a config in use was deleted");
    assert!(refused.stderr.contains("FAILED_PRECONDITION"), "{}", refused.stderr);
    assert!(emulator.deletions().is_empty());
    listener.shutdown().await;
    Ok(())
}
