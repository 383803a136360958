//! Emulator-only behaviour: test hooks (faults, counters, dropped watches), bookmarks, 410 Gone
//! for an expired version, and the simulated Deployment controller. Skipped on a real cluster.

use crate::support::cluster::TestCluster;
use crate::support::wait::{DEADLINE, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use secure_api_testbed::emulator::kube::{DeploymentSimulation, EmulatorOptions, Fault, KubeEmulator};
use serde_json::json;
use std::time::Duration;

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name }, "data": { "k": "v" } }))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn injected_faults_fail_matching_requests_and_counters_count_them_with_emulator_hooks() {
    let cluster = TestCluster::start("faults").await;
    let Some(emulator) = cluster.hooks() else { return };
    let api: Api<ConfigMap> = cluster.api();
    emulator.inject_fault(Fault::status("create", "configmaps", 503).times(2));
    for _ in 0..2 {
        let result = api.create(&PostParams::default(), &config_map("a")).await;
        assert!(matches!(result, Err(kube::Error::Api(ref s)) if s.code == 503), "{result:?}");
    }
    api.create(&PostParams::default(), &config_map("a")).await.unwrap_or_else(|e| panic!("third try: {e}"));
    api.list(&ListParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(emulator.count("create", "configmaps"), 3);
    assert_eq!(emulator.count("list", "configmaps"), 1);
    assert_eq!(emulator.writes("configmaps"), 3);
}

#[tokio::test]
async fn injected_latency_delays_the_answer_with_emulator_hooks() {
    let cluster = TestCluster::start("latency").await;
    let Some(emulator) = cluster.hooks() else { return };
    let api: Api<ConfigMap> = cluster.api();
    emulator.inject_fault(Fault {
        verb: Some("get".into()),
        delay: Some(Duration::from_millis(300)),
        times: Some(1),
        ..Fault::default()
    });
    let started = std::time::Instant::now();
    let _ = api.get_opt("a").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn dropped_watches_end_their_streams_with_emulator_hooks() {
    let cluster = TestCluster::start("drop").await;
    let Some(emulator) = cluster.hooks() else { return };
    let api: Api<ConfigMap> = cluster.api();
    let stream = api.watch(&WatchParams::default().timeout(60), "0").await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the watch to open", DEADLINE, || async { (emulator.open_watches() > 0).then_some(()) }).await;
    emulator.drop_watches();
    let ended = tokio::time::timeout(DEADLINE, stream.collect::<Vec<_>>()).await;
    assert!(ended.is_ok(), "the stream ended when the watch was dropped");
}

#[tokio::test]
async fn a_watch_from_an_expired_version_gets_410_gone_with_emulator_hooks() {
    let cluster = TestCluster::start("gone").await;
    let Some(emulator) = cluster.hooks() else { return };
    let api: Api<ConfigMap> = cluster.api();
    let created = api.create(&PostParams::default(), &config_map("a")).await.unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &config_map("b")).await.unwrap_or_else(|e| panic!("{e}"));
    emulator.compact_history();
    let rv = created.metadata.resource_version.unwrap_or_default();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(events.first(), Some(WatchEvent::Error(status)) if status.code == 410), "{events:?}");
}

#[tokio::test]
async fn watches_that_allow_bookmarks_get_them() {
    let emulator = KubeEmulator::with_options(EmulatorOptions {
        bookmark_interval: Duration::from_millis(50),
        ..Default::default()
    });
    let api: Api<ConfigMap> = Api::namespaced(emulator.client(), "default");
    let created = api.create(&PostParams::default(), &config_map("a")).await.unwrap_or_else(|e| panic!("{e}"));
    let rv = created.metadata.resource_version.unwrap_or_default();
    let mut stream =
        api.watch(&WatchParams::default().timeout(10), &rv).await.unwrap_or_else(|e| panic!("{e}")).boxed();
    let first = tokio::time::timeout(DEADLINE, stream.try_next()).await;
    match first {
        Ok(Ok(Some(WatchEvent::Bookmark(bookmark)))) => assert_eq!(bookmark.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn the_simulated_deployment_controller_completes_or_stalls_rollouts_with_emulator_hooks() {
    let cluster = TestCluster::start("simulated").await;
    let Some(emulator) = cluster.hooks() else { return };
    emulator.set_deployment_simulation(DeploymentSimulation::Complete);
    let api: Api<Deployment> = cluster.api();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [{ "name": "a", "image": "a:1" }] } } },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &deployment).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the rollout to complete", DEADLINE, || async {
        let status = api.get("web").await.ok()?.status?;
        (status.observed_generation == Some(1)
            && status.updated_replicas == Some(2)
            && status.ready_replicas == Some(2))
        .then_some(())
    })
    .await;

    emulator.set_deployment_simulation(DeploymentSimulation::Stall);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "spec": { "template": { "spec": { "containers": [{ "name": "a", "image": "a:2" }] } } } }),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the rollout to stall", DEADLINE, || async {
        let status = api.get("web").await.ok()?.status?;
        let stalled = status
            .conditions?
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
        (status.observed_generation == Some(2) && stalled && status.updated_replicas == Some(0)).then_some(())
    })
    .await;
}
