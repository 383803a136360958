//! The Kubernetes API semantics the emulator must share with kube-apiserver, one test per
//! behaviour. They run against a real cluster too when `SECUREAPI_E2E_KUBECONFIG` is set.

use crate::support::cluster::TestCluster;
use crate::support::wait::{DEADLINE, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::Status;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The ConfigMap every namespace of a cluster holds: kube-controller-manager's root-CA publisher
/// writes it (the emulator's simulated one in these tests). Not a test's own.
const ROOT_CA: &str = "kube-root-ca.crt";

/// The names of the listed ConfigMaps a test made, in list order.
fn own_names(items: Vec<ConfigMap>) -> Vec<String> {
    items.into_iter().filter_map(|c| c.metadata.name).filter(|name| name != ROOT_CA).collect()
}

/// Whether a watch event is about the namespace's root-CA ConfigMap.
fn is_root_ca(event: &WatchEvent<ConfigMap>) -> bool {
    match event {
        WatchEvent::Added(c) | WatchEvent::Modified(c) | WatchEvent::Deleted(c) => {
            c.metadata.name.as_deref() == Some(ROOT_CA)
        }
        WatchEvent::Bookmark(_) | WatchEvent::Error(_) => false,
    }
}

fn config_map(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels }, "data": data }))
        .unwrap_or_else(|e| panic!("config map: {e}"))
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": image }] },
            },
        },
    }))
    .unwrap_or_else(|e| panic!("deployment: {e}"))
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv(meta: &kube::api::ObjectMeta) -> u64 {
    meta.resource_version.as_deref().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no resourceVersion"))
}

async fn create(api: &Api<ConfigMap>, name: &str, labels: Value) -> ConfigMap {
    api.create(&PostParams::default(), &config_map(name, labels, json!({ "k": "v" })))
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

#[tokio::test]
async fn create_get_list_update_delete_round_trip() {
    let cluster = TestCluster::start("crud").await;
    let api: Api<ConfigMap> = cluster.api();
    let created = create(&api, "a", json!({})).await;

    let mut fetched = api.get("a").await.unwrap_or_else(|e| panic!("get: {e}"));
    assert_eq!(fetched.data, created.data);
    fetched.data = Some([("k".to_string(), "w".to_string())].into());
    let updated = api.replace("a", &PostParams::default(), &fetched).await.unwrap_or_else(|e| panic!("replace: {e}"));
    assert!(rv(&updated.metadata) > rv(&created.metadata));

    let listed = api.list(&ListParams::default()).await.unwrap_or_else(|e| panic!("list: {e}")).items;
    assert_eq!(own_names(listed), ["a"]);
    api.delete("a", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(api_error(api.get("a").await).code, 404);
}

#[tokio::test]
async fn uid_and_creation_timestamp_are_set_by_the_server() {
    let cluster = TestCluster::start("uid").await;
    let api: Api<ConfigMap> = cluster.api();
    let mut object = config_map("a", json!({}), json!({}));
    object.metadata.uid = Some("client-chosen".into());
    let a = api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    let b = create(&api, "b", json!({})).await;
    let (uid_a, uid_b) = (a.metadata.uid.unwrap_or_default(), b.metadata.uid.unwrap_or_default());
    assert!(uid_a != "client-chosen" && uid_a.len() == 36 && uid_a != uid_b, "{uid_a} {uid_b}");
    assert!(a.metadata.creation_timestamp.is_some());
}

#[tokio::test]
async fn resource_versions_increase_monotonically_across_kinds() {
    let cluster = TestCluster::start("rv").await;
    let maps: Api<ConfigMap> = cluster.api();
    let deployments: Api<Deployment> = cluster.api();
    let a = create(&maps, "a", json!({})).await;
    let d = deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await
        .unwrap_or_else(|e| panic!("deployment: {e}"));
    let b = create(&maps, "b", json!({})).await;
    assert!(rv(&a.metadata) < rv(&d.metadata) && rv(&d.metadata) < rv(&b.metadata));
}

#[tokio::test]
async fn creating_an_existing_name_is_409_already_exists() {
    let cluster = TestCluster::start("exists").await;
    let api: Api<ConfigMap> = cluster.api();
    create(&api, "a", json!({})).await;
    let error = api_error(api.create(&PostParams::default(), &config_map("a", json!({}), json!({}))).await);
    assert_eq!((error.code, error.reason.as_str()), (409, "AlreadyExists"));
    assert!(error.message.contains("\"a\" already exists"), "{}", error.message);
}

#[tokio::test]
async fn a_create_past_an_object_count_quota_is_403_exceeded_quota() {
    let cluster = TestCluster::start("quota").await;
    cluster.enforced_quota("one-deployment", json!({ "count/deployments.apps": "1" })).await;
    let api: Api<Deployment> = cluster.api();
    api.create(&PostParams::default(), &deployment("a", "nginx")).await.unwrap_or_else(|e| panic!("first: {e}"));
    let refused = api_error(api.create(&PostParams::default(), &deployment("b", "nginx")).await);
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        "deployments.apps \"b\" is forbidden: exceeded quota: one-deployment, requested: count/deployments.apps=1, \
         used: count/deployments.apps=1, limited: count/deployments.apps=1"
    );
}

#[tokio::test]
async fn a_quota_of_zero_secrets_refuses_a_secret_once_its_status_holds_the_limit() {
    let cluster = TestCluster::start("quota-zero").await;
    cluster.enforced_quota("no-secrets", json!({ "count/secrets": "0" })).await;
    let secret: Secret = serde_json::from_value(json!({ "metadata": { "name": "s" }, "stringData": { "k": "v" } }))
        .unwrap_or_else(|e| panic!("secret: {e}"));
    let refused = api_error(cluster.api::<Secret>().create(&PostParams::default(), &secret).await);
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        "secrets \"s\" is forbidden: exceeded quota: no-secrets, requested: count/secrets=1, \
         used: count/secrets=0, limited: count/secrets=0"
    );
}

