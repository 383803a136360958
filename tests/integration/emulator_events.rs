//! Events are one store behind two APIs, as on kube-apiserver: what kube-runtime's `Recorder`
//! publishes through events.k8s.io/v1 is a core/v1 Event to kubectl (`get events`, `describe`),
//! and a core/v1 Event reads through events.k8s.io/v1. They run against a real cluster too when
//! `SECUREAPI_E2E_KUBECONFIG` is set.

use crate::support::cluster::TestCluster;
use crate::support::kubectl::{Kubectl, serve_emulator};
use crate::support::wait::DEADLINE;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as Record, EventType, Recorder, Reporter};
use secure_api_operator::api::SecretRef;
use serde_json::json;
use std::path::PathBuf;

const CONTROLLER: &str = "secure-api-operator";

fn recorder(cluster: &TestCluster) -> Recorder {
    Recorder::new(cluster.client.clone(), Reporter { controller: CONTROLLER.into(), instance: Some("pod-1".into()) })
}

async fn config_map(cluster: &TestCluster, name: &str) -> ConfigMap {
    let object = serde_json::from_value(json!({ "metadata": { "name": name } }))
        .unwrap_or_else(|e| panic!("config map {name}: {e}"));
    cluster.api().create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

/// Publishes a Warning the way the operator does (kube-runtime's Recorder, events.k8s.io/v1).
async fn record<K: Resource<DynamicType = ()>>(recorder: &Recorder, object: &K, reason: &str, note: &str) {
    let event = Record {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&event, &object.object_ref(&())).await.unwrap_or_else(|e| panic!("recording {reason}: {e}"));
}

async fn core_list(api: &Api<CoreEvent>, fields: &str) -> Vec<CoreEvent> {
    api.list(&ListParams::default().fields(fields)).await.unwrap_or_else(|e| panic!("core list {fields}: {e}")).items
}

async fn events_list(api: &Api<Event>, fields: &str) -> Vec<Event> {
    api.list(&ListParams::default().fields(fields)).await.unwrap_or_else(|e| panic!("events list {fields}: {e}")).items
}

fn messages(events: &[CoreEvent]) -> Vec<String> {
    let mut messages: Vec<String> = events.iter().filter_map(|e| e.message.clone()).collect();
    messages.sort();
    messages
}

#[tokio::test]
async fn an_event_the_recorder_publishes_is_a_core_v1_event() {
    let cluster = TestCluster::start("ev-recorded").await;
    let db = config_map(&cluster, "db").await;
    let recorder = recorder(&cluster);
    record(&recorder, &db, "ChecksumMismatch", "payload checksum mismatch").await;

    let core: Api<CoreEvent> = cluster.api();
    let [event] = <[CoreEvent; 1]>::try_from(core_list(&core, "").await)
        .unwrap_or_else(|all| panic!("one core Event expected: {all:?}"));
    let involved = &event.involved_object;
    assert_eq!(
        (involved.kind.as_deref(), involved.name.as_deref(), involved.namespace.as_deref()),
        (Some("ConfigMap"), Some("db"), Some(cluster.namespace.as_str()))
    );
    assert_eq!(involved.uid, db.metadata.uid);
    assert_eq!(event.message.as_deref(), Some("payload checksum mismatch"));
    assert_eq!((event.reason.as_deref(), event.type_.as_deref()), (Some("ChecksumMismatch"), Some("Warning")));
    assert_eq!(event.action.as_deref(), Some("Sync"));
    assert_eq!(event.reporting_component.as_deref(), Some(CONTROLLER));
    assert_eq!(event.reporting_instance.as_deref(), Some("pod-1"));
    assert!(event.event_time.is_some());
    // The Recorder sets no deprecatedSource; core's `source` field falls back to the reporter.
    assert_eq!(core_list(&core, &format!("source={CONTROLLER}")).await.len(), 1);

    // The same object, the same resourceVersion, through both APIs.
    let name = event.metadata.name.clone().unwrap_or_default();
    let events: Api<Event> = cluster.api();
    let recorded = events.get(&name).await.unwrap_or_else(|e| panic!("events.k8s.io get: {e}"));
    assert_eq!(recorded.metadata.resource_version, event.metadata.resource_version);
    assert_eq!(recorded.note.as_deref(), Some("payload checksum mismatch"));

    // A repeat is a merge patch with a series through events.k8s.io/v1; core sees it.
    record(&recorder, &db, "ChecksumMismatch", "payload checksum mismatch").await;
    let repeated = core.get(&name).await.unwrap_or_else(|e| panic!("core get: {e}"));
    assert_eq!(repeated.series.as_ref().and_then(|s| s.count), Some(2));
    let through_events = events.get(&name).await.unwrap_or_else(|e| panic!("events.k8s.io get: {e}"));
    assert_eq!(through_events.metadata.resource_version, repeated.metadata.resource_version);
    assert!(repeated.metadata.resource_version != event.metadata.resource_version);

    // A patch that changes nothing answers with the object as events.k8s.io/v1 shows it.
    let same = json!({ "reason": "ChecksumMismatch" });
    let unchanged = events
        .patch(&name, &PatchParams::default(), &Patch::Merge(&same))
        .await
        .unwrap_or_else(|e| panic!("events.k8s.io patch: {e}"));
    assert_eq!(unchanged.note, through_events.note);
    assert_eq!(unchanged.regarding, through_events.regarding);
    assert_eq!(unchanged.metadata.resource_version, through_events.metadata.resource_version);
}

#[tokio::test]
async fn an_event_created_through_core_v1_reads_and_changes_through_events_k8s_io() {
    let cluster = TestCluster::start("ev-core").await;
    let core: Api<CoreEvent> = cluster.api();
    let object = serde_json::from_value(json!({
        "metadata": { "name": "db.legacy" },
        "involvedObject": { "apiVersion": "v1", "kind": "ConfigMap", "name": "db", "namespace": cluster.namespace },
        "message": "legacy recorder", "reason": "Legacy", "type": "Normal",
        "source": { "component": "legacy-controller", "host": "node-1" },
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z", "count": 2,
    }))
    .unwrap_or_else(|e| panic!("core event: {e}"));
    let created = core.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("core create: {e}"));

    let events: Api<Event> = cluster.api();
    let event = events.get("db.legacy").await.unwrap_or_else(|e| panic!("events.k8s.io get: {e}"));
    let regarding = event.regarding.clone().unwrap_or_default();
    assert_eq!((regarding.kind.as_deref(), regarding.name.as_deref()), (Some("ConfigMap"), Some("db")));
    assert_eq!(event.note.as_deref(), Some("legacy recorder"));
    assert_eq!((event.reason.as_deref(), event.type_.as_deref()), (Some("Legacy"), Some("Normal")));
    let source = event.deprecated_source.clone().unwrap_or_default();
    assert_eq!((source.component.as_deref(), source.host.as_deref()), (Some("legacy-controller"), Some("node-1")));
    assert_eq!(event.deprecated_count, Some(2));
    assert!(event.deprecated_first_timestamp.is_some() && event.deprecated_last_timestamp.is_some());
    assert_eq!(event.metadata.resource_version, created.metadata.resource_version);

    // A core patch (a legacy recorder counting a repeat) shows through events.k8s.io/v1.
    let patch = json!({ "count": 3, "lastTimestamp": "2026-01-01T00:02:00Z" });
    core.patch("db.legacy", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("core patch: {e}"));
    let counted = events.get("db.legacy").await.unwrap_or_else(|e| panic!("events.k8s.io get: {e}"));
    assert_eq!(counted.deprecated_count, Some(3));
    assert_eq!(events_list(&events, "regarding.name=db").await.len(), 1);

    // Deleting through events.k8s.io/v1 deletes the core Event.
    events.delete("db.legacy", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("events.k8s.io delete: {e}"));
    assert!(matches!(core.get("db.legacy").await, Err(kube::Error::Api(status)) if status.code == 404));
}

