//! Patch flavours and server-side apply, as kube-apiserver implements them.

use crate::support::cluster::TestCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ResourceRequirements};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": containers } },
        },
    })
}

fn containers(d: &Deployment) -> Value {
    serde_json::to_value(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|s| &s.containers))
        .unwrap_or_default()
}

async fn create_deployment(api: &Api<Deployment>, containers: Value) {
    let object: Deployment = serde_json::from_value(deployment(containers)).unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("create: {e}"));
}

/// Creates ConfigMap `a` with `data`.
async fn create_config_map(api: &Api<ConfigMap>, data: Value) {
    let object: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "a" }, "data": data })).unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn json_merge_patch_merges_maps_and_null_deletes() {
    let cluster = TestCluster::start("merge").await;
    let api: Api<ConfigMap> = cluster.api();
    create_config_map(&api, json!({ "x": "1", "y": "2" })).await;
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({ "data": { "x": null, "z": "3" } })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(patched.data).unwrap_or_default(), json!({ "y": "2", "z": "3" }));
}

#[tokio::test]
async fn json_patch_applies_operations_and_a_failed_test_changes_nothing() {
    let cluster = TestCluster::start("jsonpatch").await;
    let api: Api<ConfigMap> = cluster.api();
    create_config_map(&api, json!({ "x": "1" })).await;
    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/data/x", "value": "1" },
        { "op": "replace", "path": "/data/x", "value": "2" },
        { "op": "add", "path": "/data/y", "value": "3" },
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let patched =
        api.patch("a", &PatchParams::default(), &Patch::<()>::Json(ops)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(patched.data).unwrap_or_default(), json!({ "x": "2", "y": "3" }));
    let failing: json_patch::Patch = serde_json::from_value(
        json!([{ "op": "test", "path": "/data/x", "value": "1" }, { "op": "remove", "path": "/data/y" }]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let result = api.patch("a", &PatchParams::default(), &Patch::<()>::Json(failing)).await;
    assert!(matches!(result, Err(kube::Error::Api(ref s)) if s.code == 422), "{result:?}");
    let unchanged = api.get("a").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(unchanged.data).unwrap_or_default(), json!({ "x": "2", "y": "3" }));
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_and_env_by_name() {
    let cluster = TestCluster::start("strategic").await;
    let api: Api<Deployment> = cluster.api();
    create_deployment(
        &api,
        json!([{ "name": "app", "image": "app:1", "env": [{ "name": "A", "value": "1" }] }, { "name": "proxy", "image": "proxy:1" }]),
    )
    .await;
    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "app", "image": "app:2", "env": [{ "name": "B", "value": "2" }] }
    ] } } } });
    let patched =
        api.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap_or_else(|e| panic!("{e}"));
    let containers = containers(&patched);
    assert_eq!(containers[0]["image"], "app:2");
    // kube-apiserver puts an entry the live list has not before the live ones.
    assert_eq!(containers[0]["env"], json!([{ "name": "B", "value": "2" }, { "name": "A", "value": "1" }]));
    assert_eq!(containers[1]["name"], "proxy", "the other container is kept");
}

#[tokio::test]
async fn a_container_applied_without_resources_reads_back_with_empty_resources() {
    let cluster = TestCluster::start("resources").await;
    let api: Api<Deployment> = cluster.api();
    let body = deployment(json!([{ "name": "app", "image": "app:1" }]));
    let applied =
        api.patch("web", &PatchParams::apply("test"), &Patch::Apply(body)).await.unwrap_or_else(|e| panic!("{e}"));
    let read = api.get("web").await.unwrap_or_else(|e| panic!("{e}"));
    for (answer, deployment) in [("the apply's answer", &applied), ("a read", &read)] {
        let spec = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let resources = spec.and_then(|s| s.containers.first()).map(|c| c.resources.clone());
        assert_eq!(resources, Some(Some(ResourceRequirements::default())), "{answer}: `resources: {{}}`");
    }
}