#[tokio::test]
async fn a_label_value_over_63_bytes_is_422_invalid() {
    let cluster = TestCluster::start("label-value").await;
    let api: Api<ConfigMap> = cluster.api();
    let long = "v".repeat(64);
    let error = api_error(api.create(&PostParams::default(), &config_map("a", json!({ "k": long }), json!({}))).await);
    assert_eq!((error.code, error.reason.as_str()), (422, "Invalid"));
    let expected = format!(
        "ConfigMap \"a\" is invalid: metadata.labels: Invalid value: \"{long}\": must be no more than 63 bytes"
    );
    assert_eq!(error.message, expected);
    create(&api, "b", json!({ "k": "v".repeat(63) })).await;
}

#[tokio::test]
async fn a_stale_resource_version_is_409_conflict() {
    let cluster = TestCluster::start("stale").await;
    let api: Api<ConfigMap> = cluster.api();
    let stale = create(&api, "a", json!({})).await;
    let mut newer = stale.clone();
    newer.data = Some([("k".to_string(), "1".to_string())].into());
    api.replace("a", &PostParams::default(), &newer).await.unwrap_or_else(|e| panic!("first replace: {e}"));
    let error = api_error(api.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((error.code, error.reason.as_str()), (409, "Conflict"));
    assert!(error.message.contains("the object has been modified"), "{}", error.message);
}

#[tokio::test]
async fn errors_carry_status_bodies_404_400_422() {
    let cluster = TestCluster::start("errors").await;
    let api: Api<ConfigMap> = cluster.api();
    let missing = api_error(api.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"nope\" not found");

    let bad_selector = api_error(api.list(&ListParams::default().labels("a in (b")).await);
    assert_eq!((bad_selector.code, bad_selector.reason.as_str()), (400, "BadRequest"));

    let invalid = api_error(api.create(&PostParams::default(), &config_map("Not_Valid", json!({}), json!({}))).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(invalid.message.contains("metadata.name"), "{}", invalid.message);
}

#[tokio::test]
async fn namespaces_must_exist_and_the_defaults_do() {
    let cluster = TestCluster::start("ns").await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    for name in ["default", "kube-system", "kube-public"] {
        assert!(namespaces.get(name).await.is_ok(), "namespace {name} exists");
    }
    let nowhere: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "does-not-exist");
    let error = api_error(nowhere.create(&PostParams::default(), &config_map("a", json!({}), json!({}))).await);
    assert_eq!(error.code, 404);
    assert_eq!(error.message, "namespaces \"does-not-exist\" not found");
}

#[tokio::test]
async fn generation_moves_only_on_spec_changes() {
    let cluster = TestCluster::start("generation").await;
    let api: Api<Deployment> = cluster.api();
    let created =
        api.create(&PostParams::default(), &deployment("web", "nginx:1")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.metadata.generation, Some(1));
    let labelled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })))
        .await
        .unwrap_or_else(|e| panic!("label: {e}"));
    assert_eq!(labelled.metadata.generation, Some(1), "metadata writes keep the generation");
    let status = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({ "status": { "replicas": 3 } })))
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(status.metadata.generation, Some(1), "status writes keep the generation");
    let scaled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "replicas": 4 } })))
        .await
        .unwrap_or_else(|e| panic!("scale: {e}"));
    assert_eq!(scaled.metadata.generation, Some(2), "spec writes bump the generation");
}

