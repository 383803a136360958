//! The official Gateway API HTTPRoute CRD (support::gateway_api) installs, and HTTPRoutes with
//! weighted backendRefs (a canary's traffic split) are defaulted and validated by its schema, on
//! the emulator as on a real cluster.

use crate::support::cluster::TestCluster;
use crate::support::gateway_api::{httproute_crd, httproutes, install_gateway_api, official_httproute_schema};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const MANAGER: &str = "secureapi-tests";

fn route(backends: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": "api" },
        "spec": { "parentRefs": [{ "name": "gw" }], "rules": [{ "backendRefs": backends }] },
    })
}

fn split(stable: i64, canary: i64) -> Value {
    route(json!([
        { "name": "api", "port": 80, "weight": stable },
        { "name": "api-canary", "port": 80, "weight": canary },
    ]))
}

async fn apply(cluster: &TestCluster, route: &Value) -> Result<DynamicObject, kube::Error> {
    httproutes(cluster).patch("api", &PatchParams::apply(MANAGER).force(), &Patch::Apply(route)).await
}

/// The first rule's backends as `name=weight`.
fn weights(route: &DynamicObject) -> Vec<String> {
    let backends = route.data["spec"]["rules"][0]["backendRefs"].as_array().cloned().unwrap_or_default();
    backends.iter().map(|b| format!("{}={}", b["name"].as_str().unwrap_or("?"), b["weight"])).collect()
}

fn invalid_message(result: Result<DynamicObject, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 422 && status.reason == "Invalid" => status.message,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[test]
fn the_crd_schema_is_the_packages_with_only_metadata_made_structural() {
    let crd = httproute_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("httproutes.gateway.networking.k8s.io"));
    let [version] = crd.spec.versions.as_slice() else { panic!("one version: {:?}", crd.spec.versions) };
    assert!(version.name == "v1" && version.served && version.storage);
    assert!(version.subresources.as_ref().is_some_and(|s| s.status.is_some()), "the status subresource");
    let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.clone());
    let mut official = official_httproute_schema();
    official["properties"]["metadata"] = json!({ "type": "object" });
    let official: JSONSchemaProps = serde_json::from_value(official).unwrap_or_else(|e| panic!("{e}"));
    assert!(schema == Some(official), "the CRD's schema differs from the package's beyond metadata");
}

#[tokio::test]
async fn a_weighted_httproute_applies_with_the_official_defaults() {
    let cluster = TestCluster::start("gateway-api-split").await;
    install_gateway_api(&cluster).await;

    let applied = apply(&cluster, &split(90, 10)).await.unwrap_or_else(|e| panic!("applying 90/10: {e}"));
    assert_eq!(weights(&applied), ["api=90", "api-canary=10"]);
    let read = httproutes(&cluster).get("api").await.unwrap_or_else(|e| panic!("reading the route: {e}"));
    assert_eq!(weights(&read), weights(&applied));
    let spec = &read.data["spec"];
    assert_eq!(spec["parentRefs"], json!([{ "name": "gw", "group": "gateway.networking.k8s.io", "kind": "Gateway" }]));
    for backend in spec["rules"][0]["backendRefs"].as_array().into_iter().flatten() {
        assert_eq!((&backend["group"], &backend["kind"]), (&json!(""), &json!("Service")), "{backend}");
    }
    assert_eq!(spec["rules"][0]["matches"], json!([{ "path": { "type": "PathPrefix", "value": "/" } }]));
    let managers = read.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.as_deref());
    assert!(managers.collect::<Vec<_>>().contains(&MANAGER), "{:?}", read.metadata.managed_fields);

    apply(&cluster, &split(50, 50)).await.unwrap_or_else(|e| panic!("applying 50/50: {e}"));
    let read = httproutes(&cluster).get("api").await.unwrap_or_else(|e| panic!("reading the route: {e}"));
    assert_eq!(weights(&read), ["api=50", "api-canary=50"]);

    let unweighted = route(json!([{ "name": "api", "port": 80 }]));
    let applied = apply(&cluster, &unweighted).await.unwrap_or_else(|e| panic!("applying one backend: {e}"));
    assert_eq!(weights(&applied), ["api=1"], "weight defaults to 1");
}

#[tokio::test]
async fn values_breaking_the_official_schema_are_refused_naming_the_field() {
    let cluster = TestCluster::start("gateway-api-invalid").await;
    install_gateway_api(&cluster).await;

    let message = invalid_message(apply(&cluster, &split(-1, 10)).await);
    let field = "spec.rules[0].backendRefs[0].weight";
    assert!(
        message.contains(&format!("{field}: Invalid value: -1: {field} in body should be greater than or equal to 0")),
        "{message}"
    );

    let message = invalid_message(apply(&cluster, &split(90, 1_000_001)).await);
    let field = "spec.rules[0].backendRefs[1].weight";
    let expected = format!("{field}: Invalid value: 1000001: {field} in body should be less than or equal to 1000000");
    assert!(message.contains(&expected), "{message}");

    let mut bad_host = split(90, 10);
    bad_host["spec"]["hostnames"] = json!(["Not_A.Host"]);
    let message = invalid_message(apply(&cluster, &bad_host).await);
    assert!(
        message.contains(r#"spec.hostnames[0]: Invalid value: "Not_A.Host": spec.hostnames[0] in body should match"#),
        "{message}"
    );

    let mut too_many = split(90, 10);
    too_many["spec"]["rules"] = json!(vec![json!({ "backendRefs": [{ "name": "api", "port": 80 }] }); 17]);
    let message = invalid_message(apply(&cluster, &too_many).await);
    assert!(message.contains("spec.rules: Too many: 17: must have at most 16 items"), "{message}");

    let absent = httproutes(&cluster).get_opt("api").await.unwrap_or_else(|e| panic!("reading the route: {e}"));
    assert!(absent.is_none(), "nothing refused was stored: {absent:?}");
}
