//! API Keys flows through the handlers with a clock the tests move: operations, soft delete and
//! undelete, purge, patch, lookup, errors, and the key string kept out of every other answer.

use super::clock::Now;
use super::model::{ApiTarget, KeyString};
use super::names::{Call, is_valid_key_id};
use super::rest::Query;
use super::routes;
use super::rpc::{Code, RpcError};
use super::store::{RETENTION, Store};
use hyper::Method;
use serde_json::{Value, json};
use std::time::Duration;

const KEYS: &str = "projects/p/locations/global/keys";
const KEY: &str = "projects/p/locations/global/keys/web";
const DELAY: Duration = Duration::from_millis(100);

struct Bed {
    store: Store,
    offset: Duration,
}

impl Bed {
    fn new() -> Self {
        Self { store: Store::default(), offset: Duration::ZERO }
    }

    fn now(&self) -> Now {
        Now::with_offset(self.offset)
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
        let now = self.now();
        self.store.settle(now);
        routes::handle(&mut self.store, &call, &query, body.as_bytes(), fault.map(RpcError::internal), now)
    }

    fn call(&mut self, method: Method, path: &str, query: &str, body: &str) -> Result<Value, RpcError> {
        self.call_failing(method, path, query, body, None)
    }

    fn ok(&mut self, method: Method, path: &str, query: &str, body: &str) -> Value {
        self.call(method.clone(), path, query, body).unwrap_or_else(|e| panic!("{method} {path}?{query}: {e}"))
    }

    fn code(&mut self, method: Method, path: &str, query: &str, body: &str) -> Code {
        match self.call(method.clone(), path, query, body) {
            Ok(value) => panic!("{method} {path} succeeded: {value}"),
            Err(error) => error.code,
        }
    }

    /// Moves past the operation delay and reads the operation.
    fn finish(&mut self, operation: &Value) -> Value {
        self.offset += DELAY;
        let name = operation["name"].as_str().unwrap_or_else(|| panic!("no operation: {operation}"));
        self.ok(Method::GET, name, "", "")
    }

    fn create(&mut self, id: &str, body: &str) -> Value {
        let operation = self.ok(Method::POST, KEYS, &format!("keyId={id}"), body);
        self.finish(&operation)
    }

    fn key_string(&mut self, name: &str) -> String {
        let answer = self.ok(Method::GET, &format!("{name}/keyString"), "", "");
        answer["keyString"].as_str().unwrap_or_default().to_owned()
    }
}

const RESTRICTED: &str = r#"{"displayName":"Web","restrictions":{"apiTargets":[{"service":"orders.apigateway.p.cloud.goog","methods":["Get*"]}]}}"#;

#[test]
fn a_create_is_an_operation_whose_response_is_the_key_without_its_string() {
    let mut bed = Bed::new();
    let operation = bed.ok(Method::POST, KEYS, "keyId=web", RESTRICTED);
    assert_eq!(operation["done"], false);
    assert!(operation["name"].as_str().is_some_and(|n| n.starts_with("operations/akmf.")), "{operation}");
    assert_eq!(bed.code(Method::GET, KEY, "", ""), Code::NotFound, "not there before the operation is done");
    let done = bed.finish(&operation);
    assert_eq!(done["done"], true);
    let key = &done["response"];
    assert_eq!(key["@type"], "type.googleapis.com/google.api.apikeys.v2.Key");
    assert_eq!((key["name"].as_str(), key["displayName"].as_str()), (Some(KEY), Some("Web")));
    assert_eq!(key["restrictions"]["apiTargets"][0]["methods"], json!(["Get*"]));
    assert!(key.get("keyString").is_none() && key.get("deleteTime").is_none(), "{key}");
    let got = bed.ok(Method::GET, KEY, "", "");
    assert_eq!((got["uid"].clone(), got["etag"].clone()), (key["uid"].clone(), key["etag"].clone()));
    let key_string = bed.key_string(KEY);
    assert_eq!(key_string.len(), 39);
    assert!(key_string.starts_with("AIza"), "{key_string}");
    assert!(!got.to_string().contains(&key_string) && !done.to_string().contains(&key_string));
}