#[tokio::test]
async fn status_subresource_endpoints_ignore_each_others_part() {
    let cluster = TestCluster::start("status").await;
    let api: Api<Deployment> = cluster.api();
    api.create(&PostParams::default(), &deployment("web", "nginx:1")).await.unwrap_or_else(|e| panic!("{e}"));
    let via_main = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({ "status": { "replicas": 7 } })))
        .await
        .unwrap_or_else(|e| panic!("main: {e}"));
    assert_ne!(via_main.status.and_then(|s| s.replicas), Some(7), "the main endpoint ignores status");
    let via_status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 9 }, "status": { "replicas": 5 } })),
        )
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(via_status.status.and_then(|s| s.replicas), Some(5));
    assert_ne!(via_status.spec.and_then(|s| s.replicas), Some(9), "the status endpoint ignores spec");
}

#[tokio::test]
async fn list_limit_and_continue_page_through_everything() {
    let cluster = TestCluster::start("paging").await;
    let api: Api<ConfigMap> = cluster.api();
    for i in 0..7 {
        create(&api, &format!("cm-{i}"), json!({})).await;
    }
    let mut seen = BTreeSet::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap_or_else(|e| panic!("page: {e}"));
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = ListParams::default().limit(3).continue_token(&token),
            None => break,
        }
    }
    // Seven of ours, with or without the namespace's root-CA ConfigMap: three pages of three.
    assert_eq!(pages, 3);
    seen.remove(ROOT_CA);
    assert_eq!(seen.len(), 7);
}

#[tokio::test]
async fn label_selectors_match_equality_and_set_based_requirements() {
    let cluster = TestCluster::start("labels").await;
    let api: Api<ConfigMap> = cluster.api();
    create(&api, "a", json!({ "tier": "web", "env": "prod" })).await;
    create(&api, "b", json!({ "tier": "db", "env": "prod" })).await;
    create(&api, "c", json!({ "tier": "web" })).await;
    let names = |selector: &'static str| {
        let api = api.clone();
        async move {
            let list =
                api.list(&ListParams::default().labels(selector)).await.unwrap_or_else(|e| panic!("{selector}: {e}"));
            own_names(list.items)
        }
    };
    assert_eq!(names("tier=web").await, ["a", "c"]);
    assert_eq!(names("tier!=web").await, ["b"]);
    assert_eq!(names("tier in (db,cache),env").await, ["b"]);
    assert_eq!(names("tier notin (db),!env").await, ["c"]);
}

#[tokio::test]
async fn field_selectors_match_name_and_namespace() {
    let cluster = TestCluster::start("fields").await;
    let api: Api<ConfigMap> = cluster.api();
    create(&api, "a", json!({})).await;
    create(&api, "b", json!({})).await;
    let list = api.list(&ListParams::default().fields("metadata.name=b")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list.items.len(), 1);
    let all: Api<ConfigMap> = Api::all(cluster.client.clone());
    let selector = format!("metadata.namespace={},metadata.name!=a", cluster.namespace);
    let list = all.list(&ListParams::default().fields(&selector)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(own_names(list.items), ["b"]);
    let error = api_error(api.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(error.code, 400);
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_later_changes_in_order() {
    let cluster = TestCluster::start("watch").await;
    let api: Api<ConfigMap> = cluster.api();
    let first = create(&api, "a", json!({})).await;
    create(&api, "b", json!({})).await;
    api.delete("a", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    // The namespace's root-CA ConfigMap may be published after `a`: it is not the test's.
    let events: Vec<String> = api
        .watch(&WatchParams::default().timeout(2), &rv(&first.metadata).to_string())
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"))
        .try_filter(|event| std::future::ready(!is_root_ca(event)))
        .take(2)
        .map_ok(|event| match event {
            WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.unwrap_or_default()),
            WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.unwrap_or_default()),
            other => format!("{other:?}"),
        })
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("events: {e}"));
    assert_eq!(events, ["ADDED b", "DELETED a"]);
}

#[tokio::test]
async fn watch_reports_objects_leaving_a_label_selector_as_deleted() {
    let cluster = TestCluster::start("leave").await;
    let api: Api<ConfigMap> = cluster.api();
    let created = create(&api, "a", json!({ "keep": "yes" })).await;
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "keep": null } } })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = api
        .watch(&WatchParams::default().labels("keep=yes").timeout(2), &rv(&created.metadata).to_string())
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"))
        .boxed();
    let event = stream.try_next().await.unwrap_or_else(|e| panic!("event: {e}"));
    assert!(matches!(event, Some(WatchEvent::Deleted(_))), "{event:?}");
}

