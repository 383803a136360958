//! Event-driven rotation: Secret Manager's notifications through Pub/Sub queue exactly the
//! SecretRefs they concern. A rotation is synced and rolled out once, without polling; pinned
//! SecretRefs ignore new versions; duplicates and reordering never move anything backwards; a
//! missing subscription is survived.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{ready, wait_condition};
use crate::support::operator::{NotificationOptions, Operator, OperatorOptions, SUBSCRIPTION, TOPIC, topic_name};
use crate::support::pubsub_emulator::GooglePubsubEmulator;
use crate::support::wait::{DEADLINE, wait_for};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use secure_api_operator::api::{ConditionStatus, SecretRef, SecureApiService, UnusableState};
use secure_api_testbed::emulator::gcp::{DeliveryFaults, VersionState};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCESS: &str = "secretmanager.versions.access";
const PULL: &str = "pubsub.subscriptions.pull";
/// A refresh interval that never comes round in a test: every read is the notifications' doing.
const NEVER: &str = "168h";

async fn with_notifications(test: &str, options: NotificationOptions) -> (TestCluster, Operator) {
    let cluster = TestCluster::with_crds(test).await;
    let operator =
        Operator::start_with(&cluster, OperatorOptions { notifications: Some(options), ..OperatorOptions::default() })
            .await;
    (cluster, operator)
}

fn db(password: &str) -> Vec<u8> {
    json!({ "host": "db.example.com", "port": 5432, "username": "api_user", "password": password })
        .to_string()
        .into_bytes()
}

async fn secret_ref(cluster: &TestCluster, name: &str, spec: Value) {
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecretRef>().create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{name}: {e}"));
}

async fn service_using_db(cluster: &TestCluster) {
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "secure-api" },
        "spec": {
            "image": "example.com/secure-api:1.0",
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
}

async fn wait_synced(cluster: &TestCluster, name: &str, version: &str) {
    let api: Api<SecretRef> = cluster.api();
    wait_for(&format!("{name} synced to version {version}"), DEADLINE, || async {
        let object = api.get(name).await.ok()?;
        (object.status?.synced_version.as_deref() == Some(version)).then_some(())
    })
    .await;
}

/// Waits until `status.unusableVersions` of `name` is `expected` (version, state), in order.
async fn wait_unusable(refs: &Api<SecretRef>, name: &str, expected: &[(&str, UnusableState)]) -> SecretRef {
    let expected: Vec<(String, UnusableState)> = expected.iter().map(|(v, s)| ((*v).to_owned(), *s)).collect();
    wait_for(&format!("{name} listing unusable versions {expected:?}"), DEADLINE, || async {
        let object = refs.get(name).await.ok()?;
        let listed = object.status.as_ref()?.unusable_versions.iter().map(|u| (u.version.clone(), u.state));
        (listed.collect::<Vec<_>>() == expected).then_some(object)
    })
    .await
}

fn db_version(deployment: &Deployment) -> Option<String> {
    let annotations = deployment.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?;
    let versions = annotations.get("secureapi.dev/secret-versions")?;
    versions.split(',').find_map(|pair| pair.strip_prefix("db=")).map(str::to_owned)
}

/// Every db version the Deployment's pod template took, in order (from a watch).
fn record_templates(cluster: &TestCluster) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let api: Api<Deployment> = cluster.api();
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).applied_objects());
        while let Some(Ok(deployment)) = stream.next().await {
            if let Some(version) = db_version(&deployment) {
                let mut seen = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.last() != Some(&version) {
                    seen.push(version);
                }
            }
        }
    });
    seen
}

