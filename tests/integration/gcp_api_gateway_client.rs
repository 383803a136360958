//! Integration tests of the API Gateway client against the stub server on 127.0.0.1, whose
//! responders here see each request's method, query and body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secure_api_operator::gcp::{
    ApiGateway, CallObserver, Code, Detail, GcpConfig, GcpError, Operation, OperationError,
};
use serde_json::{Value, json};

use crate::support::gcp_stub::{Recorder, Reply, Stub, config, expect_error};
use crate::support::http::free_port;
use crate::support::wait::within;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const API_NAME: &str = "projects/p/locations/global/apis/shop";
const API: &str = "/v1/projects/p/locations/global/apis/shop";
const CONFIG: &str = "projects/p/locations/global/apis/shop/configs/shop-1";
const OPERATION: &str = "projects/p/locations/global/operations/op-1";

fn ok(body: Value) -> Reply {
    Reply { status: 200, body: body.to_string(), headers: Vec::new(), delay: Duration::ZERO }
}

fn operation(done: bool) -> Reply {
    ok(json!({"name": OPERATION, "done": done, "metadata": {"verb": "create"}}))
}

async fn client(config: GcpConfig, recorder: &Arc<Recorder>) -> Result<ApiGateway, GcpError> {
    ApiGateway::new(config, Some(Arc::clone(recorder) as Arc<dyn CallObserver>)).await
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("owner".to_owned(), "shop".to_owned())])
}