#[tokio::test]
async fn watch_timeout_seconds_ends_the_stream() {
    let cluster = TestCluster::start("timeout").await;
    let api: Api<ConfigMap> = cluster.api();
    let created = create(&api, "a", json!({})).await;
    let started = std::time::Instant::now();
    let stream = api
        .watch(&WatchParams::default().timeout(1), &rv(&created.metadata).to_string())
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"));
    let events: Vec<_> = stream.try_filter(|event| std::future::ready(!is_root_ca(event))).collect().await;
    assert!(events.is_empty(), "no changes of ours, no events: {events:?}");
    assert!(started.elapsed() < DEADLINE, "the stream ended on its own");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_the_last_is_removed() {
    let cluster = TestCluster::start("finalizers").await;
    let api: Api<ConfigMap> = cluster.api();
    let mut object = config_map("held", json!({}), json!({}));
    object.metadata.finalizers = Some(vec!["secureapi.dev/test".into()]);
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    api.delete("held", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("delete: {e}"));
    let held = api.get("held").await.unwrap_or_else(|e| panic!("still there: {e}"));
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "finalizers": null } })))
        .await
        .unwrap_or_else(|e| panic!("release: {e}"));
    wait_for("the object to go", DEADLINE, || async {
        api.get_opt("held").await.ok().flatten().is_none().then_some(())
    })
    .await;
}

async fn owner_and_child(api: &Api<ConfigMap>) -> (ConfigMap, ConfigMap) {
    let owner = create(api, "owner", json!({})).await;
    let mut child = config_map("child", json!({}), json!({}));
    child.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.metadata.uid.clone().unwrap_or_default(),
        ..Default::default()
    }]);
    let child = api.create(&PostParams::default(), &child).await.unwrap_or_else(|e| panic!("child: {e}"));
    (owner, child)
}

#[tokio::test]
async fn owner_deletion_garbage_collects_dependents_in_the_background() {
    let cluster = TestCluster::start("gc").await;
    let api: Api<ConfigMap> = cluster.api();
    owner_and_child(&api).await;
    api.delete("owner", &DeleteParams::background()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the dependent to be collected", DEADLINE, || async {
        api.get_opt("child").await.ok().flatten().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents_without_the_owner_reference() {
    let cluster = TestCluster::start("orphan").await;
    let api: Api<ConfigMap> = cluster.api();
    owner_and_child(&api).await;
    api.delete("owner", &DeleteParams::orphan()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the owner to go and the child to lose its reference", DEADLINE, || async {
        let owner_gone = api.get_opt("owner").await.ok().flatten().is_none();
        let child = api.get_opt("child").await.ok().flatten()?;
        (owner_gone && child.metadata.owner_references.unwrap_or_default().is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn every_namespace_holds_the_root_ca_config_map_and_gets_it_back_when_deleted() {
    let cluster = TestCluster::start("root-ca").await;
    let api: Api<ConfigMap> = cluster.api();
    let published = wait_for("the root-CA ConfigMap", DEADLINE, || async { api.get(ROOT_CA).await.ok() }).await;
    let bundle = published.data.unwrap_or_default().remove("ca.crt").unwrap_or_default();
    assert!(bundle.starts_with("-----BEGIN CERTIFICATE-----"), "{bundle}");
    let first = published.metadata.uid.unwrap_or_default();
    api.delete(ROOT_CA, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the root-CA ConfigMap back", DEADLINE, || async {
        let back = api.get(ROOT_CA).await.ok()?;
        (back.metadata.uid.as_deref() != Some(first.as_str())).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deletecollection_deletes_only_matching_objects() {
    let cluster = TestCluster::start("deletecollection").await;
    let api: Api<ConfigMap> = cluster.api();
    create(&api, "a", json!({ "drop": "yes" })).await;
    create(&api, "b", json!({ "drop": "yes" })).await;
    create(&api, "c", json!({})).await;
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("drop=yes"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("only c to remain", DEADLINE, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        (own_names(list.items) == ["c"]).then_some(())
    })
    .await;
}
