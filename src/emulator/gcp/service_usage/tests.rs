//! Service Usage through the handler with a clock the tests move.

use super::Now;
use super::Query;
use super::{Call, Store, handle};
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
    let Some(call) = Call::parse(&method, path) else { panic!("no route for {method} {path}") };
    handle(store, &call, &Query::parse(Some(query)), fault, Now::with_offset(offset)).map_err(|e| e.code)
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
    let call = Call::parse(&Method::POST, &format!("{SERVICE}:enable"));
    assert_eq!(call.as_ref().map(Call::method_id), Some("serviceusage.services.enable"));
    assert_eq!(call.and_then(|c| c.requirement()).map(|r| r.resource), Some("projects/p".to_owned()));
    assert_eq!(Call::parse(&Method::DELETE, SERVICE), None);
}
