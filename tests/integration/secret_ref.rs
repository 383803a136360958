//! The SecretRef controller against the emulators: sync, rotation, pinned versions, failures that
//! leave the last good Secret alone, drift repair, rollout targets, steady state, target renames,
//! and no secret value in any output.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::operator::{Operator, cluster_with_operator, emulator_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::types;
use secure_api_operator::api::{FINALIZER, SecretRef, UnusableState};
use secure_api_testbed::emulator::gcp::{GcpFault, VersionState};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ACCESS: &str = "secretmanager.versions.access";

fn secret_ref(name: &str, spec: Value) -> SecretRef {
    serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("secretref {name}: {e}"))
}

async fn create(cluster: &TestCluster, name: &str, spec: Value) {
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &secret_ref(name, spec))
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

async fn wait_synced(cluster: &TestCluster, name: &str, version: &str) -> SecretRef {
    let api: Api<SecretRef> = cluster.api();
    wait_for(&format!("{name} synced to version {version}"), DEADLINE, || async {
        let object = api.get(name).await.ok()?;
        (object.status.as_ref()?.synced_version.as_deref() == Some(version)).then_some(object)
    })
    .await
}

async fn secret_data(cluster: &TestCluster, name: &str) -> Option<BTreeMap<String, String>> {
    let api: Api<Secret> = cluster.api();
    let secret = api.get_opt(name).await.ok()??;
    Some(secret.data?.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect())
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn secretrefs_sync_raw_json_and_dotenv_payloads() {
    let (cluster, operator) = cluster_with_operator("sref-formats").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "raw", b"s3cr3t");
    operator.gcp.add_version(PROJECT, "api-config-db", br#"{"host":"db.example.com","port":5432,"password":"pw"}"#);
    operator.gcp.add_version(PROJECT, "env", b"DB_USER=api_user\nexport DB_PASS=\"p w\"\n");

    create(&cluster, "raw", json!({ "secret": "raw" })).await;
    create(
        &cluster,
        "db",
        json!({ "secret": "api-config-db", "format": "json",
                "keys": [{ "key": "DB_HOST", "property": "host" }, { "key": "DB_PORT", "property": "port" }] }),
    )
    .await;
    create(&cluster, "env", json!({ "secret": format!("projects/{PROJECT}/secrets/env"), "format": "dotenv" })).await;

    for name in ["raw", "db", "env"] {
        let synced = wait_condition(&refs, name, ready().is("True", "Synced")).await;
        assert_eq!(synced.status.and_then(|s| s.synced_version).as_deref(), Some("1"));
    }
    assert_eq!(secret_data(&cluster, "raw").await, Some(data(&[("value", "s3cr3t")])));
    assert_eq!(secret_data(&cluster, "db").await, Some(data(&[("DB_HOST", "db.example.com"), ("DB_PORT", "5432")])));
    assert_eq!(secret_data(&cluster, "env").await, Some(data(&[("DB_PASS", "p w"), ("DB_USER", "api_user")])));
}

#[tokio::test]
async fn latest_moves_to_a_new_version_after_one_refresh() {
    let (cluster, operator) = cluster_with_operator("sref-latest").await;
    operator.gcp.add_version(PROJECT, "token", b"one");
    create(&cluster, "token", json!({ "secret": "token", "refreshInterval": "1s" })).await;
    wait_synced(&cluster, "token", "1").await;

    operator.gcp.add_version(PROJECT, "token", b"two");
    let moved = wait_synced(&cluster, "token", "2").await;
    assert_eq!(secret_data(&cluster, "token").await, Some(data(&[("value", "two")])));
    let status = moved.status.unwrap_or_default();
    assert_eq!(status.content_hash.map(|h| h.len()), Some(64));
    assert!(status.last_sync_time.is_some());
}

/// Waits until `witness` (a floating SecretRef with a 1 s refresh) has been read `periods` more
/// times: proof that that many refresh periods went by.
async fn wait_refresh_periods(operator: &Operator, witness: &str, periods: u64) {
    let resource = format!("projects/{PROJECT}/secrets/{witness}/");
    let start = operator.gcp.count_for(ACCESS, &resource);
    wait_for(&format!("{periods} refreshes of {witness}"), DEADLINE, || async {
        (operator.gcp.count_for(ACCESS, &resource) >= start + periods).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_pinned_version_is_not_read_again_over_several_refresh_periods() {
    let (cluster, operator) = cluster_with_operator("sref-pinned").await;
    for id in ["pinned", "witness"] {
        operator.gcp.add_version(PROJECT, id, b"v1");
    }
    create(&cluster, "pinned", json!({ "secret": "pinned", "version": "1", "refreshInterval": "1s" })).await;
    create(&cluster, "witness", json!({ "secret": "witness", "refreshInterval": "1s" })).await;
    wait_synced(&cluster, "pinned", "1").await;
    wait_synced(&cluster, "witness", "1").await;
    operator.gcp.add_version(PROJECT, "pinned", b"v2");
    let reads = operator.gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/pinned/"));

    wait_refresh_periods(&operator, "witness", 3).await;
    assert_eq!(operator.gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/pinned/")), reads);
    assert_eq!(secret_data(&cluster, "pinned").await, Some(data(&[("value", "v1")])));
}

#[tokio::test]
async fn a_disabled_newest_version_reports_version_disabled_and_keeps_the_secret() {
    let (cluster, operator) = cluster_with_operator("sref-disabled").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"version-one");
    create(&cluster, "db", json!({ "secret": "db", "refreshInterval": "1s" })).await;
    wait_synced(&cluster, "db", "1").await;

    let two = operator.gcp.add_version(PROJECT, "db", b"version-two");
    operator.gcp.set_version_state(PROJECT, "db", two, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    let failed = wait_condition(&refs, "db", ready().is("False", "VersionDisabled")).await;
    let status = failed.status.unwrap_or_default();
    assert_eq!(status.synced_version.as_deref(), Some("1"));
    assert_eq!(status.unusable_versions, [], "a refused latest does not say which number it was");
    assert_eq!(secret_data(&cluster, "db").await, Some(data(&[("value", "version-one")])));
}

/// Without notifications too: the pinned version's own read is Secret Manager's answer.
#[tokio::test]
async fn a_pinned_version_secret_manager_refuses_is_listed_until_a_read_serves_it_again() {
    let (cluster, operator) = cluster_with_operator("sref-unusable").await;
    let refs: Api<SecretRef> = cluster.api();
    let one = operator.gcp.add_version(PROJECT, "db", b"version-one");
    operator.gcp.set_version_state(PROJECT, "db", one, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    create(&cluster, "pinned", json!({ "secret": "db", "version": "1" })).await;
    let failed = wait_condition(&refs, "pinned", ready().is("False", "VersionDisabled")).await;
    let listed = wait_for("version 1 listed as Disabled", DEADLINE, || async {
        let status = refs.get("pinned").await.ok()?.status?;
        (status.unusable_versions.len() == 1).then_some(status)
    })
    .await;
    assert_eq!(listed.unusable("1"), Some(UnusableState::Disabled), "{:?}", failed.status);

    operator.gcp.set_version_state(PROJECT, "db", one, VersionState::Enabled).unwrap_or_else(|e| panic!("{e}"));
    let refresh = json!({ "metadata": { "annotations": { "secureapi.dev/refresh": "enabled-again" } } });
    refs.patch("pinned", &PatchParams::default(), &Patch::Merge(&refresh)).await.unwrap_or_else(|e| panic!("{e}"));
    let synced = wait_synced(&cluster, "pinned", "1").await.status.unwrap_or_default();
    wait_for("the list emptied by the read that served version 1", DEADLINE, || async {
        refs.get("pinned").await.ok()?.status?.unusable_versions.is_empty().then_some(())
    })
    .await;
    assert_eq!(synced.synced_version.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_missing_version_is_version_not_found_and_a_missing_secret_secret_not_found() {
    let (cluster, operator) = cluster_with_operator("sref-missing").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"version-one");
    create(&cluster, "pinned", json!({ "secret": "db", "version": "99" })).await;
    create(&cluster, "nothing", json!({ "secret": "nope" })).await;
    let pinned = wait_condition(&refs, "pinned", ready().is("False", "VersionNotFound")).await;
    let message = pinned.message(types::READY);
    assert!(
        message.starts_with(&format!("version 99 of secret projects/{PROJECT}/secrets/db does not exist")),
        "{message}"
    );
    let nothing = wait_condition(&refs, "nothing", ready().is("False", "SecretNotFound")).await;
    let message = nothing.message(types::READY);
    assert!(message.starts_with(&format!("secret projects/{PROJECT}/secrets/nope does not exist")), "{message}");
}

#[tokio::test]
async fn a_wrong_checksum_reports_checksum_mismatch_and_leaves_the_secret_untouched() {
    let (cluster, operator) = cluster_with_operator("sref-crc").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"good");
    create(&cluster, "db", json!({ "secret": "db", "refreshInterval": "1s" })).await;
    wait_synced(&cluster, "db", "1").await;
    let secrets: Api<Secret> = cluster.api();
    let before = secrets.get("db").await.unwrap_or_else(|e| panic!("{e}")).metadata.resource_version;

    operator.gcp.inject_fault(GcpFault { method: Some(ACCESS.into()), wrong_checksum: true, ..GcpFault::default() });
    operator.gcp.add_version(PROJECT, "db", b"corrupted in transit");
    wait_condition(&refs, "db", ready().is("False", "ChecksumMismatch")).await;
    let after = secrets.get("db").await.unwrap_or_else(|e| panic!("{e}")).metadata.resource_version;
    assert_eq!(before, after, "the Secret was not written");
    assert_eq!(secret_data(&cluster, "db").await, Some(data(&[("value", "good")])));
}

#[tokio::test]
async fn transient_429_and_503_are_retried_then_synced_with_one_secret_write_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = emulator_with_operator("sref-retry").await else { return };
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    operator.gcp.inject_fault(GcpFault {
        method: Some(ACCESS.into()),
        status: Some(429),
        times: Some(4),
        ..GcpFault::default()
    });
    operator.gcp.inject_fault(GcpFault {
        method: Some(ACCESS.into()),
        status: Some(503),
        times: Some(4),
        ..GcpFault::default()
    });
    // Only the sync's writes (the operator's start wrote its hash key).
    kube.reset_counts();
    create(&cluster, "db", json!({ "secret": "db" })).await;
    wait_condition(&refs, "db", ready().is("True", "Synced")).await;
    assert!(operator.gcp.count(ACCESS) >= 5, "the faults were met and retried");
    assert_eq!(kube.writes("secrets"), 1, "exactly one Secret write");
}

#[tokio::test]
async fn a_steady_state_makes_no_writes_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = emulator_with_operator("sref-steady").await else { return };
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    create(&cluster, "db", json!({ "secret": "db", "refreshInterval": "1s" })).await;
    wait_condition(&refs, "db", ready().is("True", "Synced")).await;
    wait_refresh_periods(&operator, "db", 1).await;
    kube.reset_counts();

    wait_refresh_periods(&operator, "db", 3).await;
    assert_eq!(kube.writes("secrets"), 0, "no Secret writes: {:?}", kube.counts());
    assert_eq!(kube.writes("secretrefs/status"), 0, "no status writes: {:?}", kube.counts());
    assert_eq!(kube.writes("secretrefs"), 0, "no SecretRef writes: {:?}", kube.counts());
}

#[tokio::test]
async fn an_edited_or_deleted_target_secret_is_restored() {
    let (cluster, operator) = cluster_with_operator("sref-drift").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"original");
    create(&cluster, "db", json!({ "secret": "db", "version": "1" })).await;
    wait_condition(&refs, "db", ready().is("True", "Synced")).await;
    let secrets: Api<Secret> = cluster.api();

    secrets
        .patch("db", &PatchParams::default(), &Patch::Merge(json!({ "data": { "value": "ZWRpdGVk" } })))
        .await
        .unwrap_or_else(|e| panic!("editing: {e}"));
    wait_for("the edit to be repaired", DEADLINE, || async {
        (secret_data(&cluster, "db").await? == data(&[("value", "original")])).then_some(())
    })
    .await;

    secrets.delete("db", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("deleting: {e}"));
    wait_for("the deletion to be repaired", DEADLINE, || async {
        (secret_data(&cluster, "db").await? == data(&[("value", "original")])).then_some(())
    })
    .await;
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } }, "spec": { "containers": [{ "name": "app", "image": "api:1" }] } } },
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_rollout_target_gets_exactly_one_template_change_per_new_version() {
    let (cluster, operator) = cluster_with_operator("sref-rollout").await;
    let deployments: Api<Deployment> = cluster.api();
    deployments.create(&PostParams::default(), &deployment("api")).await.unwrap_or_else(|e| panic!("{e}"));
    operator.gcp.add_version(PROJECT, "db", b"one");
    create(
        &cluster,
        "db",
        json!({ "secret": "db", "refreshInterval": "1s", "rolloutTargets": [{ "kind": "Deployment", "name": "api" }] }),
    )
    .await;
    let annotation = |d: &Deployment| {
        d.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?.get("secureapi.dev/secret-version").cloned()
    };
    wait_for("the first version on the template", DEADLINE, || async {
        (annotation(&deployments.get("api").await.ok()?)? == "db=1").then_some(())
    })
    .await;
    let generation = deployments.get("api").await.ok().and_then(|d| d.metadata.generation);
    assert_eq!(generation, Some(2), "one template change for version 1");

    operator.gcp.add_version(PROJECT, "db", b"two");
    wait_for("the second version on the template", DEADLINE, || async {
        (annotation(&deployments.get("api").await.ok()?)? == "db=2").then_some(())
    })
    .await;
    wait_refresh_periods(&operator, "db", 3).await;
    let generation = deployments.get("api").await.ok().and_then(|d| d.metadata.generation);
    assert_eq!(generation, Some(3), "exactly one more template change for version 2");
}

