//! The official Gateway API HTTPRoute CRD, for tests of what the product writes as HTTPRoutes.
//!
//! Its schema is not generated from our types: it comes from the npm package
//! `@kubernetes-models/gateway-api` 0.5.1 (Gateway API v1.0.0), whose
//! `gateway.networking.k8s.io/v1/HTTPRoute.js` holds the official CRD's openAPIV3Schema as a JSON
//! object literal, as a JSON-schema validator wants it: optional fields `nullable`, metadata a
//! `$ref` to ObjectMeta, no CEL rules. `.ci/run` installs the package; [`PACKAGE_ENV`] points
//! elsewhere.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::path::PathBuf;

use super::cluster::TestCluster;
use super::wait::{DEADLINE, wait_until};

/// The extracted npm package (the directory holding `gateway.networking.k8s.io/`), when not
/// `${TMPDIR:-/tmp}/secureapi-kube-tools/gateway-api/package`, where `.ci/run` puts it.
pub const PACKAGE_ENV: &str = "SECUREAPI_GATEWAY_API_PACKAGE";

/// The CRD's name.
pub const HTTPROUTE_CRD: &str = "httproutes.gateway.networking.k8s.io";

const GROUP: &str = "gateway.networking.k8s.io";
const VERSION: &str = "v1";

/// The file of the package that holds HTTPRoute v1's schema.
const SCHEMA_FILE: &str = "gateway.networking.k8s.io/v1/HTTPRoute.js";

/// What precedes the schema's object literal in [`SCHEMA_FILE`].
const SCHEMA_STATEMENT: &str = "const schema = ";

fn package_dir() -> PathBuf {
    match std::env::var_os(PACKAGE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // std's temp_dir is $TMPDIR, else /tmp: `${TMPDIR:-/tmp}` in .ci/run.
        _ => std::env::temp_dir().join("secureapi-kube-tools/gateway-api/package"),
    }
}

/// The CRD `httproutes.gateway.networking.k8s.io`: v1 served and stored, with the status
/// subresource and the official schema (see [`structural`] for the only changes made to it).
pub fn httproute_crd() -> CustomResourceDefinition {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": HTTPROUTE_CRD,
            // kube-apiserver refuses a CRD of a *.k8s.io group without it; the official CRD's value.
            "annotations": { "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466" },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": "httproutes", "singular": "httproute", "kind": "HTTPRoute", "listKind": "HTTPRouteList",
                "categories": ["gateway-api"],
            },
            "versions": [{
                "name": VERSION, "served": true, "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": structural(official_httproute_schema()) },
            }],
        },
    });
    serde_json::from_value(crd).unwrap_or_else(|e| panic!("the HTTPRoute CRD: {e}"))
}

/// HTTPRoute v1's schema exactly as the package has it (not yet a CRD schema).
pub fn official_httproute_schema() -> Value {
    let path = package_dir().join(SCHEMA_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}; `.ci/run` installs @kubernetes-models/gateway-api 0.5.1 there (or set {PACKAGE_ENV} \
             to an extracted copy of the package)",
            path.display()
        )
    });
    schema_literal(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The object literal of `const schema = {...};`: parsed as JSON up to its end, which must be
/// the statement's `;`.
fn schema_literal(text: &str) -> Result<Value, String> {
    let start = text.find(SCHEMA_STATEMENT).ok_or(format!("no `{SCHEMA_STATEMENT}`"))? + SCHEMA_STATEMENT.len();
    let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    let schema = values.next().ok_or("nothing after `const schema = `")?.map_err(|e| e.to_string())?;
    let rest = text[start + values.byte_offset()..].trim_start();
    if !rest.starts_with(';') {
        return Err(format!("the schema literal is not followed by `;`: {:.40}", rest));
    }
    Ok(schema)
}

/// The package's JSON schema made a structural CRD schema, as kube-apiserver requires; nothing
/// else changes (patterns, enums, limits and defaults stay official):
/// - root `metadata` (`oneOf: [{$ref: ObjectMeta}, {type: null}]`) becomes `{type: object}`:
///   a CRD may not describe metadata beyond name and generateName, nor use `$ref`;
/// - any other `oneOf: [S, {type: null}]` (the package's way to say nullable) becomes S with
///   `nullable: true`: structural schemas allow no types inside oneOf;
/// - `nullable` stays wherever the package put it (optional fields): kube-apiserver allows it
///   everywhere but at the root (dropped there, should the package ever put it there) and on root
///   metadata (replaced above).
fn structural(mut schema: Value) -> Value {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
        && properties.contains_key("metadata")
    {
        properties.insert("metadata".to_owned(), json!({ "type": "object" }));
    }
    let mut converted = unwrap_null_one_of(schema);
    if let Some(root) = converted.as_object_mut() {
        root.remove("nullable");
    }
    let mut refs = Vec::new();
    find_refs(&converted, "openAPIV3Schema", &mut refs);
    assert!(refs.is_empty(), "the HTTPRoute schema keeps `$ref`s, which a CRD cannot have: {refs:?}");
    converted
}

fn unwrap_null_one_of(node: Value) -> Value {
    match node {
        Value::Object(mut map) => {
            let alternatives = map.get("oneOf").and_then(Value::as_array);
            let is_null = |s: &Value| s == &json!({ "type": "null" });
            if let Some([only, null]) = alternatives.map(Vec::as_slice)
                && is_null(null)
                && let Some(only) = only.as_object().cloned()
            {
                map.remove("oneOf");
                map.extend(only);
                map.insert("nullable".to_owned(), Value::Bool(true));
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, unwrap_null_one_of(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unwrap_null_one_of).collect()),
        other => other,
    }
}

fn find_refs(node: &Value, path: &str, refs: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "$ref" => refs.push(format!("{path}: {value}")),
                    // Defaults and enums are data: a `$ref` key there is a value.
                    "default" | "enum" => {}
                    _ => find_refs(value, &format!("{path}.{key}"), refs),
                }
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| find_refs(v, &format!("{path}[{i}]"), refs)),
        _ => {}
    }
}

/// HTTPRoute v1 as a dynamic resource.
pub fn httproute_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, "HTTPRoute"), "httproutes")
}

/// HTTPRoutes in the test's namespace.
pub fn httproutes(cluster: &TestCluster) -> Api<DynamicObject> {
    Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &httproute_resource())
}

/// Installs [`httproute_crd`] unless the cluster already serves HTTPRoute v1 (a real cluster may
/// have Gateway API installed: it is used as it is, and never deleted), then waits until
/// HTTPRoutes can be listed in the test's namespace.
pub async fn install_gateway_api(cluster: &TestCluster) {
    let served = cluster.client.list_api_group_resources(&format!("{GROUP}/{VERSION}")).await;
    let serves_httproutes = served.is_ok_and(|list| list.resources.iter().any(|r| r.name == "httproutes"));
    if !serves_httproutes {
        let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
        match crds.create(&PostParams::default(), &httproute_crd()).await {
            Ok(_) => {}
            // Another test (or process) created it first: wait for it all the same.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("creating CRD {HTTPROUTE_CRD}: {e}"),
        }
    }
    let routes = httproutes(cluster);
    wait_until(&format!("HTTPRoutes listable in {}", cluster.namespace), DEADLINE, || {
        let routes = routes.clone();
        async move { routes.list(&ListParams::default().limit(1)).await.map(drop).map_err(|e| e.to_string()) }
    })
    .await;
}