/// `secureapi_pubsub_pull_errors_total` from the operator's metrics.
fn pull_errors(operator: &Operator) -> u64 {
    let metrics = operator.metrics.encode();
    let line = metrics.lines().find_map(|l| l.strip_prefix("secureapi_pubsub_pull_errors_total "));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

fn templates(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// The secret `api-config-db` at version 1 with the test topic, SecretRef `db` (refreshed by
/// notifications only) and a service using it, rolled out; returns the template recorder.
async fn seed_db_and_service(cluster: &TestCluster, operator: &Operator) -> Arc<Mutex<Vec<String>>> {
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "api-config-db", &db("pw-1"));
    gcp.set_secret_topics(PROJECT, "api-config-db", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(cluster, "db", json!({ "secret": "api-config-db", "format": "json", "refreshInterval": NEVER })).await;
    service_using_db(cluster).await;
    let seen = record_templates(cluster);
    wait_for("the first template", DEADLINE, || async { (templates(&seen) == ["1"]).then_some(()) }).await;
    seen
}

#[tokio::test]
async fn a_new_version_is_synced_and_rolled_out_once_and_a_quiet_cluster_reads_nothing() {
    let (cluster, operator) = with_notifications("notify-rotate", NotificationOptions::default()).await;
    let gcp = &operator.gcp;
    let seen = seed_db_and_service(&cluster, &operator).await;

    gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    wait_synced(&cluster, "db", "2").await;
    wait_for("the rollout to version 2", DEADLINE, || async { (templates(&seen) == ["1", "2"]).then_some(()) }).await;
    let api: Api<Deployment> = cluster.api();
    let generation = api.get("secure-api").await.unwrap_or_else(|e| panic!("{e}")).metadata.generation;
    assert_eq!(generation, Some(2), "exactly one rollout");

    // A quiet window of 60 pulls (about three seconds: three refresh periods of a SecretRef that
    // polled every second): no access at all.
    let reads = gcp.count(ACCESS);
    let pulls = gcp.count(PULL);
    wait_for("sixty more pulls", DEADLINE, || async { (gcp.count(PULL) >= pulls + 60).then_some(()) }).await;
    assert_eq!(gcp.count(ACCESS), reads, "a steady cluster makes no access calls");
    assert_eq!(templates(&seen), ["1", "2"]);
}

#[tokio::test]
async fn a_pinned_secret_ref_ignores_new_versions_and_reports_its_disabled_version() {
    let (cluster, operator) = with_notifications("notify-pinned", NotificationOptions::default()).await;
    let refs: Api<SecretRef> = cluster.api();
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "pinned", b"one");
    gcp.set_secret_topics(PROJECT, "pinned", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "pinned", json!({ "secret": "pinned", "version": "1" })).await;
    wait_synced(&cluster, "pinned", "1").await;
    let secrets: Api<Secret> = cluster.api();
    let before = secrets.get("pinned").await.unwrap_or_else(|e| panic!("{e}")).metadata.resource_version;
    let reads = gcp.count(ACCESS);
    let acked = gcp.count("pubsub.subscriptions.acknowledge");

    gcp.add_version(PROJECT, "pinned", b"two");
    wait_for("the notification acknowledged", DEADLINE, || async {
        (gcp.count("pubsub.subscriptions.acknowledge") > acked).then_some(())
    })
    .await;
    assert_eq!(gcp.count(ACCESS), reads, "a pinned SecretRef is not read on a new version");

    gcp.set_version_state(PROJECT, "pinned", 1, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&refs, "pinned", ready().reason("VersionDisabled")).await;
    wait_unusable(&refs, "pinned", &[("1", UnusableState::Disabled)]).await;
    let after = secrets.get("pinned").await.unwrap_or_else(|e| panic!("{e}")).metadata.resource_version;
    assert_eq!(after, before, "the synced Secret stays as it was");
}

#[tokio::test]
async fn a_synced_version_disabled_enabled_or_destroyed_is_listed_as_secret_manager_answers_its_check() {
    use UnusableState::{Destroyed, Disabled};
    let (cluster, operator) = with_notifications("notify-unusable", NotificationOptions::default()).await;
    let refs: Api<SecretRef> = cluster.api();
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "rotated", b"one");
    gcp.set_secret_topics(PROJECT, "rotated", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "rotated", json!({ "secret": "rotated", "refreshInterval": NEVER })).await;
    wait_synced(&cluster, "rotated", "1").await;
    gcp.add_version(PROJECT, "rotated", b"two");
    wait_synced(&cluster, "rotated", "2").await;
    let one = format!("projects/{PROJECT}/secrets/rotated/versions/1");
    let checks = gcp.count_for(ACCESS, &one);

    // Version 2 stays synced and Ready: only the list says that version 1 no longer works.
    gcp.set_version_state(PROJECT, "rotated", 1, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    let listed = wait_unusable(&refs, "rotated", &[("1", Disabled)]).await;
    let status = listed.status.unwrap_or_default();
    assert_eq!(status.synced_version.as_deref(), Some("2"));
    assert_eq!(status.unusable("1"), Some(Disabled));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status);
    assert_eq!(ready, Some(ConditionStatus::True), "the synced version still works");
    assert_eq!(gcp.count_for(ACCESS, &one), checks + 1, "one access of version 1 checked it");

    gcp.set_version_state(PROJECT, "rotated", 1, VersionState::Enabled).unwrap_or_else(|e| panic!("{e}"));
    wait_unusable(&refs, "rotated", &[]).await;

    gcp.set_version_state(PROJECT, "rotated", 1, VersionState::Destroyed).unwrap_or_else(|e| panic!("{e}"));
    wait_unusable(&refs, "rotated", &[("1", Destroyed)]).await;
    assert_eq!(
        refs.get("rotated").await.unwrap_or_else(|e| panic!("{e}")).status.and_then(|s| s.synced_version).as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_roll_each_version_out_at_most_once_and_end_at_the_newest() {
    let (cluster, operator) = with_notifications("notify-faults", NotificationOptions::default()).await;
    let gcp = &operator.gcp;
    let seen = seed_db_and_service(&cluster, &operator).await;

    // Each message three times; each pull's batch reversed: version 3's news may come first.
    gcp.set_delivery_faults(DeliveryFaults { duplicate: 2, reorder: true, ..DeliveryFaults::default() });
    gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    gcp.add_version(PROJECT, "api-config-db", &db("pw-3"));
    wait_synced(&cluster, "db", "3").await;
    wait_for("the rollout to version 3", DEADLINE, || async {
        (templates(&seen).last().map(String::as_str) == Some("3")).then_some(())
    })
    .await;
    let rolled = templates(&seen);
    let numbers: Vec<u32> = rolled.iter().filter_map(|v| v.parse().ok()).collect();
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "never an older or repeated version: {rolled:?}");
}

#[tokio::test]
async fn a_missing_subscription_is_survived_by_polling_and_events_resume_once_it_exists() {
    let options = NotificationOptions { without_subscription: true, ..NotificationOptions::default() };
    let (cluster, operator) = with_notifications("notify-missing", options).await;
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "polled", b"p1");
    gcp.add_version(PROJECT, "notified", b"n1");
    gcp.set_secret_topics(PROJECT, "notified", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "polled", json!({ "secret": "polled", "refreshInterval": "1s" })).await;
    secret_ref(&cluster, "notified", json!({ "secret": "notified", "refreshInterval": NEVER })).await;
    wait_synced(&cluster, "notified", "1").await;
    // Pulls fail (404) and back off; polling carries on meanwhile.
    wait_for("a failed pull", DEADLINE, || async { (pull_errors(&operator) >= 1).then_some(()) }).await;
    gcp.add_version(PROJECT, "polled", b"p2");
    wait_synced(&cluster, "polled", "2").await;

    gcp.create_subscription(PROJECT, SUBSCRIPTION, TOPIC, Duration::from_secs(10));
    let pulls = gcp.count(PULL);
    wait_for("a pull on the new subscription", DEADLINE, || async { (gcp.count(PULL) > pulls).then_some(()) }).await;
    gcp.add_version(PROJECT, "notified", b"n2");
    wait_synced(&cluster, "notified", "2").await;
}