#[test]
fn key_ids_are_checked_and_taken_ids_refused() {
    let mut bed = Bed::new();
    assert_eq!(bed.code(Method::POST, KEYS, "keyId=Bad_Id", "{}"), Code::InvalidArgument);
    assert_eq!(bed.code(Method::POST, KEYS, "keyId=ends-", "{}"), Code::InvalidArgument);
    assert_eq!(bed.code(Method::POST, "projects/p/locations/us-east1/keys", "keyId=k", "{}"), Code::InvalidArgument);
    bed.ok(Method::POST, KEYS, "keyId=web", "{}");
    assert_eq!(bed.code(Method::POST, KEYS, "keyId=web", "{}"), Code::AlreadyExists, "while the create runs");
    bed.offset += DELAY;
    assert_eq!(bed.code(Method::POST, KEYS, "keyId=web", "{}"), Code::AlreadyExists);
    assert!(is_valid_key_id("a") && is_valid_key_id("web-1") && !is_valid_key_id("1a") && !is_valid_key_id(""));
    assert!(!is_valid_key_id(&"a".repeat(64)) && is_valid_key_id(&"a".repeat(63)));
}

#[test]
fn a_key_without_an_id_is_named_by_its_uid() {
    let mut bed = Bed::new();
    let operation = bed.ok(Method::POST, KEYS, "", "{}");
    let key = bed.finish(&operation)["response"].clone();
    assert_eq!(key["name"].as_str().map(str::to_owned), key["uid"].as_str().map(|uid| format!("{KEYS}/{uid}")));
}