#[tokio::test]
async fn server_side_apply_that_drops_a_list_removes_the_key_without_leaving_null() {
    let cluster = TestCluster::start("ssa-drop-list").await;
    let raw: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &ApiResource::erase::<Deployment>(&()));
    let with_ports = deployment(json!([{ "name": "app", "image": "app:1", "ports": [{ "containerPort": 8080 }] }]));
    raw.patch("web", &PatchParams::apply("test"), &Patch::Apply(with_ports)).await.unwrap_or_else(|e| panic!("{e}"));
    let without_ports = deployment(json!([{ "name": "app", "image": "app:1" }]));
    let applied = raw
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(without_ports))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let read = raw.get("web").await.unwrap_or_else(|e| panic!("{e}"));
    for (answer, object) in [("the apply's answer", &applied), ("a read", &read)] {
        let container = &object.data["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "app", "{answer}: {container}");
        assert!(container.get("ports").is_none(), "{answer}: no `ports` key at all: {container}");
    }
}

fn apply_config(labels: Value, replicas: Option<i64>) -> Value {
    let mut config = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a", "labels": labels } });
    if let Some(replicas) = replicas {
        config["data"] = json!({ "replicas": replicas.to_string() });
    }
    config
}

#[tokio::test]
async fn server_side_apply_merges_fields_of_several_managers() {
    let cluster = TestCluster::start("ssa-merge").await;
    let api: Api<ConfigMap> = cluster.api();
    api.patch("a", &PatchParams::apply("alice"), &Patch::Apply(apply_config(json!({ "a": "1" }), None)))
        .await
        .unwrap_or_else(|e| panic!("alice: {e}"));
    let both = api
        .patch("a", &PatchParams::apply("bob"), &Patch::Apply(apply_config(json!({ "b": "2" }), Some(3))))
        .await
        .unwrap_or_else(|e| panic!("bob: {e}"));
    let labels = serde_json::to_value(both.metadata.labels).unwrap_or_default();
    assert_eq!(labels, json!({ "a": "1", "b": "2" }));
    let managers: Vec<_> =
        both.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.contains(&"alice".to_string()) && managers.contains(&"bob".to_string()), "{managers:?}");
}

#[tokio::test]
async fn server_side_apply_removes_fields_a_manager_stops_applying() {
    let cluster = TestCluster::start("ssa-remove").await;
    let api: Api<ConfigMap> = cluster.api();
    api.patch("a", &PatchParams::apply("alice"), &Patch::Apply(apply_config(json!({ "a": "1", "b": "2" }), Some(1))))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = api
        .patch("a", &PatchParams::apply("alice"), &Patch::Apply(apply_config(json!({ "a": "1" }), None)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(after.metadata.labels).unwrap_or_default(), json!({ "a": "1" }));
    assert!(after.data.unwrap_or_default().is_empty(), "data.replicas is gone");
}

#[tokio::test]
async fn server_side_apply_conflicts_are_409_unless_forced() {
    let cluster = TestCluster::start("ssa-conflict").await;
    let api: Api<ConfigMap> = cluster.api();
    api.patch("a", &PatchParams::apply("alice"), &Patch::Apply(apply_config(json!({}), Some(1))))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let conflict = api.patch("a", &PatchParams::apply("bob"), &Patch::Apply(apply_config(json!({}), Some(2)))).await;
    match conflict {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(status.message.contains("alice"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api
        .patch("a", &PatchParams::apply("bob").force(), &Patch::Apply(apply_config(json!({}), Some(2))))
        .await
        .unwrap_or_else(|e| panic!("forced: {e}"));
    assert_eq!(forced.data.unwrap_or_default().get("replicas").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn server_side_apply_of_an_unchanged_config_writes_nothing() {
    let cluster = TestCluster::start("ssa-noop").await;
    let api: Api<ConfigMap> = cluster.api();
    let config = apply_config(json!({ "a": "1" }), Some(1));
    let first =
        api.patch("a", &PatchParams::apply("alice"), &Patch::Apply(&config)).await.unwrap_or_else(|e| panic!("{e}"));
    let second =
        api.patch("a", &PatchParams::apply("alice"), &Patch::Apply(&config)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.metadata.resource_version, second.metadata.resource_version);
}