/// PUTs a topic or subscription into another Pub/Sub (Google's emulator).
async fn create_in(endpoint: &str, path: &str, body: Value) {
    let url = format!("{endpoint}/v1/{path}");
    let answer = reqwest::Client::new().put(&url).json(&body).send().await.unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert!(answer.status().is_success(), "PUT {url}: {}", answer.status());
}

#[tokio::test]
async fn a_rotation_reaches_the_operator_through_googles_own_pubsub_emulator() {
    let Some(google) = GooglePubsubEmulator::start("notifications-through-google").await else { return };
    let endpoint = google.url();
    create_in(&endpoint, &format!("projects/{PROJECT}/topics/{TOPIC}"), json!({})).await;
    let subscription = json!({ "topic": topic_name(), "ackDeadlineSeconds": 10 });
    create_in(&endpoint, &format!("projects/{PROJECT}/subscriptions/{SUBSCRIPTION}"), subscription).await;
    let options = NotificationOptions { endpoint: Some(endpoint.clone()), ..NotificationOptions::default() };
    let (cluster, operator) = with_notifications("notify-google", options).await;
    let gcp = &operator.gcp;
    // The project's Secret Manager emulator publishes into Google's Pub/Sub emulator.
    gcp.publish_to(endpoint);
    gcp.add_version(PROJECT, "api-config-db", &db("pw-1"));
    gcp.set_secret_topics(PROJECT, "api-config-db", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "db", json!({ "secret": "api-config-db", "format": "json", "refreshInterval": NEVER })).await;
    wait_synced(&cluster, "db", "1").await;
    let reads = gcp.count(ACCESS);
    gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    wait_synced(&cluster, "db", "2").await;
    assert!(gcp.count(ACCESS) > reads, "the notification made the operator read");
    assert_eq!(gcp.count(PULL), 0, "the operator pulled from Google's emulator, not ours");
}

