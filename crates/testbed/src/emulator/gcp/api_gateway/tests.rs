//! API Gateway flows through the handlers with a clock the tests move: operations and the state
//! changes they make, immutable configs, invalid documents, deletion preconditions, faults.

use super::names::Call;
use super::operations::Now;
use super::rest::Query;
use super::routes;
use super::rpc::RpcError;
use super::store::{DEFAULT_OPERATION_DELAY, Store};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::Method;
use serde_json::{Value, json};

const GLOBAL: &str = "projects/p/locations/global";
const API: &str = "projects/p/locations/global/apis/orders";
const REGION: &str = "projects/p/locations/us-central1";
const GATEWAY: &str = "projects/p/locations/us-central1/gateways/edge";

pub const VALID_DOCUMENT: &str = "swagger: '2.0'\ninfo:\n  title: orders\n  version: '1'\n\
    paths:\n  /orders:\n    get:\n      operationId: listOrders\n      x-google-backend:\n        \
    address: https://orders.example.com\n      responses:\n        200:\n          description: OK\n";

/// A store and the time the next request is served at.
struct Bed {
    store: Store,
    now: Now,
}

impl Bed {
    fn new() -> Self {
        Self { store: Store::default(), now: Now::current() }
    }

    fn call_failing(
        &mut self,
        method: Method,
        path: &str,
        query: &str,
        body: &str,
        fault: Option<&str>,
    ) -> Result<Value, RpcError> {
        let query = Query::parse(Some(query));
        let Some(call) = Call::parse(&method, path, &query) else { panic!("no route for {method} {path}") };
        self.store.settle(self.now);
        routes::handle(&mut self.store, &call, &query, body.as_bytes(), fault.map(RpcError::internal), self.now)
    }

    fn call(&mut self, method: Method, path: &str, query: &str, body: &str) -> Result<Value, RpcError> {
        self.call_failing(method, path, query, body, None)
    }

    fn ok(&mut self, method: Method, path: &str, query: &str, body: &str) -> Value {
        self.call(method.clone(), path, query, body).unwrap_or_else(|e| panic!("{method} {path}?{query}: {e}"))
    }

    fn get(&mut self, path: &str) -> Value {
        self.ok(Method::GET, path, "", "")
    }

    fn state(&mut self, path: &str) -> Value {
        self.get(path)["state"].clone()
    }

    /// Lets every running operation complete.
    fn wait(&mut self) {
        self.now = self.now.after(DEFAULT_OPERATION_DELAY);
    }

    /// The finished operation `operation` (as a create/patch/delete answered it).
    fn finished(&mut self, operation: &Value) -> Value {
        self.wait();
        let name = operation["name"].as_str().unwrap_or_default().to_owned();
        let done = self.get(&name);
        assert_eq!(done["done"], true, "{done}");
        done
    }

