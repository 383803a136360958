//! Service Usage through the handler with a clock the tests move.

use super::Now;
use super::Query;
use super::{Call, Store, Version, handle};
use crate::emulator::gcp::rpc::Code;
use hyper::Method;
use serde_json::{Value, json};
use std::time::Duration;

const SERVICE: &str = "projects/p/services/orders.apigateway.p.cloud.goog";

fn call(
    store: &mut Store,
    method: Method,
    path: &str,
    query: &str,
    fault: Option<&str>,
    offset: Duration,
) -> Result<Value, Code> {
    let Some(call) = Call::parse(Version::V1, &method, path) else { panic!("no route for {method} {path}") };
    handle(store, &call, &Query::parse(Some(query)), b"", fault, Now::with_offset(offset)).map_err(|e| e.code)
}

/// A POST with a body at `offset`.
fn post(store: &mut Store, version: Version, path: &str, body: &str, offset: Duration) -> Result<Value, Code> {
    let Some(call) = Call::parse(version, &Method::POST, path) else { panic!("no route for POST {path}") };
    handle(store, &call, &Query::default(), body.as_bytes(), None, Now::with_offset(offset)).map_err(|e| e.code)
}

fn ok(store: &mut Store, method: Method, path: &str, query: &str, offset: Duration) -> Value {
    call(store, method.clone(), path, query, None, offset).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

#[test]
fn enabling_is_an_operation_then_the_service_reads_enabled() {
    let mut store = Store::default();
    let at = Duration::ZERO;
    assert_eq!(ok(&mut store, Method::GET, SERVICE, "", at)["state"], "DISABLED");
    let operation = ok(&mut store, Method::POST, &format!("{SERVICE}:enable"), "", at);
    assert_eq!(operation["done"], false);
    let name = operation["name"].as_str().unwrap_or_default().to_owned();
    assert!(name.starts_with("operations/acf."), "{name}");
    let later = Duration::from_millis(100);
    let done = ok(&mut store, Method::GET, &name, "", later);
    assert_eq!(done["response"]["@type"], "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse");
    assert_eq!(
        done["response"]["service"],
        json!({ "name": SERVICE, "parent": "projects/p", "config": { "name": "orders.apigateway.p.cloud.goog" }, "state": "ENABLED" })
    );
    // Enabling again has nothing to do: Google answers a done no-op operation.
    let again = ok(&mut store, Method::POST, &format!("{SERVICE}:enable"), "", later);
    assert_eq!((again["name"].as_str(), again["done"].as_bool()), (Some("operations/noop.DONE_OPERATION"), Some(true)));
}

#[test]
fn lists_filter_by_state_and_disable_flips_it() {
    let mut store = Store::default();
    store.seed(SERVICE);
    store.seed("projects/p/services/pubsub.googleapis.com");
    store.seed("projects/other/services/pubsub.googleapis.com");
    let at = Duration::ZERO;
    let operation = ok(&mut store, Method::POST, "projects/p/services/pubsub.googleapis.com:disable", "", at);
    let later = Duration::from_millis(100);
    ok(&mut store, Method::GET, operation["name"].as_str().unwrap_or_default(), "", later);
    let enabled = ok(&mut store, Method::GET, "projects/p/services", "filter=state:ENABLED", later);
    assert_eq!(enabled["services"].as_array().map(Vec::len), Some(1));
    assert_eq!(enabled["services"][0]["name"], SERVICE);
    let all = ok(&mut store, Method::GET, "projects/p/services", "", later);
    assert_eq!(all["services"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        call(&mut store, Method::GET, "projects/p/services", "filter=name:x", None, later),
        Err(Code::InvalidArgument)
    );
}

#[test]
fn a_failed_operation_leaves_the_service_disabled() {
    let mut store = Store::default();
    let operation = call(&mut store, Method::POST, &format!("{SERVICE}:enable"), "", Some("boom"), Duration::ZERO);
    let name = operation.map(|op| op["name"].as_str().unwrap_or_default().to_owned()).unwrap_or_default();
    let done = ok(&mut store, Method::GET, &name, "", Duration::from_millis(100));
    assert_eq!(done["error"], json!({ "code": 13, "message": "boom" }));
    assert!(!store.is_enabled(SERVICE));
}

#[test]
fn unknown_service_names_are_refused_like_google() {
    let mut store = Store::default();
    let result = call(&mut store, Method::POST, "projects/p/services/nodots:enable", "", None, Duration::ZERO);
    assert_eq!(result, Err(Code::PermissionDenied));
    let call = Call::parse(Version::V1, &Method::POST, &format!("{SERVICE}:enable"));
    assert_eq!(call.as_ref().map(Call::method_id), Some("serviceusage.services.enable"));
    assert_eq!(call.and_then(|c| c.requirement()).map(|r| r.resource), Some("projects/p".to_owned()));
    assert_eq!(Call::parse(Version::V1, &Method::DELETE, SERVICE), None);
}

#[test]
fn a_batch_enables_every_service_in_one_operation() {
    let mut store = Store::default();
    store.seed("projects/p/services/pubsub.googleapis.com");
    let body = r#"{"serviceIds":["pubsub.googleapis.com","secretmanager.googleapis.com","apigateway.googleapis.com"]}"#;
    let at = Duration::ZERO;
    let operation = post(&mut store, Version::V1, "projects/p/services:batchEnable", body, at);
    let operation = operation.unwrap_or_else(|e| panic!("batchEnable: {e:?}"));
    assert_eq!(operation["done"], false);
    assert_eq!(operation["metadata"]["resourceNames"].as_array().map(Vec::len), Some(3));
    assert!(!store.is_enabled("projects/p/services/secretmanager.googleapis.com"), "enabled when done");
    let later = Duration::from_millis(100);
    let done = ok(&mut store, Method::GET, operation["name"].as_str().unwrap_or_default(), "", later);
    assert_eq!(done["response"]["@type"], "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse");
    let states: Vec<&Value> =
        done["response"]["services"].as_array().into_iter().flatten().map(|s| &s["state"]).collect();
    assert_eq!(states, [&json!("ENABLED"); 3]);
    assert!(done["response"].get("failures").is_none());
    let enabled = ok(&mut store, Method::GET, "projects/p/services", "filter=state:ENABLED", later);
    assert_eq!(enabled["services"].as_array().map(Vec::len), Some(3));
    // All enabled already: Google's done no-op operation.
    let again = post(&mut store, Version::V1, "projects/p/services:batchEnable", body, later);
    assert_eq!(again.map(|op| op["done"].clone()), Ok(json!(true)));
}

#[test]
fn a_batch_with_an_unknown_service_or_too_many_enables_none() {
    let mut store = Store::default();
    let at = Duration::ZERO;
    let path = "projects/p/services:batchEnable";
    let unknown = post(&mut store, Version::V1, path, r#"{"serviceIds":["pubsub.googleapis.com","nodots"]}"#, at);
    assert_eq!(unknown, Err(Code::PermissionDenied));
    assert!(!store.is_enabled("projects/p/services/pubsub.googleapis.com"));
    assert_eq!(post(&mut store, Version::V1, path, r#"{"serviceIds":[]}"#, at), Err(Code::InvalidArgument));
    let many: Vec<String> = (0..21).map(|i| format!("s{i}.googleapis.com")).collect();
    let body = json!({ "serviceIds": many }).to_string();
    assert_eq!(post(&mut store, Version::V1, path, &body, at), Err(Code::InvalidArgument));
    assert_eq!(post(&mut store, Version::V1, path, "not json", at), Err(Code::InvalidArgument));
    let call = Call::parse(Version::V1, &Method::POST, path);
    assert_eq!(
        call.and_then(|c| c.requirement()).map(|r| (r.permission, r.resource)),
        Some(("serviceusage.services.enable", "projects/p".to_owned()))
    );
}

#[test]
fn a_service_identity_is_the_services_agent_in_a_done_operation() {
    let mut store = Store::default();
    let path = "projects/demo-project/services/secretmanager.googleapis.com:generateServiceIdentity";
    assert_eq!(Call::parse(Version::V1, &Method::POST, path), None, "v1beta1 only");
    let operation = post(&mut store, Version::V1Beta1, path, "", Duration::ZERO);
    let operation = operation.unwrap_or_else(|e| panic!("generateServiceIdentity: {e:?}"));
    let number = crate::emulator::gcp::GcpEmulator::project_number("demo-project");
    assert_eq!(
        (operation["name"].as_str(), operation["done"].as_bool()),
        (Some("operations/finished.DONE_OPERATION"), Some(true))
    );
    let identity = &operation["response"];
    assert_eq!(identity["@type"], "type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity");
    assert_eq!(identity["email"], format!("service-{number}@gcp-sa-secretmanager.iam.gserviceaccount.com"));
    let unique_id = identity["uniqueId"].as_str().unwrap_or_default();
    assert!(unique_id.len() == 21 && unique_id.bytes().all(|b| b.is_ascii_digit()), "{unique_id}");
    // By project number too; the same answer again (creating it is idempotent).
    let by_number = "projects/123456789012/services/pubsub.googleapis.com:generateServiceIdentity";
    let again = post(&mut store, Version::V1Beta1, by_number, "", Duration::ZERO);
    assert_eq!(
        again.map(|op| op["response"]["email"].clone()),
        Ok(json!("service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"))
    );
    let call = Call::parse(Version::V1Beta1, &Method::POST, path);
    assert_eq!(call.as_ref().map(Call::requirement), Some(None), "no permission needed");
    assert!(!call.is_some_and(|c| c.starts_operation()));
}