#[tokio::test]
async fn a_due_rotation_is_announced_and_a_deleted_secret_keeps_the_synced_secret() {
    let (cluster, operator) = with_notifications("notify-rotate-due", NotificationOptions::default()).await;
    let refs: Api<SecretRef> = cluster.api();
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "rotating", b"r1");
    gcp.set_secret_topics(PROJECT, "rotating", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "rotating", json!({ "secret": "rotating", "refreshInterval": NEVER })).await;
    wait_synced(&cluster, "rotating", "1").await;

    let due = std::time::SystemTime::now() - Duration::from_secs(1);
    gcp.set_rotation(PROJECT, "rotating", due, None).unwrap_or_else(|e| panic!("{e}"));
    gcp.fire_due_rotations();
    let events: Api<Event> = cluster.api();
    wait_for("a RotationDue Event", DEADLINE, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("RotationDue") && e.type_.as_deref() == Some("Normal"))
            .then_some(())
    })
    .await;

    // Deleted in Secret Manager: SecretNotFound, and the synced Secret stays.
    let url = format!("{}/v1/projects/{PROJECT}/secrets/rotating", operator.gcp_url());
    let deleted = reqwest::Client::new().delete(&url).send().await.unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
    assert!(deleted.status().is_success(), "DELETE {url}: {}", deleted.status());
    wait_condition(&refs, "rotating", ready().reason("SecretNotFound")).await;
    let secrets: Api<Secret> = cluster.api();
    assert!(secrets.get_opt("rotating").await.unwrap_or_else(|e| panic!("{e}")).is_some(), "the Secret stays");
}

#[tokio::test]
async fn a_rotation_away_from_a_disabled_version_rolls_at_once_outside_the_rollout_window() {
    use k8s_openapi::jiff::{Timestamp, ToSpan, tz::TimeZone};
    let (cluster, operator) = with_notifications("notify-window", NotificationOptions::default()).await;
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "api-config-db", &db("pw-1"));
    gcp.set_secret_topics(PROJECT, "api-config-db", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));
    secret_ref(&cluster, "db", json!({ "secret": "api-config-db", "format": "json", "refreshInterval": NEVER })).await;
    // A window that opens in two hours: every rotation of this test would wait for it.
    let opens = Timestamp::now().checked_add(2.hours()).unwrap_or_else(|e| panic!("{e}")).to_zoned(TimeZone::UTC);
    let closes = opens.checked_add(1.hour()).unwrap_or_else(|e| panic!("{e}"));
    let window = json!({ "start": opens.strftime("%H:%M").to_string(), "end": closes.strftime("%H:%M").to_string() });
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "secure-api" },
        "spec": {
            "image": "example.com/secure-api:1.0",
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
            "rollout": { "window": window },
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    let seen = record_templates(&cluster);
    wait_for("the first template", DEADLINE, || async { (templates(&seen) == ["1"]).then_some(()) }).await;

    gcp.add_version(PROJECT, "api-config-db", &db("pw-2"));
    let services: Api<SecureApiService> = cluster.api();
    wait_for("version 2 waiting for the window", DEADLINE, || async {
        let pending = services.get("secure-api").await.ok()?.status?.pending_revision?;
        (pending.secret_versions.get("db").map(String::as_str) == Some("2")).then_some(())
    })
    .await;
    assert_eq!(templates(&seen), ["1"], "nothing rolls before the window");

    // The running version stops working: the rotation away from it goes now.
    gcp.set_version_state(PROJECT, "api-config-db", 1, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    wait_for("the rollout to version 2", DEADLINE, || async { (templates(&seen) == ["1", "2"]).then_some(()) }).await;
    let status = services.get("secure-api").await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default();
    assert_eq!(status.pending_revision, None);
}