#[test]
fn a_deleted_key_is_hidden_from_lists_restorable_and_purged_after_30_days() {
    let mut bed = Bed::new();
    bed.create("web", "{}");
    bed.create("mobile", "{}");
    let key_string = bed.key_string(KEY);
    let operation = bed.ok(Method::DELETE, KEY, "", "");
    let deleted = bed.finish(&operation)["response"].clone();
    assert!(deleted["deleteTime"].is_string(), "{deleted}");
    let listed = bed.ok(Method::GET, KEYS, "", "");
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(bed.ok(Method::GET, KEYS, "showDeleted=true", "")["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(bed.code(Method::GET, &format!("{KEY}/keyString"), "", ""), Code::FailedPrecondition);
    assert_eq!(bed.code(Method::DELETE, KEY, "", ""), Code::FailedPrecondition);
    let operation = bed.ok(Method::POST, &format!("{KEY}:undelete"), "", "{}");
    let restored = bed.finish(&operation)["response"].clone();
    assert!(restored.get("deleteTime").is_none(), "{restored}");
    assert_eq!(bed.key_string(KEY), key_string, "an undeleted key keeps its string");
    assert_eq!(bed.code(Method::POST, &format!("{KEY}:undelete"), "", "{}"), Code::FailedPrecondition);

    let operation = bed.ok(Method::DELETE, KEY, "", "");
    bed.finish(&operation);
    bed.offset += RETENTION;
    assert_eq!(bed.code(Method::GET, KEY, "", ""), Code::NotFound);
    assert_eq!(bed.code(Method::POST, &format!("{KEY}:undelete"), "", "{}"), Code::NotFound);
}

#[test]
fn a_delete_with_a_stale_etag_is_aborted() {
    let mut bed = Bed::new();
    let etag = bed.create("web", "{}")["response"]["etag"].as_str().unwrap_or_default().to_owned();
    assert_eq!(bed.code(Method::DELETE, KEY, "etag=W/%22stale%22", ""), Code::Aborted);
    let operation = bed.ok(Method::DELETE, KEY, &format!("etag={}", etag.replace('"', "%22")), "");
    assert!(bed.finish(&operation)["response"]["deleteTime"].is_string());
}

#[test]
fn a_patch_changes_the_masked_fields_and_the_etag() {
    let mut bed = Bed::new();
    let before = bed.create("web", RESTRICTED)["response"].clone();
    let body = r#"{"displayName":"ignored","restrictions":{"apiTargets":[{"service":"other.example.com"}]}}"#;
    let operation = bed.ok(Method::PATCH, KEY, "updateMask=restrictions", body);
    let after = bed.finish(&operation)["response"].clone();
    assert_eq!(after["displayName"], "Web");
    assert_eq!(after["restrictions"], json!({ "apiTargets": [{ "service": "other.example.com" }] }));
    assert_ne!(after["etag"], before["etag"]);
    assert_eq!(bed.code(Method::PATCH, KEY, "updateMask=uid", "{}"), Code::InvalidArgument);
    let operation = bed.ok(Method::PATCH, KEY, "", r#"{"displayName":"New"}"#);
    assert_eq!(bed.finish(&operation)["response"]["displayName"], "New");
}

#[test]
fn a_failed_operation_changes_nothing() {
    let mut bed = Bed::new();
    let operation = bed.call_failing(Method::POST, KEYS, "keyId=web", "{}", Some("backend down"));
    let done = bed.finish(&operation.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(done["error"], json!({ "code": 13, "message": "backend down" }));
    assert_eq!(bed.code(Method::GET, KEY, "", ""), Code::NotFound);
}

#[test]
fn lookup_finds_the_key_by_its_string_and_never_echoes_it() {
    let mut bed = Bed::new();
    bed.create("web", "{}");
    let key_string = bed.key_string(KEY);
    let found = bed.ok(Method::GET, "keys:lookupKey", &format!("keyString={key_string}"), "");
    assert_eq!(found, json!({ "parent": "projects/p/locations/global", "name": KEY }));
    let missing = bed.call(Method::GET, "keys:lookupKey", "keyString=AIzaNotAKeyAtAllxxxxxxxxxxxxxxxxxxxxxx", "");
    assert!(matches!(&missing, Err(e) if e.code == Code::NotFound && !e.message.contains("AIza")), "{missing:?}");
    assert_eq!(bed.code(Method::GET, "keys:lookupKey", "", ""), Code::InvalidArgument);
}

#[test]
fn lists_page_by_name() {
    let mut bed = Bed::new();
    for id in ["a", "b", "c"] {
        bed.create(id, "{}");
    }
    let first = bed.ok(Method::GET, KEYS, "pageSize=2", "");
    assert_eq!(first["keys"].as_array().map(Vec::len), Some(2));
    let token = first["nextPageToken"].as_str().unwrap_or_default().to_owned();
    let second = bed.ok(Method::GET, KEYS, &format!("pageSize=2&pageToken={token}"), "");
    assert_eq!(second["keys"][0]["name"], format!("{KEYS}/c"));
    assert!(second.get("nextPageToken").is_none());
}

#[test]
fn paths_name_methods_permissions_and_resources() {
    let query = Query::parse(Some("keyId=web"));
    let create = Call::parse(&Method::POST, KEYS, &query);
    assert_eq!(create, Some(Call::Create("projects/p/locations/global".into(), Some("web".into()))));
    let create = create.unwrap_or_else(|| unreachable!());
    assert_eq!((create.method_id(), create.resource().as_str()), ("apikeys.keys.create", KEY));
    assert_eq!(create.requirement().map(|r| r.resource), Some("projects/p".to_owned()));
    let empty = Query::default();
    let key_string = Call::parse(&Method::GET, &format!("{KEY}/keyString"), &empty);
    assert_eq!(key_string.map(|c| c.method_id()), Some("apikeys.keys.getKeyString"));
    let undelete = Call::parse(&Method::POST, &format!("{KEY}:undelete"), &empty);
    assert_eq!(undelete.map(|c| c.starts_operation()), Some(true));
    assert_eq!(Call::parse(&Method::GET, "operations/akmf.p7-1-2", &empty).and_then(|c| c.requirement()), None);
    assert_eq!(Call::parse(&Method::PUT, KEY, &empty), None);
    assert_eq!(Call::parse(&Method::GET, "projects/p/secrets", &empty), None);
}

#[test]
fn key_strings_are_random_google_shaped_and_redacted_in_debug() {
    let (Some(a), Some(b)) = (KeyString::generate(), KeyString::generate()) else { panic!("no randomness") };
    assert_ne!(a, b);
    assert!(a.0.len() == 39 && a.0.starts_with("AIza"));
    assert!(a.0.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert!(!format!("{a:?}").contains(&a.0));
}

#[test]
fn targets_allow_their_service_and_methods_with_trailing_wildcards() {
    let target = ApiTarget { service: "s.example.com".into(), methods: vec!["Get*".into(), "List".into()] };
    assert!(target.allows("s.example.com", "GetConfig") && target.allows("s.example.com", "List"));
    assert!(!target.allows("s.example.com", "Delete") && !target.allows("t.example.com", "List"));
    let any = ApiTarget { service: "s.example.com".into(), methods: vec![] };
    assert!(any.allows("s.example.com", "Anything"));
}