#[tokio::test]
async fn field_selectors_of_both_apis_find_recorded_events() {
    let cluster = TestCluster::start("ev-fields").await;
    let (a, b) = (config_map(&cluster, "a").await, config_map(&cluster, "b").await);
    let recorder = recorder(&cluster);
    record(&recorder, &a, "Synced", "about a").await;
    record(&recorder, &b, "Synced", "about b").await;

    let core: Api<CoreEvent> = cluster.api();
    assert_eq!(messages(&core_list(&core, "involvedObject.name=a").await), ["about a"]);
    let uid = b.metadata.uid.clone().unwrap_or_default();
    let exact = format!(
        "involvedObject.kind=ConfigMap,involvedObject.namespace={},involvedObject.uid={uid}",
        cluster.namespace
    );
    assert_eq!(messages(&core_list(&core, &exact).await), ["about b"]);
    assert_eq!(messages(&core_list(&core, "involvedObject.kind=Secret").await), Vec::<String>::new());
    assert_eq!(messages(&core_list(&core, &format!("reportingComponent={CONTROLLER},reason=Synced")).await).len(), 2);

    let events: Api<Event> = cluster.api();
    let about_b = events_list(&events, "regarding.name=b").await;
    assert_eq!(about_b.iter().filter_map(|e| e.note.as_deref()).collect::<Vec<_>>(), ["about b"]);
    assert_eq!(events_list(&events, &format!("reportingController={CONTROLLER},type=Warning")).await.len(), 2);
    let unsupported = events.list(&ListParams::default().fields("involvedObject.name=a")).await;
    let rejected = |status: &kube::core::Status| status.code == 400 && status.message.contains("not supported");
    assert!(matches!(&unsupported, Err(kube::Error::Api(status)) if rejected(status)), "{unsupported:?}");
}