/// A Secret someone else made (no labels or owner of ours), holding `mine: keep`.
async fn create_foreign_secret(secrets: &Api<Secret>, name: &str) {
    let foreign: Secret =
        serde_json::from_value(json!({ "metadata": { "name": name }, "stringData": { "mine": "keep" } }))
            .unwrap_or_else(|e| panic!("{e}"));
    secrets.create(&PostParams::default(), &foreign).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_secretref_writes_only_its_own_secret_in_its_own_namespace() {
    let (cluster, operator) = cluster_with_operator("sref-scope").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    let secrets: Api<Secret> = cluster.api();
    create_foreign_secret(&secrets, "taken").await;

    create(&cluster, "db", json!({ "secret": "db", "target": { "name": "db-creds" } })).await;
    create(&cluster, "grab", json!({ "secret": "db", "target": { "name": "taken" } })).await;
    let synced = wait_condition(&refs, "db", ready().is("True", "Synced")).await;
    let uid = synced.metadata.uid.clone().unwrap_or_default();
    assert_eq!(synced.status.and_then(|s| s.target_name).as_deref(), Some("db-creds"));
    let created = secrets.get("db-creds").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.metadata.namespace.as_deref(), Some(cluster.namespace.as_str()));
    // Across the cluster (other tests' Secrets of the same name are theirs): only the one above
    // is this SecretRef's.
    let all: Api<Secret> = Api::all(cluster.client.clone());
    let everywhere = all.list(&Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let written: Vec<_> = everywhere
        .items
        .iter()
        .filter(|s| s.owner_references().iter().any(|o| o.uid == uid))
        .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
        .collect();
    assert_eq!(
        written,
        [(cluster.namespace.clone(), "db-creds".to_owned())],
        "no Secret outside the SecretRef's namespace"
    );

    wait_condition(&refs, "grab", ready().is("False", "TargetConflict")).await;
    assert_eq!(secret_data(&cluster, "taken").await, Some(data(&[("mine", "keep")])));
}

#[tokio::test]
async fn regional_secrets_and_version_aliases_resolve_to_a_version_number() {
    let (cluster, operator) = cluster_with_operator("sref-regional").await;
    let regional = format!("projects/{PROJECT}/locations/us-central1/secrets/eu-db");
    operator.gcp.add_version(PROJECT, "aliased", b"first");
    let two = operator.gcp.add_version(PROJECT, "aliased", b"second");
    operator.gcp.set_alias(PROJECT, "aliased", "stable", two).unwrap_or_else(|e| panic!("{e}"));
    operator.gcp.add_version(PROJECT, "aliased", b"third");
    create(&cluster, "aliased", json!({ "secret": "aliased", "version": "stable" })).await;
    wait_synced(&cluster, "aliased", "2").await;
    assert_eq!(secret_data(&cluster, "aliased").await, Some(data(&[("value", "second")])));

    // Regional secrets go through the REST API: the seeding helpers know global ones only.
    let post = |path: String, body: String| {
        let gcp = operator.gcp.clone();
        async move {
            let uri: hyper::Uri = path.parse().unwrap_or_else(|e| panic!("{e}"));
            gcp.respond(&hyper::Method::POST, &uri, &hyper::HeaderMap::new(), bytes::Bytes::from(body)).await.status()
        }
    };
    let created =
        post(format!("/v1/projects/{PROJECT}/locations/us-central1/secrets?secretId=eu-db"), "{}".into()).await;
    assert!(created.is_success(), "regional secret created: {created}");
    let version = json!({ "payload": { "data": "cmVnaW9uYWw=" } }).to_string();
    let added = post(format!("/v1/{regional}:addVersion"), version).await;
    assert!(added.is_success(), "regional version added: {added}");
    create(&cluster, "regional", json!({ "secret": regional })).await;
    wait_synced(&cluster, "regional", "1").await;
    assert_eq!(secret_data(&cluster, "regional").await, Some(data(&[("value", "regional")])));
}

#[tokio::test]
async fn the_refresh_annotation_triggers_one_immediate_read() {
    let (cluster, operator) = cluster_with_operator("sref-refresh").await;
    let api: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"one");
    create(&cluster, "db", json!({ "secret": "db", "version": "1" })).await;
    wait_condition(&api, "db", ready().is("True", "Synced")).await;
    let reads = operator.gcp.count(ACCESS);
    let annotate = json!({ "metadata": { "annotations": { "secureapi.dev/refresh": "auth-failed-1" } } });
    api.patch("db", &PatchParams::default(), &Patch::Merge(annotate)).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the refresh to be acted on", DEADLINE, || async {
        let status = api.get("db").await.ok()?.status?;
        (status.observed_refresh.as_deref() == Some("auth-failed-1")).then_some(())
    })
    .await;
    assert_eq!(operator.gcp.count(ACCESS), reads + 1, "one read for one refresh request");
}