    fn create_api(&mut self) {
        let op = self.ok(Method::POST, &format!("{GLOBAL}/apis"), "apiId=orders", r#"{"displayName":"Orders"}"#);
        self.finished(&op);
    }

    fn create_config(&mut self, id: &str, document: &str) -> Value {
        let body = config_body(document);
        let op = self.ok(Method::POST, &format!("{API}/configs"), &format!("apiConfigId={id}"), &body);
        self.finished(&op)
    }

    fn create_gateway(&mut self, config: &str) -> Value {
        let body = json!({ "apiConfig": format!("{API}/configs/{config}") }).to_string();
        let op = self.ok(Method::POST, &format!("{REGION}/gateways"), "gatewayId=edge", &body);
        self.finished(&op)
    }
}

pub fn config_body(document: &str) -> String {
    let contents = STANDARD.encode(document);
    json!({ "openapiDocuments": [{ "document": { "path": "openapi.yaml", "contents": contents } }] }).to_string()
}

fn code(result: Result<Value, RpcError>) -> Result<Value, (u16, &'static str)> {
    result.map_err(|e| (e.http_status, e.code.name()))
}

#[test]
fn an_api_is_creating_until_its_operation_is_done_then_active() {
    let mut bed = Bed::new();
    let op = bed.ok(Method::POST, &format!("{GLOBAL}/apis"), "apiId=orders", r#"{"labels":{"team":"a"}}"#);
    assert_eq!(op["done"], false);
    assert_eq!(op["name"], "projects/p/locations/global/operations/operation-1");
    assert_eq!((op["metadata"]["verb"].clone(), op["metadata"]["target"].clone()), (json!("create"), json!(API)));
    assert_eq!(bed.state(API), "CREATING");
    let done = bed.finished(&op);
    assert_eq!(done["response"]["@type"], "type.googleapis.com/google.cloud.apigateway.v1.Api");
    assert_eq!(done["response"]["state"], "ACTIVE");
    let api = bed.get(API);
    assert_eq!((api["state"].clone(), api["labels"].clone()), (json!("ACTIVE"), json!({"team": "a"})));
    let service = api["managedService"].as_str().unwrap_or_default();
    assert!(service.starts_with("orders-") && service.ends_with(".apigateway.p.cloud.goog"), "{service}");
    assert_eq!(bed.get(&format!("{GLOBAL}/apis"))["apis"][0]["name"], API);
}

#[test]
fn a_valid_config_becomes_active_and_shows_its_documents_only_in_full_view() {
    let mut bed = Bed::new();
    bed.create_api();
    let done = bed.create_config("v1", VALID_DOCUMENT);
    assert_eq!(done["response"]["@type"], "type.googleapis.com/google.cloud.apigateway.v1.ApiConfig");
    let config = format!("{API}/configs/v1");
    let basic = bed.ok(Method::GET, &config, "view=BASIC", "");
    assert_eq!((basic["state"].clone(), basic["serviceConfigId"].clone()), (json!("ACTIVE"), json!("v1-0")));
    assert!(basic.get("openapiDocuments").is_none());
    let full = bed.ok(Method::GET, &config, "view=FULL", "");
    assert_eq!(full["openapiDocuments"][0]["document"]["contents"], STANDARD.encode(VALID_DOCUMENT));
    assert_eq!(code(bed.call(Method::GET, &config, "view=ALL", "")).err(), Some((400, "INVALID_ARGUMENT")));
    assert_eq!(bed.get(&format!("{API}/configs"))["apiConfigs"][0]["name"], config);
}

#[test]
fn an_invalid_document_fails_the_operation_with_invalid_argument_and_the_config_ends_failed() {
    let mut bed = Bed::new();
    bed.create_api();
    let no_backend =
        VALID_DOCUMENT.replace("      x-google-backend:\n        address: https://orders.example.com\n", "");
    let done = bed.create_config("v1", &no_backend);
    assert_eq!(done["error"]["code"], 3);
    let message = done["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Operation 'get' in path '/orders' has no backend"), "{message}");
    assert!(done.get("response").is_none());
    assert_eq!(bed.state(&format!("{API}/configs/v1")), "FAILED");
    let openapi3 = bed.create_config("v2", "openapi: 3.0.0\ninfo: {title: t}\npaths: {}");
    assert_eq!(openapi3["error"]["code"], 3);
}

#[test]
fn config_creation_checks_the_id_the_parent_and_duplicates_at_once() {
    let mut bed = Bed::new();
    let body = config_body(VALID_DOCUMENT);
    let missing_api = bed.call(Method::POST, &format!("{API}/configs"), "apiConfigId=v1", &body);
    assert_eq!(code(missing_api).err(), Some((404, "NOT_FOUND")));
    bed.create_api();
    for bad in ["apiConfigId=V1", "apiConfigId=1v", "apiConfigId=v_1", ""] {
        let created = bed.call(Method::POST, &format!("{API}/configs"), bad, &body);
        assert_eq!(code(created).err(), Some((400, "INVALID_ARGUMENT")), "{bad}");
    }
    let no_documents = bed.call(Method::POST, &format!("{API}/configs"), "apiConfigId=v1", "{}");
    assert_eq!(code(no_documents).err(), Some((400, "INVALID_ARGUMENT")));
    bed.create_config("v1", VALID_DOCUMENT);
    let duplicate = bed.call(Method::POST, &format!("{API}/configs"), "apiConfigId=v1", &body);
    assert_eq!(code(duplicate).err(), Some((409, "ALREADY_EXISTS")));
}

#[test]
fn a_configs_documents_are_immutable_and_its_labels_change_through_an_update() {
    let mut bed = Bed::new();
    bed.create_api();
    bed.create_config("v1", VALID_DOCUMENT);
    let config = format!("{API}/configs/v1");
    let body = config_body(&VALID_DOCUMENT.replace("orders.example.com", "other.example.com"));
    for mask in
        ["updateMask=openapiDocuments", "updateMask=gatewayServiceAccount", "updateMask=labels,openapi_documents", ""]
    {
        let patched = bed.call(Method::PATCH, &config, mask, &body);
        assert_eq!(code(patched).err(), Some((400, "INVALID_ARGUMENT")), "{mask}");
    }
    let op =
        bed.ok(Method::PATCH, &config, "updateMask=labels,display_name", r#"{"labels":{"v":"1"},"displayName":"One"}"#);
    assert_eq!(op["metadata"]["verb"], "update");
    assert_eq!(bed.state(&config), "UPDATING");
    let done = bed.finished(&op);
    assert_eq!(done["response"]["labels"], json!({"v": "1"}));
    let after = bed.get(&config);
    assert_eq!((after["state"].clone(), after["displayName"].clone()), (json!("ACTIVE"), json!("One")));
}

#[test]
fn a_gateway_serves_an_active_config_and_moves_to_another_through_updating() {
    let mut bed = Bed::new();
    bed.create_api();
    bed.create_config("v1", VALID_DOCUMENT);
    let done = bed.create_gateway("v1");
    assert_eq!(done["name"].as_str().map(|n| n.starts_with(&format!("{REGION}/operations/"))), Some(true));
    let gateway = bed.get(GATEWAY);
    assert_eq!(
        (gateway["state"].clone(), gateway["apiConfig"].clone()),
        (json!("ACTIVE"), json!(format!("{API}/configs/v1")))
    );
    let host = gateway["defaultHostname"].as_str().unwrap_or_default();
    assert!(
        host.starts_with("edge-")
            && host.ends_with(".uc.gateway.dev")
            && host.len() == "edge-".len() + 8 + ".uc.gateway.dev".len(),
        "{host}"
    );

    bed.create_config("v2", VALID_DOCUMENT);
    let body = json!({ "apiConfig": format!("{API}/configs/v2") }).to_string();
    let op = bed.ok(Method::PATCH, GATEWAY, "updateMask=apiConfig", &body);
    assert_eq!(bed.state(GATEWAY), "UPDATING");
    bed.finished(&op);
    let gateway = bed.get(GATEWAY);
    assert_eq!(
        (gateway["state"].clone(), gateway["apiConfig"].clone()),
        (json!("ACTIVE"), json!(format!("{API}/configs/v2")))
    );
    assert_eq!(bed.get(&format!("{REGION}/gateways"))["gateways"][0]["name"], GATEWAY);
    assert_eq!(bed.get("projects/p/locations/-/gateways")["gateways"][0]["name"], GATEWAY);
}

#[test]
fn a_gateway_on_a_config_that_is_not_active_fails_with_failed_precondition() {
    let mut bed = Bed::new();
    bed.create_api();
    let missing = bed.create_gateway("nope");
    assert_eq!(missing["error"]["code"], 9);
    assert_eq!(bed.state(GATEWAY), "FAILED");
    bed.ok(Method::DELETE, GATEWAY, "", "");
    bed.wait();
    bed.create_config("bad", "swagger: '2.0'\ninfo: {title: t}\npaths: {}");
    assert_eq!(bed.create_gateway("bad")["error"]["code"], 9);
    let no_config = bed.call(Method::POST, &format!("{REGION}/gateways"), "gatewayId=other", "{}");
    assert_eq!(code(no_config).err(), Some((400, "INVALID_ARGUMENT")));
    let global = bed.call(Method::POST, &format!("{GLOBAL}/gateways"), "gatewayId=other", "{}");
    assert_eq!(code(global).err(), Some((400, "INVALID_ARGUMENT")));
}

#[test]
fn a_failed_config_update_of_a_gateway_keeps_the_old_config() {
    let mut bed = Bed::new();
    bed.create_api();
    bed.create_config("v1", VALID_DOCUMENT);
    bed.create_gateway("v1");
    let body = json!({ "apiConfig": format!("{API}/configs/v9") }).to_string();
    let op = bed.ok(Method::PATCH, GATEWAY, "updateMask=apiConfig", &body);
    assert_eq!(bed.finished(&op)["error"]["code"], 9);
    let gateway = bed.get(GATEWAY);
    assert_eq!(
        (gateway["state"].clone(), gateway["apiConfig"].clone()),
        (json!("ACTIVE"), json!(format!("{API}/configs/v1")))
    );
}

#[test]
fn deletion_waits_for_what_uses_a_resource_and_is_recorded_in_order() {
    let mut bed = Bed::new();
    bed.create_api();
    bed.create_config("v1", VALID_DOCUMENT);
    bed.create_gateway("v1");
    let config = format!("{API}/configs/v1");
    assert_eq!(code(bed.call(Method::DELETE, API, "", "")).err(), Some((400, "FAILED_PRECONDITION")));
    assert_eq!(code(bed.call(Method::DELETE, &config, "", "")).err(), Some((400, "FAILED_PRECONDITION")));
    let op = bed.ok(Method::DELETE, GATEWAY, "", "");
    assert_eq!(bed.state(GATEWAY), "DELETING");
    // The gateway still uses the config until its deletion is done.
    assert_eq!(code(bed.call(Method::DELETE, &config, "", "")).err(), Some((400, "FAILED_PRECONDITION")));
    let done = bed.finished(&op);
    assert_eq!(done["response"], json!({"@type": "type.googleapis.com/google.protobuf.Empty"}));
    assert_eq!(code(bed.call(Method::GET, GATEWAY, "", "")).err(), Some((404, "NOT_FOUND")));
    let op = bed.ok(Method::DELETE, &config, "", "");
    bed.finished(&op);
    let op = bed.ok(Method::DELETE, API, "", "");
    bed.finished(&op);
    assert_eq!(bed.store.deletions(), [GATEWAY.to_owned(), config, API.to_owned()]);
    assert_eq!(bed.get(&format!("{GLOBAL}/apis")), json!({}));
}

#[test]
fn a_resource_with_a_running_operation_takes_no_other() {
    let mut bed = Bed::new();
    bed.ok(Method::POST, &format!("{GLOBAL}/apis"), "apiId=orders", "{}");
    assert_eq!(code(bed.call(Method::DELETE, API, "", "")).err(), Some((400, "FAILED_PRECONDITION")));
    let patched = bed.call(Method::PATCH, API, "updateMask=labels", "{}");
    assert_eq!(code(patched).err(), Some((400, "FAILED_PRECONDITION")));
    bed.wait();
    assert!(bed.call(Method::DELETE, API, "", "").is_ok());
    let duplicate = bed.call(Method::POST, &format!("{GLOBAL}/apis"), "apiId=orders", "{}");
    assert_eq!(code(duplicate).err(), Some((409, "ALREADY_EXISTS")));
}

#[test]
fn an_injected_operation_failure_fails_a_create_and_leaves_a_delete_undone() {
    let mut bed = Bed::new();
    let op = bed.call_failing(Method::POST, &format!("{GLOBAL}/apis"), "apiId=orders", "{}", Some("quota"));
    let done = bed.finished(&op.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(done["error"], json!({"code": 13, "message": "quota"}));
    assert_eq!(bed.state(API), "FAILED");
    let op = bed.call_failing(Method::DELETE, API, "", "", Some("busy"));
    let done = bed.finished(&op.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(done["error"]["code"], 13);
    assert_eq!(bed.state(API), "FAILED");
    assert!(bed.store.deletions().is_empty());
}

#[test]
fn operations_are_listed_per_location_and_missing_ones_are_not_found() {
    let mut bed = Bed::new();
    bed.create_api();
    bed.create_config("v1", VALID_DOCUMENT);
    bed.create_gateway("v1");
    let global = bed.get(&format!("{GLOBAL}/operations"));
    assert_eq!(global["operations"].as_array().map(Vec::len), Some(2));
    assert_eq!(bed.get(&format!("{REGION}/operations"))["operations"].as_array().map(Vec::len), Some(1));
    let missing = bed.call(Method::GET, &format!("{GLOBAL}/operations/operation-99"), "", "");
    assert_eq!(code(missing).err(), Some((404, "NOT_FOUND")));
}

#[test]
fn lists_are_paged() {
    let mut bed = Bed::new();
    for id in ["a", "b", "c"] {
        bed.ok(Method::POST, &format!("{GLOBAL}/apis"), &format!("apiId={id}"), "{}");
    }
    let first = bed.ok(Method::GET, &format!("{GLOBAL}/apis"), "pageSize=2", "");
    assert_eq!(first["apis"].as_array().map(Vec::len), Some(2));
    let token = first["nextPageToken"].as_str().unwrap_or_default().to_owned();
    let second = bed.ok(Method::GET, &format!("{GLOBAL}/apis"), &format!("pageSize=2&pageToken={token}"), "");
    assert_eq!(second["apis"][0]["name"], format!("{GLOBAL}/apis/c"));
    assert!(second.get("nextPageToken").is_none());
}

/// The same flows through [`GcpEmulator::respond`]: routing, counters, faults and helpers.
mod emulator {
    use super::super::super::{GcpEmulator, GcpFault};
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use hyper::{HeaderMap, StatusCode, Uri, header};
    use std::time::Duration;

    async fn call(emulator: &GcpEmulator, method: Method, path_and_query: &str, body: &str) -> (StatusCode, Value) {
        let uri: Uri =
            format!("/v1/{path_and_query}").parse().unwrap_or_else(|e| panic!("bad uri {path_and_query}: {e}"));
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, header::HeaderValue::from_static("apigateway.googleapis.com"));
        let response = emulator.respond(&method, &uri, &headers, Bytes::from(body.to_owned())).await;
        let status = response.status();
        let bytes = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON: {e}")))
    }

    async fn seed(emulator: &GcpEmulator) {
        call(emulator, Method::POST, &format!("{GLOBAL}/apis?apiId=orders"), "{}").await;
        call(emulator, Method::POST, &format!("{API}/configs?apiConfigId=v1"), &config_body(VALID_DOCUMENT)).await;
        let body = json!({ "apiConfig": format!("{API}/configs/v1") }).to_string();
        call(emulator, Method::POST, &format!("{REGION}/gateways?gatewayId=edge"), &body).await;
    }

    #[tokio::test]
    async fn operations_complete_after_the_default_delay() {
        let emulator = GcpEmulator::new();
        let (status, op) = call(&emulator, Method::POST, &format!("{GLOBAL}/apis?apiId=orders"), "{}").await;
        assert_eq!((status, op["done"].clone()), (StatusCode::OK, json!(false)));
        assert_eq!(call(&emulator, Method::GET, API, "").await.1["state"], "CREATING");
        tokio::time::sleep(DEFAULT_OPERATION_DELAY + Duration::from_millis(20)).await;
        let name = op["name"].as_str().unwrap_or_default();
        assert_eq!(call(&emulator, Method::GET, name, "").await.1["done"], true);
        assert_eq!(call(&emulator, Method::GET, API, "").await.1["state"], "ACTIVE");
        assert_eq!(emulator.count("apigateway.apis.create"), 1);
        assert_eq!(emulator.count("apigateway.operations.get"), 1);
        assert_eq!(emulator.count_for("apigateway.apis.get", API), 2);
    }

    #[tokio::test]
    async fn helpers_show_resources_as_operations_leave_them() {
        let emulator = GcpEmulator::new();
        emulator.set_operation_delay(Duration::ZERO);
        call(&emulator, Method::POST, &format!("{GLOBAL}/apis?apiId=orders"), "{}").await;
        call(&emulator, Method::POST, &format!("{API}/configs?apiConfigId=v1"), &config_body(VALID_DOCUMENT)).await;
        assert_eq!(emulator.apis("p"), ["orders"]);
        assert_eq!(emulator.configs("p", "orders"), [("v1".to_owned(), "ACTIVE".to_owned())]);
        let body = json!({ "apiConfig": format!("{API}/configs/v1") }).to_string();
        call(&emulator, Method::POST, &format!("{REGION}/gateways?gatewayId=edge"), &body).await;
        let Some((config, state, host)) = emulator.gateway("p", "us-central1", "edge") else { panic!("no gateway") };
        assert_eq!((config, state), (format!("{API}/configs/v1"), "ACTIVE".to_owned()));
        assert!(host.ends_with(".uc.gateway.dev"), "{host}");
        call(&emulator, Method::DELETE, GATEWAY, "").await;
        call(&emulator, Method::DELETE, &format!("{API}/configs/v1"), "").await;
        assert_eq!(emulator.gateway("p", "us-central1", "edge"), None);
        assert_eq!(emulator.deletions(), [GATEWAY.to_owned(), format!("{API}/configs/v1")]);
        assert!(emulator.configs("p", "orders").is_empty());
    }

    #[tokio::test]
    async fn a_fail_operation_fault_fails_the_next_matching_operation_only() {
        let emulator = GcpEmulator::new();
        emulator.set_operation_delay(Duration::ZERO);
        let fault =
            GcpFault::fail_operation("apigateway.apiConfigs.create", "rollout failed").on_resource("configs/v1");
        emulator.inject_fault(fault.times(1));
        seed(&emulator).await;
        let (_, op) = call(&emulator, Method::GET, &format!("{GLOBAL}/operations/operation-2"), "").await;
        assert_eq!(op["error"], json!({ "code": 13, "message": "rollout failed" }));
        assert_eq!(emulator.configs("p", "orders"), [("v1".to_owned(), "FAILED".to_owned())]);
        // The gateway on the failed config fails too, and says why.
        let Some((_, state, _)) = emulator.gateway("p", "us-central1", "edge") else { panic!("no gateway") };
        assert_eq!(state, "FAILED");
        call(&emulator, Method::POST, &format!("{API}/configs?apiConfigId=v2"), &config_body(VALID_DOCUMENT)).await;
        assert_eq!(emulator.configs("p", "orders")[1], ("v2".to_owned(), "ACTIVE".to_owned()));
    }

    #[tokio::test]
    async fn an_injected_status_answers_before_any_operation_starts() {
        let emulator = GcpEmulator::new();
        emulator.inject_fault(GcpFault::status("apigateway.apis.create", 503).times(1));
        let (status, body) = call(&emulator, Method::POST, &format!("{GLOBAL}/apis?apiId=orders"), "{}").await;
        assert_eq!((status.as_u16(), body["error"]["status"].clone()), (503, json!("UNAVAILABLE")));
        assert!(emulator.apis("p").is_empty());
        let (status, _) = call(&emulator, Method::GET, &format!("{GLOBAL}/apis/orders:getIamPolicy"), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
