//! Cloud Run's traffic model: `spec.traffic` pins the traffic to an older revision (a rollback
//! that brings its secret versions back, kept past `revisionHistoryLimit` while named), splits it
//! with the latest, and tags a revision with a Service of its own. These hold on a real cluster:
//! they read the Deployments, Services and status, not pod readiness.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::operator::{Operator, cluster_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use secure_api_operator::api::{SecretRef, SecureApiService};
use serde_json::{Value, json};

const SERVICE: &str = "pinned";

fn payload(password: &str) -> Vec<u8> {
    json!({ "password": password }).to_string().into_bytes()
}

/// SecretRef `db` on a secret of its own and the service (3 replicas, `revisionHistoryLimit: 1`);
/// waits until its Deployment runs `db=1`.
async fn service_at_version_1(test: &str) -> (TestCluster, Operator) {
    let (cluster, operator) = cluster_with_operator(test).await;
    operator.gcp.add_version(PROJECT, test, &payload("v1"));
    let secret_ref: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": test, "format": "json", "refreshInterval": "1s" },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecretRef>().create(&PostParams::default(), &secret_ref).await.unwrap_or_else(|e| panic!("{e}"));
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": SERVICE },
        "spec": {
            "image": "example.com/api:1",
            "replicas": 3,
            "revisionHistoryLimit": 1,
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<SecureApiService>().create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    wait_versions(&cluster, SERVICE, "db=1").await;
    (cluster, operator)
}

fn versions_of(deployment: &Deployment) -> Option<String> {
    let template = deployment.spec.as_ref()?.template.metadata.as_ref()?;
    template.annotations.as_ref()?.get("secureapi.dev/secret-versions").cloned()
}

async fn wait_versions(cluster: &TestCluster, deployment: &str, versions: &str) -> Deployment {
    let deployments: Api<Deployment> = cluster.api();
    wait_for(&format!("Deployment {deployment} at {versions}"), DEADLINE, || async {
        let live = deployments.get_opt(deployment).await.ok().flatten()?;
        (versions_of(&live)? == versions).then_some(live)
    })
    .await
}

/// The revision the status reports at `db=<version>` (written just after the Deployment).
async fn revision_at(cluster: &TestCluster, version: &str) -> String {
    let services: Api<SecureApiService> = cluster.api();
    wait_for(&format!("the status at db={version}"), DEADLINE, || async {
        let status = services.get(SERVICE).await.ok()?.status?;
        (status.secret_versions.get("db")? == version).then_some(status.revision?)
    })
    .await
}

async fn status_of(cluster: &TestCluster) -> secure_api_operator::api::SecureApiServiceStatus {
    let services: Api<SecureApiService> = cluster.api();
    services.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default()
}

async fn set_traffic(cluster: &TestCluster, traffic: Value) {
    let services: Api<SecureApiService> = cluster.api();
    let patch = Patch::Merge(json!({ "spec": { "traffic": traffic } }));
    services.patch(SERVICE, &PatchParams::default(), &patch).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn all_the_traffic_pinned_to_an_older_revision_brings_its_secret_versions_back_and_keeps_them() {
    let test = "traffic-pin";
    let (cluster, operator) = service_at_version_1(test).await;
    let first = revision_at(&cluster, "1").await;
    operator.gcp.add_version(PROJECT, test, &payload("v2"));
    wait_versions(&cluster, SERVICE, "db=2").await;

    // A rollback by traffic: version 1's revision again, pinned to its own snapshot.
    set_traffic(&cluster, json!([{ "revision": first, "percent": 100 }])).await;
    let restored = wait_versions(&cluster, SERVICE, "db=1").await;
    let annotations = restored.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get("secureapi.dev/revision"), Some(&first));
    let services: Api<SecureApiService> = cluster.api();
    wait_for("the traffic in status", DEADLINE, || async {
        let status = services.get(SERVICE).await.ok()?.status?;
        (status.traffic.first()?.revision == first && status.revision.as_ref()? == &first).then_some(())
    })
    .await;

    // A rotation builds a new latest revision, which gets no traffic; the pinned one stays, and
    // so does its snapshot, past revisionHistoryLimit 1.
    operator.gcp.add_version(PROJECT, test, &payload("v3"));
    let latest = wait_for("the latest revision at version 3", DEADLINE, || async {
        let status = services.get(SERVICE).await.ok()?.status?;
        let latest = status.latest_revision?;
        let built = status.history.iter().all(|r| r.revision != latest);
        (latest != first && built).then_some(latest)
    })
    .await;
    let deployments: Api<Deployment> = cluster.api();
    let live = deployments.get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions_of(&live).as_deref(), Some("db=1"), "the pin holds through a rotation");
    let status = status_of(&cluster).await;
    let pinned = status.history.iter().find(|r| r.revision == first).unwrap_or_else(|| panic!("kept while named"));
    let secrets: Api<Secret> = cluster.api();
    for snapshot in &pinned.snapshots {
        assert!(secrets.get_opt(snapshot).await.ok().flatten().is_some(), "{snapshot} kept while named");
    }

    // Back to the latest: version 3.
    set_traffic(&cluster, json!([{ "latestRevision": true, "percent": 100 }])).await;
    wait_versions(&cluster, SERVICE, "db=3").await;
    let status = status_of(&cluster).await;
    assert_eq!(status.traffic.first().map(|t| t.revision.clone()), Some(latest));
}

