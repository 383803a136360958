//! kube-rs's runtime over the emulator: a real `Controller` with `.owns()` and the finalizer
//! helper, on a CRD from `crds/`, sees the whole life of an object in order.

use crate::support::cluster::TestCluster;
use crate::support::wait::{DEADLINE, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use secure_api_operator::api::{FINALIZER, SecretRef};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Ctx {
    client: kube::Client,
    timeline: Mutex<Vec<String>>,
}

impl Ctx {
    fn record(&self, entry: String) {
        let mut timeline = self.timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if timeline.last() != Some(&entry) {
            timeline.push(entry);
        }
    }

    fn timeline(&self) -> Vec<String> {
        self.timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TestError(String);

async fn reconcile(
    object: Arc<SecretRef>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<TestError>> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<SecretRef> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Event::Apply(object) => apply(&object, &ctx).await,
            Event::Cleanup(object) => {
                ctx.record(format!("cleanup {}", object.name_any()));
                Ok(Action::await_change())
            }
        }
    })
    .await
}

async fn apply(object: &SecretRef, ctx: &Ctx) -> Result<Action, TestError> {
    let namespace = object.namespace().unwrap_or_default();
    let generation = object.metadata.generation.unwrap_or_default();
    let synced = object.status.as_ref().and_then(|s| s.synced_version.clone());
    ctx.record(format!("apply generation={generation} status={}", synced.as_deref().unwrap_or("-")));
    let child = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{}-child", object.name_any())),
            owner_references: object.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        data: Some([("generation".to_string(), generation.to_string())].into()),
        ..Default::default()
    };
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = child.metadata.name.clone().unwrap_or_default();
    maps.patch(&name, &PatchParams::apply("runtime-test").force(), &Patch::Apply(&child))
        .await
        .map_err(|e| TestError(e.to_string()))?;
    let wanted = generation.to_string();
    if synced.as_deref() != Some(wanted.as_str()) {
        let api: Api<SecretRef> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "syncedVersion": wanted } })),
        )
        .await
        .map_err(|e| TestError(e.to_string()))?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

#[tokio::test]
async fn a_controller_with_owns_and_a_finalizer_sees_the_whole_lifecycle_in_order() {
    let cluster = TestCluster::with_crds("runtime").await;
    let refs: Api<SecretRef> = cluster.api();
    let maps: Api<ConfigMap> = cluster.api();
    let ctx = Arc::new(Ctx { client: cluster.client.clone(), timeline: Mutex::new(vec![]) });
    let controller = Controller::new(refs.clone(), watcher::Config::default())
        .owns(maps.clone(), watcher::Config::default())
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_millis(200)), ctx.clone())
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
        "metadata": { "name": "db" }, "spec": { "secret": "api-config-db" },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    refs.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("create: {e}"));
    let seen = |entry: &'static str| {
        let ctx = ctx.clone();
        async move {
            wait_for(entry, DEADLINE, || {
                let ctx = ctx.clone();
                async move { ctx.timeline().iter().any(|e| e == entry).then_some(()) }
            })
            .await
        }
    };
    seen("apply generation=1 status=1").await;
    let with_finalizer = refs.get("db").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(with_finalizer.finalizers(), [FINALIZER]);
    wait_for("the owned ConfigMap", DEADLINE, || async { maps.get_opt("db-child").await.ok().flatten() }).await;

    refs.patch("db", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "version": "2" } })))
        .await
        .unwrap_or_else(|e| panic!("update: {e}"));
    seen("apply generation=2 status=2").await;

    let deleting = refs.delete("db", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("delete: {e}"));
    let held = deleting.left().is_some_and(|o| o.metadata.deletion_timestamp.is_some());
    assert!(held, "the finalizer holds the SecretRef with a deletionTimestamp");
    seen("cleanup db").await;
    wait_for("the SecretRef to go once its finalizer is removed", DEADLINE, || async {
        refs.get_opt("db").await.ok().flatten().is_none().then_some(())
    })
    .await;
    wait_for("the owned ConfigMap to be garbage-collected", DEADLINE, || async {
        maps.get_opt("db-child").await.ok().flatten().is_none().then_some(())
    })
    .await;

    let timeline = ctx.timeline();
    let position = |entry: &str| timeline.iter().position(|e| e == entry);
    let order = [
        position("apply generation=1 status=-"),
        position("apply generation=1 status=1"),
        position("apply generation=2 status=1"),
        position("apply generation=2 status=2"),
        position("cleanup db"),
    ];
    assert!(order.iter().all(Option::is_some), "missing steps in {timeline:#?}");
    assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order: {timeline:#?}");
    controller.abort();
}