#[tokio::test]
async fn a_core_v1_watch_sees_what_the_recorder_publishes() {
    let cluster = TestCluster::start("ev-watch").await;
    let db = config_map(&cluster, "db").await;
    let core: Api<CoreEvent> = cluster.api();
    let since = core
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("core list: {e}"))
        .metadata
        .resource_version
        .unwrap_or_default();
    let stream = core
        .watch(&WatchParams::default().fields("involvedObject.name=db").timeout(20), &since)
        .await
        .unwrap_or_else(|e| panic!("core watch: {e}"));
    let recorder = recorder(&cluster);
    record(&recorder, &db, "Synced", "synced version 7").await;
    record(&recorder, &db, "Synced", "synced version 7").await;

    let seen: Vec<(String, Option<String>, Option<i32>)> = tokio::time::timeout(
        DEADLINE,
        stream
            .map_ok(|event| match event {
                WatchEvent::Added(e) => ("ADDED".to_owned(), e.message, e.series.and_then(|s| s.count)),
                WatchEvent::Modified(e) => ("MODIFIED".to_owned(), e.message, e.series.and_then(|s| s.count)),
                other => (format!("{other:?}"), None, None),
            })
            .try_filter(|(type_, ..)| std::future::ready(type_ != "Bookmark"))
            .take(2)
            .try_collect(),
    )
    .await
    .unwrap_or_else(|_| panic!("the watch saw too little in {DEADLINE:?}"))
    .unwrap_or_else(|e| panic!("watch stream: {e}"));
    let message = Some("synced version 7".to_owned());
    assert_eq!(seen, [("ADDED".to_owned(), message.clone(), None), ("MODIFIED".to_owned(), message, Some(2))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_and_describe_show_what_the_recorder_published() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cluster = TestCluster::start("ev-kubectl").await;
    let (kubeconfig, _listener) = match std::env::var("SECUREAPI_E2E_KUBECONFIG") {
        Ok(path) if !path.is_empty() => (PathBuf::from(path), None),
        _ => {
            let Some(emulator) = cluster.emulator() else { return };
            let (kubeconfig, listener) = serve_emulator(emulator, dir.path()).await;
            (kubeconfig, Some(listener))
        }
    };
    cluster.install_crds().await;
    let secret_ref: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": "api-config-db" },
    }))
    .unwrap_or_else(|e| panic!("secret ref: {e}"));
    let api: Api<SecretRef> = cluster.api();
    let db = api.create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("creating db: {e}"));
    record(&recorder(&cluster), &db, "VersionDisabled", "version 7 of api-config-db is disabled").await;

    let namespace = cluster.namespace.clone();
    let checks = move || {
        let kubectl = Kubectl::new(kubeconfig, &namespace);
        let run = |args: &[&str]| kubectl.ok(args);
        let table = run(&["get", "events"]);
        let mut lines = table.lines();
        let header: Vec<&str> =
            lines.next().unwrap_or_default().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(header, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "{table}");
        let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(
            row.get(1..).unwrap_or_default(),
            ["Warning", "VersionDisabled", "secretref/db", "version", "7", "of", "api-config-db", "is", "disabled"],
            "{table}"
        );
        let wide = run(&["get", "events.events.k8s.io", "-o", "wide"]);
        assert!(wide.contains("SOURCE") && wide.contains(CONTROLLER) && wide.contains("secretref/db"), "{wide}");

        let described = run(&["describe", "secretref", "db"]);
        let events = described.split_once("\nEvents:").map(|(_, events)| events).unwrap_or_default();
        assert!(
            events.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.starts_with(&["Warning", "VersionDisabled"])
                    && cells.contains(&CONTROLLER)
                    && line.trim_end().ends_with("version 7 of api-config-db is disabled")
            }),
            "describe shows the Event:\n{described}"
        );

        let listed = run(&["events", "--for", "secretref/db"]);
        assert!(
            listed.contains("VersionDisabled") && listed.contains("version 7 of api-config-db is disabled"),
            "{listed}"
        );
    };
    tokio::task::spawn_blocking(checks).await.unwrap_or_else(|e| panic!("kubectl checks: {e}"));
}