#[tokio::test]
async fn a_tagged_latest_revision_takes_its_share_beside_the_pinned_one_on_a_service_of_its_own() {
    let test = "traffic-split";
    let (cluster, operator) = service_at_version_1(test).await;
    let first = revision_at(&cluster, "1").await;
    set_traffic(&cluster, json!([{ "revision": first, "percent": 100 }])).await;
    operator.gcp.add_version(PROJECT, test, &payload("v2"));
    let services: Api<SecureApiService> = cluster.api();
    wait_for("the latest revision at version 2", DEADLINE, || async {
        let latest = services.get(SERVICE).await.ok()?.status?.latest_revision?;
        (latest != first).then_some(())
    })
    .await;

    set_traffic(
        &cluster,
        json!([{ "revision": first, "percent": 75 }, { "latestRevision": true, "percent": 25, "tag": "next" }]),
    )
    .await;
    let canary = wait_versions(&cluster, &format!("{SERVICE}-canary"), "db=2").await;
    assert_eq!(canary.spec.as_ref().and_then(|s| s.replicas), Some(1), "1 pod beside 3 is 25%");
    let tagged: Api<Service> = cluster.api();
    let tag =
        wait_for("the tag's Service", DEADLINE, || async { tagged.get_opt("pinned-next").await.ok().flatten() }).await;
    let selector = tag.spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(selector.get("secureapi.dev/track").map(String::as_str), Some("canary"), "its pods only");
    let live = cluster.api::<Deployment>().get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions_of(&live).as_deref(), Some("db=1"), "the larger share keeps the Deployment");
    let status = wait_for("both shares in status", DEADLINE, || async {
        let status = services.get(SERVICE).await.ok()?.status?;
        (status.traffic.len() == 2).then_some(status)
    })
    .await;
    let next = &status.traffic[1];
    assert_eq!((next.percent, next.tag.as_deref()), (25, Some("next")));
    assert_eq!(next.url.as_deref(), Some(format!("http://pinned-next.{}.svc:80", cluster.namespace).as_str()));

    // The shares change places: each revision moves to the other Deployment as it ran.
    set_traffic(
        &cluster,
        json!([{ "revision": first, "percent": 25, "tag": "old" }, { "latestRevision": true, "percent": 75 }]),
    )
    .await;
    wait_versions(&cluster, SERVICE, "db=2").await;
    wait_versions(&cluster, &format!("{SERVICE}-canary"), "db=1").await;
    wait_for("the old tag's Service", DEADLINE, || async { tagged.get_opt("pinned-old").await.ok().flatten() }).await;

    // The tag goes with its entry.
    set_traffic(&cluster, json!([{ "latestRevision": true, "percent": 100 }])).await;
    wait_versions(&cluster, SERVICE, "db=2").await;
    for tag in ["pinned-next", "pinned-old"] {
        wait_for(&format!("Service {tag} gone"), DEADLINE, || async {
            tagged.get_opt(tag).await.ok()?.is_none().then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn traffic_a_revision_cannot_serve_is_refused_and_what_serves_stays() {
    let test = "traffic-refused";
    let (cluster, _operator) = service_at_version_1(test).await;
    let services: Api<SecureApiService> = cluster.api();
    set_traffic(&cluster, json!([{ "revision": "pinned-0000000000", "percent": 100 }])).await;
    let message = wait_for("Ready=False InvalidSpec", DEADLINE, || async {
        let status = services.get(SERVICE).await.ok()?.status?;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.reason == "InvalidSpec").then(|| ready.message.clone())
    })
    .await;
    assert!(message.contains("spec.traffic[0].revision"), "{message}");
    let live = cluster.api::<Deployment>().get(SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions_of(&live).as_deref(), Some("db=1"));

    // The schema refuses traffic with a progressive strategy.
    let patch = Patch::Merge(json!({ "spec": {
        "traffic": [{ "latestRevision": true, "percent": 100 }],
        "rollout": { "strategy": "Canary" },
    } }));
    let refused = services.patch(SERVICE, &PatchParams::default(), &patch).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("spec.traffic decides which revisions serve"), "{message}");
}
