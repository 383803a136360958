//! When rotations roll out: a rollout window defers a rotation's revision until it opens, and
//! `batchSeconds` gathers rotations of several secrets into one revision. Both hold on a real
//! cluster: they read the Deployment's template and the service's status, not pod readiness.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::events;
use crate::support::operator::{Operator, cluster_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::{Api, PostParams};
use secure_api_operator::api::{SecretRef, SecureApiService};
use serde_json::{Value, json};

const SERVICE: &str = "scheduled";

fn payload(password: &str) -> Vec<u8> {
    json!({ "password": password }).to_string().into_bytes()
}

/// SecretRefs `db` and `keys` (each on a secret of its own) and the service with `rollout`;
/// waits until its Deployment runs `db=1,keys=1`.
async fn scheduled_service(test: &str, rollout: Value) -> (TestCluster, Operator) {
    let (cluster, operator) = cluster_with_operator(test).await;
    for name in ["db", "keys"] {
        operator.gcp.add_version(PROJECT, &format!("{test}-{name}"), &payload("v1"));
        let secret_ref: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
            "spec": { "secret": format!("{test}-{name}"), "format": "json", "refreshInterval": "1s" },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        cluster.api::<SecretRef>().create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": SERVICE },
        "spec": {
            "image": "example.com/api:1",
            "secretEnv": [
                { "name": "DB_PASSWORD", "secretRef": "db", "key": "password" },
                { "name": "KEY", "secretRef": "keys", "key": "password" },
            ],
            "rollout": rollout,
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    wait_versions(&cluster, "db=1,keys=1").await;
    (cluster, operator)
}

fn versions_of(deployment: &Deployment) -> Option<String> {
    let template = deployment.spec.as_ref()?.template.metadata.as_ref()?;
    template.annotations.as_ref()?.get("secureapi.dev/secret-versions").cloned()
}

async fn wait_versions(cluster: &TestCluster, versions: &str) {
    let deployments: Api<Deployment> = cluster.api();
    wait_for(&format!("the Deployment at {versions}"), DEADLINE, || async {
        let deployment = deployments.get_opt(SERVICE).await.ok().flatten()?;
        (versions_of(&deployment)? == versions).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rotation_waits_for_the_rollout_window_and_rolls_when_it_opens() {
    // A window that opens a few seconds from now, in whole seconds, for an hour.
    let opens = Timestamp::now().checked_add(4.seconds()).unwrap_or_else(|e| panic!("{e}"));
    let opens = opens.to_zoned(TimeZone::UTC).round(k8s_openapi::jiff::Unit::Second).unwrap_or_else(|e| panic!("{e}"));
    let closes = opens.checked_add(1.hour()).unwrap_or_else(|e| panic!("{e}"));
    let window =
        json!({ "start": opens.strftime("%H:%M:%S").to_string(), "end": closes.strftime("%H:%M:%S").to_string() });
    let test = "window";
    let (cluster, operator) = scheduled_service(test, json!({ "window": window })).await;

    operator.gcp.add_version(PROJECT, &format!("{test}-db"), &payload("v2"));
    let services: Api<SecureApiService> = cluster.api();
    let pending = wait_for("the rotation pending", DEADLINE, || async {
        services.get(SERVICE).await.ok()?.status?.pending_revision
    })
    .await;
    assert_eq!(pending.secret_versions.get("db").map(String::as_str), Some("2"));
    assert_eq!(pending.starts_at.0, opens.timestamp(), "it starts when the window opens");
    let deployments: Api<Deployment> = cluster.api();
    let live = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    if Timestamp::now() < opens.timestamp() {
        assert_eq!(versions_of(&live).as_deref(), Some("db=1,keys=1"), "nothing rolls before the window");
    }

    wait_versions(&cluster, "db=2,keys=1").await;
    assert!(Timestamp::now() >= opens.timestamp(), "rolled before the window opened");
    let status = services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default();
    assert_eq!(status.pending_revision, None);
}

#[tokio::test]
async fn rotations_within_the_batch_make_one_revision() {
    let test = "batch";
    let (cluster, operator) = scheduled_service(test, json!({ "batchSeconds": 5 })).await;
    let before = events::normal(&cluster, SERVICE, "RolloutStarted").await.len();

    operator.gcp.add_version(PROJECT, &format!("{test}-db"), &payload("v2"));
    let services: Api<SecureApiService> = cluster.api();
    wait_for("the first rotation pending", DEADLINE, || async {
        let pending = services.get(SERVICE).await.ok()?.status?.pending_revision?;
        (pending.secret_versions.get("db").map(String::as_str) == Some("2")).then_some(())
    })
    .await;
    operator.gcp.add_version(PROJECT, &format!("{test}-keys"), &payload("v2"));

    wait_versions(&cluster, "db=2,keys=2").await;
    let started = events::normal(&cluster, SERVICE, "RolloutStarted").await;
    assert_eq!(started.len(), before + 1, "one revision for both: {}", events::describe(&started));
    let history = services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default().history;
    let versions: Vec<_> = history.iter().map(|r| r.secret_versions.clone()).collect();
    assert_eq!(history.len(), 2, "the first revision and the batched one: {versions:?}");
}
