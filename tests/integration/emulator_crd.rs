//! Custom resources follow their CRD: they appear and go with it, are defaulted, pruned and
//! validated by its schema, and print with its columns.

use crate::support::cluster::TestCluster;
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use secure_api_operator::api::SecretRef;
use serde_json::{Value, json};

fn secret_ref(spec: Value) -> SecretRef {
    serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1",
        "kind": "SecretRef",
        "metadata": { "name": "db" },
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("secretref: {e}"))
}

async fn create_raw(cluster: &TestCluster, spec: Value) -> Result<SecretRef, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &secretref_resource());
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = api.create(&PostParams::default(), &object).await?;
    serde_json::from_value(serde_json::to_value(created).unwrap_or_default()).map_err(kube::Error::SerdeError)
}

fn secretref_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("secureapi.dev", "v1alpha1", "SecretRef"))
}

fn invalid_message(result: Result<SecretRef, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 422 && status.reason == "Invalid" => status.message,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_custom_resource_is_served_once_its_crd_is_established() {
    let cluster = TestCluster::with_crds("crd-serve").await;
    let discovery = Discovery::new(cluster.client.clone()).run().await.unwrap_or_else(|e| panic!("discovery: {e}"));
    let served = discovery.groups().any(|g| g.name() == "secureapi.dev");
    assert!(served, "discovery lists secureapi.dev");
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &secret_ref(json!({ "secret": "api-config-db" })))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
}

#[tokio::test]
async fn deleting_a_crd_removes_its_resources_with_emulator_hooks() {
    let cluster = TestCluster::start("crd-delete").await;
    let Some(_) = cluster.hooks() else { return };
    cluster.install_crds().await;
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &secret_ref(json!({ "secret": "api-config-db" })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    crds.delete("secretrefs.secureapi.dev", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the CRD and its resources to go", DEADLINE, || async {
        let gone = crds.get_opt("secretrefs.secureapi.dev").await.ok().flatten().is_none();
        let served = api.get("db").await;
        (gone && matches!(served, Err(kube::Error::Api(ref s)) if s.code == 404)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn schema_defaults_fill_absent_fields() {
    let cluster = TestCluster::with_crds("crd-defaults").await;
    let created = create_raw(&cluster, json!({ "secret": "api-config-db" })).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.spec.version, "latest");
    assert_eq!(
        std::time::Duration::from(created.spec.refresh_interval),
        std::time::Duration::from_secs(3600),
        "the default, 1h"
    );
}

#[tokio::test]
async fn unknown_fields_are_pruned() {
    let cluster = TestCluster::with_crds("crd-prune").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &secretref_resource());
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": "api-config-db", "bogus": 1, "target": { "alsoBogus": true } },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(created.data["spec"].get("bogus").is_none(), "{}", created.data);
    assert!(created.data["spec"]["target"].get("alsoBogus").is_none(), "{}", created.data);
}

#[tokio::test]
async fn preserve_unknown_fields_keeps_what_it_covers_with_emulator_hooks() {
    let cluster = TestCluster::start("crd-preserve").await;
    let Some(_) = cluster.hooks() else { return };
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": "widgets.example.com" },
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "versions": [{ "name": "v1", "served": true, "storage": true, "schema": { "openAPIV3Schema": {
                "type": "object",
                "properties": { "spec": { "type": "object", "properties": {
                    "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                    "fixed": { "type": "object", "properties": { "a": { "type": "string" } } },
                } } },
            } } }],
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap_or_else(|e| panic!("{e}"));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" },
        "spec": { "free": { "anything": { "deep": 1 } }, "fixed": { "a": "x", "b": "y" } },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.data["spec"]["free"], json!({ "anything": { "deep": 1 } }));
    assert_eq!(created.data["spec"]["fixed"], json!({ "a": "x" }));
}

#[tokio::test]
async fn a_missing_required_field_is_422_naming_it() {
    let cluster = TestCluster::with_crds("crd-required").await;
    let message = invalid_message(create_raw(&cluster, json!({ "version": "latest" })).await);
    assert!(message.contains("spec.secret: Required value"), "{message}");
}

#[tokio::test]
async fn a_pattern_mismatch_is_422_naming_the_field() {
    let cluster = TestCluster::with_crds("crd-pattern").await;
    let message =
        invalid_message(create_raw(&cluster, json!({ "secret": "api-config-db", "version": "not a version!" })).await);
    assert!(message.contains("spec.version"), "{message}");
    assert!(message.contains("should match"), "{message}");
}

#[tokio::test]
async fn an_unsupported_enum_value_is_422_naming_the_field() {
    let cluster = TestCluster::with_crds("crd-enum").await;
    let message = invalid_message(create_raw(&cluster, json!({ "secret": "api-config-db", "format": "xml" })).await);
    assert!(message.contains("spec.format: Unsupported value: \"xml\""), "{message}");
}

#[tokio::test]
async fn a_wrong_type_is_422_naming_the_field() {
    let cluster = TestCluster::with_crds("crd-type").await;
    let message = invalid_message(create_raw(&cluster, json!({ "secret": 42 })).await);
    assert!(message.contains("spec.secret"), "{message}");
    assert!(message.contains("must be of type string"), "{message}");
}

#[tokio::test]
async fn numbers_outside_minimum_and_maximum_are_422() {
    let cluster = TestCluster::with_crds("crd-range").await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("secureapi.dev", "v1alpha1", "SecureApiService"));
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "svc" },
        "spec": { "image": "example.com/api:1", "port": 70000 },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    match api.create(&PostParams::default(), &object).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert!(status.message.contains("spec.port"), "{}", status.message);
            assert!(status.message.contains("less than or equal to 65535"), "{}", status.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test]
async fn strings_longer_than_max_length_are_422() {
    let cluster = TestCluster::with_crds("crd-length").await;
    let long = "a".repeat(600);
    let message = invalid_message(create_raw(&cluster, json!({ "secret": long })).await);
    assert!(message.contains("spec.secret: Too long"), "{message}");
}

#[tokio::test]
async fn printer_columns_come_back_as_a_table() {
    let cluster = TestCluster::with_crds("crd-table").await;
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &secret_ref(json!({ "secret": "api-config-db" })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    api.patch_status("db", &PatchParams::default(), &Patch::Merge(json!({ "status": { "syncedVersion": "7" } })))
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    let request =
        hyper::Request::get(format!("/apis/secureapi.dev/v1alpha1/namespaces/{}/secretrefs", cluster.namespace))
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
            .body(Vec::new())
            .unwrap_or_else(|e| panic!("{e}"));
    let table: Value = cluster.client.request(request).await.unwrap_or_else(|e| panic!("table: {e}"));
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> =
        table["columnDefinitions"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(columns, ["Name", "Ready", "Reason", "Version", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "db");
    assert_eq!(table["rows"][0]["cells"][3], "7");
}