/// Polls `name` until it is done, as a controller would across reconciles (bounded).
async fn wait_done(client: &ApiGateway, name: &str) -> Result<Operation, GcpError> {
    loop {
        let operation = client.get_operation(name).await?;
        if operation.done {
            return Ok(operation);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn created_api_operation_is_polled_until_done() -> TestResult {
    let stub = Stub::start_with(|index, _| operation(index >= 3)).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let started = within(gateway.create_api("p", "shop", "Shop", &labels())).await?;
    assert_eq!((started.name.as_str(), started.done), (OPERATION, false));
    let done = within(wait_done(&gateway, &started.name)).await?;
    assert!(done.done && done.error.is_none());

    let seen = stub.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/v1/projects/p/locations/global/apis"));
    assert_eq!(seen[0].query, "apiId=shop");
    assert_eq!(seen[0].body, json!({"displayName": "Shop", "labels": {"owner": "shop"}}));
    assert!(seen[1..].iter().all(|s| s.method == "GET" && s.path == format!("/v1/{OPERATION}") && s.body.is_null()));
    let methods: Vec<(&str, &str)> = recorder.calls().iter().map(|(service, method, _)| (*service, *method)).collect();
    assert_eq!(methods[0], ("apigateway", "apigateway.apis.create"));
    assert_eq!(methods[1..], [("apigateway", "apigateway.operations.get"); 3]);
    Ok(())
}

#[tokio::test]
async fn failed_operation_carries_its_message() -> TestResult {
    let message = "Cannot convert to service config: paths./x missing operationId";
    let stub = Stub::start_with(move |_, _| {
        ok(json!({"name": OPERATION, "done": true, "error": {"code": 3, "message": message, "details": []}}))
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let operation = within(gateway.get_operation(OPERATION)).await?;
    assert_eq!(operation.error, Some(OperationError { code: 3, message: message.to_owned() }));
    Ok(())
}

#[tokio::test]
async fn post_answered_503_or_429_is_retried() -> TestResult {
    let stub = Stub::start_with(|index, _| match index {
        0 => Reply::error(503, "UNAVAILABLE", "backend unavailable"),
        1 => Reply::error(429, "RESOURCE_EXHAUSTED", "quota"),
        _ => operation(false),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let document = b"swagger: '2.0'\n";
    let started =
        within(gateway.create_config("p", "shop", "shop-1", "openapi.yaml", document, None, &labels())).await?;
    assert_eq!(started.name, OPERATION);
    assert_eq!(recorder.outcomes(), ["503", "429", "200"]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", &*format!("{API}/configs")));
        assert_eq!(request.query, "apiConfigId=shop-1");
        assert_eq!(request.body.pointer("/openapiDocuments/0/document/contents"), Some(&json!("c3dhZ2dlcjogJzIuMCcK")));
        assert_eq!(request.body, seen[0].body);
    }
    Ok(())
}

#[tokio::test]
async fn post_that_timed_out_is_not_retried() -> TestResult {
    let stub = Stub::start_with(|_, _| operation(false).delayed(Duration::from_secs(10))).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(GcpConfig { request_timeout: Duration::from_millis(200), ..config(&stub) }, &recorder).await?;
    let error = expect_error(within(gateway.create_gateway("p", "us-central1", "gw", CONFIG, "Shop", &labels())).await);
    assert_eq!((error.status, error.http_code, error.detail), (Code::DeadlineExceeded, None, Some(Detail::Timeout)));
    assert_eq!(
        error.to_string(),
        "apigateway.gateways.create projects/p/locations/us-central1/gateways/gw: DEADLINE_EXCEEDED (timeout)"
    );
    assert_eq!(recorder.outcomes(), ["timeout"]);
    assert_eq!(stub.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn write_answered_500_is_not_retried_but_a_read_is() -> TestResult {
    let stub = Stub::start_with(|index, seen| match (index, seen.method.as_str()) {
        (0, _) | (1, "GET") => Reply::error(500, "INTERNAL", "oops"),
        (_, "GET") => ok(json!({"name": API_NAME, "state": "ACTIVE"})),
        _ => operation(false),
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    let error = expect_error(within(gateway.delete_api("p", "shop")).await);
    assert_eq!((error.status, error.http_code), (Code::Internal, Some(500)));
    assert_eq!(stub.requests(), 1);
    let api = within(gateway.get_api("p", "shop")).await?;
    assert_eq!(api.map(|api| api.state).as_deref(), Some("ACTIVE"));
    assert_eq!(recorder.outcomes(), ["500", "500", "200"]);
    Ok(())
}

#[tokio::test]
async fn refused_connections_are_retried_for_writes() -> TestResult {
    // A port that was just free: nothing listens there any more.
    let port = free_port();
    let recorder = Arc::new(Recorder::default());
    let config = GcpConfig {
        api_gateway_endpoint: Some(format!("http://127.0.0.1:{port}")),
        no_auth: true,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..GcpConfig::default()
    };
    let gateway = client(config, &recorder).await?;
    let error = expect_error(within(gateway.delete_gateway("p", "us-central1", "gw")).await);
    assert_eq!((error.status, error.detail), (Code::Unavailable, Some(Detail::Connect)));
    assert_eq!(recorder.outcomes(), ["connect_error"; 3]);
    Ok(())
}

#[tokio::test]
async fn list_configs_follows_page_tokens() -> TestResult {
    let stub = Stub::start_with(|_, seen| {
        let config = |id: &str| json!({"name": format!("{API_NAME}/configs/{id}"), "state": "ACTIVE"});
        match seen.query.as_str() {
            "pageSize=100" => ok(json!({"apiConfigs": [config("a"), config("b")], "nextPageToken": "t/2+"})),
            "pageSize=100&pageToken=t%2F2%2B" => ok(json!({"apiConfigs": [config("c")], "nextPageToken": "t3"})),
            "pageSize=100&pageToken=t3" => ok(json!({"apiConfigs": [config("d")]})),
            _ => Reply::error(400, "INVALID_ARGUMENT", "unexpected page"),
        }
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let configs = within(gateway.list_configs("p", "shop")).await?;
    let ids: Vec<&str> = configs.iter().map(|config| config.id()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert!(stub.seen().iter().all(|seen| seen.method == "GET" && seen.path == format!("{API}/configs")));
    assert_eq!(stub.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn missing_resources_are_none() -> TestResult {
    let stub = Stub::start_with(|_, _| Reply::error(404, "NOT_FOUND", "Resource not found")).await?;
    let recorder = Arc::new(Recorder::default());
    let gateway = client(config(&stub), &recorder).await?;
    assert_eq!(within(gateway.get_api("p", "shop")).await?, None);
    assert_eq!(within(gateway.get_config("p", "shop", "shop-1")).await?, None);
    assert_eq!(within(gateway.get_gateway("p", "us-central1", "gw")).await?, None);
    let error = expect_error(within(gateway.get_operation(OPERATION)).await);
    assert_eq!((error.status, error.http_code), (Code::NotFound, Some(404)));
    let methods: Vec<&str> = recorder.calls().iter().map(|(_, method, _)| *method).collect();
    let expected =
        ["apigateway.apis.get", "apigateway.apiConfigs.get", "apigateway.gateways.get", "apigateway.operations.get"];
    assert_eq!(methods, expected);
    Ok(())
}

#[tokio::test]
async fn gateway_is_read_and_moved_to_a_new_config() -> TestResult {
    let stub = Stub::start_with(|_, seen| match seen.method.as_str() {
        "GET" => ok(json!({
            "name": "projects/p/locations/us-central1/gateways/gw", "apiConfig": CONFIG, "state": "ACTIVE",
            "defaultHostname": "gw-1a2b.uc.gateway.dev",
        })),
        _ => operation(false),
    })
    .await?;
    let gateway = client(config(&stub), &Arc::new(Recorder::default())).await?;
    let live = within(gateway.get_gateway("p", "us-central1", "gw")).await?;
    let live = live.ok_or("gateway missing")?;
    assert_eq!((live.api_config.as_str(), live.default_hostname.as_str()), (CONFIG, "gw-1a2b.uc.gateway.dev"));
    let next = "projects/p/locations/global/apis/shop/configs/shop-2";
    within(gateway.update_gateway_config("p", "us-central1", "gw", next)).await?;
    let patch = stub.seen().pop().ok_or("no request")?;
    assert_eq!((patch.method.as_str(), patch.query.as_str()), ("PATCH", "updateMask=apiConfig"));
    assert_eq!(patch.path, "/v1/projects/p/locations/us-central1/gateways/gw");
    assert_eq!(patch.body, json!({"apiConfig": next}));
    Ok(())
}