#[tokio::test]
async fn deletion_policy_delete_removes_the_secret_and_retain_keeps_it_unowned() {
    let (cluster, operator) = cluster_with_operator("sref-deletion").await;
    let api: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    create(&cluster, "gone", json!({ "secret": "db" })).await;
    create(&cluster, "kept", json!({ "secret": "db", "target": { "deletionPolicy": "Retain" } })).await;
    create(&cluster, "orphan", json!({ "secret": "db", "target": { "creationPolicy": "Orphan" } })).await;
    for name in ["gone", "kept", "orphan"] {
        wait_condition(&api, name, ready().is("True", "Synced")).await;
    }
    // Garbage collection deletes the owned Secret: Retain, and Delete of an orphan Secret, need
    // the operator's cleanup.
    let finalizers = |name: &'static str| {
        let api = api.clone();
        async move { api.get(name).await.unwrap_or_else(|e| panic!("{e}")).metadata.finalizers.unwrap_or_default() }
    };
    assert!(finalizers("gone").await.is_empty(), "Delete of an owned Secret needs no finalizer");
    assert_eq!(finalizers("kept").await, [FINALIZER]);
    assert_eq!(finalizers("orphan").await, [FINALIZER]);
    for name in ["gone", "kept", "orphan"] {
        api.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let secrets: Api<Secret> = cluster.api();
    wait_for("both SecretRefs to go", DEADLINE, || async {
        let left = api.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    for name in ["gone", "orphan"] {
        wait_for(&format!("the Delete policy's Secret {name} to go"), DEADLINE, || async {
            secrets.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    let kept = secrets.get("kept").await.unwrap_or_else(|e| panic!("the Retain policy keeps the Secret: {e}"));
    assert!(kept.metadata.owner_references.unwrap_or_default().is_empty(), "no owner left to collect it");
}

/// Without a finalizer nothing reconciles the deletion: garbage collection takes the Secret, and
/// a SecretRef created again under the name syncs its own secret.
#[tokio::test]
async fn a_secret_ref_deleted_and_created_again_syncs_afresh() {
    let (cluster, operator) = cluster_with_operator("sref-again").await;
    let api: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "first", b"one");
    operator.gcp.add_version(PROJECT, "second", b"two");
    create(&cluster, "again", json!({ "secret": "first" })).await;
    wait_condition(&api, "again", ready().is("True", "Synced")).await;
    api.delete("again", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the SecretRef and its Secret to go", DEADLINE, || async {
        let gone = api.get_opt("again").await.ok()?.is_none() && secret_data(&cluster, "again").await.is_none();
        gone.then_some(())
    })
    .await;
    create(&cluster, "again", json!({ "secret": "second" })).await;
    wait_for("the new SecretRef's secret", DEADLINE, || async {
        (secret_data(&cluster, "again").await? == data(&[("value", "two")])).then_some(())
    })
    .await;
}

/// Points `name`'s `spec.target.name` at `target`.
async fn retarget(cluster: &TestCluster, name: &str, target: &str) {
    let api: Api<SecretRef> = cluster.api();
    let patch = json!({ "spec": { "target": { "name": target } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Waits until `name`'s status says it wrote `target`; returns the SecretRef.
async fn wait_target(cluster: &TestCluster, name: &str, target: &str) -> SecretRef {
    let api: Api<SecretRef> = cluster.api();
    wait_for(&format!("{name} to write {target}"), DEADLINE, || async {
        let object = api.get(name).await.ok()?;
        (object.status.as_ref()?.target_name.as_deref() == Some(target)).then_some(object)
    })
    .await
}

/// Waits for an Event with `reason` about SecretRef `name`; returns its note.
async fn wait_event(cluster: &TestCluster, name: &str, reason: &str) -> String {
    let events: Api<Event> = cluster.api();
    wait_for(&format!("a {reason} Event about {name}"), DEADLINE, || async {
        let items = events.list(&ListParams::default()).await.ok()?.items;
        items.into_iter().find_map(|event| {
            let about = event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name);
            (about && event.reason.as_deref() == Some(reason)).then(|| event.note.unwrap_or_default())
        })
    })
    .await
}

async fn exists(cluster: &TestCluster, name: &str) -> bool {
    let secrets: Api<Secret> = cluster.api();
    secrets.get_opt(name).await.unwrap_or_else(|e| panic!("{name}: {e}")).is_some()
}

#[tokio::test]
async fn a_renamed_target_with_delete_moves_the_data_then_deletes_the_old_secret_once_with_emulator_hooks() {
    let (cluster, operator) = cluster_with_operator("sref-rename-delete").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    // Owned (the default) and orphan Secrets alike: the deletion policy decides.
    create(&cluster, "db", json!({ "secret": "db", "refreshInterval": "1s" })).await;
    let orphan = json!({ "secret": "db", "refreshInterval": "1s", "target": { "creationPolicy": "Orphan" } });
    create(&cluster, "plain", orphan).await;
    for name in ["db", "plain"] {
        wait_condition(&refs, name, ready().is("True", "Synced")).await;
        assert!(exists(&cluster, name).await);
        retarget(&cluster, name, &format!("{name}-credentials")).await;
    }

    for name in ["db", "plain"] {
        let renamed = format!("{name}-credentials");
        wait_target(&cluster, name, &renamed).await;
        assert_eq!(secret_data(&cluster, &renamed).await, Some(data(&[("value", "value")])));
        assert!(!exists(&cluster, name).await, "the old Secret {name} is gone");
        let note = wait_event(&cluster, name, "PreviousTargetDeleted").await;
        assert!(note.contains(&renamed), "{note}");
    }
    let Some(kube) = cluster.hooks().cloned() else { return };
    assert_eq!(kube.count("delete", "secrets"), 2, "one deletion per rename: {:?}", kube.counts());
    wait_refresh_periods(&operator, "db", 1).await;
    kube.reset_counts();
    wait_refresh_periods(&operator, "db", 3).await;
    assert_eq!(kube.writes("secrets"), 0, "no Secret writes: {:?}", kube.counts());
    assert_eq!(kube.writes("secretrefs/status"), 0, "no status writes: {:?}", kube.counts());
}

#[tokio::test]
async fn a_renamed_target_with_retain_keeps_the_old_secret_and_releases_it() {
    let (cluster, operator) = cluster_with_operator("sref-rename-retain").await;
    let api: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    create(&cluster, "kept", json!({ "secret": "db", "target": { "deletionPolicy": "Retain" } })).await;
    let synced = wait_condition(&api, "kept", ready().is("True", "Synced")).await;
    let uid = synced.metadata.uid.unwrap_or_default();
    retarget(&cluster, "kept", "kept-v2").await;
    wait_target(&cluster, "kept", "kept-v2").await;
    assert_eq!(secret_data(&cluster, "kept-v2").await, Some(data(&[("value", "value")])));

    let secrets: Api<Secret> = cluster.api();
    let old = secrets.get("kept").await.unwrap_or_else(|e| panic!("the Retain policy keeps the Secret: {e}"));
    assert_eq!(secret_data(&cluster, "kept").await, Some(data(&[("value", "value")])));
    let owners = old.metadata.owner_references.unwrap_or_default();
    assert!(owners.iter().all(|o| o.uid != uid), "no owner reference to the SecretRef: {owners:?}");
    let labels = old.metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("app.kubernetes.io/managed-by"), "{labels:?}");
    assert!(!labels.contains_key("secureapi.dev/secretref"), "{labels:?}");
    wait_event(&cluster, "kept", "PreviousTargetReleased").await;

    // Released means no longer the SecretRef's: its deletion leaves the old Secret alone.
    api.delete("kept", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("the SecretRef to go", DEADLINE, || async { api.get_opt("kept").await.ok()?.is_none().then_some(()) })
        .await;
    assert_eq!(secret_data(&cluster, "kept").await, Some(data(&[("value", "value")])));
}

#[tokio::test]
async fn a_renamed_target_never_touches_a_foreign_secret_of_the_old_name() {
    let (cluster, operator) = cluster_with_operator("sref-rename-foreign").await;
    let refs: Api<SecretRef> = cluster.api();
    operator.gcp.add_version(PROJECT, "db", b"value");
    let secrets: Api<Secret> = cluster.api();
    create_foreign_secret(&secrets, "taken").await;
    // `grab` never wrote its old target: it was someone else's all along.
    create(&cluster, "grab", json!({ "secret": "db", "target": { "name": "taken" } })).await;
    wait_condition(&refs, "grab", ready().is("False", "TargetConflict")).await;
    // `db` wrote its old target, which someone else then took over (our labels and owner gone).
    create(&cluster, "db", json!({ "secret": "db" })).await;
    wait_condition(&refs, "db", ready().is("True", "Synced")).await;
    let take_over = json!({ "metadata": { "labels": null, "ownerReferences": null } });
    secrets.patch("db", &PatchParams::default(), &Patch::Merge(take_over)).await.unwrap_or_else(|e| panic!("{e}"));
    let version_of = |name: &'static str| {
        let secrets = secrets.clone();
        async move { secrets.get(name).await.unwrap_or_else(|e| panic!("{name}: {e}")).metadata.resource_version }
    };
    let before = (version_of("taken").await, version_of("db").await);

    retarget(&cluster, "grab", "grab-creds").await;
    retarget(&cluster, "db", "db-creds").await;
    wait_target(&cluster, "grab", "grab-creds").await;
    wait_target(&cluster, "db", "db-creds").await;
    assert_eq!(secret_data(&cluster, "grab-creds").await, Some(data(&[("value", "value")])));
    assert_eq!(secret_data(&cluster, "db-creds").await, Some(data(&[("value", "value")])));
    assert_eq!((version_of("taken").await, version_of("db").await), before, "foreign Secrets are not written");
    assert_eq!(secret_data(&cluster, "taken").await, Some(data(&[("mine", "keep")])));
}
